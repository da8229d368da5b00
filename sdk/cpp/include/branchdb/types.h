// Typed requests and results of the branchdb HTTP API (docs/api.md,
// docs/openapi.yaml), one struct per JSON shape.
//
// Results keep the complete decoded answer in `raw` (clients must ignore
// unknown fields; raw lets a caller read fields a newer server adds, and lets
// a CLI print the API's own JSON). Times are kept as the server sends them:
// RFC 3339 UTC strings ("2026-11-21T00:46:09.238Z"). Times in requests are an
// RFC 3339 string (with Z or an offset) or Unix seconds as a decimal string
// ("1767225600"); FormatTime() turns a time_point into the former.
//
// SQL values are JSON: INTEGER and REAL -> number, TEXT -> string, NULL -> null,
// BLOB -> {"$blob":"<base64>"} (Blob() builds one for a parameter, BlobBytes()
// decodes one). Integers beyond 2^53 arrive exact (nlohmann::json keeps them
// as 64-bit integers).
//
// Optional request fields are std::optional: unset fields are not sent, so the
// server's default applies.
#ifndef BRANCHDB_SDK_CPP_INCLUDE_BRANCHDB_TYPES_H_
#define BRANCHDB_SDK_CPP_INCLUDE_BRANCHDB_TYPES_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace branchdb::client {

using Json = nlohmann::json;

// ---- values and times ----------------------------------------------------------------

// A BLOB SQL parameter: {"$blob": base64(bytes)}.
Json Blob(const std::string& bytes);
// The bytes of a {"$blob": ...} value; nullopt for any other value.
std::optional<std::string> BlobBytes(const Json& value);
// RFC 3339 UTC with milliseconds: "2026-11-21T00:46:09.238Z".
std::string FormatTime(std::chrono::system_clock::time_point t);

// ---- OAuth ---------------------------------------------------------------------------

// An OAuth access token from POST /oauth/token.
struct Token {
  std::string access_token;  // secret: never log it
  std::string token_type;    // "Bearer"
  int64_t expires_in = 0;    // seconds from issue
  std::string scope;         // space-separated scopes granted
  Json raw;
};

// POST /oauth/introspect (RFC 7662). Inactive tokens have only active=false.
struct TokenIntrospection {
  bool active = false;
  std::string client_id;
  std::string scope;
  std::optional<int64_t> exp;  // Unix seconds
  std::optional<int64_t> iat;
  Json raw;
};

// ---- OAuth clients (admin) -----------------------------------------------------------

struct CreateClientRequest {
  std::string name;                   // free text
  std::vector<std::string> scopes;    // e.g. {"branches:write", "sql:read"}
  std::vector<std::string> projects;  // empty: every project
  // Branch name patterns with at most one '*' (e.g. {"agent/*"}); empty:
  // every branch. See docs/auth.md, "Branch-scoped clients".
  std::vector<std::string> branches;
  // The longest TTL of a branch the client creates: 60..31536000 s; unset:
  // none. With one, its branches get this TTL when they ask for none.
  std::optional<int64_t> max_branch_ttl_seconds;
  // The client's own quotas, e.g. {{"max_branches", 5}} (docs/api.md, "Quotas").
  std::map<std::string, int64_t> quotas;
};

struct ClientInfo {
  std::string client_id;
  std::string name;
  std::vector<std::string> scopes;
  std::vector<std::string> projects;
  std::vector<std::string> branches;             // empty: every branch
  std::optional<int64_t> max_branch_ttl_seconds;  // unset: none
  bool enabled = true;
  std::string created_at;  // RFC 3339
  Json raw;
};

// A client just created: the secret is shown this once.
struct NewClient : ClientInfo {
  std::string client_secret;  // secret: never log it
};

// ---- projects ------------------------------------------------------------------------

struct CreateProjectRequest {
  std::string name;
  std::optional<int64_t> restore_window_seconds;  // default: the server's
  std::optional<std::string> idempotency_key;     // default: a fresh one per call
};

struct UpdateProjectRequest {
  std::optional<int64_t> restore_window_seconds;
  // Quotas to set (a value) or lift (nullopt), by name: "max_branches",
  // "max_active_computes", "max_bytes", "max_commits_per_minute". Those not
  // named are left as they are.
  std::map<std::string, std::optional<int64_t>> quotas;
  // Set (a value) or lift (a nullopt inside) the default TTL of branches
  // created by non-admin clients; unset: unchanged.
  std::optional<std::optional<int64_t>> default_branch_ttl_seconds;
  // Set "local" or "remote" (a value), or back to the server's default (a
  // nullopt inside); unset: unchanged. "remote" needs the server's
  // [object_storage] (docs/object-storage.md, "Durability modes").
  std::optional<std::optional<std::string>> durability;
};

