// The MCP endpoint over raw HTTP against an ApiServer on a free port: auth and
// discovery (401 + RFC 9728 metadata), transport rules (405, 202, Origin,
// MCP-Protocol-Version, Accept), JSON-RPC errors (-32700, -32600, -32601,
// -32602), initialize, and tool calls that run the API as the caller.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <future>
#include <thread>
#include <tuple>
#include <vector>

#include "server/config.h"
#include "server/http/metrics.h"
#include "server/http/router.h"
#include "server/mcp/tools.h"
#include "server/server.h"
#include "tests/server/live_server.h"
#include "tests/util/temp_dir.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

class McpFixture : public testing::LiveServer {
 public:
  explicit McpFixture(const std::function<void(Config&)>& tweak = nullptr)
      : LiveServer(tweak), token_(AdminToken()) {}

  // POSTs body to /mcp with the admin token (unless headers has one).
  httplib::Result Post(const std::string& body, httplib::Headers headers = {}) {
    if (headers.find("Authorization") == headers.end()) {
      headers.emplace("Authorization", "Bearer " + token_);
    }
    headers.emplace("Accept", "application/json, text/event-stream");
    return Client().Post(path_.c_str(), headers, body, "application/json");
  }

  // A JSON-RPC request; returns the parsed answer (REQUIRES status 200).
  json Rpc(const std::string& method, const json& params, httplib::Headers headers = {}) {
    json msg = {{"jsonrpc", "2.0"}, {"id", ++next_id_}, {"method", method}};
    if (!params.is_null()) msg["params"] = params;
    auto r = Post(msg.dump(), std::move(headers));
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
    json j = json::parse(r->body);
    CHECK(j["jsonrpc"] == "2.0");
    CHECK(j["id"] == next_id_);
    return j;
  }

  json Tool(const std::string& name, const json& arguments, httplib::Headers headers = {}) {
    return Rpc("tools/call", {{"name", name}, {"arguments", arguments}}, std::move(headers));
  }

  // A REST request with token (default: the admin's); the parsed answer.
  std::pair<int, json> Rest(const std::string& method, const std::string& path,
                            const json& body = nullptr, const std::string& token = "") {
    httplib::Headers headers = {{"Authorization", "Bearer " + (token.empty() ? token_ : token)}};
    auto c = Client();
    httplib::Result r = method == "GET" ? c.Get(path.c_str(), headers)
                        : method == "PATCH"
                            ? c.Patch(path.c_str(), headers, body.dump(), "application/json")
                            : c.Post(path.c_str(), headers, body.dump(), "application/json");
    REQUIRE(r);
    return {r->status, r->body.empty() ? json() : json::parse(r->body)};
  }

  std::string token_;
  std::string path_ = "/mcp";
  int next_id_ = 0;
};

int ErrorCode(const httplib::Result& r) { return json::parse(r->body)["error"]["code"]; }

TEST_CASE("mcp: 401 points to the protected-resource metadata", "[mcp]") {
  McpFixture f;
  std::string base = "http://127.0.0.1:" + std::to_string(f.port_);
  auto none = f.Client().Post("/mcp", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
                              "application/json");
  REQUIRE(none);
  CHECK(none->status == 401);
  CHECK(none->get_header_value("WWW-Authenticate") ==
        "Bearer resource_metadata=\"" + base + "/.well-known/oauth-protected-resource\"");
  auto bad = f.Post("{}", {{"Authorization", "Bearer not-a-token"}});
  REQUIRE(bad);
  CHECK(bad->status == 401);
  CHECK(bad->get_header_value("WWW-Authenticate").find("error=\"invalid_token\"") !=
        std::string::npos);
  CHECK(json::parse(bad->body)["error"]["code"] == "invalid_token");

  auto meta = f.Client().Get("/.well-known/oauth-protected-resource");
  REQUIRE(meta);
  CHECK(meta->status == 200);
  json m = json::parse(meta->body);
  CHECK(m["resource"] == base);
  CHECK(m["authorization_servers"] == json::array({base}));
  CHECK(m["bearer_methods_supported"] == json::array({"header"}));
  CHECK(std::find(m["scopes_supported"].begin(), m["scopes_supported"].end(), "sql:write") !=
        m["scopes_supported"].end());
  // The authorization server it names publishes its RFC 8414 metadata.
  auto as = f.Client().Get("/.well-known/oauth-authorization-server");
  REQUIRE(as);
  CHECK(json::parse(as->body)["issuer"] == base);
}

