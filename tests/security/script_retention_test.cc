// Hardening issue #13, item 10: every committed script is kept for promote's
// replay. It used to ride in the commit record's annotation, held in the page
// store's memory for the life of the process and counted against nothing
// (300 commits of 1 MB scripts: 372 MB RSS for a branch of 8 KB). Now the
// record keeps a summary and a hash in memory, the script once on disk (the
// record's payload), and the script's bytes count against max_branch_bytes.
// Asserted on the store's own accounting over real HTTP, not on RSS.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "catalog/catalog.h"
#include "server/config.h"
#include "server/server.h"
#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

constexpr int64_t kQuota = 1 << 20;

class Fixture : public testing::LiveServer {
 public:
  Fixture()
      : LiveServer([](Config& c) { c.max_branch_bytes = kQuota; }), admin_(AdminToken()) {
    REQUIRE(Call("/v1/projects", {{"name", "shop"}}).first == 201);
  }

  std::pair<int, json> Call(const std::string& path, const json& body) {
    auto c = Client();
    httplib::Headers h{{"Authorization", "Bearer " + admin_}};
    httplib::Result r = c.Post(path.c_str(), h, body.dump(), "application/json");
    REQUIRE(r);
    json parsed = json::parse(r->body, nullptr, false);
    return {r->status, parsed.is_discarded() ? json(r->body) : parsed};
  }
  std::pair<int, json> Sql(const std::string& branch, const std::string& sql) {
    return Call("/v1/projects/shop/branches/" + branch + "/sql", {{"sql", sql}});
  }
  storage::PageStore& Store() {
    auto s = server_->services().catalog->Store("shop");
    REQUIRE(s.ok());
    return **s;
  }

  std::string admin_;
};

// An INSERT padded with a comment to n bytes: a large script, a tiny change.
std::string BigInsert(int i, size_t n) {
  std::string sql = "INSERT INTO t VALUES(" + std::to_string(i) + "); -- ";
  sql.append(n - sql.size(), 'x');
  return sql;
}

TEST_CASE("Large scripts are kept on disk, not in memory, and count against max_branch_bytes") {
  Fixture f;
  REQUIRE(f.Sql("production", "CREATE TABLE t(v INTEGER)").first == 200);
  const uint64_t metadata_before = f.Store().RecordMetadataBytes();

  // 200 KB scripts: five fit in the 1 MiB quota with the 8 KB database, the
  // sixth does not.
  int committed = 0;
  json refusal;
  for (int i = 0; i < 10; ++i) {
    auto [status, body] = f.Sql("production", BigInsert(i, 200'000));
    if (status != 200) {
      INFO(body.dump());
      CHECK(status == 413);
      refusal = body;
      break;
    }
    ++committed;
  }
  CHECK(committed == 5);
  REQUIRE(refusal.is_object());
  CHECK(refusal["error"]["code"] == "branch_size_limit");
  CHECK(refusal["error"]["message"].get<std::string>().find("scripts kept for replay") !=
        std::string::npos);

  // The refused script committed nothing; a small one still fits.
  auto [st, rows] = f.Sql("production", "SELECT count(*) FROM t");
  REQUIRE(st == 200);
  CHECK(rows["results"][0]["rows"][0][0] == committed);
  CHECK(f.Sql("production", "INSERT INTO t VALUES(100)").first == 200);

  // What the store holds in memory grew by a bounded amount per commit (a
  // summary of at most ~200 characters and a hash), not by the scripts.
  const uint64_t grown = f.Store().RecordMetadataBytes() - metadata_before;
  CHECK(grown < static_cast<uint64_t>(committed + 1) * 2048);
}

TEST_CASE("Promote's replay still gets the full scripts, read back from disk") {
  Fixture f;
  REQUIRE(f.Sql("production", "CREATE TABLE t(v INTEGER)").first == 200);
  REQUIRE(f.Call("/v1/projects/shop/branches", {{"name", "feature"}, {"parent", "production"}})
              .first == 201);
  REQUIRE(f.Sql("feature", BigInsert(1, 150'000)).first == 200);
  REQUIRE(f.Sql("feature", BigInsert(2, 150'000)).first == 200);
  REQUIRE(f.Sql("production", "INSERT INTO t VALUES(0)").first == 200);  // parent moved
  auto [st, r] = f.Call("/v1/projects/shop/branches/feature/promote", json::object());
  INFO(r.dump());
  REQUIRE(st == 200);
  CHECK(r["mode"] == "replay");
  auto [qs, rows] = f.Sql("production", "SELECT group_concat(v) FROM (SELECT v FROM t ORDER BY v)");
  REQUIRE(qs == 200);
  CHECK(rows["results"][0]["rows"][0][0] == "0,1,2");
}

}  // namespace
}  // namespace branchdb::server
