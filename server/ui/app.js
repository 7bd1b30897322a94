// provdb web UI: plain ES modules, no build step. Talks only to the routes of docs/http-api.md.
// Pages (hash routes): #/curate[/NAME], #/ask, #/train[/JOB_ID], #/audit; a key prompt while no
// key is stored. This module is the shell: sign-in, header, routing; each page has its module.

import { KEY, $, state, api, showError } from './api.js';
import { curatePage, initCurate } from './curate.js';
import { askPage, initAsk } from './ask.js';
import { trainPage, leaveTrain, initTrain } from './train.js';
import { auditPage, initAudit } from './audit.js';

const PAGES = ['curate', 'ask', 'train', 'audit'];

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
  const name = state.me ? (PAGES.includes(page) ? page : 'curate') : 'key';
  for (const p of document.querySelectorAll('.page')) p.hidden = p.id !== `page-${name}`;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : null;
  if (name !== 'train') leaveTrain();
  if (name === 'key') $('#key-input').focus();
  if (name === 'curate') await curatePage(arg);
  if (name === 'ask') await askPage();
  if (name === 'train') await trainPage(arg);
  if (name === 'audit') await auditPage();
}

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
  initAsk();
  initTrain();
  initAudit();
  window.addEventListener('hashchange', route);
  if (!new RegExp(`^#/(${PAGES.join('|')})\\b`).test(location.hash)) history.replaceState(null, '', '#/curate');
  route();
}

init();
