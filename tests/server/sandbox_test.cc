// The SQL sandbox on native SQLite connections: what untrusted SQL must not do,
// limits that cut or stop work, parameters, atomicity, values.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <string>

#include "server/sql/sandbox.h"
#include "tests/util/temp_dir.h"

namespace branchdb::server::sql {
namespace {

using nlohmann::json;

class SandboxFixture {
 public:
  explicit SandboxFixture(SandboxOptions options = {}) {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open_v2(dir_.Sub("db.sqlite").c_str(), &raw,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK);
    db_.reset(raw);
    if (options.clock == nullptr) options.clock = Clock::Default();
    auto sb = Sandbox::Attach(db_.get(), options);
    REQUIRE(sb.ok());
    sandbox_ = std::move(*sb);
  }

  Result<ScriptResult> Run(const std::string& sql, json params = nullptr, bool read_only = false) {
    Script s;
    s.sql = sql;
    s.params = std::move(params);
    s.read_only = read_only;
    return sandbox_->Execute(s, &last_error_);
  }

  Result<ScriptResult> Run(const Script& s) { return sandbox_->Execute(s, &last_error_); }

  // Runs with results cut at the caps (Script::truncate), requires success.
  ScriptResult Cut(const std::string& sql) {
    Script s;
    s.sql = sql;
    s.truncate = true;
    auto r = Run(s);
    INFO(sql << " -> " << (r.ok() ? "ok" : r.status().ToString()));
    REQUIRE(r.ok());
    return std::move(*r);
  }

  // Runs and requires success.
  ScriptResult Ok(const std::string& sql, json params = nullptr) {
    auto r = Run(sql, std::move(params));
    INFO(sql << " -> " << (r.ok() ? "ok" : r.status().ToString()));
    REQUIRE(r.ok());
    return std::move(*r);
  }

  // Runs, requires failure, returns the reason.
  std::string Reason(const std::string& sql, json params = nullptr, bool read_only = false) {
    auto r = Run(sql, std::move(params), read_only);
    INFO(sql);
    REQUIRE_FALSE(r.ok());
    return r.status().reason();
  }

  json Query(const std::string& sql) { return Ok(sql).statements.back().rows; }

  Sandbox& sandbox() { return *sandbox_; }
  const ScriptError& last_error() const { return last_error_; }
  const testing::TempDir& dir() const { return dir_; }

