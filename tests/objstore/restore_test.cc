// Restore anywhere: a real `ApiServer` with [object_storage] on a real Ceph
// RGW (tests/objstore/ceph_s3.h) and small segments builds a project (data
// at several LSNs, a branch from an old checkpoint, a label, a protected
// branch, a TTL, project settings); once the bucket holds its sealed segments
// and its catalog snapshot, the server stops, its data directory is wiped, and
// a fresh server on the same bucket serves the project as it was: every
// branch, checkpoint, label and setting, and the data at each LSN. With the
// unsealed tail in the bucket as chunk objects too (written here by copying
// the local tail), nothing committed before the stop is missing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "objstore/s3_client.h"
#include "server/object_storage/catalog_backup.h"
#include "server/object_storage/segment_uploader.h"
#include "tests/objstore/ceph_s3.h"
#include "tests/objstore/fault_proxy.h"
#include "tests/objstore/server_bucket.h"
#include "tests/server/live_server.h"

namespace branchdb::testing {
namespace {

using nlohmann::json;
using objstore::S3Client;

const std::string kShop = "/v1/projects/shop";

// Runs sql on branch; returns the LSN of its answer.
int64_t Sql(LiveServer& s, const std::string& branch, const std::string& sql) {
  auto [status, body] = s.Call("POST", kShop + "/branches/" + branch + "/sql", {{"sql", sql}});
  INFO(body.dump());
  REQUIRE(status == 200);
  return body["lsn"].get<int64_t>();
}

// The values of kv on branch as of lsn (0: its head), in key order.
std::string ValuesAt(LiveServer& s, const std::string& branch, int64_t lsn) {
  json req = {{"sql", "SELECT group_concat(v, ',') AS vs FROM (SELECT v FROM kv ORDER BY k)"}};
  if (lsn > 0) req["lsn"] = lsn;
  auto [status, body] = s.Call("POST", kShop + "/branches/" + branch + "/sql", req);
  INFO(body.dump());
  REQUIRE(status == 200);
  return body["results"][0]["rows"][0][0].dump();
}

// Commits about `bytes` of 4 KiB blobs to production, 16 rows a commit: each
// commit fills about one 64 KiB segment, so each seals the one before.
void Fill(LiveServer& s, int bytes) {
  for (int written = 0; written < bytes; written += 16 * 4096) {
    Sql(s, "production",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 16) "
        "INSERT INTO blobs(b) SELECT randomblob(4000) FROM n");
  }
}

// Waits (a bound for a hung uploader, not a speed check) until two whole
// passes of both uploaders, started after this call, left nothing pending.
void WaitForBucket(LiveServer& s) {
  const double segment_passes = Metric(s, "branchdb_s3_upload_passes_total");
  const double catalog_passes = Metric(s, "branchdb_s3_catalog_passes_total");
  for (int i = 0; i < 1200; ++i) {
    if (Metric(s, "branchdb_s3_upload_passes_total") >= segment_passes + 2 &&
        Metric(s, "branchdb_s3_upload_lag_segments") == 0 &&
        Metric(s, "branchdb_s3_catalog_passes_total") >= catalog_passes + 2 &&
        Metric(s, "branchdb_s3_catalog_pending_projects") == 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("the bucket did not catch up within a minute: upload lag "
       << Metric(s, "branchdb_s3_upload_lag_segments") << ", catalog pending "
       << Metric(s, "branchdb_s3_catalog_pending_projects"));
}

// Waits until a catalog backup pass started after this call is done: the
// catalog's changes so far are noted with the store position they need (the
// segment that is the tail now), so that the commits after this call seal it.
// Without it, a pass that notices a change late notes a later tail, and the
// snapshot waits for that one's seal (or for tail chunks).
void WaitForCatalogPass(LiveServer& s) {
  const double passes = Metric(s, "branchdb_s3_catalog_passes_total");
  for (int i = 0; i < 1200; ++i) {
    if (Metric(s, "branchdb_s3_catalog_passes_total") >= passes + 2) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("no catalog backup pass within a minute");
}

// What the project looked like before the wipe.
struct Expected {
  int64_t lsn1 = 0, lsn2 = 0, dev_lsn = 0, last_lsn = 0;
  json project, branches, production_history, dev_history;
};

json WithoutSizes(json branches) {
  for (json& b : branches) {
    b.erase("logical_bytes");
    b.erase("exclusive_bytes");
  }
  return branches;
}

json Get(LiveServer& s, const std::string& path) {
  auto [status, body] = s.Call("GET", path);
  INFO(path << ": " << body.dump());
  REQUIRE(status == 200);
  return body;
}

// Builds the project; every state recorded in Expected is followed by sealed
// segments (Fill), so the bucket holds it without the tail.
Expected BuildProject(LiveServer& s) {
  Expected e;
  REQUIRE(s.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  REQUIRE(s.Call("PATCH", kShop,
                 {{"restore_window_seconds", 3 * 86400}, {"default_branch_ttl_seconds", 7200}})
              .first == 200);
  Sql(s, "production", "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)");
  Sql(s, "production", "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)");
  e.lsn1 = Sql(s, "production", "INSERT INTO kv(v) VALUES ('one')");
  WaitForCatalogPass(s);
  Fill(s, 150 * 1024);
  e.lsn2 = Sql(s, "production", "INSERT INTO kv(v) VALUES ('two')");
  REQUIRE(s.Call("POST", kShop + "/branches/production/checkpoints",
                 {{"label", "v1"}, {"lsn", e.lsn1}}).first == 201);
  REQUIRE(s.Call("POST", kShop + "/branches",
                 {{"name", "dev"}, {"parent", "production"}, {"at", {{"label", "v1"}}}})
              .first == 201);
  e.dev_lsn = Sql(s, "dev", "INSERT INTO kv(v) VALUES ('dev')");
  REQUIRE(s.Call("POST", kShop + "/branches", {{"name", "release"}, {"protected", true}}).first ==
          201);
  REQUIRE(s.Call("POST", kShop + "/branches", {{"name", "tmp"}, {"ttl_seconds", 86400}}).first ==
          201);
  WaitForCatalogPass(s);
  Fill(s, 150 * 1024);  // seals the segments that hold the branches' creation
  e.last_lsn = Sql(s, "production", "INSERT INTO kv(v) VALUES ('three')");
  Fill(s, 150 * 1024);
  e.project = Get(s, kShop);
  e.branches = WithoutSizes(Get(s, kShop + "/branches")["branches"]);
  e.production_history = Get(s, kShop + "/branches/production/checkpoints?limit=1000");
  e.dev_history = Get(s, kShop + "/branches/dev/checkpoints?limit=1000");
  return e;
}

// The restored server holds every state recorded in e, up to the recovery
// point: without tail chunks, production's commits in the unsealed tail (the
// last ones of the final Fill) are not in the bucket, so its head is the last
// commit of a sealed segment, and its history the recorded one up to there.
void CheckRestored(LiveServer& s, const Expected& e) {
  CHECK(Metric(s, "branchdb_s3_restored_projects_total") == 1);
  CHECK(Metric(s, "branchdb_s3_restore_failed_projects_total") == 0);
  CHECK(Get(s, kShop) == e.project);
  CHECK(Get(s, kShop + "/branches/dev/checkpoints?limit=1000") == e.dev_history);
  json history = Get(s, kShop + "/branches/production/checkpoints?limit=1000");
  const int64_t head = history["checkpoints"][0]["lsn"].get<int64_t>();
  CHECK(head >= e.last_lsn);
  json expected_history = e.production_history;
  json& checkpoints = expected_history["checkpoints"];
  while (!checkpoints.empty() && checkpoints[0]["lsn"].get<int64_t>() > head) {
    checkpoints.erase(checkpoints.begin());
  }
  CHECK(history == expected_history);
  json expected_branches = e.branches;
  for (json& b : expected_branches) {
    if (b["name"] == "production") b["head_lsn"] = head;
  }
  CHECK(WithoutSizes(Get(s, kShop + "/branches")["branches"]) == expected_branches);
  CHECK(ValuesAt(s, "production", e.lsn1) == "\"one\"");
  CHECK(ValuesAt(s, "production", e.lsn2) == "\"one,two\"");
  CHECK(ValuesAt(s, "production", e.last_lsn) == "\"one,two,three\"");
  CHECK(ValuesAt(s, "dev", 0) == "\"one,dev\"");
  // The restored project takes writes, and its protection still holds.
  Sql(s, "production", "INSERT INTO kv(v) VALUES ('four')");
  CHECK(ValuesAt(s, "production", 0) == "\"one,two,three,four\"");
  CHECK(s.Call("DELETE", kShop + "/branches/release").first == 409);
  // What came from the bucket sealed is not uploaded again (the restored
  // tail is, once sealed).
  WaitForBucket(s);
  CHECK(Metric(s, "branchdb_s3_uploaded_segments_total") <= 1);
  // The restored rows make the same snapshot: nothing changed, nothing uploaded.
  CHECK(Metric(s, "branchdb_s3_catalog_uploads_total") == 0);
}

// A project whose catalog reached the bucket, then deleted: not restored.
void MakeDeletedProject(LiveServer& s) {
  REQUIRE(s.Call("POST", "/v1/projects", {{"name", "gone"}}).first == 201);
  const std::string sql = "/v1/projects/gone/branches/production/sql";
  REQUIRE(s.Call("POST", sql, {{"sql", "CREATE TABLE t(b BLOB)"}}).first == 200);
  WaitForCatalogPass(s);
  for (int i = 0; i < 3; ++i) {  // seals the segments that hold the project's creation
    REQUIRE(s.Call("POST", sql,
                   {{"sql", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
                            "WHERE i < 16) INSERT INTO t SELECT randomblob(4000) FROM n"}})
                .first == 200);
  }
  WaitForBucket(s);
  REQUIRE(s.Call("DELETE", "/v1/projects/gone").first == 204);
}

std::string ProjectId(const std::string& data_dir) {
  for (const auto& p : std::filesystem::directory_iterator(data_dir + "/projects")) {
    return p.path().filename().string();
  }
  FAIL("no project directory");
  return "";
}


// A project whose whole log is its unsealed tail (small commits: no segment
// sealed), in the bucket as chunks; the server stopped. Its last record is
// the commit of 'three'.
struct SmallTail {
  std::string id, name, bytes;  // the project's id, the tail segment's name and bytes
};

SmallTail BuildSmallTail(const std::string& prefix, const std::string& data_dir) {
  {
    LiveServer s(ServerWithBucket("restore", prefix, data_dir));
    REQUIRE(s.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
    Sql(s, "production", "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)");
    for (const std::string v : {"one", "two", "three"}) {
      Sql(s, "production", "INSERT INTO kv(v) VALUES ('" + v + "')");
    }
    WaitForBucket(s);
  }
  SmallTail t;
  t.id = ProjectId(data_dir);
  for (const auto& f : std::filesystem::directory_iterator(data_dir + "/projects/" + t.id)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("seg-", 0) == 0 && name > t.name) t.name = name;
  }
  t.bytes = ReadFile(data_dir + "/projects/" + t.id + "/" + t.name);
  REQUIRE(t.bytes.size() > 100);
  return t;
}

// The tail's chunks in the bucket replaced by `chunks` (offset -> bytes).
void PutTailChunks(const std::string& prefix, const SmallTail& t,
                   const std::map<uint64_t, std::string>& chunks) {
  auto s3 = S3Client::Open(SharedCephS3().Options("restore"));
  REQUIRE(s3.ok());
  const std::string base = server::ProjectKeyPrefix(prefix, t.id);
  auto listed = (*s3)->ListAll(base + "tail/" + t.name + "/");
  REQUIRE(listed.ok());
  for (const objstore::ObjectInfo& o : *listed) REQUIRE((*s3)->Delete(o.key).ok());
  for (const auto& [offset, bytes] : chunks) {
    REQUIRE((*s3)->Put(base + server::TailChunkSuffix(t.name, offset), bytes).ok());
  }
}

// The bucket's tail chunks of the project: key -> ETag.
std::map<std::string, std::string> TailChunks(const std::string& prefix, const SmallTail& t) {
  auto s3 = S3Client::Open(SharedCephS3().Options("restore"));
  REQUIRE(s3.ok());
  auto listed = (*s3)->ListAll(server::ProjectKeyPrefix(prefix, t.id) + "tail/");
  REQUIRE(listed.ok());
  std::map<std::string, std::string> chunks;
  for (const objstore::ObjectInfo& o : *listed) chunks[o.key] = o.etag;
  return chunks;
}

TEST_CASE("a fresh server on an empty data directory restores the project from the bucket") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  Expected e;
  {
    LiveServer s(ServerWithBucket("restore", "r/a", data_dir));
    MakeDeletedProject(s);
    e = BuildProject(s);
    WaitForBucket(s);
  }
  const std::string id = ProjectId(data_dir);
  std::filesystem::remove_all(data_dir);
  // What a restore that crashed midway leaves: a staged directory, and one
  // renamed into place whose catalog row was never written.
  for (const char* sub : {"/restore/", "/projects/"}) {
    std::filesystem::create_directories(data_dir + sub + id);
    std::ofstream(data_dir + sub + id + "/seg-000001.log") << "half a segment";
  }
  {
    LiveServer fresh(ServerWithBucket("restore", "r/a", data_dir));
    CheckRestored(fresh, e);
    CHECK(fresh.Call("GET", "/v1/projects/gone").first == 404);
    // The restored server goes on with the restored tail: in remote mode each
    // acknowledged commit is in the bucket, as chunks after the restored ones,
    // so that a second restore finds every one of them.
    REQUIRE(fresh.Call("PATCH", kShop, {{"durability", "remote"}}).first == 200);
    Sql(fresh, "production", "INSERT INTO kv(v) VALUES ('five')");
    Sql(fresh, "production", "INSERT INTO kv(v) VALUES ('six')");
  }
  std::filesystem::remove_all(data_dir);
  LiveServer again(ServerWithBucket("restore", "r/a", data_dir));
  CHECK(ValuesAt(again, "production", 0) == "\"one,two,three,four,five,six\"");
}

TEST_CASE("the restore reads the unsealed tail from its chunk objects, up to the first gap") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  Expected e;
  {
    LiveServer s(ServerWithBucket("restore", "r/b", data_dir));
    e = BuildProject(s);
    WaitForBucket(s);
    // Written after the last seal: only in the tail. (The segment sealed by
    // the last Fill goes up once this write starts the next one.)
    e.last_lsn = Sql(s, "production", "INSERT INTO kv(v) VALUES ('three')");
    WaitForBucket(s);
    e.project = Get(s, kShop);
    e.branches = WithoutSizes(Get(s, kShop + "/branches")["branches"]);
    e.production_history = Get(s, kShop + "/branches/production/checkpoints?limit=1000");
  }
  // The tail, as the tail uploader names it: two contiguous chunks, then one
  // after a gap that must be ignored.
  const std::string id = ProjectId(data_dir);
  std::string tail_name;
  for (const auto& f : std::filesystem::directory_iterator(data_dir + "/projects/" + id)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("seg-", 0) == 0 && name > tail_name) tail_name = name;
  }
  std::ifstream in(data_dir + "/projects/" + id + "/" + tail_name, std::ios::binary);
  const std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(tail.size() > 100);
  auto s3 = S3Client::Open(SharedCephS3().Options("restore"));
  REQUIRE(s3.ok());
  const std::string base = server::ProjectKeyPrefix("r/b", id);
  const size_t half = tail.size() / 2;
  REQUIRE((*s3)->Put(base + server::TailChunkSuffix(tail_name, 0), tail.substr(0, half)).ok());
  REQUIRE((*s3)->Put(base + server::TailChunkSuffix(tail_name, half), tail.substr(half)).ok());
  REQUIRE((*s3)->Put(base + server::TailChunkSuffix(tail_name, tail.size() + 10), "junk").ok());

  std::filesystem::remove_all(data_dir);
  LiveServer fresh(ServerWithBucket("restore", "r/b", data_dir));
  // The production head is the tail's last commit, "three" written twice.
  json history = Get(fresh, kShop + "/branches/production/checkpoints?limit=1000");
  CHECK(history == e.production_history);
  CHECK(ValuesAt(fresh, "production", 0) == "\"one,two,three,three\"");
  CHECK(WithoutSizes(Get(fresh, kShop + "/branches")["branches"]) == e.branches);
}

TEST_CASE("chunks of a segment whose sealed copy is in the bucket are not taken for the tail") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  json history;
  {
    LiveServer s(ServerWithBucket("restore", "r/c", data_dir));
    REQUIRE(s.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
    Sql(s, "production", "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)");
    WaitForCatalogPass(s);
    Fill(s, 300 * 1024);
    Sql(s, "production", "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)");
    WaitForBucket(s);
    history = Get(s, kShop + "/branches/production/checkpoints?limit=1000");
  }
  const std::string id = ProjectId(data_dir);
  std::vector<std::string> segments;
  for (const auto& f : std::filesystem::directory_iterator(data_dir + "/projects/" + id)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("seg-", 0) == 0) segments.push_back(name);
  }
  std::sort(segments.begin(), segments.end());
  REQUIRE(segments.size() >= 3);
  auto s3 = S3Client::Open(SharedCephS3().Options("restore"));
  REQUIRE(s3.ok());
  const std::string base = server::ProjectKeyPrefix("r/c", id);
  // Left-over chunks of a sealed segment (a crash before they were dropped),
  // here junk: the sealed copy is used, never them.
  REQUIRE((*s3)->Put(base + server::TailChunkSuffix(segments[1], 0), "junk").ok());

  std::filesystem::remove_all(data_dir);
  LiveServer fresh(ServerWithBucket("restore", "r/c", data_dir));
  CHECK(Get(fresh, kShop + "/branches/production/checkpoints?limit=1000") == history);
}

// The flake of #16: the listing lacked the tail's second chunk (a listing may
// lag behind an acknowledged PUT), the restore took the first for the whole
// tail, the store cut the record it ends within, and the uploader, finding
// the store behind its record, deleted the bucket's chunks. The chunk after
// the listed run is read by its key; every byte of the tail is restored.
TEST_CASE("a tail chunk that the bucket's listing lacks is read by its key") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  const SmallTail t = BuildSmallTail("r/d", data_dir);
  const size_t cut = t.bytes.size() - 10;  // within the last record
  PutTailChunks("r/d", t, {{0, t.bytes.substr(0, cut)}, {cut, t.bytes.substr(cut)}});
  std::filesystem::remove_all(data_dir);
  FaultProxy proxy(SharedCephS3().endpoint());
  proxy.hide_from_listings(server::TailChunkSuffix(t.name, cut));
  {
    LiveServer fresh(ServerWithBucket("restore", "r/d", data_dir, [&](server::Config& c) {
      c.object_storage_endpoint = proxy.endpoint();
    }));
    const std::string restored = ReadFile(data_dir + "/projects/" + t.id + "/" + t.name);
    CHECK(restored.substr(0, t.bytes.size()) == t.bytes);
    CHECK(ValuesAt(fresh, "production", 0) == "\"one,two,three\"");
    proxy.hide_from_listings("");
    REQUIRE(fresh.Call("PATCH", kShop, {{"durability", "remote"}}).first == 200);
    Sql(fresh, "production", "INSERT INTO kv(v) VALUES ('four')");
  }
  std::filesystem::remove_all(data_dir);
  LiveServer again(ServerWithBucket("restore", "r/d", data_dir));
  CHECK(ValuesAt(again, "production", 0) == "\"one,two,three,four\"");
}

