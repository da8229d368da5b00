#!/usr/bin/env python3
"""Soak: a bounded mixed load on a real `branchdb serve` (docs/benchmarks.md).

Starts the server on a temporary data directory with short idle timeouts (so that
computes suspend and resume), a small compute budget (so that the least recently
used ones are suspended to make room) and short token lifetimes, then runs
CLIENTS worker processes for DURATION seconds, each with an OAuth client of its own
(the server's limits are per client, as they are for a fleet of agents). Each
worker owns BRANCHES branches
(`c<i>/b<k>`) and, in a closed loop, does SQL writes and reads (also on
production), creates branches with TTLs of 1-3 s and keeps using them until the
reaper has deleted them, rolls back and undoes, suspends computes, lists
checkpoints, and gets database credentials and uses them (a read credential's
write must be refused). Every answer is checked against what the operation
allows at that moment:

  ok               the expected success
  expected         a documented refusal the load provokes on purpose: 404
                   branch_not_found on a branch past its TTL, 403 read_only for
                   a write with a read credential
  unexpected_4xx   any other 4xx; also a TTL branch still alive long past its
                   expiry
  server_5xx       any 5xx
  transport        connection failures (a reused keep-alive connection the
                   server closed is retried once, and counted as a reconnect)

At the end: PRAGMA integrity_check on every branch, and SIGTERM (the server must
exit 0). Reports requests, errors by kind, p50/p99 latency per tenth of the run,
per operation, the server's VmRSS at the start and end of the load (and its
peak), its CPU time, and the workers' CPU share (a worker that is busy most of
its wall time would mean the driver, not the server, is the limit). Writes
OUT_DIR/soak.json and OUT_DIR/soak.md. Exit 0 only when there were requests and
no unexpected 4xx, no 5xx, no transport failure, integrity ok everywhere, the
server's memory outside its caches within bounds (memory_failure) and a
clean server exit.

Usage: soak.py --binary build/bin/branchdb --duration 600 [--clients 8]
               [--branches 4] [--out-dir bench/results] [--seed N]
"""

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

PROJECT = "soak"
TTL_GRACE_S = 15.0  # past expiry + this, a TTL branch must be gone (reaper: every 1 s)
TTL_TOLERANCE_S = 1.0  # clock granularity between our monotonic clock and the server's


def percentile(samples, p):
    if not samples:
        return None
    s = sorted(samples)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def scrape_metrics(port, wanted):
    """The server's /metrics as {name: value}: the names in `wanted`, and
    `cache_bytes`, the sum of every branchdb_cache_bytes series (the caches
    that [storage] cache_mb bounds). None when the server does not answer."""
    out = {"cache_bytes": 0.0}
    try:
        h = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        h.request("GET", "/metrics")
        text = h.getresponse().read().decode(errors="replace")
        h.close()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name = line.split("{")[0].split(" ")[0]
        value = float(line.rsplit(" ", 1)[1])
        if name == "branchdb_cache_bytes":
            out["cache_bytes"] += value
        elif name in wanted:
            out[name] = value
    return out


def memory_failure(series, budget_bytes, duration):
    """The soak's memory rule. The caches grow until [storage] cache_mb bounds
    them; what the server holds besides them (VmRSS minus the caches' bytes:
    heap overhead and fragmentation, connections, threads, the unsealed
    segment's index) must stay within three quarters of that budget and
    64 MiB: in 600 s runs it levels off at 275-280 MiB beside a 512 MiB
    budget, once the caches' churn has fragmented the allocator's arenas.
    A leak, or a heap that fragments (2026-12-06: path-map copies of exact
    sizes took VmRSS from 556 to 943 MB in 600 s, the caches holding 270
    MB: the rest ~670 MiB), goes past it. Judged on runs of at least 120 s: the 15 s
    soak_short_test runs the server under ASan, whose shadow memory and
    quarantine are no measure of it. Returns a failure message or None."""
    if not series or not budget_bytes or duration < 120:
        return None
    limit = 0.75 * budget_bytes / 2**20 + 64
    t, rest = max(((t, rss_kb / 1024 - cache / 2**20) for t, rss_kb, cache in series),
                  key=lambda p: p[1])
    if rest > limit:
        return (f"server memory outside its caches reached {rest:.0f} MiB at {t:.0f} s "
                f"(limit {limit:.0f} MiB: three quarters of the {budget_bytes / 2**20:.0f} "
                f"MiB cache budget and 64 MiB)")
    return None


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def bpath(branch):
    return f"/v1/projects/{PROJECT}/branches/{urllib.parse.quote(branch, safe='')}"


