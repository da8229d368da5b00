// Quotas, usage and the audit trail (issue #18) over real HTTP against a full
// ApiServer: each quota reached (429 quota_exceeded with its limit and the
// current value, nothing changed) and released; bad quota values refused;
// usage figures of a scripted session; the audit entries of a scripted
// session, in order, with their fields, also after a restart.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "server/config.h"
#include "server/server.h"
#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

class Fixture : public testing::LiveServer {
 public:
  explicit Fixture(const std::function<void(Config&)>& tweak = nullptr)
      : LiveServer(tweak) {}

  // A JSON call with the admin token (or `token`), each with its own
  // X-Request-Id (the audit trail records them): status and body.
  std::pair<int, json> Call(const std::string& method, const std::string& path,
                            const json& body = nullptr, const std::string& token = "") {
    return LiveServer::Call(method, path, body, token,
                            {{"X-Request-Id", "req-" + std::to_string(++requests_)}});
  }
  int Sql(const std::string& branch, const std::string& sql, const std::string& token = "",
          json* answer = nullptr) {
    auto [st, body] = Call("POST", "/v1/projects/shop/branches/" + branch + "/sql",
                           {{"sql", sql}}, token);
    if (answer) *answer = body;
    return st;
  }
  // A client with these scopes (and quotas), and a token of it.
  std::pair<std::string, std::string> NewClient(const json& scopes, const json& quotas = nullptr) {
    json body = {{"name", "agent"}, {"scopes", scopes}};
    if (!quotas.is_null()) body["quotas"] = quotas;
    auto [st, c] = Call("POST", "/v1/clients", body);
    REQUIRE(st == 201);
    return {c["client_id"], Token(c["client_id"], c["client_secret"])};
  }
  void SetQuotas(const json& quotas) {
    auto [st, p] = Call("PATCH", "/v1/projects/shop", {{"quotas", quotas}});
    INFO(p.dump());
    REQUIRE(st == 200);
  }

  int requests_ = 0;
};

// The 429 every quota refusal is.
void CheckRefusal(const std::pair<int, json>& r, const std::string& quota,
                  const std::string& scope, int64_t limit, int64_t current) {
  INFO(r.second.dump());
  CHECK(r.first == 429);
  const json& e = r.second["error"];
  CHECK(e["code"] == "quota_exceeded");
  CHECK(e["details"]["quota"] == quota);
  CHECK(e["details"]["scope"] == scope);
  CHECK(e["details"]["limit"] == limit);
  CHECK(e["details"]["current"] == current);
}

TEST_CASE("quotas: a project shows its quotas, null lifts one, a typo is refused", "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  auto [st, p] = f.Call("GET", "/v1/projects/shop");
  REQUIRE(st == 200);
  CHECK(p["quotas"] == json({{"max_branches", nullptr},
                             {"max_active_computes", nullptr},
                             {"max_bytes", nullptr},
                             {"max_commits_per_minute", nullptr}}));
  CHECK(p["default_branch_ttl_seconds"].is_null());
  f.SetQuotas({{"max_branches", 3}, {"max_bytes", 1 << 20}});
  auto [st2, p2] = f.Call("PATCH", "/v1/projects/shop", {{"quotas", {{"max_bytes", nullptr}}}});
  REQUIRE(st2 == 200);
  CHECK(p2["quotas"]["max_branches"] == 3);  // untouched by a PATCH that does not name it
  CHECK(p2["quotas"]["max_bytes"].is_null());
  CHECK(f.Call("GET", "/v1/projects/shop").second["quotas"]["max_branches"] == 3);
}

