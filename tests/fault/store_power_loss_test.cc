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

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>

#include "storage/log_format.h"
#include "storage/page_store.h"
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

// What a crash now may leave: model, the op in flight wholly there or not.
StoreModel ModelAtCrash(const StoreModel& model) {
  StoreModel at = model;
  if (const auto& op = InFlightOp(); op.has_value()) {
    if (op->kind == storage::RecordKind::kDrop) {
      at.AddUncertainDrop(op->timeline);
    } else {
      at.AddUncertain(*op);
    }
  }
  return at;
}

// The numbers of the segment files in dir.
std::set<uint64_t> SegmentNumbers(const std::string& dir) {
  std::set<uint64_t> out;
  auto children = Env::Default()->GetChildren(dir);
  if (!children.ok()) return out;
  for (const std::string& c : *children) {
    uint64_t n = 0;
    if (storage::internal::ParseSegmentFileName(c, &n)) out.insert(n);
  }
  return out;
}

// A power loss's image: `tail` for the files' unsynced bytes; with
// keep_dir_ops the journal had also committed the directory changes
// (creations, renames, deletes) since their last SyncDir, else they are undone.
CrashOptions PowerLoss(TailMode tail, bool keep_dir_ops, uint64_t seed) {
  CrashOptions crash;
  crash.tail = tail;
  crash.seed = seed;
  crash.drop_unsynced_creations = !keep_dir_ops;
  crash.undo_unsynced_renames_and_deletes = !keep_dir_ops;
  return crash;
}

// The highest next_segment of dir's MANIFEST and GCSTATE (0: none): every
// number below it may have been a segment's.
uint64_t NamedNext(const std::string& dir) {
  uint64_t next = 0;
  storage::internal::Manifest m;
  auto store = Env::Default()->ReadFileToString(JoinPath(dir, "MANIFEST"));
  if (store.ok() && storage::internal::DecodeStoreManifest(*store, &m).ok()) next = m.next_segment;
  auto gc = Env::Default()->ReadFileToString(JoinPath(dir, "GCSTATE"));
  if (gc.ok() && storage::internal::DecodeManifest(*gc, &m).ok()) {
    next = std::max(next, m.next_segment);
  }
  return next;
}

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
    p.model = ModelAtCrash(model);
    REQUIRE(env.SnapshotCrashState(db, p.dir, PowerLoss(tail, keep_dir_ops, rng())).ok());
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

// Segment numbers are never reused (a bucket keys a segment's copies by its
// name), and none is skipped: a clean close that seals the tail leaves the
// next number to the next Open. A crash at any sync point of a run that
// starts with such an Open (and rolls, compacts, seals at its close): the
// reopened store starts its segments above every number that was ever a
// durable segment and every number its MANIFEST or GCSTATE can name.
TEST_CASE("a segment Open starts takes the next number: none skipped, none used twice",
          "[fault]") {
  const uint64_t seed = TestSeed("store_power_loss_test segment numbers");
  std::mt19937_64 rng(seed);
  TempDir dir(FastTestDirBase());
  const std::string db = dir.Sub("db");
  FaultInjectionEnv env;
  StoreModel model;
  WorkloadOptions options;
  options.seal_on_close = true;
  WorkloadRun first = RunWorkload(db, &env, &env, &model, options);
  INFO(JoinProblems(first.violations));
  REQUIRE(first.violations.empty());
  const std::set<uint64_t> sealed = SegmentNumbers(db);
  REQUIRE(!sealed.empty());
  {
    REQUIRE(env.SnapshotCrashState(db, dir.Sub("clean")).ok());
    storage::PageStoreOptions o;
    o.segment_bytes = options.segment_bytes;
    auto store = storage::PageStore::Open(o, dir.Sub("clean"));
    REQUIRE(store.ok());
    CHECK((*store)->DurableEnd().segment == *sealed.rbegin() + 1);
    CHECK(NamedNext(dir.Sub("clean")) == *sealed.rbegin() + 1);
  }

  struct Image {
    std::string dir, what;
    StoreModel model;
    std::set<uint64_t> numbers;  // its segment files
    uint64_t durable = 0;        // the highest number ever durable as a segment
    uint64_t named = 0;          // NamedNext
  };
  std::vector<Image> images;
  uint64_t ever_durable = *sealed.rbegin();
  auto snapshot = [&](const std::string& when, uint32_t kind, const std::string& path,
                      TailMode tail, bool keep_dir_ops) {
    for (uint64_t n : SegmentNumbers(db)) {
      const std::string file = JoinPath(db, storage::internal::SegmentFileName(n));
      if (env.EntryDurable(file).value_or(false) &&
          env.SyncedSize(file).value_or(0) >= storage::internal::kSegmentHeaderMinSize) {
        ever_durable = std::max(ever_durable, n);
      }
    }
    Image im;
    im.dir = dir.Sub("p" + std::to_string(images.size()));
    im.what = when + " " + std::string(OpKindName(kind)) + " " + path;
    im.model = ModelAtCrash(model);
    REQUIRE(env.SnapshotCrashState(db, im.dir, PowerLoss(tail, keep_dir_ops, rng())).ok());
    im.numbers = SegmentNumbers(im.dir);
    im.durable = ever_durable;
    im.named = NamedNext(im.dir);
    images.push_back(std::move(im));
  };
  env.SetSyncCallback([&](uint32_t kind, const std::string& path) {
    snapshot("after", kind, path, TailMode::kDropUnsynced, false);
  });
  env.SetBeforeSyncCallback([&](uint32_t kind, const std::string& path) {
    snapshot("before", kind, path, TailMode::kTornTail, true);
  });
  WorkloadRun run = RunWorkload(db, &env, &env, &model, options);
  env.SetSyncCallback(nullptr);
  env.SetBeforeSyncCallback(nullptr);
  INFO(JoinProblems(run.violations));
  REQUIRE(run.violations.empty());
  REQUIRE(images.size() > 20);

  for (Image& im : images) {
    // Checks every acknowledged record, then commits (in the tail it goes
    // on with, or in a segment it starts).
    std::vector<std::string> problems = ReopenAndCheck(im.dir, &im.model);
    INFO("power loss " << im.what << " (seed " << seed << "):\n" << JoinProblems(problems));
    CHECK(problems.empty());
    for (uint64_t n : SegmentNumbers(im.dir)) {
      if (im.numbers.count(n) != 0) continue;  // there at the crash
      INFO("segment " << n << " started after it; highest durable " << im.durable
                      << ", MANIFEST/GCSTATE next " << im.named);
      CHECK(n > im.durable);
      CHECK(n >= im.named);
    }
  }
}
