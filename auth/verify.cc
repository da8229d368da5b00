// Token issuing and verification, authorization, database credentials.
#include <cctype>

#include "auth/internal/service.h"

namespace branchdb::auth::internal {
namespace {

using nlohmann::json;
using Kind = BearerError::Kind;

BearerError Err(Kind kind, std::string description, std::string scope = "") {
  BearerError e;
  e.kind = kind;
  e.description = std::move(description);
  e.scope = std::move(scope);
  return e;
}

// RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
// ASCII ranges, not std::isalnum (a libc call per character of every
// token, 1.7% of a point SELECT's server CPU; the same set in the C locale).
bool IsB64Token(std::string_view t) {
  auto token_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
  };
  size_t i = 0;
  while (i < t.size() && token_char(t[i])) ++i;
  if (i == 0) return false;
  while (i < t.size() && t[i] == '=') ++i;
  return i == t.size();
}

}  // namespace

Result<std::string> AuthServiceImpl::SignToken(std::string_view typ,
                                               const std::string& client_id, json claims,
                                               int64_t now, int64_t lifetime, std::string* jti) {
  std::shared_ptr<const Ed25519Key> key;
  std::string kid;
  {
    MutexLock lock(mu_);
    if (keys_.empty()) return Status::FailedPrecondition("no signing key");
    key = keys_.back().key;
    kid = keys_.back().kid;
  }
  auto jti_bytes = RandomBytes(16);
  if (!jti_bytes.ok()) return jti_bytes.status();
  *jti = Base64UrlEncode(*jti_bytes);
  json header = {{"alg", "EdDSA"}, {"typ", std::string(typ)}, {"kid", kid}};
  // sub is the client itself (RFC 9068 §2.2 for client credentials).
  claims["iss"] = options_.issuer;
  claims["sub"] = client_id;
  claims["client_id"] = client_id;
  claims["aud"] = options_.audience;
  claims["iat"] = now;
  claims["exp"] = now + lifetime;
  claims["jti"] = *jti;
  return SignJwt(header, claims, *key);
}

Result<VerifiedJwt> AuthServiceImpl::VerifySignatureOnly(std::string_view token, int64_t now,
                                                        bool* lasting_failure) {
  JwtPolicy policy;
  policy.accepted_typs = {std::string(kAccessTokenTyp), std::string(kDbCredentialTyp)};
  policy.issuer = options_.issuer;
  policy.audience = options_.audience;
  policy.now = now;
  // Our own tokens against our own clock: no leeway (options_.leeway_seconds is
  // for other parties' clocks, see AuthOptions).
  policy.leeway = 0;
  policy.max_lifetime = kMaxTokenLifetimeSeconds;
  policy.max_bytes = options_.max_token_bytes;
  auto lookup = [this, now](std::string_view kid) {
    MutexLock lock(mu_);
    for (const auto& k : keys_) {
      if (k.kid == kid && KeyUsable(k, now)) {
        signature_checks_.fetch_add(1, std::memory_order_relaxed);
        return k.key;
      }
    }
    return std::shared_ptr<const Ed25519Key>();
  };
  return VerifyJwt(token, policy, lookup, lasting_failure);
}

namespace {

// The facts of a token whose signature and standard claims verified: its
// scopes (access token) or binding (database credential). nullopt with
// *error when the claims of its kind are missing or malformed.
std::optional<TokenFacts> FactsOf(const VerifiedJwt& v, BearerError* error) {
  TokenFacts f;
  f.kid = v.kid;
  f.nbf = v.nbf;
  Principal& p = f.claimed;
  p.client_id = v.client_id;
  p.jti = v.jti;
  p.issued_at = v.iat;
  p.expires_at = v.exp;
  const json& claims = v.claims;
  if (v.typ == kAccessTokenTyp) {
    p.kind = Principal::Kind::kAccessToken;
    auto scope = claims.find("scope");
    if (scope == claims.end() || !scope->is_string()) {
      *error = Err(Kind::kInvalidToken, "missing scope");
      return std::nullopt;
    }
    auto scopes = ScopeSet::Parse(scope->get<std::string>());
    if (!scopes.ok()) {
      *error = Err(Kind::kInvalidToken, "malformed scope");
      return std::nullopt;
    }
    p.scopes = *scopes;
    return f;
  }
  p.kind = Principal::Kind::kDbCredential;
  auto str = [&](const char* name, std::string* out) {
    auto it = claims.find(name);
    if (it == claims.end() || !it->is_string()) return false;
    *out = it->get<std::string>();
    return !out->empty();
  };
  std::string access;
  if (!str("project", &p.project) || !str("branch", &p.branch) ||
      !str("project_id", &p.project_id) || !str("branch_id", &p.branch_id) ||
      !str("access", &access) || (access != "read" && access != "read_write")) {
    *error = Err(Kind::kInvalidToken, "malformed database credential");
    return std::nullopt;
  }
  p.read_write = access == "read_write";
  return f;
}

// The time checks of VerifyJwt, for a cached token: nullopt while valid.
std::optional<std::string> TimeFailure(const TokenFacts& f, int64_t now) {
  if (now >= f.claimed.expires_at) return "token expired";
  if (f.claimed.issued_at > now) return "token issued in the future";
  if (f.nbf > now) return "token not yet valid";
  return std::nullopt;
}

std::shared_ptr<const TokenVerdict> Rejection(std::string description) {
  auto r = std::make_shared<TokenVerdict>();
  r->rejection = std::move(description);
  return r;
}

}  // namespace

