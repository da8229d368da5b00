// Issue 13, item 1, the class: every SQL function and virtual-table module the
// linked SQLite offers is reviewed (server/sql/allow_list.cc), and the sandbox
// enforces the review. A library upgrade that adds a function or a module
// fails here until someone reviews it.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "server/sql/allow_list.h"
#include "server/sql/sandbox.h"
#include "tests/util/temp_dir.h"

namespace branchdb::server::sql {
namespace {

using nlohmann::json;

struct Function {
  std::string name;
  int narg;
};

std::vector<Function> Functions(sqlite3* db) {
  std::vector<Function> out;
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT DISTINCT name, narg FROM pragma_function_list", -1, &stmt,
                             nullptr) == SQLITE_OK);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    out.push_back({reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                   sqlite3_column_int(stmt, 1)});
  }
  sqlite3_finalize(stmt);
  REQUIRE(out.size() > 50);
  return out;
}

std::vector<std::string> Modules(sqlite3* db) {
  std::vector<std::string> out;
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT name FROM pragma_module_list", -1, &stmt, nullptr) ==
          SQLITE_OK);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    out.push_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
  }
  sqlite3_finalize(stmt);
  return out;
}

storage::SqliteHandle OpenRaw(const std::string& path) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                          nullptr) == SQLITE_OK);
  return storage::SqliteHandle(raw);
}

// A native connection hardened by the sandbox.
struct Sandboxed {
  Sandboxed() : db(OpenRaw(dir.Sub("db.sqlite"))) {
    SandboxOptions o;
    o.clock = Clock::Default();
    auto sb = Sandbox::Attach(db.get(), o);
    REQUIRE(sb.ok());
    sandbox = std::move(*sb);
  }
  Status Run(const std::string& sql, json params = nullptr, bool read_only = false) {
    Script s;
    s.sql = sql;
    s.params = std::move(params);
    s.read_only = read_only;
    return sandbox->Execute(s).status();
  }
  testing::TempDir dir;
  storage::SqliteHandle db;
  std::unique_ptr<Sandbox> sandbox;
};

// "SELECT f(NULL, NULL)" with the function's arity (one argument for a
// variadic one); operators are called as operators.
std::string CallOf(const Function& f) {
  if (f.name == "->" || f.name == "->>") return "SELECT '{}' " + f.name + " '$'";
  std::string args;
  for (int i = 0; i < (f.narg < 0 ? 1 : f.narg); ++i) args += i ? ", NULL" : "NULL";
  return "SELECT " + f.name + "(" + args + ")";
}

TEST_CASE("every SQL function the linked SQLite offers is reviewed, internal ones too",
          "[security][sql]") {
  testing::TempDir dir;
  storage::SqliteHandle db = OpenRaw(dir.Sub("raw.sqlite"));
  // Shows SQLite's internal functions (ALTER TABLE's) in pragma_function_list.
  sqlite3_test_control(SQLITE_TESTCTRL_INTERNAL_FUNCTIONS, db.get());
  for (const auto& f : Functions(db.get())) {
    INFO("function " << f.name << " (narg " << f.narg
                     << ") is not reviewed: add it to server/sql/allow_list.cc");
    CHECK(FindFunctionReview(f.name) != nullptr);
  }
  for (const auto& r : FunctionReviews()) CHECK_FALSE(r.reason.empty());
}

TEST_CASE("every virtual-table module the linked SQLite offers is reviewed", "[security][sql]") {
  testing::TempDir dir;
  storage::SqliteHandle db = OpenRaw(dir.Sub("raw.sqlite"));
  std::vector<std::string> modules = Modules(db.get());
  CHECK(std::count(modules.begin(), modules.end(), "fts4") == 1);
  for (const auto& m : modules) {
    INFO("module " << m << " is not reviewed: add it to server/sql/allow_list.cc");
    CHECK(FindModuleReview(m) != nullptr);
  }
  for (const auto& r : ModuleReviews()) CHECK_FALSE(r.reason.empty());
}

