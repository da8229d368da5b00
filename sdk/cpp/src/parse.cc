// Internal: JSON -> typed results (parse.h).
#include "parse.h"

#include <stdexcept>

namespace branchdb::client::internal {

namespace {

// Absent or null -> def; another type throws (caught by Decode).
template <typename T>
T Get(const Json& j, const char* key, T def = T()) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  return it->get<T>();
}

template <typename T>
std::optional<T> Opt(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<T>();
}

template <typename T>
T Required(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    throw std::invalid_argument(std::string("missing field \"") + key + "\"");
  }
  return it->get<T>();
}

std::vector<std::string> Strings(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  return it->get<std::vector<std::string>>();
}

const Json& List(const Json& j, const char* key) {
  static const Json kEmpty = Json::array();
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return kEmpty;
  if (!it->is_array()) throw std::invalid_argument(std::string("\"") + key + "\" is not a list");
  return *it;
}

}  // namespace

void FromJson(const Json& j, Token& out) {
  out.access_token = Required<std::string>(j, "access_token");
  out.token_type = Get<std::string>(j, "token_type", "Bearer");
  out.expires_in = Get<int64_t>(j, "expires_in");
  out.scope = Get<std::string>(j, "scope");
  out.raw = j;
}

void FromJson(const Json& j, TokenIntrospection& out) {
  out.active = Get<bool>(j, "active");
  out.client_id = Get<std::string>(j, "client_id");
  out.scope = Get<std::string>(j, "scope");
  out.exp = Opt<int64_t>(j, "exp");
  out.iat = Opt<int64_t>(j, "iat");
  out.raw = j;
}

void FromJson(const Json& j, ClientInfo& out) {
  out.client_id = Required<std::string>(j, "client_id");
  out.name = Get<std::string>(j, "name");
  out.scopes = Strings(j, "scopes");
  out.projects = Strings(j, "projects");
  out.branches = Strings(j, "branches");
  out.max_branch_ttl_seconds = Opt<int64_t>(j, "max_branch_ttl_seconds");
  out.enabled = Get<bool>(j, "enabled", true);
  out.created_at = Get<std::string>(j, "created_at");
  out.raw = j;
}

void FromJson(const Json& j, NewClient& out) {
  FromJson(j, static_cast<ClientInfo&>(out));
  out.client_secret = Required<std::string>(j, "client_secret");
}

void FromJson(const Json& j, Project& out) {
  out.id = Get<std::string>(j, "id");
  out.name = Required<std::string>(j, "name");
  out.created_at = Get<std::string>(j, "created_at");
  out.restore_window_seconds = Get<int64_t>(j, "restore_window_seconds");
  out.default_branch = Get<std::string>(j, "default_branch", "production");
  out.durability = Get<std::string>(j, "durability");
  out.raw = j;
}

void FromJson(const Json& j, Branch& out) {
  out.name = Required<std::string>(j, "name");
  out.parent = Opt<std::string>(j, "parent");
  out.head_lsn = Get<uint64_t>(j, "head_lsn");
  out.branch_point_lsn = Get<uint64_t>(j, "branch_point_lsn");
  out.created_at = Get<std::string>(j, "created_at");
  out.expires_at = Opt<std::string>(j, "expires_at");
  out.is_protected = Get<bool>(j, "protected");
  out.writes = Get<std::string>(j, "writes", "any");
  out.is_default = Get<bool>(j, "default");
  out.logical_bytes = Get<uint64_t>(j, "logical_bytes");
  out.exclusive_bytes = Get<uint64_t>(j, "exclusive_bytes");
  out.idle_timeout_seconds = Get<int64_t>(j, "idle_timeout_seconds");
  out.raw = j;
}

void FromJson(const Json& j, SqlResult& out) {
  for (const Json& r : Required<Json>(j, "results")) {
    StatementResult s;
    s.columns = Strings(r, "columns");
    for (const Json& row : List(r, "rows")) s.rows.push_back(row.get<std::vector<Json>>());
    s.rows_affected = Get<int64_t>(r, "rows_affected");
    s.truncated = Get<bool>(r, "truncated");
    out.results.push_back(std::move(s));
  }
  out.lsn = Opt<uint64_t>(j, "lsn");
  out.snapshot_lsn = Get<uint64_t>(j, "snapshot_lsn");
  out.read_only = Get<bool>(j, "read_only");
  out.next_cursor = Opt<std::string>(j, "next_cursor");
  out.raw = j;
}

