// A full disk under a running server (hardening issue #13, item 12), over
// real HTTP with a fault-injecting Env. Before: the first failed write said
// the branch reached its size limit (413), and the project refused writes
// (503 store_failed) until a restart, even after space came back. Now: 507
// disk_full ("disk full") while the disk is full, reads go on, and writes
// resume by themselves once space is freed.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "base/mock_clock.h"
#include "tests/server/live_server.h"
#include "tests/util/fault_injection_env.h"

namespace branchdb::testing {
namespace {

using nlohmann::json;

struct Fixture {
  MockClock clock;
  EnvWithClock clocked{Env::Default(), &clock};
  FaultInjectionEnv env{&clocked};
  LiveServer server{nullptr, &env};
  std::string token = server.AdminToken();

  std::pair<int, json> Post(const std::string& path, const json& body) {
    auto c = server.Client();
    auto r = c.Post(path.c_str(), {{"Authorization", "Bearer " + token}}, body.dump(),
                    "application/json");
    REQUIRE(r);
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  std::pair<int, json> Sql(const std::string& sql) {
    return Post("/v1/projects/shop/branches/production/sql", {{"sql", sql}});
  }
  json Values() {
    auto [st, body] = Sql("SELECT v FROM t ORDER BY v");
    INFO(body.dump());
    REQUIRE(st == 200);
    return body["results"][0]["rows"];
  }
  void FillDisk() {
    FaultSpec spec;
    spec.type = FaultType::kNoSpace;
    spec.sticky = true;
    spec.op_mask = kOpAppend;
    spec.partial_write = true;  // a short write, then ENOSPC
    env.FailNth(spec);
  }
};

void CheckDiskFull(int status, const json& body, const std::string& data_dir) {
  INFO(body.dump());
  CHECK(status == 507);
  CHECK(body["error"]["code"] == "disk_full");
  const std::string message = body["error"]["message"].get<std::string>();
  CHECK(message.find("disk full") != std::string::npos);
  CHECK(message.find("size limit") == std::string::npos);
  CHECK(message.find(data_dir) == std::string::npos);
}

TEST_CASE("a full disk answers 507 disk_full, and writes resume without a restart once space "
          "is freed",
          "[fault]") {
  Fixture f;
  const std::string data_dir = f.server.dir_.path();
  REQUIRE(f.Post("/v1/projects", {{"name", "shop"}}).first == 201);
  REQUIRE(f.Sql("CREATE TABLE t(v); INSERT INTO t VALUES(1)").first == 200);

  f.FillDisk();
  auto [st1, body1] = f.Sql("INSERT INTO t VALUES(2)");
  CheckDiskFull(st1, body1, data_dir);
  // Still full: refused again (the store reopened, recovered, and found no room).
  auto [st2, body2] = f.Sql("INSERT INTO t VALUES(3)");
  CheckDiskFull(st2, body2, data_dir);
  auto [st3, body3] = f.Post("/v1/projects/shop/branches", {{"name", "dev"}});
  CheckDiskFull(st3, body3, data_dir);
  CHECK(f.Values() == json::array({json::array({1})}));  // reads go on

  f.env.ClearFault();      // space is freed
  f.clock.AdvanceSeconds(2);  // past the reopen interval
  auto [st4, body4] = f.Sql("INSERT INTO t VALUES(4)");
  INFO(body4.dump());
  CHECK(st4 == 200);
  CHECK(f.Values() == json::array({json::array({1}), json::array({4})}));
  CHECK(f.Post("/v1/projects/shop/branches", {{"name", "dev"}}).first == 201);
}

}  // namespace
}  // namespace branchdb::testing