// A tail whose last chunk ends within a record (its next chunk never went
// up): the store keeps the whole records, and the uploader goes on by writing
// that chunk again from its start, so that the next restore reads the
// store's bytes, not the torn ones (a chunk at the cut would never be read,
// behind the longer old chunk).
TEST_CASE("a restored tail cut within a record goes on from the start of the chunk holding it") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  const SmallTail t = BuildSmallTail("r/e", data_dir);
  const size_t cut = t.bytes.size() - 10;  // within the last record
  const size_t half = cut / 2;
  PutTailChunks("r/e", t,
                {{0, t.bytes.substr(0, half)}, {half, t.bytes.substr(half, cut - half)}});
  std::filesystem::remove_all(data_dir);
  {
    LiveServer fresh(ServerWithBucket("restore", "r/e", data_dir));
    CHECK(ValuesAt(fresh, "production", 0) == "\"one,two\"");
    REQUIRE(fresh.Call("PATCH", kShop, {{"durability", "remote"}}).first == 200);
    Sql(fresh, "production", "INSERT INTO kv(v) VALUES ('four')");
  }
  std::filesystem::remove_all(data_dir);
  LiveServer again(ServerWithBucket("restore", "r/e", data_dir));
  CHECK(ValuesAt(again, "production", 0) == "\"one,two,four\"");
}

