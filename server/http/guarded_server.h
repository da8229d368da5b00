// GuardedServer: httplib's Server with the defences of hardening issue #13
// item 8, so that slow, idle or hostile connections cannot make the server
// unreachable for others.
//
//   - An elastic worker pool (ElasticPool): a connection holds a thread for its
//     life (httplib's model), so threads grow on demand from min_threads up to
//     max_connections and idle ones above min_threads retire. Idle keep-alive
//     and slow connections therefore cannot starve new ones, up to
//     max_connections; beyond it, new connections wait for a thread.
//   - Per client address, at most max_connections_per_client connections at
//     once; one more is answered 503 (Retry-After) and closed.
//   - A deadline for a whole request (plain HTTP): its headers and body must
//     arrive within request_timeout of its first byte, plus one second per
//     min_rate bytes received (mod_reqtimeout's MinRate). Past it the server
//     answers 408 and closes the connection: headers trickled a byte at a time
//     (slowloris) or a body shorter than its Content-Length hold a thread for
//     request_timeout at most, never for the socket read timeout.
//   - A keep-alive loop that waits for the next request without busy polling
//     and ends at Stop().
//   - SetBacklog(): the listen(2) queue (httplib's is 5).
//
// TLS (GuardedSslServer) gets the elastic pool and the backlog; httplib's
// SSLServer keeps its own connection loop, so the request deadline and the
// per-address limit apply to plain HTTP only (put a TLS proxy in front of a
// server exposed to untrusted clients).
//
// Internal to server/ (includes httplib). Thread-safety: as httplib::Server.
#ifndef BRANCHDB_SERVER_HTTP_GUARDED_SERVER_H_
#define BRANCHDB_SERVER_HTTP_GUARDED_SERVER_H_

#include <httplib.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/env.h"

namespace branchdb::server::http {

struct GuardOptions {
  Clock* clock = nullptr;                 // required: request deadlines (monotonic)
  int min_threads = 8;                    // threads kept ready
  int max_connections = 1024;             // threads at most (one per connection)
  int max_connections_per_client = 256;   // per remote address (plain HTTP)
  int listen_backlog = 1024;
  int64_t request_timeout_ms = 10000;     // headers + body of one request...
  int64_t min_rate = 500;                 // ...plus 1 s per min_rate bytes received
  int64_t write_timeout_ms = 30000;       // a response write that makes no progress
  // Told of each refused connection ("connection_refused") and timed-out
  // request ("request_timeout") with the client's address. Optional.
  std::function<void(const char* event, const std::string& address)> on_event;
};

// A TaskQueue whose threads grow with demand (see above).
class ElasticPool final : public httplib::TaskQueue {
 public:
  ElasticPool(size_t min_threads, size_t max_threads);
  ~ElasticPool() override;
  ElasticPool(const ElasticPool&) = delete;
  ElasticPool& operator=(const ElasticPool&) = delete;

  void enqueue(std::function<void()> fn) override;
  // Runs the queued jobs, then joins every thread.
  void shutdown() override;

 private:
  void SpawnLocked();
  void Work(uint64_t id);

  const size_t min_threads_, max_threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  std::map<uint64_t, std::thread> threads_;  // guarded by mu_
  std::vector<std::thread> retired_;         // guarded by mu_: to join
  uint64_t next_id_ = 0;                     // guarded by mu_
  size_t idle_ = 0;                          // guarded by mu_
  bool shutdown_ = false;                    // guarded by mu_
};

// Connections per client address.
class ConnectionLimiter {
 public:
  explicit ConnectionLimiter(int per_address) : per_address_(per_address) {}
  bool Acquire(const std::string& address);  // false: at the limit
  void Release(const std::string& address);

 private:
  const int per_address_;
  std::mutex mu_;
  std::map<std::string, int> open_;  // guarded by mu_
};

class GuardedServer final : public httplib::Server {
 public:
  explicit GuardedServer(GuardOptions options);
  // REQUIRES: bound. False when listen(2) fails.
  bool SetBacklog();

 private:
  bool process_and_close_socket(socket_t sock) override;

  const GuardOptions options_;
  ConnectionLimiter limiter_;
};

class GuardedSslServer final : public httplib::SSLServer {
 public:
  GuardedSslServer(const char* cert_file, const char* key_file, GuardOptions options);
  bool SetBacklog();

 private:
  const GuardOptions options_;
};

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_GUARDED_SERVER_H_
