#include "server/mcp/tools.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <vector>

#include "server/http/errors.h"
#include "server/http/router.h"
#include "server/mcp/tool_text.h"
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
};

// The route (method, template) of routes::kApiRoutes; a compile error when
// the table has none.
consteval const routes::Route* Api(std::string_view method, std::string_view path) {
  size_t i = routes::RouteIndex(method, path);
  if (i == routes::kApiRouteCount) throw "a tool calls a route that routes::kApiRoutes lacks";
  return &routes::kApiRoutes[i];
}

// --- schema pieces ---------------------------------------------------------

json Text(const std::string& description) {
  return {{"type", "string"}, {"description", description}};
}
json Integer(const std::string& description, int64_t minimum = 0) {
  return {{"type", "integer"}, {"minimum", minimum}, {"description", description}};
}
json Boolean(const std::string& description) {
  return {{"type", "boolean"}, {"description", description}};
}
json Enum(const std::string& description, std::vector<std::string> values) {
  return {{"type", "string"}, {"enum", values}, {"description", description}};
}
json Object(json properties, std::vector<std::string> required) {
  json schema = {{"type", "object"},
                 {"properties", std::move(properties)},
                 {"additionalProperties", false}};
  if (!required.empty()) schema["required"] = std::move(required);
  return schema;
}

const json kProject = Text("Project name, e.g. \"shop\" (list_projects shows them).");
const json kBranch = Text(
    "Branch name, e.g. \"production\" or \"dev/alex\" (may contain '/'; list_branches shows "
    "them).");

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

Status SchemaDiffKind(const json&, ApiCall* call) {
  call->query.emplace_back("kind", "schema");
  return Status::OK();
}

Status DataDiffKind(const json& a, ApiCall* call) {
  bool sql = a.contains("as_sql") && a["as_sql"].is_boolean() && a["as_sql"].get<bool>();
  call->query.emplace_back("kind", sql ? "patch" : "data");
  return Status::OK();
}

// --- the tools' descriptions and input schemas --------------------------------

const char* const kCreateBranchText =
    "Create a branch: an instant, isolated copy-on-write copy of the parent (whatever its "
    "size). Taken from the parent's head, or from one point in its history: give at most one "
    "of from_lsn, from_checkpoint, from_timestamp, from_label. A source that names no state "
    "of the parent is refused, never rounded; the answer gives the exact LSN the branch "
    "starts from. Work and experiment on the branch; the parent does not change.";
const char* const kRunSqlText =
    "Run a SQLite script (one or more statements) on a branch as one transaction: on any "
    "error nothing is committed. A script that changes data commits one checkpoint; the "
    "result gives its LSN and the LSN before it, so the action can be rolled back. Use "
    "read_only=true for queries that must not write. A result larger than the server's "
    "limits is an error (result_too_large), never silently cut: add LIMIT, or read one "
    "statement in pages with page_size and then each answer's cursor.";
const char* const kListCheckpointsText =
    "List a branch's checkpoints as a reflog, newest first: every state the branch has "
    "been in (each SQL script, its creation, each rollback, reset and promote with the LSN "
    "it moved from and to), with LSN, time, kind, summary and labels. States a rollback "
    "left behind stay listed, marked rolled back. Any LSN here is a target for rollback; "
    "create_branch {from_checkpoint: N} forks from it.";
const char* const kRollbackText =
    "Move a branch back to an earlier state. Give exactly one target: to_lsn (any LSN from "
    "list_checkpoints or run_sql), actions (undo the last N actions), timestamp, or label. "
    "Nothing is lost: the rollback is a checkpoint itself, and rollback {to_lsn: "
    "previous_head_lsn} undoes it.";
const char* const kDiffDataText =
    "Show row-level differences between a branch and its parent (or another branch, or "
    "another LSN): per table rows added, removed and changed (totals), and every changed row "
    "with its key and old/new values, paged by cursor. Tables whose columns were added or "
    "dropped are compared on their key and common columns; added columns' values show as "
    "new, dropped ones' as old. With as_sql: the same diff as SQL that turns the base into "
    "the branch.";
const char* const kPromoteText =
    "Apply a branch's changes to its parent: a fast-forward when the parent has not moved "
    "since the branch was made, else a replay of the branch's actions on the parent's "
    "current state. All or nothing. Try dry_run=true first; verify runs a check on the "
    "result before the parent moves. The answer's previous_head_lsn undoes it.";
