// Sandbox::Execute: a request's SQL script as one transaction, with params,
// result caps and JSON values.
#include <openssl/evp.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "server/sql/sandbox.h"
#include "server/sql/sandbox_internal.h"
#include "storage/vfs/vfs.h"

namespace branchdb::server::sql {
namespace {

using nlohmann::json;

// Runs one of our own control statements (one statement, no rows) with the
// authorizer out of the way, prepared once per connection (State::control).
// Returns SQLite's code, as sqlite3_exec would.
int Internal(sqlite3* db, Sandbox::State* st, const char* sql) {
  st->internal = true;
  sqlite3_stmt* stmt = nullptr;
  for (const auto& [text, prepared] : st->control) {
    if (text == sql) stmt = prepared;
  }
  int rc = SQLITE_OK;
  if (stmt == nullptr) {
    rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc == SQLITE_OK) st->control.emplace_back(sql, stmt);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  st->internal = false;
  return rc;
}

// The statement timeout passed while the script ran, or (cpu_wait) while it
// waited for a run slot of the CPU scheduler: then the server was busy, and
// the same script may well pass later.
Status StatementTimeout(const std::string& where, bool cpu_wait) {
  if (cpu_wait) {
    return Status::ResourceExhausted(
        where + "statement timeout exceeded while the script waited for a CPU (the server is "
                "busy with other SQL); the script was rolled back: retry later",
        "statement_timeout");
  }
  return Status::ResourceExhausted(where + "statement timeout exceeded; the script was "
                                           "rolled back (make it cheaper or split it)",
                                   "statement_timeout");
}

Status StatusFromSqlite(sqlite3* db, Sandbox::State* st, int rc, const std::string& where) {
  std::string msg = where + sqlite3_errmsg(db);
  st->last_rc = sqlite3_extended_errcode(db);
  if ((st->last_rc & 0xff) != (rc & 0xff)) st->last_rc = rc;
  if ((rc & 0xff) == SQLITE_ERROR) {
    // A denied function is reported as SQLITE_ERROR ("not authorized to use
    // function"); VACUUM INTO attaches internally and hits the ATTACHED limit.
    if (!st->denial.empty()) rc = SQLITE_AUTH;
    if (msg.find("cannot VACUUM from within a transaction") != std::string::npos) {
      return Status::PermissionDenied(
          where + "VACUUM is not available (a script runs as one transaction; VACUUM INTO "
                  "is never allowed)",
          "sql_forbidden");
    }
    if (msg.find("too many attached databases") != std::string::npos) {
      return Status::PermissionDenied(where + "ATTACH and VACUUM INTO are not allowed",
                                      "sql_forbidden");
    }
  }
  switch (rc & 0xff) {
    case SQLITE_AUTH:
      st->last_rc = 0;  // the sandbox's refusal, not SQLite's
      if (st->denied_read_only) return Status::PermissionDenied(where + st->denial, "read_only");
      return Status::PermissionDenied(where + (st->denial.empty() ? "not authorized" : st->denial),
                                      "sql_forbidden");
    case SQLITE_INTERRUPT:
      if (st->timed_out) {
        st->last_rc = 0;
        return StatementTimeout(where, st->cpu_wait);
      }
      return Status::Unavailable(msg, "interrupted");
    case SQLITE_TOOBIG:
      return Status::ResourceExhausted(msg, "value_too_large");
    case SQLITE_FULL:
      // The VFS says SQLITE_FULL for a full disk too: its error tells which.
      if (Status vfs = storage::LastVfsError(db); vfs.reason() == "disk_full") return vfs;
      return Status::ResourceExhausted(msg + " (the branch reached its size limit)",
                                       "branch_size_limit");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(msg + " (another writer holds the branch; retry)", "busy");
    case SQLITE_READONLY:
      return Status::PermissionDenied(msg, "read_only");
    case SQLITE_IOERR:
      // A read of evicted history that the bucket did not answer
      // (server/object_storage/tiered_env.h): 503 with the store's reason.
      if (Status vfs = storage::LastVfsError(db); vfs.IsUnavailable()) return vfs;
      [[fallthrough]];
    case SQLITE_CORRUPT:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
      return Status::IOError(msg, "sql_io_error");
    default:
      return Status::InvalidArgument(msg, "sql_error");
  }
}

Status BindValue(sqlite3_stmt* stmt, int index, const json& v, const std::string& what) {
  int rc = SQLITE_OK;
  switch (v.type()) {
    case json::value_t::null:
      rc = sqlite3_bind_null(stmt, index);
      break;
    case json::value_t::boolean:
      rc = sqlite3_bind_int(stmt, index, v.get<bool>() ? 1 : 0);
      break;
    case json::value_t::number_integer:
      rc = sqlite3_bind_int64(stmt, index, v.get<int64_t>());
      break;
    case json::value_t::number_unsigned: {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) {
        return Status::InvalidArgument(what + ": integer out of SQLite's 64-bit range",
                                       "invalid_params");
      }
      rc = sqlite3_bind_int64(stmt, index, static_cast<int64_t>(u));
      break;
    }
    case json::value_t::number_float:
      rc = sqlite3_bind_double(stmt, index, v.get<double>());
      break;
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      rc = sqlite3_bind_text64(stmt, index, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      break;
    }
    case json::value_t::object: {
      if (v.size() == 1 && v.contains("$blob") && v["$blob"].is_string()) {
        auto bytes = Base64Decode(v["$blob"].get<std::string>());
        if (!bytes.ok()) {
          return Status::InvalidArgument(what + ": $blob is not valid base64", "invalid_params");
        }
        rc = sqlite3_bind_blob64(stmt, index, bytes->data(), bytes->size(), SQLITE_TRANSIENT);
        break;
      }
      [[fallthrough]];
    }
    default:
      return Status::InvalidArgument(
          what + ": expected null, a boolean, a number, a string or {\"$blob\":\"<base64>\"}",
          "invalid_params");
  }
  if (rc != SQLITE_OK) {
    return Status::InvalidArgument(what + ": " + sqlite3_errstr(rc), "invalid_params");
  }
  return Status::OK();
}

// Binds the statement's parameters from params; *next_positional advances.
Status BindParams(sqlite3_stmt* stmt, const json& params, size_t* next_positional) {
  int n = sqlite3_bind_parameter_count(stmt);
  if (n == 0) return Status::OK();
  if (params.is_null()) {
    return Status::InvalidArgument("the statement has " + std::to_string(n) +
                                       " parameter(s) but no params were given",
                                   "invalid_params");
  }
  for (int i = 1; i <= n; ++i) {
    const char* name = sqlite3_bind_parameter_name(stmt, i);
    if (params.is_array()) {
      size_t at = *next_positional + static_cast<size_t>(i) - 1;
      if (at >= params.size()) {
        return Status::InvalidArgument("params: the script uses more than the " +
                                           std::to_string(params.size()) + " given",
                                       "invalid_params");
      }
      BRANCHDB_RETURN_IF_ERROR(BindValue(stmt, i, params[at], "params[" + std::to_string(at) + "]"));
      continue;
    }
    if (name == nullptr || name[0] == '?') {
      return Status::InvalidArgument(
          "the statement uses positional parameters (?); pass params as an array",
          "invalid_params");
    }
    std::string full(name);
    const json* v = nullptr;
    if (params.contains(full)) {
      v = &params[full];
    } else if (params.contains(full.substr(1))) {
      v = &params[full.substr(1)];
    }
    if (v == nullptr) {
      return Status::InvalidArgument("params: no value for " + full, "invalid_params");
    }
    BRANCHDB_RETURN_IF_ERROR(BindValue(stmt, i, *v, "params." + full.substr(1)));
  }
  if (params.is_array()) *next_positional += static_cast<size_t>(n);
  return Status::OK();
}

// The JSON of column i of the current row, and its approximate size in bytes.
json ColumnValue(sqlite3_stmt* stmt, int i, int64_t* bytes) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
      *bytes += 8;
      return sqlite3_column_int64(stmt, i);
    case SQLITE_FLOAT: {
      *bytes += 8;
      double d = sqlite3_column_double(stmt, i);
      if (!std::isfinite(d)) return nullptr;
      return d;
    }
    case SQLITE_TEXT: {
      const char* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      int n = sqlite3_column_bytes(stmt, i);
      *bytes += n + 2;
      return std::string(p ? p : "", static_cast<size_t>(n));
    }
    case SQLITE_BLOB: {
      const char* p = static_cast<const char*>(sqlite3_column_blob(stmt, i));
      int n = sqlite3_column_bytes(stmt, i);
      *bytes += n * 4 / 3 + 12;
      return BlobToJson(std::string_view(p ? p : "", static_cast<size_t>(n)));
    }
    default:
      *bytes += 4;
      return nullptr;
  }
}

