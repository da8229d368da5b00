"""The Python SDK against a real branchdb server: projects, branches, SQL,
checkpoints, rollback + undo, reset, schema, diff, credentials, compute,
export/import, clients, ephemeral branches, error mapping, construction."""

from __future__ import annotations

import datetime
import os
import sqlite3
import tempfile
import time
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


def admin(project: str = "", **kwargs) -> branchdb.Client:
    return branchdb.Client.from_data_dir(SERVER.data_dir, url=SERVER.url,
                                         project=project or None, trust_env=False, **kwargs)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class ProjectsAndBranches(unittest.TestCase):
    def setUp(self) -> None:
        self.project = unique("pb")
        self.c = admin(self.project)
        self.p = self.c.create_project(self.project, restore_window_seconds=3600)

    def test_project_lifecycle(self) -> None:
        self.assertIsInstance(self.p, branchdb.Project)
        self.assertEqual(self.p.name, self.project)
        self.assertEqual(self.p.default_branch, "production")
        self.assertEqual(self.p.restore_window_seconds, 3600)
        self.assertIn(self.project, [p.name for p in self.c.list_projects()])
        self.assertEqual(self.c.get_project().id, self.p.id)
        updated = self.c.update_project(restore_window_seconds=7200)
        self.assertEqual(updated.restore_window_seconds, 7200)
        # Durability: set, refused ("remote" without the server's bucket), the default again.
        self.assertEqual(self.c.update_project(durability="local").durability, "local")
        with self.assertRaises(branchdb.BadRequest) as bad:
            self.c.update_project(durability="remote")
        self.assertIn("object_storage", str(bad.exception))
        self.assertEqual(self.c.update_project(durability=None).durability, "local")
        self.assertEqual(self.c.get_project().durability, "local")
        self.assertIsNotNone(branchdb.parse_time(updated.created_at).tzinfo)
        with self.assertRaises(branchdb.Conflict) as cm:
            self.c.create_project(self.project)
        self.assertEqual(cm.exception.status, 409)
        self.c.delete_project()
        with self.assertRaises(branchdb.NotFound) as cm:
            self.c.get_project()
        self.assertEqual(cm.exception.code, "project_not_found")

    def test_branch_from_production_isolates_sql(self) -> None:
        c = self.c
        c.sql("production", "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
        c.sql("production", "INSERT INTO items(name, data) VALUES (?, ?), (?, ?)",
              ["a", b"\x00\xff", "b", None])
        dev = c.create_branch("dev/alice", "production")
        self.assertIsInstance(dev, branchdb.Branch)
        self.assertEqual(dev.parent, "production")
        self.assertIsNone(dev.expires_at)
        r = c.sql("dev/alice", "INSERT INTO items(name) VALUES (:n); "
                  "UPDATE items SET name = upper(name) WHERE id = 1", {"n": "c"})
        self.assertEqual(r.rows_affected, 2)
        self.assertGreater(r.lsn, dev.head_lsn)
        self.assertEqual(c.sql("dev/alice", "SELECT count(*) FROM items").scalar(), 3)
        prod = c.sql("production", "SELECT id, name, data FROM items ORDER BY id")
        self.assertEqual(prod.columns, ["id", "name", "data"])
        self.assertEqual(prod.rows, [[1, "a", b"\x00\xff"], [2, "b", None]])
        self.assertEqual(prod.dicts()[0], {"id": 1, "name": "a", "data": b"\x00\xff"})
        # A script that changes nothing makes no checkpoint: lsn is null, and
        # snapshot_lsn names the state it read.
        self.assertIsNone(prod.lsn)
        self.assertEqual(prod.snapshot_lsn, c.get_branch("production").head_lsn)
        self.assertEqual(r.snapshot_lsn, r.lsn)
        self.assertEqual(c.get_branch("dev/alice").head_lsn, r.lsn)
        names = [b.name for b in c.list_branches()]
        self.assertEqual(names, sorted(names))
        self.assertIn("dev/alice", names)

    def test_branch_at_points_and_update(self) -> None:
        c = self.c
        first = c.sql("production", "CREATE TABLE t(x)")
        c.sql("production", "INSERT INTO t VALUES (1)")
        old = c.create_branch("at-lsn", "production", at_lsn=first.lsn)
        self.assertEqual(c.sql("at-lsn", "SELECT count(*) FROM t").scalar(), 0)
        self.assertEqual(old.branch_point_lsn, first.lsn)
        ttl = c.create_branch("ttl", ttl=600)
        self.assertIsNotNone(ttl.expires_at)
        expires = branchdb.parse_time(ttl.expires_at)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertGreater(expires, now + datetime.timedelta(seconds=500))
        cleared = c.update_branch("ttl", expires_at=None)
        self.assertIsNone(cleared.expires_at)
        prot = c.update_branch("ttl", protected=True)
        self.assertTrue(prot.protected)
        with self.assertRaises(branchdb.Conflict) as cm:
            c.delete_branch("ttl")
        self.assertEqual(cm.exception.code, "branch_protected")
        c.update_branch("ttl", protected=False)
        renamed = c.update_branch("ttl", name="feature/renamed")
        self.assertEqual(renamed.name, "feature/renamed")
        with self.assertRaises(branchdb.NotFound):
            c.get_branch("ttl")
        c.delete_branch("feature/renamed")
        with self.assertRaises(branchdb.NotFound) as cm:
            c.delete_branch("feature/renamed")
        self.assertEqual(cm.exception.code, "branch_not_found")


    def test_get_branch_named_like_a_sub_resource(self) -> None:
        """Regression: an encoded slash is part of the name, so
        GET /v1/projects/p/branches/feature%2Fschema is branch "feature/schema",
        not the schema route of branch "feature"."""
        self.c.create_branch("feature")
        self.c.create_branch("feature/schema")
        self.assertEqual(self.c.get_branch("feature/schema").name, "feature/schema")


class LargeResults(unittest.TestCase):
    def setUp(self) -> None:
        self.project = unique("big")
        self.c = admin(self.project)
        self.c.create_project(self.project)

    def test_past_the_cap_raises_and_sql_rows_reads_every_page(self) -> None:
        c = self.c
        c.sql("production", "CREATE TABLE n(i); WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL "
                            "SELECT x + 1 FROM s WHERE x < 10001) INSERT INTO n SELECT x FROM s")
        with self.assertRaises(branchdb.PayloadTooLarge) as cm:
            c.sql("production", "SELECT i FROM n ORDER BY i")
        self.assertEqual(cm.exception.code, "result_too_large")
        page = c.sql("production", "SELECT i FROM n ORDER BY i", page_size=4000)
        self.assertEqual(len(page.rows), 4000)
        self.assertIsNotNone(page.next_cursor)
        rows = list(c.sql_rows("production", "SELECT i FROM n WHERE i > ? ORDER BY i", [0],
                               page_size=4000))
        self.assertEqual([r[0] for r in rows], list(range(1, 10002)))


class CheckpointsRollback(unittest.TestCase):
    def setUp(self) -> None:
        self.project = unique("ck")
        self.c = admin(self.project)
        self.c.create_project(self.project)
        self.c.sql("production", "CREATE TABLE t(x INTEGER)")
        self.b = self.c.create_branch("work", "production")

    def count(self, branch: str = "work") -> int:
        return self.c.sql(branch, "SELECT count(*) FROM t").scalar()

    def test_rollback_and_undo(self) -> None:
        c = self.c
        lsns = [c.sql("work", "INSERT INTO t VALUES (?)", [i]).lsn for i in range(3)]
        page = c.list_checkpoints("work", limit=2)
        self.assertEqual(len(page.checkpoints), 2)
        self.assertEqual(page.checkpoints[0].lsn, lsns[-1])
        self.assertEqual(page.checkpoints[0].kind, "sql")
        self.assertIn("INSERT INTO t", page.checkpoints[0].summary)
        self.assertIsNotNone(page.next)
        everything = list(c.iter_checkpoints("work", page_size=2))
        self.assertEqual([x.lsn for x in everything],
                         [x.lsn for x in c.list_checkpoints("work", limit=1000).checkpoints])
        self.assertTrue(any(x.inherited for x in everything))

        moved = c.rollback("work", checkpoint=lsns[0])
        self.assertIsInstance(moved, branchdb.RollbackResult)
        self.assertEqual(moved.previous_head_lsn, lsns[-1])
        self.assertEqual(self.count(), 1)
        undone = c.undo("work", moved)
        self.assertEqual(undone.target_lsn, lsns[-1])
        self.assertEqual(self.count(), 3)

        back = c.rollback("work", actions=2)
        self.assertEqual(self.count(), 1)
        c.undo("work", back)
        self.assertEqual(self.count(), 3)

        c.label_checkpoint("work", "three")
        labelled = c.label_checkpoint("work", "one", lsn=lsns[0])
        self.assertEqual(labelled.lsn, lsns[0])
        self.assertIn("one", labelled.labels)
        c.rollback("work", label="one")
        self.assertEqual(self.count(), 1)
        c.rollback("work", label="three")
        self.assertEqual(self.count(), 3)
        with self.assertRaises(branchdb.NotFound):
            c.rollback("work", label="no-such-label")
        with self.assertRaises(ValueError):
            c.rollback("work", lsn=1, actions=1)
        # Production never moved.
        self.assertEqual(self.count("production"), 0)

    def test_rollback_to_timestamp(self) -> None:
        c = self.c
        c.sql("work", "INSERT INTO t VALUES (1)")
        time.sleep(0.05)
        middle = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(0.05)
        c.sql("work", "INSERT INTO t VALUES (2)")
        moved = c.rollback("work", timestamp=middle)
        self.assertEqual(self.count(), 1)
        c.undo("work", moved)
        self.assertEqual(self.count(), 2)

    def test_reset_schema_diff(self) -> None:
        c = self.c
        c.sql("work", "INSERT INTO t VALUES (1); CREATE TABLE extra(id INTEGER PRIMARY KEY)")
        schema = c.schema("work")
        self.assertEqual(sorted(schema.tables()), ["extra", "t"])
        sd = c.diff("work")
        self.assertIsInstance(sd, branchdb.SchemaDiff)
        changes = {(o.name, o.change) for o in sd.objects}
        self.assertIn(("extra", "added"), changes)
        dd = c.diff("work", kind="data", tables=["t"])
        self.assertIsInstance(dd, branchdb.DataDiff)
        t = dd.table("t")
        self.assertIsNotNone(t)
        self.assertEqual(t.rows_added, 1)
        self.assertEqual(t.rows[0].op, "insert")
        self.assertEqual(t.rows[0].new, {"x": 1})
        self.assertEqual(dd.to_lsn, c.get_branch("work").head_lsn)
        before = c.get_branch("work").head_lsn
        at_create = c.schema("work", lsn=self.b.head_lsn)  # on the branch's history
        self.assertEqual((at_create.lsn, at_create.tables()), (self.b.head_lsn, ["t"]))
        moved = c.reset("work")
        self.assertEqual(moved.previous_head_lsn, before)
        self.assertEqual(c.schema("work").tables(), ["t"])
        self.assertEqual(self.count(), 0)
        c.undo("work", moved)
        self.assertEqual(self.count(), 1)
        self.assertEqual(c.schema("work").tables(), ["extra", "t"])

    def test_data_diff_rows_paged_and_as_sql(self) -> None:
        """Every changed row through the cursor, a reshaped table compared on its
        key and common columns, and the patch that turns the base into the branch."""
        c = self.c
        c.sql("production", "CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT);"
                            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<25)"
                            " INSERT INTO people SELECT i, 'p' || i FROM s")
        c.create_branch("wide", "production")
        c.sql("wide", "ALTER TABLE people ADD COLUMN tier TEXT; UPDATE people SET tier = 'gold'")
        first = c.diff("wide", kind="data", base="production", limit=10)
        self.assertIsInstance(first, branchdb.DataDiff)
        people = first.table("people")
        self.assertIsNotNone(people)
        self.assertEqual(people.columns_added, ["tier"])
        self.assertEqual(people.rows_changed, 25)
        self.assertEqual(len(people.rows), 10)
        self.assertIsNotNone(first.next)
        rows = list(c.iter_diff_rows("wide", base="production", page_size=7))
        self.assertEqual(len(rows), 25)
        self.assertTrue(all(r.new == {"tier": "gold"} for _, r in rows))
        sql = c.patch_sql("wide", base="production", page_size=7)
        self.assertIn('ADD COLUMN "tier" TEXT', sql)
        c.create_branch("copy", "production")
        c.sql("copy", sql)
        again = c.diff("copy", kind="data", base="wide")
        self.assertEqual(again.tables, [])

    def test_checkpoints_keep_rolled_back_states(self) -> None:
        c = self.c
        lsns = [c.sql("work", "INSERT INTO t VALUES (?)", [i]).lsn for i in range(2)]
        moved = c.rollback("work", actions=1)
        listed = {x.lsn: x for x in c.iter_checkpoints("work")}
        self.assertTrue(listed[lsns[1]].rolled_back)
        self.assertFalse(listed[lsns[0]].rolled_back)
        move = listed[moved.head_lsn]
        self.assertEqual((move.kind, move.target_lsn, move.previous_head_lsn),
                         ("rollback", lsns[0], lsns[1]))

    def test_read_at_former_head(self) -> None:
        """Regression: GET .../schema?lsn=N and .../export?lsn=N for an LSN that
        was the branch's head before a reset (what undo accepts) read exactly
        that state, not the newest state of the current history at or below N."""
        c = self.c
        head = c.sql("work", "CREATE TABLE extra(id INTEGER)").lsn
        moved = c.reset("work")
        self.assertEqual(moved.previous_head_lsn, head)
        schema = c.schema("work", lsn=head)
        self.assertEqual(schema.lsn, head)
        self.assertIn("extra", schema.tables())
        self.assertNotIn("extra", c.schema("work").tables())
        self.assertEqual(c.export("work", lsn=head).lsn, head)


