// Checkpoints, rollback, reset, diff:
//   GET  /v1/projects/{p}/branches/{b}/checkpoints[?limit=N&cursor=C]
//        -> {"checkpoints":[{lsn,time,kind,client_id,request_id,summary,rows_affected,
//                            label,labels,inherited,branch}],"next"}
//   POST /v1/projects/{p}/branches/{b}/checkpoints   {"label","lsn"?} -> 201 checkpoint
//   POST /v1/projects/{p}/branches/{b}/rollback
//        {"to":{"checkpoint":N}|{"lsn":N}|{"timestamp":T}|{"actions":N}|{"label":"x"}}
//        -> {"head_lsn","previous_head_lsn","target_lsn"}
//   POST /v1/projects/{p}/branches/{b}/reset  -> same shape
//   POST /v1/projects/{p}/branches/{b}/promote
//        {"mode":"auto"|"fast_forward"|"replay","dry_run","verify","on_conflict":"fail"|"retry",
//         "max_retries"} -> {"branch","source","mode","dry_run","head_lsn","previous_head_lsn",
//                            "target_lsn","actions","verify","attempts"}  (docs/api.md "Promote")
//   GET  /v1/projects/{p}/branches/{b}/diff?base=BRANCH&kind=schema|data|patch
//        [&base_lsn=N][&lsn=N][&tables=a,b][&limit=N][&cursor=C]  (data, patch: paged)
#include <httplib.h>
#include <sqlite3.h>

#include "auth/auth.h"
#include "server/compute/supervisor.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/routes/call.h"
#include "server/routes/common.h"
#include "server/sql/sandbox.h"
#include "storage/vfs/vfs.h"

