"""The SDK's transport against a real server: Idempotency-Key reuse and replay,
retries after lost responses and 503s (faults injected by a proxy in front of
the server), token refresh before expiry and after revocation."""

from __future__ import annotations

import base64
import json
import os
import unittest
import urllib.parse
import urllib.request
import uuid

import bdb_server  # puts the SDK on sys.path
from fault_proxy import FaultProxy

import branchdb

SERVER: bdb_server.ServerProcess
PROXY: FaultProxy
CREDS: dict


def setUpModule() -> None:
    global SERVER, PROXY, CREDS
    # The shortest token lifetime the server accepts, so tokens say expires_in=60.
    SERVER = bdb_server.ServerProcess(env={"BRANCHDB_TOKEN_LIFETIME_SECONDS": "60"}).start()
    PROXY = FaultProxy(SERVER.url)
    with open(os.path.join(SERVER.data_dir, "admin-credentials.json")) as f:
        CREDS = json.load(f)


def tearDownModule() -> None:
    PROXY.close()
    code = SERVER.stop()
    log = SERVER.log()
    SERVER.cleanup()
    if code != 0:
        raise AssertionError(f"server exit code {code} after SIGTERM; log tail:\n{log[-4000:]}")


def client(url: str = "", **kwargs) -> branchdb.Client:
    kwargs.setdefault("backoff", 0.01)
    return branchdb.Client(url or SERVER.url, client_id=CREDS["client_id"],
                           client_secret=CREDS["client_secret"], trust_env=False, **kwargs)


class Idempotency(unittest.TestCase):
    def setUp(self) -> None:
        self.project = f"idem-{uuid.uuid4().hex[:8]}"
        self.c = client(project=self.project)
        self.c.create_project(self.project)
        self.c.sql("production", "CREATE TABLE t(x)")

    def count(self) -> int:
        return self.c.sql("production", "SELECT count(*) FROM t").scalar()

    def test_same_key_replays_instead_of_applying_twice(self) -> None:
        key = branchdb.new_idempotency_key()
        first = self.c.sql("production", "INSERT INTO t VALUES (1)", idempotency_key=key)
        again = self.c.sql("production", "INSERT INTO t VALUES (1)", idempotency_key=key)
        self.assertEqual(first, again)
        self.assertEqual(self.count(), 1)
        b1 = self.c.create_branch("k", idempotency_key="branch-key-1")
        b2 = self.c.create_branch("k", idempotency_key="branch-key-1")  # not branch_exists
        self.assertEqual(b1, b2)
        raw = self.c.request("POST", f"/v1/projects/{self.project}/branches",
                             json_body={"name": "k"}, idempotency_key="branch-key-1")
        self.assertTrue(raw.replayed)
        self.assertEqual(raw.status, 201)
        with self.assertRaises(branchdb.Conflict):  # a fresh key: really created again
            self.c.create_branch("k")

    def test_same_key_other_request_is_refused(self) -> None:
        key = branchdb.new_idempotency_key()
        self.c.sql("production", "INSERT INTO t VALUES (1)", idempotency_key=key)
        with self.assertRaises(branchdb.IdempotencyKeyReused) as cm:
            self.c.sql("production", "INSERT INTO t VALUES (2)", idempotency_key=key)
        self.assertEqual((cm.exception.status, cm.exception.code), (422, "idempotency_key_reused"))
        self.assertEqual(self.count(), 1)

    def test_every_mutating_post_carries_a_fresh_key(self) -> None:
        via = client(PROXY.url, project=self.project)
        via.sql("production", "INSERT INTO t VALUES (1)")
        via.sql("production", "INSERT INTO t VALUES (1)")
        keys = [s.headers.get("idempotency-key") for s in PROXY.requests("POST", "/sql")
                if self.project in s.path]
        self.assertEqual(len(keys), 2)
        self.assertTrue(all(keys))
        self.assertNotEqual(keys[0], keys[1])
        self.assertEqual(self.count(), 2)


