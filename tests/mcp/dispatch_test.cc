// Router::Dispatch: a registered route run in-process gives what the same
// request over HTTP gives (matching, %2F names, query, errors, idempotency),
// counts metrics under the route's label, and restores the calling handler's
// per-request state when nested. Then the whole API through an ApiServer that
// never listens.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "auth/auth.h"
#include "base/mock_clock.h"
#include "server/config.h"
#include "server/http/errors.h"
#include "server/http/idempotency.h"
#include "server/http/metrics.h"
#include "server/http/router.h"
#include "server/mcp/tools.h"
#include "server/server.h"
#include "tests/util/temp_dir.h"

namespace branchdb::server::http {
namespace {

using nlohmann::json;

// A Router with a few routes shaped like the API's, on a server that listens
// only when a test asks it to.
class DispatchFixture {
 public:
  explicit DispatchFixture(const std::string& store_path) {
    auto store = IdempotencyStore::Open(store_path, &clock_, 3600);
    REQUIRE(store.ok());
    store_ = std::move(*store);
    metrics_ = Metrics::WithServerFamilies();
    RouterOptions o;
    o.metrics = metrics_.get();
    o.idempotency = store_.get();
    o.clock = &clock_;
    router_ = std::make_unique<Router>(server_, std::move(o));
    auto echo = [](const httplib::Request& req, httplib::Response& res, RequestContext& ctx) {
      json params = json::object();
      for (const auto& [k, v] : req.params) params[k] = v;
      json captures = json::array();
      for (const auto& [name, value] : ctx.path_params) captures.push_back(value);
      SendJson(res, 200,
               {{"route", ctx.route},
                {"captures", captures},
                {"params", params},
                {"body", req.body},
                {"authorization", req.get_header_value("Authorization")}});
    };
    // Shaped as the API, and added in the wrong order on purpose: the bare
    // item (whose {branch} takes the rest of the path) first; the router
    // matches it after the sub-resources all the same.
    router_->Add("GET", "/p/{project}/b/{branch}", {}, echo);
    router_->Add("DELETE", "/p/{project}/b/{branch}", {},
                 [](const httplib::Request&, httplib::Response& res, RequestContext&) {
                   res.status = 204;
                 });
    router_->Add("POST", "/p/{project}/b/{branch}/sql", {}, echo);
    router_->Add("GET", "/p/{project}/b/{branch}/diff", {}, echo);
    router_->Add("POST", "/count", {.idempotent = true},
                 [this](const httplib::Request&, httplib::Response& res, RequestContext&) {
                   SendJson(res, 201, {{"n", ++count_}});
                 });
    router_->Add("GET", "/throw", {}, [](const httplib::Request&, httplib::Response&,
                                         RequestContext&) { throw std::runtime_error("boom"); });
    router_->Add("POST", "/nest", {.idempotent = true},
                 [this](const httplib::Request& req, httplib::Response& res, RequestContext&) {
                   DispatchResponse inner = router_->Dispatch(
                       {"GET", "/p/shop/b/dev%2Falex", "", {}, {}, req.remote_addr});
                   SendJson(res, 200, {{"inner_status", inner.status},
                                       {"inner", json::parse(inner.body)}});
                 });
    router_->Install();
  }
  ~DispatchFixture() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }

  int Listen() {
    int port = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return port;
  }

  double Count(const std::string& route, const std::string& method, const std::string& status) {
    return metrics_->Value(kHttpRequests, {{"route", route}, {"method", method}, {"status", status}});
  }

