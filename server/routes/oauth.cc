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
#include "server/http/router.h"
#include "server/routes/routes.h"

namespace branchdb::server {
namespace {

using http::RequestContext;

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

}  // namespace

void RegisterOAuthRoutes(http::Router& router, Services& services) {
  auto endpoint = [&services](auth::HttpReply (auth::AuthService::*fn)(const auth::OAuthRequest&)) {
    return [&services, fn](const httplib::Request& req, httplib::Response& res, RequestContext&) {
      if (services.auth == nullptr) {
        return http::SendError(res, Status::Unavailable("auth is not available", "auth_unavailable"));
      }
      auth::OAuthRequest oreq;
      if (!BuildOAuthRequest(req, res, &oreq)) return;
      http::SendAuthReply(res, (services.auth->*fn)(oreq));
    };
  };
  router.Post("/oauth/token", "/oauth/token", endpoint(&auth::AuthService::TokenEndpoint),
              /*idempotent=*/false);
  router.Post("/oauth/revoke", "/oauth/revoke", endpoint(&auth::AuthService::RevocationEndpoint),
              false);
  router.Post("/oauth/introspect", "/oauth/introspect",
              endpoint(&auth::AuthService::IntrospectionEndpoint), false);
  router.Get("/.well-known/jwks.json", "/.well-known/jwks.json",
             [&services](const httplib::Request&, httplib::Response& res, RequestContext&) {
               if (services.auth == nullptr) {
                 return http::SendError(
                     res, Status::Unavailable("auth is not available", "auth_unavailable"));
               }
               http::SendAuthReply(res, services.auth->JwksEndpoint());
             });
  router.Get("/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server",
             [&services](const httplib::Request&, httplib::Response& res, RequestContext&) {
               // The configured public URL, never the request's Host header
               // (a client could make the server name any issuer).
               const std::string& base = services.public_url;
               std::vector<std::string> scopes;
               for (auth::Scope s : {auth::Scope::kAdmin, auth::Scope::kProjectsRead,
                                     auth::Scope::kProjectsWrite, auth::Scope::kBranchesRead,
                                     auth::Scope::kBranchesWrite, auth::Scope::kSqlRead,
                                     auth::Scope::kSqlWrite}) {
                 scopes.emplace_back(auth::ScopeName(s));
               }
               http::SendJson(
                   res, 200,
                   {{"issuer", base},
                    {"token_endpoint", base + "/oauth/token"},
                    {"revocation_endpoint", base + "/oauth/revoke"},
                    {"introspection_endpoint", base + "/oauth/introspect"},
                    {"jwks_uri", base + "/.well-known/jwks.json"},
                    {"grant_types_supported", {"client_credentials"}},
                    {"response_types_supported", nlohmann::json::array()},
                    {"token_endpoint_auth_methods_supported",
                     {"client_secret_basic", "client_secret_post"}},
                    {"revocation_endpoint_auth_methods_supported",
                     {"client_secret_basic", "client_secret_post"}},
                    {"introspection_endpoint_auth_methods_supported",
                     {"client_secret_basic", "client_secret_post"}},
                    {"scopes_supported", scopes}});
             });
}

}  // namespace branchdb::server