struct StmtCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

}  // namespace

json BlobToJson(std::string_view bytes) { return json{{"$blob", Base64Encode(bytes)}}; }

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Status::InvalidArgument("base64: length not a multiple of 4");
  if (text.empty()) return std::string();
  // Strict: the alphabet only, '=' only as the last one or two characters
  // (EVP_DecodeBlock alone takes "A===" and inner padding).
  const size_t len = text.size();
  for (size_t i = 0; i < len; ++i) {
    const char c = text[i];
    const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '+' || c == '/';
    const bool pad = c == '=' && (i == len - 1 || (i == len - 2 && text[len - 1] == '='));
    if (!alpha && !pad) return Status::InvalidArgument("base64: invalid character or padding");
  }
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return Status::InvalidArgument("base64: invalid character");
  size_t pad = 0;
  if (text.back() == '=') pad++;
  if (text.size() >= 2 && text[text.size() - 2] == '=') pad++;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

json ScriptResult::ToJson() const {
  json results = json::array();
  for (const auto& s : statements) {
    results.push_back({{"columns", s.columns},
                       {"rows", s.rows},
                       {"rows_affected", s.rows_affected},
                       {"truncated", s.truncated}});
  }
  return json{{"results", results}};
}

json ScriptError::details() const {
  json d = json::object();
  if (statement >= 0) d["statement"] = statement;
  if (statement >= 0 && !sql.empty()) d["sql"] = sql;
  return d;
}

