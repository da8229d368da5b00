// The MCP tools' input schemas and descriptions (each tool's inputSchema and
// description, server/mcp/tools.cc): the pieces a schema is built of, and
// one schema per tool whose arguments need more than a project and a branch.
// Descriptions are written for an LLM. Every array has items, every object
// refuses properties it does not name. Internal to server/mcp.
//
// Thread-safety: pure functions and constants.
#ifndef BRANCHDB_SERVER_MCP_TOOL_INPUT_H_
#define BRANCHDB_SERVER_MCP_TOOL_INPUT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace branchdb::server::mcp {

// Pieces: a described string, integer (>= minimum), boolean, string enum;
// an object of properties (no others) of which `required` are.
nlohmann::json Text(const std::string& description);
nlohmann::json Integer(const std::string& description, int64_t minimum = 0);
nlohmann::json Boolean(const std::string& description);
nlohmann::json Enum(const std::string& description, std::vector<std::string> values);
nlohmann::json Object(nlohmann::json properties, std::vector<std::string> required);
// The project and branch arguments every tool on a branch takes.
extern const nlohmann::json kProject;
extern const nlohmann::json kBranch;
// The descriptions of the tools that need more than one line.
extern const char* const kCreateBranchText;
extern const char* const kRunSqlText;
extern const char* const kListCheckpointsText;
extern const char* const kRollbackText;
extern const char* const kDiffDataText;
extern const char* const kPromoteText;
extern const char* const kDescribeBranchText;
extern const char* const kGetSchemaText;
extern const char* const kCredentialText;
// A value bound to a SQL parameter: a JSON scalar, or {"$blob": "<base64>"}.
extern const nlohmann::json kSqlValue;
// {project, branch}, both required.
nlohmann::json OnBranch();
// The input schemas of the tools of those names (DiffProperties: what the
// diff tools share).
nlohmann::json CreateProjectSchema();
nlohmann::json CreateBranchSchema();
nlohmann::json RunSqlSchema();
nlohmann::json GetSchemaSchema();
nlohmann::json ListCheckpointsSchema();
nlohmann::json LabelSchema();
nlohmann::json RollbackSchema();
nlohmann::json DiffProperties();
nlohmann::json DiffDataSchema();
nlohmann::json PromoteSchema();
nlohmann::json CredentialSchema();

}  // namespace branchdb::server::mcp

#endif  // BRANCHDB_SERVER_MCP_TOOL_INPUT_H_