namespace branchdb::server::routes {

using nlohmann::json;

namespace {

Result<catalog::RollbackTarget> ParseTarget(const json& body) {
  Status bad = Status::InvalidArgument(
      "to: expected exactly one of {\"checkpoint\":N}, {\"lsn\":N}, {\"timestamp\":T}, "
      "{\"actions\":N}, {\"label\":\"...\"}",
      "invalid_argument");
  if (!body.contains("to") || !body["to"].is_object() || body["to"].size() != 1) return bad;
  const json& to = body["to"];
  catalog::RollbackTarget t;
  if (to.contains("checkpoint") || to.contains("lsn")) {
    const std::string key = to.contains("checkpoint") ? "checkpoint" : "lsn";
    auto v = OptInt(to, key, kLsnRange, "to." + key);
    if (!v.ok()) return v.status();
    if (!v->has_value()) return bad;
    t.kind = catalog::RollbackTarget::Kind::kLsn;
    t.lsn = static_cast<uint64_t>(**v);
  } else if (to.contains("timestamp")) {
    auto when = ParseTime(to["timestamp"], "to.timestamp");
    if (!when.ok()) return when.status();
    t.kind = catalog::RollbackTarget::Kind::kTime;
    t.time_micros = *when;
  } else if (to.contains("actions")) {
    auto v = OptInt(to, "actions", {1, 1000000}, "to.actions");
    if (!v.ok()) return v.status();
    if (!v->has_value()) return bad;
    t.kind = catalog::RollbackTarget::Kind::kActionsBack;
    t.actions = static_cast<int>(**v);
  } else if (to.contains("label")) {
    if (!to["label"].is_string()) return bad;
    t.kind = catalog::RollbackTarget::Kind::kLabel;
    t.label = to["label"].get<std::string>();
  } else {
    return bad;
  }
  return t;
}

json MoveJson(const catalog::RollbackResult& r) {
  return {{"head_lsn", r.head_lsn},
          {"previous_head_lsn", r.previous_head_lsn},
          {"target_lsn", r.target_lsn}};
}

json SchemaDiffJson(const catalog::SchemaDiff& d) {
  json objects = json::array();
  for (const auto& o : d.objects) {
    objects.push_back({{"type", o.type},
                       {"name", o.name},
                       {"change", o.change},
                       {"old_sql", o.old_sql},
                       {"new_sql", o.new_sql},
                       {"columns_added", o.columns_added},
                       {"columns_removed", o.columns_removed},
                       {"columns_changed", o.columns_changed}});
  }
  return {{"kind", "schema"},
          {"from_lsn", d.from_lsn},
          {"to_lsn", d.to_lsn},
          {"objects", objects},
          {"unified", d.unified}};
}

json RawOrNull(const std::string& text) {
  if (text.empty()) return nullptr;
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

json CursorJson(const std::string& next) { return next.empty() ? json(nullptr) : json(next); }

json DataDiffJson(const catalog::DataDiff& d) {
  json tables = json::array();
  for (const auto& t : d.tables) {
    json rows = json::array();
    for (const auto& c : t.rows) {
      rows.push_back({{"op", c.op},
                      {"key", RawOrNull(c.key_json)},
                      {"old", RawOrNull(c.old_json)},
                      {"new", RawOrNull(c.new_json)}});
    }
    tables.push_back({{"table", t.table},
                      {"rows_added", t.rows_added},
                      {"rows_removed", t.rows_removed},
                      {"rows_changed", t.rows_changed},
                      {"key_columns", t.key_columns},
                      {"columns_added", t.columns_added},
                      {"columns_removed", t.columns_removed},
                      {"rows", rows},
                      {"note", t.note}});
  }
  return {{"kind", "data"},
          {"from_lsn", d.from_lsn},
          {"to_lsn", d.to_lsn},
          {"tables", tables},
          {"pages_changed", d.pages_changed},
          {"tables_skipped", d.tables_skipped},
          {"next", CursorJson(d.next_cursor)}};
}

json PatchJson(const catalog::DataPatch& p) {
  std::string sql;
  for (const auto& s : p.statements) sql += s + (s.rfind("--", 0) == 0 ? "\n" : ";\n");
  return {{"kind", "patch"},
          {"from_lsn", p.from_lsn},
          {"to_lsn", p.to_lsn},
          {"statements", p.statements},
          {"sql", sql},
          {"complete", p.complete},
          {"next", CursorJson(p.next_cursor)}};
}

// --- Promote ---------------------------------------------------------------------

// Runs a sandboxed script; a VFS failure replaces SQLite's generic error (as
// the SQL route does).
Result<sql::ScriptResult> RunScript(sqlite3* db, const sql::SandboxOptions& o,
                                    const sql::Script& script) {
  auto sandbox = sql::Sandbox::Attach(db, o);
  if (!sandbox.ok()) return sandbox.status();
  auto r = (*sandbox)->Execute(script);
  if (!r.ok() && (r.status().reason() == "sql_io_error" || r.status().reason() == "busy")) {
    if (Status vfs = storage::LastVfsError(db); !vfs.ok()) return vfs;
  }
  return r;
}

// One recorded action, run again exactly as the SQL route ran it, its commit
// annotated as the catalog asks (rows filled in, as the SQL route does). Its
// CPU time counts against client's share (the promoting client's).
Status ReplayAction(const sql::SandboxOptions& o, const std::string& client, sqlite3* db,
                    const catalog::ReplayAction& action) {
  sql::Script script;
  script.client = client;
  script.sql = action.annotation.sql;
  script.params = action.annotation.params_json.empty()
                      ? json(nullptr)
                      : json::parse(action.annotation.params_json, nullptr, false);
  script.truncate = true;  // its results are not returned: a big SELECT must not fail it
  sqlite3_int64 changes_before = sqlite3_total_changes64(db);
  script.before_commit = [&] {
    catalog::Annotation a = action.annotation;
    a.rows = sqlite3_total_changes64(db) - changes_before;
    return catalog::AnnotateNextCommit(db, a, o.max_db_bytes);
  };
  return RunScript(db, o, script).status();
}

// The verify query, read-only: the first column of the first row of its first
// statement, as JSON text ("null" without one).
Result<std::string> VerifyQuery(const sql::SandboxOptions& o, const std::string& client,
                                sqlite3* db, const std::string& query) {
  sql::Script script;
  script.client = client;
  script.sql = query;
  script.params = json(nullptr);
  script.read_only = true;
  script.truncate = true;  // only its first value counts
  auto r = RunScript(db, o, script);
  if (!r.ok()) return r.status();
  json value = nullptr;
  if (!r->statements.empty() && !r->statements[0].rows.empty() &&
      !r->statements[0].rows[0].empty()) {
    value = r->statements[0].rows[0][0];
  }
  return http::DumpJson(value);
}

json JsonOrNull(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

json ErrorJson(const Status& st) {
  return {{"code", http::ErrorCodeFor(st)}, {"message", st.message()}};
}

json PromoteJson(const catalog::PromoteResult& r, const std::string& verify) {
  json actions = json::array();
  for (const auto& a : r.actions) {
    actions.push_back({{"lsn", a.lsn}, {"summary", a.summary}, {"rows", a.rows}});
  }
  json v = nullptr;
  if (!verify.empty()) v = {{"sql", verify}, {"value", JsonOrNull(r.verify_value_json)}, {"ok", true}};
  return {{"branch", r.parent},
          {"source", r.source},
          {"mode", r.fast_forward ? "fast_forward" : "replay"},
          {"dry_run", r.dry_run},
          {"head_lsn", r.head_lsn ? json(*r.head_lsn) : json(nullptr)},
          {"previous_head_lsn", r.previous_head_lsn},
          {"target_lsn", r.target_lsn ? json(*r.target_lsn) : json(nullptr)},
          {"actions", actions},
          {"verify", v},
          {"attempts", r.attempts}};
}

json FailureDetails(const Status& st, const catalog::PromoteFailure& f) {
  json d = json::object();
  if (st.reason() == "replay_failed") {
    d["failed_action"] = {{"index", f.index},
                          {"lsn", f.lsn},
                          {"summary", f.summary},
                          {"error", ErrorJson(f.error)}};
  } else if (st.reason() == "verify_failed") {
    d["value"] = JsonOrNull(f.verify_value_json);
    if (!f.error.ok()) d["error"] = ErrorJson(f.error);
  } else if (st.reason() == "not_replayable") {
    d["lsn"] = f.lsn;
    d["summary"] = f.summary;
  }
  return d;
}

Result<catalog::PromoteOptions> ParsePromote(const json& body) {
  catalog::PromoteOptions o;
  auto mode = OptString(body, "mode");
  if (!mode.ok()) return mode.status();
  std::string m = mode->value_or("auto");
  if (m == "auto") {
    o.mode = catalog::PromoteOptions::Mode::kAuto;
  } else if (m == "fast_forward") {
    o.mode = catalog::PromoteOptions::Mode::kFastForward;
  } else if (m == "replay") {
    o.mode = catalog::PromoteOptions::Mode::kReplay;
  } else {
    return Status::InvalidArgument("mode: expected \"auto\", \"fast_forward\" or \"replay\"",
                                   "invalid_argument");
  }
  auto dry = OptBool(body, "dry_run");
  if (!dry.ok()) return dry.status();
  o.dry_run = dry->value_or(false);
  if (body.contains("verify") && !body["verify"].is_null()) {
    auto verify = OptString(body, "verify");
    if (!verify.ok()) return verify.status();
    if (verify->value_or("").empty()) {
      return Status::InvalidArgument("verify: expected a non-empty SQL query", "invalid_argument");
    }
    o.verify = **verify;
  }
  auto conflict = OptString(body, "on_conflict");
  if (!conflict.ok()) return conflict.status();
  std::string c = conflict->value_or("fail");
  if (c != "fail" && c != "retry") {
    return Status::InvalidArgument("on_conflict: expected \"fail\" or \"retry\"",
                                   "invalid_argument");
  }
  o.retry_on_conflict = c == "retry";
  auto retries = OptInt(body, "max_retries", {0, 10});
  if (!retries.ok()) return retries.status();
  o.max_retries = static_cast<int>(retries->value_or(3));
  return o;
}

// The states a diff compares: from (base, base_lsn; default: the branch's
// parent at its head) and to (the branch, at lsn; default: its head).
Status ParseDiffStates(Call& c, catalog::StateRef* from, catalog::StateRef* to) {
  auto base_lsn = QueryInt(c.req, "base_lsn", kLsnRange);
  if (!base_lsn.ok()) return base_lsn.status();
  auto lsn = QueryInt(c.req, "lsn", kLsnRange);
  if (!lsn.ok()) return lsn.status();
  from->branch = c.req.get_param_value("base");
  auto b = c.s.catalog->GetBranch(c.project, c.branch, false);
  if (!b.ok()) return b.status();
  // A client limited to branch patterns diffs against its branch's parent
  // (the branch it was made from) or a branch the patterns match.
  if (from->branch != b->parent &&
      !auth::AnyBranchPatternMatches(c.who->branches, from->branch.empty() ? c.branch
                                                                            : from->branch)) {
    return Status::PermissionDenied("base: branch '" + from->branch +
                                        "' is outside this client's branches",
                                    "branch_not_allowed");
  }
  if (from->branch.empty()) {
    if (b->parent.empty() && !base_lsn->has_value()) {
      return Status::InvalidArgument(
          "base: required for a branch without parent (a branch name, with base_lsn=N for one "
          "of its checkpoints)",
          "invalid_argument");
    }
    from->branch = b->parent.empty() ? c.branch : b->parent;
  }
  if (base_lsn->has_value()) from->lsn = **base_lsn;
  to->branch = c.branch;
  if (lsn->has_value()) to->lsn = **lsn;
  return Status::OK();
}

// limit, cursor and tables (comma-separated) of a data or patch diff.
catalog::DataDiffOptions DiffPage(const httplib::Request& req, std::optional<int64_t> limit) {
  catalog::DataDiffOptions o;
  o.limit = static_cast<size_t>(limit.value_or(100));
  o.cursor = req.get_param_value("cursor");
  std::string tables = req.get_param_value("tables");
  for (size_t at = 0; !tables.empty() && at <= tables.size();) {
    size_t comma = tables.find(',', at);
    if (comma == std::string::npos) comma = tables.size();
    if (comma > at) o.tables.push_back(tables.substr(at, comma - at));
    at = comma + 1;
  }
  return o;
}

// Whether the caller holds branches:protect on the path's branch: then a
// rollback or reset acts on it also when it is protected.
bool MayLiftGuard(const Call& c) {
  return c.s.auth->Allows(*c.who, auth::Operation::kProtectBranch, c.project, c.branch);
}

}  // namespace

void HandlePromote(Call& c) {
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body, /*allow_empty=*/true));
  BRANCHDB_TRY_SEND(c.res, options, ParsePromote(*body));
  BRANCHDB_TRY_SEND(c.res, b, c.s.catalog->GetBranch(c.project, c.branch, false));
  if (!b->parent.empty()) {
    // Promotion writes the parent: the caller's branch patterns must match it.
    if (!http::RequireAuth(c.s, c.req, c.res, c.ctx, auth::Operation::kPromoteBranch, c.project,
                           b->parent)) {
      return;
    }
    BRANCHDB_TRY_SEND(c.res, parent, c.s.catalog->GetBranch(c.project, b->parent, false));
    if (parent->is_protected) {
      // A protected parent takes an explicit scope (only admin implies it).
      if (!http::RequireAuth(c.s, c.req, c.res, c.ctx, auth::Operation::kPromoteProtectedBranch,
                             c.project, b->parent)) {
        return;
      }
      options->allow_protected = true;
    }
  }
  const sql::SandboxOptions& sandbox = c.s.sandbox;
  options->actor = {c.who->client_id, c.ctx.request_id};
  const std::string client = c.who->client_id;
  options->replay = [&sandbox, &client](sqlite3* db, const catalog::ReplayAction& a) {
    return ReplayAction(sandbox, client, db, a);
  };
  options->verify_query = [&sandbox, &client](sqlite3* db, const std::string& q) {
    return VerifyQuery(sandbox, client, db, q);
  };
  catalog::PromoteFailure failure;
  auto r = c.s.catalog->Promote(c.project, c.branch, *options, &failure);
  if (r.ok() && !r->dry_run) c.s.computes->Invalidate(ComputeKey(c.project, r->parent));
  if (!r.ok()) return http::SendError(c.res, r.status(), FailureDetails(r.status(), failure));
  http::SendJson(c.res, 200, PromoteJson(*r, options->verify));
}

void HandleListCheckpoints(Call& c) {
  BRANCHDB_TRY_SEND(c.res, limit, QueryInt(c.req, "limit", {1, 1000}));
  size_t n = static_cast<size_t>(limit->value_or(50));
  BRANCHDB_TRY_SEND(c.res, page,
                    c.s.catalog->ListCheckpoints(c.project, c.branch, n,
                                                 c.req.get_param_value("cursor")));
  json list = json::array();
  for (const auto& cp : page->checkpoints) list.push_back(CheckpointJson(cp));
  http::SendJson(c.res, 200, {{"checkpoints", list}, {"next", CursorJson(page->next_cursor)}});
}

void HandleLabelCheckpoint(Call& c) {
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body));
  BRANCHDB_TRY_SEND(c.res, label, OptString(*body, "label"));
  if (!label->has_value()) {
    return http::SendError(c.res, Status::InvalidArgument(
                                      "label: required (every committed action is already a "
                                      "checkpoint; this names one)",
                                      "invalid_argument"));
  }
  BRANCHDB_TRY_SEND(c.res, lsn, OptInt(*body, "lsn", kLsnRange));
  uint64_t at = 0;
  if (lsn->has_value()) {
    at = static_cast<uint64_t>(**lsn);
  } else {
    BRANCHDB_TRY_SEND(c.res, b, c.s.catalog->GetBranch(c.project, c.branch));
    at = b->head;
  }
  Status st = c.s.catalog->LabelCheckpoint(c.project, c.branch, at, **label);
  if (!st.ok()) return http::SendError(c.res, st);
  BRANCHDB_TRY_SEND(c.res, cp, c.s.catalog->GetCheckpoint(c.project, c.branch, at));
  http::SendJson(c.res, 201, CheckpointJson(*cp));
}

