// The Hrana JSON codec (server/hrana/protocol.h): values exact beyond 2^53,
// base64 blobs with or without padding, every integer field range-checked,
// and malformed input answered with a clear Hrana error, never a crash.
#include "server/hrana/protocol.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <random>
#include <climits>
#include <string>
#include <vector>

#include "server/http/errors.h"
#include "tests/util/test_env.h"

namespace branchdb::server::hrana {
namespace {

using ::branchdb::testing::TestSeed;

using nlohmann::json;

// Decodes a v3 pipeline of one execute of `stmt` (JSON text).
Result<Pipeline> DecodeExecute(const std::string& stmt) {
  return DecodePipeline(R"({"requests":[{"type":"execute","stmt":)" + stmt + "}]}", 3);
}

// The Hrana error code a body is refused with ("" when it decodes).
std::string Refusal(const std::string& body, int version = 3) {
  auto p = DecodePipeline(body, version);
  return p.ok() ? "" : p.status().reason();
}

TEST_CASE("integers travel as decimal strings, exact beyond 2^53", "[hrana]") {
  auto v = DecodeValue(json{{"type", "integer"}, {"value", "9007199254740993"}}, "v");
  REQUIRE(v.ok());
  CHECK(v->get<int64_t>() == 9007199254740993ll);
  CHECK(EncodeValue(*v) == json{{"type", "integer"}, {"value", "9007199254740993"}});
  auto min = DecodeValue(json{{"type", "integer"}, {"value", "-9223372036854775808"}}, "v");
  REQUIRE(min.ok());
  CHECK(EncodeValue(*min)["value"] == "-9223372036854775808");
}

TEST_CASE("an integer past 64 bits or not decimal is ARGS_INVALID", "[hrana]") {
  for (const char* text : {"9223372036854775808", "-9223372036854775809", "1e3", "0x10", " 1", "",
                           "1.0", "99999999999999999999999999"}) {
    auto v = DecodeValue(json{{"type", "integer"}, {"value", text}}, "args[0]");
    INFO(text);
    REQUIRE_FALSE(v.ok());
    CHECK(v.status().reason() == "ARGS_INVALID");
    CHECK(v.status().message().find("args[0].value") != std::string::npos);
  }
  auto too_big =
      DecodeValue(json::parse(R"({"type":"integer","value":18446744073709551615})"), "v");
  CHECK_FALSE(too_big.ok());
}

TEST_CASE("blobs are base64, padding optional, bad base64 refused", "[hrana]") {
  auto padded = DecodeValue(json{{"type", "blob"}, {"base64", "AAH+/w=="}}, "v");
  auto bare = DecodeValue(json{{"type", "blob"}, {"base64", "AAH+/w"}}, "v");
  REQUIRE(padded.ok());
  REQUIRE(bare.ok());
  CHECK(*padded == *bare);
  CHECK(EncodeValue(*padded) == json{{"type", "blob"}, {"base64", "AAH+/w=="}});
  auto empty = DecodeValue(json{{"type", "blob"}, {"base64", ""}}, "v");
  REQUIRE(empty.ok());
  for (const char* bad : {"***", "A", "AAH+/w=x", "AA==AA=="}) {
    INFO(bad);
    auto v = DecodeValue(json{{"type", "blob"}, {"base64", bad}}, "v");
    REQUIRE_FALSE(v.ok());
    CHECK(v.status().reason() == "ARGS_INVALID");
  }
}

TEST_CASE("floats, text and null decode to the sandbox's values", "[hrana]") {
  auto f = DecodeValue(json{{"type", "float"}, {"value", 1}}, "v");
  REQUIRE(f.ok());
  CHECK(f->is_number_float());  // 1 is a float here: SQLite gets REAL 1.0
  CHECK(EncodeValue(*f) == json{{"type", "float"}, {"value", 1.0}});
  CHECK(EncodeValue(*DecodeValue(json{{"type", "text"}, {"value", "é"}}, "v")) ==
        json{{"type", "text"}, {"value", "é"}});
  CHECK(DecodeValue(json{{"type", "null"}}, "v")->is_null());
  CHECK(EncodeValue(json(nullptr)) == json{{"type", "null"}});
  for (const json& bad : {json{{"type", "float"}, {"value", "1"}}, json{{"type", "text"}},
                          json{{"type", "date"}, {"value", "x"}}, json("x"), json(1)}) {
    INFO(bad.dump());
    CHECK_FALSE(DecodeValue(bad, "v").ok());
  }
}

TEST_CASE("a statement has exactly one of sql and sql_id, within range", "[hrana]") {
  CHECK(DecodeExecute(R"({"sql":"SELECT 1"})").ok());
  CHECK(DecodeExecute(R"({"sql_id":2147483647})").ok());
  for (const char* stmt :
       {R"({})", R"({"sql":"x","sql_id":1})", R"({"sql_id":2147483648})", R"({"sql_id":-1})",
        R"({"sql_id":1.5})", R"({"sql_id":"1"})", R"({"sql":1})", R"({"sql":"x","want_rows":1})",
        R"({"sql":"x","args":{}})",
        R"({"sql":"x","named_args":[{"name":1,"value":{"type":"null"}}]})",
        R"({"sql":"x","named_args":[{"name":"a"}]})"}) {
    INFO(stmt);
    auto p = DecodeExecute(stmt);
    REQUIRE_FALSE(p.ok());
    CHECK_FALSE(p.status().message().empty());
  }
  auto p = DecodeExecute(
      R"({"sql":"x","named_args":[{"name":":a","value":{"type":"integer","value":"5"}}],"want_rows":false})");
  REQUIRE(p.ok());
  const Stmt& s = p->requests[0].stmt;
  CHECK(s.named_args[0].first == ":a");
  CHECK(s.named_args[0].second == 5);
  CHECK_FALSE(s.want_rows);
}

TEST_CASE("batch conditions are range-checked and bounded in depth", "[hrana]") {
  auto batch = [](const std::string& cond) {
    return R"({"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"x"},"condition":)" +
           cond + "}]}}]}";
  };
  CHECK(Refusal(batch(R"({"type":"ok","step":0})")).empty());
  CHECK(
      Refusal(
          batch(R"({"type":"and","conds":[{"type":"error","step":999},{"type":"is_autocommit"}]})"))
          .empty());
  CHECK(Refusal(batch(R"({"type":"ok","step":1000})")) == "PROTO_ERROR");
  CHECK(Refusal(batch(R"({"type":"ok","step":-1})")) == "PROTO_ERROR");
  CHECK(Refusal(batch(R"({"type":"ok"})")) == "PROTO_ERROR");
  CHECK(Refusal(batch(R"({"type":"not"})")) == "PROTO_ERROR");
  CHECK(Refusal(batch(R"({"type":"xor","conds":[]})")) == "PROTO_ERROR");
  // is_autocommit is Hrana 3's.
  CHECK(Refusal(batch(R"({"type":"is_autocommit"})"), 2) == "PROTO_ERROR");
  std::string deep = R"({"type":"ok","step":0})";
  for (int i = 0; i < 100; ++i) deep = R"({"type":"not","cond":)" + deep + "}";
  CHECK(Refusal(batch(deep)) == "PROTO_ERROR");
}