 private:
  testing::TempDir dir_;
  storage::SqliteHandle db_;
  std::unique_ptr<Sandbox> sandbox_;
  ScriptError last_error_;
};

TEST_CASE("ATTACH, DETACH and VACUUM INTO are refused", "[sandbox]") {
  SandboxFixture f;
  std::string other = f.dir().Sub("other.db");
  CHECK(f.Reason("ATTACH DATABASE '" + other + "' AS o") == "sql_forbidden");
  CHECK(f.Reason("DETACH DATABASE main") == "sql_forbidden");
  CHECK(f.Reason("VACUUM INTO '" + other + "'") == "sql_forbidden");
  FILE* leaked = std::fopen(other.c_str(), "rb");
  CHECK(leaked == nullptr);
  if (leaked) std::fclose(leaked);
}

TEST_CASE("extension loading is refused", "[sandbox]") {
  SandboxFixture f;
  CHECK(f.Reason("SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')") == "sql_forbidden");
}

TEST_CASE("dangerous PRAGMAs are refused, allow-listed ones work", "[sandbox]") {
  SandboxFixture f;
  CHECK(f.Reason("PRAGMA writable_schema = ON") == "sql_forbidden");
  CHECK(f.Reason("PRAGMA writable_schema") == "sql_forbidden");
  CHECK(f.Reason("PRAGMA journal_mode = WAL") == "sql_forbidden");
  CHECK(f.Reason("PRAGMA journal_mode = OFF") == "sql_forbidden");
  CHECK(f.Reason("PRAGMA locking_mode = EXCLUSIVE") == "sql_forbidden");
  CHECK(f.Reason("PRAGMA synchronous = OFF") == "sql_forbidden");
  CHECK(f.Reason("PRAGMA page_size = 512") == "sql_forbidden");
  CHECK(f.Reason("PRAGMA max_page_count = 999999999") == "sql_forbidden");

  f.Ok("CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT)");
  auto info = f.Query("PRAGMA table_info(t)");
  CHECK(info.size() == 2);
  f.Ok("PRAGMA user_version = 7");
  CHECK(f.Query("PRAGMA user_version") == json::array({json::array({7})}));
  CHECK(f.Query("PRAGMA integrity_check") == json::array({json::array({"ok"})}));
}

TEST_CASE("transaction control inside a script is refused", "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE t(a)");
  CHECK(f.Reason("INSERT INTO t VALUES (1); COMMIT; INSERT INTO t VALUES (2)") == "sql_forbidden");
  CHECK(f.Query("SELECT count(*) FROM t") == json::array({json::array({0})}));
  // A script's savepoints are fine.
  f.Ok("SAVEPOINT s; INSERT INTO t VALUES (1); ROLLBACK TO s; RELEASE s; INSERT INTO t VALUES (2)");
  CHECK(f.Query("SELECT a FROM t") == json::array({json::array({2})}));
}

TEST_CASE("a 10 MB SQL string is refused before it runs", "[sandbox]") {
  SandboxFixture f;
  std::string sql = "SELECT '" + std::string(10 << 20, 'x') + "'";
  CHECK(f.Reason(sql) == "sql_too_long");
}

TEST_CASE("SQLite's own SQL length limit holds too", "[sandbox]") {
  SandboxOptions o;
  o.max_sql_bytes = 1000;
  SandboxFixture f(o);
  // Under the script cap but... the same cap is SQLite's SQLITE_LIMIT_SQL_LENGTH.
  CHECK(f.Reason("SELECT '" + std::string(2000, 'y') + "'") == "sql_too_long");
}

TEST_CASE("a runaway recursive CTE is stopped by the statement timeout", "[sandbox]") {
  SandboxOptions o;
  o.statement_timeout_ms = 200;
  SandboxFixture f(o);
  f.Ok("CREATE TABLE t(a)");
  CHECK(f.Reason("INSERT INTO t VALUES (1);"
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                 "SELECT count(*) FROM c") == "statement_timeout");
  CHECK(f.last_error().statement == 1);
  // Rolled back whole, and the connection still works.
  CHECK(f.Query("SELECT count(*) FROM t") == json::array({json::array({0})}));
}

TEST_CASE("the timeout reads the injected clock", "[sandbox]") {
  // A clock that jumps 1 s on every read: any statement long enough to reach
  // the progress handler twice is past a 1.5 s deadline.
  struct JumpingClock : Clock {
    int64_t t = 0;
    int64_t NowMicros() override { return t / 1000; }
    int64_t NowMonotonicNanos() override { return t += 1000000000; }
    void SleepForMicros(int64_t) override {}
  } clock;
  SandboxOptions o;
  o.clock = &clock;
  o.statement_timeout_ms = 1500;
  SandboxFixture f(o);
  CHECK(f.Reason("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)"
                 " SELECT count(*) FROM c") == "statement_timeout");
}

TEST_CASE("a result past the row or byte cap fails the script: nothing is cut silently",
          "[sandbox]") {
  SandboxOptions o;
  o.max_result_rows = 10;
  o.max_result_bytes = 10000;
  SandboxFixture f(o);
  f.Ok("CREATE TABLE n(i); "
       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) "
       "INSERT INTO n SELECT x FROM c");
  CHECK(f.Reason("INSERT INTO n VALUES (0); SELECT i FROM n") == "result_too_large");
  CHECK(f.last_error().statement == 1);
  CHECK(f.Query("SELECT count(*) FROM n") == json::array({json::array({20})}));  // rolled back
  CHECK(f.Reason("SELECT printf('%2000d', i) FROM n LIMIT 9") == "result_too_large");
  CHECK(f.Ok("SELECT i FROM n LIMIT 10").statements[0].rows.size() == 10);  // at the cap: whole
}

