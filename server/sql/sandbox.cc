// Hardening of a connection: authorizer, limits, db_config, progress handler.
// Script execution is in script.cc.
#include "server/sql/sandbox.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <vector>

#include "server/sql/allow_list.h"
#include "server/sql/sandbox_internal.h"

namespace branchdb::server::sql {
namespace {

// VM instructions between progress-handler calls: a few microseconds of work.
constexpr int kProgressOps = 1000;

std::string Lower(const char* s) {
  std::string out = s ? s : "";
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

const std::set<std::string>& QueryPragmas() {
  static const std::set<std::string> s = {
      "table_info",      "table_xinfo",      "table_list",    "index_list",   "index_info",
      "index_xinfo",     "foreign_key_list", "foreign_key_check", "integrity_check",
      "quick_check",     "collation_list",   "function_list", "module_list",  "pragma_list",
      "database_list",   "compile_options",  "optimize"};
  return s;
}
const std::set<std::string>& ReadOnlyPragmas() {
  static const std::set<std::string> s = {"page_count",    "page_size",      "freelist_count",
                                          "data_version",  "schema_version", "encoding",
                                          "max_page_count", "auto_vacuum"};
  return s;
}
const std::set<std::string>& SettablePragmas() {
  static const std::set<std::string> s = {"user_version",       "application_id",
                                          "foreign_keys",       "defer_foreign_keys",
                                          "recursive_triggers", "case_sensitive_like"};
  return s;
}

bool IsWrite(int action) {
  switch (action) {
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_ALTER_TABLE:
    case SQLITE_REINDEX:
    case SQLITE_ANALYZE:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
      return true;
    default:
      return false;
  }
}

// SQLite reports SQLITE_UPDATE of the schema table's columns while it prepares
// an eponymous virtual table such as pragma_table_info('t'): a read. A script
// cannot really write the schema table (SQLITE_DBCONFIG_DEFENSIVE refuses it,
// and DDL has its own actions above), so this is never a write of the request.
bool IsSchemaTableUpdate(int action, const char* table) {
  if (action != SQLITE_UPDATE || table == nullptr) return false;
  std::string t = Lower(table);
  return t == "sqlite_master" || t == "sqlite_schema" || t == "sqlite_temp_master" ||
         t == "sqlite_temp_schema";
}

int Deny(Sandbox::State* st, bool read_only, std::string what) {
  st->denied_read_only = read_only;
  st->denial = std::move(what);
  return SQLITE_DENY;
}

// Functions and modules: the reviewed allow-list (allow_list.h) decides.
int AuthorizeFunction(Sandbox::State* st, const char* name) {
  const Review* r = FindFunctionReview(name ? name : "");
  if (r == nullptr) {
    return Deny(st, false,
                std::string(name ? name : "") +
                    "() is not allowed: it is not on the sandbox's reviewed function list");
  }
  if (!r->allowed) {
    return Deny(st, false, std::string(r->name) + "() is not allowed: " + std::string(r->reason));
  }
  return SQLITE_OK;
}

int AuthorizeModule(Sandbox::State* st, const char* module) {
  const Review* r = FindModuleReview(module ? module : "");
  if (r != nullptr && r->allowed) return SQLITE_OK;
  return Deny(st, false,
              "virtual table module " + std::string(module ? module : "") + " is not allowed" +
                  (r ? ": " + std::string(r->reason) : " (not on the sandbox's reviewed list)"));
}

bool IsConnectionSetting(const std::string& pragma) {
  return pragma == "foreign_keys" || pragma == "recursive_triggers" ||
         pragma == "case_sensitive_like";
}

int Authorizer(void* arg, int action, const char* a1, const char* a2, const char* /*db*/,
               const char* /*trigger*/) {
  auto* st = static_cast<Sandbox::State*>(arg);
  if (st->internal) return SQLITE_OK;
  switch (action) {
    case SQLITE_ATTACH:
      return Deny(st, false, "ATTACH is not allowed (a branch is one database)");
    case SQLITE_DETACH:
      return Deny(st, false, "DETACH is not allowed");
    case SQLITE_TRANSACTION:
      if (st->session) {
        st->txn_control = a1 ? a1 : "";
        return SQLITE_OK;
      }
      return Deny(st, false,
                  std::string(a1 ? a1 : "transaction control") +
                      " is not allowed: each request's script already runs as one transaction");
    case SQLITE_SAVEPOINT:
      if (st->session && a1 != nullptr) {
        std::string op = a1;
        st->txn_control = op == "BEGIN" ? "SAVEPOINT" : op == "RELEASE" ? "RELEASE" : "ROLLBACK TO";
      }
      return SQLITE_OK;
    case SQLITE_FUNCTION:
      return AuthorizeFunction(st, a2);
    case SQLITE_PRAGMA: {
      std::string name = Lower(a1);
      bool has_value = a2 != nullptr;
      if (QueryPragmas().count(name)) return SQLITE_OK;
      if (ReadOnlyPragmas().count(name) && !has_value) return SQLITE_OK;
      if (SettablePragmas().count(name)) {
        if (has_value && st->read_only &&
            (name == "user_version" || name == "application_id")) {
          return Deny(st, true, "PRAGMA " + name + " writes; this request is read-only");
        }
        if (has_value && IsConnectionSetting(name)) st->settings_changed = true;
        return SQLITE_OK;
      }
      return Deny(st, false,
                  "PRAGMA " + name + (has_value ? " = ..." : "") +
                      " is not allowed (see the PRAGMA allow-list in docs/api.md)");
    }
    default:
      break;
  }
  if (action == SQLITE_CREATE_VTABLE && AuthorizeModule(st, a2) != SQLITE_OK) return SQLITE_DENY;
  if (IsWrite(action) && !IsSchemaTableUpdate(action, a1)) {
    if (st->read_only) return Deny(st, true, "this request is read-only; writes are refused");
    st->wrote = true;
  }
  return SQLITE_OK;
}

// Every kProgressOps VM instructions: the statement timeout, then the CPU
// scheduler's turn (which may wait for a slot, until the same deadline).
int Progress(void* arg) {
  auto* st = static_cast<Sandbox::State*>(arg);
  if (st->deadline_nanos == 0) return 0;
  if (st->clock->NowMonotonicNanos() >= st->deadline_nanos) {
    st->timed_out = true;
    return 1;
  }
  if (st->run != nullptr && !st->run->Tick(st->deadline_nanos)) {
    st->timed_out = true;
    st->cpu_wait = true;
    return 1;
  }
  return 0;
}

// changes() and total_changes() of this request only: SQLite's counters are
// the connection's, and a branch's connection serves every client in turn.
void ChangesFunc(sqlite3_context* ctx, int, sqlite3_value**) {
  auto* st = static_cast<Sandbox::State*>(sqlite3_user_data(ctx));
  sqlite3* db = sqlite3_context_db_handle(ctx);
  // Unchanged total: no statement of this request changed a row, so the
  // connection's last count is another request's (or this one's 0).
  bool mine = sqlite3_total_changes64(db) != st->total_changes_base;
  sqlite3_result_int64(ctx, mine ? sqlite3_changes64(db) : 0);
}

void TotalChangesFunc(sqlite3_context* ctx, int, sqlite3_value**) {
  auto* st = static_cast<Sandbox::State*>(sqlite3_user_data(ctx));
  sqlite3_result_int64(ctx,
                       sqlite3_total_changes64(sqlite3_context_db_handle(ctx)) -
                           st->total_changes_base);
}

// A boolean PRAGMA's value (false when it cannot be read).
bool PragmaFlag(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  bool on = false;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    on = sqlite3_column_int(stmt, 0) != 0;
  }
  sqlite3_finalize(stmt);
  return on;
}

// Keeps only the reviewed, allowed virtual-table modules on db.
int DropUnreviewedModules(sqlite3* db) {
  std::vector<const char*> keep;
  for (const auto& r : ModuleReviews()) {
    if (r.allowed) keep.push_back(r.name.data());  // the names are literals: NUL-terminated
  }
  keep.push_back(nullptr);
  return sqlite3_drop_modules(db, keep.data());
}

}  // namespace

void ResetConnectionState(sqlite3* db, Sandbox::State* st) {
  sqlite3_set_last_insert_rowid(db, 0);
  st->total_changes_base = sqlite3_total_changes64(db);
  if (!st->settings_changed) return;
  std::string sql = std::string("PRAGMA foreign_keys=") + (st->foreign_keys ? "1" : "0") +
                    "; PRAGMA recursive_triggers=" + (st->recursive_triggers ? "1" : "0") +
                    "; PRAGMA case_sensitive_like=0;";
  st->internal = true;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK) {
    st->settings_changed = false;
  }
  st->internal = false;
}

