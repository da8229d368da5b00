#include "server/http/guarded_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace branchdb::server::http {
namespace {

constexpr int kPollSliceMs = 100;  // how often a waiting connection looks at Stop()

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

// Writes a whole small response, best effort (the connection closes next).
void SendRaw(socket_t sock, const std::string& response) {
  size_t off = 0;
  while (off < response.size() && PollFor(sock, POLLOUT, 1000) > 0) {
    ssize_t n = ::send(sock, response.data() + off, response.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string ErrorResponse(int status, const char* reason, const std::string& code,
                          const std::string& message) {
  std::string body = "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message +
                     "\",\"details\":{}}}";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The connection's stream: buffered reads under the request deadline,
// writes under the write timeout.
class GuardedStream final : public httplib::Stream {
 public:
  GuardedStream(socket_t sock, const GuardOptions& options,
                const std::atomic<socket_t>& listening, std::string peer_ip, int peer_port)
      : sock_(sock),
        options_(options),
        listening_(listening),
        peer_ip_(std::move(peer_ip)),
        peer_port_(peer_port) {}

  // Waits up to timeout_ms for the next request's first byte (true), the end
  // of the connection or Stop() (false).
  bool WaitForRequest(int64_t timeout_ms) {
    if (pos_ < len_) return true;
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

  bool is_readable() const override { return pos_ < len_ || PollFor(sock_, POLLIN, 0) > 0; }
  bool is_writable() const override {
    return !timed_out_ &&
           PollFor(sock_, POLLOUT, static_cast<int>(options_.write_timeout_ms)) > 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == len_) {
      ssize_t n = Fill();
      if (n <= 0) return n;
    }
    size_t n = std::min(size, len_ - pos_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (timed_out_) return -1;  // the 408 is already sent
    if (PollFor(sock_, POLLOUT, static_cast<int>(options_.write_timeout_ms)) <= 0) return -1;
    return ::send(sock_, ptr, size, MSG_NOSIGNAL);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = peer_ip_;
    port = peer_port_;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    port = 0;
    ip.clear();
    if (::getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      AddressOf(addr, &ip, &port);
    }
  }
  socket_t socket() const override { return sock_; }

 private:
  int64_t Now() const { return options_.clock->NowMonotonicNanos(); }

  // Nanoseconds at which the request must be complete.
  int64_t Deadline() const {
    double grace = static_cast<double>(received_) * 1e9 / static_cast<double>(options_.min_rate);
    return start_ + options_.request_timeout_ms * 1000000 + static_cast<int64_t>(grace);
  }

  // Receives into buf_ within the deadline: bytes read, 0 at end of stream,
  // -1 on error, timeout or Stop().
  ssize_t Fill() {
    for (;;) {
      int64_t left_ms = (Deadline() - Now()) / 1000000;
      if (left_ms <= 0) return TimeOut();
      if (listening_ == INVALID_SOCKET) return -1;
      int r = PollFor(sock_, POLLIN, static_cast<int>(std::min<int64_t>(left_ms + 1, kPollSliceMs)));
      if (r < 0) return -1;
      if (r == 0) continue;
      ssize_t n = ::recv(sock_, buf_, sizeof buf_, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return n;
      received_ += n;
      pos_ = 0;
      len_ = static_cast<size_t>(n);
      return n;
    }
  }

  ssize_t TimeOut() {
    timed_out_ = true;
    SendRaw(sock_, ErrorResponse(408, "Request Timeout", "request_timeout",
                                 "the request's headers and body did not arrive in time"));
    if (options_.on_event) options_.on_event("request_timeout", peer_ip_);
    return -1;
  }

  const socket_t sock_;
  const GuardOptions& options_;
  const std::atomic<socket_t>& listening_;
  const std::string peer_ip_;
  const int peer_port_;
  char buf_[16384];
  size_t pos_ = 0, len_ = 0;
  int64_t start_ = 0;
  int64_t received_ = 0;
  bool timed_out_ = false;
};

}  // namespace

ElasticPool::ElasticPool(size_t min_threads, size_t max_threads)
    : min_threads_(min_threads), max_threads_(std::max(min_threads, max_threads)) {
  std::lock_guard<std::mutex> l(mu_);
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
    std::lock_guard<std::mutex> l(mu_);
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > idle_ && threads_.size() < max_threads_) SpawnLocked();
    retired.swap(retired_);
  }
  cv_.notify_one();
  for (auto& t : retired) t.join();  // they have left Work() already
}

void ElasticPool::shutdown() {
  std::vector<std::thread> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
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
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    ++idle_;
    bool woken = cv_.wait_for(l, kRetireAfter, [this] { return shutdown_ || !jobs_.empty(); });
    --idle_;
    if (!jobs_.empty()) {
      std::function<void()> fn = std::move(jobs_.front());
      jobs_.pop_front();
      l.unlock();
      fn();
      l.lock();
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
  std::lock_guard<std::mutex> l(mu_);
  int& open = open_[address];
  if (open >= per_address_) {
    if (open == 0) open_.erase(address);
    return false;
  }
  ++open;
  return true;
}

void ConnectionLimiter::Release(const std::string& address) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = open_.find(address);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

GuardedServer::GuardedServer(GuardOptions options)
    : options_(std::move(options)), limiter_(options_.max_connections_per_client) {
  size_t min = static_cast<size_t>(options_.min_threads);
  size_t max = static_cast<size_t>(options_.max_connections);
  new_task_queue = [min, max] { return new ElasticPool(min, max); };
}

bool GuardedServer::SetBacklog() { return ::listen(svr_sock_, options_.listen_backlog) == 0; }

bool GuardedServer::process_and_close_socket(socket_t sock) {
  std::string ip;
  int port = 0;
  PeerAddress(sock, &ip, &port);
  bool ret = false;
  if (!limiter_.Acquire(ip)) {
    SendRaw(sock, ErrorResponse(503, "Service Unavailable", "too_many_connections",
                                "too many connections from this address; close idle ones"));
    if (options_.on_event) options_.on_event("connection_refused", ip);
  } else {
    GuardedStream strm(sock, options_, svr_sock_, ip, port);
    size_t left = keep_alive_max_count_;
    while (svr_sock_ != INVALID_SOCKET && left > 0 &&
           strm.WaitForRequest(static_cast<int64_t>(keep_alive_timeout_sec_) * 1000)) {
      strm.StartRequest();
      bool closed = false;
      ret = process_request(strm, left == 1, closed, [](httplib::Request&) {});
      if (!ret || closed || strm.timed_out()) break;
      --left;
    }
    limiter_.Release(ip);
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

GuardedSslServer::GuardedSslServer(const char* cert_file, const char* key_file,
                                   GuardOptions options)
    : httplib::SSLServer(cert_file, key_file), options_(std::move(options)) {
  size_t min = static_cast<size_t>(options_.min_threads);
  size_t max = static_cast<size_t>(options_.max_connections);
  new_task_queue = [min, max] { return new ElasticPool(min, max); };
}

bool GuardedSslServer::SetBacklog() { return ::listen(svr_sock_, options_.listen_backlog) == 0; }

}  // namespace branchdb::server::http
