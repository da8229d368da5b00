// Branches (names may contain '/', sent percent-encoded as %2F; httplib
// decodes the path before matching, so the branch pattern takes the rest of
// the path and sub-resource routes are registered before the bare one):
//   POST   /v1/projects/{p}/branches   {"name","parent","at":{"lsn"|"timestamp"|"checkpoint"|"label"},
//                                       "ttl_seconds","expires_at","protected"} -> 201 branch
//   GET    /v1/projects/{p}/branches   -> {"branches":[...]}
//   GET    /v1/projects/{p}/branches/{b}
//   PATCH  /v1/projects/{p}/branches/{b}  {"name","protected","ttl_seconds","expires_at",
//                                          "idle_timeout_seconds": N | null (server default)}
//   DELETE /v1/projects/{p}/branches/{b}  -> 204
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
using routes::OptBool;
using routes::OptInt;
using routes::OptString;

namespace {

Result<catalog::CreateBranchOptions> ParseCreateBranch(const json& body, Clock* clock) {
  catalog::CreateBranchOptions o;
  auto parent = OptString(body, "parent");
  if (!parent.ok()) return parent.status();
  if (parent->has_value()) o.from.parent = **parent;
  if (body.contains("at") && !body["at"].is_null()) {
    const json& at = body["at"];
    if (!at.is_object() || at.size() != 1) {
      return Status::InvalidArgument(
          "at: expected exactly one of {\"lsn\":N}, {\"timestamp\":T}, {\"checkpoint\":N}, "
          "{\"label\":\"...\"}",
          "invalid_argument");
    }
    if (at.contains("lsn")) {
      auto v = OptInt(at, "lsn", routes::kLsnRange, "at.lsn");
      if (!v.ok()) return v.status();
      if (!v->has_value()) {
        return Status::InvalidArgument("at.lsn: expected a non-negative integer", "invalid_argument");
      }
      o.from.kind = catalog::BranchSource::Kind::kParentLsn;
      o.from.lsn = static_cast<uint64_t>(**v);
    } else if (at.contains("checkpoint")) {
      auto v = OptInt(at, "checkpoint", routes::kLsnRange, "at.checkpoint");
      if (!v.ok()) return v.status();
      if (!v->has_value()) {
        return Status::InvalidArgument("at.checkpoint: expected a checkpoint LSN", "invalid_argument");
      }
      o.from.kind = catalog::BranchSource::Kind::kCheckpoint;
      o.from.lsn = static_cast<uint64_t>(**v);
    } else if (at.contains("timestamp")) {
      auto t = routes::ParseTime(at["timestamp"], "at.timestamp");
      if (!t.ok()) return t.status();
      o.from.kind = catalog::BranchSource::Kind::kParentTime;
      o.from.time_micros = *t;
    } else if (at.contains("label")) {
      if (!at["label"].is_string()) {
        return Status::InvalidArgument("at.label: expected a string", "invalid_argument");
      }
      o.from.kind = catalog::BranchSource::Kind::kLabel;
      o.from.label = at["label"].get<std::string>();
    } else {
      return Status::InvalidArgument("at: unknown key " + at.begin().key(), "invalid_argument");
    }
  }
  auto ttl = OptInt(body, "ttl_seconds", routes::kTtlRange);
  if (!ttl.ok()) return ttl.status();
  if (ttl->has_value()) o.ttl_micros = **ttl * 1000000;
  if (body.contains("expires_at") && !body["expires_at"].is_null()) {
    auto t = routes::ParseTime(body["expires_at"], "expires_at");
    if (!t.ok()) return t.status();
    o.expires_micros = *t;
  }
  auto prot = OptBool(body, "protected");
  if (!prot.ok()) return prot.status();
  o.is_protected = prot->value_or(false);
  (void)clock;
  return o;
}

}  // namespace

void RegisterBranchRoutes(http::Router& router, Services& services) {
  Services* s = &services;
  router.Post(R"(/v1/projects/([^/]+)/branches)", "/v1/projects/{project}/branches",
              [s](const httplib::Request& req, httplib::Response& res, http::RequestContext& ctx) {
                std::string project = http::PathParam(req, 1);
                auto who = http::RequireAuth(*s, req, res, auth::Operation::kCreateBranch, project);
                if (!who) return;
                BRANCHDB_TRY_SEND(res, body, http::ParseJsonObject(req.body));
                if (!(*body)["name"].is_string()) {
                  return http::SendError(res, Status::InvalidArgument("name: required string",
                                                                      "invalid_argument"));
                }
                BRANCHDB_TRY_SEND(res, options, ParseCreateBranch(*body, s->clock));
                options->actor = {who->client_id, ctx.request_id};
                BRANCHDB_TRY_SEND(res, b,
                                  s->catalog->CreateBranch(
                                      project, (*body)["name"].get<std::string>(), *options));
                http::SendJson(res, 201, routes::BranchJson(*b, s->config->idle_timeout_seconds));
              });
  router.Get(R"(/v1/projects/([^/]+)/branches)", "/v1/projects/{project}/branches",
             [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
               std::string project = http::PathParam(req, 1);
               if (!http::RequireAuth(*s, req, res, auth::Operation::kListBranches, project)) return;
               BRANCHDB_TRY_SEND(res, list, s->catalog->ListBranches(project, true));
               json out = json::array();
               for (const auto& b : *list) {
                 out.push_back(routes::BranchJson(b, s->config->idle_timeout_seconds));
               }
               http::SendJson(res, 200, {{"branches", out}});
             });
}

