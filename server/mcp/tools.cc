#include "server/mcp/tools.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <vector>

#include "server/http/errors.h"
#include "server/http/router.h"

namespace branchdb::server::mcp {
namespace {

using nlohmann::json;

// One API request a tool makes. body null: none.
struct ApiCall {
  std::string method;
  std::string path;  // percent-encoded, with the query string
  json body;
};

struct Tool {
  std::string name;
  std::string title;
  std::string description;
  json input_schema;
  // REQUIRES: arguments fit input_schema. InvalidArgument for combinations
  // the schema cannot express (e.g. two rollback targets).
  std::function<Result<ApiCall>(const json& arguments)> request;
  // The text of a successful result; answer is the API's JSON ({} when empty).
  std::function<std::string(const json& arguments, const json& answer)> describe;
};

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

// --- paths ------------------------------------------------------------------

std::string Arg(const json& arguments, const char* key) {
  return arguments.contains(key) ? arguments[key].get<std::string>() : "";
}

std::string ProjectPath(const json& a) {
  return "/v1/projects/" + http::EncodePathSegment(Arg(a, "project"));
}

std::string BranchPath(const json& a) {
  return ProjectPath(a) + "/branches/" + http::EncodePathSegment(Arg(a, "branch"));
}

// "?k=v&..." of the arguments present (strings as they are, others as JSON).
std::string Query(const json& a, const std::vector<std::pair<std::string, std::string>>& map,
                  std::vector<std::pair<std::string, std::string>> fixed = {}) {
  std::vector<std::pair<std::string, std::string>> pairs = std::move(fixed);
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
  std::string q;
  for (const auto& [k, v] : pairs) {
    q += (q.empty() ? "?" : "&") + k + "=" + http::EncodePathSegment(v);
  }
  return q;
}

// Copies the arguments named in keys into a body object.
json Pick(const json& a, const std::vector<std::string>& keys) {
  json body = json::object();
  for (const auto& k : keys) {
    if (a.contains(k)) body[k] = a[k];
  }
  return body;
}

// --- reading answers ---------------------------------------------------------

// A field as text: strings bare, null/missing as "none", others as JSON.
std::string F(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "none";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

std::string Clip(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n) + "... (cut; the full value is in structuredContent)";
}

std::string Plural(size_t n, const std::string& word) {
  if (n == 1) return "1 " + word;
  bool sibilant = !word.empty() && (word.back() == 's' || word.back() == 'h');
  return std::to_string(n) + " " + word + (sibilant ? "es" : "s");
}

// "1 table differs", "2 tables differ".
std::string Differ(size_t n, const std::string& word) {
  return Plural(n, word) + (n == 1 ? " differs" : " differ");
}

std::string UndoHint(const json& a, const std::string& branch, const json& answer) {
  return "To undo it: rollback {project: \"" + Arg(a, "project") + "\", branch: \"" + branch +
         "\", to_lsn: " + F(answer, "previous_head_lsn") + "}.";
}

std::string DescribeSql(const json& a, const json& r) {
  std::string out;
  const json results = r.value("results", json::array());
  for (size_t i = 0; i < results.size(); ++i) {
    const json& s = results[i];
    out += "Statement " + std::to_string(i + 1) + ": ";
    const json columns = s.value("columns", json::array());
    const json rows = s.value("rows", json::array());
    if (!columns.empty()) {
      out += Plural(rows.size(), "row") + ", columns " + columns.dump() + "\n";
      for (size_t k = 0; k < rows.size() && k < 20; ++k) out += "  " + Clip(rows[k].dump(), 500) + "\n";
      if (rows.size() > 20) out += "  ... (all rows are in structuredContent.results)\n";
      if (s.value("truncated", false) && r.value("next_cursor", json()).is_string()) {
        out += "  This is one page; more rows follow: call run_sql again with the same sql and "
               "params and cursor \"" + F(r, "next_cursor") + "\" (every page reads LSN " +
               F(r, "snapshot_lsn") + ").\n";
      } else if (s.value("truncated", false)) {
        out += "  (cut by the server's result limits: more rows exist)\n";
      }
    } else {
      out += Plural(s.value("rows_affected", 0), "row") + " affected\n";
    }
  }
  if (r.contains("lsn") && !r["lsn"].is_null()) {
    out += "Committed as checkpoint LSN " + F(r, "lsn") + " on branch \"" + Arg(a, "branch") +
           "\". To undo this action: rollback {actions: 1} (its answer's previous_head_lsn, " +
           F(r, "lsn") + ", undoes that rollback in turn).";
  } else {
    out += "Nothing changed: no checkpoint was made (read the state at LSN " +
           F(r, "snapshot_lsn") + ").";
  }
  return out;
}

std::string DescribeBranch(const json& b) {
  std::string line = "\"" + F(b, "name") + "\": head LSN " + F(b, "head_lsn");
  if (!b.value("parent", json()).is_null()) {
    line += ", parent \"" + F(b, "parent") + "\" at LSN " + F(b, "branch_point_lsn");
  }
  if (!b.value("expires_at", json()).is_null()) line += ", expires " + F(b, "expires_at");
  if (b.value("protected", false)) line += ", protected";
  if (b.value("default", false)) line += ", default";
  return line;
}

std::string DescribeCheckpoint(const json& c) {
  std::string line = "LSN " + F(c, "lsn") + "  " + F(c, "time") + "  " + F(c, "kind");
  if (!F(c, "summary").empty() && F(c, "summary") != "none") line += "  " + Clip(F(c, "summary"), 120);
  if (c.contains("rows_affected")) line += "  (rows " + F(c, "rows_affected") + ")";
  const json labels = c.value("labels", json::array());
  if (!labels.empty()) line += "  labels " + labels.dump();
  if (c.contains("previous_head_lsn")) {
    line += "  moved from LSN " + F(c, "previous_head_lsn") + " to the state of LSN " +
            F(c, "target_lsn");
  }
  if (c.value("rolled_back", false)) line += "  (rolled back: no longer on the branch's history)";
  if (c.value("inherited", false)) line += "  (inherited from \"" + F(c, "branch") + "\")";
  return line;
}

std::string DescribeMove(const json& a, const std::string& what, const json& r) {
  return what + ": head is now LSN " + F(r, "head_lsn") + " (state of LSN " + F(r, "target_lsn") +
         "; it was at LSN " + F(r, "previous_head_lsn") +
         "). The move is itself a checkpoint. " + UndoHint(a, Arg(a, "branch"), r);
}

std::string DiffBase(const json& a) {
  std::string base = a.contains("base") ? "\"" + Arg(a, "base") + "\"" : "its parent";
  return base;
}

std::string DescribeSchemaDiff(const json& a, const json& d) {
  const json objects = d.value("objects", json::array());
  std::string out = "Schema of \"" + Arg(a, "branch") + "\" (LSN " + F(d, "to_lsn") + ") vs " +
                    DiffBase(a) + " (LSN " + F(d, "from_lsn") + "): ";
  if (objects.empty()) return out + "identical.";
  out += Differ(objects.size(), "object") + ":\n";
  for (const auto& o : objects) {
    out += "  " + F(o, "type") + " " + F(o, "name") + ": " + F(o, "change");
    for (const char* k : {"columns_added", "columns_removed", "columns_changed"}) {
      if (o.contains(k) && o[k].is_array() && !o[k].empty()) out += ", " + std::string(k) + " " + o[k].dump();
    }
    out += "\n";
  }
  if (d.contains("unified") && d["unified"].is_string()) {
    out += "Unified diff:\n" + Clip(d["unified"].get<std::string>(), 4000);
  }
  return out;
}

std::string DescribePatch(const json& a, const json& d) {
  std::string out = "SQL turning " + DiffBase(a) + " (LSN " + F(d, "from_lsn") + ") into \"" +
                    Arg(a, "branch") + "\" (LSN " + F(d, "to_lsn") + "):\n" +
                    Clip(d.value("sql", std::string()), 8000);
  if (!d.value("complete", true)) {
    out += "\n(incomplete: a schema change has no ALTER TABLE form; see the -- comments)";
  }
  if (!d.value("next", json()).is_null()) {
    out += "\nMore statements: call again with cursor \"" + F(d, "next") + "\" (and as_sql).";
  }
  return out;
}

std::string DescribeDataDiff(const json& a, const json& d) {
  if (d.value("kind", std::string()) == "patch") return DescribePatch(a, d);
  const json tables = d.value("tables", json::array());
  std::string out = "Data of \"" + Arg(a, "branch") + "\" (LSN " + F(d, "to_lsn") + ") vs " +
                    DiffBase(a) + " (LSN " + F(d, "from_lsn") + "): ";
  size_t changed = 0;
  std::string lines;
  for (const auto& t : tables) {
    std::string counts = "+" + F(t, "rows_added") + " added, -" + F(t, "rows_removed") +
                         " removed, ~" + F(t, "rows_changed") + " changed";
    std::string note = F(t, "note");
    bool has_note = !note.empty() && note != "none";
    if (counts == "+0 added, -0 removed, ~0 changed" && !has_note) continue;
    ++changed;
    lines += "  table " + F(t, "table") + ": " + counts;
    if (has_note) lines += " (" + note + ")";
    for (const char* k : {"columns_added", "columns_removed"}) {
      if (t.contains(k) && t[k].is_array() && !t[k].empty()) lines += ", " + std::string(k) + " " + t[k].dump();
    }
    lines += "\n";
    const json rows = t.value("rows", json::array());
    for (size_t i = 0; i < rows.size() && i < 20; ++i) lines += "    " + Clip(rows[i].dump(), 300) + "\n";
    if (rows.size() > 20) lines += "    ... (this page's other rows are in structuredContent)\n";
  }
  if (changed == 0) out += "no row differences.";
  else out += Differ(changed, "table") + ":\n" + lines;
  if (!d.value("next", json()).is_null()) {
    out += "More changed rows: call again with cursor \"" + F(d, "next") + "\".";
  }
  return out;
}

std::string DescribePromote(const json& a, const json& r) {
  std::string parent = F(r, "branch");
  const json actions = r.value("actions", json::array());
  std::string mode = F(r, "mode");
  if (r.value("dry_run", false)) {
    std::string out = "Dry run: promoting \"" + Arg(a, "branch") + "\" onto \"" + parent + "\" would " +
                      (mode == "fast_forward" ? std::string("fast-forward it")
                                              : "replay " + Plural(actions.size(), "action")) +
                      ". Nothing changed.";
    for (const auto& act : actions) out += "\n  LSN " + F(act, "lsn") + ": " + Clip(F(act, "summary"), 120);
    if (r.contains("verify") && !r["verify"].is_null()) {
      out += "\nverify returned " + r["verify"].value("value", json()).dump() + " (ok).";
    }
    return out + "\nCall promote_branch again without dry_run to apply it.";
  }
  std::string out = "Promoted \"" + Arg(a, "branch") + "\" onto \"" + parent + "\"" +
                    (mode == "none" ? "" : " by " + mode) + ": \"" + parent + "\" is now at LSN " +
                    F(r, "head_lsn") + " (it was at LSN " + F(r, "previous_head_lsn") + ").";
  if (!actions.empty()) out += " " + Plural(actions.size(), "action") + " replayed.";
  if (r.contains("verify") && !r["verify"].is_null()) {
    out += " verify returned " + r["verify"].value("value", json()).dump() + " (ok).";
  }
  return out + " " + UndoHint(a, parent, r);
}

// --- the tools ---------------------------------------------------------------

std::vector<Tool> BuildTools() {
  std::vector<Tool> tools;
  tools.push_back(
      {"list_projects", "List projects",
       "List the projects this token may see, with each one's default branch.",
       Object(json::object(), {}),
       [](const json&) -> Result<ApiCall> { return ApiCall{"GET", "/v1/projects", nullptr}; },
       [](const json&, const json& r) {
         const json list = r.value("projects", json::array());
         std::string out = list.empty() ? "No projects yet: create_project makes one."
                                        : Plural(list.size(), "project") + ":\n";
         for (const auto& p : list) {
           out += "  \"" + F(p, "name") + "\" (default branch \"" + F(p, "default_branch") +
                  "\", restore window " + F(p, "restore_window_seconds") + " s)\n";
         }
         return out;
       }});
  tools.push_back(
      {"create_project", "Create a project",
       "Create a project. It starts with one branch, \"production\", holding an empty SQLite "
       "database.",
       Object({{"name", Text("Project name: letters, digits, '-' and '_'.")},
               {"restore_window_seconds",
                Integer("How far back rollback and branching in time may reach (default: the "
                        "server's).")}},
              {"name"}),
       [](const json& a) -> Result<ApiCall> {
         return ApiCall{"POST", "/v1/projects", Pick(a, {"name", "restore_window_seconds"})};
       },
       [](const json&, const json& r) {
         return "Created project \"" + F(r, "name") + "\" with the branch \"" +
                F(r, "default_branch") +
                "\" (an empty database). Next: create_branch to work on a copy, or run_sql to "
                "create tables.";
       }});
  tools.push_back(
      {"list_branches", "List branches",
       "List a project's branches with their head LSN, parent, branch point and expiry.",
       Object({{"project", kProject}}, {"project"}),
       [](const json& a) -> Result<ApiCall> {
         return ApiCall{"GET", ProjectPath(a) + "/branches", nullptr};
       },
       [](const json& a, const json& r) {
         const json list = r.value("branches", json::array());
         std::string out = Plural(list.size(), "branch") + " in \"" + Arg(a, "project") + "\":\n";
         for (const auto& b : list) out += "  " + DescribeBranch(b) + "\n";
         return out;
       }});
  tools.push_back(
      {"create_branch", "Create a branch",
       "Create a branch: an instant, isolated copy-on-write copy of the parent (whatever its "
       "size). Taken from the parent's head, or from one point in its history: give at most one "
       "of from_lsn, from_checkpoint, from_timestamp, from_label. A source that names no state "
       "of the parent is refused, never rounded; the answer gives the exact LSN the branch "
       "starts from. Work and experiment on the branch; the parent does not change.",
       Object({{"project", kProject},
               {"name", Text("New branch name, e.g. \"agent/try-1\" ('/' allowed).")},
               {"parent", Text("Branch to copy (default: the project's default branch, "
                               "\"production\").")},
               {"from_lsn", Integer("Copy the parent's state with this LSN: one that "
                                    "list_checkpoints shows for the parent. Any other LSN "
                                    "(unknown, or another branch's) is refused.")},
               {"from_checkpoint", Integer("Copy the state of this checkpoint (an LSN of any "
                                           "branch); the branch that wrote it becomes the "
                                           "parent. With parent given, it must be a state of "
                                           "that parent, else it is refused.")},
               {"from_timestamp", Text("Copy the parent's newest state at or before this time "
                                       "(RFC 3339, e.g. \"2026-01-01T12:00:00Z\"); the answer "
                                       "says which LSN that was.")},
               {"from_label", Text("Copy the parent at the checkpoint with this label.")},
               {"ttl_seconds", Integer("Delete the branch automatically after this many seconds "
                                       "(e.g. 3600). Default: never.", 1)},
               {"protected", Boolean("Protect the branch from deletion and rollback.")}},
              {"project", "name"}),
       [](const json& a) -> Result<ApiCall> {
         json body = Pick(a, {"name", "parent", "ttl_seconds", "protected"});
         json at = json::object();
         for (const auto& [arg, key] : std::vector<std::pair<std::string, std::string>>{
                  {"from_lsn", "lsn"}, {"from_checkpoint", "checkpoint"},
                  {"from_timestamp", "timestamp"}, {"from_label", "label"}}) {
           if (a.contains(arg)) at[key] = a[arg];
         }
         if (at.size() > 1) {
           return Status::InvalidArgument(
               "give at most one of from_lsn, from_checkpoint, from_timestamp, from_label");
         }
         if (!at.empty()) body["at"] = at;
         return ApiCall{"POST", ProjectPath(a) + "/branches", body};
       },
       [](const json&, const json& r) {
         std::string out = "Created branch " + DescribeBranch(r) +
                           ". It is an isolated copy: run_sql on it freely; every change is a "
                           "checkpoint you can roll back.";
         if (!r.value("expires_at", json()).is_null()) out += " It is deleted at expiry.";
         return out + " When done: promote_branch to apply it to the parent, or delete_branch.";
       }});
  tools.push_back(
      {"delete_branch", "Delete a branch",
       "Delete a branch and its history (not the parent). Protected branches are refused.",
       Object({{"project", kProject}, {"branch", kBranch}}, {"project", "branch"}),
       [](const json& a) -> Result<ApiCall> { return ApiCall{"DELETE", BranchPath(a), nullptr}; },
       [](const json& a, const json&) {
         return "Deleted branch \"" + Arg(a, "branch") + "\" of project \"" + Arg(a, "project") + "\".";
       }});
  tools.push_back(
      {"run_sql", "Run SQL",
       "Run a SQLite script (one or more statements) on a branch as one transaction: on any "
       "error nothing is committed. A script that changes data commits one checkpoint; the "
       "result gives its LSN and the LSN before it, so the action can be rolled back. Use "
       "read_only=true for queries that must not write. A result larger than the server's "
       "limits is an error (result_too_large), never silently cut: add LIMIT, or read one "
       "statement in pages with page_size and then each answer's cursor.",
       Object({{"project", kProject},
               {"branch", kBranch},
               {"sql", Text("SQLite SQL, e.g. \"SELECT * FROM items WHERE id = ?\". "
                            "ATTACH, VACUUM and most PRAGMAs are refused.")},
               {"params",
                {{"type", json::array({"array", "object"})},
                 {"description",
                  "Bound parameters: a list for '?' placeholders (consumed in order across "
                  "statements) or an object for :name placeholders."}}},
               {"read_only", Boolean("Refuse any write (default false).")},
               {"page_size",
                Integer("Read the result in pages of this many rows (the script must be one "
                        "read-only statement); the answer's next_cursor gets the next page.",
                        1)},
               {"cursor", Text("The next_cursor of the previous page (send the same sql and "
                               "params).")}},
              {"project", "branch", "sql"}),
       [](const json& a) -> Result<ApiCall> {
         return ApiCall{"POST", BranchPath(a) + "/sql",
                        Pick(a, {"sql", "params", "read_only", "page_size", "cursor"})};
       },
       DescribeSql});
  tools.push_back(
      {"list_checkpoints", "List checkpoints",
       "List a branch's checkpoints as a reflog, newest first: every state the branch has "
       "been in (each SQL script, its creation, each rollback, reset and promote with the LSN "
       "it moved from and to), with LSN, time, kind, summary and labels. States a rollback "
       "left behind stay listed, marked rolled back. Any LSN here is a target for rollback; "
       "create_branch {from_checkpoint: N} forks from it.",
       Object({{"project", kProject},
               {"branch", kBranch},
               {"limit", Integer("How many (1..1000, default 50).", 1)},
               {"cursor", Text("The \"next\" value of a previous answer, for the next page.")}},
              {"project", "branch"}),
       [](const json& a) -> Result<ApiCall> {
         return ApiCall{"GET", BranchPath(a) + "/checkpoints" +
                                   Query(a, {{"limit", "limit"}, {"cursor", "cursor"}}),
                        nullptr};
       },
       [](const json& a, const json& r) {
         const json list = r.value("checkpoints", json::array());
         std::string out = Plural(list.size(), "checkpoint") + " of \"" + Arg(a, "branch") + "\":\n";
         for (const auto& c : list) out += "  " + DescribeCheckpoint(c) + "\n";
         if (!r.value("next", json()).is_null()) out += "More: call again with cursor \"" + F(r, "next") + "\".\n";
         return out + "rollback {to_lsn: N} returns the branch to LSN N; create_branch "
                      "{from_checkpoint: N} forks from it.";
       }});
  tools.push_back(
      {"label_checkpoint", "Label a checkpoint",
       "Name a checkpoint (default: the branch's current head) so that you can roll back or "
       "branch to it by label, e.g. \"before-migration\".",
       Object({{"project", kProject},
               {"branch", kBranch},
               {"label", Text("The label, e.g. \"before-migration\".")},
               {"lsn", Integer("The checkpoint's LSN (default: the head).")}},
              {"project", "branch", "label"}),
       [](const json& a) -> Result<ApiCall> {
         return ApiCall{"POST", BranchPath(a) + "/checkpoints", Pick(a, {"label", "lsn"})};
       },
       [](const json& a, const json& r) {
         return "Labelled LSN " + F(r, "lsn") + " of \"" + Arg(a, "branch") + "\" as \"" +
                Arg(a, "label") + "\". rollback {label: \"" + Arg(a, "label") +
                "\"} returns here.";
       }});
  tools.push_back(
      {"rollback", "Roll a branch back",
       "Move a branch back to an earlier state. Give exactly one target: to_lsn (any LSN from "
       "list_checkpoints or run_sql), actions (undo the last N actions), timestamp, or label. "
       "Nothing is lost: the rollback is a checkpoint itself, and rollback {to_lsn: "
       "previous_head_lsn} undoes it.",
       Object({{"project", kProject},
               {"branch", kBranch},
               {"to_lsn", Integer("Return to the state of this LSN (a checkpoint).")},
               {"actions", Integer("Undo the last N actions (1 = the last one).", 1)},
               {"timestamp", Text("Return to the state at this time (RFC 3339).")},
               {"label", Text("Return to the checkpoint with this label.")}},
              {"project", "branch"}),
       [](const json& a) -> Result<ApiCall> {
         json to = json::object();
         for (const auto& [arg, key] : std::vector<std::pair<std::string, std::string>>{
                  {"to_lsn", "lsn"}, {"actions", "actions"}, {"timestamp", "timestamp"},
                  {"label", "label"}}) {
           if (a.contains(arg)) to[key] = a[arg];
         }
         if (to.size() != 1) {
           return Status::InvalidArgument(
               "give exactly one of to_lsn, actions, timestamp, label");
         }
         return ApiCall{"POST", BranchPath(a) + "/rollback", {{"to", to}}};
       },
       [](const json& a, const json& r) {
         return DescribeMove(a, "Rolled back \"" + Arg(a, "branch") + "\"", r);
       }});
  tools.push_back(
      {"reset_from_parent", "Reset a branch to its parent",
       "Discard a branch's changes: it becomes a fresh copy of its parent's current head "
       "(undoable like a rollback).",
       Object({{"project", kProject}, {"branch", kBranch}}, {"project", "branch"}),
       [](const json& a) -> Result<ApiCall> {
         return ApiCall{"POST", BranchPath(a) + "/reset", json::object()};
       },
       [](const json& a, const json& r) {
         return DescribeMove(a, "Reset \"" + Arg(a, "branch") + "\" to its parent's head", r);
       }});
  const json diff_props = {
      {"project", kProject},
      {"branch", kBranch},
      {"base", Text("Branch to compare with (default: the branch's parent).")},
      {"base_lsn", Integer("Compare with the base as it was at this LSN (default: its head).")},
      {"lsn", Integer("Compare the branch as it was at this LSN (default: its head).")}};
  tools.push_back(
      {"compare_schema", "Compare schemas",
       "Show how a branch's schema (tables, indexes, views, triggers) differs from its parent "
       "or another branch, with a unified diff of the CREATE statements.",
       Object(diff_props, {"project", "branch"}),
       [](const json& a) -> Result<ApiCall> {
         return ApiCall{"GET",
                        BranchPath(a) + "/diff" +
                            Query(a, {{"base", "base"}, {"base_lsn", "base_lsn"}, {"lsn", "lsn"}},
                                  {{"kind", "schema"}}),
                        nullptr};
       },
       DescribeSchemaDiff});
  json data_props = diff_props;
  data_props["tables"] = {{"type", "array"},
                          {"items", {{"type", "string"}}},
                          {"description", "Only these tables (default: all)."}};
  data_props["limit"] = Integer("Row changes per page, over all tables (1..1000, default 100).", 1);
  data_props["cursor"] = Text("The \"next\" value of a previous answer, for the next page.");
  data_props["as_sql"] = Boolean("Answer with SQL statements that turn the base into the branch "
                                 "(schema changes, then INSERT/UPDATE/DELETE per row), paged "
                                 "the same way.");
  tools.push_back(
      {"diff_data", "Compare data",
       "Show row-level differences between a branch and its parent (or another branch, or "
       "another LSN): per table rows added, removed and changed (totals), and every changed row "
       "with its key and old/new values, paged by cursor. Tables whose columns were added or "
       "dropped are compared on their key and common columns; added columns' values show as "
       "new, dropped ones' as old. With as_sql: the same diff as SQL that turns the base into "
       "the branch.",
       Object(data_props, {"project", "branch"}),
       [](const json& a) -> Result<ApiCall> {
         bool sql = a.contains("as_sql") && a["as_sql"].is_boolean() && a["as_sql"].get<bool>();
         return ApiCall{"GET",
                        BranchPath(a) + "/diff" +
                            Query(a,
                                  {{"base", "base"}, {"base_lsn", "base_lsn"}, {"lsn", "lsn"},
                                   {"tables", "tables"}, {"limit", "limit"}, {"cursor", "cursor"}},
                                  {{"kind", sql ? "patch" : "data"}}),
                        nullptr};
       },
       DescribeDataDiff});
  tools.push_back(
      {"promote_branch", "Promote a branch",
       "Apply a branch's changes to its parent: a fast-forward when the parent has not moved "
       "since the branch was made, else a replay of the branch's actions on the parent's "
       "current state. All or nothing. Try dry_run=true first; verify runs a check on the "
       "result before the parent moves. The answer's previous_head_lsn undoes it.",
       Object({{"project", kProject},
               {"branch", Text("The branch to promote (its parent receives the changes).")},
               {"mode", Enum("auto (default), fast_forward or replay.",
                             {"auto", "fast_forward", "replay"})},
               {"dry_run", Boolean("Report what would happen without changing anything.")},
               {"verify", Text("A SELECT run on the promoted state before the parent moves; its "
                               "first column of the first row must be truthy, else nothing is "
                               "promoted (e.g. \"SELECT count(*) = 3 FROM items\").")},
               {"on_conflict", Enum("When writes reach the parent during a replay: fail "
                                    "(default) or retry.",
                                    {"fail", "retry"})},
               {"max_retries", {{"type", "integer"}, {"minimum", 0}, {"maximum", 10},
                                {"description", "Retries with on_conflict=retry (0..10, default 3)."}}}},
              {"project", "branch"}),
       [](const json& a) -> Result<ApiCall> {
         return ApiCall{"POST", BranchPath(a) + "/promote",
                        Pick(a, {"mode", "dry_run", "verify", "on_conflict", "max_retries"})};
       },
       DescribePromote});
  tools.push_back(
      {"get_database_credential", "Get a database credential",
       "Issue a short-lived credential for one branch's SQL endpoint only (POST "
       "/v1/projects/{project}/branches/{branch}/sql with Authorization: Bearer <credential>), "
       "to hand to a program or another agent. It works for this very branch only: once the "
       "branch is deleted, re-created or renamed, ask for a new one.",
       Object({{"project", kProject},
               {"branch", kBranch},
               {"access", Enum("read (default) or read_write.", {"read", "read_write"})},
               {"ttl_seconds", Integer("Lifetime in seconds (60..3600, default 900).", 60)}},
              {"project", "branch"}),
       [](const json& a) -> Result<ApiCall> {
         return ApiCall{"POST", BranchPath(a) + "/credentials", Pick(a, {"access", "ttl_seconds"})};
       },
       [](const json& a, const json& r) {
         return "Issued a " + F(r, "access") + " credential for \"" + Arg(a, "branch") +
                "\", valid for " + F(r, "expires_in") + " s (until " + F(r, "expires_at") +
                "). Use it as 'Authorization: Bearer " +
                F(r, "credential") + "' on POST " + BranchPath(a) +
                "/sql only (a read credential cannot write).";
       }});
  return tools;
}

const std::vector<Tool>& Tools() {
  static const std::vector<Tool> tools = BuildTools();
  return tools;
}

// What to try after an API error, by its code.
std::string Hint(const std::string& code, const json& details) {
  if (code == "project_not_found") return "list_projects shows the projects.";
  if (code == "branch_not_found") return "list_branches shows the branches.";
  if (code == "checkpoint_not_found" || code == "label_not_found") {
    return "list_checkpoints shows the branch's checkpoints.";
  }
  if (code == "insufficient_scope") {
    return "The token lacks the scope " + F(details, "scope") +
           "; ask for a token (client) that has it.";
  }
  if (code == "sql_error" || code == "invalid_params") {
    return "Nothing was committed (the script is one transaction). Fix the SQL and run it again.";
  }
  if (code == "read_only") return "This call may not write (read_only, or the token lacks sql:write).";
  if (code == "sql_forbidden") {
    return "The sandbox refuses ATTACH, DETACH, VACUUM, load_extension and most PRAGMAs.";
  }
  if (code == "statement_timeout") return "The script ran too long and was rolled back; make it smaller.";
  if (code == "result_too_large") {
    return "Nothing was returned or committed. Add LIMIT/OFFSET (or WHERE key > last ORDER BY "
           "key LIMIT n), or run the one SELECT with page_size and then call run_sql again with "
           "each answer's cursor until it has none.";
  }
  if (code == "invalid_cursor") {
    return "Send the cursor unchanged with the same sql and params as the page that returned it.";
  }
  if (code == "head_moved" || code == "busy" || code == "concurrent_write" ||
      code == "compute_budget") {
    return "Another request changed or held the branch at the same time: retry.";
  }
  if (code == "branch_protected") return "The branch is protected: work on a branch and promote it.";
  if (code == "parent_moved") return "The parent moved since the branch point: promote with mode auto or replay.";
  if (code == "verify_failed") return "The verify query was not truthy: nothing was promoted.";
  if (code == "replay_failed") {
    return "An action failed on the parent's current state (details.failed_action): nothing was "
           "promoted. reset_from_parent and re-apply, or fix the branch.";
  }
  if (code == "not_replayable") return "An action cannot be replayed (e.g. an import): nothing was promoted.";
  if (code == "outside_restore_window") return "That point is older than the project's restore window.";
  if (code == "no_parent") return "The branch has no parent (e.g. the default branch).";
  if (code == "branch_exists" || code == "project_exists") return "Pick another name.";
  return "";
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
  auto call = tool->request(arguments);
  if (!call.ok()) return call.status();
  http::DispatchRequest req;
  req.method = call->method;
  req.path = call->path;
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
