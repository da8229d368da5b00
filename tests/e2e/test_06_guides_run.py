"""The guides' own code, run as written (docs/guides/*.md): for each guide,
its Python blocks in one session, then its shell blocks in one bash, each
against a freshly seeded shop made by the README's setup blocks. The only
edits are the server's address and data directory. Python must raise
nothing; the shell answers must hold exactly the error codes the guide
provokes on purpose."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import unittest
from typing import Dict, List, Tuple

from scenario import ScenarioTest, branchdb

GUIDES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "guides")
GUIDE_FILES = ["01-production-data-in-dev.md", "02-schema-change-to-production.md", "03-drift.md",
               "04-ci-ephemeral-branches.md", "05-agent-session.md"]
# Error answers a guide's shell steps show on purpose.
EXPECTED_SHELL_ERRORS: Dict[str, List[str]] = {"03-drift.md": ["parent_moved"]}
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_ERROR_CODE = re.compile(r'\{"error":\{"code":"([a-z_]+)"')
_PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def blocks(name: str) -> List[Tuple[str, str]]:
    with open(os.path.join(GUIDES, name), encoding="utf-8") as f:
        return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(f.read())]


class GuidesRun(ScenarioTest):
    PROJECT = "unused"  # the guides make their own project, "shop"

    def local(self, code: str) -> str:
        """The guide's code pointed at the test server."""
        return (code.replace("http://127.0.0.1:8080", self.server.url)
                .replace('"./data"', repr(self.server.data_dir))
                .replace("data/admin-credentials.json",
                         os.path.join(self.server.data_dir, "admin-credentials.json")))

    def setUp(self) -> None:
        for var in _PROXY_VARS:
            os.environ.pop(var, None)
        readme = blocks("README.md")
        self.py_setup = [self.local(c) for lang, c in readme
                         if lang == "python" and "from_data_dir" in c]
        self.py_seed = [self.local(c) for lang, c in readme
                        if lang == "python" and 'create_project("shop")' in c]
        self.sh_setup = [self.local(c) for lang, c in readme if lang == "sh" and "api()" in c]
        self.sh_seed = [self.local(c) for lang, c in readme
                        if lang == "sh" and "'{\"name\":\"shop\"}'" in c]
        for part in (self.py_setup, self.py_seed, self.sh_setup, self.sh_seed):
            self.assertEqual(len(part), 1, "README.md: setup blocks not found")

    def fresh_shop(self) -> None:
        admin = branchdb.Client.from_data_dir(self.server.data_dir, url=self.server.url,
                                              trust_env=False)
        try:
            admin.delete_project("shop", force=True)
        except branchdb.NotFound:
            pass

    def run_python(self, guide: str) -> None:
        self.fresh_shop()
        session: Dict[str, object] = {}
        for code in self.py_setup + self.py_seed:
            exec(compile(code, "README.md", "exec"), session)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            for lang, code in blocks(guide):
                if lang == "python":
                    exec(compile(self.local(code), guide, "exec"), session)
        # What the guide's code prints, the guide shows (as "# line" comments).
        with open(os.path.join(GUIDES, guide), encoding="utf-8") as f:
            text = f.read()
        shown = {line.strip() for line in re.findall(r"#(.*)$", text, re.M)}
        missing = [line for line in out.getvalue().splitlines()
                   if line.strip() and line.strip() not in shown and line not in text]
        self.assertEqual(missing, [], f"{guide}: printed lines the guide does not show")

    def run_shell(self, guide: str) -> List[str]:
        self.fresh_shop()
        script = "\n".join(self.sh_setup + self.sh_seed +
                           [self.local(c) for lang, c in blocks(guide) if lang == "sh"])
        p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if k not in _PROXY_VARS})
        self.assertEqual(p.returncode, 0, f"{guide}: shell steps failed:\n{p.stderr}")
        self.assertEqual(p.stderr, "", f"{guide}: shell steps wrote to stderr")
        return _ERROR_CODE.findall(p.stdout)

    def test_guides(self) -> None:
        for guide in GUIDE_FILES:
            with self.subTest(guide=guide, part="python"):
                self.run_python(guide)
            with self.subTest(guide=guide, part="shell"):
                self.assertEqual(self.run_shell(guide), EXPECTED_SHELL_ERRORS.get(guide, []))


if __name__ == "__main__":
    unittest.main()