class CredentialsComputeExport(unittest.TestCase):
    def setUp(self) -> None:
        self.project = unique("ce")
        self.c = admin(self.project)
        self.c.create_project(self.project)
        self.c.sql("production", "CREATE TABLE t(x); INSERT INTO t VALUES (42)")

    def test_credential_is_bound_to_one_branch(self) -> None:
        c = self.c
        c.create_branch("agent")
        cred = c.create_credential("agent", access="read_write", ttl=120)
        self.assertIsInstance(cred, branchdb.Credential)
        self.assertEqual((cred.branch, cred.access), ("agent", "read_write"))
        self.assertNotIn(cred.credential, repr(cred))
        self.assertIsNotNone(branchdb.parse_time(cred.expires_at).tzinfo)  # RFC 3339
        agent = branchdb.Client(SERVER.url, token=cred.credential, project=self.project,
                                trust_env=False)
        agent.sql("agent", "INSERT INTO t VALUES (1)")
        self.assertEqual(c.sql("agent", "SELECT count(*) FROM t").scalar(), 2)
        with self.assertRaises(branchdb.PermissionDenied) as cm:
            agent.sql("production", "SELECT 1")
        self.assertEqual(cm.exception.code, "insufficient_scope")
        with self.assertRaises(branchdb.PermissionDenied):
            agent.get_branch("agent")
        ro = branchdb.Client(SERVER.url, project=self.project, trust_env=False,
                             token=c.create_credential("agent").credential)
        self.assertEqual(ro.sql("agent", "SELECT max(x) FROM t").scalar(), 42)
        with self.assertRaises(branchdb.PermissionDenied):
            ro.sql("agent", "INSERT INTO t VALUES (2)")
        # SQL only: not the database file.
        with self.assertRaises(branchdb.PermissionDenied):
            ro.export("agent")
        # Bound to the branch, not its name: a re-created "agent" refuses it.
        c.delete_branch("agent")
        c.create_branch("agent")
        with self.assertRaises(branchdb.Unauthenticated) as cm:
            ro.sql("agent", "SELECT 1")
        self.assertEqual(cm.exception.code, "invalid_token")

    def test_compute_state_and_suspend(self) -> None:
        c = self.c
        c.sql("production", "SELECT 1")
        self.assertTrue(c.compute("production").active)
        s = c.suspend("production")
        self.assertIsInstance(s, branchdb.ComputeState)
        self.assertEqual(s.state, "suspended")
        self.assertEqual(c.sql("production", "SELECT x FROM t").scalar(), 42)
        self.assertTrue(c.compute("production").active)

    def test_export_import_roundtrip(self) -> None:
        c = self.c
        exp = c.export("production")
        self.assertTrue(exp.data.startswith(b"SQLite format 3\x00"))
        self.assertGreater(exp.lsn, 0)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "db.sqlite")
            exp.write(path)
            with sqlite3.connect(path) as db:
                self.assertEqual(db.execute("SELECT x FROM t").fetchall(), [(42,)])
            imported = c.import_database("copy", path)
        self.assertEqual(imported.name, "copy")
        self.assertEqual(c.sql("copy", "SELECT x FROM t").scalar(), 42)
        with self.assertRaises(branchdb.BadRequest) as cm:
            c.import_database("broken", b"not a database" * 100)
        self.assertEqual(cm.exception.code, "invalid_database")


