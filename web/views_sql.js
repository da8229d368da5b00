// The SQL editor of a branch: a script at the head (one transaction, one
// checkpoint when it writes, with its undo), or one read-only statement at a
// past LSN ("lsn" of POST .../sql). Results in tables with pages: a read-only
// single statement is read from the server a page at a time (page_size /
// cursor); a script's results are shown a page at a time. An error names
// its code and marks the failing statement. Ctrl+Enter (Cmd+Enter) runs.
import { branchPath } from './api.js';
import { h, clear, table, field } from './ui.js';
import { undoMove } from './views_branch.js';

const kPageRows = 100;

// Drafts per branch, kept while the page is open (in memory, like the token).
const drafts = new Map();

// The statements of a script, roughly (split at ';' outside quotes and
// comments), to show which one failed.
function statements(sql) {
  const out = [];
  let cur = '';
  let quote = null;
  for (let i = 0; i < sql.length; ++i) {
    const ch = sql[i];
    if (quote) {
      cur += ch;
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"' || ch === '`') {
      quote = ch;
      cur += ch;
    } else if (ch === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end;
    } else if (ch === ';') {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

// One statement's rows, shown kPageRows at a time.
function pagedResult(result, index) {
  const box = h('div', { class: 'result' });
  let page = 0;
  const pages = Math.max(1, Math.ceil(result.rows.length / kPageRows));
  const draw = () => {
    const rows = result.rows.slice(page * kPageRows, (page + 1) * kPageRows);
    clear(box,
      h('h4', {}, `Statement ${index + 1}`, result.columns.length ? ` · ${result.rows.length} row(s)` : ` · ${result.rows_affected} row(s) changed`),
      result.columns.length ? table(result.columns, rows) : null,
      pages > 1 ? h('div', { class: 'pager' },
        h('button', { type: 'button', disabled: page === 0, onclick: () => { --page; draw(); } }, 'Previous'),
        h('span', {}, ` page ${page + 1} of ${pages} `),
        h('button', { type: 'button', disabled: page + 1 >= pages, onclick: () => { ++page; draw(); } }, 'Next')) : null);
  };
  draw();
  return box;
}

export async function renderSql(ctx, panel) {
  const editor = h('textarea', { id: 'sql-editor', class: 'editor', rows: '8', spellcheck: 'false',
    'aria-label': 'SQL', placeholder: 'SELECT * FROM sqlite_schema;' });
  const draftKey = JSON.stringify([ctx.project, ctx.branch]);
  editor.value = ctx.query.get('sql') || drafts.get(draftKey) || '';
  editor.addEventListener('input', () => drafts.set(draftKey, editor.value));
  const at = h('input', { id: 'sql-lsn', type: 'number', min: '0', placeholder: 'head',
                          value: ctx.query.get('lsn') || '' });
  const readOnly = h('input', { id: 'sql-ro', type: 'checkbox' });
  const out = h('div', { id: 'sql-out', 'aria-live': 'polite' });

  // A paged read: page_size, then cursor; every page reads the first one's state.
  const readPaged = async (body, cursor, pageNo) => {
    const r = await ctx.session.call('POST', branchPath(ctx.project, ctx.branch, '/sql'),
      cursor ? { ...body, cursor } : { ...body, page_size: kPageRows });
    const res = r.results[0] || { columns: [], rows: [], rows_affected: 0 };
    clear(out,
      h('p', { class: 'muted' }, `Read-only at LSN ${r.snapshot_lsn}.`),
      h('div', { class: 'result' }, h('h4', {}, `Page ${pageNo}`),
        res.columns.length ? table(res.columns, res.rows) : h('p', {}, 'No rows.'),
        h('div', { class: 'pager' },
          r.next_cursor ? h('button', { type: 'button', id: 'sql-next', onclick: () => ctx.attempt(() => readPaged(body, r.next_cursor, pageNo + 1)) }, 'Next page') : h('span', { class: 'muted' }, 'Last page.'))));
  };

  // The state before checkpoint lsn on this branch: the newest listed state
  // older than it that the branch's history still reaches.
  const predecessor = async (lsn) => {
    const r = await ctx.session.call('GET', branchPath(ctx.project, ctx.branch, `/checkpoints?limit=10&cursor=${lsn}`));
    const prev = r.checkpoints.find((c) => c.lsn < lsn && !c.rolled_back);
    return prev ? prev.lsn : null;
  };

  const run = async () => {
    const sql = editor.value;
    drafts.set(draftKey, sql);
    clear(out, h('p', { class: 'muted' }, 'Running…'));
    const body = { sql };
    try {
      if (at.value !== '') {
        body.lsn = Number(at.value);
        return await readPaged(body, null, 1);
      }
      if (readOnly.checked && statements(sql).length === 1) return await readPaged(body, null, 1);
      if (readOnly.checked) body.read_only = true;
      const r = await ctx.session.call('POST', branchPath(ctx.project, ctx.branch, '/sql'), body);
      const parts = [];
      if (r.lsn !== null && r.lsn !== undefined) {
        const before = await predecessor(r.lsn).catch(() => null);
        parts.push(h('p', { class: 'committed', id: 'sql-commit' }, `Committed: checkpoint LSN ${r.lsn}. `,
          before !== null ? h('button', { type: 'button', id: 'sql-undo', onclick: () => ctx.attempt(async () => {
            await undoMove(ctx, ctx.branch, before)();
          }) }, `Undo (roll back to LSN ${before})`) : null));
      } else {
        parts.push(h('p', { class: 'muted' }, `Nothing committed (read at LSN ${r.snapshot_lsn}).`));
      }
      parts.push(r.results.map(pagedResult));
      clear(out, parts);
    } catch (e) {
      const failing = e.details && Number.isInteger(e.details.statement) ? e.details.statement : null;
      const list = statements(sql);
      clear(out, h('div', { class: 'sql-error', role: 'alert' },
        h('p', {}, h('strong', {}, 'Error: '), e.message, ' ', h('code', { class: 'code' }, e.code)),
        failing !== null && list.length ? h('ol', { class: 'statements', start: '1' }, list.map((s, i) =>
          h('li', { class: i === failing ? 'failing' : '' }, i === failing ? h('mark', {}, s) : s,
            i === failing ? h('span', { class: 'sr' }, ' (this statement failed)') : null))) : null,
        e.code === 'result_too_large' ? h('p', {}, 'Tick "Read only" to read one statement in pages, or add LIMIT.') : null));
    }
    return undefined;
  };

  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  panel.append(
    h('form', { class: 'card', id: 'sql-form', onsubmit: (e) => { e.preventDefault(); run(); } },
      editor,
      h('div', { class: 'row' },
        h('button', { type: 'submit', class: 'primary', id: 'sql-run' }, 'Run (Ctrl+Enter)'),
        field('At LSN (read-only)', at, 'empty: the head'),
        h('label', { class: 'check', for: 'sql-ro' }, readOnly, ' Read only'))),
    out);
}
