// Pipelined durable commits over real HTTP (issue #20): eight clients insert
// concurrently on ONE branch of a real server (a forked child: the compute's
// connection commits without waiting for the fsync, hands the branch on, and
// answers once the commit is durable).
//   - every acknowledged INSERT is there, and is a checkpoint whose state
//     holds its row;
//   - kill -9 in the middle of such a run loses nothing acknowledged: after a
//     restart every acknowledged row and checkpoint is there, each client's
//     rows are a prefix of what it sent (nothing built on a missing commit),
//     with at most its one unacknowledged insert in flight beyond it.
// BRANCHDB_CRASH_CYCLES (default 4) sets the kill cycles, BRANCHDB_SEED the
// seed (printed).
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "server/config.h"
#include "server/server.h"
#include "tests/crash/server_child.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

namespace branchdb::testing {
namespace {

using nlohmann::json;

constexpr int kClients = 8;

// The server in a child process; one token is shared by the eight clients.
class Child : public ServerChild {
 public:
  explicit Child(const std::string& data_dir)
      : ServerChild(data_dir,
                    [](server::Config& c) { c.sql_max_concurrent_per_client = kClients; }) {}
};

const char kSqlPath[] = "/v1/projects/acme/branches/production/sql";

// One SQL request; the parsed answer, or nullopt when the request failed
// (connection lost) or answered an error (body in *error).
std::optional<json> Sql(httplib::Client& c, const httplib::Headers& auth, const json& body,
                        std::string* error = nullptr) {
  auto r = c.Post(kSqlPath, auth, body.dump(), "application/json");
  if (!r) return std::nullopt;
  if (r->status != 200) {
    if (error != nullptr) *error = std::to_string(r->status) + " " + r->body;
    return std::nullopt;
  }
  return json::parse(r->body);
}

int64_t CountRow(httplib::Client& c, const httplib::Headers& auth, int client, int seq,
                 std::optional<int64_t> lsn) {
  json body = {{"sql", "SELECT count(*) FROM t WHERE client = ? AND seq = ?"},
               {"params", {client, seq}},
               {"read_only", true}};
  if (lsn) body["lsn"] = *lsn;
  std::string error;
  auto out = Sql(c, auth, body, &error);
  INFO(error);
  REQUIRE(out);
  return (*out)["results"][0]["rows"][0][0].get<int64_t>();
}

// Every checkpoint LSN of production (all pages of the list).
std::set<int64_t> CheckpointLsns(httplib::Client& c, const httplib::Headers& auth) {
  std::set<int64_t> out;
  std::string cursor;
  for (;;) {
    std::string path = "/v1/projects/acme/branches/production/checkpoints?limit=1000";
    if (!cursor.empty()) path += "&cursor=" + cursor;
    auto r = c.Get(path.c_str(), auth);
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
    json page = json::parse(r->body);
    for (const json& cp : page["checkpoints"]) out.insert(cp["lsn"].get<int64_t>());
    if (page["next"].is_null()) break;
    cursor = page["next"].get<std::string>();
  }
  return out;
}

// An acknowledged insert: who sent which row, and the checkpoint it made.
struct Ack {
  int client = 0;
  int seq = 0;
  int64_t lsn = 0;
};

// kClients threads inserting (client_base + i, seq 0, 1, ...) until `stop`
// or per_client rows, or until a request fails (the server was killed).
// Returns every acknowledged insert.
std::vector<Ack> InsertConcurrently(int port, const std::string& token, int client_base,
                                    int per_client, std::atomic<bool>* stop,
                                    std::vector<std::string>* errors) {
  std::mutex mu;
  std::vector<Ack> acks;
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(60);
      httplib::Headers auth{{"Authorization", "Bearer " + token}};
      const int client = client_base + i;
      for (int seq = 0; seq < per_client && !stop->load(); ++seq) {
        std::string error;
        auto out = Sql(c, auth,
                       {{"sql", "INSERT INTO t(client, seq) VALUES (?, ?)"},
                        {"params", {client, seq}}},
                       &error);
        std::lock_guard<std::mutex> lock(mu);
        if (!out) {
          if (!error.empty()) errors->push_back(error);
          return;
        }
        acks.push_back(Ack{client, seq, (*out)["lsn"].get<int64_t>()});
      }
    });
  }
  for (auto& t : threads) t.join();
  return acks;
}

struct Fixture {
  TempDir dir{FastTestDirBase()};
  std::string data_dir = dir.Sub("data");
  json creds;

  // Starts a first server: project acme, table t.
  Fixture() {
    Child first(data_dir);
    std::ifstream in(data_dir + "/admin-credentials.json");
    creds = json::parse(in);
    httplib::Client c("127.0.0.1", first.port());
    httplib::Headers auth{{"Authorization", "Bearer " + Token(first.port(), creds)}};
    auto r = c.Post("/v1/projects", auth, R"({"name":"acme"})", "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 201);
    REQUIRE(Sql(c, auth,
                {{"sql",
                  "CREATE TABLE t(client INTEGER, seq INTEGER, PRIMARY KEY(client, seq))"}}));
  }
};

}  // namespace

