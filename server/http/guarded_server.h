// GuardedServer (HTTP) and GuardedSslServer (HTTPS): httplib's Server and
// SSLServer with the defences of hardening issue #13 item 8, so that slow,
// idle or hostile connections cannot make the server unreachable for others.
// Both run one connection loop (ConnectionGuard); they differ only in how a
// connection's bytes move (socket calls, or TLS records through OpenSSL).
//
//   - An elastic worker pool (ElasticPool): a connection holds a thread for its
//     life (httplib's model), so threads grow on demand from min_threads up to
//     max_connections and idle ones above min_threads retire. Idle keep-alive
//     and slow connections therefore cannot starve new ones, up to
//     max_connections; beyond it, new connections wait for a thread.
//   - Per client address, at most max_connections_per_client connections at
//     once, counted from the connection's start (when a thread takes it up,
//     before any TLS handshake); one more is answered 503 (Retry-After) and
//     closed. Over TLS that answer needs a handshake, which is given at most
//     a second (request_timeout if shorter); a client that does not complete
//     it is closed without an answer.
//   - TLS: the handshake must complete within request_timeout of the
//     connection's start, or the connection is closed (a client that connects
//     and sends nothing, or trickles its ClientHello, holds a thread that
//     long at most).
//   - A deadline for a whole request: its headers and body must arrive within
//     request_timeout of its first byte, plus one second per min_rate bytes
//     received (mod_reqtimeout's MinRate). Past it the server answers 408 and
//     closes the connection: headers trickled a byte at a time (slowloris) or
//     a body shorter than its Content-Length hold a thread for
//     request_timeout at most, never for the socket read timeout.
//   - A keep-alive loop that waits for the next request without busy polling
//     and ends at Stop(); a write that makes no progress for write_timeout
//     fails the connection.
//   - SetBacklog(): the listen(2) queue (httplib's is 5).
//
// Internal to server/ (includes httplib). Thread-safety: as httplib::Server;
// ConnectionGuard::Serve() is called by many connection threads at once.
#ifndef BRANCHDB_SERVER_HTTP_GUARDED_SERVER_H_
#define BRANCHDB_SERVER_HTTP_GUARDED_SERVER_H_

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "base/env.h"
#include "base/mutex.h"

namespace branchdb::server::http {

struct GuardOptions {
  Clock* clock = nullptr;                // required: request deadlines (monotonic)
  int min_threads = 8;                   // threads kept ready
  int max_connections = 1024;            // threads at most (one per connection)
  int max_connections_per_client = 256;  // per remote address
  int listen_backlog = 1024;
  int64_t request_timeout_ms = 10000;  // a TLS handshake; headers + body of one request...
  int64_t min_rate = 500;              // ...plus 1 s per min_rate bytes received
  int64_t write_timeout_ms = 30000;    // a response write that makes no progress
  // Told of each refused connection ("connection_refused"), TLS handshake
  // that did not complete in time ("handshake_timeout") and timed-out request
  // ("request_timeout"), with the client's address. Optional.
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
  void SpawnLocked() REQUIRES(mu_);
  void Work(uint64_t id) EXCLUDES(mu_);

  const size_t min_threads_, max_threads_;
  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> jobs_ GUARDED_BY(mu_);
  std::map<uint64_t, std::thread> threads_ GUARDED_BY(mu_);
  std::vector<std::thread> retired_ GUARDED_BY(mu_);  // to join
  uint64_t next_id_ GUARDED_BY(mu_) = 0;
  size_t idle_ GUARDED_BY(mu_) = 0;
  bool shutdown_ GUARDED_BY(mu_) = false;
};

// Connections per client address.
class ConnectionLimiter {
 public:
  explicit ConnectionLimiter(int per_address) : per_address_(per_address) {}
  bool Acquire(const std::string& address) EXCLUDES(mu_);  // false: at the limit
  void Release(const std::string& address) EXCLUDES(mu_);

 private:
  const int per_address_;
  Mutex mu_;
  std::map<std::string, int> open_ GUARDED_BY(mu_);
};

// The connection loop of both listeners (see above): the per-address limit,
// the TLS handshake under its deadline, requests under theirs, keep-alive.
class ConnectionGuard {
 public:
  explicit ConnectionGuard(GuardOptions options);

  // What the loop needs of the httplib server it runs for: the listening
  // socket (INVALID_SOCKET once Stop() is called), the keep-alive settings,
  // and its process_request.
  struct Listener {
    const std::atomic<socket_t>* listening;
    size_t keep_alive_max_count;
    time_t keep_alive_timeout_sec;
    std::function<bool(httplib::Stream& strm, bool close_connection, bool& connection_closed,
                       const std::function<void(httplib::Request&)>& setup_request)>
        process_request;
  };

  // Serves the accepted sock until the connection ends, then closes it.
  // tls: the context to accept TLS with, or nullptr for plain HTTP. Returns
  // what the last process_request returned (false if none ran).
  bool Serve(socket_t sock, SSL_CTX* tls, const Listener& listener);

  // Makes httplib's server use an ElasticPool sized by the options.
  void InstallPool(httplib::Server& server) const;
  int listen_backlog() const { return options_.listen_backlog; }

 private:
  const GuardOptions options_;
  ConnectionLimiter limiter_;
};

class GuardedServer final : public httplib::Server {
 public:
  explicit GuardedServer(GuardOptions options);
  // REQUIRES: bound. False when listen(2) fails.
  bool SetBacklog();

 private:
  bool process_and_close_socket(socket_t sock) override;

  ConnectionGuard guard_;
};

class GuardedSslServer final : public httplib::SSLServer {
 public:
  // is_valid() tells whether the PEM certificate and key loaded.
  GuardedSslServer(const char* cert_file, const char* key_file, GuardOptions options);
  // REQUIRES: bound. False when listen(2) fails.
  bool SetBacklog();

 private:
  bool process_and_close_socket(socket_t sock) override;

  ConnectionGuard guard_;
};

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_GUARDED_SERVER_H_
