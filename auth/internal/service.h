// Internal to auth/: the AuthService implementation, split over
// service.cc (state, persistence, clients, keys), endpoints.cc (OAuth
// endpoints) and verify.cc (verification, authorization, credentials).
//
// Thread-safety: every member GUARDED_BY(mu_) is read and written with
// mu_ held (clang checks it: tests/threads); secret hashing and signature verification run without it.
// A change of the persistent state (clients, keys, revocations) is made by a
// writer holding write_mu_: on a copy taken under mu_, written to its file
// (in a cluster, to etcd) WITHOUT mu_, and published under mu_ only once
// written. So a slow disk or etcd never stalls the requests admitted under
// mu_ meanwhile: they see the state before the change until it is durable.
// The token caches have their own (sharded) locks, never taken under mu_ nor
// holding it.
#ifndef BRANCHDB_AUTH_INTERNAL_SERVICE_H_
#define BRANCHDB_AUTH_INTERNAL_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/auth.h"
#include "auth/internal/crypto.h"
#include "auth/internal/jwt.h"
#include "auth/internal/token_cache.h"
#include "base/mutex.h"

namespace branchdb::auth::internal {

// No token we issue lives longer than this (access tokens and credentials).
inline constexpr int64_t kMaxTokenLifetimeSeconds = 3600;

struct ClientRecord {
  ClientInfo info;
  std::string secret_hash;
};

struct SigningKey {
  std::string kid;
  int64_t created_at = 0;
  int64_t retired_at = 0;  // 0 = the current signer
  std::shared_ptr<const Ed25519Key> key;
};

// Result of authenticating the client of an OAuth endpoint request.
struct ClientAuth {
  std::optional<ClientInfo> client;  // set on success
  std::optional<HttpReply> error;    // set on failure
};

class AuthServiceImpl final : public AuthService {
 public:
  AuthServiceImpl(Env* env, AuthOptions options);
  Status Load();

  Result<NewClient> CreateClient(const ClientSpec& spec) override;
  std::vector<ClientInfo> ListClients() override;
  Result<ClientInfo> GetClient(std::string_view client_id) override;
  Status SetClientEnabled(std::string_view client_id, bool enabled) override;
  Status DeleteClient(std::string_view client_id) override;
  Result<EnsureAdminResult> EnsureAdminClient(std::string_view token_url) override;

  HttpReply TokenEndpoint(const OAuthRequest& request) override;
  HttpReply RevocationEndpoint(const OAuthRequest& request) override;
  HttpReply IntrospectionEndpoint(const OAuthRequest& request) override;
  HttpReply JwksEndpoint() override;

  std::optional<Principal> Authenticate(std::string_view authorization_header,
                                        BearerError* error) override;
  std::optional<Principal> VerifyToken(std::string_view token, BearerError* error) override;
  std::optional<BearerError> Authorize(const Principal& principal, Operation op,
                                       std::string_view project,
                                       std::string_view branch) override;
  std::optional<BearerError> Check(std::string_view authorization_header,
                                   std::string_view project, std::string_view branch,
                                   Operation op, Principal* out) override;
  std::optional<DbCredential> IssueDbCredential(const Principal& caller,
                                                std::string_view project,
                                                std::string_view branch,
                                                const BranchIdentity& identity, DbAccess access,
                                                int64_t lifetime_seconds,
                                                BearerError* error) override;

  Status RevokeToken(std::string_view token) override;
  std::string IntrospectToken(std::string_view token) override;

  Status RotateSigningKey() override;
  std::string CurrentKeyId() override;
  Status Maintain() override;
  Status Reload() override;
  AuthStats Stats() override;

 private:
  int64_t NowSeconds() const;
  std::string AuthDir() const;

  using ClientMap = std::map<std::string, ClientRecord, std::less<>>;
  using RevokedMap = std::map<std::string, int64_t, std::less<>>;  // jti -> exp

