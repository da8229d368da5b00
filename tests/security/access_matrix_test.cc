// Issue #18 (access): branch-scoped clients and the protection model, against
// a real server over HTTP:
//   - the access matrix of docs/auth.md, read from the doc and checked cell by
//     cell over REST (four kinds of client, ten operations, four branches), and
//     a representative subset through MCP;
//   - a client's maximum branch TTL (defaulted, capped, never removed);
//   - the writes policy promote_only (REST, MCP's run_sql, Hrana, database
//     credentials) and branches:protect;
//   - the scenario replayed: an agent with the scopes docs/mcp.md
//     recommends deletes rows on production; with promote_only it is refused;
//     with writes any the undo hint names who can, and that one's undo works;
//     the agent cannot lift the protection;
//   - CORS for browser agent UIs: off by default, exact configured origins,
//     preflights for the API, /oauth/token and /mcp, never a wildcard.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/server/live_server.h"

namespace branchdb::security {
namespace {

using nlohmann::json;

std::string Encode(const std::string& branch) {
  std::string out;
  for (char c : branch) out += c == '/' ? std::string("%2F") : std::string(1, c);
  return out;
}

std::string BranchPath(const std::string& project, const std::string& branch) {
  return "/v1/projects/" + project + "/branches/" + Encode(branch);
}

class Server : public testing::LiveServer {
 public:
  void Ok(const std::string& method, const std::string& path, const json& body = nullptr) {
    auto [status, out] = Call(method, path, body);
    INFO(method << " " << path << " -> " << status << " " << out.dump());
    REQUIRE(status / 100 == 2);
  }

  // A new client: its JSON (with the secret) and a token.
  std::pair<json, std::string> NewClient(const json& spec) {
    auto [status, c] = Call("POST", "/v1/clients", spec);
    INFO(c.dump());
    REQUIRE(status == 201);
    return {c, Token(c["client_id"], c["client_secret"])};
  }

  // One MCP tools/call with token: the CallToolResult (or the JSON-RPC error).
  json Tool(const std::string& token, const std::string& name, const json& arguments,
            const std::string& path = "/mcp") {
    json msg = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
                {"params", {{"name", name}, {"arguments", arguments}}}};
    return Mcp(token, msg, path);
  }
  json Mcp(const std::string& token, const json& msg, const std::string& path = "/mcp") {
    auto c = Client();
    httplib::Headers h{{"Authorization", "Bearer " + token},
                       {"Accept", "application/json, text/event-stream"}};
    auto r = c.Post(path.c_str(), h, msg.dump(), "application/json");
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
    json j = json::parse(r->body);
    return j.contains("result") ? j["result"] : j;
  }
};

std::string Text(const json& result) { return result["content"][0]["text"]; }

// --- the matrix, as docs/auth.md writes it --------------------------------------

struct Cell {
  int status = 0;
  std::string code;                          // "" when the answer is a success
  std::optional<std::vector<std::string>> listed;  // list: the names listed
};

struct Row {
  std::string operation, target;
  std::map<std::string, Cell> cells;  // by client kind
};

Cell ParseCell(const std::string& text) {
  Cell cell;
  std::istringstream in(text);
  in >> cell.status;
  std::string rest;
  std::getline(in, rest);
  rest.erase(0, rest.find_first_not_of(' '));
  if (!rest.empty() && rest[0] == '[') {
    std::vector<std::string> names;
    std::string inner = rest.substr(1, rest.find(']') - 1), name;
    std::istringstream parts(inner);
    while (std::getline(parts, name, ',')) {
      name.erase(0, name.find_first_not_of(' '));
      if (!name.empty()) names.push_back(name);
    }
    cell.listed = names;
  } else {
    cell.code = rest;
  }
  return cell;
}

std::vector<Row> MatrixFromDocs() {
  std::ifstream in(std::string(BRANCHDB_SOURCE_DIR) + "/docs/auth.md");
  REQUIRE(in.good());
  std::vector<Row> rows;
  std::vector<std::string> header;
  bool inside = false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("<!-- access-matrix:begin -->") != std::string::npos) inside = true;
    if (line.find("<!-- access-matrix:end -->") != std::string::npos) break;
    if (!inside || line.empty() || line[0] != '|' || line.find("| ---") == 0) continue;
    std::vector<std::string> cols;
    std::string col;
    std::istringstream parts(line.substr(1));
    while (std::getline(parts, col, '|')) {
      col.erase(0, col.find_first_not_of(' '));
      col.erase(col.find_last_not_of(' ') + 1);
      cols.push_back(col);
    }
    if (!cols.empty() && cols.back().empty()) cols.pop_back();
    if (header.empty()) {
      header = cols;
      continue;
    }
    REQUIRE(cols.size() == header.size());
    Row row{cols[0], cols[1], {}};
    for (size_t i = 2; i < cols.size(); ++i) row.cells[header[i]] = ParseCell(cols[i]);
    rows.push_back(row);
  }
  REQUIRE(rows.size() >= 38);
  return rows;
}

