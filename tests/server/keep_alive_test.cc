// Connections of a real server (issue #20): a client may send any number of
// requests on one keep-alive connection; the server never closes it after a
// count of requests (httplib's keep_alive_max_count), only when idle, on
// Stop(), or when the client closes it. Responses are written whole at the
// end of a request (GuardedStream gathers writes), interim ones included.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

// One TCP connection to 127.0.0.1:port, speaking HTTP/1.1 by hand, so that
// the test knows every request went over this very socket.
class Connection {
 public:
  explicit Connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(fd_ >= 0);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool Send(const std::string& data) {
    for (size_t sent = 0; sent < data.size();) {
      ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until `want` has arrived (true) or the connection ends (false).
  bool ReadUntil(const std::string& want) {
    std::string in;
    while (in.find(want) == std::string::npos) {
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  // Sends request; returns the whole response (headers and a Content-Length
  // body), or "" when the server closed the connection first.
  std::string RoundTrip(const std::string& request) {
    if (!Send(request)) return "";
    std::string in;
    size_t end = std::string::npos, want = 0;
    while (end == std::string::npos || in.size() < want) {
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return "";
      in.append(buf, static_cast<size_t>(n));
      if (end == std::string::npos && (end = in.find("\r\n\r\n")) != std::string::npos) {
        size_t cl = in.find("Content-Length: ");
        want = end + 4 + (cl < end ? std::stoul(in.substr(cl + 16)) : 0);
      }
    }
    return in;
  }

 private:
  const int fd_;
};

TEST_CASE("a client keeps its keep-alive connection past 1,000 requests") {
  testing::LiveServer server;
  Connection c(server.port_);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  int answered = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string response = c.RoundTrip(request);
    if (response.rfind("HTTP/1.1 200", 0) != 0 ||
        response.find("Connection: close") != std::string::npos) {
      INFO("request " << i + 1 << ": " << response.substr(0, 200));
      FAIL("the connection was not kept");
    }
    ++answered;
  }
  CHECK(answered == 1500);
}

// The server gathers a response's writes; an interim "100 Continue" must
// still go out before it waits for the body.
TEST_CASE("a client that expects 100 Continue gets it before sending its body") {
  testing::LiveServer server;
  Connection c(server.port_);
  REQUIRE(
      c.Send("POST /no-such-route HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
             "Expect: 100-continue\r\n\r\n"));
  REQUIRE(c.ReadUntil("HTTP/1.1 100 Continue\r\n\r\n"));
  std::string response = c.RoundTrip("hello");
  CHECK(response.rfind("HTTP/1.1 404", 0) == 0);
  // And the connection goes on.
  CHECK(c.RoundTrip("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").rfind("HTTP/1.1 200", 0) ==
        0);
}

TEST_CASE("a client that asks to close its connection gets it closed") {
  testing::LiveServer server;
  Connection c(server.port_);
  std::string response =
      c.RoundTrip("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  CHECK(response.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(response.find("Connection: close") != std::string::npos);
  CHECK(c.RoundTrip("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").empty());
}

}  // namespace
}  // namespace branchdb::server
