// auth: OAuth 2.0 client credentials, Ed25519-signed JWT access tokens, database
// credentials, revocation and introspection. The library knows no HTTP and no
// storage beyond Env: the server parses a request, calls one function here and
// writes back the returned HttpReply (status, headers, JSON body) 1:1.
//
// State lives under <data_dir>/auth/ (clients.json, keys.json, keys/<kid>.pem,
// revoked.json); each file is written with temp file + fsync + rename + dir fsync.
// Secrets are stored only as salted PBKDF2-HMAC-SHA256 hashes. See docs/auth.md.
//
// Thread-safety: AuthService is safe for concurrent use by many threads (one
// internal mutex; secret hashing and signature checks run outside it). The free
// functions are pure and thread-safe.
#ifndef BRANCHDB_AUTH_AUTH_H_
#define BRANCHDB_AUTH_AUTH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/env.h"
#include "base/quotas.h"
#include "base/status.h"

namespace branchdb::auth {

// ---------------------------------------------------------------------------
// Scopes and operations
// ---------------------------------------------------------------------------

// One OAuth scope. Implications (checked by ScopeSet::Covers):
//   admin          implies every scope;
//   X:write        implies X:read (projects, branches, sql).
// branches:promote_protected (promote into a protected branch) is implied by
// admin only, and is needed on top of branches:write.
// branches:protect (lift a branch's protection or writes policy; rollback,
// reset and delete of a protected branch; SQL writes on a branch whose policy
// is promote_only) is implied by admin only. See docs/auth.md, "Protection".
enum class Scope : uint32_t {
  kAdmin = 1u << 0,
  kProjectsRead = 1u << 1,
  kProjectsWrite = 1u << 2,
  kBranchesRead = 1u << 3,
  kBranchesWrite = 1u << 4,
  kSqlRead = 1u << 5,
  kSqlWrite = 1u << 6,
  kBranchesPromoteProtected = 1u << 7,
  kBranchesProtect = 1u << 8,
};

// "admin", "projects:read", ...
std::string_view ScopeName(Scope scope);
// The scope named `name`, or nullopt when unknown.
std::optional<Scope> ParseScopeName(std::string_view name);

// A set of scopes as granted (no implications expanded).
class ScopeSet {
 public:
  ScopeSet() = default;
  ScopeSet(std::initializer_list<Scope> scopes);
  static ScopeSet FromBits(uint32_t bits) { ScopeSet s; s.bits_ = bits & kAllBits; return s; }

  // Parses a space-separated scope list (RFC 6749 §3.3). Fails with
  // InvalidArgument on an unknown name, an empty list or stray whitespace.
  static Result<ScopeSet> Parse(std::string_view space_separated);

  void Add(Scope s) { bits_ |= static_cast<uint32_t>(s); }
  bool Has(Scope s) const { return (bits_ & static_cast<uint32_t>(s)) != 0; }
  bool empty() const { return bits_ == 0; }
  uint32_t bits() const { return bits_; }
  // True when holding this set grants `required` (with the implications above).
  bool Covers(Scope required) const;
  // True when every scope in `other` is covered by this set (narrowing check).
  bool CoversAll(const ScopeSet& other) const;
  // Space-separated names in canonical order ("admin projects:read ...").
  std::string ToString() const;
  std::vector<std::string> Names() const;

  bool operator==(const ScopeSet&) const = default;

  static constexpr uint32_t kAllBits = 0x1ff;

 private:
  uint32_t bits_ = 0;
};

// Every API operation the server authorizes.
enum class Operation {
  kListProjects, kGetProject, kCreateProject, kUpdateProject, kDeleteProject,
  kListBranches, kGetBranch, kCreateBranch, kDeleteBranch, kResetBranch,
  kRollbackBranch, kCreateCheckpoint, kListCheckpoints, kDiffBranch, kPromoteBranch,
  kPromoteProtectedBranch,  // the extra check when the parent is protected
  kSqlRead, kSqlWrite,
  kExportBranch,  // the branch's database file: sql:read, never a database credential
  kIssueReadCredential, kIssueReadWriteCredential,
  kManageClients, kRotateKeys, kIntrospectAnyToken,
  // The extra right over a protected branch (or one whose writes policy is
  // promote_only): lift the guard, roll back, reset, delete, write SQL.
  kProtectBranch,
  kReadAudit,  // a project's audit trail (admin), or the server's (unrestricted admin)
  kReadCluster,  // the cluster's nodes and owners (GET /v1/cluster): unrestricted admin
};

// The scope an operation needs (see the table in docs/auth.md).
Scope RequiredScope(Operation op);
// "list_projects", ... for logs and error descriptions.
std::string_view OperationName(Operation op);
// True for operations that change state (kSqlWrite, kCreateBranch, ...).
bool IsWriteOperation(Operation op);

// ---------------------------------------------------------------------------
// HTTP-shaped results
// ---------------------------------------------------------------------------

// What the server sends back: status, headers (in order), body (JSON text, or
// empty). The server copies it 1:1 and sets Content-Type: application/json when
// body is non-empty.
struct HttpReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The value of header `name` (case-insensitive), or "" when absent.
  std::string Header(std::string_view name) const;
};

