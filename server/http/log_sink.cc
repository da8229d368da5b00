// See log_sink.h.
#include "server/http/log_sink.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <spdlog/logger.h>
#include <spdlog/spdlog.h>
#include <utility>

namespace branchdb::server::http {

BatchedFdSink::BatchedFdSink(int fd, std::chrono::milliseconds interval, size_t limit)
    : fd_(fd), limit_(limit) {
  flusher_ = std::thread([this, interval] { FlushEvery(interval); });
}

BatchedFdSink::~BatchedFdSink() {
  {
    MutexLock l(stop_mu_);
    stop_ = true;
  }
  stop_cv_.SignalAll();
  flusher_.join();
  flush();
}

void BatchedFdSink::FlushEvery(std::chrono::milliseconds interval) {
  // Signals are for the process's own handling (serve's sigwait thread): a
  // SIGTERM delivered here would end the process before its last lines.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  MutexLock l(stop_mu_);
  while (!stop_) {
    stop_cv_.WaitFor(stop_mu_, interval);
    if (!stop_) flush();
  }
}

void BatchedFdSink::sink_it_(const spdlog::details::log_msg& msg) {
  formatter_->format(msg, batch_);  // appends the formatted line
  if (batch_.size() >= limit_) flush_();
}

void BatchedFdSink::flush_() {
  const char* p = batch_.data();
  size_t left = batch_.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // as spdlog's stdout sink: a failed write drops the lines
    p += n;
    left -= static_cast<size_t>(n);
  }
  batch_.clear();
}

void InstallServeLogger() {
  if (isatty(STDOUT_FILENO)) return;
  auto sink = std::make_shared<BatchedFdSink>(STDOUT_FILENO, std::chrono::milliseconds(100),
                                              size_t{64} << 10);
  auto logger = std::make_shared<spdlog::logger>("", std::move(sink));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace branchdb::server::http
