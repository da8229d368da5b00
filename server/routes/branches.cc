// Branches (names may contain '/', sent percent-encoded as %2F; httplib
// decodes the path before matching, so the branch pattern takes the rest of
// the path and sub-resource routes are registered before the bare one):
//   POST   /v1/projects/{p}/branches   {"name","parent","at":{"lsn"|"timestamp"|"checkpoint"|"label"},
//                                       "ttl_seconds","expires_at","protected",
//                                       "writes":"any"|"promote_only"} -> 201 branch
//   GET    /v1/projects/{p}/branches   -> {"branches":[...]} (those the caller's branch
//                                          patterns match)
//   GET    /v1/projects/{p}/branches/{b}
//   PATCH  /v1/projects/{p}/branches/{b}  {"name","protected","writes","ttl_seconds",
//                                          "expires_at",
//                                          "idle_timeout_seconds": N | null (server default)}
//   DELETE /v1/projects/{p}/branches/{b}  -> 204
// A client limited to branch patterns names only branches they match (also
// as a new name), and with a maximum branch TTL makes only branches that
// expire within it (docs/auth.md, "Branch-scoped clients"); lifting a
// branch's guard (protected, writes policy) or renaming a guarded branch
// needs branches:protect ("Protection").
#include <httplib.h>

#include "auth/auth.h"
#include "server/compute/supervisor.h"
#include "server/http/auth_guard.h"
#include "server/guard/guard.h"
#include "server/http/errors.h"
#include "server/routes/call.h"
#include "server/routes/common.h"

