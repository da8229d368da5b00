#include "server/sql/cpu_scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

namespace branchdb::server::sql {
namespace {

// A client's run time halves every second it does not run.
constexpr double kUsageHalfLifeNanos = 1e9;
// A waiter re-reads the clock at least this often (an injected clock moves
// without waking anyone).
constexpr int64_t kPollNanos = 100'000'000;
// Idle clients are forgotten once there are more than this many.
constexpr size_t kPruneAbove = 1024;

}  // namespace

Result<std::unique_ptr<CpuScheduler>> CpuScheduler::Create(const CpuSchedulerOptions& options) {
  if (options.clock == nullptr || options.slots < 0 || options.quantum_nanos < 1) {
    return Status::InvalidArgument("CpuScheduler needs a clock, slots >= 0 and a quantum >= 1 ns");
  }
  int slots = options.slots;
  if (slots == 0) slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::unique_ptr<CpuScheduler>(new CpuScheduler(options, slots));
}

CpuScheduler::CpuScheduler(const CpuSchedulerOptions& options, int slots)
    : clock_(options.clock),
      slots_(slots),
      quantum_nanos_(options.quantum_nanos),
      free_slots_(slots) {}

double CpuScheduler::UsageLocked(Usage& u, int64_t now) {
  if (now > u.stamp) {
    u.nanos *= std::exp2(-static_cast<double>(now - u.stamp) / kUsageHalfLifeNanos);
    u.stamp = now;
  }
  return u.nanos;
}

void CpuScheduler::EnqueueLocked(Run& r) {
  r.granted_ = false;
  r.seq_ = next_seq_++;
  r.queued_short_ = r.used_nanos_ < quantum_nanos_;
  waiters_.push_back(&r);
  waiting_.fetch_add(1, std::memory_order_relaxed);
  if (r.queued_short_) waiting_short_.fetch_add(1, std::memory_order_relaxed);
}

void CpuScheduler::DequeueLocked(std::vector<Run*>::iterator it) {
  if ((*it)->queued_short_) waiting_short_.fetch_sub(1, std::memory_order_relaxed);
  waiting_.fetch_sub(1, std::memory_order_relaxed);
  waiters_.erase(it);
}

bool CpuScheduler::IsLongLocked(const Run& r, int64_t now) const {
  return r.used_nanos_ + (now - r.granted_at_) >= quantum_nanos_;
}

void CpuScheduler::GrantLocked(int64_t now) {
  while (!waiters_.empty()) {
    // Short before long; then the client with the least recent run time;
    // then first come, first served.
    auto best = waiters_.begin();
    double best_usage = UsageLocked(usage_[(*best)->client_], now);
    for (auto it = std::next(waiters_.begin()); it != waiters_.end(); ++it) {
      const Run& w = **it;
      const Run& b = **best;
      double usage = UsageLocked(usage_[w.client_], now);
      bool better = w.queued_short_ != b.queued_short_
                        ? w.queued_short_
                        : (usage != best_usage ? usage < best_usage : w.seq_ < b.seq_);
      if (better) {
        best = it;
        best_usage = usage;
      }
    }
    Run* r = *best;
    if (free_slots_ <= 0) {
      // No slot: a short script borrows the slot of a long holder, which
      // owes it back at its next tick (it need not be on a core right now).
      if (!r->queued_short_) break;
      Run* lender = nullptr;
      for (Run* h : holders_) {
        if (!h->must_yield_.load(std::memory_order_relaxed) && IsLongLocked(*h, now)) {
          lender = h;
          break;
        }
      }
      if (lender == nullptr) break;
      lender->must_yield_.store(true, std::memory_order_relaxed);
    }
    DequeueLocked(best);
    --free_slots_;
    r->holding_ = true;
    r->granted_at_ = now;
    holders_.push_back(r);
    r->granted_ = true;
    r->cv_.Signal();
  }
}

void CpuScheduler::UnholdLocked(Run& r, int64_t now) {
  const int64_t held = std::max<int64_t>(0, now - r.granted_at_);
  r.used_nanos_ += held;
  Usage& u = usage_[r.client_];
  UsageLocked(u, now);
  u.nanos += static_cast<double>(held);
  r.holding_ = false;
  r.must_yield_.store(false, std::memory_order_relaxed);
  holders_.erase(std::find(holders_.begin(), holders_.end(), &r));
  ++free_slots_;
}

bool CpuScheduler::AwaitLocked(Run& r, int64_t deadline_nanos) {
  while (!r.granted_) {
    const int64_t now = clock_->NowMonotonicNanos();
    if (deadline_nanos != 0 && now >= deadline_nanos) {
      DequeueLocked(std::find(waiters_.begin(), waiters_.end(), &r));
      return false;
    }
    int64_t wait = kPollNanos;
    if (deadline_nanos != 0) wait = std::min(wait, deadline_nanos - now);
    r.cv_.WaitFor(mu_, std::chrono::nanoseconds(wait));
  }
  return true;
}

void CpuScheduler::PruneLocked(int64_t now) {
  if (usage_.size() <= kPruneAbove) return;
  for (auto it = usage_.begin(); it != usage_.end();) {
    if (it->second.runs == 0 && UsageLocked(it->second, now) < 1000) {
      it = usage_.erase(it);
    } else {
      ++it;
    }
  }
}

CpuScheduler::Run::Run(CpuScheduler* scheduler, std::string client)
    : scheduler_(scheduler), client_(std::move(client)) {
  if (scheduler_ == nullptr) return;
  MutexLock l(scheduler_->mu_);
  scheduler_->usage_[client_].runs++;
}

CpuScheduler::Run::~Run() {
  if (scheduler_ == nullptr) return;
  Release();
  MutexLock l(scheduler_->mu_);
  scheduler_->usage_[client_].runs--;
  scheduler_->PruneLocked(scheduler_->clock_->NowMonotonicNanos());
}

bool CpuScheduler::Run::Acquire(int64_t deadline_nanos) {
  if (scheduler_ == nullptr) return true;
  MutexLock l(scheduler_->mu_);
  scheduler_->EnqueueLocked(*this);
  scheduler_->GrantLocked(scheduler_->clock_->NowMonotonicNanos());
  return scheduler_->AwaitLocked(*this, deadline_nanos);
}

bool CpuScheduler::Run::Tick(int64_t deadline_nanos) {
  if (!holding_) return true;
  const bool owed = must_yield_.load(std::memory_order_relaxed);  // lent to a short script
  if (!owed && scheduler_->waiting_.load(std::memory_order_relaxed) == 0) return true;
  const int64_t now = scheduler_->clock_->NowMonotonicNanos();
  if (!owed) {
    const int64_t slice = now - granted_at_;
    const int64_t quantum = scheduler_->quantum_nanos_;
    if (used_nanos_ + slice < quantum) return true;  // short: not preempted
    if (slice < quantum && scheduler_->waiting_short_.load(std::memory_order_relaxed) == 0) {
      return true;  // long, within its slice, and no short script waits
    }
  }
  MutexLock l(scheduler_->mu_);
  scheduler_->UnholdLocked(*this, now);
  scheduler_->EnqueueLocked(*this);
  scheduler_->GrantLocked(now);
  if (!granted_) scheduler_->yields_.fetch_add(1, std::memory_order_relaxed);
  return scheduler_->AwaitLocked(*this, deadline_nanos);
}

void CpuScheduler::Run::Release() {
  if (!holding_) return;
  MutexLock l(scheduler_->mu_);
  const int64_t now = scheduler_->clock_->NowMonotonicNanos();
  scheduler_->UnholdLocked(*this, now);
  scheduler_->GrantLocked(now);
}

}  // namespace branchdb::server::sql