class Client:
    """One keep-alive connection with an OAuth token that it renews before expiry."""

    def __init__(self, port, client_id, secret, on_request):
        self.port = port
        self.basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.conn = None
        self.token = None
        self.token_expires = 0.0
        self.on_request = on_request  # (op, status, code, latency_ms, message)
        self.reconnects = 0

    def _send(self, method, path, body, headers):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def raw(self, op, method, path, body=None, headers=None, bearer=None):
        """Sends one request; returns (status, parsed JSON or None). status 0: transport."""
        headers = dict(headers or {})
        if bearer is not None:
            headers["Authorization"] = "Bearer " + bearer
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        t0 = time.monotonic()
        status, data = 0, b""
        for attempt in (0, 1):
            reused = self.conn is not None
            try:
                status, data = self._send(method, path, body, headers)
                break
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if reused and attempt == 0 and isinstance(
                        e, (http.client.RemoteDisconnected, BrokenPipeError,
                            ConnectionResetError)):
                    self.reconnects += 1
                    continue
                data = type(e).__name__.encode()
                break
        ms = (time.monotonic() - t0) * 1000
        doc = None
        code = message = None
        if status:
            try:
                doc = json.loads(data) if data else None
            except ValueError:
                doc = None
            if status >= 400 and isinstance(doc, dict):
                err = doc.get("error")
                code = err.get("code") if isinstance(err, dict) else err
                message = err.get("message") if isinstance(err, dict) else doc.get(
                    "error_description")
        else:
            code = data.decode()
        self.on_request(op, status, code, ms, message)
        return status, doc

    def bearer(self):
        now = time.monotonic()
        if self.token is None or now > self.token_expires - 15:
            status, doc = self.raw("token", "POST", "/oauth/token",
                                   body="grant_type=client_credentials",
                                   headers={"Authorization": "Basic " + self.basic,
                                            "Content-Type":
                                                "application/x-www-form-urlencoded"})
            if status != 200:
                raise RuntimeError(f"token: status {status}: {doc}")
            self.token = doc["access_token"]
            self.token_expires = now + float(doc.get("expires_in", 60))
        return self.token

    def call(self, op, method, path, body=None, bearer=None):
        return self.raw(op, method, path, body=body,
                        bearer=bearer if bearer is not None else self.bearer())


class Stats:
    def __init__(self, t_zero):
        self.t_zero = t_zero
        self.samples = []  # (t since start, latency ms, op)
        self.kinds = {"ok": 0, "expected": {}, "unexpected_4xx": {}, "server_5xx": {},
                      "transport": {}}
        self.examples = {}  # unexpected key -> the first few error messages
        self.pending = None  # (op, status, code, message) of the request just made

    def record(self, op, status, code, ms, message=None):
        self.samples.append((round(time.monotonic() - self.t_zero, 3), round(ms, 3), op))
        self.pending = (op, status, code, message)

    def classify(self, ok, expected_label=None):
        """Judges the request just made: ok, or expected (with label), or by status."""
        op, status, code, message = self.pending
        if ok:
            self.kinds["ok"] += 1
            return
        if expected_label:
            bump(self.kinds["expected"], expected_label)
            return
        if status == 0:
            kind, key = "transport", f"{op}: {code}"
        elif status >= 500:
            kind, key = "server_5xx", f"{op}: {status} {code}"
        else:
            kind, key = "unexpected_4xx", f"{op}: {status} {code}"
        bump(self.kinds[kind], key)
        seen = self.examples.setdefault(key, [])
        if len(seen) < 3:
            seen.append(f"t={time.monotonic() - self.t_zero:.1f}s {message}")

    def note_unexpected(self, label):
        bump(self.kinds["unexpected_4xx"], label)


