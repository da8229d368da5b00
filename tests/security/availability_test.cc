// Hardening issue #13, item 8: availability under slow and hostile load.
// Against a real server (LiveServer) with a short request timeout and a short
// statement timeout:
//   - 120 slowloris connections (headers trickled) and 8 connections of one
//     client running the longest allowed query in a loop: /healthz and another
//     client's point SELECT still answer (within the client's own generous
//     timeout: no timing assertion), the long queries really ran (408
//     statement_timeout) and the hog was held to its per-client SQL limit (429
//     with Retry-After);
//   - with one CPU run slot, a point SELECT is answered while long queries of
//     other clients take turns on it, before any of them ends;
//   - a body shorter than its Content-Length and trickled headers are cut off
//     with 408 and the connection closed, over plain HTTP and over TLS;
//   - over TLS, a handshake that does not complete within the request timeout
//     (nothing sent, or a ClientHello trickled) closes the connection; and
//     while such attackers, reconnecting as they are cut off, outnumber the
//     threads the server may start, an HTTPS client is still answered;
//   - one address cannot hold more than max_connections_per_client, TLS
//     connections included;
//   - a connection serves one request after another (keep-alive, pipelined),
//     and a large answer reaches a client that reads it slowly, on both wires;
//   - the listen backlog is the configured one, not httplib's 5 (read back
//     from the kernel with sock_diag, as `ss -l` shows it).
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/security/raw_http.h"
#include "tests/server/live_server.h"
#include "tests/util/self_signed_cert.h"

namespace branchdb::server {
namespace {

using nlohmann::json;
using testing::Wire;

constexpr const char* kLongQuery =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

// The accept queue length of the TCP socket listening on port (-1: not found).
int ListenBacklog(int port) {
  int fd = ::socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
  if (fd < 0) return -1;
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = AF_INET;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = 1u << TCP_LISTEN;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  int backlog = -1;
  if (::sendto(fd, &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) > 0) {
    alignas(nlmsghdr) char buf[32768];
    bool done = false;
    while (!done) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        auto* diag = reinterpret_cast<inet_diag_msg*>(NLMSG_DATA(h));
        if (ntohs(diag->id.idiag_sport) == port) backlog = static_cast<int>(diag->idiag_wqueue);
      }
    }
  }
  ::close(fd);
  return backlog;
}

// A LiveServer over wire: HTTPS with a self-signed certificate written to
// certs, or plain HTTP.
std::unique_ptr<testing::LiveServer> StartServer(Wire wire, const testing::TempDir& certs,
                                                 const std::function<void(Config&)>& tweak) {
  if (wire == Wire::kTls) {
    testing::WriteSelfSignedCert(certs.Sub("cert.pem"), certs.Sub("key.pem"));
  }
  return std::make_unique<testing::LiveServer>([&](Config& c) {
    if (wire == Wire::kTls) {
      c.tls_cert_file = certs.Sub("cert.pem");
      c.tls_key_file = certs.Sub("key.pem");
    }
    tweak(c);
  });
}

// Another OAuth client (its own SQL limits), returning its token.
std::string OtherClientToken(testing::LiveServer& s, const std::string& admin,
                             const std::string& name = "polite") {
  auto c = s.Client();
  json body = {{"name", name}, {"scopes", {"sql:read", "sql:write", "branches:read"}}};
  auto r = c.Post("/v1/clients", {{"Authorization", "Bearer " + admin}}, body.dump(),
                  "application/json");
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 201);
  json j = json::parse(r->body);
  return s.Token(j["client_id"], j["client_secret"]);
}

void CreateProject(testing::LiveServer& s, const std::string& token, const std::string& name) {
  httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  auto r = s.Client().Post("/v1/projects", auth, json({{"name", name}}).dump(), "application/json");
  REQUIRE(r);
  REQUIRE(r->status == 201);
  auto t = s.Client().Post("/v1/projects/" + name + "/branches/production/sql", auth,
                           R"j({"sql":"CREATE TABLE kv(k INTEGER PRIMARY KEY, v); INSERT INTO kv VALUES (1, 'one')"})j",
                           "application/json");
  REQUIRE(t);
  REQUIRE(t->status == 200);
}

