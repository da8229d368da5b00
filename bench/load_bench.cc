// load_bench: availability under hostile load (hardening issue #13, item 8),
// against a real ApiServer in this process on 127.0.0.1, plain HTTP, default
// limits (docs/config.md):
//   - unloaded: one well-behaved client (its own OAuth client) sends point
//     SELECTs (POST .../sql "SELECT v FROM t WHERE id = ?") back to back on a
//     keep-alive connection for BRANCHDB_BENCH_SECONDS; p50/p99 latency;
//   - loaded: the same, while 200 slowloris connections trickle header lines
//     (one every second each; reopened when the server cuts them) and 16
//     connections of another OAuth client ("hog") run the longest allowed
//     query (a recursive CTE until sql.statement_timeout_ms) in a loop, each
//     on a branch of its own of another project, honouring 429's Retry-After;
//   - BRANCHDB_BENCH_HOG_CLIENTS=16 makes the hogs 16 distinct OAuth clients
//     (so the per-client SQL limit does not hold them; only the global one).
// Target: loaded p99 <= 5x unloaded p99. The SELECTs' errors are counted
// (a refused or failed request counts as a failure, not as a latency).
// The access log is off (level warn).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_http.h"
#include "bench/bench_util.h"

namespace branchdb::bench {
namespace {

using nlohmann::json;

constexpr int kSlowloris = 200;
constexpr int kHogConnections = 16;
constexpr int64_t kRows = 10000;
constexpr const char* kLongQuery =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  ::send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n", 32, MSG_NOSIGNAL);
  return fd;
}

// kSlowloris connections, each sending a header line every second; a
// connection the server cut is reopened.
class Slowloris {
 public:
  explicit Slowloris(int port) : port_(port) {
    for (int i = 0; i < kSlowloris; ++i) fds_.push_back(Connect(port));
    thread_ = std::thread([this] {
      while (!stop_) {
        for (int& fd : fds_) {
          if (fd < 0 || ::send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) <= 0) {
            if (fd >= 0) ::close(fd);
            fd = Connect(port_);
            ++reopened_;
          }
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    });
  }
  ~Slowloris() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  int reopened() const { return reopened_; }

 private:
  const int port_;
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<int> reopened_{0};
  std::thread thread_;
};

// Connections running the long query in a loop until destroyed.
class Hogs {
 public:
  Hogs(const BenchServer& srv, const std::vector<std::string>& tokens) {
    for (int i = 0; i < kHogConnections; ++i) {
      threads_.emplace_back([this, &srv, i, token = tokens[i % tokens.size()]] {
        auto c = srv.Client(token);
        std::string body = json({{"sql", kLongQuery}, {"read_only", true}}).dump();
        // A branch each: requests on one branch are serialized, so that the
        // long queries really run at once (as far as the limits let them).
        std::string path = "/v1/projects/hog/branches/h" + std::to_string(i) + "/sql";
        while (!stop_) {
          auto r = c->Post(path.c_str(), body, "application/json");
          if (r && r->status == 408) {
            ++ran_;
          } else if (r && r->status == 429) {
            ++refused_;
            std::this_thread::sleep_for(std::chrono::seconds(1));  // Retry-After
          }
        }
      });
    }
  }
  ~Hogs() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }
  int ran() const { return ran_; }
  int refused() const { return refused_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ran_{0}, refused_{0};
  std::vector<std::thread> threads_;
};

LatencySummary PointSelects(const BenchServer& srv, const std::string& token, double seconds) {
  auto c = srv.Client(token);
  std::mt19937_64 rng(42);
  std::vector<double> ms;
  auto one = [&] {
    std::string body = PointSelectBody(static_cast<int64_t>(rng() % kRows) + 1);
    auto r = c->Post("/v1/projects/shop/branches/production/sql", body, "application/json");
    return r && r->status == 200;
  };
  const double end = NowSeconds() + seconds;
  size_t failures = TimeCalls([&] { return NowSeconds() < end; }, one, &ms);
  if (ms.empty()) srv.Die("no point SELECT succeeded");
  return Summarize(ms, failures);
}

void Report(const std::string& name, double value, const std::string& unit,
            std::optional<double> baseline = std::nullopt, const std::string& target = "",
            std::optional<bool> met = std::nullopt) {
  Metric m;
  m.bench = "load";
  m.metric = name;
  m.value = value;
  m.unit = unit;
  m.lower_is_better = true;
  if (baseline) {
    m.baseline_name = "unloaded_point_select_p99";
    m.baseline = baseline;
  }
  m.target = target;
  m.met = met;
  Emit(m);
}

int Main() {
  double seconds = 10;
  if (const char* s = std::getenv("BRANCHDB_BENCH_SECONDS")) seconds = std::max(1.0, std::atof(s));
  int hog_clients = 1;
  if (const char* s = std::getenv("BRANCHDB_BENCH_HOG_CLIENTS")) {
    hog_clients = std::max(1, std::min(kHogConnections, std::atoi(s)));
  }
  BenchServer srv("load_bench");
  auto admin = srv.Client(srv.admin_token());
  for (const char* p : {"shop", "hog"}) srv.Post(*admin, "/v1/projects", {{"name", p}}, 201);
  srv.Post(*admin, "/v1/projects/shop/branches/production/sql",
           {{"sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL); "
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<" +
                        std::to_string(kRows) + ") INSERT INTO t SELECT i, 'value-' || i FROM n"}},
           200);
  for (int i = 0; i < kHogConnections; ++i) {
    srv.Post(*admin, "/v1/projects/hog/branches",
             {{"name", "h" + std::to_string(i)}, {"parent", "production"}}, 201);
  }
  std::string polite = srv.NewClientToken("polite");
  std::vector<std::string> hog_tokens;
  for (int i = 0; i < hog_clients; ++i) {
    hog_tokens.push_back(srv.NewClientToken("hog" + std::to_string(i)));
  }

  PointSelects(srv, polite, 1);  // warm-up
  LatencySummary unloaded = PointSelects(srv, polite, seconds);
  LatencySummary loaded;
  int ran = 0, refused = 0, reopened = 0;
  {
    Slowloris slow(srv.port());
    Hogs hogs(srv, hog_tokens);
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the attack takes hold
    loaded = PointSelects(srv, polite, seconds);
    ran = hogs.ran();
    refused = hogs.refused();
    reopened = slow.reopened();
  }
  std::fprintf(stderr,
               "unloaded: %zu selects; loaded: %zu selects, %zu failed; hogs (%d OAuth "
               "client(s), %d connections): %d long queries ran to the timeout, %d refused "
               "(429); slowloris: %d connections, %d reopened after the server cut them\n",
               unloaded.count, loaded.count, loaded.failures, hog_clients,
               kHogConnections, ran, refused, kSlowloris, reopened);
  std::string tag = hog_clients == 1 ? "" : "_" + std::to_string(hog_clients) + "_hog_clients";
  Report("point_select_p50_unloaded", unloaded.p50, "ms");
  Report("point_select_p99_unloaded", unloaded.p99, "ms");
  Report("point_select_p50_under_attack" + tag, loaded.p50, "ms");
  double ratio = loaded.p99 / unloaded.p99;
  Report("point_select_p99_under_attack" + tag, loaded.p99, "ms", unloaded.p99,
         "<= 5x unloaded p99 (200 slowloris + 16 longest queries)",
         ratio <= 5 && loaded.failures == 0);
  Report("point_select_failures_under_attack" + tag, static_cast<double>(loaded.failures),
         "requests");

  return 0;
}

}  // namespace
}  // namespace branchdb::bench

int main() { return branchdb::bench::Main(); }
