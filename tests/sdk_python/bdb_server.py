"""Test helper: runs a real `branchdb serve` on a free port with a temporary data
directory, and makes the SDK under test importable.

Environment:
  BRANCHDB_TEST_SERVER  path of the branchdb binary (required)
  BRANCHDB_SDK_PYTHON   the SDK source tree, sdk/python (default: from this file)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
SDK_PATH = os.environ.get("BRANCHDB_SDK_PYTHON") or os.path.join(_HERE, "..", "..", "sdk",
                                                                  "python")
if SDK_PATH not in sys.path:
    sys.path.insert(0, os.path.abspath(SDK_PATH))

_LISTENING = re.compile(r"event=listening address=(https?://[^\s]+)")


class ServerProcess:
    """One server process. start() waits until /healthz answers; stop() sends
    SIGTERM (SIGKILL after a grace period) and returns the exit code."""

    def __init__(self, env: Optional[Dict[str, str]] = None) -> None:
        binary = os.environ.get("BRANCHDB_TEST_SERVER")
        if not binary or not os.path.exists(binary):
            raise RuntimeError("BRANCHDB_TEST_SERVER must name the branchdb binary "
                               f"(got {binary!r})")
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="bdb-sdk-py-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.extra_env = dict(env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        env = dict(os.environ)
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
                 "--log-level", "info"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while not self.url:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not report its address:\n{self.log()}")
            m = _LISTENING.search(self.log())
            if m:
                self.url = m.group(1)
            else:
                time.sleep(0.05)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            try:
                with opener.open(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"/healthz never answered:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> Optional[int]:
        """Stops the server (always). Returns its exit code; -9 when it had to be killed."""
        code: Optional[int] = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                code = -9
        elif self.proc is not None:
            code = self.proc.returncode
        return code

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
