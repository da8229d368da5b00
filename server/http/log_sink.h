// BatchedFdSink: the server's log written to a file descriptor (stdout) in
// batches, so that a request's access-log line costs a format and a copy into
// memory, not a write(2) and a flush of its own (docs/config.md, "Logging").
//
// Lines keep their order and their bytes (the logger's pattern, one line per
// event). The batch goes out:
//   - every `interval` (a flusher thread of the sink's own), when non-empty;
//   - at once when it reaches `limit` bytes;
//   - on flush(): the logger's flush_on level (warn: a warning or an error is
//     written at once, with every line logged before it), an explicit flush
//     (serve flushes its `event=listening` line and its last lines), and the
//     sink's destruction (the process's normal exit).
// So a clean stop or SIGTERM loses nothing; a kill -9 or a crash loses at most
// the last `interval` of lines below the flush_on level.
//
// Thread-safety: thread-safe (spdlog's base_sink serialises log and flush).
#ifndef BRANCHDB_SERVER_HTTP_LOG_SINK_H_
#define BRANCHDB_SERVER_HTTP_LOG_SINK_H_

#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>

#include "base/mutex.h"

namespace branchdb::server::http {

class BatchedFdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // fd: where lines go (not owned, not closed).
  BatchedFdSink(int fd, std::chrono::milliseconds interval, size_t limit);
  ~BatchedFdSink() override;  // stops the flusher, then writes what is left
  BatchedFdSink(const BatchedFdSink&) = delete;
  BatchedFdSink& operator=(const BatchedFdSink&) = delete;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;

 private:
  void FlushEvery(std::chrono::milliseconds interval);

  const int fd_;
  const size_t limit_;
  spdlog::memory_buf_t batch_;  // under base_sink's mutex_
  Mutex stop_mu_;
  CondVar stop_cv_;
  bool stop_ GUARDED_BY(stop_mu_) = false;
  std::thread flusher_;
};

// The default logger of `branchdb serve`: when stdout is not a terminal, its
// lines go through a BatchedFdSink (100 ms, 64 KiB) with flush_on(warn); on a
// terminal spdlog's own colour sink is kept (a line at once, for a person).
// Call before setting the log level.
void InstallServeLogger();

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_LOG_SINK_H_
