// PassThread: the background loop of passes over the bucket that the segment
// uploader and the catalog backup each run: a pass, then a wait of
// NextPassWaitMs (backing off after failed passes), until stopped. A pass
// reads stopping() between its steps to end early.
//
// Thread-safety: all methods may be called from any thread.
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_PASS_THREAD_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_PASS_THREAD_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "base/mutex.h"
#include "base/status.h"

namespace branchdb::server {

// The wait before the next pass of a background loop of the bucket (the
// uploader's, the catalog backup's): interval_ms after a pass that succeeded;
// after failed ones in a row (*failures counts them), doubled per failure up
// to 32 intervals, and at most 60 s.
int64_t NextPassWaitMs(bool ok, int* failures, int64_t interval_ms);

class PassThread {
 public:
  PassThread() = default;
  // Stop().
  ~PassThread();
  PassThread(const PassThread&) = delete;
  PassThread& operator=(const PassThread&) = delete;

  // Starts the thread running pass every interval_ms (none when
  // interval_ms <= 0: passes are then run by their owner only).
  // REQUIRES: called once, before Stop().
  void Start(int64_t interval_ms, std::function<Status()> pass);
  // Asks the thread to stop, wakes it, and waits for it (a pass in flight
  // finishes first). After it, stopping() is true.
  void Stop();
  bool stopping() const;

 private:
  void Loop(int64_t interval_ms, const std::function<Status()>& pass);

  mutable Mutex mu_;  // a leaf
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_PASS_THREAD_H_
