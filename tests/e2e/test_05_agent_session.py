"""Scenario 5 (docs/guides/05-agent-session.md): an agent takes ten actions on
its branch, rolls back three, undoes the rollback, forks a branch from its 4th
checkpoint to try an alternative, and compares the two with a data diff."""

from __future__ import annotations

import unittest
from typing import Any, Dict, List

from scenario import ScenarioTest, changes, table_diff

ACTIONS = [
    "UPDATE customers SET email = lower(email)",                                       # 1
    "INSERT INTO customers(name, email) VALUES ('Edsger Dijkstra', 'edsger@example.com')",  # 2
    "INSERT INTO orders(customer_id, total_cents) VALUES (5, 3000)",                   # 3
    "UPDATE orders SET total_cents = total_cents - 500 WHERE customer_id = 1",         # 4
    "DELETE FROM customers WHERE id = 4",                                              # 5
    "INSERT INTO orders(customer_id, total_cents) VALUES (2, 1500)",                   # 6
    "UPDATE customers SET name = 'Grace Brewster Hopper' WHERE id = 2",                # 7
    "UPDATE orders SET total_cents = 0 WHERE id = 3",                                  # 8
    "DELETE FROM orders WHERE total_cents = 0",                                        # 9
    "INSERT INTO customers(name, email) VALUES ('Barbara Liskov', 'barbara@example.com')",  # 10
]

ALTERNATIVE = [  # from checkpoint 4: keep the duplicate customer, flag it instead
    "UPDATE customers SET name = 'Ada King (duplicate of 1)' WHERE id = 4",
    "INSERT INTO orders(customer_id, total_cents) VALUES (2, 1500)",
]

SESSION = "agent/session-1"
ALT = "agent/session-1-alt"


class AgentSession(ScenarioTest):
    def state(self, branch: str) -> Dict[str, List[List[Any]]]:
        return {t: self.rows(branch, f"SELECT * FROM {t} ORDER BY id")
                for t in ("customers", "orders")}

    def test_ten_actions_rollback_undo_fork_compare(self) -> None:
        c = self.client
        c.create_branch(SESSION, "production", ttl=24 * 3600)

        # Ten actions; each answer carries its checkpoint's LSN.
        lsns: List[int] = []
        after: List[Dict[str, List[List[Any]]]] = []  # the state after each action
        for sql in ACTIONS:
            r = c.sql(SESSION, sql)
            self.assertIsNotNone(r.lsn)
            lsns.append(r.lsn)
            after.append(self.state(SESSION))
        self.assertEqual(lsns, sorted(lsns))
        history = self.sql_checkpoints(SESSION)
        self.assertEqual([cp.lsn for cp in history], lsns)
        self.assertEqual([cp.summary for cp in history], ACTIONS)

        # Roll back three actions: the branch is as it was after action 7.
        moved = c.rollback(SESSION, actions=3)
        self.assertEqual(moved.target_lsn, lsns[6])
        self.assertEqual(moved.previous_head_lsn, lsns[9])
        self.assertEqual(self.state(SESSION), after[6])
        self.assertEqual(self.rows(SESSION, "SELECT total_cents FROM orders WHERE id = 3"), [[4000]])
        self.assertEqual(self.scalar(SESSION, "SELECT count(*) FROM customers "
                                              "WHERE name = 'Barbara Liskov'"), 0)

        # Undo the rollback: back to the state after action 10, history included.
        c.undo(SESSION, moved)
        self.assertEqual(self.state(SESSION), after[9])
        self.assertEqual([cp.lsn for cp in self.sql_checkpoints(SESSION)], lsns)

        # Fork a branch from checkpoint 4 and try another way from there.
        alt = c.create_branch(ALT, at_checkpoint=lsns[3], ttl=24 * 3600)
        self.assertEqual(alt.parent, SESSION)
        self.assertEqual(alt.branch_point_lsn, lsns[3])
        self.assertEqual(self.state(ALT), after[3])
        for sql in ALTERNATIVE:
            c.sql(ALT, sql)

        # Compare: the data diff from the session's head to the alternative.
        d = c.diff(ALT, kind="data", base=SESSION)
        self.assertEqual(sorted(t.table for t in d.tables), ["customers", "orders"])
        customers, orders = table_diff(d, "customers"), table_diff(d, "orders")
        self.assertEqual((customers.rows_added, customers.rows_removed, customers.rows_changed),
                         (1, 1, 1))
        self.assertEqual(changes(customers), [
            {"op": "update", "key": [2], "old": {"name": "Grace Brewster Hopper"},
             "new": {"name": "Grace Hopper"}},
            {"op": "insert", "key": [4], "old": None,
             "new": {"id": 4, "name": "Ada King (duplicate of 1)", "email": "ada@example.com"}},
            {"op": "delete", "key": [6],
             "old": {"id": 6, "name": "Barbara Liskov", "email": "barbara@example.com"},
             "new": None},
        ])
        self.assertEqual((orders.rows_added, orders.rows_removed, orders.rows_changed), (1, 0, 0))
        self.assertEqual(changes(orders), [
            {"op": "insert", "key": [3], "old": None,
             "new": {"id": 3, "customer_id": 2, "total_cents": 4000}},
        ])
        # The two branches hold what the diff says, and production neither.
        self.assertEqual(self.rows(ALT, "SELECT id FROM customers ORDER BY id"),
                         [[1], [2], [3], [4], [5]])
        self.assertEqual(self.rows(SESSION, "SELECT id FROM customers ORDER BY id"),
                         [[1], [2], [3], [5], [6]])
        self.assertEqual(self.scalar("production", "SELECT count(*) FROM customers"), 4)


if __name__ == "__main__":
    unittest.main()
