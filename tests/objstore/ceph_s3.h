// A real S3 endpoint for a test: scripts/ceph-s3.sh's single-node Ceph (one
// monitor, one memstore OSD, radosgw on 127.0.0.1 at a free port) in a
// temporary directory. Never a mock: requests reach the real RADOS Gateway.
//
//   auto& s3 = branchdb::testing::SharedCephS3();   // started once per process
//   auto client = S3Client::Open(s3.Options("my-bucket"));
//
// Start() takes about 2-4 s (and installs the Debian packages first when they
// are missing, through scripts/install-deps.sh s3). Stop() (also run by the
// destructor) kills radosgw, then the OSD, then the monitor.
#ifndef BRANCHDB_TESTS_OBJSTORE_CEPH_S3_H_
#define BRANCHDB_TESTS_OBJSTORE_CEPH_S3_H_

#include <memory>
#include <string>

#include "objstore/s3_client.h"
#include "tests/util/fixture_process.h"  // FreeTcpPort, for the tests of a bucket
#include "tests/util/temp_dir.h"

namespace branchdb::testing {

class CephS3 {
 public:
  // Starts the fixture; aborts the test program with the script's output when
  // it does not come up.
  CephS3();
  ~CephS3();
  CephS3(const CephS3&) = delete;
  CephS3& operator=(const CephS3&) = delete;

  const std::string& endpoint() const { return endpoint_; }  // "http://127.0.0.1:PORT"
  const std::string& access_key_id() const { return access_key_id_; }
  const std::string& secret_access_key() const { return secret_access_key_; }
  // Client options for bucket on this endpoint, with short retry waits.
  objstore::S3Options Options(const std::string& bucket) const;

  // Stops every daemon; the endpoint refuses connections afterwards. Idempotent.
  void Stop();

  // Stops radosgw only (the endpoint refuses connections; the data stays), and
  // starts it again on the same port, returning once a signed PUT answers 200.
  // Abort the test program when the script fails (after stopping the fixture).
  void StopGateway();
  void StartGateway();

 private:
  void RunOrAbort(const std::string& command);  // ceph-s3.sh COMMAND DIR

  TempDir dir_;
  std::string endpoint_;
  std::string access_key_id_;
  std::string secret_access_key_;
  bool running_ = false;
};

// One fixture per test process, started on first use, stopped at exit.
CephS3& SharedCephS3();

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_OBJSTORE_CEPH_S3_H_
