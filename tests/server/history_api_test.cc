// Branch sources, the reflog of checkpoints and the data diff over real HTTP:
// where a new branch starts (exactly the state named, or refused), rollback and
// reset checkpoints with their target and previous head, rolled-back states
// that stay listed, and data diff across added or dropped columns, paged, and
// as SQL.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

class Fixture : public testing::LiveServer {
 public:
  Fixture() {
    REQUIRE(Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  }

  uint64_t Sql(const std::string& branch, const std::string& sql) {
    auto [st, r] = Call("POST", Path(branch) + "/sql", {{"sql", sql}});
    INFO(sql << " -> " << r.dump());
    REQUIRE(st == 200);
    return r["lsn"].is_null() ? 0 : r["lsn"].get<uint64_t>();
  }
  json Rows(const std::string& branch, const std::string& sql) {
    auto [st, r] = Call("POST", Path(branch) + "/sql", {{"sql", sql}, {"read_only", true}});
    REQUIRE(st == 200);
    return r["results"][0]["rows"];
  }
  std::pair<int, json> Create(const json& body) {
    return Call("POST", "/v1/projects/shop/branches", body);
  }
  std::pair<int, json> Rollback(const std::string& branch, uint64_t lsn) {
    return Call("POST", Path(branch) + "/rollback", {{"to", {{"lsn", lsn}}}});
  }
  // Every checkpoint of the branch, through all pages of `limit`.
  json Checkpoints(const std::string& branch, int limit = 50) {
    json all = json::array();
    std::string cursor;
    for (int pages = 0; pages < 100; ++pages) {
      std::string q = "/checkpoints?limit=" + std::to_string(limit);
      if (!cursor.empty()) q += "&cursor=" + cursor;
      auto [st, r] = Call("GET", Path(branch) + q);
      REQUIRE(st == 200);
      for (const auto& c : r["checkpoints"]) all.push_back(c);
      if (r["next"].is_null()) break;
      cursor = r["next"];
    }
    return all;
  }
  static json Find(const json& list, uint64_t lsn) {
    for (const auto& c : list) {
      if (c["lsn"] == lsn) return c;
    }
    return nullptr;
  }
  std::string Path(const std::string& branch) { return "/v1/projects/shop/branches/" + branch; }
};

TEST_CASE("branch create: at.lsn and at.checkpoint name an exact state of the parent or are refused",
          "[api]") {
  Fixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  uint64_t p1 = f.Sql("production", "INSERT INTO t VALUES(1)");
  REQUIRE(f.Create({{"name", "other"}}).first == 201);
  uint64_t foreign = f.Sql("other", "INSERT INTO t VALUES(100)");
  f.Sql("production", "INSERT INTO t VALUES(2)");

  auto [st1, e1] = f.Create({{"name", "b1"}, {"at", {{"lsn", 999}}}});
  CHECK(st1 == 404);
  CHECK(e1["error"]["code"] == "checkpoint_not_found");
  auto [st2, e2] = f.Create({{"name", "b2"}, {"at", {{"lsn", foreign}}}});
  CHECK(st2 == 404);
  CHECK(e2["error"]["code"] == "checkpoint_not_found");
  auto [st3, e3] =
      f.Create({{"name", "b3"}, {"parent", "production"}, {"at", {{"checkpoint", foreign}}}});
  CHECK(st3 == 404);
  CHECK(e3["error"]["code"] == "checkpoint_not_found");
  // Accepted sources answer with exactly the state used.
  auto [st4, b4] = f.Create({{"name", "b4"}, {"at", {{"lsn", p1}}}});
  REQUIRE(st4 == 201);
  CHECK(b4["branch_point_lsn"] == p1);
  CHECK(b4["parent"] == "production");
  auto [st5, b5] = f.Create({{"name", "b5"}, {"at", {{"checkpoint", foreign}}}});
  REQUIRE(st5 == 201);
  CHECK(b5["branch_point_lsn"] == foreign);
  CHECK(b5["parent"] == "other");
  CHECK(f.Rows("b5", "SELECT group_concat(v) FROM t") == json::array({json::array({"1,100"})}));
  auto [st6, e6] = f.Create({{"name", "b6"}, {"at", {{"timestamp", "2999-01-01T00:00:00Z"}}}});
  CHECK(st6 == 400);
}

TEST_CASE("checkpoints: rollback and reset carry target and previous head; rolled-back states stay listed",
          "[api]") {
  Fixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  uint64_t v1 = f.Sql("production", "INSERT INTO t VALUES(1)");
  uint64_t v2 = f.Sql("production", "INSERT INTO t VALUES(2)");
  auto [st, rb] = f.Rollback("production", v1);
  REQUIRE(st == 200);
  uint64_t rb_lsn = rb["head_lsn"];

  json list = f.Checkpoints("production");
  json move = Fixture::Find(list, rb_lsn);
  REQUIRE(move.is_object());
  CHECK(move["kind"] == "rollback");
  CHECK(move["target_lsn"] == v1);
  CHECK(move["previous_head_lsn"] == v2);
  CHECK(move["rolled_back"] == false);
  // The undo hint (previous_head_lsn) names a listed checkpoint.
  json undone = Fixture::Find(list, v2);
  REQUIRE(undone.is_object());
  CHECK(undone["rolled_back"] == true);
  CHECK(Fixture::Find(list, v1)["rolled_back"] == false);

  // Reset from parent: the same facts.
  REQUIRE(f.Create({{"name", "dev"}}).first == 201);
  uint64_t dev_write = f.Sql("dev", "INSERT INTO t VALUES(10)");
  uint64_t prod = f.Sql("production", "INSERT INTO t VALUES(3)");
  auto [st2, reset] = f.Call("POST", f.Path("dev") + "/reset", json::object());
  REQUIRE(st2 == 200);
  json dev = f.Checkpoints("dev", 2);  // paged: every page joins into the same reflog
  json r = Fixture::Find(dev, reset["head_lsn"]);
  REQUIRE(r.is_object());
  CHECK(r["kind"] == "reset");
  CHECK(r["target_lsn"] == prod);
  CHECK(r["previous_head_lsn"] == dev_write);
  CHECK(Fixture::Find(dev, dev_write)["rolled_back"] == true);
  CHECK(Fixture::Find(dev, prod)["inherited"] == true);
  for (size_t i = 1; i < dev.size(); ++i) CHECK(dev[i - 1]["lsn"] > dev[i]["lsn"]);

  // Every listed state is a rollback target that gives exactly that state.
  for (const auto& c : f.Checkpoints("production")) {
    uint64_t lsn = c["lsn"];
    auto [st3, moved] = f.Rollback("production", lsn);
    INFO(c.dump() << " -> " << moved.dump());
    CHECK(st3 == 200);
    CHECK(moved["target_lsn"] == lsn);
  }
}

TEST_CASE("diff: a column added and backfilled is compared, every row paged by cursor, and as SQL",
          "[api]") {
  Fixture f;
  f.Sql("production",
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);"
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<30)"
        "  INSERT INTO customers SELECT i, 'c' || i FROM s");
  REQUIRE(f.Create({{"name", "dev"}}).first == 201);
  f.Sql("dev", "ALTER TABLE customers ADD COLUMN tier TEXT; UPDATE customers SET tier = 'gold'");
  // Every changed row, through the cursor: 30 rows, pages of 7.
  std::set<std::string> keys;
  std::string cursor;
  int pages = 0;
  json first;
  do {
    std::string q = "/diff?kind=data&base=production&limit=7";
    if (!cursor.empty()) q += "&cursor=" + cursor;
    auto [st, d] = f.Call("GET", f.Path("dev") + q);
    INFO(d.dump());
    REQUIRE(st == 200);
    if (pages++ == 0) first = d;
    REQUIRE(d["tables"].size() == 1);
    const json& t = d["tables"][0];
    CHECK(t["rows_changed"] == 30);  // totals on every page
    CHECK(t["note"] == "");          // was "schema_changed: rows not compared"
    CHECK(t["columns_added"] == json::array({"tier"}));
    CHECK(t["rows"].size() <= 7);
    for (const auto& r : t["rows"]) {
      CHECK(r["op"] == "update");
      CHECK(r["new"] == json({{"tier", "gold"}}));
      keys.insert(r["key"].dump());
    }
    cursor = d["next"].is_null() ? "" : d["next"].get<std::string>();
  } while (!cursor.empty() && pages < 20);
  CHECK(pages == 5);
  CHECK(keys.size() == 30);
  CHECK(first["tables"][0]["key_columns"] == json::array({"rowid"}));
  auto [bad, e] = f.Call("GET", f.Path("dev") + "/diff?kind=data&cursor=nonsense");
  CHECK(bad == 400);

  // The patch, applied to a branch of production, gives dev's data.
  auto [stp, patch] = f.Call("GET", f.Path("dev") + "/diff?kind=patch&base=production&limit=1000");
  INFO(patch.dump());
  REQUIRE(stp == 200);
  CHECK(patch["complete"] == true);
  CHECK(patch["next"].is_null());
  REQUIRE(f.Create({{"name", "replica"}}).first == 201);
  f.Sql("replica", patch["sql"].get<std::string>());
  CHECK(f.Rows("replica", "SELECT count(*), min(tier), max(tier) FROM customers") ==
        json::array({json::array({30, "gold", "gold"})}));
  auto [std2, same] = f.Call("GET", f.Path("replica") + "/diff?kind=data&base=dev");
  REQUIRE(std2 == 200);
  CHECK(same["tables"].empty());
}