void FromJson(const Json& j, Checkpoint& out) {
  out.lsn = Required<uint64_t>(j, "lsn");
  out.time = Get<std::string>(j, "time");
  out.kind = Get<std::string>(j, "kind");
  out.client_id = Get<std::string>(j, "client_id");
  out.request_id = Get<std::string>(j, "request_id");
  out.summary = Get<std::string>(j, "summary");
  out.rows_affected = Get<int64_t>(j, "rows_affected");
  out.label = Opt<std::string>(j, "label");
  out.labels = Strings(j, "labels");
  out.inherited = Get<bool>(j, "inherited");
  out.rolled_back = Get<bool>(j, "rolled_back");
  out.branch = Opt<std::string>(j, "branch");
  out.target_lsn = Opt<uint64_t>(j, "target_lsn");
  out.previous_head_lsn = Opt<uint64_t>(j, "previous_head_lsn");
  out.raw = j;
}

void FromJson(const Json& j, CheckpointPage& out) {
  for (const Json& c : Required<Json>(j, "checkpoints")) {
    Checkpoint cp;
    FromJson(c, cp);
    out.checkpoints.push_back(std::move(cp));
  }
  out.next = Opt<std::string>(j, "next");
  out.raw = j;
}

void FromJson(const Json& j, Usage& out) {
  out.project = Get<std::string>(j, "project");
  out.client_id = Opt<std::string>(j, "client_id");
  out.branches = Get<int64_t>(j, "branches");
  out.logical_bytes = Get<int64_t>(j, "logical_bytes");
  out.exclusive_bytes = Get<int64_t>(j, "exclusive_bytes");
  out.commits = Get<int64_t>(j, "commits");
  out.commits_last_minute = Get<int64_t>(j, "commits_last_minute");
  out.active_computes = Get<int64_t>(j, "active_computes");
  out.compute_seconds = Get<double>(j, "compute_seconds");
  out.requests = Get<int64_t>(j, "requests");
  out.counting_since = Get<std::string>(j, "counting_since");
  out.raw = j;
}

void FromJson(const Json& j, AuditEvent& out) {
  out.seq = Required<int64_t>(j, "seq");
  out.time = Get<std::string>(j, "time");
  out.project = Opt<std::string>(j, "project");
  out.branch = Opt<std::string>(j, "branch");
  out.client_id = Opt<std::string>(j, "client_id");
  out.jti = Opt<std::string>(j, "jti");
  out.code = Opt<std::string>(j, "code");
  out.request_id = Get<std::string>(j, "request_id");
  out.operation = Get<std::string>(j, "operation");
  out.status = Get<int>(j, "status");
  out.details = j.contains("details") ? j["details"] : Json::object();
  out.raw = j;
}

void FromJson(const Json& j, AuditPage& out) {
  for (const Json& e : Required<Json>(j, "events")) {
    AuditEvent event;
    FromJson(e, event);
    out.events.push_back(std::move(event));
  }
  out.next_cursor = Opt<std::string>(j, "next_cursor");
  out.raw = j;
}

void FromJson(const Json& j, MoveResult& out) {
  out.head_lsn = Required<uint64_t>(j, "head_lsn");
  out.previous_head_lsn = Required<uint64_t>(j, "previous_head_lsn");
  out.target_lsn = Opt<uint64_t>(j, "target_lsn");
  out.raw = j;
}

void FromJson(const Json& j, PromoteResult& out) {
  out.branch = Required<std::string>(j, "branch");
  out.source = Get<std::string>(j, "source");
  out.mode = Get<std::string>(j, "mode");
  out.dry_run = Get<bool>(j, "dry_run");
  out.head_lsn = Opt<uint64_t>(j, "head_lsn");
  out.previous_head_lsn = Get<uint64_t>(j, "previous_head_lsn");
  out.target_lsn = Opt<uint64_t>(j, "target_lsn");
  for (const Json& a : List(j, "actions")) {
    out.actions.push_back(PromoteAction{Get<uint64_t>(a, "lsn"), Get<std::string>(a, "summary"),
                                        Get<int64_t>(a, "rows")});
  }
  out.verify = j.contains("verify") ? j["verify"] : Json();
  out.attempts = Get<int64_t>(j, "attempts", 1);
  out.raw = j;
}