def bump(d, key):
    d[key] = d.get(key, 0) + 1


def worker(index, port, client_id, secret, branches, deadline, t_zero, seed, out_path):
    rng = random.Random(seed * 1000 + index)
    stats = Stats(t_zero)
    c = Client(port, client_id, secret, stats.record)
    cpu0, wall0 = time.process_time(), time.monotonic()
    ttl_branches = []  # [name, created (monotonic), ttl_s]
    writes_since = {b: 0 for b in branches}  # own actions on a branch since its last rollback
    undo = {}  # branch -> (previous_head_lsn, writes_since before) of its last rollback
    n = 0
    ops = [("sql_write", 30), ("sql_read", 20), ("read_production", 5), ("ttl_create", 6),
           ("ttl_use", 12), ("ttl_delete", 2), ("rollback", 6), ("undo", 3), ("suspend", 4),
           ("credential", 5), ("checkpoints", 3), ("compute", 2)]
    names = [o for o, _ in ops]
    weights = [w for _, w in ops]

    def ok_status(status, want=(200,)):
        stats.classify(status in want)
        return status in want

    # The last branch is left idle for 2.5 s between visits, so that the server's
    # sweep suspends its compute (idle timeout 1 s) and the next visit resumes it.
    cold, warm = branches[-1], branches[:-1] or branches
    cold_touched = time.monotonic()
    while time.monotonic() < deadline:
        op = rng.choices(names, weights)[0]
        if time.monotonic() - cold_touched > 2.5:
            b = cold
            cold_touched = time.monotonic()
        else:
            b = rng.choice(warm)
        n += 1
        if op == "sql_write":
            s, doc = c.call(op, "POST", bpath(b) + "/sql",
                            {"sql": "INSERT INTO t(client, branch, v) VALUES (?, ?, ?)",
                             "params": [index, b, f"v{n}-" + "x" * rng.randint(0, 200)]})
            if ok_status(s):
                writes_since[b] += 1
        elif op == "sql_read":
            s, _ = c.call(op, "POST", bpath(b) + "/sql",
                          {"sql": "SELECT count(*), max(id) FROM (SELECT id FROM t "
                                  "WHERE client = ? ORDER BY id DESC LIMIT 100)",
                           "params": [index], "read_only": True})
            ok_status(s)
        elif op == "read_production":
            s, _ = c.call(op, "POST", bpath("production") + "/sql",
                          {"sql": "SELECT count(*) FROM t", "read_only": True})
            ok_status(s)
        elif op == "ttl_create":
            name = f"c{index}/ttl{n}"
            ttl = rng.randint(1, 3)
            created = time.monotonic()
            s, _ = c.call(op, "POST", f"/v1/projects/{PROJECT}/branches",
                          {"name": name, "parent": b, "ttl_seconds": ttl})
            if ok_status(s, (201, 200)):
                ttl_branches.append([name, created, ttl])
        elif op in ("ttl_use", "ttl_delete") and ttl_branches:
            entry = rng.choice(ttl_branches)
            name, created, ttl = entry
            age_sent = time.monotonic() - created
            if op == "ttl_use":
                s, _ = c.call(op, "POST", bpath(name) + "/sql",
                              {"sql": "INSERT INTO t(client, branch, v) VALUES (?, ?, 'ttl')",
                               "params": [index, name]})
                want = (200,)
            else:
                s, _ = c.call(op, "DELETE", bpath(name))
                want = (200, 204)
            age_answered = time.monotonic() - created
            gone = s == 404 and stats.pending[2] == "branch_not_found"
            if s in want and age_sent > ttl + TTL_GRACE_S:
                stats.classify(False)
                stats.note_unexpected(f"{op}: TTL branch alive {age_sent:.0f} s after a {ttl} s TTL")
                ttl_branches.remove(entry)
            elif s in want:
                stats.classify(True)
                if op == "ttl_delete":
                    ttl_branches.remove(entry)
            elif gone and age_answered >= ttl - TTL_TOLERANCE_S:
                # The server set the expiry after `created`, so a 404 answered
                # before the TTL ran out (by our clock) would be a bug.
                stats.classify(False, "404 branch_not_found after the branch's TTL")
                ttl_branches.remove(entry)
            else:
                stats.classify(False)
                ttl_branches.remove(entry)
        elif op == "rollback" and writes_since[b] > 0:
            s, doc = c.call(op, "POST", bpath(b) + "/rollback", {"to": {"actions": 1}})
            if ok_status(s):
                undo[b] = (doc["previous_head_lsn"], writes_since[b])
                writes_since[b] -= 1
        elif op == "undo" and b in undo:
            lsn, writes_before = undo.pop(b)
            s, _ = c.call(op, "POST", bpath(b) + "/rollback", {"to": {"lsn": lsn}})
            if ok_status(s):
                writes_since[b] = writes_before
        elif op == "suspend":
            s, _ = c.call(op, "POST", bpath(b) + "/compute/suspend", {})
            ok_status(s)
        elif op == "credential":
            access = rng.choice(["read", "read_write"])
            s, doc = c.call(op, "POST", bpath(b) + "/credentials",
                            {"access": access, "ttl_seconds": 60})
            if ok_status(s, (200, 201)):
                cred = doc.get("token") or doc.get("access_token") or doc.get("credential")
                s, _ = c.call("credential_write", "POST", bpath(b) + "/sql",
                              {"sql": "INSERT INTO t(client, branch, v) VALUES (?, ?, 'cred')",
                               "params": [index, b]}, bearer=cred)
                if access == "read_write":
                    if ok_status(s):
                        writes_since[b] += 1
                else:
                    refused = s == 403 and stats.pending[2] == "read_only"
                    stats.classify(False, "403 read_only (a write with a read credential)"
                                   if refused else None)
        elif op == "checkpoints":
            s, _ = c.call(op, "GET", bpath(b) + "/checkpoints?limit=5")
            ok_status(s)
        elif op == "compute":
            s, _ = c.call(op, "GET", bpath(b) + "/compute")
            ok_status(s)
    result = {"index": index, "samples": stats.samples, "kinds": stats.kinds,
              "examples": stats.examples,
              "reconnects": c.reconnects, "cpu_s": time.process_time() - cpu0,
              "wall_s": time.monotonic() - wall0}
    with open(out_path, "w") as f:
        json.dump(result, f)


