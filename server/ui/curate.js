// Curate: the Datanets one may read, a Datanet's records (status, quality), uploads with
// progress, and its access (requests, grants, curators).

import { $, state, h, short, addr, enc, fmtTime, showError, showInfo, ApiError, authHeaders, errorFrom, parseJson,
  api, loadDatanets, roleAtLeast, fillTable, busy, fillList } from './api.js';

const listDatanets = (selected) => fillTable('#datanets', loadDatanets, (d) =>
  h('tr', { 'data-testid': 'datanet-row', 'data-name': d.name, class: d.name === selected ? 'selected' : null },
    h('td', {}, h('a', { href: `#/curate/${enc(d.name)}`, 'data-testid': 'datanet-open' }, d.name)),
    h('td', {}, d.visibility ?? ''), h('td', {}, d.license ?? ''),
    h('td', { class: 'num' }, d.records ?? 0), h('td', { class: 'num' }, d.chunks ?? 0),
    h('td', { class: 'num' }, d.contributors ?? 0), h('td', {}, addr(d.owner))), 'No Datanets you can read yet.');

export async function curatePage(selected) {
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

export function initCurate() {
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

