// ComputeSupervisor over native SQLite files: cold start, idle suspend with a
// mock clock, budget (LRU), leases that block suspension, invalidate/remove,
// and many threads racing suspends.
#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/mock_clock.h"
#include "catalog/catalog.h"
#include "server/compute/supervisor.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

namespace branchdb::server::compute {
namespace {

using ::branchdb::testing::TestSeed;

using nlohmann::json;

class ComputeFixture {
 public:
  explicit ComputeFixture(int budget = 8, int64_t idle = 300) {
    SupervisorOptions o;
    o.clock = &clock_;
    o.budget = budget;
    o.idle_timeout_seconds = idle;
    o.sweep_interval_seconds = 0;  // the test sweeps
    o.open = [this](const std::string& key) -> Result<storage::SqliteHandle> {
      opens_++;
      clock_.Advance(open_micros_);
      if (fail_opens_) return Status::IOError("injected open failure");
      sqlite3* db = nullptr;
      int rc = sqlite3_open_v2(dir_.Sub(key + ".db").c_str(), &db,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
      storage::SqliteHandle handle(db);
      if (rc != SQLITE_OK) return Status::IOError("open failed");
      sqlite3_busy_timeout(db, 2000);
      return handle;
    };
    o.on_cold_start = [this](const std::string&, int64_t nanos) {
      cold_starts_++;
      reported_nanos_ = nanos;
    };
    auto s = ComputeSupervisor::Create(std::move(o));
    REQUIRE(s.ok());
    sup_ = std::move(*s);
  }

  // Runs sql on key's compute; returns the first statement's rows.
  json Run(const std::string& key, const std::string& sql) {
    auto lease = sup_->Acquire(key);
    REQUIRE(lease.ok());
    sql::Script s;
    s.sql = sql;
    auto r = (*lease)->sandbox().Execute(s);
    INFO(sql << ": " << (r.ok() ? "" : r.status().ToString()));
    REQUIRE(r.ok());
    return r->statements.empty() ? json::array() : r->statements.back().rows;
  }

  bool Active(const std::string& key) {
    auto info = sup_->Info(key);
    return info.ok() && info->active;
  }

  MockClock clock_;
  testing::TempDir dir_;
  std::unique_ptr<ComputeSupervisor> sup_;
  std::atomic<int> opens_{0};
  std::atomic<int> cold_starts_{0};
  std::atomic<int64_t> reported_nanos_{-1};  // by the last on_cold_start
  int64_t open_micros_ = 0;                  // what each open takes on the mock clock
  bool fail_opens_ = false;
};

TEST_CASE("a compute starts on first use and reports its cold start", "[compute]") {
  ComputeFixture f;
  f.open_micros_ = 1500;  // so the cold start takes exactly 1.5 ms of mock time
  CHECK(f.sup_->Info("a").status().IsNotFound());
  f.Run("a", "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
  auto info = f.sup_->Info("a");
  REQUIRE(info.ok());
  CHECK(info->active);
  CHECK(info->cold_starts == 1);
  CHECK(info->last_cold_start_nanos == 1500 * 1000);
  CHECK(f.cold_starts_ == 1);
  CHECK(f.reported_nanos_ == 1500 * 1000);
  f.Run("a", "SELECT 1");
  CHECK(f.opens_ == 1);  // warm: no second open
}

TEST_CASE("idle computes are suspended by the sweeper and resume transparently", "[compute]") {
  ComputeFixture f(8, 300);
  f.Run("a", "CREATE TABLE t(x); INSERT INTO t VALUES (42)");
  f.Run("b", "SELECT 1");
  f.clock_.AdvanceSeconds(200);
  f.Run("b", "SELECT 1");
  f.clock_.AdvanceSeconds(100);  // a idle 300 s, b 100 s
  CHECK(f.sup_->Sweep() == 1);
  CHECK_FALSE(f.Active("a"));
  CHECK(f.Active("b"));
  CHECK(f.sup_->ActiveCount() == 1);
  CHECK(f.Run("a", "SELECT x FROM t") == json::array({json::array({42})}));  // resumed
  CHECK(f.Active("a"));
  CHECK(f.sup_->Info("a")->cold_starts == 2);
}

TEST_CASE("idle timeout 0 never suspends; per-branch override", "[compute]") {
  ComputeFixture f(8, 0);
  f.Run("a", "SELECT 1");
  f.sup_->SetIdleTimeout("b", 10);
  f.Run("b", "SELECT 1");
  f.clock_.AdvanceSeconds(1000000);
  CHECK(f.sup_->Sweep() == 1);
  CHECK(f.Active("a"));
  CHECK_FALSE(f.Active("b"));
}

TEST_CASE("the budget suspends the least recently used idle compute", "[compute]") {
  ComputeFixture f(2);
  f.Run("a", "SELECT 1");
  f.clock_.AdvanceSeconds(1);
  f.Run("b", "SELECT 1");
  f.clock_.AdvanceSeconds(1);
  f.Run("a", "SELECT 1");  // b is now the LRU
  f.clock_.AdvanceSeconds(1);
  f.Run("c", "SELECT 1");
  CHECK(f.Active("a"));
  CHECK_FALSE(f.Active("b"));
  CHECK(f.Active("c"));
  CHECK(f.sup_->ActiveCount() == 2);
}

TEST_CASE("when every active compute is leased the budget refuses", "[compute]") {
  ComputeFixture f(1);
  auto held = f.sup_->Acquire("a");
  REQUIRE(held.ok());
  auto refused = f.sup_->Acquire("b");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().reason() == "compute_budget");
  held->reset();
  CHECK(f.sup_->Acquire("b").ok());
}

TEST_CASE("a leased compute is never suspended; suspension waits for release", "[compute]") {
  ComputeFixture f(8, 1);
  auto lease = f.sup_->Acquire("a");
  REQUIRE(lease.ok());
  f.clock_.AdvanceSeconds(100);
  CHECK(f.sup_->Sweep() == 0);
  REQUIRE(f.sup_->Suspend("a").ok());
  CHECK(f.Active("a"));  // still in use
  sqlite3* db = (*lease)->db();
  CHECK(sqlite3_exec(db, "SELECT 1", nullptr, nullptr, nullptr) == SQLITE_OK);
  lease->reset();
  CHECK_FALSE(f.Active("a"));  // suspended at release
  CHECK(f.sup_->Suspend("zzz").IsNotFound());
}

TEST_CASE("invalidate and remove drop connections", "[compute]") {
  ComputeFixture f;
  f.Run("a", "CREATE TABLE t(x)");
  f.sup_->Invalidate("a");
  CHECK_FALSE(f.Active("a"));
  f.Run("a", "SELECT count(*) FROM t");
  CHECK(f.opens_ == 2);

  auto lease = f.sup_->Acquire("a");
  REQUIRE(lease.ok());
  f.sup_->Remove("a");
  CHECK(f.sup_->Info("a").status().IsNotFound());
  CHECK(f.sup_->ActiveCount() == 1);  // the leased one still open
  lease->reset();
  CHECK(f.sup_->ActiveCount() == 0);
}

TEST_CASE("removing by prefix forgets those computes; a leased one closes when its lease ends",
          "[compute]") {
  ComputeFixture f;
  f.Run("p_a", "SELECT 1");
  f.Run("p_b", "SELECT 1");
  f.Run("q_a", "SELECT 1");
  auto held = f.sup_->Acquire("p_a");
  REQUIRE(held.ok());
  f.sup_->RemoveByPrefix("p_");  // returns with the lease still held
  CHECK_FALSE(f.sup_->Info("p_a").ok());
  CHECK_FALSE(f.sup_->Info("p_b").ok());
  CHECK(f.Active("q_a"));
  CHECK(f.sup_->ActiveCount() == 2);  // q_a, and p_a until its lease ends
  // A lease taken after the removal is on a new compute.
  auto later = f.sup_->Acquire("p_a");
  REQUIRE(later.ok());
  CHECK(f.sup_->ActiveCount() == 3);
  held->reset();
  CHECK(f.sup_->ActiveCount() == 2);  // the removed p_a closed
  CHECK(f.Active("p_a"));             // the later one
  later->reset();
  f.sup_->RemoveByPrefix("p_");
  CHECK(f.sup_->ActiveCount() == 1);
}

TEST_CASE("a failing open leaves no active compute behind", "[compute]") {
  ComputeFixture f(1);
  f.fail_opens_ = true;
  auto r = f.sup_->Acquire("a");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().IsIOError());
  CHECK(f.sup_->ActiveCount() == 0);
  f.fail_opens_ = false;
  f.Run("b", "SELECT 1");  // the budget slot is free again
}

TEST_CASE("many threads issue requests while suspends happen", "[compute]") {
  const uint64_t seed = TestSeed("compute_test");
  INFO("seed " << seed);
  ComputeFixture f(3, 1);
  const std::vector<std::string> keys = {"k0", "k1", "k2", "k3", "k4"};
  for (const auto& k : keys) f.Run(k, "CREATE TABLE IF NOT EXISTS t(x)");
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, done{0}, busy{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + t);
      for (int i = 0; i < 150; ++i) {
        const std::string& key = keys[rng() % keys.size()];
        auto lease = f.sup_->Acquire(key);
        if (!lease.ok()) {
          if (lease.status().reason() == "compute_budget") {
            busy++;
            continue;
          }
          failures++;
          continue;
        }
        sql::Script s;
        s.sql = "INSERT INTO t VALUES (1); SELECT count(*) FROM t";
        auto r = (*lease)->sandbox().Execute(s);
        if (!r.ok()) failures++;
        done++;
      }
    });
  }
  std::thread chaos([&] {
    std::mt19937_64 rng(seed ^ 0x5eed);
    while (!stop) {
      f.clock_.AdvanceSeconds(1);
      f.sup_->Sweep();
      const std::string& key = keys[rng() % keys.size()];
      if (rng() % 2) {
        (void)f.sup_->Suspend(key);
      } else {
        f.sup_->Invalidate(key);
      }
      std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
  stop = true;
  chaos.join();
  CHECK(failures == 0);
  CHECK(done + busy == 600);
  CHECK(f.sup_->ActiveCount() <= 3);
  // Every successful insert is there.
  int64_t total = 0;
  for (const auto& k : keys) total += f.Run(k, "SELECT count(*) FROM t")[0][0].get<int64_t>();
  CHECK(total == done);
}

TEST_CASE("a branch deleted between open and attach is reported as the store's not-found",
          "[compute]") {
  // The TTL reaper (or a DELETE) can drop a branch's timeline right after a
  // cold start opened its connection. The sandbox's first read then fails;
  // Acquire must say the timeline is gone (the SQL route answers 404
  // branch_not_found), not SQLite's "disk I/O error" (a 500).
  testing::TempDir dir;
  catalog::CatalogOptions co;
  co.reaper_interval_micros = 0;
  auto cat = catalog::Catalog::Open(co, dir.path());
  REQUIRE(cat.ok());
  REQUIRE((*cat)->CreateProject("p", {}).ok());
  REQUIRE((*cat)->CreateBranch("p", "doomed", {}).ok());
  {
    auto conn = (*cat)->OpenBranchConnection("p", "doomed", {});
    REQUIRE(conn.ok());
    REQUIRE(sqlite3_exec(conn->get(), "CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
  }

  MockClock clock;
  SupervisorOptions o;
  o.clock = &clock;
  o.sweep_interval_seconds = 0;
  o.sandbox.max_db_bytes = 1 << 30;  // as the server sets it: Attach reads the database
  o.open = [&](const std::string&) -> Result<storage::SqliteHandle> {
    auto conn = (*cat)->OpenBranchConnection("p", "doomed", {});
    if (!conn.ok()) return conn.status();
    storage::SqliteHandle handle(conn->release());
    REQUIRE((*cat)->DeleteBranch("p", "doomed").ok());  // the reaper strikes here
    return handle;
  };
  auto sup = ComputeSupervisor::Create(std::move(o));
  REQUIRE(sup.ok());
  auto lease = (*sup)->Acquire("p/doomed");
  REQUIRE_FALSE(lease.ok());
  CHECK(lease.status().IsNotFound());
  CHECK(lease.status().reason() == "timeline_not_found");
  auto info = (*sup)->Info("p/doomed");
  CHECK((!info.ok() || !info->active));
}

}  // namespace
}  // namespace branchdb::server::compute
