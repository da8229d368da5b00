// The console's shell: sign-in, the hash route (#/p/<project>/b/<branch>/<view>),
// the projects list and the branch tree, live updates, messages. The branch
// views live in views_*.js. Everything goes through the public REST API (api.js).
import { ApiError, Session, branchPath, encodeName } from './api.js';
import { h, clear, bytes, duration, tabs, field } from './ui.js';
import { renderOverview } from './views_branch.js';
import { renderTimeline } from './views_timeline.js';
import { renderSql } from './views_sql.js';
import { renderDiff } from './views_diff.js';
import { renderPromote } from './views_promote.js';

const kPollMs = 2000;
const kViews = [['overview', 'Overview'], ['timeline', 'Timeline'], ['sql', 'SQL'],
                ['diff', 'Diff'], ['promote', 'Promote']];

const session = new Session();
const main = document.getElementById('main');
const alertBox = document.getElementById('alert');
const notice = document.getElementById('notice');
const sessionBox = document.getElementById('session');

// What the page shows; the hash is the source of truth for the route part.
const state = {
  projects: [],
  project: null,
  branch: null,
  view: 'overview',
  query: new URLSearchParams(),
  branches: [],
  computes: new Map(),
  live: true,
  pollTimer: null,
  liveHooks: new Set(),  // refreshers of the shown view, called on each poll
};

// --- messages -------------------------------------------------------------------

export function fail(error) {
  const e = error instanceof ApiError ? error : new ApiError(0, 'error', String(error && error.message || error));
  clear(alertBox, h('strong', {}, 'Error: '), e.message, e.code ? h('code', { class: 'code' }, e.code) : null,
        h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss the error',
                      onclick: () => { alertBox.hidden = true; } }, '×'));
  alertBox.hidden = false;
}

// A success message; actions: [[label, fn]] buttons (e.g. Undo).
export function notify(message, actions = []) {
  alertBox.hidden = true;
  clear(notice, h('span', {}, message),
        actions.map(([label, fn]) => h('button', { type: 'button', onclick: async () => {
          try { await fn(); } catch (e) { fail(e); }
        } }, label)));
}

// Runs fn, reporting its error; returns its value or undefined.
export async function attempt(fn) {
  try {
    alertBox.hidden = true;
    return await fn();
  } catch (e) {
    fail(e);
    return undefined;
  }
}

// --- routing ----------------------------------------------------------------------

export function href(project, branch, view = 'overview', query) {
  let out = '#/';
  if (project) out += `p/${encodeName(project)}`;
  if (project && branch) out += `/b/${encodeName(branch)}/${view}`;
  if (query) out += `?${new URLSearchParams(query)}`;
  return out;
}

export function go(project, branch, view, query) {
  const target = href(project, branch, view, query);
  if (location.hash === target) route(); else location.hash = target;
}

function parseHash() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
  const out = { project: null, branch: null, view: 'overview', query: new URLSearchParams(query || '') };
  if (parts[0] === 'p' && parts[1]) out.project = parts[1];
  if (parts[2] === 'b' && parts[3]) out.branch = parts[3];
  if (parts[4] && kViews.some(([id]) => id === parts[4])) out.view = parts[4];
  return out;
}

// --- sign-in ----------------------------------------------------------------------