// The bare branch routes: registered after every .../branches/{b}/<sub> route.
void RegisterBranchItemRoutes(http::Router& router, Services& services) {
  Services* s = &services;
  const std::string pattern = R"(/v1/projects/([^/]+)/branches/(.+))";
  const std::string label = "/v1/projects/{project}/branches/{branch}";
  router.Get(pattern, label,
             [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
               std::string project = http::PathParam(req, 1), branch = http::PathParam(req, 2);
               if (!http::RequireAuth(*s, req, res, auth::Operation::kGetBranch, project, branch)) {
                 return;
               }
               BRANCHDB_TRY_SEND(res, b, s->catalog->GetBranch(project, branch));
               http::SendJson(res, 200, routes::BranchJson(*b, s->config->idle_timeout_seconds));
             });
  router.Patch(pattern, label,
               [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
                 std::string project = http::PathParam(req, 1), branch = http::PathParam(req, 2);
                 if (!http::RequireAuth(*s, req, res, auth::Operation::kCreateBranch, project,
                                        branch)) {
                   return;
                 }
                 BRANCHDB_TRY_SEND(res, body, http::ParseJsonObject(req.body));
                 BRANCHDB_TRY_SEND(res, exists, s->catalog->GetBranch(project, branch, false));
                 // Checked before anything is changed.
                 bool set_idle = body->contains("idle_timeout_seconds");
                 // idle_timeout_seconds: 0 (never) to the maximum, or null (server default).
                 BRANCHDB_TRY_SEND(res, idle,
                                   OptInt(*body, "idle_timeout_seconds",
                                          {0, catalog::kMaxIdleTimeoutSeconds}));
                 BRANCHDB_TRY_SEND(res, ttl, OptInt(*body, "ttl_seconds", routes::kTtlRange));
                 bool set_expiry = body->contains("expires_at");
                 std::optional<int64_t> when;
                 if (set_expiry && !(*body)["expires_at"].is_null()) {
                   BRANCHDB_TRY_SEND(res, t, routes::ParseTime((*body)["expires_at"], "expires_at"));
                   when = *t;
                 }
                 BRANCHDB_TRY_SEND(res, prot, OptBool(*body, "protected"));
                 if (prot->has_value()) {
                   Status st = s->catalog->SetProtected(project, branch, **prot);
                   if (!st.ok()) return http::SendError(res, st);
                 }
                 if (ttl->has_value()) {
                   Status st = s->catalog->SetTtl(project, branch, **ttl * 1000000);
                   if (!st.ok()) return http::SendError(res, st);
                 }
                 if (set_expiry) {
                   Status st = s->catalog->SetExpiry(project, branch, when);
                   if (!st.ok()) return http::SendError(res, st);
                 }
                 if (set_idle) {
                   // null: back to the server default. Persisted in the catalog
                   // (read again at every cold start), and applied to the live
                   // compute now so that the sweeper uses it at once.
                   Status st = s->catalog->SetIdleTimeout(project, branch, *idle);
                   if (!st.ok()) return http::SendError(res, st);
                   std::string key = routes::ComputeKey(project, branch);
                   // Only a compute the supervisor knows (else it is created, with
                   // the catalog's value, at its first cold start).
                   if (s->computes->Info(key).ok()) {
                     s->computes->SetIdleTimeout(key,
                                                 idle->value_or(s->config->idle_timeout_seconds));
                   }
                 }
                 BRANCHDB_TRY_SEND(res, rename, OptString(*body, "name"));
                 std::string current = branch;
                 if (rename->has_value() && **rename != branch) {
                   s->computes->Remove(routes::ComputeKey(project, branch));
                   Status st = s->catalog->RenameBranch(project, branch, **rename);
                   if (!st.ok()) return http::SendError(res, st);
                   current = **rename;
                 }
                 BRANCHDB_TRY_SEND(res, b, s->catalog->GetBranch(project, current));
                 http::SendJson(res, 200, routes::BranchJson(*b, s->config->idle_timeout_seconds));
               });
  router.Delete(pattern, label,
                [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
                  std::string project = http::PathParam(req, 1), branch = http::PathParam(req, 2);
                  if (!http::RequireAuth(*s, req, res, auth::Operation::kDeleteBranch, project,
                                         branch)) {
                    return;
                  }
                  BRANCHDB_TRY_SEND(res, exists, s->catalog->GetBranch(project, branch, false));
                  s->computes->Remove(routes::ComputeKey(project, branch));
                  Status st = s->catalog->DeleteBranch(project, branch);
                  if (!st.ok()) return http::SendError(res, st);
                  res.status = 204;
                });
}

}  // namespace branchdb::server
