"""The crash campaign's checker: after each restart, reads the clients' logs of
the last cycle into the model, decides the outcome of each request that was in
flight at the kill from what the server holds, and compares the server with
the model. Standard library only.

What it verifies (each failure is one violation, with its details):
  answer     an acknowledged answer disagrees with the model (e.g. a rollback
             whose previous_head_lsn is not the head the client last saw)
  state      a branch's head, parent or content differs from the model: an
             acknowledged commit, rollback, promotion or branch is lost, or
             something nobody asked for appeared
  half       the same on a branch that a request in flight at the kill touched:
             that request is neither wholly applied nor wholly absent
  integrity  PRAGMA integrity_check is not "ok"
  history    the branch's checkpoint list differs from the model's history
             (LSN, kind, request id), e.g. an acknowledged checkpoint is missing
  diff       an acknowledged commit's record does not hold exactly its script's
             rows (read back as a data diff against the state before it)
  label      an acknowledged label is missing or names another checkpoint
  server     the server did not come back, or answered the checker with an error
"""

from __future__ import annotations

import json
import random
from typing import Any, Dict, List, Optional, Set, Tuple

from api import PROJECT, Api, Lost, branch_path, error_code
from model import OBSERVE_SQL, Content, Model

HISTORY_DEPTH = 12    # checkpoints compared per branch after every cycle
DIFFS_PER_CYCLE = 6   # acknowledged commits of the cycle read back as a diff
DIFFS_AT_END = 100    # older commits read back by the final check
PROBES_AT_END = 300   # labels off the current histories probed by the final check


class Violation:
    def __init__(self, cycle: int, kind: str, where: str, detail: str) -> None:
        self.cycle, self.kind, self.where, self.detail = cycle, kind, where, detail

    def __str__(self) -> str:
        return f"cycle {self.cycle}: {self.kind} [{self.where}] {self.detail}"


class ServerGone(Exception):
    pass


def read_log(path: str) -> Tuple[List[Tuple[Dict[str, Any], int, Any]], Optional[Dict[str, Any]],
                                 List[Dict[str, Any]]]:
    """A client's log: answered (intent, status, body) in order, the intent
    left without answer (in flight at the kill) if any, and every intent."""
    answered: List[Tuple[Dict[str, Any], int, Any]] = []
    intents: List[Dict[str, Any]] = []
    pending: Optional[Dict[str, Any]] = None
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return answered, None, intents
    for line in lines:
        if not line.strip():
            continue
        e = json.loads(line)
        if e["t"] == "intent":
            if pending is not None:
                raise ValueError(f"{path}: intent {pending['id']} has no outcome but another "
                                 "intent follows it")
            pending = e["op"]
            intents.append(pending)
        elif e["t"] == "answer":
            if pending is None or e["id"] != pending["id"]:
                raise ValueError(f"{path}: answer {e['id']} without its intent")
            answered.append((pending, int(e["status"]), e["body"]))
            pending = None
        elif e["t"] == "lost":
            if pending is None or e["id"] != pending["id"]:
                raise ValueError(f"{path}: lost {e['id']} without its intent")
    return answered, pending, intents


# --- observations --------------------------------------------------------------


class Observed:
    """One branch as the server shows it."""

    def __init__(self, info: Dict[str, Any]) -> None:
        self.info = info
        self.head: int = info["head_lsn"]
        self.parent: Optional[str] = info.get("parent")
        self.snapshot: Any = None
        self.ops: Dict[str, Tuple[int, int]] = {}
        self.meta: Any = None
        self.tables: List[str] = []
        self.integrity: List[str] = []
        self.error = ""


def describe_content(model: Model, c: Content) -> str:
    ops = ", ".join(f"{o}x{a}" for o, a in c[0][-6:])
    more = f"(+{len(c[0]) - 6} more) " if len(c[0]) > 6 else ""
    return f"meta.n={c[1]} last={c[2]!r} tables x{list(c[3])} scripts {more}{ops}"


