// Raw HTTP over a TCP socket, for requests no well-behaved client library
// sends: control bytes in the request line and headers, headers trickled a
// byte at a time, bodies shorter than their Content-Length.
#ifndef BRANCHDB_TESTS_SECURITY_RAW_HTTP_H_
#define BRANCHDB_TESTS_SECURITY_RAW_HTTP_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <string_view>

namespace branchdb::testing {

class RawConnection {
 public:
  // Connects to 127.0.0.1:port; ok() tells whether it worked.
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads until the server closes the connection or timeout_ms pass without
  // a byte. closed() then says which.
  std::string ReadUntilClosed(int timeout_ms) {
    std::string out;
    char buf[4096];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return out;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
};

// Sends request (a whole raw request) on a fresh connection and returns all
// the server answered before closing (it should: send "Connection: close").
inline std::string RawExchange(int port, std::string_view request, int timeout_ms = 30000) {
  RawConnection c(port);
  if (!c.ok() || !c.Send(request)) return "";
  return c.ReadUntilClosed(timeout_ms);
}

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_SECURITY_RAW_HTTP_H_
