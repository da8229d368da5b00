// The MCP endpoint driven by the official MCP TypeScript SDK client
// (@modelcontextprotocol/sdk, Client + StreamableHTTPClientTransport) against
// a real `branchdb serve`: discovery and auth failures, tools/list with
// annotations and output schemas (the SDK validates every structuredContent
// against them), an agent's try -> check -> roll back loop (branch, write,
// check, roll back, undo the rollback, diff, promote, undo the promote), API
// errors as tool results, a database credential, describe_branch, get_schema
// and at_lsn reads checked against REST, a read-only session
// (/mcp?readonly=true), no undo offered on a protected branch to an agent
// token (and the admin's undo works), and a long session: the SDK's own OAuth
// client-credentials support (ClientCredentialsProvider) against a server
// whose tokens last 60 s, kept working past its first token's lifetime (the
// transport gets a 401, fetches a new token by itself and retries).
//
//   node sdk_client_test.cjs --branchdb <path of branchdb> --sdk <dir with node_modules>
// Exit code 0 when every check passed.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    console.error(`usage: node sdk_client_test.cjs --branchdb BIN --sdk DIR (missing ${name})`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const sdkRequire = createRequire(path.join(path.resolve(arg('--sdk')), 'package.json'));
const { Client } = sdkRequire('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = sdkRequire(
  '@modelcontextprotocol/sdk/client/streamableHttp.js');
const { ClientCredentialsProvider } = sdkRequire(
  '@modelcontextprotocol/sdk/client/auth-extensions.js');

// --- a real server ----------------------------------------------------------

