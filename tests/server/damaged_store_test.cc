// A project whose store is damaged on disk never keeps the server from
// serving the others (issue #15), over real HTTP: the server starts, healthy
// projects answer reads and writes, the damaged one answers 503
// store_damaged with the reason (no server path), /healthz counts it (and
// names it to a caller allowed to list it), /metrics counts it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "storage/page_store.h"
#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

using json = nlohmann::json;

struct Reply {
  int status = 0;
  json body;
  std::string text;
};

class Server : public testing::LiveServer {
 public:
  explicit Server(const std::string& data_dir)
      : LiveServer([&data_dir](Config& c) { c.data_dir = data_dir; }), admin_(AdminToken()) {}

  Reply Call(const std::string& method, const std::string& path, const json& body = nullptr) {
    auto c = Client();
    httplib::Headers h{{"Authorization", "Bearer " + admin_}};
    httplib::Result r = method == "GET" ? c.Get(path.c_str(), h)
                                        : c.Post(path.c_str(), h, body.dump(), "application/json");
    REQUIRE(r);
    return {r->status, json::parse(r->body, nullptr, false), r->body};
  }
  json Must(const std::string& method, const std::string& path, const json& body, int status) {
    Reply r = Call(method, path, body);
    INFO(method << " " << path << " -> " << r.status << " " << r.text);
    REQUIRE(r.status == status);
    return r.body;
  }

  std::string admin_;
};

std::set<std::string> Children(const std::string& dir) {
  auto c = Env::Default()->GetChildren(dir);
  REQUIRE(c.ok());
  return {c->begin(), c->end()};
}

// Creates project `name` with a table and returns its store directory.
std::string CreateProject(Server& s, const std::string& data, const std::string& name) {
  const std::set<std::string> before = Children(data + "/projects");
  s.Must("POST", "/v1/projects", {{"name", name}}, 201);
  s.Must("POST", "/v1/projects/" + name + "/branches/production/sql",
         {{"sql", "CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('" + name + "');"}}, 200);
  for (const std::string& c : Children(data + "/projects")) {
    if (!before.count(c)) return data + "/projects/" + c;
  }
  FAIL("no directory for project " << name);
  return {};
}

// Seals the store's segment (by opening it with a tiny segment size and
// writing one record, which rolls to a new segment), then flips a byte of
// that sealed segment's trailer and, if `record_too`, of its first record's
// meta: the store then cannot find the records after it (Corruption).
void Damage(const std::string& store_dir, bool record_too) {
  {
    storage::PageStoreOptions o;
    o.segment_bytes = 1;
    o.create_if_missing = false;
    auto store = storage::PageStore::Open(o, store_dir);
    REQUIRE(store.ok());
    REQUIRE((*store)->CreateTimeline(0, "seal").ok());  // an orphan: dropped on reconcile
  }
  std::vector<std::string> segs;
  for (const std::string& c : Children(store_dir)) {
    if (c.rfind("seg-", 0) == 0) segs.push_back(store_dir + "/" + c);
  }
  std::sort(segs.begin(), segs.end());
  REQUIRE(segs.size() == 2);
  auto data = Env::Default()->ReadFileToString(segs[0]);
  REQUIRE(data.ok());
  std::string bytes = *data;
  bytes[bytes.size() - 1] ^= 0x5A;  // the trailer's magic
  if (record_too) bytes[32 + 8 + 10] ^= 0x5A;  // the first record's LSN (header of 32 bytes)
  auto w = Env::Default()->NewWritableFile(segs[0], Env::OpenMode::kTruncate);
  REQUIRE(w.ok());
  REQUIRE((*w)->Append(bytes).ok());
  REQUIRE((*w)->Sync().ok());
}

}  // namespace

TEST_CASE("A project whose store is damaged answers 503 while the others are served",
          "[api][damage]") {
  testing::TempDir dir;
  const std::string data = dir.Sub("data");
  std::string bad_dir, scarred_dir;
  {
    Server s(data);
    CreateProject(s, data, "good");
    bad_dir = CreateProject(s, data, "bad");
    scarred_dir = CreateProject(s, data, "scarred");
  }
  Damage(bad_dir, /*record_too=*/true);       // does not open
  Damage(scarred_dir, /*record_too=*/false);  // opens: its records are found by a scan

  Server s(data);  // starts
  const std::string sql = "/branches/production/sql";
  json rows = s.Must("POST", "/v1/projects/good" + sql, {{"sql", "SELECT x FROM t"}}, 200);
  CHECK(rows.dump().find("\"good\"") != std::string::npos);
  s.Must("POST", "/v1/projects/good" + sql, {{"sql", "INSERT INTO t VALUES ('more')"}}, 200);
  rows = s.Must("POST", "/v1/projects/scarred" + sql, {{"sql", "SELECT x FROM t"}}, 200);
  CHECK(rows.dump().find("\"scarred\"") != std::string::npos);
  s.Must("POST", "/v1/projects/scarred" + sql, {{"sql", "INSERT INTO t VALUES ('more')"}}, 200);

  for (const std::string& path : {"/v1/projects/bad" + sql, std::string("/v1/projects/bad/branches")}) {
    Reply r = path.find("sql") != std::string::npos ? s.Call("POST", path, {{"sql", "SELECT 1"}})
                                                     : s.Call("GET", path);
    INFO(path << " -> " << r.status << " " << r.text);
    CHECK(r.status == 503);
    CHECK(r.body["error"]["code"] == "store_damaged");
    CHECK(r.text.find("seg-000001.log: record at offset 32") != std::string::npos);
    CHECK(r.text.find(data) == std::string::npos);
  }

  Reply health = s.Call("GET", "/healthz");
  INFO(health.text);
  REQUIRE(health.status == 200);
  CHECK(health.body["status"] == "ok");
  const json& damaged = health.body["damaged_projects"];
  REQUIRE(damaged.size() == 2);
  CHECK(damaged[0]["project"] == "bad");
  CHECK(damaged[0]["serving"] == false);
  CHECK(damaged[0]["message"].get<std::string>().find("seg-000001.log") != std::string::npos);
  CHECK(damaged[1]["project"] == "scarred");
  CHECK(damaged[1]["serving"] == true);
  REQUIRE(damaged[1]["segments"].size() == 1);
  CHECK(damaged[1]["segments"][0].get<std::string>().rfind("seg-000001.log: ", 0) == 0);
  CHECK(health.text.find(data) == std::string::npos);
  CHECK(health.body["damaged_project_count"] == 2);
  // Without a token: the count only, never a project's name.
  auto anonymous = s.Client().Get("/healthz");
  REQUIRE(anonymous);
  INFO(anonymous->body);
  CHECK(anonymous->status == 200);
  json open = json::parse(anonymous->body, nullptr, false);
  CHECK(open["damaged_project_count"] == 2);
  CHECK(open["damaged_projects"].empty());
  CHECK(anonymous->body.find("bad") == std::string::npos);
  CHECK(anonymous->body.find("scarred") == std::string::npos);

  auto metrics = s.Client().Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("branchdb_damaged_projects{serving=\"false\"} 1") != std::string::npos);
  CHECK(metrics->body.find("branchdb_damaged_projects{serving=\"true\"} 1") != std::string::npos);
}

}  // namespace branchdb::server
