"""Typed results of the branchdb API (dataclasses).

Each class mirrors one JSON shape of the HTTP API (docs/openapi.yaml) and is
built with ``from_json``, which tolerates fields a newer server adds (the
complete decoded object is kept in ``raw``). Times are kept as the server sends
them: RFC 3339 strings in UTC ("2026-01-01T12:00:00.000Z"); :func:`parse_time`
turns one into an aware ``datetime``. SQL values map as: INTEGER -> int,
REAL -> float, TEXT -> str, NULL -> None, BLOB -> bytes.
"""

from __future__ import annotations

import base64
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

__all__ = [
    "Project",
    "Branch",
    "Checkpoint",
    "CheckpointPage",
    "StatementResult",
    "SqlResult",
    "RollbackResult",
    "PromotedAction",
    "PromoteVerify",
    "PromoteResult",
    "SchemaObject",
    "Schema",
    "SchemaObjectDiff",
    "SchemaDiff",
    "RowChange",
    "TableDiff",
    "DataDiff",
    "Diff",
    "Credential",
    "ComputeState",
    "ClientInfo",
    "NewClient",
    "Export",
    "Token",
    "encode_value",
    "decode_value",
    "parse_time",
]

JsonObject = Dict[str, Any]


def parse_time(value: Optional[str]) -> Optional[_dt.datetime]:
    """An RFC 3339 string from the server as an aware datetime (None stays None)."""
    if value is None:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python < 3.11 accepts only 3 or 6 fraction digits: normalize to 6.
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = head + "." + (digits + "000000")[:6] + rest
    return _dt.datetime.fromisoformat(text)


def encode_value(value: Any) -> Any:
    """A Python value as a JSON SQL parameter: bytes become {"$blob": base64}."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$blob": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {k: encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """A JSON SQL value as Python: {"$blob": base64} becomes bytes."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$blob"), str):
            return base64.b64decode(value["$blob"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def _opt_int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


@dataclass
class Project:
    """A project: one page store holding a tree of branches."""

    id: str
    name: str
    created_at: str
    restore_window_seconds: int
    default_branch: str
    # "local" or "remote" (get_project, update_project); "" in lists.
    durability: str = ""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "Project":
        return cls(id=str(j.get("id", "")), name=j["name"], created_at=j.get("created_at", ""),
                   restore_window_seconds=int(j.get("restore_window_seconds", 0)),
                   default_branch=j.get("default_branch", "production"),
                   durability=j.get("durability") or "", raw=dict(j))


@dataclass
class Branch:
    """A branch: a named, copy-on-write database whose every commit is a checkpoint."""

    name: str
    parent: Optional[str]
    head_lsn: int
    branch_point_lsn: int
    created_at: str
    expires_at: Optional[str]
    protected: bool
    default: bool = False
    logical_bytes: int = 0
    exclusive_bytes: int = 0
    writes: str = "any"  # "any" | "promote_only" (docs/auth.md, "Protection")
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "Branch":
        return cls(name=j["name"], parent=j.get("parent"), head_lsn=int(j.get("head_lsn", 0)),
                   branch_point_lsn=int(j.get("branch_point_lsn", 0)),
                   created_at=j.get("created_at", ""), expires_at=j.get("expires_at"),
                   protected=bool(j.get("protected", False)), default=bool(j.get("default", False)),
                   logical_bytes=int(j.get("logical_bytes", 0)),
                   exclusive_bytes=int(j.get("exclusive_bytes", 0)),
                   writes=str(j.get("writes", "any")), raw=dict(j))


@dataclass
class Checkpoint:
    """One state of a branch's reflog, identified by its LSN: a committed action,
    the branch's creation or a move (rollback, reset, promote: ``target_lsn``
    is where it went, ``previous_head_lsn`` the head it left). ``rolled_back``:
    a former head its history no longer reaches (still a rollback target)."""

    lsn: int
    time: str
    kind: str
    client_id: str
    request_id: str
    summary: str
    rows_affected: int
    label: Optional[str]
    labels: List[str]
    inherited: bool
    branch: Optional[str]
    rolled_back: bool = False
    target_lsn: Optional[int] = None
    previous_head_lsn: Optional[int] = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "Checkpoint":
        return cls(lsn=int(j["lsn"]), time=j.get("time", ""), kind=j.get("kind", ""),
                   client_id=j.get("client_id", ""), request_id=j.get("request_id", ""),
                   summary=j.get("summary", ""), rows_affected=int(j.get("rows_affected", 0)),
                   label=j.get("label"), labels=list(j.get("labels") or []),
                   inherited=bool(j.get("inherited", False)), branch=j.get("branch"),
                   rolled_back=bool(j.get("rolled_back", False)),
                   target_lsn=_opt_int(j.get("target_lsn")),
                   previous_head_lsn=_opt_int(j.get("previous_head_lsn")), raw=dict(j))


@dataclass
class CheckpointPage:
    """A page of checkpoints, newest first; ``next`` is the cursor of the next page."""

    checkpoints: List[Checkpoint]
    next: Optional[str]

    @classmethod
    def from_json(cls, j: JsonObject) -> "CheckpointPage":
        return cls(checkpoints=[Checkpoint.from_json(c) for c in j.get("checkpoints", [])],
                   next=j.get("next"))


@dataclass
class StatementResult:
    """The result of one statement of a SQL script."""

    columns: List[str]
    rows: List[List[Any]]
    rows_affected: int
    truncated: bool

    @classmethod
    def from_json(cls, j: JsonObject) -> "StatementResult":
        return cls(columns=list(j.get("columns", [])),
                   rows=[list(decode_value(r)) for r in j.get("rows", [])],
                   rows_affected=int(j.get("rows_affected", 0)),
                   truncated=bool(j.get("truncated", False)))

    def dicts(self) -> List[Dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row)) for row in self.rows]


