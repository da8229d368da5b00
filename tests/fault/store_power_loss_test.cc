// Simulated power loss of the page store. One run of the fixed workload; at
// every sync point the FaultInjectionEnv writes the image a power loss would
// leave:
//   - just after each successful Sync/SyncDir: only synced bytes survive, and
//     either only dir-synced names or all of them (later directory changes
//     journaled too);
//   - just before each Sync/SyncDir: the unsynced tail survives torn at a
//     random length, torn and followed by zeros or junk, or whole (the record
//     in flight written but unacknowledged).
// Each image is reopened and checked against the model of what was
// acknowledged at that instant, the op in flight being allowed to be wholly
// present or wholly absent; then the store must accept new commits.
#include <catch2/catch.hpp>

#include <cstdio>
#include <random>

#include "tests/util/fault_injection_env.h"
#include "tests/util/store_model.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

using namespace branchdb;
using namespace branchdb::testing;

namespace {

struct CrashPoint {
  std::string dir;
  std::string what;
  StoreModel model;
};

// The workload with a crash image at every sync point; every image checked.
void PowerLossAtEverySyncPoint(WorkloadOptions options) {
  const uint64_t seed = TestSeed("store_power_loss_test");
  std::mt19937_64 rng(seed);
  TempDir dir(FastTestDirBase());
  const std::string db = dir.Sub("db");
  FaultInjectionEnv env;
  StoreModel model;
  std::vector<CrashPoint> points;

  auto snapshot = [&](const std::string& when, uint32_t kind, const std::string& path,
                      TailMode tail, bool keep_dir_ops = false) {
    CrashPoint p;
    p.dir = dir.Sub("p" + std::to_string(points.size()));
    p.what = when + " " + std::string(OpKindName(kind)) + " " + path + " (tail " +
             (tail == TailMode::kDropUnsynced ? "dropped"
              : tail == TailMode::kTornTail  ? "torn"
              : tail == TailMode::kGarbageTail ? "torn + garbage"
                                             : "kept") +
             (keep_dir_ops ? ", unsynced creations/renames/deletes kept" : "") + ")";
    p.model = model;
    if (const auto& op = InFlightOp(); op.has_value()) {
      if (op->kind == storage::RecordKind::kDrop) {
        p.model.AddUncertainDrop(op->timeline);
      } else {
        p.model.AddUncertain(*op);
      }
    }
    CrashOptions options;
    options.tail = tail;
    options.seed = rng();
    options.drop_unsynced_creations = !keep_dir_ops;
    options.undo_unsynced_renames_and_deletes = !keep_dir_ops;
    REQUIRE(env.SnapshotCrashState(db, p.dir, options).ok());
    points.push_back(std::move(p));
  };
  env.SetSyncCallback([&](uint32_t kind, const std::string& path) {
    snapshot("after", kind, path, TailMode::kDropUnsynced);
    // The journal may also have committed the directory changes since the
    // last SyncDir (file data still only what was synced): equally legal.
    snapshot("after", kind, path, TailMode::kDropUnsynced, /*keep_dir_ops=*/true);
  });
  env.SetBeforeSyncCallback([&](uint32_t kind, const std::string& path) {
    snapshot("before", kind, path, TailMode::kTornTail);
    snapshot("before", kind, path, TailMode::kGarbageTail);
    snapshot("before", kind, path, TailMode::kKeepAll);
  });

  WorkloadRun run = RunWorkload(db, &env, &env, &model, options);
  env.SetSyncCallback(nullptr);
  env.SetBeforeSyncCallback(nullptr);
  INFO(JoinProblems(run.violations));
  REQUIRE(run.violations.empty());
  REQUIRE(run.acknowledged == run.attempted);
  std::fprintf(stderr, "store_power_loss_test: %zu crash images\n", points.size());
  CHECK(points.size() >= 5 * 10);  // every acknowledged mutation syncs at least once

  for (auto& p : points) {
    std::vector<std::string> problems = ReopenAndCheck(p.dir, &p.model);
    INFO("power loss " << p.what << " (seed " << seed << "):\n" << JoinProblems(problems));
    CHECK(problems.empty());
  }
}

}  // namespace

TEST_CASE("power loss at every sync point leaves every acknowledged record", "[fault]") {
  WorkloadOptions options;
  options.rounds = 2;  // the second GC compacts what the first round left
  PowerLossAtEverySyncPoint(options);
}

// Records overwrite a zero region written ahead and grown while the segment
// fills (several growths per segment): unsynced overwrites of the synced zeros
// are undone, kept or torn by the images, and a grown but unsynced region is
// dropped, torn or followed by junk.
TEST_CASE("power loss at every sync point with a preallocated zero region", "[fault]") {
  WorkloadOptions options;
  options.segment_bytes = 96 * 1024;
  options.preallocate_bytes = 16 * 1024;
  options.rounds = 2;
  PowerLossAtEverySyncPoint(options);
}

// The harness must be able to fail: a store whose fsyncs are silently skipped
// loses acknowledged commits in the power-loss image, and the check says so.
TEST_CASE("power-loss check catches skipped fsyncs (harness self-test)", "[fault]") {
  for (auto [file, dir_sync] : {std::pair{true, false}, std::pair{false, true}}) {
    TempDir dir(FastTestDirBase());
    FaultInjectionEnv env;
    env.SetSkipSyncs(file, dir_sync);
    StoreModel model;
    WorkloadRun run = RunWorkload(dir.Sub("db"), &env, nullptr, &model);
    INFO(JoinProblems(run.violations));
    REQUIRE(run.violations.empty());
    REQUIRE(env.SnapshotCrashState(dir.Sub("db"), dir.Sub("crash")).ok());
    std::vector<std::string> problems = ReopenAndCheck(dir.Sub("crash"), &model);
    INFO((file ? "file syncs skipped" : "directory syncs skipped"));
    CHECK_FALSE(problems.empty());
  }
}
