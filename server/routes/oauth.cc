// OAuth 2.0 endpoints, answered by auth::AuthService 1:1:
//   POST /oauth/token        client credentials grant (RFC 6749 §4.4)
//   POST /oauth/revoke       RFC 7009
//   POST /oauth/introspect   RFC 7662
//   GET  /.well-known/jwks.json
//   GET  /.well-known/oauth-authorization-server   RFC 8414 metadata
// None of these is idempotency-cached: their responses carry secrets.
#include <httplib.h>

#include "auth/auth.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/routes/call.h"

namespace branchdb::server::routes {
namespace {

bool BuildOAuthRequest(const httplib::Request& req, httplib::Response& res,
                       auth::OAuthRequest* out) {
  auto form = auth::ParseFormBody(req.body);
  if (!form.ok()) {
    http::SendJson(res, 400,
                   {{"error", "invalid_request"},
                    {"error_description", "body is not application/x-www-form-urlencoded"}});
    res.set_header("Cache-Control", "no-store");
    return false;
  }
  out->form = std::move(*form);
  out->authorization = req.get_header_value("Authorization");
  out->source_address = req.remote_addr;
  out->content_type = req.get_header_value("Content-Type");
  return true;
}

bool AuthAvailable(Call& c) {
  if (c.s.auth != nullptr) return true;
  http::SendError(c.res, Status::Unavailable("auth is not available", "auth_unavailable"));
  return false;
}

// One of the auth service's form endpoints.
void RunEndpoint(Call& c, auth::HttpReply (auth::AuthService::*endpoint)(const auth::OAuthRequest&)) {
  if (!AuthAvailable(c)) return;
  auth::OAuthRequest oreq;
  if (!BuildOAuthRequest(c.req, c.res, &oreq)) return;
  http::SendAuthReply(c.res, (c.s.auth->*endpoint)(oreq));
}

}  // namespace

void HandleOAuthToken(Call& c) { RunEndpoint(c, &auth::AuthService::TokenEndpoint); }
void HandleOAuthRevoke(Call& c) { RunEndpoint(c, &auth::AuthService::RevocationEndpoint); }
void HandleOAuthIntrospect(Call& c) { RunEndpoint(c, &auth::AuthService::IntrospectionEndpoint); }

void HandleJwks(Call& c) {
  if (!AuthAvailable(c)) return;
  http::SendAuthReply(c.res, c.s.auth->JwksEndpoint());
}

void HandleAuthServerMetadata(Call& c) {
  // The configured public URL, never the request's Host header (a client
  // could make the server name any issuer).
  const std::string& base = c.s.public_url;
  // Every scope a client may ask for (branches:protect and
  // branches:promote_protected included).
  const std::vector<std::string> scopes =
      auth::ScopeSet::FromBits(auth::ScopeSet::kAllBits).Names();
  const nlohmann::json client_auth = {"client_secret_basic", "client_secret_post"};
  http::SendJson(c.res, 200,
                 {{"issuer", base},
                  // RFC 8414 requires none for client credentials, but clients
                  // (the MCP TypeScript SDK) refuse metadata without one.
                  {"authorization_endpoint", base + "/oauth/authorize"},
                  {"token_endpoint", base + "/oauth/token"},
                  {"revocation_endpoint", base + "/oauth/revoke"},
                  {"introspection_endpoint", base + "/oauth/introspect"},
                  {"jwks_uri", base + "/.well-known/jwks.json"},
                  {"grant_types_supported", {"client_credentials"}},
                  {"response_types_supported", nlohmann::json::array()},
                  {"token_endpoint_auth_methods_supported", client_auth},
                  {"revocation_endpoint_auth_methods_supported", client_auth},
                  {"introspection_endpoint_auth_methods_supported", client_auth},
                  {"scopes_supported", scopes}});
}

void HandleOAuthAuthorize(Call& c) {
  // RFC 6749 §4.1.2.1: with no registered redirect URI, the error is shown
  // here, never redirected.
  http::SendJson(c.res, 400,
                 {{"error", "unsupported_response_type"},
                  {"error_description",
                   "this server issues tokens by client credentials only: POST /oauth/token "
                   "with grant_type=client_credentials"}});
  c.res.set_header("Cache-Control", "no-store");
}

}  // namespace branchdb::server::routes
