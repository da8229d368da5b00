// Hardening issue #13, item 6 (the HTTP parts): what the server tells a
// client about itself.
//   - Discovery metadata and WWW-Authenticate challenges name the configured
//     public URL, never the request's Host header (a client could otherwise
//     make the server vouch for any issuer and token endpoint).
//   - The MCP Origin check parses origins: "http://127.0.0.1.evil.com" is
//     evil.com's, not loopback. Class: a table of origins that look loopback
//     and are not, and of loopback ones that must stay allowed.
//   - No error body shows the data directory. Class: every counted file
//     operation of the API's main paths fails in turn (FaultInjectionEnv, whose
//     messages carry the path, as the POSIX Env's do) and no response body of
//     any of those requests contains the data directory.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/security/raw_http.h"
#include "tests/server/live_server.h"
#include "tests/util/fault_injection_env.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

std::string Base(const testing::LiveServer& s) {
  return "http://127.0.0.1:" + std::to_string(s.port_);
}

// Every discovery answer and challenge, asked with a hostile Host header.
std::vector<std::string> DiscoveryAnswers(testing::LiveServer& s, const std::string& host) {
  auto c = s.Client();
  httplib::Headers h = {{"Host", host}};
  std::vector<std::string> out;
  for (const char* path :
       {"/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource"}) {
    auto r = c.Get(path, h);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    out.push_back(r->body);
  }
  auto mcp = c.Post("/mcp", h, R"j({"jsonrpc":"2.0","id":1,"method":"ping"})j", "application/json");
  REQUIRE(mcp);
  CHECK(mcp->status == 401);
  out.push_back(mcp->get_header_value("WWW-Authenticate"));
  out.push_back(mcp->body);
  auto api = c.Get("/v1/projects", h);
  REQUIRE(api);
  CHECK(api->status == 401);
  out.push_back(api->get_header_value("WWW-Authenticate"));
  out.push_back(api->body);
  return out;
}

TEST_CASE("discovery and challenges name the public URL, never the Host header (item 6)",
          "[security][disclosure]") {
  SECTION("default: derived from the listen address and the bound port") {
    testing::LiveServer s;
    for (const auto& answer : DiscoveryAnswers(s, "evil.example:666")) {
      INFO(answer);
      CHECK(answer.find("evil") == std::string::npos);
    }
    auto meta = json::parse(s.Client().Get("/.well-known/oauth-authorization-server",
                                           {{"Host", "evil.example"}})->body);
    CHECK(meta["issuer"] == Base(s));
    CHECK(meta["token_endpoint"] == Base(s) + "/oauth/token");
    CHECK(meta["jwks_uri"] == Base(s) + "/.well-known/jwks.json");
  }
  SECTION("configured: public_url") {
    testing::LiveServer s([](Config& c) { c.public_url = "https://db.example.com/"; });
    for (const auto& answer : DiscoveryAnswers(s, "evil.example")) {
      INFO(answer);
      CHECK(answer.find("evil") == std::string::npos);
    }
    auto meta = json::parse(s.Client().Get("/.well-known/oauth-authorization-server")->body);
    CHECK(meta["issuer"] == "https://db.example.com");
    CHECK(meta["jwks_uri"] == "https://db.example.com/.well-known/jwks.json");
    auto resource = json::parse(s.Client().Get("/.well-known/oauth-protected-resource")->body);
    CHECK(resource["resource"] == "https://db.example.com");
    auto mcp = s.Client().Post("/mcp", R"j({"jsonrpc":"2.0","id":1,"method":"ping"})j",
                               "application/json");
    REQUIRE(mcp);
    CHECK(mcp->get_header_value("WWW-Authenticate") ==
          "Bearer resource_metadata=\"https://db.example.com/.well-known/oauth-protected-resource\"");
  }
}

