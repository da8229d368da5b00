// OAuth clients (admin scope; not for clients restricted to projects):
//   POST   /v1/clients        {"name","scopes":["a","b"],"projects":[..]}
//                             -> 201 {client_id, client_secret (only now), name, scopes, projects,
//                                     enabled, created_at (RFC 3339)}
//   GET    /v1/clients        -> {"clients":[...]} (never secrets)
//   DELETE /v1/clients/{id}   -> 204
#include <httplib.h>

#include "auth/auth.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/http/router.h"
#include "server/routes/routes.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

// The auth library's JSON of a client: one shape for every route.
json ClientJson(const auth::ClientInfo& c) { return json::parse(c.ToJson(), nullptr, false); }

// "scopes": a non-empty array of scope names (the one form scopes take in and
// out of the REST API; the token endpoint's space-separated "scope" is OAuth's).
Result<auth::ScopeSet> ParseScopes(const json& scopes) {
  Status bad = Status::InvalidArgument(
      "scopes: required, an array of scope names, e.g. [\"projects:read\", \"sql:write\"]",
      "invalid_argument");
  if (!scopes.is_array() || scopes.empty()) return bad;
  auth::ScopeSet set;
  for (const auto& s : scopes) {
    if (!s.is_string()) return bad;
    auto scope = auth::ParseScopeName(s.get<std::string>());
    if (!scope) {
      return Status::InvalidArgument("scopes: unknown scope '" + s.get<std::string>() + "'",
                                     "invalid_argument");
    }
    set.Add(*scope);
  }
  return set;
}

}  // namespace

void RegisterClientRoutes(http::Router& router, Services& services) {
  router.Post(
      "/v1/clients", "/v1/clients",
      [&services](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
        if (!http::RequireAuth(services, req, res, auth::Operation::kManageClients)) return;
        auto body = http::ParseJsonObject(req.body);
        if (!body.ok()) return http::SendError(res, body.status());
        auth::ClientSpec spec;
        spec.name = body->value("name", "");
        auto parsed = ParseScopes(body->contains("scopes") ? (*body)["scopes"] : json());
        if (!parsed.ok()) return http::SendError(res, parsed.status());
        spec.scopes = *parsed;
        if (body->contains("projects")) {
          const json& projects = (*body)["projects"];
          if (!projects.is_array()) {
            return http::SendError(res, Status::InvalidArgument(
                                            "projects: expected an array of project names",
                                            "invalid_argument"));
          }
          for (const auto& p : projects) {
            if (!p.is_string()) {
              return http::SendError(res, Status::InvalidArgument("projects: expected strings",
                                                                  "invalid_argument"));
            }
            spec.projects.push_back(p.get<std::string>());
          }
        }
        auto created = services.auth->CreateClient(spec);
        if (!created.ok()) return http::SendError(res, created.status());
        json out = ClientJson(created->info);
        out["client_secret"] = created->client_secret;
        http::SendJson(res, 201, out);
        res.set_header("Cache-Control", "no-store");
      },
      /*idempotent=*/false);  // the response holds a secret: never stored
  router.Get("/v1/clients", "/v1/clients",
             [&services](const httplib::Request& req, httplib::Response& res,
                         http::RequestContext&) {
               if (!http::RequireAuth(services, req, res, auth::Operation::kManageClients)) return;
               json list = json::array();
               for (const auto& c : services.auth->ListClients()) list.push_back(ClientJson(c));
               http::SendJson(res, 200, {{"clients", list}});
             });
  router.Delete(R"(/v1/clients/([^/]+))", "/v1/clients/{client_id}",
                [&services](const httplib::Request& req, httplib::Response& res,
                            http::RequestContext&) {
                  if (!http::RequireAuth(services, req, res, auth::Operation::kManageClients)) {
                    return;
                  }
                  auto id = http::DecodePathSegment(req.matches[1]);
                  if (!id.ok()) return http::SendError(res, id.status());
                  Status s = services.auth->DeleteClient(*id);
                  if (!s.ok()) return http::SendError(res, s);
                  res.status = 204;
                });
}

}  // namespace branchdb::server
