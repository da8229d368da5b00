// Fault sweep of the page store (SQLite's way: fail I/O call N for N = 1, 2, 3…
// until none fires). For every N, a fixed workload (timelines, multi-page
// commits, a shrink, a reset, a drop, a segment roll, GC, reads) runs on a
// FaultInjectionEnv whose N-th file operation fails; then:
//   - no call reported success although the fsync it depended on failed, and
//     after a failed fsync the store refused every mutation (store_failed);
//   - reopened with a clean Env, and from the image a power loss at the end
//     would leave, every acknowledged record is there with exact contents,
//     an unacknowledged one is wholly there or wholly absent, and the store
//     accepts new commits.
#include <catch2/catch.hpp>

#include <cstdio>
#include <map>

#include "storage/log_format.h"
#include "tests/util/fault_injection_env.h"
#include "tests/util/store_model.h"
#include "tests/util/temp_dir.h"

using namespace branchdb;
using namespace branchdb::testing;

namespace {

struct SweepResult {
  uint64_t iterations = 0;
  uint64_t ops_in_clean_run = 0;
  uint32_t failed_kinds = 0;  // OpKind bits of the operations the sweep made fail
};

// "Append|Sync|..." for the OpKind bits of mask.
std::string KindNames(uint32_t mask) {
  std::string out;
  for (uint32_t bit = 1; bit <= mask && bit != 0; bit <<= 1) {
    if ((mask & bit) == 0) continue;
    if (!out.empty()) out += "|";
    out += OpKindName(bit);
  }
  return out.empty() ? "none" : out;
}

// Runs the sweep for one kind of fault and checks that it swept: a fault was
// injected, every operation the fault-free run counts was failed in turn
// (the workload is deterministic up to the fault), and among them were
// operations of every kind in must_fail.
// existing_store: the faulted run opens (recovers) a store that a first,
// fault-free run of the workload filled, so faults also hit recovery.
SweepResult Sweep(FaultType type, bool partial_write, uint32_t op_mask, bool sticky,
                  uint32_t must_fail, bool existing_store = false) {
  SweepResult result;
  for (uint64_t n = 1;; ++n) {
    TempDir dir(FastTestDirBase());
    const std::string db = dir.Sub("db");
    FaultInjectionEnv env;
    StoreModel model;
    if (existing_store) {
      WorkloadRun first = RunWorkload(db, &env, &env, &model);
      INFO(JoinProblems(first.violations));
      REQUIRE(first.violations.empty());
    }
    FaultSpec spec;
    spec.nth = n;
    spec.type = type;
    spec.partial_write = partial_write;
    spec.op_mask = op_mask;
    spec.sticky = sticky;
    env.FailNth(spec);
    WorkloadRun run = RunWorkload(db, &env, &env, &model);
    const bool fired = env.FaultFired();
    const std::string fault = fired ? env.FiredOpDescription() : "none";
    env.ClearFault();
    INFO("fault #" << n << ": " << fault << (sticky ? " (and every later one)" : "") << "; "
                   << run.acknowledged << "/" << run.attempted << " mutations acknowledged");
    {
      INFO("during the workload:\n" << JoinProblems(run.violations));
      CHECK(run.violations.empty());
    }

    // A clean reopen, and what a power loss right now would leave.
    std::vector<std::string> problems = ReopenAndCheckBoth(&env, db, dir.Sub("crash"), &model);
    INFO(JoinProblems(problems));
    CHECK(problems.empty());

    ++result.iterations;
    result.failed_kinds |= env.FiredOpKind();
    if (!fired) {
      result.ops_in_clean_run = env.OpCount();
      CHECK(run.violations.empty());
      CHECK(run.acknowledged == run.attempted);
      break;
    }
    REQUIRE(n < 5000);  // the workload is bounded; a runaway sweep is a bug
  }
  std::fprintf(stderr, "fault sweep: %llu iterations, failed %s\n",
               static_cast<unsigned long long>(result.iterations),
               KindNames(result.failed_kinds).c_str());
  INFO("the sweep failed " << KindNames(result.failed_kinds) << " in " << result.iterations
                           << " iterations; the fault-free run counts " << result.ops_in_clean_run
                           << " operations");
  CHECK(result.iterations > 1);  // a fault was injected
  CHECK(result.iterations - 1 == result.ops_in_clean_run);
  CHECK(KindNames(result.failed_kinds & must_fail) == KindNames(must_fail));
  return result;
}

// What the workload does on a fresh store (Open, timelines, commits, segment
// rolls, GC with compaction, reads through a small cache).
constexpr uint32_t kWorkloadWrites = kOpCreateDirs | kOpLockFile | kOpNewWritableFile | kOpAppend |
                                     kOpSync | kOpSyncDir | kOpClose | kOpRename | kOpDelete;
constexpr uint32_t kWorkloadOps =
    kWorkloadWrites | kOpGetChildren | kOpNewRandomAccessFile | kOpRead;
// What recovering a store adds: sizing segments (and reading their footers).
constexpr uint32_t kRecoveryOps = kWorkloadOps | kOpGetFileSize;

}  // namespace