// The matrix's world (docs/auth.md, "The access matrix"), kept in its base
// state before every cell: shop {production (protected), agent/a, ci-pr-1},
// other {production, agent/a}; each branch with one commit of its own.
class MatrixWorld : public Server {
 public:
  MatrixWorld() {
    for (const char* p : {"shop", "other"}) {
      Ok("POST", "/v1/projects", {{"name", p}});
      Ok("POST", BranchPath(p, "production") + "/sql",
         {{"sql", "CREATE TABLE items(id INTEGER, note TEXT)"}});
    }
    Ok("PATCH", BranchPath("shop", "production"), {{"protected", true}});
    tokens_["admin"] = Admin();
    tokens_["agent"] = NewClient({{"name", "agent"},
                                  {"scopes", {"branches:write", "sql:write"}},
                                  {"projects", {"shop"}},
                                  {"branches", {"agent/*"}},
                                  {"max_branch_ttl_seconds", 3600}})
                           .second;
    tokens_["ci"] = NewClient({{"name", "ci"},
                               {"scopes", {"branches:write", "sql:write"}},
                               {"projects", {"shop"}},
                               {"branches", {"ci-pr-*"}}})
                        .second;
    tokens_["reader"] = NewClient({{"name", "reader"},
                                   {"scopes", {"projects:read", "branches:read", "sql:read"}},
                                   {"projects", {"shop"}}})
                            .second;
  }

  // Back to the base state: the fixed branches exist, unprotected but for
  // shop's production, each with a fresh commit; the created ones are gone.
  void Restore() {
    const std::vector<std::pair<std::string, std::string>> fixed = {
        {"shop", "agent/a"}, {"shop", "ci-pr-1"}, {"other", "agent/a"}};
    for (const auto& [p, b] : fixed) {
      if (Call("GET", BranchPath(p, b)).first == 404) {
        Ok("POST", "/v1/projects/" + p + "/branches", {{"name", b}});
      }
    }
    for (const auto& [p, b] : std::vector<std::pair<std::string, std::string>>{
             {"shop", "agent/new"}, {"shop", "ci-pr-new"}, {"shop", "dev/new"},
             {"other", "agent/new"}}) {
      Call("DELETE", BranchPath(p, b));
    }
    Ok("PATCH", BranchPath("shop", "production"), {{"protected", true}});
    for (const auto& [p, b] : fixed) Ok("PATCH", BranchPath(p, b), {{"protected", false}});
    for (const auto& [p, b] : std::vector<std::pair<std::string, std::string>>{
             {"shop", "production"}, {"shop", "agent/a"}, {"shop", "ci-pr-1"},
             {"other", "production"}, {"other", "agent/a"}}) {
      Ok("POST", BranchPath(p, b) + "/sql", {{"sql", "INSERT INTO items VALUES (1, 'base')"}});
    }
  }