TEST_CASE("8 clients inserting concurrently on one branch: every acknowledged INSERT is there "
          "and is a checkpoint holding its row",
          "[crash][sql]") {
  Fixture f;
  Child server(f.data_dir);
  const std::string token = Token(server.port(), f.creds);
  std::atomic<bool> stop{false};
  std::vector<std::string> errors;
  constexpr int kPerClient = 12;
  std::vector<Ack> acks = InsertConcurrently(server.port(), token, 0, kPerClient, &stop, &errors);
  INFO(errors.size() << " errors, first: " << (errors.empty() ? "" : errors[0]));
  REQUIRE(errors.empty());
  REQUIRE(acks.size() == kClients * kPerClient);

  httplib::Client c("127.0.0.1", server.port());
  httplib::Headers auth{{"Authorization", "Bearer " + token}};
  auto count = Sql(c, auth, {{"sql", "SELECT count(*) FROM t"}});
  REQUIRE(count);
  CHECK((*count)["results"][0]["rows"][0][0] == kClients * kPerClient);
  // One checkpoint per INSERT: distinct LSNs, each listed, each state holding its row.
  std::set<int64_t> lsns;
  for (const Ack& a : acks) lsns.insert(a.lsn);
  CHECK(lsns.size() == acks.size());
  const std::set<int64_t> checkpoints = CheckpointLsns(c, auth);
  for (const Ack& a : acks) {
    INFO("client " << a.client << " seq " << a.seq << " lsn " << a.lsn);
    CHECK(checkpoints.count(a.lsn) == 1);
    CHECK(CountRow(c, auth, a.client, a.seq, a.lsn) == 1);
  }
}

TEST_CASE("kill -9 during 8 clients' pipelined inserts on one branch loses no acknowledged "
          "INSERT",
          "[crash][sql]") {
  const uint64_t seed = TestSeed("sql_kill9_test");
  const int cycles = static_cast<int>(EnvU64("BRANCHDB_CRASH_CYCLES", 4));
  std::printf("sql_kill9_test cycles=%d\n", cycles);
  std::fflush(stdout);  // before the forks
  std::mt19937_64 rng(seed);
  Fixture f;
  size_t total_acked = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const int client_base = (cycle + 1) * 100;
    const int delay_ms = 50 + static_cast<int>(rng() % 400);
    INFO("cycle " << cycle << " killed after " << delay_ms << " ms (seed " << seed << ")");
    std::vector<Ack> acks;
    {
      Child server(f.data_dir);
      const std::string token = Token(server.port(), f.creds);
      std::atomic<bool> stop{false};
      std::vector<std::string> errors;
      std::thread killer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        server.Kill();
      });
      acks = InsertConcurrently(server.port(), token, client_base, 1 << 20, &stop, &errors);
      killer.join();
      INFO("first error: " << (errors.empty() ? "" : errors[0]));
      CHECK(errors.empty());  // a killed server answers nothing, never an error
    }
    total_acked += acks.size();
    Child server(f.data_dir);
    httplib::Client c("127.0.0.1", server.port());
    httplib::Headers auth{{"Authorization", "Bearer " + Token(server.port(), f.creds)}};
    auto rows = Sql(c, auth,
                    {{"sql", "SELECT client, seq FROM t WHERE client >= ? AND client < ?"},
                     {"params", {client_base, client_base + kClients}}});
    REQUIRE(rows);
    std::map<int, std::set<int>> present;
    for (const json& row : (*rows)["results"][0]["rows"]) {
      present[row[0].get<int>()].insert(row[1].get<int>());
    }
    std::map<int, int> acked_upto;  // client -> highest acknowledged seq
    for (const Ack& a : acks) {
      INFO("client " << a.client << " seq " << a.seq << " lsn " << a.lsn);
      CHECK(present[a.client].count(a.seq) == 1);
      acked_upto[a.client] = std::max(acked_upto.count(a.client) ? acked_upto[a.client] : -1,
                                      a.seq);
    }
    for (const auto& [client, seqs] : present) {
      INFO("client " << client);
      // A prefix of what it sent (its inserts are sequential): 0..k, and at
      // most one (the one in flight at the kill) past its acknowledged ones.
      CHECK(*seqs.rbegin() == static_cast<int>(seqs.size()) - 1);
      const int upto = acked_upto.count(client) ? acked_upto[client] : -1;
      CHECK(*seqs.rbegin() <= upto + 1);
    }
    const std::set<int64_t> checkpoints = CheckpointLsns(c, auth);
    for (const Ack& a : acks) CHECK(checkpoints.count(a.lsn) == 1);
  }
  std::printf("sql_kill9_test: %zu acknowledged inserts over %d kills\n", total_acked, cycles);
  CHECK(total_acked > 0);
}

}  // namespace branchdb::testing