TEST_CASE("malformed pipelines are PROTO_ERROR, never a crash", "[hrana]") {
  for (const char* body :
       {"", "{", "[]", "null", R"({"requests":{}})", R"({"requests":[1]})",
        R"({"requests":[{"type":"nope"}]})", R"({"requests":[{"type":"execute"}]})",
        R"({"baton":5,"requests":[]})", R"({"requests":[{"type":"store_sql","sql_id":1}]})",
        R"({"requests":[{"type":"close_sql"}]})", R"({"requests":[{"type":"sequence"}]})",
        R"({"requests":[{"type":"batch","batch":{"steps":[1]}}]})", R"({"requests":[1e999]})"}) {
    INFO(body);
    CHECK(Refusal(body) == "PROTO_ERROR");
  }
  CHECK(Refusal(R"({"requests":[{"type":"get_autocommit"}]})", 2) == "PROTO_ERROR");
  CHECK(Refusal(R"({"requests":[{"type":"get_autocommit"}]})", 3).empty());
}

TEST_CASE("random mutations of a valid pipeline decode or fail cleanly", "[hrana]") {
  const std::string valid =
      R"({"baton":null,"requests":[{"type":"batch","batch":{"steps":[{"stmt":{"sql":"SELECT ?",)"
      R"("args":[{"type":"integer","value":"-12"},{"type":"blob","base64":"AQI="}],"want_rows":true}},)"
      R"({"condition":{"type":"or","conds":[{"type":"ok","step":0},{"type":"not","cond":{"type":"error","step":0}}]},)"
      R"("stmt":{"sql_id":3,"named_args":[{"name":"a","value":{"type":"float","value":2.5}}]}}]}},{"type":"close"}]})";
  REQUIRE(DecodePipeline(valid, 3).ok());
  const uint64_t seed = TestSeed("hrana_protocol_test decoders");
  INFO("seed " << seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const std::string alphabet = "{}[]\":,0123456789-.eE abtnulsfrq\\";
  for (int i = 0; i < 20000; ++i) {
    std::string body = valid;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k) {
      size_t at = rng() % body.size();
      switch (rng() % 3) {
        case 0:
          body[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          body.erase(at, 1 + rng() % 8);
          break;
        default:
          body.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
      }
    }
    auto p = DecodePipeline(body, 3);
    if (!p.ok()) {
      const std::string& code = p.status().reason();
      CHECK((code == "PROTO_ERROR" || code == "ARGS_INVALID"));
      CHECK_FALSE(p.status().message().empty());
    }
  }
}

// What DecodePipeline (events, or the document when it gives up) and
// DecodePipelineDocument make of `body`, as comparable text.
std::string Decoded(const Result<Pipeline>& p) {
  if (!p.ok()) return "error " + p.status().reason() + ": " + p.status().message();
  json out = {{"baton", p->baton ? json(*p->baton) : json(nullptr)}, {"requests", json::array()}};
  for (const StreamRequest& r : p->requests) {
    json named = json::array();
    for (const auto& [name, value] : r.stmt.named_args) named.push_back({name, value});
    out["requests"].push_back({{"type", TypeName(r.type)},
                               {"sql", r.stmt.sql ? json(*r.stmt.sql) : json(nullptr)},
                               {"sql_id", r.stmt.sql_id ? json(*r.stmt.sql_id) : json(nullptr)},
                               {"args", r.stmt.args},
                               {"named_args", named},
                               {"want_rows", r.stmt.want_rows},
                               {"steps", r.steps.size()},
                               {"req_sql", r.sql ? json(*r.sql) : json(nullptr)}});
  }
  return out.dump();
}

TEST_CASE("the statement pipeline decoded from events is what the document gives", "[hrana]") {
  const std::string valid =
      R"({"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT ?, ?, ?, ?, ?",)"
      R"("args":[{"type":"integer","value":"-12"},{"type":"text","value":"a\u00e9"},)"
      R"({"type":"float","value":2.5},{"type":"null"},{"type":"blob","base64":"AQI"}],)"
      R"("named_args":[],"want_rows":false}},{"type":"close"}]})";
  REQUIRE(DecodePipeline(valid, 2).ok());
  for (const std::string& body : std::vector<std::string>{
           valid, R"({"requests":[]})", R"({"baton":"b1","requests":[{"type":"close"}]})",
           R"({"requests":[{"stmt":{"sql":"SELECT 1"},"type":"execute"}]})",
           R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT 1","args":null}}]})",
           R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT 1","extra":1}}]})",
           R"({"requests":[{"type":"execute","stmt":{"sql":"SELECT 1","sql":"SELECT 2"}}]})",
           R"({"requests":[{"type":"execute","stmt":{"sql":null}}]})",
           R"({"requests":[{"type":"close","stmt":{"sql":"SELECT 1"}}]})",
           R"({"requests":[{"type":"execute","stmt":{"sql":"?","args":[{"type":"integer","value":"x"}]}}]})",
           R"({"requests":[{"type":"execute","stmt":{"sql":"?","args":[{"type":"float","value":1e999}]}}]})",
           R"({"requests":[{"type":"execute","stmt":{"sql":"?","args":[{"type":"integer","value":99999999999999999999}]}}]})",
           R"({"requests":[{"type":"execute","stmt":{"sql":"?","named_args":[{"name":"a","value":{"type":"null"}}]}}]})",
           R"({"requests":[{"type":"execute","stmt":{"sql":"?"}}]} x)", R"({"requests":[1]})",
           R"({"baton":5,"requests":[]})", R"({"requests":[{"type":"execute"}]})", "[]", ""}) {
    INFO(body);
    CHECK(Decoded(DecodePipeline(body, 2)) == Decoded(DecodePipelineDocument(body, 2)));
  }
  const uint64_t seed = TestSeed("hrana_protocol_test decoders");
  INFO("seed " << seed);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const std::string alphabet = "{}[]\":,0123456789-.eE abtnulsfrqx\\";
  for (int i = 0; i < 20000; ++i) {
    std::string body = valid;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
      size_t at = rng() % body.size();
      if (rng() % 2 == 0) {
        body[at] = alphabet[rng() % alphabet.size()];
      } else {
        body.erase(at, 1 + rng() % 4);
      }
    }
    INFO(body);
    CHECK(Decoded(DecodePipeline(body, 3)) == Decoded(DecodePipelineDocument(body, 3)));
  }
}