@dataclass
class SqlResult:
    """The result of a SQL script: one entry per statement; ``lsn``, the
    checkpoint it made (None when it changed nothing); ``snapshot_lsn``, the
    state it read."""

    results: List[StatementResult]
    lsn: Optional[int]
    snapshot_lsn: int = 0
    read_only: bool = False
    next_cursor: Optional[str] = None  # paged requests: the next page's cursor, None at the end
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "SqlResult":
        return cls(results=[StatementResult.from_json(r) for r in j.get("results", [])],
                   lsn=None if j.get("lsn") is None else int(j["lsn"]),
                   snapshot_lsn=int(j.get("snapshot_lsn", 0)),
                   read_only=bool(j.get("read_only", False)),
                   next_cursor=j.get("next_cursor"), raw=dict(j))

    @property
    def last(self) -> StatementResult:
        """The last statement's result (empty if the script had none)."""
        return self.results[-1] if self.results else StatementResult([], [], 0, False)

    @property
    def columns(self) -> List[str]:
        return self.last.columns

    @property
    def rows(self) -> List[List[Any]]:
        """The last statement's rows."""
        return self.last.rows

    @property
    def rows_affected(self) -> int:
        """Rows changed by the whole script."""
        return sum(r.rows_affected for r in self.results)

    def dicts(self) -> List[Dict[str, Any]]:
        """The last statement's rows as dicts."""
        return self.last.dicts()

    def scalar(self) -> Any:
        """The first column of the last statement's first row (None if no row)."""
        rows = self.rows
        return rows[0][0] if rows and rows[0] else None


@dataclass
class RollbackResult:
    """Where a rollback or reset moved the branch. Undo it by rolling back to
    ``previous_head_lsn`` (``Client.undo``)."""

    head_lsn: int
    previous_head_lsn: int
    target_lsn: Optional[int] = None

    @classmethod
    def from_json(cls, j: JsonObject) -> "RollbackResult":
        return cls(head_lsn=int(j["head_lsn"]), previous_head_lsn=int(j["previous_head_lsn"]),
                   target_lsn=_opt_int(j.get("target_lsn")))


@dataclass
class PromotedAction:
    """One action a promotion carried (replayed, or would replay)."""

    lsn: int
    summary: str
    rows: int

    @classmethod
    def from_json(cls, j: JsonObject) -> "PromotedAction":
        return cls(lsn=int(j["lsn"]), summary=j.get("summary", ""), rows=int(j.get("rows", 0)))


@dataclass
class PromoteVerify:
    """The verify query of a promotion and the value it returned."""

    sql: str
    value: Any
    ok: bool

    @classmethod
    def from_json(cls, j: JsonObject) -> "PromoteVerify":
        return cls(sql=j.get("sql", ""), value=decode_value(j.get("value")),
                   ok=bool(j.get("ok", False)))


