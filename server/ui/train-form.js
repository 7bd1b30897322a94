// Train, its form: a new fine-tuning job (POST /v1/fine_tuning/jobs) from a base model, a Datanet,
// a format and hyperparameters with defaults for a small CPU; on success the page follows the job.

import { $, state, h, short, enc, showError, showInfo, ApiError, api, loadDatanets, loadModels } from './api.js';

/** PEFT's names of the linear layers an adapter may target, and the default choice. */
const MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const DEFAULT_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];

const num = (id, what, { int = true, min = 0, optional = false } = {}) => {
  const raw = $(id).value.trim();
  if (raw === '' && optional) return null;
  const v = Number(raw);
  if (raw === '' || !Number.isFinite(v) || (int && !Number.isInteger(v)) || v < min) {
    throw new ApiError(`${what} must be ${int ? 'a whole number' : 'a number'}${min > 0 ? ` of at least ${min}` : ' of at least 0'}`, 0);
  }
  return v;
};

/** The request body the form describes (deny_unknown_fields on the server: only known fields). */
function jobRequest() {
  const datanet = $('#train-datanet').value;
  if (!datanet) throw new ApiError('choose a Datanet to train on', 0);
  const type = $('#train-format').value;
  const col = (id) => $(id).value.trim();
  const format = { type };
  if (type === 'completion' && col('#train-column')) format.column = col('#train-column');
  if (type === 'instruction') Object.assign(format, { instruction: col('#train-instruction') || 'instruction', response: col('#train-response') || 'response' });
  if (type === 'chat') format.messages = col('#train-messages') || 'messages';
  const targets = [...document.querySelectorAll('[data-testid=train-target]:checked')].map((i) => i.value);
  if (!targets.length) throw new ApiError('choose at least one target module', 0);
  const hyperparameters = {
    rank: num('#train-rank', 'rank', { min: 1 }),
    alpha: num('#train-alpha', 'alpha', { int: false }),
    use_rslora: $('#train-rslora').checked,
    targets,
    learning_rate: num('#train-learning-rate', 'the learning rate', { int: false }),
    warmup_steps: num('#train-warmup', 'warmup steps'),
    schedule: $('#train-schedule').value,
    epochs: num('#train-epochs', 'epochs', { min: 1 }),
    batch_size: num('#train-batch-size', 'the batch size', { min: 1 }),
    grad_accumulation: num('#train-grad-accumulation', 'gradient accumulation', { min: 1 }),
    max_length: num('#train-max-length', 'max length', { min: 2 }),
    clip_norm: num('#train-clip-norm', 'the clip norm', { int: false, optional: true }),
    weight_decay: num('#train-weight-decay', 'weight decay', { int: false }),
    seed: num('#train-seed', 'the seed'),
    held_out_fraction: num('#train-held-out', 'the held-out fraction', { int: false }),
  };
  const body = { datanet, format, hyperparameters, training_share_bps: num('#train-share-bps', 'the training share') };
  if ($('#train-model').value) body.model = $('#train-model').value;
  if ($('#train-query').value.trim()) body.query = $('#train-query').value.trim();
  return body;
}

async function startJob(ev) {
  ev.preventDefault();
  const status = $('#train-status');
  const set = (s, text) => { status.dataset.state = s; status.textContent = text; };
  let body;
  try { body = jobRequest(); } catch (e) { set('error', ''); return showError(e); }
  $('#train-submit').disabled = true;
  set('submitting', 'reading the training set…');
  try {
    const job = await api('POST', '/v1/fine_tuning/jobs', body);
    set('created', `queued ${job.id}`);
    showInfo(`fine-tuning job ${short(job.id, 12)} queued`);
    location.hash = `#/train/${enc(job.id)}`;
  } catch (e) {
    set('error', 'not started');
    showError(e);
  } finally { $('#train-submit').disabled = false; }
}

function showFormat() {
  const type = $('#train-format').value;
  for (const el of document.querySelectorAll('#train-form [data-format]')) el.hidden = el.dataset.format !== type;
}

function datanetChanged() {
  const d = state.datanets.find((x) => x.name === $('#train-datanet').value);
  $('#train-column').placeholder = d?.text_column ? `${d.text_column} (the Datanet's text column)` : "the Datanet's text column";
}

export async function fillForm() {
  const [models, datanets] = await Promise.all([loadModels(), loadDatanets()]);
  const bases = (models.data || []).map((m) => m.id).filter((id) => !id.includes(':'));
  const msel = $('#train-model');
  const mcur = msel.value;
  msel.replaceChildren(...(bases.length ? bases.map((id) => h('option', { value: id, selected: id === mcur }, id))
    : [h('option', { value: '' }, 'no model loaded: training is off')]));
  const dsel = $('#train-datanet');
  const dcur = dsel.value;
  dsel.replaceChildren(...(datanets.length ? datanets.map((d) => h('option', { value: d.name, selected: d.name === dcur },
    `${d.name} (${d.records ?? 0} records${d.visibility === 'private' ? ', private' : ''})`))
    : [h('option', { value: '' }, 'no Datanet you can read')]));
  datanetChanged();
}

export function initTrainForm() {
  $('#train-targets').replaceChildren(...MODULES.map((m) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: m, 'data-testid': 'train-target', checked: DEFAULT_TARGETS.includes(m) }), ` ${m}`)));
  $('#train-format').addEventListener('change', showFormat);
  $('#train-datanet').addEventListener('change', datanetChanged);
  $('#train-form').addEventListener('submit', startJob);
  showFormat();
}
