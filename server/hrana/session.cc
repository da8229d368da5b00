#include "server/hrana/session.h"

#include <sqlite3.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "catalog/catalog.h"
#include "server/guard/guard.h"
#include "server/http/errors.h"
#include "server/http/metrics.h"
#include "server/object_storage/remote_durability.h"
#include "server/routes/common.h"
#include "server/sql/annotate.h"

namespace branchdb::server::hrana {
namespace {

using nlohmann::json;

json Ok(json response) { return {{"type", "ok"}, {"response", std::move(response)}}; }
json Failed(const Error& e) { return {{"type", "error"}, {"error", EncodeError(e)}}; }

// The pieces of a SQL text, split where SQLite's tokenizer ends a statement
// (sqlite3_complete at each ';'); a piece may hold only blanks and comments.
std::vector<std::string> SplitStatements(const std::string& sql) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] != ';') continue;
    std::string piece = sql.substr(start, i + 1 - start);
    if (sqlite3_complete(piece.c_str())) {
      out.push_back(std::move(piece));
      start = i + 1;
    }
  }
  if (start < sql.size()) out.push_back(sql.substr(start));
  return out;
}

// About what a row's values weigh in the answer (JSON bytes).
size_t ApproxBytes(const json& row) {
  size_t n = 2;
  for (const json& v : row) {
    if (v.is_string()) {
      n += v.get_ref<const std::string&>().size() + 30;
    } else if (v.is_object() && v.contains("$blob") && v["$blob"].is_string()) {
      n += v["$blob"].get_ref<const std::string&>().size() + 30;
    } else {
      n += 40;
    }
  }
  return n;
}

// The sandbox params of a statement's arguments: an array (positional), an
// object (named) or, with both, an error.
Result<json> Params(const Stmt& stmt) {
  if (!stmt.named_args.empty() && !stmt.args.empty()) {
    return ProtocolError(
        "a statement with both args and named_args is not supported; "
        "bind every parameter by name or every one by position",
        "ARGS_INVALID");
  }
  if (stmt.named_args.empty()) return stmt.args;
  json named = json::object();
  for (const auto& [name, value] : stmt.named_args) named[name] = value;
  return named;
}

}  // namespace

Session::Session(Services& services, Stream& stream, Caller caller)
    : s_(services), stream_(stream), caller_(std::move(caller)) {}

Session::~Session() { Finish(); }

void Session::Finish() {
  lease_.reset();
  ReleaseOwnConnectionIfDone();
}

Status Session::WaitDurable() {
  // Durability is in log order: the highest LSN of each store covers the rest.
  for (const storage::PendingDurability& d : observed_) {
    BRANCHDB_RETURN_IF_ERROR(d.Wait());
    // durability = "remote": in the bucket too (one store: the stream's project).
    BRANCHDB_RETURN_IF_ERROR(WaitRemoteDurable(s_, stream_.project, d.lsn));
  }
  observed_.clear();
  return Status::OK();
}

bool Session::Autocommit() const {
  return !stream_.db || sqlite3_get_autocommit(stream_.db.get()) != 0;
}

Status Session::OpenOwnConnection() {
  lease_.reset();  // from now on the stream runs on its own connection
  catalog::ConnectionRequest request;
  request.pipelined_commits = true;  // its COMMIT is acknowledged by WaitDurable()
  auto db = s_.catalog->OpenBranchConnection(stream_.project, stream_.branch, request);
  if (!db.ok()) return db.status();
  auto sandbox = sql::Sandbox::Attach(db->get(), s_.sandbox);
  if (!sandbox.ok()) return sandbox.status();
  stream_.db = std::move(*db);
  stream_.sandbox = std::move(*sandbox);
  return Status::OK();
}

Result<sql::Sandbox*> Session::Connection() {
  if (stream_.sandbox) return stream_.sandbox.get();
  if (!lease_) {
    const std::string key = routes::ComputeKey(stream_.project, stream_.branch);
    if (s_.guard != nullptr) {  // max_active_computes (docs/api.md, "Quotas")
      guard::Refusal refused;
      BRANCHDB_RETURN_IF_ERROR(
          s_.guard->CheckWake(stream_.project, stream_.branch, caller_.client_id, &refused));
    }
    auto lease = s_.computes->Acquire(key);
    if (!lease.ok()) {
      if (lease.status().IsNotFound()) s_.computes->Remove(key);
      return lease.status();
    }
    lease_ = std::move(*lease);
  }
  return &lease_->sandbox();
}