// A failure of a bearer-protected request (RFC 6750 §3.1).
struct BearerError {
  enum class Kind {
    kNoToken,            // no credentials at all: 401, challenge without error code
    kInvalidRequest,     // malformed Authorization header: 400 invalid_request
    kInvalidToken,       // expired/revoked/malformed/bad signature...: 401 invalid_token
    kInsufficientScope,  // valid token, not allowed to do this: 403 insufficient_scope
  };
  Kind kind = Kind::kInvalidToken;
  std::string description;  // goes into error_description (no secrets, ASCII)
  std::string scope;        // for kInsufficientScope: the scope the operation needs
  // For a refusal by the client's branch patterns: the API error code
  // ("branch_not_allowed") and the patterns, for the error's details.
  std::string api_code;
  std::vector<std::string> branch_patterns;

  // "invalid_token", "insufficient_scope", "invalid_request" or "" (kNoToken).
  std::string_view ErrorCode() const;
  // The HTTP status: 401, 400, 401, 403.
  int HttpStatus() const;
};

// Builds status + `WWW-Authenticate: Bearer realm="<realm>", error="...",
// error_description="...", scope="..."` + JSON body {"error","error_description"}.
HttpReply BearerErrorReply(const BearerError& error, std::string_view realm);

// ---------------------------------------------------------------------------
// Options, clients, principals
// ---------------------------------------------------------------------------

struct AuthOptions {
  // REQUIRED: the data directory; auth state lives in <data_dir>/auth/.
  std::string data_dir;
  // Default: "branchdb". The `iss` claim written and required.
  std::string issuer = "branchdb";
  // Default: "branchdb-api". The `aud` claim written and required.
  std::string audience = "branchdb-api";
  // Default: "branchdb". Realm in WWW-Authenticate challenges.
  std::string realm = "branchdb";
  // Default: 900 s. Access token lifetime; Open() fails if outside [60, 3600].
  int64_t access_token_lifetime_seconds = 900;
  // Default: 30 s, at most 300. Clock skew allowed to *other* parties that
  // verify our tokens with the published keys: a retired key stays in JWKS
  // this long past the last expiry of a token it signed. This service checks
  // the tokens it issued against its own clock with no leeway: a token is
  // refused from its `exp` on (and when its `iat` or `nbf` is in the future).
  int64_t leeway_seconds = 30;
  // Default: 8192. Tokens longer than this are rejected before any decoding.
  size_t max_token_bytes = 8192;
  // Default: 30 days. Maintain() rotates the signing key when it is older (0 = never).
  int64_t key_rotation_seconds = 30LL * 24 * 3600;
  // Default: 10000. PBKDF2-HMAC-SHA256 iterations for new secret hashes (secrets
  // are 256 random bits, so the hash need not be slow; see docs/auth.md).
  int pbkdf2_iterations = 10000;
  // Rate limit of failed client authentication: after `rate_limit_failures`
  // failures within `rate_limit_window_seconds` for one client id or one source
  // address, further attempts (even correct ones) get 429 until the window ends.
  // Defaults: 10 failures, 300 s.
  int rate_limit_failures = 10;
  int64_t rate_limit_window_seconds = 300;
  // Default: 4096. Entries of the verified-token cache (0 = no cache): the
  // signature and claims of a token are checked on its first use only; the
  // clock, revocations, the client and the signing key on every use. A cache
  // of tokens that can never verify (bad signature, expired) holds 1/8 as many.
  // See docs/auth.md.
  size_t token_cache_entries = 4096;
  // The state files are shared with other processes (a cluster's nodes, whose
  // Env keeps them in etcd: docs/cluster.md): key files that keys.json does
  // not name may be another node's rotation in progress, and are never
  // removed. Default: false (leftovers of a crashed rotation are removed).
  bool shared_state = false;
};

