#include "server/http/guarded_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string_view>

namespace branchdb::server::http {
namespace {

constexpr int kPollSliceMs = 100;           // how often a waiting connection looks at Stop()
constexpr int64_t kClosingAnswerMs = 1000;  // to send a 503 or 408 (and a refused TLS handshake)
constexpr ssize_t kWait = -2;               // Transport: poll the socket for *events, then retry
constexpr ssize_t kTimedOut = -3;           // Drive: the deadline passed first
constexpr ssize_t kStopped = -4;            // Drive: Stop() was called

int PollFor(socket_t sock, short events, int timeout_ms) {
  pollfd p{sock, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

void AddressOf(const sockaddr_storage& addr, std::string* ip, int* port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    *port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    *port = ntohs(in6->sin6_port);
  }
  *ip = buf;
}

void PeerAddress(socket_t sock, std::string* ip, int* port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  *port = 0;
  ip->clear();
  if (::getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) AddressOf(addr, ip, port);
}

std::string ErrorResponse(int status, const char* reason, const std::string& code,
                          const std::string& message) {
  std::string body =
      "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message + "\",\"details\":{}}}";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// How a connection's bytes move. Each call is one non-blocking attempt: bytes
// moved (> 0), end of stream (0, reads only), failure (-1), or kWait with the
// poll(2) events to wait for before trying again.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual ssize_t Recv(char* buf, size_t size, short* events) = 0;
  virtual ssize_t Send(const char* buf, size_t size, short* events) = 0;
  // Bytes received and not yet returned by Recv (TLS decrypts whole records).
  virtual bool Buffered() const = 0;
  // The peer should see an orderly end (a TLS close_notify); best effort.
  virtual void Close() {}
  // The TLS connection, for httplib's Request::ssl; nullptr over plain HTTP.
  virtual const SSL* ssl() const { return nullptr; }
};

class PlainTransport final : public Transport {
 public:
  explicit PlainTransport(socket_t sock) : sock_(sock) {}
  ssize_t Recv(char* buf, size_t size, short* events) override {
    return Result(::recv(sock_, buf, size, MSG_DONTWAIT), POLLIN, events);
  }
  ssize_t Send(const char* buf, size_t size, short* events) override {
    return Result(::send(sock_, buf, size, MSG_DONTWAIT | MSG_NOSIGNAL), POLLOUT, events);
  }
  bool Buffered() const override { return false; }

 private:
  static ssize_t Result(ssize_t n, short wait_for, short* events) {
    if (n >= 0) return n;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    *events = wait_for;
    return kWait;
  }

  const socket_t sock_;
};

// TLS over a non-blocking socket.
class TlsTransport final : public Transport {
 public:
  // REQUIRES: ssl reads and writes sock, which is non-blocking.
  explicit TlsTransport(SSL* ssl) : ssl_(ssl) {}
  ~TlsTransport() override { SSL_free(ssl_); }
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;

  // Each call clears the thread's OpenSSL error queue first: SSL_get_error reads it.
  ssize_t Accept(short* events) {
    ERR_clear_error();
    return Result(SSL_accept(ssl_), events);
  }
  ssize_t Recv(char* buf, size_t size, short* events) override {
    ERR_clear_error();
    return Result(SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(size, INT_MAX))), events);
  }
  ssize_t Send(const char* buf, size_t size, short* events) override {
    ERR_clear_error();
    return Result(SSL_write(ssl_, buf, static_cast<int>(std::min<size_t>(size, INT_MAX))), events);
  }
  bool Buffered() const override { return SSL_pending(ssl_) > 0; }
  void Close() override {
    if (!failed_) {
      ERR_clear_error();
      (void)SSL_shutdown(ssl_);  // sends close_notify; does not wait for the peer's
    }
  }
  const SSL* ssl() const override { return ssl_; }