Result<std::string> Session::ResolveSql(const std::optional<std::string>& sql,
                                        const std::optional<int32_t>& sql_id) const {
  if (sql) return *sql;
  auto it = stream_.stored_sql.find(*sql_id);
  if (it == stream_.stored_sql.end()) {
    return ProtocolError("sql_id " + std::to_string(*sql_id) + " names no stored SQL text",
                         "SQL_UNKNOWN");
  }
  return it->second;
}

bool Session::Execute(const Stmt& stmt, sql::StatementResult* out, Error* error) {
  auto sql = ResolveSql(stmt.sql, stmt.sql_id);
  if (!sql.ok()) {
    *error = ErrorFromStatus(sql.status());
    return false;
  }
  auto params = Params(stmt);
  if (!params.ok()) {
    *error = ErrorFromStatus(params.status());
    return false;
  }
  return ExecuteSql(*sql, *params, out, error);
}

bool Session::ExecuteSql(const std::string& text, const json& params, sql::StatementResult* out,
                         Error* error) {
  if (result_bytes_ > s_.sandbox.max_result_bytes) {
    *error = {"the pipeline's results passed max_result_bytes (" +
                  std::to_string(s_.sandbox.max_result_bytes) +
                  " bytes); this statement was not run: send it in another request",
              "RESULT_TOO_LARGE"};
    return false;
  }
  auto conn = Connection();
  if (!conn.ok()) {
    *error = ErrorFromStatus(conn.status());
    return false;
  }
  sql::Script script;
  script.sql = text;
  script.params = params;
  script.read_only = caller_.read_only;
  script.client = caller_.client_id;
  script.session = true;
  script.shared_connection = !stream_.db;
  sqlite3* db = (*conn)->db();
  // Inside the stream's transaction: this statement is recorded for the
  // transaction's checkpoint, and a COMMIT annotates with all of them.
  const bool in_txn = stream_.db && !sqlite3_get_autocommit(db);
  const int64_t changes_before = sqlite3_total_changes64(db);
  // Read just before a COMMIT, when there is one (a read asks for no LSN).
  std::optional<storage::Lsn> commit_before;
  script.before_commit = [&]() -> Status {
    commit_before = storage::LastCommitLsn(db);
    return AnnotateCommit(db, script, in_txn, changes_before);
  };
  sql::ScriptError failure;
  auto result = (*conn)->Execute(script, &failure);
  if (storage::PendingDurability seen = storage::ObservedDurability(db); seen.store != nullptr) {
    auto same = std::find_if(observed_.begin(), observed_.end(),
                             [&](const auto& d) { return d.store == seen.store; });
    if (same == observed_.end()) {
      observed_.push_back(std::move(seen));
    } else {
      same->lsn = std::max(same->lsn, seen.lsn);
    }
  }
  if (!result.ok() && result.status().reason() == "needs_own_connection") {
    if (Status s = OpenOwnConnection(); !s.ok()) {
      *error = ErrorFromStatus(s);
      return false;
    }
    return ExecuteSql(text, params, out, error);  // BEGIN on the stream's own connection
  }
  if (!result.ok()) {
    if (result.status().reason() != "no_statement") {
      http::CountSqlStatements(*s_.metrics, false);
    }
    *error = ErrorFromScript(failure);
    ReleaseOwnConnectionIfDone();  // SQLite may have rolled the transaction back
    return false;
  }
  http::CountSqlStatements(*s_.metrics, true);
  if (commit_before && storage::LastCommitLsn(db) != *commit_before) {
    s_.metrics->Increment(http::kCommits);
    if (s_.guard != nullptr) s_.guard->Committed(stream_.project, stream_.branch, caller_.client_id);
  }
  const bool now_in_txn = stream_.db && !sqlite3_get_autocommit(db);
  if (!in_txn && now_in_txn) {
    stream_.txn = OpenTransaction();
    stream_.txn.changes_before = changes_before;
  } else if (in_txn && now_in_txn) {
    RecordInTransaction(text, params);
  }
  ReleaseOwnConnectionIfDone();
  *out = std::move(result->statements.empty() ? sql::StatementResult() : result->statements[0]);
  for (const json& row : out->rows) result_bytes_ += static_cast<int64_t>(ApproxBytes(row));
  return true;
}

