// BatchedFdSink (server/http/log_sink.h): the server's log lines written in
// batches keep their bytes and their order, and reach the file descriptor on
// every event that must not wait: a warning, a full batch, an explicit flush,
// the sink's end, and the flusher's interval.
#include "server/http/log_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>

namespace branchdb::server::http {
namespace {

// A pipe whose read end never blocks: Drain() is what the sink has written.
class Pipe {
 public:
  Pipe() {
    REQUIRE(pipe(fds_) == 0);
    REQUIRE(fcntl(fds_[0], F_SETFL, O_NONBLOCK) == 0);
  }
  ~Pipe() {
    close(fds_[0]);
    close(fds_[1]);
  }
  int write_fd() const { return fds_[1]; }
  std::string Drain() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds_[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  // Waits (no deadline: the test's timeout is the bound) until something came.
  std::string WaitForData() {
    std::string out;
    while (out.empty()) {
      out = Drain();
      if (out.empty()) usleep(1000);
    }
    return out;
  }

 private:
  int fds_[2];
};

std::shared_ptr<spdlog::logger> BatchedLogger(int fd, std::chrono::milliseconds interval,
                                              size_t limit) {
  auto logger =
      std::make_shared<spdlog::logger>("", std::make_shared<BatchedFdSink>(fd, interval, limit));
  logger->flush_on(spdlog::level::warn);
  logger->set_level(spdlog::level::info);
  return logger;
}

constexpr auto kNever = std::chrono::hours(1);

TEST_CASE("log_sink: info lines wait; a warning writes them all, in order, at once") {
  Pipe pipe;
  auto logger = BatchedLogger(pipe.write_fd(), kNever, 1 << 20);
  logger->info("event=access n=1");
  logger->info("event=access n=2");
  CHECK(pipe.Drain().empty());
  logger->warn("event=something_wrong");
  std::string out = pipe.Drain();
  size_t one = out.find("[info] event=access n=1\n");
  size_t two = out.find("[info] event=access n=2\n");
  size_t warn = out.find("[warning] event=something_wrong\n");
  REQUIRE(one != std::string::npos);
  REQUIRE(two != std::string::npos);
  REQUIRE(warn != std::string::npos);
  CHECK(one < two);
  CHECK(two < warn);
  CHECK(pipe.Drain().empty());
}

TEST_CASE("log_sink: the same bytes as spdlog's own sink with the default pattern") {
  Pipe pipe;
  std::ostringstream reference;
  auto batched = std::make_shared<BatchedFdSink>(pipe.write_fd(), kNever, 1 << 20);
  auto plain = std::make_shared<spdlog::sinks::ostream_sink_mt>(reference);
  spdlog::logger both("", {batched, plain});
  both.info("event=access method=GET path=/healthz status=200");
  both.error("event=failed error=\"x\"");
  both.flush();
  CHECK(pipe.Drain() == reference.str());
}

TEST_CASE("log_sink: a full batch is written without waiting for the interval") {
  Pipe pipe;
  auto logger = BatchedLogger(pipe.write_fd(), kNever, 256);
  std::string written;
  for (int i = 0; written.empty() && i < 100; ++i) {
    logger->info("event=access n={}", i);
    written = pipe.Drain();
  }
  REQUIRE(!written.empty());
  CHECK(written.size() >= 256);
  CHECK(written.back() == '\n');  // whole lines only
}

TEST_CASE("log_sink: flush and the sink's end write what is left") {
  Pipe pipe;
  auto logger = BatchedLogger(pipe.write_fd(), kNever, 1 << 20);
  logger->info("event=one");
  logger->flush();
  CHECK(pipe.Drain().find("event=one\n") != std::string::npos);
  logger->info("event=last");
  logger.reset();  // the process's normal exit: the logger and its sink end
  CHECK(pipe.Drain().find("event=last\n") != std::string::npos);
}

TEST_CASE("log_sink: the flusher writes a line on its own") {
  Pipe pipe;
  auto logger = BatchedLogger(pipe.write_fd(), std::chrono::milliseconds(5), 1 << 20);
  logger->info("event=idle_line");
  CHECK(pipe.WaitForData().find("event=idle_line\n") != std::string::npos);
}

}  // namespace
}  // namespace branchdb::server::http
