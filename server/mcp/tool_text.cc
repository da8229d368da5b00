// The text of the MCP tools' results (server/mcp/tools.cc): what an answer
// says, for an LLM to read, and what to try after an error. Internal to
// server/mcp.
#include "server/mcp/tool_text.h"

#include "server/http/router.h"

namespace branchdb::server::mcp {

using nlohmann::json;

std::string Arg(const json& arguments, const char* key) {
  return arguments.contains(key) ? arguments[key].get<std::string>() : "";
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

namespace {

std::string Plural(size_t n, const std::string& word) {
  if (n == 1) return "1 " + word;
  bool sibilant = !word.empty() && (word.back() == 's' || word.back() == 'h');
  return std::to_string(n) + " " + word + (sibilant ? "es" : "s");
}

// "1 table differs", "2 tables differ".
std::string Differ(size_t n, const std::string& word) {
  return Plural(n, word) + (n == 1 ? " differs" : " differ");
}

}  // namespace

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
    out +=
        "Committed as checkpoint LSN " + F(r, "lsn") + " on branch \"" + Arg(a, "branch") + "\".";
  } else {
    out += "Nothing changed: no checkpoint was made (read the state at LSN " +
           F(r, "snapshot_lsn") + ").";
  }
  return out;
}

namespace {

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
         "; it was at LSN " + F(r, "previous_head_lsn") + "). The move is itself a checkpoint.";
}

std::string DiffBase(const json& a) {
  std::string base = a.contains("base") ? "\"" + Arg(a, "base") + "\"" : "its parent";
  return base;
}

}  // namespace

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

namespace {

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

}  // namespace

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
  return out;
}

std::string DescribeProjects(const json&, const json& r) {
  const json list = r.value("projects", json::array());
  std::string out = list.empty() ? "No projects yet: create_project makes one."
                                 : Plural(list.size(), "project") + ":\n";
  for (const auto& p : list) {
    out += "  \"" + F(p, "name") + "\" (default branch \"" + F(p, "default_branch") +
           "\", restore window " + F(p, "restore_window_seconds") + " s)\n";
  }
  return out;
}

std::string DescribeCreatedProject(const json&, const json& r) {
  return "Created project \"" + F(r, "name") + "\" with the branch \"" + F(r, "default_branch") +
         "\" (an empty database). Next: create_branch to work on a copy, or run_sql to create "
         "tables.";
}

std::string DescribeBranches(const json& a, const json& r) {
  const json list = r.value("branches", json::array());
  std::string out = Plural(list.size(), "branch") + " in \"" + Arg(a, "project") + "\":\n";
  for (const auto& b : list) out += "  " + DescribeBranch(b) + "\n";
  return out;
}

std::string DescribeCreatedBranch(const json&, const json& r) {
  std::string out = "Created branch " + DescribeBranch(r) +
                    ". It is an isolated copy: run_sql on it freely; every change is a "
                    "checkpoint you can roll back.";
  if (!r.value("expires_at", json()).is_null()) out += " It is deleted at expiry.";
  return out + " When done: promote_branch to apply it to the parent, or delete_branch.";
}

std::string DescribeBranchDetail(const json& a, const json& r) {
  const json& b = r["branch"];
  std::string out = "Branch " + DescribeBranch(b) + ".\nSize: " + F(b, "logical_bytes") +
                    " bytes logical, " + F(b, "exclusive_bytes") +
                    " bytes its own (not shared with other branches). Created " +
                    F(b, "created_at") + "; " +
                    (b.value("expires_at", json()).is_null() ? std::string("no expiry (no TTL)")
                                                             : "expires " + F(b, "expires_at")) +
                    ".";
  if (r.contains("compute")) {
    out += "\nCompute: " + F(r["compute"], "state") + " (idle timeout " +
           F(r["compute"], "idle_timeout_seconds") + " s).";
  }
  const json history = r.value("recent_checkpoints", json::array());
  out += "\nLatest " + Plural(history.size(), "checkpoint") + ":\n";
  for (const auto& c : history) out += "  " + DescribeCheckpoint(c) + "\n";
  const json& right = r["rollback"];
  if (right.value("allowed", false)) {
    out += "You may roll it back: rollback {project: \"" + Arg(a, "project") + "\", branch: \"" +
           F(b, "name") + "\", to_lsn: N}.";
  } else {
    out += "You may not roll it back: " + F(right, "why_not");
  }
  return out;
}

