// Projects:
//   POST   /v1/projects              {"name","restore_window_seconds"} -> 201 project
//                                     (a client with a project list: only names on it)
//   GET    /v1/projects              -> {"projects":[...]} (those the client may see)
//   GET    /v1/projects/{project}
//   PATCH  /v1/projects/{project}    {"restore_window_seconds","quotas":{..},
//                                     "default_branch_ttl_seconds","durability"}
//                                     (null lifts one; durability back to the default)
//   DELETE /v1/projects/{project}[?force=true]  -> 204
#include <httplib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "auth/auth.h"
#include "server/cluster/routing.h"
#include "server/compute/supervisor.h"
#include "server/guard/guard.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/object_storage/remote_durability.h"
#include "server/routes/call.h"
#include "server/routes/common.h"
#include "server/routes/quota_input.h"

namespace branchdb::server::routes {

using nlohmann::json;

namespace {
// restore_window_seconds: 0 to 35 days (the catalog's limit), checked in seconds.
constexpr IntRange kRestoreWindowRange{
    0, catalog::kMaxRestoreWindowMicros / catalog::kMicrosPerSecond};
}  // namespace

void HandleCreateProject(Call& c) {
  // Authorized on the name it asks for: a client restricted to projects
  // creates only projects of its list.
  json peek = json::parse(c.req.body, nullptr, false);
  std::string name = peek.is_object() && peek.contains("name") && peek["name"].is_string()
                         ? peek["name"].get<std::string>()
                         : "";
  if (!http::RequireAuth(c.s, c.req, c.res, c.ctx, auth::Operation::kCreateProject, name)) {
    return;
  }
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body));
  if (!(*body)["name"].is_string()) {
    return http::SendError(c.res,
                           Status::InvalidArgument("name: required string", "invalid_argument"));
  }
  BRANCHDB_TRY_SEND(c.res, window, OptInt(*body, "restore_window_seconds", kRestoreWindowRange));
  catalog::CreateProjectOptions o;
  if (window->has_value()) o.restore_window_micros = **window * 1000000;
  // In a cluster the name is taken cluster-wide first (this node its owner).
  if (Status st = cluster_routing::ClaimProject(c.s, name); !st.ok()) {
    return http::SendError(c.res, st);
  }
  auto p = c.s.catalog->CreateProject(name, o);
  if (!p.ok()) {
    cluster_routing::ReleaseProject(c.s, name);
    return http::SendError(c.res, p.status());
  }
  c.catalog_project = p->name;
  http::SendJson(c.res, 201, ProjectJson(*p));
}

// In a cluster, every node's projects (each lists those it owns; docs/cluster.md).
void HandleListProjects(Call& c) {
  json list = json::array();
  for (const auto& p : c.s.catalog->ListProjects()) {
    if (c.s.auth->Allows(*c.who, auth::Operation::kListProjects, p.name, "") &&
        cluster_routing::ListsHere(c.s, p.name)) {
      list.push_back(ProjectJson(p));
    }
  }
  std::vector<std::string> unreachable;
  cluster_routing::GatherProjects(c.s, c.req, &list, &unreachable);
  std::sort(list.begin(), list.end(), [](const json& a, const json& b) {
    return a.value("name", "") < b.value("name", "");
  });
  json out = {{"projects", std::move(list)}};
  if (!unreachable.empty()) out["unreachable_nodes"] = unreachable;
  http::SendJson(c.res, 200, out);
}

