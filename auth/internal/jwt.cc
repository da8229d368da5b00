#include "auth/internal/jwt.h"

#include <algorithm>
#include <cctype>

namespace branchdb::auth::internal {
namespace {

using nlohmann::json;

Status Invalid(std::string msg) { return Status::Unauthenticated(std::move(msg), "invalid_token"); }

// Parses a JSON object without exceptions; discarded (non-object) -> nullopt.
std::optional<json> ParseObject(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// NumericDates beyond this (year ~36800) are refused, so that time arithmetic
// on claims can never overflow.
constexpr int64_t kMaxNumericDate = int64_t{1} << 40;

// An integer NumericDate claim (RFC 7519 §2) within [0, kMaxNumericDate];
// floats, strings and out-of-range values are refused.
bool GetInt(const json& obj, const char* name, int64_t* out) {
  auto it = obj.find(name);
  if (it == obj.end()) return false;
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(kMaxNumericDate)) return false;
    *out = static_cast<int64_t>(v);
    return true;
  }
  if (!it->is_number_integer()) return false;
  int64_t v = it->get<int64_t>();
  if (v < 0 || v > kMaxNumericDate) return false;
  *out = v;
  return true;
}

bool GetNonEmptyString(const json& obj, const char* name, std::string* out) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return false;
  *out = it->get<std::string>();
  return !out->empty();
}

// RFC 9068 / RFC 8725: the claims of a token whose signature verified.
// Fills out's exp, iat, nbf, jti and client_id; *premature when the failure is
// an iat or nbf in the future.
Status CheckClaims(const json& claims, const JwtPolicy& policy, VerifiedJwt* out,
                   bool* premature) {
  std::string iss;
  if (!GetNonEmptyString(claims, "iss", &iss) || iss != policy.issuer) {
    return Invalid("wrong issuer");
  }
  auto aud = claims.find("aud");
  bool aud_ok = false;
  if (aud != claims.end()) {
    if (aud->is_string()) {
      aud_ok = aud->get<std::string>() == policy.audience;
    } else if (aud->is_array()) {
      for (const auto& a : *aud) aud_ok |= a.is_string() && a.get<std::string>() == policy.audience;
    }
  }
  if (!aud_ok) return Invalid("wrong audience");
  if (!GetInt(claims, "exp", &out->exp) || !GetInt(claims, "iat", &out->iat)) {
    return Invalid("missing or malformed exp or iat");
  }
  if (policy.now >= out->exp + policy.leeway) return Invalid("token expired");
  if (claims.contains("nbf") && !GetInt(claims, "nbf", &out->nbf)) {
    return Invalid("malformed nbf");
  }
  *premature = true;
  if (out->iat > policy.now + policy.leeway) return Invalid("token issued in the future");
  if (out->nbf > policy.now + policy.leeway) return Invalid("token not yet valid");
  *premature = false;
  if (out->exp <= out->iat || out->exp - out->iat > policy.max_lifetime) {
    return Invalid("token lifetime out of range");
  }
  std::string sub;
  if (!GetNonEmptyString(claims, "jti", &out->jti) ||
      !GetNonEmptyString(claims, "client_id", &out->client_id) ||
      !GetNonEmptyString(claims, "sub", &sub) || sub != out->client_id) {
    return Invalid("missing jti, sub or client_id");
  }
  return Status::OK();
}

}  // namespace

Result<std::string> SignJwt(const json& header, const json& claims, const Ed25519Key& key) {
  std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  auto sig = key.Sign(input);
  if (!sig.ok()) return sig.status();
  return input + "." + Base64UrlEncode(*sig);
}

Result<VerifiedJwt> VerifyJwt(std::string_view token, const JwtPolicy& policy,
                              const KeyLookup& lookup, bool* lasting_failure) {
  bool ignored = false;
  if (lasting_failure == nullptr) lasting_failure = &ignored;
  *lasting_failure = false;
  if (token.size() > policy.max_bytes) return Invalid("token too large");
  if (token.empty()) return Invalid("empty token");
  size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return Invalid("malformed token");
  size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Invalid("malformed token");
  }
  std::string_view header_b64 = token.substr(0, dot1);
  std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view sig_b64 = token.substr(dot2 + 1);

  auto header_raw = Base64UrlDecode(header_b64);
  if (!header_raw) return Invalid("malformed token header encoding");
  auto header = ParseObject(*header_raw);
  if (!header) return Invalid("malformed token header");

  // RFC 8725 §3.1: the algorithm is pinned, never taken from the token.
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string() || alg->get<std::string>() != "EdDSA") {
    return Invalid("unsupported algorithm");
  }
  // RFC 8725 §3.11 explicit typing.
  auto typ_it = header->find("typ");
  if (typ_it == header->end() || !typ_it->is_string()) return Invalid("missing typ");
  std::string typ = Lower(typ_it->get<std::string>());
  if (typ.rfind("application/", 0) == 0) typ = typ.substr(12);
  if (std::find(policy.accepted_typs.begin(), policy.accepted_typs.end(), typ) ==
      policy.accepted_typs.end()) {
    return Invalid("wrong token type");
  }
  if (header->contains("crit")) return Invalid("unsupported critical header");
  for (const char* forbidden : {"jku", "jwk", "x5u", "x5c"}) {
    if (header->contains(forbidden)) return Invalid("embedded key references not accepted");
  }
  std::string kid;
  if (!GetNonEmptyString(*header, "kid", &kid)) return Invalid("missing kid");
  std::shared_ptr<const Ed25519Key> key = lookup(kid);
  if (key == nullptr) return Invalid("unknown signing key");

  auto sig = Base64UrlDecode(sig_b64);
  if (!sig) return Invalid("malformed token signature encoding");
  // From here on, whatever fails fails for good (but see premature below).
  *lasting_failure = true;
  if (!key->Verify(token.substr(0, dot2), *sig)) return Invalid("bad signature");

  auto payload_raw = Base64UrlDecode(payload_b64);
  if (!payload_raw) return Invalid("malformed token payload encoding");
  auto claims = ParseObject(*payload_raw);
  if (!claims) return Invalid("malformed token payload");

  VerifiedJwt out;
  out.typ = typ;
  out.kid = kid;
  bool premature = false;
  Status st = CheckClaims(*claims, policy, &out, &premature);
  if (!st.ok()) {
    *lasting_failure = !premature;
    return st;
  }
  *lasting_failure = false;
  out.claims = std::move(*claims);
  return out;
}

}  // namespace branchdb::auth::internal