namespace {

// The statement that starts at `from`: up to `to` when SQLite prepared it,
// else (to == nullptr: it failed to prepare) up to the first ';' that
// completes it, as SQLite's own tokenizer sees it. Blanks collapsed, cut at
// 200 bytes: echoed in errors so that the client sees which one failed.
std::string StatementText(const char* from, const char* to, const char* end) {
  constexpr size_t kScan = 4096, kMax = 200;
  if (to == nullptr) {
    to = from + std::min(kScan, static_cast<size_t>(end - from));
    for (const char* p = from; p < to; ++p) {
      if (*p == ';' && sqlite3_complete(std::string(from, p + 1).c_str())) {
        to = p + 1;
        break;
      }
    }
  }
  std::string out;
  bool blank = false;
  for (const char* p = from; p < to && out.size() < kMax; ++p) {
    if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
      blank = !out.empty();
      continue;
    }
    if (blank) out += ' ';
    blank = false;
    out += *p;
  }
  if (out.size() >= kMax) out += "...";
  return out;
}

std::string QuoteIdentifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Drops every TEMP table, view and trigger (indexes go with their tables) when
// the script wrote the temp schema: no TEMP object outlives the script on the
// branch's shared connection. Runs inside the script's transaction.
int DropTempObjects(sqlite3* db, Sandbox::State* st) {
  if (sqlite3_txn_state(db, "temp") != SQLITE_TXN_WRITE) return SQLITE_OK;
  std::vector<std::string> drops;
  st->internal = true;
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db,
                              "SELECT type, name FROM temp.sqlite_schema WHERE type IN "
                              "('trigger', 'view', 'table') AND name NOT LIKE 'sqlite\\_%' "
                              "ESCAPE '\\' ORDER BY type = 'table'",
                              -1, &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, StmtCloser> stmt(raw);
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      std::string type = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
      std::string name = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 1));
      drops.push_back("DROP " + type + " IF EXISTS temp." + QuoteIdentifier(name));
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  stmt.reset();
  for (size_t i = 0; i < drops.size() && rc == SQLITE_OK; ++i) {
    rc = sqlite3_exec(db, drops[i].c_str(), nullptr, nullptr, nullptr);
  }
  st->internal = false;
  return rc;
}

