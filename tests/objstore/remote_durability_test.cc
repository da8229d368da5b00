// durability = "remote" (docs/object-storage.md): a real `ApiServer` with
// [object_storage] on a real Ceph RGW (tests/objstore/ceph_s3.h). Every
// acknowledged commit (REST /sql, Hrana) is in the bucket when its answer
// comes: the bucket's copy of the project's log (sealed segments, then the
// active segment's tail chunks) equals the local files. With radosgw
// stopped, a project in remote mode gets 503 remote_durability_unavailable
// and never a 200, while a project in local mode goes on; once radosgw is
// back both commit again, and every acknowledged row is there. The project
// setting: PATCH `durability`, returned by GET. Catalog operations (branches,
// labels, protection, TTLs) are answered in remote mode only once a server on
// an empty data directory restores them from the bucket; with radosgw
// stopped they get 503 too.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "objstore/s3_client.h"
#include "tests/objstore/ceph_s3.h"
#include "tests/objstore/server_bucket.h"
#include "tests/server/live_server.h"
#include "tests/util/temp_dir.h"

namespace branchdb::testing {
namespace {

using nlohmann::json;
using objstore::S3Client;

// The server's config for the shared fixture's bucket: remote by default
// (`durability`), an hour between background passes (so that only the
// commits' own uploads put the tail in the bucket), 64 KiB segments.
std::function<void(server::Config&)> Remote(const std::string& bucket,
                                            const std::string& durability = "remote") {
  return ServerWithBucket(bucket, "", "", [=](server::Config& c) {
    c.object_storage_durability = durability;
    c.object_storage_upload_interval_ms = 3600000;
    c.object_storage_timeout_ms = 1000;
  });
}

std::string Sql(const std::string& project) {
  return "/v1/projects/" + project + "/branches/production/sql";
}

const char* kInsert =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 4) "
    "INSERT INTO t(b) SELECT randomblob(3000) FROM n";

// The project's one store directory.
std::string ProjectDir(const std::string& data_dir) {
  for (const auto& p : std::filesystem::directory_iterator(data_dir + "/projects")) {
    return p.path().string();
  }
  FAIL("no project directory");
  return "";
}

// The bucket's copy of every local segment of the project equals the local
// file: a sealed one whole, the newest (active) one's log (up to its zero
// region) as its tail chunks, contiguous from offset 0. True for a project with no commit in flight
// whose last answer was an acknowledgement in remote mode.
void CheckBucketHasEverything(S3Client& s3, const std::string& project_dir) {
  const std::string id = std::filesystem::path(project_dir).filename().string();
  std::vector<std::string> segments;
  for (const auto& f : std::filesystem::directory_iterator(project_dir)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("seg-", 0) == 0) segments.push_back(name);
  }
  std::sort(segments.begin(), segments.end());
  REQUIRE_FALSE(segments.empty());
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& name = segments[i];
    INFO(name);
    const std::string local = ReadFile(project_dir + "/" + name);
    if (i + 1 < segments.size()) {
      auto sealed = s3.Get(id + "/" + name);
      REQUIRE(sealed.ok());
      CHECK(*sealed == local);
      continue;
    }
    auto chunks = s3.ListAll(id + "/tail/" + name + "/");
    REQUIRE(chunks.ok());
    std::string tail;
    for (const auto& o : *chunks) {
      CHECK(std::stoull(o.key.substr(o.key.rfind('/') + 1)) == tail.size());
      auto chunk = s3.Get(o.key);
      REQUIRE(chunk.ok());
      tail += *chunk;
    }
    // The local file is the log, then its zero region (written ahead of the
    // records, never uploaded: docs/storage-format.md): all of the log is in
    // the bucket when nothing non-zero follows what the chunks hold.
    REQUIRE(tail.size() <= local.size());
    CHECK(local.compare(0, tail.size(), tail) == 0);
    CHECK(local.find_first_not_of('\0', tail.size()) == std::string::npos);
  }
}

