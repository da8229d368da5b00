// Helpers shared by the /v1 resource routes: JSON shapes of projects,
// branches and checkpoints, time formats, query parameters, compute keys.
// Internal to server/routes.
#ifndef BRANCHDB_SERVER_ROUTES_COMMON_H_
#define BRANCHDB_SERVER_ROUTES_COMMON_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "checkpoints/catalog.h"
#include "storage/util/status.h"

namespace httplib {
struct Request;
}

namespace branchdb::server::routes {

// RFC 3339 UTC with microseconds trimmed to milliseconds: "2026-01-01T00:00:00.000Z".
std::string FormatTime(int64_t micros);
// An RFC 3339 timestamp string, or a number of Unix seconds, to micros.
// InvalidArgument naming `field` otherwise.
Result<int64_t> ParseTime(const nlohmann::json& value, const std::string& field);

// The compute key of a branch: "<project>/<branch>" (projects have no '/').
std::string ComputeKey(const std::string& project, const std::string& branch);

nlohmann::json ProjectJson(const checkpoints::ProjectInfo& p);
// The compute idle timeout in effect for b: its own, else default_seconds.
int64_t EffectiveIdleTimeout(const checkpoints::BranchInfo& b, int64_t default_seconds);
// "idle_timeout_seconds" is the effective value (default_idle_timeout_seconds
// when the branch has none of its own).
nlohmann::json BranchJson(const checkpoints::BranchInfo& b, int64_t default_idle_timeout_seconds);
nlohmann::json CheckpointJson(const checkpoints::CheckpointInfo& c);

// An unsigned integer query parameter; nullopt when absent.
Result<std::optional<uint64_t>> QueryUint(const httplib::Request& req, const std::string& name);

// Optional typed members of a JSON body, with field-named errors.
Result<std::optional<int64_t>> OptInt(const nlohmann::json& body, const std::string& field);
Result<std::optional<bool>> OptBool(const nlohmann::json& body, const std::string& field);
Result<std::optional<std::string>> OptString(const nlohmann::json& body, const std::string& field);

}  // namespace branchdb::server::routes

#endif  // BRANCHDB_SERVER_ROUTES_COMMON_H_

// In a route handler: evaluates expr (a Result), sends its error and returns
// when it failed; else binds the Result to var.
#define BRANCHDB_TRY_SEND(res, var, expr)                               \
  auto var = (expr);                                                    \
  if (!var.ok()) return ::branchdb::server::http::SendError(res, var.status())
