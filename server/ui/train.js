// Train: the Model Factory. A form that starts a LoRA fine-tuning job on a Datanet
// (POST /v1/fine_tuning/jobs), the caller's jobs, and one job followed live through its event
// stream: status, loss chart, progress, evaluation, samples, cancel / resume, publish, and a chat
// with the published adapter.

import { $, h, short, addr, enc, fmtTime, fmtDuration, showError, showInfo, ApiError, api, busy,
  fillTable, loadModels, roleAtLeast, streamGet, streamChat } from './api.js';
import { fillForm, initTrainForm } from './train-form.js';

const FINAL = ['succeeded', 'failed', 'cancelled'];
const jobPath = (id, tail = '') => `/v1/fine_tuning/jobs/${enc(id)}${tail}`;

/** The job shown: its JSON and what its events said so far. */
let cur = null;

function newCurrent(job) {
  return { id: job.id, job, points: new Map(), total: 0, started: null, last: null, before: null, after: null,
    published: null, cancelRequested: false, lastSeq: 0, abort: null, renderQueued: false };
}

// ---------- the jobs list ----------

const BADGE = { succeeded: 'ok', failed: 'bad', queued: 'live', running: 'live' };
const statusBadge = (s, attrs = {}) => h('span', { class: `badge ${BADGE[s] || ''}`,
  'data-state': s, ...attrs }, s);

const listJobs = () => fillTable('#jobs', async () => (await api('GET', '/v1/fine_tuning/jobs')).data || [], (j) =>
  h('tr', { 'data-testid': 'job-row', 'data-id': j.id, 'data-status': j.status, class: j.id === cur?.id ? 'selected' : null },
    h('td', {}, h('a', { href: `#/train/${enc(j.id)}`, 'data-testid': 'job-open', title: j.id }, short(j.id, 14))),
    h('td', {}, statusBadge(j.status, { 'data-testid': 'job-row-status' })), h('td', {}, j.datanet ?? ''),
    h('td', {}, j.model ?? ''), h('td', { class: 'num' }, j.result?.steps ?? ''), h('td', {}, fmtTime(j.created_at))),
  'No fine-tuning jobs yet.');

// ---------- one job ----------

async function selectJob(id) {
  leaveTrain();
  $('#job-status').dataset.state = 'loading';
  let job;
  try { job = await api('GET', jobPath(id)); } catch (e) {
    $('#job').hidden = true;
    return showError(e);
  }
  cur = newCurrent(job);
  $('#tuned-chat-answer').hidden = true;
  $('#tuned-chat-answer').textContent = '';
  $('#tuned-chat-meta').textContent = '';
  render(cur);
  follow(cur);
}

/** Follows the job's event stream from the last event seen until the job ends (or is left). */
async function follow(c) {
  if (c.abort) return;
  const ctl = new AbortController();
  c.abort = ctl;
  let failed = false;
  try {
    await streamGet(jobPath(c.id, `/events?after=${c.lastSeq}`), (ev) => { if (cur === c) onEvent(c, ev); }, ctl.signal);
  } catch (e) {
    failed = true;
    if (e.name !== 'AbortError' && cur === c) showError(e);
  } finally {
    if (c.abort === ctl) c.abort = null;
  }
  if (cur !== c || ctl.signal.aborted) return;
  await refresh(c);
  // A job resumed while its last stream was ending is followed again (after a pause; not after
  // an error, which the page shows: reloading it follows again).
  if (!failed && cur === c && !FINAL.includes(c.job.status)) setTimeout(() => { if (cur === c) follow(c); }, 1000);
}

function onEvent(c, ev) {
  // The stream's own failure is {"error": {"message"}}; a status event's `error` is the job's text.
  if (!ev.type && ev.error) throw new ApiError(ev.error.message || 'event stream error', 0, ev);
  c.lastSeq = Math.max(c.lastSeq, Number(ev.seq) || 0);
  switch (ev.type) {
    case 'status':
      c.job.status = ev.status;
      c.job.error = ev.error ?? null;
      if (ev.status === 'queued' || ev.status === 'running') c.cancelRequested = false;
      break;
    case 'started':
      c.started = ev;
      c.total = ev.total_steps;
      c.before = ev.before ?? c.before;
      for (const s of [...c.points.keys()]) if (s > ev.step) c.points.delete(s);
      break;
    case 'step':
      c.points.set(Number(ev.step), Number(ev.loss));
      c.total = ev.total_steps;
      c.last = ev;
      break;
    case 'evaluated':
      c.before = ev.before;
      c.after = ev.after;
      break;
    case 'cancel_requested': c.cancelRequested = true; break;
    case 'published': c.published = ev.adapter; break;
    default: break;
  }
  if (!c.renderQueued) {
    c.renderQueued = true;
    setTimeout(() => { c.renderQueued = false; if (cur === c) render(c); }, 30);
  }
}

