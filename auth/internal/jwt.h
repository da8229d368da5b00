// Internal to auth/: JWS compact serialization with EdDSA only (RFC 7515, RFC
// 8037), and the policy checks of RFC 8725 / RFC 9068 for our two token types.
// Pure functions: the caller supplies the time and a kid -> key lookup.
//
// Thread-safety: pure; thread-safe as long as the lookup is.
#ifndef BRANCHDB_AUTH_INTERNAL_JWT_H_
#define BRANCHDB_AUTH_INTERNAL_JWT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/internal/crypto.h"
#include "base/status.h"

namespace branchdb::auth::internal {

inline constexpr std::string_view kAccessTokenTyp = "at+jwt";
inline constexpr std::string_view kDbCredentialTyp = "dbcred+jwt";

// Signs header.payload with key: both are JSON objects; returns the compact JWS.
// The caller sets header fields (alg "EdDSA", typ, kid).
Result<std::string> SignJwt(const nlohmann::json& header, const nlohmann::json& claims,
                            const Ed25519Key& key);

struct JwtPolicy {
  std::vector<std::string> accepted_typs;  // e.g. {"at+jwt", "dbcred+jwt"}
  std::string issuer;
  std::string audience;
  int64_t now = 0;                         // unix seconds
  int64_t leeway = 30;                     // seconds
  int64_t max_lifetime = 3600;             // exp - iat may not exceed this
  size_t max_bytes = 8192;
};

// Returns the key for kid, or nullptr when unknown.
using KeyLookup = std::function<std::shared_ptr<const Ed25519Key>(std::string_view kid)>;

struct VerifiedJwt {
  std::string typ;       // normalized: "at+jwt" or "dbcred+jwt"
  std::string kid;
  nlohmann::json claims;  // an object; iss, aud, exp, iat, jti, sub, client_id checked
  int64_t iat = 0, exp = 0;
  int64_t nbf = 0;  // 0 when absent
  std::string jti, client_id;
};

// Parses and verifies `token`. On any failure returns Unauthenticated with a
// short description fit for error_description (never echoes the token).
// Checks, in order: size, shape (3 base64url parts), header JSON, alg == EdDSA
// exactly, typ accepted, no "crit", kid known, signature, payload JSON, iss,
// aud, exp/iat/nbf with leeway, exp - iat <= max_lifetime, jti/sub/client_id.
// *lasting_failure (when given) is set on failure: true when this token string
// can never verify (bad signature; or the signature verified and the claims
// are wrong whatever the time, or it has expired), false when the failure is
// cheap to find again (before the signature) or may pass later (iat or nbf in
// the future).
Result<VerifiedJwt> VerifyJwt(std::string_view token, const JwtPolicy& policy,
                              const KeyLookup& lookup, bool* lasting_failure = nullptr);

}  // namespace branchdb::auth::internal

#endif  // BRANCHDB_AUTH_INTERNAL_JWT_H_
