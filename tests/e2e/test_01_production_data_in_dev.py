"""Scenario 1 (docs/guides/01-production-data-in-dev.md): a developer branches
production, writes on the branch, and production does not change."""

from __future__ import annotations

import unittest

from scenario import ScenarioTest, changes, table_diff


class ProductionDataInDev(ScenarioTest):
    def test_branch_sees_production_and_keeps_its_writes(self) -> None:
        c = self.client
        customers = "SELECT id, name, email FROM customers ORDER BY id"
        orders = "SELECT id, customer_id, total_cents FROM orders ORDER BY id"
        prod_customers = self.rows("production", customers)
        prod_orders = self.rows("production", orders)
        self.assertEqual(len(prod_customers), 4)
        self.assertEqual(len(prod_orders), 4)
        prod_head = c.get_branch("production").head_lsn

        dev = c.create_branch("dev/alex", "production", ttl=24 * 3600)
        self.assertEqual(dev.parent, "production")
        self.assertEqual(dev.branch_point_lsn, prod_head)
        # The branch starts as production's data, all of it.
        self.assertEqual(self.rows("dev/alex", customers), prod_customers)
        self.assertEqual(self.rows("dev/alex", orders), prod_orders)

        r = c.sql("dev/alex",
                  "INSERT INTO customers(name, email) VALUES ('Test User', 'test@example.com');"
                  "INSERT INTO orders(customer_id, total_cents) VALUES (last_insert_rowid(), 100)")
        self.assertEqual(r.rows_affected, 2)
        self.assertGreater(r.lsn, dev.head_lsn)

        # Production: same rows, same head.
        self.assertEqual(self.rows("production", customers), prod_customers)
        self.assertEqual(self.rows("production", orders), prod_orders)
        self.assertEqual(c.get_branch("production").head_lsn, prod_head)
        self.assertEqual(self.scalar("production",
                                     "SELECT count(*) FROM customers WHERE email = 'test@example.com'"),
                         0)

        # The branch: production's rows plus its own.
        self.assertEqual(self.rows("dev/alex", customers),
                         prod_customers + [[5, "Test User", "test@example.com"]])
        self.assertEqual(self.rows("dev/alex", orders), prod_orders + [[5, 5, 100]])

        # The data diff names exactly the two inserted rows.
        d = c.diff("dev/alex", kind="data", base="production")
        self.assertEqual(sorted(t.table for t in d.tables), ["customers", "orders"])
        cust, ords = table_diff(d, "customers"), table_diff(d, "orders")
        self.assertEqual((cust.rows_added, cust.rows_removed, cust.rows_changed), (1, 0, 0))
        self.assertEqual((ords.rows_added, ords.rows_removed, ords.rows_changed), (1, 0, 0))
        self.assertEqual(changes(cust), [{"op": "insert", "key": [5], "old": None,
                                          "new": {"id": 5, "name": "Test User",
                                                  "email": "test@example.com"}}])
        self.assertEqual(changes(ords), [{"op": "insert", "key": [5], "old": None,
                                          "new": {"id": 5, "customer_id": 5, "total_cents": 100}}])

        # Isolation works the other way too: a later production write is not on the branch.
        c.sql("production", "UPDATE customers SET name = 'Grace B. Hopper' WHERE id = 2")
        self.assertEqual(self.rows("dev/alex", "SELECT name FROM customers WHERE id = 2"),
                         [["Grace Hopper"]])
        self.assertEqual(self.rows("production", "SELECT name FROM customers WHERE id = 2"),
                         [["Grace B. Hopper"]])

        # Done with it: delete the branch; production is still intact.
        c.delete_branch("dev/alex")
        self.assertNotIn("dev/alex", self.branch_names())
        self.assertEqual(len(self.rows("production", customers)), 4)


if __name__ == "__main__":
    unittest.main()
