// Store I/O failures under SQLite, in the way SQLite tests itself: fail the
// n-th file operation (append, sync or read) of a transaction, for n = 1, 2,
// 3... until none fires. Each time: the statement either succeeds or fails
// cleanly, the connection stays usable, and after reopening the store the
// branch is all-or-nothing (exactly the old or the new state; the new one if
// COMMIT was acknowledged) and passes integrity_check.
#include <catch2/catch.hpp>

#include <string>

#include "storage/vfs/vfs.h"
#include "tests/util/fault_injection_env.h"
#include "tests/vfs/vfs_test_util.h"

namespace branchdb::testing {
namespace {

using storage::Lsn;

// The store I/O a transaction does: what the sweep fails, one at a time.
constexpr uint32_t kStoreIo = kOpAppend | kOpSync | kOpRead;

TEST_CASE("the n-th store I/O of a transaction fails: all-or-nothing, for every n") {
  const std::string setup =
      "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b BLOB); CREATE INDEX ta ON t(a); "
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<60) "
      "INSERT INTO t SELECT i, i % 17, zeroblob(i * 30) FROM n";
  const std::string txn =
      "BEGIN; UPDATE t SET a = a + 1 WHERE id % 3 = 0; DELETE FROM t WHERE id % 5 = 0; "
      "INSERT INTO t(a, b) VALUES(99, zeroblob(9000)); COMMIT";
  int n = 1;
  int failed_commits = 0;
  for (;; ++n) {
    INFO("failing I/O operation " << n);
    FaultInjectionEnv env;
    StoreFixture fx(&env, /*cache_bytes=*/16 * 4096);  // a tiny cache: reads reach the files
    std::string before, after;
    {
      auto db = fx.Open(0, 10);
      MustExec(db.get(), setup);
    }
    fx.Reopen();  // drop the store's cached pages
    const Lsn head = fx.store()->Head(fx.timeline()).value();
    auto db = fx.Open(0, 10);
    before = Dump(db.get());

    env.FailNth(n, FaultType::kIOError, /*sticky=*/false, kStoreIo);
    ExecResult r = Exec(db.get(), txn);
    env.ClearFault();
    const bool fired = env.FaultFired();
    if (r.rc != SQLITE_OK) {
      ++failed_commits;
      CHECK(fired);
      INFO(r.message << " / " << storage::LastVfsError(db.get()).ToString());
      CHECK(!storage::LastVfsError(db.get()).ok());
      if (sqlite3_get_autocommit(db.get()) == 0) MustExec(db.get(), "ROLLBACK");
    }
    const bool acknowledged = r.rc == SQLITE_OK;
    // The connection stays usable and consistent.
    CHECK(IntegrityCheck(db.get()) == "ok");
    if (!acknowledged && fx.store()->Head(fx.timeline()).value() == head) {
      CHECK(Dump(db.get()) == before);
    }
    db.reset();

    // After reopening: exactly the old or the new state.
    fx.Reopen();
    {
      auto check = fx.Open();
      CHECK(IntegrityCheck(check.get()) == "ok");
      std::string now = Dump(check.get());
      // The state the transaction produces, computed on a scratch branch.
      auto scratch = fx.store()->CreateTimeline(fx.timeline(), head, "expected");
      REQUIRE(scratch.ok());
      auto sdb = fx.Open(*scratch);
      MustExec(sdb.get(), txn);
      after = Dump(sdb.get());
      if (acknowledged) {
        CHECK(now == after);
      } else {
        CHECK((now == before || now == after));
      }
    }
    if (!fired) break;
  }
  std::printf("vfs_fault_test: %d failure points, %d failed commits\n", n - 1, failed_commits);
  CHECK(n > 3);
  CHECK(failed_commits > 0);
}

}  // namespace
}  // namespace branchdb::testing
