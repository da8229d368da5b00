"""HTTP transport of the SDK: urllib, JSON, error mapping, retries, tokens.

Internal module; the public surface is :class:`branchdb.Client`. Thread-safe:
one Transport may serve many threads (urllib opens a connection per request;
the token source has a lock).
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .errors import ApiError, NetworkError, UnexpectedResponse, error_for_status
from .models import Token

__all__ = ["Response", "TokenSource", "StaticToken", "ClientCredentials", "Transport"]

USER_AGENT = "branchdb-python/0.1.0"


@dataclass
class Response:
    """A raw HTTP response (``Client.request`` returns these)."""

    status: int
    headers: Dict[str, str]  # lower-cased names
    body: bytes = field(repr=False)
    method: str = ""
    url: str = ""
    attempts: int = 1  # how many times it was sent (retries + 1)

    def json(self) -> Any:
        """The body parsed as JSON (None when empty); UnexpectedResponse if it is not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:  # also UnicodeDecodeError
            raise UnexpectedResponse(f"{self.method} {self.url}: HTTP {self.status} with a "
                                     f"body that is not JSON: {self.body[:80]!r}") from e

    @property
    def request_id(self) -> Optional[str]:
        return self.headers.get("x-request-id")

    @property
    def replayed(self) -> bool:
        """True when the server answered from its idempotency store (a retry of
        a request it had already applied)."""
        return self.headers.get("idempotent-replayed", "").lower() == "true"


def api_error_from(resp: Response) -> ApiError:
    """The ApiError subclass for an error response, with code/message/details."""
    code, message, details = "", "", {}  # type: str, str, Dict[str, Any]
    try:
        body = resp.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # {"error":{"code","message","details"}}
            code = str(err.get("code") or "")
            message = str(err.get("message") or "")
            if isinstance(err.get("details"), dict):
                details = err["details"]
        elif isinstance(err, str):  # OAuth (RFC 6749 section 5.2)
            code = err
            message = str(body.get("error_description") or "")
            details = {k: v for k, v in body.items() if k not in ("error", "error_description")}
    if not code:
        code = f"http_{resp.status}"
    if not message:
        text = resp.body[:200].decode("utf-8", "replace").strip()
        message = text or http.client.responses.get(resp.status, "error")
    cls = error_for_status(resp.status, code)
    error = cls(resp.status, code, message, details, request_id=resp.request_id,
                method=resp.method, url=resp.url, headers=resp.headers)
    error.attempts = resp.attempts
    return error


class TokenSource:
    """Supplies the bearer token of API requests."""

    def token(self, transport: "Transport") -> str:
        raise NotImplementedError

    def can_refresh(self) -> bool:
        return False

    def invalidate(self, token: str) -> None:
        """The server refused ``token`` (401): drop it if it is the current one."""


class StaticToken(TokenSource):
    """A fixed token: an access token or a database credential (BRANCHDB_TOKEN)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self, transport: "Transport") -> str:
        return self._token


class ClientCredentials(TokenSource):
    """OAuth client credentials (RFC 6749 section 4.4) with automatic refresh.

    A token is fetched on first use and again ``refresh_margin`` seconds before
    it expires (default: a tenth of its lifetime, at most 60 s), and whenever
    the server refuses the current one with 401. Thread-safe.
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str,
                 scope: Optional[str] = None, refresh_margin: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._refresh_at = 0.0
        self.last_token: Optional[Token] = None
        self.tokens_fetched = 0  # how many tokens were obtained (observability, tests)

    def can_refresh(self) -> bool:
        return True

    def token(self, transport: "Transport") -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch(transport)
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self, transport: "Transport") -> None:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        body = urllib.parse.urlencode(form).encode("ascii")
        # HTTP Basic with id and secret each form-urlencoded (RFC 6749 section 2.3.1).
        pair = (urllib.parse.quote_plus(self.client_id) + ":" +
                urllib.parse.quote_plus(self._secret)).encode("utf-8")
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
                   "Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"}
        started = self._clock()
        # Getting a token creates nothing durable: safe to retry.
        resp = transport.send_with_retries("POST", self.token_url, body, headers, retry=True)
        if resp.status != 200:
            raise api_error_from(resp)
        tok = Token.from_json(resp.json())
        lifetime = float(tok.expires_in) if tok.expires_in > 0 else 60.0
        margin = self.refresh_margin
        if margin is None:
            margin = min(60.0, lifetime / 10.0)
        margin = max(0.0, min(margin, lifetime))
        self._token = tok.access_token
        self._refresh_at = started + lifetime - margin
        self.last_token = tok
        self.tokens_fetched += 1


_NETWORK_EXCEPTIONS: Tuple[type, ...] = (
    urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, OSError)


