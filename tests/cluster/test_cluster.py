"""Nodes of a cluster against real processes: one etcd (scripts/etcd.sh) and
three `branchdb serve` on 127.0.0.1, each with its own data directory.

Every wait polls with a generous bound; nothing asserts how fast anything is.
Each project's data lives on its home node's disk (there is no shared storage
without the object-storage tier), so a dead owner's projects are unavailable
until it returns: these tests check that, not a takeover by another node.

Environment:
  BRANCHDB_TEST_SERVER  the branchdb binary (required)
  BRANCHDB_SOURCE_DIR   the source tree (for scripts/etcd.sh)
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple

SOURCE_DIR = os.environ.get("BRANCHDB_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
ETCD_SH = os.path.join(SOURCE_DIR, "scripts", "etcd.sh")
_LISTENING = re.compile(r"event=listening address=(https?://[^\s]+)")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LEASE_TTL = 2  # seconds: the nodes' lease (the smallest etcd grants)
BOUND = 60.0   # seconds: the generous bound of every wait
# kill -9 cycles of test_3: 1 in the default run, more from `make cluster-test`.
CYCLES = int(os.environ.get("BRANCHDB_CLUSTER_CYCLES", "1"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(what: str, check: Callable[[], Any]) -> Any:
    """check()'s first truthy value, polling for up to BOUND seconds."""
    deadline = time.monotonic() + BOUND
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {BOUND} s: {what}")
        time.sleep(0.1)


def call(method: str, url: str, token: str = "", body: Any = None,
         timeout: float = 30) -> Tuple[int, Dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text) if text else {}
        except ValueError:
            return e.code, {"raw": text}


