// StmtCache (catalog/catalog_internal.h): the statements of a request's
// catalog and ledger queries, kept prepared across uses. A kept statement
// comes back reset, with no bindings; one in use twice at once is prepared
// twice; a schema change under a kept statement is SQLite's to handle.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "catalog/catalog_internal.h"

namespace branchdb::catalog {
namespace {

struct MemoryDb {
  MemoryDb() {
    REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);"
                         "INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  ~MemoryDb() {
    cache.Clear();  // before the connection closes
    sqlite3_close(db);
  }
  sqlite3* db = nullptr;
  StmtCache cache;
};

constexpr const char* kByKey = "SELECT v FROM t WHERE k = ?1";
constexpr const char* kAll = "SELECT * FROM t ORDER BY k";

TEST_CASE("a kept statement is prepared once and comes back reset, without bindings") {
  MemoryDb m;
  sqlite3_stmt* first = nullptr;
  {
    Stmt s(m.cache, m.db, kByKey);
    REQUIRE(s.ok());
    first = s.get();
    s.Bind(1, 2);
    REQUIRE(s.Step() == SQLITE_ROW);
    CHECK(s.Text(0) == "two");
  }
  {
    Stmt s(m.cache, m.db, kAll);  // stepped once, left mid-way
    REQUIRE(s.Step() == SQLITE_ROW);
  }
  {
    Stmt s(m.cache, m.db, kByKey);
    CHECK(s.get() == first);         // the kept one
    CHECK(s.Step() == SQLITE_DONE);  // ?1 unbound: NULL, no row
  }
  Stmt s(m.cache, m.db, kAll);
  // Reset: not mid-way, so it holds no read transaction (which would keep a
  // file database's writers out).
  CHECK(sqlite3_stmt_busy(s.get()) == 0);
  REQUIRE(s.Step() == SQLITE_ROW);
  CHECK(s.Int(0) == 1);  // from the first row again
}

TEST_CASE("a statement in use twice at once is prepared twice, and one copy is kept") {
  MemoryDb m;
  sqlite3_stmt* outer_stmt = nullptr;
  {
    Stmt outer(m.cache, m.db, kByKey);
    outer_stmt = outer.get();
    outer.Bind(1, 1);
    REQUIRE(outer.Step() == SQLITE_ROW);
    {
      Stmt inner(m.cache, m.db, kByKey);
      REQUIRE(inner.ok());
      CHECK(inner.get() != outer.get());
      inner.Bind(1, 3);
      REQUIRE(inner.Step() == SQLITE_ROW);
      CHECK(inner.Text(0) == "three");
    }                               // kept
    CHECK(outer.Text(0) == "one");  // untouched by the inner use
  }                                 // a second copy: finalized (ASan reports it if it leaked)
  Stmt again(m.cache, m.db, kByKey);
  CHECK(again.get() != outer_stmt);  // the inner one was kept first
  again.Bind(1, 2);
  REQUIRE(again.Step() == SQLITE_ROW);
  CHECK(again.Text(0) == "two");
}

TEST_CASE("a kept statement sees a schema change; one that does not prepare is not kept") {
  MemoryDb m;
  {
    Stmt s(m.cache, m.db, kAll);
    REQUIRE(s.Step() == SQLITE_ROW);
    CHECK(sqlite3_column_count(s.get()) == 2);
  }
  REQUIRE(sqlite3_exec(m.db, "ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 7", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  {
    Stmt s(m.cache, m.db, kAll);
    REQUIRE(s.Step() == SQLITE_ROW);
    CHECK(sqlite3_column_count(s.get()) == 3);
    CHECK(s.Int(2) == 7);
  }
  Stmt bad(m.cache, m.db, "SELECT nope FROM missing");
  CHECK_FALSE(bad.ok());
  CHECK(bad.Step() != SQLITE_ROW);
}

}  // namespace
}  // namespace branchdb::catalog
