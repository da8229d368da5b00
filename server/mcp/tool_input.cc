#include "server/mcp/tool_input.h"

namespace branchdb::server::mcp {

using nlohmann::json;

// --- schema pieces ---------------------------------------------------------

json Text(const std::string& description) {
  return {{"type", "string"}, {"description", description}};
}
json Integer(const std::string& description, int64_t minimum) {
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
    "statement in pages with page_size and then each answer's cursor. Time travel: at_lsn or "
    "at_time reads one statement against a past state of the branch.";
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
const char* const kDescribeBranchText =
    "Everything about one branch in one call: its head LSN, parent and branch point, expiry "
    "(TTL), protection, size (logical and exclusive bytes), compute state, its latest "
    "checkpoints, and whether this caller may roll it back (if not, who may). Read-only.";
const char* const kGetSchemaText =
    "List a branch's tables with their columns (name, declared type, NOT NULL, default, "
    "primary-key position) and every other schema object (indexes, views, triggers) with its "
    "CREATE statement; at_lsn reads the schema as it was at that LSN. Read-only.";
const char* const kCredentialText =
    "Issue a short-lived credential for one branch's SQL endpoint only (POST "
    "/v1/projects/{project}/branches/{branch}/sql with Authorization: Bearer <credential>), "
    "to hand to a program or another agent. It works for this very branch only: once the "
    "branch is deleted, re-created or renamed, ask for a new one.";

// A value bound to a parameter: a JSON scalar, or {"$blob": "<base64>"} for a
// BLOB (docs/api.md).
const json kSqlValue = {{"type", json::array({"string", "number", "boolean", "null", "object"})}};

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
         {"items", kSqlValue},
         {"additionalProperties", kSqlValue},
         {"description",
          "Bound parameters: a list for '?' placeholders (consumed in order across statements) "
          "or an object for :name placeholders."}}},
       {"read_only", Boolean("Refuse any write (default false).")},
       {"at_lsn", Integer("Time travel: read the branch as it was at this LSN (a checkpoint "
                          "that list_checkpoints or an earlier run_sql gave). One read-only "
                          "statement; the head does not move.")},
       {"at_time", Text("Time travel: read the branch as it was at this time (RFC 3339, e.g. "
                        "\"2026-01-01T12:00:00Z\"): its newest checkpoint at or before it, "
                        "whose LSN the answer gives as snapshot_lsn. One read-only statement; "
                        "give at most one of at_lsn and at_time.")},
       {"page_size", Integer("Read the result in pages of this many rows (the script must be one "
                             "read-only statement); the answer's next_cursor gets the next page.",
                             1)},
       {"cursor", Text("The next_cursor of the previous page (send the same sql and params).")}},
      {"project", "branch", "sql"});
}

json GetSchemaSchema() {
  return Object({{"project", kProject},
                 {"branch", kBranch},
                 {"at_lsn", Integer("Read the schema as it was at this LSN (default: the head).")}},
                {"project", "branch"});
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

}  // namespace branchdb::server::mcp
