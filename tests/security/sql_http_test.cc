// Issue 13, items 1 and 2, over HTTP against a real server: the SQL request
// that crashed the server (fts3_tokenizer with a read-only credential, and the
// same through MCP's run_sql), and the TEMP trigger one client planted on the
// branch's shared connection to rewrite another client's writes.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "server/sql/sandbox.h"
#include "tests/server/live_server.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

const char* kProd = "/v1/projects/shop/branches/production";

class Fixture : public testing::LiveServer {
 public:
  Fixture() {
    REQUIRE(Call("POST", "/v1/projects", {{"name", "shop"}}).first == 201);
  }

  // A JSON call that also accepts an event stream, as MCP clients do.
  std::pair<int, json> Call(const std::string& method, const std::string& path,
                            const json& body = nullptr, const std::string& token = "") {
    return LiveServer::Call(method, path, body, token,
                            {{"Accept", "application/json, text/event-stream"}});
  }

  // POST .../sql on production; returns status and body.
  std::pair<int, json> Sql(const std::string& sql, const std::string& token = "",
                           json params = nullptr) {
    json body = {{"sql", sql}};
    if (!params.is_null()) body["params"] = params;
    return Call("POST", std::string(kProd) + "/sql", body, token);
  }

  // A database credential for production ("read" or "read_write").
  std::string Credential(const std::string& access) {
    auto [status, cred] = Call("POST", std::string(kProd) + "/credentials",
                               {{"access", access}, {"ttl_seconds", 300}});
    REQUIRE(status == 201);
    return cred["credential"];
  }
};

TEST_CASE("fts3_tokenizer() over HTTP is refused, to a read credential too; FTS still answers",
          "[security][sql]") {
  Fixture f;
  REQUIRE(f.Sql("CREATE VIRTUAL TABLE docs USING fts4(body); "
                "INSERT INTO docs VALUES ('hello world')")
              .first == 200);
  std::string reader = f.Credential("read");
  auto leak = f.Sql("SELECT hex(fts3_tokenizer('simple'))", reader);
  CHECK(leak.first == 403);
  CHECK(leak.second["error"]["code"] == "sql_forbidden");
  json pointer = json::array({sql::BlobToJson(std::string(8, '\x41'))});
  auto install = f.Sql("SELECT fts3_tokenizer('simple', ?)", reader, pointer);
  CHECK(install.first == 403);
  CHECK(install.second["error"]["code"] == "sql_forbidden");
  CHECK(f.Sql("SELECT fts3_tokenizer('simple', ?)", "", pointer).first == 403);
  auto search = f.Sql("SELECT body FROM docs WHERE docs MATCH 'hello'", reader);
  REQUIRE(search.first == 200);
  CHECK(search.second["results"][0]["rows"] == json::parse(R"([["hello world"]])"));

  // The same in one MCP call.
  json rpc = {{"jsonrpc", "2.0"},
              {"id", 1},
              {"method", "tools/call"},
              {"params",
               {{"name", "run_sql"},
                {"arguments",
                 {{"project", "shop"},
                  {"branch", "production"},
                  {"sql", "SELECT fts3_tokenizer('simple', ?)"},
                  {"params", pointer}}}}}};
  auto [status, answer] = f.Call("POST", "/mcp", rpc);
  REQUIRE(status == 200);
  CHECK(answer["result"]["isError"] == true);
  CHECK(answer["result"]["structuredContent"]["error"]["code"] == "sql_forbidden");
  CHECK(f.Sql("SELECT count(*) FROM docs WHERE docs MATCH 'world'").first == 200);
}

TEST_CASE("a TEMP trigger planted by one client does not touch another client's writes",
          "[security][sql]") {
  Fixture f;
  REQUIRE(f.Sql("CREATE TABLE accounts(owner TEXT, iban TEXT)").first == 200);
  // The attacker's script succeeds, but its TEMP objects end with it.
  auto plant = f.Sql(
      "CREATE TEMP TABLE loot(iban TEXT); "
      "CREATE TEMP TRIGGER capture AFTER INSERT ON accounts BEGIN "
      "  INSERT INTO loot VALUES (new.iban); "
      "  UPDATE accounts SET iban = 'ATTACKER' WHERE rowid = new.rowid; END");
  REQUIRE(plant.first == 200);
  CHECK(plant.second["lsn"].is_null());  // TEMP objects only: nothing to checkpoint

  std::string victim = f.Credential("read_write");
  REQUIRE(f.Sql("INSERT INTO accounts VALUES ('victim', 'DE89')", victim).first == 200);
  auto rows = f.Sql("SELECT owner, iban FROM accounts", victim);
  REQUIRE(rows.first == 200);
  CHECK(rows.second["results"][0]["rows"] == json::parse(R"([["victim", "DE89"]])"));
  // Nothing TEMP is left for anyone to see or read.
  auto temp = f.Sql("SELECT count(*) FROM temp.sqlite_schema", victim);
  REQUIRE(temp.first == 200);
  CHECK(temp.second["results"][0]["rows"] == json::parse("[[0]]"));
  CHECK(f.Sql("SELECT * FROM loot").second["error"]["code"] == "sql_error");
}

}  // namespace
}  // namespace branchdb::server
