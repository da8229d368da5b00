// Clients, persistence, admin bootstrap, key rotation and JWKS, revocation and
// introspection, and the small pure pieces (scopes, base64url, secret hashes).
#include <sys/stat.h>

#include <set>

#include "tests/auth/auth_fixture.h"

namespace branchdb::auth::testing {
namespace {

std::set<std::string> JwksKids(AuthService& svc) {
  HttpReply r = svc.JwksEndpoint();
  REQUIRE(r.status == 200);
  json body = json::parse(r.body);
  std::set<std::string> kids;
  for (const auto& k : body["keys"]) {
    CHECK(k["kty"] == "OKP");
    CHECK(k["crv"] == "Ed25519");
    CHECK(k["use"] == "sig");
    CHECK(k["alg"] == "EdDSA");
    CHECK(internal::Base64UrlDecode(k["x"].get<std::string>())->size() == 32);
    kids.insert(k["kid"].get<std::string>());
  }
  return kids;
}

bool Verifies(AuthService& svc, const std::string& token) {
  BearerError e;
  return svc.Authenticate("Bearer " + token, &e).has_value();
}

TEST_CASE_METHOD(AuthFixture, "client lifecycle: create, list, disable, enable, delete") {
  NewClient a = MakeClient({Scope::kSqlRead}, {"alpha", "beta"});
  NewClient b = MakeClient({Scope::kAdmin});
  CHECK(a.info.client_id != b.info.client_id);
  CHECK(a.client_secret.size() >= 43);  // 32 random bytes, base64url
  CHECK(svc().ListClients().size() == 2);
  auto got = svc().GetClient(a.info.client_id);
  REQUIRE(got.ok());
  CHECK(got->projects == std::vector<std::string>{"alpha", "beta"});
  CHECK(got->MayAccessProject("beta"));
  CHECK_FALSE(got->MayAccessProject("gamma"));
  REQUIRE(svc().SetClientEnabled(a.info.client_id, false).ok());
  CHECK_FALSE(svc().GetClient(a.info.client_id)->enabled);
  REQUIRE(svc().DeleteClient(a.info.client_id).ok());
  CHECK(svc().GetClient(a.info.client_id).status().IsNotFound());
  CHECK(svc().SetClientEnabled("nope", true).IsNotFound());
  CHECK(svc().DeleteClient("nope").IsNotFound());
  CHECK(svc().CreateClient(ClientSpec{"empty", {}, {}, {}, 0}).status().IsInvalidArgument());

  json shown = json::parse(b.ToJson());
  CHECK(shown["client_secret"] == b.client_secret);
  CHECK(shown["scopes"] == json::array({"admin"}));
  CHECK(shown["created_at"] == FormatRfc3339(b.info.created_at));
  json listed = json::parse(svc().ListClients().at(0).ToJson());
  CHECK(listed["client_id"] == b.info.client_id);
  CHECK_FALSE(listed.contains("client_secret"));
  CHECK(listed.dump().find("pbkdf2") == std::string::npos);
}

TEST_CASE_METHOD(AuthFixture, "state survives a reopen; secrets are never stored in clear") {
  NewClient c = MakeClient({Scope::kSqlWrite}, {"alpha"});
  NewClient off = MakeClient({Scope::kSqlRead});
  REQUIRE(svc().SetClientEnabled(off.info.client_id, false).ok());
  std::string token = GetToken(c);
  std::string revoked = GetToken(c);
  REQUIRE(svc().RevokeToken(revoked).ok());
  std::string kid = svc().CurrentKeyId();

  Reopen();
  CHECK(svc().CurrentKeyId() == kid);
  CHECK(Verifies(svc(), token));
  CHECK_FALSE(Verifies(svc(), revoked));
  CHECK_FALSE(svc().GetClient(off.info.client_id)->enabled);
  CHECK(svc().GetClient(c.info.client_id)->projects == std::vector<std::string>{"alpha"});
  CHECK(TokenRequest(c).status == 200);  // the stored hash still matches

  for (const char* file : {"auth/clients.json", "auth/keys.json", "auth/revoked.json"}) {
    auto text = env()->ReadFileToString(data_dir() + "/" + file);
    REQUIRE(text.ok());
    CHECK(text->find(c.client_secret) == std::string::npos);
    CHECK(text->find(c.client_secret.substr(5)) == std::string::npos);  // without prefix
    CHECK(text->find(off.client_secret) == std::string::npos);
  }
  auto clients = env()->ReadFileToString(data_dir() + "/auth/clients.json");
  CHECK(clients->find("pbkdf2-sha256$1000$") != std::string::npos);
}

TEST_CASE_METHOD(AuthFixture, "corrupt state refuses to open instead of starting empty") {
  REQUIRE(env()->WriteFileAtomic(data_dir() + "/auth/clients.json", "{not json").ok());
  auto s = AuthService::Open(env(), TestOptions(data_dir()));
  CHECK(s.status().IsCorruption());
}

TEST_CASE_METHOD(AuthFixture, "first start writes admin credentials that work") {
  auto r = svc().EnsureAdminClient("http://127.0.0.1:8080/oauth/token");
  REQUIRE(r.ok());
  CHECK(r->created);
  CHECK(r->path == data_dir() + "/admin-credentials.json");
  auto text = env()->ReadFileToString(r->path);
  REQUIRE(text.ok());
  json creds = json::parse(*text);
  CHECK(creds.size() == 3);
  CHECK(creds["client_id"] == r->client_id);
  CHECK(creds["token_url"] == "http://127.0.0.1:8080/oauth/token");
  NewClient admin;
  admin.info.client_id = creds["client_id"];
  admin.client_secret = creds["client_secret"];
  HttpReply reply = TokenRequest(admin);
  REQUIRE(reply.status == 200);
  CHECK(json::parse(reply.body)["scope"] == "admin");
  // Not in clear in the registry; and not created twice.
  CHECK(env()->ReadFileToString(data_dir() + "/auth/clients.json")->find(admin.client_secret) ==
        std::string::npos);
  Reopen();
  auto again = svc().EnsureAdminClient("http://x/oauth/token");
  REQUIRE(again.ok());
  CHECK_FALSE(again->created);
  CHECK(*env()->ReadFileToString(r->path) == *text);
}

// Records SetPermissions calls (and the file's size at that moment), or refuses them.
class PermissionsSpyEnv final : public branchdb::EnvWrapper {
 public:
  using EnvWrapper::EnvWrapper;
  std::vector<std::string> restricted;
  bool refuse = false;
  Status SetPermissions(const std::string& path, uint32_t mode) override {
    if (refuse) return Status::IOError("chmod refused");
    auto size = GetFileSize(path);
    CHECK((size.ok() && *size == 0));  // still empty: no secret was exposed
    CHECK(mode == 0600);
    restricted.push_back(path);
    return target()->SetPermissions(path, mode);
  }
};

TEST_CASE("secret files are made 0600 before content is written") {
  branchdb::testing::TempDir dir;
  MockClock clock;
  EnvWithClock clocked(Env::Default(), &clock);
  PermissionsSpyEnv env(&clocked);
  auto svc = AuthService::Open(&env, TestOptions(dir.path()));
  REQUIRE(svc.ok());
  auto admin = (*svc)->EnsureAdminClient("http://h/oauth/token");
  REQUIRE(admin.ok());
  struct stat st;
  REQUIRE(::stat(admin->path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::string pem = dir.path() + "/auth/keys/" + (*svc)->CurrentKeyId() + ".pem";
  REQUIRE(::stat(pem.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((dir.path() + "/auth/clients.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(env.restricted.size() >= 4);  // key pem, keys.json, credentials, clients.json

  // A failed chmod aborts the write: no credentials file without protection.
  branchdb::testing::TempDir dir2;
  PermissionsSpyEnv refusing(&clocked);
  refusing.refuse = true;
  CHECK(AuthService::Open(&refusing, TestOptions(dir2.path())).status().IsIOError());
}

TEST_CASE_METHOD(AuthFixture, "key rotation: old tokens verify until expiry, JWKS follows") {
  NewClient c = MakeClient({Scope::kSqlRead});
  const std::string old_kid = svc().CurrentKeyId();
  std::string old_token = GetToken(c);
  CHECK(JwksKids(svc()) == std::set<std::string>{old_kid});

  REQUIRE(svc().RotateSigningKey().ok());
  const std::string new_kid = svc().CurrentKeyId();
  CHECK(new_kid != old_kid);
  std::string new_token = GetToken(c);
  CHECK(new_token.find('.') != std::string::npos);
  json header = json::parse(*internal::Base64UrlDecode(new_token.substr(0, new_token.find('.'))));
  CHECK(header["kid"] == new_kid);
  CHECK(Verifies(svc(), old_token));
  CHECK(Verifies(svc(), new_token));
  CHECK(JwksKids(svc()) == std::set<std::string>{old_kid, new_kid});

  Reopen();  // rotation state is durable
  CHECK(svc().CurrentKeyId() == new_kid);
  CHECK(Verifies(svc(), old_token));

  clock().AdvanceSeconds(900 + 30);
  CHECK_FALSE(Verifies(svc(), old_token));  // expired (the key is still published)
  CHECK(JwksKids(svc()).size() == 2);
  clock().AdvanceSeconds(3600 - 900);  // past the longest possible lifetime + leeway
  REQUIRE(svc().Maintain().ok());
  CHECK(JwksKids(svc()) == std::set<std::string>{new_kid});
  CHECK_FALSE(env()->FileExists(data_dir() + "/auth/keys/" + old_kid + ".pem"));
  Reopen();
  CHECK(JwksKids(svc()) == std::set<std::string>{new_kid});
}

TEST_CASE_METHOD(AuthFixture, "an outside verifier can check tokens with the JWKS alone") {
  NewClient c = MakeClient({Scope::kSqlRead});
  std::string token = GetToken(c);
  json jwks = json::parse(svc().JwksEndpoint().body);
  REQUIRE(jwks["keys"].size() == 1);
  auto pub = internal::Ed25519Key::FromRawPublic(
      *internal::Base64UrlDecode(jwks["keys"][0]["x"].get<std::string>()));
  REQUIRE(pub.ok());
  CHECK((*pub)->Thumbprint() == jwks["keys"][0]["kid"]);  // kid = RFC 7638 thumbprint
  size_t last_dot = token.rfind('.');
  auto sig = internal::Base64UrlDecode(token.substr(last_dot + 1));
  REQUIRE(sig.has_value());
  CHECK((*pub)->Verify(token.substr(0, last_dot), *sig));
  CHECK_FALSE((*pub)->Verify(token.substr(0, last_dot - 1), *sig));
}

TEST_CASE_METHOD(AuthFixture, "Maintain rotates a key older than the rotation period") {
  const std::string kid = svc().CurrentKeyId();
  REQUIRE(svc().Maintain().ok());
  CHECK(svc().CurrentKeyId() == kid);
  clock().AdvanceSeconds(30LL * 24 * 3600);
  REQUIRE(svc().Maintain().ok());
  CHECK(svc().CurrentKeyId() != kid);
}

TEST_CASE_METHOD(AuthFixture, "revocation endpoint (RFC 7009)") {
  NewClient owner = MakeClient({Scope::kSqlRead});
  NewClient other = MakeClient({Scope::kSqlRead});
  NewClient admin = MakeClient({Scope::kAdmin});
  std::string token = GetToken(owner);
  auto revoke = [&](const NewClient& who, const std::string& t) {
    OAuthRequest r;
    r.form = {{"token", t},
              {"token_type_hint", "access_token"},
              {"client_id", who.info.client_id},
              {"client_secret", who.client_secret}};
    return svc().RevocationEndpoint(r);
  };
  CHECK(revoke(owner, "garbage").status == 200);
  CHECK(revoke(owner, std::string(20000, 'x')).status == 200);
  CHECK(revoke(other, token).status == 200);  // someone else's: 200, no effect
  CHECK(Verifies(svc(), token));
  CHECK(revoke(owner, token).status == 200);
  CHECK_FALSE(Verifies(svc(), token));
  CHECK(revoke(owner, token).status == 200);  // idempotent

  std::string token2 = GetToken(owner);
  CHECK(revoke(admin, token2).status == 200);  // admin may revoke any token
  CHECK_FALSE(Verifies(svc(), token2));

  OAuthRequest unauth;
  unauth.form = {{"token", token}};
  CHECK(svc().RevocationEndpoint(unauth).status == 401);
  OAuthRequest missing;
  missing.form = {{"client_id", owner.info.client_id}, {"client_secret", owner.client_secret}};
  CHECK(json::parse(svc().RevocationEndpoint(missing).body)["error"] == "invalid_request");

  // Revocations are kept until the token expires, then pruned.
  CHECK(env()->ReadFileToString(data_dir() + "/auth/revoked.json")->find("jti") !=
        std::string::npos);
  clock().AdvanceSeconds(900 + 31);
  REQUIRE(svc().Maintain().ok());
  CHECK(env()->ReadFileToString(data_dir() + "/auth/revoked.json")->find("jti") ==
        std::string::npos);
}

TEST_CASE_METHOD(AuthFixture, "introspection endpoint (RFC 7662)") {
  NewClient owner = MakeClient({Scope::kSqlWrite});
  NewClient other = MakeClient({Scope::kSqlRead});
  NewClient admin = MakeClient({Scope::kAdmin});
  std::string token = GetToken(owner, "sql:read");
  auto introspect = [&](const NewClient& who, const std::string& t) {
    OAuthRequest r;
    r.form = {{"token", t}};
    r.authorization = "Basic " + [&] {
      std::string raw = who.info.client_id + ":" + who.client_secret;
      // tiny base64 for the test
      static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      std::string out;
      int val = 0, bits = -6;
      for (unsigned char ch : raw) {
        val = (val << 8) + ch;
        bits += 8;
        while (bits >= 0) {
          out.push_back(a[(val >> bits) & 63]);
          bits -= 6;
        }
      }
      if (bits > -6) out.push_back(a[((val << 8) >> (bits + 8)) & 63]);
      while (out.size() % 4) out.push_back('=');
      return out;
    }();
    HttpReply reply = svc().IntrospectionEndpoint(r);
    REQUIRE(reply.status == 200);
    return json::parse(reply.body);
  };
  json mine = introspect(owner, token);
  CHECK(mine["active"] == true);
  CHECK(mine["scope"] == "sql:read");
  CHECK(mine["client_id"] == owner.info.client_id);
  CHECK(mine["exp"] == Now() + 900);
  CHECK(introspect(admin, token)["active"] == true);
  CHECK(introspect(other, token) == json{{"active", false}});
  CHECK(introspect(owner, "not-a-token") == json{{"active", false}});
  OAuthRequest anonymous;
  anonymous.form = {{"token", token}};
  HttpReply denied = svc().IntrospectionEndpoint(anonymous);
  CHECK(denied.status == 401);
  CHECK(json::parse(denied.body)["error"] == "invalid_client");
  REQUIRE(svc().RevokeToken(token).ok());
  CHECK(introspect(owner, token) == json{{"active", false}});

  // Database credentials introspect with their binding.
  BearerError e;
  auto caller = svc().Authenticate("Bearer " + GetToken(owner), &e);
  REQUIRE(caller.has_value());
  auto cred = svc().IssueDbCredential(*caller, "p", "b", kIds, DbAccess::kReadWrite, 60, &e);
  REQUIRE(cred.has_value());
  json ci = json::parse(svc().IntrospectToken(cred->token));
  CHECK(ci["active"] == true);
  CHECK(ci["project"] == "p");
  CHECK(ci["branch"] == "b");
  CHECK(ci["access"] == "read_write");
  CHECK(ci["project_id"] == kIds.project_id);
  CHECK(ci["branch_id"] == kIds.branch_id);
  clock().AdvanceSeconds(60);
  CHECK(json::parse(svc().IntrospectToken(cred->token)) == json{{"active", false}});
}

TEST_CASE("scopes: parsing, implication, required scope per operation") {
  auto s = ScopeSet::Parse("sql:write branches:read");
  REQUIRE(s.ok());
  CHECK(s->Covers(Scope::kSqlRead));
  CHECK(s->Covers(Scope::kSqlWrite));
  CHECK(s->Covers(Scope::kBranchesRead));
  CHECK_FALSE(s->Covers(Scope::kBranchesWrite));
  CHECK_FALSE(s->Covers(Scope::kAdmin));
  CHECK(s->ToString() == "branches:read sql:write");
  ScopeSet admin{Scope::kAdmin};
  for (uint32_t bit = 1; bit <= 64; bit <<= 1) CHECK(admin.Covers(static_cast<Scope>(bit)));
  CHECK(admin.CoversAll(ScopeSet::FromBits(ScopeSet::kAllBits)));
  CHECK_FALSE(ScopeSet{Scope::kSqlRead}.CoversAll(ScopeSet{Scope::kSqlWrite}));
  for (const char* bad : {"", " ", "sql:read ", "sql:read  sql:write", "SQL:READ", "x"}) {
    CHECK_FALSE(ScopeSet::Parse(bad).ok());
  }
  CHECK(RequiredScope(Operation::kSqlWrite) == Scope::kSqlWrite);
  CHECK(RequiredScope(Operation::kListProjects) == Scope::kProjectsRead);
  CHECK(RequiredScope(Operation::kCreateBranch) == Scope::kBranchesWrite);
  CHECK(RequiredScope(Operation::kManageClients) == Scope::kAdmin);
  CHECK(IsWriteOperation(Operation::kSqlWrite));
  CHECK_FALSE(IsWriteOperation(Operation::kSqlRead));
  CHECK(OperationName(Operation::kRollbackBranch) == "rollback_branch");
}

TEST_CASE("base64url is strict and round-trips") {
  using internal::Base64UrlDecode;
  using internal::Base64UrlEncode;
  for (size_t n = 0; n < 70; ++n) {
    std::string bytes;
    for (size_t i = 0; i < n; ++i) bytes.push_back(static_cast<char>((i * 37 + n) & 0xff));
    auto round = Base64UrlDecode(Base64UrlEncode(bytes));
    REQUIRE(round.has_value());
    CHECK(*round == bytes);
  }
  CHECK(Base64UrlEncode("\xfb\xff") == "-_8");
  CHECK_FALSE(Base64UrlDecode("-_9").has_value());  // non-zero trailing bits
  CHECK_FALSE(Base64UrlDecode("AAAAA").has_value());  // length % 4 == 1
  CHECK_FALSE(Base64UrlDecode("AA==").has_value());
  CHECK_FALSE(Base64UrlDecode("A+/A").has_value());
  CHECK(internal::Base64StdDecode("Zm9vOmJhcg==") == std::optional<std::string>("foo:bar"));
}

TEST_CASE("secret hashes are salted and verified in constant time") {
  auto h1 = internal::HashSecret("s3cret", 1000);
  auto h2 = internal::HashSecret("s3cret", 1000);
  REQUIRE(h1.ok());
  REQUIRE(h2.ok());
  CHECK(*h1 != *h2);  // different salts
  CHECK(internal::VerifySecret("s3cret", *h1));
  CHECK_FALSE(internal::VerifySecret("s3cret!", *h1));
  CHECK_FALSE(internal::VerifySecret("s3cret", "pbkdf2-sha256$x$y$z"));
  CHECK_FALSE(internal::VerifySecret("s3cret", "plain"));
}

}  // namespace
}  // namespace branchdb::auth::testing
