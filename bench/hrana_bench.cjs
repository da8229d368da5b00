// Hrana over HTTP against the REST route, in the same run on the same server:
// point SELECT and single-row INSERT through @libsql/client (what a libSQL
// user runs) and through POST .../sql (what a REST user runs), one client at a
// time, each for BRANCHDB_BENCH_SECONDS (default 5) in 10 alternating rounds. Prints bench JSON lines
// (bench/bench_util.h's format) on stdout and a table on stderr. Targets
// (issue #17): Hrana's throughput at least 0.9x REST's, its p50 latency
// within 1.2x. Context, to tell the server's share from the client's: the
// same Hrana pipeline the client sends (execute + close), posted with plain
// fetch as the REST requests are, against REST in its own alternating rounds;
// and the CPU time per operation of this client process and of the server
// (Linux: its threads' /proc schedstat), each side's own.
//
//   node hrana_bench.cjs --branchdb BIN --clients DIR   (DIR: tests/hrana's npm install)
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    console.error(`usage: node hrana_bench.cjs --branchdb BIN --clients DIR (missing ${name})`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const req = createRequire(path.join(path.resolve(arg('--clients')), 'package.json'));
const { createClient } = req('@libsql/client');
const SECONDS = Number(process.env.BRANCHDB_BENCH_SECONDS || 5);
const ROWS = 10000;

async function startServer(binary) {
  const tmp = fs.mkdtempSync(path.join(process.env.BRANCHDB_BENCH_DIR || os.tmpdir(), 'bdb-hrana-bench-'));
  const dataDir = path.join(tmp, 'data');
  const proc = spawn(binary, ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0',
                              '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${log}`)), 60000);
    const onData = (chunk) => {
      log = (log + chunk.toString()).slice(-20000);
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
    url, creds, pid: proc.pid,
    stop: async () => {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

// Runs a and b sequentially in ROUNDS alternating rounds (a, b, a, b, ...)
// of SECONDS / ROUNDS each after a short warm-up, so that load drifting on a
// shared machine hits both alike: each side's ops/s and p50 ms over all its
// rounds.
const ROUNDS = 10;

// The server's CPU time so far (ms): the sum over its threads' schedstat
// (nanoseconds; null where /proc has none).
function serverCpuMs(pid) {
  try {
    let ns = 0;
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    }
    return ns / 1e6;
  } catch {
    return null;
  }
}

// Each side's rate, p50 and CPU µs per operation, the client's (this
// process) and the server's (pid).
async function measurePair(a, b, pid) {
  for (let i = 0; i < 100; ++i) {
    await a(i);
    await b(i);
  }
  const sides = [{ op: a, lat: [], ms: 0, clientUs: 0, serverMs: 0 },
                 { op: b, lat: [], ms: 0, clientUs: 0, serverMs: 0 }];
  let i = 0;
  for (let round = 0; round < ROUNDS; ++round) {
    for (const side of sides) {
      const cpu0 = process.cpuUsage();
      const server0 = serverCpuMs(pid);
      const start = performance.now();
      const end = start + (SECONDS * 1000) / ROUNDS;
      for (let now = start; now < end; ++i) {
        const t0 = performance.now();
        await side.op(i);
        now = performance.now();
        side.lat.push(now - t0);
      }
      side.ms += performance.now() - start;
      const cpu = process.cpuUsage(cpu0);
      side.clientUs += cpu.user + cpu.system;
      const server1 = serverCpuMs(pid);
      side.serverMs = server0 === null || server1 === null ? null : side.serverMs + server1 - server0;
    }
  }
  return sides.map((side) => {
    side.lat.sort((x, y) => x - y);
    const n = side.lat.length;
    return {
      rate: n / (side.ms / 1000), p50: side.lat[Math.floor(n / 2)], clientCpu: side.clientUs / n,
      serverCpu: side.serverMs === null ? null : (side.serverMs * 1000) / n,
    };
  });
}

// target and met null: a context line.
function emit(metric, value, unit, baseline, lowerIsBetter, target, met) {
  const ratio = lowerIsBetter ? baseline / value : value / baseline;
  console.log(JSON.stringify({
    bench: 'hrana', metric, value, unit, direction: lowerIsBetter ? 'lower' : 'higher',
    baseline_name: 'REST /sql', baseline, ratio, target, met,
  }));
  const verdict = target === null ? '(context)' : `${target} ${met ? 'met' : 'NOT MET'}`;
  console.error(`hrana ${metric.padEnd(36)} ${value.toFixed(3).padStart(10)} ${unit.padEnd(6)}` +
                ` | REST ${baseline.toFixed(3).padStart(10)} | ratio ${ratio.toFixed(3)} | ${verdict}`);
}

async function main() {
  const server = await startServer(path.resolve(arg('--branchdb')));
  try {
    const basic = Buffer.from(`${server.creds.client_id}:${server.creds.client_secret}`).toString('base64');
    const tok = await (await fetch(`${server.url}/oauth/token`, {
      method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials' }),
      headers: { Authorization: `Basic ${basic}` },
    })).json();
    const headers = { Authorization: `Bearer ${tok.access_token}`, 'Content-Type': 'application/json' };
    const restSql = async (body) => {
      const r = await fetch(`${server.url}/v1/projects/bench/branches/production/sql`, {
        method: 'POST', headers, body: JSON.stringify(body),
      });
      // Parsed, as the libSQL client parses its answers.
      const answer = await r.json();
      if (r.status !== 200) throw new Error(`REST ${r.status}: ${JSON.stringify(answer)}`);
      return answer;
    };
    await fetch(`${server.url}/v1/projects`, { method: 'POST', headers, body: '{"name":"bench"}' });
    await restSql({ sql: "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE n(i) AS " +
                         `(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS}) ` +
                         "INSERT INTO t SELECT i, 'value ' || i FROM n" });
    const db = createClient({ url: `${server.url}/libsql/bench/production/`, authToken: tok.access_token });
    // What the client posts for one execute (v2/pipeline, JSON), sent with fetch.
    const hranaFetch = async (sql, arg) => {
      const r = await fetch(`${server.url}/libsql/bench/production/v2/pipeline`, {
        method: 'POST', headers, body: JSON.stringify({ requests: [
          { type: 'execute', stmt: { sql, args: [arg], named_args: [], want_rows: true } },
          { type: 'close' }] }),
      });
      const body = await r.json();
      if (r.status !== 200 || body.results[0].type !== 'ok') {
        throw new Error(`Hrana ${r.status}: ${JSON.stringify(body)}`);
      }
      return body;
    };
    const key = (i) => 1 + ((i * 7919) % ROWS);
    // The same statements both ways (no read-only hint: a libSQL client has none).
    const restSelect = (i) => restSql({ sql: 'SELECT v FROM t WHERE id = ?', params: [key(i)] });
    const restInsert = (i) => restSql({ sql: 'INSERT INTO t(v) VALUES (?)', params: [`rest ${i}`] });
    const results = {};
    [results.rest_select, results.hrana_select] = await measurePair(
      restSelect, (i) => db.execute({ sql: 'SELECT v FROM t WHERE id = ?', args: [BigInt(key(i))] }),
      server.pid);
    [results.rest_insert, results.hrana_insert] = await measurePair(
      restInsert, (i) => db.execute({ sql: 'INSERT INTO t(v) VALUES (?)', args: [`hrana ${i}`] }),
      server.pid);
    db.close();
    [results.rest_fetch_select, results.fetch_select] = await measurePair(
      restSelect,
      (i) => hranaFetch('SELECT v FROM t WHERE id = ?', { type: 'integer', value: String(key(i)) }),
      server.pid);
    [results.rest_fetch_insert, results.fetch_insert] = await measurePair(
      restInsert, (i) => hranaFetch('INSERT INTO t(v) VALUES (?)', { type: 'text', value: `fetch ${i}` }),
      server.pid);
    for (const what of ['select', 'insert']) {
      const h = results[`hrana_${what}`], r = results[`rest_${what}`];
      const name = what === 'select' ? 'point_select' : 'insert_one_row';
      emit(`hrana_${name}_rate`, h.rate, 'ops/s', r.rate, false, '>= 0.9x', h.rate >= 0.9 * r.rate);
      emit(`hrana_${name}_p50`, h.p50, 'ms', r.p50, true, '<= 1.2x REST\'s', h.p50 <= 1.2 * r.p50);
      const f = results[`fetch_${what}`], rf = results[`rest_fetch_${what}`];
      emit(`hrana_fetch_${name}_rate`, f.rate, 'ops/s', rf.rate, false, null, null);
      emit(`hrana_fetch_${name}_p50`, f.p50, 'ms', rf.p50, true, null, null);
      // Where the time goes: CPU per operation of this process (the client's
      // JavaScript and fetch) and of the server, against REST's in the same rounds.
      emit(`hrana_client_cpu_${name}`, h.clientCpu, 'us', r.clientCpu, true, null, null);
      if (h.serverCpu !== null) {
        emit(`hrana_server_cpu_${name}`, h.serverCpu, 'us', r.serverCpu, true, null, null);
        emit(`hrana_fetch_server_cpu_${name}`, f.serverCpu, 'us', rf.serverCpu, true, null, null);
      }
    }
  } finally {
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