TEST_CASE("paging: one statement, a page of rows after skipped ones", "[sandbox]") {
  SandboxOptions o;
  o.max_result_rows = 10;
  SandboxFixture f(o);
  f.Ok("CREATE TABLE n(i); "
       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 25) "
       "INSERT INTO n SELECT x FROM c");
  Script s;
  s.sql = "SELECT i FROM n ORDER BY i";
  s.read_only = true;
  s.paged = true;
  s.skip_rows = 20;
  s.page_rows = 4;
  auto page = f.Run(s);
  REQUIRE(page.ok());
  CHECK(page->statements[0].rows == json::parse("[[21],[22],[23],[24]]"));
  CHECK(page->statements[0].truncated);
  s.skip_rows = 24;
  auto last = f.Run(s);
  REQUIRE(last.ok());
  CHECK(last->statements[0].rows == json::parse("[[25]]"));
  CHECK_FALSE(last->statements[0].truncated);
  s.sql = "SELECT 1; SELECT 2";
  REQUIRE_FALSE(f.Run(s).ok());
  CHECK(f.last_error().status.reason() == "invalid_argument");
}

TEST_CASE("a cartesian product of millions of rows is cut by the row cap", "[sandbox]") {
  SandboxOptions o;
  o.max_result_rows = 500;
  SandboxFixture f(o);
  f.Ok("CREATE TABLE n(i); "
       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
       "INSERT INTO n SELECT x FROM c");
  auto r = f.Cut("SELECT a.i, b.i FROM n a, n b; SELECT count(*) FROM n");  // 4,000,000 rows
  REQUIRE(r.statements.size() == 2);
  CHECK(r.statements[0].truncated);
  CHECK(r.statements[0].rows.size() == 500);
  CHECK_FALSE(r.statements[1].truncated);
  CHECK(r.statements[1].rows == json::array({json::array({2000})}));
}

TEST_CASE("the byte cap cuts results across statements", "[sandbox]") {
  SandboxOptions o;
  o.max_result_bytes = 10000;
  SandboxFixture f(o);
  auto r = f.Cut(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
      "SELECT x, printf('%100d', x) FROM c");
  CHECK(r.statements[0].truncated);
  CHECK(r.statements[0].rows.size() < 1000);
  CHECK(r.statements[0].rows.size() > 50);
}

TEST_CASE("parameters: consumed in order across statements", "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE t(a, b)");
  auto r = f.Ok("INSERT INTO t VALUES (?, ?); INSERT INTO t VALUES (?, ?)",
                json::array({1, "one", 2, nullptr}));
  CHECK(r.statements[0].rows_affected == 1);
  CHECK(f.Query("SELECT a, b FROM t ORDER BY a") ==
        json::array({json::array({1, "one"}), json::array({2, nullptr})}));

  f.Ok("INSERT INTO t VALUES (:a, @b)", json{{"a", 3}, {"@b", true}});
  CHECK(f.Query("SELECT b FROM t WHERE a = 3") == json::array({json::array({1})}));

  CHECK(f.Reason("INSERT INTO t VALUES (?, ?)", json::array({1})) == "invalid_params");
  CHECK(f.Reason("INSERT INTO t VALUES (?, ?)", json::array({1, 2, 3})) == "invalid_params");
  CHECK(f.Reason("INSERT INTO t VALUES (:a, :b)", json{{"a", 1}}) == "invalid_params");
  CHECK(f.Reason("INSERT INTO t VALUES (?, ?)", json{{"a", 1}}) == "invalid_params");
  CHECK(f.Reason("INSERT INTO t VALUES (?, ?)", json::array({1, json::array()})) ==
        "invalid_params");
  CHECK(f.Reason("INSERT INTO t VALUES (?, ?)") == "invalid_params");
  CHECK(f.Query("SELECT count(*) FROM t") == json::array({json::array({3})}));
}

