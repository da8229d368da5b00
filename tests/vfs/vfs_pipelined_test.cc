// ConnectionOptions::pipelined_commits: a COMMIT returns once its commit is
// in the log, before its fsync; storage::WaitDurable(db) acknowledges it.
// Another connection reads (and builds on) the pending commit, and must wait
// for it too; a failed fsync fails every connection that saw it.
#include <catch2/catch.hpp>

#include "tests/util/fault_injection_env.h"
#include "tests/vfs/vfs_test_util.h"

using namespace branchdb;
using namespace branchdb::testing;

namespace {

storage::SqliteHandle OpenPipelined(StoreFixture& f) {
  storage::ConnectionOptions options;
  options.store = f.store();
  options.timeline = f.timeline();
  options.pipelined_commits = true;
  auto db = storage::OpenConnection(options);
  INFO(db.status().ToString());
  REQUIRE(db.ok());
  return std::move(db).value();
}

}  // namespace

TEST_CASE("a pipelined COMMIT returns before its fsync; WaitDurable acknowledges it, also for "
          "a reader that saw it",
          "[vfs]") {
  FaultInjectionEnv env;
  StoreFixture f(&env);
  auto writer = OpenPipelined(f);
  MustExec(writer.get(), "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  REQUIRE(storage::WaitDurable(writer.get()).ok());
  const uint64_t syncs = env.CallCount(kOpSync);

  MustExec(writer.get(), "INSERT INTO t VALUES (2);");
  const storage::Lsn pending = storage::LastCommitLsn(writer.get());
  CHECK(env.CallCount(kOpSync) == syncs);            // no fsync in the COMMIT
  CHECK(f.store()->LastLsn() < pending);             // not durable yet
  CHECK(storage::ObservedLsn(writer.get()) == pending);

  // Another connection reads the pending state (SQLite's one writer moved on).
  auto reader = f.Open();
  CHECK(QueryInt(reader.get(), "SELECT count(*) FROM t") == 2);
  CHECK(storage::ObservedLsn(reader.get()) == pending);
  REQUIRE(storage::WaitDurable(reader.get()).ok());  // one fsync covers it
  CHECK(f.store()->LastLsn() >= pending);
  CHECK(env.CallCount(kOpSync) == syncs + 1);
  CHECK(storage::WaitDurable(writer.get()).ok());    // already durable: no fsync
  CHECK(env.CallCount(kOpSync) == syncs + 1);
}

TEST_CASE("a failed fsync fails the pipelined commit, every commit built on it and every "
          "reader that saw them",
          "[vfs]") {
  FaultInjectionEnv env;
  StoreFixture f(&env);
  auto writer = OpenPipelined(f);
  MustExec(writer.get(), "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  REQUIRE(storage::WaitDurable(writer.get()).ok());
  const storage::Lsn durable = storage::LastCommitLsn(writer.get());

  MustExec(writer.get(), "INSERT INTO t VALUES (2);");
  auto second = OpenPipelined(f);  // builds on the pending commit
  MustExec(second.get(), "INSERT INTO t VALUES (3);");
  CHECK(storage::LastCommitLsn(second.get()) > storage::LastCommitLsn(writer.get()));
  auto reader = f.Open();
  CHECK(QueryInt(reader.get(), "SELECT count(*) FROM t") == 3);

  env.FailNth(1, FaultType::kIOError, /*sticky=*/false, kOpSync);
  CHECK(storage::WaitDurable(writer.get()).reason() == "store_failed");
  CHECK(storage::WaitDurable(second.get()).reason() == "store_failed");
  CHECK(storage::WaitDurable(reader.get()).reason() == "store_failed");
  // The store shows only what was durable; a new reader sees it and may answer.
  auto after = f.Open();
  CHECK(QueryInt(after.get(), "SELECT count(*) FROM t") == 1);
  CHECK(storage::ObservedLsn(after.get()) == durable);
  CHECK(storage::WaitDurable(after.get()).ok());
  CHECK(Exec(after.get(), "INSERT INTO t VALUES (4)").rc != SQLITE_OK);  // stopped
}
