// Hardening issue #13, item 11: file descriptors. Every project kept its store
// (two descriptors and more) open for the life of the process, so a server
// with enough projects could not start (EMFILE) and a client could exhaust
// the limit by creating projects. Stores now open lazily and close when idle,
// the soft limit is raised to the hard one at start-up, and a new project is
// refused with a clear error before the limit is reached.
//
// These tests lower the process's real RLIMIT_NOFILE; the hard limit cannot be
// raised again, so this binary's test cases run in order, the ones that lower
// the hard limit last.
#include <fcntl.h>
#include <httplib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/mock_clock.h"
#include "catalog/catalog.h"
#include "storage/store_pool.h"
#include "tests/server/live_server.h"

namespace branchdb::testing {
namespace {

using nlohmann::json;

rlimit Limit() {
  rlimit rl;
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &rl) == 0);
  return rl;
}

size_t OpenFds() {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) n += e.exists() ? 1 : 0;
  return n;
}

// Lowers the soft and the hard limit to `limit` (for good: see the file comment).
void LowerHardLimit(rlim_t limit) {
  rlimit rl = Limit();
  REQUIRE(rl.rlim_max > limit);
  rl.rlim_cur = rl.rlim_max = limit;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &rl) == 0);
}

std::pair<int, json> Call(LiveServer& s, const std::string& token, const std::string& method,
                          const std::string& path, const json& body = nullptr) {
  auto c = s.Client();
  httplib::Headers h{{"Authorization", "Bearer " + token}};
  httplib::Result r = method == "GET" ? c.Get(path.c_str(), h)
                                      : c.Post(path.c_str(), h, body.dump(), "application/json");
  REQUIRE(r);
  return {r->status, json::parse(r->body, nullptr, false)};
}

// Creates n projects in data_dir with a catalog of their own (as an earlier
// server run would have).
void MakeProjects(const std::string& data_dir, int n) {
  catalog::CatalogOptions o;
  o.reaper_interval_micros = 0;
  auto cat = catalog::Catalog::Open(o, data_dir);
  REQUIRE(cat.ok());
  for (int i = 0; i < n; ++i) {
    auto p = (*cat)->CreateProject("p" + std::to_string(i), {});
    INFO(p.status().ToString());
    REQUIRE(p.ok());
  }
}

TEST_CASE("the server raises the soft open-file limit to the hard limit at start-up",
          "[security]") {
  rlimit rl = Limit();
  REQUIRE(rl.rlim_max > 256);
  rlimit lowered = rl;
  lowered.rlim_cur = 256;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
  LiveServer s;
  CHECK(Limit().rlim_cur == rl.rlim_max);
}

TEST_CASE("stores hold descriptors only while used: opened on first use, closed when idle or, "
          "least recently used first, when descriptors run short",
          "[security]") {
  TempDir dir(FastTestDirBase());
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  storage::StorePoolOptions po;
  po.env = &env;
  po.reserved_file_descriptors = 16;
  storage::StorePool pool(po);
  constexpr int kStores = 40;
  const size_t before = OpenFds();
  std::vector<std::unique_ptr<storage::PooledStore>> stores;
  for (int i = 0; i < kStores; ++i) stores.push_back(pool.Add({}, dir.Sub(std::to_string(i))));
  CHECK(OpenFds() == before);  // nothing opened yet
  std::vector<storage::TimelineId> timelines;
  for (auto& s : stores) {
    auto t = s->CreateTimeline(0, "t");
    REQUIRE(t.ok());
    timelines.push_back(*t);
  }
  CHECK(pool.OpenCount() == kStores);
  CHECK(OpenFds() >= before + 2 * kStores);
  clock.AdvanceSeconds(61);
  REQUIRE(stores[0]->Head(timelines[0]).ok());  // used just now: stays open
  CHECK(pool.CloseIdle(60 * 1000000) == kStores - 1);
  CHECK(stores[0]->IsOpen());
  CHECK_FALSE(stores[1]->IsOpen());
  CHECK(OpenFds() <= before + storage::kStoreFileDescriptors);
  // Short of descriptors: room for about two more stores than the reserve.
  const rlimit saved = Limit();
  rlimit low = saved;
  low.rlim_cur = OpenFds() + 8 + storage::kStoreFileDescriptors + 6;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kStores; ++i) {
      auto head = stores[i]->Head(timelines[i]);
      INFO("store " << i << ": " << head.status().ToString());
      REQUIRE(head.ok());
      REQUIRE(OpenFds() < low.rlim_cur);
    }
  }
  CHECK(pool.OpenCount() < 10);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
}

