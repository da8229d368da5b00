// Hardening items 3, 4 and 6 (export), against a real server over HTTP:
//   3. a database credential is bound to its project's and branch's identity,
//      not their names: after a delete + re-create, a rename away and a rename
//      onto its name, or a project's delete + re-create, it is refused; the
//      class: every kind of credential through every such change;
//   4. a client restricted to projects cannot create (or touch) a project
//      outside its list; the class: every documented operation on another
//      project, and every operation about no project;
//   6. a database credential authorizes SQL on its branch and nothing else
//      (not export); the class: every documented operation but SQL.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/server/live_server.h"

namespace branchdb::security {
namespace {

using nlohmann::json;

class Server : public testing::LiveServer {
 public:
  void Ok(const std::string& method, const std::string& path, const json& body = nullptr) {
    auto [status, out] = Call(method, path, body);
    INFO(method << " " << path << " -> " << status << " " << out.dump());
    REQUIRE(status / 100 == 2);
  }

  // A database credential for project/branch ("read" or "read_write").
  std::string Credential(const std::string& project, const std::string& branch,
                         const std::string& access) {
    auto [status, out] = Call("post", Branch(project, branch) + "/credentials",
                              {{"access", access}, {"ttl_seconds", 600}});
    INFO(out.dump());
    REQUIRE(status == 201);
    return out["credential"];
  }

  // A new client's access token.
  std::string ClientToken(const json& scopes, const json& projects) {
    auto [status, c] = Call("post", "/v1/clients",
                            {{"name", "restricted"}, {"scopes", scopes}, {"projects", projects}});
    INFO(c.dump());
    REQUIRE(status == 201);
    return Token(c["client_id"], c["client_secret"]);
  }

  // Status of a read (or write) SQL call with `token` on project/branch.
  std::pair<int, json> Sql(const std::string& token, const std::string& project,
                           const std::string& branch, const std::string& sql) {
    return Call("post", Branch(project, branch) + "/sql", {{"sql", sql}}, token);
  }

