// SQL and the branch's compute:
//   POST /v1/projects/{p}/branches/{b}/sql          {"sql","params","read_only"}
//        -> {"results":[{"columns","rows","rows_affected","truncated"}],"lsn","snapshot_lsn",
//            "read_only","next_cursor"}; with "page_size" or "cursor": one page of a
//            one-statement read (HandleSqlPage)
//   POST /v1/projects/{p}/branches/{b}/credentials  {"access":"read"|"read_write","ttl_seconds"}
//   GET  /v1/projects/{p}/branches/{b}/compute
//   POST /v1/projects/{p}/branches/{b}/compute/suspend
//   GET  /v1/projects/{p}/branches/{b}/schema[?lsn=N]   (server/sql/snapshot.h)
//   GET  .../export, POST /v1/projects/{p}/import: transfer.cc
#include <httplib.h>
#include <sqlite3.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "auth/auth.h"
#include "server/compute/supervisor.h"
#include "server/guard/guard.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/http/metrics.h"
#include "server/object_storage/remote_durability.h"
#include "server/routes/call.h"
#include "server/routes/common.h"
#include "server/sql/annotate.h"
#include "server/sql/snapshot.h"
#include "storage/vfs/vfs.h"

namespace branchdb::server::routes {

using nlohmann::json;

namespace {

// A branch deleted (by DELETE or its TTL) after this request found it: its
// timeline is gone under the connection, and the store says so. Answer as if
// the branch had been gone already: 404 branch_not_found, never a 500.
Status BranchGoneIfTimelineGone(Status st, const std::string& project, const std::string& branch) {
  if (st.reason() != "timeline_not_found") return st;
  return Status::NotFound("no branch " + branch + " in project " + project +
                              " (it was deleted while this request ran)",
                          "branch_not_found");
}

// idle_timeout_seconds: the branch's effective timeout (the catalog's truth,
// also when the compute never ran).
json ComputeJson(const Result<compute::ComputeInfo>& info, int64_t idle_timeout_seconds) {
  if (!info.ok()) {
    return {{"state", "suspended"}, {"in_use", 0}, {"cold_starts", 0},
            {"last_used_at", nullptr}, {"last_cold_start_ms", nullptr},
            {"idle_timeout_seconds", idle_timeout_seconds}};
  }
  return {{"state", info->active ? "active" : "suspended"},
          {"in_use", info->leases},
          {"cold_starts", info->cold_starts},
          {"last_used_at", FormatTime(info->last_used_micros)},
          {"last_cold_start_ms",
           info->cold_starts ? json(static_cast<double>(info->last_cold_start_nanos) / 1e6)
                             : json(nullptr)},
          {"idle_timeout_seconds", idle_timeout_seconds}};
}

// --- Paging: a one-statement read, in pages that all read one snapshot LSN ---
//
// A cursor is "v1.<lsn>.<offset>.<page_size>.<hash>": the next page re-runs the
// same statement read-only as of <lsn> and skips <offset> rows; <hash> (FNV-1a
// of sql and params) ties it to its query. Clients treat it as opaque.

struct Cursor {
  storage::Lsn lsn = 0;
  int64_t offset = 0;
  int64_t page_size = 0;
  uint64_t hash = 0;
};

uint64_t QueryHash(const std::string& sql, const json& params) {
  uint64_t h = 14695981039346656037ull;
  for (char c : sql + '\x1f' + http::DumpJson(params)) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return h;
}

std::string EncodeCursor(const Cursor& c) {
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(c.hash));
  return "v1." + std::to_string(c.lsn) + "." + std::to_string(c.offset) + "." +
         std::to_string(c.page_size) + "." + hash;
}

Result<Cursor> DecodeCursor(const std::string& text) {
  auto bad = Status::InvalidArgument(
      "cursor: not a cursor of this server (send an answer's next_cursor unchanged)",
      "invalid_cursor");
  std::vector<std::string> parts;
  size_t from = 0;
  for (size_t dot; (dot = text.find('.', from)) != std::string::npos; from = dot + 1) {
    parts.push_back(text.substr(from, dot - from));
  }
  parts.push_back(text.substr(from));
  if (parts.size() != 5 || parts[0] != "v1") return bad;
  Cursor c;
  auto number = [](const std::string& p, int base, auto* out) {
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), *out, base);
    return !p.empty() && ec == std::errc() && end == p.data() + p.size();
  };
  if (!number(parts[1], 10, &c.lsn) || !number(parts[2], 10, &c.offset) ||
      !number(parts[3], 10, &c.page_size) || !number(parts[4], 16, &c.hash) || c.offset < 0 ||
      c.page_size < 1) {
    return bad;
  }
  return c;
}