// A store that holds less of its tail than the bucket's chunks (it lost
// bytes; here its upload record says more went up, with an older LSN): the
// chunks may be the only copy of acknowledged commits, so none is deleted or
// written over, and `remote` operations are refused.
TEST_CASE("chunks of a tail the store holds less of are kept, and remote operations refused") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  const SmallTail t = BuildSmallTail("r/f", data_dir);
  const std::string lost = "bytes the store no longer holds";
  auto s3 = S3Client::Open(SharedCephS3().Options("restore"));
  REQUIRE(s3.ok());
  REQUIRE((*s3)->Put(server::ProjectKeyPrefix("r/f", t.id) +
                         server::TailChunkSuffix(t.name, t.bytes.size()),
                     lost)
              .ok());
  const std::string record = data_dir + "/object_storage/" + t.id + ".uploaded";
  std::istringstream lines(ReadFile(record));
  std::string text;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("tail:", 0) == 0) {
      line = "tail:" + t.name + " " + std::to_string(t.bytes.size() + lost.size()) + " 1";
    }
    text += line + "\n";
  }
  std::ofstream(record, std::ios::trunc) << text;
  const std::map<std::string, std::string> before = TailChunks("r/f", t);
  REQUIRE(before.size() >= 2);
  {
    LiveServer s(ServerWithBucket("restore", "r/f", data_dir));
    WaitForBucket(s);
    auto [status, body] = s.Call("PATCH", kShop, {{"durability", "remote"}});
    INFO(body.dump());
    CHECK(status == 503);
    CHECK(body.dump().find("remote_durability_unavailable") != std::string::npos);
  }
  CHECK(TailChunks("r/f", t) == before);
}

