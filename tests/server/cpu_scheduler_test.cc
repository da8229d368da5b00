// The CPU scheduler of SQL execution (server/sql/cpu_scheduler.h): who gets a
// run slot first, when a holder gives its slot up, that waiting ends at the
// deadline, and that the sandbox gives its slot back on every path. Time is a
// MockClock's: only the test moves it, so the order of events is exact.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/mock_clock.h"
#include "server/sql/cpu_scheduler.h"
#include "server/sql/sandbox.h"
#include "tests/util/temp_dir.h"

namespace branchdb::server::sql {
namespace {

constexpr int64_t kMs = 1'000'000;  // nanos
constexpr int64_t kQuantum = 2 * kMs;

// Waits (real time, generously) until cond holds; the test fails otherwise.
void WaitFor(const std::function<bool()>& cond, const char* what) {
  for (int i = 0; i < 20000 && !cond(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  INFO(what);
  REQUIRE(cond());
}

class Fixture {
 public:
  explicit Fixture(int slots = 1) {
    CpuSchedulerOptions o;
    o.clock = &clock_;
    o.slots = slots;
    o.quantum_nanos = kQuantum;
    auto s = CpuScheduler::Create(o);
    REQUIRE(s.ok());
    scheduler_ = std::move(*s);
  }
  ~Fixture() {
    for (auto& t : threads_) t.join();
  }

  CpuScheduler& scheduler() { return *scheduler_; }
  MockClock& clock() { return clock_; }
  int64_t now() { return clock_.NowMonotonicNanos(); }

  // Whether a short script gets a slot right now (a free one, or one lent by
  // a long holder): a Run whose deadline has already passed gets one only if
  // it need not wait.
  bool SlotFree() {
    CpuScheduler::Run probe(scheduler_.get(), "probe");
    return probe.Acquire(now());
  }

  // A run of client that has already used `used` of slot time (it ran, then
  // gave its slot back), so that it queues as short or long.
  std::unique_ptr<CpuScheduler::Run> RunThatUsed(const std::string& client, int64_t used) {
    auto r = std::make_unique<CpuScheduler::Run>(scheduler_.get(), client);
    REQUIRE(r->Acquire(0));
    clock_.Advance(used / 1000);
    r->Release();
    REQUIRE(r->used_nanos() == used);
    return r;
  }

  std::unique_ptr<CpuScheduler::Run> NewRun(const std::string& client) {
    return std::make_unique<CpuScheduler::Run>(scheduler_.get(), client);
  }

  // In a thread of its own: r->Acquire(0), then records name in order() and
  // keeps the slot until Let(name). Returns once r is queued (or granted).
  void QueueAndHold(std::unique_ptr<CpuScheduler::Run> run, const std::string& name) {
    int before = scheduler_->waiting();
    CpuScheduler::Run* r = run.get();
    runs_.push_back(std::move(run));
    threads_.emplace_back([this, r, name] {
      REQUIRE(r->Acquire(0));
      std::unique_lock<std::mutex> l(mu_);
      order_.push_back(name);
      cv_.wait(l, [&] { return released_.count(name) > 0; });
      l.unlock();
      r->Release();
    });
    WaitFor([&] { return scheduler_->waiting() == before + 1 || Granted(name); }, "queued");
  }

  bool Granted(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    return std::find(order_.begin(), order_.end(), name) != order_.end();
  }
  // Lets the thread holding name's slot release it.
  void Let(const std::string& name) {
    std::lock_guard<std::mutex> l(mu_);
    released_.insert(name);
    cv_.notify_all();
  }
  std::vector<std::string> order() {
    std::lock_guard<std::mutex> l(mu_);
    return order_;
  }

 private:
  MockClock clock_;
  std::unique_ptr<CpuScheduler> scheduler_;
  std::vector<std::unique_ptr<CpuScheduler::Run>> runs_;  // destroyed before scheduler_
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> order_;    // guarded by mu_
  std::set<std::string> released_;    // guarded by mu_
  std::vector<std::thread> threads_;
};

TEST_CASE("a short script waiting goes before a long one that waited longer", "[cpu_scheduler]") {
  Fixture f;
  auto long_run = f.RunThatUsed("analyst", 50 * kMs);
  CpuScheduler::Run holder(&f.scheduler(), "holder");
  REQUIRE(holder.Acquire(0));
  f.QueueAndHold(std::move(long_run), "long");
  f.QueueAndHold(f.NewRun("app"), "short");
  REQUIRE(f.scheduler().waiting() == 2);

  holder.Release();
  WaitFor([&] { return f.Granted("short"); }, "the short script got the slot");
  CHECK(f.order() == std::vector<std::string>{"short"});
  f.Let("short");
  WaitFor([&] { return f.Granted("long"); }, "then the long one");
  CHECK(f.order() == std::vector<std::string>{"short", "long"});
  f.Let("long");
}

TEST_CASE("among scripts of one class, the client with less recent CPU goes first, then FIFO",
          "[cpu_scheduler]") {
  Fixture f;
  auto history = f.RunThatUsed("heavy", 1 * kMs);  // heavy's runs stay short; its client used CPU
  CpuScheduler::Run holder(&f.scheduler(), "holder");
  REQUIRE(holder.Acquire(0));
  f.QueueAndHold(f.NewRun("heavy"), "heavy");
  f.QueueAndHold(f.NewRun("light"), "light1");
  f.QueueAndHold(f.NewRun("light"), "light2");

  holder.Release();
  for (const char* next : {"light1", "light2", "heavy"}) {
    WaitFor([&] { return f.Granted(next); }, next);
    f.Let(next);
  }
  CHECK(f.order() == std::vector<std::string>{"light1", "light2", "heavy"});
}

TEST_CASE("recent CPU decays: a client's old usage stops counting against it", "[cpu_scheduler]") {
  Fixture f;
  auto old = f.RunThatUsed("old", 1 * kMs);
  f.clock().AdvanceSeconds(30);  // 30 half-lives
  auto recent = f.RunThatUsed("recent", kMs / 100);  // 10 us, just now
  CpuScheduler::Run holder(&f.scheduler(), "holder");
  REQUIRE(holder.Acquire(0));
  f.QueueAndHold(f.NewRun("recent"), "recent");
  f.QueueAndHold(f.NewRun("old"), "old");
  holder.Release();
  WaitFor([&] { return f.Granted("old"); }, "old's usage has decayed below recent's");
  CHECK(f.order().front() == "old");
  f.Let("old");
  WaitFor([&] { return f.Granted("recent"); }, "recent");
  f.Let("recent");
}

TEST_CASE("a long holder yields at a tick to a short waiter, a short holder does not",
          "[cpu_scheduler]") {
  Fixture f;
  CpuScheduler::Run hog(&f.scheduler(), "hog");
  REQUIRE(hog.Acquire(0));
  f.QueueAndHold(f.NewRun("app"), "point");

  f.clock().Advance(1000);  // 1 ms of the 2 ms quantum: the hog is still short
  CHECK(hog.Tick(0));
  CHECK(hog.holding());
  CHECK_FALSE(f.Granted("point"));
  CHECK(f.scheduler().yields() == 0);

  f.clock().Advance(1500);  // now long: its next tick gives the slot up
  bool back = false;
  std::thread ticker([&] { back = hog.Tick(0); });
  WaitFor([&] { return f.Granted("point"); }, "the point query got the slot");
  CHECK(f.scheduler().yields() == 1);
  f.Let("point");
  ticker.join();
  CHECK(back);
  CHECK(hog.holding());
  CHECK(hog.used_nanos() == 2500 * 1000);
}

TEST_CASE("a short script borrows a long holder's slot at once; the long one gives it up at "
          "its next tick",
          "[cpu_scheduler]") {
  Fixture f;
  CpuScheduler::Run hog(&f.scheduler(), "hog");
  REQUIRE(hog.Acquire(0));
  f.clock().Advance(5000);  // the hog is long
  CpuScheduler::Run point(&f.scheduler(), "app");
  REQUIRE(point.Acquire(f.now()));  // its deadline has passed: it could not have waited
  // The hog's slot is lent once: a second short script has none to borrow.
  CpuScheduler::Run second(&f.scheduler(), "app2");
  CHECK_FALSE(second.Acquire(f.now()));

  bool back = false;
  std::thread ticker([&] { back = hog.Tick(0); });  // owes its slot: gives it up, waits
  WaitFor([&] { return f.scheduler().waiting() == 1; }, "the hog waits for a slot");
  CHECK(f.scheduler().yields() == 1);
  CHECK_FALSE(hog.holding());
  point.Release();
  ticker.join();
  CHECK(back);
  CHECK(hog.holding());
}

TEST_CASE("a lent slot that came back before the long holder's tick costs it no wait",
          "[cpu_scheduler]") {
  Fixture f;
  CpuScheduler::Run hog(&f.scheduler(), "hog");
  REQUIRE(hog.Acquire(0));
  f.clock().Advance(5000);
  {
    CpuScheduler::Run point(&f.scheduler(), "app");
    REQUIRE(point.Acquire(f.now()));
  }  // done before the hog ticked
  CHECK(hog.Tick(f.now()));  // gives the slot up and gets it straight back
  CHECK(hog.holding());
  CHECK(f.scheduler().yields() == 0);
}

TEST_CASE("long scripts take turns, a quantum each, least recent CPU first", "[cpu_scheduler]") {
  Fixture f;
  auto b = f.RunThatUsed("b", 3 * kMs);  // long
  CpuScheduler::Run a(&f.scheduler(), "a");
  REQUIRE(a.Acquire(0));
  f.clock().Advance(5000);
  a.Release();  // a: 5 ms, long; client a has used more than client b
  REQUIRE(a.Acquire(0));  // a fresh slice
  f.QueueAndHold(std::move(b), "b");

  f.clock().Advance(1000);  // within a's slice: a long waiter does not preempt it
  CHECK(a.Tick(0));
  CHECK(a.holding());
  CHECK_FALSE(f.Granted("b"));

  f.clock().Advance(1000);  // the slice is over: a queues again, and b goes first
  bool back = false;
  std::thread ticker([&] { back = a.Tick(0); });
  WaitFor([&] { return f.Granted("b"); }, "b's turn");
  f.Let("b");
  ticker.join();
  CHECK(back);
  CHECK(a.holding());
  CHECK(f.scheduler().yields() == 1);
}

TEST_CASE("waiting for a slot ends at the deadline, without a slot", "[cpu_scheduler]") {
  Fixture f;
  CpuScheduler::Run holder(&f.scheduler(), "holder");
  REQUIRE(holder.Acquire(0));
  CpuScheduler::Run waiter(&f.scheduler(), "waiter");
  int64_t deadline = f.now() + 1000 * kMs;
  std::atomic<int> result{-1};
  std::thread t([&] { result = waiter.Acquire(deadline) ? 1 : 0; });
  WaitFor([&] { return f.scheduler().waiting() == 1; }, "queued");
  f.clock().Advance(999 * 1000);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // two polls or more
  CHECK(result == -1);  // not yet
  f.clock().Advance(1000);
  t.join();
  CHECK(result == 0);
  CHECK_FALSE(waiter.holding());
  CHECK(f.scheduler().waiting() == 0);
  holder.Release();
  CHECK(f.SlotFree());  // the timed-out waiter took nothing
}

TEST_CASE("a Run gives its slot back when destroyed", "[cpu_scheduler]") {
  Fixture f;
  {
    CpuScheduler::Run r(&f.scheduler(), "c");
    REQUIRE(r.Acquire(0));
    CHECK_FALSE(f.SlotFree());
  }
  CHECK(f.SlotFree());
}

// --- The sandbox's use of it -------------------------------------------------

class SandboxOnScheduler {
 public:
  SandboxOnScheduler() {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open_v2(dir_.Sub("db.sqlite").c_str(), &raw,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) == SQLITE_OK);
    db_.reset(raw);
    SandboxOptions o;
    o.clock = &f_.clock();
    o.scheduler = &f_.scheduler();
    o.statement_timeout_ms = 1000;
    o.max_result_rows = 10;
    auto sb = Sandbox::Attach(db_.get(), o);
    REQUIRE(sb.ok());
    sandbox_ = std::move(*sb);
  }
  Fixture& f() { return f_; }
  Result<ScriptResult> Run(const std::string& sql, bool read_only = false,
                           std::function<Status()> before_commit = nullptr) {
    Script s;
    s.sql = sql;
    s.read_only = read_only;
    s.client = "user";
    s.before_commit = std::move(before_commit);
    return sandbox_->Execute(s);
  }

 private:
  Fixture f_;  // one slot
  testing::TempDir dir_;
  storage::SqliteHandle db_;
  std::unique_ptr<Sandbox> sandbox_;
};

TEST_CASE("the sandbox gives its slot back on every path", "[cpu_scheduler][sandbox]") {
  SandboxOnScheduler s;
  REQUIRE(s.Run("CREATE TABLE t(x); INSERT INTO t VALUES (1)").ok());
  CHECK(s.f().SlotFree());
  CHECK(s.Run("SELECT * FROM t").ok());
  CHECK(s.f().SlotFree());
  CHECK(s.Run("SELEC nonsense").status().reason() == "sql_error");
  CHECK(s.f().SlotFree());
  CHECK(s.Run("INSERT INTO t VALUES (2)", /*read_only=*/true).status().reason() == "read_only");
  CHECK(s.f().SlotFree());
  CHECK(s.Run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100) "
              "SELECT x FROM c")
            .status()
            .reason() == "result_too_large");
  CHECK(s.f().SlotFree());
  CHECK(s.Run("INSERT INTO t VALUES (3)", false, [] {
           return Status::FailedPrecondition("vetoed", "veto");
         }).status().reason() == "veto");
  CHECK(s.f().SlotFree());
  CHECK(s.Run("ATTACH 'x' AS y").status().reason() == "sql_forbidden");
  CHECK(s.f().SlotFree());
}

TEST_CASE("the sandbox holds no slot while its before-commit hook and COMMIT run",
          "[cpu_scheduler][sandbox]") {
  SandboxOnScheduler s;
  bool free_at_commit = false;
  REQUIRE(s.Run("CREATE TABLE t(x)", false, [&] {
               free_at_commit = s.f().SlotFree();
               return Status::OK();
             }).ok());
  CHECK(free_at_commit);
}

TEST_CASE("a script waiting for a slot is stopped by its statement timeout",
          "[cpu_scheduler][sandbox]") {
  SandboxOnScheduler s;
  CpuScheduler::Run other(&s.f().scheduler(), "other");
  REQUIRE(other.Acquire(0));  // the only slot, held throughout
  Result<ScriptResult> r = Status::OK();
  std::thread t([&] { r = s.Run("SELECT 1"); });
  WaitFor([&] { return s.f().scheduler().waiting() == 1; }, "the script waits for the slot");
  s.f().clock().Advance(1000 * 1000);  // the 1 s statement timeout, in wall time
  t.join();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "statement_timeout");
  CHECK(r.status().message().find("waited for a CPU") != std::string::npos);
  CHECK(s.f().scheduler().waiting() == 0);
}

TEST_CASE("a long script that yielded its slot is stopped by its timeout while it waits",
          "[cpu_scheduler][sandbox]") {
  SandboxOnScheduler s;
  Result<ScriptResult> r = Status::OK();
  std::thread t([&] {
    r = s.Run("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
              "SELECT count(*) FROM c");
  });
  WaitFor([&] { return !s.f().SlotFree(); }, "the script runs");
  // A short script arrives; the long one is short too until the clock says
  // it ran a quantum, then yields at its next tick.
  s.f().QueueAndHold(s.f().NewRun("app"), "point");
  s.f().clock().Advance(3 * kMs / 1000);
  WaitFor([&] { return s.f().Granted("point"); }, "the long script gave the slot up");
  // The point script keeps the slot past the long one's deadline.
  s.f().clock().Advance(1000 * 1000);
  t.join();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().reason() == "statement_timeout");
  CHECK(r.status().message().find("waited for a CPU") != std::string::npos);
  s.f().Let("point");
}

}  // namespace
}  // namespace branchdb::server::sql
