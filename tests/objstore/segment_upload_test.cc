// Sealed segments go to the bucket: a real `ApiServer` with [object_storage]
// pointing at a real Ceph RGW (tests/objstore/ceph_s3.h) and small segments;
// after enough commits to seal several, the bucket holds each sealed segment
// byte for byte, the unsealed tail is not there whole but as contiguous
// chunks of its durable bytes, /metrics shows no lag, and a restarted server
// uploads nothing twice. Faults (S3 answering 500s, requests
// timing out, radosgw stopped): commits go on, and once S3 is back the bucket
// holds every sealed segment whole and nothing else.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "objstore/s3_client.h"
#include "tests/objstore/ceph_s3.h"
#include "tests/objstore/server_bucket.h"
#include "tests/objstore/fault_proxy.h"
#include "tests/server/live_server.h"

namespace branchdb::testing {
namespace {

using objstore::S3Client;

struct Api {
  LiveServer& server;
  std::string token = server.AdminToken();
  int Call(const std::string& method, const std::string& path, const nlohmann::json& body,
           nlohmann::json* out = nullptr) {
    auto c = server.Client();
    httplib::Headers h = {{"Authorization", "Bearer " + token}};
    auto r = method == "GET" ? c.Get(path.c_str(), h)
                             : c.Post(path.c_str(), h, body.dump(), "application/json");
    REQUIRE(r);
    if (out != nullptr) *out = nlohmann::json::parse(r->body, nullptr, false);
    return r->status;
  }
  std::string Metrics() {
    auto r = server.Client().Get("/metrics");
    REQUIRE(r);
    return r->body;
  }
};

// The value of an unlabelled series in a /metrics text (-1 when absent).
// Commits about `bytes` of 4 KiB blobs to production of project, 16 rows a commit.
void Write(Api& api, const std::string& project, int bytes) {
  REQUIRE(api.Call("POST", "/v1/projects/" + project + "/branches/production/sql",
                   {{"sql", "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, b BLOB)"}}) == 200);
  for (int written = 0; written < bytes; written += 16 * 4096) {
    REQUIRE(api.Call("POST", "/v1/projects/" + project + "/branches/production/sql",
                     {{"sql", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
                              "WHERE i < 16) INSERT INTO t(b) SELECT randomblob(4000) FROM n"}}) ==
            200);
  }
}

// Waits (up to a minute: a bound for a hung uploader, not a speed check)
// until /metrics shows uploaded segments and no lag after a whole pass.
void WaitUntilUploaded(Api& api, double at_least) {
  for (int i = 0; i < 1200; ++i) {
    const std::string m = api.Metrics();
    if (MetricValue(m, "branchdb_s3_uploaded_segments_total") >= at_least &&
        MetricValue(m, "branchdb_s3_upload_lag_segments") == 0 &&
        MetricValue(m, "branchdb_s3_upload_passes_total") >= 2) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("segments were not uploaded within a minute:\n" << api.Metrics());
}

// Names of the segment files of the project's store directory, sorted.
std::vector<std::string> Segments(const std::string& data_dir) {
  std::vector<std::string> out;
  for (const auto& project : std::filesystem::directory_iterator(data_dir + "/projects")) {
    for (const auto& f : std::filesystem::directory_iterator(project.path())) {
      const std::string name = f.path().filename().string();
      if (name.rfind("seg-", 0) == 0) out.push_back(project.path().filename().string() + "/" + name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("the bucket holds every sealed segment byte for byte, and not the unsealed tail") {
  auto s3 = S3Client::Open(SharedCephS3().Options("segments"));
  REQUIRE(s3.ok());
  LiveServer server(ServerWithBucket("segments", "prod/eu"));
  const std::string data_dir = server.dir_.Sub("data");
  Api api{server};
  REQUIRE(api.Call("POST", "/v1/projects", {{"name", "shop"}}) == 201);
  Write(api, "shop", 400 * 1024);  // about six 64 KiB segments

  std::vector<std::string> local = Segments(data_dir);
  INFO("local segments: " << local.size());
  REQUIRE(local.size() >= 4);
  const size_t sealed = local.size() - 1;  // the newest is the unsealed tail
  WaitUntilUploaded(api, static_cast<double>(sealed));

  auto listed = (*s3)->ListAll("prod/eu/");
  REQUIRE(listed.ok());
  std::set<std::string> keys;
  for (const auto& o : *listed) keys.insert(o.key);
  for (size_t i = 0; i < local.size(); ++i) {
    const std::string key = "prod/eu/" + local[i];
    INFO(key);
    if (i + 1 == local.size()) {
      CHECK_FALSE(keys.count(key));  // the tail: still growing
      continue;
    }
    REQUIRE(keys.count(key));
    auto object = (*s3)->Get(key);
    REQUIRE(object.ok());
    CHECK(*object == ReadFile(data_dir + "/projects/" + local[i]));
  }
  const std::string metrics = api.Metrics();
  CHECK(MetricValue(metrics, "branchdb_s3_errors_total") == 0);
  CHECK(MetricValue(metrics, "branchdb_s3_upload_lag_bytes") == 0);
  CHECK(MetricValue(metrics, "branchdb_s3_uploaded_bytes_total") > 0);

  // The record of what is uploaded lists each sealed segment once.
  const std::string project = local[0].substr(0, local[0].find('/'));
  const std::string state = ReadFile(data_dir + "/object_storage/" + project + ".uploaded");
  size_t lines = std::count(state.begin(), state.end(), '\n');
  CHECK(lines >= sealed);
}

// The value of the series `name{project="project"}` (-1 when absent).
double ProjectMetric(const std::string& text, const std::string& name, const std::string& project) {
  return MetricValue(text, name + "{project=\"" + project + "\"}");
}

// Waits (up to a minute) until /metrics reports project uploaded up to lsn.
void WaitUntilLsnUploaded(Api& api, const std::string& project, double lsn) {
  for (int i = 0; i < 1200; ++i) {
    if (ProjectMetric(api.Metrics(), "branchdb_s3_uploaded_lsn", project) >= lsn) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("LSN " << lsn << " was not uploaded within a minute:\n" << api.Metrics());
}

// The tail chunks of segment_key ("PROJECT_ID/seg-NNNNNN.log") in bucket,
// concatenated after checking that they are contiguous from offset 0.
std::string TailOf(S3Client& s3, const std::string& prefix, const std::string& segment_key) {
  const std::string dir = prefix + segment_key.substr(0, segment_key.find('/')) + "/tail/" +
                          segment_key.substr(segment_key.find('/') + 1) + "/";
  auto listed = s3.ListAll(dir);
  REQUIRE(listed.ok());
  std::string bytes;
  for (const auto& o : *listed) {  // in key order: by offset (16 digits)
    const std::string offset = o.key.substr(dir.size());
    INFO(o.key);
    REQUIRE(offset.size() == 16);
    CHECK(std::stoull(offset) == bytes.size());
    auto chunk = s3.Get(o.key);
    REQUIRE(chunk.ok());
    bytes += *chunk;
  }
  return bytes;
}

// The tail chunks hold the active segment's log, up to its logical end, and
// never its zero region (docs/storage-format.md): the local file is that log
// followed by zeros only (written ahead of it; none once the store closed).
void CheckTailIsLog(const std::string& tail, const std::string& local) {
  REQUIRE(tail.size() <= local.size());
  CHECK(local.compare(0, tail.size(), tail) == 0);
  CHECK(local.find_first_not_of('\0', tail.size()) == std::string::npos);
  // It ends within its last record (whose checksums are not zeros), not in
  // the zero region.
  CHECK(tail.size() - (tail.find_last_not_of('\0') + 1) < 4100);
}

TEST_CASE("the durable tail goes up as contiguous chunks equal to the local bytes") {
  auto s3 = S3Client::Open(SharedCephS3().Options("tails"));
  REQUIRE(s3.ok());
  LiveServer server(ServerWithBucket("tails", "t"));
  const std::string data_dir = server.dir_.Sub("data");
  Api api{server};
  REQUIRE(api.Call("POST", "/v1/projects", {{"name", "tail"}}) == 201);
  Write(api, "tail", 100 * 1024);  // a sealed segment, and a tail of some 40 KiB
  nlohmann::json last;
  REQUIRE(api.Call("POST", "/v1/projects/tail/branches/production/sql",
                   {{"sql", "INSERT INTO t(b) VALUES (randomblob(100))"}}, &last) == 200);
  WaitUntilLsnUploaded(api, "tail", last["lsn"].get<double>());

  const std::vector<std::string> local = Segments(data_dir);
  REQUIRE(local.size() >= 2);
  const std::string active = local.back();
  const std::string bytes = TailOf(**s3, "t/", active);
  CheckTailIsLog(bytes, ReadFile(data_dir + "/projects/" + active));  // nothing written since
  // The sealed segments' chunks went once their sealed copy was in.
  for (size_t i = 0; i + 1 < local.size(); ++i) CHECK(TailOf(**s3, "t/", local[i]).empty());

  // More commits: only new bytes go up, after the recorded ones.
  const double chunks = MetricValue(api.Metrics(), "branchdb_s3_tail_chunks_total");
  REQUIRE(api.Call("POST", "/v1/projects/tail/branches/production/sql",
                   {{"sql", "INSERT INTO t(b) VALUES (randomblob(100))"}}, &last) == 200);
  WaitUntilLsnUploaded(api, "tail", last["lsn"].get<double>());
  CHECK(MetricValue(api.Metrics(), "branchdb_s3_tail_chunks_total") > chunks);
  const std::string now_active = Segments(data_dir).back();
  const std::string now_bytes = TailOf(**s3, "t/", now_active);
  CheckTailIsLog(now_bytes, ReadFile(data_dir + "/projects/" + now_active));

  // The state file records the upload point after the sealed segments.
  const std::string project = active.substr(0, active.find('/'));
  const std::string state = ReadFile(data_dir + "/object_storage/" + project + ".uploaded");
  const std::string tail_line =
      "tail:" + now_active.substr(now_active.find('/') + 1) + " " +
      std::to_string(now_bytes.size()) + " " +
      std::to_string(last["lsn"].get<int64_t>()) + "\n";
  CHECK(state.size() >= tail_line.size());
  CHECK(state.substr(state.size() - tail_line.size()) == tail_line);
}

TEST_CASE("a restarted server does not upload again what is recorded as uploaded") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  size_t sealed = 0;
  double uploaded_lsn = 0;
  {
    LiveServer server(ServerWithBucket("restart", "", data_dir));
    Api api{server};
    REQUIRE(api.Call("POST", "/v1/projects", {{"name", "p"}}) == 201);
    Write(api, "p", 200 * 1024);
    sealed = Segments(data_dir).size() - 1;
    REQUIRE(sealed >= 2);
    WaitUntilUploaded(api, static_cast<double>(sealed));
    for (int i = 0; i < 1200 && uploaded_lsn <= 0; ++i) {  // the tail's first upload
      uploaded_lsn = ProjectMetric(api.Metrics(), "branchdb_s3_uploaded_lsn", "p");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(uploaded_lsn > 0);
  }
  LiveServer again(ServerWithBucket("restart", "", data_dir));
  Api api{again};
  // After a whole pass, with nothing sealed since: nothing uploaded twice,
  // and the upload point recorded before the restart is reported.
  WaitUntilUploaded(api, 0);
  CHECK(MetricValue(api.Metrics(), "branchdb_s3_uploaded_segments_total") == 0);
  CHECK(ProjectMetric(api.Metrics(), "branchdb_s3_uploaded_lsn", "p") >= uploaded_lsn);
  // New segments sealed after the restart go up (and only they).
  const size_t before = Segments(data_dir).size();
  Write(api, "p", 200 * 1024);
  const size_t added = Segments(data_dir).size() - before;
  REQUIRE(added >= 1);
  WaitUntilUploaded(api, static_cast<double>(added));
  CHECK(MetricValue(api.Metrics(), "branchdb_s3_uploaded_segments_total") == added);
}

// Every sealed local segment of the project (local: Segments(), the newest
// being the tail) is in bucket byte for byte, and the bucket holds nothing
// else of it but tail chunks, its catalog snapshots and descriptor
// (tests/objstore/restore_test.cc): no half-uploaded segment, no whole tail.
void CheckBucketMirrorsSealed(const std::string& bucket, const std::string& data_dir,
                              const std::vector<std::string>& local) {
  auto s3 = S3Client::Open(SharedCephS3().Options(bucket));
  REQUIRE(s3.ok());
  const std::string project = local[0].substr(0, local[0].find('/'));
  auto listed = (*s3)->ListAll(project + "/");
  REQUIRE(listed.ok());
  std::vector<std::string> keys;  // tail chunks, catalog snapshots: checked elsewhere
  for (const auto& o : *listed) {
    const std::string rest = o.key.substr(project.size() + 1);
    if (rest.rfind("tail/", 0) != 0 && rest.rfind("catalog/", 0) != 0 && rest != "project.json") {
      keys.push_back(o.key);
    }
  }
  const std::vector<std::string> sealed(local.begin(), local.end() - 1);
  CHECK(keys == sealed);
  for (const std::string& key : sealed) {
    INFO(key);
    auto object = (*s3)->Get(key);
    REQUIRE(object.ok());
    CHECK(*object == ReadFile(data_dir + "/projects/" + key));
  }
}

// A server whose bucket requests go to endpoint (300 ms timeouts): while S3 is
// broken by break_s3(), every commit of about 300 KiB is acknowledged and
// /metrics shows failed uploads and a lag; once heal_s3() has run, every
// sealed segment goes up, the bucket mirrors them exactly, and every
// acknowledged row is there.
void CommitThroughFault(const std::string& bucket, const std::string& endpoint,
                        const std::function<void()>& break_s3,
                        const std::function<void()>& heal_s3) {
  LiveServer server([&](server::Config& c) {
    ServerWithBucket(bucket, "")(c);
    c.object_storage_endpoint = endpoint;
    c.object_storage_timeout_ms = 300;
  });
  const std::string data_dir = server.dir_.Sub("data");
  Api api{server};
  REQUIRE(api.Call("POST", "/v1/projects", {{"name", "f"}}) == 201);

  break_s3();
  Write(api, "f", 300 * 1024);  // REQUIREs every commit acknowledged
  const std::vector<std::string> local = Segments(data_dir);
  REQUIRE(local.size() >= 3);
  for (int i = 0; i < 1200; ++i) {  // until a failed upload is counted
    const std::string m = api.Metrics();
    if (MetricValue(m, "branchdb_s3_errors_total") > 0 &&
        MetricValue(m, "branchdb_s3_upload_lag_segments") > 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string m = api.Metrics();
  CHECK(MetricValue(m, "branchdb_s3_errors_total") > 0);
  CHECK(MetricValue(m, "branchdb_s3_upload_lag_segments") >= 1);
  CHECK(MetricValue(m, "branchdb_s3_upload_lag_bytes") > 0);

  heal_s3();
  WaitUntilUploaded(api, static_cast<double>(local.size() - 1));
  CheckBucketMirrorsSealed(bucket, data_dir, local);
  nlohmann::json rows;
  REQUIRE(api.Call("POST", "/v1/projects/f/branches/production/sql",
                   {{"sql", "SELECT count(*) FROM t"}}, &rows) == 200);
  CHECK(rows["results"][0]["rows"][0][0] == 16 * ((300 * 1024 + 16 * 4096 - 1) / (16 * 4096)));
}

TEST_CASE("while S3 answers 500s commits go on; once it is back, every sealed segment goes up") {
  FaultProxy proxy(SharedCephS3().endpoint());
  CommitThroughFault(
      "faults-500", proxy.endpoint(), [&] { proxy.set_mode(FaultProxy::kServerError); },
      [&] { proxy.set_mode(FaultProxy::kForward); });
  CHECK(proxy.failed_requests() > 0);
}

TEST_CASE("while S3 requests time out commits go on; once S3 answers, every sealed segment goes up") {
  FaultProxy proxy(SharedCephS3().endpoint());
  CommitThroughFault(
      "faults-timeout", proxy.endpoint(), [&] { proxy.set_mode(FaultProxy::kHang); },
      [&] { proxy.set_mode(FaultProxy::kForward); });
  CHECK(proxy.held_requests() > 0);
}

TEST_CASE("while radosgw is stopped commits go on; once it is restarted, every sealed segment goes up") {
  CephS3& s3 = SharedCephS3();
  CommitThroughFault(
      "faults-stopped", s3.endpoint(), [&] { s3.StopGateway(); }, [&] { s3.StartGateway(); });
}

TEST_CASE("a server whose bucket cannot be reached with its keys refuses to start") {
  server::Config config;
  ServerWithBucket("refused", "")(config);
  config.object_storage_secret_access_key = "wrong-secret";
  TempDir dir;
  config.listen = "127.0.0.1:0";
  config.data_dir = dir.Sub("data");
  auto server = server::ApiServer::Create(config, Env::Default());
  REQUIRE_FALSE(server.ok());
  CHECK(server.status().message().find("object storage") != std::string::npos);
  CHECK(server.status().message().find("wrong-secret") == std::string::npos);
}

}  // namespace
}  // namespace branchdb::testing
