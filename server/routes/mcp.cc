// The MCP endpoint over streamable HTTP (MCP 2025-06-18; server/mcp/ has the
// protocol and the tools) and the OAuth protected-resource metadata:
//   POST /mcp   one JSON-RPC message -> 200 application/json (a response),
//               202 (a notification or response: no body), 400 (unparsable or
//               invalid message, or an unsupported MCP-Protocol-Version),
//               401 + WWW-Authenticate: Bearer resource_metadata="..." without
//               a valid bearer token, 403 for a foreign Origin.
//   GET|DELETE /mcp -> 405: no server-initiated stream, no sessions (the
//               server is stateless; it issues no Mcp-Session-Id).
//   GET /.well-known/oauth-protected-resource   RFC 9728 metadata.
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cctype>

#include "auth/auth.h"
#include "server/http/errors.h"
#include "server/http/log_value.h"
#include "server/http/router.h"
#include "server/mcp/mcp.h"
#include "server/routes/routes.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

std::string BaseUrl(const httplib::Request& req, const Services& services) {
  std::string scheme = services.config->tls_cert_file.empty() ? "http" : "https";
  std::string host = req.get_header_value("Host");
  if (host.empty()) host = services.config->listen;
  return scheme + "://" + host;
}

std::string ResourceMetadataUrl(const httplib::Request& req, const Services& services) {
  return BaseUrl(req, services) + "/.well-known/oauth-protected-resource";
}

// The host of "host[:port]" ("[::1]" keeps its brackets), lowercased.
std::string HostOf(std::string authority) {
  for (char& c : authority) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!authority.empty() && authority[0] == '[') return authority.substr(0, authority.find(']') + 1);
  return authority.substr(0, authority.find(':'));
}

bool IsIpLiteral(const std::string& host) {
  return (!host.empty() && host[0] == '[') ||
         (!host.empty() && host.find_first_not_of("0123456789.") == std::string::npos);
}

// DNS rebinding defence (MCP transport security): a browser page always sends
// Origin; it may call only from a loopback origin, or from the very IP address
// it reached (an IP literal cannot be rebound). Agents send no Origin.
bool OriginAllowed(const std::string& origin, const std::string& host_header) {
  size_t scheme_end = origin.find("://");
  if (scheme_end == std::string::npos) return false;  // also "null"
  std::string host = HostOf(origin.substr(scheme_end + 3));
  if (host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0) return true;
  return IsIpLiteral(host) && host == HostOf(host_header);
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

void RegisterMcpRoutes(http::Router& router, Services& services) {
  Services* s = &services;
  http::Router* r = &router;
  router.Post(
      "/mcp", "/mcp",
      [s, r](const httplib::Request& req, httplib::Response& res, http::RequestContext& ctx) {
        if (req.has_header("Origin") &&
            !OriginAllowed(req.get_header_value("Origin"), req.get_header_value("Host"))) {
          return SendRpcError(res, 403, mcp::kInvalidRequest,
                              "Origin " + req.get_header_value("Origin") +
                                  " is not allowed (only loopback origins may call from a browser)");
        }
        if (s->auth == nullptr) {
          return http::SendError(res, Status::Unavailable("auth is not available", "auth_unavailable"));
        }
        auth::BearerError error;
        if (!s->auth->Authenticate(req.get_header_value("Authorization"), &error)) {
          return SendUnauthorized(res, error, ResourceMetadataUrl(req, *s));
        }
        if (req.has_header("MCP-Protocol-Version") &&
            !mcp::SupportedProtocolVersion(req.get_header_value("MCP-Protocol-Version"))) {
          return SendRpcError(res, 400, mcp::kInvalidRequest,
                              "unsupported MCP-Protocol-Version " +
                                  req.get_header_value("MCP-Protocol-Version") +
                                  " (supported: 2025-06-18, 2025-03-26)");
        }
        if (!AcceptsJson(req)) {
          return SendRpcError(res, 406, mcp::kInvalidRequest,
                              "Accept must allow application/json (this server answers with "
                              "JSON, never an event stream)");
        }
        // Each tool call is one API request as the caller: same token, same
        // request id (so checkpoints name this MCP request), same address.
        std::string authorization = req.get_header_value("Authorization");
        mcp::Dispatcher dispatch = [r, &req, &ctx, &authorization](const http::DispatchRequest& in) {
          http::DispatchRequest call = in;
          call.headers.emplace("Authorization", authorization);
          call.headers.emplace("X-Request-Id", ctx.request_id);
          call.remote_addr = req.remote_addr;
          return r->Dispatch(call);
        };
        mcp::Reply reply = mcp::HandleMessage(req.body, dispatch);
        if (!reply.tool.empty()) {
          s->logger->info("event=mcp_tool_call tool={} is_error={} request_id={}",
                          http::LogValue(reply.tool), reply.tool_error,
                          http::LogValue(ctx.request_id));
        }
        res.status = reply.http_status;
        if (!reply.body.empty()) res.set_content(reply.body, "application/json");
      },
      /*idempotent=*/false);
  auto not_allowed = [](const httplib::Request&, httplib::Response& res, http::RequestContext&) {
    SendMethodNotAllowed(res);
  };
  router.Get("/mcp", "/mcp", not_allowed);
  router.Delete("/mcp", "/mcp", not_allowed);

  router.Get("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource",
             [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
               std::string base = BaseUrl(req, *s);
               http::SendJson(
                   res, 200,
                   {{"resource", base},
                    {"authorization_servers", {base}},
                    {"scopes_supported", auth::ScopeSet::FromBits(auth::ScopeSet::kAllBits).Names()},
                    {"bearer_methods_supported", {"header"}},
                    {"resource_name", "branchdb"}});
             });
}

}  // namespace branchdb::server