 private:
  ssize_t Result(int r, short* events) {
    if (r > 0) return r;
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ:
        *events = POLLIN;
        return kWait;
      case SSL_ERROR_WANT_WRITE:
        *events = POLLOUT;
        return kWait;
      case SSL_ERROR_ZERO_RETURN:  // close_notify
        return 0;
      default:  // SYSCALL, SSL: no close_notify may follow
        failed_ = true;
        ERR_clear_error();
        return -1;
    }
  }

  SSL* const ssl_;
  bool failed_ = false;
};

// Repeats attempt (one non-blocking Transport call) until it moves bytes, ends
// or fails, polling the socket for what it asks. kTimedOut once deadline (on
// clock, nanoseconds) passes first; kStopped when listening is given and
// becomes INVALID_SOCKET (Stop()).
template <typename Attempt>
ssize_t Drive(socket_t sock, Clock& clock, int64_t deadline, const std::atomic<socket_t>* listening,
              Attempt attempt) {
  for (;;) {
    short events = 0;
    ssize_t n = attempt(&events);
    if (n != kWait) return n;
    int64_t left_ms = (deadline - clock.NowMonotonicNanos()) / 1000000;
    if (left_ms <= 0) return kTimedOut;
    if (listening != nullptr && *listening == INVALID_SOCKET) return kStopped;
    int slice = listening != nullptr ? kPollSliceMs : INT_MAX;
    if (PollFor(sock, events, static_cast<int>(std::min<int64_t>(left_ms + 1, slice))) < 0) {
      return -1;
    }
  }
}

