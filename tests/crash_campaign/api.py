"""The crash campaign's HTTP access: one keep-alive connection, JSON in and out,
no retries (a request is sent exactly once, so a client knows whether it was
answered). Standard library only.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from typing import Any, Dict, Optional, Tuple

PROJECT = "crash"


class Lost(Exception):
    """The request got no answer (connection refused, reset, closed mid-way):
    the server may or may not have applied it."""


def seg(branch: str) -> str:
    """A branch name as one path segment (`c1/b2` -> `c1%2Fb2`)."""
    return urllib.parse.quote(branch, safe="")


def branch_path(branch: str, sub: str = "") -> str:
    return f"/v1/projects/{PROJECT}/branches/{seg(branch)}{sub}"


class Api:
    def __init__(self, url: str, token: str = "", timeout: float = 60.0) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.token = token
        self.timeout = timeout
        self.conn: Optional[http.client.HTTPConnection] = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, method: str, path: str, body: Any = None, request_id: str = "",
             form: Optional[str] = None, basic: Optional[Tuple[str, str]] = None
             ) -> Tuple[int, Any]:
        """(status, parsed JSON body or None). Raises Lost when no answer came."""
        headers: Dict[str, str] = {}
        data: Optional[bytes] = None
        if basic is not None:
            pair = f"{basic[0]}:{basic[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif self.token:
            headers["Authorization"] = "Bearer " + self.token
        if request_id:
            headers["X-Request-Id"] = request_id
        if form is not None:
            data = form.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise Lost(f"{type(e).__name__}: {e}") from None
        if resp.will_close:
            self.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = {"raw": raw[:200].decode("utf-8", "replace")}
        return status, parsed

    def token_for(self, client_id: str, secret: str) -> str:
        status, body = self.call("POST", "/oauth/token", form="grant_type=client_credentials",
                                 basic=(client_id, secret))
        if status != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise RuntimeError(f"token request failed: HTTP {status} {body}")
        return str(body["access_token"])


def error_code(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("code", ""))
    return ""
