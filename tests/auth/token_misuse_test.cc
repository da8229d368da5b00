// The token-misuse matrix: every way a bearer token can be wrong, with the
// error and HTTP status RFC 6750 prescribes. Each forged token is signed with
// the service's real key unless the point is a bad signature, so each case
// proves the specific check (its error_description is asserted too).
#include <openssl/hmac.h>

#include "tests/auth/auth_fixture.h"

namespace branchdb::auth::testing {
namespace {

using internal::Base64UrlEncode;
using Kind = BearerError::Kind;

void ExpectInvalidToken(const BearerError& e, const std::string& description_part) {
  CHECK(e.kind == Kind::kInvalidToken);
  CHECK(e.HttpStatus() == 401);
  CHECK(e.ErrorCode() == "invalid_token");
  CHECK_THAT(e.description, Catch::Contains(description_part));
}

std::string Part(const std::string& token, int i) {
  size_t d1 = token.find('.'), d2 = token.find('.', d1 + 1);
  if (i == 0) return token.substr(0, d1);
  if (i == 1) return token.substr(d1 + 1, d2 - d1 - 1);
  return token.substr(d2 + 1);
}

std::string Hs256(const std::string& signing_input, const std::string& key) {
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &len);
  return Base64UrlEncode(std::string(reinterpret_cast<char*>(mac), len));
}

TEST_CASE_METHOD(AuthFixture, "a genuine token verifies and carries its claims") {
  NewClient c = MakeClient({Scope::kSqlWrite, Scope::kBranchesRead});
  std::string token = GetToken(c);
  BearerError e;
  auto p = svc().Authenticate("Bearer " + token, &e);
  REQUIRE(p.has_value());
  CHECK(p->kind == Principal::Kind::kAccessToken);
  CHECK(p->client_id == c.info.client_id);
  CHECK(p->scopes == ScopeSet({Scope::kBranchesRead, Scope::kSqlWrite}));
  CHECK(p->expires_at - p->issued_at == 900);
  // The scheme is case-insensitive (RFC 7235 §2.1).
  CHECK(svc().Authenticate("bearer " + token, &e).has_value());
  // The forging helper produces verifiable tokens (so failures below are specific).
  CHECK(svc().Authenticate("Bearer " + Sign(Header(), Claims(c, "sql:read")), &e).has_value());
}

// Hardening item 7: the tokens this service issued are checked against its own
// clock, with no leeway (AuthOptions::leeway_seconds is for other parties).
TEST_CASE_METHOD(AuthFixture, "expired tokens fail at exp, with no leeway") {
  NewClient c = MakeClient({Scope::kSqlRead});
  std::string token = GetToken(c);
  BearerError e;
  clock().AdvanceSeconds(900 - 1);  // the last second before exp
  CHECK(svc().Authenticate("Bearer " + token, &e).has_value());
  clock().AdvanceSeconds(1);  // at exp
  ExpectInvalidToken(VerifyFails(token), "expired");
  HttpReply r = BearerErrorReply(VerifyFails(token), "branchdb");
  CHECK(r.status == 401);
  CHECK(r.Header("WWW-Authenticate") ==
        "Bearer realm=\"branchdb\", error=\"invalid_token\", error_description=\"token expired\"");
}

TEST_CASE_METHOD(AuthFixture, "tokens from the future fail, with no leeway") {
  NewClient c = MakeClient({Scope::kSqlRead});
  json claims = Claims(c, "sql:read");
  claims["iat"] = Now();
  BearerError e;
  CHECK(svc().Authenticate("Bearer " + Sign(Header(), claims), &e).has_value());
  claims["iat"] = Now() + 1;
  ExpectInvalidToken(VerifyFails(Sign(Header(), claims)), "future");
  claims = Claims(c, "sql:read");
  claims["nbf"] = Now() + 1;
  ExpectInvalidToken(VerifyFails(Sign(Header(), claims)), "not yet valid");
  claims["nbf"] = "soon";
  ExpectInvalidToken(VerifyFails(Sign(Header(), claims)), "nbf");
}

TEST_CASE_METHOD(AuthFixture, "time claims out of range or of the wrong type are refused") {
  NewClient c = MakeClient({Scope::kSqlRead});
  const json weird[] = {json(INT64_MAX), json(UINT64_MAX), json(-1), json(Now() + 0.5),
                        json(std::to_string(Now() + 900)), json(nullptr)};
  for (const json& v : weird) {
    for (const char* name : {"exp", "iat"}) {
      json claims = Claims(c, "sql:read");
      claims[name] = v;
      INFO(name << " = " << v.dump());
      ExpectInvalidToken(VerifyFails(Sign(Header(), claims)), "");
    }
  }
  json claims = Claims(c, "sql:read");
  claims["iat"] = 0;
  claims["exp"] = INT64_MAX;
  ExpectInvalidToken(VerifyFails(Sign(Header(), claims)), "malformed exp or iat");
  claims["exp"] = Now() + 900;  // iat far in the past: lifetime over an hour
  ExpectInvalidToken(VerifyFails(Sign(Header(), claims)), "lifetime");
}

TEST_CASE_METHOD(AuthFixture, "bad signatures and tampered parts fail") {
  NewClient c = MakeClient({Scope::kSqlRead});
  std::string token = GetToken(c);
  std::string sig = Part(token, 2);
  SECTION("signature flipped") {
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    ExpectInvalidToken(VerifyFails(Part(token, 0) + "." + Part(token, 1) + "." + sig),
                       "bad signature");
  }
  SECTION("signature of another token") {
    std::string other = GetToken(c);
    ExpectInvalidToken(VerifyFails(Part(token, 0) + "." + Part(token, 1) + "." + Part(other, 2)),
                       "bad signature");
  }
  SECTION("payload tampered to widen the scope") {
    json claims = json::parse(*internal::Base64UrlDecode(Part(token, 1)));
    claims["scope"] = "admin";
    ExpectInvalidToken(
        VerifyFails(Part(token, 0) + "." + Base64UrlEncode(claims.dump()) + "." + sig),
        "bad signature");
  }
  SECTION("header tampered") {
    json header = json::parse(*internal::Base64UrlDecode(Part(token, 0)));
    header["x"] = 1;
    ExpectInvalidToken(
        VerifyFails(Base64UrlEncode(header.dump()) + "." + Part(token, 1) + "." + sig),
        "bad signature");
  }
  SECTION("signature missing or truncated") {
    ExpectInvalidToken(VerifyFails(Part(token, 0) + "." + Part(token, 1) + "."), "bad signature");
    ExpectInvalidToken(VerifyFails(Part(token, 0) + "." + Part(token, 1) + "." + sig.substr(0, 40)),
                       "bad signature");
  }
}

TEST_CASE_METHOD(AuthFixture, "only EdDSA is accepted: none, HS256 with the public key, RS256") {
  NewClient c = MakeClient({Scope::kSqlRead});
  const std::string payload = Base64UrlEncode(Claims(c, "admin").dump());
  const std::string kid = svc().CurrentKeyId();
  SECTION("alg none, empty signature") {
    json h = {{"alg", "none"}, {"typ", "at+jwt"}, {"kid", kid}};
    ExpectInvalidToken(VerifyFails(Base64UrlEncode(h.dump()) + "." + payload + "."),
                       "unsupported algorithm");
    h["alg"] = "None";
    ExpectInvalidToken(VerifyFails(Base64UrlEncode(h.dump()) + "." + payload + "."),
                       "unsupported algorithm");
  }
  SECTION("HS256 keyed with the public key (raw bytes, JWK x, PEM-ish)") {
    json h = {{"alg", "HS256"}, {"typ", "at+jwt"}, {"kid", kid}};
    std::string input = Base64UrlEncode(h.dump()) + "." + payload;
    std::string pub = SigningKey()->public_raw();
    for (const std::string& k : {pub, Base64UrlEncode(pub)}) {
      ExpectInvalidToken(VerifyFails(input + "." + Hs256(input, k)), "unsupported algorithm");
    }
  }
  SECTION("RS256, ES256, EdDSA spelled differently, missing alg") {
    for (json alg : {json("RS256"), json("ES256"), json("eddsa"), json("Ed25519"), json(7)}) {
      json h = {{"alg", alg}, {"typ", "at+jwt"}, {"kid", kid}};
      ExpectInvalidToken(VerifyFails(Sign(h, Claims(c, "sql:read"))), "unsupported algorithm");
    }
    json h = {{"typ", "at+jwt"}, {"kid", kid}};
    ExpectInvalidToken(VerifyFails(Sign(h, Claims(c, "sql:read"))), "unsupported algorithm");
  }
}

TEST_CASE_METHOD(AuthFixture, "wrong typ, iss, aud, kid are rejected") {
  NewClient c = MakeClient({Scope::kSqlRead});
  json h = Header();
  SECTION("typ") {
    for (const char* typ : {"JWT", "at+JWT+x", "id+jwt"}) {
      h["typ"] = typ;
      ExpectInvalidToken(VerifyFails(Sign(h, Claims(c, "sql:read"))), "wrong token type");
    }
    h.erase("typ");
    ExpectInvalidToken(VerifyFails(Sign(h, Claims(c, "sql:read"))), "missing typ");
    h["typ"] = "application/at+jwt";  // RFC 9068 §2.1 allows the full media type
    BearerError e;
    CHECK(svc().Authenticate("Bearer " + Sign(h, Claims(c, "sql:read")), &e).has_value());
  }
  SECTION("iss") {
    json claims = Claims(c, "sql:read");
    claims["iss"] = "https://evil.test";
    ExpectInvalidToken(VerifyFails(Sign(h, claims)), "wrong issuer");
    claims.erase("iss");
    ExpectInvalidToken(VerifyFails(Sign(h, claims)), "wrong issuer");
  }
  SECTION("aud") {
    json claims = Claims(c, "sql:read");
    claims["aud"] = "other-api";
    ExpectInvalidToken(VerifyFails(Sign(h, claims)), "wrong audience");
    claims["aud"] = json::array({"other-api", "branchdb-api"});
    BearerError e;
    CHECK(svc().Authenticate("Bearer " + Sign(h, claims), &e).has_value());
  }
  SECTION("kid unknown or missing") {
    h["kid"] = "no-such-key";
    ExpectInvalidToken(VerifyFails(Sign(h, Claims(c, "sql:read"))), "unknown signing key");
    h.erase("kid");
    ExpectInvalidToken(VerifyFails(Sign(h, Claims(c, "sql:read"))), "missing kid");
  }
  SECTION("a key embedded in the header is not trusted") {
    h["jwk"] = {{"kty", "OKP"}};
    ExpectInvalidToken(VerifyFails(Sign(h, Claims(c, "sql:read"))), "embedded key");
  }
  SECTION("a database credential cannot pose as an access token and vice versa") {
    json claims = Claims(c, "sql:read");
    h["typ"] = "dbcred+jwt";  // no project/branch/access claims
    ExpectInvalidToken(VerifyFails(Sign(h, claims)), "malformed database credential");
  }
}

TEST_CASE_METHOD(AuthFixture, "revoked and disabled-client tokens are rejected") {
  NewClient c = MakeClient({Scope::kSqlRead});
  std::string token = GetToken(c);
  std::string other = GetToken(c);
  REQUIRE(svc().RevokeToken(token).ok());
  ExpectInvalidToken(VerifyFails(token), "revoked");
  BearerError e;
  CHECK(svc().Authenticate("Bearer " + other, &e).has_value());  // only that jti

  REQUIRE(svc().SetClientEnabled(c.info.client_id, false).ok());
  ExpectInvalidToken(VerifyFails(other), "disabled");
  REQUIRE(svc().SetClientEnabled(c.info.client_id, true).ok());
  CHECK(svc().Authenticate("Bearer " + other, &e).has_value());
  REQUIRE(svc().DeleteClient(c.info.client_id).ok());
  ExpectInvalidToken(VerifyFails(other), "client unknown");
}

TEST_CASE_METHOD(AuthFixture, "scope escalation at the token endpoint is invalid_scope") {
  NewClient c = MakeClient({Scope::kBranchesRead, Scope::kSqlRead});
  for (const char* scope : {"sql:write", "admin", "branches:read projects:read", "bogus"}) {
    HttpReply r = TokenRequest(c, scope);
    CHECK(r.status == 400);
    CHECK(json::parse(r.body)["error"] == "invalid_scope");
  }
  // A forged token claiming more than the client holds is cut down to the client's scopes.
  BearerError e;
  auto p = svc().Authenticate("Bearer " + Sign(Header(), Claims(c, "admin sql:read")), &e);
  REQUIRE(p.has_value());
  CHECK(p->scopes == ScopeSet({Scope::kSqlRead}));
  ExpectInvalidToken(VerifyFails(Sign(Header(), Claims(c, "admin"))), "no longer holds");
}

TEST_CASE_METHOD(AuthFixture, "scope and project checks give 403 insufficient_scope") {
  NewClient c = MakeClient({Scope::kBranchesRead, Scope::kSqlWrite}, {"alpha"});
  std::string header = "Bearer " + GetToken(c);
  Principal p;
  CHECK_FALSE(svc().Check(header, "alpha", "main", Operation::kSqlWrite, &p).has_value());
  CHECK_FALSE(svc().Check(header, "alpha", "main", Operation::kSqlRead, &p).has_value());
  CHECK_FALSE(svc().Check(header, "alpha", "", Operation::kListBranches, &p).has_value());

  auto cross = svc().Check(header, "beta", "main", Operation::kSqlRead, &p);
  REQUIRE(cross.has_value());
  CHECK(cross->kind == Kind::kInsufficientScope);
  CHECK(cross->HttpStatus() == 403);

  auto scope = svc().Check(header, "alpha", "main", Operation::kCreateBranch, &p);
  REQUIRE(scope.has_value());
  CHECK(scope->scope == "branches:write");
  HttpReply r = BearerErrorReply(*scope, "branchdb");
  CHECK(r.status == 403);
  CHECK(r.Header("WWW-Authenticate") ==
        "Bearer realm=\"branchdb\", error=\"insufficient_scope\", error_description=\"operation "
        "create_branch requires scope branches:write\", scope=\"branches:write\"");
  CHECK(json::parse(r.body)["error"] == "insufficient_scope");
}

TEST_CASE_METHOD(AuthFixture, "database credentials are bound to project, branch and access") {
  NewClient c = MakeClient({Scope::kSqlWrite}, {"alpha"});
  BearerError e;
  auto caller = svc().Authenticate("Bearer " + GetToken(c), &e);
  REQUIRE(caller.has_value());
  auto read = svc().IssueDbCredential(*caller, "alpha", "feature", kIds, DbAccess::kRead, 0, &e);
  auto rw = svc().IssueDbCredential(*caller, "alpha", "feature", kIds, DbAccess::kReadWrite, 120, &e);
  REQUIRE(read.has_value());
  REQUIRE(rw.has_value());
  CHECK(read->expires_in == 900);
  const std::string rh = "Bearer " + read->token, wh = "Bearer " + rw->token;
  Principal p;
  CHECK_FALSE(svc().Check(rh, "alpha", "feature", Operation::kSqlRead, &p).has_value());
  CHECK(p.kind == Principal::Kind::kDbCredential);
  CHECK_FALSE(svc().Check(wh, "alpha", "feature", Operation::kSqlWrite, &p).has_value());

  auto denied = [&](const std::string& h, const char* project, const char* branch, Operation op) {
    auto err = svc().Check(h, project, branch, op, &p);
    REQUIRE(err.has_value());
    CHECK(err->kind == Kind::kInsufficientScope);
    CHECK(err->HttpStatus() == 403);
    return err->description;
  };
  CHECK_THAT(denied(rh, "alpha", "feature", Operation::kSqlWrite), Catch::Contains("read-only"));
  CHECK_THAT(denied(wh, "alpha", "main", Operation::kSqlWrite), Catch::Contains("another"));
  CHECK_THAT(denied(rh, "alpha", "main", Operation::kSqlRead), Catch::Contains("another"));
  CHECK_THAT(denied(wh, "beta", "feature", Operation::kSqlRead), Catch::Contains("another"));
  CHECK_THAT(denied(wh, "alpha", "feature", Operation::kDeleteBranch),
             Catch::Contains("only SQL"));

  // A credential cannot mint credentials; an expired credential fails.
  auto cred_principal = svc().Authenticate(wh, &e);
  REQUIRE(cred_principal.has_value());
  CHECK_FALSE(
      svc().IssueDbCredential(*cred_principal, "alpha", "feature", kIds, DbAccess::kRead, 0, &e));
  CHECK(e.kind == Kind::kInsufficientScope);
  clock().AdvanceSeconds(120);
  ExpectInvalidToken(VerifyFails(rw->token), "expired");
  CHECK(svc().Authenticate(rh, &e).has_value());
}

// Hardening item 7: a credential documented to expire at expires_at is refused
// from that second on, not 30 s later.
TEST_CASE_METHOD(AuthFixture, "a database credential is refused from its expires_at on") {
  NewClient c = MakeClient({Scope::kSqlWrite});
  BearerError e;
  auto caller = svc().Authenticate("Bearer " + GetToken(c), &e);
  REQUIRE(caller.has_value());
  auto cred = svc().IssueDbCredential(*caller, "alpha", "main", kIds, DbAccess::kRead, 60, &e);
  REQUIRE(cred.has_value());
  CHECK(cred->expires_at == Now() + 60);
  CHECK(json::parse(cred->ToJson())["expires_at"] == FormatRfc3339(cred->expires_at));
  clock().AdvanceSeconds(59);
  CHECK(svc().Authenticate("Bearer " + cred->token, &e).has_value());
  clock().AdvanceSeconds(1);
  CHECK(Now() == cred->expires_at);
  ExpectInvalidToken(VerifyFails(cred->token), "expired");
  CHECK(json::parse(svc().IntrospectToken(cred->token)) == json{{"active", false}});
}

// Hardening item 3: a credential carries the ids of its project and branch;
// the same names with other ids (a re-created or renamed-onto branch) refuse it.
TEST_CASE_METHOD(AuthFixture, "a database credential is bound to its project's and branch's ids") {
  NewClient c = MakeClient({Scope::kSqlWrite});
  BearerError e;
  auto caller = svc().Authenticate("Bearer " + GetToken(c), &e);
  REQUIRE(caller.has_value());
  auto cred = svc().IssueDbCredential(*caller, "alpha", "main", kIds, DbAccess::kReadWrite, 60, &e);
  REQUIRE(cred.has_value());
  auto p = svc().Authenticate("Bearer " + cred->token, &e);
  REQUIRE(p.has_value());
  CHECK(p->project_id == kIds.project_id);
  CHECK(p->branch_id == kIds.branch_id);
  CHECK_FALSE(CheckCredentialBinding(*p, kIds).has_value());
  for (const BranchIdentity& other :
       {BranchIdentity{kIds.project_id, "8"}, BranchIdentity{"p00000000000000b2", kIds.branch_id},
        BranchIdentity{"", ""}, BranchIdentity{kIds.project_id, ""}}) {
    auto err = CheckCredentialBinding(*p, other);
    REQUIRE(err.has_value());
    CHECK(err->kind == Kind::kInvalidToken);
    CHECK_THAT(err->description, Catch::Contains("re-created or renamed"));
  }
  // An access token is bound to no branch.
  CHECK_FALSE(CheckCredentialBinding(*caller, BranchIdentity{}).has_value());
  // Issuing needs the ids; a credential without them (as issued before ids
  // were bound) does not verify.
  CHECK_FALSE(svc().IssueDbCredential(*caller, "alpha", "main", BranchIdentity{"", "7"},
                                      DbAccess::kRead, 60, &e));
  CHECK(e.kind == Kind::kInvalidRequest);
  json h = Header();
  h["typ"] = "dbcred+jwt";
  json claims = Claims(c, "x");
  claims.erase("scope");
  claims["project"] = "alpha";
  claims["branch"] = "main";
  claims["access"] = "read";
  ExpectInvalidToken(VerifyFails(Sign(h, claims)), "malformed database credential");
  claims["project_id"] = kIds.project_id;
  claims["branch_id"] = kIds.branch_id;
  CHECK(svc().Authenticate("Bearer " + Sign(h, claims), &e).has_value());
}

// Hardening item 4, the class: a client restricted to projects does nothing
// that is not about one of its projects (listing excepted: it is filtered).
TEST_CASE_METHOD(AuthFixture, "a project-restricted client acts on its projects only") {
  NewClient c = MakeClient({Scope::kAdmin}, {"alpha"});
  BearerError e;
  auto p = svc().Authenticate("Bearer " + GetToken(c), &e);
  REQUIRE(p.has_value());
  CHECK(svc().Allows(*p, Operation::kListProjects, "", ""));
  CHECK(svc().Allows(*p, Operation::kCreateProject, "alpha", ""));
  CHECK_FALSE(svc().Allows(*p, Operation::kCreateProject, "beta", ""));
  for (Operation op : {Operation::kCreateProject, Operation::kManageClients,
                       Operation::kRotateKeys, Operation::kIntrospectAnyToken}) {
    INFO(OperationName(op));
    auto err = svc().Authorize(*p, op, "", "");
    REQUIRE(err.has_value());
    CHECK(err->kind == Kind::kInsufficientScope);
  }
  // Every project-scoped operation: allowed on alpha, refused on beta.
  for (int i = 0; i <= static_cast<int>(Operation::kIntrospectAnyToken); ++i) {
    Operation op = static_cast<Operation>(i);
    INFO(OperationName(op));
    CHECK(svc().Allows(*p, op, "alpha", "main"));
    CHECK_FALSE(svc().Allows(*p, op, "beta", "main"));
  }
  // Its admin scope reaches no other client's tokens at the OAuth endpoints.
  NewClient other = MakeClient({Scope::kSqlRead});
  std::string others_token = GetToken(other);
  OAuthRequest r;
  r.form = {{"token", others_token},
            {"client_id", c.info.client_id},
            {"client_secret", c.client_secret}};
  CHECK(json::parse(svc().IntrospectionEndpoint(r).body) == json{{"active", false}});
  CHECK(svc().RevocationEndpoint(r).status == 200);
  CHECK(svc().Authenticate("Bearer " + others_token, &e).has_value());
  // An unrestricted admin does.
  NewClient root = MakeClient({Scope::kAdmin});
  r.form = {{"token", others_token},
            {"client_id", root.info.client_id},
            {"client_secret", root.client_secret}};
  CHECK(json::parse(svc().IntrospectionEndpoint(r).body)["active"] == true);
}

TEST_CASE_METHOD(AuthFixture, "credential issuing needs the matching sql scope and project") {
  NewClient reader = MakeClient({Scope::kSqlRead}, {"alpha"});
  BearerError e;
  auto caller = svc().Authenticate("Bearer " + GetToken(reader), &e);
  REQUIRE(caller.has_value());
  CHECK(svc().IssueDbCredential(*caller, "alpha", "main", kIds, DbAccess::kRead, 60, &e));
  CHECK_FALSE(svc().IssueDbCredential(*caller, "alpha", "main", kIds, DbAccess::kReadWrite, 60, &e));
  CHECK(e.scope == "sql:write");
  CHECK_FALSE(svc().IssueDbCredential(*caller, "beta", "main", kIds, DbAccess::kRead, 60, &e));
  CHECK(e.kind == Kind::kInsufficientScope);
  for (int64_t bad : {59, 3601, -5}) {
    CHECK_FALSE(svc().IssueDbCredential(*caller, "alpha", "main", kIds, DbAccess::kRead, bad, &e));
    CHECK(e.kind == Kind::kInvalidRequest);
  }
  CHECK_FALSE(svc().IssueDbCredential(*caller, "", "main", kIds, DbAccess::kRead, 60, &e));
  CHECK(e.kind == Kind::kInvalidRequest);
  // A forged credential with access "admin" or a 2-hour lifetime is refused.
  json h = Header();
  h["typ"] = "dbcred+jwt";
  json claims = Claims(reader, "x");
  claims.erase("scope");
  claims["project"] = "alpha";
  claims["branch"] = "main";
  claims["project_id"] = kIds.project_id;
  claims["branch_id"] = kIds.branch_id;
  claims["access"] = "admin";
  ExpectInvalidToken(VerifyFails(Sign(h, claims)), "malformed database credential");
  claims["access"] = "read";
  claims["exp"] = Now() + 7200;
  ExpectInvalidToken(VerifyFails(Sign(h, claims)), "lifetime");
}

TEST_CASE_METHOD(AuthFixture, "malformed tokens and headers") {
  NewClient c = MakeClient({Scope::kSqlRead});
  std::string token = GetToken(c);
  SECTION("bad base64") {
    ExpectInvalidToken(VerifyFails("e30.e30.e30"), "");
    ExpectInvalidToken(VerifyFails("a.b.c"), "malformed");
    ExpectInvalidToken(VerifyFails("abc~.def.ghi"), "malformed");
    // Padding inside the token is not even b64token syntax (RFC 6750 §2.1): 400.
    BearerError e;
    std::string padded = Part(token, 0) + "==." + Part(token, 1) + "." + Part(token, 2);
    CHECK_FALSE(svc().Authenticate("Bearer " + padded, &e));
    CHECK(e.kind == Kind::kInvalidRequest);
    // Given bare, it is a malformed token.
    CHECK_FALSE(svc().VerifyToken(padded, &e));
    ExpectInvalidToken(e, "malformed token header encoding");
    // Non-canonical trailing bits in the signature are refused (no malleability).
    std::string sig = Part(token, 2);
    std::string alt = sig;
    // The last char of an 86-char encoding of 64 bytes carries 2 unused bits.
    const std::string alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    alt.back() = alphabet[alphabet.find(sig.back()) ^ 1];
    ExpectInvalidToken(VerifyFails(Part(token, 0) + "." + Part(token, 1) + "." + alt),
                       "signature encoding");
  }
  SECTION("bad JSON") {
    ExpectInvalidToken(VerifyFails(Base64UrlEncode("{\"alg\":") + ".e30.AA"), "malformed token header");
    ExpectInvalidToken(VerifyFails(Base64UrlEncode("[1,2]") + ".e30.AA"), "malformed token header");
    // A correctly signed token whose payload is not JSON.
    auto key = SigningKey();
    std::string input = Part(token, 0) + "." + Base64UrlEncode("not json");
    auto sig = key->Sign(input);
    REQUIRE(sig.ok());
    ExpectInvalidToken(VerifyFails(input + "." + Base64UrlEncode(*sig)), "malformed token payload");
  }
  SECTION("wrong number of parts") {
    ExpectInvalidToken(VerifyFails(Part(token, 0) + "." + Part(token, 1)), "malformed");
    ExpectInvalidToken(VerifyFails(token + ".x"), "malformed");
  }
  SECTION("huge input") {
    std::string huge = token + std::string(9000, 'A');
    ExpectInvalidToken(VerifyFails(huge), "too large");
    BearerError e;
    CHECK_FALSE(svc().VerifyToken(std::string(100000, 'A'), &e));
    CHECK(e.kind == Kind::kInvalidToken);
  }
  SECTION("Authorization header shapes") {
    BearerError e;
    CHECK_FALSE(svc().Authenticate("", &e));
    CHECK(e.kind == Kind::kNoToken);
    HttpReply r = BearerErrorReply(e, "branchdb");
    CHECK(r.status == 401);
    CHECK(r.Header("WWW-Authenticate") == "Bearer realm=\"branchdb\"");
    CHECK_FALSE(svc().Authenticate("Basic Zm9vOmJhcg==", &e));
    CHECK(e.kind == Kind::kNoToken);
    for (const char* bad : {"Bearer", "Bearer ", "Bearer a b", "Bearer {}", "Bearer  x"}) {
      CHECK_FALSE(svc().Authenticate(bad, &e));
      CHECK(e.kind == Kind::kInvalidRequest);
      CHECK(BearerErrorReply(e, "branchdb").status == 400);
    }
  }
}

}  // namespace
}  // namespace branchdb::auth::testing
