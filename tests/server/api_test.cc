// The API over real HTTP: a full ApiServer (catalog, page store, VFS, auth) on
// a free port. Scenario tests of the semantics agents rely on, and the OpenAPI
// walk: every operation in docs/openapi.yaml is called against the server,
// answers with a documented status, and its JSON carries the documented
// required fields.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <atomic>
#include <fstream>
#include <functional>
#include <future>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "base/mock_clock.h"
#include "server/compute/supervisor.h"
#include "server/config.h"
#include "server/routes/table.h"
#include "server/server.h"
#include "tests/server/live_server.h"
#include "tests/server/openapi_yaml.h"
#include "tests/util/self_signed_cert.h"
#include "tests/util/temp_dir.h"

namespace branchdb::server {
namespace {

using nlohmann::json;
using testing::ReadYaml;
using testing::Resolve;

// --- A running server -----------------------------------------------------

class ApiFixture : public testing::LiveServer {
 public:
  explicit ApiFixture(const std::function<void(Config&)>& tweak = nullptr, Env* env = nullptr)
      : LiveServer(tweak, env) {}

  std::string NewToken(const std::string& scope = "") { return AdminToken(scope); }
};

const char* kDev = "/v1/projects/shop/branches/dev%2Falex";

TEST_CASE("scenario: branch, write, checkpoint, roll back and undo", "[api]") {
  ApiFixture f;
  auto [st, project] = f.Call("POST", "/v1/projects", {{"name", "shop"}});
  REQUIRE(st == 201);
  CHECK(project["default_branch"] == "production");
  auto [st1, r1] = f.Call("POST", "/v1/projects/shop/branches/production/sql",
                          {{"sql", "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (?, ?)"},
                           {"params", {1, "one"}}});
  REQUIRE(st1 == 200);
  CHECK(r1["results"][1]["rows_affected"] == 1);
  auto [st2, branch] =
      f.Call("POST", "/v1/projects/shop/branches", {{"name", "dev/alex"}, {"parent", "production"}});
  REQUIRE(st2 == 201);
  CHECK(branch["name"] == "dev/alex");
  CHECK(branch["parent"] == "production");
  CHECK(branch["branch_point_lsn"] == r1["lsn"]);

  auto [st3, del] = f.Call("POST", std::string(kDev) + "/sql", {{"sql", "DELETE FROM t"}});
  REQUIRE(st3 == 200);
  uint64_t delete_lsn = del["lsn"];
  auto [st4, cps] = f.Call("GET", std::string(kDev) + "/checkpoints");
  REQUIRE(st4 == 200);
  CHECK(cps["checkpoints"][0]["lsn"] == delete_lsn);
  CHECK(cps["checkpoints"][0]["summary"] == "DELETE FROM t");
  CHECK(cps["checkpoints"][0]["rows_affected"] == 1);
  CHECK(cps["checkpoints"][0]["client_id"] == f.client_id_);

  // Production is untouched by the branch.
  auto [st5, prod] = f.Call("POST", "/v1/projects/shop/branches/production/sql",
                            {{"sql", "SELECT count(*) FROM t"}});
  CHECK(prod["results"][0]["rows"] == json::array({json::array({1})}));

  auto [st6, rb] = f.Call("POST", std::string(kDev) + "/rollback", {{"to", {{"actions", 1}}}});
  REQUIRE(st6 == 200);
  CHECK(rb["previous_head_lsn"] == delete_lsn);
  auto [st7, after] = f.Call("POST", std::string(kDev) + "/sql", {{"sql", "SELECT b FROM t"}});
  CHECK(after["results"][0]["rows"] == json::array({json::array({"one"})}));

  // Undo the rollback.
  auto [st8, undo] =
      f.Call("POST", std::string(kDev) + "/rollback", {{"to", {{"checkpoint", delete_lsn}}}});
  REQUIRE(st8 == 200);
  auto [st9, again] = f.Call("POST", std::string(kDev) + "/sql", {{"sql", "SELECT count(*) FROM t"}});
  CHECK(again["results"][0]["rows"] == json::array({json::array({0})}));

  // A failing script changes nothing and says which statement failed.
  auto [st10, err] = f.Call("POST", std::string(kDev) + "/sql",
                            {{"sql", "INSERT INTO t VALUES (5, 'x'); SELEC nonsense"}});
  CHECK(st10 == 400);
  CHECK(err["error"]["code"] == "sql_error");
  CHECK(err["error"]["details"]["statement"] == 1);
  auto [st11, same] = f.Call("POST", std::string(kDev) + "/sql", {{"sql", "SELECT count(*) FROM t"}});
  CHECK(same["results"][0]["rows"] == json::array({json::array({0})}));
}

TEST_CASE("idempotent SQL: a retried POST applies once", "[api]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string sql_path = "/v1/projects/shop/branches/production/sql";
  REQUIRE(f.Call("POST", sql_path, {{"sql", "CREATE TABLE t(a)"}}).first == 200);
  json body = {{"sql", "INSERT INTO t VALUES (1)"}};
  auto first = f.Call("POST", sql_path, body, "", {{"Idempotency-Key", "agent-step-1"}});
  auto retry = f.Call("POST", sql_path, body, "", {{"Idempotency-Key", "agent-step-1"}});
  CHECK(first.first == 200);
  CHECK(retry.first == 200);
  CHECK(retry.second == first.second);
  auto count = f.Call("POST", sql_path, {{"sql", "SELECT count(*) FROM t"}});
  CHECK(count.second["results"][0]["rows"] == json::array({json::array({1})}));
  auto reused = f.Call("POST", sql_path, {{"sql", "INSERT INTO t VALUES (2)"}}, "",
                       {{"Idempotency-Key", "agent-step-1"}});
  CHECK(reused.first == 422);
}

TEST_CASE("auth: no token 401, narrow scope 403, read credential cannot write", "[api]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  auto c = f.Client();
  auto anonymous = c.Get("/v1/projects");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
  CHECK(anonymous->get_header_value("WWW-Authenticate").rfind("Bearer", 0) == 0);
  CHECK(json::parse(anonymous->body)["error"]["code"] == "unauthenticated");

  auto bad = f.Call("GET", "/v1/projects", nullptr, "not-a-token");
  CHECK(bad.first == 401);
  CHECK(bad.second["error"]["code"] == "invalid_token");

  std::string reader = f.NewToken("projects:read");
  CHECK(f.Call("GET", "/v1/projects", nullptr, reader).first == 200);
  auto denied = f.Call("POST", "/v1/projects", {{"name", "other"}}, reader);
  CHECK(denied.first == 403);
  CHECK(denied.second["error"]["code"] == "insufficient_scope");

  const std::string prod = "/v1/projects/shop/branches/production";
  REQUIRE(f.Call("POST", prod + "/sql", {{"sql", "CREATE TABLE t(a)"}}).first == 200);
  auto cred = f.Call("POST", prod + "/credentials", {{"access", "read"}, {"ttl_seconds", 120}});
  REQUIRE(cred.first == 201);
  std::string db_token = cred.second["credential"];
  auto read = f.Call("POST", prod + "/sql", {{"sql", "SELECT count(*) FROM t"}}, db_token);
  CHECK(read.first == 200);
  auto write = f.Call("POST", prod + "/sql", {{"sql", "INSERT INTO t VALUES (1)"}}, db_token);
  CHECK(write.first == 403);
  CHECK(write.second["error"]["code"] == "read_only");
  // The credential is for this branch only.
  REQUIRE(f.Call("POST", "/v1/projects/shop/branches", {{"name", "b2"}}).first == 201);
  auto elsewhere = f.Call("POST", "/v1/projects/shop/branches/b2/sql", {{"sql", "SELECT 1"}}, db_token);
  CHECK(elsewhere.first == 403);
}

TEST_CASE("sandbox refusals come back as 4xx errors", "[api]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string sql = "/v1/projects/shop/branches/production/sql";
  auto attach = f.Call("POST", sql, {{"sql", "ATTACH DATABASE '/tmp/x.db' AS x"}});
  CHECK(attach.first == 403);
  CHECK(attach.second["error"]["code"] == "sql_forbidden");
  auto pragma = f.Call("POST", sql, {{"sql", "PRAGMA journal_mode=WAL"}});
  CHECK(pragma.first == 403);
  auto missing = f.Call("POST", "/v1/projects/shop/branches/nope/sql", {{"sql", "SELECT 1"}});
  CHECK(missing.first == 404);
  CHECK(missing.second["error"]["code"] == "branch_not_found");
  auto bad_json = f.Client().Post((sql).c_str(),
                                  httplib::Headers{{"Authorization", "Bearer " + f.Admin()}},
                                  "{oops", "application/json");
  REQUIRE(bad_json);
  CHECK(bad_json->status == 400);
  CHECK(json::parse(bad_json->body)["error"]["code"] == "invalid_json");
}

TEST_CASE("compute: suspend, state, transparent resume", "[api]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string prod = "/v1/projects/shop/branches/production";
  REQUIRE(f.Call("POST", prod + "/sql", {{"sql", "CREATE TABLE t(a); INSERT INTO t VALUES (7)"}})
              .first == 200);
  auto active = f.Call("GET", prod + "/compute");
  CHECK(active.second["state"] == "active");
  auto suspended = f.Call("POST", prod + "/compute/suspend");
  CHECK(suspended.second["state"] == "suspended");
  auto read = f.Call("POST", prod + "/sql", {{"sql", "SELECT a FROM t"}});
  CHECK(read.second["results"][0]["rows"] == json::array({json::array({7})}));
  auto resumed = f.Call("GET", prod + "/compute");
  CHECK(resumed.second["state"] == "active");
  CHECK(resumed.second["cold_starts"] == 2);
}

TEST_CASE("compute: suspend/resume cycles under load from several threads lose nothing",
          "[api][compute]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string prod = "/v1/projects/shop/branches/production";
  REQUIRE(f.Call("POST", prod + "/sql", {{"sql", "CREATE TABLE t(writer INTEGER, n INTEGER)"}})
              .first == 200);
  constexpr int kWriters = 3;
  constexpr int kWrites = 20;
  // Catch2 assertions are not thread-safe: threads record, the test checks after.
  std::vector<std::vector<int>> acked(kWriters);
  std::vector<std::vector<int>> refused(kWriters);  // statuses other than 200
  std::atomic<bool> writers_done{false};
  std::atomic<int> suspends{0};
  std::vector<int> suspend_failures;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int n = 0; n < kWrites; ++n) {
        auto r = f.Send("POST", prod + "/sql",
                        {{"sql", "INSERT INTO t VALUES (?, ?)"}, {"params", {w, n}}});
        (r.first == 200 ? acked[w] : refused[w]).push_back(r.first == 200 ? n : r.first);
      }
    });
  }
  std::thread suspender([&] {
    while (!writers_done.load()) {
      auto r = f.Send("POST", prod + "/compute/suspend");
      if (r.first != 200) suspend_failures.push_back(r.first);
      suspends.fetch_add(1);
    }
  });
  for (auto& t : threads) t.join();
  writers_done = true;
  suspender.join();

  CHECK(suspend_failures.empty());
  std::set<std::pair<int, int>> expected;
  for (int w = 0; w < kWriters; ++w) {
    for (int status : refused[w]) {
      // Contention may refuse a write cleanly (busy, budget); never a 5xx.
      INFO("writer " << w << " got HTTP " << status);
      CHECK((status == 409 || status == 429));
    }
    for (int n : acked[w]) expected.insert({w, n});
  }
  CHECK(expected.size() >= kWriters);  // the load was real: writes went through
  auto rows = f.Call("POST", prod + "/sql", {{"sql", "SELECT writer, n FROM t"}});
  REQUIRE(rows.first == 200);
  std::set<std::pair<int, int>> present;
  size_t row_count = 0;
  for (const auto& row : rows.second["results"][0]["rows"]) {
    present.insert({row[0].get<int>(), row[1].get<int>()});
    ++row_count;
  }
  CHECK(row_count == present.size());  // nothing applied twice
  CHECK(present == expected);          // every acknowledged write, and only those
  auto check = f.Call("POST", prod + "/sql", {{"sql", "PRAGMA integrity_check"}});
  CHECK(check.second["results"][0]["rows"] == json::array({json::array({"ok"})}));
  auto compute = f.Call("GET", prod + "/compute");
  INFO("suspend calls: " << suspends.load());
  CHECK(compute.second["cold_starts"].get<int>() > 1);
}

