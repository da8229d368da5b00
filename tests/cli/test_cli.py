"""The branchdb CLI, driven as a subprocess against a real `branchdb serve`.

Each test runs the binary the way a user or a CI job would, and checks its
exit code, its --json output (the API's JSON answer) and its human output.
Environment: BRANCHDB_TEST_SERVER names the binary (server and CLI are one).
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request
from typing import Dict, List, Optional, Sequence, Tuple

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("BRANCHDB_TEST_HELPERS")
                or os.path.join(_HERE, "..", "sdk_python"))
from bdb_server import ServerProcess  # noqa: E402

BINARY = os.environ.get("BRANCHDB_TEST_SERVER", "")

# Exit codes (docs/cli.md).
OK, API_ERROR, USAGE, UNREACHABLE, AUTH, CONFLICT, NOT_FOUND = 0, 1, 2, 3, 4, 5, 6


class Cli:
    """Runs `branchdb ...` with a clean environment: no BRANCHDB_* variables
    and a HOME without a config file, plus what a test sets."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.home = tempfile.mkdtemp(prefix="bdb-cli-home-")

    def env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("BRANCHDB_") and k != "XDG_CONFIG_HOME"}
        env["HOME"] = self.home
        env.update(extra or {})
        return env

    def run(self, *args: str, env: Optional[Dict[str, str]] = None, local: bool = True,
            stdin: Optional[bytes] = None) -> Tuple[int, str, str]:
        """Runs the binary; local=True adds --url and --data-dir of the test server."""
        argv = [BINARY]
        if local:
            argv += ["--url", self.server.url, "--data-dir", self.server.data_dir]
        argv += list(args)
        p = subprocess.run(argv, input=stdin, capture_output=True, env=self.env(env),
                           timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()


class CliTestCase(unittest.TestCase):
    server: ServerProcess
    cli: Cli

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess().start()
        cls.cli = Cli(cls.server)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()
        cls.server.cleanup()
        shutil.rmtree(cls.cli.home, ignore_errors=True)

    def ok(self, *args: str, **kw) -> str:
        code, out, err = self.cli.run(*args, **kw)
        self.assertEqual(code, OK, f"branchdb {' '.join(args)}\nstdout: {out}\nstderr: {err}")
        return out

    def js(self, *args: str, **kw):
        return json.loads(self.ok("--json", *args, **kw))

    def fails(self, expected: int, *args: str, **kw) -> Tuple[str, str]:
        code, out, err = self.cli.run(*args, **kw)
        self.assertEqual(code, expected, f"branchdb {' '.join(args)}\nstdout: {out}\nstderr: {err}")
        return out, err

    def admin(self) -> Dict[str, str]:
        with open(os.path.join(self.server.data_dir, "admin-credentials.json")) as f:
            return json.load(f)

    def project(self, name: str) -> str:
        self.ok("project", "create", name)
        return name


class ProjectsAndBranches(CliTestCase):
    def test_project_lifecycle(self) -> None:
        p = self.js("project", "create", "shop", "--restore-window", "14d")
        self.assertEqual(p["name"], "shop")
        self.assertEqual(p["default_branch"], "production")
        self.assertEqual(p["restore_window_seconds"], 14 * 86400)
        listed = self.js("project", "list")
        self.assertIn("shop", [x["name"] for x in listed["projects"]])
        self.assertIn("shop", self.ok("project", "list"))
        self.assertEqual(self.js("project", "get", "shop")["id"], p["id"])
        # The positional name falls back to --project.
        self.assertEqual(self.js("--project", "shop", "project", "get")["name"], "shop")
        p = self.js("project", "set", "shop", "--restore-window", "36h")
        self.assertEqual(p["restore_window_seconds"], 36 * 3600)
        # Durability: local, remote (refused: this server has no bucket), the default.
        p = self.js("project", "set", "shop", "--durability", "local")
        self.assertEqual((p["durability"], p["restore_window_seconds"]), ("local", 36 * 3600))
        self.assertIn("durability local", self.ok("project", "set", "shop", "--durability", "local"))
        _, err = self.fails(API_ERROR, "project", "set", "shop", "--durability", "remote")
        self.assertIn("object_storage", err)
        self.assertEqual(self.js("project", "set", "shop", "--durability", "default")["durability"],
                         "local")
        self.fails(USAGE, "project", "set", "shop", "--durability", "sometimes")
        _, err = self.fails(USAGE, "project", "set", "shop")
        self.assertIn("--durability", err)
        self.assertEqual(self.js("project", "delete", "shop"), {})
        out, err = self.fails(NOT_FOUND, "project", "get", "shop")
        self.assertIn("project_not_found", err)
        self.assertIn("branchdb project list", err)

    def test_branch_commands(self) -> None:
        pr = self.project("branches")
        P = ("--project", pr)
        b = self.js(*P, "branch", "create", "dev/alex", "--parent", "production", "--ttl", "24h")
        self.assertEqual(b["name"], "dev/alex")
        self.assertEqual(b["parent"], "production")
        self.assertIsNotNone(b["expires_at"])
        self.js(*P, "branch", "create", "dev/alex/try", "--parent", "dev/alex", "--protected")
        tree = self.ok(*P, "branch", "list")
        lines = tree.splitlines()
        self.assertTrue(lines[0].startswith("BRANCH"), tree)
        self.assertTrue(any("└─ dev/alex" in l for l in lines), tree)
        self.assertTrue(any("   └─ dev/alex/try" in l for l in lines), tree)
        listed = self.js(*P, "branch", "list")
        self.assertEqual(sorted(x["name"] for x in listed["branches"]),
                         ["dev/alex", "dev/alex/try", "production"])
        got = self.js(*P, "branch", "get", "dev/alex/try")
        self.assertTrue(got["protected"])
        self.assertRegex(self.ok(*P, "branch", "get", "dev/alex/try"), r"protected +yes")
        self.fails(CONFLICT, *P, "branch", "delete", "dev/alex/try")
        self.assertFalse(self.js(*P, "branch", "unprotect", "dev/alex/try")["protected"])
        self.assertTrue(self.js(*P, "branch", "protect", "dev/alex/try")["protected"])
        self.js(*P, "branch", "unprotect", "dev/alex/try")
        self.assertEqual(self.js(*P, "branch", "rename", "dev/alex/try", "dev/alex/t2")["name"],
                         "dev/alex/t2")
        self.assertIsNone(self.js(*P, "branch", "set-ttl", "dev/alex", "none")["expires_at"])
        self.assertIsNotNone(self.js(*P, "branch", "set-ttl", "dev/alex", "2h")["expires_at"])
        self.assertEqual(self.js(*P, "branch", "set-idle-timeout", "dev/alex", "1m")
                         ["idle_timeout_seconds"], 60)
        default = self.js(*P, "branch", "get", "production")["idle_timeout_seconds"]
        self.assertEqual(self.js(*P, "branch", "set-idle-timeout", "dev/alex", "default")
                         ["idle_timeout_seconds"], default)
        self.assertEqual(self.js(*P, "branch", "delete", "dev/alex/t2"), {})
        self.fails(NOT_FOUND, *P, "branch", "get", "dev/alex/t2")

    def test_branch_points(self) -> None:
        pr = self.project("points")
        P = ("--project", pr)
        self.ok(*P, "sql", "production", "CREATE TABLE t(a)")
        lsn = self.js(*P, "sql", "production", "INSERT INTO t VALUES (1)")["lsn"]
        self.ok(*P, "label", "production", str(lsn), "one")
        self.ok(*P, "sql", "production", "INSERT INTO t VALUES (2)")

        def count(branch: str) -> int:
            r = self.js(*P, "sql", branch, "SELECT count(*) FROM t")
            return r["results"][0]["rows"][0][0]

        self.js(*P, "branch", "create", "at-lsn", "--from-lsn", str(lsn))
        self.js(*P, "branch", "create", "at-label", "--from-label", "one")
        self.js(*P, "branch", "create", "at-ckpt", "--from-checkpoint", str(lsn))
        self.js(*P, "branch", "create", "at-head")
        self.assertEqual([count(b) for b in ("at-lsn", "at-label", "at-ckpt", "at-head")],
                         [1, 1, 1, 2])
        # One branch point at most.
        self.fails(USAGE, *P, "branch", "create", "x", "--from-lsn", "1", "--from-label", "one")

    def test_durations(self) -> None:
        pr = self.project("durations")
        P = ("--project", pr)
        for text, seconds in (("90", 90), ("45s", 45), ("15m", 900), ("1h30m", 5400),
                              ("7d", 7 * 86400)):
            b = self.js(*P, "branch", "set-idle-timeout", "production", text)
            self.assertEqual(b["idle_timeout_seconds"], seconds, text)
        for bad in ("soon", "1x", "-5m", "1h30", ""):
            self.fails(USAGE, *P, "branch", "create", "ttl-bad", "--ttl", bad)
            self.fails(USAGE, *P, "branch", "set-ttl", "production", bad)
        self.fails(NOT_FOUND, *P, "branch", "get", "ttl-bad")


class SqlAndHistory(CliTestCase):
    def test_sql(self) -> None:
        P = ("--project", self.project("sql"))
        r = self.js(*P, "sql", "production",
                    "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, n INT);"
                    "INSERT INTO items(name, n) VALUES (?, ?)", "--param", "apple",
                    "--param", "3")
        self.assertIsInstance(r["lsn"], int)
        self.assertEqual(r["results"][1]["rows_affected"], 1)
        self.js(*P, "sql", "production", "INSERT INTO items(name, n) VALUES (:name, :n)",
                "--named", "name=pear", "--named", "n=null")
        r = self.js(*P, "sql", "production", "SELECT name, n FROM items ORDER BY id")
        self.assertEqual(r["results"][0]["columns"], ["name", "n"])
        self.assertEqual(r["results"][0]["rows"], [["apple", 3], ["pear", None]])
        self.assertIsNone(r["lsn"])
        table = self.ok(*P, "sql", "production", "SELECT name, n FROM items ORDER BY id")
        self.assertEqual(table.splitlines()[0].split(), ["name", "n"])
        self.assertIn("apple  3", table)
        self.assertIn("pear   NULL", table)
        self.assertIn("(2 rows)", table)
        # --file, and stdin.
        path = os.path.join(self.cli.home, "script.sql")
        with open(path, "w") as f:
            f.write("INSERT INTO items(name) VALUES ('fig');\n")
        self.assertIn("committed lsn", self.ok(*P, "sql", "production", "--file", path))
        self.ok(*P, "sql", "production", "-f", "-", stdin=b"INSERT INTO items(name) VALUES ('kiwi')")
        r = self.js(*P, "sql", "production", "SELECT count(*) FROM items")
        self.assertEqual(r["results"][0]["rows"][0][0], 4)
        # Read-only: the write is refused (403 read_only -> exit 4).
        out, err = self.fails(AUTH, *P, "sql", "production", "DELETE FROM items", "--read-only")
        self.assertIn("read_only", err)
        # A SQL error is an API error (400 -> 1); the failing statement is
        # numbered from 1 in the message and the hint alike, and echoed.
        out, err = self.fails(API_ERROR, *P, "--json", "sql", "production", "SELECT 1; SELEC 2")
        self.assertEqual(json.loads(out)["error"]["code"], "sql_error")
        self.assertIn("statement 2", err)
        self.fails(USAGE, *P, "sql", "production")  # no SQL
        # A result past the server's row cap is an error, never cut; --page-size
        # fetches every page.
        big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10005) "
        out, err = self.fails(API_ERROR, *P, "--json", "sql", "production", big + "SELECT x FROM c")
        self.assertEqual(json.loads(out)["error"]["code"], "result_too_large")
        r = self.js(*P, "sql", "production", big + "SELECT x FROM c", "--page-size", "4000")
        self.assertEqual([row[0] for row in r["results"][0]["rows"]], list(range(1, 10006)))
        self.assertFalse(r["results"][0]["truncated"])

    def test_checkpoints_rollback_reset(self) -> None:
        P = ("--project", self.project("history"))
        self.ok(*P, "sql", "production", "CREATE TABLE t(a)")
        self.js(*P, "branch", "create", "dev")
        lsns = [self.js(*P, "sql", "dev", f"INSERT INTO t VALUES ({i})")["lsn"]
                for i in range(3)]
        page = self.js(*P, "checkpoints", "dev", "--limit", "2")
        self.assertEqual([c["lsn"] for c in page["checkpoints"]], [lsns[2], lsns[1]])
        self.assertIsNotNone(page["next"])
        human = self.ok(*P, "checkpoints", "dev", "--limit", "2")
        self.assertIn("--cursor", human)
        self.assertIn("INSERT INTO t VALUES (2)", human)
        page2 = self.js(*P, "checkpoints", "dev", "--limit", "2", "--cursor", page["next"])
        self.assertEqual(page2["checkpoints"][0]["lsn"], lsns[0])
        cp = self.js(*P, "label", "dev", str(lsns[0]), "first")
        self.assertEqual(cp["lsn"], lsns[0])

        def count() -> int:
            return self.js(*P, "sql", "dev", "SELECT count(*) FROM t")["results"][0]["rows"][0][0]

        m = self.js(*P, "rollback", "dev", "--actions", "1")
        self.assertEqual(m["previous_head_lsn"], lsns[2])
        self.assertEqual(count(), 2)
        human = self.ok(*P, "rollback", "dev", "--to", str(m["previous_head_lsn"]))
        self.assertIn(f"undo: branchdb rollback dev --to", human)
        self.assertEqual(count(), 3)
        self.js(*P, "rollback", "dev", "--label", "first")
        self.assertEqual(count(), 1)
        self.js(*P, "rollback", "dev", "--checkpoint", str(lsns[1]))
        self.assertEqual(count(), 2)
        self.fails(USAGE, *P, "rollback", "dev")
        self.fails(USAGE, *P, "rollback", "dev", "--to", "1", "--actions", "1")
        self.fails(NOT_FOUND, *P, "rollback", "dev", "--label", "nope")
        m = self.js(*P, "reset", "dev")
        self.assertEqual(count(), 0)
        self.assertIn("head_lsn", m)

    def test_diff_schema_promote(self) -> None:
        P = ("--project", self.project("review"))
        self.ok(*P, "sql", "production", "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT)")
        self.ok(*P, "sql", "production", "INSERT INTO items(name) VALUES ('a'), ('b')")
        self.js(*P, "branch", "create", "feature")
        self.ok(*P, "sql", "feature", "ALTER TABLE items ADD COLUMN price INT")
        self.ok(*P, "sql", "feature", "UPDATE items SET price = 5 WHERE name = 'a'")
        d = self.js(*P, "diff", "feature")
        self.assertEqual(d["kind"], "schema")
        self.assertEqual([o["name"] for o in d["objects"]], ["items"])
        self.assertIn("~ table items", self.ok(*P, "diff", "feature", "--base", "production"))
        d = self.js(*P, "diff", "feature", "--data", "--tables", "items")
        self.assertEqual(d["kind"], "data")
        self.assertEqual(d["tables"][0]["table"], "items")
        self.assertIn("items", self.ok(*P, "diff", "feature", "--data"))
        s = self.js(*P, "schema", "feature")
        self.assertIn("price", s["objects"][0]["sql"])
        self.assertIn("CREATE TABLE items", self.ok(*P, "schema", "production"))
        dry = self.js(*P, "promote", "feature", "--dry-run")
        self.assertTrue(dry["dry_run"])
        self.assertEqual(dry["branch"], "production")
        self.assertNotIn("price", self.js(*P, "schema", "production")["objects"][0]["sql"])
        out, err = self.fails(CONFLICT, *P, "promote", "feature", "--verify",
                              "SELECT count(*) = 99 FROM items")
        self.assertIn("verify_failed", err)
        human = self.ok(*P, "promote", "feature", "--verify", "SELECT count(*) FROM items")
        self.assertIn("promoted feature onto production", human)
        self.assertIn("undo: branchdb rollback production --to", human)
        self.assertIn("price", self.js(*P, "schema", "production")["objects"][0]["sql"])
        self.fails(USAGE, *P, "promote", "feature", "--mode", "sideways")


