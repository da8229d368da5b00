"""The crash campaign's model: what the server must hold, derived only from
acknowledged answers.

Every record (checkpoint) the campaign knows is kept with its kind, the record
its history continues at (`pred`), its request id and the database content of
the state it names. A content is exact and small: which insert scripts are in
table t and how often (a promotion by replay can apply a script twice), how
many scripts ran (`meta.n`), the last one (`meta.last`) and which extra tables
x_k exist. Each client owns a family of branches (`c<k>/...`) and acts on them
one request at a time, so the state of its branches follows from its
acknowledged answers, plus at most one request in flight at the kill, whose
outcome the checker reads back from the server.

`Model.apply(intent, status, body)` is the one place that turns an answer into
model state; the load clients use it on their copy to choose the next
operation, the checker uses it on the authoritative copy to verify the answers
(it returns the inconsistencies it saw). Standard library only.
"""

from __future__ import annotations

import random
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple

# ---------------------------------------------------------------------------
# Contents

# (ops: ((op_id, applications), ...) sorted, n: scripts applied, last: last
#  script's id, tables: (k, ...) sorted extra tables x_k)
Content = Tuple[Tuple[Tuple[str, int], ...], int, str, Tuple[int, ...]]
EMPTY: Content = ((), 0, "", ())

SCHEMA_SQL = ("CREATE TABLE t(id INTEGER PRIMARY KEY, op TEXT NOT NULL, i INTEGER NOT NULL, "
              "p TEXT NOT NULL); "
              "CREATE TABLE meta(k INTEGER PRIMARY KEY, n INTEGER NOT NULL, last TEXT NOT NULL); "
              "INSERT INTO meta VALUES (1, 0, '')")

# The read the checker runs on every branch (read-only, one snapshot).
OBSERVE_SQL = ("SELECT op, count(*), sum(length(p)) FROM t GROUP BY op ORDER BY op; "
               "SELECT n, last FROM meta WHERE k = 1; "
               "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name; "
               "PRAGMA integrity_check")

# Promote answers (409) that the promote contract documents; anything else
# refused is a violation.
PROMOTE_REFUSALS = {"parent_moved", "replay_failed", "verify_failed", "concurrent_write",
                    "not_replayable"}

MAX_BRANCHES = 5       # per family, root included
TRIM_ABOVE = 20        # distinct scripts on a branch before a trim removes the oldest
TRIM_COUNT = 10
KEEP_DEPTH = 48        # history depth whose contents stay known (rollback targets)
UNDO_KEEP = 6          # former heads kept per branch as undo targets


