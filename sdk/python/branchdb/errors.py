"""Exceptions raised by the branchdb SDK.

Every exception derives from :class:`BranchdbError`. Two families:

* :class:`ApiError` -- the server answered with an error status. It carries the
  HTTP ``status`` and the fields of the JSON error body
  ``{"error": {"code", "message", "details"}}`` (for OAuth endpoints, the RFC 6749
  body ``{"error", "error_description"}`` is mapped onto the same fields).
  Subclasses by HTTP status: :class:`BadRequest` (400), :class:`Unauthenticated`
  (401), :class:`PermissionDenied` (403), :class:`NotFound` (404),
  :class:`StatementTimeout` (408), :class:`Conflict` (409),
  :class:`PayloadTooLarge` (413), :class:`IdempotencyKeyReused` (422),
  :class:`RateLimited` (429), :class:`ServerError` (5xx) and its subclass
  :class:`Unavailable` (503). Some 409 codes of promote have their own
  subclasses of :class:`Conflict`: :class:`ParentMoved`, :class:`NotReplayable`,
  :class:`ReplayFailed`, :class:`VerifyFailed`, :class:`ConcurrentWrite`.
* :class:`UnexpectedResponse` -- a success status with a body of another shape.
* :class:`NetworkError` -- no HTTP answer at all (connection refused or reset,
  DNS failure, timeout, malformed response). The request may or may not have
  been applied; calls the SDK considers safe were already retried.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type

__all__ = [
    "BranchdbError",
    "ConfigurationError",
    "NetworkError",
    "UnexpectedResponse",
    "ApiError",
    "BadRequest",
    "Unauthenticated",
    "PermissionDenied",
    "NotFound",
    "StatementTimeout",
    "Conflict",
    "ParentMoved",
    "NotReplayable",
    "ReplayFailed",
    "VerifyFailed",
    "ConcurrentWrite",
    "PayloadTooLarge",
    "IdempotencyKeyReused",
    "RateLimited",
    "ServerError",
    "Unavailable",
    "error_for_status",
]


class BranchdbError(Exception):
    """Base class of every error raised by this SDK."""


class ConfigurationError(BranchdbError):
    """The client was not given what it needs (URL, credentials, project...)."""


class UnexpectedResponse(BranchdbError, ValueError):
    """A success response whose body is not what the API documents (e.g. a
    proxy's HTML page, or a server of another version)."""


class NetworkError(BranchdbError):
    """The request got no HTTP response (connection, DNS, timeout, bad framing).

    ``cause`` is the underlying exception (also chained as ``__cause__``);
    ``attempts`` how many times the request was sent.
    """

    def __init__(self, message: str, *, method: str = "", url: str = "",
                 cause: Optional[BaseException] = None) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.cause = cause
        self.attempts = 1  # how many times the request was sent (retries + 1)


class ApiError(BranchdbError):
    """The server answered with an HTTP error status.

    Attributes:
        status: the HTTP status code (e.g. 404).
        code: the machine-readable error code (e.g. ``"branch_not_found"``).
        message: the human-readable message.
        details: extra structured information (``{}`` when none).
        request_id: the server's ``X-Request-Id`` for this request, if any.
        method, url: what was requested.
        headers: the response headers (lower-cased names).
        attempts: how many times the request was sent (retries + 1).
    """

    def __init__(self, status: int, code: str, message: str,
                 details: Optional[Mapping[str, Any]] = None, *,
                 request_id: Optional[str] = None, method: str = "", url: str = "",
                 headers: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: Dict[str, Any] = dict(details or {})
        self.request_id = request_id
        self.method = method
        self.url = url
        self.headers: Dict[str, str] = dict(headers or {})
        self.attempts = 1  # how many times the request was sent

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
                f"message={self.message!r}, details={self.details!r})")


class BadRequest(ApiError):
    """400: the request is malformed (``invalid_argument``, ``sql_error``...)."""


class Unauthenticated(ApiError):
    """401: no valid token (``invalid_token``), or bad client credentials
    (``invalid_client`` from the token endpoint)."""


class PermissionDenied(ApiError):
    """403: the token lacks the scope, project or access (``insufficient_scope``,
    ``read_only``, ``sql_forbidden``)."""


class NotFound(ApiError):
    """404: no such project, branch, checkpoint, label, client or route."""


class StatementTimeout(ApiError):
    """408: the SQL script ran past the statement timeout."""


class Conflict(ApiError):
    """409: the state forbids it (``branch_exists``, ``branch_protected``,
    ``head_moved``, ``idempotency_key_in_use``...)."""


class ParentMoved(Conflict):
    """409 ``parent_moved``: promote with mode="fast_forward" but the parent moved."""


class NotReplayable(Conflict):
    """409 ``not_replayable``: an action on the branch has no recorded script
    (an import, or a script over the 1 MiB kept). ``lsn``, ``summary``: which."""

    @property
    def lsn(self) -> Optional[int]:
        return self.details.get("lsn")

    @property
    def summary(self) -> Optional[str]:
        return self.details.get("summary")


class ReplayFailed(Conflict):
    """409 ``replay_failed``: an action failed when replayed on the parent;
    the parent is unchanged. ``failed_action``: {"index", "lsn", "summary",
    "error": {"code", "message"}}."""

    @property
    def failed_action(self) -> Dict[str, Any]:
        return dict(self.details.get("failed_action") or {})


class VerifyFailed(Conflict):
    """409 ``verify_failed``: the verify query's value was not truthy (or the
    query failed); the parent is unchanged. ``value``: what it returned."""

    @property
    def value(self) -> Any:
        return self.details.get("value")


class ConcurrentWrite(Conflict):
    """409 ``concurrent_write``: the parent was written while the promotion ran
    (nothing was overwritten); retry, or pass on_conflict="retry"."""


class PayloadTooLarge(ApiError):
    """413: request, SQL text, value, result (``result_too_large``: read it in
    pages, ``Client.sql_rows``) or branch size over a limit."""


class IdempotencyKeyReused(ApiError):
    """422: the Idempotency-Key was already used for a different request."""


class RateLimited(ApiError):
    """429: too many requests or too many active computes; see ``retry_after``."""

    @property
    def retry_after(self) -> Optional[float]:
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class ServerError(ApiError):
    """5xx: the server failed (``internal``, ``sql_io_error``...)."""


class Unavailable(ServerError):
    """503: temporarily unavailable (``store_failed``, ``busy``...)."""


_BY_STATUS: Dict[int, Type[ApiError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    408: StatementTimeout,
    409: Conflict,
    413: PayloadTooLarge,
    422: IdempotencyKeyReused,
    429: RateLimited,
    503: Unavailable,
}


_BY_CODE: Dict[str, Type[ApiError]] = {
    "parent_moved": ParentMoved,
    "not_replayable": NotReplayable,
    "replay_failed": ReplayFailed,
    "verify_failed": VerifyFailed,
    "concurrent_write": ConcurrentWrite,
}


def error_for_status(status: int, code: str = "") -> Type[ApiError]:
    """The ApiError subclass used for an HTTP status (and error code)."""
    if status == 409 and code in _BY_CODE:
        return _BY_CODE[code]
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ServerError
    return ApiError
