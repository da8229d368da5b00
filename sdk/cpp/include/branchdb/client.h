// The branchdb C++ SDK: every operation of the HTTP API (docs/api.md) as a
// typed call on branchdb::client::Client.
//
//   #include <branchdb/client.h>
//   namespace bdb = branchdb::client;
//   bdb::ClientOptions opts;
//   opts.url = "http://127.0.0.1:8080";
//   opts.client_id = "..."; opts.client_secret = "...";
//   auto client = bdb::Client::Create(opts);          // Result<unique_ptr<Client>>
//   if (!client.ok()) { ... client.error().ToString() ... }
//   auto r = (*client)->Sql("shop", "production", {.sql = "SELECT 1"});
//   if (r.ok()) use(r->Scalar()); else if (r.error().IsNotFound()) ...
//
// Errors: every call returns Result<T> / Status (error.h), never throws.
// Network failures (kNetwork) are told apart from API errors (kApi, with the
// HTTP status and the API's machine code).
//
// Credentials: client credentials (client_id + client_secret) are exchanged
// at the token endpoint for an access token, cached, and refreshed before
// expiry (when less than refresh_margin is left; default min(60 s, 10% of
// the lifetime)) and once after a 401 from the API (a revoked or expired
// token). A fixed bearer token (`token`: an access token or a database
// credential) is sent as is.
//
// Retries: idempotent calls are retried after a network error, a 5xx, a 429
// (honouring Retry-After) or a 409 idempotency_key_in_use / head_moved, up
// to RetryOptions::max_retries times with exponential backoff and jitter.
// Idempotent are GET, DELETE, PATCH (except a rename) and the POSTs the server
// deduplicates: those carry an Idempotency-Key, generated once per call (or
// given in the request) and sent unchanged on every retry, so the server
// applies the call once. POSTs whose answer holds a secret (create client,
// credentials) are not retried.
//
// Branch names may contain '/'; the SDK percent-encodes path segments
// ("dev/alex" -> dev%2Falex).
//
// Thread-safety: a Client may be used from many threads at once (a pool of
// connections; the token cache is guarded by a mutex).
#ifndef BRANCHDB_SDK_CPP_INCLUDE_BRANCHDB_CLIENT_H_
#define BRANCHDB_SDK_CPP_INCLUDE_BRANCHDB_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "branchdb/error.h"
#include "branchdb/types.h"

namespace branchdb::client {

// The SDK's version ("0.1.0").
const char* Version();

struct RetryOptions {
  // Retries after the first attempt (0 disables retries). Default: 3.
  int max_retries = 3;
  // Delay before the first retry, doubled per retry (with jitter: 50..100%).
  // Default: 200 ms.
  std::chrono::milliseconds initial_backoff{200};
  // Cap of one delay, also of a server's Retry-After. Default: 5 s.
  std::chrono::milliseconds max_backoff{5000};
  // Also retry when no connection could be made (refused, unreachable,
  // unknown host: nothing was sent). Default: true (rides out a server
  // restart); the CLI turns it off to answer at once.
  bool retry_connect_errors = true;
};

struct ClientOptions {
  // The server's base URL, "http://host:port" or "https://host:port".
  // Required.
  std::string url;

  // OAuth client credentials. Default: none.
  std::string client_id;
  std::string client_secret;
  // The token endpoint. Default: url + "/oauth/token".
  std::string token_url;
  // Narrower scopes to ask for ("sql:read branches:read"). Default: all the
  // client holds.
  std::string scope;
  // Refresh the token when less than this is left of its lifetime.
  // Default (zero): min(60 s, a tenth of the lifetime).
  std::chrono::seconds refresh_margin{0};

  // A fixed bearer token instead of client credentials (an access token or a
  // database credential). Default: none. Client credentials win when both
  // are given.
  std::string token;

  // Timeouts of one HTTP attempt. Defaults: connect 10 s, read/write 60 s.
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds io_timeout{60000};
  RetryOptions retry;