function renderSignIn(message) {
  stopPolling();
  clear(sessionBox);
  const id = h('input', { name: 'client_id', autocomplete: 'username', required: true, spellcheck: 'false' });
  const secret = h('input', { name: 'client_secret', type: 'password', autocomplete: 'current-password', required: true });
  const token = h('textarea', { name: 'token', rows: '3', required: true, spellcheck: 'false' });
  const error = h('p', { class: 'error', role: 'alert', id: 'signin-error' }, message || '');
  const busy = (form, on) => form.querySelectorAll('button').forEach((b) => { b.disabled = on; });
  const submit = (fn) => async (e) => {
    e.preventDefault();
    const form = e.target;
    busy(form, true);
    error.textContent = '';
    try {
      await fn();
      route();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      busy(form, false);
    }
  };
  clear(main,
    h('section', { class: 'signin', 'aria-labelledby': 'signin-h' },
      h('h2', { id: 'signin-h' }, 'Sign in'),
      error,
      h('form', { id: 'signin-client', onsubmit: submit(() => session.signInWithClient(id.value.trim(), secret.value)) },
        h('h3', {}, 'With an OAuth client'),
        field('Client id', id), field('Client secret', secret),
        h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
      h('form', { id: 'signin-token', onsubmit: submit(() => session.signInWithToken(token.value)) },
        h('h3', {}, 'With an access token'),
        field('Access token', token, 'Used until it expires; never stored.'),
        h('button', { type: 'submit' }, 'Use token')),
      h('p', { class: 'muted' },
        'The token lives in this tab\'s memory only: reloading the page signs you out. ',
        'A local server\'s admin client is in ', h('code', {}, '<data_dir>/admin-credentials.json'),
        ' (see docs/console.md).')));
  id.focus();
}

session.onSignedOut = (message) => renderSignIn(message);

function renderSessionBox() {
  const live = h('input', { type: 'checkbox', id: 'live', checked: state.live, onchange: (e) => {
    state.live = e.target.checked;
    if (state.live) startPolling(); else stopPolling();
  } });
  clear(sessionBox,
    h('label', { class: 'live', for: 'live' }, live, ' Live'),
    h('span', { class: 'muted', title: 'Signed in as' }, session.label),
    h('button', { type: 'button', onclick: async () => { await session.signOut(); renderSignIn('Signed out.'); } }, 'Sign out'));
}

// --- projects and the branch tree -------------------------------------------------

async function loadProjects() {
  const r = await session.call('GET', '/v1/projects');
  state.projects = r.projects;
}

// The project's branches and their computes' states (one small call per
// branch, as the API has no list of them; a live poll asks for the shown
// branch's only, and keeps the others' from the last page load).
export async function loadBranches(everyCompute = true) {
  if (!state.project) { state.branches = []; return; }
  const r = await session.call('GET', `/v1/projects/${encodeName(state.project)}/branches`);
  state.branches = r.branches;
  const names = r.branches.map((b) => b.name).filter((n) => everyCompute || n === state.branch);
  const computes = await Promise.all(names.map((n) =>
    session.call('GET', branchPath(state.project, n, '/compute')).catch(() => null)));
  const known = everyCompute ? new Map() : state.computes;
  names.forEach((n, i) => known.set(n, computes[i]));
  state.computes = known;
}

function ttlText(b) {
  if (!b.expires_at) return null;
  return `TTL ${duration(Math.round((Date.parse(b.expires_at) - Date.now()) / 1000))}`;
}

function renderTree() {
  const byParent = new Map();
  for (const b of state.branches) {
    const key = b.parent && state.branches.some((p) => p.name === b.parent) ? b.parent : '';
    if (!byParent.has(key)) byParent.set(key, []);
    byParent.get(key).push(b);
  }
  const node = (b) => {
    const compute = state.computes.get(b.name);
    const children = byParent.get(b.name) || [];
    const current = b.name === state.branch;
    return h('li', {},
      h('a', { href: href(state.project, b.name, state.branch ? state.view : 'overview'), class: current ? 'branch current' : 'branch',
               'aria-current': current ? 'page' : null, dataset: { branch: b.name } },
        h('span', { class: 'name' }, b.name),
        h('span', { class: 'badges' },
          h('span', { class: 'badge', title: 'head LSN' }, `@${b.head_lsn}`),
          b.protected ? h('span', { class: 'badge protected' }, 'protected') : null,
          ttlText(b) ? h('span', { class: 'badge ttl' }, ttlText(b)) : null,
          compute ? h('span', { class: `badge compute-${compute.state}` }, compute.state) : null,
          h('span', { class: 'badge size', title: 'logical / exclusive size' },
            `${bytes(b.logical_bytes)} / ${bytes(b.exclusive_bytes)}`))),
      children.length ? h('ul', { 'aria-label': `Children of ${b.name}` }, children.map(node)) : null);
  };
  // Nested lists of links (Tab moves through them), not an ARIA tree widget.
  return h('ul', { class: 'tree', 'aria-label': `Branches of ${state.project}` },
           (byParent.get('') || []).map(node));
}

function redrawTree() {
  const tree = document.getElementById('tree');
  if (tree) clear(tree, renderTree());
}

function renderProjectNav() {
  const name = h('input', { name: 'project', required: true, spellcheck: 'false', placeholder: 'new project' });
  return h('nav', { class: 'side', 'aria-label': 'Projects and branches' },
    h('h2', {}, 'Projects'),
    h('ul', { class: 'projects' }, state.projects.map((p) =>
      h('li', {}, h('a', { href: href(p.name), class: p.name === state.project ? 'current' : '',
                           'aria-current': p.name === state.project ? 'page' : null }, p.name)))),
    h('form', { class: 'inline', id: 'new-project', onsubmit: async (e) => {
      e.preventDefault();
      const created = await attempt(() => session.call('POST', '/v1/projects', { name: name.value.trim() }));
      if (created) { notify(`Project ${created.name} created.`); go(created.name); }
    } }, h('label', { class: 'sr', for: 'new-project-name' }, 'New project name'),
       Object.assign(name, { id: 'new-project-name' }), h('button', { type: 'submit' }, 'Create')),
    state.project ? [h('h2', {}, `Branches of ${state.project}`), h('div', { id: 'tree' }, renderTree())] : null);
}

// --- the page ---------------------------------------------------------------------

function context() {
  const ticket = routing;
  return {
    session, project: state.project, branch: state.branch, query: state.query,
    branches: state.branches,
    // Read at each use: live polls replace them.
    get info() { return state.branches.find((b) => b.name === state.branch); },
    get compute() { return state.computes.get(state.branch); },
    go, href, notify, fail, attempt,
    // Re-reads the branches (tree, badges); refresh also redraws the view.
    reload: async () => { await attempt(loadBranches); redrawTree(); },
    refresh: async () => { await attempt(loadBranches); route(true); },
    // fn is called on every live poll while this view is shown (not once
    // another navigation started: its view has hooks of its own).
    onLive: (fn) => { if (ticket === routing) state.liveHooks.add(fn); },
  };
}

let routing = 0;
async function route(keepData = false) {
  if (!session.signedIn) return renderSignIn();
  const ticket = ++routing;
  const next = parseHash();
  const projectChanged = next.project !== state.project;
  Object.assign(state, next);
  state.liveHooks.clear();
  const unknownBranch = state.branch && !state.branches.some((b) => b.name === state.branch);
  try {
    if (!keepData || projectChanged || unknownBranch) {
      await loadProjects();
      await loadBranches();
    }
  } catch (e) {
    if (!session.signedIn) return undefined;
    if (projectChanged) { state.branches = []; state.computes = new Map(); }
    fail(e);
  }
  if (ticket !== routing) return undefined;  // a newer navigation won
  if (state.project && !state.branch && state.branches.length) {
    const def = state.branches.find((b) => b.default) || state.branches[0];
    return go(state.project, def.name, 'overview');
  }
  renderSessionBox();
  const panel = h('section', { id: 'tabpanel', role: 'tabpanel', class: 'panel' });
  let content;
  if (!state.project) {
    content = h('section', { class: 'panel' }, h('h2', {}, 'Projects'),
      state.projects.length ? h('p', {}, 'Choose a project on the left.') : h('p', {}, 'No project yet: create one on the left.'));
  } else if (!state.branch) {
    content = h('section', { class: 'panel' }, h('h2', {}, state.project),
      h('p', {}, `Project ${state.project} could not be read (see the message above), or has no branch.`));
  } else if (!state.branches.some((b) => b.name === state.branch)) {
    content = h('section', { class: 'panel' }, h('h2', {}, 'No such branch'),
      h('p', {}, `Branch ${state.branch} is not in project ${state.project}.`));
  } else {
    content = h('div', { class: 'branch-view' },
      h('h2', { class: 'branch-title' }, h('span', { class: 'muted' }, `${state.project} / `), state.branch),
      tabs(kViews, state.view, (id) => go(state.project, state.branch, id)),
      panel);
    panel.setAttribute('aria-labelledby', `tab-${state.view}`);
  }
  // Keyboard users keep their place: the element focused before the redraw
  // (a tab, a button with an id) is focused again.
  const focused = document.activeElement && main.contains(document.activeElement) ? document.activeElement.id : '';
  clear(main, h('div', { class: 'layout' }, renderProjectNav(), content));
  if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
  if (content.contains(panel)) {
    const ctx = context();
    const views = { overview: renderOverview, timeline: renderTimeline, sql: renderSql, diff: renderDiff, promote: renderPromote };
    await attempt(() => views[state.view](ctx, panel));
  }
  startPolling();
  return undefined;
}

// --- live updates -----------------------------------------------------------------

async function poll() {
  if (!session.signedIn || !state.live || document.hidden) return undefined;
  try {
    if (state.project) {
      const snapshot = () => JSON.stringify([state.branches, [...state.computes]]);
      const before = snapshot();
      await loadBranches(false);
      if (snapshot() !== before) redrawTree();
      // The shown branch was deleted (or renamed) meanwhile: say so.
      if (state.branch && !state.branches.some((b) => b.name === state.branch)) return route(true);
    }
    for (const hook of state.liveHooks) await hook();
  } catch (e) {
    if (session.signedIn && e.status !== 429) fail(e);
  }
  return undefined;
}

function startPolling() {
  stopPolling();
  if (!state.live) return;
  const loop = async () => {
    await poll();
    if (state.live && session.signedIn) state.pollTimer = setTimeout(loop, kPollMs);
  };
  state.pollTimer = setTimeout(loop, kPollMs);
}

function stopPolling() {
  clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

// Moving between views of a project reuses what was loaded (live polls keep
// it fresh); another project, or a branch not known yet, loads again.
window.addEventListener('hashchange', () => route(true));
window.addEventListener('unhandledrejection', (e) => { fail(e.reason); e.preventDefault(); });
route();
