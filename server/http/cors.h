// CORS for browser-based agent UIs (Fetch standard, "CORS protocol"): off
// unless the configuration lists origins ([server] cors_origins). For a
// request whose Origin is listed, every answer (the API, /oauth/*, /mcp)
// carries Access-Control-Allow-Origin: <that origin> and Vary: Origin, and
// exposes the headers a client reads (WWW-Authenticate, X-Request-Id,
// Retry-After, Idempotent-Replayed). A preflight (OPTIONS with
// Access-Control-Request-Method) is answered here, before routing: 204 with
// the allowed methods and request headers when its Origin is listed, else
// 403 cors_origin_not_allowed. No wildcard and no
// Access-Control-Allow-Credentials: the API's credential is a bearer token the
// page sends in Authorization, never a cookie.
//
// Thread-safety: stateless; the origin list is constant after construction.
#ifndef BRANCHDB_SERVER_HTTP_CORS_H_
#define BRANCHDB_SERVER_HTTP_CORS_H_

#include <string>
#include <vector>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace branchdb::server::http {

// True when origin is one of allowed (exact, case-sensitive match).
bool CorsOriginAllowed(const std::vector<std::string>& allowed, const std::string& origin);

// Adds the CORS headers to res for req (none when allowed is empty or req's
// Origin is not listed); answers a preflight whole. Returns true when res is
// the complete answer (a preflight), false when the request goes on to routing.
bool ApplyCors(const std::vector<std::string>& allowed, const httplib::Request& req,
               httplib::Response& res);

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_CORS_H_