  // Runs operation on target as client kind; the answer.
  std::pair<int, json> Run(const Row& row, const std::string& kind) {
    std::string project = "shop", target = row.target;
    if (target.rfind("other: ", 0) == 0) {
      project = "other";
      target = target.substr(7);
    }
    const std::string& token = tokens_.at(kind);
    const std::string& op = row.operation;
    if (op == "list") return Call("GET", "/v1/projects/" + target + "/branches", nullptr, token);
    const std::string path = BranchPath(project, target);
    if (op == "read SQL") {
      return Call("POST", path + "/sql", {{"sql", "SELECT count(*) FROM items"}}, token);
    }
    if (op == "write SQL") {
      return Call("POST", path + "/sql", {{"sql", "INSERT INTO items VALUES (2, 'cell')"}}, token);
    }
    if (op == "create") {
      return Call("POST", "/v1/projects/" + project + "/branches", {{"name", target}}, token);
    }
    if (op == "delete") return Call("DELETE", path, nullptr, token);
    if (op == "rollback") return Call("POST", path + "/rollback", {{"to", {{"actions", 1}}}}, token);
    if (op == "reset") return Call("POST", path + "/reset", nullptr, token);
    if (op == "protect") return Call("PATCH", path, {{"protected", true}}, token);
    if (op == "unprotect") {
      Ok("PATCH", path, {{"protected", true}});
      return Call("PATCH", path, {{"protected", false}}, token);
    }
    if (op == "promote") return Call("POST", path + "/promote", nullptr, token);
    FAIL("unknown operation in docs/auth.md's matrix: " << op);
    return {};
  }

  std::map<std::string, std::string> tokens_;
};

void CheckCell(const Cell& expected, int status, const json& body) {
  CHECK(status == expected.status);
  if (!expected.code.empty()) {
    REQUIRE(body.is_object());
    CHECK(body["error"]["code"] == expected.code);
    if (expected.code == "branch_not_allowed" && body["error"]["details"].contains("branches")) {
      CHECK(body["error"]["details"]["branches"].is_array());
    }
  }
  if (expected.listed) {
    std::vector<std::string> names;
    for (const auto& b : body["branches"]) names.push_back(b["name"]);
    std::sort(names.begin(), names.end());
    CHECK(names == *expected.listed);
  }
}

TEST_CASE("every client kind gets exactly what docs/auth.md's access matrix says, over REST",
          "[security][matrix]") {
  MatrixWorld w;
  for (const Row& row : MatrixFromDocs()) {
    for (const auto& [kind, expected] : row.cells) {
      w.Restore();
      auto [status, body] = w.Run(row, kind);
      INFO(row.operation << " on " << row.target << " as " << kind << " -> " << status << " "
                         << body.dump());
      CheckCell(expected, status, body);
    }
  }
}

