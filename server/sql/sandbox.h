// The SQL sandbox: hardens a SQLite connection for untrusted SQL and runs a
// request's SQL script on it as one transaction.
//
// Attach() applies to any sqlite3* (a native file now, a branchdb VFS
// connection in the server):
//   - an authorizer that denies ATTACH/DETACH (and so VACUUM INTO), transaction
//     control inside a script (BEGIN/COMMIT/ROLLBACK; SAVEPOINTs are allowed),
//     every PRAGMA not on the allow-list below, every function and every
//     virtual-table module not allowed by the reviewed lists of allow_list.h
//     (load_extension(), fts3_tokenizer(), ...), and, in read-only mode, every
//     write;
//   - only the allowed modules stay registered (sqlite3_drop_modules);
//     SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER off;
//   - extension loading off (sqlite3_enable_load_extension and
//     SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION); SQLITE_DBCONFIG_DEFENSIVE on;
//     SQLITE_DBCONFIG_TRUSTED_SCHEMA off; SQLITE_DBCONFIG_ENABLE_TRIGGER/VIEW
//     stay on (user schemas may have them);
//   - sqlite3_limit: SQL length (max_sql_bytes), LENGTH (max_value_bytes),
//     COLUMN 2000, EXPR_DEPTH 100, COMPOUND_SELECT 50, VARIABLE_NUMBER 999,
//     ATTACHED 0, TRIGGER_DEPTH 32, FUNCTION_ARG 100, LIKE_PATTERN_LENGTH 10000;
//   - PRAGMA max_page_count from max_db_bytes (the per-branch size cap);
//   - a progress handler that interrupts a script past its deadline
//     (statement_timeout_ms, measured with Clock::NowMonotonicNanos), and,
//     with a CpuScheduler, gives the script's run slot up to a more
//     deserving script at its ticks (cpu_scheduler.h).
//
// PRAGMA allow-list (anything else: sql_forbidden):
//   read, with or without an argument: table_info, table_xinfo, table_list,
//     index_list, index_info, index_xinfo, foreign_key_list,
//     foreign_key_check, integrity_check, quick_check, collation_list,
//     function_list, module_list, pragma_list, database_list, compile_options,
//     optimize
//   read only (no "= value"): page_count, page_size, freelist_count,
//     data_version, schema_version, encoding, max_page_count, auto_vacuum
//   read and set: user_version, application_id, foreign_keys,
//     defer_foreign_keys, recursive_triggers, case_sensitive_like
// journal_mode, locking_mode, writable_schema, synchronous, mmap_size,
// temp_store, cache_size and the rest are refused.
//
// Execute(): the script (one or more statements) runs as one transaction,
// BEGIN IMMEDIATE (BEGIN DEFERRED when read-only) ... COMMIT, and ROLLBACK on
// any error: it commits whole or not at all. Parameters are positional
// ([...], consumed in order: each statement takes as many as it declares) or
// named ({...}: ":name", "@name", "$name" or "name" keys). Values map to JSON
// as: INTEGER -> number, REAL -> number (non-finite -> null), TEXT -> string,
// NULL -> null, BLOB -> {"$blob": "<base64>"}; the same marker binds a BLOB
// parameter; true/false bind as 1/0. Results: per statement its columns, rows
// (arrays in column order), rows_affected, truncated. Each statement's rows stop
// at max_result_rows, the request's at max_result_bytes (approximate JSON
// bytes): past them the script fails with result_too_large, unless the script
// asks to be cut (Script::truncate, paging), when the cut statement is finished
// early and flagged truncated (the remaining statements still run).
//
// A script whose statements are all read-only (sqlite3_stmt_readonly), that
// changed no row and whose SQL (also a function's nested SQL) the authorizer
// saw no write in ends with ROLLBACK, not COMMIT: it makes no checkpoint (also
// on a never-written database, where BEGIN IMMEDIATE alone initializes page 1).
// Other scripts COMMIT; the VFS commits nothing (no checkpoint) when the
// database is byte-for-byte what it was (no page written, or every page
// written back unchanged, e.g. DELETE FROM an empty table): whether a script
// made a checkpoint is storage::LastCommitLsn moving, never
// ScriptResult::changed.
//
// No state outlives a script on the connection (one connection serves every
// client of a branch in turn): TEMP tables, views, triggers and indexes it
// created are dropped before its COMMIT; connection PRAGMAs it set
// (foreign_keys, recursive_triggers, case_sensitive_like) are restored after
// it; last_insert_rowid() starts at 0 and changes() / total_changes() count
// this script's changes only.
//
// CPU scheduling (SandboxOptions::scheduler): the script holds a run slot
// from after its BEGIN (the branch's lock taken) to its last statement, not
// while it commits (the disk, not a CPU); waiting for the slot counts against
// the statement timeout, which interrupts the wait too (statement_timeout).
//
// Errors (Status reason): sql_forbidden (PermissionDenied), read_only
// (PermissionDenied), statement_timeout (ResourceExhausted), sql_too_long /
// branch_size_limit (ResourceExhausted), sql_error (InvalidArgument: syntax,
// constraint, no such table...; message carries SQLite's, details the failing
// statement index), invalid_params (InvalidArgument), busy (Unavailable),
// sql_io_error (IOError), result_too_large (ResourceExhausted: rows or bytes
// past the caps, not cut). Error details carry {"statement": index}.
//
// Thread-safety: a Sandbox is bound to one connection and, like it, used by
// one thread at a time. The connection must outlive the Sandbox, or be closed
// before the Sandbox is destroyed.
#ifndef BRANCHDB_SERVER_SQL_SANDBOX_H_
#define BRANCHDB_SERVER_SQL_SANDBOX_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "storage/vfs/vfs.h"

