// server_bench: the HTTP service end to end (issue 6), against a real ApiServer
// started in this process on 127.0.0.1 (any free port), over plain HTTP:
//   - point-SELECT requests per second and p50/p99 latency with 1 and with 16
//     concurrent keep-alive clients (one httplib::Client per thread, each its
//     own OAuth client: sql.max_concurrent_per_client is 4), each
//     request POST /v1/projects/{p}/branches/production/sql
//     {"sql":"SELECT v FROM t WHERE id = ?","params":[k]} with a random k.
//     Baseline: the same SELECT, prepared once, stepped in this process on a
//     read-only VFS connection to the same branch (Catalog::OpenBranchConnection)
//     with the same random keys; ratio = HTTP rate / in-process rate (the share
//     of the in-process rate that survives HTTP, JSON, auth and the compute
//     lease). Target: >= 10,000 requests/s with 16 clients.
//   - cold start: POST .../compute/suspend, then time the first SQL request
//     (the compute reopens its connection); p50/p99 over the cycles. Target:
//     p50 < 5 ms. Its baseline is a PUBLISHED figure, NOT measured here: Neon /
//     Lakebase state cold starts of "a few hundred milliseconds" (300 ms used).
// The server's access log (one info line per request) is turned off (level
// warn) so that it does not flood stderr; the numbers exclude that cost.
// Environment: BRANCHDB_BENCH_SECONDS = seconds per throughput phase (default 5),
// BRANCHDB_BENCH_ROWS = rows in the table (default 100000), BRANCHDB_BENCH_DIR
// (bench_util.h).
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench/bench_http.h"
#include "bench/bench_util.h"
#include "catalog/catalog.h"
#include "server/services.h"

namespace branchdb::bench {
namespace {

using nlohmann::json;

constexpr char kProgram[] = "server_bench";
constexpr char kProject[] = "bench";
constexpr char kBranchPath[] = "/v1/projects/bench/branches/production";
constexpr char kSelect[] = "SELECT v FROM t WHERE id = ?";
constexpr double kTargetRate = 10000;  // requests/s with 16 clients
constexpr double kTargetColdP50 = 5;   // ms
constexpr double kPublishedColdStart = 300;  // ms, Neon/Lakebase "a few hundred ms"

[[noreturn]] void Die(const std::string& what) { bench::Die(kProgram, what); }

struct Load {
  double rate = 0;  // requests/s
  LatencySummary latency;
};

// One thread per token (an OAuth client each, so that the per-client SQL
// limit does not refuse them), each with its own keep-alive client, send
// point SELECTs for `seconds`; every answer is checked (status 200, one row).
Load RunHttp(const BenchServer& srv, const std::vector<std::string>& tokens, double seconds,
             int64_t rows) {
  const int clients = static_cast<int>(tokens.size());
  std::vector<std::vector<double>> lat(clients);
  std::atomic<bool> failed{false};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::string error;
  std::mutex error_mu;
  std::vector<std::thread> threads;
  const std::string path = std::string(kBranchPath) + "/sql";
  double start = 0, end = 0;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto c = srv.Client(tokens[t]);
      std::mt19937_64 rng(1000 + t);
      auto one = [&]() -> bool {
        std::string body = PointSelectBody(static_cast<int64_t>(rng() % rows) + 1);
        auto r = c->Post(path.c_str(), body, "application/json");
        if (!r || r->status != 200 || r->body.find("\"rows\":[[") == std::string::npos) {
          std::lock_guard<std::mutex> l(error_mu);
          if (error.empty()) {
            error = !r ? httplib::to_string(r.error())
                       : std::to_string(r->status) + " " + r->body.substr(0, 300);
          }
          failed = true;
          return false;
        }
        return true;
      };
      for (int i = 0; i < 20 && one(); ++i) {  // warm-up: connection, caches
      }
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      TimeCalls([&] { return go.load() && !failed.load(); }, one, &lat[t]);
    });
  }
  while (ready.load() < clients && !failed.load()) std::this_thread::yield();
  start = NowSeconds();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  go = false;
  end = NowSeconds();
  for (auto& th : threads) th.join();
  if (failed) Die("SQL request failed: " + error);
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  Load l;
  l.latency = Summarize(all);
  l.rate = static_cast<double>(all.size()) / (end - start);
  return l;
}

