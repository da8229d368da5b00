"""Scenario 4 (docs/guides/04-ci-ephemeral-branches.md): three pull requests
each get a branch of production with a 1-hour TTL, run their migration and
their test on it (one fails, as designed), a report is printed, and the
branches are gone afterwards."""

from __future__ import annotations

import concurrent.futures
import time
import unittest
from dataclasses import dataclass
from typing import List

from scenario import ScenarioTest, branchdb


@dataclass
class PullRequest:
    number: int
    title: str
    migration: str
    test: str  # a query whose first column is true (non-zero) when the test passes


PULL_REQUESTS = [
    PullRequest(101, "order status",
                "ALTER TABLE orders ADD COLUMN status TEXT NOT NULL DEFAULT 'paid'",
                "SELECT count(*) = 4 FROM orders WHERE status = 'paid'"),
    PullRequest(102, "customer tiers",
                "ALTER TABLE customers ADD COLUMN tier TEXT NOT NULL DEFAULT 'standard';"
                "UPDATE customers SET tier = 'gold' WHERE id IN (SELECT customer_id FROM orders "
                "GROUP BY customer_id HAVING sum(total_cents) >= 10000)",
                "SELECT count(*) = 1 FROM customers WHERE tier = 'gold'"),
    # Production holds 'ada@example.com' and 'ADA@example.com': this test fails.
    PullRequest(103, "unique emails",
                "ALTER TABLE customers ADD COLUMN email_key TEXT;"
                "UPDATE customers SET email_key = lower(trim(email))",
                "SELECT count(DISTINCT email_key) = count(*) FROM customers"),
]


@dataclass
class Outcome:
    pr: PullRequest
    branch: str
    ttl_seconds: float
    migration: str  # "ok" or the error
    test: str       # "ok", "failed", "skipped" or the error

    @property
    def passed(self) -> bool:
        return self.migration == "ok" and self.test == "ok"


def run_pull_request(client: branchdb.Client, pr: PullRequest) -> Outcome:
    """One CI job: an ephemeral branch of production, the migration, the test.
    The branch is deleted when the job ends; if the job dies, its TTL reaps it."""
    name = f"ci/pr-{pr.number}"
    with client.ephemeral_branch("production", ttl=3600, name=name) as b:
        info = b.info
        ttl = (branchdb.parse_time(info.expires_at) -
               branchdb.parse_time(info.created_at)).total_seconds()
        try:
            b.sql(pr.migration)
        except branchdb.ApiError as e:
            return Outcome(pr, name, ttl, f"{e.code}: {e.message}", "skipped")
        try:
            ok = b.sql(pr.test, read_only=True).scalar()
        except branchdb.ApiError as e:
            return Outcome(pr, name, ttl, "ok", f"{e.code}: {e.message}")
        return Outcome(pr, name, ttl, "ok", "ok" if ok else "failed")


def report(outcomes: List[Outcome]) -> str:
    lines = [f"{'PR':<6}{'branch':<12}{'TTL':<7}{'migration':<11}{'test':<8}result"]
    for o in outcomes:
        minutes = round(o.ttl_seconds / 60)
        ttl = f"{minutes // 60}h{minutes % 60:02d}m"
        lines.append(f"#{o.pr.number:<5}{o.branch:<12}{ttl:<7}{o.migration:<11}{o.test:<8}"
                     f"{'PASS' if o.passed else 'FAIL'}")
    passed = sum(o.passed for o in outcomes)
    lines.append(f"{passed} passed, {len(outcomes) - passed} failed")
    return "\n".join(lines)


class CiEphemeralBranches(ScenarioTest):
    def test_three_pull_requests(self) -> None:
        c = self.client
        prod_before = c.export("production").data
        # CI gets its own OAuth client, limited to branches and SQL of this project.
        creds = c.create_client(["branches:write", "sql:write"], name="ci", projects=[self.PROJECT])
        ci = branchdb.Client(self.server.url, project=self.PROJECT, client_id=creds.client_id,
                             client_secret=creds.client_secret, trust_env=False)
        # The three jobs run at once, as CI runners would.
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            outcomes = list(pool.map(lambda pr: run_pull_request(ci, pr), PULL_REQUESTS))
        text = report(outcomes)
        print("\n" + text + "\n")

        self.assertEqual([(o.branch, o.migration, o.test, o.passed) for o in outcomes],
                         [("ci/pr-101", "ok", "ok", True), ("ci/pr-102", "ok", "ok", True),
                          ("ci/pr-103", "ok", "failed", False)])
        for o in outcomes:
            self.assertAlmostEqual(o.ttl_seconds, 3600, delta=5)
        self.assertEqual(text.splitlines(), [
            "PR    branch      TTL    migration  test    result",
            "#101  ci/pr-101   1h00m  ok         ok      PASS",
            "#102  ci/pr-102   1h00m  ok         ok      PASS",
            "#103  ci/pr-103   1h00m  ok         failed  FAIL",
            "2 passed, 1 failed",
        ])

        # Cleaned up: no CI branch is left, and production never saw a migration.
        self.assertEqual([n for n in self.branch_names() if n.startswith("ci/")], [])
        self.assertEqual(c.export("production").data, prod_before)
        self.assertEqual([row[1] for row in self.rows("production", "PRAGMA table_info(customers)")],
                         ["id", "name", "email"])

    def test_ttl_reaps_a_branch_whose_job_died(self) -> None:
        # A job that dies before deleting its branch leaves it to the TTL.
        c = self.client
        b = c.create_branch("ci/pr-104", "production", ttl=3600)
        self.assertAlmostEqual((branchdb.parse_time(b.expires_at) -
                                branchdb.parse_time(b.created_at)).total_seconds(), 3600, delta=5)
        # The reaper deletes it once expires_at passes; move that into the past
        # (a real clock: no waiting an hour) and wait for the reaper (1 s period).
        c.update_branch("ci/pr-104", ttl=1)
        deadline = time.monotonic() + 30
        while "ci/pr-104" in self.branch_names():
            self.assertLess(time.monotonic(), deadline, "reaper never ran")
            time.sleep(0.1)
        with self.assertRaises(branchdb.NotFound):
            c.get_branch("ci/pr-104")


if __name__ == "__main__":
    unittest.main()
