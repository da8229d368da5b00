// The web console in a real browser (Debian's chromium, driven by
// puppeteer-core) against a real `branchdb serve`: sign-in refusals (a wrong
// secret, an expired token, a token the server refuses), sign-in, a project
// and its branch tree, SQL writes in the editor with their checkpoint and
// undo, a child branch, an agent's writes through the API showing up on the
// timeline while the page watches, a rollback of three actions and its undo
// in the UI, a fork from a checkpoint with a TTL, a reset and its undo, its
// deletion, a label, a schema diff and a data diff paged, two checkpoints
// compared, a refusal (delete) on a protected branch, SQL at a past
// LSN, a promote dry run and a promote with its undo, keyboard tabs, dark
// mode. No uncaught error, no console error and no failed request other than
// the refusals the scenario provokes. Screenshots of each main screen go to
// --artifacts.
//
//   node browser_test.cjs --branchdb BIN --deps DIR_WITH_NODE_MODULES --artifacts DIR
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
    console.error(`usage: node browser_test.cjs --branchdb BIN --deps DIR --artifacts DIR (missing ${name})`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const depsRequire = createRequire(path.join(path.resolve(arg('--deps')), 'package.json'));
const puppeteer = depsRequire('puppeteer-core');
const artifacts = path.resolve(arg('--artifacts'));
fs.mkdirSync(artifacts, { recursive: true });

// --- a real server ------------------------------------------------------------

async function startServer(binary) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bdb-console-'));
  const dataDir = path.join(tmp, 'data');
  const proc = spawn(binary, ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0',
                              '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line after 60 s:\n${log}`)), 60000);
    const onData = (chunk) => {
      log += chunk.toString();
      const m = /event=listening address=(https?:\/\/\S+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  }).catch((e) => { proc.kill('SIGKILL'); fs.rmSync(tmp, { recursive: true, force: true }); throw e; });
  const creds = JSON.parse(fs.readFileSync(path.join(dataDir, 'admin-credentials.json'), 'utf8'));
  return {
    url, creds, log: () => log,
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

// The API as the agent sees it (not through the page).
async function agent(server) {
  const basic = Buffer.from(`${server.creds.client_id}:${server.creds.client_secret}`).toString('base64');
  const r = await fetch(`${server.url}/oauth/token`, {
    method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials' }),
    headers: { Authorization: `Basic ${basic}` } });
  const token = (await r.json()).access_token;
  const call = async (method, p, body) => {
    const res = await fetch(`${server.url}${p}`, {
      method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await res.json().catch(() => null);
    assert.ok(res.ok, `${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  call.token = token;
  return call;
}

// --- the browser ----------------------------------------------------------------

const problems = [];   // what must not happen
const refusals = [];   // responses >= 400, checked against the expected ones
let expected = [];     // [{status, path: RegExp}] the current step provokes

function watch(page) {
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium logs every >= 400 answer as a console error; those are checked
    // one by one as responses below.
    if (/^Failed to load resource: the server responded with a status of/.test(m.text())) return;
    problems.push(`console error: ${m.text()}`);
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('response', (r) => {
    if (r.status() < 400) return;
    const p = new URL(r.url()).pathname;
    const ok = expected.some((e) => e.status === r.status() && e.path.test(p));
    refusals.push(`${r.status()} ${r.request().method()} ${p}`);
    if (!ok) problems.push(`unexpected ${r.status()} for ${r.request().method()} ${p}`);
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

async function text(page, selector) {
  await page.waitForSelector(selector, { visible: true });
  return page.$eval(selector, (el) => el.textContent);
}

// Waits until selector's text matches re.
async function waitText(page, selector, re, timeout = 30000) {
  await page.waitForFunction((s, src, flags) => {
    const el = document.querySelector(s);
    return el && new RegExp(src, flags).test(el.textContent);
  }, { timeout }, selector, re.source, re.flags).catch(async (e) => {
    const got = await page.$eval(selector, (el) => el.textContent).catch(() => '(absent)');
    throw new Error(`${selector} never matched ${re}: ${got.slice(0, 500)} (${e.message})`);
  });
}

// Clicks the button (or link) inside scope whose text matches re.
async function click(page, scope, re) {
  await page.waitForFunction((s, src) => [...document.querySelectorAll(`${s} button, ${s} a`)]
    .some((b) => new RegExp(src).test(b.textContent) && !b.disabled), { timeout: 30000 }, scope, re.source);
  await page.evaluate((s, src) => {
    const b = [...document.querySelectorAll(`${s} button, ${s} a`)]
      .find((x) => new RegExp(src).test(x.textContent) && !x.disabled);
    b.click();
  }, scope, re.source);
}

async function fill(page, selector, value) {
  await page.waitForSelector(selector, { visible: true });
  await page.$eval(selector, (el) => { el.value = ''; });
  await page.type(selector, value);
}

async function tab(page, name) {
  await page.click(`#tab-${name}`);
  await page.waitForSelector(`#tab-${name}[aria-selected=true]`);
}

// The LSNs on the timeline, newest first, with their flags.
async function timeline(page) {
  return page.$$eval('#timeline li.checkpoint', (items) => items.map((li) => ({
    lsn: Number(li.dataset.lsn),
    kind: li.querySelector('.kind').textContent,
    rolledBack: li.classList.contains('rolled-back'),
    head: li.classList.contains('head'),
    text: li.textContent,
  })));
}

async function main() {
  const server = await startServer(arg('--branchdb'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1366, height: 800 });  // a laptop screen
    watch(page);
    const api = await agent(server);
    const branchApi = (b, tail = '') => `/v1/projects/shop/branches/${encodeURIComponent(b)}${tail}`;
    const count = async (b) => (await api('POST', branchApi(b, '/sql'), { sql: 'SELECT count(*) FROM items', read_only: true })).results[0].rows[0][0];

    // The page and its security headers.
    const res = await page.goto(server.url + '/', { waitUntil: 'networkidle0' });
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-security-policy'], /script-src 'self'/);
    await page.waitForSelector('#signin-client');
    await shot(page, '01-sign-in');

    // A wrong secret: a clear message, no session.
    expected = [{ status: 400, path: /^\/oauth\/token$/ }];
    await fill(page, '#signin-client input[name=client_id]', server.creds.client_id);
    await fill(page, '#signin-client input[name=client_secret]', 'not-the-secret');
    await page.click('#signin-client button[type=submit]');
    await waitText(page, '#signin-error', /Wrong client id or secret/);

    // An expired token: refused with a message saying so (no request needed).
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const expired = `${b64({ alg: 'EdDSA', typ: 'at+jwt' })}.${b64({ exp: 1000, sub: 'x' })}.c2ln`;
    await fill(page, '#signin-token textarea', expired);
    await page.click('#signin-token button[type=submit]');
    await waitText(page, '#signin-error', /expired/);
    // A well-formed, unexpired token the server refuses: its answer shown.
    expected = [{ status: 401, path: /^\/v1\/projects$/ }];
    const forged = `${b64({ alg: 'EdDSA', typ: 'at+jwt' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 600 })}.c2ln`;
    await fill(page, '#signin-token textarea', forged);
    await page.click('#signin-token button[type=submit]');
    await waitText(page, '#signin-error', /\S/);
    assert.doesNotMatch(await text(page, '#signin-error'), /expired/);
    expected = [];

    // Sign in for real; create a project; the tree shows production.
    await fill(page, '#signin-client input[name=client_secret]', server.creds.client_secret);
    await page.click('#signin-client button[type=submit]');
    await waitText(page, '#main', /No project yet/);
    await fill(page, '#new-project-name', 'shop');
    await page.click('#new-project button[type=submit]');
    await page.waitForSelector('#tree a.branch[data-branch="production"]');
    await waitText(page, '#notice', /Project shop created/);
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length + document.cookie.length), 0,
                 'the token is kept in memory only');

    // SQL in the editor: a write shows its checkpoint and its undo.
    await tab(page, 'sql');
    await page.$eval('#sql-editor', (el) => { el.value = ''; });
    await page.type('#sql-editor', 'CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);\n' +
      'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120) ' +
      "INSERT INTO items(name) SELECT 'item ' || i FROM n");
    await page.keyboard.down('Control');
    await page.keyboard.press('Enter');
    await page.keyboard.up('Control');
    await waitText(page, '#sql-commit', /Committed: checkpoint LSN \d+/);
    assert.equal(await count('production'), 120);
    // A failing script: the failing statement is marked, nothing committed.
    expected = [{ status: 400, path: /\/sql$/ }];
    await page.$eval('#sql-editor', (el) => { el.value = "INSERT INTO items(name) VALUES ('x'); SELEC 1"; });
    await page.click('#sql-run');
    await page.waitForSelector('.sql-error .failing mark');
    assert.match(await text(page, '.sql-error .failing'), /SELEC 1/);
    expected = [];
    assert.equal(await count('production'), 120);
    // A write, then its undo from the editor.
    await page.$eval('#sql-editor', (el) => { el.value = 'DELETE FROM items WHERE id > 100'; });
    await page.click('#sql-run');
    await waitText(page, '#sql-commit', /Committed/);
    assert.equal(await count('production'), 100);
    await page.click('#sql-undo');
    await waitText(page, '#notice', /Undone/);
    assert.equal(await count('production'), 120);
    await shot(page, '02-sql-editor');

    // Create a child branch from the head in the UI.
    await tab(page, 'overview');
    await fill(page, '#create-child input[name=name]', 'dev/agent');
    await page.click('#create-child button[type=submit]');
    await page.waitForSelector('#tree li a.branch[data-branch="dev/agent"]');
    await waitText(page, '.branch-title', /dev\/agent/);
    assert.ok(await page.$('#tree a[data-branch="production"] + ul a[data-branch="dev/agent"]'),
              'dev/agent is shown under production');
    await shot(page, '03-branch-tree');

    // An agent works through the API while the timeline watches (live).
    await tab(page, 'timeline');
    await page.waitForSelector('#timeline li.checkpoint');
    const agentSql = ['ALTER TABLE items ADD COLUMN price INTEGER',
                      'UPDATE items SET price = id * 10 WHERE id <= 80',
                      "INSERT INTO items(name, price) VALUES ('new', 1)",
                      'DELETE FROM items WHERE id BETWEEN 111 AND 120'];
    const lsns = [];
    for (const sql of agentSql) lsns.push((await api('POST', branchApi('dev/agent', '/sql'), { sql })).lsn);
    await page.waitForFunction((last) => document.querySelector(`#timeline li.checkpoint.head[data-lsn="${last}"]`),
                               { timeout: 30000 }, lsns[3]);
    let items = await timeline(page);
    for (let i = 0; i < agentSql.length; ++i) {
      const cp = items.find((c) => c.lsn === lsns[i]);
      assert.ok(cp, `checkpoint ${lsns[i]} shown`);
      assert.match(cp.text, new RegExp(agentSql[i].slice(0, 20).replace(/[()*]/g, '.')));
    }
    assert.match(items.find((c) => c.lsn === lsns[1]).text, /80 rows/);
    await shot(page, '04-timeline');
    assert.equal(await count('dev/agent'), 111);

    // Roll back three actions: to the state after the first of the four.
    await click(page, `#timeline li[data-lsn="${lsns[0]}"]`, /Roll back to here/);
    await waitText(page, '#notice', new RegExp(`Rolled back to LSN ${lsns[0]}`));
    await page.waitForSelector(`#timeline li.checkpoint.rolled-back[data-lsn="${lsns[3]}"]`);
    items = await timeline(page);
    for (const l of lsns.slice(1)) assert.ok(items.find((c) => c.lsn === l).rolledBack, `${l} shown rolled back`);
    assert.equal(items[0].kind, 'rollback');
    assert.equal(await count('dev/agent'), 120);
    await shot(page, '05-rolled-back');
    // ... and undo it in one click.
    await click(page, '#notice', /Undo rollback/);
    await waitText(page, '#notice', /Undone/);
    assert.equal(await count('dev/agent'), 111);
    await page.waitForSelector(`#timeline li.checkpoint:not(.rolled-back)[data-lsn="${lsns[3]}"]`);

    // Fork a branch from a checkpoint (the one after the ALTER).
    await click(page, `#timeline li[data-lsn="${lsns[1]}"]`, /^Fork$/);
    await fill(page, '#fork-box input[name=name]', 'fork-1');
    await page.click('#fork-box button[type=submit]');
    await waitText(page, '.branch-title', /fork-1/);
    await waitText(page, '#notice', new RegExp(`fork-1 created at LSN ${lsns[1]}`));
    assert.ok(await page.$('#tree a[data-branch="dev/agent"] + ul a[data-branch="fork-1"]'));
    // fork-1: a TTL, shown in the tree...
    await fill(page, '#ttl-input', '3600');
    await click(page, '.actions', /^Set TTL$/);
    await waitText(page, '#notice', /TTL set to 1 h/);
    await waitText(page, '#tree a[data-branch="fork-1"] .badge.ttl', /TTL \d+ (h|min)/);
    // ... a reset from its parent and the reset's undo ...
    await api('POST', branchApi('fork-1', '/sql'), { sql: 'DELETE FROM items' });
    await waitText(page, '#protect', /^Protect$/);
    await page.click('#reset');
    await page.click('#reset');
    await waitText(page, '#notice', /Reset to dev\/agent's head/);
    assert.equal(await count('fork-1'), 111);
    await click(page, '#notice', /Undo reset/);
    await waitText(page, '#notice', /Undone: fork-1 is back/);
    assert.equal(await count('fork-1'), 0);
    // ... and its deletion (two clicks), which leaves the tree.
    await waitText(page, '#delete', /Delete branch/);
    await page.click('#delete');
    await page.click('#delete');
    await waitText(page, '#notice', /Branch fork-1 deleted/);
    await waitText(page, '.branch-title', /dev\/agent/);
    assert.equal(await page.$('#tree a[data-branch="fork-1"]'), null);

    // Schema diff of dev/agent against its parent: the added column.
    await page.click('#tree a[data-branch="dev/agent"]');
    await waitText(page, '.branch-title', /dev\/agent/);
    await tab(page, 'diff');
    await page.waitForSelector('#schema-diff');
    assert.match(await text(page, '#schema-diff'), /table items/);
    assert.match(await text(page, '#schema-diff'), /\+ price/);
    assert.match(await text(page, '#schema-diff .new'), /price INTEGER/);
    await shot(page, '06-schema-diff');
    // Data diff, paged (80 updated, 1 added, 10 removed: 2 pages of 50).
    await page.click('#diff-data');
    await page.waitForSelector('#data-diff');
    assert.match(await text(page, '#data-diff h4'), /items\s*\+1\s*−10\s*~80/);
    await waitText(page, '#diff-page', /page 1/);
    const firstPage = await page.$$eval('#data-diff tbody tr', (r) => r.length);
    assert.equal(firstPage, 50);
    await shot(page, '07-data-diff');
    await page.click('#diff-next');
    await waitText(page, '#diff-page', /page 2/);
    const secondPage = await page.$$eval('#data-diff tbody tr', (r) => r.length);
    assert.equal(firstPage + secondPage, 91);
    assert.ok(await page.$eval('#diff-next', (b) => b.disabled));

    // Compare two checkpoints from the timeline.
    await tab(page, 'timeline');
    await page.waitForSelector(`#timeline li[data-lsn="${lsns[2]}"] input[type=checkbox]`);
    await click(page, `#timeline li[data-lsn="${lsns[0]}"]`, /^Label$/);
    await fill(page, '#fork-box input', 'before-prices');
    await click(page, '#fork-box', /Save label/);
    await waitText(page, `#timeline li[data-lsn="${lsns[0]}"] .badge.label`, /before-prices/);
    await page.click(`#timeline li[data-lsn="${lsns[0]}"] input[type=checkbox]`);
    await page.click(`#timeline li[data-lsn="${lsns[2]}"] input[type=checkbox]`);
    await page.click('#compare');
    await page.waitForSelector('#diff-form');
    assert.equal(await page.$eval('#diff-base-lsn', (i) => i.value), String(lsns[0]));
    assert.equal(await page.$eval('#diff-lsn', (i) => i.value), String(lsns[2]));
    await page.waitForSelector('#diff-empty');  // no schema change between those two
    await page.click('#diff-data');
    await waitText(page, '#data-diff h4', /\+1\s*−0\s*~80/);

    // SQL at a past LSN, read-only.
    await tab(page, 'sql');
    await page.$eval('#sql-editor', (el) => { el.value = 'SELECT count(*) FROM items WHERE price IS NOT NULL'; });
    await fill(page, '#sql-lsn', String(lsns[0]));
    await page.click('#sql-run');
    await waitText(page, '#sql-out', new RegExp(`Read-only at LSN ${lsns[0]}`));
    assert.match(await text(page, '#sql-out table'), /0/);

    // A refused action: delete of a protected branch (refused to every
    // client, this admin included, until it is unprotected) shows the
    // server's reason.
    await tab(page, 'overview');
    await page.click('#protect');
    await waitText(page, '#notice', /Branch protected/);
    await page.waitForSelector('#tree a[data-branch="dev/agent"] .badge.protected');
    expected = [{ status: 409, path: /\/branches\/dev%2Fagent$/ }];
    await page.click('#delete');
    await page.click('#delete');
    await waitText(page, '#alert', /protected/);
    assert.ok(await page.$eval('#alert', (a) => !a.hidden));
    expected = [];
    await shot(page, '08-refused');
    await page.click('#protect');
    await waitText(page, '#notice', /Protection removed/);
    await waitText(page, '#protect', /^Protect$/);

    // Keyboard: the tabs follow the arrow keys.
    await page.focus('#tab-overview');
    await page.keyboard.press('ArrowRight');
    await page.waitForSelector('#tab-timeline[aria-selected=true]');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-timeline');

    // Promote: a dry run with a verify query, then for real, then its undo.
    await tab(page, 'promote');
    await fill(page, '#promote-verify', 'SELECT count(*) = 111 FROM items');
    await page.click('#promote-dry');
    await waitText(page, '#promote-result', /Dry run: the parent did not move/);
    assert.match(await text(page, '#promote-result'), /Verify passed/);
    assert.equal(await count('production'), 120);
    await shot(page, '09-promote-dry-run');
    await page.click('#promote-go');
    await page.click('#promote-go');
    await waitText(page, '#promote-result', /Promoted into production/);
    assert.equal(await count('production'), 111);
    await click(page, '#notice', /Undo promote/);
    await waitText(page, '#notice', /Undone: production is back/);
    assert.equal(await count('production'), 120);

    // Dark mode follows the system setting.
    const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(light, dark);
    await tab(page, 'timeline');
    await page.waitForSelector('#timeline li.checkpoint');
    await shot(page, '10-timeline-dark');

    // Sign out: back to the sign-in form.
    await click(page, '#session', /Sign out/);
    await page.waitForSelector('#signin-client');

    // A pasted token that stops working mid-session (revoked here, as an
    // expired one would): the next call ends the session with a message.
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    await fill(page, '#signin-token textarea', api.token);
    await page.click('#signin-token button[type=submit]');
    await page.waitForSelector('#tree a[data-branch="production"]');
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length + document.cookie.length), 0,
                 'nothing of the session is stored');
    expected = [{ status: 401, path: /^\/v1\// }];
    const revoke = await fetch(`${server.url}/oauth/revoke`, {
      method: 'POST', body: new URLSearchParams({ token: api.token, client_id: server.creds.client_id,
                                                  client_secret: server.creds.client_secret }) });
    assert.equal(revoke.status, 200);
    await waitText(page, '#signin-error', /Your session ended/);
    await shot(page, '11-session-ended');

    assert.deepEqual(problems, [], `problems in the page:\n${problems.join('\n')}`);
    console.log(`ok: console scenario passed; refusals provoked: ${refusals.join(', ')}; screenshots in ${artifacts}`);
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e);
  if (problems.length) console.error(`problems in the page:\n${problems.join('\n')}`);
  process.exit(1);
});
