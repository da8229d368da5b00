// The token endpoint (RFC 6749 §4.4) with Basic and form client
// authentication, every §5.2 error it produces, and the failure rate limit.
#include "tests/auth/auth_fixture.h"

namespace branchdb::auth::testing {
namespace {

// base64 (standard alphabet, padded) for building HTTP Basic headers.
std::string B64Std(const std::string& in) {
  static const char* kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63],
                       kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

std::string Basic(const std::string& id, const std::string& secret) {
  return "Basic " + B64Std(id + ":" + secret);
}

OAuthRequest BasicRequest(const NewClient& c, std::vector<std::pair<std::string, std::string>> form) {
  OAuthRequest r;
  r.form = std::move(form);
  r.authorization = Basic(c.info.client_id, c.client_secret);
  r.source_address = "192.0.2.7";
  return r;
}

void ExpectOAuthError(const HttpReply& r, int status, const std::string& error) {
  CHECK(r.status == status);
  json body = json::parse(r.body, nullptr, false);
  REQUIRE(body.is_object());
  CHECK(body["error"] == error);
  CHECK(body.contains("error_description"));
  CHECK(r.Header("Cache-Control") == "no-store");
  CHECK(r.Header("Pragma") == "no-cache");
}

TEST_CASE_METHOD(AuthFixture, "token endpoint happy paths: Basic and form authentication") {
  NewClient c = MakeClient({Scope::kBranchesWrite, Scope::kSqlRead});
  for (bool basic : {true, false}) {
    OAuthRequest r;
    r.form = {{"grant_type", "client_credentials"}};
    if (basic) {
      r.authorization = Basic(c.info.client_id, c.client_secret);
    } else {
      r.form.emplace_back("client_id", c.info.client_id);
      r.form.emplace_back("client_secret", c.client_secret);
    }
    r.content_type = "application/x-www-form-urlencoded; charset=UTF-8";
    HttpReply reply = svc().TokenEndpoint(r);
    REQUIRE(reply.status == 200);
    CHECK(reply.Header("Cache-Control") == "no-store");
    CHECK(reply.Header("Pragma") == "no-cache");
    json body = json::parse(reply.body);
    CHECK(body["token_type"] == "Bearer");
    CHECK(body["expires_in"] == 900);
    CHECK(body["scope"] == "branches:write sql:read");
    // RFC 9068 header and claims.
    std::string token = body["access_token"];
    size_t d1 = token.find('.'), d2 = token.find('.', d1 + 1);
    json header = json::parse(*internal::Base64UrlDecode(token.substr(0, d1)));
    json claims = json::parse(*internal::Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1)));
    CHECK(header == json{{"alg", "EdDSA"}, {"typ", "at+jwt"}, {"kid", svc().CurrentKeyId()}});
    CHECK(claims["iss"] == "https://branchdb.test");
    CHECK(claims["aud"] == "branchdb-api");
    CHECK(claims["sub"] == c.info.client_id);
    CHECK(claims["client_id"] == c.info.client_id);
    CHECK(claims["iat"] == Now());
    CHECK(claims["exp"] == Now() + 900);
    CHECK(claims["jti"].get<std::string>().size() >= 22);
    CHECK(claims["scope"] == "branches:write sql:read");
  }
}

TEST_CASE_METHOD(AuthFixture, "Basic credentials are form-urlencoded inside (RFC 6749 §2.3.1)") {
  NewClient c = MakeClient({Scope::kSqlRead});
  OAuthRequest r;
  r.form = {{"grant_type", "client_credentials"}};
  // Percent-encode every character of the id: still the same client.
  std::string enc;
  for (char ch : c.info.client_id) {
    char buf[4];
    snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(ch));
    enc += buf;
  }
  r.authorization = "Basic " + B64Std(enc + ":" + c.client_secret);
  CHECK(svc().TokenEndpoint(r).status == 200);
}

