// A real etcd for a test: scripts/etcd.sh's single member on 127.0.0.1 at a
// free port, in a temporary directory. Never a mock: requests reach etcd's
// own v3 JSON gateway.
//
//   branchdb::testing::Etcd etcd;            // started here, killed at scope end
//   EtcdOptions o; o.endpoints = {etcd.endpoint()};
//
// Starting takes well under a second (installing Debian's etcd-server first
// when it is missing, through scripts/install-deps.sh etcd).
#ifndef BRANCHDB_TESTS_CLUSTER_ETCD_FIXTURE_H_
#define BRANCHDB_TESTS_CLUSTER_ETCD_FIXTURE_H_

#include <string>

#include "tests/util/temp_dir.h"

namespace branchdb::testing {

class Etcd {
 public:
  // Aborts the test program with the script's output when etcd does not come up.
  Etcd();
  ~Etcd();
  Etcd(const Etcd&) = delete;
  Etcd& operator=(const Etcd&) = delete;

  const std::string& endpoint() const { return endpoint_; }  // "http://127.0.0.1:PORT"
  // kill -9 of the member; the endpoint refuses connections afterwards. Idempotent.
  void Stop();

 private:
  TempDir dir_;
  std::string endpoint_;
  bool running_ = false;
};

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_CLUSTER_ETCD_FIXTURE_H_