TEST_CASE("quotas: invalid values are refused and change nothing", "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  f.SetQuotas({{"max_branches", 5}});
  const std::vector<json> bad = {
      json(-1),
      json(1.5),
      json(1.0),
      json("5"),
      json(true),
      json::array({1}),
      json::object(),
      json(9007199254740993ll),         // 2^53 + 1
      json(18446744073709551615ull),    // 2^64 - 1
      json::parse("1e3"),
  };
  for (const json& v : bad) {
    INFO(v.dump());
    auto [st, e] = f.Call("PATCH", "/v1/projects/shop", {{"quotas", {{"max_branches", v}}}});
    CHECK(st == 400);
    CHECK(e["error"]["code"] == "invalid_argument");
    CHECK(e["error"]["message"].get<std::string>().find("quotas.max_branches") !=
          std::string::npos);
    auto [st2, e2] = f.Call("POST", "/v1/clients",
                            {{"name", "x"}, {"scopes", {"sql:read"}},
                             {"quotas", {{"max_commits_per_minute", v}}}});
    CHECK(st2 == 400);
  }
  CHECK(f.Call("PATCH", "/v1/projects/shop", {{"quotas", {{"max_branchs", 1}}}}).first == 400);
  CHECK(f.Call("PATCH", "/v1/projects/shop", {{"quotas", 5}}).first == 400);
  CHECK(f.Call("PATCH", "/v1/projects/shop", {{"default_branch_ttl_seconds", 0}}).first == 400);
  // A bad field refuses the whole PATCH: the valid one beside it is not applied.
  CHECK(f.Call("PATCH", "/v1/projects/shop",
               {{"restore_window_seconds", 60}, {"quotas", {{"max_bytes", -5}}}})
            .first == 400);
  auto [st, p] = f.Call("GET", "/v1/projects/shop");
  CHECK(p["quotas"]["max_branches"] == 5);
  CHECK(p["restore_window_seconds"] != 60);
  // The largest value is taken.
  f.SetQuotas({{"max_bytes", 9007199254740992ll}});
  CHECK(f.Call("GET", "/v1/projects/shop").second["quotas"]["max_bytes"] == 9007199254740992ll);
}

TEST_CASE("quota max_branches: reached, refused without a branch, released by a delete",
          "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  f.SetQuotas({{"max_branches", 2}});  // production + one
  REQUIRE(f.Call("POST", "/v1/projects/shop/branches", {{"name", "a"}}).first == 201);
  CheckRefusal(f.Call("POST", "/v1/projects/shop/branches", {{"name", "b"}}), "max_branches",
               "project", 2, 2);
  CHECK(f.Call("GET", "/v1/projects/shop/branches/b").first == 404);
  REQUIRE(f.Call("DELETE", "/v1/projects/shop/branches/a").first == 204);
  CHECK(f.Call("POST", "/v1/projects/shop/branches", {{"name", "b"}}).first == 201);
  f.SetQuotas({{"max_branches", nullptr}});
  CHECK(f.Call("POST", "/v1/projects/shop/branches", {{"name", "c"}}).first == 201);
}