TEST_CASE("an error in statement 3 rolls back statements 1 and 2", "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE t(a PRIMARY KEY)");
  CHECK(f.Reason("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); INSERT INTO t VALUES (1)") ==
        "sql_error");
  CHECK(f.last_error().statement == 2);
  CHECK(f.last_error().details() == json{{"statement", 2}, {"sql", "INSERT INTO t VALUES (1)"}});
  CHECK(f.Query("SELECT count(*) FROM t") == json::array({json::array({0})}));

  CHECK(f.Reason("INSERT INTO t VALUES (1); SELEC 1") == "sql_error");
  CHECK(f.Query("SELECT count(*) FROM t") == json::array({json::array({0})}));
}

TEST_CASE("the before-commit hook runs last and can veto", "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE t(a)");
  int calls = 0;
  Script s;
  s.sql = "INSERT INTO t VALUES (1)";
  s.before_commit = [&] {
    ++calls;
    return Status::FailedPrecondition("vetoed", "test_veto");
  };
  auto r = f.sandbox().Execute(s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "test_veto");
  CHECK(calls == 1);
  CHECK(f.Query("SELECT count(*) FROM t") == json::array({json::array({0})}));

  s.before_commit = [&] {
    ++calls;
    return Status::OK();
  };
  auto ok = f.sandbox().Execute(s);
  REQUIRE(ok.ok());
  CHECK(ok->changed);
  CHECK(calls == 2);
  CHECK(f.Query("SELECT count(*) FROM t") == json::array({json::array({1})}));
}

TEST_CASE("read-only scripts cannot write, checked by SQLite", "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE t(a)");
  CHECK(f.Reason("INSERT INTO t VALUES (1)", nullptr, true) == "read_only");
  CHECK(f.Reason("CREATE TABLE u(a)", nullptr, true) == "read_only");
  CHECK(f.Reason("PRAGMA user_version = 3", nullptr, true) == "read_only");
  CHECK(f.Reason("WITH x AS (SELECT 1) DELETE FROM t", nullptr, true) == "read_only");
  auto r = f.Run("SELECT count(*) FROM t", nullptr, true);
  REQUIRE(r.ok());
  CHECK_FALSE(r->changed);
  // Table-valued pragmas read (SQLite reports an "update" of the schema table
  // while preparing them); the schema table itself stays unwritable.
  auto cols = f.Run("SELECT name FROM pragma_table_info('t')", nullptr, true);
  REQUIRE(cols.ok());
  CHECK(cols->statements.back().rows == json::array({json::array({"a"})}));
  CHECK(f.Reason("UPDATE sqlite_master SET sql = '' WHERE name = 't'", nullptr, true) != "");
  CHECK(f.Reason("UPDATE sqlite_master SET sql = '' WHERE name = 't'") != "");
  // The next read-write script writes again.
  f.Ok("INSERT INTO t VALUES (1)");
}

TEST_CASE("values map to JSON and BLOBs round-trip", "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE v(i INTEGER, r REAL, t TEXT, n, b BLOB)");
  std::string bytes("\x00\x01\xfe\xff binary\n", 12);
  f.Ok("INSERT INTO v VALUES (?, ?, ?, ?, ?)",
       json::array({9007199254740993LL, 1.5, "héllo", nullptr, BlobToJson(bytes)}));
  auto rows = f.Query("SELECT i, r, t, n, b, typeof(b), length(b) FROM v");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][0] == 9007199254740993LL);
  CHECK(rows[0][1] == 1.5);
  CHECK(rows[0][2] == "héllo");
  CHECK(rows[0][3].is_null());
  CHECK(rows[0][4] == BlobToJson(bytes));
  CHECK(rows[0][5] == "blob");
  CHECK(rows[0][6] == 12);
  auto back = Base64Decode(rows[0][4]["$blob"].get<std::string>());
  REQUIRE(back.ok());
  CHECK(*back == bytes);
  CHECK(f.Query("SELECT 1e999") == json::array({json::array({nullptr})}));
  CHECK(f.Reason("SELECT ?", json::array({json{{"$blob", "not base64!"}}})) == "invalid_params");
  // Strict base64: padding only at the end, never standing for a lone sextet.
  for (const char* bad : {"A===", "AA==AA==", "AA=A", "====", " AAA"}) {
    INFO(bad);
    CHECK_FALSE(Base64Decode(bad).ok());
  }
  CHECK(*Base64Decode("AA==") == std::string(1, '\0'));
}