  MockClock clock_;
  std::unique_ptr<IdempotencyStore> store_;
  std::unique_ptr<Metrics> metrics_;
  httplib::Server server_;
  std::unique_ptr<Router> router_;
  std::thread thread_;
  int count_ = 0;
};

DispatchResponse Call(Router& r, const std::string& method, const std::string& path,
                      const std::string& body = "",
                      std::multimap<std::string, std::string> headers = {}) {
  return r.Dispatch({method, path, body, std::move(headers), {}, ""});
}

TEST_CASE("dispatch matches routes as httplib does, %2F inside names", "[dispatch]") {
  testing::TempDir dir;
  DispatchFixture f(dir.Sub("idem.db"));

  auto sql = Call(*f.router_, "POST", "/p/shop/b/dev%2Falex/sql", "{\"sql\":\"SELECT 1\"}",
                  {{"authorization", "Bearer abc"}});
  REQUIRE(sql.status == 200);
  json j = json::parse(sql.body);
  CHECK(j["route"] == "/p/{project}/b/{branch}/sql");
  CHECK(j["captures"] == json({"shop", "dev/alex"}));
  CHECK(j["body"] == "{\"sql\":\"SELECT 1\"}");
  CHECK(j["authorization"] == "Bearer abc");  // header names are case-insensitive
  CHECK(sql.Header("content-type") == "application/json");
  CHECK(sql.Header("X-Request-Id").size() == 32);

  // An encoded slash before "sql" is part of the branch name: the bare route.
  auto bare = Call(*f.router_, "GET", "/p/shop/b/odd%2Fsql");
  CHECK(json::parse(bare.body)["captures"] == json({"shop", "odd/sql"}));

  // Query parameters from the path (decoded) and from params.
  DispatchRequest diff{"GET", "/p/shop/b/main/diff?base=dev%2Falex&kind=data", "", {}, {{"tables", "a,b"}}, ""};
  auto d = f.router_->Dispatch(diff);
  CHECK(json::parse(d.body)["route"] == "/p/{project}/b/{branch}/diff");  // not the bare item
  CHECK(json::parse(d.body)["params"] ==
        json({{"base", "dev/alex"}, {"kind", "data"}, {"tables", "a,b"}}));

  auto head = Call(*f.router_, "HEAD", "/p/shop/b/main");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(Call(*f.router_, "DELETE", "/p/shop/b/main").status == 204);

  auto missing = Call(*f.router_, "GET", "/nowhere", "", {{"X-Request-Id", "run-7"}});
  CHECK(missing.status == 404);
  CHECK(json::parse(missing.body)["error"]["code"] == "route_not_found");
  CHECK(missing.Header("X-Request-Id") == "run-7");
  CHECK(Call(*f.router_, "PATCH", "/p/shop/b/main").status == 404);  // no PATCH route

  auto thrown = Call(*f.router_, "GET", "/throw");
  CHECK(thrown.status == 500);
  CHECK(json::parse(thrown.body)["error"]["code"] == "internal");

  CHECK(f.Count("/p/{project}/b/{branch}/sql", "POST", "200") == 1);
  CHECK(f.Count("/p/{project}/b/{branch}", "HEAD", "200") == 1);
  CHECK(f.Count("unmatched", "GET", "404") == 1);
  CHECK(f.Count("/throw", "GET", "500") == 1);
}

TEST_CASE("dispatch and HTTP give the same answers", "[dispatch]") {
  testing::TempDir dir;
  DispatchFixture f(dir.Sub("idem.db"));
  int port = f.Listen();
  httplib::Client c("127.0.0.1", port);
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"GET", "/p/shop/b/dev%2Falex"},      {"GET", "/p/shop/b/dev/alex"},
      {"GET", "/p/shop/b/a%2Fdiff"},        {"GET", "/p/shop/b/a/diff?kind=schema&x=%2F"},
      {"GET", "/p/sh%6Fp/b/x%252F"},        {"POST", "/p/shop/b/feature%2Fx/sql"},
      {"GET", "/p/shop"},                   {"POST", "/p/shop/b//sql"},
  };
  for (const auto& [method, path] : requests) {
    INFO(method << " " << path);
    auto over_http = method == "GET" ? c.Get(path.c_str()) : c.Post(path.c_str(), "{}", "application/json");
    REQUIRE(over_http);
    auto in_process = Call(*f.router_, method, path, method == "POST" ? "{}" : "");
    CHECK(in_process.status == over_http->status);
    json a = json::parse(in_process.body), b = json::parse(over_http->body);
    if (a.contains("error")) {
      CHECK(a == b);
    } else {
      CHECK(a["route"] == b["route"]);
      CHECK(a["captures"] == b["captures"]);
      CHECK(a["params"] == b["params"]);
    }
  }
}

