// CpuScheduler: CPU-fair scheduling of SQL execution, so that long queries
// cannot starve short ones.
//
// The scheduler has a fixed number of run slots (about one per core). A script
// holds a slot while SQLite executes its statements (Sandbox::Execute) and at
// no other time. At the sandbox's progress ticks (every 1000 VM
// instructions, a few microseconds) the holder gives its slot up when someone more deserving
// waits, and waits for its turn again. So about `slots` scripts compete for
// the cores, and a short script does not wait for a long one.
//
// Who is more deserving: a two-level feedback queue with fair share by client.
//   - A script that has held a slot for less than `quantum` in all is short;
//     past it, it is long. Short waiters always go before long ones.
//   - Among waiters of one class, the script of the client with the least
//     recent run time goes first (each client's run time decays with a
//     half-life of one second; a client is Run's `client` string, e.g. its
//     OAuth client id); ties go first come, first served. A client that runs
//     four long scripts at once is served about as often as one that runs one.
//   - A short script does not wait for a long holder to reach its next tick
//     (which takes as long as the operating system leaves that thread off a
//     core): with no free slot it borrows a long holder's at once, and the
//     long one gives it up at its next tick. So for a moment up to twice
//     `slots` scripts may run; never more.
//   - A long holder yields at a tick when its slot was lent, when a short
//     script waits (one that arrived while it was still short), or when it has
//     held its slot for `quantum` and anyone waits (round robin among long
//     scripts, in fair-share order; it may get its slot straight back). A
//     short holder is not preempted: within a quantum it is done, or long.
//   - A steady stream of short scripts that keeps every slot busy can delay
//     long ones until their statement timeout: interactive work goes first.
//
// Time is the slot's holding time on the injected clock's monotonic time:
// with no more slots than cores that is the script's CPU time, near enough.
//
// Lock rule (why no deadlock is possible): a thread takes a slot only after
// every other lock of its request is held (compute lease, the
// transaction's branch lock), and while it holds a slot it waits for nothing
// but a CPU: it gives the slot up before it sleeps, commits (the fsync), or
// waits for any lock that another slot waiter may hold. A thread waiting for
// a slot therefore never holds something a slot holder needs. Waiting for a
// slot ends at the caller's deadline (the statement timeout, wall time).
//
// Thread-safety: a CpuScheduler is safe for concurrent use. A Run belongs to
// one thread (the one running its script) and must not outlive its scheduler.
#ifndef BRANCHDB_SERVER_SQL_CPU_SCHEDULER_H_
#define BRANCHDB_SERVER_SQL_CPU_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/mutex.h"
#include "base/status.h"

namespace branchdb::server::sql {

struct CpuSchedulerOptions {
  Clock* clock = nullptr;  // required; not owned
  // Run slots. Default: 0 = one per core (std::thread::hardware_concurrency).
  int slots = 0;
  // Run time after which a script is long, and a long script's time slice.
  // Default: 2 ms.
  int64_t quantum_nanos = 2'000'000;
};

class CpuScheduler {
 public:
  class Run;

  // InvalidArgument without a clock, with slots < 0 or quantum_nanos < 1.
  static Result<std::unique_ptr<CpuScheduler>> Create(const CpuSchedulerOptions& options);
  // REQUIRES: no Run of this scheduler is alive.
  ~CpuScheduler() = default;
  CpuScheduler(const CpuScheduler&) = delete;
  CpuScheduler& operator=(const CpuScheduler&) = delete;

  int slots() const { return slots_; }
  // Scripts waiting for a slot now (short and long).
  int waiting() const { return waiting_.load(std::memory_order_relaxed); }
  // Times a holder gave its slot up to a more deserving waiter, since Create.
  uint64_t yields() const { return yields_.load(std::memory_order_relaxed); }

 private:
  explicit CpuScheduler(const CpuSchedulerOptions& options, int slots);

  // Decayed run time of a client.
  struct Usage {
    double nanos = 0;
    int64_t stamp = 0;  // monotonic nanos of the last update
    int runs = 0;       // live Runs of the client
  };

