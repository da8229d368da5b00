// The web console's files over real HTTP (server/routes/console.h): / is the
// page, /console/<file> its scripts and styles, each with its Content-Type, a
// strict Content-Security-Policy and an ETag that answers 304; names that are
// not console files are 404 JSON, and the console shadows no API answer (an
// unknown /v1/... path stays 404 route_not_found).
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "server/routes/console.h"
#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

void CheckServedAsConsoleFile(const httplib::Result& r, const std::string& type) {
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == type);
  CHECK(r->get_header_value("Content-Security-Policy") == routes::kConsoleCsp);
  CHECK(r->get_header_value("X-Content-Type-Options") == "nosniff");
  CHECK(r->get_header_value("X-Frame-Options") == "DENY");
  CHECK(r->get_header_value("Cache-Control") == "no-cache");
  CHECK(std::regex_match(r->get_header_value("ETag"), std::regex("\"[0-9a-f]{16}\"")));
}

void CheckJsonError(const httplib::Result& r, int status, const std::string& code) {
  REQUIRE(r);
  CHECK(r->status == status);
  CHECK(r->get_header_value("Content-Type") == "application/json");
  CHECK(!r->has_header("Content-Security-Policy"));
  json body = json::parse(r->body, nullptr, false);
  REQUIRE(!body.is_discarded());
  CHECK(body["error"]["code"] == code);
}

TEST_CASE("console: / is the console page, with its scripts and styles from /console/",
          "[console]") {
  testing::LiveServer server;
  auto c = server.Client();
  auto page = c.Get("/");
  CheckServedAsConsoleFile(page, "text/html; charset=utf-8");
  CHECK(page->body.find("<script type=\"module\" src=\"/console/app.js\">") != std::string::npos);
  CHECK(page->body.find("<link rel=\"stylesheet\" href=\"/console/style.css\">") !=
        std::string::npos);

  CheckServedAsConsoleFile(c.Get("/console/app.js"), "text/javascript; charset=utf-8");
  CheckServedAsConsoleFile(c.Get("/console/style.css"), "text/css; charset=utf-8");
  CheckServedAsConsoleFile(c.Get("/console/favicon.svg"), "image/svg+xml");
}

TEST_CASE("console: every file of web/ is served whole, and every module the page imports exists",
          "[console]") {
  testing::LiveServer server;
  auto c = server.Client();
  REQUIRE(routes::kConsoleAssetCount >= 4);
  std::set<std::string> names;
  for (size_t i = 0; i < routes::kConsoleAssetCount; ++i) {
    const auto& a = routes::kConsoleAssets[i];
    names.insert(a.name);
    auto r = c.Get(("/console/" + std::string(a.name)).c_str());
    REQUIRE(r);
    INFO(a.name);
    CHECK(r->status == 200);
    CHECK(r->body == std::string(reinterpret_cast<const char*>(a.data), a.size));
    CHECK(r->get_header_value("Content-Type") == routes::ConsoleContentType(a.name));
    CHECK(std::string(routes::ConsoleContentType(a.name)) != "application/octet-stream");
  }
  // Every "./x.js" a module imports is a console file (a missing one would
  // break the page in the browser only).
  std::regex import_re(R"(from '\./([A-Za-z0-9_.-]+)')");
  for (size_t i = 0; i < routes::kConsoleAssetCount; ++i) {
    const auto& a = routes::kConsoleAssets[i];
    std::string text(reinterpret_cast<const char*>(a.data), a.size);
    for (std::sregex_iterator it(text.begin(), text.end(), import_re), end; it != end; ++it) {
      INFO(a.name << " imports " << (*it)[1]);
      CHECK(names.count((*it)[1]) == 1);
    }
  }
}

TEST_CASE("console: If-None-Match with the ETag answers 304 without a body; HEAD has no body",
          "[console]") {
  testing::LiveServer server;
  auto c = server.Client();
  auto first = c.Get("/console/app.js");
  REQUIRE(first);
  std::string etag = first->get_header_value("ETag");
  auto again = c.Get("/console/app.js", {{"If-None-Match", etag}});
  REQUIRE(again);
  CHECK(again->status == 304);
  CHECK(again->body.empty());
  CHECK(again->get_header_value("ETag") == etag);

  auto listed = c.Get("/console/app.js", {{"If-None-Match", "\"other\", W/" + etag}});
  REQUIRE(listed);
  CHECK(listed->status == 304);

  auto stale = c.Get("/console/app.js", {{"If-None-Match", "\"0000000000000000\""}});
  REQUIRE(stale);
  CHECK(stale->status == 200);
  CHECK(stale->body == first->body);

  auto head = c.Head("/");
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());
  CHECK(head->get_header_value("Content-Type") == "text/html; charset=utf-8");
}

TEST_CASE("console: a name that is no console file is 404 JSON, and API errors stay the API's",
          "[console]") {
  testing::LiveServer server;
  auto c = server.Client();
  CheckJsonError(c.Get("/console/nope.js"), 404, "not_found");
  CheckJsonError(c.Get("/console/..%2Fserver.cc"), 404, "not_found");
  CheckJsonError(c.Get("/console/"), 404, "route_not_found");
  CheckJsonError(c.Get("/console/a/app.js"), 404, "route_not_found");
  CheckJsonError(c.Get("/index.html"), 404, "route_not_found");
  CheckJsonError(c.Get("/v1/nope"), 404, "route_not_found");
  CheckJsonError(c.Get("/v1/projects/shop/nope"), 404, "route_not_found");
  CheckJsonError(c.Post("/", "{}", "application/json"), 404, "route_not_found");
  // The API still wants its token: the console's files need none, the API does.
  CheckJsonError(c.Get("/v1/projects"), 401, "unauthenticated");
}

}  // namespace
}  // namespace branchdb::server
