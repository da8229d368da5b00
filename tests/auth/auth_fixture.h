// Shared fixture of the auth tests: a service on a temp dir with a MockClock,
// helpers to register clients, get tokens through the token endpoint, and forge
// tokens with the service's real signing key (read from its PEM file).
#ifndef BRANCHDB_TESTS_AUTH_AUTH_FIXTURE_H_
#define BRANCHDB_TESTS_AUTH_AUTH_FIXTURE_H_

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "auth/auth.h"
#include "auth/internal/crypto.h"
#include "auth/internal/jwt.h"
#include "base/mock_clock.h"
#include "tests/util/temp_dir.h"

namespace branchdb::auth::testing {

using nlohmann::json;

// The ids a test credential is bound to (the server passes the catalog's).
inline const BranchIdentity kIds{"p00000000000000a1", "7"};

inline AuthOptions TestOptions(const std::string& data_dir) {
  AuthOptions o;
  o.data_dir = data_dir;
  o.issuer = "https://branchdb.test";
  o.audience = "branchdb-api";
  o.pbkdf2_iterations = 1000;  // the real PBKDF2 path, cheaper under ASan
  o.rate_limit_failures = 5;
  o.rate_limit_window_seconds = 60;
  return o;
}

class AuthFixture {
 public:
  AuthFixture() : env_(Env::Default(), &clock_) { Reopen(); }

  void Reopen() {
    service_.reset();
    auto s = AuthService::Open(&env_, TestOptions(dir_.path()));
    REQUIRE(s.ok());
    service_ = std::move(*s);
  }

  AuthService& svc() { return *service_; }
  MockClock& clock() { return clock_; }
  Env* env() { return &env_; }
  const std::string& data_dir() const { return dir_.path(); }
  int64_t Now() const { return const_cast<MockClock&>(clock_).NowMicros() / 1000000; }

  NewClient MakeClient(ScopeSet scopes, std::vector<std::string> projects = {}) {
    auto c = service_->CreateClient(ClientSpec{"test", scopes, std::move(projects), {}, 0});
    REQUIRE(c.ok());
    return std::move(*c);
  }

  HttpReply TokenRequest(const NewClient& c, std::string scope = "") {
    OAuthRequest r;
    r.form = {{"grant_type", "client_credentials"},
              {"client_id", c.info.client_id},
              {"client_secret", c.client_secret}};
    if (!scope.empty()) r.form.emplace_back("scope", scope);
    r.source_address = "10.0.0.1";
    return service_->TokenEndpoint(r);
  }

  std::string GetToken(const NewClient& c, std::string scope = "") {
    HttpReply reply = TokenRequest(c, scope);
    REQUIRE(reply.status == 200);
    json body = json::parse(reply.body);
    return body["access_token"].get<std::string>();
  }

  // The service's current signing key, loaded from its PEM file.
  std::unique_ptr<internal::Ed25519Key> SigningKey() {
    std::string kid = service_->CurrentKeyId();
    auto pem = env_.ReadFileToString(dir_.path() + "/auth/keys/" + kid + ".pem");
    REQUIRE(pem.ok());
    auto key = internal::Ed25519Key::FromPrivatePem(*pem);
    REQUIRE(key.ok());
    return std::move(*key);
  }

  // A well-formed, validly signed access-token header and claims for client c.
  json Header() {
    return json{{"alg", "EdDSA"}, {"typ", "at+jwt"}, {"kid", service_->CurrentKeyId()}};
  }
  json Claims(const NewClient& c, const std::string& scope) {
    return json{{"iss", "https://branchdb.test"}, {"aud", "branchdb-api"},
                {"sub", c.info.client_id},        {"client_id", c.info.client_id},
                {"iat", Now()},                   {"exp", Now() + 900},
                {"jti", "forged-jti"},            {"scope", scope}};
  }
  std::string Sign(const json& header, const json& claims) {
    auto key = SigningKey();
    auto t = internal::SignJwt(header, claims, *key);
    REQUIRE(t.ok());
    return *t;
  }

  // Verifies and returns the error (kind + description); REQUIREs a failure.
  BearerError VerifyFails(const std::string& token) {
    BearerError e;
    auto p = service_->Authenticate("Bearer " + token, &e);
    REQUIRE_FALSE(p.has_value());
    return e;
  }

 private:
  branchdb::testing::TempDir dir_;
  MockClock clock_;
  EnvWithClock env_;
  std::unique_ptr<AuthService> service_;
};

}  // namespace branchdb::auth::testing

#endif  // BRANCHDB_TESTS_AUTH_AUTH_FIXTURE_H_
