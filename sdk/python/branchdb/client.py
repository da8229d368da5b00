"""The branchdb client: every operation of the HTTP API as a typed method.

    import branchdb
    client = branchdb.Client("http://127.0.0.1:8080", project="shop",
                             client_id="bdb_...", client_secret="bdbs_...")
    with client.ephemeral_branch("production", ttl=3600) as b:
        b.sql("INSERT INTO t VALUES (?)", [1])

Methods that act on a project take ``project=``; it defaults to the client's
project (``Client(project=...)`` or BRANCHDB_PROJECT). Branch names may
contain '/' (they are percent-encoded in paths). Every failure is raised as a
:class:`branchdb.BranchdbError` subclass (see ``branchdb.errors``).

Thread-safety: a Client may be shared between threads.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import urllib.parse
import uuid
from typing import (Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar,
                    Union)

from ._http import ClientCredentials, Response, StaticToken, TokenSource, Transport
from .errors import ConfigurationError, NotFound, UnexpectedResponse
from .models import (AuditEvent, AuditPage, Branch, Checkpoint, CheckpointPage, ClientInfo, ComputeState, Credential,
                     DataDiff, DataPatch, Diff, Export, NewClient, Project, PromoteResult,
                     RollbackResult, RowChange, Schema,
                     SchemaDiff, SqlResult, Usage, encode_value)

__all__ = ["Client", "BranchHandle", "new_idempotency_key"]

Params = Union[Sequence[Any], Mapping[str, Any], None]
TimeLike = Union[str, int, float, _dt.datetime]

_UNSET: Any = object()


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key (a random UUID)."""
    return str(uuid.uuid4())


