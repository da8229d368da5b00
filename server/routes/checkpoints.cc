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
#include "server/http/router.h"
#include "server/routes/common.h"
#include "server/routes/routes.h"
#include "server/sql/sandbox.h"
#include "storage/vfs/vfs.h"

namespace branchdb::server {

using nlohmann::json;

namespace {

const char* kBranchPath = R"(/v1/projects/([^/]+)/branches/(.+))";

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
    auto v = routes::OptInt(to, key, routes::kLsnRange, "to." + key);
    if (!v.ok()) return v.status();
    if (!v->has_value()) return bad;
    t.kind = catalog::RollbackTarget::Kind::kLsn;
    t.lsn = static_cast<uint64_t>(**v);
  } else if (to.contains("timestamp")) {
    auto when = routes::ParseTime(to["timestamp"], "to.timestamp");
    if (!when.ok()) return when.status();
    t.kind = catalog::RollbackTarget::Kind::kTime;
    t.time_micros = *when;
  } else if (to.contains("actions")) {
    auto v = routes::OptInt(to, "actions", {1, 1000000}, "to.actions");
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
  auto mode = routes::OptString(body, "mode");
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
  auto dry = routes::OptBool(body, "dry_run");
  if (!dry.ok()) return dry.status();
  o.dry_run = dry->value_or(false);
  if (body.contains("verify") && !body["verify"].is_null()) {
    auto verify = routes::OptString(body, "verify");
    if (!verify.ok()) return verify.status();
    if (verify->value_or("").empty()) {
      return Status::InvalidArgument("verify: expected a non-empty SQL query", "invalid_argument");
    }
    o.verify = **verify;
  }
  auto conflict = routes::OptString(body, "on_conflict");
  if (!conflict.ok()) return conflict.status();
  std::string c = conflict->value_or("fail");
  if (c != "fail" && c != "retry") {
    return Status::InvalidArgument("on_conflict: expected \"fail\" or \"retry\"",
                                   "invalid_argument");
  }
  o.retry_on_conflict = c == "retry";
  auto retries = routes::OptInt(body, "max_retries", {0, 10});
  if (!retries.ok()) return retries.status();
  o.max_retries = static_cast<int>(retries->value_or(3));
  return o;
}

void HandlePromote(Services* s, const httplib::Request& req, httplib::Response& res,
                   http::RequestContext& ctx) {
  std::string project = http::PathParam(req, 1), branch = http::PathParam(req, 2);
  auto who = http::RequireAuth(*s, req, res, auth::Operation::kPromoteBranch, project, branch);
  if (!who) return;
  BRANCHDB_TRY_SEND(res, body, http::ParseJsonObject(req.body, /*allow_empty=*/true));
  BRANCHDB_TRY_SEND(res, options, ParsePromote(*body));
  BRANCHDB_TRY_SEND(res, b, s->catalog->GetBranch(project, branch, false));
  if (!b->parent.empty()) {
    BRANCHDB_TRY_SEND(res, parent, s->catalog->GetBranch(project, b->parent, false));
    if (parent->is_protected) {
      // A protected parent takes an explicit scope (only admin implies it).
      if (!http::RequireAuth(*s, req, res, auth::Operation::kPromoteProtectedBranch, project,
                             b->parent)) {
        return;
      }
      options->allow_protected = true;
    }
  }
  const sql::SandboxOptions& sandbox = s->sandbox;
  options->actor = {who->client_id, ctx.request_id};
  const std::string client = who->client_id;
  options->replay = [&sandbox, &client](sqlite3* db, const catalog::ReplayAction& a) {
    return ReplayAction(sandbox, client, db, a);
  };
  options->verify_query = [&sandbox, &client](sqlite3* db, const std::string& q) {
    return VerifyQuery(sandbox, client, db, q);
  };
  catalog::PromoteFailure failure;
  auto r = s->catalog->Promote(project, branch, *options, &failure);
  if (r.ok() && !r->dry_run) s->computes->Invalidate(routes::ComputeKey(project, r->parent));
  if (!r.ok()) return http::SendError(res, r.status(), FailureDetails(r.status(), failure));
  http::SendJson(res, 200, PromoteJson(*r, options->verify));
}

}  // namespace