class AccessAndTransfer(CliTestCase):
    def test_credential_token_compute(self) -> None:
        P = ("--project", self.project("access"))
        self.ok(*P, "sql", "production", "CREATE TABLE t(a); INSERT INTO t VALUES (7)")
        code, out, err = self.cli.run(*P, "credential", "production", "--ttl", "5m")
        self.assertEqual(code, OK, err)
        cred = out.strip()
        self.assertIn("expires", err)
        # The credential reads that branch through the CLI's --token...
        r = json.loads(self.ok("--token", cred, *P, "--json", "sql", "production",
                               "SELECT a FROM t"))
        self.assertEqual(r["results"][0]["rows"], [[7]])
        # ...and may not write (a read credential) or reach anything else.
        self.fails(AUTH, "--token", cred, *P, "sql", "production", "DELETE FROM t")
        self.fails(AUTH, "--token", cred, *P, "project", "list")
        c = self.js(*P, "credential", "production", "--read-write")
        self.assertEqual(c["access"], "read_write")
        self.assertRegex(c["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.fails(USAGE, *P, "credential", "production", "--ttl", "later")
        # token: an access token that works with any HTTP client.
        token = self.ok("token").strip()
        req = urllib.request.Request(self.server.url + "/v1/projects",
                                     headers={"Authorization": "Bearer " + token})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as resp:
            self.assertEqual(resp.status, 200)
        self.assertEqual(self.js("token")["access_token"].count("."), 2)
        st = self.js(*P, "compute", "production")
        self.assertIn(st["state"], ("active", "suspended"))
        self.assertEqual(self.js(*P, "suspend", "production")["state"], "suspended")
        self.assertIn("state", self.ok(*P, "compute", "production"))

    def test_clients_and_scopes(self) -> None:
        c = self.js("client", "create", "--name", "reader", "--scopes",
                    "projects:read,branches:read")
        self.assertTrue(c["client_secret"])
        self.assertEqual(c["scopes"], ["projects:read", "branches:read"])
        self.assertRegex(c["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        listed = self.js("client", "list")
        self.assertIn(c["client_id"], [x["client_id"] for x in listed["clients"]])
        self.assertIn("reader", self.ok("client", "list"))
        as_reader = ("--client-id", c["client_id"], "--client-secret", c["client_secret"])
        self.ok(*as_reader, "project", "list")
        out, err = self.fails(AUTH, *as_reader, "--json", "project", "create", "nope")
        self.assertEqual(json.loads(out)["error"]["code"], "insufficient_scope")
        self.assertIn("client create --scopes", err)
        self.assertEqual(self.js("client", "delete", c["client_id"]), {})
        self.fails(AUTH, *as_reader, "project", "list")
        self.fails(NOT_FOUND, "client", "delete", c["client_id"])

    def test_branch_scoped_client(self) -> None:
        # docs/auth.md's agent: its branches only, each expiring within an hour.
        P = ("--project", self.project("scoped"))
        self.ok(*P, "sql", "production", "CREATE TABLE t(a)")
        self.ok(*P, "branch", "protect", "production")
        c = self.js("client", "create", "--name", "agent", "--scopes",
                    "branches:write sql:write", "--projects", P[1], "--branches", "agent/*",
                    "--max-branch-ttl", "1h")
        self.assertEqual(c["branches"], ["agent/*"])
        self.assertEqual(c["max_branch_ttl_seconds"], 3600)
        self.assertIn("agent/*", self.ok("client", "list"))
        agent = ("--client-id", c["client_id"], "--client-secret", c["client_secret"]) + P
        b = self.js(*agent, "branch", "create", "agent/x")
        self.assertIsNotNone(b["expires_at"])  # the client's maximum TTL
        self.ok(*agent, "sql", "agent/x", "INSERT INTO t VALUES (1)")
        listed = self.js(*agent, "branch", "list")
        self.assertEqual([x["name"] for x in listed["branches"]], ["agent/x"])
        for args in (("branch", "create", "dev/x"), ("sql", "production", "SELECT 1"),
                     ("branch", "delete", "production"),
                     ("branch", "unprotect", "production")):
            out, _ = self.fails(AUTH, *agent, "--json", *args)
            self.assertEqual(json.loads(out)["error"]["code"], "branch_not_allowed", args)
        out, _ = self.fails(AUTH, *agent, "--json", "branch", "create", "agent/long", "--ttl", "2h")
        self.assertEqual(json.loads(out)["error"]["code"], "branch_ttl_not_allowed")
        self.fails(USAGE, "client", "create", "--scopes", "sql:read", "--max-branch-ttl", "soon")

    def test_writes_policy_and_protect_scope(self) -> None:
        P = ("--project", self.project("guarded"))
        self.ok(*P, "sql", "production", "CREATE TABLE t(a)")
        self.assertIn("promote_only", self.ok(*P, "branch", "set-writes", "production",
                                              "promote_only"))
        c = self.js("client", "create", "--name", "writer", "--scopes",
                    "branches:write sql:write")
        writer = ("--client-id", c["client_id"], "--client-secret", c["client_secret"]) + P
        out, _ = self.fails(AUTH, *writer, "--json", "sql", "production", "INSERT INTO t VALUES (1)")
        self.assertEqual(json.loads(out)["error"]["code"], "branch_promote_only")
        out, _ = self.fails(AUTH, *writer, "--json", "branch", "set-writes", "production", "any")
        self.assertEqual(json.loads(out)["error"]["code"], "branch_protected")
        self.ok(*P, "branch", "set-writes", "production", "any")  # the admin may
        self.ok(*writer, "sql", "production", "INSERT INTO t VALUES (1)")

    def test_export_import_round_trip(self) -> None:
        P = ("--project", self.project("transfer"))
        self.ok(*P, "sql", "production", "CREATE TABLE t(a, b BLOB)")
        first = self.js(*P, "sql", "production",
                        "INSERT INTO t VALUES (1, randomblob(100000))")["lsn"]
        self.ok(*P, "sql", "production", "INSERT INTO t VALUES (2, randomblob(100000))")
        path = os.path.join(self.cli.home, "shop.db")
        e = self.js(*P, "export", "production", path)
        self.assertEqual(e["bytes"], os.path.getsize(path))
        con = sqlite3.connect(path)
        self.assertEqual(con.execute("SELECT count(*) FROM t").fetchone()[0], 2)
        con.close()
        old = os.path.join(self.cli.home, "old.db")
        self.assertIn(f"at lsn {first}", self.ok(*P, "export", "production", old, "--lsn",
                                                   str(first)))
        b = self.js(*P, "import", path, "--branch", "restored")
        self.assertEqual(b["name"], "restored")
        r = self.js(*P, "sql", "restored", "SELECT count(*), sum(length(b)) FROM t")
        self.assertEqual(r["results"][0]["rows"], [[2, 200000]])
        self.assertIn("imported", self.ok(*P, "import", old, "--branch", "restored-old"))
        r = self.js(*P, "sql", "restored-old", "SELECT count(*) FROM t")
        self.assertEqual(r["results"][0]["rows"], [[1]])
        self.fails(CONFLICT, *P, "import", path, "--branch", "restored")
        self.fails(USAGE, *P, "import", os.path.join(self.cli.home, "missing.db"), "--branch", "x")
        # On a terminal (stderr a pty) export and import show progress; in a pipe they do not.
        for argv in (("export", "production", os.path.join(self.cli.home, "tty.db")),
                     ("import", path, "--branch", "from-tty")):
            progress = self.stderr_on_tty(*P, *argv)
            self.assertIn("100%", progress)
        code, out, err = self.cli.run(*P, "export", "production", path)
        self.assertNotIn("%", err)
        # Export to stdout.
        code = subprocess.run([BINARY, "--url", self.server.url, "--data-dir",
                               self.server.data_dir, *P, "export", "production", "-"],
                              capture_output=True, env=self.cli.env(), timeout=60)
        self.assertEqual(code.returncode, OK, code.stderr)
        with open(path, "rb") as f:
            self.assertEqual(code.stdout, f.read())


    def stderr_on_tty(self, *args: str) -> str:
        """Runs the CLI with stderr on a pseudo-terminal; returns what it wrote there."""
        master, slave = pty.openpty()
        chunks: List[bytes] = []

        def drain() -> None:
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other side closed
                    return
                if not chunk:
                    return
                chunks.append(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        try:
            p = subprocess.run([BINARY, "--url", self.server.url, "--data-dir",
                                self.server.data_dir, *args], stdout=subprocess.PIPE,
                               stderr=slave, env=self.cli.env(), timeout=60)
        finally:
            os.close(slave)
            reader.join(timeout=30)
            os.close(master)
        text = b"".join(chunks).decode(errors="replace")
        self.assertEqual(p.returncode, OK, text)
        return text


class SettingsAndErrors(CliTestCase):
    def write_config(self, name: str, text: str) -> str:
        path = os.path.join(self.cli.home, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_precedence(self) -> None:
        self.project("prec")
        creds = self.admin()
        good_env = {"BRANCHDB_URL": self.server.url, "BRANCHDB_CLIENT_ID": creds["client_id"],
                    "BRANCHDB_CLIENT_SECRET": creds["client_secret"]}
        bad_cfg = self.write_config("bad.toml", 'token = "not-a-token"\n'
                                    'url = "http://127.0.0.1:1"\nproject = "nope"\n')
        good_cfg = self.write_config("good.toml", f'url = "{self.server.url}"\n'
                                     f'client_id = "{creds["client_id"]}"\n'
                                     f'client_secret = "{creds["client_secret"]}"\n'
                                     'project = "prec"\n')
        empty = os.path.join(self.cli.home, "no-data-dir")
        run = self.cli.run
        # admin-credentials.json alone (found through --data-dir).
        self.assertEqual(run("project", "get", "prec")[0], OK)
        # The config file beats admin-credentials.json (its bad token: 401 -> 4)...
        self.assertEqual(run("--config", bad_cfg, "--url", self.server.url, "--data-dir",
                             self.server.data_dir, "project", "list", local=False)[0], AUTH)
        # ...and BRANCHDB_CONFIG names it too; its URL is used (unreachable -> 3).
        self.assertEqual(run("project", "list", local=False,
                             env={"BRANCHDB_CONFIG": bad_cfg})[0], UNREACHABLE)
        # A good config file alone is enough, project included.
        code, out, err = run("--config", good_cfg, "--json", "branch", "list", local=False,
                             env={"BRANCHDB_DATA_DIR": empty})
        self.assertEqual(code, OK, err)
        self.assertIn("production", out)
        # ~/.config/branchdb/config.toml is the default file.
        os.makedirs(os.path.join(self.cli.home, ".config", "branchdb"), exist_ok=True)
        shutil.copy(good_cfg, os.path.join(self.cli.home, ".config", "branchdb", "config.toml"))
        try:
            self.assertEqual(run("branch", "list", local=False,
                                 env={"BRANCHDB_DATA_DIR": empty})[0], OK)
        finally:
            os.remove(os.path.join(self.cli.home, ".config", "branchdb", "config.toml"))
        # The environment beats the config file (url, credentials and project).
        env = dict(good_env, BRANCHDB_CONFIG=bad_cfg, BRANCHDB_PROJECT="prec")
        self.assertEqual(run("branch", "list", local=False, env=env)[0], OK)
        # Flags beat the environment.
        self.assertEqual(run("--token", "bad", "project", "list", local=False, env=env)[0], AUTH)
        self.assertEqual(run("--url", "http://127.0.0.1:1", "project", "list", local=False,
                             env=env)[0], UNREACHABLE)
        self.assertEqual(run("--project", "nope", "branch", "list", local=False, env=env)[0],
                         NOT_FOUND)
        # Global flags may also follow the subcommand.
        self.assertEqual(run("branch", "list", "--project", "prec", local=False, env=env)[0], OK)
        # A client id without its secret is a usage error.
        self.assertEqual(run("--client-id", "x", "project", "list")[0], USAGE)
        # No credentials anywhere: exit 4 with a hint.
        code, out, err = run("--url", self.server.url, "--data-dir", empty, "project", "list",
                             local=False)
        self.assertEqual(code, AUTH)
        self.assertIn("BRANCHDB_CLIENT_ID", err)
        # A config file with an unknown key names the file and the key.
        typo = self.write_config("typo.toml", 'urll = "x"\n')
        code, out, err = run("--config", typo, "project", "list")
        self.assertEqual(code, USAGE)
        self.assertIn("urll", err)
        self.assertEqual(run("--config", os.path.join(self.cli.home, "missing.toml"),
                             "project", "list")[0], USAGE)

    def test_exit_codes_and_hints(self) -> None:
        self.project("codes")
        P = ("--project", "codes")
        code, out, err = self.cli.run("--url", "http://127.0.0.1:1", "--data-dir",
                                      self.server.data_dir, "project", "list", local=False)
        self.assertEqual(code, UNREACHABLE, err)
        self.assertIn("is `branchdb serve` running at http://127.0.0.1:1", err)
        out, err = self.fails(UNREACHABLE, "--json", "--url", "http://127.0.0.1:1", "--data-dir",
                              self.server.data_dir, "token", local=False)
        self.assertEqual(json.loads(out)["error"]["code"], "network_error")
        out, err = self.fails(AUTH, "--token", "garbage", "project", "list")
        self.assertIn("BRANCHDB_CLIENT_ID", err)
        self.assertIn("--data-dir", err)
        out, err = self.fails(AUTH, "--client-id", "nobody", "--client-secret", "x",
                              "project", "list")
        out, err = self.fails(CONFLICT, "--json", "project", "create", "codes")
        self.assertEqual(json.loads(out)["error"]["code"], "project_exists")
        out, err = self.fails(NOT_FOUND, "--json", *P, "branch", "get", "ghost")
        self.assertEqual(json.loads(out)["error"]["code"], "branch_not_found")
        self.assertIn("branchdb branch list", err)
        self.fails(USAGE, "--no-such-flag", "project", "list")
        self.fails(USAGE, "project")
        self.fails(USAGE)
        self.fails(USAGE, "branch", "list")  # no project
        self.fails(USAGE, *P, "checkpoints", "production", "--limit", "many")

    def test_help_has_examples_and_defaults(self) -> None:
        out = self.ok("--help")
        for word in ("serve", "project", "branch", "sql", "checkpoints", "rollback", "promote",
                     "export", "import", "client", "token", "Exit codes"):
            self.assertIn(word, out)
        commands = [["serve"], ["project", "create"], ["project", "list"], ["project", "get"],
                    ["project", "delete"], ["project", "set"], ["branch", "create"],
                    ["branch", "list"], ["branch", "get"], ["branch", "delete"],
                    ["branch", "rename"], ["branch", "protect"], ["branch", "unprotect"],
                    ["branch", "set-ttl"], ["branch", "set-idle-timeout"], ["sql"],
                    ["checkpoints"], ["label"], ["rollback"], ["reset"], ["diff"], ["schema"],
                    ["promote"], ["credential"], ["export"], ["import"], ["compute"],
                    ["suspend"], ["client", "create"], ["client", "list"], ["client", "delete"],
                    ["token"], ["audit"], ["usage"]]
        for cmd in commands:
            out = self.ok(*cmd, "--help", local=False)
            self.assertRegex(out, r"Examples?:\n  ", cmd)
            self.assertIn("branchdb " + cmd[0], out.split("Example")[1], cmd)
        self.assertIn("default", self.ok("branch", "create", "--help", local=False))
        self.assertIn("20", self.ok("checkpoints", "--help", local=False))


class Hardening(CliTestCase):
    """Item 20 of the hardening issue (#13): what a newcomer's afternoon broke."""

    def test_unknown_command_is_named_with_the_nearest_one(self) -> None:
        out, err = self.fails(USAGE, "projct", "list")
        self.assertNotIn("A subcommand is required", err)
        self.assertIn('unknown command "projct"', err)
        self.assertIn("did you mean `branchdb project`", err)
        self.assertEqual(out, "")
        # One level down, and with global flags around it.
        out, err = self.fails(USAGE, "--project", "x", "branch", "craete", "dev")
        self.assertIn('unknown command "craete"', err)
        self.assertIn("did you mean `branchdb branch create`", err)
        # Nothing near: named, pointed at --help, no guess.
        out, err = self.fails(USAGE, "frobnicate")
        self.assertIn('unknown command "frobnicate"', err)
        self.assertNotIn("did you mean", err)
        self.assertIn("branchdb --help", err)
        # No command at all is still CLI11's own message.
        self.fails(USAGE)

    def test_malformed_url_is_a_usage_error(self) -> None:
        empty = os.path.join(self.cli.home, "no-data-dir")
        for url in ("localhost:8080", "127.0.0.1", "http://", "http://127.0.0.1:99999",
                    "http://127.0.0.1:port", "ftp://127.0.0.1"):
            with self.subTest(url=url):
                # With credentials (was 4, auth) and without any (also 4).
                out, err = self.fails(USAGE, "--url", url, "--data-dir", self.server.data_dir,
                                      "project", "list", local=False)
                self.assertIn("--url", err)
                self.assertIn(url, err)
                self.fails(USAGE, "--url", url, "--data-dir", empty, "project", "list",
                           local=False)
        out, err = self.fails(USAGE, "project", "list", local=False,
                              env={"BRANCHDB_URL": "localhost:8080",
                                   "BRANCHDB_DATA_DIR": self.server.data_dir})
        self.assertIn("BRANCHDB_URL", err)

    def test_admin_credentials_bring_their_server_url(self) -> None:
        # The test server listens on a free port, not the default 8080: the
        # file's token_url says where.
        with open(os.path.join(self.server.data_dir, "admin-credentials.json")) as f:
            self.assertTrue(json.load(f)["token_url"].startswith(self.server.url))
        self.project("found")
        code, out, err = self.cli.run("--data-dir", self.server.data_dir, "--json",
                                      "project", "get", "found", local=False)
        self.assertEqual(code, OK, err)
        self.assertEqual(json.loads(out)["name"], "found")
        # A URL named anywhere still wins over the file's.
        self.assertEqual(self.cli.run("--data-dir", self.server.data_dir, "project", "list",
                                      local=False,
                                      env={"BRANCHDB_URL": "http://127.0.0.1:1"})[0], UNREACHABLE)

    def test_credential_help_states_the_default_it_gets(self) -> None:
        P = ("--project", self.project("creds"))
        helptext = self.ok("credential", "--help", local=False)
        self.assertIn("default: 15m", helptext)
        self.assertNotIn("the server's, 1h", helptext)
        self.assertEqual(self.js(*P, "credential", "production")["expires_in"], 15 * 60)

    def test_sql_errors_number_from_one_and_echo_the_statement(self) -> None:
        P = ("--project", self.project("sqlerr"))
        out, err = self.fails(API_ERROR, *P, "--json", "sql", "production",
                              "SELECT 1;\n  SELEC   2; SELECT 3")
        error = json.loads(out)["error"]
        self.assertEqual(error["details"]["statement"], 1)  # the API's index is 0-based
        self.assertEqual(error["details"]["sql"], "SELEC 2;")
        self.assertIn("statement 2: near", err)  # the server's message
        self.assertIn("failed at statement 2: SELEC 2;", err)  # the hint agrees
        self.assertNotIn("0-based", err)
        # A statement that prepares but fails while running.
        out, err = self.fails(API_ERROR, *P, "sql", "production",
                              "CREATE TABLE u(a UNIQUE); INSERT INTO u VALUES (1); "
                              "INSERT INTO u SELECT 1")
        self.assertIn("failed at statement 3: INSERT INTO u SELECT 1", err)

    def test_refused_transaction_control_is_an_sql_error(self) -> None:
        P = ("--project", self.project("txn"))
        out, err = self.fails(API_ERROR, *P, "--json", "sql", "production",
                              "BEGIN; CREATE TABLE t(a); COMMIT")
        self.assertEqual(json.loads(out)["error"]["code"], "sql_forbidden")
        self.assertIn("one transaction", err)
        self.assertIn("failed at statement 1: BEGIN;", err)
        # A read-only refusal stays an authorization matter (4).
        self.ok(*P, "sql", "production", "CREATE TABLE t(a)")
        self.fails(AUTH, *P, "sql", "production", "INSERT INTO t VALUES (1)", "--read-only")

    def test_refused_connection_is_said_plainly_at_the_first_attempt(self) -> None:
        out, err = self.fails(UNREACHABLE, "--json", "--url", "http://127.0.0.1:1", "--data-dir",
                              self.server.data_dir, "project", "list", local=False)
        error = json.loads(out)["error"]
        self.assertEqual(error["code"], "network_error")
        self.assertEqual(error["details"]["attempts"], 1)  # no retries against nothing
        self.assertIn("connection refused", err)
        self.assertNotRegex(err, r": Connection\b")  # httplib's enum name



class AuditAndUsage(CliTestCase):
    def test_audit_and_usage_of_a_scripted_session(self) -> None:
        pr = self.project("audited")
        P = ("--project", pr)
        agent = self.js("client", "create", "--name", "agent", "--scopes",
                        "branches:write,sql:write")
        as_agent = ("--client-id", agent["client_id"], "--client-secret", agent["client_secret"])
        self.js(*P, *as_agent, "branch", "create", "agent/a")
        self.js(*P, *as_agent, "sql", "agent/a", "CREATE TABLE t(a)")
        self.js(*P, "branch", "protect", "agent/a")
        # Deleting a protected branch needs branches:protect, which agents lack.
        self.fails(AUTH, *P, *as_agent, "branch", "delete", "agent/a")

        trail = self.js(*P, "audit")
        ops = [e["operation"] for e in trail["events"]]
        self.assertEqual(ops, ["project.create", "branch.create", "branch.protect",
                               "branch.delete"], trail)
        refused = trail["events"][-1]
        self.assertEqual(refused["status"], 403)
        self.assertEqual(refused["code"], "branch_protected")
        self.assertEqual(refused["client_id"], agent["client_id"])
        self.assertEqual(refused["branch"], "agent/a")
        mine = self.js(*P, "audit", "--client", agent["client_id"])
        self.assertEqual([e["operation"] for e in mine["events"]],
                         ["branch.create", "branch.delete"])
        self.assertEqual(self.js(*P, "audit", "--since", "2999-01-01T00:00:00Z")["events"], [])
        self.assertEqual(len(self.js(*P, "audit", "--limit", "2")["events"]), 2)
        table = self.ok(*P, "audit")
        self.assertTrue(table.splitlines()[0].startswith("TIME"), table)
        self.assertIn("branch_protected", table)
        server = self.js("audit", "--server", "--client", agent["client_id"])
        self.assertIn("token.issue", [e["operation"] for e in server["events"]])
        # Reading the trail takes scope admin.
        out, err = self.fails(AUTH, *P, *as_agent, "--json", "audit")
        self.assertEqual(json.loads(out)["error"]["code"], "insufficient_scope")

        usage = self.js(*P, "usage")
        self.assertEqual(usage["branches"], 2)
        self.assertEqual(usage["commits"], 1)
        self.assertEqual(self.js(*P, "usage", "--client", agent["client_id"])["branches"], 1)
        self.assertRegex(self.ok(*P, "usage"), r"commits +1")

if __name__ == "__main__":
    unittest.main()