def _time_json(value: TimeLike) -> Union[str, int, float]:
    """A time for the API: RFC 3339 string or Unix seconds; datetimes converted
    (naive ones are taken as UTC)."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, bool):
        raise TypeError("a time must be an RFC 3339 string, Unix seconds or a datetime")
    return value


def _seg(name: str) -> str:
    """One path segment, '/' included, percent-encoded."""
    return urllib.parse.quote(name, safe="")


T = TypeVar("T")


def _parse(cls: Type[T], j: Any) -> T:
    """cls.from_json(j); a body of another shape raises UnexpectedResponse."""
    try:
        return cls.from_json(j)  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UnexpectedResponse(f"unexpected {cls.__name__} response: {e!r}") from e


def _items(j: Any, key: str) -> List[Any]:
    items = j.get(key) if isinstance(j, dict) else None
    if not isinstance(items, list):
        raise UnexpectedResponse(f"unexpected response: no list {key!r}")
    return items


def _one_of(kind: str, **choices: Any) -> Dict[str, Any]:
    given = {k: v for k, v in choices.items() if v is not None}
    if len(given) != 1:
        raise ValueError(f"{kind}: give exactly one of {', '.join(choices)}")
    key, value = next(iter(given.items()))
    if key == "timestamp":
        value = _time_json(value)
    return {key: value}


class Client:
    """A branchdb API client.

    Args:
        url: the server's base URL (default: BRANCHDB_URL).
        project: the default project of project-scoped calls (default: BRANCHDB_PROJECT).
        client_id, client_secret: OAuth client credentials (default:
            BRANCHDB_CLIENT_ID / BRANCHDB_CLIENT_SECRET). Tokens are fetched and
            refreshed automatically.
        token: a fixed bearer token instead (access token or database
            credential; default BRANCHDB_TOKEN). Used only when no client
            credentials are given.
        token_url: the token endpoint (default ``<url>/oauth/token``).
        scope: ask for narrower scopes than the client holds ("sql:read ...").
        timeout: seconds per HTTP attempt.
        max_retries: retries of safe calls after network errors and 503s.
        refresh_margin: refresh the token this many seconds before it expires
            (default a tenth of its lifetime, at most 60 s).
        trust_env: honour http_proxy/https_proxy/no_proxy (default True).
        env: the environment to read (default ``os.environ``).
        token_source: a custom :class:`TokenSource` (overrides every credential
            argument and variable).

    Raises ConfigurationError when no URL is known. Without any credentials the
    client can still call unauthenticated endpoints (``health``).
    """

    def __init__(self, url: Optional[str] = None, *, project: Optional[str] = None,
                 client_id: Optional[str] = None, client_secret: Optional[str] = None,
                 token: Optional[str] = None, token_url: Optional[str] = None,
                 scope: Optional[str] = None, timeout: float = 30.0, max_retries: int = 3,
                 backoff: float = 0.2, refresh_margin: Optional[float] = None,
                 trust_env: bool = True, env: Optional[Mapping[str, str]] = None,
                 token_source: Optional[TokenSource] = None) -> None:
        env = os.environ if env is None else env
        url = url or env.get("BRANCHDB_URL")
        if not url:
            raise ConfigurationError("no server URL: pass url= or set BRANCHDB_URL")
        self.url = url.rstrip("/")
        self.project = project or env.get("BRANCHDB_PROJECT") or None
        source: Optional[TokenSource] = token_source
        if source is None and client_id is None and client_secret is None and token is None:
            client_id = env.get("BRANCHDB_CLIENT_ID") or None
            client_secret = env.get("BRANCHDB_CLIENT_SECRET") or None
            if client_id is None and client_secret is None:
                token = env.get("BRANCHDB_TOKEN") or None
        if source is None and (client_id is not None or client_secret is not None):
            if not client_id or not client_secret:
                raise ConfigurationError("client credentials need both client_id and "
                                         "client_secret")
            source = ClientCredentials(token_url or self.url + "/oauth/token", client_id,
                                       client_secret, scope=scope, refresh_margin=refresh_margin)
        elif source is None and token:
            source = StaticToken(token)
        self._transport = Transport(self.url, source, timeout=timeout, max_retries=max_retries,
                                    backoff=backoff, trust_env=trust_env)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **kwargs: Any) -> "Client":
        """From BRANCHDB_URL, BRANCHDB_PROJECT and BRANCHDB_CLIENT_ID +
        BRANCHDB_CLIENT_SECRET (or BRANCHDB_TOKEN)."""
        return cls(env=env, **kwargs)

    @classmethod
    def from_data_dir(cls, data_dir: str, *, url: Optional[str] = None, **kwargs: Any) -> "Client":
        """As the bootstrap admin, from DATA_DIR/admin-credentials.json (written by
        the server on first start). ``url`` defaults to the file's token_url
        without /oauth/token (the address of that first start)."""
        path = os.path.join(data_dir, "admin-credentials.json")
        try:
            with open(path, "r", encoding="utf-8") as f:
                creds = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigurationError(f"cannot read {path}: {e}") from e
        token_url = creds.get("token_url") or ""
        if url is None:
            suffix = "/oauth/token"
            if not token_url.endswith(suffix):
                raise ConfigurationError(f"{path}: no token_url; pass url=")
            url = token_url[: -len(suffix)]
            kwargs.setdefault("token_url", token_url)
        return cls(url, client_id=creds["client_id"], client_secret=creds["client_secret"],
                   **kwargs)

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def token_source(self) -> Optional[TokenSource]:
        """The token source (a ClientCredentials exposes ``tokens_fetched``)."""
        return self._transport.token_source

    def _project(self, project: Optional[str]) -> str:
        p = project or self.project
        if not p:
            raise ConfigurationError("no project: pass project= or set Client(project=...) / "
                                     "BRANCHDB_PROJECT")
        return p

    def _branch_path(self, project: Optional[str], branch: str, sub: str = "") -> str:
        return f"/v1/projects/{_seg(self._project(project))}/branches/{_seg(branch)}{sub}"

    def request(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None,
                json_body: Any = None, data: Optional[bytes] = None,
                content_type: Optional[str] = None, idempotency_key: Optional[str] = None,
                headers: Optional[Mapping[str, str]] = None, retry: Optional[bool] = None,
                authenticate: bool = True, raise_for_status: bool = True) -> Response:
        """A raw API call (for what the typed methods do not cover). ``retry``
        defaults to True for GET/DELETE and for requests with an Idempotency-Key."""
        if retry is None:
            retry = method in ("GET", "HEAD", "DELETE") or idempotency_key is not None
        return self._transport.request(method, path, query=query, json_body=json_body, data=data,
                                       content_type=content_type, headers=headers,
                                       idempotency_key=idempotency_key, retry=retry,
                                       authenticate=authenticate,
                                       raise_for_status=raise_for_status)

    def _get(self, path: str, query: Optional[Mapping[str, Any]] = None) -> Any:
        return self.request("GET", path, query=query).json()

    def _post(self, path: str, body: Any, idempotency_key: Optional[str] = None, *,
              idempotent: bool = True, query: Optional[Mapping[str, Any]] = None) -> Any:
        """A mutating POST: with an Idempotency-Key (given, or fresh) reused by
        every retry; routes the server does not cache (idempotent=False) get
        neither key nor retries."""
        key = (idempotency_key or new_idempotency_key()) if idempotent else None
        return self.request("POST", path, query=query, json_body=body, idempotency_key=key,
                            retry=idempotent).json()

    def _delete(self, path: str, query: Optional[Mapping[str, Any]] = None) -> None:
        try:
            self.request("DELETE", path, query=query)
        except NotFound as e:
            # A retried DELETE whose earlier attempt went through finds nothing.
            if e.attempts > 1:
                return
            raise

    # -- service ----------------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """GET /healthz (no token needed)."""
        return self.request("GET", "/healthz", authenticate=False).json()

    def metrics(self) -> str:
        """GET /metrics: Prometheus text."""
        return self.request("GET", "/metrics", authenticate=False).body.decode("utf-8")

    # -- projects ---------------------------------------------------------------------------

    def create_project(self, name: str, *, restore_window_seconds: Optional[int] = None,
                       idempotency_key: Optional[str] = None) -> Project:
        """Creates a project and its default branch ``production`` (empty)."""
        body: Dict[str, Any] = {"name": name}
        if restore_window_seconds is not None:
            body["restore_window_seconds"] = restore_window_seconds
        return _parse(Project, self._post("/v1/projects", body, idempotency_key))

    def list_projects(self) -> List[Project]:
        return [_parse(Project, p) for p in _items(self._get("/v1/projects"), "projects")]

    def get_project(self, name: Optional[str] = None) -> Project:
        return _parse(Project, self._get(f"/v1/projects/{_seg(self._project(name))}"))

    def update_project(self, name: Optional[str] = None, *,
                       restore_window_seconds: Optional[int] = None,
                       quotas: Optional[Mapping[str, Optional[int]]] = None,
                       default_branch_ttl_seconds: Any = _UNSET,
                       durability: Any = _UNSET) -> Project:
        """Changes the project's settings. ``quotas``: each named quota set (an
        int) or lifted (None), the others left as they are (docs/api.md,
        "Quotas"). ``default_branch_ttl_seconds``: an int, or None to lift it.
        ``durability``: "local", "remote" (needs the server's [object_storage]),
        or None for the server's default (docs/object-storage.md)."""
        body: Dict[str, Any] = {}
        if restore_window_seconds is not None:
            body["restore_window_seconds"] = restore_window_seconds
        if quotas is not None:
            body["quotas"] = dict(quotas)
        if default_branch_ttl_seconds is not _UNSET:
            body["default_branch_ttl_seconds"] = default_branch_ttl_seconds
        if durability is not _UNSET:
            body["durability"] = durability
        return _parse(Project, self.request(
            "PATCH", f"/v1/projects/{_seg(self._project(name))}", json_body=body,
            retry=True).json())

    def delete_project(self, name: Optional[str] = None, *, force: bool = False) -> None:
        """Deletes the project, all its branches and data. Refused (Conflict,
        branch_protected) while a branch is protected, unless force."""
        self._delete(f"/v1/projects/{_seg(self._project(name))}",
                     {"force": True} if force else None)

    # -- branches ---------------------------------------------------------------------------

    def create_branch(self, name: str, parent: Optional[str] = None, *,
                      at_lsn: Optional[int] = None, at_timestamp: Optional[TimeLike] = None,
                      at_checkpoint: Optional[int] = None, at_label: Optional[str] = None,
                      ttl: Optional[int] = None, expires_at: Optional[TimeLike] = None,
                      protected: Optional[bool] = None, writes: Optional[str] = None,
                      project: Optional[str] = None,
                      idempotency_key: Optional[str] = None) -> Branch:
        """Creates branch ``name`` from ``parent`` (default: the project's default
        branch) at its head, or at one of at_lsn / at_timestamp / at_checkpoint /
        at_label. ``at_lsn`` must be a state of the parent and ``at_checkpoint`` (of
        any branch) one of an explicitly given parent, else the server answers 404
        checkpoint_not_found; the answer's ``branch_point_lsn`` is the exact state
        used. ``ttl`` (seconds) or ``expires_at`` make it expire. ``writes``:
        "any" (default) or "promote_only" (docs/auth.md, "Protection")."""
        body: Dict[str, Any] = {"name": name}
        if parent is not None:
            body["parent"] = parent
        ats = {"lsn": at_lsn, "timestamp": at_timestamp, "checkpoint": at_checkpoint,
               "label": at_label}
        if any(v is not None for v in ats.values()):
            body["at"] = _one_of("at", **ats)
        if ttl is not None:
            body["ttl_seconds"] = int(ttl)
        if expires_at is not None:
            body["expires_at"] = _time_json(expires_at)
        if protected is not None:
            body["protected"] = protected
        if writes is not None:
            body["writes"] = writes
        path = f"/v1/projects/{_seg(self._project(project))}/branches"
        return _parse(Branch, self._post(path, body, idempotency_key))

    def list_branches(self, *, project: Optional[str] = None) -> List[Branch]:
        """All branches, sorted by name (parent links give the tree)."""
        path = f"/v1/projects/{_seg(self._project(project))}/branches"
        return [_parse(Branch, b) for b in _items(self._get(path), "branches")]

    def get_branch(self, branch: str, *, project: Optional[str] = None) -> Branch:
        return _parse(Branch, self._get(self._branch_path(project, branch)))

    def update_branch(self, branch: str, *, name: Optional[str] = None,
                      protected: Optional[bool] = None, ttl: Optional[int] = None,
                      expires_at: Optional[TimeLike] = _UNSET, writes: Optional[str] = None,
                      project: Optional[str] = None) -> Branch:
        """Renames (name), protects, sets the writes policy ("any" or
        "promote_only"), sets a TTL, or sets / clears (expires_at=None) the expiry
        time. Lowering a guard needs branches:protect (403 branch_protected).
        Returns the branch under its (new) name."""
        body: Dict[str, Any] = {}
        if writes is not None:
            body["writes"] = writes
        if name is not None:
            body["name"] = name
        if protected is not None:
            body["protected"] = protected
        if ttl is not None:
            body["ttl_seconds"] = int(ttl)
        if expires_at is not _UNSET:
            body["expires_at"] = None if expires_at is None else _time_json(expires_at)
        renames = name is not None and name != branch
        return _parse(Branch, self.request("PATCH", self._branch_path(project, branch),
                                             json_body=body, retry=not renames).json())

    def delete_branch(self, branch: str, *, project: Optional[str] = None) -> None:
        """Deletes a branch (not the default one, not a protected one: Conflict).
        Its children keep their data."""
        self._delete(self._branch_path(project, branch))

    def branch(self, name: str, *, project: Optional[str] = None) -> "BranchHandle":
        """A handle bound to one branch (no request is made)."""
        return BranchHandle(self, self._project(project), name)

    @contextlib.contextmanager
    def ephemeral_branch(self, parent: Optional[str] = None, *, ttl: int = 3600,
                         name: Optional[str] = None, project: Optional[str] = None,
                         at_lsn: Optional[int] = None, at_timestamp: Optional[TimeLike] = None,
                         at_checkpoint: Optional[int] = None, at_label: Optional[str] = None,
                         prefix: str = "ephemeral/") -> Iterator["BranchHandle"]:
        """A throwaway branch for the ``with`` block:

            with client.ephemeral_branch("production", ttl=3600) as b:
                b.sql("DELETE FROM orders")   # production is untouched

        Creates ``name`` (default ``ephemeral/<random>``) from ``parent`` with a
        TTL (so the server drops it even if this process dies), yields a
        :class:`BranchHandle`, and deletes the branch when the block ends, also
        when it raises. A failure to delete does not hide the block's exception;
        without one, it is raised."""
        project = self._project(project)
        name = name or prefix + uuid.uuid4().hex[:12]
        created = self.create_branch(name, parent, at_lsn=at_lsn, at_timestamp=at_timestamp,
                                     at_checkpoint=at_checkpoint, at_label=at_label, ttl=ttl,
                                     project=project)
        handle = BranchHandle(self, project, created.name, created)
        try:
            yield handle
        except BaseException:
            try:
                self.delete_branch(handle.name, project=project)
            except Exception:  # NotFound, or a failure: the block's exception matters more
                pass
            raise
        else:
            try:
                self.delete_branch(handle.name, project=project)
            except NotFound:
                pass

    # -- SQL --------------------------------------------------------------------------------

    def sql(self, branch: str, sql: str, params: Params = None, *, read_only: bool = False,
            project: Optional[str] = None, idempotency_key: Optional[str] = None,
            page_size: Optional[int] = None, cursor: Optional[str] = None) -> SqlResult:
        """Runs a SQL script on the branch as one transaction (one checkpoint).

        ``params``: a sequence (positional ``?``, consumed across statements in
        order) or a mapping (``:name`` / ``@name`` / ``$name``). bytes bind as
        BLOB. With ``read_only`` (or a token with only sql:read) writes fail
        with PermissionDenied (read_only). A result past the server's caps
        raises (``result_too_large``); ``page_size`` (then the answer's
        ``next_cursor`` as ``cursor``) reads one read-only statement in pages,
        or use :meth:`sql_rows`."""
        body: Dict[str, Any] = {"sql": sql}
        if params is not None:
            if isinstance(params, (str, bytes)):
                raise TypeError("params: expected a sequence or a mapping")
            body["params"] = encode_value(dict(params) if isinstance(params, Mapping)
                                          else list(params))
        if read_only:
            body["read_only"] = True
        if page_size is not None:
            body["page_size"] = page_size
        if cursor is not None:
            body["cursor"] = cursor
        return _parse(SqlResult, self._post(self._branch_path(project, branch, "/sql"), body,
                                              idempotency_key))

    def sql_rows(self, branch: str, sql: str, params: Params = None, *,
                 page_size: Optional[int] = None,
                 project: Optional[str] = None) -> Iterator[List[Any]]:
        """Every row of one read-only statement, fetched page by page (all pages
        read the first page's snapshot LSN). ``page_size`` defaults to 1000."""
        cursor: Optional[str] = None
        while True:
            page = self.sql(branch, sql, params, project=project, cursor=cursor,
                            page_size=page_size or 1000)
            yield from page.rows
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- checkpoints, rollback, reset ----------------------------------------------------

    def list_checkpoints(self, branch: str, *, limit: Optional[int] = None,
                         cursor: Optional[str] = None,
                         project: Optional[str] = None) -> CheckpointPage:
        """One page of the branch's reflog, newest first: every state it had as
        head (``rolled_back`` when its history no longer reaches it; moves carry
        ``target_lsn`` and ``previous_head_lsn``), merged with the ancestors'
        states its history is built on (``inherited``)."""
        return _parse(CheckpointPage, self._get(
            self._branch_path(project, branch, "/checkpoints"), {"limit": limit, "cursor": cursor}))

    def iter_checkpoints(self, branch: str, *, page_size: int = 100,
                         project: Optional[str] = None) -> Iterator[Checkpoint]:
        """Every checkpoint, newest first, fetching pages as needed."""
        cursor: Optional[str] = None
        while True:
            page = self.list_checkpoints(branch, limit=page_size, cursor=cursor, project=project)
            yield from page.checkpoints
            if not page.next:
                return
            cursor = page.next

    def label_checkpoint(self, branch: str, label: str, *, lsn: Optional[int] = None,
                         project: Optional[str] = None,
                         idempotency_key: Optional[str] = None) -> Checkpoint:
        """Labels a checkpoint (default: the head). Labelled checkpoints are kept
        past the restore window."""
        body: Dict[str, Any] = {"label": label}
        if lsn is not None:
            body["lsn"] = lsn
        return _parse(Checkpoint, self._post(self._branch_path(project, branch, "/checkpoints"),
                                               body, idempotency_key))

    def rollback(self, branch: str, *, checkpoint: Optional[int] = None,
                 lsn: Optional[int] = None, timestamp: Optional[TimeLike] = None,
                 actions: Optional[int] = None, label: Optional[str] = None,
                 project: Optional[str] = None,
                 idempotency_key: Optional[str] = None) -> RollbackResult:
        """Moves the branch back to exactly one of: a checkpoint (LSN), an LSN, a
        time, N actions back, or a label. O(1); undo with :meth:`undo`."""
        to = _one_of("rollback", checkpoint=checkpoint, lsn=lsn, timestamp=timestamp,
                     actions=actions, label=label)
        return _parse(RollbackResult, self._post(self._branch_path(project, branch, "/rollback"),
                                                   {"to": to}, idempotency_key))

    def undo(self, branch: str, moved: Union[RollbackResult, PromoteResult], *,
             project: Optional[str] = None,
             idempotency_key: Optional[str] = None) -> RollbackResult:
        """Undoes a rollback, reset or promotion (pass the parent's name and the
        PromoteResult): moves the branch back to the head it had before
        (``moved.previous_head_lsn``)."""
        return self.rollback(branch, lsn=moved.previous_head_lsn, project=project,
                             idempotency_key=idempotency_key)

    def reset(self, branch: str, *, project: Optional[str] = None,
              idempotency_key: Optional[str] = None) -> RollbackResult:
        """Moves the branch to its parent's current head (undoable with :meth:`undo`)."""
        return _parse(RollbackResult, self._post(self._branch_path(project, branch, "/reset"),
                                                   None, idempotency_key))

    def promote(self, branch: str, *, dry_run: bool = False, verify: Optional[str] = None,
                on_conflict: str = "fail", max_retries: Optional[int] = None,
                mode: str = "auto", project: Optional[str] = None,
                idempotency_key: Optional[str] = None) -> PromoteResult:
        """Promotes the branch into its parent: fast-forward when the parent has
        not moved since the branch point, else a replay of the branch's actions
        on the parent's head (mode "fast_forward" / "replay" forces one). The
        parent moves atomically or not at all; ``verify`` (a SELECT whose first
        value must be truthy) runs on the result first; ``dry_run`` only reports.
        on_conflict="retry" replays again (up to ``max_retries``, 0..10) when
        the parent is written meanwhile. Undo: :meth:`undo` with the parent's
        name and the result. Raises ParentMoved, NotReplayable, ReplayFailed,
        VerifyFailed, ConcurrentWrite (409) or PermissionDenied (a protected
        parent needs the scope branches:promote_protected)."""
        body: Dict[str, Any] = {"mode": mode, "dry_run": dry_run, "on_conflict": on_conflict}
        if verify is not None:
            body["verify"] = verify
        if max_retries is not None:
            body["max_retries"] = max_retries
        return _parse(PromoteResult, self._post(self._branch_path(project, branch, "/promote"),
                                                  body, idempotency_key))

    # -- schema, diff -------------------------------------------------------------------------

    def schema(self, branch: str, *, lsn: Optional[int] = None,
               project: Optional[str] = None) -> Schema:
        return _parse(Schema, self._get(self._branch_path(project, branch, "/schema"),
                                          {"lsn": lsn}))

    def diff(self, branch: str, *, kind: str = "schema", base: Optional[str] = None,
             base_lsn: Optional[int] = None, lsn: Optional[int] = None,
             tables: Optional[Sequence[str]] = None, limit: Optional[int] = None,
             cursor: Optional[str] = None, project: Optional[str] = None) -> Diff:
        """Schema (kind="schema"), data (kind="data") or SQL patch (kind="patch")
        diff from ``base`` (default the parent's head; ``base_lsn`` for one of
        its checkpoints) to the branch (its head, or ``lsn``). Data and patch are
        paged: ``limit`` rows per page, ``cursor`` = the previous page's ``next``.
        Returns SchemaDiff, DataDiff or DataPatch."""
        if kind not in ("schema", "data", "patch"):
            raise ValueError("kind: expected 'schema', 'data' or 'patch'")
        query: Dict[str, Any] = {"kind": kind, "base": base, "base_lsn": base_lsn, "lsn": lsn,
                                 "limit": limit, "cursor": cursor}
        if tables:
            query["tables"] = ",".join(tables)
        j = self._get(self._branch_path(project, branch, "/diff"), query)
        kind_got = j.get("kind") if isinstance(j, dict) else None
        if kind_got == "patch":
            return _parse(DataPatch, j)
        return _parse(DataDiff, j) if kind_got == "data" else _parse(SchemaDiff, j)

    def iter_diff_rows(self, branch: str, *, page_size: int = 500,
                       **kwargs: Any) -> Iterator[Tuple[str, RowChange]]:
        """Every changed row of the data diff as (table, RowChange), following
        the cursor through all pages (the same two states throughout)."""
        cursor: Optional[str] = None
        while True:
            page = self.diff(branch, kind="data", limit=page_size, cursor=cursor, **kwargs)
            assert isinstance(page, DataDiff)
            for t in page.tables:
                for r in t.rows:
                    yield t.table, r
            if not page.next:
                return
            cursor = page.next

    def patch_sql(self, branch: str, *, page_size: int = 500, **kwargs: Any) -> str:
        """The whole SQL patch (every page) from the base to the branch."""
        out: List[str] = []
        cursor: Optional[str] = None
        while True:
            page = self.diff(branch, kind="patch", limit=page_size, cursor=cursor, **kwargs)
            assert isinstance(page, DataPatch)
            out.append(page.sql)
            if not page.next:
                return "".join(out)
            cursor = page.next

    # -- credentials, compute ----------------------------------------------------------------

    def create_credential(self, branch: str, *, access: str = "read", ttl: Optional[int] = None,
                          project: Optional[str] = None) -> Credential:
        """A short-lived token for SQL on this branch only (access "read" or
        "read_write"; ttl 60..3600 s). Use it as ``Client(url, token=c.credential)``."""
        body: Dict[str, Any] = {"access": access}
        if ttl is not None:
            body["ttl_seconds"] = int(ttl)
        return _parse(Credential, self._post(self._branch_path(project, branch, "/credentials"),
                                               body, idempotent=False))

    def compute(self, branch: str, *, project: Optional[str] = None) -> ComputeState:
        return _parse(ComputeState, self._get(self._branch_path(project, branch, "/compute")))

    def suspend(self, branch: str, *, project: Optional[str] = None) -> ComputeState:
        """Suspends the branch's compute now; the next request resumes it."""
        return _parse(ComputeState, self._post(
            self._branch_path(project, branch, "/compute/suspend"), None))

    # -- export, import -------------------------------------------------------------------------

    def export(self, branch: str, *, lsn: Optional[int] = None,
               project: Optional[str] = None) -> Export:
        """The branch's SQLite database file (at its head, or as of ``lsn``)."""
        resp = self.request("GET", self._branch_path(project, branch, "/export"),
                            query={"lsn": lsn})
        return Export(data=resp.body, lsn=int(resp.headers.get("x-branchdb-lsn", "0")))

    def import_database(self, branch: str, data: Union[bytes, str, os.PathLike], *,
                        project: Optional[str] = None,
                        idempotency_key: Optional[str] = None) -> Branch:
        """Creates branch ``branch`` holding a SQLite database file (bytes, or a
        path to read). The file must use page size 4096 and no WAL."""
        if not isinstance(data, (bytes, bytearray)):
            with open(data, "rb") as f:
                data = f.read()
        key = idempotency_key or new_idempotency_key()
        resp = self.request("POST", f"/v1/projects/{_seg(self._project(project))}/import",
                            query={"branch": branch}, data=bytes(data),
                            content_type="application/vnd.sqlite3", idempotency_key=key)
        return _parse(Branch, resp.json())

    # -- usage and audit (docs/api.md) --------------------------------------------------------

    def usage(self, *, client: Optional[str] = None, project: Optional[str] = None) -> Usage:
        """The project's usage, or with ``client`` that client's share."""
        return _parse(Usage, self._get(f"/v1/projects/{_seg(self._project(project))}/usage",
                                       {"client": client}))

    def list_audit(self, *, client: Optional[str] = None, since: Optional[TimeLike] = None,
                   cursor: Optional[str] = None, limit: Optional[int] = None,
                   project: Optional[str] = None, server: bool = False) -> AuditPage:
        """One page of the project's audit trail, oldest first (needs admin);
        ``server=True``: the server-wide events (clients, tokens, failed client
        authentication) instead."""
        path = "/v1/audit" if server else f"/v1/projects/{_seg(self._project(project))}/audit"
        query = {"client": client, "cursor": cursor, "limit": limit,
                 "since": None if since is None else _time_json(since)}
        return _parse(AuditPage, self._get(path, query))

    def iter_audit(self, *, page_size: int = 500, **kwargs: Any) -> Iterator[AuditEvent]:
        """Every matching audit event, oldest first, fetching pages as needed."""
        cursor: Optional[str] = None
        while True:
            page = self.list_audit(limit=page_size, cursor=cursor, **kwargs)
            yield from page.events
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # -- OAuth clients (admin) ----------------------------------------------------------------

    def create_client(self, scopes: Union[str, Sequence[str]], *, name: str = "",
                      projects: Optional[Sequence[str]] = None,
                      branches: Optional[Sequence[str]] = None,
                      max_branch_ttl_seconds: Optional[int] = None,
                      quotas: Optional[Mapping[str, int]] = None) -> NewClient:
        """Creates an OAuth client (needs admin). ``scopes``: a list of names (a
        space-separated string is split). ``branches``: name patterns with at
        most one ``*`` (e.g. ``["agent/*"]``) that limit it to those branches;
        ``max_branch_ttl_seconds`` (60..31536000) caps the TTL of the branches
        it creates (docs/auth.md, "Branch-scoped clients"); ``quotas``: the
        client's own limits. The secret is in the result only."""
        names = scopes.split() if isinstance(scopes, str) else list(scopes)
        body: Dict[str, Any] = {"name": name, "scopes": names}
        if projects is not None:
            body["projects"] = list(projects)
        if branches is not None:
            body["branches"] = list(branches)
        if max_branch_ttl_seconds is not None:
            body["max_branch_ttl_seconds"] = int(max_branch_ttl_seconds)
        if quotas is not None:
            body["quotas"] = dict(quotas)
        return _parse(NewClient, self._post("/v1/clients", body, idempotent=False))

    def list_clients(self) -> List[ClientInfo]:
        return [_parse(ClientInfo, c) for c in _items(self._get("/v1/clients"), "clients")]

    def delete_client(self, client_id: str) -> None:
        """Deletes a client; its tokens stop working at once."""
        self._delete(f"/v1/clients/{_seg(client_id)}")


class BranchHandle:
    """One branch of one project, bound to a client: ``client.branch("dev")`` or
    what ``ephemeral_branch`` yields. Methods mirror the Client's branch calls.
    ``info`` is the Branch as last fetched or created (may be None)."""

    def __init__(self, client: Client, project: str, name: str,
                 info: Optional[Branch] = None) -> None:
        self.client = client
        self.project = project
        self.name = name
        self.info = info

    def __repr__(self) -> str:
        return f"BranchHandle(project={self.project!r}, name={self.name!r})"

    def get(self) -> Branch:
        self.info = self.client.get_branch(self.name, project=self.project)
        return self.info

    def sql(self, sql: str, params: Params = None, *, read_only: bool = False,
            idempotency_key: Optional[str] = None, page_size: Optional[int] = None,
            cursor: Optional[str] = None) -> SqlResult:
        return self.client.sql(self.name, sql, params, read_only=read_only, project=self.project,
                               idempotency_key=idempotency_key, page_size=page_size,
                               cursor=cursor)

    def sql_rows(self, sql: str, params: Params = None, *,
                 page_size: Optional[int] = None) -> Iterator[List[Any]]:
        return self.client.sql_rows(self.name, sql, params, page_size=page_size,
                                    project=self.project)

    def checkpoints(self, *, limit: Optional[int] = None,
                    cursor: Optional[str] = None) -> CheckpointPage:
        return self.client.list_checkpoints(self.name, limit=limit, cursor=cursor,
                                            project=self.project)

    def label(self, label: str, *, lsn: Optional[int] = None) -> Checkpoint:
        return self.client.label_checkpoint(self.name, label, lsn=lsn, project=self.project)

    def rollback(self, **to: Any) -> RollbackResult:
        """rollback(checkpoint=N | lsn=N | timestamp=T | actions=N | label=S)."""
        return self.client.rollback(self.name, project=self.project, **to)

    def undo(self, moved: RollbackResult) -> RollbackResult:
        return self.client.undo(self.name, moved, project=self.project)

    def reset(self) -> RollbackResult:
        return self.client.reset(self.name, project=self.project)

    def promote(self, **kwargs: Any) -> PromoteResult:
        """promote(dry_run=, verify=, on_conflict=, max_retries=, mode=): into the parent."""
        return self.client.promote(self.name, project=self.project, **kwargs)

    def schema(self, *, lsn: Optional[int] = None) -> Schema:
        return self.client.schema(self.name, lsn=lsn, project=self.project)

    def diff(self, **kwargs: Any) -> Diff:
        return self.client.diff(self.name, project=self.project, **kwargs)

    def credential(self, *, access: str = "read", ttl: Optional[int] = None) -> Credential:
        return self.client.create_credential(self.name, access=access, ttl=ttl,
                                             project=self.project)

    def compute(self) -> ComputeState:
        return self.client.compute(self.name, project=self.project)

    def suspend(self) -> ComputeState:
        return self.client.suspend(self.name, project=self.project)

    def export(self, *, lsn: Optional[int] = None) -> Export:
        return self.client.export(self.name, lsn=lsn, project=self.project)

    def delete(self) -> None:
        self.client.delete_branch(self.name, project=self.project)