TEST_CASE("mcp: transport rules", "[mcp]") {
  McpFixture f;
  httplib::Headers auth = {{"Authorization", "Bearer " + f.token_}};
  auto get = f.Client().Get("/mcp", auth);
  REQUIRE(get);
  CHECK(get->status == 405);
  CHECK(get->get_header_value("Allow") == "POST");
  auto del = f.Client().Delete("/mcp", auth);
  REQUIRE(del);
  CHECK(del->status == 405);

  auto note = f.Post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  REQUIRE(note);
  CHECK(note->status == 202);
  CHECK(note->body.empty());
  auto response = f.Post(R"({"jsonrpc":"2.0","id":"s1","result":{}})");
  REQUIRE(response);
  CHECK(response->status == 202);

  auto evil = f.Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                     {{"Origin", "http://evil.example:8080"}});
  REQUIRE(evil);
  CHECK(evil->status == 403);
  auto rebound = f.Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                        {{"Origin", "http://attacker.example"}, {"Host", "attacker.example"}});
  REQUIRE(rebound);
  CHECK(rebound->status == 403);
  CHECK(f.Rpc("ping", nullptr, {{"Origin", "http://localhost:3000"}})["result"] == json::object());
  CHECK(f.Rpc("ping", nullptr, {{"Origin", "http://127.0.0.1:" + std::to_string(f.port_)}})
            .contains("result"));

  auto old = f.Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                    {{"MCP-Protocol-Version", "2024-01-01"}});
  REQUIRE(old);
  CHECK(old->status == 400);
  CHECK(ErrorCode(old) == mcp::kInvalidRequest);
  CHECK(f.Rpc("ping", nullptr, {{"MCP-Protocol-Version", "2025-06-18"}}).contains("result"));

  httplib::Headers html = {{"Authorization", "Bearer " + f.token_}, {"Accept", "text/html"}};
  auto not_json = f.Client().Post("/mcp", html, R"({"jsonrpc":"2.0","id":1,"method":"ping"})",
                                  "application/json");
  REQUIRE(not_json);
  CHECK(not_json->status == 406);
}

TEST_CASE("mcp: JSON-RPC errors", "[mcp]") {
  McpFixture f;
  auto parse = f.Post("{\"jsonrpc\":");
  REQUIRE(parse);
  CHECK(parse->status == 400);
  CHECK(ErrorCode(parse) == mcp::kParseError);
  CHECK(json::parse(parse->body)["id"].is_null());

  for (const char* invalid :
       {R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", R"("ping")",
        R"({"jsonrpc":"1.0","id":1,"method":"ping"})", R"({"jsonrpc":"2.0","id":{},"method":"ping"})",
        R"({"jsonrpc":"2.0","id":1,"method":7})", R"({"jsonrpc":"2.0","id":1})"}) {
    INFO(invalid);
    auto r = f.Post(invalid);
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(ErrorCode(r) == mcp::kInvalidRequest);
  }

  json unknown = f.Rpc("resources/list", json::object());
  CHECK(unknown["error"]["code"] == mcp::kMethodNotFound);
  CHECK(f.Rpc("initialize", json::object())["error"]["code"] == mcp::kInvalidParams);
  CHECK(f.Rpc("tools/call", json::object())["error"]["code"] == mcp::kInvalidParams);
  CHECK(f.Rpc("tools/call", {{"name", "no_such_tool"}})["error"]["code"] == mcp::kInvalidParams);
  json wrong_type = f.Tool("list_branches", {{"project", 5}});
  CHECK(wrong_type["error"]["code"] == mcp::kInvalidParams);
  CHECK(wrong_type["error"]["message"].get<std::string>().find("arguments.project") !=
        std::string::npos);
  CHECK(f.Tool("list_branches", json::object())["error"]["code"] == mcp::kInvalidParams);
  CHECK(f.Tool("list_branches", {{"project", "p"}, {"extra", 1}})["error"]["code"] ==
        mcp::kInvalidParams);
  CHECK(f.Tool("rollback", {{"project", "p"}, {"branch", "b"}})["error"]["code"] ==
        mcp::kInvalidParams);
  // String ids come back as they were sent.
  auto s = f.Post(R"({"jsonrpc":"2.0","id":"abc","method":"ping"})");
  REQUIRE(s);
  CHECK(json::parse(s->body)["id"] == "abc");
}

