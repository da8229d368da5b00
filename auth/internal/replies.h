// Internal to auth/: builders of OAuth replies shared by the endpoint code.
#ifndef BRANCHDB_AUTH_INTERNAL_REPLIES_H_
#define BRANCHDB_AUTH_INTERNAL_REPLIES_H_

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "auth/auth.h"

namespace branchdb::auth::internal {

// RFC 6749 §5.2 error codes, in this order.
enum class OAuthError {
  kInvalidRequest,
  kInvalidClient,
  kInvalidGrant,
  kUnauthorizedClient,
  kUnsupportedGrantType,
  kInvalidScope,
};

// Drops characters not allowed in a quoted RFC 6750 parameter.
std::string QuotedSafe(std::string_view s);
// status + JSON body + Cache-Control: no-store, Pragma: no-cache.
HttpReply JsonReply(int status, const nlohmann::json& body);
// 400 {"error","error_description"}; invalid_client after HTTP Basic is 401 with
// WWW-Authenticate: Basic realm="...".
HttpReply OAuthErrorReply(OAuthError error, std::string_view description, bool basic_used,
                          std::string_view realm);
// 429 invalid_client with Retry-After.
HttpReply RateLimitedReply(int64_t retry_after_seconds);

}  // namespace branchdb::auth::internal

#endif  // BRANCHDB_AUTH_INTERNAL_REPLIES_H_