TEST_CASE("fault sweep: the n-th file operation fails with EIO", "[fault]") {
  SweepResult r = Sweep(FaultType::kIOError, false, kAllOps, false, kWorkloadOps);
  CHECK(r.iterations > 10);  // the workload does reach the file system
}

TEST_CASE("fault sweep: the n-th file operation fails with ENOSPC after a short write",
          "[fault]") {
  Sweep(FaultType::kNoSpace, true, kAllOps, false, kWorkloadOps);
}

TEST_CASE("fault sweep: the disk dies at the n-th write (every later write fails too)",
          "[fault]") {
  Sweep(FaultType::kIOError, false, kWriteOps, true, kWorkloadWrites & kWriteOps);
}

TEST_CASE("fault sweep: faults while recovering and extending an existing store", "[fault]") {
  Sweep(FaultType::kIOError, false, kAllOps, false, kRecoveryOps, /*existing_store=*/true);
}

TEST_CASE("a failed fsync stops the store until it is reopened", "[fault]") {
  TempDir dir(FastTestDirBase());
  FaultInjectionEnv env;
  storage::PageStoreOptions options;
  options.env = &env;
  StoreModel model;
  std::string page = PageData(42);
  storage::TimelineId t = 0;
  storage::Lsn head = 0;
  {
    auto store = storage::PageStore::Open(options, dir.Sub("db"));
    REQUIRE(store.ok());
    auto created = (*store)->CreateTimeline(0, "t");
    REQUIRE(created.ok());
    t = *created;
    head = *(*store)->Head(t);
    auto lsn = (*store)->Commit(t, head, {{1, page}}, 1, "first");
    REQUIRE(lsn.ok());
    head = *lsn;
    env.FailNth(1, FaultType::kIOError, /*sticky=*/false, kOpSync | kOpSyncDir);
    auto failed = (*store)->Commit(t, head, {{1, page}}, 1, "second");
    CHECK_FALSE(failed.ok());
    CHECK(env.FaultFired());
    // The disk works again, but the store must not trust it: no retry-and-succeed.
    auto refused = (*store)->Commit(t, head, {{1, page}}, 1, "third");
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().IsIOError());
    CHECK(refused.status().reason() == "store_failed");
    CHECK_FALSE((*store)->Health().ok());
    CHECK_FALSE((*store)->CreateTimeline(0, "t2").ok());
    CHECK_FALSE((*store)->ResetTimeline(t, head, head, "r").ok());
  }
  env.ClearFault();
  auto store = storage::PageStore::Open(options, dir.Sub("db"));
  REQUIRE(store.ok());
  CHECK((*store)->Health().ok());
  std::string out;
  REQUIRE((*store)->ReadPage(t, 1, head, &out).ok());
  CHECK(out == page);
  auto h = (*store)->Head(t);
  REQUIRE(h.ok());
  auto again = (*store)->Commit(t, *h, {{1, page}}, 1, "after reopen");
  CHECK(again.ok());
}

