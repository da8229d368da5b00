// The MCP endpoint over streamable HTTP (MCP 2025-06-18; server/mcp/ has the
// protocol and the tools) and the OAuth protected-resource metadata:
//   POST /mcp[?readonly=true]   one JSON-RPC message (readonly=true: a
//               read-only session, mcp::Session) -> 200 application/json (a response),
//               202 (a notification or response: no body), 400 (unparsable or
//               invalid message, or an unsupported MCP-Protocol-Version),
//               401 + WWW-Authenticate: Bearer resource_metadata="..." without
//               a valid bearer token, 403 for a foreign Origin.
//   GET|DELETE /mcp -> 405: no server-initiated stream, no sessions (the
//               server is stateless; it issues no Mcp-Session-Id).
//   GET /.well-known/oauth-protected-resource   RFC 9728 metadata.
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>

#include "auth/auth.h"
#include "server/http/cors.h"
#include "server/http/errors.h"
#include "server/http/log_value.h"
#include "server/http/router.h"
#include "server/mcp/mcp.h"
#include "server/routes/call.h"

namespace branchdb::server::routes {
namespace {

using nlohmann::json;

// True when scopes grant any write: admin, or a :write, :protect or
// :promote_protected scope. A client without one is read-only.
bool HoldsWriteScope(const auth::ScopeSet& scopes) {
  for (auth::Scope s : {auth::Scope::kAdmin, auth::Scope::kProjectsWrite,
                        auth::Scope::kBranchesWrite, auth::Scope::kSqlWrite,
                        auth::Scope::kBranchesProtect, auth::Scope::kBranchesPromoteProtected}) {
    if (scopes.Has(s)) return true;
  }
  return false;
}

// Named after the configured public URL, never the request's Host header.
std::string ResourceMetadataUrl(const Services& services) {
  return services.public_url + "/.well-known/oauth-protected-resource";
}

// An origin as browsers serialize it (RFC 6454 section 6.2): scheme, host
// (lowercased; an IPv6 literal keeps its brackets) and port (-1: none given).
struct Origin {
  std::string scheme;
  std::string host;
  int port = -1;

  int EffectivePort() const {
    if (port >= 0) return port;
    return scheme == "https" ? 443 : 80;
  }
};

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Parses "host[:port]" exactly: a DNS name or IPv4 address of [a-z0-9.-], or
// an IPv6 literal in brackets, then an optional decimal port. Anything else
// (userinfo, a path, a second colon, an empty host) is nullopt.
std::optional<Origin> ParseAuthority(std::string_view authority) {
  Origin o;
  size_t i = 0;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos || close < 2) return std::nullopt;
    std::string_view inside = authority.substr(1, close - 1);
    if (inside.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) {
      return std::nullopt;
    }
    o.host = LowerAscii(authority.substr(0, close + 1));
    i = close + 1;
  } else {
    i = std::min(authority.find(':'), authority.size());
    o.host = LowerAscii(authority.substr(0, i));
    if (o.host.empty() ||
        o.host.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos) {
      return std::nullopt;
    }
  }
  if (i == authority.size()) return o;
  std::string_view port = authority.substr(i);
  if (port[0] != ':' || port.size() < 2 || port.size() > 6 ||
      port.substr(1).find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  o.port = std::stoi(std::string(port.substr(1)));
  if (o.port > 65535) return std::nullopt;
  return o;
}

// Parses "http[s]://host[:port]" (nothing after it, as in an Origin header).
std::optional<Origin> ParseOrigin(std::string_view text) {
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) return std::nullopt;  // also "null"
  std::string scheme = LowerAscii(text.substr(0, sep));
  if (scheme != "http" && scheme != "https") return std::nullopt;
  auto o = ParseAuthority(text.substr(sep + 3));
  if (o) o->scheme = scheme;
  return o;
}

// A dotted-quad IPv4 address in canonical form (no leading zeros, each <= 255).
bool IsIpv4(const std::string& host) {
  int parts = 0;
  size_t i = 0;
  while (i <= host.size()) {
    size_t dot = std::min(host.find('.', i), host.size());
    std::string part = host.substr(i, dot - i);
    if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string::npos ||
        (part.size() > 1 && part[0] == '0') || std::stoi(part) > 255) {
      return false;
    }
    ++parts;
    i = dot + 1;
  }
  return parts == 4;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "[::1]" || (IsIpv4(host) && host.rfind("127.", 0) == 0);
}

// DNS rebinding defence (MCP transport security): a browser page always sends
// Origin; it may call only from a loopback origin, from this server's public
// URL, or from the very IP address it reached (an IP literal cannot be
// rebound). Origins are parsed, never prefix-matched: "http://127.0.0.1.evil.com"
// is evil.com's. Agents send no Origin.
bool OriginAllowed(const std::string& origin_header, const std::string& host_header,
                   const std::string& public_url) {
  auto origin = ParseOrigin(origin_header);
  if (!origin) return false;
  if (IsLoopback(origin->host)) return true;
  if (auto own = ParseOrigin(public_url); own && own->scheme == origin->scheme &&
                                          own->host == origin->host &&
                                          own->EffectivePort() == origin->EffectivePort()) {
    return true;
  }
  auto reached = ParseAuthority(host_header);
  bool ip_literal = IsIpv4(origin->host) || origin->host[0] == '[';
  return ip_literal && reached && reached->host == origin->host;
}

bool AcceptsJson(const httplib::Request& req) {
  if (!req.has_header("Accept")) return true;
  std::string accept = req.get_header_value("Accept");
  return accept.find("application/json") != std::string::npos ||
         accept.find("*/*") != std::string::npos ||
         accept.find("application/*") != std::string::npos;
}

