// Commit counts under kill -9 (issue #20): the guard counts acknowledged
// commits in memory and its thread flushes them to ledger.db once a second,
// off the commit's path. Against a real server in a forked child:
//   - the counts reach ledger.db while the server runs (read by this process
//     from the file itself, no shutdown in between);
//   - kill -9 after more commits loses at most those not yet flushed and
//     never counts one twice: after a restart the usage's "commits" lies
//     between what the ledger held before the kill and what was acknowledged.
// BRANCHDB_CRASH_CYCLES (default 3) sets the kill cycles.
#include <httplib.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
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

// A client of one server, with the admin's token.
struct Api {
  Api(int port, const json& creds)
      : c("127.0.0.1", port), auth{{"Authorization", "Bearer " + Token(port, creds)}} {}

  json Call(const std::string& method, const std::string& path, const json& body = nullptr) {
    auto r = method == "GET" ? c.Get(path.c_str(), auth)
                             : c.Post(path.c_str(), auth, body.dump(), "application/json");
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status / 100 == 2);
    return json::parse(r->body);
  }
  void Insert() {
    Call("POST", "/v1/projects/acme/branches/production/sql",
         {{"sql", "INSERT INTO t VALUES (1)"}});
  }
  int64_t Commits() { return Call("GET", "/v1/projects/acme/usage")["commits"].get<int64_t>(); }

  httplib::Client c;
  httplib::Headers auth;
};

// The commits ledger.db holds (all projects: there is one), read from the
// file while the server runs; -1 when it cannot be read now.
int64_t LedgerCommits(const std::string& data_dir) {
  sqlite3* db = nullptr;
  int64_t out = -1;
  if (sqlite3_open_v2((data_dir + "/ledger.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(commits), 0) FROM commit_counts", -1, &s,
                           nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      out = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return out;
}

// Waits (at most a minute: a liveness bound, not a timing check) until the
// ledger holds `want` commits; returns what it holds last.
int64_t AwaitLedgerCommits(const std::string& data_dir, int64_t want) {
  int64_t got = -1;
  for (int i = 0; i < 600 && got != want; ++i) {
    got = LedgerCommits(data_dir);
    if (got != want) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return got;
}

}  // namespace

TEST_CASE("commit counts reach ledger.db while the server runs; kill -9 loses at most the "
          "unflushed ones and never counts one twice",
          "[crash][guard]") {
  const int cycles = static_cast<int>(EnvU64("BRANCHDB_CRASH_CYCLES", 3));
  TempDir dir{FastTestDirBase()};
  const std::string data_dir = dir.Sub("data");
  json creds;
  int64_t acknowledged = 0;  // commits acknowledged and not lost to a kill
  {
    ServerChild first(data_dir);
    std::ifstream in(data_dir + "/admin-credentials.json");
    creds = json::parse(in);
    Api api(first.port(), creds);
    api.Call("POST", "/v1/projects", {{"name", "acme"}});
    api.Call("POST", "/v1/projects/acme/branches/production/sql",
             {{"sql", "CREATE TABLE t(a)"}});
    acknowledged = 1;
  }  // killed: the CREATE TABLE's count may be lost too
  for (int cycle = 0; cycle < cycles; ++cycle) {
    INFO("cycle " << cycle);
    ServerChild server(data_dir);
    Api api(server.port(), creds);
    // What survived the last kill: never more than was acknowledged; after
    // the first, a server that committed nothing lost nothing.
    const int64_t survived = api.Commits();
    if (cycle == 0) {
      CHECK(survived <= acknowledged);
    } else {
      CHECK(survived == acknowledged);
    }
    acknowledged = survived;
    for (int i = 0; i < 10; ++i) api.Insert();
    acknowledged += 10;
    CHECK(api.Commits() == acknowledged);  // counted at once, flushed or not
    // The flusher writes them without a shutdown.
    CHECK(AwaitLedgerCommits(data_dir, acknowledged) == acknowledged);
    for (int i = 0; i < 10; ++i) api.Insert();
    const int64_t flushed = acknowledged;
    acknowledged += 10;
    server.Kill();
    ServerChild again(data_dir);
    Api after(again.port(), creds);
    const int64_t now = after.Commits();
    CHECK(now >= flushed);
    CHECK(now <= acknowledged);
    std::printf("usage_kill9_test cycle %d: %lld of the last 10 unflushed commits survived\n",
                cycle, static_cast<long long>(now - flushed));
    acknowledged = now;
    again.Kill();
  }
}

}  // namespace branchdb::testing