TEST_CASE("the matrix holds through MCP: same answers, same codes, filtered listings",
          "[security][matrix][mcp]") {
  MatrixWorld w;
  w.Restore();
  const std::string& agent = w.tokens_.at("agent");
  // Reads and writes on production: refused with the REST code.
  for (const char* sql : {"SELECT count(*) FROM items", "DELETE FROM items"}) {
    json r = w.Tool(agent, "run_sql", {{"project", "shop"}, {"branch", "production"}, {"sql", sql}});
    INFO(r.dump());
    CHECK(r["isError"] == true);
    CHECK(r["structuredContent"]["error"]["code"] == "branch_not_allowed");
    CHECK(Text(r).find("agent/*") != std::string::npos);
  }
  json own = w.Tool(agent, "run_sql",
                    {{"project", "shop"}, {"branch", "agent/a"}, {"sql", "DELETE FROM items"}});
  CHECK(own["isError"] == false);
  CHECK(Text(own).find("To undo it: rollback {project: \"shop\", branch: \"agent/a\"") !=
        std::string::npos);
  json listed = w.Tool(agent, "list_branches", {{"project", "shop"}});
  REQUIRE(listed["isError"] == false);
  REQUIRE(listed["structuredContent"]["branches"].size() == 1);
  CHECK(listed["structuredContent"]["branches"][0]["name"] == "agent/a");
  json outside = w.Tool(agent, "create_branch", {{"project", "shop"}, {"name", "dev/x"}});
  CHECK(outside["structuredContent"]["error"]["code"] == "branch_not_allowed");
  json inside = w.Tool(agent, "create_branch", {{"project", "shop"}, {"name", "agent/mcp"}});
  CHECK(inside["isError"] == false);
  CHECK(inside["structuredContent"]["expires_at"].is_string());  // the client's maximum TTL
  json gone = w.Tool(agent, "delete_branch", {{"project", "shop"}, {"branch", "production"}});
  CHECK(gone["structuredContent"]["error"]["code"] == "branch_not_allowed");
  json other = w.Tool(agent, "run_sql",
                      {{"project", "other"}, {"branch", "agent/a"}, {"sql", "SELECT 1"}});
  CHECK(other["structuredContent"]["error"]["code"] == "insufficient_scope");
  // Projects: a client with a project list sees only those (the agent has no
  // projects:read; the reader, limited to shop, lists it alone).
  json projects = w.Tool(w.tokens_.at("reader"), "list_projects", json::object());
  REQUIRE(projects["isError"] == false);
  REQUIRE(projects["structuredContent"]["projects"].size() == 1);
  CHECK(projects["structuredContent"]["projects"][0]["name"] == "shop");
}

TEST_CASE("a client without a write scope gets MCP's read-only tool list by itself",
          "[security][matrix][mcp]") {
  MatrixWorld w;
  const std::string& reader = w.tokens_.at("reader");
  json list = w.Mcp(reader, {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}});
  std::vector<std::string> names;
  for (const auto& t : list["tools"]) {
    names.push_back(t["name"]);
    CHECK(t["annotations"]["readOnlyHint"] == true);
  }
  CHECK(std::find(names.begin(), names.end(), "run_sql") != names.end());
  CHECK(std::find(names.begin(), names.end(), "delete_branch") == names.end());
  CHECK(std::find(names.begin(), names.end(), "rollback") == names.end());
  // ?readonly=false does not widen it.
  json asked = w.Mcp(reader, {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}},
                     "/mcp?readonly=false");
  CHECK(asked["tools"].size() == list["tools"].size());
  json refused = w.Tool(reader, "delete_branch", {{"project", "shop"}, {"branch", "agent/a"}});
  CHECK(refused["error"]["code"] == -32602);
  // The agent (write scopes) gets the full list.
  json full = w.Mcp(w.tokens_.at("agent"), {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}});
  CHECK(full["tools"].size() > list["tools"].size());
}

// --- a client's maximum branch TTL ------------------------------------------------

