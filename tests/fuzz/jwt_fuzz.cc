// libFuzzer target for the JWT parser/verifier (auth/internal/jwt.h) and the
// decoders in front of it (base64url, HTTP Basic base64, form bodies, scopes).
//
// Input modes, chosen by the first byte:
//   'P' <json>  the rest is a claims payload, signed with the fixed key under a
//               valid header, so the claim checks behind the signature are reached;
//   'H' <json>  the rest is a header, signed with the fixed key over valid claims;
//   anything else: the whole input is a compact token.
// Properties checked (abort on violation): nothing crashes or leaks (sanitizers);
// a base64url decode that succeeds re-encodes to the same text (one encoding per
// byte string); a token that verifies has the pinned alg/typ and our iss/aud;
// a parsed scope list round-trips.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/auth.h"
#include "auth/internal/crypto.h"
#include "auth/internal/jwt.h"

namespace {

using branchdb::auth::ScopeSet;
using branchdb::auth::internal::Base64UrlDecode;
using branchdb::auth::internal::Base64UrlEncode;
using branchdb::auth::internal::Ed25519Key;
using nlohmann::json;

// 2026-01-01T00:00:00Z, the time the seed tokens were made for.
constexpr int64_t kNow = 1767225600;

struct Fixture {
  std::shared_ptr<const Ed25519Key> key;
  std::string kid;
  branchdb::auth::internal::JwtPolicy policy;
  Fixture() {
    auto k = Ed25519Key::FromRawPrivate(std::string(32, '\x42'));
    if (!k.ok()) abort();
    key = std::shared_ptr<const Ed25519Key>(std::move(*k));
    kid = key->Thumbprint();
    policy.accepted_typs = {"at+jwt", "dbcred+jwt"};
    policy.issuer = "https://branchdb.test";
    policy.audience = "branchdb-api";
    policy.now = kNow;
  }
};

const Fixture& F() {
  static const Fixture f;
  return f;
}

void Check(bool cond) {
  if (!cond) abort();
}

void VerifyOne(std::string_view token) {
  const Fixture& f = F();
  auto v = branchdb::auth::internal::VerifyJwt(token, f.policy, [&](std::string_view kid) {
    return kid == f.kid ? f.key : std::shared_ptr<const Ed25519Key>();
  });
  if (v.ok()) {
    Check(v->kid == f.kid);
    Check(v->typ == "at+jwt" || v->typ == "dbcred+jwt");
    Check(v->claims.is_object());
    Check(v->claims["iss"] == f.policy.issuer);
    Check(v->exp > v->iat && v->exp - v->iat <= f.policy.max_lifetime);
  } else {
    Check(v.status().code() == branchdb::StatusCode::kUnauthenticated);
  }
}

std::string SignRaw(const std::string& header, const std::string& payload) {
  std::string input = Base64UrlEncode(header) + "." + Base64UrlEncode(payload);
  auto sig = F().key->Sign(input);
  if (!sig.ok()) abort();
  return input + "." + Base64UrlEncode(*sig);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const Fixture& f = F();

  if (auto d = Base64UrlDecode(in)) Check(Base64UrlEncode(*d) == in);
  (void)branchdb::auth::internal::Base64StdDecode(in);
  (void)branchdb::auth::ParseFormBody(in);
  if (auto s = ScopeSet::Parse(in); s.ok()) {
    auto again = ScopeSet::Parse(s->ToString());
    Check(again.ok() && *again == *s);
  }

  if (!in.empty() && in[0] == 'P') {
    json header = {{"alg", "EdDSA"}, {"typ", "at+jwt"}, {"kid", f.kid}};
    VerifyOne(SignRaw(header.dump(), std::string(in.substr(1))));
  } else if (!in.empty() && in[0] == 'H') {
    json claims = {{"iss", "https://branchdb.test"}, {"aud", "branchdb-api"},
                   {"sub", "c"}, {"client_id", "c"}, {"iat", kNow}, {"exp", kNow + 900},
                   {"jti", "j"}, {"scope", "sql:read"}};
    VerifyOne(SignRaw(std::string(in.substr(1)), claims.dump()));
  } else {
    VerifyOne(in);
  }
  return 0;
}