TEST_CASE("mcp: initialize negotiates the protocol version", "[mcp]") {
  McpFixture f;
  json init = f.Rpc("initialize", {{"protocolVersion", "2025-06-18"},
                                   {"capabilities", json::object()},
                                   {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
  json r = init["result"];
  CHECK(r["protocolVersion"] == "2025-06-18");
  CHECK(r["capabilities"].contains("tools"));
  CHECK(r["serverInfo"]["name"] == "branchdb");
  CHECK(r["instructions"].get<std::string>().find("previous_head_lsn") != std::string::npos);
  CHECK(f.Rpc("initialize", {{"protocolVersion", "2025-03-26"}})["result"]["protocolVersion"] ==
        "2025-03-26");
  CHECK(f.Rpc("initialize", {{"protocolVersion", "2099-01-01"}})["result"]["protocolVersion"] ==
        "2025-06-18");
  // No session: the server issues no Mcp-Session-Id.
  auto raw = f.Post(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}})");
  REQUIRE(raw);
  CHECK_FALSE(raw->has_header("Mcp-Session-Id"));

  json tools = f.Rpc("tools/list", json::object())["result"]["tools"];
  CHECK(tools.size() == 16);
  for (const auto& t : tools) {
    INFO(t["name"]);
    CHECK(t["inputSchema"]["type"] == "object");
    for (const auto& [name, prop] : t["inputSchema"]["properties"].items()) {
      CHECK(prop.contains("description"));
    }
  }
}

TEST_CASE("mcp: tool calls run the API as the caller", "[mcp]") {
  McpFixture f;
  json created = f.Tool("create_project", {{"name", "shop"}})["result"];
  CHECK(created["isError"] == false);
  CHECK(created["structuredContent"]["name"] == "shop");
  CHECK(created["content"][0]["text"].get<std::string>().find("production") != std::string::npos);

  json sql = f.Tool("run_sql",
                    {{"project", "shop"}, {"branch", "production"}, {"sql", "CREATE TABLE t(a)"}},
                    {{"X-Request-Id", "mcp-call-7"}})["result"];
  REQUIRE(sql["isError"] == false);
  int64_t lsn = sql["structuredContent"]["lsn"];
  // The checkpoint names the MCP request.
  json history = f.Tool("list_checkpoints", {{"project", "shop"}, {"branch", "production"},
                                             {"limit", 1}})["result"];
  CHECK(history["structuredContent"]["checkpoints"][0]["lsn"] == lsn);
  CHECK(history["structuredContent"]["checkpoints"][0]["request_id"] == "mcp-call-7");

  json dup = f.Tool("create_project", {{"name", "shop"}})["result"];
  CHECK(dup["isError"] == true);
  CHECK(dup["structuredContent"]["status"] == 409);
  CHECK(dup["structuredContent"]["error"]["code"] == "project_exists");

  json branch = f.Tool("create_branch", {{"project", "shop"}, {"name", "a/b"}, {"from_lsn", lsn}})["result"];
  CHECK(branch["isError"] == false);
  CHECK(branch["structuredContent"]["branch_point_lsn"] == lsn);
  CHECK(f.Tool("delete_branch", {{"project", "shop"}, {"branch", "a/b"}})["result"]
            ["structuredContent"]["deleted"] == true);

  http::Metrics& m = *f.server_->services().metrics;
  CHECK(m.Value(http::kHttpRequests,
                {{"route", "/v1/projects"}, {"method", "POST"}, {"status", "201"}}) == 1);
  CHECK(m.Value(http::kHttpRequests,
                {{"route", "/v1/projects/{project}/branches/{branch}"}, {"method", "DELETE"},
                 {"status", "204"}}) == 1);
  CHECK(m.Value(http::kHttpRequests, {{"route", "/mcp"}, {"method", "POST"}, {"status", "200"}}) >=
        6);
}

TEST_CASE("mcp: run_sql that leaves the database as it was names no checkpoint", "[mcp]") {
  McpFixture f;
  REQUIRE(f.Tool("create_project", {{"name", "shop"}})["result"]["isError"] == false);
  const json where = {{"project", "shop"}, {"branch", "production"}};
  json sql = where;
  sql["sql"] = "CREATE TABLE empty(b); CREATE TABLE t(a); INSERT INTO t VALUES (1)";
  const json created = f.Tool("run_sql", sql)["result"];
  REQUIRE(created["isError"] == false);
  // SQLite rewrites pages for both; the VFS finds them unchanged.
  for (const char* script : {"DELETE FROM empty", "UPDATE t SET a = a"}) {
    INFO(script);
    sql["sql"] = script;
    json r = f.Tool("run_sql", sql)["result"];
    REQUIRE(r["isError"] == false);
    CHECK(r["structuredContent"]["lsn"].is_null());
    CHECK(r["structuredContent"]["snapshot_lsn"] == created["structuredContent"]["lsn"]);
    const std::string text = r["content"][0]["text"];
    CHECK(text.find("Nothing changed: no checkpoint was made") != std::string::npos);
    CHECK(text.find("Committed") == std::string::npos);
  }
}

TEST_CASE("mcp: run_sql never cuts a large result silently and says how to get the rest",
          "[mcp]") {
  McpFixture f([](Config& c) { c.max_result_rows = 3; });
  REQUIRE(f.Tool("create_project", {{"name", "shop"}})["result"]["isError"] == false);
  const json where = {{"project", "shop"}, {"branch", "production"}};
  json setup = where;
  setup["sql"] = "CREATE TABLE t(a); INSERT INTO t VALUES (1), (2), (3), (4), (5)";
  REQUIRE(f.Tool("run_sql", setup)["result"]["isError"] == false);
  json query = where;
  query["sql"] = "SELECT a FROM t ORDER BY a";
  json big = f.Tool("run_sql", query)["result"];
  CHECK(big["isError"] == true);
  CHECK(big["structuredContent"]["error"]["code"] == "result_too_large");
  CHECK(big["content"][0]["text"].get<std::string>().find("page_size") != std::string::npos);

  query["page_size"] = 3;
  json page = f.Tool("run_sql", query)["result"];
  REQUIRE(page["isError"] == false);
  std::string cursor = page["structuredContent"]["next_cursor"];
  CHECK(page["content"][0]["text"].get<std::string>().find("cursor \"" + cursor + "\"") !=
        std::string::npos);
  query.erase("page_size");
  query["cursor"] = cursor;
  json rest = f.Tool("run_sql", query)["result"];
  REQUIRE(rest["isError"] == false);
  CHECK(rest["structuredContent"]["next_cursor"].is_null());
  CHECK(rest["structuredContent"]["results"][0]["rows"] == json::parse("[[4], [5]]"));
  CHECK(rest["content"][0]["text"].get<std::string>().find("more rows") == std::string::npos);
}

// Every array of a schema has "items" (strict function-calling dialects).
void CheckArraysHaveItems(const json& schema, const std::string& where) {
  if (!schema.is_object()) return;
  const json type = schema.value("type", json());
  bool array = type == "array" ||
               (type.is_array() && std::find(type.begin(), type.end(), "array") != type.end());
  INFO(where);
  if (array) CHECK(schema.contains("items"));
  for (const auto& [key, sub] : schema.items()) {
    if (key == "properties") {
      for (const auto& [name, prop] : sub.items()) CheckArraysHaveItems(prop, where + "." + name);
    } else if (key == "items" || key == "additionalProperties") {
      CheckArraysHaveItems(sub, where + "[]");
    } else if (key == "anyOf") {
      for (const auto& alt : sub) CheckArraysHaveItems(alt, where + "|");
    }
  }
}

json ToolNamed(const json& tools, const std::string& name) {
  for (const auto& t : tools) {
    if (t["name"] == name) return t;
  }
  FAIL("no tool " << name);
  return nullptr;
}

std::string Text(const json& result) { return result["content"][0]["text"]; }

TEST_CASE("mcp: every tool has annotations from its route and an output schema", "[mcp]") {
  McpFixture f;
  json tools = f.Rpc("tools/list", json::object())["result"]["tools"];
  for (const auto& t : tools) {
    INFO(t["name"]);
    for (const char* hint :
         {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}) {
      CHECK(t["annotations"][hint].is_boolean());
    }
    CHECK(t["annotations"]["openWorldHint"] == false);
    CHECK(t["outputSchema"]["type"] == "object");
    CheckArraysHaveItems(t["inputSchema"], "inputSchema");
    CheckArraysHaveItems(t["outputSchema"], "outputSchema");
  }
  auto hints = [&](const std::string& name) {
    json a = ToolNamed(tools, name)["annotations"];
    return std::tuple<bool, bool, bool>(a["readOnlyHint"], a["destructiveHint"],
                                        a["idempotentHint"]);
  };
  using H = std::tuple<bool, bool, bool>;  // read-only, destructive, idempotent
  for (const char* read : {"list_projects", "list_branches", "describe_branch", "get_schema",
                           "list_checkpoints", "compare_schema", "diff_data"}) {
    INFO(read);
    CHECK(hints(read) == H{true, false, true});
  }
  CHECK(hints("delete_branch") == H{false, true, true});
  for (const char* destroys : {"rollback", "reset_from_parent", "promote_branch", "run_sql"}) {
    INFO(destroys);
    CHECK(hints(destroys) == H{false, true, false});
  }
  for (const char* adds :
       {"create_project", "create_branch", "label_checkpoint", "get_database_credential"}) {
    INFO(adds);
    CHECK(hints(adds) == H{false, false, false});
  }
  CHECK(ToolNamed(tools, "run_sql")["inputSchema"]["properties"]["params"].contains("items"));

  // Answers and errors fit the declared output schema.
  json created = f.Tool("create_project", {{"name", "shop"}})["result"];
  json dup = f.Tool("create_project", {{"name", "shop"}})["result"];
  json sql = f.Tool(
      "run_sql",
      {{"project", "shop"}, {"branch", "production"}, {"sql", "CREATE TABLE t(a)"}})["result"];
  const json schema = ToolNamed(tools, "create_project")["outputSchema"];
  CHECK(mcp::ValidateSchema(schema["anyOf"][0], created["structuredContent"], "out").ok());
  CHECK(mcp::ValidateSchema(schema["anyOf"][1], dup["structuredContent"], "out").ok());
  CHECK(mcp::ValidateSchema(ToolNamed(tools, "run_sql")["outputSchema"]["anyOf"][0],
                            sql["structuredContent"], "out")
            .ok());
}

TEST_CASE("mcp: a read-only session lists and runs only reads", "[mcp]") {
  McpFixture f;
  REQUIRE(f.Tool("create_project", {{"name", "shop"}})["result"]["isError"] == false);
  REQUIRE(
      f.Tool("run_sql",
             {{"project", "shop"},
              {"branch", "production"},
              {"sql", "CREATE TABLE t(a); INSERT INTO t VALUES (1), (2)"}})["result"]["isError"] ==
      false);
  REQUIRE(f.Tool("create_branch", {{"project", "shop"}, {"name", "dev"}})["result"]["isError"] ==
          false);

  f.path_ = "/mcp?readonly=true";
  json init = f.Rpc("initialize", {{"protocolVersion", "2025-06-18"}})["result"];
  CHECK(init["instructions"].get<std::string>().find("read-only") != std::string::npos);
  json tools = f.Rpc("tools/list", json::object())["result"]["tools"];
  std::vector<std::string> names;
  for (const auto& t : tools) {
    names.push_back(t["name"]);
    CHECK(t["annotations"]["readOnlyHint"] == true);
    CHECK(t["annotations"]["destructiveHint"] == false);
  }
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"compare_schema", "describe_branch", "diff_data",
                                          "get_schema", "list_branches", "list_checkpoints",
                                          "list_projects", "run_sql"});

  // A destructive tool is refused by name and mode; the branch stays.
  json refused = f.Tool("delete_branch", {{"project", "shop"}, {"branch", "dev"}});
  CHECK(refused["error"]["code"] == mcp::kInvalidParams);
  CHECK(refused["error"]["message"].get<std::string>().find(
            "read-only (POST /mcp?readonly=true)") != std::string::npos);
  CHECK(f.Rest("GET", "/v1/projects/shop/branches/dev").first == 200);

  // run_sql runs read-only whatever its arguments say.
  json write = f.Tool("run_sql", {{"project", "shop"},
                                  {"branch", "production"},
                                  {"sql", "DELETE FROM t"},
                                  {"read_only", false}})["result"];
  CHECK(write["isError"] == true);
  CHECK(write["structuredContent"]["error"]["code"] == "read_only");
  CHECK(Text(write).find("This session is read-only") != std::string::npos);
  json read = f.Tool(
      "run_sql",
      {{"project", "shop"}, {"branch", "production"}, {"sql", "SELECT count(*) FROM t"}})["result"];
  REQUIRE(read["isError"] == false);
  CHECK(read["structuredContent"]["results"][0]["rows"][0][0] == 2);
  CHECK(f.Tool("list_branches", {{"project", "shop"}})["result"]["isError"] == false);

  f.path_ = "/mcp?readonly=yes";
  auto bad = f.Post(R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  REQUIRE(bad);
  CHECK(bad->status == 400);
}

