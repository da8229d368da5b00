// See pass_thread.h.
#include "server/object_storage/pass_thread.h"

#include <algorithm>
#include <chrono>

namespace branchdb::server {

int64_t NextPassWaitMs(bool ok, int* failures, int64_t interval_ms) {
  constexpr int64_t kMaxBackoffMs = 60000;
  constexpr int kMaxBackoffDoublings = 5;
  *failures = ok ? 0 : std::min(*failures + 1, kMaxBackoffDoublings + 1);
  return std::min(kMaxBackoffMs, interval_ms << (*failures > 0 ? *failures - 1 : 0));
}

PassThread::~PassThread() { Stop(); }

void PassThread::Start(int64_t interval_ms, std::function<Status()> pass) {
  if (interval_ms <= 0) return;
  thread_ = std::thread([this, interval_ms, pass = std::move(pass)] { Loop(interval_ms, pass); });
}

void PassThread::Stop() {
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

bool PassThread::stopping() const {
  MutexLock l(mu_);
  return stop_;
}

void PassThread::Loop(int64_t interval_ms, const std::function<Status()>& pass) {
  int failures = 0;
  for (;;) {
    const int64_t wait_ms = NextPassWaitMs(pass().ok(), &failures, interval_ms);
    MutexLock l(mu_);
    if (stop_) return;
    cv_.WaitFor(mu_, std::chrono::milliseconds(wait_ms));
    if (stop_) return;
  }
}

}  // namespace branchdb::server
