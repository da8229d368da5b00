// Overview of one branch: its facts (head, parent, TTL, protection, compute,
// sizes) and what can be done to it: create a child (from the head, a
// checkpoint, an LSN or a time), protect, set the TTL, reset from the parent
// (with undo), delete.
import { branchPath } from './api.js';
import { h, bytes, duration, time, confirmButton, field } from './ui.js';

// The create-child form; at: {lsn|checkpoint|timestamp} to preset the source.
export function childForm(ctx, at = null) {
  const name = h('input', { name: 'name', required: true, spellcheck: 'false', placeholder: `${ctx.branch}-child` });
  const source = h('select', { name: 'source' },
    h('option', { value: 'head' }, 'the head'),
    h('option', { value: 'checkpoint' }, 'a checkpoint (LSN, any branch)'),
    h('option', { value: 'lsn' }, 'a state of this branch (LSN)'),
    h('option', { value: 'timestamp' }, 'a point in time'));
  const at_value = h('input', { name: 'at', placeholder: 'LSN, or 2026-12-03T10:00:00Z' });
  const ttl = h('input', { name: 'ttl_seconds', type: 'number', min: '1', placeholder: 'none' });
  const prot = h('input', { name: 'protected', type: 'checkbox' });
  if (at) {
    const [kind, v] = Object.entries(at)[0];
    source.value = kind;
    at_value.value = String(v);
  }
  const sync = () => { at_value.disabled = source.value === 'head'; };
  source.addEventListener('change', sync);
  sync();
  return h('form', { class: 'card', id: 'create-child', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim(), parent: ctx.branch };
    if (source.value !== 'head') {
      const raw = at_value.value.trim();
      // LSNs are numbers; a time is RFC 3339 text or Unix seconds.
      body.at = { [source.value]: source.value === 'timestamp' && !/^\d+$/.test(raw) ? raw : Number(raw) };
      // A checkpoint names its own branch as the parent (it may be inherited).
      if (source.value === 'checkpoint') delete body.parent;
    }
    if (ttl.value) body.ttl_seconds = Number(ttl.value);
    if (prot.checked) body.protected = true;
    const b = await ctx.attempt(() => ctx.session.call('POST', `/v1/projects/${encodeURIComponent(ctx.project)}/branches`, body));
    if (!b) return;
    ctx.notify(`Branch ${b.name} created at LSN ${b.branch_point_lsn}.`);
    ctx.go(ctx.project, b.name, 'overview');
  } },
    h('h3', {}, 'Create a child branch'),
    h('div', { class: 'row' }, field('Name', name), field('From', source), field('At', at_value),
      field('TTL (seconds)', ttl), h('label', { class: 'check' }, prot, ' protected')),
    h('button', { type: 'submit', class: 'primary' }, 'Create branch'));
}

// An undo button's action: roll branch back to lsn (the head a move left).
export function undoMove(ctx, branch, lsn) {
  return async () => {
    const r = await ctx.session.call('POST', branchPath(ctx.project, branch, '/rollback'), { to: { lsn } });
    await ctx.refresh();
    ctx.notify(`Undone: ${branch} is back at LSN ${r.target_lsn}.`);
  };
}

export async function renderOverview(ctx, panel) {
  const b = ctx.info;
  const c = ctx.compute;
  const patch = async (body, what) => {
    const r = await ctx.attempt(() => ctx.session.call('PATCH', branchPath(ctx.project, ctx.branch), body));
    if (r) { await ctx.refresh(); ctx.notify(what); }
  };
  const ttl = h('input', { name: 'ttl', type: 'number', min: '1', placeholder: 'seconds' });
  const facts = [
    ['Head', `LSN ${b.head_lsn}`],
    ['Parent', b.parent ? h('a', { href: ctx.href(ctx.project, b.parent) }, b.parent) : 'none (a root)'],
    ['Branch point', b.parent ? `LSN ${b.branch_point_lsn}` : '–'],
    ['Created', time(b.created_at)],
    ['Expires', b.expires_at ? [time(b.expires_at), ` (${duration(Math.round((Date.parse(b.expires_at) - Date.now()) / 1000))} left)`] : 'never'],
    ['Protected', b.protected ? 'yes' : 'no'],
    ['Compute', c ? `${c.state}, ${c.cold_starts} cold start(s), idle timeout ${c.idle_timeout_seconds ? duration(c.idle_timeout_seconds) : 'never'}` : '–'],
    ['Size', `${bytes(b.logical_bytes)} logical, ${bytes(b.exclusive_bytes)} exclusive`],
  ];
  panel.append(
    h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('div', { class: 'card actions' },
      h('h3', {}, 'Actions'),
      h('div', { class: 'row' },
        h('button', { type: 'button', id: 'protect', onclick: () => patch({ protected: !b.protected }, b.protected ? 'Protection removed.' : 'Branch protected.') },
          b.protected ? 'Unprotect' : 'Protect'),
        h('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); patch({ ttl_seconds: Number(ttl.value) }, `TTL set to ${duration(Number(ttl.value))}.`); } },
          h('label', { for: 'ttl-input' }, 'TTL'), Object.assign(ttl, { id: 'ttl-input' }), h('button', { type: 'submit' }, 'Set TTL'),
          b.expires_at ? h('button', { type: 'button', onclick: () => patch({ expires_at: null }, 'TTL cleared.') }, 'Clear TTL') : null),
        b.parent ? confirmButton('Reset from parent', 'Click again to reset', async () => {
          const r = await ctx.attempt(() => ctx.session.call('POST', branchPath(ctx.project, ctx.branch, '/reset'), {}));
          if (!r) return;
          await ctx.refresh();
          ctx.notify(`Reset to ${b.parent}'s head (LSN ${r.target_lsn}); the head was LSN ${r.previous_head_lsn}.`,
                     [['Undo reset', undoMove(ctx, ctx.branch, r.previous_head_lsn)]]);
        }, { id: 'reset' }) : null,
        confirmButton('Delete branch', 'Click again to delete', async () => {
          const r = await ctx.attempt(() => ctx.session.call('DELETE', branchPath(ctx.project, ctx.branch)));
          if (r === undefined) return;
          ctx.notify(`Branch ${ctx.branch} deleted.`);
          await ctx.reload();
          ctx.go(ctx.project, b.parent || null);
        }, { id: 'delete', class: 'danger' }))),
    childForm(ctx));
}
