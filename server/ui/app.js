// provdb web UI: plain ES module, no build step. Talks only to the routes of docs/http-api.md.
// Pages (hash routes): #/curate[/NAME], #/ask, #/audit; a key prompt while no key is stored.

const KEY = 'provdb.apiKey';
const $ = (sel, root = document) => root.querySelector(sel);
const state = { me: null, datanets: [], models: null, detail: null };

// ---------- small helpers ----------

/** Builds an element: h('td', {class: 'num', 'data-testid': 'x'}, 'text', child, ...); `svg:rect` for SVG. */
function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith('svg:') ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const short = (s, n = 10) => (s && String(s).length > n + 6 ? `${String(s).slice(0, n)}…${String(s).slice(-4)}` : String(s ?? ''));
const addr = (a) => (a ? h('code', { title: a }, short(a, 8)) : h('span', { class: 'muted' }, '—'));

/** JSON.parse that keeps numbers too large for a double's integers as their exact source text. */
function parseJson(text) {
  return JSON.parse(text, (_k, v, ctx) =>
    (typeof v === 'number' && Math.abs(v) > Number.MAX_SAFE_INTEGER && typeof ctx?.source === 'string' ? ctx.source : v));
}

/** A wei amount (string, number or bigint; DECIMAL may come as "12", "12.0" or "1.2e1") as a BigInt. */
function toWei(v) {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
  const m = /^(-?)(\d+)(?:\.(\d*))?(?:e\+?(\d+))?$/i.exec(String(v ?? '0').trim());
  if (!m) return 0n;
  const [, sign, int, frac = '', exp = '0'] = m;
  return BigInt(sign + int + frac.slice(0, Number(exp)).padEnd(Number(exp), '0'));
}

/** Wei as ETH with up to 6 decimals (rounded half up), in BigInt arithmetic only. */
function formatEth(v) {
  const wei = toWei(v);
  const neg = wei < 0n;
  const abs = neg ? -wei : wei;
  const micro = (abs + 500000000000n) / 1000000000000n; // units of 1e-6 ETH
  if (micro === 0n && abs > 0n) return `${neg ? '>-' : '<'}0.000001 ETH`;
  const whole = micro / 1000000n;
  const frac = (micro % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${whole}${frac ? '.' + frac : ''} ETH`;
}

const eth = (v) => h('span', { title: `${toWei(v)} wei` }, formatEth(v));

/** A time given as epoch ms, epoch s or an ISO string, as local "YYYY-MM-DD HH:MM:SS". */
function fmtTime(v) {
  if (v === undefined || v === null || v === '') return '';
  const n = Number(v);
  const d = /^\d+$/.test(String(v)) ? new Date(n > 1e11 ? n : n * 1000) : new Date(String(v));
  if (Number.isNaN(d.getTime())) return String(v);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// ---------- messages ----------

function message(text, kind = 'error') {
  const box = h('div', { class: `msg ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': `message-${kind}` },
    h('span', { 'data-testid': 'message-text' }, text),
    h('button', { type: 'button', class: 'link', 'aria-label': 'dismiss', onclick: () => box.remove() }, '×'));
  $('#messages').append(box);
  if (kind !== 'error') setTimeout(() => box.remove(), 6000);
  return box;
}
const showError = (e) => message(e instanceof Error ? e.message : String(e), 'error');
const showInfo = (t) => message(t, 'info');

// ---------- API ----------

class ApiError extends Error {
  constructor(message, status, body) { super(message); this.status = status; this.body = body; }
}

const authHeaders = () => ({ Authorization: `Bearer ${localStorage.getItem(KEY) || ''}` });

function errorFrom(status, statusText, text) {
  let body = null;
  try { body = parseJson(text); } catch { /* not JSON */ }
  const msg = body?.error?.message || (text && text.length < 300 ? text : '') || statusText || 'request failed';
  return new ApiError(`${msg} (HTTP ${status})`, status, body);
}

async function api(method, path, body) {
  const init = { method, headers: authHeaders() };
  if (body !== undefined) Object.assign(init, { body: JSON.stringify(body), headers: { ...init.headers, 'Content-Type': 'application/json' } });
  let res;
  try { res = await fetch(path, init); } catch (e) { throw new ApiError(`${method} ${path}: ${e.message}`, 0, null); }
  const text = await res.text();
  if (!res.ok) throw errorFrom(res.status, res.statusText, text);
  return text ? parseJson(text) : {};
}

