#include "server/routes/quota_input.h"

#include "server/routes/common.h"

namespace branchdb::server::routes {

using nlohmann::json;

Result<std::optional<QuotaPatch>> ParseQuotaPatch(const json& body, const std::string& field) {
  if (!body.contains(field) || body[field].is_null()) return std::optional<QuotaPatch>();
  const json& q = body[field];
  if (!q.is_object()) {
    return Status::InvalidArgument(
        field + ": expected an object, e.g. {\"max_branches\": 10, \"max_bytes\": null}",
        "invalid_argument");
  }
  QuotaPatch patch;
  for (const auto& [name, value] : q.items()) {
    bool known = false;
    for (const QuotaField& f : kQuotaFields) known |= name == f.name;
    if (!known) {
      return Status::InvalidArgument(field + "." + name +
                                         ": unknown quota (max_branches, max_active_computes, "
                                         "max_bytes, max_commits_per_minute)",
                                     "invalid_argument");
    }
    auto v = OptInt(q, name, {0, kMaxQuotaValue}, field + "." + name);
    if (!v.ok()) return v.status();
    patch[name] = *v;  // null: lift it
  }
  return std::optional<QuotaPatch>(std::move(patch));
}

Quotas ApplyQuotaPatch(Quotas q, const QuotaPatch& patch) {
  for (const QuotaField& f : kQuotaFields) {
    auto it = patch.find(f.name);
    if (it != patch.end()) q.*f.member = it->second;
  }
  return q;
}

json QuotasJson(const Quotas& q) {
  json out = json::object();
  for (const QuotaField& f : kQuotaFields) {
    out[f.name] = (q.*f.member) ? json(*(q.*f.member)) : json(nullptr);
  }
  return out;
}

void AddSettingsJson(const catalog::ProjectSettings& settings, json* project) {
  (*project)["quotas"] = QuotasJson(settings.quotas);
  (*project)["default_branch_ttl_seconds"] = settings.default_branch_ttl_seconds
                                                 ? json(*settings.default_branch_ttl_seconds)
                                                 : json(nullptr);
}

}  // namespace branchdb::server::routes
