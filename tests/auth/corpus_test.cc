// Keeps the fuzz seeds meaningful: the "valid" seeds of tests/fuzz/corpus/jwt
// must verify with the fuzz target's fixed key (so the fuzzer starts past the
// signature check), and the malformed ones must fail for their stated reason.
#include <catch2/catch.hpp>

#include "auth/internal/jwt.h"
#include "base/env.h"

namespace branchdb::auth::internal {
namespace {

std::string Seed(const std::string& name) {
  auto text = Env::Default()->ReadFileToString(std::string(BRANCHDB_JWT_CORPUS_DIR) + "/" + name);
  REQUIRE(text.ok());
  return *text;
}

TEST_CASE("fuzz corpus seeds verify (or fail) as their names say") {
  auto key = Ed25519Key::FromRawPrivate(std::string(32, '\x42'));
  REQUIRE(key.ok());
  std::shared_ptr<const Ed25519Key> k(std::move(*key));
  JwtPolicy policy;
  policy.accepted_typs = {"at+jwt", "dbcred+jwt"};
  policy.issuer = "https://branchdb.test";
  policy.audience = "branchdb-api";
  policy.now = 1767225600;  // the fuzz target's fixed time
  auto lookup = [&](std::string_view kid) {
    return kid == k->Thumbprint() ? k : std::shared_ptr<const Ed25519Key>();
  };
  for (const char* valid : {"valid_access_token", "valid_db_credential", "aud_array"}) {
    auto v = VerifyJwt(Seed(valid), policy, lookup);
    INFO(valid << ": " << v.status().ToString());
    CHECK(v.ok());
  }
  auto fails_with = [&](const char* name, const char* why) {
    auto v = VerifyJwt(Seed(name), policy, lookup);
    REQUIRE_FALSE(v.ok());
    CHECK_THAT(v.status().message(), Catch::Contains(why));
  };
  fails_with("expired", "expired");
  fails_with("alg_none", "unsupported algorithm");
  fails_with("alg_hs256", "unsupported algorithm");
  fails_with("tampered_payload", "bad signature");
  fails_with("bad_base64", "malformed");
  fails_with("two_parts", "malformed");
}

}  // namespace
}  // namespace branchdb::auth::internal