TEST_CASE("in remote mode every acknowledged commit is in the bucket when it is answered") {
  auto s3 = S3Client::Open(SharedCephS3().Options("remote-acks"));
  REQUIRE(s3.ok());
  LiveServer server(Remote("remote-acks"));
  REQUIRE(server.Call("POST", "/v1/projects", {{"name", "r"}}).first == 201);
  auto [got, project] = server.Call("GET", "/v1/projects/r");
  CHECK(project["durability"] == "remote");  // the server's default
  REQUIRE(server.Call("POST", Sql("r"), {{"sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)"}})
              .first == 200);
  const std::string dir = ProjectDir(server.dir_.Sub("data"));
  // About 100 KiB: the answers cross a segment's seal.
  for (int i = 0; i < 8; ++i) {
    auto [status, out] = server.Call("POST", Sql("r"), {{"sql", kInsert}});
    REQUIRE(status == 200);
    CheckBucketHasEverything(**s3, dir);
  }
  // Hrana: the pipeline's COMMIT is answered once in the bucket too.
  json pipeline = {{"baton", nullptr},
                   {"requests",
                    {{{"type", "execute"}, {"stmt", {{"sql", kInsert}}}}, {{"type", "close"}}}}};
  auto c = server.Client();
  auto res = c.Post("/libsql/r/production/v2/pipeline",
                    {{"Authorization", "Bearer " + server.Admin()}}, pipeline.dump(),
                    "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CheckBucketHasEverything(**s3, dir);

  // Writers at once: each is answered 200 only once its commit is in (group
  // commit: an upload covers the commits that waited meanwhile).
  std::vector<std::thread> writers;
  std::atomic<int> acknowledged{0};
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        if (server.Send("POST", Sql("r"), {{"sql", kInsert}}).first == 200) ++acknowledged;
      }
    });
  }
  for (auto& w : writers) w.join();
  CHECK(acknowledged == 16);
  CheckBucketHasEverything(**s3, dir);
}

TEST_CASE("with radosgw stopped remote-mode commits get 503 and local ones go on; then both work") {
  CephS3& ceph = SharedCephS3();
  auto s3 = S3Client::Open(ceph.Options("remote-outage"));
  REQUIRE(s3.ok());
  LiveServer server(Remote("remote-outage", "local"));
  for (const char* name : {"loc", "rem"}) {
    REQUIRE(server.Call("POST", "/v1/projects", {{"name", name}}).first == 201);
    REQUIRE(server.Call("POST", Sql(name), {{"sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)"}})
                .first == 200);
  }
  auto [patched, project] = server.Call("PATCH", "/v1/projects/rem", {{"durability", "remote"}});
  REQUIRE(patched == 200);
  CHECK(project["durability"] == "remote");
  CHECK(server.Call("GET", "/v1/projects/loc").second["durability"] == "local");
  CHECK(server.Call("PATCH", "/v1/projects/rem", {{"durability", "sometimes"}}).first == 400);
  REQUIRE(server.Call("POST", Sql("rem"), {{"sql", kInsert}}).first == 200);

  ceph.StopGateway();
  auto [refused, why] = server.Call("POST", Sql("rem"), {{"sql", kInsert}});
  CHECK(refused == 503);
  CHECK(why["error"]["code"] == "remote_durability_unavailable");
  CHECK(server.Call("POST", Sql("loc"), {{"sql", kInsert}}).first == 200);
  CHECK(server.Call("POST", Sql("rem"), {{"sql", kInsert}}).first == 503);
  ceph.StartGateway();

  REQUIRE(server.Call("POST", Sql("rem"), {{"sql", kInsert}}).first == 200);
  CHECK(server.Call("POST", Sql("loc"), {{"sql", kInsert}}).first == 200);
  // Acknowledged: 2 inserts of 4 rows. Not acknowledged: 2 more, written
  // locally, which may stay (as PostgreSQL's synchronous replication).
  auto [read, rows] = server.Call("POST", Sql("rem"), {{"sql", "SELECT count(*) FROM t"}});
  REQUIRE(read == 200);
  const int count = rows["results"][0]["rows"][0][0];
  CHECK(count >= 8);
  CHECK(count <= 16);
  // Back to the default: local again.
  auto [reset, back] = server.Call("PATCH", "/v1/projects/rem", {{"durability", nullptr}});
  CHECK(reset == 200);
  CHECK(back["durability"] == "local");
}