TEST_CASE("idle timeout per branch: PATCH sets it, JSON shows it, the sweeper obeys it", "[api]") {
  // Time is a MockClock; the background sweeper is off (sweep_interval 3600 s of
  // real time) and the test calls Sweep() itself.
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  ApiFixture f([](Config& c) { c.idle_timeout_seconds = 120; }, &env);
  auto* computes = f.server_->services().computes;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string base = "/v1/projects/shop/branches";
  for (const char* name : {"never", "quick"}) {
    auto created = f.Call("POST", base, {{"name", name}});
    REQUIRE(created.first == 201);
    CHECK(created.second["idle_timeout_seconds"] == 120);  // the server default
  }
  auto never = f.Call("PATCH", base + "/never", {{"idle_timeout_seconds", 0}});
  REQUIRE(never.first == 200);
  CHECK(never.second["idle_timeout_seconds"] == 0);
  // Set before the compute ever ran: applied at its cold start, from the catalog.
  auto quick = f.Call("PATCH", base + "/quick", {{"idle_timeout_seconds", 60}});
  REQUIRE(quick.first == 200);
  CHECK(quick.second["idle_timeout_seconds"] == 60);
  CHECK(f.Call("GET", base + "/quick").second["idle_timeout_seconds"] == 60);
  CHECK(f.Call("GET", base + "/quick/compute").second["idle_timeout_seconds"] == 60);
  for (const json& bad : {json(-1), json(7 * 86400 + 1), json("soon")}) {
    auto r = f.Call("PATCH", base + "/quick", {{"idle_timeout_seconds", bad}});
    CHECK(r.first == 400);
    CHECK(r.second["error"]["code"] == "invalid_argument");
  }
  CHECK(f.Call("GET", base + "/quick").second["idle_timeout_seconds"] == 60);
  json listed = f.Call("GET", base).second["branches"];
  for (const json& b : listed) {
    if (b["name"] == "never") CHECK(b["idle_timeout_seconds"] == 0);
    if (b["name"] == "production") CHECK(b["idle_timeout_seconds"] == 120);
  }

  for (const char* name : {"never", "quick", "production"}) {
    REQUIRE(f.Call("POST", base + "/" + name + "/sql", {{"sql", "SELECT 1"}}).first == 200);
  }
  CHECK(f.Call("GET", base + "/never/compute").second["state"] == "active");
  CHECK(computes->Info("shop/quick")->idle_timeout_seconds == 60);
  CHECK(computes->Info("shop/never")->idle_timeout_seconds == 0);

  clock.AdvanceSeconds(61);
  CHECK(computes->Sweep() == 1);
  CHECK(f.Call("GET", base + "/quick/compute").second["state"] == "suspended");
  CHECK(f.Call("GET", base + "/never/compute").second["state"] == "active");
  CHECK(f.Call("GET", base + "/production/compute").second["state"] == "active");

  // (Advances stay well within the admin token's 900 s lifetime.)
  clock.AdvanceSeconds(300);
  CHECK(computes->Sweep() == 1);  // production (the default 120 s); never stays
  CHECK(f.Call("GET", base + "/production/compute").second["state"] == "suspended");
  auto still = f.Call("GET", base + "/never/compute");
  CHECK(still.second["state"] == "active");
  CHECK(still.second["cold_starts"] == 1);

  // A PATCH reaches the running compute at once.
  REQUIRE(f.Call("PATCH", base + "/never", {{"idle_timeout_seconds", 30}}).first == 200);
  CHECK(computes->Info("shop/never")->idle_timeout_seconds == 30);
  clock.AdvanceSeconds(31);
  CHECK(computes->Sweep() == 1);
  CHECK(f.Call("GET", base + "/never/compute").second["state"] == "suspended");

  // null: back to the server default; a rename keeps the branch's own value.
  auto reset = f.Call("PATCH", base + "/quick", {{"idle_timeout_seconds", nullptr}});
  REQUIRE(reset.first == 200);
  CHECK(reset.second["idle_timeout_seconds"] == 120);
  auto renamed = f.Call("PATCH", base + "/never", {{"name", "never2"}});
  REQUIRE(renamed.first == 200);
  CHECK(renamed.second["idle_timeout_seconds"] == 30);
  REQUIRE(f.Call("POST", base + "/never2/sql", {{"sql", "SELECT 1"}}).first == 200);
  CHECK(computes->Info("shop/never2")->idle_timeout_seconds == 30);
}

