// Test helpers of the C++ SDK tests:
//  - TestServer: a real `branchdb serve` (binary from $BRANCHDB_TEST_SERVER)
//    on a free port (--listen 127.0.0.1:0, the address read from its log) with
//    a temporary data directory; the admin credentials from
//    DATA_DIR/admin-credentials.json.
//  - FaultProxy: a TCP proxy in front of it that injects network faults per
//    request: drop the answer after the server applied the request, or answer
//    a status (503/429) itself without forwarding. It records what it saw.
#ifndef BRANCHDB_TESTS_SDK_CPP_TEST_SERVER_H_
#define BRANCHDB_TESTS_SDK_CPP_TEST_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "branchdb/client.h"

namespace branchdb::client::testing {

class TestServer {
 public:
  // Starts the server; `env` entries ("NAME=value") are added to its
  // environment. Fails the running test (Catch2 REQUIRE) when it does not come up.
  explicit TestServer(std::vector<std::string> env = {});
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  const std::string& url() const { return url_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& tmp_dir() const { return tmp_; }
  const AdminCredentials& admin() const { return admin_; }
  std::string Log() const;
  // SIGTERM, then waits for the process to end (the log stays readable).
  void Stop();

  // Options for an admin client of this server (fast retries for tests).
  ClientOptions AdminOptions() const;
  // A client as admin (REQUIREs success).
  std::unique_ptr<Client> AdminClient() const;

  // One server shared by the test cases of a binary (started on first use).
  static TestServer& Shared();

 private:
  std::string tmp_, data_dir_, log_path_, url_;
  AdminCredentials admin_;
  pid_t pid_ = -1;
};

// A unique name for a test's project: "<prefix>-<counter>-<pid>".
std::string UniqueName(const std::string& prefix);

class FaultProxy {
 public:
  enum class Action { kForward, kDropResponse, kRespond503, kRespond429 };
  struct Seen {
    std::string method, path;
    std::map<std::string, std::string> headers;  // lower-case names
    Action action = Action::kForward;
  };

  // Listens on 127.0.0.1:<free port> and forwards to target_url (http://host:port).
  explicit FaultProxy(const std::string& target_url);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  const std::string& url() const { return url_; }
  // The next `times` requests whose method matches and whose path contains
  // path_part get `action`.
  void Inject(const std::string& method, const std::string& path_part, Action action,
              int times = 1);
  std::vector<Seen> seen() const;
  // The requests seen whose path contains path_part.
  std::vector<Seen> SeenMatching(const std::string& method, const std::string& path_part) const;

 private:
  struct Rule {
    std::string method, path_part;
    Action action;
    int remaining;
  };
  void AcceptLoop();
  void Serve(int fd);
  Action Decide(const std::string& method, const std::string& path);

  std::string target_host_;
  int target_port_ = 0;
  int listen_fd_ = -1;
  std::string url_;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::vector<Rule> rules_;             // guarded by mu_
  std::vector<Seen> seen_;              // guarded by mu_
  std::vector<std::thread> workers_;    // guarded by mu_
  std::vector<int> open_fds_;           // guarded by mu_
};

}  // namespace branchdb::client::testing

#endif  // BRANCHDB_TESTS_SDK_CPP_TEST_SERVER_H_