// A statement's rows or the script's bytes passed the caps, and the script
// did not ask to be cut.
Status ResultTooLarge(const std::string& where, bool rows, const SandboxOptions& o) {
  std::string what = rows ? "its rows pass max_result_rows (" + std::to_string(o.max_result_rows) + ")"
                          : "the results pass max_result_bytes (" +
                                std::to_string(o.max_result_bytes) + " bytes)";
  return Status::ResourceExhausted(
      where + what +
          "; nothing was returned or committed. Narrow it (LIMIT/OFFSET, or WHERE key > last "
          "ORDER BY key LIMIT n), or read it in pages: send page_size, then each answer's "
          "next_cursor (docs/api.md)",
      "result_too_large");
}

// The statement of the script being run, named in the script's error: its
// index (-1: none) and its text [from, to), to null when it did not prepare.
struct Position {
  int index = -1;
  const char* from = nullptr;
  const char* to = nullptr;
};

// The checks a script passes before it touches the connection.
Status CheckScript(const Script& script, const SandboxOptions& o) {
  if (static_cast<int64_t>(script.sql.size()) > o.max_sql_bytes) {
    return Status::ResourceExhausted("SQL text is " + std::to_string(script.sql.size()) +
                                         " bytes; the limit is " +
                                         std::to_string(o.max_sql_bytes),
                                     "sql_too_long");
  }
  if (!script.params.is_null() && !script.params.is_array() && !script.params.is_object()) {
    return Status::InvalidArgument("params: expected an array or an object", "invalid_params");
  }
  return Status::OK();
}

// How Execute runs a script: in a transaction of its own (wrap: BEGIN ...
// COMMIT, read-only: BEGIN DEFERRED ... ROLLBACK), or as is (a session's
// transaction control, or a statement inside the session's transaction;
// commits: it ends that transaction, so before_commit runs first). keep_state:
// the connection is a session's own, whose settings persist.
struct Plan {
  bool wrap = true;
  bool read_only = false;
  bool commits = false;
  bool keep_state = false;
  // Wraps, but without BEGIN and ROLLBACK: a script of one statement that
  // only reads (IsOneRead) runs in the read transaction SQLite opens for it.
  bool one_read = false;
  // The session's statement came from, and goes back to, the connection's
  // kept statements (State::prepared; a shared connection's, outside any
  // transaction): the same text run again skips SQLite's parser, as a REST
  // script's does.
  bool keep = false;
  bool wrote_preparing = false;  // what the authorizer noted when it was prepared
  // A session's one statement, prepared by PlanSession and run as is (SQLite
  // re-prepares it itself if the BEGIN around it saw another schema).
  std::unique_ptr<sqlite3_stmt, StmtCloser> stmt;
  const char* tail = nullptr;  // where its text ends
};