std::string DescribeSchema(const json& a, const json& r) {
  const json tables = r.value("tables", json::array());
  const json objects = r.value("objects", json::array());
  std::string out = "Schema of \"" + Arg(a, "branch") + "\" at LSN " + F(r, "lsn") + ": " +
                    Plural(tables.size(), "table") + ".\n";
  for (const auto& t : tables) {
    out += "  table " + F(t, "name") + " (";
    std::string columns;
    for (const auto& c : t.value("columns", json::array())) {
      std::string col = F(c, "name");
      if (!F(c, "type").empty() && F(c, "type") != "none") col += " " + F(c, "type");
      if (c.value("primary_key", 0) > 0) col += " PRIMARY KEY";
      if (c.value("not_null", false)) col += " NOT NULL";
      if (!c.value("default", json()).is_null()) col += " DEFAULT " + F(c, "default");
      columns += (columns.empty() ? "" : ", ") + col;
    }
    out += columns + ")\n";
  }
  for (const auto& o : objects) {
    out += "  " + F(o, "type") + " " + F(o, "name") + " on " + F(o, "table") + ": " +
           Clip(F(o, "sql"), 300) + "\n";
  }
  return out;
}

std::string DescribeDeletedBranch(const json& a, const json&) {
  return "Deleted branch \"" + Arg(a, "branch") + "\" of project \"" + Arg(a, "project") + "\".";
}

std::string DescribeCheckpoints(const json& a, const json& r) {
  const json list = r.value("checkpoints", json::array());
  std::string out = Plural(list.size(), "checkpoint") + " of \"" + Arg(a, "branch") + "\":\n";
  for (const auto& c : list) out += "  " + DescribeCheckpoint(c) + "\n";
  if (!r.value("next", json()).is_null()) {
    out += "More: call again with cursor \"" + F(r, "next") + "\".\n";
  }
  return out + "rollback {to_lsn: N} returns the branch to LSN N; create_branch "
               "{from_checkpoint: N} forks from it.";
}

std::string DescribeLabel(const json& a, const json& r) {
  return "Labelled LSN " + F(r, "lsn") + " of \"" + Arg(a, "branch") + "\" as \"" +
         Arg(a, "label") + "\". rollback {label: \"" + Arg(a, "label") + "\"} returns here.";
}

std::string DescribeRollback(const json& a, const json& r) {
  return DescribeMove(a, "Rolled back \"" + Arg(a, "branch") + "\"", r);
}

std::string DescribeReset(const json& a, const json& r) {
  return DescribeMove(a, "Reset \"" + Arg(a, "branch") + "\" to its parent's head", r);
}

std::string DescribeCredential(const json& a, const json& r) {
  std::string path = "/v1/projects/" + http::EncodePathSegment(Arg(a, "project")) +
                     "/branches/" + http::EncodePathSegment(Arg(a, "branch"));
  return "Issued a " + F(r, "access") + " credential for \"" + Arg(a, "branch") +
         "\", valid for " + F(r, "expires_in") + " s (until " + F(r, "expires_at") +
         "). Use it as 'Authorization: Bearer " + F(r, "credential") + "' on POST " + path +
         "/sql only (a read credential cannot write).";
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
  if (code == "branch_protected") {
    return "The branch is guarded: a client with branches:protect (or admin) can do this; do "
           "not ask to lift the guard. Work on a branch of it (create_branch) and promote it.";
  }
  if (code == "branch_promote_only") {
    return "Writes reach this branch only by promotion: create_branch from it (e.g. "
           "\"agent/try-1\"), run the SQL there, check it, then promote_branch (or ask who "
           "holds branches:promote_protected).";
  }
  if (code == "branch_not_allowed") {
    std::string patterns;
    if (details.contains("branches") && details["branches"].is_array()) {
      for (const auto& p : details["branches"]) {
        if (p.is_string()) patterns += (patterns.empty() ? "" : ", ") + p.get<std::string>();
      }
    }
    return "This client may act only on branches matching " +
           (patterns.empty() ? std::string("its patterns") : patterns) +
           ": use or create_branch one of those (its parent may be any branch).";
  }
  if (code == "branch_ttl_not_allowed") {
    return "Give a shorter ttl_seconds (at most details.max_branch_ttl_seconds), or none.";
  }
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

}  // namespace branchdb::server::mcp
