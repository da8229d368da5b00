// Diffs of a branch (GET .../diff): against another branch (default: its
// parent) or between two states (base_lsn, lsn). Schema: side by side,
// added in green, removed in red, changed highlighted. Data: per table
// counts, and the changed rows a page at a time (the diff's cursor; the pages
// of one diff compare the same two states).
import { branchPath } from './api.js';
import { h, clear, value, field } from './ui.js';

const kRowsPerPage = 50;

function schemaView(d) {
  if (!d.objects.length) return h('p', { id: 'diff-empty' }, `No schema change between LSN ${d.from_lsn} and LSN ${d.to_lsn}.`);
  return h('div', { class: 'schema-diff', id: 'schema-diff' },
    h('div', { class: 'sd-head' }, h('div', {}, `Base (LSN ${d.from_lsn})`), h('div', {}, `Branch (LSN ${d.to_lsn})`)),
    d.objects.map((o) => h('section', { class: `sd-object change-${o.change}` },
      h('h4', {}, `${o.type} ${o.name} `, h('span', { class: `badge change-${o.change}` }, o.change),
        o.columns_added && o.columns_added.length ? h('span', { class: 'badge change-added' }, `+ ${o.columns_added.join(', ')}`) : null,
        o.columns_removed && o.columns_removed.length ? h('span', { class: 'badge change-removed' }, `− ${o.columns_removed.join(', ')}`) : null,
        o.columns_changed && o.columns_changed.length ? h('span', { class: 'badge change-modified' }, `~ ${o.columns_changed.join(', ')}`) : null),
      h('div', { class: 'sd-sides' },
        h('pre', { class: 'old', 'aria-label': 'before' }, o.old_sql || ''),
        h('pre', { class: 'new', 'aria-label': 'after' }, o.new_sql || '')))));
}

function rowValues(obj) {
  if (!obj) return '';
  return h('span', {}, Object.entries(obj).map(([k, v], i) => [i ? ', ' : '', h('span', { class: 'col' }, `${k}=`), value(v)]));
}

function dataView(d) {
  const tables = d.tables || [];
  if (!tables.length) return h('p', { id: 'diff-empty' }, `No row changed between LSN ${d.from_lsn} and LSN ${d.to_lsn}.`);
  return h('div', { id: 'data-diff' }, tables.map((t) => h('section', { class: 'dd-table' },
    h('h4', {}, t.table, ' ',
      h('span', { class: 'badge change-added' }, `+${t.rows_added}`),
      h('span', { class: 'badge change-removed' }, `−${t.rows_removed}`),
      h('span', { class: 'badge change-modified' }, `~${t.rows_changed}`),
      t.note ? h('span', { class: 'muted' }, ` ${t.note}`) : null),
    t.rows && t.rows.length ? h('div', { class: 'scroll' }, h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, ['', `key (${(t.key_columns || []).join(', ')})`, 'before', 'after'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, t.rows.map((r) => h('tr', { class: `op-${r.op}` },
        h('td', {}, r.op), h('td', {}, JSON.stringify(r.key)), h('td', { class: 'old' }, rowValues(r.old)),
        h('td', { class: 'new' }, rowValues(r.new))))))) : h('p', { class: 'muted' }, 'No rows of this table on this page.'))));
}

export async function renderDiff(ctx, panel) {
  const q = ctx.query;
  const base = h('select', { id: 'diff-base', name: 'base' },
    ctx.branches.map((b) => h('option', { value: b.name }, b.name)));
  base.value = q.get('base') || ctx.info.parent || ctx.branch;
  const baseLsn = h('input', { id: 'diff-base-lsn', type: 'number', min: '0', placeholder: 'its head', value: q.get('base_lsn') || '' });
  const lsn = h('input', { id: 'diff-lsn', type: 'number', min: '0', placeholder: 'the head', value: q.get('lsn') || '' });
  const kind = q.get('kind') === 'data' ? 'data' : 'schema';
  const out = h('div', { id: 'diff-out' });
  const cursors = [null];  // cursors[i]: the cursor of page i (data)
  let page = 0;

  const params = (k) => {
    const p = new URLSearchParams({ kind: k, base: base.value });
    if (baseLsn.value !== '') p.set('base_lsn', baseLsn.value);
    if (lsn.value !== '') p.set('lsn', lsn.value);
    return p;
  };

  const load = async () => {
    const p = params(kind);
    if (kind === 'data') {
      p.set('limit', String(kRowsPerPage));
      if (cursors[page]) p.set('cursor', cursors[page]);
    }
    const d = await ctx.session.call('GET', branchPath(ctx.project, ctx.branch, `/diff?${p}`));
    if (kind === 'schema') return clear(out, schemaView(d));
    cursors[page + 1] = d.next;
    return clear(out, dataView(d),
      h('div', { class: 'pager' },
        h('button', { type: 'button', id: 'diff-prev', disabled: page === 0, onclick: () => { --page; ctx.attempt(load); } }, 'Previous page'),
        h('span', { id: 'diff-page' }, ` page ${page + 1} `),
        h('button', { type: 'button', id: 'diff-next', disabled: !d.next, onclick: () => { ++page; ctx.attempt(load); } }, 'Next page')));
  };

  const show = (k) => (e) => {
    e.preventDefault();
    const query = Object.fromEntries(params(k));
    ctx.go(ctx.project, ctx.branch, 'diff', query);
  };
  panel.append(
    h('form', { class: 'card', id: 'diff-form', onsubmit: show(kind) },
      h('div', { class: 'row' }, field('Compare with branch', base), field('at LSN', baseLsn),
        field(`${ctx.branch} at LSN`, lsn)),
      h('div', { class: 'row' },
        h('button', { type: 'button', id: 'diff-schema', class: kind === 'schema' ? 'primary' : '', 'aria-pressed': String(kind === 'schema'), onclick: show('schema') }, 'Schema diff'),
        h('button', { type: 'button', id: 'diff-data', class: kind === 'data' ? 'primary' : '', 'aria-pressed': String(kind === 'data'), onclick: show('data') }, 'Data diff'))),
    out);
  await load();
}