TEST_CASE("a server starts and serves every project when their stores would need more "
          "descriptors than the limit allows",
          "[security]") {
  TempDir dir(FastTestDirBase());
  const std::string data = dir.Sub("data");
  constexpr int kProjects = 150;
  MakeProjects(data, kProjects);
  // Two descriptors per open store were enough to exceed this.
  LowerHardLimit(OpenFds() + 200);
  LiveServer s([&](server::Config& c) { c.data_dir = data; });
  const std::string token = s.AdminToken();
  for (int i = 0; i < kProjects; ++i) {
    const std::string sql = "/v1/projects/p" + std::to_string(i) + "/branches/production/sql";
    auto [st, body] = Call(s, token, "POST", sql,
                           {{"sql", "CREATE TABLE t(v); INSERT INTO t VALUES(" +
                                        std::to_string(i) + ")"}});
    INFO("project " << i << ": " << body.dump());
    REQUIRE(st == 200);
  }
  for (int i = 0; i < kProjects; i += 7) {
    const std::string sql = "/v1/projects/p" + std::to_string(i) + "/branches/production/sql";
    auto [st, body] = Call(s, token, "POST", sql, {{"sql", "SELECT v FROM t"}});
    INFO("project " << i << ": " << body.dump());
    REQUIRE(st == 200);
    CHECK(body["results"][0]["rows"][0][0] == i);
  }
  CHECK(OpenFds() < Limit().rlim_cur);
}

TEST_CASE("a new project is refused with a clear error before the open-file limit is reached, "
          "and the server keeps serving",
          "[security]") {
  TempDir dir(FastTestDirBase());
  const std::string data = dir.Sub("data");
  MakeProjects(data, 3);
  if (const rlim_t target = OpenFds() + 300; Limit().rlim_max > target) LowerHardLimit(target);
  LiveServer s([&](server::Config& c) { c.data_dir = data; });
  const std::string token = s.AdminToken();
  // Something else of the process takes descriptors until 50 are left: fewer
  // than a new project needs kept free (64 + 4), more than an existing one's
  // store needs to open (32 + 4).
  std::vector<int> taken;
  while (OpenFds() + 50 < Limit().rlim_cur) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    taken.push_back(fd);
  }
  auto [st, body] = Call(s, token, "POST", "/v1/projects", {{"name", "one-too-many"}});
  INFO(body.dump());
  CHECK(st == 503);
  CHECK(body["error"]["code"] == "too_many_open_files");
  const std::string message = body["error"]["message"].get<std::string>();
  CHECK(message.find("file descriptors") != std::string::npos);
  CHECK(message.find("one-too-many") != std::string::npos);
  // The server still answers, and existing projects still work.
  auto health = s.Client().Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto [sql_st, sql_body] = Call(s, token, "POST", "/v1/projects/p1/branches/production/sql",
                                 {{"sql", "CREATE TABLE t(v); INSERT INTO t VALUES(1)"}});
  INFO(sql_body.dump());
  CHECK(sql_st == 200);
  auto [list_st, list] = Call(s, token, "GET", "/v1/projects");
  CHECK(list_st == 200);
  CHECK(list.dump().find("one-too-many") == std::string::npos);
  // Descriptors come back: the project can be made.
  for (int fd : taken) ::close(fd);
  auto [again, made] = Call(s, token, "POST", "/v1/projects", {{"name", "one-too-many"}});
  INFO(made.dump());
  CHECK(again == 201);
}

}  // namespace
}  // namespace branchdb::testing
