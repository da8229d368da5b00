#include "tests/objstore/ceph_s3.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

namespace branchdb::testing {
namespace {

const std::string kScript = std::string(BRANCHDB_SOURCE_DIR) + "/scripts/ceph-s3.sh";

// Runs command; its exit code, with stdout and stderr in *output.
int Run(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1 </dev/null").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output->append(buf, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

int FreeTcpPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 0;
  }
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

CephS3::CephS3() {
  const int port = FreeTcpPort();
  std::string output;
  const int rc = Run(kScript + " start " + dir_.path() + " " + std::to_string(port), &output);
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
  if (Run(kScript + " stop " + dir_.path(), &output) != 0) {
    std::cerr << "CephS3: stop failed:\n" << output;
  }
}

void CephS3::StopGateway() { RunOrAbort("stop-rgw"); }

void CephS3::StartGateway() { RunOrAbort("start-rgw"); }

void CephS3::RunOrAbort(const std::string& command) {
  std::string output;
  const int rc = Run(kScript + " " + command + " " + dir_.path(), &output);
  if (rc != 0) {
    std::cerr << "CephS3: " << kScript << " " << command << " failed (exit " << rc << "):\n"
              << output;
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
