"""Takeover of a dead owner's projects from the bucket (docs/cluster.md,
"Takeover" and "Fencing"), against real processes: one etcd
(scripts/etcd.sh), one single-node Ceph RADOS Gateway (scripts/ceph-s3.sh)
and three `branchdb serve` on 127.0.0.1 with [cluster] and [object_storage]
in `remote` durability.

Every wait polls with a generous bound; nothing asserts how fast anything
is. The takeover times measured are printed (`takeover_seconds=`).

Environment: as test_cluster.py.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request
from typing import Any, Dict, Optional, Set, Tuple

from test_cluster import (_OPENER, BOUND, SOURCE_DIR, Etcd, Node, call, eventually,
                          free_port)

CEPH_SH = os.path.join(SOURCE_DIR, "scripts", "ceph-s3.sh")


class Ceph:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "ceph")
        self.env: Dict[str, str] = {}

    def start(self) -> None:
        port = free_port()
        out = subprocess.run([CEPH_SH, "start", self.dir, str(port)], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"ceph-s3.sh start failed:\n{out.stdout}{out.stderr}")
        with open(os.path.join(self.dir, "s3.env")) as f:
            conf = dict(line.strip().split("=", 1) for line in f if "=" in line)
        self.env = {"BRANCHDB_S3_ENDPOINT": conf["endpoint"],
                    "BRANCHDB_S3_ACCESS_KEY_ID": conf["access_key_id"],
                    "BRANCHDB_S3_SECRET_ACCESS_KEY": conf["secret_access_key"],
                    "BRANCHDB_S3_BUCKET": "takeover",
                    "BRANCHDB_S3_PREFIX": "cluster",
                    "BRANCHDB_S3_UPLOAD_INTERVAL_MS": "200",
                    "BRANCHDB_DURABILITY": "remote"}

    def stop(self) -> None:
        subprocess.run([CEPH_SH, "stop", self.dir], stdin=subprocess.DEVNULL, timeout=120)


def s3_request(env: Dict[str, str], method: str, key: str, body: bytes = b"") -> bytes:
    """One path-style request to the fixture's bucket, signed with AWS
    Signature V4 (unsigned payload), as an old owner's uploader sends it."""
    endpoint = env["BRANCHDB_S3_ENDPOINT"].rstrip("/")
    host = endpoint.split("://", 1)[1]
    path = "/" + env["BRANCHDB_S3_BUCKET"] + "/" + key
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    region = env.get("BRANCHDB_S3_REGION", "us-east-1")
    headers = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)),
                           "", signed, "UNSIGNED-PAYLOAD"])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + env["BRANCHDB_S3_SECRET_ACCESS_KEY"]).encode()
    for part in (day, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(endpoint + path, data=body if method == "PUT" else None,
                                 method=method)
    for name, value in headers.items():
        if name != "host":
            req.add_header(name, value)
    req.add_header("Authorization",
                   f"AWS4-HMAC-SHA256 Credential={env['BRANCHDB_S3_ACCESS_KEY_ID']}/{scope}, "
                   f"SignedHeaders={signed}, Signature={signature}")
    with _OPENER.open(req, timeout=30) as r:
        return r.read()


class TakeoverTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.root = tempfile.mkdtemp(prefix="bdb-takeover-")
        cls.ceph = Ceph(cls.root)
        cls.etcd = Etcd(cls.root)
        cls.nodes = []
        try:
            cls.ceph.start()
            cls.etcd.start()
            for name in ("n1", "n2", "n3"):  # one at a time: n1 makes the admin client
                node = Node(cls.root, name, cls.etcd)
                node.extra_env = cls.ceph.env
                cls.nodes.append(node.start())
            from test_cluster import ClusterTest  # noqa: F401 (its token helper only)
            cls.token = ClusterTest.fetch_token.__func__(cls)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        for node in cls.nodes:
            node.stop()
        cls.etcd.stop()
        cls.ceph.stop()
        if os.environ.get("BRANCHDB_KEEP_TEST_DIRS"):
            print("kept", cls.root)
        else:
            shutil.rmtree(cls.root, ignore_errors=True)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def owner(self, via: str, project: str) -> Optional[Dict[str, Any]]:
        status, body = call("GET", self.node(via).url + "/v1/cluster", self.token)
        self.assertEqual(status, 200, body)
        return next((o for o in body["owners"] if o["project"] == project), None)

    def sql(self, via: str, project: str, sql: str) -> Tuple[int, Dict[str, Any]]:
        return call("POST", f"{self.node(via).url}/v1/projects/{project}/branches/production/sql",
                    self.token, {"sql": sql})

    def rows(self, via: str, project: str) -> Optional[Set[Any]]:
        try:
            # Short: forwarded to a paused owner, a read waits in its backlog.
            status, body = call(
                "POST", f"{self.node(via).url}/v1/projects/{project}/branches/production/sql",
                self.token, {"sql": "SELECT v FROM t"}, timeout=5)
        except OSError:
            return None
        if status != 200:
            return None
        return {row[0] for row in body["results"][0]["rows"]}

    def catalog_uploads(self, via: str) -> float:
        with _OPENER.open(self.node(via).url + "/metrics", timeout=30) as r:
            text = r.read().decode()
        m = re.search(r"^branchdb_s3_catalog_uploads_total(?:\{\})? ([0-9.e+]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def create(self, via: str, project: str) -> None:
        """Creates project on `via` with a table t, and waits until its catalog
        snapshot is in the bucket (before it, no node can restore it)."""
        before = self.catalog_uploads(via)
        status, body = call("POST", self.node(via).url + "/v1/projects", self.token,
                            {"name": project})
        self.assertEqual(status, 201, body)
        status, body = self.sql(via, project, "CREATE TABLE t(v)")
        self.assertEqual(status, 200, body)
        eventually(f"{project}'s catalog is in the bucket",
                   lambda: self.catalog_uploads(via) > before)

    def wait_taken_over(self, via: str, project: str, dead: str, epoch: int) -> float:
        """Seconds until a read of project through `via` is answered (by a new owner)."""
        started = time.monotonic()
        eventually(f"{project} is served again", lambda: self.rows(via, project) is not None)
        seconds = time.monotonic() - started
        owner = self.owner(via, project)
        self.assertIsNotNone(owner)
        self.assertNotEqual(owner["node"], dead)
        self.assertEqual(owner["epoch"], epoch)
        print(f"takeover_seconds={seconds:.2f} project={project} to={owner['node']}", flush=True)
        return seconds

    def test_1_kill_9_of_the_owner_under_load_another_node_serves_every_acknowledged_commit(
            self) -> None:
        self.create("n2", "crm")
        acknowledged: Set[int] = set()
        stop = threading.Event()

        def write() -> None:
            i = 0
            while not stop.is_set():
                try:
                    if self.sql("n3", "crm", f"INSERT INTO t VALUES ({i})")[0] == 200:
                        acknowledged.add(i)
                except OSError:
                    pass  # a connection cut by the kill: not acknowledged
                i += 1
        writer = threading.Thread(target=write)
        writer.start()
        try:
            eventually("writes are acknowledged", lambda: len(acknowledged) >= 5)
            n2 = self.node("n2")
            n2.kill(signal.SIGKILL)
            self.wait_taken_over("n1", "crm", "n2", 2)
            before = len(acknowledged)
            eventually("writes go on", lambda: len(acknowledged) >= before + 5)
        finally:
            stop.set()
            writer.join(timeout=BOUND)
        present = self.rows("n1", "crm")
        self.assertEqual(acknowledged - present, set())
        # The old home comes back with its stale copy on disk: it does not
        # take the project back, and serves the new owner's state (forwarded).
        n2.start()
        self.assertEqual(eventually("n2 answers", lambda: self.rows("n2", "crm")), present)
        self.assertNotEqual(self.owner("n2", "crm")["node"], "n2")

    def test_2_a_paused_owner_resumed_after_the_takeover_cannot_make_a_write_visible(
            self) -> None:
        self.create("n3", "ledger")
        self.assertEqual(self.sql("n3", "ledger", "INSERT INTO t VALUES ('before')")[0], 200)
        n3 = self.node("n3")
        n3.kill(signal.SIGSTOP)
        # A write sent to the paused owner waits in its socket's backlog.
        answer: Dict[str, Any] = {}

        def write() -> None:
            answer["status"], answer["body"] = self.sql("n3", "ledger",
                                                        "INSERT INTO t VALUES ('stale')")
        writer = threading.Thread(target=write)
        writer.start()
        try:
            self.wait_taken_over("n1", "ledger", "n3", 2)
            self.assertEqual(self.rows("n1", "ledger"), {"before"})
        finally:
            n3.kill(signal.SIGCONT)
        writer.join(timeout=BOUND)
        self.assertFalse(writer.is_alive())
        if answer["status"] == 200:  # forwarded to the new owner: a real write
            expected = {"before", "stale"}
        else:
            self.assertEqual(answer["status"], 503, answer)
            self.assertIn(answer["body"]["error"]["code"],
                          ("lease_lost", "not_owner", "owner_moved", "project_unavailable",
                           "remote_durability_unavailable"))
            expected = {"before"}
        # The resumed node's next writes reach the new owner.
        eventually("a write through n3 is acknowledged", lambda: self.sql(
            "n3", "ledger", "INSERT INTO t VALUES ('after')")[0] == 200)
        expected.add("after")
        self.assertEqual(self.rows("n1", "ledger"), expected)
        # A fresh restore from the bucket: the new owner dies, a third node
        # takes the project over from the bucket alone (n3 may be it: its
        # stale copy is replaced, never mixed).
        owner = self.owner("n1", "ledger")["node"]
        self.node(owner).kill(signal.SIGKILL)
        via = next(n for n in ("n1", "n2", "n3") if n != owner)
        self.wait_taken_over(via, "ledger", owner, 3)
        self.assertEqual(self.rows(via, "ledger"), expected)
        self.node(owner).start()

    def test_3_an_old_epochs_upload_that_lands_after_the_takeover_is_never_read(self) -> None:
        """The window fencing by key closes (docs/cluster.md, "Fencing"): an
        upload of the old owner that passed its ownership check, then paused
        past its lease, reaches the bucket after the takeover. Simulated by
        writing it straight into the bucket under the old epoch's keys: a
        fork of the tail (its sealed copy and a chunk where the new owner
        went on), and a catalog snapshot after the one the new owner took. A
        fresh restore reads the new owner's history and catalog only."""
        self.create("n1", "audit")
        self.assertEqual(self.sql("n1", "audit", "INSERT INTO t VALUES ('a')")[0], 200)
        n1 = self.node("n1")
        with sqlite3.connect(os.path.join(n1.data_dir, "catalog.db")) as db:
            project_id = db.execute("SELECT id FROM projects WHERE name = 'audit'").fetchone()[0]
        n1.kill(signal.SIGKILL)
        self.wait_taken_over("n2", "audit", "n1", 2)
        owner = self.owner("n2", "audit")["node"]
        self.assertEqual(self.sql(owner, "audit", "INSERT INTO t VALUES ('b')")[0], 200)
        base = f"{self.ceph.env['BRANCHDB_S3_PREFIX']}/{project_id}/"
        fence = json.loads(s3_request(self.ceph.env, "GET", base + "epochs/%016d" % 2))
        tail, offset = fence["tail_segment"], fence["tail_offset"]
        self.assertTrue(tail, fence)
        # Epoch 1's late uploads: its sealed copy of the tail segment (its own
        # bytes and then others), and a chunk at the offset the new owner's
        # chunks start from.
        with open(os.path.join(n1.data_dir, "projects", project_id, tail), "rb") as f:
            forked = f.read()[:offset] + b"stale" * 4096
        old = base + "e/%016d/" % 1
        s3_request(self.ceph.env, "PUT", old + tail, forked)
        s3_request(self.ceph.env, "PUT", old + "tail/%s/%016d" % (tail, offset), b"stale" * 4096)
        # And its late catalog snapshot: the version after the one the new
        # owner restored from (its fence names it), with another restore window.
        self.assertEqual(fence["catalog_epoch"], 1, fence)
        version = fence["catalog_version"]
        snapshot = os.path.join(self.root, "late-catalog.db")
        with open(snapshot, "wb") as f:
            f.write(s3_request(self.ceph.env, "GET", old + "catalog/%016d.db" % version))
        with sqlite3.connect(snapshot) as db:
            db.execute("UPDATE projects SET restore_window_micros = 5 * 3600 * 1000000")
        with open(snapshot, "rb") as f:
            s3_request(self.ceph.env, "PUT", old + "catalog/%016d.db" % (version + 1), f.read())
        # A fresh restore: the new owner dies, the third node takes the
        # project over from the bucket alone.
        self.node(owner).kill(signal.SIGKILL)
        via = next(n for n in ("n1", "n2", "n3") if n not in ("n1", owner))
        try:
            self.wait_taken_over(via, "audit", owner, 3)
            self.assertEqual(self.rows(via, "audit"), {"a", "b"})
            status, project = call("GET", f"{self.node(via).url}/v1/projects/audit", self.token)
            self.assertEqual(status, 200, project)
            self.assertNotEqual(project["restore_window_seconds"], 5 * 3600, project)
            self.assertRegex(self.node(via).log(),
                             f"event=s3_restore_fenced_off project_id={project_id} objects=2")
        finally:
            n1.start()
            self.node(owner).start()


if __name__ == "__main__":
    unittest.main()
