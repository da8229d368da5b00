// OAuth clients (admin scope):
//   POST   /v1/clients        {"name","scopes":"a b"|["a","b"],"projects":[..]}
//                             -> 201 {client_id, client_secret (only now), name, scopes, projects, enabled, created_at}
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

json ClientJson(const auth::ClientInfo& c) {
  return {{"client_id", c.client_id}, {"name", c.name},          {"scopes", c.scopes.ToString()},
          {"projects", c.projects},   {"enabled", c.enabled},    {"created_at", c.created_at}};
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
        std::string scope_text;
        const json& scopes = (*body)["scopes"];
        if (scopes.is_string()) {
          scope_text = scopes.get<std::string>();
        } else if (scopes.is_array()) {
          for (const auto& s : scopes) {
            if (!s.is_string()) {
              return http::SendError(res, Status::InvalidArgument("scopes: expected strings",
                                                                  "invalid_argument"));
            }
            scope_text += (scope_text.empty() ? "" : " ") + s.get<std::string>();
          }
        } else {
          return http::SendError(
              res, Status::InvalidArgument(
                       "scopes: required, e.g. \"projects:read sql:write\" or [\"admin\"]",
                       "invalid_argument"));
        }
        auto parsed = auth::ScopeSet::Parse(scope_text);
        if (!parsed.ok()) return http::SendError(res, parsed.status().WithContext("scopes"));
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
