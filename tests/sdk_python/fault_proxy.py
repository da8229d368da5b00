"""Test helper: a TCP proxy in front of the real server that injects network
faults, one HTTP/1.1 request per connection (urllib sends Connection: close).

Per request it can: forward it and relay the answer (default); forward it and
drop the answer (the server applied it, the client sees the connection close:
a lost response); or answer 503 itself without forwarding. It records every
request (method, path, headers) and every relayed response's headers.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple


@dataclass
class Seen:
    method: str
    path: str
    headers: Dict[str, str]
    action: str = "forward"
    response_headers: Dict[str, str] = field(default_factory=dict)
    status: int = 0


def _read_request(conn: socket.socket) -> Optional[bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def _parse_head(raw: bytes) -> Tuple[str, Dict[str, str]]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return head[0], headers


class FaultProxy:
    def __init__(self, target_url: str) -> None:
        hostport = target_url.split("://", 1)[1].rstrip("/")
        host, port = hostport.rsplit(":", 1)
        self.target = (host, int(port))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.lock = threading.Lock()
        self.rules: List[List] = []  # [method, path_substring, action, remaining]
        self.seen: List[Seen] = []
        self.closed = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def inject(self, method: str, path_part: str, action: str, times: int = 1) -> None:
        """The next `times` requests matching method and path_part get `action`:
        "drop_response" or "503"."""
        with self.lock:
            self.rules.append([method, path_part, action, times])

    def requests(self, method: str, path_part: str) -> List[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method and path_part in s.path]

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _action_for(self, method: str, path: str) -> str:
        with self.lock:
            for rule in self.rules:
                if rule[0] == method and rule[1] in path and rule[3] > 0:
                    rule[3] -= 1
                    return rule[2]
        return "forward"

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            raw = _read_request(conn)
            if raw is None:
                return
            line, headers = _parse_head(raw)
            method, path = line.split(" ")[0], line.split(" ")[1]
            action = self._action_for(method, path)
            seen = Seen(method, path, headers, action)
            with self.lock:
                self.seen.append(seen)
            if action == "503":
                body = (b'{"error":{"code":"unavailable","message":"injected by the test proxy",'
                        b'"details":{}}}')
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json"
                             b"\r\nRetry-After: 0\r\nConnection: close\r\nContent-Length: " +
                             str(len(body)).encode() + b"\r\n\r\n" + body)
                seen.status = 503
                return
            with socket.create_connection(self.target, timeout=30) as up:
                up.sendall(raw)
                response = b""
                while True:
                    chunk = up.recv(65536)
                    if not chunk:
                        break
                    response += chunk
            status_line, rheaders = _parse_head(response)
            seen.response_headers = rheaders
            seen.status = int(status_line.split(" ")[1]) if " " in status_line else 0
            if action == "drop_response":
                return  # closing without a byte: the client sees a lost response
            conn.sendall(response)
