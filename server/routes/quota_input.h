// Quotas in and out of the REST API (issue #18): the "quotas" object of
// PATCH /v1/projects/{p} and POST /v1/clients, and the project fields of
// GET /v1/projects/{p}. Internal to server/routes.
#ifndef BRANCHDB_SERVER_ROUTES_QUOTA_INPUT_H_
#define BRANCHDB_SERVER_ROUTES_QUOTA_INPUT_H_

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/quotas.h"
#include "base/status.h"
#include "catalog/ledger.h"

namespace branchdb::server::routes {

// The members of a "quotas" object that were given: each quota named (a
// typo is an error, never ignored) maps to its new value, nullopt to lift it.
// Each value a JSON integer within 0..2^53 (not 1.0, "5", -1, 2^53+1).
using QuotaPatch = std::map<std::string, std::optional<int64_t>>;

// body[field] parsed: nullopt when absent or null; InvalidArgument naming
// "quotas.<name>" and the range otherwise.
Result<std::optional<QuotaPatch>> ParseQuotaPatch(const nlohmann::json& body,
                                                   const std::string& field = "quotas");
// q with patch applied.
Quotas ApplyQuotaPatch(Quotas q, const QuotaPatch& patch);

// {"max_branches":..,...}: every quota, null when unset.
nlohmann::json QuotasJson(const Quotas& q);
// {"quotas":{..},"default_branch_ttl_seconds":n|null}: added to a project's JSON.
void AddSettingsJson(const catalog::ProjectSettings& settings, nlohmann::json* project);

}  // namespace branchdb::server::routes

#endif  // BRANCHDB_SERVER_ROUTES_QUOTA_INPUT_H_