// Opens n connections that send a request's headers one line at a time,
// every 300 ms, until stopped.
class Slowloris {
 public:
  Slowloris(int port, int n) {
    for (int i = 0; i < n; ++i) {
      conns_.push_back(std::make_unique<testing::RawConnection>(port));
      conns_.back()->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    }
    thread_ = std::thread([this] {
      while (!stop_) {
        for (auto& c : conns_) c->Send("X-Slow: 1\r\n");
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      }
    });
  }
  ~Slowloris() {
    stop_ = true;
    thread_.join();
  }
  size_t connected() const {
    size_t n = 0;
    for (const auto& c : conns_) n += c->ok() ? 1 : 0;
    return n;
  }

 private:
  std::vector<std::unique_ptr<testing::RawConnection>> conns_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("slowloris connections and long queries do not keep others out (item 8)",
          "[security][availability]") {
  testing::LiveServer s([](Config& c) {
    c.http_threads = 4;
    c.statement_timeout_ms = 1500;
    c.sql_max_concurrent_per_client = 2;
  });
  std::string admin = s.AdminToken();
  std::string polite = OtherClientToken(s, admin);
  CreateProject(s, admin, "hog");
  CreateProject(s, admin, "shop");

  Slowloris slow(s.port_, 120);
  REQUIRE(slow.connected() == 120);
  std::atomic<bool> stop{false};
  std::atomic<int> timeouts{0}, refused{0}, other{0};
  std::vector<std::thread> hogs;
  for (int i = 0; i < 8; ++i) {
    hogs.emplace_back([&] {
      auto c = s.Client();
      httplib::Headers auth = {{"Authorization", "Bearer " + admin}};
      std::string body = json({{"sql", kLongQuery}, {"read_only", true}}).dump();
      while (!stop) {
        auto r = c.Post("/v1/projects/hog/branches/production/sql", auth, body, "application/json");
        if (r && r->status == 408) {
          ++timeouts;
        } else if (r && r->status == 429 && r->get_header_value("Retry-After") == "1") {
          ++refused;
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        } else {
          ++other;
        }
      }
    });
  }
  // Let the attack take hold: every thread it can get is taken by now.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  for (int round = 0; round < 3; ++round) {
    auto c = s.Client();
    c.set_connection_timeout(30);
    auto health = c.Get("/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
    auto point = c.Post("/v1/projects/shop/branches/production/sql",
                        {{"Authorization", "Bearer " + polite}},
                        R"j({"sql":"SELECT v FROM kv WHERE k = 1"})j", "application/json");
    REQUIRE(point);
    INFO(point->body);
    CHECK(point->status == 200);
    CHECK(json::parse(point->body)["results"][0]["rows"][0][0] == "one");
  }
  stop = true;
  for (auto& t : hogs) t.join();
  CHECK(timeouts > 0);  // the long queries ran to the statement timeout
  CHECK(refused > 0);   // and the hog was held to 2 at once
  CHECK(other == 0);
}

// The value of a series in GET /metrics, named with its labels as printed
// there (-1: absent).
double MetricValue(testing::LiveServer& s, const std::string& name) {
  auto r = s.Client().Get("/metrics");
  if (!r || r->status != 200) return -1;
  size_t at = r->body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r->body.substr(at + name.size() + 2));
}

