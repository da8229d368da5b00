#include "server/mcp/tools.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <optional>
#include <vector>

#include "server/http/errors.h"
#include "server/http/router.h"
#include "server/mcp/tool_input.h"
#include "server/mcp/tool_output.h"
#include "server/mcp/tool_text.h"
#include "server/routes/common.h"
#include "server/routes/table.h"

namespace branchdb::server::mcp {
namespace {

using nlohmann::json;
// (argument, key) or (query parameter, value) pairs, in order.
using Pairs = std::vector<std::pair<std::string, std::string>>;

// One API request a tool makes. body null: none.
struct ApiCall {
  std::string method;
  std::string path;   // percent-encoded, without the query string
  Pairs query;   // (parameter, value), in order
  json body;
};

// One API answer: its HTTP status and JSON body ({} when empty; {"body": text}
// when not a JSON object), and the raw text (for an error result).
struct Answer {
  int status = 0;
  json body;
  std::string raw;
};

// What a tool call runs with.
struct Context {
  const Session& session;
  const Dispatcher& dispatch;
};

// The undo of what a tool did: rollback {project, branch, <target>}.
struct Undo {
  std::string branch;
  std::string target;  // "to_lsn: 7", "actions: 1"
};

struct Tool;
// A tool's whole call: the default (Run) makes the one request of the tool's
// route; a composing tool makes several. InvalidArgument for arguments the
// schema cannot refuse.
using Compose = Result<Answer> (*)(const Tool& tool, const json& arguments, const Context& ctx);

// A tool: one API route (of the route table) called with the tool's
// arguments. The path's {project} and {branch} are the arguments of those
// names; the arguments named in body go into the JSON body of a POST or
// PATCH as they are, those named in query into the query string.
struct Tool {
  std::string name;
  std::string title;
  std::string description;
  json input_schema;
  const routes::Route* route;
  std::vector<std::string> body;
  Pairs query;  // (argument, query parameter)
  // Optional: what the mapping above cannot say (a rollback's one target, a
  // diff's kind), applied to the call before query is appended. REQUIRES:
  // arguments fit input_schema. InvalidArgument for combinations the schema
  // cannot express (e.g. two rollback targets).
  std::function<Status(const json& arguments, ApiCall* call)> shape;
  // The text of a successful result; answer is the API's JSON ({} when empty).
  std::function<std::string(const json& arguments, const json& answer)> describe;
  // The shape of a successful answer (outputSchema, with ErrorOutput()).
  json output;
  // Optional: several requests instead of the route's one.
  Compose compose = nullptr;
  // Optional: the rollback that undoes a successful call (nullopt: nothing to undo).
  std::optional<Undo> (*undo)(const json& arguments, const json& answer) = nullptr;
  // A boolean argument that makes the route a read (run_sql's read_only): a
  // read-only session lists the tool as read-only and forces it true.
  const char* read_only_argument = nullptr;
};

// The route (method, template) of routes::kApiRoutes; a compile error when
// the table has none.
consteval const routes::Route* Api(std::string_view method, std::string_view path) {
  size_t i = routes::RouteIndex(method, path);
  if (i == routes::kApiRouteCount) throw "a tool calls a route that routes::kApiRoutes lacks";
  return &routes::kApiRoutes[i];
}

// --- calls ------------------------------------------------------------------

// Appends the arguments of map present to pairs (strings as they are, arrays
// comma-separated, others as JSON).
void AddQuery(const json& a, const Pairs& map, Pairs& pairs) {
  for (const auto& [arg, param] : map) {
    if (!a.contains(arg)) continue;
    const json& v = a[arg];
    if (v.is_array()) {
      std::string joined;
      for (const auto& item : v) joined += (joined.empty() ? "" : ",") + item.get<std::string>();
      pairs.emplace_back(param, joined);
    } else {
      pairs.emplace_back(param, v.is_string() ? v.get<std::string>() : v.dump());
    }
  }
}

// Copies the arguments named in keys into a body object.
json Pick(const json& a, const std::vector<std::string>& keys) {
  json body = json::object();
  for (const auto& k : keys) {
    if (a.contains(k)) body[k] = a[k];
  }
  return body;
}

// What a tool's arguments cannot say by name alone.
Status CreateBranchSource(const json& a, ApiCall* call) {
  json at = json::object();
  for (const auto& [arg, key] : Pairs{{"from_lsn", "lsn"},
                                           {"from_checkpoint", "checkpoint"},
                                           {"from_timestamp", "timestamp"},
                                           {"from_label", "label"}}) {
    if (a.contains(arg)) at[key] = a[arg];
  }
  if (at.size() > 1) {
    return Status::InvalidArgument(
        "give at most one of from_lsn, from_checkpoint, from_timestamp, from_label");
  }
  if (!at.empty()) call->body["at"] = at;
  return Status::OK();
}

Status RollbackTarget(const json& a, ApiCall* call) {
  json to = json::object();
  for (const auto& [arg, key] : Pairs{
           {"to_lsn", "lsn"}, {"actions", "actions"}, {"timestamp", "timestamp"}, {"label", "label"}}) {
    if (a.contains(arg)) to[key] = a[arg];
  }
  if (to.size() != 1) {
    return Status::InvalidArgument("give exactly one of to_lsn, actions, timestamp, label");
  }
  call->body["to"] = to;
  return Status::OK();
}

Status SqlAtLsn(const json& a, ApiCall* call) {
  if (a.contains("at_lsn")) call->body["lsn"] = a["at_lsn"];
  return Status::OK();
}

Status SchemaDiffKind(const json&, ApiCall* call) {
  call->query.emplace_back("kind", "schema");
  return Status::OK();
}

Status DataDiffKind(const json& a, ApiCall* call) {
  bool sql = a.contains("as_sql") && a["as_sql"].is_boolean() && a["as_sql"].get<bool>();
  call->query.emplace_back("kind", sql ? "patch" : "data");
  return Status::OK();
}

// --- the tools ----------------------------------------------------------------

// Composed calls and undos (defined below the table).
Result<Answer> RunSql(const Tool& tool, const json& a, const Context& ctx);
Result<Answer> DescribeBranchCalls(const Tool& tool, const json& a, const Context& ctx);
Result<Answer> GetSchemaCalls(const Tool& tool, const json& a, const Context& ctx);
std::optional<Undo> UndoSql(const json& a, const json& answer);
std::optional<Undo> UndoMove(const json& a, const json& answer);
std::optional<Undo> UndoPromote(const json& a, const json& answer);

#define BRANCHDB_BRANCH "/v1/projects/{project}/branches/{branch}"
const std::vector<Tool>& Tools() {
  static const std::vector<Tool> tools = {
      {"list_projects", "List projects",
       "List the projects this token may see, with each one's default branch.",
       Object(json::object(), {}), Api("GET", "/v1/projects"), {}, {}, nullptr, DescribeProjects,
       Shape({{"projects", ArrayOf(ProjectOutput())}}, {"projects"})},
      {"create_project", "Create a project",
       "Create a project. It starts with one branch, \"production\", holding an empty SQLite "
       "database.",
       CreateProjectSchema(), Api("POST", "/v1/projects"), {"name", "restore_window_seconds"}, {},
       nullptr, DescribeCreatedProject, ProjectOutput()},
      {"list_branches", "List branches",
       "List a project's branches with their head LSN, parent, branch point and expiry.",
       Object({{"project", kProject}}, {"project"}), Api("GET", "/v1/projects/{project}/branches"),
       {}, {}, nullptr, DescribeBranches,
       Shape({{"branches", ArrayOf(BranchOutput())}}, {"branches"})},
      {"describe_branch", "Describe a branch", kDescribeBranchText, OnBranch(),
       Api("GET", BRANCHDB_BRANCH), {}, {}, nullptr, DescribeBranchDetail, DescribeBranchOutput(),
       DescribeBranchCalls},
      {"get_schema", "Get a branch's schema", kGetSchemaText, GetSchemaSchema(),
       Api("GET", BRANCHDB_BRANCH "/schema"), {}, {{"at_lsn", "lsn"}}, nullptr, DescribeSchema,
       SchemaOutput(), GetSchemaCalls},
      {"create_branch", "Create a branch", kCreateBranchText, CreateBranchSchema(),
       Api("POST", "/v1/projects/{project}/branches"), {"name", "parent", "ttl_seconds", "protected"},
       {}, CreateBranchSource, DescribeCreatedBranch, BranchOutput()},
      {"delete_branch", "Delete a branch",
       "Delete a branch and its history (not the parent). Protected branches are refused.",
       OnBranch(), Api("DELETE", BRANCHDB_BRANCH), {}, {}, nullptr, DescribeDeletedBranch,
       Shape({{"deleted", Of("boolean")}}, {"deleted"})},
      {"run_sql", "Run SQL", kRunSqlText, RunSqlSchema(), Api("POST", BRANCHDB_BRANCH "/sql"),
       {"sql", "params", "read_only", "page_size", "cursor"}, {}, SqlAtLsn, DescribeSql,
       SqlOutput(), RunSql, UndoSql, "read_only"},
      {"list_checkpoints", "List checkpoints", kListCheckpointsText, ListCheckpointsSchema(),
       Api("GET", BRANCHDB_BRANCH "/checkpoints"), {}, {{"limit", "limit"}, {"cursor", "cursor"}},
       nullptr, DescribeCheckpoints, CheckpointsOutput()},
      {"label_checkpoint", "Label a checkpoint",
       "Name a checkpoint (default: the branch's current head) so that you can roll back or "
       "branch to it by label, e.g. \"before-migration\".",
       LabelSchema(), Api("POST", BRANCHDB_BRANCH "/checkpoints"), {"label", "lsn"}, {}, nullptr,
       DescribeLabel, CheckpointOutput()},
      {"rollback", "Roll a branch back", kRollbackText, RollbackSchema(),
       Api("POST", BRANCHDB_BRANCH "/rollback"), {}, {}, RollbackTarget, DescribeRollback,
       MoveOutput(), nullptr, UndoMove},
      {"reset_from_parent", "Reset a branch to its parent",
       "Discard a branch's changes: it becomes a fresh copy of its parent's current head "
       "(undoable like a rollback).",
       OnBranch(), Api("POST", BRANCHDB_BRANCH "/reset"), {}, {}, nullptr, DescribeReset,
       MoveOutput(), nullptr, UndoMove},
      {"compare_schema", "Compare schemas",
       "Show how a branch's schema (tables, indexes, views, triggers) differs from its parent "
       "or another branch, with a unified diff of the CREATE statements.",
       Object(DiffProperties(), {"project", "branch"}), Api("GET", BRANCHDB_BRANCH "/diff"), {},
       {{"base", "base"}, {"base_lsn", "base_lsn"}, {"lsn", "lsn"}}, SchemaDiffKind,
       DescribeSchemaDiff, DiffOutput()},
      {"diff_data", "Compare data", kDiffDataText, DiffDataSchema(),
       Api("GET", BRANCHDB_BRANCH "/diff"), {},
       {{"base", "base"}, {"base_lsn", "base_lsn"}, {"lsn", "lsn"}, {"tables", "tables"},
        {"limit", "limit"}, {"cursor", "cursor"}},
       DataDiffKind, DescribeDataDiff, DiffOutput()},
      {"promote_branch", "Promote a branch", kPromoteText, PromoteSchema(),
       Api("POST", BRANCHDB_BRANCH "/promote"),
       {"mode", "dry_run", "verify", "on_conflict", "max_retries"}, {}, nullptr, DescribePromote,
       PromoteOutput(), nullptr, UndoPromote},
      {"get_database_credential", "Get a database credential", kCredentialText,
       CredentialSchema(), Api("POST", BRANCHDB_BRANCH "/credentials"), {"access", "ttl_seconds"},
       {}, nullptr, DescribeCredential,
       Shape({{"credential", Of("string")}, {"access", Of("string")}, {"expires_at", Of("string")}},
             {"credential"})},
  };
  return tools;
}
#undef BRANCHDB_BRANCH

// route's path with {project} (the argument of that name) and {branch}
// (branch) filled in, percent-encoded.
std::string PathOf(const routes::Route* route, const json& a, const std::string& branch) {
  std::string path = route->path;
  for (const auto& [param, value] : Pairs{{"{project}", Arg(a, "project")}, {"{branch}", branch}}) {
    if (size_t at = path.find(param); at != std::string::npos) {
      path.replace(at, param.size(), http::EncodePathSegment(value));
    }
  }
  return path;
}

// The routes the composed calls and undo hints read.
constexpr const routes::Route* kGetBranch = Api("GET", "/v1/projects/{project}/branches/{branch}");
constexpr const routes::Route* kGetCompute =
    Api("GET", "/v1/projects/{project}/branches/{branch}/compute");
constexpr const routes::Route* kListCheckpoints =
    Api("GET", "/v1/projects/{project}/branches/{branch}/checkpoints");
constexpr const routes::Route* kSql = Api("POST", "/v1/projects/{project}/branches/{branch}/sql");

// The API request tool makes with arguments (which fit its input schema).
Result<ApiCall> BuildCall(const Tool& tool, const json& arguments) {
  ApiCall call;
  call.method = tool.route->method;
  call.path = PathOf(tool.route, arguments, Arg(arguments, "branch"));
  if (call.method == "POST" || call.method == "PATCH") call.body = Pick(arguments, tool.body);
  if (tool.shape) BRANCHDB_RETURN_IF_ERROR(tool.shape(arguments, &call));
  AddQuery(arguments, tool.query, call.query);
  return call;
}

// The call's request target: its path, then "?k=v&..." (values percent-encoded).
std::string Target(const ApiCall& call) {
  std::string target = call.path;
  for (size_t i = 0; i < call.query.size(); ++i) {
    target += (i == 0 ? "?" : "&") + call.query[i].first + "=" +
              http::EncodePathSegment(call.query[i].second);
  }
  return target;
}

// --- rights ---------------------------------------------------------------------

// The scope a rollback needs, as the route table and auth/ define it.
auth::Scope RollbackScope() {
  return auth::RequiredScope(
      Api("POST", "/v1/projects/{project}/branches/{branch}/rollback")->operation);
}

// Whether the session's caller may perform op on project/branch: the
// server's own decision (auth::AuthService::Authorize) when the transport
// gave one, else the scope alone.
bool SessionAllows(const Session& session, auth::Operation op, const std::string& project,
                   const std::string& branch) {
  if (session.allows) return session.allows(op, project, branch);
  return session.scopes.Covers(auth::RequiredScope(op));
}

// Whether the session's caller may roll back branch (its API JSON) of
// project; if not, why, and who can. The one rule of every undo hint: the
// rights the API checks (RequireAuth): branches:write on a branch the
// caller's patterns match, and branches:protect when it is protected.
struct RollbackRight {
  bool allowed = false;
  std::string why_not;
};

RollbackRight MayRollBack(const Session& session, const json& branch, const std::string& project) {
  const std::string name = F(branch, "name");
  const std::string scope(auth::ScopeName(RollbackScope()));
  if (!SessionAllows(session, auth::Operation::kRollbackBranch, project, name)) {
    return {false, "rollback of \"" + name + "\" needs the scope " + scope +
                       " on that branch, which this client lacks (its scopes or branch patterns): "
                       "a client with " + scope + " on it (or admin) can."};
  }
  if (branch.value("protected", false) &&
      !SessionAllows(session, auth::Operation::kProtectBranch, project, name)) {
    const std::string protect(
        auth::ScopeName(auth::RequiredScope(auth::Operation::kProtectBranch)));
    return {false,
            "\"" + name + "\" is protected: rollback, reset and delete of it need the scope " +
                protect + ", which this client lacks. A client with " + protect +
                " (or admin) can make the undo as it is, without lifting the protection: tell "
                "the user. Next time try changes on a branch: create_branch {project: \"" +
                project + "\", name: \"agent/try-1\", parent: \"" + name +
                "\"}, then promote_branch."};
  }
  return {true, ""};
}

// Makes one API request as the session's caller.
Answer Fetch(const Context& ctx, const ApiCall& call) {
  http::DispatchRequest req;
  req.method = call.method;
  req.path = Target(call);
  if (!call.body.is_null()) {
    req.body = http::DumpJson(call.body);
    req.headers.emplace("Content-Type", "application/json");
  }
  http::DispatchResponse res = ctx.dispatch(req);
  Answer answer{res.status, json::object(), res.body};
  if (res.status == 204) {
    answer.body = {{"deleted", true}};
  } else if (!res.body.empty()) {
    answer.body = json::parse(res.body, nullptr, false);
    if (answer.body.is_discarded() || !answer.body.is_object()) answer.body = {{"body", res.body}};
  }
  return answer;
}

// GET of path (percent-encoded) with query.
Answer Get(const Context& ctx, std::string path, Pairs query = {}) {
  return Fetch(ctx, ApiCall{"GET", std::move(path), std::move(query), nullptr});
}

// The tool's one request: its route with the arguments.
Result<Answer> Run(const Tool& tool, const json& a, const Context& ctx) {
  auto call = BuildCall(tool, a);
  if (!call.ok()) return call.status();
  return Fetch(ctx, *call);
}

// An answer that is an API error of our own making (the shape of docs/api.md).
Answer ApiError(int status, const std::string& code, const std::string& message) {
  json body = {{"error", {{"code", code}, {"message", message}, {"details", json::object()}}}};
  return Answer{status, body, body.dump()};
}

// run_sql: at_time becomes the LSN of the branch's newest checkpoint at or
// before it (the reflog lists every state the branch has been in, newest
// first), then the one request.
Result<Answer> RunSql(const Tool& tool, const json& a, const Context& ctx) {
  if (!a.contains("at_time")) return Run(tool, a, ctx);
  if (a.contains("at_lsn")) return Status::InvalidArgument("give at most one of at_lsn, at_time");
  auto when = routes::ParseTime(a["at_time"], "arguments.at_time");
  if (!when.ok()) return when.status();
  constexpr int kMaxPages = 100;  // 100,000 checkpoints back
  std::string cursor;
  for (int page = 0; page < kMaxPages; ++page) {
    Pairs query = {{"limit", "1000"}};
    if (!cursor.empty()) query.emplace_back("cursor", cursor);
    Answer list = Get(ctx, PathOf(kListCheckpoints, a, Arg(a, "branch")), query);
    if (list.status >= 400) return list;
    for (const auto& c : list.body.value("checkpoints", json::array())) {
      auto t = routes::ParseTime(c["time"], "time");
      if (t.ok() && *t <= *when) {
        json at = a;
        at.erase("at_time");
        at["at_lsn"] = c["lsn"];
        return Run(tool, at, ctx);
      }
    }
    if (!list.body.value("next", json()).is_string()) break;
    cursor = list.body["next"].get<std::string>();
  }
  return ApiError(404, "checkpoint_not_found",
                  "branch \"" + Arg(a, "branch") + "\" has no checkpoint at or before " +
                      routes::FormatTime(*when) + " within its history and restore window");
}

// describe_branch: the branch, its compute and latest checkpoints, and this
// caller's right to roll it back.
Result<Answer> DescribeBranchCalls(const Tool&, const json& a, const Context& ctx) {
  const std::string name = Arg(a, "branch");
  Answer branch = Get(ctx, PathOf(kGetBranch, a, name));
  if (branch.status >= 400) return branch;
  Answer compute = Get(ctx, PathOf(kGetCompute, a, name));
  Answer history = Get(ctx, PathOf(kListCheckpoints, a, name), {{"limit", "5"}});
  if (history.status >= 400) return history;
  RollbackRight right = MayRollBack(ctx.session, branch.body, Arg(a, "project"));
  json out = {{"branch", branch.body},
              {"recent_checkpoints", history.body.value("checkpoints", json::array())},
              {"rollback",
               {{"allowed", right.allowed},
                {"why_not", right.allowed ? json(nullptr) : json(right.why_not)}}}};
  if (compute.status < 400) out["compute"] = compute.body;
  return Answer{200, out, ""};
}

// get_schema: the schema objects (GET .../schema), and the tables' columns
// read by SQL at the same LSN, page after page.
Result<Answer> GetSchemaCalls(const Tool& tool, const json& a, const Context& ctx) {
  auto schema = Run(tool, a, ctx);
  if (!schema.ok() || schema->status >= 400) return schema;
  const json lsn = schema->body["lsn"];
  json tables = json::array();
  json objects = json::array();
  for (const auto& o : schema->body.value("objects", json::array())) {
    if (o.value("type", "") == "table" && F(o, "name").rfind("sqlite_", 0) != 0) {
      tables.push_back(
          {{"name", o["name"]}, {"sql", o.value("sql", json())}, {"columns", json::array()}});
    } else {
      objects.push_back(o);
    }
  }
  json body = {{"sql",
                "SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk "
                "FROM sqlite_schema AS m JOIN pragma_table_info(m.name) AS p "
                "WHERE m.type = 'table' ORDER BY m.name, p.cid"},
               {"lsn", lsn},
               {"read_only", true},
               {"page_size", 1000}};
  const std::string sql_path = PathOf(kSql, a, Arg(a, "branch"));
  while (true) {
    Answer page = Fetch(ctx, ApiCall{kSql->method, sql_path, {}, body});
    if (page.status >= 400) return page;
    for (const auto& row : page.body["results"][0]["rows"]) {
      for (auto& t : tables) {
        if (t["name"] != row[0]) continue;
        t["columns"].push_back({{"name", row[1]},
                                {"type", row[2]},
                                {"not_null", row[3] != 0},
                                {"default", row[4]},
                                {"primary_key", row[5]}});
      }
    }
    if (!page.body.value("next_cursor", json()).is_string()) break;
    body.erase("page_size");
    body["cursor"] = page.body["next_cursor"];
  }
  return Answer{200, {{"lsn", lsn}, {"tables", tables}, {"objects", objects}}, ""};
}

std::optional<Undo> UndoSql(const json& a, const json& r) {
  if (r.value("lsn", json()).is_null()) return std::nullopt;  // nothing committed
  return Undo{Arg(a, "branch"), "actions: 1"};
}

std::optional<Undo> UndoMove(const json& a, const json& r) {
  return Undo{Arg(a, "branch"), "to_lsn: " + F(r, "previous_head_lsn")};
}

std::optional<Undo> UndoPromote(const json&, const json& r) {
  if (r.value("dry_run", false)) return std::nullopt;
  return Undo{F(r, "branch"), "to_lsn: " + F(r, "previous_head_lsn")};
}

// What the caller may do to undo: the rollback when it may make it, else
// who can (the branch's protection read as the caller).
std::string UndoAdvice(const Context& ctx, const json& a, const Undo& undo) {
  const std::string call = "rollback {project: \"" + Arg(a, "project") + "\", branch: \"" +
                           undo.branch + "\", " + undo.target + "}";
  Answer branch = Get(ctx, PathOf(kGetBranch, a, undo.branch));
  // A caller that may not read the branch is judged on its scopes alone.
  const bool known = branch.status < 400;
  const json facts = known ? branch.body : json{{"name", undo.branch}, {"protected", false}};
  RollbackRight right = MayRollBack(ctx.session, facts, Arg(a, "project"));
  if (!right.allowed) {
    return "You cannot undo it: " + right.why_not + " The undo they can make: " + call + ".";
  }
  std::string out = "To undo it: " + call + ".";
  if (!known) out += " (Refused if \"" + undo.branch + "\" is protected.)";
  if (undo.target == "actions: 1") {
    out += " That rollback's answer gives previous_head_lsn, which undoes the rollback in turn.";
  }
  return out;
}

json ErrorResult(int status, const std::string& body, const Session& session) {

  json parsed = json::parse(body, nullptr, false);
  json error = parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()
                   ? parsed["error"]
                   : json{{"code", "http_" + std::to_string(status)}, {"message", body}};
  std::string code = F(error, "code");
  json details = error.value("details", json::object());
  std::string text = "Error (HTTP " + std::to_string(status) + ", " + code + "): " +
                     F(error, "message") + ".";
  if (details.is_object() && !details.empty()) text += " Details: " + Clip(details.dump(), 2000);
  if (code == "read_only" && session.read_only) {
    text += " This session is read-only (POST /mcp?readonly=true): run_sql runs every script "
            "read-only here.";
  } else if (std::string hint = Hint(code, details); !hint.empty()) {
    text += " " + hint;
  }
  return {{"content", {{{"type", "text"}, {"text", text}}}},
          {"structuredContent", {{"status", status}, {"error", error}}},
          {"isError", true}};
}

}  // namespace

Status ValidateSchema(const json& schema, const json& value, const std::string& path) {
  if (schema.contains("type")) {
    auto is = [&value](const std::string& type) {
      if (type == "object") return value.is_object();
      if (type == "array") return value.is_array();
      if (type == "string") return value.is_string();
      if (type == "integer") return value.is_number_integer();
      if (type == "number") return value.is_number();
      if (type == "boolean") return value.is_boolean();
      return type == "null" && value.is_null();
    };
    const json& type = schema["type"];
    bool ok = false;
    for (const auto& t : type.is_array() ? type : json::array({type})) ok = ok || is(t.get<std::string>());
    if (!ok) {
      return Status::InvalidArgument(path + ": expected " +
                                     (type.is_array() ? type.dump() : type.get<std::string>()));
    }
  }
  if (schema.contains("enum") && std::find(schema["enum"].begin(), schema["enum"].end(), value) ==
                                     schema["enum"].end()) {
    return Status::InvalidArgument(path + ": expected one of " + schema["enum"].dump());
  }
  if (value.is_number()) {
    if (schema.contains("minimum") && value.get<double>() < schema["minimum"].get<double>()) {
      return Status::InvalidArgument(path + ": at least " + schema["minimum"].dump());
    }
    if (schema.contains("maximum") && value.get<double>() > schema["maximum"].get<double>()) {
      return Status::InvalidArgument(path + ": at most " + schema["maximum"].dump());
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < value.size(); ++i) {
      BRANCHDB_RETURN_IF_ERROR(
          ValidateSchema(schema["items"], value[i], path + "[" + std::to_string(i) + "]"));
    }
  }
  if (value.is_object()) {
    const json props = schema.value("properties", json::object());
    for (const auto& name : schema.value("required", json::array())) {
      if (!value.contains(name.get<std::string>())) {
        return Status::InvalidArgument(path + "." + name.get<std::string>() + ": required");
      }
    }
    const json extra = schema.value("additionalProperties", json(true));
    for (const auto& [key, v] : value.items()) {
      if (props.contains(key)) {
        BRANCHDB_RETURN_IF_ERROR(ValidateSchema(props[key], v, path + "." + key));
      } else if (extra.is_object()) {
        BRANCHDB_RETURN_IF_ERROR(ValidateSchema(extra, v, path + "." + key));
      } else if (extra == false) {
        return Status::InvalidArgument(path + "." + key + ": unknown argument (expected " +
                                       [&props] {
                                         std::string names;
                                         for (const auto& [k, _] : props.items()) {
                                           names += (names.empty() ? "" : ", ") + k;
                                         }
                                         return names.empty() ? std::string("none") : names;
                                       }() + ")");
      }
    }
  }
  return Status::OK();
}

namespace {

// A tool that a read-only session lists and runs: a GET, or a route that its
// read_only_argument turns into a read.
bool ReadOnlyTool(const Tool& t, bool session_read_only) {
  return std::string_view(t.route->method) == "GET" ||
         (session_read_only && t.read_only_argument != nullptr);
}

// The MCP tool annotations, from the tool's route: GET reads; DELETE,
// rollback, reset, promote and SQL scripts (a script may DELETE or DROP)
// destroy; GET and DELETE are idempotent (HTTP's meaning); nothing reaches
// outside this server.
json Annotations(const Tool& t, bool session_read_only) {
  using auth::Operation;
  const routes::Route& r = *t.route;
  const std::string_view method = r.method;
  const bool read_only = ReadOnlyTool(t, session_read_only);
  const bool destructive =
      !read_only && (method == "DELETE" || r.operation == Operation::kRollbackBranch ||
                     r.operation == Operation::kResetBranch ||
                     r.operation == Operation::kPromoteBranch ||
                     r.operation == Operation::kSqlRead);  // the SQL route runs scripts
  return {{"title", t.title},
          {"readOnlyHint", read_only},
          {"destructiveHint", destructive},
          {"idempotentHint", method == "GET" || method == "DELETE"},
          {"openWorldHint", false}};
}

json ListFor(bool session_read_only) {
  json out = json::array();
  for (const auto& t : Tools()) {
    if (session_read_only && !ReadOnlyTool(t, true)) continue;
    out.push_back({{"name", t.name},
                   {"title", t.title},
                   {"description", t.description},
                   {"inputSchema", t.input_schema},
                   {"outputSchema", {{"type", "object"}, {"anyOf", {t.output, ErrorOutput()}}}},
                   {"annotations", Annotations(t, session_read_only)}});
  }
  return out;
}

}  // namespace

const json& ToolsList(bool read_only) {
  static const json all = ListFor(false);
  static const json reads = ListFor(true);
  return read_only ? reads : all;
}

Result<json> CallTool(std::string_view name, const json& arguments, const Session& session,
                      const Dispatcher& dispatch) {
  const auto& tools = Tools();
  auto tool = std::find_if(tools.begin(), tools.end(), [&](const Tool& t) { return t.name == name; });
  if (tool == tools.end()) {
    return Status::InvalidArgument("unknown tool \"" + std::string(name) + "\" (tools/list names them)");
  }
  if (session.read_only && !ReadOnlyTool(*tool, true)) {
    return Status::InvalidArgument(
        "tool \"" + std::string(name) + "\" changes state, and this session is read-only (POST "
        "/mcp?readonly=true): it lists and runs read-only tools only. Use a session without "
        "readonly=true for it.");
  }
  BRANCHDB_RETURN_IF_ERROR(ValidateSchema(tool->input_schema, arguments, "arguments"));
  json a = arguments;
  if (session.read_only && tool->read_only_argument != nullptr) a[tool->read_only_argument] = true;
  const Context ctx{session, dispatch};
  auto answer = tool->compose ? tool->compose(*tool, a, ctx) : Run(*tool, a, ctx);
  if (!answer.ok()) return answer.status();
  if (answer->status >= 400) return ErrorResult(answer->status, answer->raw, session);
  std::string text;
  try {
    text = tool->describe(a, answer->body);
  } catch (const json::exception&) {
    text = "Done (HTTP " + std::to_string(answer->status) +
           "); the answer is in structuredContent.";
  }
  if (tool->undo) {
    if (auto undo = tool->undo(a, answer->body)) text += "\n" + UndoAdvice(ctx, a, *undo);
  }
  // The JSON again as text, for clients that show only content (MCP's
  // backwards-compatibility advice for structured content).
  return json{{"content",
               {{{"type", "text"}, {"text", text}},
                {{"type", "text"}, {"text", Clip(http::DumpJson(answer->body), 20000)}}}},
              {"structuredContent", answer->body},
              {"isError", false}};
}

}  // namespace branchdb::server::mcp