def merge_kinds(results):
    total = {"ok": 0, "expected": {}, "unexpected_4xx": {}, "server_5xx": {}, "transport": {}}
    for r in results:
        total["ok"] += r["kinds"]["ok"]
        for k in ("expected", "unexpected_4xx", "server_5xx", "transport"):
            for key, v in r["kinds"][k].items():
                total[k][key] = total[k].get(key, 0) + v
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--branches", type=int, default=4, help="branches per client")
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    args = ap.parse_args()
    print(f"soak: seed {args.seed}, {args.clients} clients x {args.branches} branches, "
          f"{args.duration:g} s", file=sys.stderr, flush=True)

    tmp = tempfile.mkdtemp(prefix="branchdb-soak-")
    data_dir = os.path.join(tmp, "data")
    port = free_port()
    env = dict(os.environ)
    env.update({"BRANCHDB_IDLE_TIMEOUT_SECONDS": "1", "BRANCHDB_SWEEP_INTERVAL_SECONDS": "1",
                "BRANCHDB_COMPUTE_BUDGET": str(max(2, args.clients * args.branches // 2)),
                "BRANCHDB_TOKEN_LIFETIME_SECONDS": "60"})
    log = open(os.path.join(tmp, "server.log"), "wb")
    server = subprocess.Popen([args.binary, "serve", "--data-dir", data_dir, "--listen",
                               f"127.0.0.1:{port}", "--log-level", "warn"],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env)
    report = {"seed": args.seed, "duration_s": args.duration, "clients": args.clients,
              "branches_per_client": args.branches}
    failures = []
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"server exited with {server.returncode}")
            try:
                h = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                h.request("GET", "/healthz")
                if h.getresponse().status == 200 and os.path.exists(
                        os.path.join(data_dir, "admin-credentials.json")):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /healthz")
            time.sleep(0.1)
        with open(os.path.join(data_dir, "admin-credentials.json")) as f:
            creds = json.load(f)
        cid, secret = creds["client_id"], creds["client_secret"]

        setup_errors = []

        def setup_record(op, status, code, ms, message=None):
            if status not in (200, 201):
                setup_errors.append(f"{op}: {status} {code}")

        admin = Client(port, cid, secret, setup_record)
        admin.call("setup", "POST", "/v1/projects", {"name": PROJECT})
        admin.call("setup", "POST", bpath("production") + "/sql",
                   {"sql": "CREATE TABLE t(id INTEGER PRIMARY KEY, client INT, branch TEXT, "
                           "v TEXT); CREATE INDEX t_client ON t(client, id); "
                           "INSERT INTO t(client, branch, v) VALUES (-1, 'production', 'seed')"})
        plan = []
        identities = []  # each worker is its own OAuth client, as each agent is
        for i in range(args.clients):
            mine = [f"c{i}/b{k}" for k in range(args.branches)]
            for b in mine:
                admin.call("setup", "POST", f"/v1/projects/{PROJECT}/branches", {"name": b})
            plan.append(mine)
            _, doc = admin.call("setup", "POST", "/v1/clients",
                                {"name": f"soak-c{i}", "projects": [PROJECT],
                                 "scopes": ["projects:read", "branches:write", "sql:write"]})
            doc = doc or {}
            identities.append((doc.get("client_id"), doc.get("client_secret")))
        if setup_errors:
            raise RuntimeError("setup failed: " + "; ".join(setup_errors))

        rss_start = vm_rss_kb(server.pid)
        cpu_start = cpu_seconds(server.pid)
        t_zero = time.monotonic()
        end = t_zero + args.duration
        procs = []
        for i in range(args.clients):
            p = multiprocessing.Process(
                target=worker, args=(i, port, *identities[i], plan[i], end, t_zero, args.seed,
                                     os.path.join(tmp, f"worker-{i}.json")))
            p.start()
            procs.append(p)
        rss_series = []
        memory_series = []  # (s, VmRSS kB, caches' bytes): every twentieth of the run
        next_note = args.duration / 10
        next_memory = 0.0
        while any(p.is_alive() for p in procs):
            rss = vm_rss_kb(server.pid)
            now = time.monotonic() - t_zero
            if rss is not None:
                rss_series.append((round(now, 1), rss))
            if now >= next_memory and rss is not None:
                m = scrape_metrics(port, ())
                if m is not None:
                    memory_series.append((round(now, 1), rss, m["cache_bytes"]))
                next_memory += args.duration / 20
            if now >= next_note:
                print(f"soak: {now:.0f}/{args.duration:g} s, server VmRSS {rss} kB",
                      file=sys.stderr, flush=True)
                next_note += args.duration / 10
            if server.poll() is not None:
                failures.append(f"server died during the load (exit {server.returncode})")
                break
            time.sleep(1)
        for p in procs:
            p.join(timeout=180)
            if p.exitcode != 0:
                failures.append(f"worker {procs.index(p)} exited with {p.exitcode}")
        elapsed = time.monotonic() - t_zero
        rss_end = vm_rss_kb(server.pid)
        cpu_end = cpu_seconds(server.pid)

        results = []
        for i in range(args.clients):
            path = os.path.join(tmp, f"worker-{i}.json")
            if os.path.exists(path):
                with open(path) as f:
                    results.append(json.load(f))
        samples = [s for r in results for s in r["samples"]]
        kinds = merge_kinds(results)

        # The server's own counts: cold starts (resumes) and requests by status.
        server_metrics = scrape_metrics(port, (
            "branchdb_compute_cold_starts_total", "branchdb_commits_total",
            "branchdb_computes_active", "branchdb_computes_suspended",
            "branchdb_cache_budget_bytes")) or {}
        memory = memory_failure(memory_series,
                                server_metrics.get("branchdb_cache_budget_bytes"), elapsed)
        if memory:
            failures.append(memory)

        # Integrity of every branch that is left.
        checks = {}
        admin.on_request = lambda *a: None
        s, doc = admin.call("list", "GET", f"/v1/projects/{PROJECT}/branches?limit=1000")
        names = [b["name"] for b in (doc or {}).get("branches", [])] if s == 200 else []
        if s != 200:
            failures.append(f"listing branches: status {s}")
        for name in names:
            s, doc = admin.call("integrity", "POST", bpath(name) + "/sql",
                                {"sql": "PRAGMA integrity_check", "read_only": True})
            if s == 404:
                continue  # reaped meanwhile
            value = doc["results"][0]["rows"][0][0] if s == 200 else f"status {s}"
            checks[name] = value
        bad = {k: v for k, v in checks.items() if v != "ok"}
        if bad:
            failures.append(f"integrity_check not ok: {bad}")

        windows = []
        for w in range(10):
            lo, hi = elapsed * w / 10, elapsed * (w + 1) / 10
            lat = [s[1] for s in samples if lo <= s[0] < hi]
            rss_in = [kb for t, kb in rss_series if t < hi]
            windows.append({"from_s": round(lo, 1), "to_s": round(hi, 1), "requests": len(lat),
                            "server_rss_kb": rss_in[-1] if rss_in else None,
                            "rate_per_s": round(len(lat) / (hi - lo), 1) if hi > lo else 0,
                            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99)})
        per_op = {}
        for op in sorted({s[2] for s in samples}):
            lat = [s[1] for s in samples if s[2] == op]
            per_op[op] = {"requests": len(lat), "p50_ms": percentile(lat, 50),
                          "p99_ms": percentile(lat, 99)}
        cpu_share = [r["cpu_s"] / r["wall_s"] for r in results if r["wall_s"] > 0]
        report.update({
            "elapsed_s": round(elapsed, 1),
            "requests": len(samples),
            "requests_per_s": round(len(samples) / elapsed, 1) if elapsed > 0 else 0,
            "kinds": kinds,
            "reconnects": sum(r["reconnects"] for r in results),
            "unexpected_examples": {k: v for r in results for k, v in r["examples"].items()},
            "ttl_branches_left": sum(1 for n in names if "/ttl" in n),
            "branches_checked": len(checks),
            "windows": windows,
            "per_op": per_op,
            "server_rss_kb": {"start": rss_start, "end": rss_end,
                              "peak": max([r for _, r in rss_series] or [0]),
                              "series": rss_series[:: max(1, len(rss_series) // 60)]},
            "server_memory": [{"t_s": t, "rss_mib": round(kb / 1024, 1),
                               "caches_mib": round(c / 2**20, 1),
                               "rest_mib": round(kb / 1024 - c / 2**20, 1)}
                              for t, kb, c in memory_series],
            "server_metrics": server_metrics,
            "server_cpu_s": round(cpu_end - cpu_start, 1)
            if cpu_end is not None and cpu_start is not None else None,
            "driver_cpu_share": {"mean": round(sum(cpu_share) / len(cpu_share), 3)
                                 if cpu_share else None,
                                 "max": round(max(cpu_share), 3) if cpu_share else None},
        })
        if not samples:
            failures.append("no requests were made")
        for kind in ("unexpected_4xx", "server_5xx", "transport"):
            if kinds[kind]:
                failures.append(f"{sum(kinds[kind].values())} {kind}: {kinds[kind]}")
    except Exception as e:  # noqa: BLE001 - reported as the soak's failure
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                code = server.wait()
                failures.append("server did not stop within 60 s of SIGTERM")
        else:
            code = server.returncode
        log.close()
        report["server_exit"] = code
        if code != 0:
            failures.append(f"server exit code {code}")
            try:
                with open(os.path.join(tmp, "server.log"), errors="replace") as f:
                    report["server_log_tail"] = f.read()[-4000:]
            except OSError:
                pass
    report["failures"] = failures
    report["passed"] = not failures
    print_and_write(report, args.out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if not failures else 1


def fmt(v, unit=""):
    return "" if v is None else f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def print_and_write(r, out_dir):
    md = ["# branchdb soak", ""]
    md.append(f"**{'PASSED' if r['passed'] else 'FAILED'}** — {r['clients']} clients x "
              f"{r['branches_per_client']} branches, {r.get('elapsed_s', 0)} s, seed {r['seed']}")
    md.append("")
    if "requests" in r:
        k = r["kinds"]
        md.append(f"- requests served: {r['requests']} ({r['requests_per_s']}/s); "
                  f"ok {k['ok']}; reconnects {r['reconnects']}")
        for kind in ("expected", "unexpected_4xx", "server_5xx", "transport"):
            md.append(f"- {kind}: {sum(k[kind].values())}"
                      + "".join(f"\n  - {key}: {v}" for key, v in sorted(k[kind].items())))
        rss = r["server_rss_kb"]
        md.append(f"- server VmRSS: start {fmt(rss['start'])} kB, end {fmt(rss['end'])} kB, "
                  f"peak {fmt(rss['peak'])} kB")
        md.append(f"- server CPU: {fmt(r['server_cpu_s'])} s; driver CPU share per worker "
                  f"process (cpu/wall): mean {fmt(r['driver_cpu_share']['mean'])}, max "
                  f"{fmt(r['driver_cpu_share']['max'])}")
        md.append("- server metrics at the end: " + ", ".join(
            f"{k} {v:g}" for k, v in sorted(r.get("server_metrics", {}).items())))
        md.append(f"- integrity_check ok on {r['branches_checked']} branches; TTL branches left "
                  f"at the end: {r['ttl_branches_left']}")
        md += ["", "| window (s) | requests | req/s | p50 ms | p99 ms | server VmRSS kB |",
               "| --- | --- | --- | --- | --- | --- |"]
        for w in r["windows"]:
            md.append(f"| {w['from_s']}–{w['to_s']} | {w['requests']} | {w['rate_per_s']} | "
                      f"{fmt(w['p50_ms'])} | {fmt(w['p99_ms'])} | {fmt(w['server_rss_kb'])} |")
        md += ["", "| t (s) | server VmRSS MiB | caches MiB | the rest MiB |",
               "| --- | --- | --- | --- |"]
        for m in r.get("server_memory", []):
            md.append(f"| {m['t_s']} | {m['rss_mib']} | {m['caches_mib']} | {m['rest_mib']} |")
        md += ["", "| operation | requests | p50 ms | p99 ms |", "| --- | --- | --- | --- |"]
        for op, v in r["per_op"].items():
            md.append(f"| {op} | {v['requests']} | {fmt(v['p50_ms'])} | {fmt(v['p99_ms'])} |")
    md.append(f"- server exit code: {r.get('server_exit')}")
    for f in r["failures"]:
        md.append(f"- FAILURE: {f}")
    for key, examples in sorted(r.get("unexpected_examples", {}).items()):
        md.append(f"- examples of {key}: " + " | ".join(examples))
    text = "\n".join(md) + "\n"
    print(text)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "soak.md"), "w") as f:
            f.write(text)
        with open(os.path.join(out_dir, "soak.json"), "w") as f:
            json.dump(r, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
