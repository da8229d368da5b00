#include "server/mcp/mcp.h"

#include "server/http/errors.h"
#include "server/mcp/tools.h"

namespace branchdb::server::mcp {
namespace {

using nlohmann::json;

constexpr const char* kInstructions =
    "branchdb serves SQLite databases with branches and checkpoints. Work in a loop: "
    "try, check, roll back.\n"
    "1. Try on a branch, not on the real data: create_branch {project, name, parent: "
    "\"production\", ttl_seconds: 3600} is an instant, isolated copy. Every run_sql that "
    "changes data commits one checkpoint and tells you its LSN.\n"
    "2. Check: run_sql with read_only=true for SELECTs; compare_schema and diff_data show "
    "what differs from the parent (or any branch/LSN).\n"
    "3. Roll back: rollback {actions: 1} undoes the last action; rollback {to_lsn: N} returns "
    "to any checkpoint (list_checkpoints lists them, label_checkpoint names one). A rollback "
    "reports previous_head_lsn: rollback {to_lsn: previous_head_lsn} undoes the rollback. "
    "create_branch {from_checkpoint: N} forks an alternative from any checkpoint.\n"
    "4. Keep or discard: promote_branch applies the branch to its parent (dry_run: true "
    "first; verify: \"SELECT ...\" checks the result before the parent moves); it reports the "
    "parent's previous_head_lsn, the undo handle. delete_branch discards a branch.\n"
    "A SQL script runs as one transaction: on error nothing is committed. Branch names may "
    "contain '/'. Errors come back as tool results with an error code and what to do next.";

json Response(const json& id, json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

Reply JsonReply(const json& message) { return Reply{200, http::DumpJson(message), "", "", false}; }

Reply ErrorReply(const json& id, int code, const std::string& message) {
  return Reply{200, ErrorResponse(id, code, message), "", "", false};
}

constexpr const char* kReadOnlyInstructions =
    "\nThis session is read-only (POST /mcp?readonly=true): only tools that change nothing are "
    "listed and allowed, and run_sql runs every script read-only.";

json Initialize(const json& params, const Session& session) {
  std::string requested = params["protocolVersion"].get<std::string>();
  // The client's version when spoken here, else the latest (the client then
  // decides whether it can continue).
  std::string version =
      SupportedProtocolVersion(requested) ? requested : std::string(kLatestProtocolVersion);
  return {{"protocolVersion", version},
          {"capabilities", {{"tools", {{"listChanged", false}}}}},
          {"serverInfo", {{"name", "branchdb"}, {"title", "branchdb"}, {"version", "0.1.0"}}},
          {"instructions",
           std::string(kInstructions) + (session.read_only ? kReadOnlyInstructions : "")}};
}

}  // namespace

bool SupportedProtocolVersion(std::string_view version) {
  return version == "2025-06-18" || version == "2025-03-26";
}

std::string ErrorResponse(const json& id, int code, const std::string& message) {
  return http::DumpJson(
      {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

Reply HandleMessage(std::string_view body, const Session& session, const Dispatcher& dispatch) {
  json message = json::parse(body, nullptr, false);
  if (message.is_discarded()) {
    return Reply{400, ErrorResponse(nullptr, kParseError, "Parse error: the body is not JSON"),
                 "", "", false};
  }
  auto invalid = [](const std::string& why) {
    return Reply{400, ErrorResponse(nullptr, kInvalidRequest, "Invalid Request: " + why), "", "",
                 false};
  };
  if (message.is_array()) {
    return invalid("JSON-RPC batches are not supported (MCP 2025-06-18 removed them); send "
                   "one message per POST");
  }
  if (!message.is_object()) return invalid("expected a JSON-RPC 2.0 object");
  if (message.value("jsonrpc", json()) != "2.0") return invalid("\"jsonrpc\" must be \"2.0\"");
  bool has_id = message.contains("id");
  if (has_id && !message["id"].is_string() && !message["id"].is_number_integer()) {
    return invalid("\"id\" must be a string or an integer");
  }
  if (!message.contains("method")) {
    // A response to a server request (this server sends none): accepted.
    if (has_id && (message.contains("result") || message.contains("error"))) {
      return Reply{202, "", "", "", false};
    }
    return invalid("expected \"method\" (a request or notification) or \"result\"/\"error\"");
  }
  if (!message["method"].is_string()) return invalid("\"method\" must be a string");
  const std::string method = message["method"].get<std::string>();
  if (message.contains("params") && !message["params"].is_object()) {
    if (!has_id) return invalid("\"params\" must be an object");
    return ErrorReply(message["id"], kInvalidParams, "Invalid params: \"params\" must be an object");
  }
  if (!has_id) return Reply{202, "", method, "", false};  // notifications need no answer

  const json id = message["id"];
  const json params = message.value("params", json::object());
  Reply reply;
  if (method == "initialize") {
    if (!params.contains("protocolVersion") || !params["protocolVersion"].is_string()) {
      reply = ErrorReply(id, kInvalidParams, "Invalid params: protocolVersion (string) required");
    } else {
      reply = JsonReply(Response(id, Initialize(params, session)));
    }
  } else if (method == "ping") {
    reply = JsonReply(Response(id, json::object()));
  } else if (method == "tools/list") {
    reply = JsonReply(Response(id, {{"tools", ToolsList(session.read_only)}}));
  } else if (method == "tools/call") {
    if (!params.contains("name") || !params["name"].is_string()) {
      reply = ErrorReply(id, kInvalidParams, "Invalid params: name (string) required");
    } else if (params.contains("arguments") && !params["arguments"].is_object()) {
      reply = ErrorReply(id, kInvalidParams, "Invalid params: arguments must be an object");
    } else {
      std::string name = params["name"].get<std::string>();
      auto result = CallTool(name, params.value("arguments", json::object()), session, dispatch);
      if (!result.ok()) {
        reply = ErrorReply(id, kInvalidParams, "Invalid params: " + result.status().message());
      } else {
        reply = JsonReply(Response(id, *result));
        reply.tool_error = result->value("isError", false);
      }
      reply.tool = name;
    }
  } else {
    reply = ErrorReply(id, kMethodNotFound, "Method not found: " + method);
  }
  reply.method = method;
  return reply;
}

}  // namespace branchdb::server::mcp