TEST_CASE("a client with a maximum TTL makes only branches that expire within it",
          "[security][ttl]") {
  Server s;
  s.Ok("POST", "/v1/projects", {{"name", "shop"}});
  auto [client, agent] = s.NewClient({{"name", "agent"},
                                      {"scopes", {"branches:write", "sql:write"}},
                                      {"branches", {"agent/*"}},
                                      {"max_branch_ttl_seconds", 3600}});
  CHECK(client["branches"] == json({"agent/*"}));
  CHECK(client["max_branch_ttl_seconds"] == 3600);
  // No TTL given: the maximum.
  auto [st, b] = s.Call("POST", "/v1/projects/shop/branches", {{"name", "agent/a"}}, agent);
  REQUIRE(st == 201);
  REQUIRE(b["expires_at"].is_string());
  auto [st2, shorter] = s.Call("POST", "/v1/projects/shop/branches",
                               {{"name", "agent/b"}, {"ttl_seconds", 600}}, agent);
  CHECK(st2 == 201);
  CHECK(shorter["expires_at"] < b["expires_at"]);
  for (const json& body : {json{{"name", "agent/c"}, {"ttl_seconds", 3601}},
                           json{{"name", "agent/c"}, {"expires_at", "2999-01-01T00:00:00Z"}}}) {
    auto [status, refused] = s.Call("POST", "/v1/projects/shop/branches", body, agent);
    INFO(refused.dump());
    CHECK(status == 403);
    CHECK(refused["error"]["code"] == "branch_ttl_not_allowed");
    CHECK(refused["error"]["details"]["max_branch_ttl_seconds"] == 3600);
  }
  for (const json& patch : {json{{"ttl_seconds", 7200}}, json{{"expires_at", nullptr}},
                            json{{"expires_at", "2999-01-01T00:00:00Z"}}}) {
    auto [status, refused] = s.Call("PATCH", BranchPath("shop", "agent/a"), patch, agent);
    INFO(patch.dump() << " -> " << refused.dump());
    CHECK(status == 403);
    CHECK(refused["error"]["code"] == "branch_ttl_not_allowed");
  }
  CHECK(s.Call("PATCH", BranchPath("shop", "agent/a"), {{"ttl_seconds", 60}}, agent).first == 200);
  // An import by the client gets the maximum TTL too.
  {
    auto c = s.Client();
    httplib::Headers h{{"Authorization", "Bearer " + agent}};
    REQUIRE(s.Call("POST", BranchPath("shop", "agent/a") + "/sql", {{"sql", "CREATE TABLE t(a)"}},
                   agent)
                .first == 200);
    auto file = c.Get((BranchPath("shop", "agent/a") + "/export").c_str(), h);
    REQUIRE(file);
    REQUIRE(file->status == 200);
    auto imported = c.Post("/v1/projects/shop/import?branch=agent%2Fimported", h, file->body,
                           "application/vnd.sqlite3");
    REQUIRE(imported);
    INFO(imported->body);
    REQUIRE(imported->status == 201);
    CHECK(json::parse(imported->body)["expires_at"].is_string());
    auto outside = c.Post("/v1/projects/shop/import?branch=imported", h, file->body,
                          "application/vnd.sqlite3");
    REQUIRE(outside);
    CHECK(outside->status == 403);
  }
  // A rename keeps to the patterns.
  auto [st3, renamed] = s.Call("PATCH", BranchPath("shop", "agent/a"), {{"name", "dev/a"}}, agent);
  CHECK(st3 == 403);
  CHECK(renamed["error"]["code"] == "branch_not_allowed");
}

TEST_CASE("client branch limits are validated field by field", "[security][ttl]") {
  Server s;
  for (const json& bad : {json{{"branches", json::array()}}, json{{"branches", {"a**"}}},
                          json{{"branches", {"a b"}}}, json{{"branches", "agent/*"}},
                          json{{"branches", {std::string(129, 'a')}}},
                          json{{"max_branch_ttl_seconds", 0}},
                          json{{"max_branch_ttl_seconds", 59}},
                          json{{"max_branch_ttl_seconds", 31536001}},
                          json{{"max_branch_ttl_seconds", "3600"}},
                          json{{"max_branch_ttl_seconds", 1.5}}}) {
    json spec = bad;
    spec["scopes"] = {"sql:read"};
    auto [status, out] = s.Call("POST", "/v1/clients", spec);
    INFO(bad.dump() << " -> " << out.dump());
    CHECK(status == 400);
  }
  std::vector<std::string> many(33, "agent/*");
  CHECK(s.Call("POST", "/v1/clients", {{"scopes", {"sql:read"}}, {"branches", many}}).first == 400);
  // A branch-scoped client manages no clients and no project as a whole.
  auto [c, token] = s.NewClient({{"scopes", {"admin"}}, {"branches", {"agent/*"}}});
  CHECK(s.Call("POST", "/v1/clients", {{"scopes", {"sql:read"}}}, token).first == 403);
  CHECK(s.Call("POST", "/v1/projects", {{"name", "p2"}}, token).first == 403);
}

// --- protection: branches:protect and the writes policy ----------------------------

