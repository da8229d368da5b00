#include "tests/objstore/ceph_s3.h"

#include <cstdlib>
#include <fstream>
#include <iostream>

#include "tests/util/fixture_process.h"

namespace branchdb::testing {
namespace {

const std::string kScript = std::string(BRANCHDB_SOURCE_DIR) + "/scripts/ceph-s3.sh";

}  // namespace

CephS3::CephS3() {
  const int port = FreeTcpPort();
  std::string output;
  const int rc =
      RunCommand(kScript + " start " + dir_.path() + " " + std::to_string(port), &output);
  if (rc != 0) {
    std::cerr << "CephS3: " << kScript << " start failed (exit " << rc << "):\n" << output;
    std::abort();
  }
  running_ = true;
  std::ifstream env(dir_.Sub("s3.env"));
  std::string line;
  while (std::getline(env, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "endpoint") endpoint_ = value;
    if (key == "access_key_id") access_key_id_ = value;
    if (key == "secret_access_key") secret_access_key_ = value;
  }
  if (endpoint_.empty() || access_key_id_.empty() || secret_access_key_.empty()) {
    std::cerr << "CephS3: " << dir_.Sub("s3.env") << " lacks endpoint or keys\n" << output;
    Stop();
    std::abort();
  }
}

CephS3::~CephS3() { Stop(); }

void CephS3::Stop() {
  if (!running_) return;
  running_ = false;
  std::string output;
  if (RunCommand(kScript + " stop " + dir_.path(), &output) != 0) {
    std::cerr << "CephS3: stop failed:\n" << output;
  }
}

void CephS3::StopGateway() { RunOrAbort("stop-rgw"); }

void CephS3::StartGateway() { RunOrAbort("start-rgw"); }

void CephS3::RunOrAbort(const std::string& command) {
  std::string output;
  const int rc = RunCommand(kScript + " " + command + " " + dir_.path(), &output);
  if (rc != 0) {
    std::cerr << "CephS3: " << kScript << " " << command << " failed (exit " << rc << "):\n"
              << output;
    Stop();  // abort runs no destructor: the monitor and the OSD would outlive the test
    std::abort();
  }
}

objstore::S3Options CephS3::Options(const std::string& bucket) const {
  objstore::S3Options options;
  options.endpoint = endpoint_;
  options.bucket = bucket;
  options.access_key_id = access_key_id_;
  options.secret_access_key = secret_access_key_;
  options.retry_base_ms = 10;
  options.retry_max_ms = 100;
  return options;
}

CephS3& SharedCephS3() {
  static CephS3 fixture;
  return fixture;
}

}  // namespace branchdb::testing