void HandleRollback(Call& c) {
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body));
  BRANCHDB_TRY_SEND(c.res, target, ParseTarget(*body));
  // The route checked branches:protect when the branch is protected.
  auto r = c.s.catalog->Rollback(c.project, c.branch, *target,
                                 {c.who->client_id, c.ctx.request_id}, MayLiftGuard(c));
  c.s.computes->Invalidate(ComputeKey(c.project, c.branch));
  if (!r.ok()) return http::SendError(c.res, r.status());
  http::SendJson(c.res, 200, MoveJson(*r));
}

void HandleReset(Call& c) {
  auto r = c.s.catalog->ResetFromParent(c.project, c.branch,
                                        {c.who->client_id, c.ctx.request_id}, MayLiftGuard(c));
  c.s.computes->Invalidate(ComputeKey(c.project, c.branch));
  if (!r.ok()) return http::SendError(c.res, r.status());
  http::SendJson(c.res, 200, MoveJson(*r));
}

void HandleDiff(Call& c) {
  std::string kind = c.req.has_param("kind") ? c.req.get_param_value("kind") : "schema";
  if (kind != "schema" && kind != "data" && kind != "patch") {
    return http::SendError(c.res, Status::InvalidArgument("kind: expected schema, data or patch",
                                                          "invalid_argument"));
  }
  catalog::StateRef from, to;
  if (Status st = ParseDiffStates(c, &from, &to); !st.ok()) return http::SendError(c.res, st);
  // Checked whatever the kind: every request integer is.
  BRANCHDB_TRY_SEND(c.res, limit, QueryInt(c.req, "limit", {1, 1000}));
  if (kind == "schema") {
    BRANCHDB_TRY_SEND(c.res, d, c.s.catalog->DiffSchema(c.project, from, to));
    return http::SendJson(c.res, 200, SchemaDiffJson(*d));
  }
  catalog::DataDiffOptions o = DiffPage(c.req, *limit);
  if (kind == "patch") {
    BRANCHDB_TRY_SEND(c.res, d, c.s.catalog->DiffPatch(c.project, from, to, o));
    return http::SendJson(c.res, 200, PatchJson(*d));
  }
  BRANCHDB_TRY_SEND(c.res, d, c.s.catalog->DiffData(c.project, from, to, o));
  http::SendJson(c.res, 200, DataDiffJson(*d));
}

}  // namespace branchdb::server::routes
