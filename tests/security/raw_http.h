// Raw HTTP over a TCP socket, or over TLS, for requests no well-behaved client
// library sends: control bytes in the request line and headers, headers
// trickled a byte at a time, bodies shorter than their Content-Length, TLS
// handshakes never finished. Link OpenSSL::SSL.
#ifndef BRANCHDB_TESTS_SECURITY_RAW_HTTP_H_
#define BRANCHDB_TESTS_SECURITY_RAW_HTTP_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>
#include <string_view>

namespace branchdb::testing {

// What a RawConnection speaks: bytes on TCP, or bytes inside TLS (the
// handshake done in the constructor; the server's certificate not verified).
enum class Wire { kPlain, kTls };

inline const char* WireName(Wire wire) { return wire == Wire::kTls ? "TLS" : "plain"; }

class RawConnection {
 public:
  // Connects to 127.0.0.1:port; ok() tells whether it worked (over TLS:
  // whether the handshake completed, within 30 s).
  explicit RawConnection(int port, Wire wire = Wire::kPlain) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (fd_ >= 0 && wire == Wire::kTls && !StartTls()) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }

  bool Send(std::string_view data) {
    if (ssl_ != nullptr) {  // OpenSSL writes with write(2): a closed peer must not kill the test
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    }
    while (!data.empty()) {
      ssize_t n = ssl_ != nullptr ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                                  : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
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
      if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return out;
      }
      ssize_t n =
          ssl_ != nullptr ? SSL_read(ssl_, buf, sizeof buf) : ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        if (ssl_ != nullptr && SSL_get_error(ssl_, static_cast<int>(n)) == SSL_ERROR_WANT_READ) {
          continue;  // a record not complete yet (the socket's receive timeout bounds it)
        }
        ERR_clear_error();
        closed_ = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  bool closed() const { return closed_; }

 private:
  bool StartTls() {
    timeval limit{30, 0};  // a server that never answers fails the test, not hangs it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) return false;
    ssl_ = SSL_new(ctx_);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) return false;
    bool done = SSL_connect(ssl_) == 1;
    ERR_clear_error();
    return done;
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool closed_ = false;
};

// Sends request (a whole raw request) on a fresh connection and returns all
// the server answered before closing (it should: send "Connection: close").
inline std::string RawExchange(int port, std::string_view request, int timeout_ms = 30000,
                               Wire wire = Wire::kPlain) {
  RawConnection c(port, wire);
  if (!c.ok() || !c.Send(request)) return "";
  return c.ReadUntilClosed(timeout_ms);
}

// The bytes a TLS client sends first (its ClientHello), made without a
// server, to be sent raw: a handshake that starts and never completes.
inline std::string ClientHello() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);  // ssl owns both
  (void)SSL_connect(ssl);     // writes the hello, then wants the server's answer
  ERR_clear_error();
  char* data = nullptr;
  long size = BIO_get_mem_data(out, &data);
  std::string hello(data, static_cast<size_t>(size > 0 ? size : 0));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return hello;
}

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_SECURITY_RAW_HTTP_H_
