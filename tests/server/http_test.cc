// HTTP plumbing: Status -> HTTP mapping, JSON parsing, metrics exposition,
// and over real HTTP on a free port: request ids, JSON 404s, idempotency
// (replay, mismatch, in-flight, restart, expiry), graceful stop, and the
// ApiServer's /healthz and /metrics.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "base/mock_clock.h"
#include "server/config.h"
#include "server/http/errors.h"
#include "server/http/idempotency.h"
#include "server/http/metrics.h"
#include "server/http/router.h"
#include "server/server.h"
#include "tests/util/temp_dir.h"

namespace branchdb::server::http {
namespace {

using nlohmann::json;

TEST_CASE("Status maps to HTTP status and the error body", "[http]") {
  CHECK(HttpStatusFor(Status::NotFound("x")) == 404);
  CHECK(HttpStatusFor(Status::AlreadyExists("x")) == 409);
  CHECK(HttpStatusFor(Status::InvalidArgument("x")) == 400);
  CHECK(HttpStatusFor(Status::FailedPrecondition("x")) == 409);
  CHECK(HttpStatusFor(Status::Conflict("x")) == 409);
  CHECK(HttpStatusFor(Status::PermissionDenied("x")) == 403);
  CHECK(HttpStatusFor(Status::Unauthenticated("x")) == 401);
  CHECK(HttpStatusFor(Status::ResourceExhausted("x")) == 429);
  CHECK(HttpStatusFor(Status::Corruption("x")) == 500);
  CHECK(HttpStatusFor(Status::IOError("x")) == 500);
  CHECK(HttpStatusFor(Status::Unavailable("x")) == 503);
  CHECK(HttpStatusFor(Status::ResourceExhausted("x", "statement_timeout")) == 408);
  CHECK(HttpStatusFor(Status::ResourceExhausted("x", "sql_too_long")) == 413);
  CHECK(HttpStatusFor(Status::IOError("x", "store_failed")) == 503);

  json body = ErrorBody(Status::NotFound("no branch dev/alex", "branch_not_found"));
  CHECK(body == json{{"error",
                      {{"code", "branch_not_found"},
                       {"message", "no branch dev/alex"},
                       {"details", json::object()}}}});
  CHECK(ErrorBody(Status::InvalidArgument("bad"))["error"]["code"] == "invalid_argument");
  CHECK(ErrorBody(Status::IOError("disk"))["error"]["code"] == "internal");
}

TEST_CASE("JSON bodies are parsed with clear errors", "[http]") {
  CHECK(ParseJsonObject("{\"a\":1}").ok());
  auto bad = ParseJsonObject("{\"a\":");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().reason() == "invalid_json");
  CHECK(bad.status().message().find("byte") != std::string::npos);
  CHECK(ParseJsonObject("[1]").status().reason() == "invalid_json");
  CHECK(ParseJsonObject("").status().reason() == "invalid_json");
  CHECK(ParseJsonObject("  ", true).ok());
  CHECK(DumpJson(json("\xff\xfe")) == "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // no throw
}

TEST_CASE("metrics render in Prometheus text format", "[http]") {
  Metrics m;
  m.DescribeCounter("c_total", "A counter.");
  m.DescribeHistogram("h_seconds", "A histogram.", {0.1, 1});
  m.DescribeGauge("g", "A gauge.");
  m.Increment("c_total", {{"route", "/x"}, {"status", "200"}});
  m.Increment("c_total", {{"route", "/x"}, {"status", "200"}});
  m.Observe("h_seconds", {{"route", "/x"}}, 0.05);
  m.Observe("h_seconds", {{"route", "/x"}}, 5);
  m.AddCollector([](Metrics& self) { self.Set("g", {}, 7); });
  std::string text = m.Render();
  CHECK(text.find("# TYPE c_total counter") != std::string::npos);
  CHECK(text.find("c_total{route=\"/x\",status=\"200\"} 2") != std::string::npos);
  CHECK(text.find("h_seconds_bucket{route=\"/x\",le=\"0.1\"} 1") != std::string::npos);
  CHECK(text.find("h_seconds_bucket{route=\"/x\",le=\"1\"} 1") != std::string::npos);
  CHECK(text.find("h_seconds_bucket{route=\"/x\",le=\"+Inf\"} 2") != std::string::npos);
  CHECK(text.find("h_seconds_count{route=\"/x\"} 2") != std::string::npos);
  CHECK(text.find("g 7") != std::string::npos);
  CHECK(m.Value("c_total", {{"route", "/x"}, {"status", "200"}}) == 2);
}

TEST_CASE("a series updated through its handle is the series of its name and labels", "[http]") {
  Metrics m;
  m.DescribeCounter("c_total", "A counter.");
  m.DescribeHistogram("h_seconds", "A histogram.", {0.1, 1});
  const Metrics::Handle* c = m.CounterSeries("c_total", {{"route", "/x"}, {"status", "200"}});
  const Metrics::Handle* h = m.HistogramSeries("h_seconds", {{"route", "/x"}});
  REQUIRE(c != nullptr);
  REQUIRE(h != nullptr);
  CHECK(m.CounterSeries("c_total", {{"route", "/x"}, {"status", "200"}}) == c);
  m.Increment(c);
  m.Increment("c_total", {{"route", "/x"}, {"status", "200"}}, 2);
  m.Observe(h, 0.05);
  m.Observe(h, 5);
  CHECK(m.Value("c_total", {{"route", "/x"}, {"status", "200"}}) == 3);
  const std::string text = m.Render();
  CHECK(text.find("h_seconds_bucket{route=\"/x\",le=\"0.1\"} 1") != std::string::npos);
  CHECK(text.find("h_seconds_count{route=\"/x\"} 2") != std::string::npos);
  // Undescribed (or of another type): no handle, and nothing counted.
  CHECK(m.CounterSeries("nope_total", {}) == nullptr);
  CHECK(m.HistogramSeries("c_total", {}) == nullptr);
  m.Increment(static_cast<const Metrics::Handle*>(nullptr));
  // Registries are told apart by number, not by address.
  CHECK(Metrics().id() != m.id());
}

TEST_CASE("path segments are percent-decoded", "[http]") {
  CHECK(*DecodePathSegment("dev%2Falex") == "dev/alex");
  CHECK(*DecodePathSegment("plain") == "plain");
  CHECK_FALSE(DecodePathSegment("bad%2").ok());
  CHECK_FALSE(DecodePathSegment("bad%zz").ok());
}

// An httplib server with a Router and a counting POST route, on a free port.
class RouterFixture {
 public:
  explicit RouterFixture(const std::string& store_path, MockClock* clock) : clock_(clock) {
    auto store = IdempotencyStore::Open(store_path, clock, 3600);
    REQUIRE(store.ok());
    store_ = std::move(*store);
    metrics_ = Metrics::WithServerFamilies();
    RouterOptions o;
    o.metrics = metrics_.get();
    o.idempotency = store_.get();
    o.clock = clock;
    o.principal_of = [](const httplib::Request& req, RequestContext&) {
      return req.get_header_value("X-Who");
    };
    router_ = std::make_unique<Router>(server_, std::move(o));
    router_->Add("POST", "/count", {.idempotent = true},
                  [this](const httplib::Request& req, httplib::Response& res, RequestContext&) {
                    auto body = ParseJsonObject(req.body, true);
                    if (!body.ok()) return SendError(res, body.status());
                    if (body->value("fail", false)) {
                      return SendError(res, Status::Unavailable("flaky", "flaky"));
                    }
                    if (body->value("wait", false)) {
                      std::unique_lock<std::mutex> l(mu_);
                      entered_ = true;
                      cv_.notify_all();
                      cv_.wait(l, [this] { return released_; });
                    }
                    SendJson(res, 201, {{"n", ++count_}});
                  });
    router_->Add("GET", "/throw", {}, [](const httplib::Request&, httplib::Response&,
                                         RequestContext&) { throw std::runtime_error("boom"); });
    // A JSON answer of about ?bytes= bytes.
    router_->Add("GET", "/sized", {},
                 [](const httplib::Request& req, httplib::Response& res, RequestContext&) {
                   const size_t bytes = std::stoul(req.get_param_value("bytes"));
                   SendJson(res, 200, {{"fill", std::string(bytes, 'x')}});
                 });
    router_->Install();
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~RouterFixture() { Stop(); }

  void Stop() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }

