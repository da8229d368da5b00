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
#include <httplib.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
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

#include "bench/bench_util.h"
#include "server/config.h"
#include "server/server.h"

namespace branchdb::bench {
namespace {

using nlohmann::json;

constexpr int kSlowloris = 200;
constexpr int kHogConnections = 16;
constexpr int64_t kRows = 10000;
constexpr const char* kLongQuery =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "load_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<httplib::Client> NewClient(int port, const std::string& token) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  if (!token.empty()) c->set_bearer_token_auth(token.c_str());
  c->set_read_timeout(60, 0);
  return c;
}

json Post(httplib::Client& c, const std::string& path, const json& body, int want) {
  auto r = c.Post(path.c_str(), body.dump(), "application/json");
  if (!r) Die("POST " + path + ": " + httplib::to_string(r.error()));
  if (r->status != want) Die("POST " + path + ": " + std::to_string(r->status) + " " + r->body);
  return json::parse(r->body, nullptr, false);
}

std::string Token(int port, const std::string& id, const std::string& secret) {
  httplib::Client c("127.0.0.1", port);
  c.set_basic_auth(id.c_str(), secret.c_str());
  auto r = c.Post("/oauth/token", "grant_type=client_credentials",
                  "application/x-www-form-urlencoded");
  if (!r || r->status != 200) Die("token: " + (r ? r->body : httplib::to_string(r.error())));
  return json::parse(r->body, nullptr, false)["access_token"].get<std::string>();
}

// A new OAuth client's token.
std::string NewClientToken(int port, httplib::Client& admin, const std::string& name) {
  json c = Post(admin, "/v1/clients", {{"name", name}, {"scopes", json::array({"sql:read", "sql:write"})}}, 201);
  return Token(port, c["client_id"], c["client_secret"]);
}

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
  Hogs(int port, const std::vector<std::string>& tokens) {
    for (int i = 0; i < kHogConnections; ++i) {
      threads_.emplace_back([this, port, i, token = tokens[i % tokens.size()]] {
        auto c = NewClient(port, token);
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

struct Latency {
  double p50 = 0, p99 = 0;
  size_t requests = 0, failures = 0;
};

Latency PointSelects(int port, const std::string& token, double seconds) {
  auto c = NewClient(port, token);
  std::mt19937_64 rng(42);
  std::vector<double> ms;
  size_t failures = 0;
  double end = NowSeconds() + seconds;
  while (NowSeconds() < end) {
    std::string body = R"({"sql":"SELECT v FROM t WHERE id = ?","params":[)" +
                       std::to_string(static_cast<int64_t>(rng() % kRows) + 1) + "]}";
    double t0 = NowSeconds();
    auto r = c->Post("/v1/projects/shop/branches/production/sql", body, "application/json");
    double t = (NowSeconds() - t0) * 1000;
    if (!r || r->status != 200) {
      ++failures;
      continue;
    }
    ms.push_back(t);
  }
  if (ms.empty()) Die("no point SELECT succeeded");
  return {Percentile(ms, 50), Percentile(ms, 99), ms.size(), failures};
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
  spdlog::set_level(spdlog::level::warn);
  ScratchDir dir("load_bench");
  server::Config config;
  config.listen = "127.0.0.1:0";
  config.data_dir = dir.path() + "/data";
  config.log_level = "warn";
  config.idle_timeout_seconds = 0;
  auto srv = server::ApiServer::Create(config, Env::Default());
  if (!srv.ok()) Die("create server: " + srv.status().ToString());
  auto port = (*srv)->Bind();
  if (!port.ok()) Die("bind: " + port.status().ToString());
  std::thread serve([&] { (void)(*srv)->Serve(); });

  auto creds = json::parse(
      *Env::Default()->ReadFileToString(config.data_dir + "/admin-credentials.json"), nullptr,
      false);
  std::string admin_token = Token(*port, creds["client_id"], creds["client_secret"]);
  auto admin = NewClient(*port, admin_token);
  for (const char* p : {"shop", "hog"}) Post(*admin, "/v1/projects", {{"name", p}}, 201);
  Post(*admin, "/v1/projects/shop/branches/production/sql",
       {{"sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL); "
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<" +
                    std::to_string(kRows) + ") INSERT INTO t SELECT i, 'value-' || i FROM n"}},
       200);
  for (int i = 0; i < kHogConnections; ++i) {
    Post(*admin, "/v1/projects/hog/branches",
         {{"name", "h" + std::to_string(i)}, {"parent", "production"}}, 201);
  }
  std::string polite = NewClientToken(*port, *admin, "polite");
  std::vector<std::string> hog_tokens;
  for (int i = 0; i < hog_clients; ++i) {
    hog_tokens.push_back(NewClientToken(*port, *admin, "hog" + std::to_string(i)));
  }

  PointSelects(*port, polite, 1);  // warm-up
  Latency unloaded = PointSelects(*port, polite, seconds);
  Latency loaded;
  int ran = 0, refused = 0, reopened = 0;
  {
    Slowloris slow(*port);
    Hogs hogs(*port, hog_tokens);
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the attack takes hold
    loaded = PointSelects(*port, polite, seconds);
    ran = hogs.ran();
    refused = hogs.refused();
    reopened = slow.reopened();
  }
  std::fprintf(stderr,
               "unloaded: %zu selects; loaded: %zu selects, %zu failed; hogs (%d OAuth "
               "client(s), %d connections): %d long queries ran to the timeout, %d refused "
               "(429); slowloris: %d connections, %d reopened after the server cut them\n",
               unloaded.requests, loaded.requests, loaded.failures, hog_clients,
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

  (*srv)->Stop();
  serve.join();
  srv->reset();
  return 0;
}

}  // namespace
}  // namespace branchdb::bench

int main() { return branchdb::bench::Main(); }
