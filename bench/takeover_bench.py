#!/usr/bin/env python3
"""Takeover time and restore time against a project's size (issue #16).

Starts one etcd, one Ceph RGW fixture and three `branchdb serve` nodes with
[cluster] and [object_storage] in `remote` durability (the harness of
tests/cluster/test_takeover.py), and for each size fills a project on one
node, kills that node with SIGKILL and measures:
  takeover_seconds  SIGKILL to the first read answered by another node
                    (includes the lease TTL, 2 s here, and a poll);
  restore_seconds   the new owner's restore, fence and adoption (its log's
                    event=cluster_project_restored seconds=).
Prints one JSON object per size. `make bench` runs it through
bench/bucket_bench.py (measure()), which prints the report's lines.

  BRANCHDB_TEST_SERVER=build/bin/branchdb python3 bench/takeover_bench.py [MB ...]
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from typing import Any, Dict, List

QUIET = False  # bench/bucket_bench.py: the lines go to stderr, its own to stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "cluster"))
os.environ.setdefault("BRANCHDB_SOURCE_DIR", os.path.join(HERE, ".."))

from test_takeover import TakeoverTest  # noqa: E402
from test_cluster import LEASE_TTL, eventually  # noqa: E402


def measure(sizes: List[int]) -> List[Dict[str, Any]]:
    """One result per size (MiB), as main prints them."""
    results: List[Dict[str, Any]] = []
    t = TakeoverTest()
    TakeoverTest.setUpClass()
    try:
        for i, mb in enumerate(sizes):
            project = f"bench{i}"
            owner = ("n1", "n2", "n3")[i % 3]
            t.create(owner, project)
            for _ in range(mb):  # 1 MiB per commit, acknowledged once in the bucket
                status, body = t.sql(owner, project,
                                     "INSERT INTO t SELECT randomblob(1024) FROM "
                                     "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
                                     "FROM c WHERE x < 1024) SELECT x FROM c)")
                assert status == 200, body
            status, body = t.sql(owner, project, "CREATE TABLE done(x)")
            assert status == 200, body
            node = t.node(owner)
            node.kill(signal.SIGKILL)
            killed = time.monotonic()
            via = next(n for n in ("n1", "n2", "n3") if n != owner)
            def served() -> bool:
                try:
                    return t.sql(via, project, "SELECT count(*) FROM done")[0] == 200
                except OSError:
                    return False
            eventually("served again", served)
            takeover = time.monotonic() - killed
            new_owner = t.owner(via, project)["node"]
            log = t.node(new_owner).log()
            m = re.findall(rf"event=cluster_project_restored project={project} .*?bytes=(\d+) "
                           r".*?seconds=([0-9.]+)", log)
            restored_bytes, restore_seconds = (int(m[-1][0]), float(m[-1][1])) if m else (0, 0.0)
            results.append({"bench": "takeover", "project_mb": mb,
                            "restored_bytes": restored_bytes,
                            "restore_seconds": restore_seconds,
                            "takeover_seconds": round(takeover, 3),
                            "lease_ttl_seconds": LEASE_TTL})
            print(json.dumps(results[-1]), file=sys.stderr if QUIET else sys.stdout, flush=True)
            node.start()
    finally:
        TakeoverTest.tearDownClass()
    return results


def main() -> None:
    measure([int(a) for a in sys.argv[1:]] or [1, 16, 64])


if __name__ == "__main__":
    main()