bool TakePrepared(Sandbox::State* st, const std::string& sql, sqlite3_stmt** stmt, bool* wrote) {
  auto& cache = st->prepared;
  for (auto it = cache.begin(); it != cache.end(); ++it) {
    if (it->read_only != st->read_only || it->sql != sql) continue;
    *stmt = it->stmt;
    *wrote = it->wrote;
    cache.erase(it);
    return true;
  }
  return false;
}

bool PreparedIsOneRead(const Sandbox::State* st, const std::string& sql, bool read_only) {
  for (const auto& p : st->prepared) {
    if (p.read_only == read_only && p.sql == sql) return p.one_read;
  }
  return false;
}

const char* SkipBlanksAndComments(const char* p, const char* end) {
  while (p < end) {
    if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == '\f' || *p == ';') {
      ++p;
    } else if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
      while (p < end && *p != '\n') ++p;
    } else if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
      p += 2;
      while (end - p >= 2 && !(p[0] == '*' && p[1] == '/')) ++p;
      p = end - p >= 2 ? p + 2 : end;
    } else {
      break;
    }
  }
  return p;
}

bool IsOneRead(sqlite3_stmt* stmt, const std::string& sql, bool wrote) {
  if (wrote || sqlite3_stmt_readonly(stmt) == 0 || sqlite3_stmt_isexplain(stmt) != 0) {
    return false;
  }
  const char* end = sql.data() + sql.size();
  const char* p = SkipBlanksAndComments(sql.data(), end);
  const char* word = p;
  while (p < end && std::isalpha(static_cast<unsigned char>(*p))) ++p;
  const std::string keyword = Lower(std::string(word, p).c_str());
  return keyword == "select" || keyword == "values" || keyword == "with";
}

