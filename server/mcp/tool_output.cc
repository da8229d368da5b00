// The MCP tools' output schemas (server/mcp/tools.cc). Internal to server/mcp.
#include "server/mcp/tool_output.h"

namespace branchdb::server::mcp {

using nlohmann::json;

json Of(const char* type) { return {{"type", type}}; }
json OrNull(const char* type) { return {{"type", json::array({type, "null"})}}; }
json ArrayOf(json items) { return {{"type", "array"}, {"items", std::move(items)}}; }
json Shape(json properties, std::vector<std::string> required) {
  return {
      {"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}};
}

json ErrorOutput() {
  json error = Shape({{"code", Of("string")}, {"message", Of("string")}, {"details", Of("object")}},
                     {"code", "message"});
  return Shape({{"status", Of("integer")}, {"error", std::move(error)}}, {"status", "error"});
}

json ProjectOutput() {
  return Shape({{"name", Of("string")},
                {"default_branch", Of("string")},
                {"created_at", Of("string")},
                {"restore_window_seconds", Of("integer")}},
               {"name", "default_branch"});
}

json BranchOutput() {
  return Shape({{"name", Of("string")},
                {"parent", OrNull("string")},
                {"head_lsn", Of("integer")},
                {"branch_point_lsn", Of("integer")},
                {"created_at", Of("string")},
                {"expires_at", OrNull("string")},
                {"protected", Of("boolean")},
                {"writes", Of("string")},
                {"default", Of("boolean")},
                {"logical_bytes", Of("integer")},
                {"exclusive_bytes", Of("integer")},
                {"idle_timeout_seconds", Of("integer")}},
               {"name", "parent", "head_lsn", "protected"});
}

json CheckpointOutput() {
  return Shape({{"lsn", Of("integer")},
                {"time", Of("string")},
                {"kind", Of("string")},
                {"summary", Of("string")},
                {"labels", ArrayOf(Of("string"))},
                {"rolled_back", Of("boolean")},
                {"inherited", Of("boolean")}},
               {"lsn", "time", "kind"});
}

json CheckpointsOutput() {
  return Shape({{"checkpoints", ArrayOf(CheckpointOutput())}, {"next", OrNull("string")}},
               {"checkpoints"});
}

json MoveOutput() {
  return Shape({{"head_lsn", Of("integer")},
                {"previous_head_lsn", Of("integer")},
                {"target_lsn", Of("integer")}},
               {"head_lsn", "previous_head_lsn", "target_lsn"});
}

json SqlOutput() {
  json statement = Shape(
      {{"columns", ArrayOf(Of("string"))},
       {"rows", ArrayOf(ArrayOf({{"type", {"string", "number", "boolean", "null", "object"}}}))},
       {"rows_affected", Of("integer")},
       {"truncated", Of("boolean")}},
      {});
  return Shape({{"results", ArrayOf(statement)},
                {"lsn", OrNull("integer")},
                {"snapshot_lsn", Of("integer")},
                {"read_only", Of("boolean")},
                {"next_cursor", OrNull("string")}},
               {"results", "lsn", "snapshot_lsn"});
}

json DiffOutput() {
  return Shape({{"kind", Of("string")},
                {"from_lsn", Of("integer")},
                {"to_lsn", Of("integer")},
                {"objects", ArrayOf(Of("object"))},
                {"tables", ArrayOf(Of("object"))},
                {"sql", Of("string")},
                {"next", OrNull("string")}},
               {"kind", "from_lsn", "to_lsn"});
}

json PromoteOutput() {
  return Shape({{"branch", Of("string")},
                {"source", Of("string")},
                {"mode", Of("string")},
                {"dry_run", Of("boolean")},
                {"head_lsn", OrNull("integer")},
                {"previous_head_lsn", Of("integer")},
                {"actions", ArrayOf(Of("object"))}},
               {"branch", "mode", "dry_run", "previous_head_lsn"});
}

namespace {

json RollbackRightOutput() {
  return Shape({{"allowed", Of("boolean")}, {"why_not", OrNull("string")}}, {"allowed", "why_not"});
}

}  // namespace

json DescribeBranchOutput() {
  return Shape({{"branch", BranchOutput()},
                {"compute", Of("object")},
                {"recent_checkpoints", ArrayOf(CheckpointOutput())},
                {"rollback", RollbackRightOutput()}},
               {"branch", "recent_checkpoints", "rollback"});
}

json SchemaOutput() {
  json column = Shape({{"name", Of("string")},
                       {"type", Of("string")},
                       {"not_null", Of("boolean")},
                       {"default", OrNull("string")},
                       {"primary_key", Of("integer")}},
                      {"name", "type", "not_null", "default", "primary_key"});
  json table =
      Shape({{"name", Of("string")}, {"sql", OrNull("string")}, {"columns", ArrayOf(column)}},
            {"name", "columns"});
  json object = Shape({{"type", Of("string")},
                       {"name", Of("string")},
                       {"table", Of("string")},
                       {"sql", OrNull("string")}},
                      {"type", "name"});
  return Shape({{"lsn", Of("integer")}, {"tables", ArrayOf(table)}, {"objects", ArrayOf(object)}},
               {"lsn", "tables", "objects"});
}

}  // namespace branchdb::server::mcp
