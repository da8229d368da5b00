// The MCP tools: one per API operation an agent needs, each with a JSON Schema
// for its input (descriptions written for an LLM) and a result an LLM can read:
// content text saying what happened and what to do next (e.g. the LSN to roll
// back to), plus structuredContent with the API's JSON answer. Each call is
// exactly one API request through the Dispatcher; API errors become results
// with isError true, the error code, message and a hint (not JSON-RPC errors).
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

// The "tools" array of a tools/list result: {name, title, description, inputSchema}.
const nlohmann::json& ToolsList();

// Runs tool `name` with `arguments`; the CallToolResult
// {"content":[{"type":"text","text":...}],"structuredContent":{...},"isError":bool}.
// InvalidArgument (the caller answers JSON-RPC -32602) for an unknown tool or
// arguments that do not fit its inputSchema.
Result<nlohmann::json> CallTool(std::string_view name, const nlohmann::json& arguments,
                                const Dispatcher& dispatch);

// Checks value against a JSON Schema of the subset the tools use: type (one
// or a list), properties, required, additionalProperties false, enum,
// minimum, maximum, items. InvalidArgument naming the path ("arguments.x").
Status ValidateSchema(const nlohmann::json& schema, const nlohmann::json& value,
                      const std::string& path);

}  // namespace branchdb::server::mcp

#endif  // BRANCHDB_SERVER_MCP_TOOLS_H_