Status Session::AnnotateCommit(sqlite3* db, const sql::Script& script, bool in_txn,
                               int64_t changes_before) {
  const int64_t max_db_bytes = s_.sandbox.max_db_bytes;
  if (s_.guard != nullptr) {  // max_bytes, max_commits_per_minute (docs/api.md, "Quotas")
    guard::Refusal refused;
    BRANCHDB_RETURN_IF_ERROR(
        s_.guard->CheckCommit(stream_.project, stream_.branch, caller_.client_id, db, &refused));
  }
  if (!in_txn) {
    return sql::AnnotateScript(db, script, caller_.request_id, changes_before, max_db_bytes);
  }
  sql::Script txn;
  txn.sql = stream_.txn.sql;
  txn.params = stream_.txn.params.empty() ? json(nullptr) : stream_.txn.params;
  txn.client = caller_.client_id;
  return sql::AnnotateScript(db, txn, caller_.request_id, stream_.txn.changes_before,
                             max_db_bytes, stream_.txn.replayable);
}

void Session::RecordInTransaction(const std::string& text, const json& params) {
  stream_.txn.sql += text;
  const size_t last = text.find_last_not_of(" \t\r\n");
  if (last != std::string::npos && text[last] != ';') {
    // A trailing "-- comment" would swallow the ';'.
    const size_t line = text.rfind('\n', last);
    if (text.find("--", line == std::string::npos ? 0 : line) != std::string::npos) {
      stream_.txn.sql += '\n';
    }
    stream_.txn.sql += ';';
  }
  stream_.txn.sql += '\n';
  if (params.is_array()) {
    for (const json& v : params) stream_.txn.params.push_back(v);
  } else if (params.is_object() && !params.empty()) {
    stream_.txn.replayable = false;
  }
}

void Session::ReleaseOwnConnectionIfDone() {
  // Held exactly while a transaction is open: a connection kept past it could
  // serve pages of a branch that moved (rollback, reset) since.
  if (stream_.db && sqlite3_get_autocommit(stream_.db.get())) stream_.DropConnection();
}

bool Session::EvalCondition(const BatchCond& c, const std::vector<StepOutcome>& steps) {
  switch (c.kind) {
    case BatchCond::Kind::kOk:
      return c.step < steps.size() && steps[c.step].ran && steps[c.step].ok;
    case BatchCond::Kind::kError:
      return c.step < steps.size() && steps[c.step].ran && !steps[c.step].ok;
    case BatchCond::Kind::kNot:
      return !EvalCondition(c.conds[0], steps);
    case BatchCond::Kind::kAnd:
      for (const auto& inner : c.conds) {
        if (!EvalCondition(inner, steps)) return false;
      }
      return true;
    case BatchCond::Kind::kOr:
      for (const auto& inner : c.conds) {
        if (EvalCondition(inner, steps)) return true;
      }
      return false;
    case BatchCond::Kind::kIsAutocommit:
      return Autocommit();
  }
  return false;
}

std::vector<Session::StepOutcome> Session::RunBatch(const std::vector<BatchStep>& steps) {
  std::vector<StepOutcome> out;
  out.reserve(steps.size());
  for (const BatchStep& step : steps) {
    StepOutcome o;
    // A condition sees the steps before this one only.
    if (!step.condition || EvalCondition(*step.condition, out)) {
      o.ran = true;
      o.ok = Execute(step.stmt, &o.result, &o.error);
      if (o.ok && !step.stmt.want_rows) o.result.rows = json::array();
    }
    out.push_back(std::move(o));
  }
  return out;
}

