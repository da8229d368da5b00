// libSQL's Hrana over HTTP on branchdb, driven by the ecosystem's own clients
// (installed from npm by install_clients.sh) against a real `branchdb serve`:
//   - @libsql/client: execute (positional and named args), batch, interactive
//     transactions committed and rolled back, blobs, big integers, NULLs,
//     errors with SQLite's code, a read credential refused a write, a
//     credential of one branch refused on another, an expired stream, a
//     URL that lost its trailing '/', a writer waiting on a transaction;
//   - each committed transaction is exactly one checkpoint, annotated;
//   - drizzle-kit migrate with two migrations on a branch, then promote;
//   - Kysely (@libsql/kysely-libsql) typed queries;
//   - a differential random workload through Hrana and through REST: the same
//     rows and the same checkpoints (the seed is printed; --seed N replays).
//
//   node clients_test.cjs --branchdb <path of branchdb> --clients <dir with node_modules>
// Exit code 0 when every check passed.
'use strict';

const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    if (fallback !== undefined) return fallback;
    console.error(`usage: node clients_test.cjs --branchdb BIN --clients DIR (missing ${name})`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const clientsDir = path.resolve(arg('--clients'));
const req = createRequire(path.join(clientsDir, 'package.json'));
const { createClient } = req('@libsql/client');

// --- a real server ----------------------------------------------------------

// The stream idle timeout, short so that expiry is seen quickly.
const STREAM_IDLE_SECONDS = 2;

async function startServer(binary) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bdb-hrana-'));
  const dataDir = path.join(tmp, 'data');
  const env = { ...process.env,
                BRANCHDB_LIBSQL_STREAM_IDLE_TIMEOUT_SECONDS: String(STREAM_IDLE_SECONDS) };
  const proc = spawn(binary, ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0',
                              '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line after 60 s:\n${log}`)),
                             60000);
    const onData = (chunk) => {
      log += chunk.toString();
      const m = /event=listening address=(https?:\/\/\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, 'admin-credentials.json'), 'utf8'));
  return {
    url, creds, proc, tmp,
    log: () => log,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 20000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

async function token(server, scope) {
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (scope) body.set('scope', scope);
  const basic = Buffer.from(`${server.creds.client_id}:${server.creds.client_secret}`)
    .toString('base64');
  const r = await fetch(`${server.url}/oauth/token`, {
    method: 'POST', body, headers: { Authorization: `Basic ${basic}` },
  });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).access_token;
}

