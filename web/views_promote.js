// Promote a branch into its parent (POST .../promote): a dry run first (the
// replay and the verify query run, the parent stays), then the promotion,
// with its undo (roll the parent back to the head it left).
import { branchPath } from './api.js';
import { h, clear, field, confirmButton } from './ui.js';
import { undoMove } from './views_branch.js';

function report(r) {
  return h('div', { class: 'card', id: 'promote-result' },
    h('h3', {}, r.dry_run ? 'Dry run: the parent did not move' : `Promoted into ${r.branch}`),
    h('p', {}, `Mode ${r.mode}; ${r.actions.length} action(s) carried; ${r.attempts} attempt(s).`,
      r.head_lsn !== null ? ` ${r.branch}'s head is now LSN ${r.head_lsn} (was LSN ${r.previous_head_lsn}).` : ''),
    r.actions.length ? h('ol', { class: 'actions-list' }, r.actions.map((a) =>
      h('li', {}, h('span', { class: 'lsn' }, `LSN ${a.lsn} `), h('code', {}, a.summary), ` · ${a.rows} row(s)`))) : null,
    r.verify ? h('p', { class: r.verify.ok ? 'ok' : 'error' },
      `Verify ${r.verify.ok ? 'passed' : 'failed'}: `, h('code', {}, r.verify.sql), ` → ${JSON.stringify(r.verify.value)}`) : null);
}

export async function renderPromote(ctx, panel) {
  const b = ctx.info;
  if (!b.parent) {
    panel.append(h('p', {}, `${ctx.branch} is a root branch: it has no parent to promote into.`));
    return;
  }
  const verify = h('input', { id: 'promote-verify', class: 'wide', placeholder: 'SELECT count(*) > 0 FROM orders', spellcheck: 'false' });
  const mode = h('select', { id: 'promote-mode' }, ['auto', 'fast_forward', 'replay'].map((m) => h('option', { value: m }, m)));
  const out = h('div', { id: 'promote-out' });
  const promote = async (dryRun) => {
    const body = { mode: mode.value, dry_run: dryRun };
    if (verify.value.trim()) body.verify = verify.value.trim();
    try {
      const r = await ctx.session.call('POST', branchPath(ctx.project, ctx.branch, '/promote'), body);
      // The tree shows the parent's new head; this view stays (with its report).
      if (!dryRun) await ctx.reload();
      clear(out, report(r));
      if (!dryRun) {
        ctx.notify(`Promoted ${ctx.branch} into ${r.branch}.`, [[`Undo promote (${r.branch} back to LSN ${r.previous_head_lsn})`,
          undoMove(ctx, r.branch, r.previous_head_lsn)]]);
      }
    } catch (e) {
      const failed = e.details && e.details.failed_action;
      clear(out, h('div', { class: 'sql-error', role: 'alert' },
        h('p', {}, h('strong', {}, 'Promotion refused: '), e.message, ' ', h('code', { class: 'code' }, e.code)),
        failed ? h('p', {}, `Action ${failed.index + 1} (LSN ${failed.lsn}) `, h('code', {}, failed.summary), ` failed: ${failed.error.message}`) : null));
    }
  };
  panel.append(h('div', { class: 'card' },
    h('p', {}, `Moves ${b.parent} to ${ctx.branch}'s work: a fast-forward when ${b.parent} has not moved since the branch point, else a replay of ${ctx.branch}'s actions on ${b.parent}'s head.`),
    h('div', { class: 'row' }, field('Verify query (must be truthy)', verify), field('Mode', mode)),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'promote-dry', class: 'primary', onclick: () => promote(true) }, 'Dry run'),
      confirmButton(`Promote into ${b.parent}`, 'Click again to promote', () => promote(false), { id: 'promote-go' }))),
  out);
}