// POST .../sql with page_size, cursor or lsn: the script must be one statement
// and runs read-only on a connection of its own (the first page at the head,
// or as of "lsn" as the catalog reads it (Catalog::OpenBranchConnection); the
// next ones as of the first page's snapshot LSN, which the cursor names).
void HandleSqlPage(Services* s, httplib::Response& res, const json& body,
                   const std::string& project, const std::string& branch,
                   const std::string& client) {
  const int64_t max_rows = s->sandbox.max_result_rows;
  BRANCHDB_TRY_SEND(res, page_size,
                    OptInt(body, "page_size", {1, max_rows}));
  BRANCHDB_TRY_SEND(res, cursor_text, OptString(body, "cursor"));
  BRANCHDB_TRY_SEND(res, as_of, OptInt(body, "lsn", kLsnRange));
  sql::Script script;
  script.sql = body["sql"].get<std::string>();
  script.params = body.contains("params") ? body["params"] : json(nullptr);
  script.client = client;
  const uint64_t hash = QueryHash(script.sql, script.params);
  const bool first = !cursor_text->has_value();
  Cursor c{0, 0, max_rows, hash};
  if (!first) {
    BRANCHDB_TRY_SEND(res, decoded, DecodeCursor(**cursor_text));
    if (decoded->hash != hash) {
      return http::SendError(res, Status::InvalidArgument(
                                      "cursor: it belongs to another query; send the sql and "
                                      "params of the request that returned it",
                                      "invalid_cursor"));
    }
    c = *decoded;
    if (as_of->has_value() && static_cast<storage::Lsn>(**as_of) != c.lsn) {
      return http::SendError(res, Status::InvalidArgument(
                                      "lsn: the cursor reads LSN " + std::to_string(c.lsn) +
                                          "; send the lsn of the first page, or none",
                                      "invalid_cursor"));
    }
  }
  if (page_size->has_value()) c.page_size = **page_size;
  catalog::ConnectionRequest request;
  request.read_only = true;
  if (!first) {
    request.as_of = c.lsn;
  } else if (as_of->has_value()) {
    request.as_of = static_cast<storage::Lsn>(**as_of);
  }
  BRANCHDB_TRY_SEND(res, conn, s->catalog->OpenBranchConnection(project, branch, request));
  BRANCHDB_TRY_SEND(res, sandbox, sql::Sandbox::Attach(conn->get(), s->sandbox));
  script.read_only = true;
  script.paged = true;
  script.skip_rows = c.offset;
  script.page_rows = c.page_size;
  sql::ScriptError error;
  auto result = (*sandbox)->Execute(script, &error);
  if (!result.ok()) {
    http::CountSqlStatements(*s->metrics, false);
    return http::SendError(res, BranchGoneIfTimelineGone(result.status(), project, branch),
                           error.details());
  }
  http::CountSqlStatements(*s->metrics, true, static_cast<double>(result->statements.size()));
  const storage::Lsn at = first ? storage::SnapshotLsn(conn->get()) : c.lsn;
  const bool more = !result->statements.empty() && result->statements[0].truncated;
  std::optional<std::string> next_cursor;
  if (more) {
    Cursor next{at, c.offset + static_cast<int64_t>(result->statements[0].rows.size()),
                c.page_size, hash};
    next_cursor = EncodeCursor(next);
  }
  res.status = 200;
  res.set_content(result->AnswerJson(std::nullopt, at, true, next_cursor), "application/json");
}

// The script's failure as the client sees it: a VFS failure instead of
// SQLite's generic error; a compute of a project deleted under it (its store
// refuses every call) forgotten, so that a project created under the same
// name opens afresh.
Status ScriptFailure(Call& c, sqlite3* db, Status st, const std::string& key) {
  if (st.reason() == "sql_io_error" || st.reason() == "busy") {
    if (Status vfs = storage::LastVfsError(db); !vfs.ok()) st = vfs;
  }
  if (st.reason() == "project_not_found") c.s.computes->Remove(key);
  return BranchGoneIfTimelineGone(st, c.project, c.branch);
}

