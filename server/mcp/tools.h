// The MCP tools: one per API operation an agent needs (and two that compose
// reads: describe_branch, get_schema), each with a JSON Schema for its input
// (descriptions written for an LLM; every array has items, for strict
// function-calling dialects), an outputSchema, annotations derived from its
// route (GET: read-only; DELETE, rollback, reset, promote and SQL scripts:
// destructive; GET and DELETE: idempotent; none open-world), and a result an LLM can read:
// content text saying what happened and what to do next (e.g. the LSN to roll
// back to), plus structuredContent with the API's JSON answer. Each call is
// API requests through the Dispatcher, as the caller; API errors become results
// with isError true, the error code, message and a hint (not JSON-RPC errors).
// A result that changed a branch offers its undo (a rollback) only when the
// session's caller may make it; otherwise it says who can.
//
// Thread-safety: pure functions; the tool table is immutable.
#ifndef BRANCHDB_SERVER_MCP_TOOLS_H_
#define BRANCHDB_SERVER_MCP_TOOLS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"
#include "server/mcp/mcp.h"

namespace branchdb::server::mcp {

// The "tools" array of a tools/list result: {name, title, description,
// inputSchema, outputSchema, annotations}. read_only: a read-only session's
// list (the read-only tools, and run_sql annotated as read-only).
const nlohmann::json& ToolsList(bool read_only);

// Runs tool `name` with `arguments` for session; the CallToolResult
// {"content":[{"type":"text","text":...}],"structuredContent":{...},"isError":bool}.
// InvalidArgument (the caller answers JSON-RPC -32602) for an unknown tool,
// a tool that a read-only session does not list, or arguments that do not
// fit its inputSchema. In a read-only session run_sql runs with read_only
// true whatever its arguments say.
Result<nlohmann::json> CallTool(std::string_view name, const nlohmann::json& arguments,
                                const Session& session, const Dispatcher& dispatch);

// Checks value against a JSON Schema of the subset the tools use: type (one
// or a list), properties, required, additionalProperties (false or a schema), enum,
// minimum, maximum, items. InvalidArgument naming the path ("arguments.x").
Status ValidateSchema(const nlohmann::json& schema, const nlohmann::json& value,
                      const std::string& path);

}  // namespace branchdb::server::mcp

#endif  // BRANCHDB_SERVER_MCP_TOOLS_H_
