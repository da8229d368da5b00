// MockClock: a Clock whose time moves only when told to (or when slept on), for
// tests of anything time-dependent: token expiry, TTLs, restore windows, idle
// timeouts. Thread-safe.
#ifndef BRANCHDB_BASE_MOCK_CLOCK_H_
#define BRANCHDB_BASE_MOCK_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "base/env.h"

namespace branchdb {

class MockClock final : public Clock {
 public:
  // Starts at start_micros (default 2026-01-01T00:00:00Z).
  explicit MockClock(int64_t start_micros = 1767225600LL * 1000000) : now_(start_micros) {}

  int64_t NowMicros() override { return now_.load(); }
  int64_t NowMonotonicNanos() override { return now_.load() * 1000; }
  void SleepForMicros(int64_t micros) override { Advance(micros); }

  void Advance(int64_t micros) { now_.fetch_add(micros); }
  void AdvanceSeconds(int64_t seconds) { Advance(seconds * 1000000); }
  void Set(int64_t micros) { now_.store(micros); }

 private:
  std::atomic<int64_t> now_;
};

// An Env that forwards file calls to target and reads time from clock.
class EnvWithClock final : public EnvWrapper {
 public:
  EnvWithClock(Env* target, Clock* clock) : EnvWrapper(target), clock_(clock) {}
  Clock* GetClock() override { return clock_; }

 private:
  Clock* const clock_;
};

}  // namespace branchdb

#endif  // BRANCHDB_BASE_MOCK_CLOCK_H_