// A session's script (Script::session): exactly one statement, prepared
// through the authorizer to see what it does to the session's transaction.
Result<Plan> PlanSession(sqlite3* db, Sandbox::State* st, const Script& script) {
  st->read_only = script.read_only;
  st->txn_control.clear();
  st->denial.clear();
  st->denied_read_only = false;
  st->wrote = false;  // what preparing the statement writes (IsOneRead); Begin resets it again
  const char* begin = script.sql.data();
  const char* end = begin + script.sql.size();
  const char* tail = nullptr;
  sqlite3_stmt* raw = nullptr;
  // Only a statement kept by a script of its own is taken (never transaction
  // control: a script's authorizer refuses it), so txn_control stays empty.
  const bool keepable = script.shared_connection && sqlite3_get_autocommit(db) != 0 &&
                        script.sql.size() <= Sandbox::State::kPreparedMaxSqlBytes;
  int rc = SQLITE_OK;
  if (keepable && TakePrepared(st, script.sql, &raw, &st->wrote)) {
    tail = end;
  } else {
    rc = sqlite3_prepare_v3(db, begin, static_cast<int>(script.sql.size()),
                            keepable ? SQLITE_PREPARE_PERSISTENT : 0, &raw, &tail);
  }
  std::unique_ptr<sqlite3_stmt, StmtCloser> stmt(raw);
  if (rc != SQLITE_OK) return StatusFromSqlite(db, st, rc, "");
  if (!stmt) {
    return Status::InvalidArgument("the SQL text holds no statement", "no_statement");
  }
  if (tail != nullptr && SkipBlanksAndComments(tail, end) != end) {
    return Status::InvalidArgument(
        "the SQL text holds more than one statement; send one per request (or a sequence)",
        "many_statements");
  }
  const int declared = sqlite3_bind_parameter_count(stmt.get());
  if (script.params.is_array() && script.params.size() != static_cast<size_t>(declared)) {
    return Status::InvalidArgument("params: " + std::to_string(script.params.size()) +
                                       " given, the statement uses " + std::to_string(declared),
                                   "invalid_params");
  }
  Plan plan;
  plan.keep_state = !script.shared_connection;
  plan.tail = tail != nullptr ? tail : end;
  const bool autocommit = sqlite3_get_autocommit(db) != 0;
  const std::string& control = st->txn_control;
  if (control.empty() && autocommit) {
    plan.read_only = script.read_only || sqlite3_stmt_readonly(stmt.get());
    plan.one_read = IsOneRead(stmt.get(), script.sql, st->wrote);
    plan.keep = keepable;
    plan.wrote_preparing = st->wrote;
    plan.stmt = std::move(stmt);
    return plan;
  }
  plan.wrap = false;
  if (autocommit && (control == "BEGIN" || control == "SAVEPOINT") && script.shared_connection) {
    return Status::FailedPrecondition("the statement opens a transaction: it needs a connection "
                                      "of the session's own",
                                      "needs_own_connection");
  }
  plan.commits = !autocommit && (control == "COMMIT" || control == "RELEASE");
  plan.stmt = std::move(stmt);
  return plan;
}