// The REST API, as the comparison and the setup use it.
function rest(server, bearer) {
  const call = async (method, route, body, expect) => {
    const r = await fetch(`${server.url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (expect !== undefined) {
      assert.equal(r.status, expect, `${method} ${route}: ${text}`);
    } else {
      assert.ok(r.status < 300, `${method} ${route}: ${r.status} ${text}`);
    }
    return text ? JSON.parse(text) : null;
  };
  const b = (branch) => `/v1/projects/shop/branches/${encodeURIComponent(branch)}`;
  return {
    call,
    createBranch: (name, parent) => call('POST', '/v1/projects/shop/branches',
                                         { name, parent: parent || 'production' }),
    sql: (branch, sql, params, expect) =>
      call('POST', `${b(branch)}/sql`, params === undefined ? { sql } : { sql, params }, expect),
    // read_only: a REST script that may write takes the branch's writer slot.
    rows: async (branch, sql) =>
      (await call('POST', `${b(branch)}/sql`, { sql, read_only: true })).results[0].rows,
    checkpoints: async (branch) =>
      (await call('GET', `${b(branch)}/checkpoints?limit=1000`)).checkpoints
        .filter((c) => !c.inherited),
    credential: async (branch, access) =>
      (await call('POST', `${b(branch)}/credentials`, { access })).credential,
    promote: (branch) => call('POST', `${b(branch)}/promote`, {}),
  };
}

function hranaUrl(server, branch) {
  return `${server.url}/libsql/shop/${encodeURIComponent(branch)}/`;
}

async function rejects(promise, check) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, 'expected an error');
  check(error);
  return error;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- @libsql/client -----------------------------------------------------------

async function executeAndValues(server, api, bearer) {
  await api.createBranch('dev/alex');
  const db = createClient({ url: hranaUrl(server, 'dev/alex'), authToken: bearer, intMode: 'bigint' });
  await db.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, data BLOB, big INTEGER)');
  const blob = new Uint8Array([0, 1, 2, 253, 254, 255]);
  const big = 9007199254740993n;  // 2^53 + 1: not a double
  const ins = await db.execute({
    sql: 'INSERT INTO t(name, score, data, big) VALUES (?, ?, ?, ?)',
    args: ['ann', 1.5, blob, big],
  });
  assert.equal(ins.rowsAffected, 1);
  assert.equal(ins.lastInsertRowid, 1n);
  const named = await db.execute({
    sql: 'INSERT INTO t(name, score, data, big) VALUES (:name, $score, @data, :big)',
    args: { name: 'bob', score: null, data: null, big: -9223372036854775808n },
  });
  assert.equal(named.lastInsertRowid, 2n);
  const rs = await db.execute('SELECT id, name, score, data, big, score IS NULL AS nul FROM t ORDER BY id');
  assert.deepEqual(rs.columns, ['id', 'name', 'score', 'data', 'big', 'nul']);
  assert.deepEqual(rs.columnTypes, ['INTEGER', 'TEXT', 'REAL', 'BLOB', 'INTEGER', '']);
  assert.equal(rs.rows.length, 2);
  assert.equal(rs.rows[0].name, 'ann');
  assert.equal(rs.rows[0].score, 1.5);
  assert.deepEqual(new Uint8Array(rs.rows[0].data), blob);
  assert.equal(rs.rows[0].big, big);
  assert.equal(rs.rows[1].score, null);
  assert.equal(rs.rows[1].data, null);
  assert.equal(rs.rows[1].big, -9223372036854775808n);
  assert.equal(rs.rows[1].nul, 1n);
  // The same values through REST: the same rows.
  const viaRest = await api.rows('dev/alex', 'SELECT name, big FROM t ORDER BY id');
  assert.deepEqual(viaRest, [['ann', 9007199254740993], ['bob', -9223372036854775808]].map(
    ([n, b]) => [n, b]));
  // An empty result, and a statement without rows.
  assert.equal((await db.execute('SELECT * FROM t WHERE 0')).rows.length, 0);
  const upd = await db.execute({ sql: 'UPDATE t SET score = score + 1 WHERE id = ?', args: [1] });
  assert.equal(upd.rowsAffected, 1);
  // Default int mode: integers past 2^53 are refused by the client, not rounded.
  const plain = createClient({ url: hranaUrl(server, 'dev/alex'), authToken: bearer });
  assert.equal((await plain.execute('SELECT 41 + 1 AS n')).rows[0].n, 42);
  await rejects(plain.execute('SELECT big FROM t WHERE id = 1'), (e) =>
    assert.match(String(e), /RangeError|cannot be represented|safe/i));
  db.close();
  plain.close();
  console.log('ok - execute: positional and named args, blobs, big integers, NULLs, decltypes');
}

async function errors(server, api, bearer) {
  const db = createClient({ url: hranaUrl(server, 'dev/alex'), authToken: bearer });
  const syntax = await rejects(db.execute('SELEC 1'), () => {});
  assert.equal(syntax.code, 'SQLITE_ERROR');
  assert.match(syntax.message, /syntax error/);
  const dup = await rejects(db.execute({ sql: 'INSERT INTO t(id, name) VALUES (1, ?)', args: ['x'] }), () => {});
  assert.equal(dup.code, 'SQLITE_CONSTRAINT_PRIMARYKEY');
  assert.match(dup.message, /UNIQUE constraint failed: t\.id/);
  const notnull = await rejects(db.execute('INSERT INTO t(name) VALUES (NULL)'), () => {});
  assert.equal(notnull.code, 'SQLITE_CONSTRAINT_NOTNULL');
  const forbidden = await rejects(db.execute("ATTACH 'x.db' AS x"), () => {});
  assert.equal(forbidden.code, 'SQL_FORBIDDEN');
  const args = await rejects(db.execute({ sql: 'SELECT ?, ?', args: [1] }), () => {});
  assert.equal(args.code, 'INVALID_PARAMS');
  // Wrong token: Hrana's error at HTTP level.
  const anon = createClient({ url: hranaUrl(server, 'dev/alex'), authToken: 'nope' });
  const unauth = await rejects(anon.execute('SELECT 1'), () => {});
  assert.match(unauth.message, /token|bearer/i);
  anon.close();
  db.close();
  console.log('ok - errors carry SQLite\'s message and code');
}

async function checkpointsAndBatch(server, api, bearer) {
  const db = createClient({ url: hranaUrl(server, 'dev/alex'), authToken: bearer });
  const before = await api.checkpoints('dev/alex');
  // A read makes no checkpoint.
  await db.execute('SELECT count(*) FROM t');
  assert.equal((await api.checkpoints('dev/alex')).length, before.length);
  // An autocommit write: one checkpoint, annotated like a REST script.
  await db.execute({ sql: 'INSERT INTO t(name) VALUES (?)', args: ['carl'] });
  let cps = await api.checkpoints('dev/alex');
  assert.equal(cps.length, before.length + 1);
  assert.equal(cps[0].kind, 'sql');
  assert.equal(cps[0].summary, 'INSERT INTO t(name) VALUES (?)');
  assert.equal(cps[0].client_id, server.creds.client_id);
  // A batch: one transaction, one checkpoint.
  const results = await db.batch([
    { sql: 'INSERT INTO t(name) VALUES (?)', args: ['dora'] },
    { sql: 'INSERT INTO t(name) VALUES (?)', args: ['emil'] },
    'SELECT count(*) AS n FROM t',
  ], 'write');
  assert.equal(results.length, 3);
  assert.equal(results[2].rows[0].n, 5);
  cps = await api.checkpoints('dev/alex');
  assert.equal(cps.length, before.length + 2);
  assert.match(cps[0].summary, /^INSERT INTO t\(name\) VALUES \(\?\);/);
  // A failing batch: nothing of it stays, no checkpoint.
  await rejects(db.batch([
    { sql: 'INSERT INTO t(name) VALUES (?)', args: ['fred'] },
    'INSERT INTO t(id, name) VALUES (1, \'clash\')',
  ], 'write'), (e) => assert.equal(e.code, 'SQLITE_CONSTRAINT_PRIMARYKEY'));
  assert.deepEqual(await api.rows('dev/alex', "SELECT count(*) FROM t WHERE name = 'fred'"), [[0]]);
  assert.equal((await api.checkpoints('dev/alex')).length, before.length + 2);
  // executeMultiple (a sequence): each statement its own transaction, as SQLite.
  await db.executeMultiple("INSERT INTO t(name) VALUES ('gus'); -- one\nINSERT INTO t(name) VALUES ('hal');");
  assert.equal((await api.checkpoints('dev/alex')).length, before.length + 4);
  db.close();
  console.log('ok - every committed transaction is one checkpoint (autocommit, batch, sequence)');
}

async function transactions(server, api, bearer) {
  const db = createClient({ url: hranaUrl(server, 'dev/alex'), authToken: bearer, intMode: 'number' });
  const before = (await api.checkpoints('dev/alex')).length;
  const count = async () => (await api.rows('dev/alex', 'SELECT count(*) FROM t'))[0][0];
  const n0 = await count();
  // Committed: spans requests; others do not see it before COMMIT.
  const tx = await db.transaction('write');
  await tx.execute({ sql: 'INSERT INTO t(name) VALUES (?)', args: ['ivy'] });
  await tx.execute({ sql: 'INSERT INTO t(name) VALUES (?)', args: ['jon'] });
  assert.equal((await tx.execute('SELECT count(*) AS n FROM t')).rows[0].n, n0 + 2);
  assert.equal(await count(), n0, 'a reader sees the last commit, not the open transaction');
  // Another writer meanwhile: SQLITE_BUSY (503 busy through REST).
  const busy = await api.sql('dev/alex', "INSERT INTO t(name) VALUES ('zed')", undefined, 503);
  assert.equal(busy.error.code, 'busy');
  await tx.commit();
  assert.equal(await count(), n0 + 2);
  let cps = await api.checkpoints('dev/alex');
  assert.equal(cps.length, before + 1, 'one checkpoint for the transaction');
  assert.equal(cps[0].rows_affected, 2);
  assert.match(cps[0].summary, /^INSERT INTO t\(name\) VALUES \(\?\); INSERT INTO t\(name\) VALUES \(\?\);/);
  // Rolled back: nothing stays, no checkpoint.
  const tx2 = await db.transaction('write');
  await tx2.execute("INSERT INTO t(name) VALUES ('kim')");
  await tx2.rollback();
  assert.equal(await count(), n0 + 2);
  assert.equal((await api.checkpoints('dev/alex')).length, before + 1);
  // A failed statement inside a transaction leaves it open, as in SQLite.
  const tx3 = await db.transaction('write');
  await tx3.execute("INSERT INTO t(name) VALUES ('lou')");
  await rejects(tx3.execute('INSERT INTO t(id, name) VALUES (1, \'x\')'),
                (e) => assert.equal(e.code, 'SQLITE_CONSTRAINT_PRIMARYKEY'));
  await tx3.commit();
  assert.equal(await count(), n0 + 3);
  assert.equal((await api.checkpoints('dev/alex')).length, before + 2);
  // Rollback and its undo see Hrana's transaction like any other checkpoint,
  // and Hrana's next reads see the branch where it moved.
  const moved = await api.call('POST', '/v1/projects/shop/branches/dev%2Falex/rollback',
                               { to: { actions: 1 } });
  assert.equal(await count(), n0 + 2);
  assert.equal((await db.execute('SELECT count(*) AS n FROM t')).rows[0].n, n0 + 2);
  await api.call('POST', '/v1/projects/shop/branches/dev%2Falex/rollback',
                 { to: { lsn: moved.previous_head_lsn } });
  assert.equal((await db.execute('SELECT count(*) AS n FROM t')).rows[0].n, n0 + 3);
  db.close();
  console.log('ok - interactive transactions committed (one checkpoint) and rolled back (none); rollback and undo see them');
}

async function credentials(server, api, bearer) {
  const read = await api.credential('dev/alex', 'read');
  const db = createClient({ url: hranaUrl(server, 'dev/alex'), authToken: read });
  assert.ok((await db.execute('SELECT count(*) AS n FROM t')).rows[0].n > 0);
  const refused = await rejects(db.execute("INSERT INTO t(name) VALUES ('nope')"), () => {});
  assert.equal(refused.code, 'READ_ONLY');
  await rejects(db.batch(["INSERT INTO t(name) VALUES ('nope')"], 'write'),
                (e) => assert.equal(e.code, 'READ_ONLY'));
  db.close();
  // A read-write credential of dev/alex writes there, and cannot open production.
  const rw = await api.credential('dev/alex', 'read_write');
  const mine = createClient({ url: hranaUrl(server, 'dev/alex'), authToken: rw });
  await mine.execute("INSERT INTO t(name) VALUES ('cred')");
  mine.close();
  const other = createClient({ url: hranaUrl(server, 'production'), authToken: rw });
  const e = await rejects(other.execute('SELECT 1'), () => {});
  assert.match(e.message, /branch|scope|credential|token/i);
  other.close();
  // An access token without sql:write reads only.
  const reader = createClient({ url: hranaUrl(server, 'dev/alex'),
                                authToken: await token(server, 'sql:read') });
  await rejects(reader.execute("INSERT INTO t(name) VALUES ('nope')"),
                (err) => assert.equal(err.code, 'READ_ONLY'));
  reader.close();
  console.log('ok - a read credential is refused writes; a credential opens its branch only');
}

async function expiry(server, api, bearer) {
  const db = createClient({ url: hranaUrl(server, 'dev/alex'), authToken: bearer });
  const before = (await api.checkpoints('dev/alex')).length;
  const tx = await db.transaction('write');
  await tx.execute("INSERT INTO t(name) VALUES ('late')");
  await sleep(STREAM_IDLE_SECONDS * 1000 + 1500);
  const e = await rejects(tx.execute('SELECT 1'), () => {});
  assert.equal(e.code, 'STREAM_EXPIRED');
  assert.deepEqual(await api.rows('dev/alex', "SELECT count(*) FROM t WHERE name = 'late'"), [[0]]);
  assert.equal((await api.checkpoints('dev/alex')).length, before);
  // The branch's writer slot is free again.
  await api.sql('dev/alex', "INSERT INTO t(name) VALUES ('after')");
  db.close();
  console.log('ok - an idle stream expires and its transaction rolls back');
}

async function urls(server, api, bearer) {
  await api.createBranch('dev');
  await api.sql('dev', 'CREATE TABLE which(name TEXT)');
  await api.sql('dev', "INSERT INTO which VALUES ('dev')");
  // Without the trailing '/', the client posts to .../shop/dev/v2/pipeline:
  // refused, never silently branch 'dev'.
  const cut = createClient({ url: `${server.url}/libsql/shop/dev%2Falex`, authToken: bearer });
  const e = await rejects(cut.execute('SELECT 1'), () => {});
  assert.equal(e.code, 'URL_AMBIGUOUS');
  assert.match(e.message, /end the URL with '\/'/i);
  cut.close();
  // 'dev' itself, explicitly: .../dev/~/
  const dev = createClient({ url: `${server.url}/libsql/shop/dev/~/`, authToken: bearer });
  assert.equal((await dev.execute('SELECT name FROM which')).rows[0].name, 'dev');
  dev.close();
  // A raw '/' in the branch works as %2F does.
  const raw = createClient({ url: `${server.url}/libsql/shop/dev/alex/`, authToken: bearer });
  assert.ok((await raw.execute('SELECT count(*) AS n FROM t')).rows[0].n > 0);
  raw.close();
  // A one-segment branch without its '/': no branch named at all.
  const prod = createClient({ url: `${server.url}/libsql/shop/production`, authToken: bearer });
  const p = await rejects(prod.execute('SELECT 1'), () => {});
  assert.equal(p.code, 'URL_NO_BRANCH');
  prod.close();
  // Names are told only to who may see them: 401 first, whatever the branch.
  for (const b of ['nope', 'dev']) {
    const r = await fetch(`${server.url}/libsql/shop/${b}/v2/pipeline`, {
      method: 'POST', body: JSON.stringify({ requests: [{ type: 'close' }] }),
    });
    assert.equal(r.status, 401, b);
    assert.ok(r.headers.get('www-authenticate').startsWith('Bearer'));
  }
  // A credential of dev/alex, on the cut-off URL: refused, never branch 'dev'.
  const cred = createClient({ url: `${server.url}/libsql/shop/dev%2Falex`,
                              authToken: await api.credential('dev/alex', 'read_write') });
  await rejects(cred.execute('SELECT name FROM which'), (err) => assert.doesNotMatch(String(err.code), /^SQLITE/));
  cred.close();
  // Version negotiation as the Hrana client does it (protocol 3 asked for):
  // it probes v3-protobuf, which is not served, and falls back to JSON v2.
  const hrana = req('@libsql/hrana-client');
  const probing = hrana.openHttp(hranaUrl(server, 'production'), bearer, undefined, undefined, 3);
  assert.equal(await probing.getVersion(), 2);
  const st = probing.openStream();
  assert.equal((await st.query('SELECT 7 AS n')).rows[0].n, 7);
  st.close();
  probing.close();
  // Version probes answer; the protobuf endpoint is not served (clients fall back to JSON).
  for (const [v, status] of [['v2', 200], ['v3', 200], ['v3-protobuf', 404]]) {
    const r = await fetch(`${hranaUrl(server, 'production')}${v}`);
    assert.equal(r.status, status, v);
  }
  console.log('ok - URLs: a cut-off URL is refused, /~/ names a branch exactly, probes answer');
}

async function rawProtocol(server, api, bearer) {
  const post = async (v, body) => {
    const r = await fetch(`${hranaUrl(server, 'dev/alex')}${v}/pipeline`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };
  // Hrana 3: get_autocommit, is_autocommit conditions, describe, store_sql.
  let r = await post('v3', { requests: [
    { type: 'store_sql', sql_id: 1, sql: 'SELECT name FROM t WHERE id = ?' },
    { type: 'execute', stmt: { sql_id: 1, args: [{ type: 'integer', value: '1' }] } },
    { type: 'describe', sql: 'SELECT id, name FROM t WHERE id = :id' },
    { type: 'get_autocommit' },
    { type: 'batch', batch: { steps: [
      { stmt: { sql: 'BEGIN' } },
      { condition: { type: 'not', cond: { type: 'is_autocommit' } }, stmt: { sql: 'SELECT 1' } },
      { condition: { type: 'error', step: 1 }, stmt: { sql: 'SELECT 2' } },
      { stmt: { sql: 'ROLLBACK' } },
    ] } },
    { type: 'close_sql', sql_id: 1 },
    { type: 'close' },
  ] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const res = r.body.results;
  assert.equal(r.body.baton, null);
  assert.equal(res[1].response.result.rows[0][0].value, 'ann');
  assert.deepEqual(res[2].response.result.params, [{ name: ':id' }]);
  assert.equal(res[2].response.result.is_readonly, true);
  assert.equal(res[3].response.is_autocommit, true);
  const batch = res[4].response.result;
  assert.notEqual(batch.step_results[1], null);
  assert.equal(batch.step_results[2], null);
  assert.equal(batch.step_errors[2], null);
  // A baton serves one request; a stream keeps its transaction across requests.
  r = await post('v2', { requests: [{ type: 'execute', stmt: { sql: 'BEGIN' } }] });
  const baton = r.body.baton;
  assert.ok(baton && baton.length > 30);
  r = await post('v2', { baton, requests: [
    { type: 'execute', stmt: { sql: "INSERT INTO t(name) VALUES ('raw')" } }] });
  assert.equal(r.body.results[0].type, 'ok');
  const reused = await post('v2', { baton, requests: [{ type: 'close' }] });
  assert.equal(reused.status, 400);
  assert.equal(reused.body.code, 'BATON_INVALID');
  // Another caller cannot take the stream over with its baton.
  const other = await fetch(`${hranaUrl(server, 'dev/alex')}v2/pipeline`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${await api.credential('dev/alex', 'read_write')}` },
    body: JSON.stringify({ baton: r.body.baton, requests: [{ type: 'close' }] }),
  });
  assert.equal(other.status, 400);
  r = await post('v2', { baton: r.body.baton, requests: [
    { type: 'execute', stmt: { sql: 'ROLLBACK' } }, { type: 'close' }] });
  assert.equal(r.body.results[0].type, 'ok');
  // Hrana 3's cursor: the batch's entries as NDJSON.
  const cur = await fetch(`${hranaUrl(server, 'dev/alex')}v3/cursor`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ batch: { steps: [
      { stmt: { sql: 'SELECT id, name FROM t WHERE id <= 2 ORDER BY id' } },
      { stmt: { sql: 'SELEC 1' } },
      { condition: { type: 'ok', step: 1 }, stmt: { sql: 'SELECT 3' } },
    ] } }),
  });
  assert.equal(cur.status, 200);
  const lines = (await cur.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines[0].baton === null || typeof lines[0].baton === 'string', true);
  assert.deepEqual(lines.slice(1).map((e) => e.type),
                   ['step_begin', 'row', 'row', 'step_end', 'step_error']);
  assert.deepEqual(lines[1].cols.map((c) => [c.name, c.decltype]), [['id', 'INTEGER'], ['name', 'TEXT']]);
  assert.equal(lines[2].row[1].value, 'ann');
  assert.equal(lines[5].step, 1);
  assert.equal(lines[5].error.code, 'SQLITE_ERROR');
  // Malformed input: clear Hrana errors, never a crash.
  for (const [body, code] of [
    ['{', 'PROTO_ERROR'],
    [{ requests: 'x' }, 'PROTO_ERROR'],
    [{ requests: [{ type: 'execute', stmt: { sql: 'SELECT ?', args: [{ type: 'integer', value: '9223372036854775808' }] } }] }, 'ARGS_INVALID'],
    [{ requests: [{ type: 'execute', stmt: { sql: 'SELECT ?', args: [{ type: 'blob', base64: '***' }] } }] }, 'ARGS_INVALID'],
    [{ requests: [{ type: 'get_autocommit' }] }, 'PROTO_ERROR'],  // Hrana 3's, on v2
  ]) {
    const bad = await post('v2', body);
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.equal(bad.body.code, code);
  }
  console.log('ok - raw Hrana 2/3: store_sql, describe, conditions, cursor, batons, malformed input');
}

