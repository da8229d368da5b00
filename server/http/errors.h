// The one place that turns a branchdb::Status into an HTTP response: the
// status code and the JSON error body
//   {"error":{"code":"<reason or default>","message":"...","details":{}}}
// plus JSON helpers every route uses (parse a request body, dump a response).
//
// Mapping (docs/api.md repeats it): NotFound 404, AlreadyExists 409,
// InvalidArgument 400, FailedPrecondition 409, Conflict 409, PermissionDenied
// 403, Unauthenticated 401, ResourceExhausted 429, Corruption 500, IOError 500,
// Unavailable 503. Some reasons refine it: statement_timeout 408,
// sql_too_long / payload_too_large / value_too_large / branch_size_limit 413,
// idempotency_key_reused 422, store_failed 503, store_damaged 503 (an
// Unavailable), disk_full 507.
//
// Thread-safety: pure functions.
#ifndef BRANCHDB_SERVER_HTTP_ERRORS_H_
#define BRANCHDB_SERVER_HTTP_ERRORS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace httplib {
struct Response;
}
namespace branchdb::catalog {
struct ProjectDamage;
}

namespace branchdb::server::http {

// The HTTP status for a non-OK status (200 for OK).
int HttpStatusFor(const Status& status);

// The error body's "code": status.reason() when set, else a default per code
// ("not_found", "invalid_argument", ...).
std::string ErrorCodeFor(const Status& status);

// {"error":{"code":..,"message":..,"details":details}}
nlohmann::json ErrorBody(const Status& status, nlohmann::json details = nlohmann::json::object());

// The "damaged_projects" list of /healthz: one object per project whose store
// was found damaged ({"project","serving","message","segments":[...]}).
nlohmann::json DamagedProjectsJson(const std::vector<catalog::ProjectDamage>& damaged);

// Serializes j; invalid UTF-8 in strings is replaced (U+FFFD) instead of throwing.
std::string DumpJson(const nlohmann::json& j);

// Parses a request body that must be a JSON object. An empty body is {} when
// allow_empty. InvalidArgument (reason "invalid_json") with the parser's
// position otherwise.
Result<nlohmann::json> ParseJsonObject(std::string_view body, bool allow_empty = false);

// Sets res to the error response of status (JSON body, HTTP status; for 401 a
// WWW-Authenticate header per RFC 6750).
void SendError(httplib::Response& res, const Status& status,
               nlohmann::json details = nlohmann::json::object());

// Sets res to a JSON body with the given HTTP status.
void SendJson(httplib::Response& res, int http_status, const nlohmann::json& body);

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_ERRORS_H_