// Starts the script: a clean connection (never inheriting an open
// transaction, unless the plan runs inside the session's), the flags reset,
// the deadline set, and the transaction begun when the plan wraps.
Status Begin(sqlite3* db, Sandbox::State* st, const SandboxOptions& o, const Plan& plan) {
  if (plan.wrap && sqlite3_get_autocommit(db) == 0) Internal(db, st, "ROLLBACK");
  if (plan.keep_state) {
    st->total_changes_base = sqlite3_total_changes64(db);
  } else {
    ResetConnectionState(db, st);
  }

  st->read_only = plan.read_only;
  st->timed_out = false;
  st->cpu_wait = false;
  st->wrote = false;
  st->denial.clear();
  st->denied_read_only = false;
  st->deadline_nanos = o.clock->NowMonotonicNanos() + o.statement_timeout_ms * 1000000;

  if (!plan.wrap || plan.one_read) return Status::OK();
  int rc = Internal(db, st, plan.read_only ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE");
  if (rc != SQLITE_OK) return StatusFromSqlite(db, st, rc, "BEGIN: ");
  return Status::OK();
}

// Steps one prepared statement to its end into *out: its columns, its rows
// (the first script.skip_rows skipped when paged; at row_cap rows or
// o.max_result_bytes bytes cut when the script allows it, else
// result_too_large) and the rows it changed. *bytes: the script's result
// bytes so far.
Status RunStatement(sqlite3* db, Sandbox::State* st, const SandboxOptions& o,
                    const Script& script, sqlite3_stmt* stmt, const std::string& where,
                    int64_t row_cap, int64_t* bytes, StatementResult* out) {
  const bool cut = script.truncate || script.paged;
  int ncol = 0;
  sqlite3_int64 changes_before = sqlite3_total_changes64(db);
  int64_t rows = 0;
  int64_t skip = script.paged ? script.skip_rows : 0;
  for (bool first = true;; first = false) {
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return StatusFromSqlite(db, st, rc, where);
    // The columns once stepped: a statement prepared before a schema change
    // (a kept one, State::prepared) is prepared again by its first step.
    if (first) {
      ncol = sqlite3_column_count(stmt);
      for (int i = 0; i < ncol; ++i) {
        const char* name = sqlite3_column_name(stmt, i);
        out->columns.push_back(name ? name : "");
        const char* decltype_ = sqlite3_column_decltype(stmt, i);
        out->decltypes.push_back(decltype_ ? decltype_ : "");
      }
    }
    if (rc == SQLITE_DONE) break;
    if (skip > 0) {
      --skip;
      continue;
    }
    if (rows >= row_cap || *bytes >= o.max_result_bytes) {
      if (!cut) return ResultTooLarge(where, rows >= row_cap, o);
      out->truncated = true;
      break;
    }
    json row = json::array();
    for (int i = 0; i < ncol; ++i) row.push_back(ColumnValue(stmt, i, bytes));
    out->rows.push_back(std::move(row));
    ++rows;
  }
  if (sqlite3_total_changes64(db) != changes_before) {
    out->rows_affected = sqlite3_changes64(db);
  }
  out->last_insert_rowid = sqlite3_last_insert_rowid(db);
  return Status::OK();
}

// Prepares and runs the script's statements in order, appending each one's
// result to *result; *positional: the positional params they used. *pos
// follows the statement being run, so that a failure names it.
Status RunStatements(sqlite3* db, Sandbox::State* st, const SandboxOptions& o,
                     const Script& script, ScriptResult* result, size_t* positional,
                     Position* pos) {
  int64_t row_cap = o.max_result_rows;
  if (script.paged && script.page_rows > 0) row_cap = std::min(row_cap, script.page_rows);
  int64_t bytes = 0;
  const char* tail = script.sql.data();
  const char* end = script.sql.data() + script.sql.size();
  // A script of one statement may find it prepared (State::prepared), and
  // is kept prepared after it ran well.
  const bool keepable =
      !script.session && script.sql.size() <= Sandbox::State::kPreparedMaxSqlBytes;
  while (tail < end) {
    sqlite3_stmt* raw = nullptr;
    const char* next = nullptr;
    st->denial.clear();
    int rc = SQLITE_OK;
    const bool first = tail == script.sql.data();
    bool wrote_preparing = false;
    if (first && keepable && TakePrepared(st, script.sql, &raw, &wrote_preparing)) {
      st->wrote = st->wrote || wrote_preparing;
      next = end;
    } else {
      const bool wrote_before = st->wrote;
      st->wrote = false;
      rc = sqlite3_prepare_v3(db, tail, static_cast<int>(end - tail),
                              first && keepable ? SQLITE_PREPARE_PERSISTENT : 0, &raw, &next);
      wrote_preparing = st->wrote;
      st->wrote = wrote_before || wrote_preparing;
    }
    std::unique_ptr<sqlite3_stmt, StmtCloser> stmt(raw);
    pos->from = tail;
    pos->to = nullptr;
    if (rc != SQLITE_OK) {
      pos->index = static_cast<int>(result->statements.size());
      return StatusFromSqlite(
          db, st, rc, script.session ? "" : "statement " + std::to_string(pos->index + 1) + ": ");
    }
    if (next == nullptr || next <= tail) next = end;
    pos->to = next;
    tail = next;
    if (!stmt) continue;  // whitespace or a comment
    pos->index = static_cast<int>(result->statements.size());
    std::string where =
        script.session ? "" : "statement " + std::to_string(pos->index + 1) + ": ";
    if (script.session && pos->index > 0) {
      return Status::InvalidArgument("a session runs one statement at a time", "invalid_argument");
    }
    if (script.paged && pos->index > 0) {
      return Status::InvalidArgument(
          "paging (page_size, cursor) needs a script of exactly one statement",
          "invalid_argument");
    }
    if (Status s = BindParams(stmt.get(), script.params, positional); !s.ok()) {
      return s.WithContext("statement " + std::to_string(pos->index + 1));
    }
    StatementResult out;
    BRANCHDB_RETURN_IF_ERROR(
        RunStatement(db, st, o, script, stmt.get(), where, row_cap, &bytes, &out));
    if (!sqlite3_stmt_readonly(stmt.get())) result->changed = true;
    result->statements.push_back(std::move(out));
    if (first && keepable && SkipBlanksAndComments(next, end) == end &&
        !st->settings_changed) {
      KeepPrepared(st, script.sql, script.read_only, stmt.release(), wrote_preparing);
    }
  }
  return Status::OK();
}

// Runs the session's statement that PlanSession prepared (binding its
// params), as RunStatements runs each of a script's.
Status RunPlanned(sqlite3* db, Sandbox::State* st, const SandboxOptions& o, const Script& script,
                  Plan* plan, ScriptResult* result, size_t* positional, Position* pos) {
  pos->index = 0;
  pos->from = script.sql.data();
  pos->to = plan->tail;
  BRANCHDB_RETURN_IF_ERROR(BindParams(plan->stmt.get(), script.params, positional));
  StatementResult out;
  int64_t bytes = 0;
  BRANCHDB_RETURN_IF_ERROR(RunStatement(db, st, o, script, plan->stmt.get(), "",
                                        o.max_result_rows, &bytes, &out));
  if (!sqlite3_stmt_readonly(plan->stmt.get())) result->changed = true;
  result->statements.push_back(std::move(out));
  if (plan->keep && !st->settings_changed) {
    KeepPrepared(st, script.sql, script.read_only, plan->stmt.release(), plan->wrote_preparing);
  }
  plan->stmt.reset();
  return Status::OK();
}

// Ends the script's transaction: ROLLBACK (no checkpoint) when it is
// read-only or nothing may have changed, else drops its TEMP objects, runs
// script.before_commit and COMMITs. Sets result->changed.
Status Finish(sqlite3* db, Sandbox::State* st, const Script& script, bool read_only,
              ScriptResult* result) {
  // Conservative: any statement that may write, any write the authorizer let
  // through (also from a function's nested SQL), or any row changed.
  result->changed = result->changed || st->wrote ||
                    sqlite3_total_changes64(db) != st->total_changes_base;
  if (read_only || !result->changed) {
    int rc = Internal(db, st, "ROLLBACK");  // nothing to keep: no checkpoint
    if (rc != SQLITE_OK) return StatusFromSqlite(db, st, rc, "ROLLBACK: ");
    return Status::OK();
  }
  int rc = DropTempObjects(db, st);
  if (rc != SQLITE_OK) return StatusFromSqlite(db, st, rc, "dropping TEMP objects: ");
  if (script.before_commit) BRANCHDB_RETURN_IF_ERROR(script.before_commit());
  rc = Internal(db, st, "COMMIT");
  if (rc != SQLITE_OK) return StatusFromSqlite(db, st, rc, "COMMIT: ");
  return Status::OK();
}

}  // namespace

