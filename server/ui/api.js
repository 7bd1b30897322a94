// Shared by every page: DOM and formatting helpers, the message area, API calls (JSON, SSE,
// streamed chat) and the signed-in state.

export const KEY = 'provdb.apiKey';
export const $ = (sel, root = document) => root.querySelector(sel);
export const state = { me: null, datanets: [], models: null, detail: null };

// ---------- small helpers ----------

/** Builds an element: h('td', {class: 'num', 'data-testid': 'x'}, 'text', child, ...); `svg:rect` for SVG. */
export function h(tag, attrs = {}, ...children) {
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

export const short = (s, n = 10) => (s && String(s).length > n + 6 ? `${String(s).slice(0, n)}…${String(s).slice(-4)}` : String(s ?? ''));
export const addr = (a) => (a ? h('code', { title: a }, short(a, 8)) : h('span', { class: 'muted' }, '—'));
export const enc = encodeURIComponent;

/** JSON.parse that keeps numbers too large for a double's integers as their exact source text. */
export function parseJson(text) {
  return JSON.parse(text, (_k, v, ctx) =>
    (typeof v === 'number' && Math.abs(v) > Number.MAX_SAFE_INTEGER && typeof ctx?.source === 'string' ? ctx.source : v));
}

/** A wei amount (string, number or bigint; DECIMAL may come as "12", "12.0" or "1.2e1") as a BigInt. */
export function toWei(v) {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
  const m = /^(-?)(\d+)(?:\.(\d*))?(?:e\+?(\d+))?$/i.exec(String(v ?? '0').trim());
  if (!m) return 0n;
  const [, sign, int, frac = '', exp = '0'] = m;
  return BigInt(sign + int + frac.slice(0, Number(exp)).padEnd(Number(exp), '0'));
}

/** Wei as ETH with up to 6 decimals (rounded half up), in BigInt arithmetic only. */
export function formatEth(v) {
  const wei = toWei(v);
  const neg = wei < 0n;
  const abs = neg ? -wei : wei;
  const micro = (abs + 500000000000n) / 1000000000000n; // units of 1e-6 ETH
  if (micro === 0n && abs > 0n) return `${neg ? '>-' : '<'}0.000001 ETH`;
  const whole = micro / 1000000n;
  const frac = (micro % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${whole}${frac ? '.' + frac : ''} ETH`;
}

export const eth = (v) => h('span', { title: `${toWei(v)} wei` }, formatEth(v));

/** A time given as epoch ms, epoch s or an ISO string, as local "YYYY-MM-DD HH:MM:SS". */
export function fmtTime(v) {
  if (v === undefined || v === null || v === '') return '';
  const n = Number(v);
  const d = /^\d+$/.test(String(v)) ? new Date(n > 1e11 ? n : n * 1000) : new Date(String(v));
  if (Number.isNaN(d.getTime())) return String(v);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A duration in seconds as "45 s", "3 min 05 s" or "2 h 07 min". */
export function fmtDuration(s) {
  const t = Math.max(0, Math.round(Number(s) || 0));
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} min ${String(t % 60).padStart(2, '0')} s`;
  return `${Math.floor(t / 3600)} h ${String(Math.floor((t % 3600) / 60)).padStart(2, '0')} min`;
}

// ---------- messages ----------

export function message(text, kind = 'error') {
  const box = h('div', { class: `msg ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': `message-${kind}` },
    h('span', { 'data-testid': 'message-text' }, text),
    h('button', { type: 'button', class: 'link', 'aria-label': 'dismiss', onclick: () => box.remove() }, '×'));
  $('#messages').append(box);
  if (kind !== 'error') setTimeout(() => box.remove(), 6000);
  return box;
}
export const showError = (e) => message(e instanceof Error ? e.message : String(e), 'error');
export const showInfo = (t) => message(t, 'info');

// ---------- API ----------

export class ApiError extends Error {
  constructor(message, status, body) { super(message); this.status = status; this.body = body; }
}

export const authHeaders = () => ({ Authorization: `Bearer ${localStorage.getItem(KEY) || ''}` });

export function errorFrom(status, statusText, text) {
  let body = null;
  try { body = parseJson(text); } catch { /* not JSON */ }
  const msg = body?.error?.message || (text && text.length < 600 ? text : '') || statusText || 'request failed';
  return new ApiError(`${msg} (HTTP ${status})`, status, body);
}

export async function api(method, path, body) {
  const init = { method, headers: authHeaders() };
  if (body !== undefined) Object.assign(init, { body: JSON.stringify(body), headers: { ...init.headers, 'Content-Type': 'application/json' } });
  let res;
  try { res = await fetch(path, init); } catch (e) { throw new ApiError(`${method} ${path}: ${e.message}`, 0, null); }
  const text = await res.text();
  if (!res.ok) throw errorFrom(res.status, res.statusText, text);
  return text ? parseJson(text) : {};
}

export const sql = (query) => api('POST', '/v1/sql', { query, max_rows: 1000 });

export async function loadDatanets() {
  state.datanets = (await api('GET', '/v1/datanets')).datanets || [];
  return state.datanets;
}

/** GET /v1/models, asked once per page load unless `fresh` (a published adapter adds a model). */
export async function loadModels(fresh = false) {
  if (!state.models || fresh) state.models = await api('GET', '/v1/models');
  return state.models;
}

const ROLES = ['reader', 'contributor', 'curator', 'admin'];
export const roleAtLeast = (r) => ROLES.indexOf(state.me?.role) >= ROLES.indexOf(r);

/** Fills a table's body from load(); its data-state goes loading → ready | error. */
export async function fillTable(sel, load, row, empty) {
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
export async function busy(el, fn) {
  el.disabled = true;
  try { return await fn(); } catch (e) { showError(e); } finally { el.disabled = false; }
}

/** Fills a list with one item per entry, or one muted item saying there is none. */
export const fillList = (sel, items, item, empty) =>
  $(sel).replaceChildren(...(items.length ? items.map(item) : [h('li', { class: 'muted' }, empty)]));

// ---------- server-sent events ----------

/** Reads an SSE body, calling onEvent with each parsed `data:` payload until `[DONE]`. */
export async function readSse(res, onEvent) {
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

/** GETs `path` as a server-sent event stream (`signal` aborts it); resolves at its end. */
export async function streamGet(path, onEvent, signal) {
  const res = await fetch(path, { headers: { ...authHeaders(), Accept: 'text/event-stream' }, signal });
  if (!res.ok) throw errorFrom(res.status, res.statusText, await res.text());
  await readSse(res, onEvent);
}

/** POSTs a streamed chat completion; onText(answerSoFar) after each piece. Resolves to
 *  {answer, final}: the text, and the chunks with usage, answer_id, citations or split merged (or null). */
export async function streamChat(body, onText) {
  const res = await fetch('/v1/chat/completions', { method: 'POST', body: JSON.stringify({ ...body, stream: true }),
    headers: { ...authHeaders(), 'Content-Type': 'application/json', Accept: 'text/event-stream' } });
  if (!res.ok) throw errorFrom(res.status, res.statusText, await res.text());
  let answer = '';
  let final = null;
  await readSse(res, (chunk) => {
    if (chunk.error) throw new ApiError(chunk.error.message || 'stream error', 0, chunk);
    const choice = (chunk.choices || [])[0] || {};
    const piece = choice.delta?.content ?? choice.message?.content ?? '';
    if (piece) {
      answer += piece;
      onText(answer);
    }
    if (chunk.answer_id || chunk.citations || chunk.split || chunk.usage) final = { ...final, ...chunk };
  });
  return { answer, final };
}