def compare_content(model: Model, want: Content, got: Observed) -> List[str]:
    """Differences between a model content and an observed branch."""
    out: List[str] = []
    if got.error:
        return [f"reading it failed: {got.error}"]
    want_ops = {}
    for op, apps in want[0]:
        rows, size = model.ops.get(op, (0, 0))
        want_ops[op] = (apps * rows, apps * size)
    for op in sorted(set(want_ops) | set(got.ops)):
        w, g = want_ops.get(op, (0, 0)), got.ops.get(op, (0, 0))
        if w != g:
            rows, size = model.ops.get(op, (0, 0))
            out.append(f"script {op}: {g[0]} rows / {g[1]} payload bytes in table t, expected "
                       f"{w[0]} / {w[1]} ({w[0] // rows if rows else 0} application(s) of "
                       f"{rows} rows)" if rows else
                       f"script {op}: {g[0]} rows in table t that no acknowledged or in-flight "
                       "script of this branch wrote")
    if got.meta != [want[1], want[2]]:
        out.append(f"meta (n, last) = {got.meta}, expected {[want[1], want[2]]}")
    want_tables = sorted(["meta", "t"] + [f"x_{k}" for k in want[3]])
    if sorted(got.tables) != want_tables:
        out.append(f"tables {sorted(got.tables)}, expected {want_tables}")
    return out


