// Helpers shared by the /v1 resource routes: JSON shapes of projects,
// branches and checkpoints, time formats, query parameters, compute keys.
// Internal to server/routes.
#ifndef BRANCHDB_SERVER_ROUTES_COMMON_H_
#define BRANCHDB_SERVER_ROUTES_COMMON_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"
#include "catalog/catalog.h"

namespace httplib {
struct Request;
}

namespace branchdb::server::routes {

// The values an integer read from a request may take, both ends included.
// Every integer of a request body or query string is read through OptInt or
// QueryInt with its range: nothing past it reaches a multiplication, a sum
// with the clock or a cast (docs/api.md, "Integers").
struct IntRange {
  int64_t min;
  int64_t max;
};
inline constexpr IntRange kLsnRange{0, INT64_MAX};  // LSNs, checkpoint ids
// A branch's ttl_seconds: 1 s to 100 years (expires_at stays a 4-digit year).
inline constexpr int64_t kMaxTtlSeconds = 100ll * 365 * 24 * 3600;
inline constexpr IntRange kTtlRange{1, kMaxTtlSeconds};
// Unix seconds given for a time: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
inline constexpr IntRange kUnixSecondsRange{0, 253402300799};

// RFC 3339 UTC with microseconds trimmed to milliseconds: "2026-01-01T00:00:00.000Z".
std::string FormatTime(int64_t micros);
// An RFC 3339 timestamp string, or a number of Unix seconds (within
// kUnixSecondsRange), to micros. InvalidArgument naming `field` otherwise.
Result<int64_t> ParseTime(const nlohmann::json& value, const std::string& field);

// The compute key of a branch: "<project>/<branch>" (projects have no '/').
std::string ComputeKey(const std::string& project, const std::string& branch);

nlohmann::json ProjectJson(const catalog::ProjectInfo& p);
// The compute idle timeout in effect for b: its own, else default_seconds.
int64_t EffectiveIdleTimeout(const catalog::BranchInfo& b, int64_t default_seconds);
// "idle_timeout_seconds" is the effective value (default_idle_timeout_seconds
// when the branch has none of its own).
nlohmann::json BranchJson(const catalog::BranchInfo& b, int64_t default_idle_timeout_seconds);
nlohmann::json CheckpointJson(const catalog::CheckpointInfo& c);

// An integer query parameter within range (decimal digits only); nullopt when
// absent. InvalidArgument naming it and the range otherwise.
Result<std::optional<int64_t>> QueryInt(const httplib::Request& req, const std::string& name,
                                        IntRange range);

// Optional typed members of a JSON object, with field-named errors; nullopt
// when absent or null. OptInt takes a JSON integer within range only (not
// 1.0, 1e3, "5"); `label` names the field in errors (default: field).
Result<std::optional<int64_t>> OptInt(const nlohmann::json& body, const std::string& field,
                                      IntRange range, const std::string& label = "");
Result<std::optional<bool>> OptBool(const nlohmann::json& body, const std::string& field);
Result<std::optional<std::string>> OptString(const nlohmann::json& body, const std::string& field);

}  // namespace branchdb::server::routes

#endif  // BRANCHDB_SERVER_ROUTES_COMMON_H_

// In a route handler: evaluates expr (a Result), sends its error and returns
// when it failed; else binds the Result to var.
#define BRANCHDB_TRY_SEND(res, var, expr)                               \
  auto var = (expr);                                                    \
  if (!var.ok()) return ::branchdb::server::http::SendError(res, var.status())