// Regression test (found by the sweep above): an fsync that fails inside Gc()
// (compaction output, GC state file, directory) must stop the store like any
// other failed fsync — the contract in storage/page_store.h allows no
// exception, and continuing after a failed directory fsync risks renames and
// deletions that never became durable.
TEST_CASE("a failed fsync during GC stops the store until it is reopened", "[fault]") {
  uint32_t failed_kinds = 0;
  uint64_t nth = 1;
  for (;; ++nth) {
    TempDir dir(FastTestDirBase());
    FaultInjectionEnv env;
    storage::PageStoreOptions options;
    options.env = &env;
    options.segment_bytes = 16 * 1024;
    auto store = storage::PageStore::Open(options, dir.Sub("db"));
    REQUIRE(store.ok());
    auto t1 = (*store)->CreateTimeline(0, "t1");
    REQUIRE(t1.ok());
    storage::Lsn head = *(*store)->Head(*t1);
    std::vector<std::string> pages;
    for (int i = 0; i < 12; ++i) {
      pages.push_back(PageData(1000 + i));
      auto lsn = (*store)->Commit(*t1, head, {{1, pages.back()}, {2, pages.back()}}, 2, "c");
      REQUIRE(lsn.ok());
      head = *lsn;
    }
    auto t2 = (*store)->CreateTimeline(*t1, head, "t2");
    REQUIRE(t2.ok());
    REQUIRE((*store)->DropTimeline(*t2).ok());
    env.FailNth(nth, FaultType::kIOError, /*sticky=*/false, kOpSync | kOpSyncDir);
    storage::GcOptions gc;
    gc.restore_window_micros = 0;
    auto stats = (*store)->Gc(gc);
    if (!env.FaultFired()) break;  // every fsync of GC has been failed once
    failed_kinds |= env.FiredOpKind();
    INFO("GC fsync #" << nth << " failed: " << env.FiredOpDescription() << "; Gc returned "
                      << stats.status().ToString());
    env.ClearFault();
    CHECK_FALSE((*store)->Health().ok());
    auto after = (*store)->Commit(*t1, head, {{1, pages[0]}}, 2, "after failed gc fsync");
    CHECK_FALSE(after.ok());
    if (!after.ok()) CHECK(after.status().reason() == "store_failed");
    REQUIRE(nth < 100);
  }
  // GC fsyncs files (the manifest, compaction's output) and the directory.
  CHECK(nth > 2);
  CHECK(failed_kinds == (kOpSync | kOpSyncDir));
}

// The sweeps above fail every file operation of the workload, so they reach
// sealing (the footer with its page index, written, synced and read back)
// and compaction's output (its page index, read back before it is
// installed) only if the workload does both: this checks that it does, and
// that its sealed and compacted segments are read through their indexes.
TEST_CASE("the swept workload seals segments with a page index and compacts into one", "[fault]") {
  TempDir dir(FastTestDirBase());
  const std::string db = dir.Sub("db");
  StoreModel model;
  WorkloadOptions options;
  options.rounds = 2;
  WorkloadRun run = RunWorkload(db, Env::Default(), nullptr, &model, options);
  INFO(JoinProblems(run.violations));
  REQUIRE(run.violations.empty());
  auto children = Env::Default()->GetChildren(db);
  REQUIRE(children.ok());
  int indexed = 0, compacted = 0;
  std::map<uint64_t, uint64_t> sealed_sizes;  // number -> size
  for (const std::string& c : *children) {
    uint64_t number = 0;
    if (!storage::internal::ParseSegmentFileName(c, &number)) continue;
    auto data = Env::Default()->ReadFileToString(JoinPath(db, c));
    REQUIRE(data.ok());
    const std::string& d = *data;
    const bool sealed = d.size() > 32 && d.compare(d.size() - 8, 8, "BRDBFTR1") == 0;
    const uint32_t version = static_cast<uint8_t>(d[8]);
    indexed += sealed && version >= 3;
    compacted += static_cast<uint8_t>(d[12]) & 1;
    if (sealed) sealed_sizes[number] = d.size();
  }
  CHECK(indexed >= 2);
  CHECK(compacted >= 1);
  // The sweeps reach MANIFEST's writing (at every seal and at the end of a
  // GC) only if the workload writes it: it does, and it lists every sealed
  // segment with its size (so that a reopen reads no record list).
  auto manifest_data = Env::Default()->ReadFileToString(JoinPath(db, "MANIFEST"));
  REQUIRE(manifest_data.ok());
  storage::internal::Manifest manifest;
  REQUIRE(storage::internal::DecodeStoreManifest(*manifest_data, &manifest).ok());
  std::map<uint64_t, uint64_t> listed;
  for (const auto& seg : manifest.segments) listed[seg.number] = seg.size;
  CHECK(listed == sealed_sizes);
  std::vector<std::string> problems = ReopenAndCheck(db, &model, nullptr);
  INFO(JoinProblems(problems));
  CHECK(problems.empty());
}
