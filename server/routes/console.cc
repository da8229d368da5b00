// The web console's static files (routes/console.h).
#include "server/routes/console.h"

#include <httplib.h>

#include <string>

#include "server/http/errors.h"
#include "server/http/router.h"

namespace branchdb::server::routes {
namespace {

// True when an If-None-Match header value ("a", W/"a", a list, or *) names etag.
bool EtagMatches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

void Serve(const ConsoleAsset& asset, const httplib::Request& req, httplib::Response& res) {
  res.set_header("Content-Security-Policy", kConsoleCsp);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-cache");
  res.set_header("ETag", asset.etag);
  if (req.has_header("If-None-Match") &&
      EtagMatches(req.get_header_value("If-None-Match"), asset.etag)) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(reinterpret_cast<const char*>(asset.data), asset.size,
                  ConsoleContentType(asset.name));
}

}  // namespace

const ConsoleAsset* FindConsoleAsset(std::string_view name) {
  for (size_t i = 0; i < kConsoleAssetCount; ++i) {
    if (name == kConsoleAssets[i].name) return &kConsoleAssets[i];
  }
  return nullptr;
}

const char* ConsoleContentType(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  if (name.ends_with(".json")) return "application/json";
  if (name.ends_with(".png")) return "image/png";
  return "application/octet-stream";
}

void RegisterConsoleRoutes(http::Router& router) {
  router.Add("GET", "/", {},
             [](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
               Serve(*FindConsoleAsset("index.html"), req, res);
             });
  router.Add("GET", "/console/{file}", {},
             [](const httplib::Request& req, httplib::Response& res,
                http::RequestContext& ctx) {
               const ConsoleAsset* asset = FindConsoleAsset(ctx.Param("file"));
               if (asset == nullptr) {
                 return http::SendError(
                     res, Status::NotFound("no console file \"" + ctx.Param("file") +
                                               "\" (the console is at /)",
                                           "not_found"));
               }
               Serve(*asset, req, res);
             });
}

}  // namespace branchdb::server::routes
