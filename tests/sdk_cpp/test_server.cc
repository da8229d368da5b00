// Test helpers of the C++ SDK tests (test_server.h).
#include "test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace branchdb::client::testing {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// One HTTP/1.1 request (head + Content-Length body); "" at EOF or error.
std::string ReadRequest(int fd) {
  std::string data;
  char buf[65536];
  size_t head_end;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    data.append(buf, static_cast<size_t>(n));
  }
  size_t length = 0;
  std::string head = Lower(data.substr(0, head_end));
  size_t pos = head.find("\r\ncontent-length:");
  if (pos != std::string::npos) length = std::stoull(head.substr(pos + 17));
  while (data.size() < head_end + 4 + length) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

int ConnectTo(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "-" + std::to_string(++counter) + "-" + std::to_string(::getpid());
}

// ---- TestServer ------------------------------------------------------------------------

TestServer::TestServer(std::vector<std::string> env) {
  const char* binary = std::getenv("BRANCHDB_TEST_SERVER");
  REQUIRE(binary != nullptr);
  REQUIRE(std::filesystem::exists(binary));
  std::string tmpl = (std::filesystem::temp_directory_path() / "bdb-sdk-cpp-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  tmp_ = tmpl;
  data_dir_ = tmp_ + "/data";
  log_path_ = tmp_ + "/server.log";

  std::vector<std::string> args = {binary,       "serve",           "--data-dir", data_dir_,
                                   "--listen",   "127.0.0.1:0",     "--log-level", "info"};
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) envs.emplace_back(*e);
  for (auto& e : env) envs.push_back(std::move(e));
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  int rc = posix_spawn(&pid_, binary, &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);

  // Wait for the address in the log, then for the credentials file and /healthz.
  const std::string marker = "event=listening address=";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (url_.empty()) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL("server exited early:\n" << Log());
    }
    std::string log = Log();
    size_t pos = log.find(marker);
    if (pos != std::string::npos) {
      size_t end = log.find_first_of(" \r\n", pos + marker.size());
      url_ = log.substr(pos + marker.size(), end - pos - marker.size());
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) FAIL("server never listened:\n" << Log());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  while (true) {
    auto creds = LoadAdminCredentials(data_dir_);
    if (creds.ok()) {
      admin_ = *creds;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) FAIL("no admin credentials:\n" << Log());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto client = AdminClient();
  while (!client->Health().ok()) {
    if (std::chrono::steady_clock::now() > deadline) FAIL("/healthz never answered:\n" << Log());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TestServer::~TestServer() {
  Stop();
  std::error_code ec;
  std::filesystem::remove_all(tmp_, ec);
}

void TestServer::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
}

std::string TestServer::Log() const { return ReadFile(log_path_); }

ClientOptions TestServer::AdminOptions() const {
  ClientOptions o;
  o.url = url_;
  o.client_id = admin_.client_id;
  o.client_secret = admin_.client_secret;
  o.retry.initial_backoff = std::chrono::milliseconds(20);
  o.retry.max_backoff = std::chrono::milliseconds(500);
  o.connect_timeout = std::chrono::seconds(30);
  o.io_timeout = std::chrono::seconds(120);
  return o;
}

std::unique_ptr<Client> TestServer::AdminClient() const {
  auto c = Client::Create(AdminOptions());
  REQUIRE(c.ok());
  return std::move(c).value();
}

TestServer& TestServer::Shared() {
  static std::unique_ptr<TestServer> server;
  if (!server) server = std::make_unique<TestServer>();
  return *server;
}

// ---- FaultProxy ------------------------------------------------------------------------

FaultProxy::FaultProxy(const std::string& target_url) {
  std::string hostport = target_url.substr(target_url.find("://") + 3);
  size_t colon = hostport.rfind(':');
  target_host_ = hostport.substr(0, colon);
  target_port_ = std::stoi(hostport.substr(colon + 1));
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listen_fd_ >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listen_fd_, 64) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  url_ = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  accept_thread_.join();
  ::close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void FaultProxy::Inject(const std::string& method, const std::string& path_part, Action action,
                        int times) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(Rule{method, path_part, action, times});
}

std::vector<FaultProxy::Seen> FaultProxy::seen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

std::vector<FaultProxy::Seen> FaultProxy::SeenMatching(const std::string& method,
                                                       const std::string& path_part) const {
  std::vector<Seen> out;
  for (auto& s : seen()) {
    if (s.method == method && s.path.find(path_part) != std::string::npos) out.push_back(s);
  }
  return out;
}

FaultProxy::Action FaultProxy::Decide(const std::string& method, const std::string& path) {
  for (auto& r : rules_) {
    if (r.remaining > 0 && r.method == method && path.find(r.path_part) != std::string::npos) {
      --r.remaining;
      return r.action;
    }
  }
  return Action::kForward;
}

void FaultProxy::AcceptLoop() {
  while (!stop_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stop_) return;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

// One request per connection: the upstream request gets "Connection: close",
// so its answer ends at EOF whatever its framing; the client's connection is
// closed after it too.
void FaultProxy::Serve(int fd) {
  std::string request = ReadRequest(fd);
  if (!request.empty()) {
    size_t head_end = request.find("\r\n\r\n");
    std::istringstream head(request.substr(0, head_end));
    std::string line, method, path;
    std::getline(head, line);
    std::istringstream(line) >> method >> path;
    Seen seen;
    seen.method = method;
    seen.path = path;
    std::string rebuilt = line + "\n";
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = Lower(line.substr(0, colon));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      seen.headers[name] = value;
      if (name != "connection") rebuilt += line + "\r\n";
    }
    rebuilt += "Connection: close\r\n\r\n" + request.substr(head_end + 4);
    Action action;
    {
      std::lock_guard<std::mutex> lock(mu_);
      action = Decide(method, path);
      seen.action = action;
      seen_.push_back(seen);
    }
    if (action == Action::kRespond503 || action == Action::kRespond429) {
      std::string body = action == Action::kRespond503
                             ? R"({"error":{"code":"unavailable","message":"injected","details":{}}})"
                             : R"({"error":{"code":"compute_budget","message":"injected","details":{}}})";
      WriteAll(fd, std::string(action == Action::kRespond503 ? "HTTP/1.1 503 Service Unavailable"
                                                             : "HTTP/1.1 429 Too Many Requests") +
                       "\r\nContent-Type: application/json\r\nRetry-After: 0\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    } else {
      int up = ConnectTo(target_host_, target_port_);
      if (up >= 0 && WriteAll(up, rebuilt)) {
        std::string response;
        char buf[65536];
        ssize_t n;
        while ((n = ::recv(up, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<size_t>(n));
        if (action == Action::kForward) WriteAll(fd, response);
        // kDropResponse: the server applied the request; the client never hears.
      }
      if (up >= 0) ::close(up);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  std::erase(open_fds_, fd);
}

}  // namespace branchdb::client::testing