  // HTTPS: verify the server's certificate (default true) against the system
  // CA store, or against ca_cert_file (PEM) when set.
  bool verify_tls = true;
  std::string ca_cert_file;

  // Sent as User-Agent. Default: "branchdb-cpp/<version>".
  std::string user_agent;

  // The clock token expiry is measured with. Default: steady_clock::now.
  // (Tests inject one to move time.)
  std::function<std::chrono::steady_clock::time_point()> clock;
};

// What DATA_DIR/admin-credentials.json holds (written by a server's first start).
struct AdminCredentials {
  std::string client_id;
  std::string client_secret;  // secret: never log it
  std::string token_url;      // e.g. "http://127.0.0.1:8080/oauth/token"
  // The base URL derived from token_url ("" when token_url does not end in
  // /oauth/token).
  std::string url;
};
// Reads DATA_DIR/admin-credentials.json. kIo when missing/unreadable,
// kUnexpectedResponse when it is not the expected JSON.
Result<AdminCredentials> LoadAdminCredentials(const std::string& data_dir);

// A fresh random Idempotency-Key (a UUID v4).
std::string NewIdempotencyKey();

// Percent-encodes one path segment ('/' too): "dev/alex" -> "dev%2Falex".
std::string EncodePathSegment(const std::string& s);

class Client {
 public:
  // Validates options (a URL with http/https scheme and a host; client_id and
  // client_secret both or neither) -> kInvalidArgument. Sends nothing.
  static Result<std::unique_ptr<Client>> Create(ClientOptions options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const;

  // ---- service -------------------------------------------------------------------
  // GET /healthz (no token).
  Result<Json> Health();
  // GET /metrics (no token): Prometheus text.
  Result<std::string> Metrics();

  // ---- tokens --------------------------------------------------------------------
  // The access token requests carry now (fetched or refreshed as needed); the
  // fixed token when one was given. kInvalidArgument when there are no credentials.
  Result<std::string> AccessToken();
  // POST /oauth/introspect of `token` (default: the current access token).
  // Needs client credentials (the endpoint authenticates the client).
  Result<TokenIntrospection> Introspect(const std::string& token = "");
  // POST /oauth/revoke of `token` (default: the current access token, which is
  // then dropped from the cache). Needs client credentials.
  Status Revoke(const std::string& token = "");
  // How many tokens were fetched from the token endpoint so far.
  int64_t TokensFetched() const;

  // ---- OAuth clients (admin) ----------------------------------------------------
  Result<NewClient> CreateClient(const CreateClientRequest& request);
  Result<std::vector<ClientInfo>> ListClients();
  Status DeleteClient(const std::string& client_id);

  // ---- projects ------------------------------------------------------------------
  // Creates a project and its default branch "production" (empty). 409 project_exists.
  Result<Project> CreateProject(const CreateProjectRequest& request);
  Result<std::vector<Project>> ListProjects();
  Result<Project> GetProject(const std::string& project);
  Result<Project> UpdateProject(const std::string& project, const UpdateProjectRequest& request);
  // Deletes the project with all branches and data. 409 branch_protected
  // while a branch is protected, unless force.
  Status DeleteProject(const std::string& project, bool force = false);

  // ---- branches ------------------------------------------------------------------
  Result<Branch> CreateBranch(const std::string& project, const CreateBranchRequest& request);
  // All branches of the project, sorted by name.
  Result<std::vector<Branch>> ListBranches(const std::string& project);
  Result<Branch> GetBranch(const std::string& project, const std::string& branch);
  // Returns the branch under its (new) name.
  Result<Branch> UpdateBranch(const std::string& project, const std::string& branch,
                              const UpdateBranchRequest& request);
  // Not the default branch, not a protected one (409).
  Status DeleteBranch(const std::string& project, const std::string& branch);

  // ---- SQL -----------------------------------------------------------------------
  // Runs the script as one transaction (one checkpoint when it changes anything).
  Result<SqlResult> Sql(const std::string& project, const std::string& branch,
                        const SqlRequest& request);

  // ---- checkpoints, rollback, reset, promote -------------------------------------
  // One page of the branch's history, newest first.
  Result<CheckpointPage> ListCheckpoints(const std::string& project, const std::string& branch,
                                         const ListCheckpointsRequest& request = {});
  // Labels a checkpoint (default the head); labelled ones outlive the restore window.
  Result<Checkpoint> LabelCheckpoint(const std::string& project, const std::string& branch,
                                     const LabelCheckpointRequest& request);
  // Moves the branch to the target. Undo: Rollback(ToLsn(previous_head_lsn)).
  Result<MoveResult> Rollback(const std::string& project, const std::string& branch,
                              const RollbackTarget& to,
                              const std::optional<std::string>& idempotency_key = std::nullopt);
  // Moves the branch to its parent's head (undoable like a rollback).
  Result<MoveResult> Reset(const std::string& project, const std::string& branch,
                           const std::optional<std::string>& idempotency_key = std::nullopt);
  // Promotes the branch onto its parent (contract: docs/api.md, promote).
  Result<PromoteResult> Promote(const std::string& project, const std::string& branch,
                                const PromoteRequest& request = {});

  // ---- schema, diff --------------------------------------------------------------
  Result<SchemaInfo> GetSchema(const std::string& project, const std::string& branch,
                               std::optional<uint64_t> lsn = std::nullopt);
  Result<DiffResult> Diff(const std::string& project, const std::string& branch,
                          const DiffRequest& request = {});

  // ---- credentials, compute ------------------------------------------------------
  Result<Credential> CreateCredential(const std::string& project, const std::string& branch,
                                      const CredentialRequest& request = {});
  Result<ComputeState> GetCompute(const std::string& project, const std::string& branch);
  Result<ComputeState> SuspendCompute(const std::string& project, const std::string& branch);

  // ---- export, import ------------------------------------------------------------
  // Streams the branch's SQLite file to `sink`. A retry after a network error
  // happens only while no byte has reached the sink yet.
  Result<ExportResult> Export(const std::string& project, const std::string& branch,
                              const DataSinkCallback& sink, const ExportRequest& request = {});
  // Writes the branch's SQLite file to `path` (through path + ".part", renamed
  // when complete; nothing is left behind on failure). Retried as a whole.
  Result<ExportResult> ExportToFile(const std::string& project, const std::string& branch,
                                    const std::string& path, const ExportRequest& request = {});
  // Creates branch request.branch from the SQLite file at `path` (page size
  // 4096, rollback journal), streamed from disk. 409 branch_exists.
  Result<Branch> ImportFile(const std::string& project, const std::string& path,
                            const ImportRequest& request);
  // The same from bytes in memory.
  Result<Branch> ImportData(const std::string& project, const std::string& data,
                            const ImportRequest& request);

  // ---- usage and audit (docs/api.md) -----------------------------------------------
  // The project's usage; with client, that client's share.
  Result<Usage> GetUsage(const std::string& project, const std::string& client = "");
  // One page of the project's audit trail (scope admin), oldest first; with
  // project "", the server-wide events (GET /v1/audit).
  Result<AuditPage> ListAudit(const std::string& project, const ListAuditRequest& request = {});

  // ---- raw access ----------------------------------------------------------------
  // One authenticated request (token refresh included) for what the typed
  // calls do not cover. `path_and_query` is sent as is (encode it yourself);
  // a non-empty body is sent with `content_type`. Retried per the rules above
  // when `idempotent` (a POST then carries idempotency_key, or a fresh one
  // for this call). Any HTTP status
  // is returned as a RawResponse; only network failures are errors.
  Result<RawResponse> Send(const std::string& method, const std::string& path_and_query,
                           const std::string& body = "",
                           const std::string& content_type = "application/json",
                           bool idempotent = false,
                           const std::optional<std::string>& idempotency_key = std::nullopt);

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace branchdb::client

#endif  // BRANCHDB_SDK_CPP_INCLUDE_BRANCHDB_CLIENT_H_