// The project's branches as "name[:protected][:expires]", in name order.
std::string BranchList(LiveServer& s, const std::string& project) {
  auto [status, body] = s.Call("GET", "/v1/projects/" + project + "/branches");
  INFO(body.dump());
  REQUIRE(status == 200);
  std::vector<std::string> names;
  for (const json& b : body["branches"]) {
    std::string n = b["name"].get<std::string>();
    if (b.value("protected", false)) n += ":protected";
    if (b.contains("expires_at") && !b["expires_at"].is_null()) n += ":expires";
    names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

// The labels of the project's production branch, comma-separated.
std::string Labels(LiveServer& s, const std::string& project) {
  auto [status, body] =
      s.Call("GET", "/v1/projects/" + project + "/branches/production/checkpoints?limit=1000");
  REQUIRE(status == 200);
  std::string out;
  for (const json& c : body["checkpoints"]) {
    if (!c.contains("labels")) continue;
    for (const json& l : c["labels"]) out += (out.empty() ? "" : ",") + l.get<std::string>();
  }
  return out;
}

// A fresh server on an empty data directory and the same bucket: what the
// bucket alone holds (the first server's background passes never run again
// after its start: an hour apart).
std::function<void(server::Config&)> FreshFrom(const std::string& bucket, const std::string& dir) {
  return [=](server::Config& c) {
    Remote(bucket)(c);
    c.data_dir = dir;
  };
}

// Creates bucket with the fixture's client (a new bucket right after radosgw
// restarted can take longer than the servers' 1 s timeout here).
void CreateBucket(const std::string& bucket) {
  auto s3 = S3Client::Open(SharedCephS3().Options(bucket));
  REQUIRE(s3.ok());
  REQUIRE((*s3)->CreateBucketIfMissing().ok());
}

TEST_CASE("in remote mode a catalog operation is answered only once the bucket has it") {
  CreateBucket("remote-catalog");
  LiveServer server(Remote("remote-catalog"));
  REQUIRE(server.Call("POST", "/v1/projects", {{"name", "c"}}).first == 201);
  auto [created, table] =
      server.Call("POST", Sql("c"), {{"sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)"}});
  REQUIRE(created == 200);
  const int64_t lsn = table["lsn"].get<int64_t>();
  const std::string branches = "/v1/projects/c/branches";
  REQUIRE(server.Call("POST", branches, {{"name", "dev"}}).first == 201);
  REQUIRE(server.Call("POST", branches, {{"name", "rel"}, {"protected", true}}).first == 201);
  REQUIRE(server.Call("POST", branches + "/production/checkpoints", {{"label", "v1"}, {"lsn", lsn}})
              .first == 201);
  REQUIRE(server.Call("PATCH", branches + "/dev", {{"ttl_seconds", 86400}}).first == 200);
  // Operations at once: each answered only once a snapshot taken after it is
  // in (one snapshot serves the operations that waited meanwhile).
  std::vector<std::thread> creators;
  std::atomic<int> acknowledged{0};
  for (int w = 0; w < 4; ++w) {
    creators.emplace_back([&, w] {
      for (int i = 0; i < 2; ++i) {
        const std::string name = "w" + std::to_string(w) + "-" + std::to_string(i);
        if (server.Send("POST", branches, {{"name", name}}).first == 201) ++acknowledged;
      }
    });
  }
  for (auto& t : creators) t.join();
  CHECK(acknowledged == 8);
  // Acknowledged: a server on an empty data directory restores all of it
  // from the bucket at once, while the first one still runs.
  {
    TempDir fresh;
    LiveServer restored(FreshFrom("remote-catalog", fresh.Sub("data")));
    CHECK(BranchList(restored, "c") ==
          "dev:expires,production,rel:protected,w0-0,w0-1,w1-0,w1-1,w2-0,w2-1,w3-0,w3-1");
    CHECK(Labels(restored, "c") == "v1");
  }
  // A deleted branch, and the branch created after it.
  REQUIRE(server.Call("DELETE", branches + "/dev").first == 204);
  for (const char* w : {"w0", "w1", "w2", "w3"}) {
    for (const char* i : {"-0", "-1"}) {
      REQUIRE(server.Call("DELETE", branches + "/" + w + i).first == 204);
    }
  }
  REQUIRE(server.Call("POST", branches, {{"name", "next"}}).first == 201);
  TempDir fresh;
  LiveServer restored(FreshFrom("remote-catalog", fresh.Sub("data")));
  CHECK(BranchList(restored, "c") == "next,production,rel:protected");
}

TEST_CASE("with radosgw stopped a remote-mode catalog operation gets 503, a local one goes on") {
  CephS3& ceph = SharedCephS3();
  CreateBucket("remote-catalog-outage");
  LiveServer server(Remote("remote-catalog-outage", "local"));
  for (const char* name : {"loc", "rem"}) {
    REQUIRE(server.Call("POST", "/v1/projects", {{"name", name}}).first == 201);
  }
  REQUIRE(server.Call("PATCH", "/v1/projects/rem", {{"durability", "remote"}}).first == 200);
  REQUIRE(server.Call("POST", "/v1/projects/rem/branches", {{"name", "a"}}).first == 201);

  ceph.StopGateway();
  auto [refused, why] = server.Call("POST", "/v1/projects/rem/branches", {{"name", "b"}});
  CHECK(refused == 503);
  CHECK(why["error"]["code"] == "remote_durability_unavailable");
  CHECK(server.Call("POST", "/v1/projects/loc/branches", {{"name", "b"}}).first == 201);
  CHECK(server.Call("PATCH", "/v1/projects/rem/branches/a", {{"protected", true}}).first == 503);
  ceph.StartGateway();

  // The refused changes stayed locally (outcome unknown, not rolled back);
  // the next operation puts them in the bucket with its own.
  CHECK(BranchList(server, "rem") == "a:protected,b,production");
  REQUIRE(server.Call("POST", "/v1/projects/rem/branches", {{"name", "c"}}).first == 201);
}

// A project deleted in remote mode is answered only once the bucket marks
// it deleted: a restore right after the 204 (the passes are an hour apart)
// does not bring it back. With radosgw stopped: 503, the project gone here.
TEST_CASE("in remote mode a project deletion is answered only once the bucket marks it") {
  CephS3& ceph = SharedCephS3();
  CreateBucket("remote-delete");
  LiveServer server(Remote("remote-delete"));
  for (const char* name : {"gone", "kept", "down"}) {
    REQUIRE(server.Call("POST", "/v1/projects", {{"name", name}}).first == 201);
  }
  REQUIRE(server.Call("DELETE", "/v1/projects/gone").first == 204);
  {
    TempDir fresh;
    LiveServer restored(FreshFrom("remote-delete", fresh.Sub("data")));
    CHECK(restored.Call("GET", "/v1/projects/gone").first == 404);
    CHECK(restored.Call("GET", "/v1/projects/kept").first == 200);
    CHECK(restored.Call("GET", "/v1/projects/down").first == 200);
  }
  ceph.StopGateway();
  auto [refused, why] = server.Call("DELETE", "/v1/projects/down");
  CHECK(refused == 503);
  CHECK(why["error"]["code"] == "remote_durability_unavailable");
  ceph.StartGateway();
  CHECK(server.Call("GET", "/v1/projects/down").first == 404);  // gone here: outcome unknown
}

TEST_CASE("remote durability needs object storage on the server") {
  LiveServer server;
  REQUIRE(server.Call("POST", "/v1/projects", {{"name", "p"}}).first == 201);
  auto [status, out] = server.Call("PATCH", "/v1/projects/p", {{"durability", "remote"}});
  CHECK(status == 400);
  CHECK(out["error"]["message"].get<std::string>().find("object_storage") != std::string::npos);
  CHECK(server.Call("GET", "/v1/projects/p").second["durability"] == "local");
}

}  // namespace
}  // namespace branchdb::testing