TEST_CASE("quota max_branches: concurrent creates do not pass it together", "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  f.SetQuotas({{"max_branches", 3}});  // production + two
  std::vector<std::thread> threads;
  std::vector<int> status(8, 0);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {  // no Catch2 assertions off the main thread
      auto c = f.Client();
      auto r = c.Post("/v1/projects/shop/branches",
                      {{"Authorization", "Bearer " + f.Admin()}},
                      json({{"name", "b" + std::to_string(i)}}).dump(), "application/json");
      status[i] = r ? r->status : 0;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(std::count(status.begin(), status.end(), 201) == 2);
  CHECK(std::count(status.begin(), status.end(), 429) == 6);
  CHECK(f.Call("GET", "/v1/projects/shop/branches").second["branches"].size() == 3);
}

TEST_CASE("quota max_branches per client counts the branches it created", "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  auto [id, token] = f.NewClient({"branches:write", "sql:write"}, {{"max_branches", 1}});
  auto [st, c] = f.Call("GET", "/v1/clients");
  bool shown = false;
  for (const auto& client : c["clients"]) {
    if (client["client_id"] == id) shown = client["quotas"]["max_branches"] == 1;
  }
  CHECK(shown);
  // The admin's branches are not the agent's.
  REQUIRE(f.Call("POST", "/v1/projects/shop/branches", {{"name", "admin-1"}}).first == 201);
  REQUIRE(f.Call("POST", "/v1/projects/shop/branches", {{"name", "agent-1"}}, token).first == 201);
  CheckRefusal(f.Call("POST", "/v1/projects/shop/branches", {{"name", "agent-2"}}, token),
               "max_branches", "client", 1, 1);
  CHECK(f.Call("POST", "/v1/projects/shop/branches", {{"name", "admin-2"}}).first == 201);
  REQUIRE(f.Call("DELETE", "/v1/projects/shop/branches/agent-1").first == 204);
  CHECK(f.Call("POST", "/v1/projects/shop/branches", {{"name", "agent-2"}}, token).first == 201);
}

TEST_CASE("quota max_commits_per_minute: the refused write leaves no checkpoint", "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  REQUIRE(f.Sql("production", "CREATE TABLE t(a)") == 200);
  // The window counts the commits of the last minute, CREATE TABLE's too.
  f.SetQuotas({{"max_commits_per_minute", 3}});
  REQUIRE(f.Sql("production", "INSERT INTO t VALUES (1)") == 200);
  auto before = f.Call("GET", "/v1/projects/shop/branches/production").second["head_lsn"];
  json answer;
  CHECK(f.Sql("production", "INSERT INTO t VALUES (2)", "", &answer) == 200);
  CHECK(f.Sql("production", "INSERT INTO t VALUES (3)", "", &answer) == 429);
  CHECK(answer["error"]["code"] == "quota_exceeded");
  CHECK(answer["error"]["details"]["quota"] == "max_commits_per_minute");
  CHECK(answer["error"]["details"]["limit"] == 3);
  CHECK(answer["error"]["details"]["current"] == 3);
  // Reads are no commits.
  CHECK(f.Sql("production", "SELECT count(*) FROM t", "", &answer) == 200);
  CHECK(answer["results"][0]["rows"] == json::array({json::array({2})}));
  CHECK(f.Call("GET", "/v1/projects/shop/branches/production").second["head_lsn"] != before);
  const json head = f.Call("GET", "/v1/projects/shop/branches/production").second["head_lsn"];
  CHECK(f.Sql("production", "INSERT INTO t VALUES (3)") == 429);
  CHECK(f.Call("GET", "/v1/projects/shop/branches/production").second["head_lsn"] == head);
  // Lifted: writes go on.
  f.SetQuotas({{"max_commits_per_minute", nullptr}});
  CHECK(f.Sql("production", "INSERT INTO t VALUES (3)") == 200);

  // Per client: the client's own commits count, the admin's do not.
  auto [id, token] = f.NewClient({"sql:write"}, {{"max_commits_per_minute", 1}});
  CHECK(f.Sql("production", "INSERT INTO t VALUES (4)", token) == 200);
  CHECK(f.Sql("production", "INSERT INTO t VALUES (5)") == 200);
  json refused;
  CHECK(f.Sql("production", "INSERT INTO t VALUES (6)", token, &refused) == 429);
  CHECK(refused["error"]["details"]["scope"] == "client");
  CHECK(refused["error"]["details"]["client_id"] == id);
  CHECK(f.Sql("production", "SELECT count(*) FROM t", "", &answer) == 200);
  CHECK(answer["results"][0]["rows"] == json::array({json::array({5})}));
}

TEST_CASE("quota max_bytes: a growing write is refused whole, a shrinking one passes",
          "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  REQUIRE(f.Sql("production", "CREATE TABLE t(a)") == 200);
  const int64_t now = f.Call("GET", "/v1/projects/shop/usage").second["logical_bytes"];
  REQUIRE(now > 0);
  f.SetQuotas({{"max_bytes", now + 4096}});
  // ~400 KB: far past the quota.
  const std::string big =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 400) "
      "INSERT INTO t SELECT randomblob(1000) FROM n";
  json answer;
  CHECK(f.Sql("production", big, "", &answer) == 429);
  CHECK(answer["error"]["code"] == "quota_exceeded");
  CHECK(answer["error"]["details"]["quota"] == "max_bytes");
  CHECK(answer["error"]["details"]["limit"] == now + 4096);
  CHECK(answer["error"]["details"]["current"] == now);
  CHECK(f.Sql("production", "SELECT count(*) FROM t", "", &answer) == 200);
  CHECK(answer["results"][0]["rows"] == json::array({json::array({0})}));
  // A small write fits; raising the quota lets the big one through.
  CHECK(f.Sql("production", "INSERT INTO t VALUES (1)") == 200);
  f.SetQuotas({{"max_bytes", 10 << 20}});
  CHECK(f.Sql("production", big) == 200);
  // Lowered under the project's size: deleting still works (it does not grow).
  f.SetQuotas({{"max_bytes", 4096}});
  CHECK(f.Sql("production", "INSERT INTO t VALUES (randomblob(20000))") == 429);
  CHECK(f.Sql("production", "DELETE FROM t WHERE a = 1") == 200);
}

