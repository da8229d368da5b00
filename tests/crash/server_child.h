// A branchdb server in a forked child process, for kill -9 tests: the child
// serves on 127.0.0.1 (a free port, reported through a pipe) until the test
// kills it with SIGKILL (Kill, or the destructor).
#ifndef BRANCHDB_TESTS_CRASH_SERVER_CHILD_H_
#define BRANCHDB_TESTS_CRASH_SERVER_CHILD_H_

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/env.h"
#include "server/config.h"
#include "server/server.h"

namespace branchdb::testing {

class ServerChild {
 public:
  // tweak adjusts the child's config (data_dir, listen and log level set).
  ServerChild(const std::string& data_dir,
              const std::function<void(server::Config&)>& tweak = nullptr) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      close(fds[0]);
      Serve(data_dir, tweak, fds[1]);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], &port_, sizeof port_);
    close(fds[0]);
    REQUIRE(n == static_cast<ssize_t>(sizeof port_));
  }
  ~ServerChild() { Kill(); }
  ServerChild(const ServerChild&) = delete;
  ServerChild& operator=(const ServerChild&) = delete;

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  int port() const { return port_; }

 private:
  // The child: serves until killed; reports its port through fd. Never returns.
  [[noreturn]] static void Serve(const std::string& data_dir,
                                 const std::function<void(server::Config&)>& tweak, int fd) {
    server::Config c;
    c.listen = "127.0.0.1:0";
    c.data_dir = data_dir;
    c.sweep_interval_seconds = 3600;
    c.log_level = "off";
    if (tweak) tweak(c);
    auto s = server::ApiServer::Create(c, Env::Default());
    if (!s.ok()) _exit(2);
    auto port = (*s)->Bind();
    if (!port.ok()) _exit(3);
    int p = *port;
    if (write(fd, &p, sizeof p) != sizeof p) _exit(4);
    (void)(*s)->Serve();
    _exit(0);
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

// An access token of the client creds ({"client_id", "client_secret"}, as in
// the admin credentials file) from the server on port.
inline std::string Token(int port, const nlohmann::json& creds) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120);
  c.set_basic_auth(creds["client_id"].get<std::string>().c_str(),
                   creds["client_secret"].get<std::string>().c_str());
  auto r = c.Post("/oauth/token", "grant_type=client_credentials",
                  "application/x-www-form-urlencoded");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return nlohmann::json::parse(r->body)["access_token"];
}

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_CRASH_SERVER_CHILD_H_
