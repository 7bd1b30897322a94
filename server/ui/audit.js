// Audit: who was paid (top contributors), fees per epoch, ledger integrity, chain sync and the
// latest ledger entries.

import { $, h, short, addr, eth, formatEth, toWei, fmtTime, showError, api, sql, fillTable } from './api.js';

export async function auditPage() {
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

export function initAudit() {
  $('#verify').addEventListener('click', verify);
  $('#audit-refresh').addEventListener('click', auditPage);
}