std::shared_ptr<const TokenVerdict> AuthServiceImpl::Facts(std::string_view token, int64_t now,
                                                           BearerError* error) {
  // Oversized tokens are refused before they are hashed.
  const bool cached = verified_.enabled() && token.size() <= options_.max_token_bytes;
  TokenCache::Key key{};
  if (cached) {
    key = TokenCache::KeyOf(token);
    if (auto hit = verified_.Lookup(key)) {
      auto late = TimeFailure(hit->facts, now);
      if (!late) return hit;
      *error = Err(Kind::kInvalidToken, *late);
      // An entry never outlives its token; an expired token stays refused cheaply.
      if (now >= hit->facts.claimed.expires_at) {
        verified_.Erase(key);
        rejected_.Insert(key, Rejection(*late));
      }
      return nullptr;
    }
    if (auto hit = rejected_.Lookup(key)) {
      *error = Err(Kind::kInvalidToken, hit->rejection);
      return nullptr;
    }
  }
  bool lasting = false;
  auto v = VerifySignatureOnly(token, now, &lasting);
  std::optional<TokenFacts> facts;
  if (v.ok()) {
    facts = FactsOf(*v, error);
    lasting = !facts.has_value();  // malformed claims of its kind: for good
  } else {
    *error = Err(Kind::kInvalidToken, v.status().message());
  }
  if (!facts) {
    if (cached && lasting) rejected_.Insert(key, Rejection(error->description));
    return nullptr;
  }
  auto verdict = std::make_shared<TokenVerdict>();
  verdict->facts = std::move(*facts);
  if (cached) verified_.Insert(key, verdict);
  return verdict;
}

std::optional<Principal> AuthServiceImpl::Admit(const TokenFacts& facts, int64_t now,
                                                BearerError* error) {
  Principal p = facts.claimed;
  MutexLock lock(mu_);
  bool key_usable = false;
  for (const auto& k : keys_) key_usable |= k.kid == facts.kid && KeyUsable(k, now);
  if (!key_usable) {
    *error = Err(Kind::kInvalidToken, "unknown signing key");
    return std::nullopt;
  }
  if (revoked_.count(p.jti) != 0) {
    *error = Err(Kind::kInvalidToken, "token revoked");
    return std::nullopt;
  }
  auto it = clients_.find(p.client_id);
  if (it == clients_.end() || !it->second.info.enabled) {
    *error = Err(Kind::kInvalidToken, "client unknown or disabled");
    return std::nullopt;
  }
  const ClientInfo& client = it->second.info;
  if (p.kind == Principal::Kind::kAccessToken) {
    // Scopes removed from the client since issuing stop working at once.
    ScopeSet effective;
    for (uint32_t bit = 1; bit <= ScopeSet::kAllBits; bit <<= 1) {
      Scope s = static_cast<Scope>(bit);
      if (p.scopes.Has(s) && client.scopes.Covers(s)) effective.Add(s);
    }
    if (effective.empty()) {
      *error = Err(Kind::kInvalidToken, "client no longer holds the token's scopes");
      return std::nullopt;
    }
    p.scopes = effective;
    p.projects = client.projects;
  } else if (!client.MayAccessProject(p.project) ||
             !AnyBranchPatternMatches(client.branches, p.branch) ||
             !client.scopes.Covers(p.read_write ? Scope::kSqlWrite : Scope::kSqlRead)) {
    *error = Err(Kind::kInvalidToken, "client no longer holds this credential's rights");
    return std::nullopt;
  }
  p.branches = client.branches;
  p.max_branch_ttl_seconds = client.max_branch_ttl_seconds;
  return p;
}

std::optional<Principal> AuthServiceImpl::VerifyInternal(std::string_view token,
                                                         BearerError* error) {
  const int64_t now = NowSeconds();
  auto verdict = Facts(token, now, error);
  if (verdict == nullptr) return std::nullopt;
  return Admit(verdict->facts, now, error);
}

