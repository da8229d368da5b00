"""Scenario 2 (docs/guides/02-schema-change-to-production.md): add a column and
backfill it on a branch, review the schema diff, promote onto production."""

from __future__ import annotations

import unittest

from scenario import ScenarioTest, branchdb

MIGRATION = """
ALTER TABLE customers ADD COLUMN tier TEXT NOT NULL DEFAULT 'standard';
UPDATE customers SET tier = 'gold'
 WHERE id IN (SELECT customer_id FROM orders GROUP BY customer_id HAVING sum(total_cents) >= 10000);
"""


class SchemaChangeToProduction(ScenarioTest):
    def test_add_column_backfill_review_promote(self) -> None:
        c = self.client
        c.create_branch("dev/tier", "production", ttl=24 * 3600)
        r = c.sql("dev/tier", MIGRATION)
        self.assertEqual(r.rows_affected, 1)  # the backfill: one gold customer

        # Review: the schema diff from production shows exactly the new column.
        sd = c.diff("dev/tier", kind="schema", base="production")
        self.assertIsInstance(sd, branchdb.SchemaDiff)
        self.assertEqual([(o.type, o.name, o.change) for o in sd.objects],
                         [("table", "customers", "changed")])
        obj = sd.objects[0]
        self.assertEqual(obj.columns_added, ["tier"])
        self.assertEqual((obj.columns_removed, obj.columns_changed), ([], []))
        self.assertIn("tier TEXT NOT NULL DEFAULT 'standard'", obj.new_sql or "")
        self.assertNotIn("tier", obj.old_sql or "")
        self.assertIn("+CREATE TABLE customers(", sd.unified)
        # ...and the backfill, on the branch only.
        tiers = "SELECT id, tier FROM customers ORDER BY id"
        self.assertEqual(self.rows("dev/tier", tiers),
                         [[1, "gold"], [2, "standard"], [3, "standard"], [4, "standard"]])
        with self.assertRaises(branchdb.BadRequest) as cm:
            c.sql("production", tiers, read_only=True)
        self.assertEqual(cm.exception.code, "sql_error")

        # Promote: production has not moved since the branch was made, so this
        # is a fast-forward (one O(1) move of production's head). A dry run first.
        before = c.get_branch("production").head_lsn
        branch_head = c.get_branch("dev/tier").head_lsn
        dry = c.promote("dev/tier", dry_run=True)
        self.assertEqual((dry.branch, dry.source, dry.mode, dry.dry_run),
                         ("production", "dev/tier", "fast_forward", True))
        self.assertIsNone(dry.head_lsn)
        self.assertEqual([(a.lsn, a.rows) for a in dry.actions], [(r.lsn, 1)])
        self.assertEqual(c.get_branch("production").head_lsn, before)

        # A verify query that fails keeps production where it is...
        with self.assertRaises(branchdb.Conflict) as cm:
            c.promote("dev/tier", verify="SELECT count(*) = 2 FROM customers WHERE tier = 'gold'")
        self.assertEqual(cm.exception.code, "verify_failed")
        self.assertEqual(c.get_branch("production").head_lsn, before)

        # ...and one that holds lets it move.
        p = c.promote("dev/tier", verify="SELECT count(*) = 1 FROM customers WHERE tier = 'gold'")
        self.assertEqual((p.branch, p.mode, p.dry_run), ("production", "fast_forward", False))
        self.assertTrue(p.verify is not None and p.verify.ok)
        self.assertEqual(p.previous_head_lsn, before)
        self.assertEqual(p.target_lsn, branch_head)

        # Production has the column and the backfill; its history names the promote.
        self.assertEqual(self.rows("production", tiers),
                         [[1, "gold"], [2, "standard"], [3, "standard"], [4, "standard"]])
        self.assertEqual([row[1] for row in self.rows("production", "PRAGMA table_info(customers)")],
                         ["id", "name", "email", "tier"])
        self.assertEqual(c.list_checkpoints("production", limit=1).checkpoints[0].kind, "promote")
        self.assertEqual(c.diff("dev/tier", kind="schema", base="production").objects, [])
        self.assertEqual(self.scalar("production", "SELECT count(*) FROM orders"), 4)

        # A promote is undone like any move: roll production back to its previous head.
        undo = c.undo("production", p)
        self.assertEqual(undo.target_lsn, before)
        with self.assertRaises(branchdb.BadRequest):
            c.sql("production", tiers, read_only=True)
        # ...and redone by rolling back to the promote's head.
        c.rollback("production", lsn=p.head_lsn)
        self.assertEqual(self.scalar("production", "SELECT tier FROM customers WHERE id = 1"),
                         "gold")


if __name__ == "__main__":
    unittest.main()
