// [storage] cache_mb over real HTTP (server/cache_budget.h): with many
// projects open and many reads, the stores' caches together stay within their
// half of the budget and SQLite's page caches near theirs; a restart with
// another budget on the same data is honoured. Read from /metrics.
#include "server/cache_budget.h"

#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "storage/cache.h"
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
  int Get(const std::string& path) {
    auto r = Client().Get(path.c_str(), {{"Authorization", "Bearer " + token_}});
    REQUIRE(r);
    return r->status;
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
  // Every kind of the stores' shared cache (storage::kCacheKindNames).
  double StoreCacheBytes() {
    double bytes = 0;
    for (const char* kind : storage::kCacheKindNames) {
      bytes += Gauge("branchdb_cache_bytes{cache=\"" + std::string(kind) + "\"}");
    }
    return bytes;
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
      // The checkpoint listing reads every record's meta (through the cache).
      REQUIRE(s.Get("/v1/projects/" + Project(i) + "/branches/production/checkpoints?limit=1000") ==
              200);
      CHECK(s.StoreCacheBytes() <= store_capacity);
    }
  }
}

TEST_CASE(
    "the caches of many open projects stay within [storage] cache_mb, and a new budget "
    "is honoured after a restart",
    "[api][cache]") {
  testing::TempDir dir;
  const std::string data = dir.Sub("data");
  // The smallest budget (1 MiB for the stores' cache), so that the commits'
  // record metas (~700 bytes each, 2,000 of them) overflow it.
  {
    BudgetServer s(data, 2);
    const CacheBudget budget = SplitCacheBudget(2, 4);
    CHECK(s.Gauge("branchdb_cache_budget_bytes") == 2.0 * (1 << 20));
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"page\"}") == budget.store_cache_bytes);
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"meta\"}") == budget.store_cache_bytes);
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"sqlite\"}") == budget.sqlite_bytes);
    const std::string note(1000, 'x');
    for (int i = 0; i < kProjects; ++i) {
      REQUIRE(s.Post("/v1/projects", {{"name", Project(i)}}) == 201);
      REQUIRE(s.Sql(Project(i), "CREATE TABLE events(id INTEGER PRIMARY KEY, note TEXT)") == 200);
      for (int commit = 0; commit < 250; ++commit) {
        REQUIRE(s.Sql(Project(i), "INSERT INTO events(note) VALUES ('" + note +
                                      std::to_string(commit) + "')") == 200);
      }
      CHECK(s.StoreCacheBytes() <= budget.store_cache_bytes);
    }
    // More metas were written than fit: the cache is full, not merely small
    // (and the second server below holds them all).
    CHECK(s.Gauge("branchdb_cache_bytes{cache=\"meta\"}") > budget.store_cache_bytes / 2);
    ReadEverything(s, budget.store_cache_bytes);
    // SQLite's page caches: the computes' share of the budget (each 8
    // projects' table would fill a default-sized cache several times), plus
    // the catalog's and the idempotency store's own small caches.
    CHECK(s.Gauge("branchdb_cache_bytes{cache=\"sqlite\"}") > 0);
    CHECK(s.Gauge("branchdb_cache_bytes{cache=\"sqlite\"}") <= budget.sqlite_bytes * 1.5);
  }
  {
    BudgetServer s(data, 64);
    const CacheBudget budget = SplitCacheBudget(64, 4);
    CHECK(s.Gauge("branchdb_cache_budget_bytes") == 64.0 * (1 << 20));
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"meta\"}") == budget.store_cache_bytes);
    CHECK(s.Gauge("branchdb_cache_capacity_bytes{cache=\"sqlite\"}") == budget.sqlite_bytes);
    ReadEverything(s, budget.store_cache_bytes);
    // All of every project's metas fit now: the listings read them into it.
    CHECK(s.Gauge("branchdb_cache_bytes{cache=\"meta\"}") >
          SplitCacheBudget(2, 4).store_cache_bytes);
    CHECK(s.StoreCacheBytes() <= budget.store_cache_bytes);
    CHECK(s.Gauge("branchdb_cache_bytes{cache=\"sqlite\"}") <= budget.sqlite_bytes);
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