TEST_CASE("results carry cols with decltype, rows, counts and rowid as a string", "[hrana]") {
  sql::StatementResult r;
  r.columns = {"id", "expr"};
  r.decltypes = {"INTEGER", ""};
  r.rows = json::array({json::array({1, json{{"$blob", "AQ=="}}})});
  r.rows_affected = 3;
  r.last_insert_rowid = 9007199254740993ll;
  json out = EncodeStmtResult(r, true);
  CHECK(out["cols"] ==
        json::parse(R"([{"name":"id","decltype":"INTEGER"},{"name":"expr","decltype":null}])"));
  CHECK(out["rows"][0][0] == json{{"type", "integer"}, {"value", "1"}});
  CHECK(out["rows"][0][1] == json{{"type", "blob"}, {"base64", "AQ=="}});
  CHECK(out["affected_row_count"] == 3);
  CHECK(out["last_insert_rowid"] == "9007199254740993");
  CHECK(EncodeStmtResult(r, false)["rows"].empty());
}

TEST_CASE("results written as text are byte for byte the dumped document", "[hrana]") {
  sql::StatementResult r;
  r.columns = {"id", "name \"q\"", "f", "b", "n", "bad"};
  r.decltypes = {"INTEGER", "TEXT", "", "BLOB", ""};  // one short: the last has none
  r.rows = json::array(
      {json::array({INT64_MIN, "é\n\t\"\\", 0.1, json{{"$blob", "AQ=="}}, nullptr,
                    std::string("\xff\xfe")}),
       json::array({9007199254740993ll, "", -1.5e300, json{{"$blob", ""}}, nullptr, 1.0})});
  r.rows_affected = 7;
  r.last_insert_rowid = -3;
  for (bool want_rows : {true, false}) {
    std::string written;
    AppendStmtResult(&written, r, want_rows);
    CHECK(written == http::DumpJson(EncodeStmtResult(r, want_rows)));
  }
  for (const json& row : r.rows) {
    for (const json& v : row) {
      std::string written;
      AppendValue(&written, v);
      CHECK(written == http::DumpJson(EncodeValue(v)));
    }
  }
}

TEST_CASE("errors name SQLite's result code, or the sandbox's reason", "[hrana]") {
  CHECK(SqliteCodeName(SQLITE_CONSTRAINT_PRIMARYKEY) == "SQLITE_CONSTRAINT_PRIMARYKEY");
  CHECK(SqliteCodeName(SQLITE_IOERR_WRITE) == "SQLITE_IOERR");
  CHECK(SqliteCodeName(12345678) == "SQLITE_UNKNOWN");
  sql::ScriptError e{Status::PermissionDenied("this request is read-only", "read_only"), 0, "", 0};
  CHECK(ErrorFromScript(e).code == "READ_ONLY");
  e.sqlite_code = SQLITE_BUSY;
  CHECK(ErrorFromScript(e).code == "SQLITE_BUSY");
}

}  // namespace
}  // namespace branchdb::server::hrana
