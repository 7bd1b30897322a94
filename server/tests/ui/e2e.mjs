// End-to-end test of the web UI (server/ui) against a running `provdb serve`, in Debian's Chromium
// driven by npm playwright-core (which never downloads a browser). scripts/browser-deps.sh installs
// both and prints the NODE_PATH that finds playwright-core:
//
//   PROVDB_URL=http://127.0.0.1:7878 PROVDB_ADMIN_KEY=... PROVDB_READER_KEY=... \
//   PROVDB_UPLOAD_FILE=notes.jsonl SCREENSHOT_DIR=/tmp/ui-shots \
//   NODE_PATH="$(scripts/browser-deps.sh)" node server/tests/ui/e2e.mjs
//
// Optional: CHROMIUM (default /usr/bin/chromium), E2E_CHAT_TIMEOUT_S (default 180),
// E2E_TRAIN_TIMEOUT_S (default 600).
// Steps: sign in with the admin key; create the private Datanet e2e_notes; upload the file; reject a
// record and see it after a reload; ask a streamed, cited question and open a citation; on Train
// start a tiny fine-tuning job on e2e_notes through the form, watch its loss chart and status to
// `succeeded`, see the evaluation and samples, publish the adapter and ask it a question in the
// page's chat box; on Audit see top contributors, verify the ledger, see the fee chart; sign in as
// the reader and check that e2e_notes is invisible to it. A failed check prints what was expected and what was seen, and
// exits 1. Success prints `e2e ok` and the screenshots' paths.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);

class CheckFailed extends Error {}

function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`e2e: set ${name} (see the header of ${path.basename(import.meta.url)})`);
    process.exit(2);
  }
  return v;
}

