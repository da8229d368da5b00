"""Shared fixture of the end-to-end scenarios (docs/guides/): one real
`branchdb serve` per test module, started by tests/sdk_python/bdb_server.py
(which also puts sdk/python on sys.path), and a few helpers that keep each
scenario close to the guide it checks.

Environment: BRANCHDB_TEST_SERVER (the branchdb binary), BRANCHDB_SDK_PYTHON
(sdk/python; default: from this file's location)."""

from __future__ import annotations

import os
import sys
import unittest
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdk_python"))

import bdb_server  # noqa: E402  (puts the SDK on sys.path)

import branchdb  # noqa: E402


# The example database of every guide (docs/guides/README.md, "The example shop").
SEED_SQL = """
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                    total_cents INTEGER NOT NULL);
INSERT INTO customers(name, email) VALUES
  ('Ada Lovelace', 'ada@example.com'), ('Grace Hopper', 'grace@example.com'),
  ('Alan Turing', 'alan@example.com'), ('Ada King', 'ADA@example.com');
INSERT INTO orders(customer_id, total_cents) VALUES (1, 2500), (1, 9900), (2, 4000), (3, 1250);
"""


class ScenarioTest(unittest.TestCase):
    """Starts one server for the test class; `self.client` is its bootstrap admin,
    bound to the project `PROJECT`, which setUpClass creates and seeds with
    SEED_SQL on `production`."""

    PROJECT = "shop"
    server: bdb_server.ServerProcess
    client: branchdb.Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = bdb_server.ServerProcess().start()
        try:
            cls.client = branchdb.Client.from_data_dir(cls.server.data_dir, url=cls.server.url,
                                                       project=cls.PROJECT, trust_env=False)
            cls.client.create_project(cls.PROJECT)
            cls.client.sql("production", SEED_SQL)
        except BaseException:
            cls.server.stop()
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        code = cls.server.stop()
        log = cls.server.log()
        cls.server.cleanup()
        if code != 0:
            raise AssertionError(f"server exit code {code} after SIGTERM; log tail:\n{log[-4000:]}")

    # -- helpers ----------------------------------------------------------------------------

    def rows(self, branch: str, sql: str, params: Any = None) -> List[List[Any]]:
        """The rows of a read-only query on `branch`."""
        return self.client.sql(branch, sql, params, read_only=True).rows

    def scalar(self, branch: str, sql: str) -> Any:
        return self.client.sql(branch, sql, read_only=True).scalar()

    def sql_checkpoints(self, branch: str) -> List[branchdb.Checkpoint]:
        """The branch's own SQL checkpoints, oldest first."""
        return [c for c in reversed(list(self.client.iter_checkpoints(branch)))
                if c.kind == "sql" and not c.inherited]

    def branch_names(self) -> List[str]:
        return [b.name for b in self.client.list_branches()]


def table_diff(diff: branchdb.DataDiff, table: str) -> branchdb.TableDiff:
    t = diff.table(table)
    if t is None:
        raise AssertionError(f"table {table!r} not in the data diff: {diff.raw}")
    return t


def changes(t: branchdb.TableDiff) -> List[Dict[str, Optional[Any]]]:
    """A table diff's row changes (one page) as plain dicts, sorted by key."""
    return sorted(({"op": c.op, "key": c.key, "old": c.old, "new": c.new} for c in t.rows),
                  key=lambda c: (repr(c["key"]), c["op"]))