std::optional<Principal> AuthServiceImpl::VerifyToken(std::string_view token, BearerError* error) {
  BearerError local;
  return VerifyInternal(token, error != nullptr ? error : &local);
}

std::optional<Principal> AuthServiceImpl::Authenticate(std::string_view header,
                                                       BearerError* error) {
  BearerError local;
  if (error == nullptr) error = &local;
  if (header.empty()) {
    *error = Err(Kind::kNoToken, "");
    return std::nullopt;
  }
  if (header.size() > options_.max_token_bytes + 64) {
    *error = Err(Kind::kInvalidToken, "token too large");
    return std::nullopt;
  }
  size_t sp = header.find(' ');
  std::string scheme(header.substr(0, sp));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer") {
    *error = Err(Kind::kNoToken, "");
    return std::nullopt;
  }
  std::string_view token = sp == std::string_view::npos ? std::string_view() : header.substr(sp + 1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (!IsB64Token(token)) {
    *error = Err(Kind::kInvalidRequest, "malformed Authorization header");
    return std::nullopt;
  }
  return VerifyInternal(token, error);
}

std::optional<BearerError> AuthServiceImpl::Authorize(const Principal& p, Operation op,
                                                      std::string_view project,
                                                      std::string_view branch) {
  const Scope required = RequiredScope(op);
  const std::string scope_name(ScopeName(required));
  if (p.kind == Principal::Kind::kDbCredential) {
    // Only SQL: not export (the whole file, free pages included), not schema
    // or checkpoints, not minting other credentials.
    if (op != Operation::kSqlRead && op != Operation::kSqlWrite) {
      return Err(Kind::kInsufficientScope,
                 "a database credential authorizes only SQL on its branch", scope_name);
    }
    if (project != p.project || branch != p.branch) {
      return Err(Kind::kInsufficientScope, "credential is for another project or branch",
                 scope_name);
    }
    if (op == Operation::kSqlWrite && !p.read_write) {
      return Err(Kind::kInsufficientScope, "credential is read-only", scope_name);
    }
    return std::nullopt;
  }
  if (!p.scopes.Covers(required)) {
    return Err(Kind::kInsufficientScope,
               "operation " + std::string(OperationName(op)) + " requires scope " + scope_name,
               scope_name);
  }
  if (!p.projects.empty()) {
    // A project-restricted client acts only on its projects: what is about no
    // project (creating an unnamed project, managing clients, keys, other
    // clients' tokens) is outside its list. Listing projects is filtered instead.
    if (project.empty() && op != Operation::kListProjects) {
      return Err(Kind::kInsufficientScope,
                 "a client restricted to projects may not " + std::string(OperationName(op)),
                 scope_name);
    }
    bool allowed = project.empty();
    for (const auto& pr : p.projects) allowed |= pr == project;
    if (!allowed) {
      return Err(Kind::kInsufficientScope, "client may not access this project", scope_name);
    }
  }
  if (!p.branches.empty()) {
    std::string patterns;
    for (const auto& b : p.branches) patterns += (patterns.empty() ? "" : ", ") + b;
    auto refuse = [&](std::string description) {
      BearerError e = Err(Kind::kInsufficientScope, std::move(description), scope_name);
      e.api_code = "branch_not_allowed";
      e.branch_patterns = p.branches;
      return e;
    };
    // A whole project (and what is about none) reaches branches outside the
    // patterns: creating, changing or deleting one, managing clients or keys.
    if (op == Operation::kCreateProject || op == Operation::kUpdateProject ||
        op == Operation::kDeleteProject || op == Operation::kManageClients ||
        op == Operation::kRotateKeys || op == Operation::kIntrospectAnyToken ||
        op == Operation::kReadCluster) {
      return refuse("a client limited to the branches " + patterns + " may not " +
                    std::string(OperationName(op)));
    }
    if (!branch.empty() && !AnyBranchPatternMatches(p.branches, branch)) {
      return refuse("branch '" + std::string(branch) + "' is outside this client's branches (" +
                    patterns + ")");
    }
  }
  return std::nullopt;
}

std::optional<BearerError> AuthServiceImpl::Check(std::string_view header,
                                                  std::string_view project,
                                                  std::string_view branch, Operation op,
                                                  Principal* out) {
  BearerError error;
  auto p = Authenticate(header, &error);
  if (!p) return error;
  if (auto denied = Authorize(*p, op, project, branch)) return denied;
  if (out != nullptr) *out = std::move(*p);
  return std::nullopt;
}

