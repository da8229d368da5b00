// The text of the MCP tools' results (server/mcp/tools.cc), written for an
// LLM: what an API answer says and what to do next (e.g. the LSN to roll back
// to), and what to try after an API error. Internal to server/mcp.
//
// Thread-safety: pure functions.
#ifndef BRANCHDB_SERVER_MCP_TOOL_TEXT_H_
#define BRANCHDB_SERVER_MCP_TOOL_TEXT_H_

#include <nlohmann/json.hpp>
#include <string>

namespace branchdb::server::mcp {

// A tool's string argument, or "" when absent.
std::string Arg(const nlohmann::json& arguments, const char* key);
// A field as text: strings bare, null/missing as "none", others as JSON.
std::string F(const nlohmann::json& j, const char* key);
// s cut to n characters, saying so.
std::string Clip(const std::string& s, size_t n);

// The text of a tool's successful result, from its arguments and the API's
// JSON answer (one per tool; the tool table names them).
std::string DescribeProjects(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeCreatedProject(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeBranches(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeCreatedBranch(const nlohmann::json& a, const nlohmann::json& r);
// describe_branch's composed answer {branch, compute, recent_checkpoints, rollback}.
std::string DescribeBranchDetail(const nlohmann::json& a, const nlohmann::json& r);
// get_schema's composed answer {lsn, tables, objects}.
std::string DescribeSchema(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeDeletedBranch(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeSql(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeCheckpoints(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeLabel(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeRollback(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeReset(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeSchemaDiff(const nlohmann::json& a, const nlohmann::json& d);
std::string DescribeDataDiff(const nlohmann::json& a, const nlohmann::json& d);
std::string DescribePromote(const nlohmann::json& a, const nlohmann::json& r);
std::string DescribeCredential(const nlohmann::json& a, const nlohmann::json& r);

// What to try after an API error, by its code ("" when nothing to add).
std::string Hint(const std::string& code, const nlohmann::json& details);

}  // namespace branchdb::server::mcp

#endif  // BRANCHDB_SERVER_MCP_TOOL_TEXT_H_