TEST_CASE("a short query completes while long queries of other clients hold the CPU (item 8)",
          "[security][availability]") {
  // One run slot: the long queries take turns on it, and the short one must
  // get it before any of them has finished (they all run to the timeout).
  testing::LiveServer s([](Config& c) {
    c.sql_cpu_slots = 1;
    c.statement_timeout_ms = 10000;
  });
  std::string admin = s.AdminToken();
  std::string polite = OtherClientToken(s, admin);
  CreateProject(s, admin, "hog");
  CreateProject(s, admin, "shop");
  constexpr int kHogClients = 3, kPerClient = 2, kHogs = kHogClients * kPerClient;
  std::vector<std::string> hog_tokens;
  for (int i = 0; i < kHogClients; ++i) {
    hog_tokens.push_back(OtherClientToken(s, admin, "hog" + std::to_string(i)));
  }
  for (int i = 0; i < kHogs; ++i) {  // a branch each: requests on one branch take turns
    auto r = s.Client().Post("/v1/projects/hog/branches", {{"Authorization", "Bearer " + admin}},
                             json({{"name", "h" + std::to_string(i)}, {"parent", "production"}})
                                 .dump(),
                             "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 201);
  }

  std::atomic<int> finished{0};
  std::vector<int> statuses(kHogs, 0);
  std::vector<std::thread> hogs;
  for (int i = 0; i < kHogs; ++i) {
    hogs.emplace_back([&, i] {
      auto c = s.Client();
      auto r = c.Post("/v1/projects/hog/branches/h" + std::to_string(i) + "/sql",
                      {{"Authorization", "Bearer " + hog_tokens[i % kHogClients]}},
                      json({{"sql", kLongQuery}, {"read_only", true}}).dump(), "application/json");
      statuses[i] = r ? r->status : -1;
      ++finished;
    });
  }
  // Every long query is admitted: one runs, the others wait for the slot.
  bool queued = false;
  for (int i = 0; i < 500 && !queued && finished == 0; ++i) {
    queued = MetricValue(s, "branchdb_sql_cpu_waiting") >= kHogs - 1;
    if (!queued) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(queued);

  auto c = s.Client();
  auto point = c.Post("/v1/projects/shop/branches/production/sql",
                      {{"Authorization", "Bearer " + polite}},
                      R"j({"sql":"SELECT v FROM kv WHERE k = 1"})j", "application/json");
  const int finished_when_answered = finished;
  REQUIRE(point);
  INFO(point->body);
  CHECK(point->status == 200);
  CHECK(json::parse(point->body)["results"][0]["rows"][0][0] == "one");
  CHECK(finished_when_answered == 0);  // before any long query ended

  for (auto& t : hogs) t.join();
  for (int st : statuses) CHECK(st == 408);  // each ran (in turns) to the statement timeout
  CHECK(MetricValue(s, "branchdb_sql_cpu_waiting") == 0);
}

TEST_CASE("a request that does not arrive in time is cut off with 408 (item 8)",
          "[security][availability]") {
  const Wire wire = GENERATE(Wire::kPlain, Wire::kTls);
  INFO("over " << testing::WireName(wire));
  testing::TempDir certs;
  auto s = StartServer(wire, certs, [](Config& c) { c.request_timeout_seconds = 1; });
  std::string token = s->AdminToken();
  SECTION("a body shorter than its Content-Length") {
    testing::RawConnection c(s->port_, wire);
    REQUIRE(c.ok());
    c.Send("POST /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
           "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":");
    std::string answer = c.ReadUntilClosed(20000);
    CHECK(c.closed());
    CHECK(answer.rfind("HTTP/1.1 408", 0) == 0);
  }
  SECTION("headers trickled a byte at a time") {
    testing::RawConnection c(s->port_, wire);
    REQUIRE(c.ok());
    std::string answer;
    for (int i = 0; i < 200 && !c.closed(); ++i) {  // up to 20 s, a byte every 100 ms
      if (!c.Send(i == 0 ? "GET /healthz HTTP/1.1\r\n" : "X")) break;
      answer += c.ReadUntilClosed(100);
    }
    CHECK(answer.rfind("HTTP/1.1 408", 0) == 0);
  }
  // The server still serves.
  auto health = s->Client().Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
}

TEST_CASE("a TLS handshake that does not complete in time closes the connection (item 8)",
          "[security][availability][tls]") {
  testing::TempDir certs;
  auto s = StartServer(Wire::kTls, certs, [](Config& c) { c.request_timeout_seconds = 1; });
  (void)s->AdminToken();  // the server is up
  SECTION("a client that connects and sends nothing") {
    testing::RawConnection c(s->port_);
    REQUIRE(c.ok());
    std::string answer = c.ReadUntilClosed(20000);
    CHECK(c.closed());
    CHECK(answer.empty());
  }
  SECTION("a ClientHello trickled a byte at a time") {
    const std::string hello = testing::ClientHello();
    REQUIRE(hello.size() > 100);
    testing::RawConnection c(s->port_);
    REQUIRE(c.ok());
    size_t sent = 0;
    for (; sent < hello.size() && !c.closed(); ++sent) {  // a byte every 100 ms
      if (!c.Send(hello.substr(sent, 1))) break;
      (void)c.ReadUntilClosed(100);
    }
    INFO("sent " << sent << " of the hello's " << hello.size() << " bytes");
    CHECK(c.closed());
    CHECK(sent < hello.size());  // cut off before the hello was complete
  }
  CHECK(MetricValue(*s, "branchdb_http_connections_refused_total{reason=\"handshake_timeout\"}") ==
        1);
  auto health = s->Client().Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
}

// Attackers of one kind on the TLS port, each on its own thread, until
// destroyed: each opens a connection, stalls it, and opens another when the
// server closes it. cut_off() counts the connections the server closed.
class TlsAttack {
 public:
  enum Kind {
    kSilent,           // TCP connected, nothing sent
    kTrickledHello,    // the ClientHello a byte per tick
    kTrickledHeaders,  // handshake done, then a header line per tick
  };

  TlsAttack(int port, Kind kind, int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this, port, kind] { Run(port, kind); });
  }
  ~TlsAttack() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }
  int cut_off() const { return cut_off_; }
  int answered_408() const { return answered_408_; }

 private:
  void Run(int port, Kind kind) {
    const std::string hello = testing::ClientHello();
    while (!stop_) {
      testing::RawConnection c(port, kind == kTrickledHeaders ? Wire::kTls : Wire::kPlain);
      if (!c.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      std::string answer;
      if (kind == kTrickledHeaders) c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
      for (size_t i = 0; !stop_ && !c.closed(); ++i) {
        if (kind == kTrickledHello && i < hello.size()) c.Send(hello.substr(i, 1));
        if (kind == kTrickledHeaders) c.Send("X-Slow: 1\r\n");
        answer += c.ReadUntilClosed(200);
      }
      if (!c.closed()) continue;
      ++cut_off_;
      if (answer.rfind("HTTP/1.1 408", 0) == 0) ++answered_408_;
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> cut_off_{0}, answered_408_{0};
  std::vector<std::thread> threads_;
};

TEST_CASE("slow TLS handshakes and slowloris over TLS do not keep an HTTPS client out (item 8)",
          "[security][availability][tls]") {
  // At most 8 threads; 12 attackers that reconnect when cut off. Without the
  // handshake and request deadlines, the attackers would hold every thread.
  testing::TempDir certs;
  auto s = StartServer(Wire::kTls, certs, [](Config& c) {
    c.request_timeout_seconds = 1;
    c.http_threads = 2;
    c.max_connections = 8;
  });
  std::string admin = s->AdminToken();
  CreateProject(*s, admin, "shop");

  TlsAttack silent(s->port_, TlsAttack::kSilent, 4);
  TlsAttack hello(s->port_, TlsAttack::kTrickledHello, 4);
  TlsAttack headers(s->port_, TlsAttack::kTrickledHeaders, 4);
  // Let the attack take hold: each kind has been cut off and has come back.
  for (int i = 0; i < 600; ++i) {
    if (silent.cut_off() >= 8 && hello.cut_off() >= 8 && headers.cut_off() >= 8) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO("cut off: silent " << silent.cut_off() << ", trickled hello " << hello.cut_off()
                          << ", trickled headers " << headers.cut_off());
  REQUIRE(silent.cut_off() >= 8);
  REQUIRE(hello.cut_off() >= 8);
  REQUIRE(headers.cut_off() >= 8);
  for (int round = 0; round < 3; ++round) {
    auto c = s->Client();
    auto health = c.Get("/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
    auto point = c.Post("/v1/projects/shop/branches/production/sql",
                        {{"Authorization", "Bearer " + admin}},
                        R"j({"sql":"SELECT v FROM kv WHERE k = 1"})j", "application/json");
    REQUIRE(point);
    INFO(point->body);
    CHECK(point->status == 200);
    CHECK(json::parse(point->body)["results"][0]["rows"][0][0] == "one");
  }
  CHECK(headers.answered_408() > 0);  // trickled headers are answered 408 over TLS
}

TEST_CASE("one address holds at most max_connections_per_client connections (item 8)",
          "[security][availability]") {
  const Wire wire = GENERATE(Wire::kPlain, Wire::kTls);
  INFO("over " << testing::WireName(wire));
  testing::TempDir certs;
  // The four idle connections must outlive the probes below however slowly a
  // loaded machine serves them (at the default 10 s they timed out first
  // once in CI, and every probe was then answered 200).
  auto s = StartServer(wire, certs, [](Config& c) {
    c.max_connections_per_client = 4;
    c.request_timeout_seconds = 120;
  });
  (void)s->AdminToken();  // the server is up
  std::vector<std::unique_ptr<testing::RawConnection>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<testing::RawConnection>(s->port_, wire));
    REQUIRE(idle.back()->ok());
  }
  // The fifth is answered 503 and closed, while the four are open.
  std::string answer;
  // The probe asks for close: a kept-alive probe would be held for the whole
  // keep-alive timeout (5 s), long enough for the four idle ones to time out.
  for (int i = 0; i < 50 && answer.empty(); ++i) {  // until the four are being served
    answer = testing::RawExchange(
        s->port_, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 20000, wire);
    if (answer.rfind("HTTP/1.1 200", 0) == 0) answer.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(answer.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(answer.find("too_many_connections") != std::string::npos);
  idle.clear();
  // Once they are gone, the address is served again.
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    auto r = s->Client().Get("/healthz");
    served = r && r->status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(served);
}

TEST_CASE("a connection serves pipelined requests one after another (keep-alive)",
          "[security][availability]") {
  const Wire wire = GENERATE(Wire::kPlain, Wire::kTls);
  INFO("over " << testing::WireName(wire));
  testing::TempDir certs;
  auto s = StartServer(wire, certs, [](Config&) {});
  (void)s->AdminToken();  // the server is up
  testing::RawConnection c(s->port_, wire);
  REQUIRE(c.ok());
  // Three requests in one write: the second and third wait in the server's
  // buffers (and, over TLS, in OpenSSL's) when the first is answered.
  REQUIRE(c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /v1/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string answer = c.ReadUntilClosed(20000);
  INFO(answer);
  CHECK(c.closed());
  size_t first = answer.find("HTTP/1.1 200");
  size_t second = answer.find("HTTP/1.1 404", first);
  size_t third = answer.find("HTTP/1.1 200", second);
  CHECK(first == 0);
  CHECK(second != std::string::npos);
  CHECK(third != std::string::npos);
}

TEST_CASE("a large answer arrives whole when its client reads slowly",
          "[security][availability]") {
  // 8 MB of JSON, read only after a pause: the server's writes fill the
  // socket buffers and wait for room (over TLS, records retried as OpenSSL asks).
  const Wire wire = GENERATE(Wire::kPlain, Wire::kTls);
  INFO("over " << testing::WireName(wire));
  testing::TempDir certs;
  auto s = StartServer(wire, certs, [](Config&) {});
  std::string token = s->AdminToken();
  auto created = s->Client().Post("/v1/projects", {{"Authorization", "Bearer " + token}},
                                  json({{"name", "big"}}).dump(), "application/json");
  REQUIRE(created);
  REQUIRE(created->status == 201);
  testing::RawConnection c(s->port_, wire);
  REQUIRE(c.ok());
  std::string body = json({{"sql", "SELECT hex(randomblob(4000000))"}}).dump();
  REQUIRE(c.Send("POST /v1/projects/big/branches/production/sql HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer " + token + "\r\nContent-Type: application/json\r\n"
                 "Connection: close\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\n\r\n" + body));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::string answer = c.ReadUntilClosed(20000);
  CHECK(c.closed());
  REQUIRE(answer.rfind("HTTP/1.1 200", 0) == 0);
  size_t end_of_headers = answer.find("\r\n\r\n");
  REQUIRE(end_of_headers != std::string::npos);
  json result = json::parse(answer.substr(end_of_headers + 4), nullptr, false);
  REQUIRE_FALSE(result.is_discarded());
  CHECK(result["results"][0]["rows"][0][0].get<std::string>().size() == 8000000);
}

TEST_CASE("the listen backlog is the configured one, not 5 (item 8)",
          "[security][availability]") {
  testing::LiveServer s([](Config& c) { c.listen_backlog = 512; });
  int backlog = ListenBacklog(s.port_);
  INFO("backlog read back via sock_diag: " << backlog);
  CHECK(backlog >= 128);  // the kernel caps it at net.core.somaxconn
  testing::LiveServer defaults;
  CHECK(ListenBacklog(defaults.port_) > 5);
}

}  // namespace branchdb::server