TEST_CASE("quota max_active_computes: an idle compute is suspended, a busy one refuses",
          "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  REQUIRE(f.Call("POST", "/v1/projects/shop/branches", {{"name", "a"}}).first == 201);
  f.SetQuotas({{"max_active_computes", 1}});
  REQUIRE(f.Sql("production", "SELECT 1") == 200);
  CHECK(f.Call("GET", "/v1/projects/shop/branches/production/compute").second["state"] ==
        "active");
  // Waking a's compute suspends production's idle one, within the quota.
  REQUIRE(f.Sql("a", "SELECT 1") == 200);
  CHECK(f.Call("GET", "/v1/projects/shop/branches/production/compute").second["state"] ==
        "suspended");
  CHECK(f.Call("GET", "/v1/projects/shop/usage").second["active_computes"] == 1);
  // 0: no compute may wake.
  f.SetQuotas({{"max_active_computes", 0}});
  REQUIRE(f.Call("POST", "/v1/projects/shop/branches/a/compute/suspend").first == 200);
  CheckRefusal(f.Call("POST", "/v1/projects/shop/branches/a/sql", {{"sql", "SELECT 1"}}),
               "max_active_computes", "project", 0, 0);
  f.SetQuotas({{"max_active_computes", nullptr}});
  CHECK(f.Sql("a", "SELECT 1") == 200);
}

TEST_CASE("default_branch_ttl_seconds applies to non-admin creates without a TTL", "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  auto [st, p] = f.Call("PATCH", "/v1/projects/shop", {{"default_branch_ttl_seconds", 3600}});
  REQUIRE(st == 200);
  CHECK(p["default_branch_ttl_seconds"] == 3600);
  auto [id, token] = f.NewClient({"branches:write"});
  auto [s1, agent] = f.Call("POST", "/v1/projects/shop/branches", {{"name", "agent"}}, token);
  REQUIRE(s1 == 201);
  CHECK(agent["expires_at"].is_string());
  auto [s2, own] =
      f.Call("POST", "/v1/projects/shop/branches", {{"name", "own"}, {"ttl_seconds", 60}}, token);
  REQUIRE(s2 == 201);
  CHECK(own["expires_at"] != agent["expires_at"]);
  auto [s3, admin] = f.Call("POST", "/v1/projects/shop/branches", {{"name", "admin"}});
  REQUIRE(s3 == 201);
  CHECK(admin["expires_at"].is_null());
}

