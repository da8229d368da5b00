// Pipelined commits (PageStore::CommitNoWait + WaitDurable): many writers on
// ONE timeline, each building on the previous commit before it is durable, as
// the server's SQL path does (the branch is handed on before the fsync).
// The rules checked:
//   - power loss at every sync point: every acknowledged commit (WaitDurable
//     returned OK) is there after recovery; the recovered head is a prefix of
//     the commit order (nothing is built on a missing commit), with exactly
//     the contents the model computes;
//   - a failed fsync with several commits pending fails every one of them and
//     every later one (durability is in log order), and a branch operation
//     that read a pending head fails with them.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "tests/util/fault_injection_env.h"
#include "tests/util/store_model.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

using namespace branchdb;
using namespace branchdb::testing;

namespace {

constexpr uint32_t kDbPages = 8;

// One commit in LSN order: the pages it wrote (page -> PageData key).
struct Step {
  Lsn lsn = 0;
  std::map<PageNo, uint64_t> pages;
};

// What the writers did, in commit (= LSN) order, and what was acknowledged.
struct History {
  std::mutex mu;  // the branch's write lock (SQLite's one writer) and the fields
  TimelineId timeline = 0;
  Lsn created = 0;
  std::vector<Step> steps;                 // every CommitNoWait that returned an LSN
  std::atomic<Lsn> acked{0};               // highest LSN whose WaitDurable returned OK
  std::vector<Lsn> failed_waits;           // LSNs whose WaitDurable failed
  std::vector<Lsn> acked_lsns;             // LSNs whose WaitDurable returned OK
  int refused_commits = 0;                 // CommitNoWait errors
};

// Runs `writers` threads of `per_writer` pipelined commits on h->timeline.
void RunPipelinedWriters(storage::PageStore* store, History* h, int writers, int per_writer,
                         uint64_t seed) {
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      ready.fetch_add(1);
      while (ready.load() < writers) std::this_thread::yield();
      std::mt19937_64 rng(seed + static_cast<uint64_t>(w));
      for (int i = 0; i < per_writer; ++i) {
        Lsn lsn = 0;
        {
          std::lock_guard<std::mutex> lock(h->mu);  // the branch's write lock
          auto head = store->Head(h->timeline);     // may be a pending commit
          if (!head.ok()) return;
          Step step;
          const uint64_t base = (static_cast<uint64_t>(w) << 40) | (static_cast<uint64_t>(i) << 8);
          step.pages[1] = base | 1;  // as SQLite's change counter: every commit
          step.pages[2 + rng() % (kDbPages - 1)] = base | 2;
          std::vector<std::string> data;
          std::vector<storage::PageWrite> writes;
          for (const auto& [p, key] : step.pages) data.push_back(PageData(key));
          size_t k = 0;
          for (const auto& [p, key] : step.pages) writes.push_back({p, data[k++]});
          auto r = store->CommitNoWait(h->timeline, *head, writes, kDbPages,
                                       "w" + std::to_string(w) + "." + std::to_string(i));
          if (!r.ok()) {
            ++h->refused_commits;
            return;
          }
          lsn = step.lsn = *r;
          h->steps.push_back(std::move(step));
        }
        // The lock is free: the next writer builds on this commit meanwhile.
        Status durable = store->WaitDurable(lsn);
        std::lock_guard<std::mutex> lock(h->mu);
        if (durable.ok()) {
          h->acked_lsns.push_back(lsn);
          Lsn prev = h->acked.load();
          while (lsn > prev && !h->acked.compare_exchange_weak(prev, lsn)) {
          }
        } else {
          h->failed_waits.push_back(lsn);
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}

// Checks a recovered store: its head of the timeline is a commit of the
// order (or the create) at or after `acked`; every commit up to it is on its
// history, none after; its pages are those the commits up to it wrote.
std::vector<std::string> CheckPrefix(const storage::PageStore& store, const History& h,
                                     Lsn acked) {
  std::vector<std::string> problems;
  auto head = store.Head(h.timeline);
  if (!head.ok()) return {"no timeline after recovery: " + head.status().ToString()};
  if (*head < acked) {
    problems.push_back("head " + std::to_string(*head) + " is before the acknowledged LSN " +
                       std::to_string(acked));
  }
  std::map<PageNo, uint64_t> want;
  size_t upto = 0;  // steps[0..upto) are at or before the head
  if (*head != h.created) {
    while (upto < h.steps.size() && h.steps[upto].lsn <= *head) ++upto;
    if (upto == 0 || h.steps[upto - 1].lsn != *head) {
      problems.push_back("head " + std::to_string(*head) + " is no commit of the order");
      return problems;
    }
  }
  for (size_t i = 0; i < upto; ++i) {
    for (const auto& [p, key] : h.steps[i].pages) want[p] = key;
  }
  auto history = store.History(h.timeline, 0, h.steps.size() + 2);
  if (!history.ok()) return {"history: " + history.status().ToString()};
  std::vector<Lsn> commits;
  for (const auto& r : *history) {
    if (r.kind == storage::RecordKind::kCommit) commits.insert(commits.begin(), r.lsn);
  }
  if (commits.size() != upto) {
    problems.push_back("history has " + std::to_string(commits.size()) + " commits, the order " +
                       std::to_string(upto) + " up to the head");
  } else {
    for (size_t i = 0; i < upto; ++i) {
      if (commits[i] != h.steps[i].lsn) {
        problems.push_back("commit #" + std::to_string(i) + " is LSN " +
                           std::to_string(commits[i]) + ", not " +
                           std::to_string(h.steps[i].lsn));
      }
    }
  }
  if (upto == 0) return problems;
  for (PageNo p = 1; p <= kDbPages; ++p) {
    std::string page;
    Status s = store.ReadPage(h.timeline, p, *head, &page);
    if (!s.ok()) {
      problems.push_back("page " + std::to_string(p) + ": " + s.ToString());
      continue;
    }
    auto it = want.find(p);
    const uint64_t expect = it == want.end() ? 0 : it->second;
    if (PageKeyOf(page) != expect) {
      problems.push_back("page " + std::to_string(p) + " at head " + std::to_string(*head) +
                         " is not the last write of the order");
    }
  }
  return problems;
}

std::unique_ptr<storage::PageStore> OpenStore(const std::string& dir, Env* env,
                                              uint64_t segment_bytes = 64 << 20) {
  storage::PageStoreOptions options;
  options.env = env;
  options.segment_bytes = segment_bytes;
  auto opened = storage::PageStore::Open(options, dir);
  REQUIRE(opened.ok());
  return std::move(*opened);
}

Status CommitOne(storage::PageStore* store, TimelineId t, Lsn head, uint64_t key, Lsn* lsn) {
  std::string data = PageData(key);
  auto r = store->CommitNoWait(t, head, {{1, data}}, 1, "one");
  if (!r.ok()) return r.status();
  *lsn = *r;
  return Status::OK();
}

}  // namespace

TEST_CASE("power loss at every sync point under pipelined commits on one timeline keeps every "
          "acknowledged commit and a prefix of the commit order",
          "[fault]") {
  const uint64_t seed = TestSeed("store_pipelined_commit_test");
  std::mt19937_64 rng(seed);
  TempDir dir(FastTestDirBase());
  const std::string db = dir.Sub("db");
  FaultInjectionEnv env;
  env.SetSyncDelayMicros(1000);  // commits pile up behind each fdatasync
  History h;
  // Small segments: the log rolls while commits are pending and a leader syncs.
  auto store = OpenStore(db, &env, 96 * 1024);
  auto t = store->CreateTimeline(0, "create");
  REQUIRE(t.ok());
  h.timeline = *t;
  h.created = *store->Head(*t);

  struct Point {
    std::string dir, what;
    Lsn acked = 0;
  };
  std::vector<Point> points;
  auto snapshot = [&](const std::string& when, const std::string& path, TailMode tail) {
    Point p;
    p.dir = dir.Sub("p" + std::to_string(points.size()));
    p.what = when + " sync of " + path + " (tail " +
             (tail == TailMode::kDropUnsynced ? "dropped"
              : tail == TailMode::kTornTail  ? "torn"
                                             : "kept") +
             ")";
    p.acked = h.acked.load();  // acknowledged before this instant: durable by now
    CrashOptions options;
    options.tail = tail;
    options.seed = rng();
    REQUIRE(env.SnapshotCrashState(db, p.dir, options).ok());
    points.push_back(std::move(p));
  };
  env.SetSyncCallback([&](uint32_t, const std::string& path) {
    snapshot("after", path, TailMode::kDropUnsynced);
  });
  env.SetBeforeSyncCallback([&](uint32_t, const std::string& path) {
    snapshot("before", path, TailMode::kTornTail);
    snapshot("before", path, TailMode::kKeepAll);
  });
  RunPipelinedWriters(store.get(), &h, 6, 25, seed);
  env.SetSyncCallback(nullptr);
  env.SetBeforeSyncCallback(nullptr);
  REQUIRE(h.failed_waits.empty());
  REQUIRE(h.refused_commits == 0);
  REQUIRE(h.steps.size() == 6 * 25);
  REQUIRE(h.acked.load() == h.steps.back().lsn);
  // Pipelining shares fsyncs: fewer syncs than commits (each sync covers a run).
  std::fprintf(stderr, "pipelined: %zu commits, %llu file syncs, %zu crash images\n",
               h.steps.size(), static_cast<unsigned long long>(env.CallCount(kOpSync)),
               points.size());
  CHECK(env.CallCount(kOpSync) < h.steps.size());
  {
    INFO("the live store");
    std::vector<std::string> problems = CheckPrefix(*store, h, h.acked.load());
    INFO(JoinProblems(problems));
    CHECK(problems.empty());
  }
  store.reset();
  for (const Point& p : points) {
    auto reopened = storage::PageStore::Open(storage::PageStoreOptions{}, p.dir);
    INFO("power loss " << p.what << " (seed " << seed << ")");
    REQUIRE(reopened.ok());
    std::vector<std::string> problems = CheckPrefix(**reopened, h, p.acked);
    INFO(JoinProblems(problems));
    CHECK(problems.empty());
  }
}

// A new timeline of store with one durable commit on it (page 1 = key 1):
// the timeline and that commit's LSN.
std::pair<TimelineId, Lsn> TimelineWithDurableCommit(storage::PageStore* store) {
  auto t = store->CreateTimeline(0, "create");
  REQUIRE(t.ok());
  Lsn durable = 0;
  REQUIRE(CommitOne(store, *t, *store->Head(*t), 1, &durable).ok());
  REQUIRE(store->WaitDurable(durable).ok());
  return {*t, durable};
}

TEST_CASE("a failed fsync with several pending commits fails every one of them and every later "
          "one",
          "[fault]") {
  TempDir dir(FastTestDirBase());
  const std::string db = dir.Sub("db");
  FaultInjectionEnv env;
  auto store = OpenStore(db, &env);
  const auto [t, durable] = TimelineWithDurableCommit(store.get());

  // Three commits, each built on the one before, none durable yet.
  Lsn a = 0, b = 0, c = 0;
  REQUIRE(CommitOne(store.get(), t, durable, 2, &a).ok());
  REQUIRE(CommitOne(store.get(), t, a, 3, &b).ok());
  REQUIRE(CommitOne(store.get(), t, b, 4, &c).ok());
  CHECK(*store->Head(t) == c);  // readers (and the next writer) see them
  CHECK(store->LastLsn() == durable);

  env.FailNth(1, FaultType::kIOError, /*sticky=*/false, kOpSync);
  Status sc = store->WaitDurable(c);
  CHECK(sc.reason() == "store_failed");
  CHECK(store->WaitDurable(a).reason() == "store_failed");
  CHECK(store->WaitDurable(b).reason() == "store_failed");
  CHECK(store->WaitDurable(durable).ok());  // what was durable stays so
  // Every later one: refused (the store stopped), and a branch operation
  // that read the pending head c cannot build on it.
  Lsn d = 0;
  CHECK(CommitOne(store.get(), t, c, 5, &d).reason() == "store_failed");
  CHECK(store->ResetTimeline(t, c, durable, "rollback").status().reason() == "store_failed");
  CHECK(store->CreateTimeline(c, "branch from head").status().reason() == "store_failed");
  CHECK(store->Health().reason() == "store_failed");
  store.reset();

  // After recovery (power loss, and a plain reopen): the durable commit is
  // the head, nothing of a, b, c.
  env.ClearFault();
  REQUIRE(env.SnapshotCrashState(db, dir.Sub("crash")).ok());
  for (const std::string& d_ : {db, dir.Sub("crash")}) {
    auto reopened = OpenStore(d_, Env::Default());
    INFO(d_);
    CHECK(*reopened->Head(t) == durable);
    CHECK(reopened->GetRecord(a).status().IsNotFound());
    std::string page;
    REQUIRE(reopened->ReadPage(t, 1, durable, &page).ok());
    CHECK(PageKeyOf(page) == 1u);
    CHECK(reopened->WaitDurable(c).reason() == "not_durable");
  }
}

// A failed write of a record stops the store as a failed fsync does: the
// pending commits before it are never acknowledged, so no reader may see
// them either (they were visible until the store stopped). And one that a
// sync already under way makes durable is acknowledged: it stays visible.
TEST_CASE("a failed record write hides the pending commits it leaves unacknowledged, and only "
          "those",
          "[fault]") {
  TempDir dir(FastTestDirBase());
  FaultInjectionEnv env;
  auto store = OpenStore(dir.Sub("db"), &env);
  const auto [t, durable] = TimelineWithDurableCommit(store.get());
  Lsn a = 0, b = 0, c = 0;
  REQUIRE(CommitOne(store.get(), t, durable, 2, &a).ok());
  REQUIRE(CommitOne(store.get(), t, a, 3, &b).ok());
  CHECK(*store->Head(t) == b);

  SECTION("with no sync under way: every pending commit is refused and hidden") {
    env.FailNth(1, FaultType::kIOError, /*sticky=*/false, kOpAppend);
    CHECK_FALSE(CommitOne(store.get(), t, b, 4, &c).ok());
    CHECK(store->WaitDurable(a).reason() == "store_failed");
    CHECK(store->WaitDurable(b).reason() == "store_failed");
    CHECK(*store->Head(t) == durable);
    std::string page;
    REQUIRE(store->ReadPage(t, 1, b, &page).ok());
    CHECK(PageKeyOf(page) == 1u);
  }
  SECTION("with a sync under way: what it makes durable is acknowledged and stays visible") {
    // A slow sync, so that the write most likely fails while it runs; either
    // order must keep "visible" and "acknowledged" the same.
    env.SetSyncDelayMicros(300000);
    Status waited;
    std::thread leader([&] { waited = store->WaitDurable(b); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    env.FailNth(1, FaultType::kIOError, /*sticky=*/false, kOpAppend);
    CHECK_FALSE(CommitOne(store.get(), t, b, 4, &c).ok());
    leader.join();
    INFO(waited.ToString());
    CHECK(*store->Head(t) == (waited.ok() ? b : durable));
    CHECK(store->WaitDurable(a).ok() == waited.ok());
  }
}

TEST_CASE("pipelined writers under a failed n-th fsync: no acknowledged commit after a failed "
          "one, and recovery keeps a prefix with every acknowledged commit",
          "[fault]") {
  const uint64_t seed = TestSeed("store_pipelined_commit_test sweep");
  int with_fault = 0;
  for (uint64_t n = 1;; ++n) {
    TempDir dir(FastTestDirBase());
    const std::string db = dir.Sub("db");
    FaultInjectionEnv env;
    env.SetSyncDelayMicros(1000);
    History h;
    auto store = OpenStore(db, &env, 64 * 1024);
    auto t = store->CreateTimeline(0, "create");
    REQUIRE(t.ok());
    h.timeline = *t;
    h.created = *store->Head(*t);
    env.FailNth(n, FaultType::kIOError, /*sticky=*/false, kOpSync | kOpSyncDir);
    RunPipelinedWriters(store.get(), &h, 4, 10, seed + n);
    const bool fired = env.FaultFired();
    INFO("failed sync #" << n << ": " << (fired ? env.FiredOpDescription() : "none") << " (seed "
                         << seed << "); " << h.acked_lsns.size() << " acknowledged");
    env.ClearFault();
    if (!h.failed_waits.empty()) {
      // Durability is in log order: every commit after the first failed one
      // failed too (none acknowledged), built on it or not.
      const Lsn first_failed = *std::min_element(h.failed_waits.begin(), h.failed_waits.end());
      for (Lsn acked : h.acked_lsns) CHECK(acked < first_failed);
      CHECK(store->Health().reason() == "store_failed");
    }
    if (!fired) CHECK(h.failed_waits.empty());
    store.reset();
    REQUIRE(env.SnapshotCrashState(db, dir.Sub("crash")).ok());
    for (const std::string& d : {db, dir.Sub("crash")}) {
      auto reopened = OpenStore(d, Env::Default());
      std::vector<std::string> problems = CheckPrefix(*reopened, h, h.acked.load());
      INFO(d << ":\n" << JoinProblems(problems));
      CHECK(problems.empty());
    }
    if (!fired) break;
    ++with_fault;
    REQUIRE(n < 500);
  }
  CHECK(with_fault > 3);
}

// The harness must be able to fail: with file fsyncs silently skipped,
// WaitDurable acknowledges commits that a power loss then takes back, and
// CheckPrefix says so.
TEST_CASE("pipelined power-loss check catches skipped fsyncs (harness self-test)", "[fault]") {
  TempDir dir(FastTestDirBase());
  const std::string db = dir.Sub("db");
  FaultInjectionEnv env;
  History h;
  auto store = OpenStore(db, &env);
  auto t = store->CreateTimeline(0, "create");
  REQUIRE(t.ok());
  h.timeline = *t;
  h.created = *store->Head(*t);
  env.SetSkipSyncs(/*files=*/true, /*dirs=*/false);
  RunPipelinedWriters(store.get(), &h, 4, 5, 1);
  REQUIRE(h.acked_lsns.size() == 20);
  // The power loss while the store is open (closing it cuts its zero region,
  // and that truncation syncs the file).
  REQUIRE(env.SnapshotCrashState(db, dir.Sub("crash")).ok());
  store.reset();
  auto reopened = OpenStore(dir.Sub("crash"), Env::Default());
  CHECK(!CheckPrefix(*reopened, h, h.acked.load()).empty());
}
