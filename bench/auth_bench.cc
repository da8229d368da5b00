// auth_bench: what verifying a request's bearer token costs, with the
// verified-token cache (auth::AuthOptions::token_cache_entries, default) against
// without it (token_cache_entries = 0), in the same run, alternating rounds:
//   - a good token used again (an agent's loop: the same token on every
//     request; 64 tokens in turn, so that more than one entry is hot);
//   - a bad token sent again (a forged signature, or an expired token), the
//     flood a misconfigured or hostile client sends;
//   - the good tokens from 2 threads at once (the cache's shards).
// Each figure is the median over rounds of the process's CPU µs per
// Authenticate() call ("Bearer <token>" to principal), in process: the
// server's per-request auth CPU without HTTP around it. CPU time, not wall
// time, so that other load on the machine counts little. Ratio = without /
// with (> 1: the cache is cheaper).
// Environment: BRANCHDB_BENCH_SECONDS (default 5) for all rounds together,
// BRANCHDB_BENCH_DIR the scratch directory's base (bench_util.h).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

#include <nlohmann/json.hpp>

#include "auth/auth.h"
#include "bench/bench_util.h"

namespace branchdb::bench {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "auth_bench: %s\n", what.c_str());
  std::exit(1);
}

constexpr int kTokens = 64;
constexpr int kRounds = 10;

struct Service {
  std::unique_ptr<auth::AuthService> svc;
  std::vector<std::string> headers;  // "Bearer <token>" of kTokens good tokens
  std::string forged;                // a good token with one signature character changed
};

Service Open(const std::string& dir, size_t cache_entries) {
  auth::AuthOptions o;
  o.data_dir = dir;
  o.token_cache_entries = cache_entries;
  auto svc = auth::AuthService::Open(Env::Default(), o);
  if (!svc.ok()) Die("open: " + svc.status().ToString());
  Service s{std::move(*svc), {}, {}};
  auto client = s.svc->CreateClient({"bench", {auth::Scope::kSqlWrite}, {}});
  if (!client.ok()) Die("client: " + client.status().ToString());
  auth::OAuthRequest r;
  r.form = {{"grant_type", "client_credentials"},
            {"client_id", client->info.client_id},
            {"client_secret", client->client_secret}};
  for (int i = 0; i < kTokens; ++i) {
    auth::HttpReply reply = s.svc->TokenEndpoint(r);
    if (reply.status != 200) Die("token endpoint: " + reply.body);
    s.headers.push_back("Bearer " +
                        nlohmann::json::parse(reply.body)["access_token"].get<std::string>());
  }
  s.forged = s.headers[0];
  char& c = s.forged[s.forged.size() - 10];
  c = c == 'A' ? 'B' : 'A';
  return s;
}

// CPU seconds used by the process so far.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// CPU µs per Authenticate() over `seconds`, from `threads` threads, each
// cycling through `headers`; dies when a call's outcome is not `expect_ok`.
double Round(auth::AuthService& svc, const std::vector<std::string>& headers, bool expect_ok,
             double seconds, int threads) {
  std::atomic<uint64_t> calls{0};
  std::atomic<bool> wrong{false};
  const double start = NowSeconds();
  const double cpu_start = CpuSeconds();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      uint64_t n = 0;
      for (size_t i = t; NowSeconds() - start < seconds; ++i, ++n) {
        auth::BearerError e;
        bool ok = svc.Authenticate(headers[i % headers.size()], &e).has_value();
        if (ok != expect_ok) wrong = true;
      }
      calls += n;
    });
  }
  for (auto& th : pool) th.join();
  if (wrong) Die("a verification had the wrong outcome");
  return (CpuSeconds() - cpu_start) * 1e6 / static_cast<double>(calls.load());
}

void Compare(const std::string& metric, Service& with, Service& without,
             const std::vector<std::string>& with_headers,
             const std::vector<std::string>& without_headers, bool expect_ok, double seconds,
             int threads, const std::string& target, double target_ratio) {
  std::vector<double> cached, uncached;
  const double per_round = seconds / kRounds / 2;
  for (int r = 0; r < kRounds; ++r) {  // alternating, so that drift hits both alike
    cached.push_back(Round(*with.svc, with_headers, expect_ok, per_round, threads));
    uncached.push_back(Round(*without.svc, without_headers, expect_ok, per_round, threads));
  }
  Metric m;
  m.bench = "auth";
  m.metric = metric;
  m.value = Percentile(cached, 50);
  m.unit = "cpu_us/request";
  m.baseline_name = "no token cache";
  m.baseline = Percentile(uncached, 50);
  m.lower_is_better = true;
  if (!target.empty()) {
    m.target = target;
    m.met = *m.baseline / m.value >= target_ratio;
  }
  m.extra = {{"threads", threads}};
  Emit(m);
}

void Run() {
  ScratchDir dir("auth_bench");
  const char* env_seconds = std::getenv("BRANCHDB_BENCH_SECONDS");
  const double seconds = env_seconds != nullptr ? std::atof(env_seconds) : 5;
  Service with = Open(dir.path() + "/with", auth::AuthOptions().token_cache_entries);
  Service without = Open(dir.path() + "/without", 0);
  Compare("verify_reused_token", with, without, with.headers, without.headers, true, seconds, 1,
          ">= 10x cheaper", 10);
  Compare("verify_reused_token_2_threads", with, without, with.headers, without.headers, true,
          seconds, 2, "", 0);
  Compare("verify_repeated_forged_token", with, without, {with.forged}, {without.forged}, false,
          seconds, 1, "", 0);
  auth::AuthStats s = with.svc->Stats();
  std::fprintf(stderr,
               "auth_bench: with the cache: %llu signature checks, %llu hits, %llu misses, %llu "
               "hits on bad tokens\n",
               static_cast<unsigned long long>(s.signature_checks),
               static_cast<unsigned long long>(s.cache_hits),
               static_cast<unsigned long long>(s.cache_misses),
               static_cast<unsigned long long>(s.rejected_hits));
}

}  // namespace
}  // namespace branchdb::bench

int main() {
  branchdb::bench::Run();
  return 0;
}
