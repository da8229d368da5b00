#!/usr/bin/env python3
"""Issue #16's figures for `make bench`: history in an S3-compatible bucket.

Starts its own Ceph RADOS Gateway (scripts/ceph-s3.sh, the tests' memstore
fixture) and `branchdb serve` processes, and prints one JSON line per metric
in bench/report.py's format (bench "object_storage"; docs/benchmarks.md):

  commit_rate_{1,16}_writers_remote  SQL commits/s on one branch of a project
        in `remote` durability, against a project in `local` durability on
        the same server in the same run (baseline); 16 writers: >= 0.3x local.
  restore_seconds_{N}mb  a fresh `branchdb serve` on an empty data directory
        restoring one project of about N MiB from the bucket (its log's
        event=s3_restore seconds=), with the restored bytes and MB/s.
  takeover_seconds_{N}mb  SIGKILL of the owner to the first read answered by
        another node (three nodes, etcd, lease TTL 2 s; bench/takeover_bench.py),
        with the new owner's restore time: target <= 10 s.

  bucket_bench.py --branchdb build/bin/branchdb

Environment: BRANCHDB_BENCH_QUICK=1 (short phases, small sizes),
BRANCHDB_BENCH_SECONDS (each throughput phase, default 5), BRANCHDB_BENCH_ROUNDS
(alternating local/remote rounds, the median of each, default 3), BRANCHDB_BENCH_DIR
(scratch, default /tmp). The writers are processes (Python's http.client, one
keep-alive connection each), so the client's own cost is in both modes.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "cluster"))
sys.path.insert(0, HERE)
os.environ.setdefault("BRANCHDB_SOURCE_DIR", SOURCE_DIR)

QUICK = os.environ.get("BRANCHDB_BENCH_QUICK") == "1"
SECONDS = float(os.environ.get("BRANCHDB_BENCH_SECONDS", "2" if QUICK else "5"))
ROUNDS = int(os.environ.get("BRANCHDB_BENCH_ROUNDS", "1" if QUICK else "3"))
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
BENCH = "object_storage"


def emit(metric: str, value: float, unit: str, *, baseline_name: Optional[str] = None,
         baseline: Optional[float] = None, lower: bool = False, target: Optional[str] = None,
         met: Optional[bool] = None, **extra: Any) -> None:
    ratio = None
    if baseline is not None:
        num, den = (baseline, value) if lower else (value, baseline)
        ratio = num / den if den > 0 else None
    line = {"bench": BENCH, "metric": metric, "value": value, "unit": unit,
            "direction": "lower" if lower else "higher", "baseline_name": baseline_name,
            "baseline": baseline, "ratio": ratio, "target": target, "met": met, **extra}
    print(json.dumps(line), flush=True)
    print(f"{BENCH:10} {metric:44} {value:14.4f} {unit:10}"
          + (f" | {baseline_name} {baseline:.4f} | ratio {ratio:.3f}" if ratio else "")
          + (f" | target {target}: {'met' if met else 'NOT MET'}" if target else ""),
          file=sys.stderr, flush=True)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `branchdb serve` (no [cluster]) with the bucket's environment."""

    def __init__(self, binary: str, data_dir: str, env: Dict[str, str]) -> None:
        self.binary, self.data_dir, self.env = binary, data_dir, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir + ".log"
        self.proc: Optional[subprocess.Popen] = None
        self.token = ""

    def start(self) -> float:
        """Seconds until /healthz answers."""
        env = dict(os.environ)
        env.update(self.env)
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--data-dir", self.data_dir, "--listen",
                 f"127.0.0.1:{self.port}", "--log-level", "info"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"branchdb exited: {self.log()[-3000:]}")
            try:
                with OPENER.open(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - started > 300:
                raise RuntimeError("branchdb did not answer /healthz")
            time.sleep(0.05)
        seconds = time.monotonic() - started
        with open(os.path.join(self.data_dir, "admin-credentials.json")) as f:
            creds = json.load(f)
        pair = (urllib.parse.quote(creds["client_id"], safe="") + ":" +
                urllib.parse.quote(creds["client_secret"], safe="")).encode()
        req = urllib.request.Request(
            self.url + "/oauth/token", data=b"grant_type=client_credentials",
            headers={"Authorization": "Basic " + base64.b64encode(pair).decode(),
                     "Content-Type": "application/x-www-form-urlencoded"})
        with OPENER.open(req, timeout=30) as r:
            self.token = json.loads(r.read().decode())["access_token"]
        return seconds

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def call(self, method: str, path: str, body: Any = None) -> Tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with OPENER.open(req, timeout=120) as r:
                text = r.read().decode()
                return r.status, json.loads(text) if text else {}
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def sql(self, project: str, sql: str) -> Any:
        status, body = self.call("POST", f"/v1/projects/{project}/branches/production/sql",
                                 {"sql": sql})
        assert status == 200, (status, body)
        return body

    def metric(self, name: str) -> float:
        with OPENER.open(self.url + "/metrics", timeout=30) as r:
            text = r.read().decode()
        m = re.search(rf"^{name}(?:\{{\}})? ([0-9.e+]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def create(self, project: str, durability: str) -> None:
        """The project, its table, its durability, and its catalog in the bucket."""
        before = self.metric("branchdb_s3_catalog_uploads_total")
        status, body = self.call("POST", "/v1/projects", {"name": project})
        assert status == 201, body
        status, body = self.call("PATCH", f"/v1/projects/{project}", {"durability": durability})
        assert status == 200, body
        self.sql(project, "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)")
        deadline = time.monotonic() + 120
        while self.metric("branchdb_s3_catalog_uploads_total") <= before:
            assert time.monotonic() < deadline, "the catalog snapshot never reached the bucket"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def writer(args: Tuple[str, str, str, float, float]) -> Tuple[int, int, str]:
    """Commits until `end` (from `begin`); (acknowledged, refused, the first
    refusal)."""
    url, token, project, begin, end = args
    host = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
    body = json.dumps({"sql": "INSERT INTO t(v) VALUES (randomblob(100))"})
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    path = f"/v1/projects/{project}/branches/production/sql"
    ok = refused = 0
    first_refusal = ""
    while time.time() < begin:
        time.sleep(0.001)
    while time.time() < end:
        conn.request("POST", path, body, headers)
        r = conn.getresponse()
        answer = r.read()
        if r.status == 200:
            ok += 1
        else:
            refused += 1
            first_refusal = first_refusal or f"{r.status} {answer[:300]!r}"
    conn.close()
    return ok, refused, first_refusal


def commit_rate(server: Server, project: str, writers: int) -> float:
    begin = time.time() + 0.5
    end = begin + SECONDS
    with multiprocessing.get_context("fork").Pool(writers) as pool:
        results = pool.map(writer, [(server.url, server.token, project, begin, end)] * writers)
    ok = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    if refused:
        print(f"bucket_bench: {project}: {refused} commits refused, e.g. "
              f"{next(r[2] for r in results if r[2])}", file=sys.stderr)
    return ok / SECONDS


def throughput(binary: str, root: str, s3_env: Dict[str, str]) -> None:
    # One admin client for every writer: its SQL concurrency raised to theirs.
    env = dict(s3_env, BRANCHDB_S3_BUCKET="bench", BRANCHDB_S3_PREFIX="throughput",
               BRANCHDB_SQL_MAX_CONCURRENT_PER_CLIENT="16")
    server = Server(binary, os.path.join(root, "throughput"), env)
    server.start()
    try:
        server.create("loc", "local")
        server.create("rem", "remote")
        for writers in (1, 16):
            # Alternating rounds, the median of each: load drifting on a
            # shared machine hits both modes alike.
            locals_, remotes = [], []
            for _ in range(ROUNDS):
                locals_.append(commit_rate(server, "loc", writers))
                remotes.append(commit_rate(server, "rem", writers))
            local, remote = statistics.median(locals_), statistics.median(remotes)
            target = ">= 0.3x local" if writers == 16 else None
            emit(f"commit_rate_{writers}_writers_remote", remote, "commits/s",
                 baseline_name=f"local, {writers} writers", baseline=local, target=target,
                 met=(remote >= 0.3 * local) if target else None, writers=writers)
    finally:
        server.stop()


def restore(binary: str, root: str, s3_env: Dict[str, str], sizes: List[int]) -> None:
    blob = ("INSERT INTO t(v) SELECT randomblob(1024) FROM (WITH RECURSIVE c(x) AS "
            "(SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1024) SELECT x FROM c)")
    for mb in sizes:
        env = dict(s3_env, BRANCHDB_S3_BUCKET="bench", BRANCHDB_S3_PREFIX=f"restore{mb}")
        data_dir = os.path.join(root, f"restore{mb}")
        server = Server(binary, data_dir, env)
        server.start()
        try:
            server.create("shop", "remote")  # every commit acknowledged once in the bucket
            for _ in range(mb):
                server.sql("shop", blob)
            expected = server.sql("shop", "SELECT count(*) FROM t")["results"][0]["rows"]
        finally:
            server.stop()
        shutil.rmtree(data_dir)
        fresh = Server(binary, data_dir, env)
        start_seconds = fresh.start()
        try:
            got = fresh.sql("shop", "SELECT count(*) FROM t")["results"][0]["rows"]
            assert got == expected, (got, expected)
            m = re.findall(r"event=s3_restore projects=1 .*?bytes=(\d+) .*?seconds=([0-9.]+)",
                           fresh.log())
            assert m, "no event=s3_restore in the log"
            restored, seconds = int(m[-1][0]), float(m[-1][1])
        finally:
            fresh.stop()
        emit(f"restore_seconds_{mb}mb", seconds, "s", lower=True, project_mb=mb,
             restored_bytes=restored, mb_per_s=round(restored / 1e6 / seconds, 1) if seconds else 0,
             serve_start_seconds=round(start_seconds, 3))


def takeover(binary: str, sizes: List[int]) -> None:
    os.environ["BRANCHDB_TEST_SERVER"] = binary
    import takeover_bench
    takeover_bench.QUIET = True
    for r in takeover_bench.measure(sizes):
        emit(f"takeover_seconds_{r['project_mb']}mb", r["takeover_seconds"], "s", lower=True,
             target="<= 10 s", met=r["takeover_seconds"] <= 10, project_mb=r["project_mb"],
             restore_seconds=r["restore_seconds"], restored_bytes=r["restored_bytes"],
             lease_ttl_seconds=r["lease_ttl_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--branchdb", required=True)
    args = parser.parse_args()
    binary = os.path.abspath(args.branchdb)
    root = tempfile.mkdtemp(prefix="bench-bucket-", dir=os.environ.get("BRANCHDB_BENCH_DIR"))
    from test_takeover import Ceph
    ceph = Ceph(root)
    try:
        ceph.start()
        s3_env = {k: v for k, v in ceph.env.items()
                  if k not in ("BRANCHDB_DURABILITY", "BRANCHDB_S3_UPLOAD_INTERVAL_MS")}
        throughput(binary, root, s3_env)
        restore(binary, root, s3_env, [2, 8] if QUICK else [8, 32, 128])
    finally:
        ceph.stop()
        shutil.rmtree(root, ignore_errors=True)
    takeover(binary, [1] if QUICK else [1, 16, 64])


if __name__ == "__main__":
    main()
