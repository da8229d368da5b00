// The web console (docs/console.md): the static files of web/, compiled into
// the binary (cmake/embed_files.cmake writes the table below), served at
//   GET /                  web/index.html
//   GET /console/{file}    web/<file> (one path segment; no directories)
// with their Content-Type, an ETag (a hash of the file: If-None-Match answers
// 304), Cache-Control: no-cache (revalidate, so a new binary's files show at
// once) and a strict Content-Security-Policy (scripts, styles, images and
// fetches from this origin only; no inline script or style; no framing).
// A name that is not a file of web/ is 404 with the API's JSON error shape
// (code not_found); paths outside / and /console/ are the API's (an unknown
// /v1/... stays 404 route_not_found).
//
// These are not API routes (not in routes/table.h, not in docs/openapi.yaml):
// the console calls the public REST API like any other client.
#ifndef BRANCHDB_SERVER_ROUTES_CONSOLE_H_
#define BRANCHDB_SERVER_ROUTES_CONSOLE_H_

#include <cstddef>
#include <string_view>

namespace branchdb::server {
namespace http {
class Router;
}

namespace routes {

struct ConsoleAsset {
  const char* name;             // "app.js": its path under web/
  const unsigned char* data;    // its bytes (static storage)
  size_t size;
  const char* etag;             // "\"0123456789abcdef\"", quotes included
};

// Generated (build/server/console_assets.cc), in web/'s file order.
extern const ConsoleAsset kConsoleAssets[];
extern const size_t kConsoleAssetCount;

// The asset named name, or nullptr.
const ConsoleAsset* FindConsoleAsset(std::string_view name);

// The Content-Type of a file by its extension (text types with charset=utf-8);
// application/octet-stream for an unknown one.
const char* ConsoleContentType(std::string_view name);

// The Content-Security-Policy header every console file is served with.
inline constexpr const char* kConsoleCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

// Adds GET / and GET /console/{file} to router. REQUIRES: before Install().
void RegisterConsoleRoutes(http::Router& router);

}  // namespace routes
}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_ROUTES_CONSOLE_H_
