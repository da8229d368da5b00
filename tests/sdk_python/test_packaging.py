"""sdk/python installs offline with pip (setuptools backend, no build isolation)
and the installed package is complete (no server needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import bdb_server


def _has_module(name: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True)
    return probe.returncode == 0


class Packaging(unittest.TestCase):
    def test_pip_install_offline(self) -> None:
        pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
        if pip.returncode != 0:
            self.skipTest("no pip for this python (install python3-pip); the tests import "
                          "the SDK from the source tree instead")
        for needed in ("setuptools", "wheel"):
            if not _has_module(needed):
                self.skipTest(f"no {needed} for this python: an offline --no-build-isolation "
                              "install needs setuptools and wheel")
        with tempfile.TemporaryDirectory(prefix="bdb-sdk-pip-") as tmp:
            # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
            src = os.path.join(tmp, "src")
            shutil.copytree(bdb_server.SDK_PATH, src, ignore=shutil.ignore_patterns(
                "build", "dist", "*.egg-info", "__pycache__"))
            target = os.path.join(tmp, "site")
            run = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                 "--no-deps", "--disable-pip-version-check", "--target", target, src],
                capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            check = subprocess.run(
                [sys.executable, "-c",
                 "import branchdb, os; print(branchdb.__file__); print(branchdb.__version__); "
                 "print(os.path.exists(os.path.join(os.path.dirname(branchdb.__file__), "
                 "'py.typed')))"],
                capture_output=True, text=True, cwd=tmp,
                env={"PYTHONPATH": target, "PATH": os.environ.get("PATH", "")})
            self.assertEqual(check.returncode, 0, check.stderr)
            path, version, typed = check.stdout.split()
            self.assertTrue(path.startswith(target), path)
            self.assertEqual(version, "0.1.0")
            self.assertEqual(typed, "True")


if __name__ == "__main__":
    unittest.main()