class EphemeralBranches(unittest.TestCase):
    def setUp(self) -> None:
        self.project = unique("eph")
        self.c = admin(self.project)
        self.c.create_project(self.project)
        self.c.sql("production", "CREATE TABLE t(x); INSERT INTO t VALUES (1)")

    def names(self) -> list:
        return [b.name for b in self.c.list_branches()]

    def test_deleted_on_exit(self) -> None:
        with self.c.ephemeral_branch("production", ttl=3600) as b:
            self.assertIsInstance(b, branchdb.BranchHandle)
            self.assertIn(b.name, self.names())
            self.assertIsNotNone(b.info.expires_at)  # the TTL is set server-side
            b.sql("DELETE FROM t")
            self.assertEqual(b.sql("SELECT count(*) FROM t").scalar(), 0)
            self.assertEqual(b.get().parent, "production")
            name = b.name
        self.assertNotIn(name, self.names())
        self.assertEqual(self.c.sql("production", "SELECT count(*) FROM t").scalar(), 1)

    def test_deleted_on_exception(self) -> None:
        class Boom(Exception):
            pass

        name = ""
        with self.assertRaises(Boom):
            with self.c.ephemeral_branch("production", ttl=60, name="tmp/boom") as b:
                name = b.name
                b.sql("INSERT INTO t VALUES (2)")
                raise Boom()
        self.assertEqual(name, "tmp/boom")
        self.assertNotIn(name, self.names())
        # An API error inside the block propagates unchanged too.
        with self.assertRaises(branchdb.BadRequest) as cm:
            with self.c.ephemeral_branch() as b:
                name = b.name
                b.sql("SELEKT nonsense")
        self.assertEqual(cm.exception.code, "sql_error")
        self.assertNotIn(name, self.names())

    def test_block_may_delete_it_itself(self) -> None:
        with self.c.ephemeral_branch("production") as b:
            b.delete()
        self.assertNotIn(b.name, self.names())