TEST_CASE("usage: the figures of a scripted session", "[guard]") {
  Fixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  auto [id, token] = f.NewClient({"branches:write", "sql:write"});
  REQUIRE(f.Sql("production", "CREATE TABLE t(a)") == 200);                        // commit 1
  REQUIRE(f.Sql("production", "INSERT INTO t VALUES (1)") == 200);                  // commit 2
  REQUIRE(f.Call("POST", "/v1/projects/shop/branches", {{"name", "agent/x"}}, token).first == 201);
  REQUIRE(f.Sql("agent%2Fx", "INSERT INTO t VALUES (2)", token) == 200);            // commit 3
  REQUIRE(f.Sql("agent%2Fx", "SELECT * FROM t", token) == 200);                     // no commit
  auto [st, u] = f.Call("GET", "/v1/projects/shop/usage");
  REQUIRE(st == 200);
  INFO(u.dump());
  CHECK(u["branches"] == 2);
  CHECK(u["commits"] == 3);
  CHECK(u["commits_last_minute"] == 3);
  CHECK(u["active_computes"] == 2);
  CHECK(u["compute_seconds"].get<double>() > 0);
  // The admin's 2 SQL calls + the GET of usage's own request are not counted
  // before it answers: 1 create + 2 agent SQL + 2 admin SQL.
  CHECK(u["requests"] == 5);
  int64_t sum = 0;
  for (const auto& b : u["per_branch"]) {
    sum += b["logical_bytes"].get<int64_t>();
    CHECK(b["logical_bytes"].get<int64_t>() > 0);
    if (b["name"] == "agent/x") {
      CHECK(b["owner"] == id);
      CHECK(b["commits"] == 1);
      CHECK(b["exclusive_bytes"].get<int64_t>() > 0);  // its own write
      CHECK(b["shared_bytes"].get<int64_t>() > 0);     // production's pages it reads
    } else {
      CHECK(b["owner"].is_null());
      CHECK(b["commits"] == 2);
    }
  }
  CHECK(u["logical_bytes"] == sum);
  // The branch's own figures agree with GET .../branches/{b}.
  auto [sb, b] = f.Call("GET", "/v1/projects/shop/branches/agent%2Fx");
  for (const auto& pb : u["per_branch"]) {
    if (pb["name"] == "agent/x") {
      CHECK(pb["logical_bytes"] == b["logical_bytes"]);
      CHECK(pb["exclusive_bytes"] == b["exclusive_bytes"]);
    }
  }
  // The client's share.
  auto [sc, cu] = f.Call("GET", "/v1/projects/shop/usage?client=" + id);
  REQUIRE(sc == 200);
  CHECK(cu["client_id"] == id);
  CHECK(cu["branches"] == 1);
  CHECK(cu["commits"] == 1);
  CHECK(cu["requests"] == 3);
  // In /metrics.
  auto metrics = f.Client().Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("branchdb_project_commits_total{project=\"shop\"} 3") !=
        std::string::npos);
  CHECK(metrics->body.find("branchdb_project_branches{project=\"shop\"} 2") != std::string::npos);
}

TEST_CASE("usage: commit counts reach the ledger once each and survive clean restarts",
          "[guard]") {
  // Commits are counted in memory and flushed to ledger.db by the guard's
  // thread and at shutdown: after each restart (memory empty) the usage reads
  // the ledger alone, so these are the flushed counts, and neither the
  // thread's flushes nor the shutdown's count a commit a second time.
  testing::TempDir dir;
  auto tweak = [&](Config& c) { c.data_dir = dir.Sub("data"); };
  auto commits = [](Fixture& f) {
    auto [st, u] = f.Call("GET", "/v1/projects/shop/usage");
    REQUIRE(st == 200);
    return u["commits"].get<int64_t>();
  };
  {
    Fixture f(tweak);
    REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
    REQUIRE(f.Sql("production", "CREATE TABLE t(a)") == 200);
    for (int i = 0; i < 5; ++i) REQUIRE(f.Sql("production", "INSERT INTO t VALUES (1)") == 200);
    CHECK(commits(f) == 6);  // the unflushed counts show before they are in the ledger
  }
  {
    Fixture f(tweak);
    CHECK(commits(f) == 6);
    REQUIRE(f.Sql("production", "INSERT INTO t VALUES (2)") == 200);
    CHECK(commits(f) == 7);
  }
  Fixture f(tweak);
  CHECK(commits(f) == 7);
  auto [st, u] = f.Call("GET", "/v1/projects/shop/usage");
  REQUIRE(u["per_branch"].size() == 1);
  CHECK(u["per_branch"][0]["commits"] == 7);
}