json Session::Describe(const StreamRequest& r) {
  const char* type = TypeName(r.type);
  auto sql = ResolveSql(r.sql, r.sql_id);
  if (!sql.ok()) return Failed(ErrorFromStatus(sql.status()));
  auto conn = Connection();
  if (!conn.ok()) return Failed(ErrorFromStatus(conn.status()));
  sql::ScriptError failure;
  auto d = (*conn)->Describe(*sql, &failure);
  if (!d.ok()) return Failed(ErrorFromScript(failure));
  json params = json::array(), cols = json::array();
  for (const auto& p : d->params) params.push_back({{"name", p.empty() ? json(nullptr) : json(p)}});
  for (size_t i = 0; i < d->columns.size(); ++i) {
    cols.push_back({{"name", d->columns[i]},
                    {"decltype", d->decltypes[i].empty() ? json(nullptr) : json(d->decltypes[i])}});
  }
  return Ok({{"type", type},
             {"result",
              {{"params", params},
               {"cols", cols},
               {"is_explain", d->is_explain},
               {"is_readonly", d->is_readonly}}}});
}

json Session::StoreSql(const StreamRequest& r) {
  const char* type = TypeName(r.type);
  const size_t cap = static_cast<size_t>(2 * s_.sandbox.max_sql_bytes);
  auto old = stream_.stored_sql.find(*r.sql_id);
  if (old != stream_.stored_sql.end()) {
    return Failed(
        {"sql_id " + std::to_string(*r.sql_id) + " is already in use", "SQL_STORE_ID_IN_USE"});
  }
  if (stream_.stored_bytes + r.sql->size() > cap || stream_.stored_sql.size() >= 1000) {
    return Failed({"the stream stores at most 1000 SQL texts of " + std::to_string(cap) +
                       " bytes in all; close_sql some first",
                   "SQL_STORE_TOO_LARGE"});
  }
  stream_.stored_bytes += r.sql->size();
  stream_.stored_sql[*r.sql_id] = *r.sql;
  return Ok({{"type", type}});
}

void Session::RunInto(const StreamRequest& r, std::string* out) {
  if (r.type != StreamRequest::Type::kExecute || closed_) {
    out->append(http::DumpJson(Run(r)));
    return;
  }
  sql::StatementResult result;
  Error error;
  if (!Execute(r.stmt, &result, &error)) {
    out->append(http::DumpJson(Failed(error)));
    return;
  }
  out->append("{\"response\":{\"result\":");
  AppendStmtResult(out, result, r.stmt.want_rows);
  out->append(",\"type\":\"execute\"},\"type\":\"ok\"}");
}

json Session::Run(const StreamRequest& r) {
  using T = StreamRequest::Type;
  const char* type = TypeName(r.type);
  if (closed_) return Failed({"the stream was closed by an earlier request", "STREAM_CLOSED"});
  switch (r.type) {
    case T::kClose:
      closed_ = true;
      return Ok({{"type", type}});
    case T::kExecute: {
      sql::StatementResult result;
      Error error;
      if (!Execute(r.stmt, &result, &error)) return Failed(error);
      return Ok({{"type", type}, {"result", EncodeStmtResult(result, r.stmt.want_rows)}});
    }
    case T::kBatch: {
      json results = json::array(), errors = json::array();
      for (const StepOutcome& o : RunBatch(r.steps)) {
        results.push_back(o.ran && o.ok ? EncodeStmtResult(o.result, true) : json(nullptr));
        errors.push_back(o.ran && !o.ok ? EncodeError(o.error) : json(nullptr));
      }
      return Ok({{"type", type}, {"result", {{"step_results", results}, {"step_errors", errors}}}});
    }
    case T::kSequence: {
      auto sql = ResolveSql(r.sql, r.sql_id);
      if (!sql.ok()) return Failed(ErrorFromStatus(sql.status()));
      for (const std::string& statement : SplitStatements(*sql)) {
        sql::StatementResult ignored;
        Error error;
        if (!ExecuteSql(statement, json::array(), &ignored, &error)) {
          if (error.code == "NO_STATEMENT") continue;  // blanks and comments only
          return Failed(error);
        }
      }
      return Ok({{"type", type}});
    }
    case T::kDescribe:
      return Describe(r);
    case T::kStoreSql:
      return StoreSql(r);
    case T::kCloseSql: {
      auto it = stream_.stored_sql.find(*r.sql_id);
      if (it != stream_.stored_sql.end()) {
        stream_.stored_bytes -= it->second.size();
        stream_.stored_sql.erase(it);
      }
      return Ok({{"type", type}});
    }
    case T::kGetAutocommit:
      return Ok({{"type", type}, {"is_autocommit", Autocommit()}});
  }
  return Failed({"unknown request", "PROTO_ERROR"});
}

}  // namespace branchdb::server::hrana