class Transport:
    """Sends requests to one base URL; maps errors; retries what is safe.

    Retry rule: a request marked ``retry`` (GET, DELETE, a POST carrying an
    Idempotency-Key, a PATCH without rename) is sent again after a network
    error, a 503, a 409 ``idempotency_key_in_use`` (the first attempt still
    running) or ``head_moved`` (a concurrent commit), or a 429
    ``compute_budget``, up to ``max_retries`` times with exponential backoff
    and jitter (``Retry-After`` is honoured when the server sends it). Any request is sent
    again once after a 401 when the token source can fetch a new token.
    """

    def __init__(self, base_url: str, token_source: Optional[TokenSource], *,
                 timeout: float = 30.0, max_retries: int = 3, backoff: float = 0.2,
                 max_backoff: float = 5.0, trust_env: bool = True,
                 user_agent: str = USER_AGENT,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_source = token_source
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.user_agent = user_agent
        self._sleep = sleep
        handlers = [] if trust_env else [urllib.request.ProxyHandler({})]
        self._opener = urllib.request.build_opener(*handlers)

    # -- low level ---------------------------------------------------------------------------

    def _send_once(self, method: str, url: str, body: Optional[bytes],
                   headers: Mapping[str, str]) -> Response:
        all_headers = {"User-Agent": self.user_agent}
        all_headers.update(headers)
        req = urllib.request.Request(url, data=body, headers=all_headers, method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as r:
                data = r.read()
                return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, data,
                                method, url)
        except urllib.error.HTTPError as e:  # an HTTP answer with an error status
            try:
                data = e.read()
            except _NETWORK_EXCEPTIONS as inner:
                raise NetworkError(f"{method} {url}: reading the error response failed: {inner}",
                                   method=method, url=url, cause=inner) from inner
            finally:
                e.close()
            hdrs = {k.lower(): v for k, v in (e.headers.items() if e.headers else [])}
            return Response(e.code, hdrs, data, method, url)
        except _NETWORK_EXCEPTIONS as e:
            reason = getattr(e, "reason", None) or e
            raise NetworkError(f"{method} {url}: {reason}", method=method, url=url,
                               cause=e) from e

    def _delay(self, attempt: int, resp: Optional[Response]) -> float:
        if resp is not None:
            ra = resp.headers.get("retry-after")
            if ra is not None:
                try:
                    return min(max(0.0, float(ra)), self.max_backoff)
                except ValueError:
                    pass
        base = min(self.max_backoff, self.backoff * (2 ** attempt))
        return base * (0.5 + random.random() / 2)

    # Answers that say "not applied, try again" (docs/api.md): the server does
    # not remember them under the Idempotency-Key, so a retry runs afresh.
    _RETRY_CODES = {409: ("idempotency_key_in_use", "head_moved"), 429: ("compute_budget",)}

    @classmethod
    def _retryable_status(cls, resp: Response) -> bool:
        if resp.status == 503:
            return True
        codes = cls._RETRY_CODES.get(resp.status)
        if codes is None:
            return False
        try:
            err = (resp.json() or {}).get("error")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return False
        return isinstance(err, dict) and err.get("code") in codes

    def send_with_retries(self, method: str, url: str, body: Optional[bytes],
                          headers: Mapping[str, str], *, retry: bool) -> Response:
        attempt = 0
        while True:
            try:
                resp = self._send_once(method, url, body, headers)
            except NetworkError as e:
                if retry and attempt < self.max_retries:
                    self._sleep(self._delay(attempt, None))
                    attempt += 1
                    continue
                e.attempts = attempt + 1
                raise
            if retry and attempt < self.max_retries and self._retryable_status(resp):
                self._sleep(self._delay(attempt, resp))
                attempt += 1
                continue
            resp.attempts = attempt + 1
            return resp

    # -- API requests --------------------------------------------------------------------------

    def url_for(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        url = self.base_url + path
        if query:
            pairs = []
            for k, v in query.items():
                if v is None:
                    continue
                if isinstance(v, bool):
                    v = "true" if v else "false"
                pairs.append((k, str(v)))
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        return url

    def request(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None,
                json_body: Any = None, data: Optional[bytes] = None,
                content_type: Optional[str] = None, headers: Optional[Mapping[str, str]] = None,
                idempotency_key: Optional[str] = None, retry: bool = False,
                authenticate: bool = True, raise_for_status: bool = True) -> Response:
        """One API call. JSON body from ``json_body`` (if not None) or raw ``data``."""
        url = self.url_for(path, query)
        hdrs: Dict[str, str] = {"Accept": "application/json"}
        body: Optional[bytes] = None
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"), allow_nan=False).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        elif data is not None:
            body = data
            hdrs["Content-Type"] = content_type or "application/octet-stream"
        elif method in ("POST", "PUT", "PATCH"):
            body = b""
        if idempotency_key is not None:
            hdrs["Idempotency-Key"] = idempotency_key
        if headers:
            hdrs.update(headers)
        refreshed = False
        while True:
            token: Optional[str] = None
            if authenticate and self.token_source is not None:
                token = self.token_source.token(self)
                hdrs["Authorization"] = "Bearer " + token
            resp = self.send_with_retries(method, url, body, hdrs, retry=retry)
            if (resp.status == 401 and token is not None and not refreshed and
                    self.token_source is not None and self.token_source.can_refresh()):
                # Expired early, revoked, or the signing key went away: one fresh token.
                self.token_source.invalidate(token)
                refreshed = True
                continue
            if raise_for_status and resp.status >= 400:
                raise api_error_from(resp)
            return resp
