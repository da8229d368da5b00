"""Scenario 3 (docs/guides/03-drift.md): production changes while a feature
branch is open; the diff shows the drift; the branch is re-made from current
production (reset from its parent), the change re-applied, then promoted."""

from __future__ import annotations

import unittest

from scenario import ScenarioTest, branchdb, changes, table_diff

FEATURE = "ALTER TABLE orders ADD COLUMN discount_cents INTEGER NOT NULL DEFAULT 0"
HOTFIX = ("CREATE INDEX orders_by_customer ON orders(customer_id);"
          "INSERT INTO orders(customer_id, total_cents) VALUES (2, 7000)")


class Drift(ScenarioTest):
    def test_detect_drift_rebranch_reapply_promote(self) -> None:
        c = self.client
        feature = c.create_branch("feature/discounts", "production")
        c.sql("feature/discounts", FEATURE)

        # Meanwhile production moves on: a hotfix index and a new order.
        c.sql("production", HOTFIX)

        # 1. What changed on production since the branch was made: diff
        #    production's head against its own state at the branch point.
        fork = feature.branch_point_lsn
        sd = c.diff("production", kind="schema", base="production", base_lsn=fork)
        self.assertEqual([(o.type, o.name, o.change) for o in sd.objects],
                         [("index", "orders_by_customer", "added")])
        dd = c.diff("production", kind="data", base="production", base_lsn=fork)
        self.assertEqual(changes(table_diff(dd, "orders")),
                         [{"op": "insert", "key": [5], "old": None,
                           "new": {"id": 5, "customer_id": 2, "total_cents": 7000}}])

        # 2. The branch against production's head: production's new objects
        #    appear as missing on the branch, next to the branch's own change.
        vs = c.diff("feature/discounts", kind="schema", base="production")
        self.assertEqual(sorted((o.name, o.change) for o in vs.objects),
                         [("orders", "changed"), ("orders_by_customer", "removed")])
        orders = [o for o in vs.objects if o.name == "orders"][0]
        self.assertEqual(orders.columns_added, ["discount_cents"])
        self.assertEqual(self.scalar("feature/discounts", "SELECT count(*) FROM orders"), 4)

        # 3. A fast-forward promote is refused: production is not where the branch started.
        with self.assertRaises(branchdb.Conflict) as cm:
            c.promote("feature/discounts", mode="fast_forward")
        self.assertEqual(cm.exception.code, "parent_moved")
        self.assertEqual(self.scalar("production", "SELECT count(*) FROM orders"), 5)
        # (The default mode would replay the branch's SQL on production's head;
        # a dry run shows that plan without moving anything.)
        plan = c.promote("feature/discounts", dry_run=True)
        self.assertEqual((plan.mode, plan.dry_run, plan.head_lsn), ("replay", True, None))
        self.assertEqual([a.summary for a in plan.actions], [FEATURE])
        self.assertEqual(self.scalar("production", "SELECT count(*) FROM orders"), 5)

        # 4. Re-branch from current production (reset from parent; undoable) and re-apply.
        moved = c.reset("feature/discounts")
        prod_head = c.get_branch("production").head_lsn
        self.assertEqual(moved.target_lsn, prod_head)
        self.assertEqual(self.scalar("feature/discounts", "SELECT count(*) FROM orders"), 5)
        self.assertEqual(c.diff("feature/discounts", kind="schema", base="production").objects, [])
        c.sql("feature/discounts", FEATURE)

        # The diff now holds the feature and nothing else.
        vs = c.diff("feature/discounts", kind="schema", base="production")
        self.assertEqual([(o.name, o.change, o.columns_added) for o in vs.objects],
                         [("orders", "changed", ["discount_cents"])])

        # 5. Promote (a fast-forward again) and check production has everything.
        p = c.promote("feature/discounts")
        self.assertEqual((p.mode, p.previous_head_lsn), ("fast_forward", prod_head))
        self.assertEqual(self.rows("production",
                                   "SELECT id, customer_id, total_cents, discount_cents FROM orders "
                                   "ORDER BY id"),
                         [[1, 1, 2500, 0], [2, 1, 9900, 0], [3, 2, 4000, 0], [4, 3, 1250, 0],
                          [5, 2, 7000, 0]])
        self.assertEqual(self.rows("production", "SELECT name FROM sqlite_schema "
                                                 "WHERE type = 'index' AND tbl_name = 'orders'"),
                         [["orders_by_customer"]])


if __name__ == "__main__":
    unittest.main()