const char* const kCredentialText =
    "Issue a short-lived credential for one branch's SQL endpoint only (POST "
    "/v1/projects/{project}/branches/{branch}/sql with Authorization: Bearer <credential>), "
    "to hand to a program or another agent. It works for this very branch only: once the "
    "branch is deleted, re-created or renamed, ask for a new one.";

json OnBranch() { return Object({{"project", kProject}, {"branch", kBranch}}, {"project", "branch"}); }

json CreateProjectSchema() {
  return Object({{"name", Text("Project name: letters, digits, '-' and '_'.")},
                 {"restore_window_seconds",
                  Integer("How far back rollback and branching in time may reach (default: the "
                          "server's).")}},
                {"name"});
}

json CreateBranchSchema() {
  return Object(
      {{"project", kProject},
       {"name", Text("New branch name, e.g. \"agent/try-1\" ('/' allowed).")},
       {"parent", Text("Branch to copy (default: the project's default branch, \"production\").")},
       {"from_lsn", Integer("Copy the parent's state with this LSN: one that list_checkpoints "
                            "shows for the parent. Any other LSN (unknown, or another branch's) "
                            "is refused.")},
       {"from_checkpoint", Integer("Copy the state of this checkpoint (an LSN of any branch); the "
                                   "branch that wrote it becomes the parent. With parent given, "
                                   "it must be a state of that parent, else it is refused.")},
       {"from_timestamp", Text("Copy the parent's newest state at or before this time (RFC 3339, "
                               "e.g. \"2026-01-01T12:00:00Z\"); the answer says which LSN that "
                               "was.")},
       {"from_label", Text("Copy the parent at the checkpoint with this label.")},
       {"ttl_seconds", Integer("Delete the branch automatically after this many seconds (e.g. "
                               "3600). Default: never.", 1)},
       {"protected", Boolean("Protect the branch from deletion and rollback.")}},
      {"project", "name"});
}

json RunSqlSchema() {
  return Object(
      {{"project", kProject},
       {"branch", kBranch},
       {"sql", Text("SQLite SQL, e.g. \"SELECT * FROM items WHERE id = ?\". ATTACH, VACUUM and "
                    "most PRAGMAs are refused.")},
       {"params",
        {{"type", json::array({"array", "object"})},
         {"description",
          "Bound parameters: a list for '?' placeholders (consumed in order across statements) "
          "or an object for :name placeholders."}}},
       {"read_only", Boolean("Refuse any write (default false).")},
       {"page_size", Integer("Read the result in pages of this many rows (the script must be one "
                             "read-only statement); the answer's next_cursor gets the next page.",
                             1)},
       {"cursor", Text("The next_cursor of the previous page (send the same sql and params).")}},
      {"project", "branch", "sql"});
}

json ListCheckpointsSchema() {
  return Object({{"project", kProject},
                 {"branch", kBranch},
                 {"limit", Integer("How many (1..1000, default 50).", 1)},
                 {"cursor", Text("The \"next\" value of a previous answer, for the next page.")}},
                {"project", "branch"});
}

json LabelSchema() {
  return Object({{"project", kProject},
                 {"branch", kBranch},
                 {"label", Text("The label, e.g. \"before-migration\".")},
                 {"lsn", Integer("The checkpoint's LSN (default: the head).")}},
                {"project", "branch", "label"});
}

json RollbackSchema() {
  return Object({{"project", kProject},
                 {"branch", kBranch},
                 {"to_lsn", Integer("Return to the state of this LSN (a checkpoint).")},
                 {"actions", Integer("Undo the last N actions (1 = the last one).", 1)},
                 {"timestamp", Text("Return to the state at this time (RFC 3339).")},
                 {"label", Text("Return to the checkpoint with this label.")}},
                {"project", "branch"});
}

json DiffProperties() {
  return {{"project", kProject},
          {"branch", kBranch},
          {"base", Text("Branch to compare with (default: the branch's parent).")},
          {"base_lsn", Integer("Compare with the base as it was at this LSN (default: its head).")},
          {"lsn", Integer("Compare the branch as it was at this LSN (default: its head).")}};
}

json DiffDataSchema() {
  json props = DiffProperties();
  props["tables"] = {{"type", "array"},
                     {"items", {{"type", "string"}}},
                     {"description", "Only these tables (default: all)."}};
  props["limit"] = Integer("Row changes per page, over all tables (1..1000, default 100).", 1);
  props["cursor"] = Text("The \"next\" value of a previous answer, for the next page.");
  props["as_sql"] = Boolean("Answer with SQL statements that turn the base into the branch "
                            "(schema changes, then INSERT/UPDATE/DELETE per row), paged the same "
                            "way.");
  return Object(props, {"project", "branch"});
}