// Segment numbers have gaps (here: a crash left the next segment's file
// empty, the next open drops it and never uses its number again): the restore opens the staged store
// itself, from a directory listing, and writes the MANIFEST that names every
// file it put there; every later open (which lists no directory: MANIFEST
// and a probe past its numbers) finds the whole log.
TEST_CASE("a restored log with gaps in its segment numbers is whole at every later open") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  {
    LiveServer s(ServerWithBucket("restore", "r/g", data_dir));
    REQUIRE(s.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
    Sql(s, "production", "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)");
    Sql(s, "production", "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)");
    Sql(s, "production", "INSERT INTO kv(v) VALUES ('one')");
  }
  const std::string id = ProjectId(data_dir);
  const std::string project_dir = data_dir + "/projects/" + id;
  std::string tail;
  for (const auto& f : std::filesystem::directory_iterator(project_dir)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("seg-", 0) == 0 && name > tail) tail = name;
  }
  std::ofstream(project_dir + "/" + server::SegmentName(std::stoull(tail.substr(4)) + 1));
  {
    LiveServer s(ServerWithBucket("restore", "r/g", data_dir));
    Fill(s, 150 * 1024);
    Sql(s, "production", "INSERT INTO kv(v) VALUES ('two')");
    WaitForBucket(s);
  }
  std::vector<uint64_t> numbers;
  for (const auto& f : std::filesystem::directory_iterator(project_dir)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("seg-", 0) == 0) numbers.push_back(std::stoull(name.substr(4)));
  }
  std::sort(numbers.begin(), numbers.end());
  REQUIRE(numbers.size() >= 3);
  CHECK(numbers.back() - numbers.front() + 1 > numbers.size());  // a gap
  std::filesystem::remove_all(data_dir);
  for (int open = 0; open < 2; ++open) {  // restored, then reopened
    LiveServer fresh(ServerWithBucket("restore", "r/g", data_dir));
    CHECK(ValuesAt(fresh, "production", 0) == "\"one,two\"");
  }
}