TEST_CASE("mcp: describe_branch, get_schema and time-travel reads agree with REST", "[mcp]") {
  McpFixture f;
  REQUIRE(f.Tool("create_project", {{"name", "shop"}})["result"]["isError"] == false);
  const json where = {{"project", "shop"}, {"branch", "production"}};
  auto sql = [&](const std::string& text) {
    json args = where;
    args["sql"] = text;
    json r = f.Tool("run_sql", args)["result"];
    REQUIRE(r["isError"] == false);
    return r["structuredContent"];
  };
  int64_t first =
      sql("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT 'x'); "
          "INSERT INTO items(name) VALUES ('apple')")["lsn"];
  int64_t second =
      sql("ALTER TABLE items ADD COLUMN price REAL; CREATE INDEX items_name ON "
          "items(name); INSERT INTO items(name) VALUES ('pear')")["lsn"];
  REQUIRE(f.Rest("PATCH", "/v1/projects/shop/branches/production", {{"protected", true}}).first ==
          200);

  json described = f.Tool("describe_branch", where)["result"];
  REQUIRE(described["isError"] == false);
  auto [status, branch] = f.Rest("GET", "/v1/projects/shop/branches/production");
  REQUIRE(status == 200);
  CHECK(described["structuredContent"]["branch"] == branch);
  CHECK(described["structuredContent"]["recent_checkpoints"][0]["lsn"] == second);
  // The admin holds branches:protect: it may roll the protected branch back.
  CHECK(described["structuredContent"]["rollback"]["allowed"] == true);
  // An agent token (branches:write) may not.
  const std::string agent = f.AdminToken("branches:write sql:write");
  json as_agent =
      f.Tool("describe_branch", where, {{"Authorization", "Bearer " + agent}})["result"];
  CHECK(as_agent["structuredContent"]["rollback"]["allowed"] == false);
  CHECK(Text(as_agent).find("protected") != std::string::npos);

  json schema = f.Tool("get_schema", where)["result"];
  REQUIRE(schema["isError"] == false);
  const json& s = schema["structuredContent"];
  CHECK(s["lsn"] == second);
  REQUIRE(s["tables"].size() == 1);
  CHECK(s["tables"][0]["name"] == "items");
  auto [st, info] = f.Rest("POST", "/v1/projects/shop/branches/production/sql",
                           {{"sql",
                             "SELECT name, type, \"notnull\", dflt_value, pk FROM "
                             "pragma_table_info('items')"}});
  REQUIRE(st == 200);
  const json rows = info["results"][0]["rows"];
  REQUIRE(s["tables"][0]["columns"].size() == rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& c = s["tables"][0]["columns"][i];
    CHECK(json::array({c["name"], c["type"], c["not_null"] ? 1 : 0, c["default"],
                       c["primary_key"]}) == rows[i]);
  }
  auto [st2, rest_schema] = f.Rest("GET", "/v1/projects/shop/branches/production/schema");
  REQUIRE(st2 == 200);
  CHECK(s["objects"].size() + s["tables"].size() == rest_schema["objects"].size());
  CHECK(s["objects"][0]["name"] == "items_name");
  json old_args = where;
  old_args["at_lsn"] = first;
  json old = f.Tool("get_schema", old_args)["result"]["structuredContent"];
  CHECK(old["lsn"] == first);
  CHECK(old["tables"][0]["columns"].size() == 2);  // before price
  CHECK(old["objects"].empty());

  // at_lsn reads the past state, as REST's "lsn" does.
  json past = where;
  past["sql"] = "SELECT group_concat(name) FROM items";
  past["at_lsn"] = first;
  json then = f.Tool("run_sql", past)["result"];
  REQUIRE(then["isError"] == false);
  CHECK(then["structuredContent"]["snapshot_lsn"] == first);
  auto [st3, rest_then] = f.Rest("POST", "/v1/projects/shop/branches/production/sql",
                                 {{"sql", past["sql"]}, {"lsn", first}});
  REQUIRE(st3 == 200);
  CHECK(then["structuredContent"]["results"] == rest_then["results"]);
  CHECK(then["structuredContent"]["results"][0]["rows"][0][0] == "apple");

  // at_time: the newest checkpoint at or before that time.
  auto [st4, history] = f.Rest("GET", "/v1/projects/shop/branches/production/checkpoints");
  REQUIRE(st4 == 200);
  const json list = history["checkpoints"];
  size_t at = 0;
  while (at < list.size() && list[at]["lsn"] != first) ++at;
  REQUIRE(at < list.size());
  past.erase("at_lsn");
  past["at_time"] = list[at]["time"];
  json by_time = f.Tool("run_sql", past)["result"];
  REQUIRE(by_time["isError"] == false);
  int64_t read = by_time["structuredContent"]["snapshot_lsn"];
  // The answer's state is listed at or before that time, and the one newer is not.
  size_t k = 0;
  while (k < list.size() && list[k]["lsn"] != read) ++k;
  REQUIRE(k < list.size());
  CHECK(list[k]["time"] <= list[at]["time"]);
  if (k > 0) CHECK(list[k - 1]["time"] > list[at]["time"]);
  past["at_time"] = "2000-01-01T00:00:00Z";
  json before = f.Tool("run_sql", past)["result"];
  CHECK(before["isError"] == true);
  CHECK(before["structuredContent"]["error"]["code"] == "checkpoint_not_found");
  past["at_lsn"] = first;
  CHECK(f.Tool("run_sql", past)["error"]["code"] == mcp::kInvalidParams);  // both
}