const sql = (query) => api('POST', '/v1/sql', { query, max_rows: 1000 });
const enc = encodeURIComponent;

/** Fills a table's body from load(); its data-state goes loading → ready | error. */
async function fillTable(sel, load, row, empty) {
  const table = $(sel);
  table.dataset.state = 'loading';
  try {
    const rows = await load();
    const cols = table.tHead.rows[0].cells.length;
    $('tbody', table).replaceChildren(...(rows.length ? rows.map(row)
      : [h('tr', {}, h('td', { colspan: cols, class: 'muted' }, empty))]));
    table.dataset.state = 'ready';
  } catch (e) {
    table.dataset.state = 'error';
    showError(e);
  }
}

/** Runs fn with the control disabled; an error goes to the message area. */
async function busy(el, fn) {
  el.disabled = true;
  try { return await fn(); } catch (e) { showError(e); } finally { el.disabled = false; }
}

/** Fills a list with one item per entry, or one muted item saying there is none. */
const fillList = (sel, items, item, empty) =>
  $(sel).replaceChildren(...(items.length ? items.map(item) : [h('li', { class: 'muted' }, empty)]));

// ---------- key, header, routing ----------

/** Checks a key with GET /v1/me; a new key is kept only if it works, a stored one until it is refused. */
async function signIn(key, stored = false) {
  localStorage.setItem(KEY, key);
  try {
    state.me = await api('GET', '/v1/me');
  } catch (e) {
    if (!stored || e.status === 401) localStorage.removeItem(KEY);
    throw e;
  }
}

/** Forgets the key and reloads, so that nothing of this user's pages stays in the DOM. */
function signOut() {
  localStorage.removeItem(KEY);
  history.replaceState(null, '', '#/curate');
  location.reload();
}

const ROLES = ['reader', 'contributor', 'curator', 'admin'];
const roleAtLeast = (r) => ROLES.indexOf(state.me?.role) >= ROLES.indexOf(r);

function renderHeader() {
  $('#nav').hidden = $('#who').hidden = !state.me;
  $('#who-address').textContent = state.me?.address ?? '';
  $('#who-role').textContent = state.me?.role ?? '';
}

