// The MCP tools' output schemas (each tool's outputSchema, server/mcp/tools.cc):
// what a successful answer holds, the API's JSON as docs/api.md documents it,
// and the shape of an error result. They name the documented fields and
// require the ones every answer has; fields not named may be added later.
// Every array has items. Internal to server/mcp.
//
// Thread-safety: pure functions.
#ifndef BRANCHDB_SERVER_MCP_TOOL_OUTPUT_H_
#define BRANCHDB_SERVER_MCP_TOOL_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace branchdb::server::mcp {

// Pieces: {"type": type}; {"type": [type, "null"]}; an array of items; an
// object with properties of which `required` are.
nlohmann::json Of(const char* type);
nlohmann::json OrNull(const char* type);
nlohmann::json ArrayOf(nlohmann::json items);
nlohmann::json Shape(nlohmann::json properties, std::vector<std::string> required);

// An error result's structuredContent: {"status", "error": {"code", "message", "details"}}.
nlohmann::json ErrorOutput();

nlohmann::json ProjectOutput();
nlohmann::json BranchOutput();
nlohmann::json CheckpointOutput();
// list_checkpoints: {checkpoints, next}.
nlohmann::json CheckpointsOutput();
// rollback, reset_from_parent: {head_lsn, previous_head_lsn, target_lsn}.
nlohmann::json MoveOutput();
nlohmann::json SqlOutput();
// compare_schema and diff_data (kind schema, data or patch).
nlohmann::json DiffOutput();
nlohmann::json PromoteOutput();
// describe_branch: {branch, compute, recent_checkpoints, rollback: {allowed, why_not}}.
nlohmann::json DescribeBranchOutput();
// get_schema: {lsn, tables: [{name, sql, columns}], objects}.
nlohmann::json SchemaOutput();

}  // namespace branchdb::server::mcp

#endif  // BRANCHDB_SERVER_MCP_TOOL_OUTPUT_H_