struct sqlite3;

namespace branchdb::server::sql {

class CpuScheduler;

struct SandboxOptions {
  Clock* clock = nullptr;                 // required; not owned
  CpuScheduler* scheduler = nullptr;      // optional (none: unscheduled); not owned
  int64_t statement_timeout_ms = 5000;    // per Execute() call
  int64_t max_result_rows = 10000;        // per statement
  int64_t max_result_bytes = 16ll << 20;  // per Execute() call
  int64_t max_sql_bytes = 1 << 20;        // SQLITE_LIMIT_SQL_LENGTH and script length
  int64_t max_value_bytes = 64ll << 20;   // SQLITE_LIMIT_LENGTH
  int64_t max_db_bytes = 0;               // PRAGMA max_page_count; 0 = leave as is
};

struct Script {
  std::string sql;
  // null, an array (positional) or an object (named).
  nlohmann::json params;
  bool read_only = false;
  // Whose fair share of the CPU the script's run time counts against (the
  // OAuth client id); "" is one shared client. See cpu_scheduler.h.
  std::string client;
  // Runs after the last statement, before COMMIT (not for read-only scripts,
  // nor for scripts that changed nothing). An error rolls the script back and
  // is returned.
  std::function<Status()> before_commit;
  // Past max_result_rows / max_result_bytes: false (default) fails the script
  // (result_too_large, nothing committed); true cuts the statement, flags it
  // truncated and goes on.
  bool truncate = false;
  // Paging (implies truncate): the script must be exactly one statement; its
  // first skip_rows rows are skipped and at most page_rows (0 or more than
  // max_result_rows: max_result_rows) are returned.
  bool paged = false;
  int64_t skip_rows = 0;
  int64_t page_rows = 0;
  // Session mode (a Hrana stream: server/hrana/): the script is one
  // statement, run as SQLite runs it on a connection of one's own. Outside a
  // transaction it runs in a transaction of its own exactly as a script does
  // (BEGIN DEFERRED when it cannot write, so that reads never wait for the
  // branch's writer; before_commit; COMMIT); transaction control (BEGIN,
  // COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK TO) is allowed and,
  // like every statement inside a transaction the session opened, runs as is:
  // no BEGIN around it, and a failure leaves the transaction open as SQLite
  // does. before_commit runs right before a COMMIT, END or RELEASE of an open
  // transaction. Errors carry SQLite's own message without a "statement 1: "
  // prefix.
  bool session = false;
  // With session: the connection serves other requests too (the compute's):
  // a statement that would open a transaction (BEGIN, or SAVEPOINT outside
  // one) is not run and fails with FailedPrecondition "needs_own_connection",
  // and no connection setting outlives the statement. Without it the
  // connection is the session's own: PRAGMA settings persist on it.
  bool shared_connection = false;
};

struct StatementResult {
  std::vector<std::string> columns;
  // Each column's declared type (sqlite3_column_decltype); "" when it has
  // none (an expression).
  std::vector<std::string> decltypes;
  // sqlite3_last_insert_rowid after the statement (0 before any insert of
  // this script or, in session mode on the session's own connection, of the
  // session).
  int64_t last_insert_rowid = 0;
  nlohmann::json rows = nlohmann::json::array();
  int64_t rows_affected = 0;
  bool truncated = false;
};

struct ScriptResult {
  std::vector<StatementResult> statements;
  // Some statement may have written (rows or schema): conservative, and no
  // sign of a checkpoint (see above).
  bool changed = false;
  // {"results":[{"columns","rows","rows_affected","truncated"}...]}
  nlohmann::json ToJson() const;
  // The SQL route's answer as text, written without building a document:
  // ToJson() with "lsn" (null when absent), "next_cursor" (likewise),
  // "read_only" and "snapshot_lsn" added, byte for byte as nlohmann would
  // dump it (keys sorted, invalid UTF-8 replaced).
  std::string AnswerJson(std::optional<uint64_t> lsn, uint64_t snapshot_lsn, bool read_only,
                         const std::optional<std::string>& next_cursor) const;
};

// A failed script: its Status and, when known, the index of the failing
// statement (0-based) and its text (blanks collapsed, at most ~200 bytes),
// both also in details(): {"statement": N, "sql": "..."}.
struct ScriptError {
  Status status;
  int statement = -1;
  std::string sql;
  // SQLite's extended result code when SQLite itself refused (a syntax
  // error, a constraint, SQLITE_BUSY...); 0 when the sandbox did (denied,
  // timed out, too large) or nothing ran.
  int sqlite_code = 0;
  nlohmann::json details() const;
};

class Sandbox {
 public:
  // Hardens db (see above) and binds a sandbox to it. db is not owned; the
  // sandbox keeps its own BEGIN/COMMIT/ROLLBACK statements prepared on it, so
  // destroy it before closing db (or close with sqlite3_close_v2).
  // InvalidArgument when options lack a clock; sql_io_error when SQLite fails.
  static Result<std::unique_ptr<Sandbox>> Attach(sqlite3* db, const SandboxOptions& options);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Runs the script as one transaction (see above). On failure *error (if not
  // null) receives the failing statement's index, and the status is returned.
  Result<ScriptResult> Execute(const Script& script, ScriptError* error = nullptr);

  // What a statement is, without running it (Hrana's describe): prepared
  // through the authorizer (so a forbidden statement fails as it would run).
  struct Description {
    std::vector<std::string> params;  // names ("" for an anonymous "?")
    std::vector<std::string> columns;
    std::vector<std::string> decltypes;  // "" when none
    bool is_explain = false;
    bool is_readonly = false;
  };
  // InvalidArgument sql_error for SQL that does not prepare; sql_forbidden
  // for SQL the authorizer refuses. SQL with no statement describes nothing.
  Result<Description> Describe(const std::string& sql, ScriptError* error = nullptr);

  sqlite3* db() const { return db_; }

  struct State;  // authorizer and progress-handler state (sandbox.cc)

 private:
  Sandbox(sqlite3* db, const SandboxOptions& options);

  sqlite3* const db_;
  const SandboxOptions options_;
  std::unique_ptr<State> state_;
};

// The JSON form of a BLOB: {"$blob": base64(bytes)}.
nlohmann::json BlobToJson(std::string_view bytes);
// Base64 (RFC 4648, with padding) encode / decode; decode fails on bad input.
std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

}  // namespace branchdb::server::sql

#endif  // BRANCHDB_SERVER_SQL_SANDBOX_H_
