// A real kill -9 test of import (issue #13, item 13: an import is atomic).
// Each cycle forks a child running a real ApiServer (transfer buffer of two
// pages, so an import is dozens of store commits), uploads a database over a
// raw socket and SIGKILLs the child at a random point: after a random prefix
// of the body, or after all of it with a random delay (while the server
// writes the last piece, checks the file or names the branch). Then it opens
// the catalog of the data directory itself and checks:
//   - the import's branch is absent, or present with exactly the file's pages;
//   - no hidden timeline of the import survives (Open drops orphans);
// and starts a fresh server that retries the same import: 201 when the branch
// was absent (and the export is the file), 409 branch_exists when it was
// complete. BRANCHDB_CRASH_CYCLES (default 12) sets the cycles, BRANCHDB_SEED
// the seed (printed).
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>

#include "catalog/catalog.h"
#include "server/config.h"
#include "server/server.h"
#include "tests/crash/server_child.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

namespace branchdb::testing {
namespace {

using nlohmann::json;

constexpr size_t kPage = 4096;

// A SQLite file (page size 4096) of `rows` rows of 1000 random bytes.
std::string MakeDatabase(int rows) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
  std::string sql =
      "PRAGMA page_size=4096; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < " +
      std::to_string(rows) + ") INSERT INTO t(v) SELECT randomblob(1000) FROM n;";
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(db, "main", &size, 0);
  REQUIRE(bytes != nullptr);
  std::string out(reinterpret_cast<char*>(bytes), static_cast<size_t>(size));
  sqlite3_free(bytes);
  sqlite3_close(db);
  return out;
}

// The server in a child process, with a small transfer buffer (so an import
// is many writes).
class Child : public ServerChild {
 public:
  explicit Child(const std::string& data_dir)
      : ServerChild(data_dir, [](server::Config& c) { c.transfer_buffer_bytes = 2 * kPage; }) {}
};

httplib::Client ClientOf(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120);
  return c;
}

// Sends the import's request line, headers and body[0, cut) on a raw socket;
// returns the socket (closed by the caller after the kill).
int SendPrefix(int port, const std::string& token, const std::string& branch,
               const std::string& body, size_t cut) {
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(sock >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  std::string head = "POST /v1/projects/acme/import?branch=" + branch +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
                     "\r\nContent-Type: application/vnd.sqlite3\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n";
  std::string out = head + body.substr(0, cut);
  for (size_t sent = 0; sent < out.size();) {
    ssize_t n = send(sock, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    sent += static_cast<size_t>(n);
  }
  return sock;
}

// Absent (false) or present with exactly file's pages (true); FAILs otherwise.
// Also checks that no timeline without a branch survived the reopen.
bool CheckAbsentOrComplete(const std::string& data_dir, const std::string& branch,
                           const std::string& file) {
  catalog::CatalogOptions o;
  o.reaper_interval_micros = 0;
  o.gc_interval_micros = 0;
  auto cat = catalog::Catalog::Open(o, data_dir);
  REQUIRE(cat.ok());
  auto branches = (*cat)->ListBranches("acme");
  REQUIRE(branches.ok());
  auto store = (*cat)->Store("acme");
  REQUIRE(store.ok());
  CHECK((*store)->ListTimelines().size() == branches->size());
  auto b = (*cat)->GetBranch("acme", branch, false);
  if (!b.ok()) {
    REQUIRE(b.status().reason() == "branch_not_found");
    return false;
  }
  auto pages = (*store)->DbSize(b->timeline, b->head);
  REQUIRE(pages.ok());
  REQUIRE(*pages == file.size() / kPage);
  std::string page;
  for (uint32_t p = 1; p <= *pages; ++p) {
    REQUIRE((*store)->ReadPage(b->timeline, p, b->head, &page).ok());
    INFO("page " << p);
    REQUIRE(page == file.substr((p - 1) * kPage, kPage));
  }
  return true;
}

TEST_CASE("kill -9 at any point of an import leaves its branch absent or complete, and a "
          "retry works",
          "[crash][import]") {
  const uint64_t seed = TestSeed("import_kill9_test");
  const int cycles = static_cast<int>(EnvU64("BRANCHDB_CRASH_CYCLES", 12));
  std::printf("import_kill9_test cycles=%d\n", cycles);
  std::fflush(stdout);  // before the forks: a child must not inherit unflushed output
  std::mt19937_64 rng(seed);
  TempDir dir(FastTestDirBase());
  const std::string data_dir = dir.Sub("data");
  const std::string file = MakeDatabase(120);  // ~130 KiB: ~65 pieces of two pages
  json creds;
  {
    Child first(data_dir);
    std::ifstream in(data_dir + "/admin-credentials.json");
    creds = json::parse(in);
    auto c = ClientOf(first.port());
    auto r = c.Post("/v1/projects", {{"Authorization", "Bearer " + Token(first.port(), creds)}},
                    R"({"name":"acme"})", "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 201);
  }
  int absent = 0, complete = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    const std::string branch = "imp-" + std::to_string(cycle);
    // Past the body's end: all of it sent, then killed after a random delay.
    size_t cut = static_cast<size_t>(rng() % (file.size() + file.size() / 3));
    int delay_us = static_cast<int>(rng() % 20000);
    INFO("cycle " << cycle << " cut " << cut << " delay_us " << delay_us);
    {
      Child server(data_dir);
      std::string token = Token(server.port(), creds);
      int sock = SendPrefix(server.port(), token, branch, file, std::min(cut, file.size()));
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      server.Kill();
      close(sock);
    }
    bool was_complete = CheckAbsentOrComplete(data_dir, branch, file);
    (was_complete ? complete : absent)++;
    Child server(data_dir);
    auto c = ClientOf(server.port());
    httplib::Headers auth{{"Authorization", "Bearer " + Token(server.port(), creds)}};
    auto retry = c.Post(("/v1/projects/acme/import?branch=" + branch).c_str(), auth, file,
                        "application/vnd.sqlite3");
    REQUIRE(retry);
    INFO(retry->body);
    REQUIRE(retry->status == (was_complete ? 409 : 201));
    auto exported = c.Get(("/v1/projects/acme/branches/" + branch + "/export").c_str(), auth);
    REQUIRE(exported);
    REQUIRE(exported->status == 200);
    CHECK(exported->body == file);
  }
  std::printf("import_kill9_test absent=%d complete=%d\n", absent, complete);
}

}  // namespace
}  // namespace branchdb::testing
