// The group commit's wake-ups (PageStoreImpl::WaitDurable, issue #20): a
// sync's end must release every waiter it covered, none it did not (one of
// those leads the next sync), and a failure every one. Many writers commit on one store and
// wait (some for each commit at once, some pipelined on two timelines: a
// commit appended on one, then WaitDurable of the other's older one), so that
// waiters of many LSNs, not in LSN order, queue behind each slow fdatasync,
// while the n-th file sync fails (n random). After each run:
//   - no WaitDurable returned OK for a record the store did not yet hold
//     durable (DurableEnd, asked right after it returned): no early wake;
//   - no commit that began after a failure had been reported succeeded;
//   - every writer's thread ended (a waiter nobody wakes hangs the test
//     until ctest's timeout);
//   - from a clean reopen and from the power-loss image (the failed sync's
//     data dropped), every acknowledged commit is there with its contents.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
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

constexpr int kWriters = 12;
constexpr int kCommitsPerWriter = 20;
constexpr uint32_t kDbPages = 4;

// What the writers of one run share (mu guards model and violations).
struct Shared {
  storage::PageStore* store = nullptr;
  FaultInjectionEnv* env = nullptr;
  StoreModel* model = nullptr;
  std::mutex mu;
  std::vector<std::string> violations;
  int acknowledged = 0;
  int refused = 0;
  // Order of events: a commit that begins after a failure was reported must fail.
  std::atomic<uint64_t> clock{0};
  std::atomic<uint64_t> first_failure_at{UINT64_MAX};
};

// A commit appended (CommitNoWait returned its LSN), not yet acknowledged.
struct Pending {
  Lsn lsn = 0;
  ModelOp op;
  uint64_t started = 0;
};

void Violation(Shared* sh, std::string what) {
  std::lock_guard<std::mutex> lock(sh->mu);
  sh->violations.push_back(std::move(what));
}

void NoteFailure(Shared* sh) {
  uint64_t expected = UINT64_MAX;
  sh->first_failure_at.compare_exchange_strong(expected, sh->clock.fetch_add(1));
}

// Waits for p's record; false when it failed (the writer stops then).
bool Acknowledge(Shared* sh, const Pending& p) {
  Status s = sh->store->WaitDurable(p.lsn);
  if (s.ok()) {
    const Lsn durable = sh->store->DurableEnd().lsn;
    if (durable < p.lsn) {
      Violation(sh, p.op.annotation + " (LSN " + std::to_string(p.lsn) +
                        ") acknowledged while the durable LSN was " + std::to_string(durable));
    }
    if (p.started > sh->first_failure_at.load()) {
      Violation(sh, p.op.annotation + " began after a failure had been reported, and succeeded");
    }
  }
  std::lock_guard<std::mutex> lock(sh->mu);
  if (s.ok()) {
    sh->model->Ack(p.lsn, p.op);
    ++sh->acknowledged;
    return true;
  }
  sh->model->AddUncertain(p.op);
  if (!sh->env->FaultFired()) {
    sh->violations.push_back("a wait failed with no fault: " + s.ToString());
  }
  NoteFailure(sh);
  return false;
}

// Appends one commit on t over head; false when refused.
bool Append(Shared* sh, int w, TimelineId t, Lsn head, std::mt19937_64* rng, Pending* p) {
  std::vector<std::string> data;
  std::vector<storage::PageWrite> writes;
  p->op = ModelOp{};
  p->op.kind = storage::RecordKind::kCommit;
  p->op.timeline = t;
  p->op.prev = p->op.expected_head = head;
  p->op.db_size = kDbPages;
  {
    std::lock_guard<std::mutex> lock(sh->mu);
    const uint64_t base = sh->model->NextKeyBase();
    p->op.pages[1] = base | 1;
    p->op.pages[2 + (*rng)() % (kDbPages - 1)] = base | 2;
    p->op.annotation = sh->model->NextAnnotation("w" + std::to_string(w));
  }
  for (const auto& [pg, key] : p->op.pages) data.push_back(PageData(key));
  size_t k = 0;
  for (const auto& [pg, key] : p->op.pages) writes.push_back({pg, data[k++]});
  p->started = sh->clock.fetch_add(1);
  auto lsn = sh->store->CommitNoWait(t, head, writes, kDbPages, p->op.annotation);
  if (lsn.ok()) {
    p->lsn = *lsn;
    return true;
  }
  NoteFailure(sh);
  std::lock_guard<std::mutex> lock(sh->mu);
  sh->model->AddUncertain(p->op);
  ++sh->refused;
  if (!sh->env->FaultFired()) sh->violations.push_back("a commit failed with no fault");
  return false;
}