struct Project {
  std::string id;
  std::string name;
  std::string created_at;
  int64_t restore_window_seconds = 0;
  std::string default_branch;  // "production"
  // "local" or "remote" (GetProject, UpdateProject); empty in lists.
  std::string durability;
  Json raw;
};

// ---- branches ------------------------------------------------------------------------

// Where a new branch starts on its parent: the head (all unset) or exactly one
// of lsn, timestamp, checkpoint, label. More than one is kInvalidArgument. The
// server refuses (kNotFound, checkpoint_not_found) an lsn that is no state of
// the parent, and a checkpoint that is no state of an explicitly given parent;
// Branch::branch_point_lsn is the exact state used.
struct BranchPoint {
  std::optional<uint64_t> lsn;           // a state of the parent
  std::optional<std::string> timestamp;  // RFC 3339 or Unix seconds: the newest state at or before
  std::optional<uint64_t> checkpoint;    // a checkpoint's LSN (of any branch)
  std::optional<std::string> label;

  static BranchPoint Head() { return {}; }
  static BranchPoint AtLsn(uint64_t v) { BranchPoint p; p.lsn = v; return p; }
  static BranchPoint AtTimestamp(std::string v) { BranchPoint p; p.timestamp = std::move(v); return p; }
  static BranchPoint AtCheckpoint(uint64_t v) { BranchPoint p; p.checkpoint = v; return p; }
  static BranchPoint AtLabel(std::string v) { BranchPoint p; p.label = std::move(v); return p; }
};

struct CreateBranchRequest {
  std::string name;                   // may contain '/': "dev/alex"
  std::optional<std::string> parent;  // default: the project's default branch
  BranchPoint at;                     // default: the parent's head
  std::optional<int64_t> ttl_seconds;
  std::optional<std::string> expires_at;  // RFC 3339 or Unix seconds
  std::optional<bool> is_protected;       // JSON "protected"
  // JSON "writes": "any" (default) or "promote_only" (SQL writes only by
  // clients with branches:protect; docs/auth.md, "Protection").
  std::optional<std::string> writes;
  std::optional<std::string> idempotency_key;
};

// PATCH of a branch. Unset fields stay as they are. For expires_at and
// idle_timeout_seconds, "set to null" (clear / back to the server default) is
// a separate flag.
struct UpdateBranchRequest {
  std::optional<std::string> name;  // rename
  std::optional<bool> is_protected;
  std::optional<std::string> writes;  // "any" | "promote_only"
  std::optional<int64_t> ttl_seconds;
  std::optional<std::string> expires_at;
  bool clear_expires_at = false;               // sends "expires_at": null
  std::optional<int64_t> idle_timeout_seconds;  // 0..604800, 0 = never suspend
  bool reset_idle_timeout = false;             // sends "idle_timeout_seconds": null
};

struct Branch {
  std::string name;
  std::optional<std::string> parent;  // none for a project's root branch
  uint64_t head_lsn = 0;
  uint64_t branch_point_lsn = 0;
  std::string created_at;
  std::optional<std::string> expires_at;
  bool is_protected = false;  // JSON "protected"
  std::string writes = "any";  // JSON "writes": "any" | "promote_only"
  bool is_default = false;    // JSON "default"
  uint64_t logical_bytes = 0;
  uint64_t exclusive_bytes = 0;
  int64_t idle_timeout_seconds = 0;  // effective value (0 = never suspended)
  Json raw;
};

// ---- SQL -----------------------------------------------------------------------------

struct SqlRequest {
  std::string sql;  // one or more statements, run as one transaction
  // Positional (a JSON array, consumed in order across statements) or named
  // (a JSON object binding :name/@name/$name); null = no parameters.
  Json params;
  bool read_only = false;
  std::optional<std::string> idempotency_key;
  // Paging (one read-only statement): rows per page (1..the server's
  // max_result_rows), and SqlResult::next_cursor of the previous page. Without
  // them, a result past the server's caps is an error (result_too_large).
  std::optional<int64_t> page_size;
  std::optional<std::string> cursor;
};

struct StatementResult {
  std::vector<std::string> columns;
  std::vector<std::vector<Json>> rows;  // SQL values as JSON (see the file comment)
  int64_t rows_affected = 0;
  bool truncated = false;  // paged: this page ended before the statement's last row
};

struct SqlResult {
  std::vector<StatementResult> results;  // one per statement
  std::optional<uint64_t> lsn;           // the checkpoint committed; nullopt: nothing changed
  uint64_t snapshot_lsn = 0;             // the state the script read (every page's)
  bool read_only = false;
  std::optional<std::string> next_cursor;  // paged: the next page's cursor; nullopt at the end
  Json raw;

  // The first column of the last statement's first row (null if none).
  Json Scalar() const;
};

// ---- checkpoints, rollback, reset, promote --------------------------------------------

