// The verified-token cache (auth/internal/token_cache.h): a token's signature
// is checked on its first use only, and nothing the cache holds outlives what
// it stood for: a cached token is refused on its very next use after it is
// revoked, expires, its key retires, or its client is disabled or deleted.
// Stats().signature_checks shows whether a use was answered from the cache, so
// these tests fail if the cache is bypassed as well as if it is trusted.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "auth/internal/token_cache.h"
#include "tests/auth/auth_fixture.h"

namespace branchdb::auth::testing {
namespace {

class CacheFixture : public AuthFixture {
 public:
  // Verifies `token` (REQUIREs success) and returns the principal.
  Principal Uses(const std::string& token) {
    BearerError e;
    auto p = svc().Authenticate("Bearer " + token, &e);
    INFO(e.description);
    REQUIRE(p.has_value());
    return *p;
  }
  std::string Refused(const std::string& token) { return VerifyFails(token).description; }
  uint64_t Checks() { return svc().Stats().signature_checks; }

  DbCredential Credential(const NewClient& c, int64_t lifetime = 600) {
    auto caller = Uses(GetToken(c));
    BearerError e;
    auto cred = svc().IssueDbCredential(caller, "p1", "main", kIds, DbAccess::kReadWrite,
                                        lifetime, &e);
    REQUIRE(cred.has_value());
    return *cred;
  }
};

TEST_CASE_METHOD(CacheFixture, "the second use of a token does not check its signature again") {
  auto c = MakeClient({Scope::kSqlWrite});
  std::string token = GetToken(c);
  uint64_t before = Checks();
  Uses(token);
  CHECK(Checks() == before + 1);
  Principal again = Uses(token);
  Uses(token);
  CHECK(Checks() == before + 1);
  CHECK(svc().Stats().cache_hits == 2);
  CHECK(again.client_id == c.info.client_id);
  CHECK(again.scopes == ScopeSet{Scope::kSqlWrite});
}

TEST_CASE("with token_cache_entries = 0 every use checks the signature") {
  branchdb::testing::TempDir dir;
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  AuthOptions o = TestOptions(dir.path());
  o.token_cache_entries = 0;
  auto s = AuthService::Open(&env, o);
  REQUIRE(s.ok());
  auto c = (*s)->CreateClient(ClientSpec{"t", {Scope::kSqlRead}, {}, {}, 0});
  REQUIRE(c.ok());
  OAuthRequest r;
  r.form = {{"grant_type", "client_credentials"},
            {"client_id", c->info.client_id},
            {"client_secret", c->client_secret}};
  std::string token = json::parse((*s)->TokenEndpoint(r).body)["access_token"];
  for (int i = 0; i < 3; ++i) CHECK((*s)->VerifyToken(token, nullptr).has_value());
  CHECK((*s)->Stats().signature_checks == 3);
  CHECK((*s)->Stats().cache_entries == 0);
}

TEST_CASE_METHOD(CacheFixture, "a cached token is refused on its very next use after revocation") {
  auto c = MakeClient({Scope::kSqlWrite});
  std::string token = GetToken(c);
  std::string other = GetToken(c);
  Uses(token);
  Uses(other);
  uint64_t checks = Checks();
  SECTION("by RevokeToken") { REQUIRE(svc().RevokeToken(token).ok()); }
  SECTION("by the revocation endpoint") {
    OAuthRequest r;
    r.form = {{"token", token},
              {"client_id", c.info.client_id},
              {"client_secret", c.client_secret}};
    REQUIRE(svc().RevocationEndpoint(r).status == 200);
  }
  CHECK(Refused(token) == "token revoked");
  Uses(other);  // its jti is another one
  CHECK(Checks() == checks);  // both answered from the cache, and right
}

TEST_CASE_METHOD(CacheFixture, "a cached database credential is refused after revocation") {
  auto c = MakeClient({Scope::kSqlWrite});
  DbCredential cred = Credential(c);
  Uses(cred.token);
  Uses(cred.token);
  REQUIRE(svc().RevokeToken(cred.token).ok());
  CHECK(Refused(cred.token) == "token revoked");
}

TEST_CASE_METHOD(CacheFixture, "a cached token is refused from its exp on, both kinds") {
  auto c = MakeClient({Scope::kSqlWrite});
  DbCredential cred = Credential(c, 60);
  std::string token = GetToken(c);  // 900 s
  Uses(cred.token);
  Uses(token);
  uint64_t checks = Checks();
  clock().AdvanceSeconds(59);
  Uses(cred.token);
  clock().AdvanceSeconds(1);
  CHECK(Refused(cred.token) == "token expired");
  clock().AdvanceSeconds(839);
  Uses(token);
  clock().AdvanceSeconds(1);
  CHECK(Refused(token) == "token expired");
  // Expired tokens stay refused without a signature check: they moved to the
  // cache of tokens that never verify.
  CHECK(Refused(token) == "token expired");
  CHECK(Checks() == checks);
  CHECK(svc().Stats().rejected_hits == 1);
}

TEST_CASE_METHOD(CacheFixture, "a cached principal is still authorized per request") {
  auto c = MakeClient({Scope::kSqlWrite});
  DbCredential cred = Credential(c);
  Uses(cred.token);
  Principal p = Uses(cred.token);  // from the cache
  CHECK(svc().Allows(p, Operation::kSqlWrite, "p1", "main"));
  CHECK_FALSE(svc().Allows(p, Operation::kSqlWrite, "p1", "other"));
  CHECK_FALSE(svc().Allows(p, Operation::kExportBranch, "p1", "main"));
  CHECK_FALSE(CheckCredentialBinding(p, kIds).has_value());
  CHECK(CheckCredentialBinding(p, BranchIdentity{kIds.project_id, "8"}).has_value());
}

TEST_CASE_METHOD(CacheFixture, "a cached token stops working with its client") {
  auto c = MakeClient({Scope::kSqlWrite});
  std::string token = GetToken(c);
  DbCredential cred = Credential(c);
  Uses(token);
  Uses(cred.token);
  SECTION("disabled, then enabled again") {
    REQUIRE(svc().SetClientEnabled(c.info.client_id, false).ok());
    CHECK(Refused(token) == "client unknown or disabled");
    CHECK(Refused(cred.token) == "client unknown or disabled");
    uint64_t checks = Checks();
    REQUIRE(svc().SetClientEnabled(c.info.client_id, true).ok());
    Uses(token);  // a refusal for the client's state is not cached as the token's
    Uses(cred.token);
    CHECK(Checks() == checks);
  }
  SECTION("deleted") {
    REQUIRE(svc().DeleteClient(c.info.client_id).ok());
    CHECK(Refused(token) == "client unknown or disabled");
    CHECK(Refused(cred.token) == "client unknown or disabled");
  }
}

TEST_CASE_METHOD(CacheFixture, "after rotation a cached token of the old key lasts as long as the key") {
  auto c = MakeClient({Scope::kSqlRead});
  std::string before = GetToken(c);
  auto old_key = SigningKey();
  json header = Header();
  REQUIRE(svc().RotateSigningKey().ok());
  CHECK(svc().CurrentKeyId() != header["kid"]);
  Uses(before);  // still within its key's life
  Uses(GetToken(c));
  // A token forged with the retired key after the rotation (a leaked key), 60 s
  // later: it verifies while the key does, and is cached...
  clock().AdvanceSeconds(60);
  json claims = Claims(c, "sql:read");
  claims["exp"] = Now() + 3600;
  auto forged = internal::SignJwt(header, claims, *old_key);
  REQUIRE(forged.ok());
  Uses(*forged);
  Uses(*forged);
  uint64_t checks = Checks();
  // ...and is refused from the end of the key's life (rotation + 3600 s + 30 s
  // of leeway), although its own exp is later.
  clock().AdvanceSeconds(3600 + 30 - 60 - 1);
  Uses(*forged);
  clock().AdvanceSeconds(1);
  CHECK(Refused(*forged) == "unknown signing key");
  CHECK(Checks() == checks);
}

TEST_CASE_METHOD(CacheFixture, "a bad signature is remembered, a token not yet valid is not") {
  auto c = MakeClient({Scope::kSqlRead});
  std::string token = GetToken(c);
  std::string forged = token;
  char& c10 = forged[forged.size() - 10];  // inside the signature: 6 bits of it
  c10 = c10 == 'A' ? 'B' : 'A';
  uint64_t checks = Checks();
  CHECK(Refused(forged) == "bad signature");
  CHECK(Refused(forged) == "bad signature");
  CHECK(Checks() == checks + 1);
  CHECK(svc().Stats().rejected_hits == 1);
  Uses(token);  // the good one is a different entry

  json claims = Claims(c, "sql:read");
  claims["nbf"] = Now() + 100;
  std::string later = Sign(Header(), claims);
  CHECK(Refused(later) == "token not yet valid");
  clock().AdvanceSeconds(100);
  Uses(later);
}

TEST_CASE("the token cache is bounded and evicts the least recently used") {
  internal::TokenCache cache(8);
  auto key = [](int i) { return internal::TokenCache::KeyOf("token-" + std::to_string(i)); };
  auto verdict = std::make_shared<internal::TokenVerdict>();
  for (int i = 0; i < 8; ++i) cache.Insert(key(i), verdict);
  REQUIRE(cache.Lookup(key(0)) != nullptr);  // now the most recent
  for (int i = 8; i < 20; ++i) cache.Insert(key(i), verdict);
  CHECK(cache.counts().entries == 8);
  CHECK(cache.Lookup(key(1)) == nullptr);
  CHECK(cache.Lookup(key(19)) != nullptr);
  internal::TokenCache large(4096);
  for (int i = 0; i < 10000; ++i) large.Insert(key(i), verdict);
  CHECK(large.counts().entries <= 4096);
  CHECK(large.counts().entries > 4000);  // the shards share the load
}

TEST_CASE_METHOD(CacheFixture, "concurrent uses and a revocation: every use after it is refused") {
  auto c = MakeClient({Scope::kSqlRead});
  std::vector<std::string> tokens;
  for (int i = 0; i < 8; ++i) tokens.push_back(GetToken(c));
  std::atomic<bool> revoked{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string& token = tokens[(t + i) % tokens.size()];
        bool was_revoked = revoked.load();
        bool ok = svc().VerifyToken(token, nullptr).has_value();
        if (token == tokens[0] ? (ok && was_revoked) : !ok) wrong.fetch_add(1);
      }
    });
  }
  REQUIRE(svc().RevokeToken(tokens[0]).ok());
  revoked.store(true);
  for (auto& th : threads) th.join();
  CHECK(wrong.load() == 0);
  CHECK(Checks() <= 8 * 4 + 8);  // first uses only (racing threads may each check once)
}

}  // namespace
}  // namespace branchdb::auth::testing