TEST_CASE("writes promote_only refuses SQL writes without branches:protect on every path",
          "[security][protect]") {
  Server s;
  s.Ok("POST", "/v1/projects", {{"name", "shop"}});
  s.Ok("POST", BranchPath("shop", "production") + "/sql",
       {{"sql", "CREATE TABLE items(id INTEGER)"}});
  auto [agent_c, agent] = s.NewClient({{"scopes", {"branches:write", "sql:write"}}});
  auto [op_c, operator_token] =
      s.NewClient({{"scopes", {"branches:write", "sql:write", "branches:protect"}}});
  const std::string prod = BranchPath("shop", "production");
  // An agent may raise a guard, not lower it.
  auto [st, b] = s.Call("PATCH", prod, {{"writes", "promote_only"}}, agent);
  REQUIRE(st == 200);
  CHECK(b["writes"] == "promote_only");
  auto [st2, lowered] = s.Call("PATCH", prod, {{"writes", "any"}}, agent);
  CHECK(st2 == 403);
  CHECK(lowered["error"]["code"] == "branch_protected");
  CHECK(s.Call("PATCH", prod, {{"writes", "bogus"}}).first == 400);

  // REST: reads work, writes are refused with the policy's code.
  CHECK(s.Call("POST", prod + "/sql", {{"sql", "SELECT count(*) FROM items"}}, agent).first == 200);
  auto [st3, refused] = s.Call("POST", prod + "/sql", {{"sql", "INSERT INTO items VALUES (1)"}}, agent);
  CHECK(st3 == 403);
  CHECK(refused["error"]["code"] == "branch_promote_only");
  // MCP's run_sql: the same refusal.
  json r = s.Tool(agent, "run_sql",
                  {{"project", "shop"}, {"branch", "production"}, {"sql", "DELETE FROM items"}});
  CHECK(r["isError"] == true);
  CHECK(r["structuredContent"]["error"]["code"] == "branch_promote_only");
  // A read-write database credential of the agent: no writes either.
  auto [st4, cred] = s.Call("POST", prod + "/credentials", {{"access", "read_write"}}, agent);
  REQUIRE(st4 == 201);
  auto [st5, by_cred] = s.Call("POST", prod + "/sql", {{"sql", "INSERT INTO items VALUES (1)"}},
                               cred["credential"].get<std::string>());
  CHECK(st5 == 403);
  CHECK(by_cred["error"]["code"] == "branch_promote_only");
  // Hrana: the stream runs read-only; the write fails, the read works.
  {
    auto c = s.Client();
    httplib::Headers h{{"Authorization", "Bearer " + agent}};
    json pipeline = {{"baton", nullptr},
                     {"requests",
                      {{{"type", "execute"}, {"stmt", {{"sql", "INSERT INTO items VALUES (1)"}}}},
                       {{"type", "execute"}, {"stmt", {{"sql", "SELECT count(*) FROM items"}}}},
                       {{"type", "close"}}}}};
    auto res = c.Post("/libsql/shop/production/v2/pipeline", h, pipeline.dump(),
                      "application/json");
    REQUIRE(res);
    INFO(res->body);
    REQUIRE(res->status == 200);
    json out = json::parse(res->body);
    CHECK(out["results"][0]["type"] == "error");
    CHECK(out["results"][1]["type"] == "ok");
  }
  // The operator (branches:protect) writes, and lowers the guard.
  CHECK(s.Call("POST", prod + "/sql", {{"sql", "INSERT INTO items VALUES (1)"}}, operator_token)
            .first == 200);
  CHECK(s.Call("PATCH", prod, {{"writes", "any"}}, operator_token).first == 200);
  CHECK(s.Call("POST", prod + "/sql", {{"sql", "INSERT INTO items VALUES (2)"}}, agent).first == 200);
}