  httplib::Result Post(const std::string& body, const std::string& key = "",
                       const std::string& who = "") {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers h;
    if (!key.empty()) h.emplace("Idempotency-Key", key);
    if (!who.empty()) h.emplace("X-Who", who);
    return c.Post("/count", h, body, "application/json");
  }

  void WaitEntered() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return entered_; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }

  MockClock* clock_;
  std::unique_ptr<IdempotencyStore> store_;
  std::unique_ptr<Metrics> metrics_;
  httplib::Server server_;
  std::unique_ptr<Router> router_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> count_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, released_ = false;
};

TEST_CASE("request ids are echoed or generated", "[http][router]") {
  testing::TempDir dir;
  MockClock clock;
  RouterFixture f(dir.Sub("idem.db"), &clock);
  httplib::Client c("127.0.0.1", f.port_);
  auto echoed = c.Get("/nowhere", httplib::Headers{{"X-Request-Id", "agent-run-7"}});
  REQUIRE(echoed);
  CHECK(echoed->status == 404);
  CHECK(echoed->get_header_value("X-Request-Id") == "agent-run-7");
  json err = json::parse(echoed->body);
  CHECK(err["error"]["code"] == "route_not_found");

  auto generated = c.Get("/nowhere", httplib::Headers{{"X-Request-Id", "bad id with spaces"}});
  REQUIRE(generated);
  CHECK(generated->get_header_value("X-Request-Id").size() == 32);

  auto thrown = c.Get("/throw");
  REQUIRE(thrown);
  CHECK(thrown->status == 500);
  CHECK(json::parse(thrown->body)["error"]["code"] == "internal");
  CHECK(f.metrics_->Value(kHttpRequests, {{"route", "unmatched"}, {"method", "GET"},
                                          {"status", "404"}}) == 2);
}

// Sends raw bytes to 127.0.0.1:port and returns everything the server answers
// until it closes the connection.
std::string RawExchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST_CASE("a POST without a body is told to send one", "[http][router]") {
  // httplib refuses it before routing (no Content-Length); the error says what to do.
  testing::TempDir dir;
  MockClock clock;
  RouterFixture f(dir.Sub("idem.db"), &clock);
  std::string answer =
      RawExchange(f.port_, "POST /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  INFO(answer);
  CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(answer.find("\"bad_request\"") != std::string::npos);
  CHECK(answer.find("needs a body") != std::string::npos);
  CHECK(f.count_ == 0);
}

TEST_CASE("a small answer is sent uncompressed, a large one compressed", "[http][router]") {
  // httplib would compress every JSON body for a client that accepts gzip or
  // br, as Node's fetch does; below 1 KiB the Router has it sent as it is.
  testing::TempDir dir;
  MockClock clock;
  RouterFixture f(dir.Sub("idem.db"), &clock);
  httplib::Client c("127.0.0.1", f.port_);
  const httplib::Headers accepts{{"Accept-Encoding", "gzip, deflate, br"}};
  auto get = [&](const std::string& path) {
    auto r = c.Get(path.c_str(), accepts);
    REQUIRE(r);
    return r;
  };
  auto small = get("/sized?bytes=100");
  CHECK(small->status == 200);
  CHECK_FALSE(small->has_header("Content-Encoding"));
  CHECK(json::parse(small->body)["fill"].get<std::string>().size() == 100);

  auto large = get("/sized?bytes=5000");  // the client decodes it
  CHECK(large->status == 200);
  CHECK_FALSE(large->get_header_value("Content-Encoding").empty());
  CHECK(json::parse(large->body)["fill"].get<std::string>().size() == 5000);

  // The error handler's answers too: an unrouted path's 404, a handler's 500.
  for (const char* path : {"/nowhere", "/throw"}) {
    auto error = get(path);
    CHECK(error->status >= 400);
    CHECK_FALSE(error->has_header("Content-Encoding"));
    CHECK(json::parse(error->body).contains("error"));
  }

  // A client that accepts no encoding gets a large answer as it is.
  auto plain = c.Get("/sized?bytes=5000");
  REQUIRE(plain);
  CHECK_FALSE(plain->has_header("Content-Encoding"));
}

TEST_CASE("a retried POST with the same key applies once", "[http][idempotency]") {
  testing::TempDir dir;
  MockClock clock;
  RouterFixture f(dir.Sub("idem.db"), &clock);

  auto a = f.Post("{}");
  auto b = f.Post("{}");
  REQUIRE((a && b));
  CHECK(f.count_ == 2);  // no key: applied twice

  auto first = f.Post("{\"x\":1}", "key-1");
  auto retry = f.Post("{\"x\":1}", "key-1");
  REQUIRE((first && retry));
  CHECK(first->status == 201);
  CHECK(retry->status == 201);
  CHECK(retry->body == first->body);
  CHECK(retry->get_header_value("Idempotent-Replayed") == "true");
  CHECK(f.count_ == 3);

  auto other_body = f.Post("{\"x\":2}", "key-1");
  REQUIRE(other_body);
  CHECK(other_body->status == 422);
  CHECK(json::parse(other_body->body)["error"]["code"] == "idempotency_key_reused");
  CHECK(f.count_ == 3);

  // Keys are per principal.
  auto someone_else = f.Post("{\"x\":1}", "key-1", "other-client");
  REQUIRE(someone_else);
  CHECK(someone_else->status == 201);
  CHECK(f.count_ == 4);

  auto bad_key = f.Post("{}", std::string(300, 'k'));
  REQUIRE(bad_key);
  CHECK(bad_key->status == 400);
}

TEST_CASE("failed (5xx) responses are not remembered", "[http][idempotency]") {
  testing::TempDir dir;
  MockClock clock;
  RouterFixture f(dir.Sub("idem.db"), &clock);
  auto failed = f.Post("{\"fail\":true}", "k");
  REQUIRE(failed);
  CHECK(failed->status == 503);
  auto again = f.Post("{\"fail\":true}", "k");
  REQUIRE(again);
  CHECK(again->get_header_value("Idempotent-Replayed").empty());
}

TEST_CASE("a concurrent retry of a running request gets 409", "[http][idempotency]") {
  testing::TempDir dir;
  MockClock clock;
  RouterFixture f(dir.Sub("idem.db"), &clock);
  auto running = std::async(std::launch::async, [&] { return f.Post("{\"wait\":true}", "slow"); });
  f.WaitEntered();
  auto concurrent = f.Post("{\"wait\":true}", "slow");
  REQUIRE(concurrent);
  CHECK(concurrent->status == 409);
  CHECK(json::parse(concurrent->body)["error"]["code"] == "idempotency_key_in_use");
  f.Release();
  auto done = running.get();
  REQUIRE(done);
  CHECK(done->status == 201);
  CHECK(f.count_ == 1);
}

TEST_CASE("idempotency entries survive a restart and expire", "[http][idempotency]") {
  testing::TempDir dir;
  MockClock clock;
  std::string first_body;
  {
    RouterFixture f(dir.Sub("idem.db"), &clock);
    auto r = f.Post("{}", "persist");
    REQUIRE(r);
    first_body = r->body;
  }
  RouterFixture f(dir.Sub("idem.db"), &clock);
  auto replay = f.Post("{}", "persist");
  REQUIRE(replay);
  CHECK(replay->body == first_body);
  CHECK(f.count_ == 0);  // the new process applied nothing
  clock.AdvanceSeconds(3601);
  auto expired = f.Post("{}", "persist");
  REQUIRE(expired);
  CHECK(expired->get_header_value("Idempotent-Replayed").empty());
  CHECK(f.count_ == 1);
  auto purged = f.store_->PurgeExpired();
  REQUIRE(purged.ok());
}

TEST_CASE("stop lets the request in flight finish", "[http][shutdown]") {
  testing::TempDir dir;
  MockClock clock;
  RouterFixture f(dir.Sub("idem.db"), &clock);
  auto running = std::async(std::launch::async, [&] { return f.Post("{\"wait\":true}"); });
  f.WaitEntered();
  auto stopping = std::async(std::launch::async, [&] { f.Stop(); });
  f.Release();
  stopping.get();
  auto done = running.get();
  REQUIRE(done);
  CHECK(done->status == 201);
  httplib::Client c("127.0.0.1", f.port_);
  CHECK_FALSE(c.Get("/nowhere"));  // no longer accepting
}

TEST_CASE("ApiServer serves /healthz and /metrics and stops", "[http][api]") {
  testing::TempDir dir;
  Config config;
  config.listen = "127.0.0.1:0";
  config.data_dir = dir.Sub("data");
  auto server = ApiServer::Create(config, Env::Default());
  REQUIRE(server.ok());
  auto port = (*server)->Bind();
  REQUIRE(port.ok());
  auto serving = std::async(std::launch::async, [&] { return (*server)->Serve(); });
  httplib::Client c("127.0.0.1", *port);
  auto health = c.Get("/healthz");
  for (int i = 0; i < 500 && !health; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    health = c.Get("/healthz");
  }
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(json::parse(health->body)["status"] == "ok");
  CHECK(health->get_header_value("Content-Type") == "application/json");
  CHECK_FALSE(health->get_header_value("X-Request-Id").empty());

  auto missing = c.Get("/v1/nothing-here");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(json::parse(missing->body)["error"]["code"] == "route_not_found");

  auto metrics = c.Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->body.find("branchdb_http_requests_total{route=\"/healthz\",method=\"GET\","
                           "status=\"200\"} 1") != std::string::npos);
  CHECK(metrics->body.find("# TYPE branchdb_http_request_duration_seconds histogram") !=
        std::string::npos);
  CHECK(metrics->body.find("branchdb_computes_active 0") != std::string::npos);

  (*server)->Stop();
  CHECK(serving.get().ok());
}

TEST_CASE("ApiServer refuses an invalid config and a taken port", "[http][api]") {
  testing::TempDir dir;
  Config bad;
  bad.listen = "nope";
  bad.data_dir = dir.Sub("a");
  CHECK(ApiServer::Create(bad, Env::Default()).status().reason() == "invalid_config");

  Config c1;
  c1.listen = "127.0.0.1:0";
  c1.data_dir = dir.Sub("b");
  auto first = ApiServer::Create(c1, Env::Default());
  REQUIRE(first.ok());
  auto port = (*first)->Bind();
  REQUIRE(port.ok());
  Config c2 = c1;
  c2.listen = "127.0.0.1:" + std::to_string(*port);
  c2.data_dir = dir.Sub("c");
  auto second = ApiServer::Create(c2, Env::Default());
  REQUIRE(second.ok());
  CHECK((*second)->Bind().status().IsUnavailable());
}

}  // namespace
}  // namespace branchdb::server::http