// A whole script on the branch's compute, one transaction.
// write_refusal: why the caller may not write (forced read-only); a write
// then answers that refusal rather than the sandbox's read_only.
void RunOnCompute(Call& c, const json& body, bool read_only,
                  const std::optional<auth::BearerError>& write_refusal = std::nullopt) {
  Services& s = c.s;
  std::string key = ComputeKey(c.project, c.branch);
  guard::Refusal refused;
  if (s.guard != nullptr) {
    Status st = s.guard->CheckWake(c.project, c.branch, c.who->client_id, &refused);
    if (!st.ok()) return http::SendError(c.res, st, refused.Details());
  }
  const int64_t started_nanos = s.clock->NowMonotonicNanos();
  auto lease = s.computes->Acquire(key);
  if (!lease.ok()) {
    if (lease.status().IsNotFound()) s.computes->Remove(key);
    return http::SendError(c.res, BranchGoneIfTimelineGone(lease.status(), c.project, c.branch));
  }
  sqlite3* db = (*lease)->db();
  sql::Script script;
  script.sql = body["sql"].get<std::string>();
  script.params = body.contains("params") ? body["params"] : json(nullptr);
  script.read_only = read_only;
  script.client = c.who->client_id;
  sqlite3_int64 changes_before = sqlite3_total_changes64(db);
  bool quota_refused = false;
  // Read just before the COMMIT, when there is one: a script that commits
  // nothing (a read) asks the VFS for no LSN.
  std::optional<storage::Lsn> commit_before;
  script.before_commit = [&] {
    commit_before = storage::LastCommitLsn(db);
    if (s.guard != nullptr) {
      Status st = s.guard->CheckCommit(c.project, c.branch, c.who->client_id, db, &refused);
      quota_refused = !st.ok();
      if (!st.ok()) return st;
    }
    return sql::AnnotateScript(db, script, c.ctx.request_id, changes_before, s.sandbox.max_db_bytes);
  };
  sql::ScriptError error;
  auto result = (*lease)->sandbox().Execute(script, &error);
  if (s.guard != nullptr) {
    s.guard->CountCompute(c.project, c.who->client_id,
                          s.clock->NowMonotonicNanos() - started_nanos);
  }
  if (!result.ok()) {
    http::CountSqlStatements(*s.metrics, false);
    if (write_refusal && !write_refusal->api_code.empty() &&
        result.status().reason() == "read_only") {
      return http::SendBearerError(c.res, *write_refusal);
    }
    if (quota_refused) return http::SendError(c.res, result.status(), refused.Details());
    return http::SendError(c.res, ScriptFailure(c, db, result.status(), key), error.details());
  }
  const storage::Lsn commit_after = commit_before ? storage::LastCommitLsn(db) : 0;
  const bool committed = commit_before && commit_after != *commit_before;
  const storage::Lsn snapshot = storage::SnapshotLsn(db);
  // The compute's connection commits without waiting for the fsync: hand the
  // branch to the next request first, then wait until everything this script
  // saw or wrote is durable. No answer before that; a failed fsync fails it.
  const storage::PendingDurability durable = storage::ObservedDurability(db);
  lease->reset();
  Status st = durable.Wait();
  // durability = "remote": also in the bucket (nothing before; never a 200 without it).
  if (st.ok()) st = WaitRemoteDurable(s, c.project, durable.lsn);
  if (!st.ok()) {
    http::CountSqlStatements(*s.metrics, false);
    return http::SendError(c.res, st.WithContext(committed ? "the commit could not be made durable"
                                                           : "the state read is not durable"));
  }
  if (committed) s.metrics->Increment(http::kCommits);
  if (committed && s.guard != nullptr) s.guard->Committed(c.project, c.branch, c.who->client_id);
  http::CountSqlStatements(*s.metrics, true, static_cast<double>(result->statements.size()));
  // lsn: the checkpoint this script made, null when it changed nothing;
  // snapshot_lsn: the state it read, or, when it committed, the state it made;
  // next_cursor null: only paged requests get pages (HandleSqlPage).
  c.res.status = 200;
  c.res.set_content(result->AnswerJson(committed ? std::optional<uint64_t>(commit_after)
                                                 : std::nullopt,
                                       committed ? commit_after : snapshot, read_only,
                                       std::nullopt),
                    "application/json");
}

}  // namespace

