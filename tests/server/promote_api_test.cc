// POST /v1/projects/{p}/branches/{b}/promote over real HTTP: fast-forward,
// replay (scripts with params recorded by the SQL route), dry run, verify,
// errors with their details, undo, and the protected-parent scope.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/config.h"
#include "server/server.h"
#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

class Fixture : public testing::LiveServer {
 public:
  Fixture() {
    REQUIRE(Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  }

  // A token of a new client with exactly these scopes.
  std::string ClientToken(const json& scopes) {
    auto [st, c] = Call("POST", "/v1/clients", {{"name", "narrow"}, {"scopes", scopes}});
    INFO(c.dump());
    REQUIRE(st == 201);
    return Token(c["client_id"], c["client_secret"]);
  }

  json Sql(const std::string& branch, const std::string& sql, const json& params = nullptr) {
    json body = {{"sql", sql}};
    if (!params.is_null()) body["params"] = params;
    auto [st, r] = Call("POST", Path(branch) + "/sql", body);
    INFO(sql << " -> " << r.dump());
    REQUIRE(st == 200);
    return r;
  }
  json Rows(const std::string& branch, const std::string& sql) {
    return Sql(branch, sql)["results"][0]["rows"];
  }
  std::pair<int, json> Promote(const std::string& branch, const json& body = json::object(),
                               const std::string& token = "") {
    return Call("POST", Path(branch) + "/promote", body, token);
  }
  std::string Path(const std::string& branch) {
    std::string b = branch;
    for (size_t at = b.find('/'); at != std::string::npos; at = b.find('/', at)) {
      b.replace(at, 1, "%2F");
    }
    return "/v1/projects/shop/branches/" + b;
  }
  void Branch(const std::string& name, bool is_protected = false) {
    auto [st, r] = Call("POST", "/v1/projects/shop/branches",
                        {{"name", name}, {"parent", "production"}, {"protected", is_protected}});
    INFO(r.dump());
    REQUIRE(st == 201);
  }
  uint64_t Head(const std::string& branch) {
    auto [st, b] = Call("GET", Path(branch));
    REQUIRE(st == 200);
    return b["head_lsn"];
  }
};

TEST_CASE("promote api: fast-forward, then replay of parameterized scripts, undo", "[api]") {
  Fixture f;
  f.Sql("production", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  f.Branch("dev/alex");
  uint64_t a1 = f.Sql("dev/alex", "INSERT INTO t(v) VALUES (?), (?)", {"a", "b"})["lsn"];
  auto [st, ff] = f.Promote("dev/alex");
  INFO(ff.dump());
  REQUIRE(st == 200);
  CHECK(ff["mode"] == "fast_forward");
  CHECK(ff["branch"] == "production");
  CHECK(ff["source"] == "dev/alex");
  CHECK(ff["dry_run"] == false);
  CHECK(ff["verify"].is_null());
  CHECK(ff["attempts"] == 1);
  CHECK(ff["actions"] == json::array({{{"lsn", a1}, {"summary", "INSERT INTO t(v) VALUES (?), (?)"},
                                       {"rows", 2}}}));
  CHECK(ff["head_lsn"] == f.Head("production"));
  CHECK(f.Rows("production", "SELECT group_concat(v) FROM t") == json::array({{"a,b"}}));

  // The parent moves; the branch migrates schema and data with named params.
  f.Sql("production", "INSERT INTO t(v) VALUES ('live')");
  f.Sql("dev/alex", "ALTER TABLE t ADD COLUMN n INTEGER NOT NULL DEFAULT 0");
  uint64_t a3 = f.Sql("dev/alex", "UPDATE t SET n = :n WHERE v = :v; SELECT 1",
                      {{"n", 5}, {"v", "a"}})["lsn"];
  uint64_t before = f.Head("production");
  json mode_ff = {{"mode", "fast_forward"}};
  auto [st409, moved] = f.Promote("dev/alex", mode_ff);
  CHECK(st409 == 409);
  CHECK(moved["error"]["code"] == "parent_moved");

  auto [st2, rp] = f.Promote("dev/alex", {{"verify", "SELECT count(*) = 3 FROM t WHERE n >= 0"}});
  INFO(rp.dump());
  REQUIRE(st2 == 200);
  CHECK(rp["mode"] == "replay");
  CHECK(rp["previous_head_lsn"] == before);
  REQUIRE(rp["actions"].size() == 2);
  CHECK(rp["actions"][1]["lsn"] == a3);
  CHECK(rp["actions"][1]["rows"] == 1);
  CHECK(rp["verify"] == json({{"sql", "SELECT count(*) = 3 FROM t WHERE n >= 0"},
                              {"value", 1},
                              {"ok", true}}));
  CHECK(f.Rows("production", "SELECT v, n FROM t ORDER BY id") ==
        json::array({{"a", 5}, {"b", 0}, {"live", 0}}));
  // The promote checkpoint, then the replayed actions.
  auto [st3, cps] = f.Call("GET", f.Path("production") + "/checkpoints?limit=3");
  REQUIRE(st3 == 200);
  CHECK(cps["checkpoints"][0]["kind"] == "promote");
  CHECK(cps["checkpoints"][0]["lsn"] == rp["head_lsn"]);
  CHECK(cps["checkpoints"][0]["source"] == "dev/alex");
  CHECK(cps["checkpoints"][0]["actions"].size() == 2);
  CHECK(cps["checkpoints"][0]["actions"][1] == a3);
  CHECK(cps["checkpoints"][1]["kind"] == "sql");
  CHECK(cps["checkpoints"][1]["replay_of"] == a3);

  // Undo: roll the parent back to previous_head_lsn.
  auto [st4, undo] = f.Call("POST", f.Path("production") + "/rollback",
                            {{"to", {{"lsn", rp["previous_head_lsn"]}}}});
  REQUIRE(st4 == 200);
  CHECK(f.Rows("production", "SELECT group_concat(v) FROM t") == json::array({{"a,b,live"}}));
}

TEST_CASE("promote api: dry run, failures with details, validation", "[api]") {
  Fixture f;
  f.Sql("production", "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT UNIQUE)");
  f.Branch("feature");
  f.Sql("feature", "INSERT INTO t(k) VALUES ('ok')");
  uint64_t clash = f.Sql("feature", "INSERT INTO t(k) VALUES ('clash')")["lsn"];
  f.Sql("production", "INSERT INTO t(k) VALUES ('other')");
  uint64_t before = f.Head("production");

  auto [st, dry] = f.Promote("feature", {{"dry_run", true}, {"verify", "SELECT count(*) FROM t"}});
  INFO(dry.dump());
  REQUIRE(st == 200);
  CHECK(dry["dry_run"] == true);
  CHECK(dry["mode"] == "replay");
  CHECK(dry["head_lsn"].is_null());
  CHECK(dry["target_lsn"].is_null());
  CHECK(dry["actions"].size() == 2);
  CHECK(dry["verify"]["value"] == 3);
  CHECK(f.Head("production") == before);

  auto [st2, vf] = f.Promote("feature", {{"verify", "SELECT 'false'"}});
  CHECK(st2 == 409);
  CHECK(vf["error"]["code"] == "verify_failed");
  CHECK(vf["error"]["details"]["value"] == "false");
  CHECK(f.Head("production") == before);

  f.Sql("production", "INSERT INTO t(k) VALUES ('clash')");
  before = f.Head("production");
  auto [st3, rf] = f.Promote("feature");
  INFO(rf.dump());
  CHECK(st3 == 409);
  CHECK(rf["error"]["code"] == "replay_failed");
  const json& fa = rf["error"]["details"]["failed_action"];
  CHECK(fa["index"] == 1);
  CHECK(fa["lsn"] == clash);
  CHECK(fa["summary"] == "INSERT INTO t(k) VALUES ('clash')");
  CHECK(fa["error"]["code"] == "sql_error");
  CHECK(fa["error"]["message"].get<std::string>().find("UNIQUE") != std::string::npos);
  CHECK(f.Head("production") == before);

  // An imported branch has no recorded scripts: not replayable on a moved parent.
  auto c = f.Client();
  auto exported = c.Get((f.Path("production") + "/export").c_str(),
                        httplib::Headers{{"Authorization", "Bearer " + f.Admin()}});
  REQUIRE(exported);
  REQUIRE(exported->status == 200);
  auto imported = c.Post("/v1/projects/shop/import?branch=imported",
                         httplib::Headers{{"Authorization", "Bearer " + f.Admin()}}, exported->body,
                         "application/vnd.sqlite3");
  REQUIRE(imported);
  REQUIRE(imported->status == 201);
  auto [st5, nr] = f.Promote("imported", {{"mode", "replay"}});
  INFO(nr.dump());
  CHECK(st5 == 409);
  CHECK(nr["error"]["code"] == "not_replayable");
  CHECK(nr["error"]["details"]["lsn"].is_number());

  CHECK(f.Promote("production").second["error"]["code"] == "no_parent");
  for (const json& bad : {json{{"mode", "sideways"}}, json{{"dry_run", "yes"}},
                          json{{"on_conflict", "ignore"}}, json{{"max_retries", 11}},
                          json{{"verify", ""}}}) {
    auto [code, e] = f.Promote("feature", bad);
    INFO(bad.dump() << " -> " << e.dump());
    CHECK(code == 400);
    CHECK(e["error"]["code"] == "invalid_argument");
  }
  auto [st6, retry] = f.Promote("feature", {{"on_conflict", "retry"}, {"max_retries", 0}});
  CHECK(st6 == 409);  // still the clash; retries only cover concurrent writes
  CHECK(retry["error"]["code"] == "replay_failed");
}

TEST_CASE("promote api: a protected parent needs branches:promote_protected", "[api]") {
  Fixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  f.Branch("feature");
  f.Sql("feature", "INSERT INTO t VALUES (1)");
  std::string writer = f.ClientToken({"branches:write", "sql:write"});
  std::string promoter =
      f.ClientToken({"branches:write", "branches:promote_protected", "sql:write"});
  {
    auto c = f.Client();
    auto r = c.Patch(f.Path("production").c_str(),
                     httplib::Headers{{"Authorization", "Bearer " + f.Admin()}},
                     R"({"protected":true})", "application/json");
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
  }
  uint64_t before = f.Head("production");
  auto [st, denied] = f.Promote("feature", json::object(), writer);
  INFO(denied.dump());
  CHECK(st == 403);
  CHECK(denied["error"]["code"] == "insufficient_scope");
  CHECK(denied["error"]["details"]["scope"] == "branches:promote_protected");
  CHECK(f.Head("production") == before);
  auto [st2, ok] = f.Promote("feature", json::object(), promoter);
  INFO(ok.dump());
  CHECK(st2 == 200);
  CHECK(f.Rows("production", "SELECT count(*) FROM t") == json::array({{1}}));
  // The scope alone is not enough: promote itself needs branches:write.
  std::string only = f.ClientToken({"branches:promote_protected"});
  CHECK(f.Promote("feature", json::object(), only).first == 403);
}

}  // namespace
}  // namespace branchdb::server
