#!/usr/bin/env python3
"""The kill -9 campaign against a real `branchdb serve` (docs/crash-testing.md).

Each cycle: the load clients (separate processes, one family of branches each)
act on the server for a random short time; the server is killed with SIGKILL
at a random moment; it is started again on the same data directory and the
checker verifies it against the model before the next cycle. Prints the count
of cycles and of violations (with details); exits 1 on any violation.

  campaign.py --binary build/bin/branchdb --cycles 1000
  campaign.py --binary ... --self-test     # the checker must catch tampering

Standard library only (Debian's python3).
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from api import PROJECT, Api, branch_path  # noqa: E402
from checker import Checker, ServerGone  # noqa: E402
from model import EMPTY, SCHEMA_SQL, Branch, Model, Rec, create_rid, script_sql  # noqa: E402
import load  # noqa: E402

_LISTENING = re.compile(r"event=listening address=(http://[^\s]+)")


class Server:
    """`branchdb serve` on a fixed data directory, a new free port per start."""

    def __init__(self, binary: str, data_dir: str) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = ""
        self.url = ""

    def start(self, log_path: str, timeout: float = 120.0) -> str:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
                 "--log-level", "info"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        self.url = ""
        while not self.url:
            if self.proc.poll() is not None:
                raise ServerGone(f"the server exited with {self.proc.returncode} at start:\n"
                                 + self.log_tail())
            if time.monotonic() > deadline:
                self.kill9()
                raise ServerGone("the server did not report its address:\n" + self.log_tail())
            m = _LISTENING.search(self.log_tail(4000))
            if m:
                self.url = m.group(1)
            else:
                time.sleep(0.01)
        return self.url

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> Optional[int]:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill9()
            return -9


class Campaign:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
        self.rng = random.Random(self.seed)
        self.work = args.work_dir or tempfile.mkdtemp(prefix="bdb-crash-")
        os.makedirs(self.work, exist_ok=True)
        self.server = Server(os.path.abspath(args.binary), os.path.join(self.work, "data"))
        self.model = Model()
        self.api: Optional[Api] = None
        self.checker: Optional[Checker] = None
        self.creds: Dict[str, str] = {}
        self.cycles_done = 0
        self.phases: Dict[str, float] = {}
        self.fork = multiprocessing.get_context("fork")

    # --- plumbing --------------------------------------------------------------

    def cycle_dir(self, cycle: int) -> str:
        d = os.path.join(self.work, "cycles", f"{cycle:05d}")
        os.makedirs(d, exist_ok=True)
        return d

    def start_server(self, cycle: int) -> None:
        url = self.server.start(os.path.join(self.cycle_dir(cycle), "server.log"))
        if not self.creds:
            with open(os.path.join(self.server.data_dir, "admin-credentials.json")) as f:
                self.creds = json.load(f)
        self.api = Api(url)
        self.api.token = self.api.token_for(self.creds["client_id"], self.creds["client_secret"])
        if self.checker is not None:
            self.checker.api = self.api

    def setup(self) -> None:
        """The project, production's schema and one root branch per client: the
        state before the first kill (acknowledged like any other action)."""
        assert self.api is not None
        api, m = self.api, self.model
        status, body = api.call("POST", "/v1/projects", {"name": PROJECT})
        if status != 201:
            raise RuntimeError(f"creating the project: HTTP {status} {body}")
        status, body = api.call("POST", branch_path("production", "/sql"), {"sql": SCHEMA_SQL},
                                request_id="setup-schema")
        if status != 200:
            raise RuntimeError(f"creating the schema: HTTP {status} {body}")
        status, hist = api.call("GET", branch_path("production", "/checkpoints"))
        entries = hist["checkpoints"]
        for i, c in enumerate(entries):
            pred = entries[i + 1]["lsn"] if i + 1 < len(entries) else 0
            content = EMPTY if c["request_id"] == "setup-schema" else None
            m.records[c["lsn"]] = Rec(c["lsn"], c["kind"], pred, content, None, c["request_id"],
                                      -1)
        m.branches["production"] = Branch("production", entries[0]["lsn"], None)
        for k in range(self.args.clients):
            name = f"c{k}/main"
            it = {"type": "create", "id": create_rid(name), "branch": name, "parent": "production"}
            status, body = load.perform(api, it)
            problems = m.apply(it, status, body)
            if problems:
                raise RuntimeError(f"creating {name}: {problems}")
        for r in m.records.values():
            r.cycle = -1
        m.new_records = []

    def run_load(self, cycle: int) -> float:
        """Starts the clients, kills the server at a random moment, waits for
        the clients (they stop at their first unanswered request)."""
        assert self.api is not None
        self.model.cycle = cycle
        d = self.cycle_dir(cycle)
        procs = []
        for k in range(self.args.clients):
            p = self.fork.Process(target=load.run, args=(
                k, self.server.url, self.api.token, self.model, self.rng.randrange(1 << 31),
                os.path.join(d, f"client-{k}.log"), 300.0))
            p.start()
            procs.append(p)
        delay = self.rng.uniform(self.args.min_load, self.args.max_load)
        time.sleep(delay)
        died = self.server.proc.poll() if self.server.proc is not None else None
        self.server.kill9()
        self.api.close()
        for p in procs:
            p.join(timeout=120)
            if p.is_alive():  # a request that never returned: report, then end it
                p.kill()
                p.join()
                raise ServerGone(f"client {p.name} did not stop after the kill")
        if died is not None:  # e.g. a sanitizer report: the log says why
            raise ServerGone(f"the server exited by itself with {died} during the load:\n"
                             + self.server.log_tail())
        return delay

    def logs(self, cycle: int) -> Dict[int, str]:
        d = self.cycle_dir(cycle)
        return {k: os.path.join(d, f"client-{k}.log") for k in range(self.args.clients)}

    def prune(self, cycle: int) -> None:
        old = os.path.join(self.work, "cycles", f"{cycle - 3:05d}")
        if cycle > 3 and os.path.isdir(old):
            shutil.rmtree(old, ignore_errors=True)

    # --- the campaign ------------------------------------------------------------

    def begin(self) -> None:
        print(f"crash campaign: binary={self.server.binary} cycles={self.args.cycles} "
              f"clients={self.args.clients} seed={self.seed} work={self.work}", flush=True)
        t0 = time.monotonic()
        self.start_server(0)
        self.setup()
        self.phases["setup"] = time.monotonic() - t0
        assert self.api is not None
        self.checker = Checker(self.model, self.api, self.args.clients, self.rng)

    def run_cycles(self, n: int) -> bool:
        """n kill cycles; False after the first cycle with a violation."""
        assert self.checker is not None
        self._last_t, self._last_phases = time.monotonic(), dict(self.phases)
        for _ in range(n):
            cycle = self.cycles_done + 1
            try:
                t1 = time.monotonic()
                self.run_load(cycle)
                t2 = time.monotonic()
                self.start_server(cycle + 1)
                t3 = time.monotonic()
                found = self.checker.check_cycle(cycle, self.logs(cycle))
                t4 = time.monotonic()
                for phase, secs in (("load", t2 - t1), ("restart", t3 - t2), ("check", t4 - t3)):
                    self.phases[phase] = self.phases.get(phase, 0.0) + secs
            except ServerGone as e:
                self.checker.cycle = cycle
                self.checker.violation("server", "-", str(e))
                found = 1
            self.cycles_done = cycle
            if found:
                return False
            self.prune(cycle)
            if self.args.progress and cycle % self.args.progress == 0:
                n = self.args.progress
                now = time.monotonic()
                last = {k: v - self._last_phases.get(k, 0.0) for k, v in self.phases.items()}
                self._last_phases = dict(self.phases)
                print(f"  cycle {cycle}: {len(self.model.records)} checkpoints known; last {n} "
                      f"cycles {(now - self._last_t) / n:.2f} s/cycle (" +
                      ", ".join(f"{k} {v / n:.2f}" for k, v in last.items()) + ")", flush=True)
                self._last_t = now
        return True

    def final_check(self) -> None:
        """After the last cycle: full histories, every label, a sample of old
        commits; then a graceful stop."""
        assert self.checker is not None
        t0 = time.monotonic()
        try:
            self.checker.check_cycle(self.cycles_done, {}, final=True)
        except ServerGone as e:
            self.checker.violation("server", "-", str(e))
        t1 = time.monotonic()
        self.phases["final check"] = t1 - t0
        if self.api is not None:
            self.api.close()  # an open keep-alive connection would delay the graceful stop
        code = self.server.stop()
        self.phases["stop"] = time.monotonic() - t1
        if code not in (0, None):
            self.checker.violation("server", "-", f"graceful stop exited with {code}")

    def report(self, elapsed: float) -> int:
        assert self.checker is not None
        v = self.checker.violations
        stats = ", ".join(f"{k} {n}" for k, n in sorted(self.checker.stats.items()))
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in self.phases.items())
        print(f"crash campaign: seed={self.seed} elapsed={elapsed:.1f}s ({phases})")
        print(f"  outcomes: {stats}")
        for x in v:
            print(f"  VIOLATION {x}")
        print(f"cycles={self.cycles_done} violations={len(v)}", flush=True)
        if v:
            print(f"  kept for inspection: {self.work} (cycles/<n>/client-<k>.log, server.log, "
                  "data/)")
        elif not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        return 1 if v else 0


def run_campaign(args: argparse.Namespace) -> int:
    c = Campaign(args)
    t0 = time.monotonic()
    try:
        c.begin()
        if c.run_cycles(args.cycles):
            c.final_check()
    except (ServerGone, RuntimeError, OSError) as e:
        if c.checker is None:  # before the first cycle: nothing was checked
            print(f"crash campaign: setup failed: {e}\n  work directory: {c.work}")
            return 1
        raise
    finally:
        c.server.kill9()
    return c.report(time.monotonic() - t0)


# --- self-test: the checker must see tampering ----------------------------------


def _fake_log(path: str, entries: List[dict]) -> Dict[int, str]:
    with open(path, "w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps(e) + "\n")
    return {0: path}


def self_test(args: argparse.Namespace) -> int:
    """A short real campaign, then scenarios fed to the checker: each tampered
    log or state must give the named violation, each honest one none."""
    args.cycles = 3
    args.clients = max(args.clients, 2)
    c = Campaign(args)
    failures: List[str] = []
    try:
        c.begin()
        if not c.run_cycles(args.cycles):
            print("self-test: the honest campaign itself reported violations")
            return c.report(0.0) or 1
        assert c.checker is not None and c.api is not None
        base_model = c.model
        d = c.cycle_dir(9999)
        big = max(base_model.records) + 1000

        def scenario(name: str, want: Optional[str], entries: List[dict],
                     model: Optional[Model] = None, tamper=None) -> Model:
            m = copy.deepcopy(model or base_model)
            m.cycle = 9999
            if tamper is not None:
                tamper(m)
            ch = Checker(m, c.api, args.clients, random.Random(1))
            try:
                ch.check_cycle(9999, _fake_log(os.path.join(d, name + ".log"), entries))
            except ServerGone as e:
                ch.violation("server", "-", str(e))
            kinds = sorted({v.kind for v in ch.violations})
            ok = (want is None and not kinds) or (want is not None and want in kinds)
            print(f"  {'ok  ' if ok else 'FAIL'} {name}: expected "
                  f"{want or 'no violation'}, got {kinds or 'none'}"
                  + (f" -- e.g. {ch.violations[0]}" if ch.violations else ""))
            if not ok:
                failures.append(name)
            return m

        root = "c0/main"
        head = base_model.branches[root].head

        def intent(op: dict, status: Optional[int] = None, body: Optional[dict] = None):
            out = [{"t": "intent", "op": op}]
            if status is not None:
                out.append({"t": "answer", "id": op["id"], "status": status, "body": body})
            return out

        w = {"type": "sql", "id": "st-w1", "branch": root, "script": "insert",
             "sizes": [100, 3000, 9000]}
        print("self-test scenarios:")
        scenario("honest-nothing-new", None, [])
        scenario("lost-commit", "state",
                 intent(w, 200, {"lsn": big, "snapshot_lsn": head, "results": []}))
        scenario("lost-branch", "state", intent(
            {"type": "create", "id": "mk-c0.b999", "branch": "c0/b999", "parent": root}, 201,
            {"name": "c0/b999", "parent": root, "head_lsn": big, "branch_point_lsn": head}))
        tgt = base_model.rollback_targets(root)[0]
        scenario("lost-rollback", "state", intent(
            {"type": "rollback", "id": "st-rb", "branch": root, "to": {"lsn": tgt}}, 200,
            {"head_lsn": big, "previous_head_lsn": head, "target_lsn": tgt}))
        scenario("lost-label", "label", intent(
            {"type": "label", "id": "st-lb", "branch": root, "label": "L0-999", "lsn": head},
            201, {"lsn": head}))
        other = base_model.branches["c1/main"].head  # not on c0/main's history: probed
        scenario("lost-label-probed", "label", intent(
            {"type": "label", "id": "st-lb2", "branch": root, "label": "L0-998", "lsn": other},
            201, {"lsn": other}))
        scenario("answer-inconsistent", "answer",
                 intent(w, 200, {"lsn": big, "snapshot_lsn": head + 1}))

        def wrong_rid(m: Model) -> None:
            m.records[m.branches[root].head].rid = "tampered"
        scenario("history-tampered", "history", [], tamper=wrong_rid)

        def wrong_rows(m: Model) -> None:
            for op in list(m.ops):
                m.ops[op] = (m.ops[op][0] + 1, m.ops[op][1])
        scenario("content-tampered", "state", [], tamper=wrong_rows)

        ch0 = Checker(copy.deepcopy(base_model), c.api, args.clients, random.Random(1))
        real_read = ch0.read_content

        def corrupt_read(name, obs):
            real_read(name, obs)
            if name == root:
                obs.integrity = ["*** in database main ***", "Page 7: btreeInitPage() error"]
        ch0.read_content = corrupt_read  # type: ignore[assignment]
        ch0.check_cycle(9999, {})
        ok = any(v.kind == "integrity" for v in ch0.violations)
        print(f"  {'ok  ' if ok else 'FAIL'} integrity-not-ok: expected integrity, got "
              f"{sorted({v.kind for v in ch0.violations}) or 'none'}")
        if not ok:
            failures.append("integrity-not-ok")

        # In flight at the kill: absent, wholly applied, half applied (really
        # written on the server, through the SQL route).
        m1 = scenario("inflight-absent", None, intent(w))
        sql, params = script_sql(w)
        status, body = c.api.call("POST", branch_path(root, "/sql"),
                                  {"sql": sql, "params": params}, request_id="st-w1")
        assert status == 200, body
        m2 = scenario("inflight-applied", None, intent(w), model=m1)
        half = dict(w, id="st-w2", sizes=[100, 100, 100])
        sql, params = script_sql(dict(half, sizes=[100, 100]))  # one row short
        status, body = c.api.call("POST", branch_path(root, "/sql"),
                                  {"sql": sql, "params": params}, request_id="st-w2")
        assert status == 200, body
        scenario("inflight-half", "half", intent(half), model=m2)
        c.server.stop()
    finally:
        c.server.kill9()
    print(f"self-test: {len(failures)} failure(s) {failures if failures else ''}")
    if not failures and not args.keep:
        shutil.rmtree(c.work, ignore_errors=True)
    return 1 if failures else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", required=True, help="the branchdb binary")
    p.add_argument("--cycles", type=int, default=1000)
    p.add_argument("--clients", type=int, default=3, help="load client processes")
    p.add_argument("--seed", type=int, help="random seed (printed; timing is not replayed)")
    p.add_argument("--work-dir", help="data, logs (default: a new temporary directory, "
                   "removed after a clean run)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--min-load", type=float, default=0.02, help="seconds of load, at least")
    p.add_argument("--max-load", type=float, default=0.25, help="seconds of load, at most")
    p.add_argument("--progress", type=int, default=50, help="print a line every N cycles")
    p.add_argument("--self-test", action="store_true",
                   help="check that the checker catches tampered logs and states")
    args = p.parse_args()
    # SIGTERM (e.g. a ctest timeout) ends the run through the `finally`s that kill the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.path.exists(args.binary):
        print(f"no such binary: {args.binary}", file=sys.stderr)
        return 2
    return self_test(args) if args.self_test else run_campaign(args)


if __name__ == "__main__":
    sys.exit(main())