struct ListCheckpointsRequest {
  std::optional<int64_t> limit;       // page size (server default when unset)
  std::optional<std::string> cursor;  // CheckpointPage::next of the previous page
};

struct Checkpoint {
  uint64_t lsn = 0;
  std::string time;
  std::string kind;  // "sql", "import", "promote", ...
  std::string client_id;
  std::string request_id;
  std::string summary;
  int64_t rows_affected = 0;
  std::optional<std::string> label;  // the first label
  std::vector<std::string> labels;
  bool inherited = false;  // from an ancestor branch
  // A state the branch had as head that its history no longer reaches (a
  // rollback, reset or promotion moved it away); still a rollback target.
  bool rolled_back = false;
  std::optional<std::string> branch;
  // Moves (rollback, reset, promote) and creation: the state moved to; moves:
  // the head before (roll back to it to undo the move).
  std::optional<uint64_t> target_lsn;
  std::optional<uint64_t> previous_head_lsn;
  Json raw;
};

// A page of checkpoints, newest first; `next` is the cursor of the next page.
struct CheckpointPage {
  std::vector<Checkpoint> checkpoints;
  std::optional<std::string> next;
  Json raw;
};

struct LabelCheckpointRequest {
  std::string label;
  std::optional<uint64_t> lsn;  // default: the head
  std::optional<std::string> idempotency_key;
};

// Where a rollback moves a branch: exactly one field set (else kInvalidArgument).
struct RollbackTarget {
  std::optional<uint64_t> checkpoint;
  std::optional<uint64_t> lsn;
  std::optional<std::string> timestamp;  // RFC 3339 or Unix seconds
  std::optional<int64_t> actions;        // undo the newest N SQL actions
  std::optional<std::string> label;

  static RollbackTarget ToCheckpoint(uint64_t v) { RollbackTarget t; t.checkpoint = v; return t; }
  static RollbackTarget ToLsn(uint64_t v) { RollbackTarget t; t.lsn = v; return t; }
  static RollbackTarget ToTimestamp(std::string v) { RollbackTarget t; t.timestamp = std::move(v); return t; }
  static RollbackTarget Actions(int64_t n) { RollbackTarget t; t.actions = n; return t; }
  static RollbackTarget ToLabel(std::string v) { RollbackTarget t; t.label = std::move(v); return t; }
};

// The answer of rollback and reset. Undo: rollback to previous_head_lsn.
struct MoveResult {
  uint64_t head_lsn = 0;
  uint64_t previous_head_lsn = 0;
  std::optional<uint64_t> target_lsn;
  Json raw;
};

// POST .../promote options (unset: the server default). See docs/api.md.
struct PromoteRequest {
  std::optional<std::string> mode;  // "auto" (default), "fast_forward", "replay"
  bool dry_run = false;
  std::optional<std::string> verify;       // SQL whose first value must be truthy
  std::optional<std::string> on_conflict;  // "fail" (default) or "retry"
  std::optional<int64_t> max_retries;      // 0..10, with on_conflict "retry"
  std::optional<std::string> idempotency_key;
};

struct PromoteAction {
  uint64_t lsn = 0;
  std::string summary;
  int64_t rows = 0;
};

struct PromoteResult {
  std::string branch;  // the parent that moved (or would move)
  std::string source;  // the promoted branch
  std::string mode;    // "fast_forward" or "replay"
  bool dry_run = false;
  std::optional<uint64_t> head_lsn;
  uint64_t previous_head_lsn = 0;  // undo: rollback the parent to this
  std::optional<uint64_t> target_lsn;
  std::vector<PromoteAction> actions;
  Json verify;  // {"sql","value","ok"} or null
  int64_t attempts = 0;
  Json raw;
};

// ---- schema, diff --------------------------------------------------------------------

struct SchemaObject {
  std::string type;  // "table", "index", "view", "trigger"
  std::string name;
  std::optional<std::string> table;
  std::optional<std::string> sql;
};

struct SchemaInfo {
  uint64_t lsn = 0;
  std::vector<SchemaObject> objects;
  Json raw;
};

struct DiffRequest {
  std::string kind = "schema";      // "schema", "data" or "patch" (the data diff as SQL)
  std::optional<std::string> base;  // default: the branch's parent
  std::optional<uint64_t> base_lsn;
  std::optional<uint64_t> lsn;      // default: the branch's head
  std::vector<std::string> tables;  // data diff: only these tables
  // data / patch: row changes per page (server default 100, at most 1000), and
  // the previous page's DiffResult::next (it names the same two states).
  std::optional<int64_t> limit;
  std::optional<std::string> cursor;
};

struct SchemaObjectDiff {
  std::string type;
  std::string name;
  std::string change;  // "added", "removed", "changed"
  std::optional<std::string> old_sql;
  std::optional<std::string> new_sql;
  std::vector<std::string> columns_added;
  std::vector<std::string> columns_removed;
  std::vector<std::string> columns_changed;
};

