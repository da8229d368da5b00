// [storage] cache_mb over real HTTP (server/cache_budget.h): with many
// projects open and many reads, the stores' caches together stay within their
// half of the budget and SQLite's heap near its half; a restart with another
// budget on the same data is honoured. Read from /metrics.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "server/cache_budget.h"
#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

using json = nlohmann::json;

class BudgetServer : public testing::LiveServer {
 public:
  BudgetServer(const std::string& data_dir, int64_t cache_mb)
      : LiveServer([&](Config& c) {
          c.data_dir = data_dir;
          c.cache_mb = cache_mb;
          c.compute_budget = 4;  // fewer than the projects: computes are suspended and resumed
        }),
        token_(AdminToken()) {}

  int Post(const std::string& path, const json& body) {
    auto r = Client().Post(path.c_str(), {{"Authorization", "Bearer " + token_}}, body.dump(),
                           "application/json");
    REQUIRE(r);
    INFO(r->body);
    return r->status;
  }
  int Sql(const std::string& project, const std::string& sql) {
    return Post("/v1/projects/" + project + "/branches/production/sql", {{"sql", sql}});
  }
  // The value of one series of /metrics.
  double Gauge(const std::string& series) {
    auto m = Client().Get("/metrics");
    REQUIRE(m);
    size_t at = m->body.find("\n" + series + " ");
    INFO(series);
    REQUIRE(at != std::string::npos);
    return std::stod(m->body.substr(at + series.size() + 2));
  }
  double StoreCacheBytes() {
    return Gauge("branchdb_cache_bytes{cache=\"page\"}") +
           Gauge("branchdb_cache_bytes{cache=\"meta\"}") +
           Gauge("branchdb_cache_bytes{cache=\"index\"}");
  }

 private:
  std::string token_;
};

constexpr int kProjects = 8;

std::string Project(int i) { return "p" + std::to_string(i); }

// Every project's table, read whole a few times over (each read of a project
// whose compute was suspended starts from an empty SQLite cache), checking
// the caches after every project.
void ReadEverything(BudgetServer& s, double store_capacity) {
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kProjects; ++i) {
      REQUIRE(s.Sql(Project(i), "SELECT count(*), sum(length(note)) FROM events") == 200);
      REQUIRE(s.Sql(Project(i), "SELECT * FROM events WHERE id = " + std::to_string(97 * i + 1)) ==
              200);
      CHECK(s.StoreCacheBytes() <= store_capacity);
    }
  }
}

TEST_CASE("the caches of many open projects stay within [storage] cache_mb, and a new budget "
          "is honoured after a restart", "[api][cache]") {
  testing::TempDir dir;
  const std::string data = dir.Sub("data");
  {
    BudgetServer s(data, 16);
    const CacheBudget budget = SplitCacheBudget(16, 4);
    CHECK(s.Gauge("branchdb_cache_budget_bytes") == 16.0 * (1 << 20));
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"page\"}") == budget.store_cache_bytes);
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"meta\"}") == budget.store_cache_bytes);
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"sqlite\"}") == budget.sqlite_bytes);
    // 8 projects of ~2 MiB each, made of many commits with long annotations
    // (their SQL): more than the 8 MiB the stores' cache may hold.
    const std::string note(2000, 'x');
    for (int i = 0; i < kProjects; ++i) {
      REQUIRE(s.Post("/v1/projects", {{"name", Project(i)}}) == 201);
      REQUIRE(s.Sql(Project(i), "CREATE TABLE events(id INTEGER PRIMARY KEY, note TEXT)") == 200);
      for (int batch = 0; batch < 10; ++batch) {
        REQUIRE(s.Sql(Project(i), "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n "
                                  "WHERE k < 100) INSERT INTO events(note) SELECT '" +
                                      note + "' || k FROM n") == 200);
      }
      CHECK(s.StoreCacheBytes() <= budget.store_cache_bytes);
    }
    ReadEverything(s, budget.store_cache_bytes);
    // The meta cache is in use (the commits' records), and is what the
    // budget bounds: more was written than it can hold.
    CHECK(s.Gauge("branchdb_cache_bytes{cache=\"meta\"}") > 0);
    // SQLite's heap: its soft limit keeps the computes' page caches within
    // their half (advisory: statements and schemas come on top).
    CHECK(s.Gauge("branchdb_cache_bytes{cache=\"sqlite\"}") <= budget.sqlite_bytes * 1.5);
  }
  {
    BudgetServer s(data, 64);
    const CacheBudget budget = SplitCacheBudget(64, 4);
    CHECK(s.Gauge("branchdb_cache_budget_bytes") == 64.0 * (1 << 20));
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"meta\"}") == budget.store_cache_bytes);
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"sqlite\"}") == budget.sqlite_bytes);
    ReadEverything(s, budget.store_cache_bytes);
    for (int i = 0; i < kProjects; ++i) {
      REQUIRE(s.Post("/v1/projects/" + Project(i) + "/branches",
                     {{"name", "dev"}, {"parent", "production"}}) == 201);
    }
    CHECK(s.StoreCacheBytes() <= budget.store_cache_bytes);
    CHECK(s.Gauge("branchdb_cache_bytes{cache=\"sqlite\"}") <= budget.sqlite_bytes * 1.5);
  }
}

TEST_CASE("the budget's split gives each compute an equal share of SQLite's half", "[cache]") {
  const CacheBudget b = SplitCacheBudget(512, 64);
  CHECK(b.total_bytes == 512ull << 20);
  CHECK(b.store_cache_bytes + b.sqlite_bytes == b.total_bytes);
  CHECK(static_cast<uint64_t>(b.compute_cache_pages) * (4096 + kSqlitePageOverhead) * 64 <=
        b.sqlite_bytes);
  CHECK(b.compute_cache_pages > 900);
  // A tiny budget for many computes still leaves each a workable cache.
  CHECK(SplitCacheBudget(16, 4096).compute_cache_pages == 16);
}

}  // namespace
}  // namespace branchdb::server