TEST_CASE("results carry columns and rows_affected", "[sandbox]") {
  SandboxFixture f;
  auto r = f.Ok("CREATE TABLE t(a, b); INSERT INTO t VALUES (1,2),(3,4); "
                "UPDATE t SET b = b + 1; SELECT a AS x, b FROM t ORDER BY a; -- trailing comment\n");
  REQUIRE(r.statements.size() == 4);
  CHECK(r.statements[0].rows_affected == 0);
  CHECK(r.statements[1].rows_affected == 2);
  CHECK(r.statements[2].rows_affected == 2);
  CHECK(r.statements[3].rows_affected == 0);
  CHECK(r.statements[3].columns == std::vector<std::string>{"x", "b"});
  json j = r.ToJson();
  CHECK(j["results"][3]["rows"] == json::array({json::array({1, 3}), json::array({3, 5})}));
  CHECK(j["results"][3]["truncated"] == false);
}

TEST_CASE("the SQL answer's text is the document's dump, byte for byte", "[sandbox]") {
  SandboxFixture f;
  // Names and values that need escaping, invalid UTF-8, a blob, a float, a
  // null, several statements.
  auto r = f.Ok("CREATE TABLE t(\"a\"\"\\\n\", b); INSERT INTO t VALUES ('x\"\\\t', 1.5); "
                "INSERT INTO t VALUES (CAST(x'ff41' AS TEXT), x'00ff'); "
                "SELECT *, NULL AS n, 9007199254740993 AS big FROM t ORDER BY rowid");
  auto dom = [&](std::optional<uint64_t> lsn, uint64_t snapshot, bool read_only,
                 std::optional<std::string> cursor) {
    json out = r.ToJson();
    out["lsn"] = lsn ? json(*lsn) : json(nullptr);
    out["snapshot_lsn"] = snapshot;
    out["read_only"] = read_only;
    out["next_cursor"] = cursor ? json(*cursor) : json(nullptr);
    return out.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  CHECK(r.AnswerJson(std::nullopt, 7, true, std::nullopt) == dom(std::nullopt, 7, true, std::nullopt));
  CHECK(r.AnswerJson(18446744073709551615ull, 0, false, "v1.3.4.5.00ff") ==
        dom(18446744073709551615ull, 0, false, "v1.3.4.5.00ff"));
  ScriptResult empty;
  CHECK(empty.AnswerJson(1, 2, false, std::nullopt) ==
        "{\"lsn\":1,\"next_cursor\":null,\"read_only\":false,\"results\":[],\"snapshot_lsn\":2}");
}

TEST_CASE("the per-branch size cap stops growth", "[sandbox]") {
  SandboxOptions o;
  o.max_db_bytes = 64 * 4096;
  SandboxFixture f(o);
  f.Ok("CREATE TABLE t(a)");
  CHECK(f.Reason("INSERT INTO t SELECT randomblob(1000) FROM "
                 "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000) "
                 "SELECT x FROM c)") == "branch_size_limit");
  CHECK(f.Query("SELECT count(*) FROM t") == json::array({json::array({0})}));
}

TEST_CASE("defensive mode and untrusted schema are on", "[sandbox]") {
  SandboxFixture f;
  int v = -1;
  sqlite3_db_config(f.sandbox().db(), SQLITE_DBCONFIG_DEFENSIVE, -1, &v);
  CHECK(v == 1);
  sqlite3_db_config(f.sandbox().db(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, -1, &v);
  CHECK(v == 0);
  sqlite3_db_config(f.sandbox().db(), SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, -1, &v);
  CHECK(v == 0);
  CHECK(sqlite3_limit(f.sandbox().db(), SQLITE_LIMIT_ATTACHED, -1) == 0);
}


// --- No state of one script reaches the next (issue 13, items 2 and 16) -----

int64_t FileSize(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return -1;
  std::fseek(file, 0, SEEK_END);
  int64_t size = std::ftell(file);
  std::fclose(file);
  return size;
}

TEST_CASE("a script that changes nothing commits nothing, also on a never-written database",
          "[sandbox]") {
  SandboxFixture f;
  auto r = f.Ok("SELECT 1; SELECT count(*) FROM sqlite_schema");
  CHECK_FALSE(r.changed);
  // BEGIN IMMEDIATE alone initializes page 1 of an empty database: COMMIT
  // would write it.
  CHECK(FileSize(f.dir().Sub("db.sqlite")) == 0);
  CHECK(f.Ok("CREATE TABLE t(a)").changed);
  CHECK(FileSize(f.dir().Sub("db.sqlite")) > 0);
}

TEST_CASE("no TEMP object outlives its script, and within it TEMP objects work", "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE t(v)");
  f.Ok("CREATE TEMP TABLE s(a); INSERT INTO s VALUES ('x'); CREATE INDEX temp.si ON s(a); "
       "CREATE TEMP VIEW w AS SELECT a FROM s; "
       "CREATE TEMP TRIGGER \"sp\"\"y\" AFTER INSERT ON t BEGIN "
       "  UPDATE t SET v = 'rewritten' WHERE rowid = new.rowid; END; "
       "INSERT INTO t SELECT a FROM w");
  CHECK(f.Query("SELECT v FROM t") == json::parse(R"([["rewritten"]])"));  // its own write
  CHECK(f.Query("SELECT count(*) FROM temp.sqlite_schema") == json::parse("[[0]]"));
  f.Ok("INSERT INTO t VALUES ('mine')");
  CHECK(f.Query("SELECT v FROM t WHERE rowid = 2") == json::parse(R"([["mine"]])"));
  CHECK(f.Reason("SELECT * FROM s") == "sql_error");
  // A failed script's TEMP objects go with its rollback.
  CHECK(f.Reason("CREATE TEMP TABLE z(a); SELEC") == "sql_error");
  CHECK(f.Query("SELECT count(*) FROM temp.sqlite_schema") == json::parse("[[0]]"));
}

TEST_CASE("a script sees no connection state of the one before it", "[sandbox]") {
  SandboxFixture f;
  const json recursive = f.Query("PRAGMA recursive_triggers");
  f.Ok("CREATE TABLE t(a INTEGER PRIMARY KEY, b); INSERT INTO t(b) VALUES (1), (2), (3)");
  CHECK(f.Query("SELECT last_insert_rowid(), changes(), total_changes()") ==
        json::parse("[[0, 0, 0]]"));
  CHECK(f.Query("INSERT INTO t(b) VALUES (9); SELECT last_insert_rowid(), changes(), "
                "total_changes()") == json::parse("[[4, 1, 1]]"));
  f.Ok("PRAGMA recursive_triggers = " + std::string(recursive[0][0] == 1 ? "0" : "1") +
       "; PRAGMA case_sensitive_like = 1; SELECT 1");
  CHECK(f.Query("PRAGMA recursive_triggers") == recursive);
  CHECK(f.Query("SELECT 'a' LIKE 'A'") == json::parse("[[1]]"));
  // Within the script the settings hold.
  CHECK(f.Query("PRAGMA case_sensitive_like = 1; SELECT 'a' LIKE 'A'") == json::parse("[[0]]"));
}

}  // namespace
TEST_CASE("a script run again reuses its prepared statement: fresh params, its writes "
          "committed, read-only runs kept apart, schema changes seen",
          "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE t(a)");
  const std::string insert = "INSERT INTO t VALUES (?)";
  CHECK(f.Ok(insert, {1}).changed);
  CHECK(f.Ok(insert, {2}).changed);  // the kept statement: new value, committed
  CHECK(f.Query("SELECT count(*), sum(a) FROM t") == json::array({json::array({2, 3})}));
  // The same text read-only is prepared afresh (and refused), never the
  // read-write statement kept from before.
  CHECK(f.Reason(insert, {3}, true) == "read_only");
  CHECK(f.Ok(insert, {4}).changed);
  CHECK(f.Query("SELECT count(*), sum(a) FROM t") == json::array({json::array({3, 7})}));
  // A schema change between two runs of the same text shows in the second.
  const std::string select = "SELECT * FROM t WHERE a = ?";
  CHECK(f.Ok(select, {4}).statements.back().rows == json::array({json::array({4})}));
  f.Ok("ALTER TABLE t ADD COLUMN b DEFAULT 9");
  CHECK(f.Ok(select, {4}).statements.back().rows == json::array({json::array({4, 9})}));
  f.Ok("DROP TABLE t");
  CHECK(f.Reason(select, {4}) != "");
}