TEST_CASE("the issue's scenario: an agent's DELETE on protected production, refused or undone "
          "by whoever may",
          "[security][protect][mcp]") {
  Server s;
  s.Ok("POST", "/v1/projects", {{"name", "shop"}});
  const std::string prod = BranchPath("shop", "production");
  s.Ok("POST", prod + "/sql",
       {{"sql", "CREATE TABLE items(id INTEGER); INSERT INTO items VALUES (1), (2), (3)"}});
  s.Ok("PATCH", prod, {{"protected", true}, {"writes", "promote_only"}});
  // The scopes docs/mcp.md recommends for an agent.
  auto [agent_c, agent] = s.NewClient({{"name", "agent"}, {"scopes", {"branches:write", "sql:write"}}});
  auto [op_c, operator_token] = s.NewClient(
      {{"name", "operator"}, {"scopes", {"branches:read", "branches:write", "branches:protect"}}});
  json del = {{"project", "shop"}, {"branch", "production"}, {"sql", "DELETE FROM items"}};

  // promote_only: the DELETE is refused, and the answer says what to do instead.
  json refused = s.Tool(agent, "run_sql", del);
  CHECK(refused["isError"] == true);
  CHECK(refused["structuredContent"]["error"]["code"] == "branch_promote_only");
  CHECK(Text(refused).find("promote") != std::string::npos);

  // writes any (Lakebase's default): the DELETE runs; the undo is not the
  // agent's to make, and the result says who can.
  s.Ok("PATCH", prod, {{"writes", "any"}});
  json done = s.Tool(agent, "run_sql", del);
  REQUIRE(done["isError"] == false);
  const std::string text = Text(done);
  INFO(text);
  CHECK(text.find("To undo it") == std::string::npos);
  CHECK(text.find("You cannot undo it") != std::string::npos);
  CHECK(text.find("branches:protect") != std::string::npos);
  const std::string undo = "rollback {project: \"shop\", branch: \"production\", actions: 1}";
  CHECK(text.find(undo) != std::string::npos);
  // The agent can neither roll back nor lift the protection.
  auto [st, r] = s.Call("POST", prod + "/rollback", {{"to", {{"actions", 1}}}}, agent);
  CHECK(st == 403);
  CHECK(r["error"]["code"] == "branch_protected");
  auto [st2, r2] = s.Call("PATCH", prod, {{"protected", false}}, agent);
  CHECK(st2 == 403);
  CHECK(r2["error"]["code"] == "branch_protected");
  auto [st3, r3] = s.Call("DELETE", prod, nullptr, agent);
  CHECK(st3 == 403);
  // The one who can makes exactly that undo, through MCP, as the hint wrote it.
  json undone = s.Tool(operator_token, "rollback",
                       {{"project", "shop"}, {"branch", "production"}, {"actions", 1}});
  INFO(undone.dump());
  REQUIRE(undone["isError"] == false);
  auto [st4, count] = s.Call("POST", prod + "/sql", {{"sql", "SELECT count(*) FROM items"}});
  REQUIRE(st4 == 200);
  CHECK(count["results"][0]["rows"][0][0] == 3);
  CHECK(s.Call("GET", prod).second["protected"] == true);  // never lifted
  // On its own branch the agent gets the undo it can make, and it works.
  s.Ok("POST", "/v1/projects/shop/branches", {{"name", "agent/try"}});
  json own = s.Tool(agent, "run_sql",
                    {{"project", "shop"}, {"branch", "agent/try"}, {"sql", "DELETE FROM items"}});
  CHECK(Text(own).find("To undo it: rollback {project: \"shop\", branch: \"agent/try\", actions: 1}") !=
        std::string::npos);
  json own_undo =
      s.Tool(agent, "rollback", {{"project", "shop"}, {"branch", "agent/try"}, {"actions", 1}});
  CHECK(own_undo["isError"] == false);
}

// --- CORS ------------------------------------------------------------------------