  // Persistence: each file read into, or written from, a value of the caller's
  // (no lock held: writers hold write_mu_).
  Status ReadClients(ClientMap* out);
  Status ReadKeys(std::vector<SigningKey>* out);
  Status ReadRevoked(RevokedMap* out);
  Status WriteClients(const ClientMap& clients);
  Status WriteKeys(const std::vector<SigningKey>& keys);
  Status WriteRevoked(const RevokedMap& revoked);
  // Reads the three files and publishes them together (Load, Reload).
  Status ReadAll(bool rotate_if_no_key) REQUIRES(write_mu_) EXCLUDES(mu_);
  // Writers' steps (write_mu_ held): a new signing key retiring the current
  // one in *keys (its PEM written, keys.json not yet); keys no longer usable
  // and revocations expired at `now`, dropped and written.
  Status AddKey(int64_t now, std::vector<SigningKey>* keys) REQUIRES(write_mu_);
  Status Prune(int64_t now) REQUIRES(write_mu_) EXCLUDES(mu_);
  // AddKey on a copy of keys_, written, published, then Prune.
  Status Rotate(int64_t now) REQUIRES(write_mu_) EXCLUDES(mu_);
  // Adds jti to the revocations, written before it is published.
  Status Revoke(const std::string& jti, int64_t exp) EXCLUDES(write_mu_, mu_);
  // A writer's change of the clients: `change` edits a copy of clients_ (an
  // error from it changes nothing), which is written, then published.
  Status ChangeClients(const std::function<Status(ClientMap*)>& change) EXCLUDES(write_mu_, mu_);
  // True while key k may still verify tokens.
  bool KeyUsable(const SigningKey& k, int64_t now) const;
  // Writes path atomically, with mode 0600 set on the temp file (through
  // Env::SetPermissions) before any content is written.
  Status WritePrivateFile(const std::string& path, std::string_view contents);

  // Endpoint helpers (endpoints.cc).
  ClientAuth AuthenticateClient(const OAuthRequest& request);
  // Records a failed client authentication for the rate limiter.
  void RecordFailureLocked(const std::string& key, int64_t now) REQUIRES(mu_);
  // Seconds until `key` may try again, or 0 when not limited.
  int64_t RetryAfterLocked(const std::string& key, int64_t now) REQUIRES(mu_);

  // Signs a token of typ for client_id with the current signer, adding the
  // standard claims (iss, sub, aud, client_id, iat, exp, jti) to `claims`.
  Result<std::string> SignToken(std::string_view typ, const std::string& client_id,
                                nlohmann::json claims, int64_t now, int64_t lifetime,
                                std::string* jti);
  // Full verification of a bare token: Facts, then Admit.
  std::optional<Principal> VerifyInternal(std::string_view token, BearerError* error)
      EXCLUDES(mu_);
  // What the token's signature and claims establish, valid at `now`: from the
  // token caches, or verified (and cached) now. nullptr with *error on failure.
  std::shared_ptr<const TokenVerdict> Facts(std::string_view token, int64_t now,
                                            BearerError* error) EXCLUDES(mu_);
  // Signature and claims (no cache): *lasting_failure as VerifyJwt's.
  Result<VerifiedJwt> VerifySignatureOnly(std::string_view token, int64_t now,
                                          bool* lasting_failure) EXCLUDES(mu_);
  // The checks of every use, cached or not: the token's key still verifies, its
  // jti is not revoked, its client exists, is enabled and still holds its rights.
  std::optional<Principal> Admit(const TokenFacts& facts, int64_t now, BearerError* error)
      EXCLUDES(mu_);
  nlohmann::json IntrospectionJson(const Principal& p) const;

  Env* const env_;
  const AuthOptions options_;

  // Verdicts on token strings (token_cache.h): tokens that verified, and
  // tokens that never will. Apart, so that a flood of bad tokens evicts only
  // other bad ones.
  TokenCache verified_;
  TokenCache rejected_;
  std::atomic<uint64_t> signature_checks_{0};

  Mutex write_mu_ ACQUIRED_BEFORE(mu_);  // held by a writer (above), across its file writes
  Mutex mu_;  // a leaf: nothing else is locked under it
  ClientMap clients_ GUARDED_BY(mu_);
  std::vector<SigningKey> keys_ GUARDED_BY(mu_);  // the last one is the signer
  RevokedMap revoked_ GUARDED_BY(mu_);
  struct Window {
    int64_t start = 0;
    int failures = 0;
  };
  std::map<std::string, Window, std::less<>> failures_ GUARDED_BY(mu_);
};

}  // namespace branchdb::auth::internal

#endif  // BRANCHDB_AUTH_INTERNAL_SERVICE_H_
