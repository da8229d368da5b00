// Faults under group commit: several writers commit concurrently on their own
// timelines (so commits share fdatasyncs) while the n-th Sync/SyncDir fails,
// for n = 1, 2, … until none fails. After each run:
//   - no commit that started after some commit had already reported the
//     failure succeeded (the store stopped);
//   - from a clean reopen and from the power-loss image (the failed sync's
//     data dropped, as the kernel does), every acknowledged commit is there
//     with exact contents and nothing else is half-visible — so no commit of
//     the failed batch was acknowledged.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "tests/util/fault_injection_env.h"
#include "tests/util/store_model.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

using namespace branchdb;
using namespace branchdb::testing;

namespace {

constexpr int kWriters = 4;
constexpr int kCommitsPerWriter = 12;

struct RunResult {
  std::vector<std::string> violations;
  int acknowledged = 0;
};

RunResult RunWriters(const std::string& db, FaultInjectionEnv* env, StoreModel* model,
                     uint64_t seed) {
  RunResult result;
  storage::PageStoreOptions options;
  options.env = env;
  options.segment_bytes = 160 * 1024;  // a few rolls, mostly batches
  auto opened = storage::PageStore::Open(options, db);
  if (!opened.ok()) return result;  // a fault during Open; nothing acknowledged
  std::unique_ptr<storage::PageStore> store = std::move(*opened);
  std::mutex mu;  // guards model, result
  std::vector<storage::TimelineId> tls;
  for (int w = 0; w < kWriters; ++w) {
    std::optional<storage::TimelineId> t = CreateTimelineInModel(store.get(), model);
    if (!t) return result;
    tls.push_back(*t);
  }
  // Order of events: a commit that begins after a failure was reported must fail.
  std::atomic<uint64_t> clock{0};
  std::atomic<uint64_t> first_failure_at{UINT64_MAX};
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      ready.fetch_add(1);
      while (ready.load() < kWriters) std::this_thread::yield();  // start together
      std::mt19937_64 rng(seed + w);
      for (int i = 0; i < kCommitsPerWriter; ++i) {
        ModelOp op;
        op.kind = storage::RecordKind::kCommit;
        op.timeline = tls[w];
        op.db_size = 4;
        std::vector<std::string> data;
        std::vector<storage::PageWrite> writes;
        {
          std::lock_guard<std::mutex> lock(mu);
          op.prev = op.expected_head = model->heads().at(tls[w]);
          const uint64_t base = model->NextKeyBase();
          for (storage::PageNo p = 1; p <= 4; ++p) {
            if (rng() % 2 == 0 && !(p == 4 && op.pages.empty())) continue;
            op.pages[p] = base | p;
          }
          op.annotation = model->NextAnnotation("w" + std::to_string(w));
        }
        for (const auto& [p, key] : op.pages) data.push_back(PageData(key));
        size_t k = 0;
        for (const auto& [p, key] : op.pages) writes.push_back({p, data[k++]});
        const uint64_t started = clock.fetch_add(1);
        auto lsn = store->Commit(tls[w], op.prev, writes, op.db_size, op.annotation);
        const uint64_t ended = clock.fetch_add(1);
        std::lock_guard<std::mutex> lock(mu);
        if (lsn.ok()) {
          model->Ack(*lsn, op);
          ++result.acknowledged;
          if (started > first_failure_at.load()) {
            result.violations.push_back(op.annotation + " began after a failed fsync had been "
                                        "reported, and succeeded");
          }
        } else {
          model->AddUncertain(op);
          uint64_t expected = UINT64_MAX;
          first_failure_at.compare_exchange_strong(expected, ended);
          if (!env->FaultFired()) {
            result.violations.push_back("commit failed with no fault: " + lsn.status().ToString());
          }
          return;  // this writer's head is now uncertain
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return result;
}

}  // namespace

TEST_CASE("group commit: a failed fsync fails its whole batch and stops the store", "[fault]") {
  const uint64_t seed = TestSeed("store_group_commit_fault_test");
  int with_fault = 0;
  for (uint64_t n = 1;; ++n) {
    TempDir dir(FastTestDirBase());
    const std::string db = dir.Sub("db");
    FaultInjectionEnv env;
    env.FailNth(n, FaultType::kIOError, /*sticky=*/false, kOpSync | kOpSyncDir);
    env.SetSyncDelayMicros(2000);  // writers queue up behind each fdatasync
    StoreModel model;
    RunResult run = RunWriters(db, &env, &model, seed + n);
    const bool fired = env.FaultFired();
    const uint64_t syncs = env.OpCount();  // Sync + SyncDir calls of this run
    INFO("failed sync #" << n << ": " << (fired ? env.FiredOpDescription() : "none") << " (seed "
                         << seed << "); " << run.acknowledged << " commits acknowledged");
    env.ClearFault();
    {
      INFO(JoinProblems(run.violations));
      CHECK(run.violations.empty());
    }
    std::vector<std::string> problems = ReopenAndCheckBoth(&env, db, dir.Sub("crash"), &model);
    INFO(JoinProblems(problems));
    CHECK(problems.empty());
    if (!fired) {
      std::fprintf(stderr, "group commit: %d commits acknowledged with %llu syncs\n",
                   run.acknowledged, static_cast<unsigned long long>(syncs));
      break;
    }
    ++with_fault;
    REQUIRE(n < 1000);
  }
  CHECK(with_fault > 5);
}