async function route() {
  const [page, ...rest] = (location.hash.replace(/^#\/?/, '') || 'curate').split('/');
  if (!state.me && localStorage.getItem(KEY)) {
    try { await signIn(localStorage.getItem(KEY), true); } catch (e) { showError(e); }
  }
  renderHeader();
  const name = state.me ? (['curate', 'ask', 'audit'].includes(page) ? page : 'curate') : 'key';
  for (const p of document.querySelectorAll('.page')) p.hidden = p.id !== `page-${name}`;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
  if (name === 'key') $('#key-input').focus();
  if (name === 'curate') await curatePage(rest.length ? decodeURIComponent(rest.join('/')) : null);
  if (name === 'ask') await askPage();
  if (name === 'audit') await auditPage();
}

// ---------- Curate ----------

async function loadDatanets() {
  state.datanets = (await api('GET', '/v1/datanets')).datanets || [];
  return state.datanets;
}

const listDatanets = (selected) => fillTable('#datanets', loadDatanets, (d) =>
  h('tr', { 'data-testid': 'datanet-row', 'data-name': d.name, class: d.name === selected ? 'selected' : null },
    h('td', {}, h('a', { href: `#/curate/${enc(d.name)}`, 'data-testid': 'datanet-open' }, d.name)),
    h('td', {}, d.visibility ?? ''), h('td', {}, d.license ?? ''),
    h('td', { class: 'num' }, d.records ?? 0), h('td', { class: 'num' }, d.chunks ?? 0),
    h('td', { class: 'num' }, d.contributors ?? 0), h('td', {}, addr(d.owner))), 'No Datanets you can read yet.');

async function curatePage(selected) {
  $('#create-box').hidden = !roleAtLeast('curator');
  await listDatanets(selected);
  $('#detail').hidden = !selected;
  $('#detail-hint').hidden = !!selected;
  if (selected) await showDetail(selected);
}

async function showDetail(name) {
  $('#detail-name').textContent = name;
  $('#upload-result').hidden = true;
  $('#upload-progress').hidden = true;
  const d = state.detail = await api('GET', `/v1/datanets/${enc(name)}`).catch((e) => { showError(e); return null; });
  $('#detail').hidden = !d;
  if (!d) return;
  $('#detail-role').textContent = d.my_role || '';
  $('#detail-desc').textContent = [d.description, d.license && `license ${d.license}`,
    d.require_signatures && 'signatures required', d.visibility].filter(Boolean).join(' · ');
  $('#upload-box').hidden = !roleAtLeast('contributor');
  const curates = ['owner', 'curator', 'admin'].includes(d.my_role);
  $('#access').hidden = !curates;
  await Promise.all([loadRecords(), curates ? loadAccess() : Promise.resolve()]);
}

const STATUSES = ['pending', 'approved', 'rejected', 'slashed'];

async function loadRecords() {
  const d = state.detail;
  if (!d) return;
  const curates = ['owner', 'curator', 'admin'].includes(d.my_role);
  await fillTable('#records', async () => (await api('GET', `/v1/datanets/${enc(d.name)}/records?limit=50`)).records || [],
    (r) => recordRow(r, curates), 'No records yet.');
}

function recordRow(r, curates) {
  const id = r.record_id;
  const patch = (body, el) => busy(el, async () => {
    await api('PATCH', `/v1/records/${enc(id)}`, body);
    showInfo(`record ${short(id)} updated`);
  });
  let status = h('span', { 'data-testid': 'record-status' }, r.status);
  let quality = h('span', { 'data-testid': 'record-quality' }, r.quality ?? '');
  if (curates && r.status !== 'tombstoned') {
    status = h('select', { 'data-testid': 'record-status', 'aria-label': 'status',
      onchange: (ev) => patch({ status: ev.target.value }, ev.target) },
      STATUSES.map((s) => h('option', { value: s, selected: s === r.status }, s)));
    quality = h('input', { type: 'number', min: 0, max: 1, step: 0.05, value: r.quality ?? '', placeholder: '—',
      class: 'quality', 'data-testid': 'record-quality', 'aria-label': 'quality',
      onchange: (ev) => {
        const q = Number(ev.target.value);
        if (ev.target.value === '' || !(q >= 0 && q <= 1)) {
          ev.target.value = r.quality ?? '';
          return showError('quality must be between 0 and 1');
        }
        patch({ quality: q }, ev.target);
      } });
  }
  const content = typeof r.content === 'string' ? r.content : JSON.stringify(r.content);
  return h('tr', { 'data-testid': 'record-row', 'data-record-id': id, 'data-status': r.status },
    h('td', {}, h('code', { title: id }, short(id, 10))), h('td', {}, addr(r.contributor)),
    h('td', {}, status), h('td', {}, quality), h('td', {}, r.license ?? ''),
    h('td', { class: 'snippet', title: content }, content.length > 80 ? content.slice(0, 80) + '…' : content));
}

async function loadAccess() {
  const name = state.detail.name;
  const owner = ['owner', 'admin'].includes(state.detail.my_role);
  const act = (label, testid, fn) => h('button', { type: 'button', class: 'small', 'data-testid': testid,
    onclick: (ev) => busy(ev.target, async () => { await fn(); await loadAccess(); }) }, label);
  try {
    const g = await api('GET', `/v1/datanets/${enc(name)}/grants`);
    fillList('#requests', g.requests || [], (r) => h('li', { 'data-testid': 'request-row', 'data-address': r.address },
      addr(r.address), ' ', h('span', { class: 'muted' }, r.message || ''), ' ',
      act('Approve', 'request-approve', () => api('POST', `/v1/datanets/${enc(name)}/grants`, { grantee: r.address }))),
    'no pending requests');
    fillList('#grants', g.grants || [], (x) => h('li', { 'data-testid': 'grant-row', 'data-address': x.grantee },
      addr(x.grantee), ' ', h('span', { class: 'muted' }, fmtTime(x.granted_at)), ' ',
      act('Revoke', 'grant-revoke', () => api('DELETE', `/v1/datanets/${enc(name)}/grants/${enc(x.grantee)}`))), 'no grants');
    fillList('#curators', g.curators || [], (c) => h('li', { 'data-testid': 'curator-row', 'data-address': c }, addr(c), ' ',
      owner ? act('Remove', 'curator-remove', () => api('DELETE', `/v1/datanets/${enc(name)}/curators/${enc(c)}`)) : null),
    'only the owner');
    $('#curator-form').hidden = !owner;
  } catch (e) { showError(e); }
}

function formatOf(file) {
  const ext = file.name.toLowerCase().split('.').pop();
  return { jsonl: 'jsonl', ndjson: 'jsonl', json: 'jsonl', csv: 'csv', parquet: 'parquet' }[ext];
}

const CONTENT_TYPES = { jsonl: 'application/x-ndjson', csv: 'text/csv', parquet: 'application/vnd.apache.parquet' };

function upload(name, file, format, skipInvalid, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/v1/datanets/${enc(name)}/records?format=${format}&skip_invalid=${skipInvalid}&filename=${enc(file.name)}`);
    xhr.setRequestHeader('Authorization', authHeaders().Authorization);
    xhr.setRequestHeader('Content-Type', CONTENT_TYPES[format]);
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) onProgress(ev.loaded / ev.total); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try { resolve(parseJson(xhr.responseText)); } catch (e) { reject(new ApiError(`bad upload answer: ${e.message}`, xhr.status)); }
      } else reject(errorFrom(xhr.status, xhr.statusText, xhr.responseText));
    };
    xhr.onerror = () => reject(new ApiError('upload failed: network error', 0));
    xhr.onabort = () => reject(new ApiError('upload aborted', 0));
    xhr.send(file);
  });
}

function showUploadResult(r) {
  $('#upload-result').hidden = false;
  $('#upload-accepted').textContent = r.accepted ?? 0;
  $('#upload-rejected').textContent = r.rejected ?? (r.rejects || []).length;
  $('#upload-chunks').textContent = r.chunks ?? '—';
  $('#upload-rejects').replaceChildren(...(r.rejects || []).map((x) => h('li', { 'data-testid': 'upload-reject' },
    `line ${x.line ?? '?'}${x.column ? `, column ${x.column}` : ''}: ${x.reason ?? ''}`)));
}

function initCurate() {
  $('#create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = (n) => ev.target.elements.namedItem(n);
    const body = { name: f('name').value.trim(), private: f('private').checked, require_signatures: f('require_signatures').checked };
    if (f('description').value.trim()) body.description = f('description').value.trim();
    if (f('license').value.trim()) body.license = f('license').value.trim();
    await busy($('[data-testid=create-submit]'), async () => {
      const d = await api('POST', '/v1/datanets', body);
      showInfo(`created Datanet ${d.name || body.name}`);
      ev.target.reset();
      $('#create-box').open = false;
      location.hash = `#/curate/${enc(d.name || body.name)}`;
    });
  });

  $('#upload-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const file = $('#upload-file').files[0];
    const name = state.detail?.name;
    if (!file || !name) return;
    const format = formatOf(file);
    if (!format) return showError(`unknown file type "${file.name}": use .jsonl, .csv or .parquet`);
    const bar = $('#upload-progress');
    const btn = $('[data-testid=upload-submit]');
    Object.assign(bar, { hidden: false, value: 0 }).dataset.state = 'uploading';
    btn.disabled = true;
    $('#upload-result').hidden = true;
    try {
      const r = await upload(name, file, format, $('#upload-skip').checked, (p) => { bar.value = Math.round(p * 100); });
      bar.value = 100;
      bar.dataset.state = 'done';
      showUploadResult(r);
      await Promise.all([loadRecords(), listDatanets(name)]);
    } catch (e) {
      bar.dataset.state = 'error';
      const rejected = [e.body, e.body?.error].find((b) => b?.rejects); // rejects may come with an error
      if (rejected) showUploadResult(rejected);
      showError(e);
    } finally { btn.disabled = false; }
  });

  $('#records-reload').addEventListener('click', loadRecords);

  $('#curator-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('#curator-input');
    await busy($('[data-testid=curator-add-submit]'), async () => {
      await api('POST', `/v1/datanets/${enc(state.detail.name)}/curators`, { address: input.value.trim() });
      input.value = '';
      await loadAccess();
    });
  });
}