void SendRpcError(httplib::Response& res, int http_status, int code, const std::string& message) {
  res.status = http_status;
  res.set_content(mcp::ErrorResponse(nullptr, code, message), "application/json");
}

// 401 (or 400 for a malformed header) with the RFC 9728 pointer, so an MCP
// client can discover where to get a token.
void SendUnauthorized(httplib::Response& res, const auth::BearerError& error,
                      const std::string& metadata_url) {
  std::string code(error.ErrorCode());
  std::string challenge = "Bearer resource_metadata=\"" + metadata_url + "\"";
  if (!code.empty()) challenge += ", error=\"" + code + "\"";
  std::string message = error.description.empty()
                            ? "a bearer token is required: get one at POST /oauth/token (client "
                              "credentials) and send Authorization: Bearer <token>"
                            : error.description;
  http::SendJson(res, error.HttpStatus() == 403 ? 401 : error.HttpStatus(),
                 {{"error",
                   {{"code", code.empty() ? "unauthenticated" : code},
                    {"message", message},
                    {"details", {{"resource_metadata", metadata_url}}}}}});
  res.set_header("WWW-Authenticate", challenge);
}

void SendMethodNotAllowed(httplib::Response& res) {
  http::SendJson(res, 405,
                 {{"error",
                   {{"code", "method_not_allowed"},
                    {"message",
                     "this MCP endpoint takes POST only (no server-initiated stream, no sessions)"},
                    {"details", json::object()}}}});
  res.set_header("Allow", "POST");
}

}  // namespace

void HandleMcp(Call& c) {
  const httplib::Request& req = c.req;
  if (req.has_header("Origin") &&
      !OriginAllowed(req.get_header_value("Origin"), req.get_header_value("Host"), c.s.public_url) &&
      !http::CorsOriginAllowed(c.s.config->cors_origins, req.get_header_value("Origin"))) {
    return SendRpcError(c.res, 403, mcp::kInvalidRequest,
                        "Origin " + req.get_header_value("Origin") +
                            " is not allowed (only loopback origins, this server's public URL "
                            "and the configured cors_origins may call from a browser)");
  }
  if (c.s.auth == nullptr) {
    return http::SendError(c.res, Status::Unavailable("auth is not available", "auth_unavailable"));
  }
  auth::BearerError error;
  auto principal = c.s.auth->Authenticate(req.get_header_value("Authorization"), &error);
  if (!principal) return SendUnauthorized(c.res, error, ResourceMetadataUrl(c.s));
  mcp::Session session;
  session.scopes = principal->scopes;
  auth::AuthService* auth = c.s.auth;
  session.allows = [auth, p = *principal](auth::Operation op, const std::string& project,
                                           const std::string& branch) {
    return auth->Allows(p, op, project, branch);
  };
  // A client that holds no write scope gets the read-only session whatever
  // the query says: its list shows only what it can use.
  session.read_only = !HoldsWriteScope(principal->scopes);
  if (req.has_param("readonly")) {
    std::string mode = req.get_param_value("readonly");
    if (mode != "true" && mode != "false") {
      return SendRpcError(c.res, 400, mcp::kInvalidRequest,
                          "readonly must be true or false, not \"" + mode + "\"");
    }
    session.read_only = session.read_only || mode == "true";
  }
  if (req.has_header("MCP-Protocol-Version") &&
      !mcp::SupportedProtocolVersion(req.get_header_value("MCP-Protocol-Version"))) {
    return SendRpcError(c.res, 400, mcp::kInvalidRequest,
                        "unsupported MCP-Protocol-Version " +
                            req.get_header_value("MCP-Protocol-Version") +
                            " (supported: 2025-06-18, 2025-03-26)");
  }
  if (!AcceptsJson(req)) {
    return SendRpcError(c.res, 406, mcp::kInvalidRequest,
                        "Accept must allow application/json (this server answers with "
                        "JSON, never an event stream)");
  }
  // Each tool call is one API request as the caller: same token, same
  // request id (so checkpoints name this MCP request), same address.
  std::string authorization = req.get_header_value("Authorization");
  const http::Router* router = c.s.router;
  mcp::Dispatcher dispatch = [router, &c, &authorization](const http::DispatchRequest& in) {
    http::DispatchRequest call = in;
    call.headers.emplace("Authorization", authorization);
    call.headers.emplace("X-Request-Id", c.ctx.request_id);
    call.remote_addr = c.req.remote_addr;
    return router->Dispatch(call);
  };
  mcp::Reply reply = mcp::HandleMessage(req.body, session, dispatch);
  if (!reply.tool.empty()) {
    c.s.logger->info("event=mcp_tool_call tool={} is_error={} read_only={} request_id={}",
                     http::LogValue(reply.tool), reply.tool_error, session.read_only,
                     http::LogValue(c.ctx.request_id));
  }
  c.res.status = reply.http_status;
  if (!reply.body.empty()) c.res.set_content(reply.body, "application/json");
}

void HandleMcpNotAllowed(Call& c) { SendMethodNotAllowed(c.res); }

void HandleProtectedResourceMetadata(Call& c) {
  const std::string& base = c.s.public_url;
  http::SendJson(c.res, 200,
                 {{"resource", base},
                  {"authorization_servers", {base}},
                  {"scopes_supported", auth::ScopeSet::FromBits(auth::ScopeSet::kAllBits).Names()},
                  {"bearer_methods_supported", {"header"}},
                  {"resource_name", "branchdb"}});
}

}  // namespace branchdb::server::routes
