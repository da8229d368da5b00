// FaultProxy: an HTTP proxy of the test, on a real socket, between a client
// and a real S3 endpoint (the RGW fixture). Healthy, it forwards each request
// as it came (same path, query, headers and body, so SigV4 signatures made
// for the proxy's address still verify at RGW, which checks the Host header
// it receives). Its faults:
//   kServerError  answers 500 InternalError without forwarding;
//   kHang         holds each request, answering nothing (the client times
//                 out), until the mode changes (at most 10 s), then forwards
//                 it: a request that lands late, after its client gave up.
// And, in any mode, hide_from_listings(suffix): the listings it forwards
// lack the keys that end with suffix (a listing that lags behind a PUT, as
// a bucket index may), while reads of those keys still find them.
//
//   FaultProxy proxy(SharedCephS3().endpoint());
//   options.endpoint = proxy.endpoint();
//   proxy.set_mode(FaultProxy::kServerError);   // S3 failing
#ifndef BRANCHDB_TESTS_OBJSTORE_FAULT_PROXY_H_
#define BRANCHDB_TESTS_OBJSTORE_FAULT_PROXY_H_

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "objstore/sigv4.h"

namespace branchdb::testing {

class FaultProxy {
 public:
  // upstream: "http://127.0.0.1:PORT".
  explicit FaultProxy(const std::string& upstream) {
    const std::string hostport = upstream.substr(upstream.find("//") + 2);
    upstream_host_ = hostport.substr(0, hostport.rfind(':'));
    upstream_port_ = std::stoi(hostport.substr(hostport.rfind(':') + 1));
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); };
    server_.Get(".*", handler);  // also HEAD
    server_.Put(".*", handler);
    server_.Post(".*", handler);
    server_.Delete(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FaultProxy() {
    mode_ = kForward;  // releases held requests
    server_.stop();
    thread_.join();
  }
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  enum Mode { kForward, kServerError, kHang };

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_mode(Mode mode) { mode_ = mode; }
  // Requests answered with 500, and requests held, so far.
  int failed_requests() const { return failed_requests_; }
  int held_requests() const { return held_requests_; }
  // "" shows every key again.
  void hide_from_listings(const std::string& suffix) {
    std::lock_guard<std::mutex> l(mu_);
    hidden_suffix_ = suffix;
  }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    if (mode_ == kHang) {
      ++held_requests_;
      for (int i = 0; i < 1000 && mode_ == kHang; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    if (mode_ == kServerError) {
      ++failed_requests_;
      res.status = 500;
      res.set_content("<Error><Code>InternalError</Code><Message>injected by FaultProxy"
                      "</Message></Error>",
                      "application/xml");
      return;
    }
    httplib::Request out;
    out.method = req.method;
    std::vector<std::pair<std::string, std::string>> query(req.params.begin(), req.params.end());
    const std::string q = objstore::CanonicalQuery(query);
    out.path = objstore::CanonicalUri(req.path) + (q.empty() ? "" : "?" + q);
    for (const auto& [name, value] : req.headers) {
      if (name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" ||
          name == "LOCAL_PORT") {
        continue;  // httplib's own, not the client's
      }
      out.headers.emplace(name, value);
    }
    out.body = req.body;
    httplib::Client client(upstream_host_, upstream_port_);
    client.set_url_encode(false);
    client.set_keep_alive(false);
    auto up = client.send(out);
    if (!up) {
      res.status = 502;
      return;
    }
    res.status = up->status;
    for (const auto& [name, value] : up->headers) {
      if (name == "ETag" || name == "x-amz-request-id") res.set_header(name.c_str(), value);
    }
    if (req.method == "HEAD") {
      // No body goes out; its length makes the Content-Length the client reads.
      auto it = up->headers.find("Content-Length");
      res.body.assign(it == up->headers.end() ? 0 : std::stoull(it->second), '\0');
    } else {
      res.body = up->body;
      if (req.method == "GET" && req.has_param("list-type")) HideListed(&res.body);
    }
  }

  // Drops the <Contents> entries whose <Key> ends with the hidden suffix.
  void HideListed(std::string* xml) {
    std::lock_guard<std::mutex> l(mu_);
    if (hidden_suffix_.empty()) return;
    for (size_t at = xml->find("<Contents>"); at != std::string::npos;) {
      const size_t end = xml->find("</Contents>", at);
      if (end == std::string::npos) return;
      const size_t close = end + std::string_view("</Contents>").size();
      const std::string entry = xml->substr(at, close - at);
      const std::string tail = hidden_suffix_ + "</Key>";
      if (entry.find(tail) != std::string::npos) {
        xml->erase(at, close - at);
        at = xml->find("<Contents>", at);
      } else {
        at = xml->find("<Contents>", close);
      }
    }
  }

  std::string upstream_host_;
  int upstream_port_ = 0;
  std::atomic<Mode> mode_{kForward};
  std::atomic<int> failed_requests_{0};
  std::atomic<int> held_requests_{0};
  std::mutex mu_;
  std::string hidden_suffix_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_OBJSTORE_FAULT_PROXY_H_