void FromJson(const Json& j, SchemaInfo& out) {
  out.lsn = Get<uint64_t>(j, "lsn");
  for (const Json& o : Required<Json>(j, "objects")) {
    out.objects.push_back(SchemaObject{Get<std::string>(o, "type"), Get<std::string>(o, "name"),
                                       Opt<std::string>(o, "table"), Opt<std::string>(o, "sql")});
  }
  out.raw = j;
}

void FromJson(const Json& j, DiffResult& out) {
  out.kind = Required<std::string>(j, "kind");
  out.from_lsn = Get<uint64_t>(j, "from_lsn");
  out.to_lsn = Get<uint64_t>(j, "to_lsn");
  if (out.kind == "schema") {
    for (const Json& o : List(j, "objects")) {
      SchemaObjectDiff d;
      d.type = Get<std::string>(o, "type");
      d.name = Get<std::string>(o, "name");
      d.change = Get<std::string>(o, "change");
      d.old_sql = Opt<std::string>(o, "old_sql");
      d.new_sql = Opt<std::string>(o, "new_sql");
      d.columns_added = Strings(o, "columns_added");
      d.columns_removed = Strings(o, "columns_removed");
      d.columns_changed = Strings(o, "columns_changed");
      out.objects.push_back(std::move(d));
    }
    out.unified = Get<std::string>(j, "unified");
  } else if (out.kind == "patch") {
    out.statements = Strings(j, "statements");
    out.complete = j.contains("complete") ? Get<bool>(j, "complete") : true;
    out.next = Opt<std::string>(j, "next");
  } else {
    for (const Json& t : List(j, "tables")) {
      TableDiff d;
      d.table = Get<std::string>(t, "table");
      d.rows_added = Get<int64_t>(t, "rows_added");
      d.rows_removed = Get<int64_t>(t, "rows_removed");
      d.rows_changed = Get<int64_t>(t, "rows_changed");
      for (const Json& c : List(t, "rows")) {
        d.rows.push_back(RowChange{Get<std::string>(c, "op"), Get<Json>(c, "key"),
                                   Get<Json>(c, "old"), Get<Json>(c, "new")});
      }
      d.key_columns = Strings(t, "key_columns");
      d.columns_added = Strings(t, "columns_added");
      d.columns_removed = Strings(t, "columns_removed");
      d.note = Get<std::string>(t, "note");
      out.tables.push_back(std::move(d));
    }
    out.pages_changed = Get<int64_t>(j, "pages_changed");
    auto it = j.find("tables_skipped");
    if (it != j.end() && it->is_array()) {
      out.tables_skipped = static_cast<int64_t>(it->size());
    } else {
      out.tables_skipped = Get<int64_t>(j, "tables_skipped");
    }
    out.next = Opt<std::string>(j, "next");
  }
  out.raw = j;
}

void FromJson(const Json& j, Credential& out) {
  out.credential = Required<std::string>(j, "credential");
  out.token_type = Get<std::string>(j, "token_type", "Bearer");
  out.expires_in = Get<int64_t>(j, "expires_in");
  out.expires_at = Get<std::string>(j, "expires_at");
  out.project = Get<std::string>(j, "project");
  out.branch = Get<std::string>(j, "branch");
  out.access = Get<std::string>(j, "access");
  out.raw = j;
}

void FromJson(const Json& j, ComputeState& out) {
  out.state = Required<std::string>(j, "state");
  out.in_use = Get<int64_t>(j, "in_use");
  out.cold_starts = Get<int64_t>(j, "cold_starts");
  out.last_used_at = Opt<std::string>(j, "last_used_at");
  out.last_cold_start_ms = Opt<double>(j, "last_cold_start_ms");
  out.idle_timeout_seconds = Get<int64_t>(j, "idle_timeout_seconds");
  out.raw = j;
}

}  // namespace branchdb::client::internal
