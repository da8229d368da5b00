// Sealed segments go to the bucket: a real `ApiServer` with [object_storage]
// pointing at a real Ceph RGW (tests/objstore/ceph_s3.h) and small segments;
// after enough commits to seal several, the bucket holds each sealed segment
// byte for byte, the unsealed tail is not there, /metrics shows no lag, and a
// restarted server uploads nothing twice.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "objstore/s3_client.h"
#include "tests/objstore/ceph_s3.h"
#include "tests/server/live_server.h"

namespace branchdb::testing {
namespace {

using objstore::S3Client;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The server's config for the shared fixture's bucket, under prefix.
std::function<void(server::Config&)> WithObjectStorage(const std::string& bucket,
                                                       const std::string& prefix,
                                                       const std::string& data_dir = "") {
  return [=](server::Config& c) {
    const CephS3& s3 = SharedCephS3();
    c.object_storage_endpoint = s3.endpoint();
    c.object_storage_bucket = bucket;
    c.object_storage_access_key_id = s3.access_key_id();
    c.object_storage_secret_access_key = s3.secret_access_key();
    c.object_storage_prefix = prefix;
    c.object_storage_upload_interval_ms = 50;
    c.segment_bytes = 65536;
    if (!data_dir.empty()) c.data_dir = data_dir;
  };
}

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
double MetricValue(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

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
  LiveServer server(WithObjectStorage("segments", "prod/eu"));
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

TEST_CASE("a restarted server does not upload again what is recorded as uploaded") {
  TempDir dir;
  const std::string data_dir = dir.Sub("data");
  size_t sealed = 0;
  {
    LiveServer server(WithObjectStorage("restart", "", data_dir));
    Api api{server};
    REQUIRE(api.Call("POST", "/v1/projects", {{"name", "p"}}) == 201);
    Write(api, "p", 200 * 1024);
    sealed = Segments(data_dir).size() - 1;
    REQUIRE(sealed >= 2);
    WaitUntilUploaded(api, static_cast<double>(sealed));
  }
  LiveServer again(WithObjectStorage("restart", "", data_dir));
  Api api{again};
  // After a whole pass, with nothing sealed since: nothing uploaded twice.
  WaitUntilUploaded(api, 0);
  CHECK(MetricValue(api.Metrics(), "branchdb_s3_uploaded_segments_total") == 0);
  // New segments sealed after the restart go up (and only they).
  const size_t before = Segments(data_dir).size();
  Write(api, "p", 200 * 1024);
  const size_t added = Segments(data_dir).size() - before;
  REQUIRE(added >= 1);
  WaitUntilUploaded(api, static_cast<double>(added));
  CHECK(MetricValue(api.Metrics(), "branchdb_s3_uploaded_segments_total") == added);
}

TEST_CASE("a server whose bucket cannot be reached with its keys refuses to start") {
  server::Config config;
  WithObjectStorage("refused", "")(config);
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