class Errors(unittest.TestCase):
    def setUp(self) -> None:
        self.project = unique("err")
        self.c = admin(self.project)
        self.c.create_project(self.project)

    def test_mapping(self) -> None:
        c = self.c
        with self.assertRaises(branchdb.NotFound) as cm:
            c.get_branch("missing")
        e = cm.exception
        self.assertIsInstance(e, branchdb.ApiError)
        self.assertIsInstance(e, branchdb.BranchdbError)
        self.assertEqual((e.status, e.code), (404, "branch_not_found"))
        self.assertIn("missing", e.message)
        self.assertEqual(e.details, {})
        self.assertTrue(e.request_id)
        with self.assertRaises(branchdb.Conflict) as cm:
            c.create_branch("production")
        self.assertEqual(cm.exception.code, "branch_exists")
        with self.assertRaises(branchdb.BadRequest) as cm:
            c.sql("production", "SELECT 1; SELECT * FROM nope")
        self.assertEqual(cm.exception.code, "sql_error")
        self.assertEqual(cm.exception.details.get("statement"), 1)
        with self.assertRaises(branchdb.BadRequest) as cm:
            c.create_branch("bad//name")
        self.assertEqual(cm.exception.code, "invalid_branch_name")
        with self.assertRaises(branchdb.PermissionDenied) as cm:
            c.sql("production", "PRAGMA journal_mode=delete")
        self.assertEqual(cm.exception.code, "sql_forbidden")
        with self.assertRaises(branchdb.NotFound):
            c.request("GET", "/v1/no/such/route")
        self.assertIn("branchdb_", c.metrics())
        with self.assertRaises(branchdb.UnexpectedResponse):  # Prometheus text, not JSON
            c.request("GET", "/metrics").json()

    def test_authentication_errors(self) -> None:
        bogus = branchdb.Client(SERVER.url, token="not-a-token", project=self.project,
                                trust_env=False)
        with self.assertRaises(branchdb.Unauthenticated) as cm:
            bogus.list_branches()
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "invalid_token"))
        wrong = branchdb.Client(SERVER.url, client_id="bdb_00000000000000000000",
                                client_secret="wrong", trust_env=False)
        with self.assertRaises(branchdb.Unauthenticated) as cm:
            wrong.list_projects()
        self.assertEqual(cm.exception.code, "invalid_client")
        anonymous = branchdb.Client(SERVER.url, trust_env=False, env={})
        self.assertEqual(anonymous.health()["status"], "ok")
        with self.assertRaises(branchdb.Unauthenticated):
            anonymous.list_projects()

    def test_scoped_client(self) -> None:
        c = self.c
        reader = c.create_client(["branches:read", "sql:read"], name="reader",
                                 projects=[self.project])
        self.assertTrue(reader.client_secret)
        self.assertNotIn(reader.client_secret, repr(reader))
        self.assertEqual(reader.scopes, ["branches:read", "sql:read"])
        self.assertIsNotNone(branchdb.parse_time(reader.created_at).tzinfo)  # RFC 3339
        self.assertIn(reader.client_id, [x.client_id for x in c.list_clients()])
        r = branchdb.Client(SERVER.url, client_id=reader.client_id,
                            client_secret=reader.client_secret, project=self.project,
                            trust_env=False)
        self.assertEqual([b.name for b in r.list_branches()], ["production"])
        with self.assertRaises(branchdb.PermissionDenied) as cm:
            r.create_branch("nope")
        self.assertEqual(cm.exception.code, "insufficient_scope")
        with self.assertRaises(branchdb.PermissionDenied):
            r.sql("production", "CREATE TABLE x(y)")
        c.delete_client(reader.client_id)
        with self.assertRaises(branchdb.Unauthenticated):
            r.list_branches()

    def test_branch_scoped_client_and_writes_policy(self) -> None:
        c = self.c
        agent = c.create_client("branches:write sql:write", name="agent",
                                projects=[self.project], branches=["agent/*"],
                                max_branch_ttl_seconds=3600)
        self.assertEqual((agent.branches, agent.max_branch_ttl_seconds), (["agent/*"], 3600))
        listed = [x for x in c.list_clients() if x.client_id == agent.client_id][0]
        self.assertEqual(listed.branches, ["agent/*"])
        a = branchdb.Client(SERVER.url, client_id=agent.client_id,
                            client_secret=agent.client_secret, project=self.project,
                            trust_env=False)
        b = a.create_branch("agent/x")
        self.assertIsNotNone(b.expires_at)  # the client's maximum TTL
        self.assertEqual([x.name for x in a.list_branches()], ["agent/x"])
        with self.assertRaises(branchdb.PermissionDenied) as cm:
            a.sql("production", "SELECT 1")
        self.assertEqual(cm.exception.code, "branch_not_allowed")
        self.assertEqual(cm.exception.details.get("branches"), ["agent/*"])
        with self.assertRaises(branchdb.PermissionDenied) as cm:
            a.create_branch("agent/long", ttl=7200)
        self.assertEqual(cm.exception.code, "branch_ttl_not_allowed")
        # The writes policy: the agent may raise it on its branch, not lower it.
        self.assertEqual(a.update_branch("agent/x", writes="promote_only").writes, "promote_only")
        with self.assertRaises(branchdb.PermissionDenied) as cm:
            a.sql("agent/x", "CREATE TABLE t(a)")
        self.assertEqual(cm.exception.code, "branch_promote_only")
        with self.assertRaises(branchdb.PermissionDenied) as cm:
            a.update_branch("agent/x", writes="any")
        self.assertEqual(cm.exception.code, "branch_protected")
        self.assertEqual(c.update_branch("agent/x", writes="any").writes, "any")

    def test_network_error(self) -> None:
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        c = branchdb.Client(f"http://127.0.0.1:{port}", token="t", trust_env=False,
                            max_retries=2, backoff=0.01)
        with self.assertRaises(branchdb.NetworkError) as cm:
            c.list_projects()
        self.assertNotIsInstance(cm.exception, branchdb.ApiError)
        self.assertIsInstance(cm.exception, branchdb.BranchdbError)
        self.assertEqual(cm.exception.attempts, 3)  # a GET: retried max_retries times
        with self.assertRaises(branchdb.NetworkError) as cm:
            c.create_client("sql:read")  # not idempotent: never retried
        self.assertEqual(cm.exception.attempts, 1)