// --- drizzle-kit migrate, then promote ------------------------------------------

const MIGRATIONS = {
  '0000_init.sql': [
    'CREATE TABLE `products` (\n\t`id` integer PRIMARY KEY NOT NULL,\n\t`name` text NOT NULL\n);',
    'CREATE UNIQUE INDEX `products_name_unique` ON `products` (`name`);',
  ].join('\n--> statement-breakpoint\n'),
  '0001_prices.sql': [
    'ALTER TABLE `products` ADD `price_cents` integer DEFAULT 0 NOT NULL;',
    'CREATE TABLE `orders` (\n\t`id` integer PRIMARY KEY NOT NULL,\n\t`product_id` integer NOT NULL REFERENCES `products`(`id`)\n);',
  ].join('\n--> statement-breakpoint\n'),
};

function runDrizzleKit(dir) {
  const bin = path.join(clientsDir, 'node_modules', 'drizzle-kit', 'bin.cjs');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bin, 'migrate', '--config', path.join(dir, 'drizzle.config.js')],
             { cwd: dir, timeout: 120000 }, (error, stdout, stderr) => {
               if (error) reject(new Error(`drizzle-kit migrate failed: ${error}\n${stdout}\n${stderr}`));
               else resolve(stdout + stderr);
             });
  });
}