// Writer w on its timelines (heads: their acknowledged heads). Even writers
// wait for each commit at once; odd ones have two timelines and keep one
// commit in flight: they append on one, then wait for the other's (an
// older LSN). One unacknowledged commit per timeline at most, as the model
// allows.
void Writer(Shared* sh, int w, std::vector<std::pair<TimelineId, Lsn>> tls, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::optional<Pending> in_flight;
  for (int i = 0; i < kCommitsPerWriter; ++i) {
    auto& [t, head] = tls[i % tls.size()];
    Pending p;
    if (!Append(sh, w, t, head, &rng, &p)) break;
    head = p.lsn;
    if (in_flight && !Acknowledge(sh, *in_flight)) {
      in_flight = std::move(p);
      break;
    }
    in_flight.reset();
    if (tls.size() > 1) {
      in_flight = std::move(p);
    } else if (!Acknowledge(sh, p)) {
      break;
    }
  }
  if (in_flight) (void)Acknowledge(sh, *in_flight);
}

struct RunResult {
  std::vector<std::string> violations;
  int acknowledged = 0;
  int refused = 0;
};

// Creates a timeline per writer, then arms the fault (n: the n-th file
// sync from then on fails; 0: none) and runs the writers.
RunResult RunWriters(const std::string& db, FaultInjectionEnv* env, StoreModel* model,
                     uint64_t n, uint64_t seed) {
  RunResult result;
  storage::PageStoreOptions options;
  options.env = env;
  options.segment_bytes = 256 * 1024;  // a roll or two: rolls wait for the syncs under way
  auto opened = storage::PageStore::Open(options, db);
  if (!opened.ok()) return result;
  std::unique_ptr<storage::PageStore> store = std::move(*opened);
  Shared sh;
  sh.store = store.get();
  sh.env = env;
  sh.model = model;
  std::vector<std::vector<std::pair<TimelineId, Lsn>>> tls(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    for (int k = 0; k < 1 + w % 2; ++k) {
      std::optional<TimelineId> t = CreateTimelineInModel(store.get(), model);
      if (!t) return result;
      tls[w].emplace_back(*t, *store->Head(*t));
    }
  }
  if (n > 0) env->FailNth(n, FaultType::kIOError, /*sticky=*/false, kOpSync);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back(Writer, &sh, w, tls[w], seed + w);
  }
  for (auto& t : threads) t.join();
  result.violations = std::move(sh.violations);
  result.acknowledged = sh.acknowledged;
  result.refused = sh.refused;
  return result;
}

}  // namespace

TEST_CASE("group commit wake-ups: acknowledged commits are durable, later ones refused, "
          "no waiter is left asleep", "[fault]") {
  const uint64_t seed = TestSeed("store_group_commit_wake_fault_test");
  std::mt19937_64 rng(seed);
  int with_fault = 0;
  for (int round = 0; round < 8; ++round) {
    TempDir dir(FastTestDirBase());
    const std::string db = dir.Sub("db");
    FaultInjectionEnv env;
    // One of the writers' file syncs (a roll's included) fails; none in the last round.
    const uint64_t n = round == 7 ? 0 : 1 + rng() % 40;
    env.SetSyncDelayMicros(1000);  // waiters of many LSNs queue behind each fdatasync
    StoreModel model;
    RunResult run = RunWriters(db, &env, &model, n, seed + 1000 * round);
    const bool fired = env.FaultFired();
    INFO("round " << round << ", failed sync #" << n << ": "
                  << (fired ? env.FiredOpDescription() : "none") << " (seed " << seed << "); "
                  << run.acknowledged << " acknowledged, " << run.refused << " refused");
    env.ClearFault();
    {
      INFO(JoinProblems(run.violations));
      CHECK(run.violations.empty());
    }
    if (fired) {
      ++with_fault;
    } else {
      CHECK(run.acknowledged == kWriters * kCommitsPerWriter);
    }
    std::vector<std::string> problems = ReopenAndCheckBoth(&env, db, dir.Sub("crash"), &model);
    INFO(JoinProblems(problems));
    CHECK(problems.empty());
    std::fprintf(stderr, "round %d: fault %s, %d acknowledged, %d refused\n", round,
                 fired ? "fired" : "none", run.acknowledged, run.refused);
  }
  CHECK(with_fault >= 4);
}