TEST_CASE("a kept one-statement read runs in SQLite's own read transaction: no write lock, "
          "the committed state, nothing held after it",
          "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE t(a)");
  f.Ok("INSERT INTO t VALUES (1)");
  const std::string count = "SELECT count(*) FROM t";
  CHECK(f.Query(count) == json::array({json::array({1})}));  // kept prepared now
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open_v2(f.dir().Sub("db.sqlite").c_str(), &raw, SQLITE_OPEN_READWRITE,
                          nullptr) == SQLITE_OK);
  storage::SqliteHandle other(raw);
  REQUIRE(sqlite3_exec(other.get(), "BEGIN IMMEDIATE; INSERT INTO t VALUES (2)", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  // The other connection holds the write lock: a read-write request's read
  // still answers (no BEGIN IMMEDIATE of ours), without the uncommitted row.
  CHECK(f.Query(count) == json::array({json::array({1})}));
  // Writes, a read run the first time (not kept yet) and scripts of more
  // than one statement still run in a transaction of their own, which
  // needs the lock.
  CHECK(f.Reason("INSERT INTO t VALUES (3)") == "busy");
  CHECK(f.Reason("/* first */ " + count) == "busy");
  CHECK(f.Reason(count + "; " + count) == "busy");
  // The read left no lock behind: the other connection commits.
  REQUIRE(sqlite3_exec(other.get(), "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK(f.Query(count) == json::array({json::array({2})}));
  // A PRAGMA that SQLite calls read-only (optimize's nested SQL may write)
  // is never taken for a read.
  CHECK(f.Ok("PRAGMA optimize").statements.size() == 1);
  CHECK(f.Ok("PRAGMA optimize").statements.size() == 1);
}

TEST_CASE("a session's statement on a shared connection is kept like a script's: fresh params, "
          "writes committed, read-only runs apart, transaction control never kept",
          "[sandbox]") {
  SandboxFixture f;
  f.Ok("CREATE TABLE t(a)");
  auto session = [&](const std::string& sql, json params, bool read_only = false) {
    Script s;
    s.sql = sql;
    s.params = std::move(params);
    s.read_only = read_only;
    s.session = true;
    s.shared_connection = true;
    return f.Run(s);
  };
  const std::string insert = "INSERT INTO t VALUES (?)";
  for (int i = 1; i <= 3; ++i) REQUIRE(session(insert, {i}).ok());
  CHECK(f.Run(insert, {4}).ok());  // the script takes the statement the session kept
  CHECK(f.Query("SELECT count(*), sum(a) FROM t") == json::array({json::array({4, 10})}));
  auto refused = session(insert, {5}, true);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().reason() == "read_only");
  const std::string select = "SELECT a FROM t WHERE a = ?";
  for (int i = 1; i <= 2; ++i) {
    auto r = session(select, {i});
    REQUIRE(r.ok());
    CHECK(r->statements[0].rows == json::array({json::array({i})}));
  }
  // BEGIN on a shared connection still asks for a connection of its own.
  for (int i = 0; i < 2; ++i) {
    auto begin = session("BEGIN", nullptr);
    REQUIRE_FALSE(begin.ok());
    CHECK(begin.status().reason() == "needs_own_connection");
  }
}

}  // namespace branchdb::server::sql
