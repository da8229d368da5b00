// The local directory as a bounded cache: a real `ApiServer` with
// [object_storage] local_cache_mb = 1 on the Ceph RGW fixture and 64 KiB
// segments writes a few MiB of history; its sealed segments are evicted
// once verified in the bucket, and reads at old LSNs, checkpoints, diff, GC
// and a restart work from the bucket. With radosgw stopped, a read of evicted
// history is a 503 with the reason, nothing is truncated, and the same read
// works once radosgw is back. Without [object_storage] the server refuses
// to start on that data directory.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "catalog/catalog.h"
#include "server/services.h"
#include "tests/objstore/ceph_s3.h"
#include "tests/objstore/server_bucket.h"
#include "tests/server/live_server.h"

namespace branchdb::testing {
namespace {

using nlohmann::json;

const std::string kShop = "/v1/projects/shop";

int64_t Sql(LiveServer& s, const std::string& sql) {
  auto [status, body] = s.Call("POST", kShop + "/branches/production/sql", {{"sql", sql}});
  INFO(body.dump());
  REQUIRE(status == 200);
  return body["lsn"].get<int64_t>();
}

// The first cell of sql's answer on production as of lsn: status and body.
std::pair<int, json> QueryAt(LiveServer& s, int64_t lsn, const std::string& sql) {
  return s.Call("POST", kShop + "/branches/production/sql", {{"sql", sql}, {"lsn", lsn}});
}

std::string CellAt(LiveServer& s, int64_t lsn, const std::string& sql) {
  auto [status, body] = QueryAt(s, lsn, sql);
  INFO(body.dump());
  REQUIRE(status == 200);
  return body["results"][0]["rows"][0][0].dump();
}

// Commits about `bytes` of 4 KiB blobs, 16 rows a commit (about one 64 KiB
// segment each, so each seals the one before).
void Fill(LiveServer& s, int bytes) {
  for (int written = 0; written < bytes; written += 16 * 4096) {
    Sql(s,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 16) "
        "INSERT INTO blobs(b) SELECT randomblob(4000) FROM n");
  }
}

// Waits (a bound for a hung uploader, not a speed check) until at least
// `segments` are evicted and the local sealed bytes are within the budget.
void WaitForEviction(LiveServer& s, double segments) {
  for (int i = 0; i < 1200; ++i) {
    if (Metric(s, "branchdb_s3_evicted_segments") >= segments &&
        Metric(s, "branchdb_s3_cache_local_bytes") <= 1 << 20) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("no eviction within a minute: evicted " << Metric(s, "branchdb_s3_evicted_segments")
                                               << ", local bytes "
                                               << Metric(s, "branchdb_s3_cache_local_bytes"));
}

// The project's files on disk: segments (local), stubs (evicted), and their bytes.
struct Disk {
  int local = 0, stubs = 0;
  uint64_t local_bytes = 0;
};
Disk ReadDisk(const std::string& data_dir) {
  Disk d;
  for (const auto& p : std::filesystem::directory_iterator(data_dir + "/projects")) {
    for (const auto& f : std::filesystem::directory_iterator(p.path())) {
      const std::string name = f.path().filename().string();
      if (name.rfind("seg-", 0) != 0) continue;
      if (name.size() > 3 && name.substr(name.size() - 3) == ".s3") {
        ++d.stubs;
      } else {
        ++d.local;
        d.local_bytes += f.file_size();
      }
    }
  }
  return d;
}

const char* kValues = "SELECT group_concat(v, ',') FROM (SELECT v FROM kv ORDER BY k)";
const char* kBlobBytes = "SELECT count(*) || ':' || sum(length(b)) FROM blobs";

TEST_CASE("evicted history is read back from the bucket, across a restart and an S3 outage") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  auto tweak = ServerWithBucket("tiering", "t", data_dir,
                                [](server::Config& c) { c.object_storage_local_cache_mb = 1; });
  int64_t lsn1 = 0, lsn2 = 0, lsn3 = 0;
  std::string blobs2, blobs3;
  Disk evicted;
  {
    LiveServer s(tweak);
    REQUIRE(s.Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
    Sql(s, "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT)");
    Sql(s, "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)");
    lsn1 = Sql(s, "INSERT INTO kv(v) VALUES ('one')");
    Fill(s, 1 << 20);
    lsn2 = Sql(s, "INSERT INTO kv(v) VALUES ('two')");
    blobs2 = CellAt(s, lsn2, kBlobBytes);
    Fill(s, 1 << 20);
    lsn3 = Sql(s, "UPDATE kv SET v = 'three' WHERE k = 1");
    Fill(s, 1 << 20);
    blobs3 = CellAt(s, lsn3, kBlobBytes);
    WaitForEviction(s, 20);
    evicted = ReadDisk(data_dir);
    CHECK(evicted.stubs >= 20);
    CHECK(Metric(s, "branchdb_s3_evictions_total") >= 20);

    CHECK(CellAt(s, lsn1, kValues) == "\"one\"");
    CHECK(CellAt(s, lsn2, kValues) == "\"one,two\"");
    CHECK(CellAt(s, lsn2, kBlobBytes) == blobs2);  // every blob page of lsn2: evicted segments
    CHECK(CellAt(s, lsn3, kValues) == "\"three,two\"");
    CHECK(Metric(s, "branchdb_s3_fetches_total") > 0);
    auto [cs, cluster] = s.Call("GET", "/v1/cluster");
    INFO(cluster.dump());
    CHECK(cs == 200);
    CHECK(cluster["cache"]["evicted_segments"].get<int>() >= 20);
    CHECK(cluster["cache"]["fetches"].get<int>() > 0);
    auto [hs, history] = s.Call("GET", kShop + "/branches/production/checkpoints?limit=1000");
    CHECK(hs == 200);
    CHECK(history["checkpoints"].size() > 40);
    REQUIRE(s.Call("POST", kShop + "/branches",
                   {{"name", "old"}, {"parent", "production"}, {"at", {{"lsn", lsn2}}}})
                .first == 201);
    auto [ds, diff] = s.Call("GET", kShop + "/branches/old/diff?kind=schema");
    INFO(diff.dump());
    CHECK(ds == 200);
    auto gc = s.server_->services().catalog->Gc("shop");
    INFO((gc.ok() ? "" : gc.status().ToString()));
    CHECK(gc.ok());
    CHECK(CellAt(s, lsn2, kValues) == "\"one,two\"");
  }
  {
    LiveServer s(tweak);  // a restart: the store opens over stubs
    CHECK(CellAt(s, lsn3, kBlobBytes) == blobs3);
    CHECK(CellAt(s, lsn1, kValues) == "\"one\"");
  }
  {
    LiveServer s(tweak);  // fresh caches: the next reads need the bucket
    const Disk before = ReadDisk(data_dir);
    // First the store's Open fails (it reads each evicted segment's header
    // and index); then, the store open (the fetch cache keeps 1 MiB of what
    // Open read: the newest segments), a read of the oldest blobs' pages.
    for (bool opened : {false, true}) {
      INFO("store open: " << opened);
      if (opened) CHECK(CellAt(s, lsn3, kValues) == "\"three,two\"");
      SharedCephS3().StopGateway();
      auto [status, body] = QueryAt(s, lsn2, kBlobBytes);
      INFO(body.dump());
      CHECK(status == 503);
      CHECK(body.dump().find("object_storage_unavailable") != std::string::npos);
      CHECK(Metric(s, "branchdb_s3_tier_errors_total") > 0);
      SharedCephS3().StartGateway();
    }
    CHECK(CellAt(s, lsn2, kBlobBytes) == blobs2);
    CHECK(CellAt(s, lsn3, kValues) == "\"three,two\"");
    const Disk after = ReadDisk(data_dir);  // nothing truncated or dropped
    CHECK(after.local + after.stubs >= before.local + before.stubs);
  }
  // Without [object_storage], the evicted history would look truncated: the
  // server refuses to start.
  server::Config plain;
  plain.listen = "127.0.0.1:0";
  plain.data_dir = data_dir;
  auto refused = server::ApiServer::Create(plain, Env::Default());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().reason() == "evicted_segments");
}

}  // namespace
}  // namespace branchdb::testing