@dataclass
class PromoteResult:
    """What a promotion did (or, with dry_run, would do) to the parent
    ``branch``. Undo it with ``Client.rollback(branch, lsn=previous_head_lsn)``
    (``Client.undo`` does that)."""

    branch: str
    source: str
    mode: str  # "fast_forward" or "replay"
    dry_run: bool
    head_lsn: Optional[int]
    previous_head_lsn: int
    target_lsn: Optional[int]
    actions: List[PromotedAction]
    verify: Optional[PromoteVerify]
    attempts: int
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "PromoteResult":
        verify = j.get("verify")
        return cls(branch=j["branch"], source=j.get("source", ""), mode=j["mode"],
                   dry_run=bool(j.get("dry_run", False)), head_lsn=_opt_int(j.get("head_lsn")),
                   previous_head_lsn=int(j["previous_head_lsn"]),
                   target_lsn=_opt_int(j.get("target_lsn")),
                   actions=[PromotedAction.from_json(a) for a in j.get("actions") or []],
                   verify=PromoteVerify.from_json(verify) if verify else None,
                   attempts=int(j.get("attempts", 1)), raw=dict(j))


@dataclass
class SchemaObject:
    type: str
    name: str
    table: Optional[str]
    sql: Optional[str]

    @classmethod
    def from_json(cls, j: JsonObject) -> "SchemaObject":
        return cls(type=j.get("type", ""), name=j.get("name", ""), table=j.get("table"),
                   sql=j.get("sql"))


@dataclass
class Schema:
    """The schema objects (tables, indexes, views, triggers) at ``lsn``."""

    lsn: int
    objects: List[SchemaObject]

    @classmethod
    def from_json(cls, j: JsonObject) -> "Schema":
        return cls(lsn=int(j.get("lsn", 0)),
                   objects=[SchemaObject.from_json(o) for o in j.get("objects", [])])

    def tables(self) -> List[str]:
        return [o.name for o in self.objects if o.type == "table"]


@dataclass
class SchemaObjectDiff:
    type: str
    name: str
    change: str
    old_sql: Optional[str] = None
    new_sql: Optional[str] = None
    columns_added: List[str] = field(default_factory=list)
    columns_removed: List[str] = field(default_factory=list)
    columns_changed: List[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, j: JsonObject) -> "SchemaObjectDiff":
        return cls(type=j.get("type", ""), name=j.get("name", ""), change=j.get("change", ""),
                   old_sql=j.get("old_sql"), new_sql=j.get("new_sql"),
                   columns_added=list(j.get("columns_added") or []),
                   columns_removed=list(j.get("columns_removed") or []),
                   columns_changed=list(j.get("columns_changed") or []))


@dataclass
class SchemaDiff:
    """Schema changes from ``from_lsn`` (the base) to ``to_lsn``."""

    from_lsn: int
    to_lsn: int
    objects: List[SchemaObjectDiff]
    unified: str = ""
    kind: str = "schema"
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "SchemaDiff":
        return cls(from_lsn=int(j.get("from_lsn", 0)), to_lsn=int(j.get("to_lsn", 0)),
                   objects=[SchemaObjectDiff.from_json(o) for o in j.get("objects", [])],
                   unified=j.get("unified") or "", raw=dict(j))


@dataclass
class RowChange:
    op: str
    key: Any
    old: Any
    new: Any

    @classmethod
    def from_json(cls, j: JsonObject) -> "RowChange":
        return cls(op=j.get("op", ""), key=decode_value(j.get("key")),
                   old=decode_value(j.get("old")), new=decode_value(j.get("new")))