TEST_CASE("a nested dispatch restores the caller's route label", "[dispatch]") {
  testing::TempDir dir;
  DispatchFixture f(dir.Sub("idem.db"));
  int port = f.Listen();
  httplib::Client c("127.0.0.1", port);
  auto r = c.Post("/nest", "", "application/json");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  json j = json::parse(r->body);
  CHECK(j["inner_status"] == 200);
  CHECK(j["inner"]["captures"] == json({"shop", "dev/alex"}));
  // Both counted under their own labels: the outer one was not overwritten.
  CHECK(f.Count("/nest", "POST", "200") == 1);
  CHECK(f.Count("/p/{project}/b/{branch}", "GET", "200") == 1);
  CHECK(f.Count("unmatched", "POST", "200") == 0);

  auto nested_in_process = Call(*f.router_, "POST", "/nest");
  CHECK(nested_in_process.status == 200);
  CHECK(f.Count("/nest", "POST", "200") == 2);
}

TEST_CASE("dispatch honours Idempotency-Key", "[dispatch]") {
  testing::TempDir dir;
  DispatchFixture f(dir.Sub("idem.db"));
  auto first = Call(*f.router_, "POST", "/count", "{}", {{"Idempotency-Key", "k1"}});
  auto again = Call(*f.router_, "POST", "/count", "{}", {{"Idempotency-Key", "k1"}});
  CHECK(first.status == 201);
  CHECK(again.status == 201);
  CHECK(again.body == first.body);
  CHECK(again.Header("Idempotent-Replayed") == "true");
  CHECK(f.count_ == 1);
  auto other = Call(*f.router_, "POST", "/count", "{\"x\":1}", {{"Idempotency-Key", "k1"}});
  CHECK(other.status == 422);
}

// The real API without a socket: what the fuzz helper and the MCP endpoint use.
TEST_CASE("an ApiServer answers through Dispatch without listening", "[dispatch][api]") {
  testing::TempDir dir;
  Config config;
  config.listen = "127.0.0.1:0";
  config.data_dir = dir.Sub("data");
  config.sweep_interval_seconds = 3600;
  auto server = ApiServer::Create(config, Env::Default());
  REQUIRE(server.ok());
  Router& router = (*server)->router();
  auto admin = (*server)->services().auth->EnsureAdminClient("http://127.0.0.1/oauth/token");
  REQUIRE(admin.ok());
  std::ifstream in(config.data_dir + "/admin-credentials.json");
  json creds = json::parse(in);
  DispatchRequest grant;
  grant.method = "POST";
  grant.path = "/oauth/token";
  grant.body = "grant_type=client_credentials&client_id=" +
               http::EncodePathSegment(creds["client_id"].get<std::string>()) + "&client_secret=" +
               http::EncodePathSegment(creds["client_secret"].get<std::string>());
  grant.headers.emplace("Content-Type", "application/x-www-form-urlencoded");
  grant.remote_addr = "127.0.0.1";
  auto token = router.Dispatch(grant);
  REQUIRE(token.status == 200);
  std::string bearer = "Bearer " + json::parse(token.body)["access_token"].get<std::string>();

  CHECK(Call(router, "POST", "/v1/projects", "{\"name\":\"shop\"}").status == 401);
  CHECK(Call(router, "POST", "/v1/projects", "{\"name\":\"shop\"}", {{"Authorization", bearer}})
            .status == 201);
  auto branch = Call(router, "POST", "/v1/projects/shop/branches", "{\"name\":\"dev/alex\"}",
                     {{"Authorization", bearer}});
  CHECK(branch.status == 201);
  auto sql = Call(router, "POST", "/v1/projects/shop/branches/dev%2Falex/sql",
                  "{\"sql\":\"CREATE TABLE t(a)\"}", {{"Authorization", bearer}});
  INFO(sql.body);
  CHECK(sql.status == 200);
  CHECK(json::parse(sql.body)["lsn"].is_number());
  auto bad = Call(router, "POST", "/v1/projects/shop/branches/dev%2Falex/sql", "{\"sql\":",
                  {{"Authorization", bearer}});
  CHECK(bad.status == 400);
  CHECK(json::parse(bad.body)["error"]["code"] == "invalid_json");
  CHECK((*server)->services().metrics->Value(
            kHttpRequests, {{"route", "/v1/projects/{project}/branches/{branch}/sql"},
                            {"method", "POST"},
                            {"status", "200"}}) == 1);
}

}  // namespace
}  // namespace branchdb::server::http