// A sealed segment larger than the restore's first ranged read (1 MiB; one
// up to 2 MiB is read whole) comes back in two reads and is verified whole
// against its ETag: the store's default segments (64 MiB) are all of this
// kind, where the other cases here use 64 KiB ones.
TEST_CASE("a restore reads a sealed segment larger than its first read whole") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  const auto big = ServerWithBucket("restore", "r/big", data_dir, [](server::Config& c) {
    c.segment_bytes = 3 << 20;
  });
  const std::string sample =
      "SELECT count(*) || ':' || group_concat(hex(substr(b, 1 + id % 3990, 8)), '') FROM blobs";
  std::string before;
  {
    LiveServer s(big);
    REQUIRE(s.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
    Sql(s, "production", "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)");
    Sql(s, "production", "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)");
    Sql(s, "production", "INSERT INTO kv(v) VALUES ('one')");
    Fill(s, 7 << 20);  // two sealed 3 MiB segments and a tail
    Sql(s, "production", "INSERT INTO kv(v) VALUES ('two')");
    WaitForBucket(s);
    before = s.Call("POST", kShop + "/branches/production/sql", {{"sql", sample}})
                 .second["results"][0]["rows"][0][0].dump();
  }
  const std::string id = ProjectId(data_dir);
  int big_sealed = 0;
  for (const auto& f : std::filesystem::directory_iterator(data_dir + "/projects/" + id)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("seg-", 0) == 0 && std::filesystem::file_size(f.path()) > (2u << 20)) {
      ++big_sealed;
    }
  }
  REQUIRE(big_sealed >= 2);  // the tail too may be past 2 MiB; one sealed at least
  std::filesystem::remove_all(data_dir);
  LiveServer fresh(big);
  CHECK(ValuesAt(fresh, "production", 0) == "\"one,two\"");
  auto [status, body] = fresh.Call("POST", kShop + "/branches/production/sql", {{"sql", sample}});
  REQUIRE(status == 200);
  CHECK(body["results"][0]["rows"][0][0].dump() == before);
}

}  // namespace
}  // namespace branchdb::testing