def payload(op_id: str, i: int, size: int) -> str:
    unit = f"{op_id}:{i};"
    return (unit * (size // len(unit) + 1))[:size]


def script_sql(spec: Dict[str, Any]) -> Tuple[str, List[Any]]:
    """The SQL text and parameters of a script intent. Several statements, the
    last always the meta update, so a partly applied script is visible."""
    stmts: List[str] = []
    params: List[Any] = []
    kind = spec["script"]
    if kind == "ddl":
        stmts.append(f"CREATE TABLE IF NOT EXISTS x_{int(spec['table'])}(v TEXT)")
    if kind in ("insert", "ddl", "bad"):
        for i, size in enumerate(spec["sizes"]):
            stmts.append("INSERT INTO t(op, i, p) VALUES (?, ?, ?)")
            params += [spec["id"], i, payload(spec["id"], i, size)]
    if kind == "bad":  # refused at its last statement: nothing may remain
        stmts.append("INSERT INTO no_such_table VALUES (1)")
    if kind == "trim":
        marks = ", ".join("?" for _ in spec["trim"])
        stmts.append(f"DELETE FROM t WHERE op IN ({marks})")
        params += list(spec["trim"])
        for k in spec.get("drop", []):
            stmts.append(f"DROP TABLE IF EXISTS x_{int(k)}")
    if kind != "bad":
        stmts.append("UPDATE meta SET n = n + 1, last = ? WHERE k = 1")
        params.append(spec["id"])
    return "; ".join(stmts), params


def apply_script(content: Content, spec: Dict[str, Any]) -> Content:
    ops = dict(content[0])
    tables = set(content[3])
    kind = spec["script"]
    if kind in ("insert", "ddl"):
        ops[spec["id"]] = ops.get(spec["id"], 0) + 1
    if kind == "ddl":
        tables.add(int(spec["table"]))
    if kind == "trim":
        for o in spec["trim"]:
            ops.pop(o, None)
        for k in spec.get("drop", []):
            tables.discard(int(k))
    return (tuple(sorted(ops.items())), content[1] + 1, spec["id"], tuple(sorted(tables)))


# ---------------------------------------------------------------------------
# Records and branches


class Rec:
    __slots__ = ("lsn", "kind", "pred", "content", "op", "rid", "cycle", "via")

    def __init__(self, lsn: int, kind: str, pred: Optional[int], content: Optional[Content],
                 op: Optional[Dict[str, Any]], rid: str, cycle: int) -> None:
        self.lsn = lsn
        self.kind = kind          # sql | create | rollback | promote (as the server lists it)
        self.pred = pred          # where its history continues; 0 = the end; None = unknown
        self.content = content    # None: not (or no longer) known
        self.op = op              # the script intent of a sql record
        self.rid = rid            # the request id the server recorded
        self.cycle = cycle        # the cycle whose load wrote it (-1: setup)
        self.via: Optional[int] = None  # pred None after a replay: the head it replayed onto


class Branch:
    __slots__ = ("name", "head", "parent", "labels", "former")

    def __init__(self, name: str, head: int, parent: Optional[str]) -> None:
        self.name = name
        self.head = head
        self.parent = parent
        self.labels: Dict[str, int] = {}
        self.former: List[int] = []   # recent former heads (undo targets), newest last


def create_rid(branch: str) -> str:
    """The request id of a branch's creation (X-Request-Id allows no '/')."""
    return "mk-" + branch.replace("/", ".")


def family_of(branch: str) -> Optional[int]:
    if branch.startswith("c") and "/" in branch:
        head = branch.split("/", 1)[0][1:]
        if head.isdigit():
            return int(head)
    return None


class Model:
    def __init__(self) -> None:
        self.records: Dict[int, Rec] = {}
        self.branches: Dict[str, Branch] = {}
        self.ops: Dict[str, Tuple[int, int]] = {}   # script id -> (rows, payload bytes)
        self.next_name: Dict[int, int] = {}        # family -> next branch/label number
        self.cycle = 0
        # Per cycle, what the checker verifies once more after the crash.
        self.new_records: List[int] = []
        self.new_labels: List[Tuple[str, str, int]] = []

    # --- queries ------------------------------------------------------------

    def content(self, lsn: int) -> Optional[Content]:
        r = self.records.get(lsn)
        return r.content if r else None

    def chain(self, lsn: Optional[int], depth: int = 1 << 30) -> Iterator[Rec]:
        """The history from state `lsn` back, newest first, as far as known."""
        while lsn and depth > 0:
            r = self.records.get(lsn)
            if r is None:
                return
            yield r
            lsn = r.pred
            depth -= 1

    def family(self, k: int) -> List[Branch]:
        return [b for n, b in sorted(self.branches.items()) if family_of(n) == k]

    def children(self, name: str) -> List[str]:
        return [n for n, b in self.branches.items() if b.parent == name]

    def actions_target(self, branch: str, n: int) -> Optional[int]:
        """The state before the n-th newest SQL commit on the branch's history."""
        seen = 0
        for r in self.chain(self.branches[branch].head):
            if r.kind == "sql":
                seen += 1
                if seen == n:
                    return r.pred
        return None

    def history_lsns(self, lsn: Optional[int], depth: int = 1 << 30) -> set:
        """LSNs on the history from `lsn`, also through a replay promotion's
        unknown records (to the parent's head it was replayed onto)."""
        out = set()
        while lsn and depth > 0:
            r = self.records.get(lsn)
            if r is None:
                break
            out.add(lsn)
            lsn = r.pred if r.pred is not None else r.via
            depth -= 1
        return out

    def replay_actions(self, child: str) -> Optional[List[int]]:
        """The SQL commits a promotion by replay of `child` applies, oldest
        first, by the promote contract: its history back to the first state on
        the parent's current history or to its own creation. None when the
        walk meets records the model cannot name (those of another replay)."""
        parent = self.branches[child].parent
        if parent not in self.branches:
            return None
        on_parent = self.history_lsns(self.branches[parent].head)
        out: List[int] = []
        lsn: Optional[int] = self.branches[child].head
        while lsn:
            r = self.records.get(lsn)
            if r is None or r.pred is None:
                return None
            if lsn in on_parent or (r.kind == "create" and r.rid == create_rid(child)):
                break
            if r.kind == "sql":
                out.append(lsn)
            lsn = r.pred
        return list(reversed(out))

    def rollback_targets(self, branch: str) -> List[int]:
        b = self.branches[branch]
        out = [r.lsn for r in self.chain(b.head, KEEP_DEPTH)
               if r.content is not None and r.lsn != b.head]
        out += [x for x in b.former if self.content(x) is not None and x != b.head]
        return out

    # --- answers -> state -----------------------------------------------------

    def _new_record(self, lsn: Any, kind: str, pred: Optional[int], content: Optional[Content],
                    op: Optional[Dict[str, Any]], rid: str) -> List[str]:
        if not isinstance(lsn, int) or lsn <= 0:
            return [f"answer names no valid new LSN ({lsn!r})"]
        if lsn in self.records:
            return [f"answer names LSN {lsn}, which an earlier acknowledged action already "
                    f"has ({self.records[lsn].kind} {self.records[lsn].rid})"]
        self.records[lsn] = Rec(lsn, kind, pred, content, op, rid, self.cycle)
        self.new_records.append(lsn)
        return []

    def _move(self, b: Branch, lsn: int) -> None:
        b.former.append(b.head)
        del b.former[:-UNDO_KEEP]
        b.head = lsn

    def note_intent(self, intent: Dict[str, Any]) -> None:
        """Every intent, answered or not, uses up its branch or label number."""
        name = intent.get("label") or (intent["branch"] if intent["type"] == "create" else "")
        m = re.match(r"^(?:c(\d+)/b|L(\d+)-)(\d+)$", name)
        if m:
            k = int(m.group(1) or m.group(2))
            self.next_name[k] = max(self.next_name.get(k, 1), int(m.group(3)) + 1)

    def apply(self, intent: Dict[str, Any], status: int, body: Any) -> List[str]:
        """Applies one answered request. Returns inconsistencies (empty = fine)."""
        t = intent["type"]
        body = body if isinstance(body, dict) else {}
        code = ""
        if isinstance(body.get("error"), dict):
            code = str(body["error"].get("code", ""))
        if t == "sql" and intent["script"] == "bad":
            if status == 400 and code == "sql_error":
                return []
            return [f"a script failing at its last statement answered HTTP {status} {code} "
                    "(expected 400 sql_error, nothing applied)"]
        if status >= 300:
            if t == "promote" and status == 409 and code in PROMOTE_REFUSALS:
                return []
            return [f"{t} refused: HTTP {status} {code} {body.get('error', body)}"]
        try:
            return self._apply_ok(intent, body)
        except (KeyError, TypeError, ValueError) as e:
            return [f"{t} answer malformed ({type(e).__name__}: {e}): {body}"]

    def _apply_ok(self, it: Dict[str, Any], body: Dict[str, Any]) -> List[str]:
        t = it["type"]
        if t == "sql":
            b = self.branches[it["branch"]]
            problems = []
            # (a write's snapshot_lsn is the state after its commit; the
            # checkpoint list shows what it continued from)
            if body.get("snapshot_lsn") not in (b.head, body.get("lsn")):
                problems.append(f"sql on {b.name}: snapshot_lsn {body.get('snapshot_lsn')} "
                                f"is neither the head {b.head} nor the commit")
            pred_content = self.content(b.head)
            content = apply_script(pred_content, it) if pred_content is not None else None
            self.ops[it["id"]] = (len(it.get("sizes", [])), sum(it.get("sizes", [])))
            problems += self._new_record(body.get("lsn"), "sql", b.head, content, it, it["id"])
            if not problems:
                self._move(b, body["lsn"])
            return problems
        if t == "create":
            parent = self.branches[it["parent"]]
            base = it.get("at") or parent.head
            problems = []
            if body.get("name") != it["branch"] or body.get("parent") != it["parent"]:
                problems.append(f"create {it['branch']}: answer names {body.get('name')} "
                                f"with parent {body.get('parent')}")
            if body.get("branch_point_lsn") != base:
                problems.append(f"create {it['branch']}: branch point "
                                f"{body.get('branch_point_lsn')}, expected {base}")
            problems += self._new_record(body.get("head_lsn"), "create", base, self.content(base),
                                         None, it["id"])
            if not problems:
                self.branches[it["branch"]] = Branch(it["branch"], body["head_lsn"], it["parent"])
            return problems
        if t == "rollback":
            b = self.branches[it["branch"]]
            target = self.resolve_target(it)
            problems = []
            if body.get("previous_head_lsn") != b.head:
                problems.append(f"rollback of {b.name}: previous_head_lsn "
                                f"{body.get('previous_head_lsn')}, the head was {b.head}")
            if body.get("target_lsn") != target:
                problems.append(f"rollback of {b.name} to {it['to']}: target_lsn "
                                f"{body.get('target_lsn')}, expected {target}")
            if problems:
                return problems
            problems = self._new_record(body.get("head_lsn"), "rollback", target,
                                        self.content(target), None, it["id"])
            if not problems:
                self._move(b, body["head_lsn"])
            return problems
        if t == "label":
            b = self.branches[it["branch"]]
            if body.get("lsn") != it["lsn"]:
                return [f"label {it['label']} on {b.name}: answer names LSN {body.get('lsn')}, "
                        f"asked {it['lsn']}"]
            b.labels[it["label"]] = it["lsn"]
            self.new_labels.append((b.name, it["label"], it["lsn"]))
            return []
        if t == "promote":
            child = self.branches[it["branch"]]
            parent = self.branches[str(child.parent)]
            problems = []
            if body.get("branch") != parent.name:
                problems.append(f"promote {child.name}: answer names branch {body.get('branch')}, "
                                f"the parent is {parent.name}")
            if body.get("previous_head_lsn") != parent.head:
                problems.append(f"promote {child.name}: previous_head_lsn "
                                f"{body.get('previous_head_lsn')}, the parent's head was "
                                f"{parent.head}")
            mode = body.get("mode", "fast_forward")
            if mode == "fast_forward":
                if body.get("target_lsn") != child.head:
                    problems.append(f"promote {child.name} (fast-forward): target_lsn "
                                    f"{body.get('target_lsn')}, the branch's head is {child.head}")
                pred: Optional[int] = child.head
                content = self.content(child.head)
            elif mode == "replay":
                pred, content = None, self.content(parent.head)
                for a in body.get("actions", []):
                    src = self.records.get(a.get("lsn"))
                    if src is None or src.kind != "sql" or src.op is None:
                        problems.append(f"promote {child.name} (replay): action {a} is no "
                                        "acknowledged SQL commit")
                        break
                    if content is not None:
                        content = apply_script(content, src.op)
            else:
                problems.append(f"promote {child.name}: unknown mode {mode!r}")
            if problems:
                return problems
            problems = self._new_record(body.get("head_lsn"), "promote", pred, content, None,
                                        it["id"])
            if not problems:
                if pred is None:
                    self.records[body["head_lsn"]].via = parent.head
                self._move(parent, body["head_lsn"])
            return problems
        if t == "delete":
            del self.branches[it["branch"]]
            return []
        return [f"unknown intent type {t}"]

    def resolve_target(self, it: Dict[str, Any]) -> Optional[int]:
        to = it["to"]
        b = self.branches[it["branch"]]
        if "lsn" in to:
            return int(to["lsn"])
        if "actions" in to:
            return self.actions_target(b.name, int(to["actions"]))
        if "label" in to:
            return b.labels.get(to["label"])
        return None

    def forget_old_contents(self) -> None:
        """Keeps contents only where a client may still point (heads, recent
        history, undo targets, labels): memory stays bounded over long runs."""
        keep = set()
        for b in self.branches.values():
            keep.update(r.lsn for r in self.chain(b.head, KEEP_DEPTH))
            keep.update(b.former)
            keep.update(b.labels.values())
        for r in self.records.values():
            if r.content is not None and r.lsn not in keep and r.cycle >= 0:
                r.content = None
        self.new_records = []
        self.new_labels = []

    # --- choosing the next operation (load clients) ---------------------------

    def choose(self, k: int, rng: random.Random, seq: int) -> Dict[str, Any]:
        fam = self.family(k)
        b = rng.choice(fam)
        rid = f"c{k}-{self.cycle:05d}-{seq:05d}"
        root = f"c{k}/main"
        r = rng.random()
        if r < 0.12:
            targets = self.rollback_targets(b.name)
            choice = rng.random()
            if choice < 0.2 and b.labels:
                label = rng.choice(sorted(b.labels))
                if self.content(b.labels[label]) is not None:
                    return {"type": "rollback", "id": rid, "branch": b.name, "to": {"label": label}}
            if choice < 0.45:
                n = rng.randint(1, 3)
                tgt = self.actions_target(b.name, n)
                if tgt and self.content(tgt) is not None:
                    return {"type": "rollback", "id": rid, "branch": b.name, "to": {"actions": n}}
            if choice < 0.6 and b.former and self.content(b.former[-1]) is not None \
                    and b.former[-1] != b.head:
                return {"type": "rollback", "id": rid, "branch": b.name,
                        "to": {"lsn": b.former[-1]}}
            if targets:
                return {"type": "rollback", "id": rid, "branch": b.name,
                        "to": {"lsn": rng.choice(targets)}}
        elif r < 0.20 and len(fam) < MAX_BRANCHES:
            n = self.next_name.get(k, 1)
            self.next_name[k] = n + 1
            name = f"c{k}/b{n}"
            it = {"type": "create", "id": create_rid(name), "branch": name, "parent": b.name}
            hist = [x.lsn for x in self.chain(b.head, 8) if x.content is not None]
            if rng.random() < 0.3 and hist:
                it["at"] = rng.choice(hist)
            return it
        elif r < 0.27:
            n = self.next_name.get(k, 1)
            self.next_name[k] = n + 1
            hist = [x.lsn for x in self.chain(b.head, 8) if x.content is not None]
            lsn = b.head if rng.random() < 0.6 or not hist else rng.choice(hist)
            return {"type": "label", "id": rid, "branch": b.name, "label": f"L{k}-{n}", "lsn": lsn}
        elif r < 0.33 and b.name != root and self.replay_actions(b.name) is not None:
            return {"type": "promote", "id": rid, "branch": b.name}
        elif r < 0.38 and b.name != root and not self.children(b.name):
            return {"type": "delete", "id": rid, "branch": b.name}
        return self.choose_script(b, rng, rid)

    def choose_script(self, b: Branch, rng: random.Random, rid: str) -> Dict[str, Any]:
        content = self.content(b.head)
        if content is not None and len(content[0]) > TRIM_ABOVE:
            oldest = [o for o, _ in content[0]][:TRIM_COUNT]
            spec: Dict[str, Any] = {"type": "sql", "id": rid, "branch": b.name, "script": "trim",
                                    "trim": oldest}
            if content[3] and rng.random() < 0.5:
                spec["drop"] = [rng.choice(content[3])]
            return spec
        # Mostly small rows, sometimes one that needs overflow pages.
        sizes = [rng.choice((16, 16, 100, 400, 1500, 6000)) for _ in range(rng.randint(1, 4))]
        r = rng.random()
        if r < 0.05:
            return {"type": "sql", "id": rid, "branch": b.name, "script": "bad", "sizes": sizes}
        if r < 0.15:
            return {"type": "sql", "id": rid, "branch": b.name, "script": "ddl", "sizes": sizes,
                    "table": rng.randint(0, 3)}
        return {"type": "sql", "id": rid, "branch": b.name, "script": "insert", "sizes": sizes}