Result<ScriptResult> Sandbox::Execute(const Script& script, ScriptError* error) {
  State* st = state_.get();
  // The script's claim on the CPU scheduler: a run slot from after BEGIN to
  // the last statement; given up early by fail() and before the commit, and
  // on every other path when it goes out of scope (after st->run is unset).
  CpuScheduler::Run run(options_.scheduler, script.client);
  struct Unbind {
    State* st;
    ~Unbind() { st->run = nullptr; }
  } unbind{st};
  Position pos;
  Plan plan;
  plan.read_only = script.read_only;
  st->session = script.session;
  st->last_rc = 0;
  auto fail = [&](Status s) -> Result<ScriptResult> {
    plan.stmt.reset();  // finalized before the ROLLBACK
    run.Release();
    st->deadline_nanos = 0;
    // A session's own transaction stays open after a failed statement, as
    // in SQLite (which itself rolls back after some errors).
    if (plan.wrap && sqlite3_get_autocommit(db_) == 0) Internal(db_, st, "ROLLBACK");
    st->read_only = false;
    st->session = false;
    if (!plan.keep_state) ResetConnectionState(db_, st);
    if (error != nullptr) {
      *error = ScriptError{s, pos.index, "", st->last_rc};
      if (pos.index >= 0 && pos.from != nullptr) {
        error->sql = StatementText(pos.from, pos.to, script.sql.data() + script.sql.size());
      }
    }
    return s;
  };
  if (Status s = CheckScript(script, options_); !s.ok()) return fail(s);
  if (script.session) {
    auto planned = PlanSession(db_, st, script);
    if (!planned.ok()) return fail(planned.status());
    plan = std::move(*planned);
  } else {
    plan.one_read = PreparedIsOneRead(st, script.sql, script.read_only);
  }
  if (Status s = Begin(db_, st, options_, plan); !s.ok()) return fail(s);
  if (plan.commits && script.before_commit) {
    if (Status s = script.before_commit(); !s.ok()) return fail(s);
  }
  // The branch's lock is taken (BEGIN): only now a run slot (the lock rule of
  // cpu_scheduler.h). Waiting for it counts against the statement timeout.
  st->run = &run;
  if (!run.Acquire(st->deadline_nanos)) return fail(StatementTimeout("", true));

  ScriptResult result;
  size_t next_positional = 0;
  Status ran =
      plan.stmt ? RunPlanned(db_, st, options_, script, &plan, &result, &next_positional, &pos)
                : RunStatements(db_, st, options_, script, &result, &next_positional, &pos);
  if (!ran.ok()) return fail(ran);
  run.Release();  // the commit waits for the disk, not for a CPU
  pos.index = -1;
  if (script.params.is_array() && next_positional != script.params.size()) {
    return fail(Status::InvalidArgument("params: " + std::to_string(script.params.size()) +
                                            " given, the script uses " +
                                            std::to_string(next_positional),
                                        "invalid_params"));
  }
  st->deadline_nanos = 0;
  if (plan.wrap && !plan.one_read) {
    if (Status s = Finish(db_, st, script, plan.read_only, &result); !s.ok()) return fail(s);
  }
  st->read_only = false;
  st->session = false;
  if (!plan.keep_state) ResetConnectionState(db_, st);
  return result;
}