void KeepPrepared(Sandbox::State* st, const std::string& sql, bool read_only, sqlite3_stmt* stmt,
                  bool wrote) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  auto& cache = st->prepared;
  if (cache.size() >= Sandbox::State::kPreparedCacheSize) {
    sqlite3_finalize(cache.front().stmt);
    cache.erase(cache.begin());
  }
  cache.push_back({sql, read_only, wrote, IsOneRead(stmt, sql, wrote), stmt});
}

Sandbox::Sandbox(sqlite3* db, const SandboxOptions& options)
    : db_(db), options_(options), state_(std::make_unique<State>()) {
  state_->clock = options.clock;
}

Sandbox::~Sandbox() {
  for (const auto& [text, stmt] : state_->control) sqlite3_finalize(stmt);
  for (const auto& p : state_->prepared) sqlite3_finalize(p.stmt);
  // Unhook our callbacks if the connection outlives us.
  if (db_ != nullptr) {
    sqlite3_set_authorizer(db_, nullptr, nullptr);
    sqlite3_progress_handler(db_, 0, nullptr, nullptr);
    for (const char* name : {"changes", "total_changes"}) {  // SQLite's own again
      sqlite3_create_function_v2(db_, name, 0, SQLITE_UTF8, nullptr, nullptr, nullptr, nullptr,
                                 nullptr);
    }
  }
}