async function drizzleMigrate(server, api, bearer) {
  await api.createBranch('feature/catalog');
  const dir = fs.mkdtempSync(path.join(server.tmp, 'drizzle-'));
  fs.mkdirSync(path.join(dir, 'drizzle', 'meta'), { recursive: true });
  const entries = Object.keys(MIGRATIONS).map((file, idx) => ({
    idx, version: '6', when: 1700000000000 + idx, tag: file.replace(/\.sql$/, ''), breakpoints: true,
  }));
  for (const [file, sql] of Object.entries(MIGRATIONS)) {
    fs.writeFileSync(path.join(dir, 'drizzle', file), sql);
  }
  fs.writeFileSync(path.join(dir, 'drizzle', 'meta', '_journal.json'),
                   JSON.stringify({ version: '7', dialect: 'sqlite', entries }, null, 2));
  fs.writeFileSync(path.join(dir, 'drizzle.config.js'), `module.exports = {
  dialect: 'turso',
  out: './drizzle',
  dbCredentials: { url: ${JSON.stringify(hranaUrl(server, 'feature/catalog'))},
                   authToken: ${JSON.stringify(bearer)} },
};\n`);
  const before = (await api.checkpoints('feature/catalog')).length;
  await runDrizzleKit(dir);
  const made = (await api.checkpoints('feature/catalog')).slice(0, -before || undefined);
  // Its migrations table, then every pending migration as one transaction:
  // two checkpoints, the newest holding both migrations.
  assert.equal(made.length, 2, JSON.stringify(made.map((c) => c.summary)));
  assert.match(made[1].summary, /^CREATE TABLE IF NOT EXISTS "__drizzle_migrations"/);
  assert.match(made[0].summary, /^CREATE TABLE `products`/);
  const tables = async (branch) => (await api.rows(branch,
    "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")).map((r) => r[0]);
  assert.deepEqual(await tables('feature/catalog'), ['__drizzle_migrations', 'orders', 'products']);
  assert.deepEqual(await api.rows('feature/catalog', 'SELECT count(*) FROM __drizzle_migrations'), [[2]]);
  assert.ok(!(await tables('production')).includes('products'), 'production is untouched');
  // Running it again applies nothing, and makes no checkpoint.
  const after = (await api.checkpoints('feature/catalog')).length;
  await runDrizzleKit(dir);
  assert.deepEqual(await api.rows('feature/catalog', 'SELECT count(*) FROM __drizzle_migrations'), [[2]]);
  assert.equal((await api.checkpoints('feature/catalog')).length, after);
  // drizzle-orm on the migrated branch.
  const { drizzle } = req('drizzle-orm/libsql');
  const { sqliteTable, integer, text } = req('drizzle-orm/sqlite-core');
  const { eq } = req('drizzle-orm');
  const products = sqliteTable('products', {
    id: integer('id').primaryKey(), name: text('name').notNull(),
    priceCents: integer('price_cents').notNull(),
  });
  const client = createClient({ url: hranaUrl(server, 'feature/catalog'), authToken: bearer });
  const orm = drizzle(client);
  await orm.insert(products).values([{ name: 'lamp', priceCents: 1999 }, { name: 'desk', priceCents: 25000 }]);
  const lamp = await orm.select().from(products).where(eq(products.name, 'lamp'));
  assert.deepEqual(lamp, [{ id: 1, name: 'lamp', priceCents: 1999 }]);
  client.close();
  // Promote: production gets both migrations, their table, and the rows.
  await api.promote('feature/catalog');
  assert.deepEqual(await tables('production'), ['__drizzle_migrations', 'orders', 'products']);
  assert.deepEqual(await api.rows('production', 'SELECT count(*) FROM __drizzle_migrations'), [[2]]);
  assert.deepEqual(await api.rows('production', 'SELECT name FROM products ORDER BY id'), [['lamp'], ['desk']]);
  console.log('ok - drizzle-kit migrate on a branch (two migrations), production untouched, then promoted');
}