class Checker:
    def __init__(self, model: Model, api: Api, clients: int, rng: random.Random) -> None:
        self.model = model
        self.api = api
        self.clients = clients
        self.rng = rng
        self.violations: List[Violation] = []
        self.cycle = 0
        self.probe_seq = 0
        self.resolved: Set[int] = set()   # records found applied after being in flight
        self.listed: Dict[str, Dict[int, List[str]]] = {}  # branch -> LSN -> labels, as listed
        self.stats: Dict[str, int] = {}

    # --- helpers -------------------------------------------------------------

    def _count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def violation(self, kind: str, where: str, detail: str) -> None:
        self.violations.append(Violation(self.cycle, kind, where, detail))

    def call(self, method: str, path: str, body: Any = None) -> Tuple[int, Any]:
        try:
            return self.api.call(method, path, body)
        except Lost as e:
            raise ServerGone(f"{method} {path}: {e}") from None

    def observe_branches(self) -> Dict[str, Observed]:
        status, body = self.call("GET", f"/v1/projects/{PROJECT}/branches")
        if status != 200:
            raise ServerGone(f"listing branches: HTTP {status} {body}")
        return {b["name"]: Observed(b) for b in body["branches"]}

    def read_content(self, name: str, obs: Observed) -> None:
        status, body = self.call("POST", branch_path(name, "/sql"),
                                 {"sql": OBSERVE_SQL, "read_only": True})
        if status != 200:
            obs.error = f"HTTP {status} {body}"
            return
        res = body["results"]
        obs.snapshot = body.get("snapshot_lsn")
        obs.ops = {r[0]: (r[1], r[2]) for r in res[0]["rows"]}
        obs.meta = res[1]["rows"][0] if res[1]["rows"] else None
        obs.tables = [r[0] for r in res[2]["rows"]]
        obs.integrity = [str(r[0]) for r in res[3]["rows"]]

    def history(self, name: str, limit: int) -> List[Dict[str, Any]]:
        """The branch's current history, newest first: its checkpoint list (a
        reflog) without the states a move left behind (`rolled_back`)."""
        out: List[Dict[str, Any]] = []
        cursor = ""
        while len(out) < limit:
            q = f"?limit={min(1000, limit - len(out))}" + (f"&cursor={cursor}" if cursor else "")
            status, body = self.call("GET", branch_path(name, "/checkpoints") + q)
            if status != 200:
                raise ServerGone(f"checkpoints of {name}: HTTP {status} {body}")
            out += [c for c in body["checkpoints"] if not c.get("rolled_back")]
            cursor = body.get("next") or ""
            if not cursor:
                break
        return out

    # --- one cycle -------------------------------------------------------------

    def check_cycle(self, cycle: int, logs: Dict[int, str], final: bool = False) -> int:
        """Reads the logs of `cycle` into the model and verifies the server.
        Returns the number of new violations."""
        self.cycle = cycle
        before = len(self.violations)
        inflight: Dict[int, Dict[str, Any]] = {}
        self.resolved = set()
        self.listed = {}
        for k, path in sorted(logs.items()):
            try:
                answered, pending, intents = read_log(path)
            except (ValueError, KeyError) as e:
                self.violation("answer", f"client {k}", f"unreadable log: {e}")
                continue
            for it in intents:
                self.model.note_intent(it)
            for intent, status, body in answered:
                if status >= 300:
                    self._count(f"refused {intent['type']} {error_code(body) or status}")
                elif intent["type"] == "promote" and isinstance(body, dict):
                    self._count(f"acked promote {body.get('mode', 'fast_forward')}")
                else:
                    self._count("acked " + intent["type"])
                for p in self.model.apply(intent, status, body):
                    self.violation("answer", intent["branch"], f"{intent['id']}: {p}")
            if pending is not None:
                inflight[k] = pending
        obs = self.observe_branches()
        self.resolve_inflight(inflight, obs)
        touched = self._touched(inflight)
        self.verify_branches(obs, touched, HISTORY_DEPTH if not final else 1 << 30)
        self.verify_new_records(final)
        self.verify_labels(final)
        self.model.forget_old_contents()
        return len(self.violations) - before

    def _touched(self, inflight: Dict[int, Dict[str, Any]]) -> Dict[str, str]:
        out = {}
        for it in inflight.values():
            desc = f"in flight at the kill: {it['type']} {it['id']}"
            out[it["branch"]] = desc
            if it["type"] == "promote" and it["branch"] in self.model.branches:
                out[str(self.model.branches[it["branch"]].parent)] = desc
        return out

    def resolve_inflight(self, inflight: Dict[int, Dict[str, Any]],
                         obs: Dict[str, Observed]) -> None:
        m = self.model
        for k, it in sorted(inflight.items()):
            t, name = it["type"], it["branch"]
            synthetic: Optional[Dict[str, Any]] = None
            if t == "sql":
                if name in obs and obs[name].head != m.branches[name].head:
                    synthetic = {"lsn": obs[name].head, "snapshot_lsn": m.branches[name].head}
            elif t == "create":
                if name in obs:
                    synthetic = dict(obs[name].info)
            elif t == "rollback":
                b = m.branches[name]
                if name in obs and obs[name].head != b.head:
                    synthetic = {"head_lsn": obs[name].head, "previous_head_lsn": b.head,
                                 "target_lsn": m.resolve_target(it)}
            elif t == "label":
                found = self.probe_label(name, it["label"])
                if found is not None:
                    synthetic = {"lsn": found}
            elif t == "promote":
                child = m.branches[name]
                parent = str(child.parent)
                if parent in obs and obs[parent].head != m.branches[parent].head:
                    synthetic = self.promote_outcome(child.name, parent, obs[parent].head)
            elif t == "delete":
                if name not in obs:
                    synthetic = {}
            if synthetic is None:
                self._count(f"in flight {t}: absent")
                continue
            self._count(f"in flight {t}: applied")
            status = 201 if t in ("create", "label") else 204 if t == "delete" else 200
            if t == "sql" and it["script"] == "bad":
                self.violation("half", name, f"{it['id']}: a script that fails at its last "
                               f"statement moved the head to {obs[name].head}")
                continue
            known = set(m.new_records)
            for p in m.apply(it, status, synthetic):
                self.violation("half", name, f"{it['id']} (in flight at the kill) is half there:"
                               f" {p}")
            self.resolved.update(x for x in m.new_records if x not in known)

    def promote_outcome(self, child: str, parent: str, head: int) -> Dict[str, Any]:
        """The answer a promotion in flight would have had, from the parent's
        checkpoints: fast-forward when its new head continues at the child's head."""
        m = self.model
        top = self.history(parent, 2)
        prev = m.branches[parent].head
        if len(top) > 1 and top[1]["lsn"] == m.branches[child].head:
            return {"branch": parent, "mode": "fast_forward", "head_lsn": head,
                    "previous_head_lsn": prev, "target_lsn": m.branches[child].head}
        actions = m.replay_actions(child) or []
        return {"branch": parent, "mode": "replay", "head_lsn": head, "previous_head_lsn": prev,
                "actions": [{"lsn": a} for a in actions]}

    def probe_label(self, branch: str, label: str) -> Optional[int]:
        """The LSN the branch's label names (a branch created at the label shows
        it as its branch point; the probe branch is deleted again), None if
        the label does not exist."""
        self.probe_seq += 1
        name = f"chk/p{self.cycle}-{self.probe_seq}"
        status, body = self.call("POST", f"/v1/projects/{PROJECT}/branches",
                                 {"name": name, "parent": branch, "at": {"label": label}})
        if status == 404 and error_code(body) == "label_not_found":
            return None
        if status != 201:
            raise ServerGone(f"label probe {branch}/{label}: HTTP {status} {body}")
        status2, body2 = self.call("DELETE", branch_path(name))
        if status2 != 204:
            raise ServerGone(f"deleting probe {name}: HTTP {status2} {body2}")
        return int(body["branch_point_lsn"])

    def verify_branches(self, obs: Dict[str, Observed], touched: Dict[str, str],
                        depth: int) -> None:
        m = self.model
        names = set(m.branches)
        for name in sorted(set(obs) - names):
            self.violation("state", name, f"branch exists (head {obs[name].head}) but no "
                               "acknowledged or in-flight action created it")
        for name in sorted(names):
            b = m.branches[name]
            kind = "half" if name in touched else "state"
            note = f" ({touched[name]})" if name in touched else ""
            o = obs.get(name)
            if o is None:
                self.violation(kind, name, f"acknowledged branch is missing (model head "
                               f"{b.head}){note}")
                continue
            if o.head != b.head:
                self.violation(kind, name, f"head is {o.head}, expected {b.head} "
                               f"({self._rec_desc(b.head)}){note}")
            if o.parent != b.parent:
                self.violation(kind, name, f"parent is {o.parent}, expected {b.parent}{note}")
            self.read_content(name, o)
            if o.error:
                self.violation("server", name, f"reading its content: {o.error}")
                continue
            if o.integrity != ["ok"]:
                self.violation("integrity", name, f"PRAGMA integrity_check: {o.integrity[:5]}")
            if o.snapshot != o.head:
                self.violation(kind, name, f"a read right after the listing saw LSN "
                               f"{o.snapshot}, the listing said head {o.head}")
            want = m.content(b.head)
            if want is not None and o.head == b.head:
                diffs = compare_content(m, want, o)
                if diffs:
                    self.violation(kind, name, f"content at head {b.head} differs{note}: "
                                   + "; ".join(diffs[:8]) + f" | expected "
                                   + describe_content(m, want))
            self.verify_history(name, depth)

    def _rec_desc(self, lsn: int) -> str:
        r = self.model.records.get(lsn)
        return f"{r.kind} {r.rid}, cycle {r.cycle}" if r else "unknown"

    def verify_history(self, name: str, depth: int) -> None:
        want = []
        for r in self.model.chain(self.model.branches[name].head, depth):
            want.append((r.lsn, r.kind, r.rid))
            if r.pred is None:
                break
        listed = self.history(name, len(want))
        self.listed[name] = {c["lsn"]: c.get("labels") or [] for c in listed}
        got = [(c["lsn"], c["kind"], c["request_id"]) for c in listed]
        for i, w in enumerate(want):
            g = got[i] if i < len(got) else None
            if g != w:
                self.violation("history", name, f"checkpoint #{i} from the head is {g}, expected "
                               f"{w} (LSN, kind, request id); the model's history: {want[:i + 2]}")
                return

    def verify_new_records(self, final: bool) -> None:
        """Each SQL commit acknowledged (or found applied) in this cycle is read
        back as a data diff against the state before it; at the end, a sample
        of all older ones too."""
        m = self.model
        new = [x for x in m.new_records if m.records[x].kind == "sql"]
        lsns = [x for x in new if x in self.resolved]
        others = [x for x in new if x not in self.resolved]
        lsns += self.rng.sample(others, min(len(others), DIFFS_PER_CYCLE))
        if final:
            older = [r.lsn for r in m.records.values() if r.kind == "sql" and r.op is not None
                     and r.op["script"] in ("insert", "ddl") and r.lsn not in lsns]
            lsns += self.rng.sample(older, min(len(older), DIFFS_AT_END))
        for lsn in lsns:
            self.verify_commit(lsn)

    def verify_commit(self, lsn: int) -> None:
        m = self.model
        r = m.records[lsn]
        spec = r.op or {}
        status, body = self.call(
            "GET", branch_path("production", "/diff") +
            f"?kind=data&base=production&base_lsn={r.pred}&lsn={lsn}")
        if status != 200:
            self.violation("diff", spec.get("branch", "?"), f"commit {lsn} ({r.rid}): diff "
                           f"against {r.pred} failed: HTTP {status} {body}")
            return
        tables = {t["table"]: t for t in body["tables"]}
        got_t = tables.get("t", {})
        got = (got_t.get("rows_added", 0), got_t.get("rows_removed", 0),
               got_t.get("rows_changed", 0))
        before, after = m.content(r.pred), r.content
        want: Optional[Tuple[int, int, int]] = None
        if before is not None and after is not None:
            rows = {}
            for op, apps in before[0]:
                rows[op] = rows.get(op, 0) - apps * m.ops.get(op, (0, 0))[0]
            for op, apps in after[0]:
                rows[op] = rows.get(op, 0) + apps * m.ops.get(op, (0, 0))[0]
            want = (sum(v for v in rows.values() if v > 0), -sum(v for v in rows.values() if v < 0),
                    0)
        elif spec.get("script") in ("insert", "ddl"):
            want = (len(spec["sizes"]), 0, 0)
        problems = []
        if want is not None and got != want:
            problems.append(f"table t rows (added, removed, changed) = {got}, expected {want}")
        for s in got_t.get("rows", []):
            new = s.get("new") or {}
            if s.get("op") == "insert" and new.get("op") != spec.get("id"):
                problems.append(f"an added row belongs to script {new.get('op')}")
                break
        meta = tables.get("meta", {})
        if meta.get("rows_changed") != 1 or meta.get("rows_added") or meta.get("rows_removed"):
            problems.append(f"table meta: {dict((k, meta.get(k)) for k in ('rows_added', 'rows_removed', 'rows_changed'))}, expected one row changed")
        if before is not None and after is not None:
            want_x = {f"x_{k}" for k in set(before[3]) ^ set(after[3])}
            got_x = {n for n in tables if n.startswith("x_")}
            if want_x != got_x:
                problems.append(f"extra tables changed: {sorted(got_x)}, expected {sorted(want_x)}")
        if problems:
            self.violation("diff", spec.get("branch", "?"),
                           f"commit {lsn} ({r.rid}, script {spec.get('script')}) against "
                           f"{r.pred}: " + "; ".join(problems))

    def verify_labels(self, final: bool) -> None:
        m = self.model
        todo = list(m.new_labels)
        if final:
            todo = [(b.name, label, lsn) for b in m.branches.values()
                    for label, lsn in sorted(b.labels.items())]
        todo = [(b, label, lsn) for b, label, lsn in todo
                if b in m.branches and m.branches[b].labels.get(label) == lsn]
        # (a label of a branch deleted since went with it)
        for branch in sorted({b for b, _, _ in todo}):
            # Labels on the branch's history are read from its checkpoint list.
            depth = {r.lsn: i for i, r in enumerate(m.chain(m.branches[branch].head, 1000))}
            need = max([depth[x] + 1 for b, _, x in todo if b == branch and x in depth],
                       default=0)
            if need > len(self.listed.get(branch, {})):
                self.listed[branch] = {c["lsn"]: c.get("labels") or []
                                       for c in self.history(branch, need)}
        probes = []
        for branch, label, lsn in todo:
            shown = self.listed.get(branch, {})
            if lsn in shown:  # on the checkpoints just listed: the label must be there
                if label not in shown[lsn]:
                    self.violation("label", branch, f"acknowledged label {label} -> {lsn}: "
                                   f"checkpoint {lsn} is listed with labels {shown[lsn]}")
            else:
                probes.append((branch, label, lsn))
        if final:
            probes = self.rng.sample(probes, min(len(probes), PROBES_AT_END))
        for branch, label, lsn in probes:
            found = self.probe_label(branch, label)
            if found != lsn:
                self.violation("label", branch, f"acknowledged label {label} -> {lsn}: "
                               + ("missing" if found is None else f"names {found}"))