json PromoteSchema() {
  return Object(
      {{"project", kProject},
       {"branch", Text("The branch to promote (its parent receives the changes).")},
       {"mode", Enum("auto (default), fast_forward or replay.", {"auto", "fast_forward", "replay"})},
       {"dry_run", Boolean("Report what would happen without changing anything.")},
       {"verify", Text("A SELECT run on the promoted state before the parent moves; its first "
                       "column of the first row must be truthy, else nothing is promoted (e.g. "
                       "\"SELECT count(*) = 3 FROM items\").")},
       {"on_conflict", Enum("When writes reach the parent during a replay: fail (default) or "
                            "retry.",
                            {"fail", "retry"})},
       {"max_retries",
        {{"type", "integer"},
         {"minimum", 0},
         {"maximum", 10},
         {"description", "Retries with on_conflict=retry (0..10, default 3)."}}}},
      {"project", "branch"});
}

json CredentialSchema() {
  return Object({{"project", kProject},
                 {"branch", kBranch},
                 {"access", Enum("read (default) or read_write.", {"read", "read_write"})},
                 {"ttl_seconds", Integer("Lifetime in seconds (60..3600, default 900).", 60)}},
                {"project", "branch"});
}

// --- the tools ----------------------------------------------------------------

#define BRANCHDB_BRANCH "/v1/projects/{project}/branches/{branch}"
const std::vector<Tool>& Tools() {
  static const std::vector<Tool> tools = {
      {"list_projects", "List projects",
       "List the projects this token may see, with each one's default branch.",
       Object(json::object(), {}), Api("GET", "/v1/projects"), {}, {}, nullptr, DescribeProjects},
      {"create_project", "Create a project",
       "Create a project. It starts with one branch, \"production\", holding an empty SQLite "
       "database.",
       CreateProjectSchema(), Api("POST", "/v1/projects"), {"name", "restore_window_seconds"}, {},
       nullptr, DescribeCreatedProject},
      {"list_branches", "List branches",
       "List a project's branches with their head LSN, parent, branch point and expiry.",
       Object({{"project", kProject}}, {"project"}), Api("GET", "/v1/projects/{project}/branches"),
       {}, {}, nullptr, DescribeBranches},
      {"create_branch", "Create a branch", kCreateBranchText, CreateBranchSchema(),
       Api("POST", "/v1/projects/{project}/branches"), {"name", "parent", "ttl_seconds", "protected"},
       {}, CreateBranchSource, DescribeCreatedBranch},
      {"delete_branch", "Delete a branch",
       "Delete a branch and its history (not the parent). Protected branches are refused.",
       OnBranch(), Api("DELETE", BRANCHDB_BRANCH), {}, {}, nullptr, DescribeDeletedBranch},
      {"run_sql", "Run SQL", kRunSqlText, RunSqlSchema(), Api("POST", BRANCHDB_BRANCH "/sql"),
       {"sql", "params", "read_only", "page_size", "cursor"}, {}, nullptr, DescribeSql},
      {"list_checkpoints", "List checkpoints", kListCheckpointsText, ListCheckpointsSchema(),
       Api("GET", BRANCHDB_BRANCH "/checkpoints"), {}, {{"limit", "limit"}, {"cursor", "cursor"}},
       nullptr, DescribeCheckpoints},
      {"label_checkpoint", "Label a checkpoint",
       "Name a checkpoint (default: the branch's current head) so that you can roll back or "
       "branch to it by label, e.g. \"before-migration\".",
       LabelSchema(), Api("POST", BRANCHDB_BRANCH "/checkpoints"), {"label", "lsn"}, {}, nullptr,
       DescribeLabel},
      {"rollback", "Roll a branch back", kRollbackText, RollbackSchema(),
       Api("POST", BRANCHDB_BRANCH "/rollback"), {}, {}, RollbackTarget, DescribeRollback},
      {"reset_from_parent", "Reset a branch to its parent",
       "Discard a branch's changes: it becomes a fresh copy of its parent's current head "
       "(undoable like a rollback).",
       OnBranch(), Api("POST", BRANCHDB_BRANCH "/reset"), {}, {}, nullptr, DescribeReset},
      {"compare_schema", "Compare schemas",
       "Show how a branch's schema (tables, indexes, views, triggers) differs from its parent "
       "or another branch, with a unified diff of the CREATE statements.",
       Object(DiffProperties(), {"project", "branch"}), Api("GET", BRANCHDB_BRANCH "/diff"), {},
       {{"base", "base"}, {"base_lsn", "base_lsn"}, {"lsn", "lsn"}}, SchemaDiffKind,
       DescribeSchemaDiff},
      {"diff_data", "Compare data", kDiffDataText, DiffDataSchema(),
       Api("GET", BRANCHDB_BRANCH "/diff"), {},
       {{"base", "base"}, {"base_lsn", "base_lsn"}, {"lsn", "lsn"}, {"tables", "tables"},
        {"limit", "limit"}, {"cursor", "cursor"}},
       DataDiffKind, DescribeDataDiff},
      {"promote_branch", "Promote a branch", kPromoteText, PromoteSchema(),
       Api("POST", BRANCHDB_BRANCH "/promote"),
       {"mode", "dry_run", "verify", "on_conflict", "max_retries"}, {}, nullptr, DescribePromote},
      {"get_database_credential", "Get a database credential", kCredentialText,
       CredentialSchema(), Api("POST", BRANCHDB_BRANCH "/credentials"), {"access", "ttl_seconds"},
       {}, nullptr, DescribeCredential},
  };
  return tools;
}
#undef BRANCHDB_BRANCH