  // The client's run time decayed to now.
  double UsageLocked(Usage& u, int64_t now) REQUIRES(mu_);
  // REQUIRES: r holding. Charges r's slot time since it was granted and
  // frees its slot (or repays the one it lent).
  void UnholdLocked(Run& r, int64_t now) REQUIRES(mu_);
  // REQUIRES: r holding. Whether r has run a quantum in all.
  bool IsLongLocked(const Run& r, int64_t now) const REQUIRES(mu_);
  // REQUIRES: r holding no slot. Queues r in its class.
  void EnqueueLocked(Run& r) REQUIRES(mu_);
  // Takes a waiter out of the queue.
  void DequeueLocked(std::vector<Run*>::iterator it) REQUIRES(mu_);
  // Hands free slots to the most deserving waiters; a short waiter without a
  // free slot borrows a long holder's.
  void GrantLocked(int64_t now) REQUIRES(mu_);
  // REQUIRES: r queued. Waits (releasing mu_ meanwhile) until r is granted a
  // slot (true) or deadline_nanos (0 = none) passes (false, r no longer queued).
  bool AwaitLocked(Run& r, int64_t deadline_nanos) REQUIRES(mu_);
  // Forgets idle clients whose run time has decayed away.
  void PruneLocked(int64_t now) REQUIRES(mu_);

  // Constant after construction.
  Clock* const clock_;
  const int slots_;
  const int64_t quantum_nanos_;

  // A leaf: taken last, after every other lock of the request (see
  // docs/architecture.md), and nothing is taken under it.
  Mutex mu_;
  int free_slots_ GUARDED_BY(mu_);  // below 0 while slots are lent
  std::vector<Run*> waiters_ GUARDED_BY(mu_);
  std::vector<Run*> holders_ GUARDED_BY(mu_);
  std::map<std::string, Usage> usage_ GUARDED_BY(mu_);
  uint64_t next_seq_ GUARDED_BY(mu_) = 0;
  // Read without mu_ at every tick (written under mu_).
  std::atomic<int> waiting_{0};
  std::atomic<int> waiting_short_{0};
  std::atomic<uint64_t> yields_{0};

 public:
  // One script's claim on the scheduler. Created before the script runs;
  // holds a slot between Acquire() and Release() (or its destruction, on
  // every path). With a null scheduler every call succeeds at once.
  class Run {
   public:
    Run(CpuScheduler* scheduler, std::string client);
    ~Run();  // Release()
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;

    // Waits for a slot until deadline_nanos (monotonic, 0 = none): true with
    // the slot held, false when the deadline passed first (no slot held).
    // REQUIRES: no slot held.
    bool Acquire(int64_t deadline_nanos);
    // At a progress tick: when a more deserving script waits, gives the slot
    // up and waits for it again, until deadline_nanos: false when it passed
    // (no slot held then). Without a slot held: true, nothing done.
    bool Tick(int64_t deadline_nanos);
    // Gives the slot up (no-op without one) and charges its time.
    void Release();

    bool holding() const { return holding_; }
    // Slot time used so far (excluding the current hold).
    int64_t used_nanos() const { return used_nanos_; }

   private:
    friend class CpuScheduler;
    CpuScheduler* const scheduler_;
    const std::string client_;
    // Written under the scheduler's mu_ (by the granting thread while this
    // one waits); read by this thread.
    bool holding_ = false;
    int64_t granted_at_ = 0;   // monotonic nanos the current hold began
    int64_t used_nanos_ = 0;   // slot time before the current hold
    // The slot was lent to a short script: give it up at the next tick. Set
    // under mu_, read at every tick without it.
    std::atomic<bool> must_yield_{false};
    // Set while queued (guarded by the scheduler's mu_; not annotated:
    // the scheduler's methods reach them through a Run&, whose scheduler_
    // clang cannot tell is `this`).
    bool queued_short_ = false;
    bool granted_ = false;
    uint64_t seq_ = 0;
    CondVar cv_;  // with the scheduler's mu_
  };
};

}  // namespace branchdb::server::sql

#endif  // BRANCHDB_SERVER_SQL_CPU_SCHEDULER_H_
