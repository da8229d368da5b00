"""The guides' own code, run as written (docs/guides/*.md): for each guide,
its Python blocks in one session, its curl blocks (```sh) in one bash, and
its `branchdb` CLI blocks (```bash) in another, each against a freshly
seeded shop made by the README's setup blocks of that kind. The only edits
are the server's address, data directory and binary. Python must raise
nothing and print only lines the guide shows; the shell runs must hold
exactly the error codes the guide provokes on purpose."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import tempfile
import unittest
from typing import Dict, List, Tuple

from scenario import ScenarioTest, branchdb

GUIDES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "guides")
# Error answers a guide's shell steps show on purpose.
EXPECTED_SHELL_ERRORS: Dict[str, List[str]] = {"03-drift.md": ["parent_moved"]}
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_ERROR_CODE = re.compile(r'\{"error":\{"code":"([a-z_]+)"')  # in curl's output
_CLI_ERROR = re.compile(r"^error: .*\(([a-z_]+), HTTP \d+\)$", re.M)  # on the CLI's stderr
_PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def blocks(name: str) -> List[Tuple[str, str]]:
    with open(os.path.join(GUIDES, name), encoding="utf-8") as f:
        return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(f.read())]


class GuidesRun(ScenarioTest):
    PROJECT = "unused"  # the guides make their own project, "shop", as the README says

    def local(self, code: str) -> str:
        """The guide's code pointed at the test server."""
        return (code.replace("http://127.0.0.1:8080", self.server.url)
                .replace('"./data"', repr(self.server.data_dir))
                .replace("$PWD/build/bin", os.path.dirname(self.server.binary))
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
        self.cli_setup = [self.local(c) for lang, c in readme
                          if lang == "bash" and "export BRANCHDB_PROJECT" in c]
        self.cli_seed = [self.local(c) for lang, c in readme
                         if lang == "bash" and "branchdb project create shop" in c]
        for part in (self.py_setup, self.py_seed, self.sh_setup, self.sh_seed, self.cli_setup,
                     self.cli_seed):
            self.assertEqual(len(part), 1, "README.md: setup blocks not found")

    def fresh_shop(self) -> None:
        """Deletes the project a previous run made; the README's blocks make it anew."""
        try:
            self.client.delete_project("shop", force=True)
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

    def run_shell(self, guide: str, lang: str) -> List[str]:
        """Runs the README's setup and seed blocks of `lang` and then the guide's,
        in one bash (curl: "sh"; CLI: "bash", with -e); returns the API error
        codes seen, in order."""
        self.fresh_shop()
        setup = self.sh_setup + self.sh_seed if lang == "sh" else self.cli_setup + self.cli_seed
        script = "\n".join(setup + [self.local(c) for kind, c in blocks(guide) if kind == lang])
        env = {k: v for k, v in os.environ.items()
               if k not in _PROXY_VARS and not k.startswith("BRANCHDB_")}
        env.update(BRANCHDB_URL=self.server.url, BRANCHDB_DATA_DIR=self.server.data_dir)
        with tempfile.TemporaryDirectory() as cwd:
            p = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script] if lang == "bash"
                               else ["bash", "-c", script],
                               capture_output=True, text=True, timeout=120, env=env, cwd=cwd)
        self.assertEqual(p.returncode, 0, f"{guide} ({lang}): failed:\n{p.stdout}\n{p.stderr}")
        if lang == "sh":
            self.assertEqual(p.stderr, "", f"{guide}: curl steps wrote to stderr")
            return _ERROR_CODE.findall(p.stdout)
        return _CLI_ERROR.findall(p.stderr)

    def check_guide(self, guide: str) -> None:
        with self.subTest(part="python"):
            self.run_python(guide)
        for lang in ("sh", "bash"):
            with self.subTest(part=lang):
                self.assertEqual(self.run_shell(guide, lang), EXPECTED_SHELL_ERRORS.get(guide, []))

    # One test per guide (ctest e2e_guide_NN runs one).
    def test_guide_01(self) -> None:
        self.check_guide("01-production-data-in-dev.md")

    def test_guide_02(self) -> None:
        self.check_guide("02-schema-change-to-production.md")

    def test_guide_03(self) -> None:
        self.check_guide("03-drift.md")

    def test_guide_04(self) -> None:
        self.check_guide("04-ci-ephemeral-branches.md")

    def test_guide_05(self) -> None:
        self.check_guide("05-agent-session.md")


if __name__ == "__main__":
    unittest.main()