TEST_CASE("the MCP Origin check parses origins instead of prefix-matching them (item 6)",
          "[security][disclosure][mcp]") {
  testing::LiveServer s([](Config& c) { c.public_url = "https://db.example.com"; });
  std::string token = s.AdminToken();
  auto status_for = [&](const std::string& origin) {
    httplib::Headers h = {{"Authorization", "Bearer " + token}, {"Origin", origin}};
    auto r = s.Client().Post("/mcp", h, R"j({"jsonrpc":"2.0","id":1,"method":"ping"})j",
                             "application/json");
    REQUIRE(r);
    return r->status;
  };
  const std::string port = std::to_string(s.port_);
  for (const std::string& origin : std::vector<std::string>{
           "http://127.0.0.1.evil.com", "http://127.0.0.1.evil.com:" + port, "http://localhost.evil.com",
        "http://localhost.", "http://127.evil.com", "http://[::1].evil.com", "http://[::1]evil.com",
        "http://127.0.0.1@evil.com", "http://localhost:80@evil.com", "http://evil.com#@127.0.0.1",
        "http://evil.com/127.0.0.1", "http://127.0.0.1/", "http://127.0.0.1:80/x",
        "http://127.0.0.1:", "http://127.0.0.1:99999", "http://127.0.0.1:8o", "http://0177.0.0.1",
        "http://127.1", "http://127.0.0.01", "http://127.0.0.256", "http://127.0.0.1.",
        "javascript://127.0.0.1", "file://localhost", "null", "127.0.0.1",
        "http://db.example.com", "https://db.example.com:444", "https://db.example.com.evil.com",
        "http://localhost\\@evil.com", "http://evil.com\\x00127.0.0.1"}) {
    INFO("Origin: " << origin);
    CHECK(status_for(origin) == 403);
  }
  for (const std::string& origin : std::vector<std::string>{
           "http://localhost", "http://localhost:3000", "http://LOCALHOST:3000", "https://127.0.0.1",
        "http://127.0.0.1:" + port, "http://127.255.0.9:1", "http://[::1]:8080", "http://[::1]",
        "https://db.example.com", "https://db.example.com:443", "HTTPS://DB.EXAMPLE.COM"}) {
    INFO("Origin: " << origin);
    CHECK(status_for(origin) == 200);
  }
}

// The requests of the class test, on project p (each may fail anywhere).
constexpr size_t kExportRequest = 8;  // index of the export in ExerciseApi's answers
std::vector<httplib::Result> ExerciseApi(httplib::Client& c, const httplib::Headers& auth,
                                         const std::string& p, const std::string& sqlite_file) {
  std::vector<httplib::Result> out;
  const std::string b = "/v1/projects/" + p + "/branches/production";
  out.push_back(c.Post("/v1/projects", auth, json({{"name", p}}).dump(), "application/json"));
  out.push_back(c.Post(b + "/sql", auth, R"j({"sql":"CREATE TABLE t(x); INSERT INTO t VALUES (1)"})j",
                       "application/json"));
  out.push_back(c.Post(b + "/sql", auth, R"j({"sql":"SELECT * FROM t"})j", "application/json"));
  out.push_back(c.Post("/v1/projects/" + p + "/branches", auth,
                       R"j({"name":"dev","parent":"production"})j", "application/json"));
  out.push_back(c.Post("/v1/projects/" + p + "/branches/dev/sql", auth,
                       R"j({"sql":"INSERT INTO t VALUES (2)"})j", "application/json"));
  out.push_back(c.Get("/v1/projects/" + p + "/branches/dev/diff?kind=data", auth));
  out.push_back(c.Get(b + "/checkpoints", auth));
  out.push_back(c.Post(b + "/rollback", auth, R"j({"lsn":1})j", "application/json"));
  out.push_back(c.Get(b + "/export", auth));
  out.push_back(c.Post("/v1/projects/" + p + "/import?branch=imported", auth, sqlite_file,
                       "application/vnd.sqlite3"));
  out.push_back(c.Delete("/v1/projects/" + p + "/branches/dev", auth));
  out.push_back(c.Post("/oauth/token", "grant_type=client_credentials&client_id=x&client_secret=y",
                       "application/x-www-form-urlencoded"));
  return out;
}

TEST_CASE("no error body shows the data directory, whichever file operation fails (item 6)",
          "[security][disclosure]") {
  testing::FaultInjectionEnv env;
  testing::LiveServer s(nullptr, &env);
  std::string data_dir = s.dir_.Sub("data");
  std::string canonical = std::filesystem::weakly_canonical(data_dir).string();
  auto c = s.Client();
  httplib::Headers auth = {{"Authorization", "Bearer " + s.AdminToken()}};
  // A valid SQLite file to import: the export of a branch made before faults.
  ExerciseApi(c, auth, "seed", "");
  auto exported = c.Get("/v1/projects/seed/branches/production/export", auth);
  REQUIRE(exported);
  REQUIRE(exported->status == 200);
  int errors = 0;
  for (uint64_t n = 1; n <= 24; ++n) {
    env.FailNth(n, testing::FaultType::kIOError, /*sticky=*/n % 2 == 0);
    auto results = ExerciseApi(c, auth, "p" + std::to_string(n), exported->body);
    env.ClearFault();
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      // The export streams: a read that fails after its 200 and
      // Content-Length were sent can only cut the connection (the client
      // sees a short body); it discloses nothing.
      if (!r && i == kExportRequest) continue;
      REQUIRE(r);
      if (r->status >= 400) ++errors;
      INFO("fault #" << n << ": " << r->status << " " << r->body);
      CHECK(r->body.find(data_dir) == std::string::npos);
      CHECK(r->body.find(canonical) == std::string::npos);
    }
  }
  CHECK(errors > 24);  // the faults did reach the API
}

}  // namespace
}  // namespace branchdb::server
