// A `branchdb serve` configured for the Ceph fixture's bucket (tests of
// server/object_storage): what every such test sets the same way.
#ifndef BRANCHDB_TESTS_OBJSTORE_SERVER_BUCKET_H_
#define BRANCHDB_TESTS_OBJSTORE_SERVER_BUCKET_H_

#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "server/config.h"
#include "tests/objstore/ceph_s3.h"
#include "tests/server/live_server.h"

namespace branchdb::testing {

// The shared fixture's endpoint and keys, and bucket, in c.
inline void UseFixtureBucket(server::Config& c, const std::string& bucket) {
  const CephS3& s3 = SharedCephS3();
  c.object_storage_endpoint = s3.endpoint();
  c.object_storage_bucket = bucket;
  c.object_storage_access_key_id = s3.access_key_id();
  c.object_storage_secret_access_key = s3.secret_access_key();
}

// A server of the tests of the bucket: the fixture's bucket under prefix,
// a pass every 50 ms, 64 KiB segments (so that a few commits seal some), in
// data_dir when given; then more (e.g. local_cache_mb), when given.
inline std::function<void(server::Config&)> ServerWithBucket(
    const std::string& bucket, const std::string& prefix, const std::string& data_dir = "",
    std::function<void(server::Config&)> more = {}) {
  return [=](server::Config& c) {
    UseFixtureBucket(c, bucket);
    c.object_storage_prefix = prefix;
    c.object_storage_upload_interval_ms = 50;
    c.segment_bytes = 65536;
    if (!data_dir.empty()) c.data_dir = data_dir;
    if (more) more(c);
  };
}

// The value of an unlabelled family in /metrics text; -1 when absent.
inline double MetricValue(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

// The same, read from server's /metrics now.
inline double Metric(LiveServer& s, const std::string& name) {
  auto r = s.Client().Get("/metrics");
  REQUIRE(r);
  return MetricValue(r->body, name);
}

// A whole local file (a segment, to compare with the bucket's copy).
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_OBJSTORE_SERVER_BUCKET_H_