async function startServer(binary, env = {}) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bdb-mcp-'));
  const dataDir = path.join(tmp, 'data');
  const proc = spawn(binary, ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0',
                              '--log-level', 'info'],
                     { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
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
    url, creds, proc,
    log: () => log,
    // SIGTERM, then SIGKILL after 20 s; the data directory goes once it exited.
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

async function connect(server, bearer, query = '') {
  const headers = bearer ? { Authorization: `Bearer ${bearer}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp${query}`),
                                                      { requestInit: { headers } });
  const client = new Client({ name: 'branchdb-mcp-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

// --- checks -----------------------------------------------------------------

const EXPECTED_TOOLS = [
  'list_projects', 'create_project', 'list_branches', 'create_branch', 'delete_branch',
  'run_sql', 'list_checkpoints', 'label_checkpoint', 'rollback', 'reset_from_parent',
  'compare_schema', 'diff_data', 'promote_branch', 'get_database_credential',
  'describe_branch', 'get_schema',
];
const READ_ONLY_TOOLS = [
  'list_projects', 'list_branches', 'describe_branch', 'get_schema', 'list_checkpoints',
  'compare_schema', 'diff_data',
];
const DESTRUCTIVE_TOOLS = ['delete_branch', 'rollback', 'reset_from_parent', 'promote_branch',
                           'run_sql'];

async function rest(server, bearer, method, route, body) {
  const r = await fetch(`${server.url}${route}`, {
    method,
    headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const t = await r.text();
  return { status: r.status, body: t ? JSON.parse(t) : null };
}

function text(result) {
  return result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

async function authFailures(server) {
  // Raw: 401 with the RFC 9728 pointer, which resolves to the metadata.
  const raw = await fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  assert.equal(raw.status, 401);
  const challenge = raw.headers.get('www-authenticate');
  const m = /^Bearer resource_metadata="([^"]+)"/.exec(challenge);
  assert.ok(m, `WWW-Authenticate: ${challenge}`);
  const meta = await (await fetch(m[1])).json();
  assert.equal(meta.resource, server.url);
  assert.deepEqual(meta.authorization_servers, [server.url]);
  assert.ok(meta.scopes_supported.includes('sql:write'));
  assert.deepEqual(meta.bearer_methods_supported, ['header']);

  // The SDK client cannot connect without a token, nor with a bad one.
  for (const bearer of [null, 'not-a-token']) {
    await assert.rejects(connect(server, bearer), (e) => e.code === 401 || /401/.test(String(e)),
                         `connect with token ${bearer} must fail with 401`);
  }
  console.log('ok auth failures: 401 + resource_metadata, SDK connect refused');
}

async function agentLoop(server) {
  const client = await connect(server, await token(server));
  assert.equal(client.getServerVersion().name, 'branchdb');
  assert.match(client.getInstructions(), /rollback/);

  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), [...EXPECTED_TOOLS].sort());
  for (const t of tools) {
    assert.equal(t.inputSchema.type, 'object', t.name);
    assert.ok(t.description.length > 20, t.name);
    assert.equal(t.outputSchema.type, 'object', t.name);
    assert.equal(t.annotations.readOnlyHint, READ_ONLY_TOOLS.includes(t.name), t.name);
    assert.equal(t.annotations.destructiveHint, DESTRUCTIVE_TOOLS.includes(t.name), t.name);
    assert.equal(typeof t.annotations.idempotentHint, 'boolean', t.name);
    assert.equal(t.annotations.openWorldHint, false, t.name);
  }
  assert.equal(tools.find((t) => t.name === 'run_sql').inputSchema.properties.params.items.type
    .includes('string'), true);
  console.log(`ok tools/list: ${tools.length} tools, annotated, with output schemas`);

  const call = async (name, args) => {
    const r = await client.callTool({ name, arguments: args });
    assert.ok(!r.isError, `${name} failed: ${text(r)}`);
    return r;
  };
  const count = async (branch) => {
    const r = await call('run_sql', { project: 'shop', branch, sql: 'SELECT count(*) FROM items',
                                      read_only: true });
    assert.equal(r.structuredContent.lsn, null);
    return r.structuredContent.results[0].rows[0][0];
  };

  await call('create_project', { name: 'shop' });
  await call('run_sql', {
    project: 'shop', branch: 'production',
    sql: 'CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT); ' +
         'INSERT INTO items(name) VALUES (?), (?), (?)',
    params: ['apple', 'pear', 'plum'],
  });
  const branch = await call('create_branch', { project: 'shop', name: 'agent/try-1',
                                               parent: 'production', ttl_seconds: 3600 });
  assert.equal(branch.structuredContent.name, 'agent/try-1');
  assert.notEqual(branch.structuredContent.expires_at, null);

  // Try.
  const del = await call('run_sql', { project: 'shop', branch: 'agent/try-1',
                                      sql: 'DELETE FROM items WHERE name = :n',
                                      params: { n: 'apple' } });
  const lsn = del.structuredContent.lsn;
  assert.equal(typeof lsn, 'number');
  assert.match(text(del), new RegExp(`checkpoint LSN ${lsn}`));
  assert.match(text(del), /To undo it: rollback \{project: "shop", branch: "agent\/try-1", actions: 1\}/);
  // Check.
  assert.equal(await count('agent/try-1'), 2);
  assert.equal(await count('production'), 3);
  // Roll back, then undo the rollback with previous_head_lsn.
  const back = await call('rollback', { project: 'shop', branch: 'agent/try-1', actions: 1 });
  assert.equal(back.structuredContent.previous_head_lsn, lsn);
  assert.match(text(back), new RegExp(`to_lsn: ${lsn}`));
  assert.equal(await count('agent/try-1'), 3);
  await call('rollback', { project: 'shop', branch: 'agent/try-1',
                           to_lsn: back.structuredContent.previous_head_lsn });
  assert.equal(await count('agent/try-1'), 2);
  console.log('ok try/check/roll back/undo');

  await call('label_checkpoint', { project: 'shop', branch: 'agent/try-1', label: 'reviewed' });
  const history = await call('list_checkpoints', { project: 'shop', branch: 'agent/try-1',
                                                   limit: 10 });
  assert.ok(history.structuredContent.checkpoints.some((c) => (c.labels || []).includes('reviewed')));

  const diff = await call('diff_data', { project: 'shop', branch: 'agent/try-1' });
  const items = diff.structuredContent.tables.find((t) => t.table === 'items');
  assert.equal(items.rows_removed, 1);
  assert.match(text(diff), /items/);
  const schema = await call('compare_schema', { project: 'shop', branch: 'agent/try-1' });
  assert.deepEqual(schema.structuredContent.objects, []);

  // Promote onto production: a dry run and a failing verify change nothing;
  // then for real (checked by verify), and undo it on production.
  const dry = await call('promote_branch', { project: 'shop', branch: 'agent/try-1',
                                             dry_run: true });
  assert.equal(dry.structuredContent.dry_run, true);
  assert.match(text(dry), /Nothing changed/);
  const refused = await client.callTool({ name: 'promote_branch', arguments: {
    project: 'shop', branch: 'agent/try-1', verify: 'SELECT count(*) = 99 FROM items' } });
  assert.equal(refused.isError, true);
  assert.equal(refused.structuredContent.error.code, 'verify_failed');
  assert.equal(await count('production'), 3);
  const promoted = await call('promote_branch', { project: 'shop', branch: 'agent/try-1',
                                                  verify: 'SELECT count(*) = 2 FROM items' });
  assert.equal(promoted.structuredContent.verify.ok, true);
  assert.equal(promoted.structuredContent.branch, 'production');
  assert.equal(await count('production'), 2);
  await call('rollback', { project: 'shop', branch: 'production',
                           to_lsn: promoted.structuredContent.previous_head_lsn });
  assert.equal(await count('production'), 3);
  console.log('ok label, checkpoints, diff, promote (dry run, verify), undo promote');

  // API errors are tool results with isError and the API's code.
  const bad = await client.callTool({ name: 'run_sql', arguments: {
    project: 'shop', branch: 'agent/try-1', sql: 'SELEC nonsense' } });
  assert.equal(bad.isError, true);
  assert.equal(bad.structuredContent.error.code, 'sql_error');
  assert.match(text(bad), /Nothing was committed/);
  const ro = await client.callTool({ name: 'run_sql', arguments: {
    project: 'shop', branch: 'production', sql: 'DELETE FROM items', read_only: true } });
  assert.equal(ro.structuredContent.error.code, 'read_only');
  const missing = await client.callTool({ name: 'list_branches', arguments: { project: 'nope' } });
  assert.equal(missing.structuredContent.error.code, 'project_not_found');
  // Arguments outside the schema and unknown tools are JSON-RPC errors.
  await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }),
                       (e) => e.code === -32602);
  await assert.rejects(client.callTool({ name: 'rollback', arguments: {
    project: 'shop', branch: 'agent/try-1', actions: 1, to_lsn: 2 } }), (e) => e.code === -32602);
  console.log('ok errors');

  // A database credential works on the branch's SQL route.
  const cred = await call('get_database_credential', { project: 'shop', branch: 'agent/try-1',
                                                       access: 'read' });
  const sql = await fetch(`${server.url}/v1/projects/shop/branches/agent%2Ftry-1/sql`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${cred.structuredContent.credential}`,
               'Content-Type': 'application/json' },
    body: JSON.stringify({ sql: 'SELECT count(*) FROM items' }),
  });
  assert.equal(sql.status, 200);
  await call('reset_from_parent', { project: 'shop', branch: 'agent/try-1' });
  await call('delete_branch', { project: 'shop', branch: 'agent/try-1' });
  const left = await call('list_branches', { project: 'shop' });
  assert.deepEqual(left.structuredContent.branches.map((b) => b.name), ['production']);
  const projects = await call('list_projects', {});
  assert.ok(projects.structuredContent.projects.some((p) => p.name === 'shop'));
  await client.close();

  // A token without projects:write: the tool reports the API's 403.
  const narrow = await connect(server, await token(server, 'branches:write'));
  const denied = await narrow.callTool({ name: 'create_project', arguments: { name: 'x' } });
  assert.equal(denied.isError, true);
  assert.equal(denied.structuredContent.error.code, 'insufficient_scope');
  await narrow.close();
  // A token without any write scope gets the read-only session by itself:
  // the tool is not even listed, and calling it is a JSON-RPC error.
  const reader = await connect(server, await token(server, 'branches:read'));
  const listed = (await reader.listTools()).tools.map((t) => t.name);
  assert.ok(!listed.includes('create_project') && listed.includes('list_branches'));
  await assert.rejects(reader.callTool({ name: 'create_project', arguments: { name: 'x' } }),
                       (e) => e.code === -32602);
  await reader.close();
  console.log('ok credential, reset, delete, scopes');
}

async function agentTools(server) {
  const admin = await token(server);
  const client = await connect(server, admin);
  const call = async (name, args) => {
    const r = await client.callTool({ name, arguments: args });
    assert.ok(!r.isError, `${name} failed: ${text(r)}`);
    return r;
  };
  await call('create_project', { name: 'tt' });
  const first = (await call('run_sql', { project: 'tt', branch: 'production',
    sql: 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES (\'a\')' }))
    .structuredContent.lsn;
  await call('run_sql', { project: 'tt', branch: 'production',
                          sql: 'INSERT INTO t(v) VALUES (\'b\')' });

  // describe_branch and get_schema agree with REST.
  const base = '/v1/projects/tt/branches/production';
  const described = await call('describe_branch', { project: 'tt', branch: 'production' });
  assert.deepEqual(described.structuredContent.branch, (await rest(server, admin, 'GET', base)).body);
  assert.equal(described.structuredContent.rollback.allowed, true);
  const schema = await call('get_schema', { project: 'tt', branch: 'production' });
  assert.deepEqual(schema.structuredContent.tables.map((t) => t.name), ['t']);
  assert.deepEqual(schema.structuredContent.tables[0].columns.map((c) => [c.name, c.type]),
                   [['id', 'INTEGER'], ['v', 'TEXT']]);
  const restSchema = (await rest(server, admin, 'GET', `${base}/schema`)).body;
  assert.equal(schema.structuredContent.lsn, restSchema.lsn);

  // at_lsn: the state of an earlier checkpoint, as REST reads it.
  const past = await call('run_sql', { project: 'tt', branch: 'production',
                                       sql: 'SELECT count(*) FROM t', at_lsn: first });
  const restPast = await rest(server, admin, 'POST', `${base}/sql`,
                              { sql: 'SELECT count(*) FROM t', lsn: first });
  assert.deepEqual(past.structuredContent.results, restPast.body.results);
  assert.equal(past.structuredContent.results[0].rows[0][0], 1);
  console.log('ok describe_branch, get_schema, at_lsn agree with REST');

  // A read-only session: reads only; a destructive tool is refused, naming the mode.
  const ro = await connect(server, admin, '?readonly=true');
  const roTools = (await ro.listTools()).tools;
  assert.deepEqual(roTools.map((t) => t.name).sort(), [...READ_ONLY_TOOLS, 'run_sql'].sort());
  assert.ok(roTools.every((t) => t.annotations.readOnlyHint && !t.annotations.destructiveHint));
  await assert.rejects(ro.callTool({ name: 'rollback', arguments: {
    project: 'tt', branch: 'production', actions: 1 } }),
    (e) => e.code === -32602 && /read-only/.test(e.message));
  const write = await ro.callTool({ name: 'run_sql', arguments: {
    project: 'tt', branch: 'production', sql: 'DELETE FROM t' } });
  assert.equal(write.isError, true);
  assert.equal(write.structuredContent.error.code, 'read_only');
  const read = await ro.callTool({ name: 'run_sql', arguments: {
    project: 'tt', branch: 'production', sql: 'SELECT count(*) FROM t' } });
  assert.equal(read.structuredContent.results[0].rows[0][0], 2);
  await ro.close();
  console.log('ok read-only session');

  // Protected: an agent token's write goes through, and no undo is offered
  // that would be refused to it; the admin (branches:protect) can make it.
  assert.equal((await rest(server, admin, 'PATCH', base, { protected: true })).status, 200);
  const agentToken = await token(server, 'branches:write sql:write');
  const agent = await connect(server, agentToken);
  const del = await agent.callTool({ name: 'run_sql', arguments: {
    project: 'tt', branch: 'production', sql: 'DELETE FROM t' } });
  assert.ok(!del.isError, text(del));
  assert.doesNotMatch(text(del), /To undo it/);
  assert.match(text(del), /"production" is protected/);
  assert.match(text(del), /branches:protect/);
  const refused = await rest(server, agentToken, 'POST', `${base}/rollback`, { to: { actions: 1 } });
  assert.equal(refused.body.error.code, 'branch_protected');
  const undone = await rest(server, admin, 'POST', `${base}/rollback`, { to: { actions: 1 } });
  assert.equal(undone.status, 200);
  await agent.close();
  await client.close();
  console.log('ok no undo offered on a protected branch to an agent; the admin\'s undo works');
}

// The SDK fetches and renews tokens itself (client credentials): a session
// outlives its first token. The server's tokens last 60 s (the minimum).
async function longSession(server) {
  const meta = await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json();
  assert.deepEqual(meta.grant_types_supported, ['client_credentials']);
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
  assert.ok(meta.authorization_endpoint, 'the SDK requires authorization_endpoint');
  assert.ok(meta.scopes_supported.includes('branches:protect'));
  let tokenRequests = 0;
  const countingFetch = (url, init) => {
    if (String(url).endsWith('/oauth/token')) tokenRequests++;
    return fetch(url, init);
  };
  const provider = new ClientCredentialsProvider({
    clientId: server.creds.client_id, clientSecret: server.creds.client_secret,
  });
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`),
                                                      { authProvider: provider, fetch: countingFetch });
  const client = new Client({ name: 'branchdb-long-session', version: '1.0.0' });
  await client.connect(transport);
  const first = provider.tokens().access_token;
  const created = await client.callTool({ name: 'create_project', arguments: { name: 'long' } });
  assert.ok(!created.isError, text(created));
  const issued = Date.now();
  // Past the first token's lifetime (60 s, and a margin for the clock's second).
  await new Promise((resolve) => setTimeout(resolve, 62000 - (Date.now() - issued)));
  const expired = await rest(server, first, 'GET', '/v1/projects');
  assert.equal(expired.status, 401, 'the first token must have expired');
  const after = await client.callTool({ name: 'run_sql', arguments: {
    project: 'long', branch: 'production', sql: 'SELECT 1' } });
  assert.ok(!after.isError, text(after));
  assert.notEqual(provider.tokens().access_token, first);
  assert.ok(tokenRequests >= 2, `token requests: ${tokenRequests}`);
  await client.close();
  console.log(`ok long session: past the first token's lifetime (${tokenRequests} token requests)`);
}

(async () => {
  const server = await startServer(path.resolve(arg('--branchdb')));
  const shortTokens = await startServer(path.resolve(arg('--branchdb')),
                                        { BRANCHDB_TOKEN_LIFETIME_SECONDS: '60' });
  let failed = false;
  try {
    // The long session waits a token's lifetime: it runs beside the rest.
    const long = longSession(shortTokens);
    await authFailures(server);
    await agentLoop(server);
    await agentTools(server);
    await long;
    console.log('PASS');
  } catch (e) {
    failed = true;
    console.error('FAIL:', e);
    console.error('--- server log ---\n' + server.log().split('\n').slice(-40).join('\n'));
    console.error('--- short-token server log ---\n' +
                  shortTokens.log().split('\n').slice(-20).join('\n'));
  } finally {
    await server.stop();
    await shortTokens.stop();
  }
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.error('FAIL:', e);
  process.exit(1);
});