std::optional<DbCredential> AuthServiceImpl::IssueDbCredential(
    const Principal& caller, std::string_view project, std::string_view branch,
    const BranchIdentity& identity, DbAccess access, int64_t lifetime_seconds,
    BearerError* error) {
  BearerError local;
  if (error == nullptr) error = &local;
  const Operation op = access == DbAccess::kReadWrite ? Operation::kIssueReadWriteCredential
                                                      : Operation::kIssueReadCredential;
  if (caller.kind != Principal::Kind::kAccessToken) {
    *error = Err(Kind::kInsufficientScope, "a database credential cannot issue credentials",
                 std::string(ScopeName(RequiredScope(op))));
    return std::nullopt;
  }
  if (project.empty() || branch.empty() || identity.project_id.empty() ||
      identity.branch_id.empty()) {
    *error = Err(Kind::kInvalidRequest, "project and branch (names and ids) are required");
    return std::nullopt;
  }
  if (lifetime_seconds == 0) lifetime_seconds = 900;
  if (lifetime_seconds < 60 || lifetime_seconds > kMaxTokenLifetimeSeconds) {
    *error = Err(Kind::kInvalidRequest, "credential lifetime must be within [60, 3600] s");
    return std::nullopt;
  }
  if (auto denied = Authorize(caller, op, project, branch)) {
    *error = *denied;
    return std::nullopt;
  }
  DbCredential cred;
  cred.project = std::string(project);
  cred.branch = std::string(branch);
  cred.access = access;
  cred.expires_in = lifetime_seconds;
  int64_t now = NowSeconds();
  cred.expires_at = now + lifetime_seconds;
  json claims = {{"project", cred.project},
                 {"branch", cred.branch},
                 {"project_id", identity.project_id},
                 {"branch_id", identity.branch_id},
                 {"access", access == DbAccess::kReadWrite ? "read_write" : "read"}};
  std::string jti;
  auto token = SignToken(kDbCredentialTyp, caller.client_id, std::move(claims), now, lifetime_seconds, &jti);
  if (!token.ok()) {
    *error = Err(Kind::kInvalidRequest, "cannot sign credential");
    return std::nullopt;
  }
  cred.token = std::move(*token);
  return cred;
}

Status AuthServiceImpl::RevokeToken(std::string_view token) {
  BearerError ignored;
  auto verdict = Facts(token, NowSeconds(), &ignored);
  if (verdict == nullptr) return Status::OK();
  // Cached or not, every use checks revoked_ (Admit): nothing to invalidate.
  const Principal& p = verdict->facts.claimed;
  return Revoke(p.jti, p.expires_at);
}

json AuthServiceImpl::IntrospectionJson(const Principal& p) const {
  json out = {{"active", true},
              {"client_id", p.client_id},
              {"sub", p.client_id},
              {"iss", options_.issuer},
              {"aud", options_.audience},
              {"iat", p.issued_at},
              {"exp", p.expires_at},
              {"jti", p.jti},
              {"token_type", "Bearer"}};
  if (p.kind == Principal::Kind::kAccessToken) {
    out["scope"] = p.scopes.ToString();
    out["typ"] = std::string(kAccessTokenTyp);
  } else {
    out["typ"] = std::string(kDbCredentialTyp);
    out["project"] = p.project;
    out["branch"] = p.branch;
    out["project_id"] = p.project_id;
    out["branch_id"] = p.branch_id;
    out["access"] = p.read_write ? "read_write" : "read";
  }
  return out;
}

std::string AuthServiceImpl::IntrospectToken(std::string_view token) {
  BearerError error;
  auto p = VerifyInternal(token, &error);
  if (!p) return json{{"active", false}}.dump();
  return IntrospectionJson(*p).dump();
}

AuthStats AuthServiceImpl::Stats() {
  AuthStats s;
  s.signature_checks = signature_checks_.load(std::memory_order_relaxed);
  // A rejected hit follows a miss of verified_: read rejected_ first, so that
  // every hit counted there has its miss counted here.
  TokenCache::Counts rejected = rejected_.counts();
  TokenCache::Counts verified = verified_.counts();
  s.cache_hits = verified.hits;
  s.cache_misses = verified.misses - rejected.hits;
  s.rejected_hits = rejected.hits;
  s.cache_entries = verified.entries + rejected.entries;
  return s;
}

}  // namespace branchdb::auth::internal

namespace branchdb::auth {

std::optional<BearerError> CheckCredentialBinding(const Principal& principal,
                                                  const BranchIdentity& current) {
  if (principal.kind != Principal::Kind::kDbCredential) return std::nullopt;
  if (principal.project_id == current.project_id && principal.branch_id == current.branch_id) {
    return std::nullopt;
  }
  BearerError e;
  e.kind = BearerError::Kind::kInvalidToken;
  e.description =
      "the credential's branch was deleted, re-created or renamed (the name now denotes another "
      "branch or none): ask for a new credential";
  return e;
}

}  // namespace branchdb::auth