// Writes all of data within timeout_ms; false if it could not.
bool SendAll(Transport& transport, socket_t sock, Clock& clock, int64_t timeout_ms,
             std::string_view data) {
  int64_t deadline = clock.NowMonotonicNanos() + timeout_ms * 1000000;
  while (!data.empty()) {
    ssize_t n = Drive(sock, clock, deadline, nullptr, [&](short* events) {
      return transport.Send(data.data(), data.size(), events);
    });
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// The connection's transport, once ready: plain at once; TLS once the
// handshake completes, within deadline_ns. nullptr when it does not
// (*timed_out: because the deadline passed).
std::unique_ptr<Transport> OpenTransport(socket_t sock, SSL_CTX* tls, Clock& clock,
                                         int64_t deadline_ns,
                                         const std::atomic<socket_t>* listening, bool* timed_out) {
  *timed_out = false;
  if (tls == nullptr) return std::make_unique<PlainTransport>(sock);
  // OpenSSL's socket BIO writes with write(2), which raises SIGPIPE on a
  // connection the peer closed: blocked, the write fails with EPIPE instead.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  int flags = ::fcntl(sock, F_GETFL, 0);
  if (flags < 0 || ::fcntl(sock, F_SETFL, flags | O_NONBLOCK) < 0) return nullptr;
  SSL* ssl = SSL_new(tls);  // thread-safe on a shared SSL_CTX (OpenSSL >= 1.1)
  if (ssl == nullptr) return nullptr;
  auto transport = std::make_unique<TlsTransport>(ssl);
  if (SSL_set_fd(ssl, static_cast<int>(sock)) != 1) return nullptr;
  ssize_t r = Drive(sock, clock, deadline_ns, listening,
                    [&](short* events) { return transport->Accept(events); });
  *timed_out = r == kTimedOut;
  if (r <= 0) return nullptr;
  return transport;
}

// A connection's stream: buffered reads under the request deadline, writes
// under the write timeout, over a Transport. Writes are gathered (up to
// kWriteBuffer bytes) and sent before the stream reads or waits, when the
// buffer is full, and by Flush() after each request: httplib writes a
// response's headers and its body apart, and one send(2) instead of two was
// a tenth of a point SELECT's server CPU (#20).
class GuardedStream final : public httplib::Stream {
 public:
  GuardedStream(socket_t sock, Transport& transport, const GuardOptions& options,
                const std::atomic<socket_t>& listening, std::string peer_ip, int peer_port)
      : sock_(sock),
        transport_(transport),
        options_(options),
        listening_(listening),
        peer_ip_(std::move(peer_ip)),
        peer_port_(peer_port) {}

  // Waits up to timeout_ms for the next request's first byte (true), the end
  // of the connection or Stop() (false).
  bool WaitForRequest(int64_t timeout_ms) {
    if (!Flush()) return false;
    if (pos_ < len_ || transport_.Buffered()) return true;
    int64_t end = Now() + timeout_ms * 1000000;
    while (listening_ != INVALID_SOCKET) {
      int64_t left_ms = (end - Now()) / 1000000;
      if (left_ms <= 0) return false;
      int r = PollFor(sock_, POLLIN, static_cast<int>(std::min<int64_t>(left_ms, kPollSliceMs)));
      if (r != 0) return r > 0;
    }
    return false;
  }

  // The next request starts now: its deadline runs from here.
  void StartRequest() {
    start_ = Now();
    received_ = 0;
  }
  bool timed_out() const { return timed_out_; }
  // The connection may continue (no failure, no timeout): worth a TLS close_notify.
  bool intact() const { return !timed_out_ && !failed_; }

  bool is_readable() const override {
    return pos_ < len_ || transport_.Buffered() || PollFor(sock_, POLLIN, 0) > 0;
  }
  bool is_writable() const override {
    return !timed_out_ && !failed_ &&
           PollFor(sock_, POLLOUT, static_cast<int>(options_.write_timeout_ms)) > 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    // httplib 0.11 reads the request line and headers one byte per call
    // (stream_line_reader): that byte straight from the buffer, no memcpy.
    if (size == 1 && pos_ < len_) {
      *ptr = buf_[pos_++];
      return 1;
    }
    if (pos_ == len_) {
      if (!Flush()) return -1;  // e.g. "100 Continue" goes before the body is read
      ssize_t n = Fill();
      if (n <= 0) return n;
    }
    size_t n = std::min(size, len_ - pos_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  // Gathers ptr (returns size), or sends what was gathered and then some of
  // ptr within write_timeout (progress, not the whole write); -1 on failure.
  ssize_t write(const char* ptr, size_t size) override {
    if (timed_out_ || failed_) return -1;  // a 408 is already sent, or the connection broke
    if (out_.size() + size <= kWriteBuffer) {
      out_.append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    if (!Flush()) return -1;
    if (size <= kWriteBuffer) {
      out_.append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    return Send(ptr, size);
  }

  // Sends what write() gathered; false when the connection failed.
  bool Flush() {
    size_t sent = 0;
    while (sent < out_.size()) {
      ssize_t n = Send(out_.data() + sent, out_.size() - sent);
      if (n < 0) return false;
      sent += static_cast<size_t>(n);
    }
    out_.clear();
    return !failed_;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = peer_ip_;
    port = peer_port_;
  }
  // httplib asks on every request; the answer is the connection's, so one
  // getsockname(2) per connection.
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    if (!local_known_) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      if (::getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        AddressOf(addr, &local_ip_, &local_port_);
      }
      local_known_ = true;
    }
    ip = local_ip_;
    port = local_port_;
  }
  socket_t socket() const override { return sock_; }

 private:
  int64_t Now() const { return options_.clock->NowMonotonicNanos(); }

  static constexpr size_t kWriteBuffer = 16384;

  // Some of ptr within write_timeout (progress), or -1.
  ssize_t Send(const char* ptr, size_t size) {
    if (timed_out_ || failed_) return -1;
    ssize_t n = Drive(sock_, *options_.clock, Now() + options_.write_timeout_ms * 1000000, nullptr,
                      [&](short* events) { return transport_.Send(ptr, size, events); });
    if (n > 0) return n;
    failed_ = true;
    return -1;
  }

  // Nanoseconds at which the request must be complete.
  int64_t Deadline() const {
    double grace = static_cast<double>(received_) * 1e9 / static_cast<double>(options_.min_rate);
    return start_ + options_.request_timeout_ms * 1000000 + static_cast<int64_t>(grace);
  }

  // Receives into buf_ within the deadline: bytes read, 0 at end of stream,
  // -1 on error, timeout or Stop().
  ssize_t Fill() {
    ssize_t n = Drive(sock_, *options_.clock, Deadline(), &listening_,
                      [&](short* events) { return transport_.Recv(buf_, sizeof buf_, events); });
    if (n == kTimedOut) return TimeOut();
    if (n < 0) {
      failed_ = true;
      return -1;
    }
    received_ += n;
    pos_ = 0;
    len_ = static_cast<size_t>(n);
    return n;
  }

  ssize_t TimeOut() {
    timed_out_ = true;
    (void)SendAll(transport_, sock_, *options_.clock, kClosingAnswerMs,
                  ErrorResponse(408, "Request Timeout", "request_timeout",
                                "the request's headers and body did not arrive in time"));
    if (options_.on_event) options_.on_event("request_timeout", peer_ip_);
    return -1;
  }

  const socket_t sock_;
  Transport& transport_;
  const GuardOptions& options_;
  const std::atomic<socket_t>& listening_;
  const std::string peer_ip_;
  const int peer_port_;
  mutable bool local_known_ = false;
  mutable std::string local_ip_;
  mutable int local_port_ = 0;
  char buf_[16384];
  size_t pos_ = 0, len_ = 0;
  std::string out_;  // written, not yet sent (see write)
  int64_t start_ = 0;
  int64_t received_ = 0;
  bool timed_out_ = false;
  bool failed_ = false;
};

}  // namespace

ElasticPool::ElasticPool(size_t min_threads, size_t max_threads)
    : min_threads_(min_threads), max_threads_(std::max(min_threads, max_threads)) {
  MutexLock l(mu_);
  for (size_t i = 0; i < min_threads_; ++i) SpawnLocked();
}

ElasticPool::~ElasticPool() { shutdown(); }

void ElasticPool::SpawnLocked() {
  uint64_t id = next_id_++;
  threads_.emplace(id, std::thread([this, id] { Work(id); }));
}

void ElasticPool::enqueue(std::function<void()> fn) {
  std::vector<std::thread> retired;
  {
    MutexLock l(mu_);
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > idle_ && threads_.size() < max_threads_) SpawnLocked();
    retired.swap(retired_);
  }
  cv_.Signal();
  for (auto& t : retired) t.join();  // they have left Work() already
}

void ElasticPool::shutdown() {
  std::vector<std::thread> all;
  {
    MutexLock l(mu_);
    shutdown_ = true;
  }
  cv_.SignalAll();
  for (;;) {
    {
      MutexLock l(mu_);
      for (auto& [id, t] : threads_) all.push_back(std::move(t));
      threads_.clear();
      for (auto& t : retired_) all.push_back(std::move(t));
      retired_.clear();
    }
    if (all.empty()) return;
    for (auto& t : all) t.join();
    all.clear();
  }
}

void ElasticPool::Work(uint64_t id) {
  constexpr auto kRetireAfter = std::chrono::seconds(30);
  MutexLock l(mu_);
  for (;;) {
    ++idle_;
    const auto retire_at = std::chrono::steady_clock::now() + kRetireAfter;
    for (auto now = std::chrono::steady_clock::now(); !shutdown_ && jobs_.empty() && now < retire_at;
         now = std::chrono::steady_clock::now()) {
      cv_.WaitFor(mu_, retire_at - now);
    }
    const bool woken = shutdown_ || !jobs_.empty();
    --idle_;
    if (!jobs_.empty()) {
      std::function<void()> fn = std::move(jobs_.front());
      jobs_.pop_front();
      l.Unlock();
      fn();
      l.Lock();
      continue;
    }
    if (shutdown_) break;
    if (!woken && threads_.size() > min_threads_) break;  // idle: retire
  }
  auto self = threads_.find(id);
  if (self != threads_.end()) {  // else shutdown() holds the handle
    retired_.push_back(std::move(self->second));
    threads_.erase(self);
  }
}

bool ConnectionLimiter::Acquire(const std::string& address) {
  MutexLock l(mu_);
  int& open = open_[address];
  if (open >= per_address_) {
    if (open == 0) open_.erase(address);
    return false;
  }
  ++open;
  return true;
}

void ConnectionLimiter::Release(const std::string& address) {
  MutexLock l(mu_);
  auto it = open_.find(address);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

ConnectionGuard::ConnectionGuard(GuardOptions options)
    : options_(std::move(options)), limiter_(options_.max_connections_per_client) {}

void ConnectionGuard::InstallPool(httplib::Server& server) const {
  size_t min = static_cast<size_t>(options_.min_threads);
  size_t max = static_cast<size_t>(options_.max_connections);
  server.new_task_queue = [min, max] { return new ElasticPool(min, max); };
}

bool ConnectionGuard::Serve(socket_t sock, SSL_CTX* tls, const Listener& listener) {
  Clock& clock = *options_.clock;
  const int64_t started = clock.NowMonotonicNanos();  // a thread took the connection up
  std::string ip;
  int port = 0;
  PeerAddress(sock, &ip, &port);
  bool ret = false;
  bool handshake_timed_out = false;
  if (!limiter_.Acquire(ip)) {
    int64_t budget_ms = std::min(options_.request_timeout_ms, kClosingAnswerMs);
    auto transport = OpenTransport(sock, tls, clock, started + budget_ms * 1000000,
                                   listener.listening, &handshake_timed_out);
    if (transport != nullptr) {
      (void)SendAll(*transport, sock, clock, budget_ms,
                    ErrorResponse(503, "Service Unavailable", "too_many_connections",
                                  "too many connections from this address; close idle ones"));
      transport->Close();
    }
    if (options_.on_event) options_.on_event("connection_refused", ip);
  } else {
    auto transport =
        OpenTransport(sock, tls, clock, started + options_.request_timeout_ms * 1000000,
                      listener.listening, &handshake_timed_out);
    if (transport == nullptr) {
      if (handshake_timed_out && options_.on_event) options_.on_event("handshake_timeout", ip);
    } else {
      const SSL* ssl = transport->ssl();
      auto setup = [ssl](httplib::Request& req) { req.ssl = ssl; };
      GuardedStream strm(sock, *transport, options_, *listener.listening, ip, port);
      size_t left = listener.keep_alive_max_count;
      while (*listener.listening != INVALID_SOCKET && left > 0 &&
             strm.WaitForRequest(static_cast<int64_t>(listener.keep_alive_timeout_sec) * 1000)) {
        strm.StartRequest();
        bool closed = false;
        ret = listener.process_request(strm, left == 1, closed, setup);
        if (!strm.Flush()) break;
        if (!ret || closed || strm.timed_out()) break;
        --left;
      }
      if (strm.intact()) transport->Close();
    }
    limiter_.Release(ip);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

GuardedServer::GuardedServer(GuardOptions options) : guard_(std::move(options)) {
  guard_.InstallPool(*this);
}

bool GuardedServer::SetBacklog() { return ::listen(svr_sock_, guard_.listen_backlog()) == 0; }

bool GuardedServer::process_and_close_socket(socket_t sock) {
  return guard_.Serve(sock, nullptr,
                      {&svr_sock_, keep_alive_max_count_, keep_alive_timeout_sec_,
                       [this](auto&&... args) { return process_request(args...); }});
}

GuardedSslServer::GuardedSslServer(const char* cert_file, const char* key_file,
                                   GuardOptions options)
    : httplib::SSLServer(cert_file, key_file), guard_(std::move(options)) {
  guard_.InstallPool(*this);
}

bool GuardedSslServer::SetBacklog() { return ::listen(svr_sock_, guard_.listen_backlog()) == 0; }

bool GuardedSslServer::process_and_close_socket(socket_t sock) {
  return guard_.Serve(sock, ssl_context(),
                      {&svr_sock_, keep_alive_max_count_, keep_alive_timeout_sec_,
                       [this](auto&&... args) { return process_request(args...); }});
}

}  // namespace branchdb::server::http
