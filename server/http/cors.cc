#include "server/http/cors.h"

#include <httplib.h>

#include <algorithm>

#include "server/http/errors.h"

namespace branchdb::server::http {

bool CorsOriginAllowed(const std::vector<std::string>& allowed, const std::string& origin) {
  return !origin.empty() && std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
}

bool ApplyCors(const std::vector<std::string>& allowed, const httplib::Request& req,
               httplib::Response& res) {
  if (allowed.empty() || !req.has_header("Origin")) return false;
  const std::string origin = req.get_header_value("Origin");
  const bool preflight =
      req.method == "OPTIONS" && req.has_header("Access-Control-Request-Method");
  res.set_header("Vary", "Origin");
  if (!CorsOriginAllowed(allowed, origin)) {
    if (!preflight) return false;  // answered without CORS headers: the browser hides it
    SendError(res, Status::PermissionDenied("origin " + origin +
                                                " is not in the server's cors_origins",
                                            "cors_origin_not_allowed"));
    return true;
  }
  res.set_header("Access-Control-Allow-Origin", origin);
  if (!preflight) {
    res.set_header("Access-Control-Expose-Headers",
                   "WWW-Authenticate, X-Request-Id, Retry-After, Idempotent-Replayed");
    return false;
  }
  res.status = 204;
  res.set_header("Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE");
  res.set_header("Access-Control-Allow-Headers",
                 "Authorization, Content-Type, Idempotency-Key, X-Request-Id, "
                 "MCP-Protocol-Version, Mcp-Session-Id, Last-Event-ID");
  res.set_header("Access-Control-Max-Age", "600");
  return true;
}

}  // namespace branchdb::server::http