// The baseline: the same statement prepared once on an in-process VFS
// connection to the branch, same key sequence as client 0, for `seconds`.
Load RunInProcess(catalog::Catalog& cat, double seconds, int64_t rows) {
  catalog::ConnectionRequest req;
  req.read_only = true;
  auto db = cat.OpenBranchConnection(kProject, "production", req);
  if (!db.ok()) Die("open branch connection: " + db.status().ToString());
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db->get(), kSelect, -1, &st, nullptr) != SQLITE_OK) Die("prepare");
  std::mt19937_64 rng(1000);
  std::vector<double> lat;
  size_t bytes = 0;
  auto one = [&] {
    sqlite3_bind_int64(st, 1, static_cast<int64_t>(rng() % rows) + 1);
    if (sqlite3_step(st) != SQLITE_ROW) Die("in-process select: no row");
    bytes += static_cast<size_t>(sqlite3_column_bytes(st, 0));
    (void)sqlite3_column_text(st, 0);
    sqlite3_reset(st);
    return true;
  };
  for (int i = 0; i < 1000; ++i) one();  // warm the page cache, as the HTTP warm-up does
  const double start = NowSeconds(), end = start + seconds;
  TimeCalls([&] { return NowSeconds() < end; }, one, &lat);
  const double elapsed = NowSeconds() - start;
  sqlite3_finalize(st);
  if (bytes == 0) Die("in-process select read nothing");
  Load l;
  l.latency = Summarize(lat);
  l.rate = static_cast<double>(lat.size()) / elapsed;
  return l;
}

void ReportLoad(const std::string& tag, const Load& h, const Load& base, bool with_target) {
  Metric rate;
  rate.bench = "server";
  rate.metric = "http_point_select_rate_" + tag;
  rate.value = h.rate;
  rate.unit = "requests/s";
  rate.baseline_name = "in_process_point_select";
  rate.baseline = base.rate;
  if (with_target) {
    rate.target = ">= 10000 requests/s";
    rate.met = h.rate >= kTargetRate;
  }
  Emit(rate);
  for (auto [name, v, b] : {std::tuple{"p50", h.latency.p50, base.latency.p50},
                            std::tuple{"p99", h.latency.p99, base.latency.p99}}) {
    Metric m;
    m.bench = "server";
    m.metric = std::string("http_point_select_") + name + "_" + tag;
    m.value = v;
    m.unit = "ms";
    m.baseline_name = std::string("in_process_point_select_") + name;
    m.baseline = b;
    m.lower_is_better = true;
    Emit(m);
  }
}