namespace branchdb::server::routes {

using nlohmann::json;

namespace {

// "writes": absent/null, "any" (false) or "promote_only" (true).
Result<std::optional<bool>> ParseWritesPolicy(const json& body) {
  auto writes = OptString(body, "writes");
  if (!writes.ok()) return writes.status();
  if (!writes->has_value()) return std::optional<bool>();
  if (**writes != "any" && **writes != "promote_only") {
    return Status::InvalidArgument("writes: expected \"any\" or \"promote_only\"",
                                   "invalid_argument");
  }
  return std::optional<bool>(**writes == "promote_only");
}

// A client's maximum branch TTL: the expire time a branch it creates or
// re-times may have at the latest (nullopt: no maximum).
std::optional<int64_t> LatestExpiry(const Call& c) {
  if (c.who->max_branch_ttl_seconds <= 0) return std::nullopt;
  return c.s.clock->NowMicros() + c.who->max_branch_ttl_seconds * 1000000;
}

// 403 branch_ttl_not_allowed: an expiry past the client's maximum, or none.
Status TtlNotAllowed(const Call& c, const std::string& what) {
  return Status::PermissionDenied(
      what + ": this client's branches must expire within max_branch_ttl_seconds = " +
          std::to_string(c.who->max_branch_ttl_seconds) + " s",
      "branch_ttl_not_allowed");
}

Result<catalog::CreateBranchOptions> ParseCreateBranch(const json& body) {
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
      auto v = OptInt(at, "lsn", kLsnRange, "at.lsn");
      if (!v.ok()) return v.status();
      if (!v->has_value()) {
        return Status::InvalidArgument("at.lsn: expected a non-negative integer", "invalid_argument");
      }
      o.from.kind = catalog::BranchSource::Kind::kParentLsn;
      o.from.lsn = static_cast<uint64_t>(**v);
    } else if (at.contains("checkpoint")) {
      auto v = OptInt(at, "checkpoint", kLsnRange, "at.checkpoint");
      if (!v.ok()) return v.status();
      if (!v->has_value()) {
        return Status::InvalidArgument("at.checkpoint: expected a checkpoint LSN", "invalid_argument");
      }
      o.from.kind = catalog::BranchSource::Kind::kCheckpoint;
      o.from.lsn = static_cast<uint64_t>(**v);
    } else if (at.contains("timestamp")) {
      auto t = ParseTime(at["timestamp"], "at.timestamp");
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
  auto ttl = OptInt(body, "ttl_seconds", kTtlRange);
  if (!ttl.ok()) return ttl.status();
  if (ttl->has_value()) o.ttl_micros = **ttl * 1000000;
  if (body.contains("expires_at") && !body["expires_at"].is_null()) {
    auto t = ParseTime(body["expires_at"], "expires_at");
    if (!t.ok()) return t.status();
    o.expires_micros = *t;
  }
  auto prot = OptBool(body, "protected");
  if (!prot.ok()) return prot.status();
  o.is_protected = prot->value_or(false);
  auto writes = ParseWritesPolicy(body);
  if (!writes.ok()) return writes.status();
  o.writes_promote_only = writes->value_or(false);
  return o;
}

// A PATCH of a branch, checked whole before anything is changed.
struct BranchPatch {
  std::optional<bool> is_protected;
  std::optional<bool> writes_promote_only;
  std::optional<int64_t> ttl_seconds;
  bool set_expiry = false;
  std::optional<int64_t> expires_micros;  // nullopt with set_expiry: no expiry
  bool set_idle = false;
  std::optional<int64_t> idle_seconds;  // nullopt with set_idle: the server default
  std::optional<std::string> name;
};

Result<BranchPatch> ParseBranchPatch(const json& body) {
  BranchPatch p;
  p.set_idle = body.contains("idle_timeout_seconds");
  // idle_timeout_seconds: 0 (never) to the maximum, or null (server default).
  auto idle = OptInt(body, "idle_timeout_seconds", {0, catalog::kMaxIdleTimeoutSeconds});
  if (!idle.ok()) return idle.status();
  p.idle_seconds = *idle;
  auto ttl = OptInt(body, "ttl_seconds", kTtlRange);
  if (!ttl.ok()) return ttl.status();
  p.ttl_seconds = *ttl;
  p.set_expiry = body.contains("expires_at");
  if (p.set_expiry && !body["expires_at"].is_null()) {
    auto t = ParseTime(body["expires_at"], "expires_at");
    if (!t.ok()) return t.status();
    p.expires_micros = *t;
  }
  auto prot = OptBool(body, "protected");
  if (!prot.ok()) return prot.status();
  p.is_protected = *prot;
  auto writes = ParseWritesPolicy(body);
  if (!writes.ok()) return writes.status();
  p.writes_promote_only = *writes;
  auto name = OptString(body, "name");
  if (!name.ok()) return name.status();
  p.name = *name;
  return p;
}

// Whether the caller may make patch p to branch b (what the handler checks
// beyond the route's branches:write): lifting or changing a guard (protected,
// writes policy) of a guarded branch, or renaming one, needs branches:protect;
// a new name must fit the caller's branch patterns; a TTL or expiry must stay
// within the caller's maximum. Writes the refusal and returns false.
bool MayPatch(Call& c, const catalog::BranchInfo& b, const BranchPatch& p) {
  const bool renames = p.name && *p.name != b.name;
  if (p.is_protected || p.writes_promote_only || renames) {
    if (auto error = http::ProtectionRefusal(c.s, *c.who, auth::Operation::kProtectBranch,
                                             c.project, c.branch)) {
      http::SendBearerError(c.res, *error);
      return false;
    }
  }
  if (renames &&
      !http::RequireAuth(c.s, c.req, c.res, c.ctx, auth::Operation::kCreateBranch, c.project,
                         *p.name)) {
    return false;
  }
  if (auto latest = LatestExpiry(c)) {
    Status st;
    if (p.ttl_seconds && *p.ttl_seconds > c.who->max_branch_ttl_seconds) {
      st = TtlNotAllowed(c, "ttl_seconds " + std::to_string(*p.ttl_seconds));
    } else if (p.set_expiry && !p.expires_micros) {
      st = TtlNotAllowed(c, "expires_at null (never)");
    } else if (p.set_expiry && *p.expires_micros > *latest) {
      st = TtlNotAllowed(c, "expires_at");
    }
    if (!st.ok()) {
      http::SendError(c.res, st, {{"max_branch_ttl_seconds", c.who->max_branch_ttl_seconds}});
      return false;
    }
  }
  return true;
}

// Applies p to branch, in the order protection, TTL, expiry, idle timeout,
// name (the first failure stops it); the branch's name afterwards.
Result<std::string> ApplyBranchPatch(Services& s, const std::string& project,
                                     const std::string& branch, const BranchPatch& p) {
  catalog::Catalog& cat = *s.catalog;
  if (p.is_protected) BRANCHDB_RETURN_IF_ERROR(cat.SetProtected(project, branch, *p.is_protected));
  if (p.writes_promote_only) {
    BRANCHDB_RETURN_IF_ERROR(cat.SetWritesPolicy(project, branch, *p.writes_promote_only));
  }
  if (p.ttl_seconds) BRANCHDB_RETURN_IF_ERROR(cat.SetTtl(project, branch, *p.ttl_seconds * 1000000));
  if (p.set_expiry) BRANCHDB_RETURN_IF_ERROR(cat.SetExpiry(project, branch, p.expires_micros));
  if (p.set_idle) {
    // null: back to the server default. Persisted in the catalog (read again
    // at every cold start), and applied to the live compute now so that the
    // sweeper uses it at once.
    BRANCHDB_RETURN_IF_ERROR(cat.SetIdleTimeout(project, branch, p.idle_seconds));
    std::string key = ComputeKey(project, branch);
    // Only a compute the supervisor knows (else it is created, with the
    // catalog's value, at its first cold start).
    if (s.computes->Info(key).ok()) {
      s.computes->SetIdleTimeout(key, p.idle_seconds.value_or(s.config->idle_timeout_seconds));
    }
  }
  if (!p.name || *p.name == branch) return branch;
  s.computes->Remove(ComputeKey(project, branch));
  BRANCHDB_RETURN_IF_ERROR(cat.RenameBranch(project, branch, *p.name));
  return *p.name;
}

}  // namespace

void HandleCreateBranch(Call& c) {
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body));
  if (!(*body)["name"].is_string()) {
    return http::SendError(c.res,
                           Status::InvalidArgument("name: required string", "invalid_argument"));
  }
  BRANCHDB_TRY_SEND(c.res, options, ParseCreateBranch(*body));
  const std::string name = (*body)["name"].get<std::string>();
  // The route authorized the project; the new name must fit the patterns.
  if (!http::RequireAuth(c.s, c.req, c.res, c.ctx, auth::Operation::kCreateBranch, c.project,
                         name)) {
    return;
  }
  if (auto latest = LatestExpiry(c)) {
    Status st;
    if (options->ttl_micros && *options->ttl_micros > c.who->max_branch_ttl_seconds * 1000000) {
      st = TtlNotAllowed(c, "ttl_seconds " + std::to_string(*options->ttl_micros / 1000000));
    } else if (options->expires_micros && *options->expires_micros > *latest) {
      st = TtlNotAllowed(c, "expires_at");
    } else if (!options->ttl_micros && !options->expires_micros) {
      options->ttl_micros = c.who->max_branch_ttl_seconds * 1000000;  // the default: the maximum
    }
    if (!st.ok()) {
      return http::SendError(c.res, st,
                             {{"max_branch_ttl_seconds", c.who->max_branch_ttl_seconds}});
    }
  }
  options->actor = {c.who->client_id, c.ctx.request_id};
  std::optional<guard::Guard::ProjectLock> quota_lock;
  if (c.s.guard != nullptr) {
    // max_branches checked and the branch created under the project's lock:
    // concurrent creates cannot pass the quota together.
    quota_lock.emplace(c.s.guard->LockProject(c.project));
    guard::Refusal refused;
    Status st = c.s.guard->CheckBranchCreate(c.project, c.who->client_id, &refused);
    if (!st.ok()) return http::SendError(c.res, st, refused.Details());
    BRANCHDB_TRY_SEND(c.res, ttl, c.s.guard->DefaultTtlMicros(c.project, *c.who));
    if (!options->ttl_micros && !options->expires_micros) options->ttl_micros = *ttl;
  }
  BRANCHDB_TRY_SEND(c.res, b, c.s.catalog->CreateBranch(c.project, name, *options));
  if (c.s.guard != nullptr) c.s.guard->BranchCreated(c.project, name, c.who->client_id);
  http::SendJson(c.res, 201, BranchJson(*b, c.s.config->idle_timeout_seconds));
}