void HandleSql(Call& c) {
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body));
  if (!(*body)["sql"].is_string()) {
    return http::SendError(c.res,
                           Status::InvalidArgument("sql: required string", "invalid_argument"));
  }
  // A field given as null is absent (as OptInt and OptString read it).
  auto given = [&](const char* field) { return body->contains(field) && !(*body)[field].is_null(); };
  if (given("page_size") || given("cursor") || given("lsn")) {
    return HandleSqlPage(&c.s, c.res, *body, c.project, c.branch, c.who->client_id);
  }
  BRANCHDB_TRY_SEND(c.res, read_only_flag, OptBool(*body, "read_only"));
  auto refusal = http::SqlWriteRefusal(c.s, *c.who, c.project, c.branch);
  const bool asked_read_only = read_only_flag->value_or(false);
  RunOnCompute(c, *body, asked_read_only || refusal.has_value(),
               asked_read_only ? std::nullopt : refusal);
}

void HandleIssueCredential(Call& c) {
  BRANCHDB_TRY_SEND(c.res, body, http::ParseJsonObject(c.req.body, true));
  BRANCHDB_TRY_SEND(c.res, access_given, OptString(*body, "access"));
  std::string access = access_given->value_or("read");
  if (access != "read" && access != "read_write") {
    return http::SendError(c.res, Status::InvalidArgument(
                                      "access: expected \"read\" or \"read_write\"",
                                      "invalid_argument"));
  }
  bool rw = access == "read_write";
  auto who = http::RequireAuth(c.s, c.req, c.res, c.ctx,
                               rw ? auth::Operation::kIssueReadWriteCredential
                                  : auth::Operation::kIssueReadCredential,
                               c.project, c.branch);
  if (!who) return;
  // 60 s to auth.credential_max_seconds; absent: 900 s (auth's default).
  BRANCHDB_TRY_SEND(c.res, ttl,
                    OptInt(*body, "ttl_seconds", {60, c.s.config->credential_max_seconds},
                           "ttl_seconds (auth.credential_max_seconds caps it)"));
  BRANCHDB_TRY_SEND(c.res, exists, c.s.catalog->GetBranch(c.project, c.branch, false));
  auth::BearerError error;
  auto cred = c.s.auth->IssueDbCredential(*who, c.project, c.branch,
                                          http::BranchIdentityOf(c.s, c.project, c.branch),
                                          rw ? auth::DbAccess::kReadWrite : auth::DbAccess::kRead,
                                          ttl->value_or(0), &error);
  if (!cred) return http::SendBearerError(c.res, error);
  c.res.status = 201;
  c.res.set_content(cred->ToJson(), "application/json");
  c.res.set_header("Cache-Control", "no-store");
}

void HandleGetCompute(Call& c) {
  BRANCHDB_TRY_SEND(c.res, b, c.s.catalog->GetBranch(c.project, c.branch, false));
  http::SendJson(c.res, 200,
                 ComputeJson(c.s.computes->Info(ComputeKey(c.project, c.branch)),
                             EffectiveIdleTimeout(*b, c.s.config->idle_timeout_seconds)));
}

void HandleSuspendCompute(Call& c) {
  BRANCHDB_TRY_SEND(c.res, b, c.s.catalog->GetBranch(c.project, c.branch, false));
  std::string key = ComputeKey(c.project, c.branch);
  (void)c.s.computes->Suspend(key);  // NotFound: never ran, already suspended
  http::SendJson(c.res, 200,
                 ComputeJson(c.s.computes->Info(key),
                             EffectiveIdleTimeout(*b, c.s.config->idle_timeout_seconds)));
}

void HandleSchema(Call& c) {
  BRANCHDB_TRY_SEND(c.res, lsn, QueryInt(c.req, "lsn", kLsnRange));
  BRANCHDB_TRY_SEND(c.res, schema, sql::ReadSchema(*c.s.catalog, c.project, c.branch, *lsn));
  json objects = json::array();
  for (const auto& o : schema->objects) {
    objects.push_back({{"type", o.type},
                       {"name", o.name},
                       {"table", o.table},
                       {"sql", o.sql ? json(*o.sql) : json(nullptr)}});
  }
  http::SendJson(c.res, 200, {{"lsn", schema->lsn}, {"objects", objects}});
}

}  // namespace branchdb::server::routes