// The API request tool makes with arguments (which fit its input schema).
Result<ApiCall> BuildCall(const Tool& tool, const json& arguments) {
  ApiCall call;
  call.method = tool.route->method;
  call.path = tool.route->path;
  for (const char* name : {"project", "branch"}) {
    std::string param = std::string("{") + name + "}";
    if (size_t at = call.path.find(param); at != std::string::npos) {
      call.path.replace(at, param.size(), http::EncodePathSegment(Arg(arguments, name)));
    }
  }
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

json ErrorResult(int status, const std::string& body) {

  json parsed = json::parse(body, nullptr, false);
  json error = parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()
                   ? parsed["error"]
                   : json{{"code", "http_" + std::to_string(status)}, {"message", body}};
  std::string code = F(error, "code");
  json details = error.value("details", json::object());
  std::string text = "Error (HTTP " + std::to_string(status) + ", " + code + "): " +
                     F(error, "message") + ".";
  if (details.is_object() && !details.empty()) text += " Details: " + Clip(details.dump(), 2000);
  if (std::string hint = Hint(code, details); !hint.empty()) text += " " + hint;
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
    for (const auto& [key, v] : value.items()) {
      if (props.contains(key)) {
        BRANCHDB_RETURN_IF_ERROR(ValidateSchema(props[key], v, path + "." + key));
      } else if (schema.value("additionalProperties", true) == false) {
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

const json& ToolsList() {
  static const json list = [] {
    json out = json::array();
    for (const auto& t : Tools()) {
      out.push_back({{"name", t.name},
                     {"title", t.title},
                     {"description", t.description},
                     {"inputSchema", t.input_schema}});
    }
    return out;
  }();
  return list;
}

Result<json> CallTool(std::string_view name, const json& arguments, const Dispatcher& dispatch) {
  const auto& tools = Tools();
  auto tool = std::find_if(tools.begin(), tools.end(), [&](const Tool& t) { return t.name == name; });
  if (tool == tools.end()) {
    return Status::InvalidArgument("unknown tool \"" + std::string(name) + "\" (tools/list names them)");
  }
  BRANCHDB_RETURN_IF_ERROR(ValidateSchema(tool->input_schema, arguments, "arguments"));
  auto call = BuildCall(*tool, arguments);
  if (!call.ok()) return call.status();
  http::DispatchRequest req;
  req.method = call->method;
  req.path = Target(*call);
  if (!call->body.is_null()) {
    req.body = http::DumpJson(call->body);
    req.headers.emplace("Content-Type", "application/json");
  }
  http::DispatchResponse res = dispatch(req);
  if (res.status >= 400) return ErrorResult(res.status, res.body);
  json answer = res.body.empty() ? json::object() : json::parse(res.body, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) answer = json{{"body", res.body}};
  if (res.status == 204) answer = {{"deleted", true}};
  std::string text;
  try {
    text = tool->describe(arguments, answer);
  } catch (const json::exception&) {
    text = "Done (HTTP " + std::to_string(res.status) + "); the answer is in structuredContent.";
  }
  // The JSON again as text, for clients that show only content (MCP's
  // backwards-compatibility advice for structured content).
  return json{{"content",
               {{{"type", "text"}, {"text", text}},
                {{"type", "text"}, {"text", Clip(http::DumpJson(answer), 20000)}}}},
              {"structuredContent", answer},
              {"isError", false}};
}

}  // namespace branchdb::server::mcp
