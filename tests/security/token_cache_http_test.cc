// The verified-token cache through a real server over HTTP (issue #20): a
// token's signature is checked on its first request only (counted in
// /metrics), and a cached access token or database credential is refused on
// its very next request after it is revoked (RFC 7009 endpoint) or its client
// is deleted. With [auth] token_cache_entries = 0 every request checks, once:
// admission, idempotency and the handler share the request's verification.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>

#include "tests/server/live_server.h"

namespace branchdb::security {
namespace {

using nlohmann::json;

class Server : public testing::LiveServer {
 public:
  explicit Server(const std::function<void(server::Config&)>& tweak = nullptr)
      : LiveServer(tweak) {
    REQUIRE(Call("post", "/v1/projects", {{"name", "p"}}).first == 201);
  }

  // Status of SELECT 1 on p/production with `token`.
  int Sql(const std::string& token) {
    return Call("post", "/v1/projects/p/branches/production/sql", {{"sql", "SELECT 1"}}, token)
        .first;
  }

  // The same with an Idempotency-Key (admission, idempotency and the handler
  // all need the caller).
  int SqlWithKey(const std::string& token, const std::string& key) {
    httplib::Headers h{{"Authorization", "Bearer " + token}, {"Idempotency-Key", key}};
    auto r = Client().Post("/v1/projects/p/branches/production/sql", h,
                           json{{"sql", "SELECT 1"}}.dump(), "application/json");
    REQUIRE(r);
    return r->status;
  }

  // A new client with sql:write: {client_id, client_secret}.
  json NewClient() {
    auto [status, c] = Call("post", "/v1/clients", {{"name", "agent"}, {"scopes", {"sql:write"}}});
    REQUIRE(status == 201);
    return c;
  }

  // POST /oauth/revoke of `token`, as client `c`.
  void Revoke(const json& c, const std::string& token) {
    auto http = Client();
    http.set_basic_auth(c["client_id"].get<std::string>().c_str(),
                        c["client_secret"].get<std::string>().c_str());
    auto r = http.Post("/oauth/revoke", "token=" + token, "application/x-www-form-urlencoded");
    REQUIRE(r);
    REQUIRE(r->status == 200);
  }

  // The value of an unlabelled /metrics counter.
  double Metric(const std::string& name) {
    auto r = Client().Get("/metrics");
    REQUIRE(r);
    std::istringstream lines(r->body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    FAIL("no metric " << name);
    return 0;
  }
};

constexpr char kChecks[] = "branchdb_auth_signature_checks_total";

TEST_CASE("a token's signature is checked on its first request only") {
  Server s;
  json c = s.NewClient();
  std::string token = s.Token(c["client_id"], c["client_secret"]);
  double before = s.Metric(kChecks);
  for (int i = 0; i < 3; ++i) CHECK(s.Sql(token) == 200);
  CHECK(s.Metric(kChecks) == before + 1);
}

TEST_CASE("with token_cache_entries = 0 every request checks its token's signature once") {
  Server s([](server::Config& c) { c.token_cache_entries = 0; });
  json c = s.NewClient();
  std::string token = s.Token(c["client_id"], c["client_secret"]);
  double before = s.Metric(kChecks);
  for (int i = 0; i < 3; ++i) CHECK(s.Sql(token) == 200);
  CHECK(s.Metric(kChecks) == before + 3);
  // Admission, the Idempotency-Key's scope and the handler share one check.
  before = s.Metric(kChecks);
  CHECK(s.SqlWithKey(token, "k1") == 200);
  CHECK(s.Metric(kChecks) == before + 1);
}

TEST_CASE("a token verified once per request is refused on its next request after revocation") {
  Server s([](server::Config& c) { c.token_cache_entries = 0; });
  json c = s.NewClient();
  std::string token = s.Token(c["client_id"], c["client_secret"]);
  REQUIRE(s.SqlWithKey(token, "k1") == 200);
  s.Revoke(c, token);
  CHECK(s.SqlWithKey(token, "k2") == 401);
  CHECK(s.Sql(token) == 401);
}

TEST_CASE("a cached access token is refused on its next request after revocation") {
  Server s;
  json c = s.NewClient();
  std::string token = s.Token(c["client_id"], c["client_secret"]);
  REQUIRE(s.Sql(token) == 200);
  REQUIRE(s.SqlWithKey(token, "k1") == 200);  // from the cache
  s.Revoke(c, token);
  CHECK(s.SqlWithKey(token, "k2") == 401);
  CHECK(s.Sql(token) == 401);
}

TEST_CASE("a cached database credential is refused on its next request after revocation") {
  Server s;
  auto [status, out] = s.Call("post", "/v1/projects/p/branches/production/credentials",
                              {{"access", "read_write"}, {"ttl_seconds", 600}});
  REQUIRE(status == 201);
  std::string cred = out["credential"];
  REQUIRE(s.Sql(cred) == 200);
  REQUIRE(s.Sql(cred) == 200);
  json admin = {{"client_id", s.client_id_}, {"client_secret", s.client_secret_}};
  s.Revoke(admin, cred);
  CHECK(s.Sql(cred) == 401);
}

TEST_CASE("a cached token is refused on its next request after its client is deleted") {
  Server s;
  json c = s.NewClient();
  std::string token = s.Token(c["client_id"], c["client_secret"]);
  REQUIRE(s.Sql(token) == 200);
  REQUIRE(s.Sql(token) == 200);
  REQUIRE(s.Call("delete", "/v1/clients/" + c["client_id"].get<std::string>()).first == 204);
  CHECK(s.Sql(token) == 401);
}

}  // namespace
}  // namespace branchdb::security