namespace {
// The project's JSON with its quotas, default branch TTL and durability.
void SendProject(Call& c, int status) {
  BRANCHDB_TRY_SEND(c.res, p, c.s.catalog->GetProject(c.project));
  json out = ProjectJson(*p);
  if (c.s.guard != nullptr) {
    BRANCHDB_TRY_SEND(c.res, settings, c.s.guard->Settings(c.project));
    AddSettingsJson(*settings, &out);
  }
  out["durability"] = ProjectDurability(c.s, c.project);
  http::SendJson(c.res, status, out);
}

// "durability": "local" | "remote" | null (the server's default again).
// Remote needs [object_storage]. Unset (nullopt) when absent.
Result<std::optional<std::optional<std::string>>> ParseDurability(Services& s, const json& body) {
  if (!body.contains("durability")) return std::optional<std::optional<std::string>>();
  const json& v = body["durability"];
  if (v.is_null()) return std::optional<std::optional<std::string>>(std::optional<std::string>());
  if (!v.is_string() || (v != "local" && v != "remote")) {
    return Status::InvalidArgument("durability: expected \"local\", \"remote\" or null",
                                   "invalid_argument");
  }
  if (v == "remote" && s.uploader == nullptr) {
    return Status::InvalidArgument(
        "durability: \"remote\" needs [object_storage] configured on the server "
        "(docs/object-storage.md)",
        "invalid_argument");
  }
  return std::optional<std::optional<std::string>>(v.get<std::string>());
}
}  // namespace

void HandleGetProject(Call& c) { SendProject(c, 200); }

void HandleUpdateProject(Call& c) {
  // Every field is checked before any is applied.
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body));
  BRANCHDB_TRY_SEND(c.res, window, OptInt(*body, "restore_window_seconds", kRestoreWindowRange));
  BRANCHDB_TRY_SEND(c.res, quotas, ParseQuotaPatch(*body));
  BRANCHDB_TRY_SEND(c.res, ttl, OptInt(*body, "default_branch_ttl_seconds", kTtlRange));
  const bool ttl_given = body->contains("default_branch_ttl_seconds");
  BRANCHDB_TRY_SEND(c.res, durability, ParseDurability(c.s, *body));
  if (window->has_value()) {
    Status st = c.s.catalog->SetRestoreWindow(c.project, **window * 1000000);
    if (!st.ok()) return http::SendError(c.res, st);
  }
  if (c.s.guard != nullptr && (quotas->has_value() || ttl_given || durability->has_value())) {
    auto lock = c.s.guard->LockProject(c.project);  // concurrent PATCHes: none lost
    BRANCHDB_TRY_SEND(c.res, settings, c.s.guard->Settings(c.project));
    if (quotas->has_value()) settings->quotas = ApplyQuotaPatch(settings->quotas, **quotas);
    if (ttl_given) settings->default_branch_ttl_seconds = *ttl;  // null lifts it
    if (durability->has_value()) settings->durability = **durability;
    Status st = c.s.guard->PutSettings(c.project, *settings);
    if (!st.ok()) return http::SendError(c.res, st);
  }
  SendProject(c, 200);
}

void HandleDeleteProject(Call& c) {
  bool force = c.req.get_param_value("force") == "true";
  // Past protected branches: the right that deletes a protected branch.
  if (force && !http::RequireAuth(c.s, c.req, c.res, c.ctx, auth::Operation::kProtectBranch,
                                  c.project)) {
    return;
  }
  BRANCHDB_TRY_SEND(c.res, p, c.s.catalog->GetProject(c.project));
  // Its durability goes with its settings: read before.
  c.deleted_remote = ProjectDurability(c.s, c.project) == "remote";
  Status st = c.s.catalog->DeleteProject(c.project, force);
  if (!st.ok()) return http::SendError(c.res, st);
  if (c.s.guard != nullptr) c.s.guard->ForgetProject(p->id);
  // The deleted project's store refuses every call from now on, and its
  // files go when its last reference drops. Idle computes close now; SQL
  // still running on one keeps its store until it ends (and fails if it
  // writes), without holding this request.
  c.s.computes->RemoveByPrefix(ComputeKey(c.project, ""));
  cluster_routing::ReleaseProject(c.s, c.project);
  c.deleted_id = p->id;
  c.res.status = 204;
}

}  // namespace branchdb::server::routes