TEST_CASE("CORS is off by default: no preflight answer, no allow-origin header", "[security][cors]") {
  Server s;
  auto c = s.Client();
  auto pre = c.Options("/v1/projects", {{"Origin", "https://ui.example"},
                                        {"Access-Control-Request-Method", "GET"}});
  REQUIRE(pre);
  CHECK_FALSE(pre->has_header("Access-Control-Allow-Origin"));
  auto get = c.Get("/v1/projects", {{"Origin", "https://ui.example"},
                                    {"Authorization", "Bearer " + s.Admin()}});
  REQUIRE(get);
  CHECK(get->status == 200);
  CHECK_FALSE(get->has_header("Access-Control-Allow-Origin"));
}

TEST_CASE("CORS answers the configured origins only, for the API, OAuth and MCP",
          "[security][cors]") {
  testing::LiveServer s([](server::Config& c) {
    c.cors_origins = {"https://ui.example", "http://localhost:5173"};
  });
  const std::string token = s.AdminToken();
  auto c = s.Client();
  for (const char* path : {"/v1/projects", "/oauth/token", "/mcp",
                           "/v1/projects/shop/branches/agent%2Fa/sql"}) {
    INFO(path);
    auto pre = c.Options(path, {{"Origin", "https://ui.example"},
                                {"Access-Control-Request-Method", "POST"},
                                {"Access-Control-Request-Headers", "authorization, content-type"}});
    REQUIRE(pre);
    CHECK(pre->status == 204);
    CHECK(pre->get_header_value("Access-Control-Allow-Origin") == "https://ui.example");
    CHECK(pre->get_header_value("Access-Control-Allow-Methods").find("POST") != std::string::npos);
    CHECK(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization") !=
          std::string::npos);
    CHECK(pre->get_header_value("Vary").find("Origin") != std::string::npos);
    CHECK_FALSE(pre->has_header("Access-Control-Allow-Credentials"));
    // Another origin: refused, without an allow header.
    auto other = c.Options(path, {{"Origin", "https://evil.example"},
                                  {"Access-Control-Request-Method", "POST"}});
    REQUIRE(other);
    CHECK(other->status == 403);
    CHECK_FALSE(other->has_header("Access-Control-Allow-Origin"));
  }
  // The actual requests carry the header (errors too), for the listed origin only.
  auto get = c.Get("/v1/projects", {{"Origin", "http://localhost:5173"},
                                    {"Authorization", "Bearer " + token}});
  REQUIRE(get);
  CHECK(get->status == 200);
  CHECK(get->get_header_value("Access-Control-Allow-Origin") == "http://localhost:5173");
  CHECK(get->get_header_value("Access-Control-Expose-Headers").find("WWW-Authenticate") !=
        std::string::npos);
  auto unauth = c.Get("/v1/projects", {{"Origin", "https://ui.example"}});
  REQUIRE(unauth);
  CHECK(unauth->status == 401);
  CHECK(unauth->get_header_value("Access-Control-Allow-Origin") == "https://ui.example");
  auto evil = c.Get("/v1/projects", {{"Origin", "https://evil.example"},
                                     {"Authorization", "Bearer " + token}});
  REQUIRE(evil);
  CHECK_FALSE(evil->has_header("Access-Control-Allow-Origin"));
  // /mcp from the configured origin is served (its DNS-rebinding check allows it).
  json ping = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}};
  auto mcp = c.Post("/mcp",
                    {{"Origin", "https://ui.example"},
                     {"Authorization", "Bearer " + token},
                     {"Accept", "application/json, text/event-stream"}},
                    ping.dump(), "application/json");
  REQUIRE(mcp);
  CHECK(mcp->status == 200);
  CHECK(mcp->get_header_value("Access-Control-Allow-Origin") == "https://ui.example");
  auto mcp_evil = c.Post("/mcp",
                         {{"Origin", "https://evil.example"},
                          {"Authorization", "Bearer " + token},
                          {"Accept", "application/json, text/event-stream"}},
                         ping.dump(), "application/json");
  REQUIRE(mcp_evil);
  CHECK(mcp_evil->status == 403);
}

}  // namespace
}  // namespace branchdb::security