// The operations of the scripted session below, in order.
std::vector<std::string> Operations(const json& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e["operation"]);
  return out;
}

TEST_CASE("audit: a scripted session's entries, in order, with their fields, after a restart",
          "[guard]") {
  testing::TempDir dir;
  auto tweak = [&](Config& c) { c.data_dir = dir.Sub("data"); };
  std::string agent_id;
  std::vector<std::string> expected;
  {
    Fixture f(tweak);
    REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
    auto [id, token] = f.NewClient({"branches:write", "sql:write"}, {{"max_branches", 5}});
    agent_id = id;
    REQUIRE(f.Call("POST", "/v1/projects/shop/branches", {{"name", "dev"}}, token).first == 201);
    json answer;
    REQUIRE(f.Sql("dev", "CREATE TABLE t(a)", token, &answer) == 200);  // not audited
    const int64_t lsn = answer["lsn"];
    REQUIRE(f.Call("PATCH", "/v1/projects/shop/branches/dev", {{"protected", true}}).first ==
            200);
    // Deleting a protected branch needs branches:protect, which the agent lacks.
    CHECK(f.Call("DELETE", "/v1/projects/shop/branches/dev", nullptr, token).first == 403);
    REQUIRE(f.Call("PATCH", "/v1/projects/shop/branches/dev", {{"protected", false}}).first ==
            200);
    REQUIRE(f.Call("POST", "/v1/projects/shop/branches/dev/rollback",
                   {{"to", {{"checkpoint", lsn - 1}}}}, token)
                .first == 200);
    f.SetQuotas({{"max_branches", 2}});
    CHECK(f.Call("POST", "/v1/projects/shop/branches", {{"name", "x"}}, token).first == 429);
    CHECK(f.Call("DELETE", "/v1/projects/shop/branches/dev", nullptr, "bad-token").first == 401);
    REQUIRE(f.Call("DELETE", "/v1/projects/shop/branches/dev", nullptr, token).first == 204);
    expected = {"branch.create",   "branch.protect",  "branch.delete",  "branch.unprotect",
                "branch.rollback", "project.update",  "branch.create",  "branch.delete",
                "branch.delete"};
  }
  Fixture f(tweak);  // restarted on the same data directory
  // The client's quotas and the project's are kept too.
  bool kept = false;
  const json clients = f.Call("GET", "/v1/clients").second;
  for (const auto& c : clients["clients"]) {
    if (c["client_id"] == agent_id) kept = c["quotas"]["max_branches"] == 5;
  }
  CHECK(kept);
  CHECK(f.Call("GET", "/v1/projects/shop").second["quotas"]["max_branches"] == 2);
  auto [st, page] = f.Call("GET", "/v1/projects/shop/audit");
  REQUIRE(st == 200);
  INFO(page.dump(2));
  std::vector<std::string> ops = Operations(page["events"]);
  // project.create comes first (an admin act on the new project).
  REQUIRE(ops.size() == expected.size() + 1);
  CHECK(ops[0] == "project.create");
  CHECK(std::vector<std::string>(ops.begin() + 1, ops.end()) == expected);
  const json& ev = page["events"];
  CHECK(ev[1]["client_id"] == agent_id);
  CHECK(ev[1]["branch"] == "dev");
  CHECK(ev[1]["project"] == "shop");
  CHECK(ev[1]["status"] == 201);
  CHECK(ev[1]["code"].is_null());
  CHECK(ev[1]["jti"].is_string());
  CHECK(ev[1]["request_id"].get<std::string>().rfind("req-", 0) == 0);
  CHECK(ev[3]["status"] == 403);
  CHECK(ev[3]["code"] == "branch_protected");
  CHECK(ev[5]["details"]["previous_head_lsn"].is_number());
  CHECK(ev[7]["status"] == 429);
  CHECK(ev[7]["code"] == "quota_exceeded");
  CHECK(ev[7]["details"]["quota"] == "max_branches");
  CHECK(ev[8]["status"] == 401);
  CHECK(ev[8]["code"] == "invalid_token");
  CHECK(ev[8]["client_id"].is_null());
  CHECK(ev[9]["status"] == 204);
  for (size_t i = 1; i < ev.size(); ++i) CHECK(ev[i]["seq"] > ev[i - 1]["seq"]);

  // Filters and paging: the agent's events, two a page.
  std::vector<std::string> agent_ops;
  std::string cursor;
  int pages = 0;
  do {
    auto [s, p] = f.Call("GET", "/v1/projects/shop/audit?limit=2&client=" + agent_id +
                                    (cursor.empty() ? "" : "&cursor=" + cursor));
    REQUIRE(s == 200);
    for (const auto& e : p["events"]) {
      CHECK(e["client_id"] == agent_id);
      agent_ops.push_back(e["operation"]);
    }
    cursor = p["next_cursor"].is_null() ? "" : p["next_cursor"].get<std::string>();
    ++pages;
  } while (!cursor.empty() && pages < 10);
  CHECK(agent_ops == std::vector<std::string>{"branch.create", "branch.delete", "branch.rollback",
                                              "branch.create", "branch.delete"});
  CHECK(pages == 3);
  CHECK(f.Call("GET", "/v1/projects/shop/audit?since=2999-01-01T00:00:00Z")
            .second["events"]
            .empty());
  CHECK(f.Call("GET", "/v1/projects/shop/audit?cursor=nope").first == 400);
  CHECK(f.Call("GET", "/v1/projects/shop/audit?limit=0").first == 400);

  // Server-wide: the client's creation and the token it got.
  auto [s2, server] = f.Call("GET", "/v1/audit");
  REQUIRE(s2 == 200);
  std::vector<std::string> server_ops = Operations(server["events"]);
  CHECK(std::find(server_ops.begin(), server_ops.end(), "client.create") != server_ops.end());
  bool agent_token = false;
  for (const auto& e : server["events"]) {
    agent_token |= e["operation"] == "token.issue" && e["client_id"] == agent_id &&
                   e["jti"].is_string() && e["status"] == 200;
  }
  CHECK(agent_token);

  // Reading the audit takes scope admin.
  auto [rid, reader] = f.NewClient({"projects:read", "branches:read"});
  CHECK(f.Call("GET", "/v1/projects/shop/audit", nullptr, reader).first == 403);
  CHECK(f.Call("GET", "/v1/audit", nullptr, reader).first == 403);
}

TEST_CASE("audit: failed client authentication is a server-wide event", "[guard]") {
  Fixture f;
  auto c = f.Client();
  c.set_basic_auth("bdb_nosuchclient", "wrong");
  auto r = c.Post("/oauth/token", "grant_type=client_credentials",
                  "application/x-www-form-urlencoded");
  REQUIRE(r);
  CHECK(r->status == 401);
  auto [st, server] = f.Call("GET", "/v1/audit");
  REQUIRE(st == 200);
  bool found = false;
  for (const auto& e : server["events"]) {
    found |= e["operation"] == "token.issue" && e["status"] == 401 &&
             e["code"] == "invalid_client" && e["client_id"] == "bdb_nosuchclient";
  }
  CHECK(found);
}

}  // namespace
}  // namespace branchdb::server