// Counts since Open(), for /metrics and tests.
struct AuthStats {
  uint64_t signature_checks = 0;  // Ed25519 checks of presented tokens
  uint64_t cache_hits = 0;        // uses answered from the verified-token cache
  uint64_t cache_misses = 0;      // uses that had to verify (or failed early)
  uint64_t rejected_hits = 0;     // uses refused from the cache of bad tokens
  size_t cache_entries = 0;       // both caches together, now
};

// Branch name patterns of a client: a branch name (1-128 chars of A-Z a-z 0-9
// . _ - /) in which at most one '*' stands for any run of characters ('/'
// included, the empty run too): "agent/*", "ci-pr-*", "*-scratch",
// "production". At most kMaxBranchPatterns per client.
inline constexpr size_t kMaxBranchPatterns = 32;
// A client's max_branch_ttl_seconds: 0 (none) or 60 s to 1 year.
inline constexpr int64_t kMinBranchTtlSeconds = 60;
inline constexpr int64_t kMaxBranchTtlSeconds = 365LL * 24 * 3600;
// OK, or InvalidArgument (invalid_branch_pattern) saying what is wrong.
Status ValidateBranchPattern(std::string_view pattern);
// True when name matches pattern (see above). Pure.
bool BranchPatternMatches(std::string_view pattern, std::string_view name);
// True when patterns is empty (all branches) or one of them matches name.
bool AnyBranchPatternMatches(const std::vector<std::string>& patterns, std::string_view name);

struct ClientSpec {
  std::string name;                   // human label, e.g. "ci-runner" (may be empty)
  ScopeSet scopes;                    // REQUIRES: non-empty
  std::vector<std::string> projects;  // projects it may touch; empty = all projects
  // Branch name patterns it may act on, in every project it may touch; empty
  // = all branches. Each valid (ValidateBranchPattern).
  std::vector<std::string> branches;
  // The longest TTL of a branch it creates or re-times: 0 (none) or within
  // [kMinBranchTtlSeconds, kMaxBranchTtlSeconds]. With one, its branches
  // always expire (the server defaults their TTL to it).
  int64_t max_branch_ttl_seconds = 0;
  // Limits on what the client itself does (docs/api.md, "Quotas"); each
  // within 0..kMaxQuotaValue (InvalidArgument otherwise). Default: none.
  Quotas quotas = {};
};

struct ClientInfo {
  std::string client_id;
  std::string name;
  ScopeSet scopes;
  std::vector<std::string> projects;  // empty = all
  std::vector<std::string> branches;  // patterns; empty = all
  int64_t max_branch_ttl_seconds = 0;  // 0 = none
  Quotas quotas;                      // the client's own limits (ClientSpec::quotas)
  bool enabled = true;
  int64_t created_at = 0;  // unix seconds

  // True when the client may touch `project` (empty list = all).
  bool MayAccessProject(std::string_view project) const;
  // {"client_id","name","scopes":["a","b"],"projects":[...],"branches":[...],
  // "max_branch_ttl_seconds":N|null,"quotas":{...},"enabled","created_at":"<RFC 3339>"}
  // for the admin API ("quotas": every quota's name, null when unset); never
  // contains secret material.
  std::string ToJson() const;
};

// Returned once, at creation; the secret is never retrievable again.
struct NewClient {
  ClientInfo info;
  std::string client_secret;
  // ClientInfo::ToJson() plus "client_secret" (the one time it is shown).
  std::string ToJson() const;
};

// Who is calling, after a bearer token was verified.
struct Principal {
  enum class Kind { kAccessToken, kDbCredential };
  Kind kind = Kind::kAccessToken;
  std::string client_id;
  std::string jti;
  int64_t issued_at = 0;
  int64_t expires_at = 0;
  // kAccessToken: granted scopes, and the client's project list (empty = all),
  // read from the registry at verification time.
  ScopeSet scopes;
  std::vector<std::string> projects;
  // Both kinds: the client's branch patterns (empty = all) and its maximum
  // branch TTL (0 = none), read from the registry at verification time.
  std::vector<std::string> branches;
  int64_t max_branch_ttl_seconds = 0;
  // kDbCredential: the one project and branch (by name, and by the ids they
  // had when the credential was issued: see CheckCredentialBinding), and
  // whether writes are allowed.
  std::string project;
  std::string branch;
  std::string project_id;
  std::string branch_id;
  bool read_write = false;
};

