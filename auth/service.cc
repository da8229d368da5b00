// AuthService: options, state, persistence, clients and signing keys.
#include <algorithm>

#include "auth/internal/service.h"
#include "base/sha256.h"

namespace branchdb::auth {

using nlohmann::json;

Result<std::unique_ptr<AuthService>> AuthService::Open(Env* env, AuthOptions options) {
  if (env == nullptr) return Status::InvalidArgument("auth: env is null");
  if (options.data_dir.empty()) return Status::InvalidArgument("auth: data_dir is required");
  if (options.access_token_lifetime_seconds < 60 ||
      options.access_token_lifetime_seconds > internal::kMaxTokenLifetimeSeconds) {
    return Status::InvalidArgument("auth: access token lifetime must be within [60, 3600] s");
  }
  if (options.leeway_seconds < 0 || options.leeway_seconds > 300) {
    return Status::InvalidArgument("auth: leeway must be within [0, 300] s");
  }
  if (options.issuer.empty() || options.audience.empty()) {
    return Status::InvalidArgument("auth: issuer and audience must not be empty");
  }
  if (options.key_rotation_seconds < 0 || options.key_rotation_seconds > 10LL * 365 * 86400 ||
      options.rate_limit_window_seconds > 86400) {
    return Status::InvalidArgument("auth: key rotation or rate-limit window out of range");
  }
  if (options.max_token_bytes < 256) return Status::InvalidArgument("auth: max_token_bytes < 256");
  if (options.pbkdf2_iterations < 1) return Status::InvalidArgument("auth: pbkdf2_iterations < 1");
  if (options.token_cache_entries > (size_t{1} << 22)) {
    return Status::InvalidArgument("auth: token_cache_entries beyond 4194304");
  }
  if (options.rate_limit_failures < 1 || options.rate_limit_window_seconds < 1) {
    return Status::InvalidArgument("auth: rate limit failures and window must be >= 1");
  }
  auto impl = std::make_unique<internal::AuthServiceImpl>(env, std::move(options));
  BRANCHDB_RETURN_IF_ERROR(impl->Load());
  return std::unique_ptr<AuthService>(std::move(impl));
}

namespace internal {
namespace {

constexpr char kClientsFile[] = "clients.json";
constexpr char kKeysFile[] = "keys.json";
constexpr char kRevokedFile[] = "revoked.json";
constexpr char kKeysDir[] = "keys";


// Reads path as a JSON object; nullopt (OK) when the file does not exist.
Result<std::optional<json>> ReadJsonFile(Env* env, const std::string& path) {
  if (!env->FileExists(path)) return std::optional<json>();
  auto text = env->ReadFileToString(path);
  if (!text.ok()) return text.status();
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("auth: unreadable " + path);
  return std::optional<json>(std::move(j));
}

}  // namespace

AuthServiceImpl::AuthServiceImpl(Env* env, AuthOptions options)
    : env_(env),
      options_(std::move(options)),
      verified_(options_.token_cache_entries),
      rejected_(options_.token_cache_entries / 8) {}

int64_t AuthServiceImpl::NowSeconds() const {
  int64_t micros = env_->GetClock()->NowMicros();
  return micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
}

std::string AuthServiceImpl::AuthDir() const { return JoinPath(options_.data_dir, "auth"); }

Status AuthServiceImpl::WritePrivateFile(const std::string& path, std::string_view contents) {
  return env_->WriteFileAtomic(path, contents, 0600);
}

Status AuthServiceImpl::Load() {
  MutexLock writer(write_mu_);
  BRANCHDB_RETURN_IF_ERROR(env_->CreateDirs(JoinPath(AuthDir(), kKeysDir)));
  return ReadAll(/*rotate_if_no_key=*/true);
}

Status AuthServiceImpl::Reload() {
  MutexLock writer(write_mu_);
  return ReadAll(/*rotate_if_no_key=*/false);
}

// Nothing is published unless all three files read well: a failed reload
// keeps the state as it was.
Status AuthServiceImpl::ReadAll(bool rotate_if_no_key) {
  ClientMap clients;
  std::vector<SigningKey> keys;
  RevokedMap revoked;
  BRANCHDB_RETURN_IF_ERROR(ReadClients(&clients));
  BRANCHDB_RETURN_IF_ERROR(ReadKeys(&keys));
  BRANCHDB_RETURN_IF_ERROR(ReadRevoked(&revoked));
  if (keys.empty()) {
    if (!rotate_if_no_key) return Status::Corruption("auth: no signing key after reload");
    BRANCHDB_RETURN_IF_ERROR(AddKey(NowSeconds(), &keys));
    BRANCHDB_RETURN_IF_ERROR(WriteKeys(keys));
  }
  MutexLock lock(mu_);
  clients_ = std::move(clients);
  keys_ = std::move(keys);
  revoked_ = std::move(revoked);
  return Status::OK();
}

// --- clients ---------------------------------------------------------------

namespace {
// A client's quotas in clients.json: {"max_branches":5,...}, set ones only.
// Files written before quotas existed have none: no quotas.
json SavedClientQuotas(const Quotas& q) {
  json out = json::object();
  for (const QuotaField& f : kQuotaFields) {
    if (q.*f.member) out[f.name] = *(q.*f.member);
  }
  return out;
}

bool LoadClientQuotas(const json& client, Quotas* q) {
  auto it = client.find("quotas");
  if (it == client.end()) return true;
  if (!it->is_object()) return false;
  for (const QuotaField& f : kQuotaFields) {
    auto v = it->find(f.name);
    if (v == it->end()) continue;
    if (!v->is_number_integer()) return false;
    q->*f.member = v->get<int64_t>();
  }
  return true;
}
}  // namespace

Status AuthServiceImpl::ReadClients(ClientMap* out) {
  const std::string path = JoinPath(AuthDir(), kClientsFile);
  auto j = ReadJsonFile(env_, path);
  if (!j.ok()) return j.status();
  if (!j->has_value()) return Status::OK();
  const json& root = **j;
  auto bad = [&] { return Status::Corruption("auth: malformed " + path); };
  if (!root.contains("clients") || !root["clients"].is_array()) return bad();
  for (const json& c : root["clients"]) {
    if (!c.is_object()) return bad();
    ClientRecord rec;
    auto str = [&](const char* name, std::string* out) {
      auto it = c.find(name);
      if (it == c.end() || !it->is_string()) return false;
      *out = it->get<std::string>();
      return true;
    };
    std::string scopes;
    if (!str("client_id", &rec.info.client_id) || !str("name", &rec.info.name) ||
        !str("secret_hash", &rec.secret_hash) || !str("scopes", &scopes)) {
      return bad();
    }
    auto parsed = ScopeSet::Parse(scopes);
    if (!parsed.ok()) return bad();
    rec.info.scopes = *parsed;
    auto en = c.find("enabled");
    auto created = c.find("created_at");
    auto projects = c.find("projects");
    if (en == c.end() || !en->is_boolean() || created == c.end() ||
        !created->is_number_integer() || projects == c.end() || !projects->is_array()) {
      return bad();
    }
    rec.info.enabled = en->get<bool>();
    rec.info.created_at = created->get<int64_t>();
    for (const json& p : *projects) {
      if (!p.is_string()) return bad();
      rec.info.projects.push_back(p.get<std::string>());
    }
    // Absent in files written before branch patterns existed: all branches.
    if (auto branches = c.find("branches"); branches != c.end()) {
      if (!branches->is_array()) return bad();
      for (const json& b : *branches) {
        if (!b.is_string() || !ValidateBranchPattern(b.get<std::string>()).ok()) return bad();
        rec.info.branches.push_back(b.get<std::string>());
      }
    }
    if (auto ttl = c.find("max_branch_ttl_seconds"); ttl != c.end()) {
      if (!ttl->is_number_integer() || ttl->get<int64_t>() < 0) return bad();
      rec.info.max_branch_ttl_seconds = ttl->get<int64_t>();
    }
    if (!LoadClientQuotas(c, &rec.info.quotas)) return bad();
    (*out)[rec.info.client_id] = std::move(rec);
  }
  return Status::OK();
}

Status AuthServiceImpl::WriteClients(const ClientMap& clients) {
  json arr = json::array();
  for (const auto& [id, rec] : clients) {
    arr.push_back({{"client_id", id},
                   {"name", rec.info.name},
                   {"secret_hash", rec.secret_hash},
                   {"scopes", rec.info.scopes.ToString()},
                   {"projects", rec.info.projects},
                   {"branches", rec.info.branches},
                   {"max_branch_ttl_seconds", rec.info.max_branch_ttl_seconds},
                   {"quotas", SavedClientQuotas(rec.info.quotas)},
                   {"enabled", rec.info.enabled},
                   {"created_at", rec.info.created_at}});
  }
  json root = {{"version", 1}, {"clients", arr}};
  return WritePrivateFile(JoinPath(AuthDir(), kClientsFile), root.dump(2) + "\n");
}

Result<NewClient> AuthServiceImpl::CreateClient(const ClientSpec& spec) {
  if (spec.scopes.empty()) return Status::InvalidArgument("a client needs at least one scope");
  for (const auto& p : spec.projects) {
    if (p.empty()) return Status::InvalidArgument("empty project name in client's project list");
  }
  if (spec.branches.size() > kMaxBranchPatterns) {
    return Status::InvalidArgument("branches: at most " + std::to_string(kMaxBranchPatterns) +
                                       " patterns",
                                   "invalid_branch_pattern");
  }
  for (const auto& b : spec.branches) BRANCHDB_RETURN_IF_ERROR(ValidateBranchPattern(b));
  if (spec.max_branch_ttl_seconds != 0 &&
      (spec.max_branch_ttl_seconds < kMinBranchTtlSeconds ||
       spec.max_branch_ttl_seconds > kMaxBranchTtlSeconds)) {
    return Status::InvalidArgument(
        "max_branch_ttl_seconds: expected " + std::to_string(kMinBranchTtlSeconds) + " to " +
            std::to_string(kMaxBranchTtlSeconds) + " (1 year)",
        "invalid_argument");
  }
  for (const QuotaField& f : kQuotaFields) {
    const auto& v = spec.quotas.*f.member;
    if (v && (*v < 0 || *v > kMaxQuotaValue)) {
      return Status::InvalidArgument(std::string("quotas.") + f.name + ": expected 0.." +
                                         std::to_string(kMaxQuotaValue),
                                     "invalid_argument");
    }
  }
  auto id_bytes = internal::RandomBytes(10);
  auto secret_bytes = internal::RandomBytes(32);
  if (!id_bytes.ok()) return id_bytes.status();
  if (!secret_bytes.ok()) return secret_bytes.status();
  NewClient out;
  out.client_secret = "bdbs_" + Base64UrlEncode(*secret_bytes);
  auto hash = HashSecret(out.client_secret, options_.pbkdf2_iterations);
  if (!hash.ok()) return hash.status();
  out.info.client_id = "bdb_" + HexLower(*id_bytes);
  out.info.name = spec.name;
  out.info.scopes = spec.scopes;
  out.info.projects = spec.projects;
  out.info.branches = spec.branches;
  out.info.max_branch_ttl_seconds = spec.max_branch_ttl_seconds;
  out.info.quotas = spec.quotas;
  out.info.enabled = true;
  out.info.created_at = NowSeconds();

  BRANCHDB_RETURN_IF_ERROR(ChangeClients([&](ClientMap* clients) {
    if (clients->count(out.info.client_id) != 0) {
      return Status::Unavailable("client id collision; retry");
    }
    (*clients)[out.info.client_id] = ClientRecord{out.info, *hash};
    return Status::OK();
  }));
  return out;
}

Status AuthServiceImpl::ChangeClients(const std::function<Status(ClientMap*)>& change) {
  MutexLock writer(write_mu_);
  ClientMap next;
  {
    MutexLock lock(mu_);
    next = clients_;
  }
  BRANCHDB_RETURN_IF_ERROR(change(&next));
  BRANCHDB_RETURN_IF_ERROR(WriteClients(next));
  MutexLock lock(mu_);
  clients_ = std::move(next);
  return Status::OK();
}

std::vector<ClientInfo> AuthServiceImpl::ListClients() {
  MutexLock lock(mu_);
  std::vector<ClientInfo> out;
  for (const auto& [id, rec] : clients_) out.push_back(rec.info);
  return out;
}

Result<ClientInfo> AuthServiceImpl::GetClient(std::string_view client_id) {
  MutexLock lock(mu_);
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return Status::NotFound("no such client", "client_not_found");
  return it->second.info;
}

Status AuthServiceImpl::SetClientEnabled(std::string_view client_id, bool enabled) {
  return ChangeClients([&](ClientMap* clients) {
    auto it = clients->find(client_id);
    if (it == clients->end()) return Status::NotFound("no such client", "client_not_found");
    it->second.info.enabled = enabled;
    return Status::OK();
  });
}

Status AuthServiceImpl::DeleteClient(std::string_view client_id) {
  return ChangeClients([&](ClientMap* clients) {
    auto it = clients->find(client_id);
    if (it == clients->end()) return Status::NotFound("no such client", "client_not_found");
    clients->erase(it);
    return Status::OK();
  });
}

Result<EnsureAdminResult> AuthServiceImpl::EnsureAdminClient(std::string_view token_url) {
  EnsureAdminResult result;
  result.path = JoinPath(options_.data_dir, "admin-credentials.json");
  {
    MutexLock lock(mu_);
    if (!clients_.empty()) return result;
  }
  // The credentials file is written before the registry, so that a crash in
  // between leaves an empty registry (and the next start writes a fresh file)
  // rather than an admin client nobody knows the secret of.
  auto id_bytes = internal::RandomBytes(10);
  auto secret_bytes = internal::RandomBytes(32);
  if (!id_bytes.ok()) return id_bytes.status();
  if (!secret_bytes.ok()) return secret_bytes.status();
  ClientRecord rec;
  std::string secret = "bdbs_" + Base64UrlEncode(*secret_bytes);
  auto hash = HashSecret(secret, options_.pbkdf2_iterations);
  if (!hash.ok()) return hash.status();
  rec.secret_hash = *hash;
  rec.info.client_id = "bdb_" + HexLower(*id_bytes);
  rec.info.name = "admin";
  rec.info.scopes = ScopeSet{Scope::kAdmin};
  rec.info.enabled = true;
  rec.info.created_at = NowSeconds();

  MutexLock writer(write_mu_);
  {
    MutexLock lock(mu_);
    if (!clients_.empty()) return result;  // raced with another caller
  }
  json creds = {{"client_id", rec.info.client_id},
                {"client_secret", secret},
                {"token_url", std::string(token_url)}};
  BRANCHDB_RETURN_IF_ERROR(WritePrivateFile(result.path, creds.dump(2) + "\n"));
  ClientMap clients{{rec.info.client_id, rec}};
  BRANCHDB_RETURN_IF_ERROR(WriteClients(clients));
  {
    MutexLock lock(mu_);
    clients_ = std::move(clients);
  }
  result.created = true;
  result.client_id = rec.info.client_id;
  return result;
}

// --- keys ------------------------------------------------------------------

Status AuthServiceImpl::ReadKeys(std::vector<SigningKey>* out) {
  const std::string path = JoinPath(AuthDir(), kKeysFile);
  auto j = ReadJsonFile(env_, path);
  if (!j.ok()) return j.status();
  if (!j->has_value()) return Status::OK();
  const json& root = **j;
  auto bad = [&] { return Status::Corruption("auth: malformed " + path); };
  if (!root.contains("keys") || !root["keys"].is_array()) return bad();
  for (const json& k : root["keys"]) {
    if (!k.is_object() || !k.contains("kid") || !k["kid"].is_string() ||
        !k.contains("created_at") || !k["created_at"].is_number_integer() ||
        !k.contains("retired_at") || !k["retired_at"].is_number_integer()) {
      return bad();
    }
    SigningKey sk;
    sk.kid = k["kid"].get<std::string>();
    sk.created_at = k["created_at"].get<int64_t>();
    sk.retired_at = k["retired_at"].get<int64_t>();
    if (sk.kid.empty() || sk.kid.find('/') != std::string::npos || sk.kid[0] == '.') return bad();
    if (sk.retired_at < 0 || sk.retired_at > (int64_t{1} << 40) || sk.created_at < 0 ||
        sk.created_at > (int64_t{1} << 40)) {
      return bad();
    }
    auto pem = env_->ReadFileToString(JoinPath(JoinPath(AuthDir(), kKeysDir), sk.kid + ".pem"));
    if (!pem.ok()) return pem.status();
    auto key = Ed25519Key::FromPrivatePem(*pem);
    if (!key.ok()) return key.status();
    if ((*key)->Thumbprint() != sk.kid) return Status::Corruption("auth: key does not match kid");
    sk.key = std::shared_ptr<const Ed25519Key>(std::move(*key));
    out->push_back(std::move(sk));
  }
  if (!out->empty() && out->back().retired_at != 0) {
    return Status::Corruption("auth: the last key in keys.json is retired");
  }
  // Key files keys.json does not name are leftovers of a rotation or prune that
  // crashed midway (the PEM is written before keys.json, deleted after): remove.
  // Not when shared: another process may be between the two writes.
  if (options_.shared_state) return Status::OK();
  const std::string keys_dir = JoinPath(AuthDir(), kKeysDir);
  auto children = env_->GetChildren(keys_dir);
  if (!children.ok()) return children.status();
  for (const auto& name : *children) {
    bool known = false;
    for (const auto& k : *out) known |= name == k.kid + ".pem";
    if (!known) BRANCHDB_RETURN_IF_ERROR(env_->DeleteFile(JoinPath(keys_dir, name)));
  }
  return Status::OK();
}

Status AuthServiceImpl::WriteKeys(const std::vector<SigningKey>& keys) {
  json arr = json::array();
  for (const auto& k : keys) {
    arr.push_back({{"kid", k.kid}, {"created_at", k.created_at}, {"retired_at", k.retired_at}});
  }
  json root = {{"version", 1}, {"keys", arr}};
  return WritePrivateFile(JoinPath(AuthDir(), kKeysFile), root.dump(2) + "\n");
}

Status AuthServiceImpl::AddKey(int64_t now, std::vector<SigningKey>* keys) {
  auto key = Ed25519Key::Generate();
  if (!key.ok()) return key.status();
  auto pem = (*key)->PrivatePem();
  if (!pem.ok()) return pem.status();
  SigningKey sk;
  sk.kid = (*key)->Thumbprint();
  sk.created_at = now;
  sk.key = std::shared_ptr<const Ed25519Key>(std::move(*key));
  BRANCHDB_RETURN_IF_ERROR(
      WritePrivateFile(JoinPath(JoinPath(AuthDir(), kKeysDir), sk.kid + ".pem"), *pem));
  if (!keys->empty()) keys->back().retired_at = now;
  keys->push_back(std::move(sk));
  return Status::OK();
}

bool AuthServiceImpl::KeyUsable(const SigningKey& k, int64_t now) const {
  // A retired key signed its last token at retired_at; that token expires at
  // most kMaxTokenLifetimeSeconds later, and is accepted for leeway more.
  return k.retired_at == 0 ||
         now < k.retired_at + kMaxTokenLifetimeSeconds + options_.leeway_seconds;
}

Status AuthServiceImpl::Prune(int64_t now) {
  std::vector<SigningKey> keep, drop;
  RevokedMap revoked;
  {
    MutexLock lock(mu_);
    for (const auto& k : keys_) (KeyUsable(k, now) ? keep : drop).push_back(k);
    revoked = revoked_;
    for (auto it = failures_.begin(); it != failures_.end();) {
      it = (now >= it->second.start + options_.rate_limit_window_seconds) ? failures_.erase(it)
                                                                           : std::next(it);
    }
  }
  if (!drop.empty()) {
    BRANCHDB_RETURN_IF_ERROR(WriteKeys(keep));
    {
      MutexLock lock(mu_);
      keys_ = std::move(keep);
    }
    for (const auto& k : drop) {
      Status del = env_->DeleteFile(JoinPath(JoinPath(AuthDir(), kKeysDir), k.kid + ".pem"));
      if (!del.ok() && !del.IsNotFound()) return del;
    }
  }
  const size_t revoked_before = revoked.size();
  for (auto it = revoked.begin(); it != revoked.end();) {
    it = (it->second + options_.leeway_seconds < now) ? revoked.erase(it) : std::next(it);
  }
  if (revoked.size() == revoked_before) return Status::OK();
  BRANCHDB_RETURN_IF_ERROR(WriteRevoked(revoked));
  MutexLock lock(mu_);
  revoked_ = std::move(revoked);
  return Status::OK();
}

// A rotation: the new key (its PEM, then keys.json) is written before it
// signs anything; then what expired is pruned.
Status AuthServiceImpl::Rotate(int64_t now) {
  std::vector<SigningKey> keys;
  {
    MutexLock lock(mu_);
    keys = keys_;
  }
  BRANCHDB_RETURN_IF_ERROR(AddKey(now, &keys));
  BRANCHDB_RETURN_IF_ERROR(WriteKeys(keys));
  {
    MutexLock lock(mu_);
    keys_ = std::move(keys);
  }
  return Prune(now);
}

Status AuthServiceImpl::RotateSigningKey() {
  MutexLock writer(write_mu_);
  return Rotate(NowSeconds());
}

std::string AuthServiceImpl::CurrentKeyId() {
  MutexLock lock(mu_);
  return keys_.empty() ? std::string() : keys_.back().kid;
}

Status AuthServiceImpl::Maintain() {
  MutexLock writer(write_mu_);
  const int64_t now = NowSeconds();
  bool due = false;
  {
    MutexLock lock(mu_);
    due = options_.key_rotation_seconds > 0 && !keys_.empty() &&
          now >= keys_.back().created_at + options_.key_rotation_seconds;
  }
  return due ? Rotate(now) : Prune(now);
}

HttpReply AuthServiceImpl::JwksEndpoint() {
  json keys = json::array();
  {
    MutexLock lock(mu_);
    int64_t now = NowSeconds();
    for (const auto& k : keys_) {
      if (!KeyUsable(k, now)) continue;
      keys.push_back({{"kty", "OKP"},
                      {"crv", "Ed25519"},
                      {"x", Base64UrlEncode(k.key->public_raw())},
                      {"kid", k.kid},
                      {"use", "sig"},
                      {"alg", "EdDSA"}});
    }
  }
  HttpReply reply;
  reply.headers = {{"Cache-Control", "public, max-age=60"}};
  reply.body = json{{"keys", keys}}.dump();
  return reply;
}

// --- revocations -----------------------------------------------------------

Status AuthServiceImpl::ReadRevoked(RevokedMap* out) {
  const std::string path = JoinPath(AuthDir(), kRevokedFile);
  auto j = ReadJsonFile(env_, path);
  if (!j.ok()) return j.status();
  if (!j->has_value()) return Status::OK();
  const json& root = **j;
  if (!root.contains("revoked") || !root["revoked"].is_array()) {
    return Status::Corruption("auth: malformed " + path);
  }
  for (const json& r : root["revoked"]) {
    if (!r.is_object() || !r.contains("jti") || !r["jti"].is_string() || !r.contains("exp") ||
        !r["exp"].is_number_integer()) {
      return Status::Corruption("auth: malformed " + path);
    }
    int64_t exp = r["exp"].get<int64_t>();
    if (exp < 0 || exp > (int64_t{1} << 40)) return Status::Corruption("auth: malformed " + path);
    (*out)[r["jti"].get<std::string>()] = exp;
  }
  return Status::OK();
}

Status AuthServiceImpl::WriteRevoked(const RevokedMap& revoked) {
  json arr = json::array();
  for (const auto& [jti, exp] : revoked) arr.push_back({{"jti", jti}, {"exp", exp}});
  json root = {{"version", 1}, {"revoked", arr}};
  return WritePrivateFile(JoinPath(AuthDir(), kRevokedFile), root.dump(2) + "\n");
}

// Published once written: until then, and if the write fails, the token is
// still admitted (the revocation has not happened; the caller is told).
Status AuthServiceImpl::Revoke(const std::string& jti, int64_t exp) {
  MutexLock writer(write_mu_);
  RevokedMap next;
  {
    MutexLock lock(mu_);
    if (revoked_.count(jti) != 0) return Status::OK();
    next = revoked_;
  }
  next.emplace(jti, exp);
  BRANCHDB_RETURN_IF_ERROR(WriteRevoked(next));
  MutexLock lock(mu_);
  revoked_ = std::move(next);
  return Status::OK();
}

}  // namespace internal
}  // namespace branchdb::auth