void HandleListBranches(Call& c) {
  BRANCHDB_TRY_SEND(c.res, list, c.s.catalog->ListBranches(c.project, true));
  json out = json::array();
  // A client limited to branch patterns sees only the branches they match.
  for (const auto& b : *list) {
    if (!auth::AnyBranchPatternMatches(c.who->branches, b.name)) continue;
    out.push_back(BranchJson(b, c.s.config->idle_timeout_seconds));
  }
  http::SendJson(c.res, 200, {{"branches", out}});
}

void HandleGetBranch(Call& c) {
  BRANCHDB_TRY_SEND(c.res, b, c.s.catalog->GetBranch(c.project, c.branch));
  http::SendJson(c.res, 200, BranchJson(*b, c.s.config->idle_timeout_seconds));
}

void HandleUpdateBranch(Call& c) {
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body));
  BRANCHDB_TRY_SEND(c.res, exists, c.s.catalog->GetBranch(c.project, c.branch, false));
  BRANCHDB_TRY_SEND(c.res, patch, ParseBranchPatch(*body));
  if (!MayPatch(c, *exists, *patch)) return;
  BRANCHDB_TRY_SEND(c.res, name, ApplyBranchPatch(c.s, c.project, c.branch, *patch));
  BRANCHDB_TRY_SEND(c.res, b, c.s.catalog->GetBranch(c.project, *name));
  http::SendJson(c.res, 200, BranchJson(*b, c.s.config->idle_timeout_seconds));
}

void HandleDeleteBranch(Call& c) {
  BRANCHDB_TRY_SEND(c.res, exists, c.s.catalog->GetBranch(c.project, c.branch, false));
  c.s.computes->Remove(ComputeKey(c.project, c.branch));
  Status st = c.s.catalog->DeleteBranch(c.project, c.branch);
  if (!st.ok()) return http::SendError(c.res, st);
  c.res.status = 204;
}

}  // namespace branchdb::server::routes