/** Reads the job again (its result comes with the final status) and the list with it. */
async function refresh(c) {
  try {
    c.job = await api('GET', jobPath(c.id));
  } catch (e) { showError(e); }
  if (cur === c) render(c);
  await listJobs();
}

function hyperSummary(p) {
  if (!p) return '';
  return [`rank ${p.rank}`, `alpha ${p.alpha}`, (p.targets || []).join(' '), `lr ${p.learning_rate}`,
    `${p.epochs} epoch${p.epochs === 1 ? '' : 's'}`, `batch ${p.batch_size}`, `max length ${p.max_length}`,
    `held out ${p.held_out_fraction}`, `seed ${p.seed}`].join(' · ');
}

function render(c) {
  const { job } = c;
  const s = job.status;
  $('#job').hidden = false;
  $('#job-hint').hidden = true;
  $('#job-id').textContent = job.id;
  $('#job-status').replaceWith(statusBadge(s, { id: 'job-status', 'data-testid': 'job-status' }));
  $('#job-summary').textContent = `${job.datanet} · ${job.model} · created ${fmtTime(job.created_at)} · ${hyperSummary(job.hyperparameters)}`;
  const err = $('#job-error');
  err.hidden = !job.error;
  err.textContent = job.error || '';
  err.className = s === 'failed' ? 'bad' : 'muted';
  $('#job-cancel').hidden = !['queued', 'running'].includes(s);
  $('#job-cancel').disabled = c.cancelRequested;
  $('#job-cancel').textContent = c.cancelRequested ? 'Cancelling…' : 'Cancel';
  $('#job-resume').hidden = !['cancelled', 'failed'].includes(s);
  for (const row of document.querySelectorAll('#jobs [data-testid=job-row]')) {
    row.classList.toggle('selected', row.dataset.id === c.id);
    if (row.dataset.id === c.id && row.dataset.status !== s) { // the list follows the stream too
      row.dataset.status = s;
      $('[data-testid=job-row-status]', row).replaceWith(statusBadge(s, { 'data-testid': 'job-row-status' }));
    }
  }
  $('#loss-chart-box').replaceChildren(drawLoss(c.points, c.total));
  renderProgress(c);
  renderEval(c);
  renderSamples(c);
  renderPublish(c);
}

function renderProgress(c) {
  const s = c.job.status;
  const step = c.last?.step ?? c.started?.step ?? 0;
  const total = c.total || c.job.result?.steps || 0;
  const bar = $('#job-progress-bar');
  bar.value = total ? step / total : 0;
  if (s === 'succeeded') bar.value = 1;
  let text;
  if (s === 'queued') text = 'queued: waiting for the trainer (one job runs at a time)';
  else if (s === 'running' && !c.started) text = 'reading the training set and scoring the base model on the held-out examples…';
  else if (s === 'running' && step >= total && total) text = `step ${step} / ${total}: training done; evaluating and generating samples…`;
  else if (s === 'running') {
    text = [`step ${step} / ${total}`, c.started?.resumed && `resumed at step ${c.started.step}`,
      c.last && `loss ${Number(c.last.loss).toFixed(4)}`,
      c.last && `${Math.round(c.last.tokens_per_second)} tokens/s`,
      c.last && `about ${fmtDuration(c.last.eta_seconds)} left`,
      !c.last && 'first step running'].filter(Boolean).join(' · ');
  } else if (s === 'succeeded') text = `finished: ${c.job.result?.steps ?? step} steps${c.started ? ` on ${c.started.train_examples} examples, ${c.started.held_out_examples} held out` : ''}`;
  else text = `${s} at step ${step}${total ? ` / ${total}` : ''}${s === 'cancelled' ? ' · Resume continues from the last checkpoint' : ''}`;
  $('#job-progress').textContent = text;
}