const BASE = env('PROVDB_URL').replace(/\/+$/, '');
const ADMIN_KEY = env('PROVDB_ADMIN_KEY');
const READER_KEY = env('PROVDB_READER_KEY');
const UPLOAD_FILE = path.resolve(env('PROVDB_UPLOAD_FILE'));
const SHOTS = path.resolve(env('SCREENSHOT_DIR'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHAT_TIMEOUT = Number(process.env.E2E_CHAT_TIMEOUT_S || 180) * 1000;
const TRAIN_TIMEOUT = Number(process.env.E2E_TRAIN_TIMEOUT_S || 600) * 1000;
const DATANET = 'e2e_notes';
const FEE_WEI = '10000000000000000'; // 0.01 ETH: the Datanet's price, so the split pays someone
const T = 30_000; // default wait

let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  console.error(`e2e: cannot load playwright-core (${e.message.split('\n')[0]}); run with NODE_PATH="$(scripts/browser-deps.sh)"`);
  process.exit(2);
}
if (!fs.existsSync(UPLOAD_FILE)) {
  console.error(`e2e: PROVDB_UPLOAD_FILE ${UPLOAD_FILE} does not exist`);
  process.exit(2);
}
fs.mkdirSync(SHOTS, { recursive: true });

const tid = (id) => `[data-testid="${id}"]`;
const shots = [];
let page;
let current = 'start';
const pageErrors = [];

function check(ok, expected, seen) {
  if (!ok) throw new CheckFailed(`${current}: expected ${expected}; saw ${typeof seen === 'string' ? seen : JSON.stringify(seen)}`);
}

async function shot(name) {
  const file = path.join(SHOTS, `${String(shots.length + 1).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
}

/** Fails with the UI's own error messages if it shows any. */
async function noErrors() {
  const errors = await page.locator(`${tid('message-error')} ${tid('message-text')}`).allTextContents();
  check(errors.length === 0, 'no error message in the UI', errors.join(' | '));
  check(pageErrors.length === 0, 'no uncaught page error', pageErrors.join(' | '));
}

/** Waits until the element's data-state leaves the given "busy" states; returns the final state. */
async function settled(selector, busy = ['loading'], timeout = T) {
  const handle = await page.waitForFunction(([sel, b]) => {
    const el = document.querySelector(sel);
    return el && !b.includes(el.dataset.state) && (el.dataset.state || 'none');
  }, [selector, busy], { timeout });
  return handle.jsonValue();
}

async function waitText(selector, timeout = T) {
  await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent || '').trim() !== '', selector, { timeout });
  return (await page.textContent(selector)).trim();
}

async function signIn(key, label) {
  await page.waitForSelector(tid('key-form'), { state: 'visible', timeout: T });
  await page.fill(tid('key-input'), key);
  await page.click(tid('key-submit'));
  const role = await waitText(tid('whoami-role'));
  const address = (await page.textContent(tid('whoami-address'))).trim();
  check(/^0x[0-9a-fA-F]{40}$/.test(address), `a 0x address in the header for the ${label} key`, address);
  return role;
}

async function datanetNames() {
  check(await settled(tid('datanet-list')) === 'ready', 'the Datanet list to load', 'an error');
  return page.$$eval(`${tid('datanet-row')}`, (rows) => rows.map((r) => r.dataset.name));
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.setDefaultTimeout(T);

    current = 'key form';
    await page.goto(`${BASE}/`);
    await page.waitForSelector(tid('key-form'), { state: 'visible' });
    await shot('key');
    const adminRole = await signIn(ADMIN_KEY, 'admin');
    check(adminRole === 'admin', 'role admin for PROVDB_ADMIN_KEY', adminRole);
    await noErrors();

    current = 'create Datanet';
    await page.click(tid('nav-curate'));
    let names = await datanetNames();
    if (names.includes(DATANET)) {
      console.log(`e2e: ${DATANET} already exists (a reused data directory): not created again`);
      await page.click(`${tid('datanet-row')}[data-name="${DATANET}"] ${tid('datanet-open')}`);
    } else {
      await page.click(`${tid('create-box')} summary`);
      await page.fill(tid('create-name'), DATANET);
      await page.fill(tid('create-description'), 'notes uploaded by the UI end-to-end test');
      await page.fill(tid('create-license'), 'CC-BY-4.0');
      await page.check(tid('create-private'));
      await page.click(tid('create-submit'));
    }
    await page.waitForFunction((n) => location.hash === `#/curate/${n}`, DATANET);
    check((await waitText(tid('detail-name'))) === DATANET, `the detail of ${DATANET}`, await page.textContent(tid('detail-name')));
    names = await datanetNames();
    check(names.includes(DATANET), `${DATANET} in the list`, names);
    const visibility = await page.textContent(`${tid('datanet-row')}[data-name="${DATANET}"] td:nth-child(2)`);
    check(visibility.trim() === 'private', `${DATANET} listed as private`, visibility);
    await noErrors();

    current = 'upload';
    await page.setInputFiles(tid('upload-file'), UPLOAD_FILE);
    await page.click(tid('upload-submit'));
    await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('[data-testid="upload-progress"]')?.dataset.state), null, { timeout: 120_000 });
    await noErrors();
    const accepted = Number(await waitText(tid('upload-accepted')));
    const rejected = Number(await page.textContent(tid('upload-rejected')));
    check(accepted > 0, 'a positive accepted count after the upload', `accepted ${accepted}, rejected ${rejected}`);
    check(await settled(tid('records-table')) === 'ready', 'the records table to load', 'an error');
    const rows = await page.locator(tid('record-row')).count();
    check(rows > 0, 'records in the table after the upload', `${rows} rows`);
    await shot('curate-upload');

    current = 'record status';
    const first = page.locator(`${tid('record-row')}:not([data-status="rejected"])`).first();
    check(await first.count() === 1, 'a record not rejected yet', 'every record rejected');
    const recordId = await first.getAttribute('data-record-id');
    const patched = page.waitForResponse((r) => r.url().includes('/v1/records/') && r.request().method() === 'PATCH');
    await first.locator(tid('record-status')).selectOption('rejected');
    const patchRes = await patched;
    check(patchRes.ok(), 'PATCH /v1/records/{id} to succeed', `HTTP ${patchRes.status()} ${await patchRes.text()}`);
    await noErrors();
    await page.reload();
    check(await settled(tid('records-table')) === 'ready', 'the records table to load after a reload', 'an error');
    const row = page.locator(`${tid('record-row')}[data-record-id="${recordId}"]`);
    check(await row.count() === 1, `record ${recordId} listed after the reload`, `${await row.count()} rows`);
    const status = await row.locator(tid('record-status')).evaluate((el) => el.value ?? el.textContent);
    check(status === 'rejected', `record ${recordId} shown as rejected after the reload`, status);
    await shot('curate-status');

    current = 'ask';
    await page.click(tid('nav-ask'));
    await page.waitForSelector(`${tid('ask-datanets')}[data-state="ready"]`);
    const options = await page.$$eval(tid('ask-datanet'), (els) => els.map((e) => e.value));
    const datanet = options.includes('cranfield') ? 'cranfield' : DATANET;
    check(options.includes(datanet), `${datanet} among the Ask page's Datanets`, options);
    await page.check(`${tid('ask-datanet')}[value="${datanet}"]`);
    // The owner prices the Datanet (the admin here, whose account the harness credited); the
    // ask caps its fee at that price.
    const priced = await page.evaluate(async ([url, key, name, wei]) => {
      const r = await fetch(`${url}/v1/prices/datanets/${name}`, { method: 'PUT',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ per_answer_wei: wei }) });
      return `${r.status} ${await r.text()}`;
    }, [BASE, ADMIN_KEY, datanet, FEE_WEI]);
    check(priced.startsWith('200'), `the price of ${datanet} to be set`, priced);
    await page.fill(tid('ask-max-fee'), FEE_WEI);
    // Leave-one-out measures which sources the answer used, so there is a source to open.
    await page.selectOption(tid('ask-attribution'), 'loo');
    const question = datanet === 'cranfield' ? 'What is a boundary layer?' : 'What do these notes say?';
    await page.fill(tid('ask-question'), question);
    const finished = page.waitForEvent('requestfinished', { predicate: (r) => r.url().includes('/v1/chat/completions'), timeout: CHAT_TIMEOUT });
    finished.catch(() => {}); // awaited below; a failure shows through `failed` instead
    const failed = page.waitForEvent('requestfailed', { predicate: (r) => r.url().includes('/v1/chat/completions'), timeout: CHAT_TIMEOUT }).catch(() => null);
    await page.click(tid('ask-submit'));
    const answerSel = `${tid('turn')}:first-child ${tid('answer-text')}`;
    const started = Date.now();
    await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent || '').trim() !== ''
      || document.querySelector('[data-testid="ask-status"]')?.dataset.state === 'error', answerSel, { timeout: CHAT_TIMEOUT });
    console.log(`e2e: first answer text after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const chatState = await settled(tid('ask-status'), ['streaming', 'idle'], CHAT_TIMEOUT);
    await noErrors();
    check(chatState === 'done', 'the streamed answer to finish', chatState);
    const req = await Promise.race([finished, failed]);
    check(req && !req.failure(), 'the chat request to finish', req ? req.failure()?.errorText : 'no event');
    const answer = (await page.textContent(answerSel)).trim();
    check(answer.length > 0, 'a non-empty answer', JSON.stringify(answer));
    console.log(`e2e: answer in ${((Date.now() - started) / 1000).toFixed(1)} s: ${answer.slice(0, 120).replace(/\s+/g, ' ')}`);
    const splitRows = await page.locator(`${tid('turn')}:first-child ${tid('split-row')}`).count();
    check(splitRows > 0, `who was paid (split rows) for a fee of ${FEE_WEI} wei`, `${splitRows} rows`);
    await shot('ask-answer');
    const cites = page.locator(`${tid('turn')}:first-child ${tid('citation-link')}`);
    const sources = page.locator(`${tid('turn')}:first-child ${tid('source-link')}`);
    const link = (await cites.count()) > 0 ? cites.first() : ((await sources.count()) > 0 ? sources.first() : null);
    check(link !== null, 'a source to open (leave-one-out attribution names the sources used)', 'none');
    await link.click();
    check(await settled(tid('record-panel'), ['loading', 'closed']) === 'ready', 'the cited record to load', 'an error');
    const contributor = (await page.textContent(tid('record-contributor'))).trim();
    check(/^0x[0-9a-fA-F]{40}$/.test(contributor), 'a 0x contributor address in the record panel', contributor);
    await shot('ask-record');
    await page.click(tid('record-close'));
    await noErrors();

    current = 'train';
    await page.click(tid('nav-train'));
    await page.waitForSelector(tid('train-form'), { state: 'visible' });
    check(await settled(tid('job-list')) === 'ready', 'the jobs list to load', 'an error');
    await page.waitForFunction((n) => [...document.querySelectorAll('[data-testid="train-datanet"] option')]
      .some((o) => o.value === n), DATANET);
    const bases = await page.$$eval(`${tid('train-model')} option`, (els) => els.map((e) => e.value));
    check(bases.length > 0 && bases.every((b) => b && !b.includes(':')), 'the base models (no adapters) to train', bases);
    const defaults = await page.evaluate(() => Object.fromEntries(['rank', 'alpha', 'learning-rate', 'epochs', 'batch-size',
      'max-length', 'seed', 'held-out', 'share-bps'].map((k) => [k, document.querySelector(`[data-testid="train-${k}"]`).value])));
    const defaultTargets = await page.$$eval(`${tid('train-target')}:checked`, (els) => els.map((e) => e.value).join(' '));
    check(defaults.rank === '8' && defaults['batch-size'] === '4' && defaults['share-bps'] === '1000'
      && defaultTargets === 'q_proj k_proj v_proj o_proj', 'the small-CPU defaults in the form', { ...defaults, targets: defaultTargets });
    await page.selectOption(tid('train-datanet'), DATANET);
    await page.selectOption(tid('train-format'), 'completion');
    await page.fill(tid('train-column'), 'text');
    await page.fill(tid('train-rank'), '2');
    for (const box of await page.locator(tid('train-target')).all()) {
      await box.setChecked((await box.getAttribute('value')) === 'q_proj');
    }
    await page.fill(tid('train-batch-size'), '1');
    await page.fill(tid('train-max-length'), '64');
    await page.fill(tid('train-epochs'), '1');
    await page.fill(tid('train-held-out'), '0.25');
    await page.click(`${tid('train-advanced')} summary`);
    await page.fill(tid('train-warmup'), '0');
    const created = page.waitForResponse((r) => r.url().endsWith('/v1/fine_tuning/jobs') && r.request().method() === 'POST');
    await page.click(tid('train-submit'));
    const createRes = await created;
    check(createRes.status() === 201, 'POST /v1/fine_tuning/jobs to answer 201', `HTTP ${createRes.status()} ${await createRes.text()}`);
    const job = await createRes.json();
    check(job.hyperparameters?.rank === 2 && job.hyperparameters?.targets?.join() === 'q_proj' && job.hyperparameters?.batch_size === 1
      && job.hyperparameters?.max_length === 64 && job.hyperparameters?.held_out_fraction === 0.25, 'the form\'s hyperparameters in the job', job.hyperparameters);
    await page.waitForFunction((id) => location.hash === `#/train/${id}`, job.id);
    check((await waitText(tid('job-id'))) === job.id, `the detail of job ${job.id}`, await page.textContent(tid('job-id')));
    await noErrors();
    const trainStart = Date.now();
    const statusOf = () => page.$eval(tid('job-status'), (el) => el.dataset.state);
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="loss-chart"]')?.dataset.points || 0) >= 1
      || ['failed', 'cancelled'].includes(document.querySelector('[data-testid="job-status"]')?.dataset.state), null, { timeout: TRAIN_TIMEOUT });
    console.log(`e2e: first loss point after ${((Date.now() - trainStart) / 1000).toFixed(1)} s, job ${await statusOf()}: `
      + (await page.textContent(tid('job-progress'))).trim());
    const final = await settled(tid('job-status'), ['loading', 'queued', 'running'], TRAIN_TIMEOUT);
    const jobError = (await page.textContent(tid('job-error'))).trim();
    check(final === 'succeeded', 'the job to succeed', `${final}${jobError ? `: ${jobError}` : ''}`);
    console.log(`e2e: job ${job.id} succeeded after ${((Date.now() - trainStart) / 1000).toFixed(1)} s`);
    const points = Number(await page.getAttribute(tid('loss-chart'), 'data-points'));
    check(points >= 1 && await page.locator(tid('loss-line')).count() === 1, 'a loss chart with at least one point', `${points} points`);
    check(await settled(tid('job-eval'), ['pending']) === 'ready', 'the held-out evaluation', await page.textContent(tid('job-eval')));
    const evalText = await page.evaluate(() => ['loss-before', 'loss-after', 'perplexity-before', 'perplexity-after']
      .map((k) => document.querySelector(`[data-testid="eval-${k}"]`)?.textContent.trim()));
    check(evalText.every((t) => Number.isFinite(Number(t))), 'held-out loss and perplexity before and after as numbers', evalText);
    console.log(`e2e: held-out loss ${evalText[0]} → ${evalText[1]}, perplexity ${evalText[2]} → ${evalText[3]}`);
    check(await settled(tid('job-samples'), ['pending']) === 'ready', 'samples', await page.textContent(tid('job-samples')));
    const samples = await page.locator(tid('job-sample')).count();
    check(samples >= 1, 'at least one side-by-side sample', `${samples}`);
    check((await page.textContent(`${tid('job-sample')} ${tid('sample-prompt')}`)).trim() !== '', 'a sample prompt', 'an empty one');
    check(await page.locator(`${tid('job-row')}[data-id="${job.id}"][data-status="succeeded"]`).count() === 1,
      'the job listed as succeeded', await page.$$eval(tid('job-row'), (rows) => rows.map((r) => `${r.dataset.id} ${r.dataset.status}`)));
    await noErrors();
    await shot('train-succeeded');

    current = 'publish';
    const adapterId = (await page.textContent(tid('job-adapter'))).trim();
    await page.click(tid('job-publish'));
    await page.waitForSelector(`${tid('job-published')}[data-state="yes"]`);
    await noErrors();
    const tuned = (await page.textContent(tid('tuned-model'))).trim();
    check(tuned === `${job.model}:${adapterId}`, `the published model ${job.model}:${adapterId}`, tuned);
    await page.fill(tid('tuned-chat-input'), 'What happens to a boundary layer?');
    await page.click(tid('tuned-chat-submit'));
    const chatStarted = Date.now();
    const tunedState = await settled(tid('tuned-chat-answer'), ['idle', 'streaming'], CHAT_TIMEOUT);
    await noErrors();
    check(tunedState === 'done', 'the tuned model\'s answer to finish', tunedState);
    const tunedAnswer = (await page.textContent(tid('tuned-chat-answer'))).trim();
    check(tunedAnswer.length > 0, 'a non-empty answer from the published adapter', JSON.stringify(tunedAnswer));
    console.log(`e2e: ${tuned.slice(0, 40)}… answered in ${((Date.now() - chatStarted) / 1000).toFixed(1)} s: ${tunedAnswer.slice(0, 120).replace(/\s+/g, ' ')}`);
    await shot('train-published');

    current = 'audit';
    await page.click(tid('nav-audit'));
    check(await settled(tid('top-contributors')) === 'ready', 'the top-contributors table to load', 'an error');
    const top = await page.locator(tid('top-row')).count();
    check(top > 0, 'at least one paid contributor after a paid answer', `${top} rows`);
    await page.click(tid('verify-ledger'));
    const verified = await settled(tid('verify-result'), ['idle', 'loading']);
    const verifyText = (await page.textContent(tid('verify-result'))).trim();
    check(verified === 'ok' && /\bok\b/.test(verifyText), '"ok" from Verify ledger', verifyText || verified);
    check(await page.locator(`svg${tid('fees-chart')}`).count() === 1, 'the fees-per-epoch chart (svg)', 'no svg');
    const chain = await settled(tid('chain-status'));
    check(chain !== 'error', 'the chain status to load', chain);
    check(await settled(tid('ledger-entries')) === 'ready', 'the ledger entries to load', 'an error');
    await noErrors();
    await shot('audit');

    current = 'reader';
    await page.click(tid('sign-out'));
    const readerRole = await signIn(READER_KEY, 'reader');
    check(readerRole === 'reader', 'role reader for PROVDB_READER_KEY', readerRole);
    await page.click(tid('nav-curate'));
    names = await datanetNames();
    check(!names.includes(DATANET), `the private ${DATANET} not listed for the reader`, names);
    await noErrors();
    await shot('reader-curate');
    await page.goto(`${BASE}/#/curate/${DATANET}`);
    await page.waitForSelector(tid('message-error'));
    const msg = (await page.textContent(`${tid('message-error')} ${tid('message-text')}`)).trim();
    check(/404/.test(msg), `a 404 for ${DATANET} opened directly by the reader`, msg);
  } catch (e) {
    if (page) {
      try { await shot(`failed-${current.replace(/\W+/g, '-')}`); } catch { /* browser gone */ }
    }
    throw e;
  } finally {
    await browser.close();
  }
}

try {
  await main();
  console.log(`e2e ok\nscreenshots:\n${shots.map((s) => `  ${s}`).join('\n')}`);
} catch (e) {
  console.error(e instanceof CheckFailed ? `e2e FAILED: ${e.message}` : `e2e FAILED in ${current}: ${e.stack || e}`);
  if (shots.length) console.error(`screenshots:\n${shots.map((s) => `  ${s}`).join('\n')}`);
  process.exit(1);
}