TEST_CASE("mcp: an undo is offered only to a caller who may make it", "[mcp]") {
  McpFixture f;
  REQUIRE(f.Tool("create_project", {{"name", "shop"}})["result"]["isError"] == false);
  json args = {{"project", "shop"}, {"branch", "production"}, {"sql", "CREATE TABLE t(a)"}};
  json own = f.Tool("run_sql", args)["result"];
  CHECK(Text(own).find("To undo it: rollback {project: \"shop\", branch: \"production\", "
                       "actions: 1}") != std::string::npos);

  // A token without branches:write: the rollback would be refused, so it is not offered.
  const std::string sql_only = f.AdminToken("sql:write");
  args["sql"] = "INSERT INTO t VALUES (1)";
  json narrow = f.Tool("run_sql", args, {{"Authorization", "Bearer " + sql_only}})["result"];
  REQUIRE(narrow["isError"] == false);
  CHECK(Text(narrow).find("To undo it") == std::string::npos);
  CHECK(Text(narrow).find("needs the scope branches:write on that branch, which this client "
                          "lacks") != std::string::npos);
  CHECK(f.Rest("POST", "/v1/projects/shop/branches/production/rollback", {{"to", {{"actions", 1}}}},
               sql_only)
            .first == 403);

  // A protected branch: only a holder of branches:protect may roll it back.
  // An agent token (branches:write sql:write) is told who can; the admin
  // gets the undo and it works.
  REQUIRE(f.Rest("PATCH", "/v1/projects/shop/branches/production", {{"protected", true}}).first ==
          200);
  const std::string agent = f.AdminToken("branches:write sql:write");
  args["sql"] = "DELETE FROM t";
  json on_protected = f.Tool("run_sql", args, {{"Authorization", "Bearer " + agent}})["result"];
  REQUIRE(on_protected["isError"] == false);
  const std::string text = Text(on_protected);
  CHECK(text.find("To undo it") == std::string::npos);
  CHECK(text.find("\"production\" is protected") != std::string::npos);
  CHECK(text.find("branches:protect") != std::string::npos);
  CHECK(text.find("create_branch") != std::string::npos);
  auto [status, refused] = f.Rest("POST", "/v1/projects/shop/branches/production/rollback",
                                  {{"to", {{"actions", 1}}}}, agent);
  CHECK(status == 403);
  CHECK(refused["error"]["code"] == "branch_protected");
  args["sql"] = "INSERT INTO t VALUES (2)";
  json by_admin = f.Tool("run_sql", args)["result"];
  CHECK(Text(by_admin).find("To undo it: rollback {project: \"shop\", branch: \"production\", "
                            "actions: 1}") != std::string::npos);
  CHECK(f.Rest("POST", "/v1/projects/shop/branches/production/rollback", {{"to", {{"actions", 1}}}})
            .first == 200);
}

