// Projects:
//   POST   /v1/projects              {"name","restore_window_seconds"} -> 201 project
//                                     (a client with a project list: only names on it)
//   GET    /v1/projects              -> {"projects":[...]} (those the client may see)
//   GET    /v1/projects/{project}
//   PATCH  /v1/projects/{project}    {"restore_window_seconds"}
//   DELETE /v1/projects/{project}[?force=true]  -> 204
#include <httplib.h>

#include "auth/auth.h"
#include "server/compute/supervisor.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/http/router.h"
#include "server/routes/common.h"
#include "server/routes/routes.h"

namespace branchdb::server {

using nlohmann::json;
using routes::OptInt;

namespace {
// restore_window_seconds: 0 to 35 days (the catalog's limit), checked in seconds.
constexpr routes::IntRange kRestoreWindowRange{
    0, catalog::kMaxRestoreWindowMicros / catalog::kMicrosPerSecond};
}  // namespace

void RegisterProjectRoutes(http::Router& router, Services& services) {
  Services* s = &services;
  router.Post("/v1/projects", "/v1/projects",
              [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
                // Authorized on the name it asks for: a client restricted to
                // projects creates only projects of its list.
                json peek = json::parse(req.body, nullptr, false);
                std::string name = peek.is_object() && peek.contains("name") &&
                                           peek["name"].is_string()
                                       ? peek["name"].get<std::string>()
                                       : "";
                if (!http::RequireAuth(*s, req, res, auth::Operation::kCreateProject, name)) return;
                BRANCHDB_TRY_SEND(res, body, http::ParseJsonObject(req.body));
                if (!(*body)["name"].is_string()) {
                  return http::SendError(res, Status::InvalidArgument(
                                                  "name: required string", "invalid_argument"));
                }
                BRANCHDB_TRY_SEND(res, window, OptInt(*body, "restore_window_seconds", kRestoreWindowRange));
                catalog::CreateProjectOptions o;
                if (window->has_value()) o.restore_window_micros = **window * 1000000;
                BRANCHDB_TRY_SEND(
                    res, p, s->catalog->CreateProject((*body)["name"].get<std::string>(), o));
                http::SendJson(res, 201, routes::ProjectJson(*p));
              });
  router.Get("/v1/projects", "/v1/projects",
             [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
               auto who = http::RequireAuth(*s, req, res, auth::Operation::kListProjects);
               if (!who) return;
               json list = json::array();
               for (const auto& p : s->catalog->ListProjects()) {
                 if (s->auth->Allows(*who, auth::Operation::kListProjects, p.name, "")) {
                   list.push_back(routes::ProjectJson(p));
                 }
               }
               http::SendJson(res, 200, {{"projects", list}});
             });
  router.Get(R"(/v1/projects/([^/]+))", "/v1/projects/{project}",
             [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
               std::string project = http::PathParam(req, 1);
               if (!http::RequireAuth(*s, req, res, auth::Operation::kGetProject, project)) return;
               BRANCHDB_TRY_SEND(res, p, s->catalog->GetProject(project));
               http::SendJson(res, 200, routes::ProjectJson(*p));
             });
  router.Patch(R"(/v1/projects/([^/]+))", "/v1/projects/{project}",
               [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
                 std::string project = http::PathParam(req, 1);
                 if (!http::RequireAuth(*s, req, res, auth::Operation::kUpdateProject, project)) {
                   return;
                 }
                 BRANCHDB_TRY_SEND(res, body, http::ParseJsonObject(req.body));
                 BRANCHDB_TRY_SEND(res, window, OptInt(*body, "restore_window_seconds", kRestoreWindowRange));
                 if (window->has_value()) {
                   Status st = s->catalog->SetRestoreWindow(project, **window * 1000000);
                   if (!st.ok()) return http::SendError(res, st);
                 }
                 BRANCHDB_TRY_SEND(res, p, s->catalog->GetProject(project));
                 http::SendJson(res, 200, routes::ProjectJson(*p));
               });
  router.Delete(R"(/v1/projects/([^/]+))", "/v1/projects/{project}",
                [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
                  std::string project = http::PathParam(req, 1);
                  if (!http::RequireAuth(*s, req, res, auth::Operation::kDeleteProject, project)) {
                    return;
                  }
                  // SQL requests already running on the project's branches
                  // finish first; their connections close as they end.
                  const std::string prefix = routes::ComputeKey(project, "");
                  s->computes->RemoveByPrefix(prefix, /*wait_for_leases=*/true);
                  bool force = req.get_param_value("force") == "true";
                  Status st = s->catalog->DeleteProject(project, force);
                  // Computes started meanwhile hold the deleted project's
                  // store, which refuses every call: drop them too, so that
                  // its files go now. (Correctness does not depend on this:
                  // a connection keeps the store it was opened on.)
                  s->computes->RemoveByPrefix(prefix, /*wait_for_leases=*/false);
                  if (!st.ok()) return http::SendError(res, st);
                  res.status = 204;
                });
}

}  // namespace branchdb::server