void RegisterCheckpointRoutes(http::Router& router, Services& services) {
  Services* s = &services;
  const std::string base = kBranchPath;
  const std::string lbase = "/v1/projects/{project}/branches/{branch}";

  router.Get(base + "/checkpoints", lbase + "/checkpoints",
             [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
               std::string project = http::PathParam(req, 1), branch = http::PathParam(req, 2);
               if (!http::RequireAuth(*s, req, res, auth::Operation::kListCheckpoints, project,
                                      branch)) {
                 return;
               }
               BRANCHDB_TRY_SEND(res, limit, routes::QueryInt(req, "limit", {1, 1000}));
               size_t n = static_cast<size_t>(limit->value_or(50));
               BRANCHDB_TRY_SEND(res, page,
                                 s->catalog->ListCheckpoints(project, branch, n,
                                                             req.get_param_value("cursor")));
               json list = json::array();
               for (const auto& c : page->checkpoints) list.push_back(routes::CheckpointJson(c));
               http::SendJson(res, 200,
                              {{"checkpoints", list},
                               {"next", page->next_cursor.empty() ? json(nullptr)
                                                                  : json(page->next_cursor)}});
             });

  router.Post(base + "/checkpoints", lbase + "/checkpoints",
              [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
                std::string project = http::PathParam(req, 1), branch = http::PathParam(req, 2);
                if (!http::RequireAuth(*s, req, res, auth::Operation::kCreateCheckpoint, project,
                                       branch)) {
                  return;
                }
                BRANCHDB_TRY_SEND(res, body, http::ParseJsonObject(req.body));
                BRANCHDB_TRY_SEND(res, label, routes::OptString(*body, "label"));
                if (!label->has_value()) {
                  return http::SendError(res, Status::InvalidArgument(
                                                  "label: required (every committed action is "
                                                  "already a checkpoint; this names one)",
                                                  "invalid_argument"));
                }
                BRANCHDB_TRY_SEND(res, lsn, routes::OptInt(*body, "lsn", routes::kLsnRange));
                uint64_t at = 0;
                if (lsn->has_value()) {
                  at = static_cast<uint64_t>(**lsn);
                } else {
                  BRANCHDB_TRY_SEND(res, b, s->catalog->GetBranch(project, branch));
                  at = b->head;
                }
                Status st = s->catalog->LabelCheckpoint(project, branch, at, **label);
                if (!st.ok()) return http::SendError(res, st);
                BRANCHDB_TRY_SEND(res, c, s->catalog->GetCheckpoint(project, branch, at));
                http::SendJson(res, 201, routes::CheckpointJson(*c));
              });

  router.Post(base + "/rollback", lbase + "/rollback",
              [s](const httplib::Request& req, httplib::Response& res, http::RequestContext& ctx) {
                std::string project = http::PathParam(req, 1), branch = http::PathParam(req, 2);
                auto who = http::RequireAuth(*s, req, res, auth::Operation::kRollbackBranch,
                                             project, branch);
                if (!who) return;
                BRANCHDB_TRY_SEND(res, body, http::ParseJsonObject(req.body));
                BRANCHDB_TRY_SEND(res, target, ParseTarget(*body));
                auto r = s->catalog->Rollback(project, branch, *target,
                                              {who->client_id, ctx.request_id});
                s->computes->Invalidate(routes::ComputeKey(project, branch));
                if (!r.ok()) return http::SendError(res, r.status());
                http::SendJson(res, 200, MoveJson(*r));
              });

  router.Post(base + "/reset", lbase + "/reset",
              [s](const httplib::Request& req, httplib::Response& res, http::RequestContext& ctx) {
                std::string project = http::PathParam(req, 1), branch = http::PathParam(req, 2);
                auto who = http::RequireAuth(*s, req, res, auth::Operation::kResetBranch, project,
                                             branch);
                if (!who) return;
                auto r = s->catalog->ResetFromParent(project, branch,
                                                     {who->client_id, ctx.request_id});
                s->computes->Invalidate(routes::ComputeKey(project, branch));
                if (!r.ok()) return http::SendError(res, r.status());
                http::SendJson(res, 200, MoveJson(*r));
              });

  router.Post(base + "/promote", lbase + "/promote",
              [s](const httplib::Request& req, httplib::Response& res, http::RequestContext& ctx) {
                HandlePromote(s, req, res, ctx);
              });

  router.Get(base + "/diff", lbase + "/diff",
             [s](const httplib::Request& req, httplib::Response& res, http::RequestContext&) {
               std::string project = http::PathParam(req, 1), branch = http::PathParam(req, 2);
               if (!http::RequireAuth(*s, req, res, auth::Operation::kDiffBranch, project, branch)) {
                 return;
               }
               std::string kind = req.has_param("kind") ? req.get_param_value("kind") : "schema";
               if (kind != "schema" && kind != "data" && kind != "patch") {
                 return http::SendError(res, Status::InvalidArgument(
                                                 "kind: expected schema, data or patch",
                                                 "invalid_argument"));
               }
               BRANCHDB_TRY_SEND(res, base_lsn, routes::QueryInt(req, "base_lsn", routes::kLsnRange));
               BRANCHDB_TRY_SEND(res, lsn, routes::QueryInt(req, "lsn", routes::kLsnRange));
               catalog::StateRef from, to;
               from.branch = req.get_param_value("base");
               if (from.branch.empty()) {
                 BRANCHDB_TRY_SEND(res, b, s->catalog->GetBranch(project, branch));
                 if (b->parent.empty() && !base_lsn->has_value()) {
                   return http::SendError(
                       res, Status::InvalidArgument(
                                "base: required for a branch without parent (a branch name, "
                                "with base_lsn=N for one of its checkpoints)",
                                "invalid_argument"));
                 }
                 from.branch = b->parent.empty() ? branch : b->parent;
               }
               if (base_lsn->has_value()) from.lsn = **base_lsn;
               to.branch = branch;
               if (lsn->has_value()) to.lsn = **lsn;
               // Checked whatever the kind: every request integer is.
               BRANCHDB_TRY_SEND(res, limit, routes::QueryInt(req, "limit", {1, 1000}));
               if (kind == "schema") {
                 BRANCHDB_TRY_SEND(res, d, s->catalog->DiffSchema(project, from, to));
                 return http::SendJson(res, 200, SchemaDiffJson(*d));
               }
               catalog::DataDiffOptions o;
               o.limit = static_cast<size_t>(limit->value_or(100));
               o.cursor = req.get_param_value("cursor");
               std::string tables = req.get_param_value("tables");
               for (size_t at = 0; !tables.empty() && at <= tables.size();) {
                 size_t comma = tables.find(',', at);
                 if (comma == std::string::npos) comma = tables.size();
                 if (comma > at) o.tables.push_back(tables.substr(at, comma - at));
                 at = comma + 1;
               }
               if (kind == "patch") {
                 BRANCHDB_TRY_SEND(res, d, s->catalog->DiffPatch(project, from, to, o));
                 return http::SendJson(res, 200, PatchJson(*d));
               }
               BRANCHDB_TRY_SEND(res, d, s->catalog->DiffData(project, from, to, o));
               http::SendJson(res, 200, DataDiffJson(*d));
             });
}

}  // namespace branchdb::server
