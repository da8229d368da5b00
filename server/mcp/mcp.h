// The Model Context Protocol server (protocol revision 2025-06-18), without
// its transport: one JSON-RPC 2.0 message in, one reply out. server/routes/
// mcp.cc carries it over streamable HTTP (POST /mcp) after authenticating the
// caller; every tool call is an API call (or a few reads) made as that caller
// through Router::Dispatch (so scopes, validation and errors are exactly the
// API's).
//
// Methods: initialize (version negotiation, capabilities {tools}, serverInfo,
// instructions), ping, tools/list, tools/call; notifications and client
// responses are accepted without reply. Batches (JSON arrays) are refused:
// 2025-06-18 removed them.
//
// Thread-safety: pure functions; the dispatcher decides.
#ifndef BRANCHDB_SERVER_MCP_MCP_H_
#define BRANCHDB_SERVER_MCP_MCP_H_

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "auth/auth.h"
#include "server/http/router.h"

namespace branchdb::server::mcp {

inline constexpr std::string_view kLatestProtocolVersion = "2025-06-18";

// True for the protocol revisions this server speaks: 2025-06-18, 2025-03-26.
bool SupportedProtocolVersion(std::string_view version);

// JSON-RPC 2.0 error codes.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;

// Runs one API request as the MCP caller (the caller's Authorization header
// added by the transport).
using Dispatcher = std::function<http::DispatchResponse(const http::DispatchRequest&)>;

// What a POST /mcp carries beside its message: who calls, in which mode.
struct Session {
  // The caller's granted scopes: a result offers an undo only when the
  // caller may make it (tools.h).
  auth::ScopeSet scopes;
  // Whether the caller may perform an operation on project/branch, as the
  // API decides it (scopes, projects, branch patterns). Unset: by scopes.
  std::function<bool(auth::Operation op, const std::string& project, const std::string& branch)>
      allows;
  // POST /mcp?readonly=true, or a client without any write scope (its
  // tokens can only read): tools/list lists the read-only tools only (and
  // run_sql, which then runs read-only); tools/call of any other tool is a
  // JSON-RPC error -32602 naming the mode.
  bool read_only = false;
};

struct Reply {
  // 200: body is a JSON-RPC response (result or error); 202: accepted, no
  // body (a notification or a response); 400: body is a JSON-RPC error with
  // id null (unparsable or invalid message).
  int http_status = 200;
  std::string body;
  std::string method;  // the request's method, for logs ("" when invalid)
  std::string tool;    // tools/call: the tool's name
  bool tool_error = false;  // tools/call: the result has isError true
};

// Handles one POST body of session.
Reply HandleMessage(std::string_view body, const Session& session, const Dispatcher& dispatch);

// A JSON-RPC error response text: {"jsonrpc":"2.0","id":id,"error":{code,message}}.
std::string ErrorResponse(const nlohmann::json& id, int code, const std::string& message);

}  // namespace branchdb::server::mcp

#endif  // BRANCHDB_SERVER_MCP_MCP_H_