// ---------- Ask ----------

async function askPage() {
  const box = $('#ask-datanets');
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  try {
    const [models, datanets] = await Promise.all([state.models ? Promise.resolve(state.models) : api('GET', '/v1/models'), loadDatanets()]);
    state.models = models;
    const sel = $('#ask-model');
    const current = sel.value;
    sel.replaceChildren(...(models.data || []).map((m) => h('option', { value: m.id, selected: m.id === current }, m.id)));
    box.replaceChildren(...(datanets.length ? datanets.map((d) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', value: d.name, 'data-testid': 'ask-datanet', checked: checked.has(d.name) }),
      ` ${d.name}`, h('span', { class: 'muted' }, ` (${d.records ?? 0})`)))
      : [h('span', { class: 'muted' }, 'no Datanets: a plain chat')]));
    box.dataset.state = 'ready';
  } catch (e) { showError(e); }
}

/** Reads an SSE body, calling onEvent with each parsed `data:` payload until `[DONE]`. */
async function readSse(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let data = [];
  try {
    for (let done = false; !done;) {
      const chunk = await reader.read();
      done = chunk.done;
      buf += decoder.decode(chunk.value || new Uint8Array(), { stream: !done });
      const lines = buf.split('\n');
      buf = done ? '' : lines.pop();
      if (done) lines.push(''); // a last event without its blank line
      for (const line of lines.map((l) => l.replace(/\r$/, ''))) {
        if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        if (line !== '' || !data.length) continue;
        const payload = data.join('\n');
        data = [];
        if (payload.trim() !== '[DONE]') { onEvent(parseJson(payload)); continue; }
        // Let the body end by itself (the request then counts as finished), but not forever.
        await Promise.race([(async () => { while (!(await reader.read()).done); })(), new Promise((r) => setTimeout(r, 2000))]);
        return;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function newTurn(question) {
  const text = h('div', { class: 'answer', 'data-testid': 'answer-text' });
  const turn = h('article', { class: 'turn card', 'data-testid': 'turn', 'data-state': 'streaming' },
    h('p', { class: 'question' }, h('strong', {}, 'Q: '), question), text,
    h('div', { class: 'sources', 'data-testid': 'sources' }), h('div', { class: 'split', 'data-testid': 'split' }),
    h('p', { class: 'meta muted', 'data-testid': 'answer-meta' }));
  $('#transcript').prepend(turn);
  return { turn, text };
}

/** Renders the answer with its `[n]` markers as links to their citations. */
function renderAnswer(el, text, citations) {
  const byMarker = new Map(citations.filter((c) => c.marker > 0).map((c) => [Number(c.marker), c]));
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const c = byMarker.get(Number(m[1]));
    if (!c) continue;
    parts.push(text.slice(last, m.index));
    parts.push(h('a', { href: '#', class: 'cite', 'data-testid': 'citation-link', 'data-marker': m[1], 'data-record-id': c.record_id,
      title: c.snippet || '', onclick: (ev) => { ev.preventDefault(); openRecord(c.record_id); } }, m[0]));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  el.replaceChildren(...parts);
}

function renderSources(box, citations) {
  if (!citations.length) return box.replaceChildren(h('p', { class: 'muted' }, 'No verified citation.'));
  box.replaceChildren(h('h4', {}, 'Sources'), h('ol', { class: 'plain' }, citations.map((c) =>
    h('li', { 'data-testid': 'source', 'data-record-id': c.record_id },
      h('a', { href: '#', 'data-testid': 'source-link', onclick: (ev) => { ev.preventDefault(); openRecord(c.record_id); } },
        c.marker > 0 ? `[${c.marker}]` : '(used)'), ' ',
      h('span', { class: 'muted' }, `${c.datanet} · `), addr(c.contributor),
      h('span', { class: 'muted' }, ` · ${(Number(c.weight_ppm || 0) / 1e4).toFixed(1)}% · score ${Number(c.retrieval_score || 0).toFixed(3)}`),
      h('div', { class: 'snippet' }, c.snippet || '')))));
}

function renderSplit(box, split) {
  if (!split.length) return box.replaceChildren();
  box.replaceChildren(h('h4', {}, 'Paid'), h('table', { class: 'grid', 'data-testid': 'split-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'to'), h('th', {}, 'role'), h('th', { class: 'num' }, 'amount'))),
    h('tbody', {}, split.map((p) => h('tr', { 'data-testid': 'split-row' },
      h('td', {}, h('code', {}, p.to)), h('td', {}, p.role), h('td', { class: 'num' }, eth(p.amount_wei)))))));
}

async function ask(ev) {
  ev.preventDefault();
  const question = $('#ask-question').value.trim();
  if (!question) return;
  const fee = $('#ask-fee').value.trim() || '0';
  if (!/^\d+$/.test(fee)) return showError('the fee is a whole number of wei');
  const datanets = [...document.querySelectorAll('[data-testid=ask-datanet]:checked')].map((i) => i.value);
  const body = { model: $('#ask-model').value, messages: [{ role: 'user', content: question }], stream: true };
  const maxTokens = Number($('#ask-max-tokens').value);
  if (maxTokens > 0) body.max_tokens = maxTokens;
  if (datanets.length) Object.assign(body, { datanets, fee_wei: fee, attribution: $('#ask-attribution').value });
  const status = $('#ask-status');
  const btn = $('#ask-submit');
  const { turn, text } = newTurn(question);
  const setState = (s, label) => { status.dataset.state = s; status.textContent = label; turn.dataset.state = s; };
  btn.disabled = true;
  setState('streaming', 'waiting for the model…');
  const started = performance.now();
  let answer = '';
  let final = null;
  try {
    const res = await fetch('/v1/chat/completions', { method: 'POST', body: JSON.stringify(body),
      headers: { ...authHeaders(), 'Content-Type': 'application/json', Accept: 'text/event-stream' } });
    if (!res.ok) throw errorFrom(res.status, res.statusText, await res.text());
    await readSse(res, (chunk) => {
      if (chunk.error) throw new ApiError(chunk.error.message || 'stream error', 0, chunk);
      const choice = (chunk.choices || [])[0] || {};
      const piece = choice.delta?.content ?? choice.message?.content ?? '';
      if (piece) {
        answer += piece;
        text.textContent = answer;
        setState('streaming', 'streaming…');
      }
      if (chunk.answer_id || chunk.citations || chunk.split) final = chunk;
    });
    const citations = final?.citations || [];
    renderAnswer(text, answer, citations);
    if (datanets.length) renderSources($('.sources', turn), citations);
    renderSplit($('.split', turn), final?.split || []);
    const u = final?.usage || {};
    $('.meta', turn).textContent = [final?.answer_id && `answer ${short(final.answer_id, 12)}`,
      u.completion_tokens !== undefined && `${u.prompt_tokens} prompt + ${u.completion_tokens} answer tokens`,
      `${((performance.now() - started) / 1000).toFixed(1)} s`].filter(Boolean).join(' · ');
    if (final?.answer_id) turn.dataset.answerId = final.answer_id;
    setState('done', 'done');
  } catch (e) {
    setState('error', 'failed');
    $('.meta', turn).textContent = `failed: ${e.message}`;
    $('.meta', turn).classList.add('bad');
    showError(e);
  } finally { btn.disabled = false; }
}

async function openRecord(id) {
  const panel = $('#record-panel');
  panel.hidden = false;
  panel.dataset.state = 'loading';
  $('#record-id').textContent = id;
  for (const f of ['contributor', 'datanet', 'license', 'status', 'created', 'version', 'signature', 'content']) $(`#record-${f}`).textContent = '…';
  try {
    const r = await api('GET', `/v1/records/${enc(id)}`);
    const fields = { contributor: r.contributor, datanet: r.datanet, license: r.license,
      status: `${r.status ?? ''}${r.quality !== null && r.quality !== undefined ? ` · quality ${r.quality}` : ''}`,
      created: fmtTime(r.created_at), version: `${r.version ?? ''}${r.supersedes ? ` (supersedes ${short(r.supersedes)})` : ''}${r.superseded_by ? ` (superseded by ${short(r.superseded_by)})` : ''}`,
      signature: r.signature || 'unsigned', content: typeof r.content === 'string' ? r.content : JSON.stringify(r.content, null, 2) };
    for (const [k, v] of Object.entries(fields)) $(`#record-${k}`).textContent = v ?? '';
    panel.dataset.state = 'ready';
  } catch (e) {
    panel.dataset.state = 'error';
    $('#record-content').textContent = e.message;
    showError(e);
  }
}

function closeRecord() {
  $('#record-panel').hidden = true;
  $('#record-panel').dataset.state = 'closed';
}

// ---------- Audit ----------

async function auditPage() {
  await Promise.all([loadTop(), loadEpochs(), loadChain(), loadEntries()]);
}

const TOP_SQL = 'SELECT contributor, sum(amount_wei) AS paid, count(*) AS entries FROM attributions '
  + 'GROUP BY contributor ORDER BY paid DESC LIMIT 10';

const loadTop = () => fillTable('#top', async () => (await sql(TOP_SQL)).rows || [], (r, i) => h('tr', { 'data-testid': 'top-row' },
  h('td', {}, i + 1), h('td', {}, h('code', {}, r.contributor)), h('td', { class: 'num' }, eth(r.paid)),
  h('td', { class: 'num' }, r.entries)), 'Nobody has been paid yet.');

/** Fees per epoch from cumulative totals: bar i is total[i] - total[i-1]. At most the last 24. */
function epochFees(epochs) {
  const sorted = [...epochs].sort((a, b) => Number(a.epoch) - Number(b.epoch));
  let prev = 0n;
  return sorted.map((e) => {
    const total = toWei(e.total_wei);
    const fee = total - prev;
    prev = total;
    return { epoch: e.epoch, fee: fee < 0n ? 0n : fee, total, closed: fmtTime(e.closed_at_ms ?? e.closed_at) };
  }).slice(-24);
}

function drawChart(epochs) {
  const W = 480, H = 200, top = 16, bottom = 28, left = 8;
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'data-testid': 'fees-chart',
    'aria-label': 'fees per epoch', class: 'chart' });
  svg.append(h('svg:line', { x1: left, y1: H - bottom, x2: W - left, y2: H - bottom, class: 'axis' }));
  const bars = epochFees(epochs);
  if (!bars.length) {
    svg.append(h('svg:text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty', 'data-testid': 'chart-empty' }, 'no epoch closed yet'));
    return svg;
  }
  const max = bars.reduce((m, b) => (b.fee > m ? b.fee : m), 0n);
  const plotH = H - top - bottom;
  const step = (W - 2 * left) / bars.length;
  const bw = Math.max(2, Math.min(48, step * 0.7));
  bars.forEach((b, i) => {
    const hpx = max > 0n ? Number((b.fee * BigInt(plotH * 100)) / max) / 100 : 0;
    const x = left + i * step + (step - bw) / 2;
    const g = h('svg:g', { 'data-testid': 'chart-bar', 'data-epoch': b.epoch });
    g.append(h('svg:title', {}, `epoch ${b.epoch}${b.closed ? `, closed ${b.closed}` : ''}: ${formatEth(b.fee)} (${b.fee} wei); cumulative ${formatEth(b.total)}`));
    g.append(h('svg:rect', { x, y: H - bottom - hpx, width: bw, height: Math.max(hpx, b.fee > 0n ? 1 : 0), class: 'bar' }));
    if (bars.length <= 12) g.append(h('svg:text', { x: x + bw / 2, y: H - bottom - hpx - 4, 'text-anchor': 'middle', class: 'val' }, formatEth(b.fee).replace(' ETH', '')));
    g.append(h('svg:text', { x: x + bw / 2, y: H - bottom + 16, 'text-anchor': 'middle', class: 'lbl' }, `#${b.epoch}`));
    svg.append(g);
  });
  return svg;
}

async function loadEpochs() {
  const box = $('#chart');
  try {
    const { epochs = [] } = await api('GET', '/v1/epochs');
    const last = epochs.length ? epochs.reduce((a, b) => (Number(b.epoch) > Number(a.epoch) ? b : a)) : null;
    box.replaceChildren(drawChart(epochs), h('p', { class: 'muted', 'data-testid': 'epochs-summary' }, last
      ? `${epochs.length} epoch(s); last #${last.epoch}, ${last.accounts ?? '?'} accounts, ${formatEth(last.total_wei)} in all, root ${short(last.root, 10)}`
      : 'Epochs are closed by an admin (POST /v1/epochs).'));
  } catch (e) { box.replaceChildren(drawChart([])); showError(e); }
}

/** A status object as a definition list: `*_wei` as ETH, nested objects as their own lists, lists
 *  of objects with a `state` as a count per state (the chain's epochs: synced, pending, diverged). */
function kvList(obj) {
  const value = (k, v) => {
    if (Array.isArray(v)) {
      if (!v.some((x) => x && typeof x === 'object' && 'state' in x)) return v.length ? JSON.stringify(v) : 'none';
      const counts = v.reduce((m, x) => ({ ...m, [x.state]: (m[x.state] || 0) + 1 }), {});
      return Object.entries(counts).map(([st, n]) => `${n} ${st}`).join(', ') || 'none';
    }
    if (v !== null && typeof v === 'object') return kvList(v);
    return /_wei$/.test(k) ? eth(v) : String(v);
  };
  return h('dl', { class: 'kv' }, Object.entries(obj || {}).flatMap(([k, v]) => [h('dt', {}, k.replace(/_wei$/, '')),
    h('dd', { 'data-key': k }, value(k, v))]));
}

// The contract says {configured, local, chain}; the server may also send {configured, reachable,
// status | error}: whatever comes besides `configured` is shown.
async function loadChain() {
  const box = $('#chain');
  box.dataset.state = 'loading';
  try {
    const { configured, reachable, error, status, ...rest } = await api('GET', '/v1/chain/status');
    if (status && typeof status === 'object') Object.assign(rest, status);
    const badge = !configured ? h('span', { class: 'badge', 'data-testid': 'chain-not-configured' }, 'not configured')
      : reachable === false ? h('span', { class: 'badge bad' }, 'unreachable') : h('span', { class: 'badge ok' }, 'configured');
    box.replaceChildren(h('p', {}, badge, ' ', !configured ? 'no chain deployment for this database (provdb chain deploy).'
      : (error ? h('span', { class: 'bad' }, error) : '')), kvList(rest));
    box.dataset.state = !configured ? 'not-configured' : reachable === false ? 'unreachable' : 'configured';
  } catch (e) { box.dataset.state = 'error'; showError(e); }
}

// An entry may come flat or with its payment nested (as storage's LedgerEntry): both are read.
const loadEntries = () => fillTable('#entries',
  async () => ((await api('GET', '/v1/ledger/entries?limit=20')).entries || []).map((e) => ({ ...e, ...(e.payment || {}) })),
  (e) => h('tr', { 'data-testid': 'ledger-row', 'data-seq': e.seq },
    h('td', { class: 'num' }, e.seq), h('td', {}, fmtTime(e.ts_ms ?? e.ts)),
    h('td', {}, h('code', { title: e.answer_id }, short(e.answer_id, 8))), h('td', {}, addr(e.to ?? e.contributor ?? e.account)),
    h('td', {}, e.role ?? ''), h('td', { class: 'num' }, eth(e.amount_wei)), h('td', {}, e.datanet ?? e.datanet_id ?? ''),
    h('td', {}, e.record_id ? h('code', { title: e.record_id }, short(e.record_id, 8)) : ''), h('td', {}, e.model ?? '')),
  'The ledger is empty.');

async function verify() {
  const out = $('#verify-result');
  const set = (state, text, cls = '') => Object.assign(out, { className: cls, textContent: text }).setAttribute('data-state', state);
  $('#verify').disabled = true;
  set('loading', 'verifying…');
  try {
    const v = await api('GET', '/v1/ledger/verify');
    if (v.ok) set('ok', `ok: ${v.entries} entries, head ${short(v.head, 10)}`, 'good');
    else set('broken', `broken at entry ${v.broken_at}${v.reason ? `: ${v.reason}` : ''} (${v.entries} entries checked)`, 'bad');
  } catch (e) {
    set('error', '');
    showError(e);
  } finally { $('#verify').disabled = false; }
}

// ---------- start ----------

function init() {
  $('#key-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = $('#key-input').value.trim();
    if (!key) return;
    try {
      await signIn(key);
      $('#key-input').value = '';
      $('#messages').replaceChildren();
      await route();
    } catch (e) { showError(e); }
  });
  $('#sign-out').addEventListener('click', (ev) => { ev.preventDefault(); signOut(); });
  initCurate();
  $('#ask-form').addEventListener('submit', ask);
  $('#ask-question').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) $('#ask-form').requestSubmit();
  });
  $('#record-close').addEventListener('click', closeRecord);
  $('#record-panel').addEventListener('click', (ev) => { if (ev.target.id === 'record-panel') closeRecord(); });
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') closeRecord(); });
  $('#verify').addEventListener('click', verify);
  $('#audit-refresh').addEventListener('click', auditPage);
  window.addEventListener('hashchange', route);
  if (!/^#\/(curate|ask|audit)\b/.test(location.hash)) history.replaceState(null, '', '#/curate');
  route();
}

init();
