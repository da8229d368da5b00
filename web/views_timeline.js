// The checkpoint timeline of a branch: its reflog (GET .../checkpoints),
// newest first. Every action with its time, client, SQL summary, rows
// changed and labels; rolled-back states stay listed, marked as such; one
// click rolls back to any state or undoes a move; fork a branch from any
// checkpoint; pick two to compare. Live: the first page is re-read on every
// poll, and redrawn only when it changed.
import { branchPath } from './api.js';
import { h, clear, ago, time } from './ui.js';
import { childForm, undoMove } from './views_branch.js';

const kPage = 50;

function kindText(c) {
  switch (c.kind) {
    case 'create': return c.target_lsn !== undefined ? `created at LSN ${c.target_lsn}` : 'created';
    case 'rollback': return `rolled back to LSN ${c.target_lsn}`;
    case 'reset': return `reset from parent to LSN ${c.target_lsn}`;
    case 'promote': return `promoted from ${c.source || '?'} (LSN ${c.target_lsn})`;
    default: return c.summary || c.kind;
  }
}

export async function renderTimeline(ctx, panel) {
  const selected = new Set();  // LSNs picked for compare
  let pages = [];              // checkpoints, older pages appended
  let next = null;
  let shown = '';
  const list = h('div', { id: 'timeline' });
  const forkBox = h('div', { id: 'fork-box' });
  const compareBtn = h('button', { type: 'button', id: 'compare', disabled: true, onclick: () => {
    const [a, b] = [...selected].sort((x, y) => x - y);
    ctx.go(ctx.project, ctx.branch, 'diff', { base: ctx.branch, base_lsn: a, lsn: b, kind: 'schema' });
  } }, 'Compare the two selected');
  const head = () => ctx.info.head_lsn;

  const rollback = async (lsn) => {
    const r = await ctx.attempt(() => ctx.session.call('POST', branchPath(ctx.project, ctx.branch, '/rollback'), { to: { lsn } }));
    if (!r) return;
    await ctx.refresh();
    ctx.notify(`Rolled back to LSN ${r.target_lsn} (the head was LSN ${r.previous_head_lsn}).`,
               [['Undo rollback', undoMove(ctx, ctx.branch, r.previous_head_lsn)]]);
  };

  const label = async (lsn) => {
    const input = h('input', { 'aria-label': `Label for LSN ${lsn}`, required: true });
    const form = h('form', { class: 'inline card', onsubmit: async (e) => {
      e.preventDefault();
      const r = await ctx.attempt(() => ctx.session.call('POST', branchPath(ctx.project, ctx.branch, '/checkpoints'), { label: input.value.trim(), lsn }));
      if (r) { ctx.notify(`LSN ${lsn} labelled ${input.value.trim()}.`); await reload(); clear(forkBox); }
    } }, h('span', {}, `Label LSN ${lsn}: `), input, h('button', { type: 'submit' }, 'Save label'),
       h('button', { type: 'button', onclick: () => clear(forkBox) }, 'Cancel'));
    clear(forkBox, form);
    input.focus();
  };

  const row = (c) => {
    const isHead = c.lsn === head() && !c.rolled_back;
    const pick = h('input', { type: 'checkbox', 'aria-label': `Select LSN ${c.lsn} to compare`, checked: selected.has(c.lsn),
      onchange: (e) => {
        if (e.target.checked) selected.add(c.lsn); else selected.delete(c.lsn);
        compareBtn.disabled = selected.size !== 2;
      } });
    const classes = ['checkpoint', c.rolled_back ? 'rolled-back' : '', c.inherited ? 'inherited' : '', isHead ? 'head' : ''].join(' ');
    return h('li', { class: classes, dataset: { lsn: c.lsn } },
      h('div', { class: 'cp-main' },
        pick,
        h('span', { class: 'lsn' }, `LSN ${c.lsn}`),
        h('span', { class: `kind kind-${c.kind}` }, c.kind),
        h('code', { class: 'summary' }, kindText(c)),
        c.kind === 'sql' ? h('span', { class: 'rows' }, `${c.rows_affected} row${c.rows_affected === 1 ? '' : 's'}`) : null,
        isHead ? h('span', { class: 'badge head' }, 'head') : null,
        c.rolled_back ? h('span', { class: 'badge rolled' }, 'rolled back') : null,
        c.inherited ? h('span', { class: 'badge' }, `from ${c.branch}`) : null,
        (c.labels || []).map((l) => h('span', { class: 'badge label', title: 'label' }, `label: ${l}`))),
      h('div', { class: 'cp-meta muted' },
        time(c.time), ` · ${ago(c.time)} · ${c.client_id || 'system'}`),
      h('div', { class: 'cp-actions' },
        isHead ? null : h('button', { type: 'button', class: 'rollback', onclick: () => rollback(c.lsn) },
          c.rolled_back ? 'Restore this state' : 'Roll back to here'),
        c.previous_head_lsn !== undefined && ['rollback', 'reset', 'promote'].includes(c.kind) && !c.inherited
          ? h('button', { type: 'button', class: 'undo', onclick: () => rollback(c.previous_head_lsn) }, `Undo (back to LSN ${c.previous_head_lsn})`) : null,
        h('button', { type: 'button', class: 'fork', onclick: () => {
          clear(forkBox, childForm(ctx, { checkpoint: c.lsn }));
          forkBox.querySelector('input').focus();
        } }, 'Fork'),
        c.inherited ? null : h('button', { type: 'button', class: 'label', onclick: () => label(c.lsn) }, 'Label')));
  };

  const draw = () => {
    clear(list, pages.length ? h('ol', { class: 'timeline', 'aria-label': `Checkpoints of ${ctx.branch}, newest first` }, pages.map(row)) : h('p', {}, 'No checkpoints.'),
          next ? h('button', { type: 'button', id: 'older', onclick: older }, 'Load older checkpoints') : null);
  };

  const fetchPage = (cursor) => ctx.session.call('GET', branchPath(ctx.project, ctx.branch,
    `/checkpoints?limit=${kPage}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`));

  async function older() {
    const r = await ctx.attempt(() => fetchPage(next));
    if (!r) return;
    pages = pages.concat(r.checkpoints);
    next = r.next;
    draw();
  }

  // Re-reads the newest page; keeps older pages already loaded.
  async function reload() {
    const r = await fetchPage(null);
    const text = JSON.stringify(r.checkpoints);
    if (text === shown) return;
    shown = text;
    const oldest = r.checkpoints.length ? r.checkpoints[r.checkpoints.length - 1].lsn : 0;
    const rest = pages.filter((c) => c.lsn < oldest);
    pages = r.checkpoints.concat(rest);
    if (!rest.length) next = r.next;
    draw();
  }

  panel.append(
    h('div', { class: 'row toolbar' }, compareBtn,
      h('span', { class: 'muted' }, 'Rolled-back states stay listed (a reflog); "Roll back to here" moves the head, "Undo" moves it back.')),
    forkBox, list);
  await reload();
  ctx.onLive(reload);
}