  static std::string Branch(const std::string& project, const std::string& branch) {
    std::string encoded;
    for (char c : branch) encoded += c == '/' ? std::string("%2F") : std::string(1, c);
    return "/v1/projects/" + project + "/branches/" + encoded;
  }
};

// The documented operations: (method, path template) of docs/openapi.yaml.
std::vector<std::pair<std::string, std::string>> DocumentedOperations() {
  std::ifstream in(std::string(BRANCHDB_SOURCE_DIR) + "/docs/openapi.yaml");
  REQUIRE(in.good());
  std::vector<std::pair<std::string, std::string>> ops;
  std::string line, path;
  const std::regex path_line(R"(^  (/[^:]*):\s*$)");
  const std::regex method_line(R"(^    (get|post|patch|delete|put):\s*$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, path_line)) path = m[1];
    if (!path.empty() && std::regex_match(line, m, method_line)) ops.emplace_back(m[1], path);
  }
  REQUIRE(ops.size() > 20);
  return ops;
}

std::string Fill(std::string tmpl, const std::string& project, const std::string& branch) {
  auto sub = [&](const std::string& key, const std::string& value) {
    size_t at = tmpl.find(key);
    if (at != std::string::npos) tmpl.replace(at, key.size(), value);
  };
  sub("{project}", project);
  std::string encoded;
  for (char c : branch) encoded += c == '/' ? std::string("%2F") : std::string(1, c);
  sub("{branch}", encoded);
  sub("{client_id}", "bdb_00000000000000000000");
  return tmpl;
}

void ExpectRefusedCredential(const std::pair<int, json>& reply) {
  INFO(reply.second.dump());
  CHECK(reply.first == 401);
  CHECK(reply.second["error"]["code"] == "invalid_token");
}

// --- item 3 ------------------------------------------------------------------

TEST_CASE("a credential for a deleted branch does not work on a new branch of its name",
          "[security][item3]") {
  Server s;
  s.Ok("post", "/v1/projects", {{"name", "shop"}});
  s.Ok("post", "/v1/projects/shop/branches", {{"name", "dev/alex"}});
  s.Ok("post", Server::Branch("shop", "dev/alex") + "/sql",
       {{"sql", "CREATE TABLE secrets(v); INSERT INTO secrets VALUES ('old')"}});
  std::string cred = s.Credential("shop", "dev/alex", "read_write");
  CHECK(s.Sql(cred, "shop", "dev/alex", "SELECT v FROM secrets").first == 200);

  s.Ok("delete", Server::Branch("shop", "dev/alex"));
  s.Ok("post", "/v1/projects/shop/branches", {{"name", "dev/alex"}});
  s.Ok("post", Server::Branch("shop", "dev/alex") + "/sql",
       {{"sql", "CREATE TABLE secrets(v); INSERT INTO secrets VALUES ('new')"}});
  ExpectRefusedCredential(s.Sql(cred, "shop", "dev/alex", "SELECT v FROM secrets"));
  ExpectRefusedCredential(s.Sql(cred, "shop", "dev/alex", "INSERT INTO secrets VALUES ('x')"));
  // A credential of the new branch works.
  std::string fresh = s.Credential("shop", "dev/alex", "read");
  auto [status, out] = s.Sql(fresh, "shop", "dev/alex", "SELECT v FROM secrets");
  CHECK(status == 200);
  CHECK(out["results"][0]["rows"] == json::parse(R"([["new"]])"));
}

// The class: every kind of credential, through every change that gives its
// names to another project or branch (or moves its branch to another name).
TEST_CASE("no credential survives a re-creation or rename of its branch or project",
          "[security][item3]") {
  struct Change {
    const char* what;
    // Applies the change to shop/b (which the credential was issued for).
    std::function<void(Server&)> apply;
    // Where the old credential is then tried: its own names, and (for a
    // rename) the name its branch has now.
    std::vector<std::pair<std::string, std::string>> tries;
  };
  const std::vector<Change> changes = {
      {"branch deleted and re-created",
       [](Server& s) {
         s.Ok("delete", Server::Branch("shop", "b"));
         s.Ok("post", "/v1/projects/shop/branches", {{"name", "b"}});
       },
       {{"shop", "b"}}},
      {"branch renamed away, another renamed onto its name",
       [](Server& s) {
         s.Ok("patch", Server::Branch("shop", "b"), {{"name", "b-old"}});
         s.Ok("post", "/v1/projects/shop/branches", {{"name", "c"}});
         s.Ok("patch", Server::Branch("shop", "c"), {{"name", "b"}});
       },
       {{"shop", "b"}, {"shop", "b-old"}}},
      {"branch renamed (a rename ends its credentials)",
       [](Server& s) { s.Ok("patch", Server::Branch("shop", "b"), {{"name", "b2"}}); },
       {{"shop", "b"}, {"shop", "b2"}}},
      {"project deleted and re-created with the same branch names",
       [](Server& s) {
         s.Ok("delete", "/v1/projects/shop?force=true");
         s.Ok("post", "/v1/projects", {{"name", "shop"}});
         s.Ok("post", "/v1/projects/shop/branches", {{"name", "b"}});
       },
       {{"shop", "b"}, {"shop", "production"}}},
  };
  for (const auto& change : changes) {
    for (const char* access : {"read", "read_write"}) {
      DYNAMIC_SECTION(change.what << ", " << access << " credential") {
        Server s;
        s.Ok("post", "/v1/projects", {{"name", "shop"}});
        s.Ok("post", "/v1/projects/shop/branches", {{"name", "b"}});
        std::string cred = s.Credential("shop", "b", access);
        std::string prod = s.Credential("shop", "production", access);
        CHECK(s.Sql(cred, "shop", "b", "SELECT 1").first == 200);
        CHECK(s.Sql(prod, "shop", "production", "SELECT 1").first == 200);
        change.apply(s);
        // On its own names: 401 (the names denote another branch, or none);
        // on the name its branch has now: 403 (not the branch it names).
        for (size_t i = 0; i < change.tries.size(); ++i) {
          const auto& [project, branch] = change.tries[i];
          INFO("tried on " << project << "/" << branch);
          for (const char* sql : {"SELECT 1", "CREATE TABLE t(a)"}) {
            CHECK(s.Sql(cred, project, branch, sql).first == (i == 0 ? 401 : 403));
          }
        }
        // The production credential outlives a branch change, not a project's.
        bool project_changed = std::string(change.what).rfind("project", 0) == 0;
        int prod_status = s.Sql(prod, "shop", "production", "SELECT 1").first;
        CHECK(prod_status == (project_changed ? 401 : 200));
      }
    }
  }
}

// --- item 4 ------------------------------------------------------------------

TEST_CASE("a project-restricted client cannot create a project outside its list",
          "[security][item4]") {
  Server s;
  std::string token = s.ClientToken({"projects:write", "branches:write"}, {"alpha"});
  auto [refused, body] = s.Call("post", "/v1/projects", {{"name", "squatted"}}, token);
  INFO(body.dump());
  CHECK(refused == 403);
  CHECK(body["error"]["code"] == "insufficient_scope");
  CHECK(s.Call("get", "/v1/projects/squatted").first == 404);
  CHECK(s.Call("post", "/v1/projects", {{"name", "alpha"}}, token).first == 201);
  CHECK(s.Call("post", "/v1/projects", json::object(), token).first == 403);
  CHECK(s.Call("get", "/v1/projects", nullptr, token).second["projects"].size() == 1);
}

// The class: a restricted client (even with scope admin) gets 403 on every
// documented operation about another project, and on every operation about
// no project (clients, and creating unnamed projects); listing is filtered.
TEST_CASE("a project-restricted client is refused every operation outside its list",
          "[security][item4]") {
  Server s;
  s.Ok("post", "/v1/projects", {{"name", "alpha"}});
  s.Ok("post", "/v1/projects", {{"name", "beta"}});
  s.Ok("post", "/v1/projects/beta/branches", {{"name", "b"}});
  std::string token = s.ClientToken({"admin"}, {"alpha"});
  int walked = 0;
  for (const auto& [method, tmpl] : DocumentedOperations()) {
    if (tmpl.rfind("/v1/", 0) != 0) continue;  // OAuth, discovery, health, MCP
    if (method == "get" && tmpl == "/v1/projects") continue;  // filtered, below
    std::string path = Fill(tmpl, "beta", "b");
    if (method == "post" && tmpl == "/v1/projects/{project}/import") path += "?branch=imp";
    auto [status, out] = s.Call(method, path, nullptr, token);
    INFO(method << " " << path << " -> " << out.dump());
    CHECK(status == 403);
    ++walked;
  }
  CHECK(walked > 20);
  auto listed = s.Call("get", "/v1/projects", nullptr, token).second["projects"];
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["name"] == "alpha");
  // beta is as it was.
  CHECK(s.Call("get", "/v1/projects/beta/branches").second["branches"].size() == 2);
}

// --- item 6 (export) -----------------------------------------------------------

TEST_CASE("a database credential cannot export its branch", "[security][item6]") {
  Server s;
  s.Ok("post", "/v1/projects", {{"name", "shop"}});
  s.Ok("post", Server::Branch("shop", "production") + "/sql", {{"sql", "CREATE TABLE t(a)"}});
  for (const char* access : {"read", "read_write"}) {
    std::string cred = s.Credential("shop", "production", access);
    auto [status, body] = s.Call("get", Server::Branch("shop", "production") + "/export",
                                 nullptr, cred);
    INFO(access << ": " << body.dump().substr(0, 200));
    CHECK(status == 403);
  }
  std::string reader = s.ClientToken({"sql:read"}, json::array());
  CHECK(s.Call("get", Server::Branch("shop", "production") + "/export", nullptr, reader).first ==
        200);
}

// The class: SQL on its own branch is the one thing a credential does.
TEST_CASE("a database credential is refused every documented operation but SQL",
          "[security][item6]") {
  Server s;
  s.Ok("post", "/v1/projects", {{"name", "shop"}});
  s.Ok("post", "/v1/projects/shop/branches", {{"name", "b"}});
  std::string cred = s.Credential("shop", "b", "read_write");
  int walked = 0;
  for (const auto& [method, tmpl] : DocumentedOperations()) {
    if (tmpl.rfind("/v1/", 0) != 0) continue;
    std::string path = Fill(tmpl, "shop", "b");
    if (method == "post" && tmpl == "/v1/projects/{project}/import") path += "?branch=imp";
    auto [status, out] = s.Call(method, path,
                                tmpl.find("/sql") != std::string::npos
                                    ? json{{"sql", "SELECT 1"}}
                                    : json(nullptr),
                                cred);
    INFO(method << " " << path << " -> " << out.dump());
    if (method == "post" && tmpl == "/v1/projects/{project}/branches/{branch}/sql") {
      CHECK(status == 200);
    } else {
      CHECK(status == 403);
    }
    ++walked;
  }
  CHECK(walked > 20);
  CHECK(s.Call("get", "/v1/projects/shop/branches").second["branches"].size() == 2);
}

}  // namespace
}  // namespace branchdb::security