struct RowChange {
  std::string op;  // "insert", "delete", "update"
  Json key;
  Json old_row;  // JSON "old"
  Json new_row;  // JSON "new"
};

// One table's row changes: totals, and this page's rows, compared on
// key_columns and the columns both states have (values of columns_added show
// in new_row, of columns_removed in old_row).
struct TableDiff {
  std::string table;
  int64_t rows_added = 0;
  int64_t rows_removed = 0;
  int64_t rows_changed = 0;
  std::vector<RowChange> rows;
  std::vector<std::string> key_columns;
  std::vector<std::string> columns_added;
  std::vector<std::string> columns_removed;
  std::string note;
};

// A schema diff (kind "schema": objects, unified), a data diff (kind "data":
// tables, pages_changed, tables_skipped, next) or a patch (kind "patch":
// statements that turn the base into the branch, complete, next), from
// from_lsn (the base) to to_lsn.
struct DiffResult {
  std::string kind;
  uint64_t from_lsn = 0;
  uint64_t to_lsn = 0;
  std::vector<SchemaObjectDiff> objects;
  std::string unified;
  std::vector<TableDiff> tables;
  int64_t pages_changed = 0;
  int64_t tables_skipped = 0;
  std::vector<std::string> statements;
  bool complete = true;
  std::optional<std::string> next;  // data / patch: the cursor of the next page
  Json raw;
};

// ---- credentials, compute ------------------------------------------------------------

struct CredentialRequest {
  std::string access = "read";  // "read" or "read_write"
  std::optional<int64_t> ttl_seconds;
};

// A short-lived bearer token for SQL on one branch only (ClientOptions::token).
struct Credential {
  std::string credential;  // secret: never log it
  std::string token_type;
  int64_t expires_in = 0;  // seconds from issue
  std::string expires_at;  // RFC 3339: refused from this instant on
  std::string project;
  std::string branch;
  std::string access;
  Json raw;
};

struct ComputeState {
  std::string state;  // "active" or "suspended"
  int64_t in_use = 0;
  int64_t cold_starts = 0;
  std::optional<std::string> last_used_at;
  std::optional<double> last_cold_start_ms;
  int64_t idle_timeout_seconds = 0;
  Json raw;
};

// ---- export, import ------------------------------------------------------------------

// Called as bytes move: done so far and the total (0 when unknown). Return
// false to cancel (the call then fails with kCancelled). Called from the
// calling thread.
using ProgressCallback = std::function<bool(uint64_t done, uint64_t total)>;
// Receives the export's bytes in order; return false to cancel.
using DataSinkCallback = std::function<bool(const char* data, size_t size)>;

struct ExportRequest {
  std::optional<uint64_t> lsn;  // default: the head
  ProgressCallback progress;    // optional
};

struct ExportResult {
  uint64_t lsn = 0;    // the state the file holds (X-Branchdb-Lsn)
  uint64_t bytes = 0;  // bytes delivered
};

struct ImportRequest {
  std::string branch;        // the new branch's name
  ProgressCallback progress;  // upload progress (optional)
  std::optional<std::string> idempotency_key;
};

// ---- raw access ----------------------------------------------------------------------

// An HTTP answer of Client::Send (any status).
struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  int attempts = 0;

  // The first header of that (lower-case) name; "" if absent.
  std::string Header(const std::string& name) const;
};

// ---- usage and audit (docs/api.md, "Usage", "Audit trail") ----------------

struct Usage {
  std::string project;
  std::optional<std::string> client_id;  // set: that client's share
  int64_t branches = 0;
  int64_t logical_bytes = 0;
  int64_t exclusive_bytes = 0;
  int64_t commits = 0;
  int64_t commits_last_minute = 0;
  int64_t active_computes = 0;
  double compute_seconds = 0;
  int64_t requests = 0;
  std::string counting_since;
  Json raw;  // the whole answer (quotas, per_branch)
};

struct AuditEvent {
  int64_t seq = 0;
  std::string time;
  std::optional<std::string> project, branch, client_id, jti, code;
  std::string request_id;
  std::string operation;  // "branch.create", "token.issue", ...
  int status = 0;
  Json details;
  Json raw;
};

struct AuditPage {
  std::vector<AuditEvent> events;  // oldest first
  std::optional<std::string> next_cursor;
  Json raw;
};

struct ListAuditRequest {
  std::optional<std::string> client;  // only this client's events
  std::optional<std::string> since;   // RFC 3339 or Unix seconds
  std::optional<std::string> cursor;  // the previous page's next_cursor
  std::optional<int64_t> limit;       // 1..1000 (server default 100)
};

}  // namespace branchdb::client

#endif  // BRANCHDB_SDK_CPP_INCLUDE_BRANCHDB_TYPES_H_