@dataclass
class TableDiff:
    """One table's row changes: totals, and this page's ``rows``. Rows are
    compared on ``key_columns`` and the columns both states have; values of
    ``columns_added`` show in ``new``, of ``columns_removed`` in ``old``."""

    table: str
    rows_added: int
    rows_removed: int
    rows_changed: int
    rows: List[RowChange]
    note: str = ""
    key_columns: List[str] = field(default_factory=list)
    columns_added: List[str] = field(default_factory=list)
    columns_removed: List[str] = field(default_factory=list)

    @property
    def sample(self) -> List[RowChange]:
        """Former name of ``rows``."""
        return self.rows

    @classmethod
    def from_json(cls, j: JsonObject) -> "TableDiff":
        return cls(table=j.get("table", ""), rows_added=int(j.get("rows_added", 0)),
                   rows_removed=int(j.get("rows_removed", 0)),
                   rows_changed=int(j.get("rows_changed", 0)),
                   rows=[RowChange.from_json(c) for c in j.get("rows", [])],
                   note=j.get("note") or "",
                   key_columns=list(j.get("key_columns") or []),
                   columns_added=list(j.get("columns_added") or []),
                   columns_removed=list(j.get("columns_removed") or []))


@dataclass
class DataDiff:
    """Row changes per table from ``from_lsn`` (the base) to ``to_lsn``; one
    page of rows (``next``: the cursor of the next page, None on the last)."""

    from_lsn: int
    to_lsn: int
    tables: List[TableDiff]
    pages_changed: int = 0
    tables_skipped: int = 0  # tables proven unchanged without reading rows
    kind: str = "data"
    next: Optional[str] = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "DataDiff":
        skipped = j.get("tables_skipped")
        if isinstance(skipped, list):
            skipped = len(skipped)
        return cls(from_lsn=int(j.get("from_lsn", 0)), to_lsn=int(j.get("to_lsn", 0)),
                   tables=[TableDiff.from_json(t) for t in j.get("tables", [])],
                   pages_changed=int(j.get("pages_changed", 0)),
                   tables_skipped=int(skipped or 0), next=j.get("next"),
                   raw=dict(j))

    def table(self, name: str) -> Optional[TableDiff]:
        for t in self.tables:
            if t.table == name:
                return t
        return None


@dataclass
class DataPatch:
    """The data diff as SQL that turns ``from_lsn`` into ``to_lsn`` (as Dolt's
    dolt_patch): run every page's ``statements`` in order. ``complete`` is
    False when a schema change has no SQL form (listed as a ``--`` comment)."""

    from_lsn: int
    to_lsn: int
    statements: List[str]
    sql: str
    complete: bool = True
    next: Optional[str] = None
    kind: str = "patch"
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "DataPatch":
        return cls(from_lsn=int(j.get("from_lsn", 0)), to_lsn=int(j.get("to_lsn", 0)),
                   statements=list(j.get("statements") or []), sql=j.get("sql") or "",
                   complete=bool(j.get("complete", True)), next=j.get("next"), raw=dict(j))


Diff = Union[SchemaDiff, DataDiff, DataPatch]


@dataclass
class Credential:
    """A short-lived bearer token for SQL on one branch only (``read`` or ``read_write``)."""

    credential: str
    token_type: str
    expires_in: int  # seconds from issue
    expires_at: str  # RFC 3339; the credential is refused from this instant on
    project: str
    branch: str
    access: str

    @classmethod
    def from_json(cls, j: JsonObject) -> "Credential":
        return cls(credential=j["credential"], token_type=j.get("token_type", "Bearer"),
                   expires_in=int(j.get("expires_in", 0)), expires_at=j.get("expires_at", ""),
                   project=j.get("project", ""), branch=j.get("branch", ""),
                   access=j.get("access", "read"))

    def __repr__(self) -> str:  # never print the secret
        return (f"Credential(project={self.project!r}, branch={self.branch!r}, "
                f"access={self.access!r}, expires_at={self.expires_at!r})")


@dataclass
class ComputeState:
    """A branch's compute (its open SQLite connection): active or suspended."""

    state: str
    in_use: int
    cold_starts: int
    last_used_at: Optional[str]
    last_cold_start_ms: Optional[float]
    idle_timeout_seconds: Optional[int] = None

    @classmethod
    def from_json(cls, j: JsonObject) -> "ComputeState":
        ms = j.get("last_cold_start_ms")
        return cls(state=j.get("state", ""), in_use=int(j.get("in_use", 0)),
                   cold_starts=int(j.get("cold_starts", 0)), last_used_at=j.get("last_used_at"),
                   last_cold_start_ms=None if ms is None else float(ms),
                   idle_timeout_seconds=_opt_int(j.get("idle_timeout_seconds")))

    @property
    def active(self) -> bool:
        return self.state == "active"