// The identity of a project and a branch that a database credential is bound
// to: ids that are never reused for another project or branch (the catalog's
// project id and the branch's timeline id). Names can be reused (delete and
// re-create, rename); ids cannot.
struct BranchIdentity {
  std::string project_id;
  std::string branch_id;
};

// For a database credential: nullopt when `current` (the ids of the project and
// branch the request names, as they are now) are the ids it was issued for;
// otherwise kInvalidToken ("... deleted, re-created or renamed ..."): a
// credential never works on another project or branch that took its name.
// Always nullopt for an access token. Pure.
std::optional<BearerError> CheckCredentialBinding(const Principal& principal,
                                                  const BranchIdentity& current);

// Form fields and headers of an OAuth endpoint request (token, revoke, introspect).
struct OAuthRequest {
  // Decoded application/x-www-form-urlencoded fields, in order, duplicates kept
  // (ParseFormBody produces this from a raw body).
  std::vector<std::pair<std::string, std::string>> form;
  std::string authorization;  // Authorization header value, "" when absent
  std::string source_address; // remote IP, for rate limiting
  std::string content_type;   // Content-Type header; "" = not checked
};

// Decodes an application/x-www-form-urlencoded body ('+' is space, %XX).
// Fails with InvalidArgument on a bad %-escape.
Result<std::vector<std::pair<std::string, std::string>>> ParseFormBody(std::string_view body);

enum class DbAccess { kRead, kReadWrite };

struct DbCredential {
  std::string token;       // a JWT with typ "dbcred+jwt"
  int64_t expires_in = 0;  // seconds
  int64_t expires_at = 0;  // unix seconds
  std::string project, branch;
  DbAccess access = DbAccess::kRead;
  // {"credential","token_type","expires_in":<s>,"expires_at":"<RFC 3339>",
  //  "project","branch","access"}
  std::string ToJson() const;
};

// "2026-01-01T12:00:00.000Z": RFC 3339 in UTC with milliseconds, the form of
// every time in the REST API's JSON (the OAuth and JWT wire formats keep their
// numeric times).
std::string FormatRfc3339(int64_t unix_seconds);

struct EnsureAdminResult {
  bool created = false;  // false when clients already existed
  std::string path;      // <data_dir>/admin-credentials.json (written only when created)
  std::string client_id;
};

// ---------------------------------------------------------------------------
// AuthService
// ---------------------------------------------------------------------------

class AuthService {
 public:
  // Loads (or creates, on first start) keys, clients and revocations from
  // <options.data_dir>/auth/. Creates a signing key when none exists.
  // Fails with InvalidArgument on bad options, Corruption on unreadable state,
  // IOError on file errors. `env` must outlive the service; all time comes from
  // env->GetClock().
  static Result<std::unique_ptr<AuthService>> Open(Env* env, AuthOptions options);

  virtual ~AuthService() = default;
  AuthService(const AuthService&) = delete;
  AuthService& operator=(const AuthService&) = delete;

  // --- clients -------------------------------------------------------------
  // Creates a client with a fresh id and a 256-bit random secret, persisted
  // before returning. InvalidArgument when the scopes are empty.
  virtual Result<NewClient> CreateClient(const ClientSpec& spec) = 0;
  virtual std::vector<ClientInfo> ListClients() = 0;
  virtual Result<ClientInfo> GetClient(std::string_view client_id) = 0;
  // Disabling takes effect at once: every token of the client stops verifying.
  // NotFound for an unknown id.
  virtual Status SetClientEnabled(std::string_view client_id, bool enabled) = 0;
  // Deletes the client; its tokens stop verifying. NotFound for an unknown id.
  virtual Status DeleteClient(std::string_view client_id) = 0;
  // When the registry is empty (first start), creates an "admin" client with
  // scope admin and writes <data_dir>/admin-credentials.json
  // {"client_id","client_secret","token_url"}. Log the path, never the secret.
  virtual Result<EnsureAdminResult> EnsureAdminClient(std::string_view token_url) = 0;

  // --- OAuth endpoints (RFC 6749 §4.4, RFC 7009, RFC 7662) ------------------
  // POST /oauth/token. Never fails: errors are RFC 6749 §5.2 replies.
  virtual HttpReply TokenEndpoint(const OAuthRequest& request) = 0;
  // POST /oauth/revoke: client-authenticated; 200 for unknown or invalid tokens.
  virtual HttpReply RevocationEndpoint(const OAuthRequest& request) = 0;
  // POST /oauth/introspect: client-authenticated (Basic or form). A client sees
  // its own tokens; a client with scope admin sees all; others get active=false.
  virtual HttpReply IntrospectionEndpoint(const OAuthRequest& request) = 0;
  // GET /.well-known/jwks.json: {"keys":[...]} of every verifying key.
  virtual HttpReply JwksEndpoint() = 0;

