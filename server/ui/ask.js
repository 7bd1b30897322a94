// Ask: a question answered by the model, plain or from Datanets with numbered sources, streamed;
// who was paid; a cited record in a panel.

import { $, h, short, addr, eth, fmtTime, showError, api, enc, loadDatanets, loadModels, streamChat } from './api.js';

export async function askPage() {
  const box = $('#ask-datanets');
  const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  try {
    const [models, datanets] = await Promise.all([loadModels(), loadDatanets()]);
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

function newTurn(question) {
  const text = h('div', { class: 'answer', 'data-testid': 'answer-text' });
  const turn = h('article', { class: 'turn card', 'data-testid': 'turn', 'data-state': 'streaming' },
    h('p', { class: 'question' }, h('strong', {}, 'Q: '), question), text,
    h('div', { class: 'sources', 'data-testid': 'sources' }), h('div', { class: 'split', 'data-testid': 'split' }), h('div', { class: 'training', 'data-testid': 'training' }),
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

function renderTraining(box, attributions) {
  const shown = attributions.filter((a) => a.records.length);
  if (!shown.length) return box.replaceChildren();
  box.replaceChildren(h('h4', {}, 'Training records that shaped it'),
    ...shown.map((a) => h('table', { class: 'grid', 'data-testid': 'training-table' },
      h('caption', {}, `adapter ${short(a.adapter, 12)} · paid by ${a.method}`),
      h('thead', {}, h('tr', {}, h('th', {}, 'record'), h('th', {}, 'contributor'), h('th', { class: 'num' }, 'influence'))),
      h('tbody', {}, a.records.map((r) => h('tr', { 'data-testid': 'training-row' },
        h('td', {}, h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); openRecord(r.record_id); } }, short(r.record_id, 12))),
        h('td', {}, h('code', {}, r.contributor)), h('td', { class: 'num' }, r.score.toFixed(2))))))));
}

async function ask(ev) {
  ev.preventDefault();
  const question = $('#ask-question').value.trim();
  if (!question) return;
  const maxFee = $('#ask-max-fee').value.trim();
  if (maxFee && !/^\d+$/.test(maxFee)) return showError('the max fee is a whole number of wei');
  const datanets = [...document.querySelectorAll('[data-testid=ask-datanet]:checked')].map((i) => i.value);
  const body = { model: $('#ask-model').value, messages: [{ role: 'user', content: question }] };
  const maxTokens = Number($('#ask-max-tokens').value);
  if (maxTokens > 0) body.max_tokens = maxTokens;
  if (datanets.length) Object.assign(body, { datanets, attribution: $('#ask-attribution').value });
  if (datanets.length && maxFee) body.max_fee_wei = maxFee;
  const status = $('#ask-status');
  const btn = $('#ask-submit');
  const { turn, text } = newTurn(question);
  const setState = (s, label) => { status.dataset.state = s; status.textContent = label; turn.dataset.state = s; };
  btn.disabled = true;
  setState('streaming', 'waiting for the model…');
  const started = performance.now();
  try {
    const { answer, final } = await streamChat(body, (sofar) => {
      text.textContent = sofar;
      setState('streaming', 'streaming…');
    });
    const citations = final?.citations || [];
    renderAnswer(text, answer, citations);
    if (datanets.length) renderSources($('.sources', turn), citations);
    renderSplit($('.split', turn), final?.split || []);
    renderTraining($('.training', turn), final?.training_attribution || []);
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

export function initAsk() {
  $('#ask-form').addEventListener('submit', ask);
  $('#ask-question').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) $('#ask-form').requestSubmit();
  });
  $('#record-close').addEventListener('click', closeRecord);
  $('#record-panel').addEventListener('click', (ev) => { if (ev.target.id === 'record-panel') closeRecord(); });
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') closeRecord(); });
}