TEST_CASE_METHOD(AuthFixture, "scope narrowing works, widening does not") {
  NewClient c = MakeClient({Scope::kSqlWrite, Scope::kProjectsRead});
  auto narrow = [&](const std::string& scope) {
    HttpReply r = TokenRequest(c, scope);
    REQUIRE(r.status == 200);
    return json::parse(r.body)["scope"].get<std::string>();
  };
  CHECK(narrow("sql:read") == "sql:read");  // write implies read
  CHECK(narrow("projects:read sql:write") == "projects:read sql:write");
  ExpectOAuthError(TokenRequest(c, "projects:write"), 400, "invalid_scope");
  ExpectOAuthError(TokenRequest(c, "sql:read  sql:write"), 400, "invalid_scope");
  OAuthRequest r = BasicRequest(c, {{"grant_type", "client_credentials"}, {"scope", ""}});
  ExpectOAuthError(svc().TokenEndpoint(r), 400, "invalid_scope");
}

TEST_CASE_METHOD(AuthFixture, "RFC 6749 §5.2 errors of the token endpoint") {
  NewClient c = MakeClient({Scope::kSqlRead});
  const std::vector<std::pair<std::string, std::string>> grant = {
      {"grant_type", "client_credentials"}};

  SECTION("invalid_request: missing or repeated grant_type, both auth methods, wrong type") {
    ExpectOAuthError(svc().TokenEndpoint(BasicRequest(c, {})), 400, "invalid_request");
    ExpectOAuthError(svc().TokenEndpoint(BasicRequest(
                         c, {{"grant_type", "client_credentials"},
                             {"grant_type", "client_credentials"}})),
                     400, "invalid_request");
    OAuthRequest both = BasicRequest(c, {{"grant_type", "client_credentials"},
                                         {"client_id", c.info.client_id},
                                         {"client_secret", c.client_secret}});
    ExpectOAuthError(svc().TokenEndpoint(both), 400, "invalid_request");
    OAuthRequest json_body = BasicRequest(c, grant);
    json_body.content_type = "application/json";
    ExpectOAuthError(svc().TokenEndpoint(json_body), 400, "invalid_request");
    OAuthRequest bad_basic = BasicRequest(c, grant);
    bad_basic.authorization = "Basic !!!!";
    ExpectOAuthError(svc().TokenEndpoint(bad_basic), 400, "invalid_request");
    OAuthRequest secret_only;
    secret_only.form = {{"grant_type", "client_credentials"}, {"client_secret", "x"}};
    ExpectOAuthError(svc().TokenEndpoint(secret_only), 400, "invalid_request");
  }
  SECTION("invalid_client with Basic: 401 + WWW-Authenticate Basic") {
    OAuthRequest r = BasicRequest(c, grant);
    r.authorization = Basic(c.info.client_id, c.client_secret + "x");
    HttpReply reply = svc().TokenEndpoint(r);
    ExpectOAuthError(reply, 401, "invalid_client");
    CHECK(reply.Header("WWW-Authenticate") == "Basic realm=\"branchdb\", charset=\"UTF-8\"");
    r.authorization = Basic("bdb_unknown", c.client_secret);
    ExpectOAuthError(svc().TokenEndpoint(r), 401, "invalid_client");
  }
  SECTION("invalid_client with form fields: 400, no challenge") {
    OAuthRequest r;
    r.form = {{"grant_type", "client_credentials"},
              {"client_id", c.info.client_id},
              {"client_secret", "wrong"}};
    HttpReply reply = svc().TokenEndpoint(r);
    ExpectOAuthError(reply, 400, "invalid_client");
    CHECK(reply.Header("WWW-Authenticate").empty());
    r.form.pop_back();  // client_id only: public clients are not supported
    ExpectOAuthError(svc().TokenEndpoint(r), 400, "invalid_client");
  }
  SECTION("invalid_client without any authentication: 401 inviting Basic") {
    OAuthRequest r;
    r.form = grant;
    HttpReply reply = svc().TokenEndpoint(r);
    ExpectOAuthError(reply, 401, "invalid_client");
    CHECK_THAT(reply.Header("WWW-Authenticate"), Catch::StartsWith("Basic realm="));
    r.authorization = "Bearer sometoken";
    ExpectOAuthError(svc().TokenEndpoint(r), 401, "invalid_client");
  }
  SECTION("unsupported_grant_type") {
    for (const char* g : {"password", "authorization_code", "refresh_token", "CLIENT_CREDENTIALS"}) {
      ExpectOAuthError(svc().TokenEndpoint(BasicRequest(c, {{"grant_type", g}})), 400,
                       "unsupported_grant_type");
    }
  }
  SECTION("unauthorized_client: a disabled client with the right secret") {
    REQUIRE(svc().SetClientEnabled(c.info.client_id, false).ok());
    ExpectOAuthError(svc().TokenEndpoint(BasicRequest(c, grant)), 400, "unauthorized_client");
    REQUIRE(svc().SetClientEnabled(c.info.client_id, true).ok());
    CHECK(svc().TokenEndpoint(BasicRequest(c, grant)).status == 200);
  }
  SECTION("invalid_scope") {
    ExpectOAuthError(
        svc().TokenEndpoint(BasicRequest(c, {{"grant_type", "client_credentials"},
                                             {"scope", "sql:write"}})),
        400, "invalid_scope");
  }
}