  // --- verification and authorization ---------------------------------------
  // Verifies the value of an Authorization header ("Bearer <token>"), accepting
  // access tokens and database credentials. On failure returns the BearerError
  // to send (BearerErrorReply). The error is in *error, the principal in the result.
  virtual std::optional<Principal> Authenticate(std::string_view authorization_header,
                                                BearerError* error) = 0;
  // Verifies a bare token (no "Bearer "), either kind.
  virtual std::optional<Principal> VerifyToken(std::string_view token,
                                               BearerError* error) = 0;
  // Decides whether `principal` may perform `op` on project/branch (either may
  // be "" when the operation is not about one). Access tokens: the scope that
  // RequiredScope(op) names and the client's project list; a client with a
  // project list may do nothing that is not about one of its projects (not
  // kCreateProject without a listed name, not kManageClients, kRotateKeys,
  // kIntrospectAnyToken), kListProjects excepted (the caller filters the list).
  // A client with branch patterns may act only on a branch they match (403
  // api_code branch_not_allowed; kListBranches and other calls with branch ""
  // pass: the caller filters lists and checks names given in bodies), and
  // on no project as a whole (create, update, delete: they reach every branch).
  // Database credentials: only kSqlRead/kSqlWrite, exactly their project and
  // branch names, and kSqlWrite only when read_write (the caller also checks
  // the ids: CheckCredentialBinding). Returns nullopt when allowed, else the
  // kInsufficientScope error.
  virtual std::optional<BearerError> Authorize(const Principal& principal, Operation op,
                                               std::string_view project,
                                               std::string_view branch) = 0;
  // Authorize() as a yes/no, for callers that only branch on the decision:
  // true when `principal` may perform `op` on project/branch.
  bool Allows(const Principal& principal, Operation op, std::string_view project,
              std::string_view branch) {
    return !Authorize(principal, op, project, branch).has_value();
  }
  // Authenticate + Authorize in one call; nullopt = allowed (principal in *out).
  virtual std::optional<BearerError> Check(std::string_view authorization_header,
                                           std::string_view project, std::string_view branch,
                                           Operation op, Principal* out) = 0;

  // --- database credentials -------------------------------------------------
  // Issues a credential for one project + branch to an access-token principal
  // holding sql:read (kRead) or sql:write (kReadWrite) and allowed on the
  // project. `identity`: the ids the project and branch have now; the
  // credential carries them and works only while the names still denote them.
  // lifetime_seconds: 0 = 900; otherwise must be within [60, 3600].
  // Errors: kInsufficientScope (403) when not allowed; kInvalidRequest (400) for a
  // bad lifetime or an empty project, branch or id.
  virtual std::optional<DbCredential> IssueDbCredential(const Principal& caller,
                                                        std::string_view project,
                                                        std::string_view branch,
                                                        const BranchIdentity& identity,
                                                        DbAccess access,
                                                        int64_t lifetime_seconds,
                                                        BearerError* error) = 0;

  // --- direct calls (admin tools, tests) -----------------------------------
  // Revokes a token of either kind (its jti is kept until its exp). OK also for
  // unknown/invalid tokens (nothing to do); IOError when persisting fails.
  virtual Status RevokeToken(std::string_view token) = 0;
  // RFC 7662 response object: {"active":true, claims...} or {"active":false}.
  virtual std::string IntrospectToken(std::string_view token) = 0;

  // --- keys -----------------------------------------------------------------
  // Creates a new Ed25519 key and makes it the signer. The previous keys keep
  // verifying until the last token they could have signed has expired.
  virtual Status RotateSigningKey() = 0;
  // kid of the current signing key.
  virtual std::string CurrentKeyId() = 0;
  // Prunes retired keys and expired revocations, forgets old rate-limit entries,
  // and rotates the signing key when older than key_rotation_seconds. Call it
  // periodically (e.g. every minute).
  virtual Status Maintain() = 0;
  // Reads the state files again, for a change made by another process that
  // shares them (AuthOptions::shared_state). On failure the state in memory
  // stays as it was.
  virtual Status Reload() = 0;

  virtual AuthStats Stats() = 0;

 protected:
  AuthService() = default;
};

}  // namespace branchdb::auth

#endif  // BRANCHDB_AUTH_AUTH_H_
