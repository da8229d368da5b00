#include "tests/cluster/etcd_fixture.h"

#include <cstdlib>
#include <iostream>

#include "tests/util/fixture_process.h"

namespace branchdb::testing {
namespace {

const std::string kScript = std::string(BRANCHDB_SOURCE_DIR) + "/scripts/etcd.sh";

}  // namespace

Etcd::Etcd() {
  const int port = FreeTcpPort();
  std::string output;
  const int rc =
      RunCommand(kScript + " start " + dir_.path() + " " + std::to_string(port), &output);
  if (rc != 0) {
    std::cerr << "Etcd: " << kScript << " start failed (exit " << rc << "):\n" << output;
    std::abort();
  }
  running_ = true;
  endpoint_ = "http://127.0.0.1:" + std::to_string(port);
}

Etcd::~Etcd() { Stop(); }

void Etcd::Stop() {
  if (!running_) return;
  running_ = false;
  std::string output;
  if (RunCommand(kScript + " stop " + dir_.path(), &output) != 0) {
    std::cerr << "Etcd: stop failed:\n" << output;
  }
}

}  // namespace branchdb::testing