TEST_CASE("mcp: schema validation and path encoding", "[mcp]") {
  json schema = {{"type", "object"},
                 {"properties",
                  {{"n", {{"type", "integer"}, {"minimum", 1}, {"maximum", 3}}},
                   {"e", {{"type", "string"}, {"enum", {"x", "y"}}}},
                   {"l", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
                 {"required", {"n"}},
                 {"additionalProperties", false}};
  CHECK(mcp::ValidateSchema(schema, {{"n", 2}, {"e", "x"}, {"l", {"a"}}}, "a").ok());
  CHECK_FALSE(mcp::ValidateSchema(schema, json::object(), "a").ok());
  CHECK_FALSE(mcp::ValidateSchema(schema, {{"n", 0}}, "a").ok());
  CHECK_FALSE(mcp::ValidateSchema(schema, {{"n", 4}}, "a").ok());
  CHECK_FALSE(mcp::ValidateSchema(schema, {{"n", 1.5}}, "a").ok());
  CHECK_FALSE(mcp::ValidateSchema(schema, {{"n", 1}, {"e", "z"}}, "a").ok());
  CHECK(mcp::ValidateSchema(schema, {{"n", 1}, {"l", {1}}}, "a").message() == "a.l[0]: expected string");
  // additionalProperties as a schema (run_sql's named params).
  json named = {{"type", "object"}, {"additionalProperties", {{"type", "string"}}}};
  CHECK(mcp::ValidateSchema(named, {{"x", "1"}}, "p").ok());
  CHECK(mcp::ValidateSchema(named, {{"x", 1}}, "p").message() == "p.x: expected string");
  CHECK(http::EncodePathSegment("dev/alex 1%") == "dev%2Falex%201%25");
}

}  // namespace
}  // namespace branchdb::server