class Retries(unittest.TestCase):
    def setUp(self) -> None:
        self.project = f"retry-{uuid.uuid4().hex[:8]}"
        self.c = client(project=self.project)
        self.c.create_project(self.project)
        self.c.sql("production", "CREATE TABLE t(x)")
        self.via = client(PROXY.url, project=self.project)

    def test_lost_response_of_sql_is_retried_and_applied_once(self) -> None:
        PROXY.inject("POST", f"/{self.project}/branches/production/sql", "drop_response")
        r = self.via.sql("production", "INSERT INTO t VALUES (7)")
        self.assertEqual(r.rows_affected, 1)
        sent = PROXY.requests("POST", f"/{self.project}/branches/production/sql")
        self.assertEqual([s.action for s in sent], ["drop_response", "forward"])
        self.assertEqual(sent[0].headers["idempotency-key"], sent[1].headers["idempotency-key"])
        self.assertEqual(sent[1].response_headers.get("idempotent-replayed"), "true")
        self.assertEqual(self.c.sql("production", "SELECT count(*) FROM t").scalar(), 1)

    def test_lost_response_of_create_branch(self) -> None:
        PROXY.inject("POST", f"/{self.project}/branches", "drop_response")
        b = self.via.create_branch("feature")
        self.assertEqual(b.name, "feature")
        self.assertEqual(sorted(x.name for x in self.c.list_branches()),
                         ["feature", "production"])

    def test_503_is_retried(self) -> None:
        PROXY.inject("GET", f"/{self.project}/branches", "503", times=2)
        names = [b.name for b in self.via.list_branches()]
        self.assertEqual(names, ["production"])
        self.assertEqual([s.status for s in PROXY.requests("GET", f"/{self.project}/branches")],
                         [503, 503, 200])

    def test_gives_up_after_max_retries(self) -> None:
        via = client(PROXY.url, project=self.project, max_retries=1)
        PROXY.inject("GET", f"/{self.project}/branches", "503", times=5)
        with self.assertRaises(branchdb.Unavailable) as cm:
            via.list_branches()
        self.assertEqual(cm.exception.attempts, 2)
        self.assertIsInstance(cm.exception, branchdb.ServerError)

    def test_lost_response_of_retried_delete(self) -> None:
        self.c.create_branch("gone")
        PROXY.inject("DELETE", f"/{self.project}/branches/gone", "drop_response")
        self.via.delete_branch("gone")  # the retry finds nothing: deleted all the same
        self.assertNotIn("gone", [b.name for b in self.c.list_branches()])

    def test_non_idempotent_post_is_not_retried(self) -> None:
        name = f"lost-{uuid.uuid4().hex[:6]}"
        PROXY.inject("POST", "/v1/clients", "drop_response")
        with self.assertRaises(branchdb.NetworkError) as cm:
            self.via.create_client("sql:read", name=name)
        self.assertEqual(cm.exception.attempts, 1)
        self.assertEqual(len([s for s in PROXY.requests("POST", "/v1/clients")]), 1)
        # The server did create it: a NetworkError means "unknown outcome".
        made = [x for x in self.c.list_clients() if x.name == name]
        self.assertEqual(len(made), 1)
        self.c.delete_client(made[0].client_id)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenRefresh(unittest.TestCase):
    def test_refresh_before_expiry(self) -> None:
        clock = FakeClock()
        source = branchdb.ClientCredentials(SERVER.url + "/oauth/token", CREDS["client_id"],
                                            CREDS["client_secret"], clock=clock)
        c = branchdb.Client(SERVER.url, token_source=source, trust_env=False)
        c.list_projects()
        self.assertEqual(source.tokens_fetched, 1)
        self.assertEqual(source.last_token.expires_in, 60)  # the server's configured lifetime
        first = source.last_token.access_token
        clock.now += 50  # default margin: a tenth of 60 s, so refresh from 54 s on
        c.list_projects()
        self.assertEqual(source.tokens_fetched, 1)
        clock.now += 5
        c.list_projects()
        self.assertEqual(source.tokens_fetched, 2)
        self.assertNotEqual(source.last_token.access_token, first)
        self.assertEqual(branchdb.ClientCredentials(
            "x", "a", "b", refresh_margin=100, clock=clock).refresh_margin, 100)

    def test_refresh_after_revocation(self) -> None:
        c = client()
        c.list_projects()
        source = c.token_source
        old = source.last_token.access_token
        # Revoke it (RFC 7009, client-authenticated) behind the SDK's back.
        basic = base64.b64encode(f"{CREDS['client_id']}:{CREDS['client_secret']}".encode()).decode()
        resp = c.request("POST", "/oauth/revoke", authenticate=False,
                         data=urllib.parse.urlencode({"token": old}).encode(),
                         content_type="application/x-www-form-urlencoded",
                         headers={"Authorization": "Basic " + basic})
        self.assertEqual(resp.status, 200)
        with self.assertRaises(branchdb.Unauthenticated):
            branchdb.Client(SERVER.url, token=old, trust_env=False).list_projects()
        c.list_projects()  # 401 -> new token -> retried once
        self.assertEqual(source.tokens_fetched, 2)
        self.assertNotEqual(source.last_token.access_token, old)

    def test_static_token_is_not_refreshed(self) -> None:
        with self.assertRaises(branchdb.Unauthenticated) as cm:
            branchdb.Client(SERVER.url, token="x.y.z", trust_env=False).list_projects()
        self.assertEqual(cm.exception.code, "invalid_token")


if __name__ == "__main__":
    unittest.main()
