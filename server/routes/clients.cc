// OAuth clients (admin scope; not for clients restricted to projects):
//   POST   /v1/clients        {"name","scopes":["a","b"],"projects":[..],
//                              "branches":["agent/*",..],"max_branch_ttl_seconds":N,
//                              "quotas":{..}}
//                             -> 201 {client_id, client_secret (only now), name, scopes, projects,
//                                     branches, max_branch_ttl_seconds, enabled,
//                                     created_at (RFC 3339)}
//   GET    /v1/clients        -> {"clients":[...]} (never secrets)
//   DELETE /v1/clients/{id}   -> 204
#include <httplib.h>

#include "auth/auth.h"
#include "server/http/errors.h"
#include "server/routes/call.h"
#include "server/routes/common.h"
#include "server/routes/quota_input.h"

namespace branchdb::server::routes {
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

// "projects": absent, or an array of project names.
Status ParseProjects(const json& body, auth::ClientSpec* spec) {
  if (!body.contains("projects")) return Status::OK();
  const json& projects = body["projects"];
  if (!projects.is_array()) {
    return Status::InvalidArgument("projects: expected an array of project names",
                                   "invalid_argument");
  }
  for (const auto& p : projects) {
    if (!p.is_string()) {
      return Status::InvalidArgument("projects: expected strings", "invalid_argument");
    }
    spec->projects.push_back(p.get<std::string>());
  }
  return Status::OK();
}

// "branches": absent/null (all branches) or a non-empty array of patterns
// (auth::CreateClient checks each and their number); "max_branch_ttl_seconds":
// absent/null (none) or 60 s to 1 year.
Status ParseBranchLimits(const json& body, auth::ClientSpec* spec) {
  if (body.contains("branches") && !body["branches"].is_null()) {
    const json& branches = body["branches"];
    Status bad = Status::InvalidArgument(
        "branches: expected a non-empty array of branch name patterns, e.g. [\"agent/*\"] "
        "(absent: all branches)",
        "invalid_branch_pattern");
    if (!branches.is_array() || branches.empty()) return bad;
    for (const auto& b : branches) {
      if (!b.is_string()) return bad;
      spec->branches.push_back(b.get<std::string>());
    }
  }
  auto ttl = OptInt(body, "max_branch_ttl_seconds",
                    {auth::kMinBranchTtlSeconds, auth::kMaxBranchTtlSeconds});
  if (!ttl.ok()) return ttl.status();
  spec->max_branch_ttl_seconds = ttl->value_or(0);
  return Status::OK();
}

// "quotas": absent, or the client's own limits (docs/api.md, "Quotas").
Status ParseClientQuotas(const json& body, auth::ClientSpec* spec) {
  auto patch = ParseQuotaPatch(body);
  if (!patch.ok()) return patch.status();
  if (patch->has_value()) spec->quotas = ApplyQuotaPatch({}, **patch);
  return Status::OK();
}

}  // namespace

void HandleCreateClient(Call& c) {
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body));
  auth::ClientSpec spec;
  spec.name = body->value("name", "");
  BRANCHDB_TRY_SEND(c.res, scopes, ParseScopes(body->contains("scopes") ? (*body)["scopes"] : json()));
  spec.scopes = *scopes;
  if (Status st = ParseProjects(*body, &spec); !st.ok()) return http::SendError(c.res, st);
  if (Status st = ParseBranchLimits(*body, &spec); !st.ok()) return http::SendError(c.res, st);
  if (Status st = ParseClientQuotas(*body, &spec); !st.ok()) return http::SendError(c.res, st);
  BRANCHDB_TRY_SEND(c.res, created, c.s.auth->CreateClient(spec));
  json out = ClientJson(created->info);
  out["client_secret"] = created->client_secret;
  http::SendJson(c.res, 201, out);
  c.res.set_header("Cache-Control", "no-store");
}

void HandleListClients(Call& c) {
  json list = json::array();
  for (const auto& client : c.s.auth->ListClients()) list.push_back(ClientJson(client));
  http::SendJson(c.res, 200, {{"clients", list}});
}

void HandleDeleteClient(Call& c) {
  BRANCHDB_TRY_SEND(c.res, id, http::DecodePathSegment(c.ctx.Param("client_id")));
  Status st = c.s.auth->DeleteClient(*id);
  if (!st.ok()) return http::SendError(c.res, st);
  c.res.status = 204;
}

}  // namespace branchdb::server::routes