class Construction(unittest.TestCase):
    def test_from_env(self) -> None:
        import json
        with open(os.path.join(SERVER.data_dir, "admin-credentials.json")) as f:
            creds = json.load(f)
        env = {"BRANCHDB_URL": SERVER.url, "BRANCHDB_PROJECT": "envproj",
               "BRANCHDB_CLIENT_ID": creds["client_id"],
               "BRANCHDB_CLIENT_SECRET": creds["client_secret"]}
        c = branchdb.Client.from_env(env, trust_env=False)
        self.assertEqual(c.project, "envproj")
        c.create_project("envproj")
        self.assertEqual(c.get_project().name, "envproj")
        tok = c.token_source.last_token
        via_token = branchdb.Client.from_env({"BRANCHDB_URL": SERVER.url,
                                              "BRANCHDB_TOKEN": tok.access_token,
                                              "BRANCHDB_PROJECT": "envproj"}, trust_env=False)
        self.assertEqual(via_token.list_branches()[0].name, "production")
        with self.assertRaises(branchdb.ConfigurationError):
            branchdb.Client.from_env({})
        with self.assertRaises(branchdb.ConfigurationError):
            branchdb.Client(SERVER.url, client_id="only-id", env={})
        with self.assertRaises(branchdb.ConfigurationError):
            branchdb.Client(SERVER.url, token="x", env={}).list_branches()  # no project

    def test_from_data_dir_uses_token_url(self) -> None:
        c = branchdb.Client.from_data_dir(SERVER.data_dir, trust_env=False)
        self.assertEqual(c.url, SERVER.url)
        self.assertTrue(c.list_clients())