// --- Kysely -------------------------------------------------------------------------

async function kysely(server, api, bearer) {
  const { Kysely, sql } = req('kysely');
  const { LibsqlDialect } = req('@libsql/kysely-libsql');
  await api.createBranch('kysely');
  const db = new Kysely({ dialect: new LibsqlDialect({ url: hranaUrl(server, 'kysely'), authToken: bearer }) });
  await db.schema.createTable('person')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('first_name', 'text', (c) => c.notNull())
    .addColumn('age', 'integer')
    .execute();
  await db.insertInto('person').values([
    { first_name: 'Ann', age: 31 }, { first_name: 'Bo', age: 17 }, { first_name: 'Cy', age: null },
  ]).execute();
  const adults = await db.selectFrom('person').select(['first_name', 'age'])
    .where('age', '>=', 18).orderBy('first_name').execute();
  assert.deepEqual(adults, [{ first_name: 'Ann', age: 31 }]);
  await db.updateTable('person').set({ age: 18 }).where('first_name', '=', 'Bo').execute();
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('person').values({ first_name: 'Di', age: 40 }).execute();
    await trx.deleteFrom('person').where('age', 'is', null).execute();
  });
  const all = await db.selectFrom('person').select(({ fn }) => [fn.countAll().as('n'), fn.max('age').as('oldest')])
    .executeTakeFirstOrThrow();
  assert.equal(Number(all.n), 3);
  assert.equal(Number(all.oldest), 40);
  const raw = await sql`SELECT group_concat(first_name, ',') AS names FROM (SELECT first_name FROM person ORDER BY id)`.execute(db);
  assert.equal(raw.rows[0].names, 'Ann,Bo,Di');
  await db.destroy();
  console.log('ok - Kysely (@libsql/kysely-libsql): typed queries and a transaction');
}