@dataclass
class ClientInfo:
    """An OAuth client (never its secret)."""

    client_id: str
    name: str
    scopes: List[str]
    projects: List[str]
    enabled: bool
    created_at: str  # RFC 3339
    branches: List[str] = field(default_factory=list)  # patterns; empty: every branch
    max_branch_ttl_seconds: Optional[int] = None  # None: no maximum
    # The client's own quotas (docs/api.md, "Quotas"); None: not set.
    quotas: Dict[str, Optional[int]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, j: JsonObject) -> "ClientInfo":
        ttl = j.get("max_branch_ttl_seconds")
        return cls(client_id=j["client_id"], name=j.get("name", ""),
                   scopes=[str(s) for s in (j.get("scopes") or [])],
                   projects=list(j.get("projects") or []),
                   enabled=bool(j.get("enabled", True)), created_at=j.get("created_at", ""),
                   branches=list(j.get("branches") or []),
                   max_branch_ttl_seconds=None if ttl is None else int(ttl),
                   quotas=dict(j.get("quotas") or {}))


@dataclass
class NewClient(ClientInfo):
    """A client just created: ``client_secret`` is shown this once."""

    client_secret: str = field(default="", repr=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "NewClient":
        base = ClientInfo.from_json(j)
        return cls(client_id=base.client_id, name=base.name, scopes=base.scopes,
                   projects=base.projects, enabled=base.enabled, created_at=base.created_at,
                   branches=base.branches, max_branch_ttl_seconds=base.max_branch_ttl_seconds,
                   quotas=base.quotas, client_secret=j.get("client_secret", ""))


@dataclass
class Export:
    """A branch's database file (SQLite format) and the LSN of the state it holds."""

    data: bytes = field(repr=False)
    lsn: int

    def write(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(self.data)


@dataclass
class Token:
    """An OAuth access token from the token endpoint."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int
    scope: str

    @classmethod
    def from_json(cls, j: JsonObject) -> "Token":
        return cls(access_token=j["access_token"], token_type=j.get("token_type", "Bearer"),
                   expires_in=int(j.get("expires_in", 0)), scope=j.get("scope", ""))


@dataclass
class Usage:
    """A project's figures (docs/api.md, "Usage"), or one client's share."""

    project: str
    client_id: Optional[str]
    quotas: Dict[str, Optional[int]]
    branches: int
    logical_bytes: int
    exclusive_bytes: int
    commits: int
    commits_last_minute: int
    active_computes: int
    compute_seconds: float
    requests: int
    counting_since: str
    per_branch: List[JsonObject]
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "Usage":
        return cls(project=j["project"], client_id=j.get("client_id"),
                   quotas=dict(j.get("quotas") or {}), branches=int(j["branches"]),
                   logical_bytes=int(j["logical_bytes"]),
                   exclusive_bytes=int(j["exclusive_bytes"]), commits=int(j["commits"]),
                   commits_last_minute=int(j["commits_last_minute"]),
                   active_computes=int(j["active_computes"]),
                   compute_seconds=float(j["compute_seconds"]), requests=int(j["requests"]),
                   counting_since=j["counting_since"], per_branch=list(j.get("per_branch", [])),
                   raw=j)


@dataclass
class AuditEvent:
    """One entry of the audit trail (docs/api.md, "Audit trail")."""

    seq: int
    time: str
    operation: str
    status: int
    code: Optional[str]
    project: Optional[str]
    branch: Optional[str]
    client_id: Optional[str]
    jti: Optional[str]
    request_id: str
    details: JsonObject
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, j: JsonObject) -> "AuditEvent":
        return cls(seq=int(j["seq"]), time=j["time"], operation=j["operation"],
                   status=int(j["status"]), code=j.get("code"), project=j.get("project"),
                   branch=j.get("branch"), client_id=j.get("client_id"), jti=j.get("jti"),
                   request_id=j.get("request_id", ""), details=dict(j.get("details") or {}),
                   raw=j)


@dataclass
class AuditPage:
    """A page of audit events, oldest first; ``next_cursor`` continues it."""

    events: List[AuditEvent]
    next_cursor: Optional[str]

    @classmethod
    def from_json(cls, j: JsonObject) -> "AuditPage":
        return cls(events=[AuditEvent.from_json(e) for e in j["events"]],
                   next_cursor=j.get("next_cursor"))
