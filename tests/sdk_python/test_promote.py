"""Client.promote against a real branchdb server: fast-forward, replay over a
moved parent, dry run, verify, the promote error classes, undo, and the scope
a protected parent needs."""

from __future__ import annotations

import unittest
import uuid

import bdb_server  # puts the SDK on sys.path

import branchdb

SERVER: bdb_server.ServerProcess


def setUpModule() -> None:
    global SERVER
    SERVER = bdb_server.ServerProcess().start()


def tearDownModule() -> None:
    code = SERVER.stop()
    log = SERVER.log()
    SERVER.cleanup()
    if code != 0:
        raise AssertionError(f"server exit code {code} after SIGTERM; log tail:\n{log[-4000:]}")


class Promote(unittest.TestCase):
    def setUp(self) -> None:
        self.project = f"pr-{uuid.uuid4().hex[:8]}"
        self.c = branchdb.Client.from_data_dir(SERVER.data_dir, url=SERVER.url,
                                               project=self.project, trust_env=False)
        self.c.create_project(self.project)
        self.c.sql("production", "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT UNIQUE)")
        self.c.create_branch("feature", "production")

    def keys(self, branch: str = "production") -> list:
        return [r[0] for r in self.c.sql(branch, "SELECT k FROM t ORDER BY id").rows]

    def test_fast_forward_then_replay_and_undo(self) -> None:
        c = self.c
        lsn = c.sql("feature", "INSERT INTO t(k) VALUES (?)", ["a"]).lsn
        r = c.promote("feature")
        self.assertIsInstance(r, branchdb.PromoteResult)
        self.assertEqual((r.mode, r.branch, r.source, r.attempts), ("fast_forward", "production",
                                                                     "feature", 1))
        self.assertEqual([(a.lsn, a.rows) for a in r.actions], [(lsn, 1)])
        self.assertEqual(self.keys(), ["a"])

        c.sql("production", "INSERT INTO t(k) VALUES ('live')")
        c.sql("feature", "INSERT INTO t(k) VALUES (:k)", {"k": "b"})
        with self.assertRaises(branchdb.ParentMoved):
            c.promote("feature", mode="fast_forward")
        dry = c.branch("feature").promote(dry_run=True, verify="SELECT count(*) FROM t")
        self.assertTrue(dry.dry_run)
        self.assertEqual(dry.mode, "replay")
        self.assertIsNone(dry.head_lsn)
        self.assertEqual(dry.verify.value, 3)
        self.assertEqual(self.keys(), ["a", "live"])

        r = c.promote("feature", verify="SELECT count(*) = 3 FROM t", on_conflict="retry",
                      max_retries=2)
        self.assertEqual(r.mode, "replay")
        self.assertTrue(r.verify.ok)
        self.assertEqual(self.keys(), ["a", "live", "b"])
        self.assertEqual(c.list_checkpoints("production", limit=1).checkpoints[0].kind, "promote")
        c.undo("production", r)
        self.assertEqual(self.keys(), ["a", "live"])

    def test_errors(self) -> None:
        c = self.c
        c.sql("feature", "INSERT INTO t(k) VALUES ('x')")
        lsn = c.sql("feature", "INSERT INTO t(k) VALUES ('clash')").lsn
        c.sql("production", "INSERT INTO t(k) VALUES ('clash')")
        with self.assertRaises(branchdb.ParentMoved) as pm:
            c.promote("feature", verify="SELECT 1", mode="fast_forward")
        self.assertEqual(pm.exception.status, 409)
        with self.assertRaises(branchdb.ReplayFailed) as cm:
            c.promote("feature")
        self.assertIsInstance(cm.exception, branchdb.Conflict)
        self.assertEqual(cm.exception.failed_action["index"], 1)
        self.assertEqual(cm.exception.failed_action["lsn"], lsn)
        self.assertEqual(cm.exception.failed_action["error"]["code"], "sql_error")
        self.assertEqual(self.keys(), ["clash"])
        c.sql("production", "DELETE FROM t")
        with self.assertRaises(branchdb.VerifyFailed) as cm:
            c.promote("feature", verify="SELECT 'false'")
        self.assertEqual(cm.exception.value, "false")
        with self.assertRaises(branchdb.BadRequest):
            c.promote("feature", on_conflict="overwrite")
        with self.assertRaises(branchdb.Conflict) as cm:
            c.promote("production")
        self.assertEqual(cm.exception.code, "no_parent")

    def test_protected_parent_needs_scope(self) -> None:
        c = self.c
        c.sql("feature", "INSERT INTO t(k) VALUES ('p')")
        c.update_branch("production", protected=True)

        def client(scopes: list) -> branchdb.Client:
            new = c.create_client(scopes, name="promoter", projects=[self.project])
            return branchdb.Client(SERVER.url, client_id=new.client_id,
                                   client_secret=new.client_secret, project=self.project,
                                   trust_env=False)

        with self.assertRaises(branchdb.PermissionDenied) as cm:
            client(["branches:write"]).promote("feature")
        self.assertEqual(cm.exception.code, "insufficient_scope")
        self.assertEqual(cm.exception.details.get("scope"), "branches:promote_protected")
        r = client(["branches:write", "branches:promote_protected"]).promote("feature")
        self.assertEqual(r.mode, "fast_forward")
        self.assertEqual(self.keys(), ["p"])


if __name__ == "__main__":
    unittest.main()