Result<std::unique_ptr<Sandbox>> Sandbox::Attach(sqlite3* db, const SandboxOptions& options) {
  if (db == nullptr || options.clock == nullptr) {
    return Status::InvalidArgument("Sandbox::Attach needs a connection and a clock");
  }
  std::unique_ptr<Sandbox> sb(new Sandbox(db, options));
  auto fail = [&](const char* what) {
    return Status::IOError(std::string("sandbox: ") + what + ": " + sqlite3_errmsg(db),
                           "sql_io_error");
  };
  int on = 0;
  if (sqlite3_enable_load_extension(db, 0) != SQLITE_OK) return fail("load_extension off");
  if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, &on) != SQLITE_OK) {
    return fail("DBCONFIG_ENABLE_LOAD_EXTENSION");
  }
  if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on) != SQLITE_OK || on != 1) {
    return fail("DBCONFIG_DEFENSIVE");
  }
  if (sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on) != SQLITE_OK || on != 0) {
    return fail("DBCONFIG_TRUSTED_SCHEMA");
  }
  // fts3_tokenizer()'s two-argument form stays possible with a bound
  // parameter whatever this says; the authorizer refuses the function itself.
  if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, &on) != SQLITE_OK) {
    return fail("DBCONFIG_ENABLE_FTS3_TOKENIZER");
  }
  if (DropUnreviewedModules(db) != SQLITE_OK) return fail("drop_modules");
  State* st = sb->state_.get();
  st->foreign_keys = PragmaFlag(db, "PRAGMA foreign_keys");
  st->recursive_triggers = PragmaFlag(db, "PRAGMA recursive_triggers");
  st->total_changes_base = sqlite3_total_changes64(db);
  if (sqlite3_create_function_v2(db, "changes", 0, SQLITE_UTF8, st, ChangesFunc, nullptr,
                                 nullptr, nullptr) != SQLITE_OK ||
      sqlite3_create_function_v2(db, "total_changes", 0, SQLITE_UTF8, st, TotalChangesFunc,
                                 nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail("per-request changes()");
  }
  auto limit = [&](int id, int64_t value) {
    sqlite3_limit(db, id, static_cast<int>(std::min<int64_t>(value, 0x7fffffff)));
  };
  limit(SQLITE_LIMIT_SQL_LENGTH, options.max_sql_bytes);
  limit(SQLITE_LIMIT_LENGTH, options.max_value_bytes);
  limit(SQLITE_LIMIT_COLUMN, 2000);
  limit(SQLITE_LIMIT_EXPR_DEPTH, 100);
  limit(SQLITE_LIMIT_COMPOUND_SELECT, 50);
  limit(SQLITE_LIMIT_VARIABLE_NUMBER, 999);
  limit(SQLITE_LIMIT_ATTACHED, 0);
  limit(SQLITE_LIMIT_TRIGGER_DEPTH, 32);
  limit(SQLITE_LIMIT_FUNCTION_ARG, 100);
  limit(SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 10000);
  if (options.max_db_bytes > 0) {
    // page_size of this database (4096 for a new one).
    sqlite3_stmt* stmt = nullptr;
    int64_t page_size = 4096;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      page_size = std::max<int64_t>(512, sqlite3_column_int64(stmt, 0));
    }
    sqlite3_finalize(stmt);
    std::string pragma = "PRAGMA max_page_count=" +
                         std::to_string(std::max<int64_t>(1, options.max_db_bytes / page_size));
    if (sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      return fail("max_page_count");
    }
  }
  if (sqlite3_set_authorizer(db, Authorizer, sb->state_.get()) != SQLITE_OK) {
    return fail("authorizer");
  }
  sqlite3_progress_handler(db, kProgressOps, Progress, sb->state_.get());
  return sb;
}

std::string ScriptResult::AnswerJson(std::optional<uint64_t> lsn, uint64_t snapshot_lsn,
                                     bool read_only,
                                     const std::optional<std::string>& next_cursor) const {
  auto dump = [](const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::string out = "{\"lsn\":";
  out += lsn ? std::to_string(*lsn) : "null";
  out += ",\"next_cursor\":";
  out += next_cursor ? dump(*next_cursor) : "null";
  out += read_only ? ",\"read_only\":true" : ",\"read_only\":false";
  out += ",\"results\":[";
  for (size_t i = 0; i < statements.size(); ++i) {
    const StatementResult& s = statements[i];
    if (i > 0) out += ',';
    out += "{\"columns\":";
    out += dump(s.columns);
    out += ",\"rows\":";
    out += dump(s.rows);
    out += ",\"rows_affected\":";
    out += std::to_string(s.rows_affected);
    out += s.truncated ? ",\"truncated\":true}" : ",\"truncated\":false}";
  }
  out += "],\"snapshot_lsn\":";
  out += std::to_string(snapshot_lsn);
  out += '}';
  return out;
}

}  // namespace branchdb::server::sql