TEST_CASE("the sandbox refuses every denied function and lets every allowed one through",
          "[security][sql]") {
  Sandboxed s;
  int denied = 0;
  for (const auto& f : Functions(s.db.get())) {
    const Review* review = FindFunctionReview(f.name);
    REQUIRE(review != nullptr);
    std::string sql = CallOf(f);
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(s.db.get(), sql.c_str(), -1, &stmt, nullptr);
    std::string message = rc == SQLITE_OK ? "" : sqlite3_errmsg(s.db.get());
    sqlite3_finalize(stmt);
    INFO(sql << " -> " << message);
    bool refused = message.find("not authorized") != std::string::npos;
    CHECK(refused == !review->allowed);
    if (!review->allowed) {
      CHECK(s.Run(sql).reason() == "sql_forbidden");
      ++denied;
    }
  }
  CHECK(denied >= 3);  // fts3_tokenizer, load_extension, sqlite_log at least
}

TEST_CASE("an unreviewed function is refused (default deny)", "[security][sql]") {
  Sandboxed s;
  REQUIRE(sqlite3_create_function_v2(
              s.db.get(), "unreviewed_fn", 0, SQLITE_UTF8, nullptr,
              [](sqlite3_context* ctx, int, sqlite3_value**) { sqlite3_result_int(ctx, 1); },
              nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK(s.Run("SELECT unreviewed_fn()").reason() == "sql_forbidden");
}

TEST_CASE("only allowed modules stay registered; a denied one cannot be used or created",
          "[security][sql]") {
  Sandboxed s;
  for (const auto& m : Modules(s.db.get())) {
    const Review* review = FindModuleReview(m);
    INFO("module " << m);
    REQUIRE(review != nullptr);
    CHECK(review->allowed);
  }
  testing::TempDir dir;
  storage::SqliteHandle raw = OpenRaw(dir.Sub("raw.sqlite"));
  for (const auto& m : Modules(raw.get())) {
    const Review* review = FindModuleReview(m);
    REQUIRE(review != nullptr);
    if (review->allowed) continue;
    INFO("module " << m);
    CHECK(s.Run("CREATE VIRTUAL TABLE x USING " + m + "(a)").reason() == "sql_forbidden");
    CHECK_FALSE(s.Run("SELECT * FROM " + m).ok());  // the eponymous table is gone too
  }
  CHECK(s.Run("CREATE VIRTUAL TABLE f USING fts4(body); CREATE VIRTUAL TABLE g USING fts5(body); "
              "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1); SELECT count(*) FROM dbstat")
            .ok());
}

TEST_CASE("fts3_tokenizer() is refused in both forms, read-only too, and FTS keeps working",
          "[security][sql]") {
  Sandboxed s;
  REQUIRE(s.Run("CREATE VIRTUAL TABLE docs USING fts4(body); "
                "INSERT INTO docs VALUES ('hello world')")
              .ok());
  // The one-argument form leaks the address of the tokenizer module.
  CHECK(s.Run("SELECT hex(fts3_tokenizer('simple'))", nullptr, true).reason() == "sql_forbidden");
  // The two-argument form with a bound pointer installs a tokenizer whatever
  // SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER says.
  json pointer = json::array({BlobToJson(std::string(8, 'A'))});
  CHECK(s.Run("SELECT fts3_tokenizer('simple', ?)", pointer, true).reason() == "sql_forbidden");
  CHECK(s.Run("SELECT fts3_tokenizer('simple', ?)", pointer).reason() == "sql_forbidden");
  CHECK(s.Run("SELECT * FROM docs WHERE docs MATCH 'hello'", nullptr, true).ok());
  CHECK(s.Run("CREATE VIRTUAL TABLE t2 USING fts3tokenize('simple')").reason() ==
        "sql_forbidden");
}

TEST_CASE("ALTER TABLE's internal functions still work under the allow-list", "[security][sql]") {
  Sandboxed s;
  CHECK(s.Run("CREATE TABLE t(a, b); CREATE VIEW v AS SELECT a FROM t; "
              "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT new.a; END")
            .ok());
  CHECK(s.Run("ALTER TABLE t RENAME COLUMN a TO c").ok());
  CHECK(s.Run("ALTER TABLE t RENAME TO u").ok());
  CHECK(s.Run("ALTER TABLE u ADD COLUMN d DEFAULT 1").ok());
  CHECK(s.Run("ALTER TABLE u DROP COLUMN b").ok());
}

}  // namespace
}  // namespace branchdb::server::sql
