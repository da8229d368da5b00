// The branchdb VFS, one behaviour at a time: commits and their records, empty,
// unchanged and rolled-back transactions, refusals (journal modes, page size,
// exclusive locking), no escape to host files, errors at the commit point,
// VACUUM, time travel, large blobs and temp files.
#include <catch2/catch.hpp>

#include <string>

#include "base/env.h"
#include "storage/vfs/vfs.h"
#include "storage/vfs/vfs_internal.h"
#include "tests/util/fault_injection_env.h"
#include "tests/vfs/vfs_test_util.h"

namespace branchdb::testing {
namespace {

using storage::Lsn;
using storage::RecordKind;

TEST_CASE("a committed transaction is one store commit, readable after reopening the store") {
  StoreFixture fx;
  Lsn before = fx.store()->LastLsn();
  {
    auto db = fx.Open();
    MustExec(db.get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    Lsn create = storage::LastCommitLsn(db.get());
    CHECK(create == before + 1);
    MustExec(db.get(), "BEGIN; INSERT INTO t VALUES(1,'a'); INSERT INTO t VALUES(2,'b'); COMMIT");
    Lsn insert = storage::LastCommitLsn(db.get());
    CHECK(insert == create + 1);
    CHECK(fx.store()->LastLsn() == insert);
    CHECK(storage::SnapshotLsn(db.get()) == insert);
    auto record = fx.store()->GetRecord(insert);
    REQUIRE(record.ok());
    CHECK(record->kind == RecordKind::kCommit);
    CHECK(record->timeline == fx.timeline());
    CHECK(record->db_size_pages == 2);
    CHECK(!record->pages.empty());
  }
  fx.Reopen();
  auto db = fx.Open();
  CHECK(Query(db.get(), "SELECT * FROM t ORDER BY id") == "1|a\n2|b\n");
  CHECK(IntegrityCheck(db.get()) == "ok");
  CHECK(QueryInt(db.get(), "PRAGMA page_size") == 4096);
  CHECK(Query(db.get(), "PRAGMA journal_mode") == "memory\n");
}

TEST_CASE("transactions without changes make no commit") {
  StoreFixture fx;
  auto db = fx.Open();
  MustExec(db.get(), "CREATE TABLE t(x)");
  Lsn last = fx.store()->LastLsn();
  MustExec(db.get(), "BEGIN; COMMIT");
  MustExec(db.get(), "BEGIN IMMEDIATE; COMMIT");
  MustExec(db.get(), "BEGIN EXCLUSIVE; SELECT * FROM t; COMMIT");
  MustExec(db.get(), "SELECT count(*) FROM t");
  MustExec(db.get(), "DELETE FROM t WHERE x = 1");  // matches nothing
  CHECK(fx.store()->LastLsn() == last);
}

TEST_CASE("a transaction that writes pages back unchanged makes no commit") {
  StoreFixture fx;
  auto db = fx.Open();
  MustExec(db.get(), "CREATE TABLE t(x); CREATE TABLE u(k INTEGER PRIMARY KEY, v)");
  MustExec(db.get(), "INSERT INTO u VALUES(1, 'a'), (2, 'b')");
  const Lsn last = fx.store()->LastLsn();
  MustExec(db.get(), "DELETE FROM t");  // SQLite rewrites t's empty root page
  MustExec(db.get(), "UPDATE u SET v = v");
  MustExec(db.get(), "PRAGMA user_version = 0");  // rewrites page 1 with the same value
  MustExec(db.get(), "BEGIN; UPDATE u SET v = 'x' WHERE k = 1; UPDATE u SET v = 'a' WHERE k = 1; "
                     "COMMIT");
  CHECK(fx.store()->LastLsn() == last);
  CHECK(fx.store()->Head(fx.timeline()).value() == last);
  CHECK(storage::LastCommitLsn(db.get()) == last);
  CHECK(storage::SnapshotLsn(db.get()) == last);

  // A real change commits, and only the pages it changed: page 1 only when
  // more than its change counter changed (here, nothing else of it).
  MustExec(db.get(), "BEGIN; UPDATE u SET v = v; INSERT INTO t VALUES(1); COMMIT");
  CHECK(fx.store()->LastLsn() == last + 1);
  auto record = fx.store()->GetRecord(last + 1);
  REQUIRE(record.ok());
  const auto t_root = static_cast<storage::PageNo>(
      QueryInt(db.get(), "SELECT rootpage FROM sqlite_schema WHERE name = 't'"));
  CHECK(record->pages == std::vector<storage::PageNo>{t_root});
  CHECK(Query(db.get(), "SELECT x FROM t") == "1\n");
  CHECK(Query(db.get(), "SELECT k, v FROM u") == "1|a\n2|b\n");
  CHECK(IntegrityCheck(db.get()) == "ok");

  // A commit that grows the database stores page 1 (its size field).
  const uint32_t size = *fx.store()->DbSizeAt(last + 1);
  MustExec(db.get(), "INSERT INTO t VALUES(zeroblob(20000))");
  REQUIRE(*fx.store()->DbSizeAt(last + 2) > size);
  record = fx.store()->GetRecord(last + 2);
  REQUIRE(record.ok());
  CHECK(record->pages.front() == 1);
  auto other = fx.Open();
  CHECK(Dump(other.get()) == Dump(db.get()));
  CHECK(IntegrityCheck(other.get()) == "ok");
}

// Connection a caches a row and a page 1 it read from the store; connection
// b changes the row by a commit that leaves page 1 out (only its change
// counter would have changed), so the head's stored page 1 is exactly the
// one a holds. Returns what a reads afterwards.
std::string ReadAfterCounterOnlyCommit(StoreFixture& fx) {
  auto a = fx.Open();
  auto b = fx.Open();
  MustExec(a.get(), "BEGIN; CREATE TABLE u(k INTEGER PRIMARY KEY, v); "
                    "INSERT INTO u VALUES(1, 'old'); COMMIT");  // stores page 1
  REQUIRE(Query(a.get(), "SELECT v FROM u") == "old\n");  // in a's page cache
  const Lsn last = fx.store()->LastLsn();
  MustExec(b.get(), "UPDATE u SET v = 'new' WHERE k = 1");
  REQUIRE(fx.store()->LastLsn() == last + 1);
  auto record = fx.store()->GetRecord(last + 1);
  REQUIRE(record.ok());
  REQUIRE(record->pages == std::vector<storage::PageNo>{2});  // u's root, no page 1
  const std::string seen = Query(a.get(), "SELECT v FROM u");
  CHECK(Query(b.get(), "SELECT v FROM u") == "new\n");
  return seen;
}

TEST_CASE("a connection reads other connections' commits that left page 1 out") {
  {
    // Protection off: SQLite keeps its stale cache (the test is sharp).
    struct ProtectionOff {
      ProtectionOff() { storage::vfs_internal::SetCacheInvalidationForTesting(false); }
      ~ProtectionOff() { storage::vfs_internal::SetCacheInvalidationForTesting(true); }
    } off;
    StoreFixture fx;
    CHECK(ReadAfterCounterOnlyCommit(fx) == "old\n");
  }
  StoreFixture fx;
  CHECK(ReadAfterCounterOnlyCommit(fx) == "new\n");
  // And both go on writing and reading each other's commits.
  auto a = fx.Open();
  auto b = fx.Open();
  for (int i = 0; i < 20; ++i) {
    MustExec((i % 3 == 0 ? b : a).get(), "INSERT INTO u(v) VALUES(" + std::to_string(i) + ")");
    CHECK(QueryInt(a.get(), "SELECT count(*) FROM u") == i + 2);
    CHECK(QueryInt(b.get(), "SELECT count(*) FROM u") == i + 2);
  }
  CHECK(Dump(a.get()) == Dump(b.get()));
  CHECK(IntegrityCheck(a.get()) == "ok");
}

TEST_CASE("a never-written database stays empty after write transactions that write nothing") {
  StoreFixture fx;
  auto db = fx.Open();
  const Lsn created = fx.store()->LastLsn();
  MustExec(db.get(), "BEGIN IMMEDIATE; COMMIT");  // SQLite writes an empty database's page 1
  MustExec(db.get(), "BEGIN IMMEDIATE; CREATE TEMP TABLE x(a); INSERT INTO x VALUES(1); COMMIT");
  MustExec(db.get(), "PRAGMA user_version = 0");
  CHECK(fx.store()->LastLsn() == created);
  CHECK(*fx.store()->DbSizeAt(created) == 0);
  CHECK(QueryInt(db.get(), "SELECT a FROM temp.x") == 1);
  CHECK(Query(db.get(), "SELECT name FROM sqlite_schema") == "");

  // A setting in the header is a change.
  MustExec(db.get(), "PRAGMA user_version = 7");
  CHECK(fx.store()->LastLsn() == created + 1);
  auto other = fx.Open();
  CHECK(QueryInt(other.get(), "PRAGMA user_version") == 7);
  CHECK(IntegrityCheck(other.get()) == "ok");
}

// Connection a commits a transaction that changes nothing, so SQLite holds a
// page 1 whose change counter the store lacks; then connection b makes a
// real commit that lands on exactly that counter, size and freelist (and
// stores page 1: it also sets user_version). Returns what a reads afterwards.
std::string ReadAfterUnchangedCommit(StoreFixture& fx, bool never_written) {
  auto a = fx.Open();
  auto b = fx.Open();
  if (never_written) {
    MustExec(a.get(), "BEGIN IMMEDIATE; COMMIT");
    MustExec(b.get(), "PRAGMA user_version = 5");
    return Query(a.get(), "PRAGMA user_version");
  }
  MustExec(a.get(), "CREATE TABLE t(x); BEGIN; CREATE TABLE u(k INTEGER PRIMARY KEY, v); "
                    "INSERT INTO u VALUES(1, 'old'); COMMIT");  // stores page 1
  REQUIRE(Query(a.get(), "SELECT v FROM u") == "old\n");  // in a's page cache
  const Lsn last = fx.store()->LastLsn();
  MustExec(a.get(), "DELETE FROM t");
  REQUIRE(fx.store()->LastLsn() == last);
  MustExec(b.get(), "BEGIN; UPDATE u SET v = 'new' WHERE k = 1; PRAGMA user_version = 1; COMMIT");
  REQUIRE(fx.store()->LastLsn() == last + 1);
  return Query(a.get(), "SELECT v FROM u");
}

TEST_CASE("after a commit that changed nothing, the connection reads later commits of others") {
  for (bool never_written : {false, true}) {
    INFO("never_written " << never_written);
    {
      // Protection off: SQLite keeps its stale cache (the test is sharp).
      struct ProtectionOff {
        ProtectionOff() { storage::vfs_internal::SetCacheInvalidationForTesting(false); }
        ~ProtectionOff() { storage::vfs_internal::SetCacheInvalidationForTesting(true); }
      } off;
      StoreFixture fx;
      CHECK(ReadAfterUnchangedCommit(fx, never_written) == (never_written ? "0\n" : "old\n"));
    }
    StoreFixture fx;
    CHECK(ReadAfterUnchangedCommit(fx, never_written) == (never_written ? "5\n" : "new\n"));
  }
}

TEST_CASE("after a commit that changed nothing, both connections read and write on") {
  StoreFixture fx;
  auto a = fx.Open();
  auto b = fx.Open();
  MustExec(a.get(), "CREATE TABLE t(x); CREATE TABLE u(k INTEGER PRIMARY KEY, v)");
  MustExec(a.get(), "INSERT INTO u VALUES(1, 'a')");
  const Lsn last = fx.store()->LastLsn();
  MustExec(a.get(), "DELETE FROM t; UPDATE u SET v = v");
  CHECK(Query(a.get(), "SELECT v FROM u") == "a\n");
  MustExec(a.get(), "INSERT INTO u VALUES(2, 'b')");  // on the same connection
  CHECK(fx.store()->LastLsn() == last + 1);
  CHECK(Query(b.get(), "SELECT k, v FROM u") == "1|a\n2|b\n");
  MustExec(b.get(), "DELETE FROM t");
  MustExec(b.get(), "INSERT INTO t VALUES(3)");
  CHECK(fx.store()->LastLsn() == last + 2);
  CHECK(Query(a.get(), "SELECT x FROM t") == "3\n");
  MustExec(a.get(), "CREATE TABLE w(y)");  // the schema moves on too
  MustExec(b.get(), "INSERT INTO w VALUES(4)");
  CHECK(QueryInt(a.get(), "SELECT y FROM w") == 4);
  CHECK(Dump(a.get()) == Dump(b.get()));
  CHECK(IntegrityCheck(a.get()) == "ok");
  CHECK(IntegrityCheck(b.get()) == "ok");
}

TEST_CASE("a rolled-back transaction leaves no trace, also after spilling its cache") {
  StoreFixture fx;
  auto db = fx.Open(0, /*cache_pages=*/10);  // a small cache: pages spill mid-transaction
  MustExec(db.get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
  MustExec(db.get(), "INSERT INTO t VALUES(1, zeroblob(10000))");
  Lsn last = fx.store()->LastLsn();
  uint32_t size = *fx.store()->DbSize(fx.timeline(), last);
  std::string before = Dump(db.get());

  MustExec(db.get(), "BEGIN");
  for (int i = 2; i < 200; ++i) {
    MustExec(db.get(), "INSERT INTO t VALUES(" + std::to_string(i) + ", randomblob(3000))");
  }
  MustExec(db.get(), "UPDATE t SET b = randomblob(100) WHERE id = 1");
  MustExec(db.get(), "ROLLBACK");
  CHECK(fx.store()->LastLsn() == last);
  CHECK(*fx.store()->DbSize(fx.timeline(), last) == size);
  CHECK(Dump(db.get()) == before);
  CHECK(IntegrityCheck(db.get()) == "ok");

  // A savepoint rolled back inside a committed transaction: only the rest commits.
  MustExec(db.get(), "BEGIN; INSERT INTO t VALUES(500, x'01'); SAVEPOINT s;");
  for (int i = 0; i < 50; ++i) MustExec(db.get(), "INSERT INTO t(b) VALUES(randomblob(4000))");
  MustExec(db.get(), "ROLLBACK TO s; RELEASE s; COMMIT");
  CHECK(fx.store()->LastLsn() == last + 1);
  CHECK(QueryInt(db.get(), "SELECT count(*) FROM t") == 2);
  CHECK(IntegrityCheck(db.get()) == "ok");
  auto other = fx.Open();
  CHECK(Dump(other.get()) == Dump(db.get()));
}

TEST_CASE("the annotation is stored in the next commit record only") {
  StoreFixture fx;
  auto db = fx.Open();
  MustExec(db.get(), "CREATE TABLE t(x)");
  std::string bytes("who=agent-7\0what=insert", 23);
  REQUIRE(storage::SetNextCommitAnnotation(db.get(), bytes).ok());
  MustExec(db.get(), "BEGIN; COMMIT");  // empty: does not consume it
  MustExec(db.get(), "INSERT INTO t VALUES(1)");
  CHECK(fx.store()->GetRecord(storage::LastCommitLsn(db.get()))->annotation == bytes);
  MustExec(db.get(), "INSERT INTO t VALUES(2)");
  CHECK(fx.store()->GetRecord(storage::LastCommitLsn(db.get()))->annotation.empty());

  auto ro = fx.OpenAt(fx.timeline(), fx.store()->LastLsn());
  CHECK(storage::SetNextCommitAnnotation(ro.get(), "x").IsFailedPrecondition());
  CHECK(storage::LastCommitLsn(ro.get()) == 0);
}

TEST_CASE("journal modes other than MEMORY, page-size changes and exclusive locking are refused") {
  StoreFixture fx;
  auto db = fx.Open();
  MustExec(db.get(), "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
  for (const char* mode : {"WAL", "wal", "OFF", "DELETE", "TRUNCATE", "PERSIST"}) {
    ExecResult r = Exec(db.get(), std::string("PRAGMA journal_mode=") + mode);
    INFO(mode);
    CHECK(r.rc == SQLITE_ERROR);
    CHECK_THAT(r.message, Catch::Contains("journal_mode") && Catch::Contains("MEMORY"));
  }
  CHECK(Exec(db.get(), "PRAGMA main.journal_mode=WAL").rc == SQLITE_ERROR);
  MustExec(db.get(), "PRAGMA journal_mode=MEMORY");
  CHECK(Query(db.get(), "PRAGMA journal_mode") == "memory\n");

  ExecResult r = Exec(db.get(), "PRAGMA page_size=8192");
  CHECK(r.rc == SQLITE_ERROR);
  CHECK_THAT(r.message, Catch::Contains("page_size") && Catch::Contains("4096"));
  r = Exec(db.get(), "PRAGMA page_size=1024; VACUUM");
  CHECK(r.rc == SQLITE_ERROR);
  CHECK_THAT(r.message, Catch::Contains("page_size"));
  MustExec(db.get(), "PRAGMA page_size=4096; VACUUM");
  CHECK(QueryInt(db.get(), "PRAGMA page_size") == 4096);

  r = Exec(db.get(), "PRAGMA locking_mode=EXCLUSIVE");
  CHECK(r.rc == SQLITE_ERROR);
  CHECK_THAT(r.message, Catch::Contains("locking_mode"));
  MustExec(db.get(), "PRAGMA locking_mode=NORMAL");

  CHECK(Query(db.get(), "SELECT * FROM t") == "1\n");
  CHECK(IntegrityCheck(db.get()) == "ok");
}

TEST_CASE("VACUUM at the same page size works and shrinks the database") {
  StoreFixture fx;
  auto db = fx.Open();
  MustExec(db.get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB); CREATE INDEX ib ON t(b)");
  MustExec(db.get(), "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<400) "
                     "INSERT INTO t SELECT i, randomblob(1500) FROM n");
  MustExec(db.get(), "DELETE FROM t WHERE id % 10 != 0");
  std::string before = Dump(db.get());
  uint32_t size_before = *fx.store()->DbSize(fx.timeline(), fx.store()->LastLsn());
  CHECK(QueryInt(db.get(), "PRAGMA freelist_count") > 100);
  MustExec(db.get(), "VACUUM");
  uint32_t size_after = *fx.store()->DbSize(fx.timeline(), fx.store()->LastLsn());
  CHECK(size_after < size_before / 2);
  CHECK(QueryInt(db.get(), "PRAGMA page_count") == size_after);
  CHECK(QueryInt(db.get(), "PRAGMA freelist_count") == 0);
  CHECK(Dump(db.get()) == before);
  CHECK(IntegrityCheck(db.get()) == "ok");
  auto other = fx.Open();
  CHECK(Dump(other.get()) == before);
  CHECK(IntegrityCheck(other.get()) == "ok");
}

TEST_CASE("no file but the minted handles can be opened through the VFS") {
  StoreFixture fx;
  REQUIRE(storage::RegisterVfs().ok());
  TempDir host;
  const std::string path = host.Sub("escape.db");
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                           "branchdb");
  storage::SqliteHandle direct(raw);
  CHECK(rc == SQLITE_CANTOPEN);
  CHECK_FALSE(Env::Default()->FileExists(path));

  auto db = fx.Open();
  MustExec(db.get(), "CREATE TABLE t(x); INSERT INTO t VALUES(1)");
  for (const std::string& name :
       {path, std::string("branchdb-connection-1"), std::string("file:") + path,
        std::string("/etc/passwd")}) {
    ExecResult r = Exec(db.get(), "ATTACH '" + name + "' AS other");
    INFO(name);
    CHECK(r.rc != SQLITE_OK);
  }
  CHECK(Exec(db.get(), "VACUUM INTO '" + path + "'").rc != SQLITE_OK);
  CHECK_FALSE(Env::Default()->FileExists(path));
  // Temporary databases and files do work, in memory.
  MustExec(db.get(), "ATTACH '' AS scratch; CREATE TABLE scratch.s(x); INSERT INTO scratch.s "
                     "SELECT x FROM t; DETACH scratch");
  MustExec(db.get(), "PRAGMA temp_store=FILE; CREATE TEMP TABLE tt(a, b); "
                     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<20000) "
                     "INSERT INTO tt SELECT i, randomblob(200) FROM n");
  CHECK(QueryInt(db.get(), "SELECT count(*) FROM (SELECT b FROM tt ORDER BY b)") == 20000);
  auto children = Env::Default()->GetChildren(host.path());
  REQUIRE(children.ok());
  CHECK(children->empty());
}

TEST_CASE("OpenConnection validates its options") {
  StoreFixture fx;
  storage::ConnectionOptions options;
  CHECK(storage::OpenConnection(options).status().IsInvalidArgument());
  options.store = fx.store();
  CHECK(storage::OpenConnection(options).status().IsInvalidArgument());
  options.timeline = 12345;
  CHECK(storage::OpenConnection(options).status().IsNotFound());
  auto branch = fx.store()->CreateTimeline(0, "later");
  REQUIRE(branch.ok());
  options.timeline = *branch;
  options.as_of = fx.store()->Head(fx.timeline()).value();  // before the branch existed
  CHECK(storage::OpenConnection(options).status().IsNotFound());
}

TEST_CASE("a connection as of an LSN reads exactly that state and cannot write") {
  StoreFixture fx;
  auto db = fx.Open();
  std::vector<std::pair<Lsn, std::string>> states;
  states.emplace_back(fx.store()->Head(fx.timeline()).value(), Dump(db.get()));
  MustExec(db.get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  states.emplace_back(storage::LastCommitLsn(db.get()), Dump(db.get()));
  for (int i = 0; i < 5; ++i) {
    MustExec(db.get(), "INSERT INTO t(v) VALUES(randomblob(5000)); DELETE FROM t WHERE id = " +
                           std::to_string(i - 1));
    states.emplace_back(storage::LastCommitLsn(db.get()), Dump(db.get()));
  }
  for (const auto& [lsn, dump] : states) {
    auto ro = fx.OpenAt(fx.timeline(), lsn);
    INFO("lsn " << lsn);
    CHECK(Dump(ro.get()) == dump);
    CHECK(storage::SnapshotLsn(ro.get()) == lsn);
    if (lsn > states.front().first) {
      CHECK(IntegrityCheck(ro.get()) == "ok");
      ExecResult r = Exec(ro.get(), "INSERT INTO t(v) VALUES(1)");
      CHECK((r.rc & 0xff) == SQLITE_READONLY);
    }
  }
  CHECK(fx.store()->LastLsn() == states.back().first);
}

TEST_CASE("large blobs on overflow pages round-trip") {
  StoreFixture fx;
  auto db = fx.Open(0, 50);
  MustExec(db.get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
  MustExec(db.get(), "INSERT INTO t VALUES(1, randomblob(5000000)), (2, randomblob(70000))");
  std::string expect = Query(db.get(), "SELECT id, length(b), hex(substr(b, 4000000, 8)) FROM t");
  std::string digest = Query(db.get(), "SELECT b FROM t ORDER BY id");
  auto other = fx.Open();
  CHECK(Query(other.get(), "SELECT id, length(b), hex(substr(b, 4000000, 8)) FROM t") == expect);
  CHECK(Query(other.get(), "SELECT b FROM t ORDER BY id") == digest);
  CHECK(IntegrityCheck(other.get()) == "ok");
}

TEST_CASE("a store failure at the commit point fails the COMMIT and leaves the branch unchanged") {
  FaultInjectionEnv env;
  StoreFixture fx(&env);
  auto db = fx.Open();
  MustExec(db.get(), "CREATE TABLE t(x); INSERT INTO t VALUES('kept')");
  Lsn head = fx.store()->Head(fx.timeline()).value();
  std::string before = Dump(db.get());

  // From now on every fsync fails: the store cannot make a commit durable.
  env.FailNth(1, FaultType::kIOError, /*sticky=*/true, kOpSync);
  MustExec(db.get(), "BEGIN; INSERT INTO t VALUES('lost'); CREATE TABLE u(y)");
  ExecResult r = Exec(db.get(), "COMMIT");
  CHECK((r.rc & 0xff) == SQLITE_IOERR);
  CHECK(r.rc == SQLITE_IOERR_WRITE);
  Status cause = storage::LastVfsError(db.get());
  INFO(cause.ToString());
  CHECK(cause.IsIOError());
  CHECK_THAT(cause.message(), Catch::Contains("commit"));
  CHECK(fx.store()->Head(fx.timeline()).value() == head);
  CHECK(sqlite3_get_autocommit(db.get()) == 1);
  // The same connection and a new one both read the branch as it was.
  CHECK(Dump(db.get()) == before);
  CHECK(IntegrityCheck(db.get()) == "ok");
  auto other = fx.Open();
  CHECK(Dump(other.get()) == before);
}

// The timeline is reset, between BEGIN and COMMIT, onto a sibling state whose
// page 1 equals the one the failed transaction wrote (same change counter,
// same size): SQLite's cache still holds that transaction's pages. (Each
// commit sets user_version, so that each stores page 1: a commit whose page 1
// changed in its counter only leaves it out.)
std::string ResetUnderTransaction(StoreFixture& fx, sqlite3* db, ExecResult* commit) {
  MustExec(db, "CREATE TABLE t(x); INSERT INTO t VALUES('v1')");
  MustExec(db, "BEGIN; INSERT INTO t VALUES('v2'); PRAGMA user_version = 2; COMMIT");
  Lsn v2 = storage::LastCommitLsn(db);
  auto sibling = fx.store()->CreateTimeline(fx.timeline(), v2, "sibling");
  REQUIRE(sibling.ok());
  {
    auto sdb = fx.Open(*sibling);
    MustExec(sdb.get(), "BEGIN; INSERT INTO t VALUES('other'); PRAGMA user_version = 3; COMMIT");
  }
  MustExec(db, "BEGIN; INSERT INTO t VALUES('lost')");
  auto reset = fx.store()->ResetTimeline(fx.timeline(), v2,
                                         fx.store()->Head(*sibling).value(), "reset");
  REQUIRE(reset.ok());
  *commit = Exec(db, "COMMIT");
  return Query(db, "SELECT x FROM t");
}

TEST_CASE("a reset between BEGIN and COMMIT makes the COMMIT fail with SQLITE_BUSY_SNAPSHOT") {
  SECTION("protection off: the failed transaction's rows stay visible (the test is sharp)") {
    storage::vfs_internal::SetCacheInvalidationForTesting(false);
    StoreFixture fx;
    auto db = fx.Open();
    ExecResult commit;
    std::string seen = ResetUnderTransaction(fx, db.get(), &commit);
    storage::vfs_internal::SetCacheInvalidationForTesting(true);
    CHECK(commit.rc == SQLITE_BUSY_SNAPSHOT);
    CHECK(seen == "v1\nv2\nlost\n");
  }
  SECTION("protection on") {
    StoreFixture fx;
    auto db = fx.Open();
    const Lsn before = fx.store()->LastLsn();
    ExecResult commit;
    std::string seen = ResetUnderTransaction(fx, db.get(), &commit);
    CHECK(commit.rc == SQLITE_BUSY_SNAPSHOT);
    Status cause = storage::LastVfsError(db.get());
    CHECK(cause.IsConflict());
    CHECK(cause.reason() == "head_moved");
    CHECK(fx.store()->LastLsn() == before + 6);  // 3 commits, create, commit, reset: no more
    CHECK(fx.store()->GetRecord(fx.store()->Head(fx.timeline()).value())->kind ==
          storage::RecordKind::kReset);
    CHECK(sqlite3_get_autocommit(db.get()) == 1);
    // The connection reads the reset state, and writes on top of it.
    CHECK(seen == "v1\nv2\nother\n");
    MustExec(db.get(), "INSERT INTO t VALUES('after')");
    CHECK(Query(db.get(), "SELECT x FROM t") == "v1\nv2\nother\nafter\n");
    CHECK(IntegrityCheck(db.get()) == "ok");
    CHECK(storage::LastVfsError(db.get()).ok());
  }
}

TEST_CASE("sqlite3_backup into a branch works at 4096-byte pages and is refused at others") {
  StoreFixture fx;
  auto db = fx.Open();
  MustExec(db.get(), "CREATE TABLE keep(x); INSERT INTO keep VALUES('kept')");
  const std::string before = Dump(db.get());
  const Lsn head = fx.store()->Head(fx.timeline()).value();
  auto backup = [&](int page_size) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(":memory:", &raw) == SQLITE_OK);
    storage::SqliteHandle src(raw);
    MustExec(src.get(), "PRAGMA page_size=" + std::to_string(page_size) +
                            "; CREATE TABLE imported(a, b); INSERT INTO imported "
                            "VALUES(1, randomblob(10000)), (2, 'two')");
    sqlite3_backup* b = sqlite3_backup_init(db.get(), "main", src.get(), "main");
    REQUIRE(b != nullptr);
    int rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    return rc;
  };
  CHECK(backup(1024) != SQLITE_DONE);
  CHECK(fx.store()->Head(fx.timeline()).value() == head);
  CHECK(Dump(db.get()) == before);
  CHECK(backup(4096) == SQLITE_DONE);
  CHECK(Query(db.get(), "SELECT a, length(b) FROM imported") == "1|10000\n2|3\n");
  CHECK(IntegrityCheck(db.get()) == "ok");
  auto other = fx.Open();
  CHECK(Dump(other.get()) == Dump(db.get()));
}

}  // namespace
}  // namespace branchdb::testing