class Etcd:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "etcd")
        self.endpoint = ""

    def start(self) -> None:
        port = free_port()
        out = subprocess.run([ETCD_SH, "start", self.dir, str(port)], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"etcd.sh start failed:\n{out.stdout}{out.stderr}")
        self.endpoint = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        subprocess.run([ETCD_SH, "stop", self.dir], stdin=subprocess.DEVNULL, timeout=60)

    def _post(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        req = urllib.request.Request(self.endpoint + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with _OPENER.open(req, timeout=10) as r:
            return json.loads(r.read().decode())

    def take_owner(self, project: str, node: str, url: str, epoch: int, ttl: int) -> None:
        """Writes PROJECT's owner key as another node's takeover would (epoch,
        under a lease of its own that lapses after ttl seconds)."""
        b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
        lease = self._post("/v3/lease/grant", {"TTL": str(ttl)})["ID"]
        owner = json.dumps({"node": node, "url": url, "epoch": epoch})
        self._post("/v3/kv/txn", {"success": [
            {"request_put": {"key": b64(f"/branchdb/owners/{project}"), "value": b64(owner),
                             "lease": lease}},
            {"request_put": {"key": b64(f"/branchdb/epochs/{project}"), "value": b64(str(epoch))}},
        ]})


class Node:
    """One `branchdb serve` of the cluster; its data directory outlives restarts."""

    def __init__(self, root: str, name: str, etcd: Etcd) -> None:
        self.name = name
        self.dir = os.path.join(root, name)
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "server.log")
        os.makedirs(self.dir, exist_ok=True)
        self.etcd = etcd
        self.proc: Optional[subprocess.Popen] = None
        self.port = free_port()  # kept across restarts: the advertised URL stays
        self.url = ""
        self.extra_env: Dict[str, str] = {}  # e.g. [object_storage] (test_takeover.py)

    def start(self) -> "Node":
        env = dict(os.environ)
        env.update({"BRANCHDB_ETCD_ENDPOINTS": self.etcd.endpoint,
                    "BRANCHDB_NODE_NAME": self.name,
                    "BRANCHDB_CLUSTER_LEASE_TTL_SECONDS": str(LEASE_TTL)})
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [os.environ["BRANCHDB_TEST_SERVER"], "serve", "--data-dir", self.data_dir,
                 "--listen", f"127.0.0.1:{self.port}", "--log-level", "info"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.url = f"http://127.0.0.1:{self.port}"

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with _OPENER.open(self.url + "/healthz", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        eventually(f"{self.name} answers /healthz", up)
        return self

    def log(self) -> str:
        with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.root = tempfile.mkdtemp(prefix="bdb-cluster-")
        cls.etcd = Etcd(cls.root)
        cls.etcd.start()
        cls.nodes = []
        try:
            # One at a time: the first creates the cluster's admin client.
            for name in ("n1", "n2", "n3"):
                cls.nodes.append(Node(cls.root, name, cls.etcd).start())
            cls.token = cls.fetch_token()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        for node in cls.nodes:
            node.stop()
        cls.etcd.stop()
        if os.environ.get("BRANCHDB_KEEP_TEST_DIRS"):
            print("kept", cls.root)
        else:
            shutil.rmtree(cls.root, ignore_errors=True)

    @classmethod
    def fetch_token(cls) -> str:
        with open(os.path.join(cls.nodes[0].data_dir, "admin-credentials.json")) as f:
            creds = json.load(f)
        pair = (urllib.parse.quote(creds["client_id"], safe="") + ":" +
                urllib.parse.quote(creds["client_secret"], safe="")).encode()
        # From n2: the admin client n1 created is the cluster's.
        req = urllib.request.Request(
            cls.nodes[1].url + "/oauth/token", data=b"grant_type=client_credentials",
            headers={"Authorization": "Basic " + base64.b64encode(pair).decode(),
                     "Content-Type": "application/x-www-form-urlencoded"})
        with _OPENER.open(req, timeout=30) as r:
            return json.loads(r.read().decode())["access_token"]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def cluster(self, via: str) -> Dict[str, Any]:
        status, body = call("GET", self.node(via).url + "/v1/cluster", self.token)
        self.assertEqual(status, 200, body)
        return body

    def owner(self, via: str, project: str) -> Optional[Dict[str, Any]]:
        return next((o for o in self.cluster(via)["owners"] if o["project"] == project), None)

    def sql(self, via: str, project: str, sql: str) -> Tuple[int, Dict[str, Any]]:
        return call("POST", f"{self.node(via).url}/v1/projects/{project}/branches/production/sql",
                    self.token, {"sql": sql})

    def create(self, via: str, project: str) -> None:
        status, body = call("POST", self.node(via).url + "/v1/projects", self.token,
                            {"name": project})
        self.assertEqual(status, 201, body)

    def test_1_nodes_register_and_share_the_auth_state(self) -> None:
        for via in ("n1", "n2", "n3"):
            body = self.cluster(via)
            self.assertTrue(body["enabled"])
            self.assertEqual(body["node"], via)
            self.assertTrue(body["lease_held"])
            self.assertEqual({n["name"]: n["url"] for n in body["nodes"]},
                             {n.name: n.url for n in self.nodes})
            self.assertTrue(all(n["alive"] for n in body["nodes"]))

        def metrics() -> str:
            with _OPENER.open(self.node("n1").url + "/metrics", timeout=30) as r:
                return r.read().decode()
        eventually("n1's /metrics counts 3 nodes", lambda: re.search(
            r"^branchdb_cluster_nodes(\{\})? 3(\.0*)?$", metrics(), re.M))
        self.assertRegex(metrics(), re.compile(r"^branchdb_cluster_lease_held(\{\})? 1", re.M))

    def test_1b_a_token_revoked_on_one_node_is_refused_by_every_node(self) -> None:
        token = self.fetch_token()  # issued by n2
        for via in ("n1", "n3"):
            self.assertEqual(call("GET", self.node(via).url + "/v1/cluster", token)[0], 200)
        with open(os.path.join(self.nodes[0].data_dir, "admin-credentials.json")) as f:
            creds = json.load(f)
        pair = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
        req = urllib.request.Request(
            self.node("n3").url + "/oauth/revoke",
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"Authorization": "Basic " + pair,
                     "Content-Type": "application/x-www-form-urlencoded"})
        with _OPENER.open(req, timeout=30) as r:
            self.assertEqual(r.status, 200)
        for via in ("n1", "n2", "n3"):
            eventually(f"{via} refuses the revoked token", lambda: call(
                "GET", self.node(via).url + "/v1/cluster", token)[0] == 401)

    def listed(self, via: str) -> Dict[str, Any]:
        status, body = call("GET", self.node(via).url + "/v1/projects", self.token)
        self.assertEqual(status, 200, body)
        return body

    def test_2_a_request_to_another_node_is_forwarded_to_the_owner(self) -> None:
        self.create("n2", "shop")
        self.create("n3", "cart")
        # Every node lists the whole cluster's projects, each once.
        for via in ("n1", "n2", "n3"):
            body = self.listed(via)
            self.assertNotIn("unreachable_nodes", body)
            names = [p["name"] for p in body["projects"]]
            self.assertEqual(sorted(set(names)), names, body)
            self.assertTrue({"shop", "cart"} <= set(names), body)
        owner = self.owner("n1", "shop")
        self.assertEqual((owner["node"], owner["epoch"]), ("n2", 1))
        # The name is the cluster's: no other node may create it again.
        status, body = call("POST", self.node("n3").url + "/v1/projects", self.token,
                            {"name": "shop"})
        self.assertEqual(status, 409, body)
        # Writes and reads through every node reach the one copy on n2.
        for i, via in enumerate(("n3", "n1", "n2")):
            sql = "CREATE TABLE t(v)" if i == 0 else f"INSERT INTO t VALUES ({i})"
            status, body = self.sql(via, "shop", sql)
            self.assertEqual(status, 200, body)
        for via in ("n1", "n2", "n3"):
            status, body = self.sql(via, "shop", "SELECT count(*) FROM t")
            self.assertEqual(status, 200, body)
            self.assertEqual(body["results"][0]["rows"], [[2]])
        # Streamed bodies: an export read through n1, imported through n3.
        branch = self.node("n1").url + "/v1/projects/shop/branches/production/export"
        req = urllib.request.Request(branch, headers={"Authorization": "Bearer " + self.token})
        with _OPENER.open(req, timeout=30) as r:
            image = r.read()
        self.assertTrue(image.startswith(b"SQLite format 3\x00"))
        req = urllib.request.Request(
            self.node("n3").url + "/v1/projects/shop/import?branch=copy", data=image,
            headers={"Authorization": "Bearer " + self.token,
                     "Content-Type": "application/vnd.sqlite3"})
        with _OPENER.open(req, timeout=30) as r:
            self.assertEqual(r.status, 201)
        status, body = call("POST", self.node("n1").url +
                            "/v1/projects/shop/branches/copy/sql", self.token,
                            {"sql": "SELECT count(*) FROM t"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["results"][0]["rows"], [[2]])

    def test_3_kill_9_of_the_owner_under_load_its_projects_wait_and_nothing_acknowledged_is_lost(
            self) -> None:
        self.create("n2", "crm")
        self.assertEqual(self.sql("n1", "crm", "CREATE TABLE t(v)")[0], 200)
        n2 = self.node("n2")
        acknowledged = set()
        for cycle in range(CYCLES):
            # A writer inserts through n3 (forwarded to n2) all along.
            stop = threading.Event()

            def write(first: int = cycle * 100000) -> None:
                i = first
                while not stop.is_set():
                    try:
                        if self.sql("n3", "crm", f"INSERT INTO t VALUES ({i})")[0] == 200:
                            acknowledged.add(i)
                    except OSError:
                        pass  # a connection cut by the kill: not acknowledged
                    i += 1
            writer = threading.Thread(target=write)
            writer.start()
            before = len(acknowledged)
            eventually("writes are acknowledged", lambda: len(acknowledged) >= before + 5)
            n2.kill(signal.SIGKILL)
            # Its lease lapses: n2 leaves the live nodes, crm is unowned, and
            # the other nodes refuse it (owner_unreachable while a node's
            # polled view still names n2, then project_unavailable).
            eventually("n2's projects are unowned", lambda: any(
                u == {"project": "crm", "home": "n2"}
                for u in self.cluster("n1")["unowned_projects"]))
            nodes = {n["name"]: n["alive"] for n in self.cluster("n3")["nodes"]}
            self.assertFalse(nodes["n2"])
            status, body = self.sql("n1", "crm", "SELECT count(*) FROM t")
            self.assertEqual(status, 503, body)
            self.assertIn(body["error"]["code"], ("project_unavailable", "owner_unreachable"))
            eventually("n1 says crm is unavailable", lambda: self.sql("n1", "crm", "SELECT 1")[1]
                       .get("error", {}).get("code") == "project_unavailable")
            # Back on its disk: it takes its projects again, with the next epoch.
            n2.start()
            owner = eventually("crm is owned again", lambda: self.owner("n1", "crm"))
            self.assertEqual((owner["node"], owner["epoch"]), ("n2", cycle + 2))
            before = len(acknowledged)
            eventually("writes go on", lambda: len(acknowledged) >= before + 5)
            stop.set()
            writer.join(timeout=BOUND)
            # Every acknowledged commit is there (an unacknowledged one may be too).
            status, body = self.sql("n1", "crm", "SELECT v FROM t")
            self.assertEqual(status, 200, body)
            present = {row[0] for row in body["results"][0]["rows"]}
            self.assertEqual(acknowledged - present, set())

    def test_3b_a_listing_names_the_live_node_that_did_not_answer(self) -> None:
        self.create("n3", "paused-list")
        n3 = self.node("n3")
        n3.kill(signal.SIGSTOP)  # alive to etcd for a lease TTL, deaf to requests
        try:
            body = self.listed("n1")
        finally:
            n3.kill(signal.SIGCONT)
        if "unreachable_nodes" in body:  # n3's lease may have lapsed first: then not asked
            self.assertEqual(body["unreachable_nodes"], ["n3"], body)
            self.assertNotIn("paused-list", [p["name"] for p in body["projects"]])
        # Resumed, n3 registers again (its lease lapsed) and is asked again.
        eventually("n1 lists n3's projects again", lambda: "paused-list" in [
            p["name"] for p in self.listed("n1")["projects"]])

    def test_4_a_paused_owner_resumed_after_losing_its_lease_cannot_write(self) -> None:
        self.create("n3", "ledger")
        self.assertEqual(self.sql("n3", "ledger", "CREATE TABLE t(v)")[0], 200)
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
        # A read through n1 is forwarded to the paused owner and waits for it,
        # until n1 sees the lease lapse: then 503 owner_lost, not a hang for
        # the forward's read timeout (300 s).
        forwarded: Dict[str, Any] = {}
        def forwarded_read() -> None:
            forwarded["status"], forwarded["body"] = call(
                "POST", self.node("n1").url + "/v1/projects/ledger/branches/production/sql",
                self.token, {"sql": "SELECT count(*) FROM t"}, timeout=BOUND * 2)
        reader = threading.Thread(target=forwarded_read)
        reader.start()
        eventually("n3's lease lapsed", lambda: any(
            u["project"] == "ledger" for u in self.cluster("n1")["unowned_projects"]))
        reader.join(timeout=BOUND)
        self.assertFalse(reader.is_alive(), "the forwarded read still waits for the paused owner")
        self.assertEqual(forwarded["status"], 503, forwarded)
        self.assertIn(forwarded["body"]["error"]["code"], ("owner_lost", "project_unavailable"),
                      forwarded)
        # Another node takes the project meanwhile (epoch 2), as a takeover
        # from shared storage would.
        n1 = self.node("n1")
        # Held long enough (6 s) that the resumed n3 cannot take the project
        # back before it answers the pending write.
        self.etcd.take_owner("ledger", "n1", n1.url, 2, ttl=6)
        n3.kill(signal.SIGCONT)
        writer.join(timeout=BOUND)
        self.assertFalse(writer.is_alive())
        self.assertEqual(answer["status"], 503, answer)
        self.assertIn(answer["body"]["error"]["code"],
                      ("lease_lost", "not_owner", "project_unavailable", "owner_moved"))
        # Once the other owner's lease lapses, n3 takes its project back
        # (epoch 3): the refused write is not there, the one before it is.
        def readable() -> Optional[Dict[str, Any]]:
            status, body = self.sql("n2", "ledger", "SELECT v FROM t ORDER BY rowid")
            return body if status == 200 else None
        body = eventually("ledger is served again", readable)
        self.assertEqual(body["results"][0]["rows"], [["before"]])
        owner = self.owner("n2", "ledger")
        self.assertEqual((owner["node"], owner["epoch"]), ("n3", 3))


if __name__ == "__main__":
    unittest.main()