TEST_CASE("sql: lsn reads one past state read-only, in pages, rolled-back states too",
          "[api]") {
  Fixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  uint64_t one = f.Sql("production", "INSERT INTO t VALUES(1)");
  uint64_t three = f.Sql("production", "INSERT INTO t VALUES(2),(3)");
  REQUIRE(f.Rollback("production", one).first == 200);
  f.Sql("production", "INSERT INTO t VALUES(9)");
  auto at = [&](const json& body) { return f.Call("POST", f.Path("production") + "/sql", body); };

  // A state the head still reaches, and a rolled-back one, each as it was.
  auto [st1, r1] = at({{"sql", "SELECT v FROM t ORDER BY v"}, {"lsn", one}});
  REQUIRE(st1 == 200);
  CHECK(r1["results"][0]["rows"] == json::array({json::array({1})}));
  CHECK(r1["snapshot_lsn"] == one);
  CHECK(r1["read_only"] == true);
  CHECK(r1["lsn"].is_null());
  // In pages: every page reads that state (the cursor names it).
  auto [st2, p1] = at({{"sql", "SELECT v FROM t ORDER BY v"}, {"lsn", three}, {"page_size", 2}});
  REQUIRE(st2 == 200);
  CHECK(p1["results"][0]["rows"] == json::array({json::array({1}), json::array({2})}));
  REQUIRE(p1["next_cursor"].is_string());
  auto [st3, p2] = at({{"sql", "SELECT v FROM t ORDER BY v"}, {"lsn", three},
                       {"cursor", p1["next_cursor"]}});
  REQUIRE(st3 == 200);
  CHECK(p2["results"][0]["rows"] == json::array({json::array({3})}));
  CHECK(p2["next_cursor"].is_null());
  auto [st4, e4] = at({{"sql", "SELECT v FROM t ORDER BY v"}, {"lsn", one},
                       {"cursor", p1["next_cursor"]}});
  CHECK(st4 == 400);
  CHECK(e4["error"]["code"] == "invalid_cursor");

  // Read-only: a write at a past state is refused and changes nothing.
  auto [st5, e5] = at({{"sql", "INSERT INTO t VALUES(5)"}, {"lsn", one}});
  CHECK(st5 == 403);
  CHECK(e5["error"]["code"] == "read_only");
  CHECK(f.Rows("production", "SELECT count(*) FROM t") == json::array({json::array({2})}));

  // Another LSN (here another branch's write) reads this branch's history as
  // of it, as GET .../schema?lsn=N does.
  REQUIRE(f.Create({{"name", "other"}}).first == 201);
  uint64_t foreign = f.Sql("other", "INSERT INTO t VALUES(100)");
  auto [st6, r6] = at({{"sql", "SELECT group_concat(v) FROM (SELECT v FROM t ORDER BY v)"},
                       {"lsn", foreign}});
  REQUIRE(st6 == 200);
  CHECK(r6["results"][0]["rows"] == json::array({json::array({"1,9"})}));
  // "lsn": null is no lsn: a script at the head, writes included.
  auto [st7, r7] = at({{"sql", "INSERT INTO t VALUES(7); INSERT INTO t VALUES(8)"},
                       {"lsn", nullptr}});
  REQUIRE(st7 == 200);
  CHECK(r7["lsn"].is_number());
  auto [st8, e8] = at({{"sql", "SELECT 1"}, {"lsn", -1}});
  CHECK(st8 == 400);
  CHECK(e8["error"]["code"] == "invalid_argument");
}

}  // namespace
}  // namespace branchdb::server