/** The loss per step as an SVG line over the job's total steps. */
function drawLoss(points, total) {
  const W = 560, H = 220, L = 50, R = 14, T = 12, B = 30;
  const pts = [...points.entries()].filter(([, l]) => Number.isFinite(l)).sort((a, b) => a[0] - b[0]);
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', class: 'chart loss',
    'aria-label': 'training loss per step', 'data-testid': 'loss-chart', 'data-points': pts.length });
  svg.append(h('svg:line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }),
    h('svg:line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }));
  if (!pts.length) {
    svg.append(h('svg:text', { x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty', 'data-testid': 'loss-empty' }, 'no training step yet'));
    return svg;
  }
  const maxStep = Math.max(total || 0, pts[pts.length - 1][0], 1);
  let lo = Math.min(...pts.map((p) => p[1]));
  let hi = Math.max(...pts.map((p) => p[1]));
  const pad = Math.max((hi - lo) * 0.08, Math.abs(hi) * 0.02, 1e-3);
  lo -= pad;
  hi += pad;
  const x = (step) => L + (step / maxStep) * (W - L - R);
  const y = (v) => T + ((hi - v) / (hi - lo)) * (H - T - B);
  for (const v of [lo + pad, (lo + hi) / 2, hi - pad]) {
    svg.append(h('svg:line', { x1: L, y1: y(v), x2: W - R, y2: y(v), class: 'gridline' }),
      h('svg:text', { x: L - 6, y: y(v) + 3, 'text-anchor': 'end' }, v.toFixed(3)));
  }
  svg.append(h('svg:text', { x: L, y: H - B + 16, 'text-anchor': 'middle' }, '0'),
    h('svg:text', { x: W - R, y: H - B + 16, 'text-anchor': 'end' }, `step ${maxStep}`),
    h('svg:text', { x: 12, y: T + (H - T - B) / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${T + (H - T - B) / 2})` }, 'loss'));
  svg.append(h('svg:polyline', { points: pts.map(([s, l]) => `${x(s).toFixed(1)},${y(l).toFixed(1)}`).join(' '),
    class: 'line', 'data-testid': 'loss-line' }));
  if (pts.length <= 60) {
    for (const [s, l] of pts) {
      svg.append(h('svg:circle', { cx: x(s), cy: y(l), r: 3, class: 'dot', 'data-testid': 'loss-point' },
        h('svg:title', {}, `step ${s}: loss ${l.toFixed(4)}`)));
    }
  }
  return svg;
}

function renderEval(c) {
  const box = $('#job-eval');
  const before = c.job.result?.before ?? c.before;
  const after = c.job.result?.after ?? c.after;
  if (!before && !after) {
    const done = c.job.status === 'succeeded';
    box.dataset.state = done ? 'none' : 'pending';
    return box.replaceChildren(h('p', { class: 'muted' }, done ? 'No held-out examples (held-out fraction 0): nothing to evaluate.'
      : 'The held-out loss of the base model and of the tuned one appear here as the job runs.'));
  }
  const f = (v, d = 4) => (Number.isFinite(Number(v)) ? Number(v).toFixed(d) : '—');
  const change = (k) => {
    if (!before || !after) return '';
    const d = after[k] - before[k];
    const pct = before[k] ? (d / before[k]) * 100 : null;
    return `${d > 0 ? '+' : ''}${f(d)} (${pct === null ? '—' : `${d > 0 ? '+' : ''}${pct.toFixed(Math.abs(pct) < 1 ? 2 : 1)}%`})`;
  };
  const row = (label, k, d) => h('tr', { 'data-testid': `eval-${k}` }, h('th', {}, label), h('td', { class: 'num', 'data-testid': `eval-${k}-before` }, before ? f(before[k], d) : '—'),
    h('td', { class: 'num', 'data-testid': `eval-${k}-after` }, after ? f(after[k], d) : '…'),
    h('td', { class: `num ${after && before && after[k] < before[k] ? 'good' : ''}` }, change(k)));
  box.dataset.state = after ? 'ready' : 'pending';
  box.replaceChildren(h('table', { class: 'grid eval' },
    h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', { class: 'num' }, 'base'), h('th', { class: 'num' }, 'tuned'), h('th', { class: 'num' }, 'change'))),
    h('tbody', {}, row('loss', 'loss', 4), row('perplexity', 'perplexity', 2))),
  h('p', { class: 'muted note' }, `mean loss per token over ${(after || before).tokens} held-out tokens; lower is better`));
}

function renderSamples(c) {
  const box = $('#job-samples');
  const samples = c.job.result?.samples || [];
  if (!samples.length) {
    box.dataset.state = c.job.status === 'succeeded' ? 'none' : 'pending';
    return box.replaceChildren(h('p', { class: 'muted' }, c.job.status === 'succeeded' ? 'No samples.' : 'Samples appear when the job succeeds.'));
  }
  box.dataset.state = 'ready';
  box.replaceChildren(h('table', { class: 'grid samples' },
    h('thead', {}, h('tr', {}, h('th', {}, 'prompt'), h('th', {}, 'base model'), h('th', {}, 'tuned'))),
    h('tbody', {}, samples.map((x) => h('tr', { 'data-testid': 'job-sample' },
      h('td', { 'data-testid': 'sample-prompt' }, x.prompt), h('td', { 'data-testid': 'sample-base' }, x.base.trimStart()),
      h('td', { 'data-testid': 'sample-tuned' }, x.tuned.trimStart()))))));
}

const tunedModel = (c) => `${c.job.model}:${c.published}`;

function renderPublish(c) {
  const result = c.job.result;
  $('#job-publish-box').hidden = c.job.status !== 'succeeded' || !result;
  if (!result) return;
  const p = result.provenance || {};
  $('#job-provenance').replaceChildren(h('dl', { class: 'kv' },
    h('dt', {}, 'adapter'), h('dd', {}, h('code', { 'data-testid': 'job-adapter' }, result.adapter_id)),
    h('dt', {}, 'training data'), h('dd', {}, `${p.records ?? '?'} records of ${p.datanet ?? c.job.datanet}, root `, h('code', { title: p.records_root }, short(p.records_root, 10))),
    h('dt', {}, 'contributors'), h('dd', {}, (p.contributors || []).length ? (p.contributors || []).map((x, i) =>
      h('span', { class: 'contrib' }, i ? ', ' : '', addr(x.address), ` ${x.tokens} tokens`)) : '—'),
    h('dt', {}, 'training share'), h('dd', {}, `${((p.share_bps ?? 0) / 100).toFixed(2)}% of the adapter's price in every answer (${p.share_bps ?? 0} bps)`)));
  const published = $('#job-published');
  $('#job-publish').hidden = !!c.published;
  published.dataset.state = c.published ? 'yes' : 'no';
  published.replaceChildren(...(c.published ? ['published as ', h('code', { 'data-testid': 'tuned-model' }, tunedModel(c))]
    : [h('span', { class: 'muted' }, 'Publishing adds the adapter to the models answers can use; answers made with it pay these contributors.')]));
  $('#tuned-chat').hidden = !c.published;
}

async function publish() {
  const c = cur;
  if (!c) return;
  await busy($('#job-publish'), async () => {
    const adapter = await api('POST', jobPath(c.id, '/publish'));
    c.published = adapter.id;
    await loadModels(true);
    showInfo(`adapter ${short(adapter.id, 12)} published`);
    if (cur === c) render(c);
  });
}

async function control(action) {
  const c = cur;
  if (!c) return;
  await busy($(`#job-${action}`), async () => {
    c.job = await api('POST', jobPath(c.id, `/${action}`));
    if (action === 'cancel' && c.job.status === 'running') c.cancelRequested = true;
    if (cur !== c) return;
    render(c);
    follow(c);
    await listJobs();
  });
}

async function askTuned(ev) {
  ev.preventDefault();
  const c = cur;
  const question = $('#tuned-chat-input').value.trim();
  if (!c?.published || !question) return;
  const out = $('#tuned-chat-answer');
  const meta = $('#tuned-chat-meta');
  const btn = $('#tuned-chat-submit');
  Object.assign(out, { hidden: false, textContent: '' }).dataset.state = 'streaming';
  meta.textContent = `asking ${short(tunedModel(c), 40)}…`;
  meta.classList.remove('bad');
  btn.disabled = true;
  const started = performance.now();
  try {
    const { answer, final } = await streamChat({ model: tunedModel(c), max_tokens: 96,
      messages: [{ role: 'user', content: question }] }, (sofar) => { out.textContent = sofar; });
    out.textContent = answer;
    out.dataset.state = 'done';
    const u = final?.usage || {};
    meta.textContent = [u.completion_tokens !== undefined && `${u.completion_tokens} tokens`,
      `${((performance.now() - started) / 1000).toFixed(1)} s`, `model ${tunedModel(c)}`].filter(Boolean).join(' · ');
  } catch (e) {
    out.dataset.state = 'error';
    meta.textContent = `failed: ${e.message}`;
    meta.classList.add('bad');
    showError(e);
  } finally { btn.disabled = false; }
}

// ---------- page ----------

/** Stops following a job (another page, another job, or sign-out). */
export function leaveTrain() {
  if (cur?.abort) cur.abort.abort();
  cur = null;
}

export async function trainPage(selected) {
  const may = roleAtLeast('contributor');
  $('#train-form').hidden = !may;
  $('#train-denied').hidden = may;
  const form = may ? fillForm().catch(showError) : Promise.resolve();
  if (!selected) {
    leaveTrain();
    $('#job').hidden = true;
    $('#job-hint').hidden = false;
  } else if (cur?.id !== selected) {
    await selectJob(selected);
  }
  await Promise.all([form, listJobs()]);
}

export function initTrain() {
  initTrainForm();
  $('#jobs-reload').addEventListener('click', listJobs);
  $('#job-cancel').addEventListener('click', () => control('cancel'));
  $('#job-resume').addEventListener('click', () => control('resume'));
  $('#job-publish').addEventListener('click', publish);
  $('#tuned-chat').addEventListener('submit', askTuned);
}