// --- the same random workload through Hrana and through REST ---------------------

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// JSON for the REST route, with BigInt exact and blobs as {"$blob": base64}.
function restJson(v) {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return JSON.stringify({ $blob: Buffer.from(v).toString('base64') });
  if (Array.isArray(v)) return '[' + v.map(restJson).join(',') + ']';
  if (v !== null && typeof v === 'object') {
    return '{' + Object.entries(v).map(([k, x]) => JSON.stringify(k) + ':' + restJson(x)).join(',') + '}';
  }
  return JSON.stringify(v);
}

async function differential(server, api, bearer) {
  const seed = Number(arg('--seed', String(Math.floor(Math.random() * 2 ** 31))));
  console.log(`# differential workload seed ${seed} (replay: --seed ${seed})`);
  const rand = mulberry32(seed);
  const pick = (n) => Math.floor(rand() * n);
  const value = () => {
    switch (pick(6)) {
      case 0: return null;
      case 1: return BigInt(pick(2000)) - 1000n;
      case 2: return (pick(2) ? 1n : -1n) * (2n ** 62n + BigInt(pick(1e9)));
      // Never integral: a JS number travels as a Hrana float, while REST's JSON
      // 7183 is an integer (7183.0 would differ in an untyped column).
      case 3: return pick(100000) / 8 + 0.0625;
      case 4: return 'text ' + pick(1e6) + (pick(4) ? '' : " 'quoted' é");
      default: return new Uint8Array(Array.from({ length: pick(12) }, () => pick(256)));
    }
  };
  await api.createBranch('diff/hrana');
  await api.createBranch('diff/rest');
  const db = createClient({ url: hranaUrl(server, 'diff/hrana'), authToken: bearer, intMode: 'bigint' });
  const restScript = async (stmts, expectOk) => {
    const sql = stmts.length === 1 ? stmts[0][0] : stmts.map(([q]) => q + ';\n').join('');
    const params = stmts.flatMap(([, p]) => p);
    const r = await fetch(`${server.url}/v1/projects/shop/branches/diff%2Frest/sql`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' },
      body: `{"sql":${JSON.stringify(sql)},"params":${restJson(params)}}`,
    });
    assert.equal(r.status === 200, expectOk, `REST ${sql}: ${r.status} ${await r.clone().text()}`);
  };
  const both = async (stmts, kind) => {
    // Hrana: one statement autocommits; several run as a batch or an
    // interactive transaction. REST: one script. Either way one transaction.
    let ok = true;
    try {
      if (stmts.length === 1) {
        await db.execute({ sql: stmts[0][0], args: stmts[0][1] });
      } else if (kind === 'batch') {
        await db.batch(stmts.map(([q, p]) => ({ sql: q, args: p })), 'write');
      } else {
        const tx = await db.transaction('write');
        try {
          for (const [q, p] of stmts) await tx.execute({ sql: q, args: p });
          await tx.commit();
        } catch (e) {
          await tx.rollback();
          throw e;
        }
      }
    } catch (e) {
      ok = false;
    }
    await restScript(stmts, ok);
  };
  await both([['CREATE TABLE d(id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB)', []]]);
  let nextId = 1;
  const insert = () => {
    const id = pick(5) ? BigInt(nextId++) : BigInt(1 + pick(nextId));  // sometimes a clash
    return ['INSERT INTO d(id, i, r, s, b) VALUES (?, ?, ?, ?, ?)', [id, value(), value(), value(), value()]];
  };
  for (let step = 0; step < 80; ++step) {
    switch (pick(6)) {
      case 0: case 1: await both([insert()]); break;
      case 2: await both([['UPDATE d SET i = ?, s = ? WHERE id % 3 = ?', [value(), value(), BigInt(pick(3))]]]); break;
      case 3: await both([['DELETE FROM d WHERE id = ?', [BigInt(1 + pick(nextId))]]]); break;
      case 4: await both([insert(), insert(), ['UPDATE d SET r = ? WHERE id = ?', [value(), BigInt(pick(nextId))]]], 'batch'); break;
      default: await both([insert(), ['DELETE FROM d WHERE i IS NULL AND id = ?', [BigInt(pick(nextId))]]], 'transaction'); break;
    }
  }
  db.close();
  const dump = (branch) => api.rows(branch,
    'SELECT id, typeof(i), CAST(i AS TEXT), typeof(r), r, s, hex(b) FROM d ORDER BY id');
  assert.deepEqual(await dump('diff/hrana'), await dump('diff/rest'));
  const history = async (branch) => (await api.checkpoints(branch))
    .filter((c) => c.kind === 'sql').map((c) => [c.summary, c.rows_affected]);
  const h = await history('diff/hrana');
  assert.deepEqual(h, await history('diff/rest'));
  assert.ok(h.length > 40, `a workload with commits (${h.length})`);
  // Promote replays Hrana's checkpoints (autocommit, batches, interactive
  // transactions) like any other: production ends with the same rows.
  await api.call('POST', '/v1/projects/shop/branches/diff%2Fhrana/promote', { mode: 'replay' });
  assert.deepEqual(await dump('production'), await dump('diff/hrana'));
  console.log(`ok - differential: ${h.length} checkpoints, the same rows and checkpoints through Hrana and REST; promote replays them`);
}

// --- main ---------------------------------------------------------------------

async function main() {
  const server = await startServer(path.resolve(arg('--branchdb')));
  let failed = false;
  try {
    const bearer = await token(server);
    const api = rest(server, bearer);
    await api.call('POST', '/v1/projects', { name: 'shop' });
    await executeAndValues(server, api, bearer);
    await errors(server, api, bearer);
    await checkpointsAndBatch(server, api, bearer);
    await transactions(server, api, bearer);
    await credentials(server, api, bearer);
    await expiry(server, api, bearer);
    await urls(server, api, bearer);
    await rawProtocol(server, api, bearer);
    await drizzleMigrate(server, api, bearer);
    await kysely(server, api, bearer);
    await differential(server, api, bearer);
  } catch (e) {
    failed = true;
    console.error('FAIL:', e);
    console.error('--- server log ---\n' + server.log().slice(-4000));
  } finally {
    await server.stop();
  }
  process.exit(failed ? 1 : 0);
}

main();