class QuotasUsageAudit(unittest.TestCase):
    def setUp(self) -> None:
        self.project = unique("guard")
        self.c = admin(self.project)
        self.c.create_project(self.project)

    def test_quota_usage_and_audit(self) -> None:
        p = self.c.update_project(quotas={"max_branches": 2}, default_branch_ttl_seconds=600)
        self.assertEqual(p.raw["quotas"]["max_branches"], 2)
        self.assertEqual(p.raw["default_branch_ttl_seconds"], 600)
        self.c.create_branch("a")
        with self.assertRaises(branchdb.RateLimited) as cm:
            self.c.create_branch("b")
        self.assertEqual(cm.exception.code, "quota_exceeded")
        self.assertEqual(cm.exception.details["quota"], "max_branches")
        self.assertEqual(cm.exception.details["limit"], 2)
        self.assertEqual(cm.exception.details["current"], 2)
        self.c.update_project(quotas={"max_branches": None}, default_branch_ttl_seconds=None)
        self.c.create_branch("b")
        self.c.sql("b", "CREATE TABLE t(a)")
        u = self.c.usage()
        self.assertIsInstance(u, branchdb.Usage)
        self.assertEqual(u.branches, 3)
        self.assertEqual(u.commits, 1)
        self.assertIsNone(u.quotas["max_branches"])
        events = list(self.c.iter_audit(page_size=2))
        self.assertEqual([e.operation for e in events],
                         ["project.create", "project.update", "branch.create", "branch.create",
                          "project.update", "branch.create"])
        self.assertEqual(events[3].status, 429)
        self.assertEqual(events[3].code, "quota_exceeded")
        self.assertEqual(events[3].branch, "b")
        agent = self.c.create_client(["sql:read"], name="q", quotas={"max_commits_per_minute": 5})
        self.assertEqual(agent.quotas["max_commits_per_minute"], 5)
        created = [e for e in self.c.iter_audit(server=True) if e.operation == "client.create"]
        self.assertEqual(created[-1].details["target_client_id"], agent.client_id)


if __name__ == "__main__":
    unittest.main()