TEST_CASE("HTTPS when a certificate and key are configured", "[api][tls]") {
  testing::TempDir certs;
  testing::WriteSelfSignedCert(certs.Sub("cert.pem"), certs.Sub("key.pem"));
  ApiFixture f([&](Config& c) {
    c.tls_cert_file = certs.Sub("cert.pem");
    c.tls_key_file = certs.Sub("key.pem");
  });
  auto health = f.Client().Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(f.Call("POST", "/v1/projects", {{"name", "secure"}}).first == 201);
  // Plain HTTP to the TLS port gets nothing useful.
  httplib::Client plain("127.0.0.1", f.port_);
  auto r = plain.Get("/healthz");
  CHECK((!r || r->status != 200));
}

TEST_CASE("a SQL request in flight finishes when the server stops", "[api][shutdown]") {
  auto f = std::make_unique<ApiFixture>();
  REQUIRE(f->Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string sql = "/v1/projects/shop/branches/production/sql";
  REQUIRE(f->Call("POST", sql, {{"sql", "CREATE TABLE t(a)"}}).first == 200);
  // A script that takes a while (a few hundred ms), then commits.
  auto slow = std::async(std::launch::async, [&] {
    return f->Send("POST", sql,
                   {{"sql", "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
                            "FROM c WHERE x < 300000) SELECT count(*) FROM c"}});
  });
  // Wait until the request is running (the compute is leased), then stop.
  for (int i = 0; i < 2000; ++i) {
    auto c = f->server_->services().computes->Info("shop/production");
    if (c.ok() && c->leases > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  f->server_->Stop();
  auto [status, body] = slow.get();
  CHECK(status == 200);
  CHECK(body["results"][0]["rows_affected"] == 1);
  (void)f->serving_.get();
  f->serving_ = std::async(std::launch::deferred, [] { return Status::OK(); });
}

TEST_CASE("metrics count requests, commits and cold starts", "[api][metrics]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string sql = "/v1/projects/shop/branches/production/sql";
  REQUIRE(f.Call("POST", sql, {{"sql", "CREATE TABLE t(a); INSERT INTO t VALUES (1)"}}).first == 200);
  REQUIRE(f.Call("POST", sql, {{"sql", "INSERT INTO t VALUES (2)"}}).first == 200);
  REQUIRE(f.Call("POST", sql, {{"sql", "SELECT * FROM t"}}).first == 200);
  // The access-log hook counts a request after its response is sent: poll.
  const std::string sql_line =
      "branchdb_http_requests_total{route=\"/v1/projects/{project}/branches/{branch}/sql\","
      "method=\"POST\",status=\"200\"} 3";
  auto m = f.Client().Get("/metrics");
  for (int i = 0; i < 200 && m && m->body.find(sql_line) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    m = f.Client().Get("/metrics");
  }
  REQUIRE(m);
  CHECK(m->body.find("branchdb_commits_total 2\n") != std::string::npos);
  CHECK(m->body.find("branchdb_compute_cold_starts_total 1\n") != std::string::npos);
  CHECK(m->body.find(sql_line) != std::string::npos);
  CHECK(m->body.find("branchdb_fsync_duration_seconds_count") != std::string::npos);
  CHECK(m->body.find("branchdb_computes_active 1") != std::string::npos);
  // The open store's caches: the commits put their records' metas in the meta
  // cache; both caches have a capacity.
  auto gauge = [&](const std::string& series) {
    size_t at = m->body.find("\n" + series + " ");
    REQUIRE(at != std::string::npos);
    return std::stod(m->body.substr(at + series.size() + 2));
  };
  CHECK(gauge("branchdb_cache_bytes{cache=\"meta\"}") > 0);
  CHECK(gauge("branchdb_cache_capacity_bytes{cache=\"meta\"}") > 0);
  CHECK(gauge("branchdb_cache_capacity_bytes{cache=\"page\"}") > 0);
  double ratio = gauge("branchdb_cache_hit_ratio{cache=\"page\"}");
  CHECK(ratio >= 0);
  CHECK(ratio <= 1);
}

TEST_CASE("a script that changes nothing makes no checkpoint, the first on a never-written "
          "database too", "[api]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string prod = "/v1/projects/shop/branches/production";
  auto checkpoints = [&] {
    auto [status, list] = f.Call("GET", prod + "/checkpoints?limit=1000");
    REQUIRE(status == 200);
    return list["checkpoints"].size();
  };
  auto head = [&] { return f.Call("GET", prod).second["head_lsn"]; };
  // Answers as a read-only script's: no lsn, the state it read, nothing listed.
  auto unchanged = [&](const std::string& sql) {
    INFO(sql);
    const size_t listed = checkpoints();
    const json before = head();
    auto [status, answer] = f.Call("POST", prod + "/sql", {{"sql", sql}});
    REQUIRE(status == 200);
    CHECK(answer["lsn"].is_null());
    CHECK(answer["snapshot_lsn"] == before);
    CHECK(answer["read_only"] == false);
    CHECK(head() == before);
    CHECK(checkpoints() == listed);
    return answer["results"];
  };
  const size_t before = checkpoints();
  unchanged("SELECT 1");
  // SQLite writes an empty database's page 1 for a TEMP-only script.
  CHECK(unchanged("CREATE TEMP TABLE x(a); INSERT INTO x VALUES (1); SELECT a FROM x")[2]["rows"] ==
        json::parse("[[1]]"));
  REQUIRE(f.Call("POST", prod + "/sql", {{"sql", "CREATE TABLE t(a)"}}).second["lsn"].is_number());
  unchanged("SELECT * FROM t; UPDATE t SET a = 1 WHERE 0; INSERT INTO t SELECT 1 WHERE 0");
  unchanged("DELETE FROM t");  // SQLite rewrites the empty table's root page
  REQUIRE(f.Call("POST", prod + "/sql", {{"sql", "INSERT INTO t VALUES (1), (2)"}})
              .second["lsn"].is_number());
  CHECK(unchanged("UPDATE t SET a = a")[0]["rows_affected"] == 2);
  CHECK(unchanged("PRAGMA user_version = 0; SELECT a FROM t ORDER BY a")[1]["rows"] ==
        json::parse("[[1], [2]]"));
  auto changed = f.Call("POST", prod + "/sql", {{"sql", "UPDATE t SET a = a + 10"}});
  CHECK(changed.second["lsn"] == head());
  CHECK(checkpoints() == before + 3);
  CHECK(f.Call("POST", prod + "/sql", {{"sql", "SELECT a FROM t ORDER BY a"}})
            .second["results"][0]["rows"] == json::parse("[[11], [12]]"));
}

TEST_CASE("a result past the server's cap is an error, never silently cut; pages at one snapshot "
          "read all of it", "[api]") {
  ApiFixture f([](Config& c) { c.max_result_rows = 5; });
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string sql = "/v1/projects/shop/branches/production/sql";
  REQUIRE(f.Call("POST", sql,
                 {{"sql", "CREATE TABLE t(a); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                          "SELECT x + 1 FROM c WHERE x < 12) INSERT INTO t SELECT x FROM c"}})
              .first == 200);
  const json query = {{"sql", "SELECT a FROM t WHERE a > ? ORDER BY a"}, {"params", {0}}};
  auto whole = f.Call("POST", sql, query);
  CHECK(whole.first == 413);
  CHECK(whole.second["error"]["code"] == "result_too_large");
  CHECK(whole.second["error"]["message"].get<std::string>().find("page_size") !=
        std::string::npos);

  json paged = query;
  paged["page_size"] = 5;
  auto page = f.Call("POST", sql, paged);
  REQUIRE(page.first == 200);
  const json lsn = page.second["snapshot_lsn"];
  json rows = page.second["results"][0]["rows"];
  CHECK(rows.size() == 5);
  CHECK(page.second["results"][0]["truncated"] == true);
  // A write between pages does not show in them: every page reads one LSN.
  REQUIRE(f.Call("POST", sql, {{"sql", "DELETE FROM t WHERE a < 8"}}).second["lsn"].is_number());
  while (page.second["next_cursor"].is_string()) {
    json next = query;
    next["cursor"] = page.second["next_cursor"];
    page = f.Call("POST", sql, next);
    REQUIRE(page.first == 200);
    CHECK(page.second["snapshot_lsn"] == lsn);
    for (const auto& row : page.second["results"][0]["rows"]) rows.push_back(row);
  }
  CHECK(page.second["results"][0]["truncated"] == false);
  REQUIRE(rows.size() == 12);
  for (int i = 0; i < 12; ++i) CHECK(rows[i][0] == i + 1);

  json other = {{"sql", "SELECT a FROM t"}, {"cursor", "v1.1.5.5.0000000000000001"}};
  CHECK(f.Call("POST", sql, other).second["error"]["code"] == "invalid_cursor");
  CHECK(f.Call("POST", sql, {{"sql", "SELECT 1; SELECT 2"}, {"page_size", 2}}).first == 400);
  CHECK(f.Call("POST", sql, {{"sql", "SELECT 1"}, {"page_size", 6}}).first == 400);
  CHECK(f.Call("POST", sql, {{"sql", "DELETE FROM t"}, {"page_size", 2}}).second["error"]["code"] ==
        "read_only");
}

TEST_CASE("deleting a project does not wait for the SQL running on it, which ends with its "
          "result or project_not_found",
          "[api]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "gone"}}).first == 201);
  const std::string sql = "/v1/projects/gone/branches/production/sql";
  REQUIRE(f.Call("POST", sql, {{"sql", "CREATE TABLE t(a)"}}).first == 200);
  auto slow = std::async(std::launch::async, [&] {
    return f.Send("POST", sql,
                  {{"sql", "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
                           "FROM c WHERE x < 200000) SELECT count(*) FROM c"}});
  });
  for (int i = 0; i < 2000; ++i) {
    auto c = f.server_->services().computes->Info("gone/production");
    if (c.ok() && c->leases > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto deleted = f.Call("DELETE", "/v1/projects/gone");
  CHECK(deleted.first == 204);
  auto [status, body] = slow.get();
  INFO(body.dump());
  CHECK((status == 200 || (status == 404 && body["error"]["code"] == "project_not_found")));
  CHECK(f.Call("POST", sql, {{"sql", "SELECT 1"}}).first == 404);
}

TEST_CASE("an expired branch is reaped and its compute dropped", "[api]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  REQUIRE(f.Call("POST", "/v1/projects/shop/branches", {{"name", "tmp"}, {"ttl_seconds", 1}}).first ==
          201);
  REQUIRE(f.Call("POST", "/v1/projects/shop/branches/tmp/sql", {{"sql", "SELECT 1"}}).first == 200);
  CHECK(f.server_->services().computes->Info("shop/tmp").ok());
  // The catalog's reaper runs every second (real time): it deletes the branch,
  // then drops its compute, so wait for both (bounded generously: the test
  // proves that it happens, not how fast on a loaded machine).
  bool branch_gone = false;
  bool compute_gone = false;
  for (int i = 0; i < 1200 && !(branch_gone && compute_gone); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    branch_gone = f.Call("GET", "/v1/projects/shop/branches/tmp").first == 404;
    compute_gone = f.server_->services().computes->Info("shop/tmp").status().IsNotFound();
  }
  CHECK(branch_gone);
  CHECK(compute_gone);
}

TEST_CASE("schema lists a branch's objects as of a state, without SQLite's own", "[api]") {
  ApiFixture f;
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string branch = "/v1/projects/shop/branches/production";
  auto [st1, t] = f.Call("POST", branch + "/sql", {{"sql", "CREATE TABLE t(a PRIMARY KEY, b)"}});
  REQUIRE(st1 == 200);
  auto [st2, i] = f.Call("POST", branch + "/sql", {{"sql", "CREATE INDEX t_b ON t(b)"}});
  REQUIRE(st2 == 200);

  auto [st3, now] = f.Call("GET", branch + "/schema");
  REQUIRE(st3 == 200);
  CHECK(now["lsn"] == i["lsn"]);
  // Ordered by type, then name; t's automatic index (sqlite_autoindex_t_1) is SQLite's own.
  CHECK(now["objects"] == json::array({{{"type", "index"},
                                        {"name", "t_b"},
                                        {"table", "t"},
                                        {"sql", "CREATE INDEX t_b ON t(b)"}},
                                       {{"type", "table"},
                                        {"name", "t"},
                                        {"table", "t"},
                                        {"sql", "CREATE TABLE t(a PRIMARY KEY, b)"}}}));

  auto [st4, before] = f.Call("GET", branch + "/schema?lsn=" + t["lsn"].dump());
  REQUIRE(st4 == 200);
  CHECK(before["lsn"] == t["lsn"]);
  REQUIRE(before["objects"].size() == 1);
  CHECK(before["objects"][0]["name"] == "t");

  CHECK(f.Call("GET", "/v1/projects/shop/branches/nope/schema").first == 404);
}

TEST_CASE("credential lifetime is capped by the config", "[api]") {
  ApiFixture f([](Config& c) { c.credential_max_seconds = 300; });
  REQUIRE(f.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  const std::string cred = "/v1/projects/shop/branches/production/credentials";
  CHECK(f.Call("POST", cred, {{"access", "read"}, {"ttl_seconds", 600}}).first == 400);
  CHECK(f.Call("POST", cred, {{"access", "read_write"}, {"ttl_seconds", 120}}).first == 201);
}

// --- The OpenAPI walk --------------------------------------------------------

// Hardening item 21, the class: one convention in the REST API's JSON. Every
// time (a key "time" or "*_at") is an RFC 3339 string or null, every "scopes"
// an array of names. (OAuth's wire formats keep theirs: "scope" is a string,
// "expires_in", "iat" and "exp" are numbers.)
void CheckJsonConventions(const json& j, const std::string& where) {
  static const std::regex kRfc3339(
      R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$)");
  if (j.is_array()) {
    for (const auto& e : j) CheckJsonConventions(e, where);
  }
  if (!j.is_object()) return;
  for (const auto& [key, value] : j.items()) {
    INFO(where << ": \"" << key << "\": " << value.dump());
    bool is_time = key == "time" || (key.size() > 3 && key.compare(key.size() - 3, 3, "_at") == 0);
    if (is_time) {
      CHECK((value.is_null() ||
             (value.is_string() && std::regex_match(value.get<std::string>(), kRfc3339))));
    }
    if (key == "scopes") {
      CHECK(value.is_array());
      for (const auto& s : value) CHECK(s.is_string());
    }
    CheckJsonConventions(value, where);
  }
}

TEST_CASE("openapi: the route table and docs/openapi.yaml name the same operations",
          "[api][openapi]") {
  json doc = ReadYaml(std::string(BRANCHDB_SOURCE_DIR) + "/docs/openapi.yaml");
  REQUIRE(doc["paths"].is_object());
  std::set<std::string> documented, routed;
  for (auto& [path, ops] : doc["paths"].items()) {
    for (auto& [method, op] : ops.items()) documented.insert(method + " " + path);
  }
  for (const routes::Route& r : routes::kApiRoutes) {
    std::string method = r.method;
    for (char& ch : method) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    INFO(r.method << " " << r.path << " is in the table twice");
    CHECK(routed.insert(method + " " + r.path).second);
  }
  for (const auto& op : routed) {
    INFO("in the route table, not in docs/openapi.yaml: " << op);
    CHECK(documented.count(op) == 1);
  }
  for (const auto& op : documented) {
    INFO("in docs/openapi.yaml, not in the route table: " << op);
    CHECK(routed.count(op) == 1);
  }
}

TEST_CASE("openapi walk: every documented operation answers as documented", "[api][openapi]") {
  json doc = ReadYaml(std::string(BRANCHDB_SOURCE_DIR) + "/docs/openapi.yaml");
  REQUIRE(doc["paths"].is_object());
  std::set<std::string> documented;
  for (auto& [path, ops] : doc["paths"].items()) {
    for (auto& [method, op] : ops.items()) documented.insert(method + " " + path);
  }

  ApiFixture f;
  std::string client_to_delete;
  std::string export_bytes;
  std::set<std::string> walked;
  auto check = [&](const std::string& method, const std::string& tmpl, int status,
                   const std::string& body, const std::string& content_type) {
    walked.insert(method + " " + tmpl);
    INFO(method << " " << tmpl << " -> " << status << " " << body.substr(0, 300));
    REQUIRE(doc["paths"].contains(tmpl));
    REQUIRE(doc["paths"][tmpl].contains(method));
    json responses = doc["paths"][tmpl][method]["responses"];
    REQUIRE(responses.contains(std::to_string(status)));
    json response = Resolve(doc, responses[std::to_string(status)]);
    if (!response.contains("content") || !response["content"].contains("application/json")) return;
    CHECK(content_type.rfind("application/json", 0) == 0);
    json schema = Resolve(doc, response["content"]["application/json"]["schema"]);
    json got = json::parse(body);
    if (tmpl.rfind("/v1/", 0) == 0) CheckJsonConventions(got, method + " " + tmpl);
    for (const auto& field : schema.value("required", json::array())) {
      INFO("required field " << field);
      CHECK(got.contains(field.get<std::string>()));
    }
  };
  auto call = [&](const std::string& method, const std::string& tmpl, const std::string& path,
                  const std::string& body = "", const std::string& type = "application/json",
                  bool bearer = true, bool basic = false) {
    auto c = f.Client();
    httplib::Headers h;
    if (bearer) h.emplace("Authorization", "Bearer " + f.Admin());
    if (basic) c.set_basic_auth(f.client_id_.c_str(), f.client_secret_.c_str());
    httplib::Result r = method == "get"     ? c.Get(path.c_str(), h)
                        : method == "post"  ? c.Post(path.c_str(), h, body, type.c_str())
                        : method == "patch" ? c.Patch(path.c_str(), h, body, type.c_str())
                                            : c.Delete(path.c_str(), h);
    REQUIRE(r);
    check(method, tmpl, r->status, r->body, r->get_header_value("Content-Type"));
    return std::make_pair(r->status, r->body);
  };
  const std::string form = "application/x-www-form-urlencoded";
  const std::string B = "/v1/projects/{project}/branches/{branch}";
  const std::string b = "/v1/projects/walk/branches/dev%2Fwalk";

  call("get", "/healthz", "/healthz", "", "", false);
  call("get", "/metrics", "/metrics", "", "", false);
  call("post", "/oauth/token", "/oauth/token", "grant_type=client_credentials", form, false, true);
  call("post", "/oauth/introspect", "/oauth/introspect", "token=" + f.Admin(), form, false, true);
  call("post", "/oauth/revoke", "/oauth/revoke", "token=" + f.NewToken(), form, false, true);
  call("get", "/.well-known/jwks.json", "/.well-known/jwks.json", "", "", false);
  call("get", "/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server",
       "", "", false);
  call("get", "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource",
       "", "", false);
  CHECK(call("get", "/oauth/authorize", "/oauth/authorize?response_type=code&client_id=x", "", "",
             false)
            .first == 400);
  CHECK(call("post", "/mcp", "/mcp", R"({"jsonrpc":"2.0","id":1,"method":"ping"})").first == 200);
  CHECK(call("get", "/mcp", "/mcp").first == 405);
  CHECK(call("delete", "/mcp", "/mcp").first == 405);
  auto client = call("post", "/v1/clients", "/v1/clients",
                     R"({"name":"walker","scopes":["sql:read"]})");
  REQUIRE(client.first == 201);
  client_to_delete = json::parse(client.second)["client_id"];
  call("get", "/v1/clients", "/v1/clients");
  CHECK(call("delete", "/v1/clients/{client_id}", "/v1/clients/" + client_to_delete).first == 204);
  CHECK(call("post", "/v1/projects", "/v1/projects", R"({"name":"walk"})").first == 201);
  call("get", "/v1/projects", "/v1/projects");
  call("get", "/v1/projects/{project}", "/v1/projects/walk");
  call("patch", "/v1/projects/{project}", "/v1/projects/walk", R"({"restore_window_seconds":86400})");
  call("patch", "/v1/projects/{project}", "/v1/projects/walk",
       R"({"quotas":{"max_branches":100},"default_branch_ttl_seconds":null})");
  CHECK(call("post", "/v1/projects/{project}/branches", "/v1/projects/walk/branches",
             R"({"name":"dev/walk","parent":"production","protected":false})")
            .first == 201);
  call("get", "/v1/projects/{project}/branches", "/v1/projects/walk/branches");
  call("get", B, b);
  call("patch", B, b, R"({"ttl_seconds":3600,"idle_timeout_seconds":600})");
  CHECK(call("post", B + "/sql", b + "/sql",
             R"J({"sql":"CREATE TABLE t(a); INSERT INTO t VALUES (?)","params":[1]})J")
            .first == 200);
  {
    auto c = f.Client();
    auto r = c.Get((b + "/export").c_str(), httplib::Headers{{"Authorization", "Bearer " + f.Admin()}});
    REQUIRE(r);
    check("get", B + "/export", r->status, r->body, r->get_header_value("Content-Type"));
    CHECK(r->status == 200);
    export_bytes = r->body;
  }
  CHECK(call("post", "/v1/projects/{project}/import", "/v1/projects/walk/import?branch=imported",
             export_bytes, "application/vnd.sqlite3")
            .first == 201);
  CHECK(call("post", B + "/promote", b + "/promote").first == 200);
  call("get", B + "/checkpoints", b + "/checkpoints?limit=10");
  call("post", B + "/checkpoints", b + "/checkpoints", R"({"label":"first"})");
  call("post", B + "/rollback", b + "/rollback", R"({"to":{"actions":1}})");
  call("post", B + "/reset", b + "/reset");
  call("get", B + "/schema", b + "/schema");
  call("get", B + "/diff", b + "/diff?kind=schema");
  call("post", B + "/credentials", b + "/credentials", R"({"access":"read"})");
  call("get", B + "/compute", b + "/compute");
  call("post", B + "/compute/suspend", b + "/compute/suspend");
  call("get", "/v1/projects/{project}/usage", "/v1/projects/walk/usage");
  call("get", "/v1/projects/{project}/audit", "/v1/projects/walk/audit?limit=5");
  call("get", "/v1/audit", "/v1/audit");
  {
    // A single node: no etcd, nothing of a cluster (docs/cluster.md).
    auto [status, body] = call("get", "/v1/cluster", "/v1/cluster");
    CHECK(status == 200);
    CHECK(json::parse(body) ==
          json::parse(R"({"enabled":false,"nodes":[],"owners":[],"unowned_projects":[]})"));
  }
  CHECK(call("delete", B, b).first == 204);
  CHECK(call("delete", "/v1/projects/{project}", "/v1/projects/walk").first == 204);

  for (const auto& op : documented) {
    INFO("documented but not walked: " << op);
    CHECK(walked.count(op) == 1);
  }
}

}  // namespace
}  // namespace branchdb::server