int Main() {
  double seconds = 5;
  if (const char* s = std::getenv("BRANCHDB_BENCH_SECONDS")) seconds = std::max(0.2, std::atof(s));
  int64_t rows = 100000;
  if (const char* s = std::getenv("BRANCHDB_BENCH_ROWS")) rows = std::max<int64_t>(1, std::atoll(s));
  const int kColdCycles = 50;

  BenchServer srv(kProgram);
  const std::string& token = srv.admin_token();
  auto admin = srv.Client(token);
  srv.Post(*admin, "/v1/projects", {{"name", kProject}}, 201);
  double t0 = NowSeconds();
  srv.Post(*admin, std::string(kBranchPath) + "/sql",
           {{"sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL); "
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<" +
                        std::to_string(rows) +
                        ") INSERT INTO t SELECT i, 'value-' || i || '-' || hex(randomblob(12)) "
                        "FROM n"}},
           200);
  json count =
      srv.Post(*admin, std::string(kBranchPath) + "/sql", {{"sql", "SELECT count(*) FROM t"}}, 200);
  if (count["results"][0]["rows"][0][0] != rows) Die("table: " + count.dump());
  std::fprintf(stderr, "server on port %d, %lld rows loaded in %.2f s, %.1f s per phase\n",
               srv.port(), static_cast<long long>(rows), NowSeconds() - t0, seconds);

  // Throughput and latency.
  Load base = RunInProcess(*srv.server().services().catalog, seconds, rows);
  std::vector<std::string> readers;
  for (int i = 0; i < 16; ++i) readers.push_back(srv.NewClientToken("reader" + std::to_string(i)));
  Load one = RunHttp(srv, {readers[0]}, seconds, rows);
  Load sixteen = RunHttp(srv, readers, seconds, rows);
  std::fprintf(stderr, "requests: in-process %zu, 1 client %zu, 16 clients %zu\n",
               base.latency.count, one.latency.count, sixteen.latency.count);
  Metric in_proc;
  in_proc.bench = "server";
  in_proc.metric = "in_process_point_select_rate";
  in_proc.value = base.rate;
  in_proc.unit = "selects/s";
  Emit(in_proc);
  ReportLoad("1_client", one, base, false);
  ReportLoad("16_clients", sixteen, base, true);

  // Cold start: suspend, then time the first SQL request.
  const std::string compute_path = std::string(kBranchPath) + "/compute";
  json before = json::parse(admin->Get(compute_path.c_str())->body, nullptr, false);
  std::mt19937_64 rng(77);
  std::vector<double> cold_ms, server_cold_ms;
  for (int i = 0; i < kColdCycles; ++i) {
    json s = srv.Post(*admin, compute_path + "/suspend", json::object(), 200);
    if (s["state"] != "suspended") Die("suspend did not suspend: " + s.dump());
    std::string body = PointSelectBody(static_cast<int64_t>(rng() % rows) + 1);
    double start = NowSeconds();
    auto r = admin->Post((std::string(kBranchPath) + "/sql").c_str(), body, "application/json");
    double ms = (NowSeconds() - start) * 1000;
    if (!r || r->status != 200) Die("cold SQL request failed");
    cold_ms.push_back(ms);
    json info = json::parse(admin->Get(compute_path.c_str())->body, nullptr, false);
    if (info["last_cold_start_ms"].is_number()) {
      server_cold_ms.push_back(info["last_cold_start_ms"].get<double>());
    }
  }
  json after = json::parse(admin->Get(compute_path.c_str())->body, nullptr, false);
  int64_t cold_starts = after["cold_starts"].get<int64_t>() - before["cold_starts"].get<int64_t>();
  if (cold_starts != kColdCycles) {
    Die("expected " + std::to_string(kColdCycles) + " cold starts, the server counted " +
        std::to_string(cold_starts));
  }
  Metric cold;
  cold.bench = "server";
  cold.metric = "cold_start_first_query_p50";
  cold.value = Percentile(cold_ms, 50);
  cold.unit = "ms";
  cold.baseline_name = "neon_published_cold_start (published figure, not measured)";
  cold.baseline = kPublishedColdStart;
  cold.lower_is_better = true;
  cold.target = "< 5 ms";
  cold.met = cold.value < kTargetColdP50;
  Emit(cold);
  cold.metric = "cold_start_first_query_p99";
  cold.value = Percentile(cold_ms, 99);
  cold.target.clear();
  cold.met.reset();
  Emit(cold);
  Metric server_open;
  server_open.bench = "server";
  server_open.metric = "cold_start_server_side_open_p50";
  server_open.value = Percentile(server_cold_ms, 50);
  server_open.unit = "ms";
  server_open.lower_is_better = true;
  Emit(server_open);

  return 0;
}

}  // namespace
}  // namespace branchdb::bench

int main() { return branchdb::bench::Main(); }