Result<Sandbox::Description> Sandbox::Describe(const std::string& sql, ScriptError* error) {
  State* st = state_.get();
  st->session = true;  // transaction control describes too
  st->read_only = false;
  st->denial.clear();
  st->denied_read_only = false;
  st->last_rc = 0;
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), 0, &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, StmtCloser> stmt(raw);
  st->session = false;
  st->txn_control.clear();
  if (rc != SQLITE_OK) {
    Status s = StatusFromSqlite(db_, st, rc, "");
    if (error != nullptr) *error = ScriptError{s, 0, "", st->last_rc};
    return s;
  }
  Description d;
  if (!stmt) return d;
  for (int i = 1, n = sqlite3_bind_parameter_count(stmt.get()); i <= n; ++i) {
    const char* name = sqlite3_bind_parameter_name(stmt.get(), i);
    d.params.push_back(name ? name : "");
  }
  for (int i = 0, n = sqlite3_column_count(stmt.get()); i < n; ++i) {
    const char* name = sqlite3_column_name(stmt.get(), i);
    const char* type = sqlite3_column_decltype(stmt.get(), i);
    d.columns.push_back(name ? name : "");
    d.decltypes.push_back(type ? type : "");
  }
  d.is_explain = sqlite3_stmt_isexplain(stmt.get()) != 0;
  d.is_readonly = sqlite3_stmt_readonly(stmt.get()) != 0;
  return d;
}

}  // namespace branchdb::server::sql