TEST_CASE_METHOD(AuthFixture, "failed client authentication is rate limited") {
  NewClient victim = MakeClient({Scope::kSqlRead});
  NewClient bystander = MakeClient({Scope::kSqlRead});
  auto attempt = [&](const NewClient& c, const std::string& secret, const std::string& addr) {
    OAuthRequest r;
    r.form = {{"grant_type", "client_credentials"}};
    r.authorization = Basic(c.info.client_id, secret);
    r.source_address = addr;
    return svc().TokenEndpoint(r);
  };
  SECTION("per client id, across addresses") {
    for (int i = 0; i < 5; ++i) {
      CHECK(attempt(victim, "wrong", "198.51.100." + std::to_string(i)).status == 401);
    }
    HttpReply limited = attempt(victim, victim.client_secret, "203.0.113.9");
    CHECK(limited.status == 429);
    CHECK(json::parse(limited.body)["error"] == "invalid_client");
    CHECK(limited.Header("Retry-After") == "60");
    CHECK(attempt(bystander, bystander.client_secret, "203.0.113.9").status == 200);
    clock().AdvanceSeconds(30);
    CHECK(attempt(victim, victim.client_secret, "203.0.113.9").Header("Retry-After") == "30");
    clock().AdvanceSeconds(30);
    CHECK(attempt(victim, victim.client_secret, "203.0.113.9").status == 200);
  }
  SECTION("per source address, across client ids") {
    for (int i = 0; i < 5; ++i) {
      OAuthRequest r;
      r.form = {{"grant_type", "client_credentials"}};
      r.authorization = Basic("bdb_guess" + std::to_string(i), "x");
      r.source_address = "198.51.100.1";
      CHECK(svc().TokenEndpoint(r).status == 401);
    }
    CHECK(attempt(bystander, bystander.client_secret, "198.51.100.1").status == 429);
    CHECK(attempt(bystander, bystander.client_secret, "198.51.100.2").status == 200);
    clock().AdvanceSeconds(61);
    REQUIRE(svc().Maintain().ok());
    CHECK(attempt(bystander, bystander.client_secret, "198.51.100.1").status == 200);
  }
}

TEST_CASE("ParseFormBody decodes application/x-www-form-urlencoded") {
  auto f = ParseFormBody("grant_type=client_credentials&scope=sql%3Aread+sql%3awrite&empty=&flag");
  REQUIRE(f.ok());
  REQUIRE(f->size() == 4);
  CHECK((*f)[0] == std::pair<std::string, std::string>{"grant_type", "client_credentials"});
  CHECK((*f)[1].second == "sql:read sql:write");
  CHECK((*f)[2].second.empty());
  CHECK((*f)[3].first == "flag");
  CHECK_FALSE(ParseFormBody("a=%zz").ok());
  CHECK_FALSE(ParseFormBody("a=%4").ok());
  CHECK(ParseFormBody("")->empty());
}

}  // namespace
}  // namespace branchdb::auth::testing
