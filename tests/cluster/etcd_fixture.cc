#include "tests/cluster/etcd_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace branchdb::testing {
namespace {

const std::string kScript = std::string(BRANCHDB_SOURCE_DIR) + "/scripts/etcd.sh";

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

// A TCP port that was free a moment ago on 127.0.0.1.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

Etcd::Etcd() {
  const int port = FreePort();
  std::string output;
  const int rc = Run(kScript + " start " + dir_.path() + " " + std::to_string(port), &output);
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
  if (Run(kScript + " stop " + dir_.path(), &output) != 0) {
    std::cerr << "Etcd: stop failed:\n" << output;
  }
}

}  // namespace branchdb::testing
