// A `branchdb serve` configured for the Ceph fixture's bucket (tests of
// server/object_storage): what every such test sets the same way.
#ifndef BRANCHDB_TESTS_OBJSTORE_SERVER_BUCKET_H_
#define BRANCHDB_TESTS_OBJSTORE_SERVER_BUCKET_H_

#include <fstream>
#include <sstream>
#include <string>

#include "server/config.h"
#include "tests/objstore/ceph_s3.h"

namespace branchdb::testing {

// The shared fixture's endpoint and keys, and bucket, in c.
inline void UseFixtureBucket(server::Config& c, const std::string& bucket) {
  const CephS3& s3 = SharedCephS3();
  c.object_storage_endpoint = s3.endpoint();
  c.object_storage_bucket = bucket;
  c.object_storage_access_key_id = s3.access_key_id();
  c.object_storage_secret_access_key = s3.secret_access_key();
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
