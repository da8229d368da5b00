// Item 14 of the hardening issue (#13): every integer read from a request is
// checked against its real range before it is used. The instance that broke:
// a ttl_seconds whose microseconds overflowed made a branch that expired at
// once (201, then its data deleted by the reaper). Its class: every integer
// field of every route's request in docs/openapi.yaml (and the documented
// range each must have), sent too large, too small, beyond 64 bits, beyond a
// double, as a float and as a non-number, against a real server: 400 naming
// the field, and nothing created or changed.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <climits>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/server/live_server.h"
#include "tests/server/openapi_yaml.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

class Api : public testing::LiveServer {
 public:
  Api() : token_(AdminToken()) {}

  // Sends body_text as is (it may hold what json cannot: 1e999999).
  std::pair<int, json> Send(const std::string& method, const std::string& path,
                            const std::string& body_text = "") {
    auto c = Client();
    httplib::Headers h{{"Authorization", "Bearer " + token_}};
    httplib::Result r = method == "get"     ? c.Get(path.c_str(), h)
                        : method == "patch" ? c.Patch(path.c_str(), h, body_text, "application/json")
                        : method == "delete" ? c.Delete(path.c_str(), h)
                                             : c.Post(path.c_str(), h, body_text, "application/json");
    REQUIRE(r);
    json body = json::parse(r->body, nullptr, false);
    return {r->status, body.is_discarded() ? json(r->body) : body};
  }
  std::pair<int, json> Call(const std::string& method, const std::string& path,
                            const json& body = json::object()) {
    return Send(method, path, method == "get" || method == "delete" ? "" : body.dump());
  }

  // Everything a request could have created or changed: projects, their
  // branches and every branch's checkpoints.
  json Snapshot() {
    json all = json::object();
    auto projects = Call("get", "/v1/projects");
    REQUIRE(projects.first == 200);
    all["projects"] = projects.second;
    auto clients = Call("get", "/v1/clients");  // no client created by a refused request
    REQUIRE(clients.first == 200);
    all["clients"] = clients.second;
    for (const auto& p : projects.second["projects"]) {
      std::string name = p["name"];
      auto branches = Call("get", "/v1/projects/" + name + "/branches");
      REQUIRE(branches.first == 200);
      all[name] = branches.second;
      for (const auto& b : branches.second["branches"]) {
        std::string path = "/v1/projects/" + name + "/branches/" + Encode(b["name"]) +
                           "/checkpoints?limit=1000";
        auto cps = Call("get", path);
        REQUIRE(cps.first == 200);
        all[name + "/" + b["name"].get<std::string>()] = cps.second;
      }
    }
    return all;
  }

  static std::string Encode(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
        out += static_cast<char>(c);
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", c);
        out += buf;
      }
    }
    return out;
  }

  std::string token_;
};

// One integer a request carries, as docs/openapi.yaml documents it.
struct IntField {
  std::string op;     // "post /v1/projects/{project}/branches"
  bool in_query;      // a query parameter, else a member of the JSON body
  std::string name;   // "limit", "ttl_seconds", "at.lsn"
  int64_t min, max;   // the documented range, both ends included
  bool number_ok;     // a time: any number in range is valid, not only integers
};

int64_t Bound(const json& schema, const char* key, const std::string& what) {
  INFO(what << ": document its " << key << " in docs/openapi.yaml");
  REQUIRE(schema.contains(key));
  return std::stoll(schema[key].get<std::string>());
}

// The integer (or integer-or-time) schema in node, or null.
json IntegerSchema(const json& doc, const json& node) {
  json s = testing::Resolve(doc, node);
  if (s.value("type", "") == "integer") return s;
  if (s.contains("oneOf")) {
    for (const auto& alt : s["oneOf"]) {
      std::string t = alt.value("type", "");
      if (t == "integer" || t == "number") return alt;
    }
  }
  return nullptr;
}

void CollectBody(const json& doc, const std::string& op, const json& schema,
                 const std::string& prefix, std::vector<IntField>* out) {
  json s = testing::Resolve(doc, schema);
  if (!s.contains("properties") || !s["properties"].is_object()) return;
  for (auto& [name, prop] : s["properties"].items()) {
    std::string full = prefix + name;
    json ints = IntegerSchema(doc, prop);
    if (!ints.is_null()) {
      out->push_back({op, false, full, Bound(ints, "minimum", op + " " + full),
                      Bound(ints, "maximum", op + " " + full), ints["type"] == "number"});
    } else {
      CollectBody(doc, op, prop, full + ".", out);
    }
  }
}

std::vector<IntField> DocumentedIntegers() {
  json doc = testing::ReadYaml(std::string(BRANCHDB_SOURCE_DIR) + "/docs/openapi.yaml");
  std::vector<IntField> out;
  for (auto& [path, ops] : doc["paths"].items()) {
    for (auto& [method, op] : ops.items()) {
      std::string id = method + " " + path;
      for (const auto& p : op.value("parameters", json::array())) {
        json param = testing::Resolve(doc, p);
        if (param.value("in", "") != "query") continue;
        json ints = IntegerSchema(doc, param["schema"]);
        if (ints.is_null()) continue;
        std::string name = param["name"];
        out.push_back({id, true, name, Bound(ints, "minimum", id + " " + name),
                       Bound(ints, "maximum", id + " " + name), false});
      }
      if (op.contains("requestBody") && op["requestBody"]["content"].contains("application/json")) {
        CollectBody(doc, id, op["requestBody"]["content"]["application/json"]["schema"], "",
                    &out);
      }
    }
  }
  return out;
}

// A request each operation accepts (on project "ints", branch "dev") but for
// the field under test; an operation with an integer field must be here.
struct BaseRequest {
  std::string path;
  json body;
};
const std::map<std::string, BaseRequest>& BaseRequests() {
  static const std::map<std::string, BaseRequest> base = {
      {"post /v1/clients", {"/v1/clients", {{"name", "ints"}, {"scopes", {"sql:read"}}}}},
      {"post /v1/projects", {"/v1/projects", {{"name", "ints-new"}}}},
      {"patch /v1/projects/{project}", {"/v1/projects/ints", json::object()}},
      {"post /v1/clients", {"/v1/clients", {{"name", "ints"}, {"scopes", {"sql:read"}}}}},
      {"get /v1/projects/{project}/audit", {"/v1/projects/ints/audit", nullptr}},
      {"get /v1/audit", {"/v1/audit", nullptr}},
      {"post /v1/projects/{project}/branches",
       {"/v1/projects/ints/branches", {{"name", "int-new"}, {"parent", "production"}}}},
      {"patch /v1/projects/{project}/branches/{branch}",
       {"/v1/projects/ints/branches/dev", json::object()}},
      {"get /v1/projects/{project}/branches/{branch}/checkpoints",
       {"/v1/projects/ints/branches/dev/checkpoints", nullptr}},
      {"post /v1/projects/{project}/branches/{branch}/checkpoints",
       {"/v1/projects/ints/branches/dev/checkpoints", {{"label", "int-label"}}}},
      {"post /v1/projects/{project}/branches/{branch}/rollback",
       {"/v1/projects/ints/branches/dev/rollback", json::object()}},
      {"post /v1/projects/{project}/branches/{branch}/promote",
       {"/v1/projects/ints/branches/dev/promote", {{"dry_run", true}}}},
      {"get /v1/projects/{project}/branches/{branch}/diff",
       {"/v1/projects/ints/branches/dev/diff?kind=schema&base=production", nullptr}},
      {"post /v1/projects/{project}/branches/{branch}/sql",
       {"/v1/projects/ints/branches/dev/sql", {{"sql", "SELECT 1"}}}},
      {"get /v1/projects/{project}/branches/{branch}/schema",
       {"/v1/projects/ints/branches/dev/schema", nullptr}},
      {"get /v1/projects/{project}/branches/{branch}/export",
       {"/v1/projects/ints/branches/dev/export", nullptr}},
      {"post /v1/projects/{project}/branches/{branch}/credentials",
       {"/v1/projects/ints/branches/dev/credentials", {{"access", "read"}}}},
  };
  return base;
}

// Raw JSON values outside f's range or not of its type.
std::vector<std::string> BadBodyValues(const IntField& f) {
  std::vector<std::string> v = {"18446744073709551615", "18446744073709551616",
                                "-9223372036854775809", "1e999999", "-1e999999",
                                "\"5\"", "true", "[1]", "{}"};
  if (f.max < INT64_MAX) v.push_back(std::to_string(f.max + 1));
  if (f.max < INT64_MAX) v.push_back("9223372036854775807");
  v.push_back("9223372036854775808");
  if (f.min > INT64_MIN) v.push_back(std::to_string(f.min - 1));
  if (f.min > INT64_MIN) v.push_back("-9223372036854775808");
  if (!f.number_ok) {
    for (const char* x : {"1.5", "1.0", "1e3", "-0.5", "1E2"}) v.push_back(x);
  }
  return v;
}

std::vector<std::string> BadQueryValues(const IntField& f) {
  std::vector<std::string> v = {"9223372036854775808", "18446744073709551616", "1.5", "1e3",
                                "abc", "", "+5", " 5", "5 ", "0x10", "5abc", "--1"};
  if (f.max < INT64_MAX) v.push_back(std::to_string(f.max + 1));
  if (f.min > INT64_MIN) v.push_back(std::to_string(f.min - 1));
  return v;
}

// The body of base with `name` ("a" or "a.b") set to raw.
std::string BodyWith(json body, const std::string& name, const std::string& raw) {
  const std::string placeholder = "__raw_value__";
  size_t dot = name.find('.');
  if (dot == std::string::npos) {
    body[name] = placeholder;
  } else {  // a member of a one-key object ("at", "to")
    body[name.substr(0, dot)] = {{name.substr(dot + 1), placeholder}};
  }
  std::string text = body.dump();
  text.replace(text.find("\"" + placeholder + "\""), placeholder.size() + 2, raw);
  return text;
}

void CheckRefused(const std::pair<int, json>& r, const IntField& f) {
  CHECK(r.first == 400);
  REQUIRE(r.second.is_object());
  std::string code = r.second["error"]["code"];
  std::string message = r.second["error"]["message"];
  INFO(message);
  CHECK((code == "invalid_argument" || code == "invalid_json"));
  if (code == "invalid_argument") {
    std::string leaf = f.name.substr(f.name.rfind('.') + 1);
    CHECK(message.find(leaf) != std::string::npos);
  }
}

TEST_CASE("every documented integer of every request is range-checked: 400 naming it, nothing "
          "created or changed",
          "[security][integers]") {
  std::vector<IntField> fields = DocumentedIntegers();
  // The walk found them (a YAML change that hides them fails here).
  REQUIRE(fields.size() >= 15);
  Api api;
  REQUIRE(api.Call("post", "/v1/projects", {{"name", "ints"}}).first == 201);
  REQUIRE(api.Call("post", "/v1/projects/ints/branches", {{"name", "dev"}, {"parent", "production"}})
              .first == 201);
  REQUIRE(api.Call("post", "/v1/projects/ints/branches/dev/sql", {{"sql", "CREATE TABLE t(a)"}})
              .first == 200);
  for (const IntField& f : fields) {
    INFO(f.op << (f.in_query ? " query " : " body ") << f.name << " [" << f.min << ".." << f.max
              << "]");
    INFO("give the operation a base request in BaseRequests()");
    REQUIRE(BaseRequests().count(f.op) == 1);
    const BaseRequest& base = BaseRequests().at(f.op);
    const std::string method = f.op.substr(0, f.op.find(' '));
    json before = api.Snapshot();
    if (f.in_query) {
      for (const std::string& v : BadQueryValues(f)) {
        INFO("value \"" << v << "\"");
        std::string path = base.path + (base.path.find('?') == std::string::npos ? "?" : "&") +
                           f.name + "=" + Api::Encode(v);
        CheckRefused(api.Send(method, path), f);
      }
    } else {
      for (const std::string& v : BadBodyValues(f)) {
        INFO("value " << v);
        CheckRefused(api.Send(method, base.path, BodyWith(base.body, f.name, v)), f);
      }
    }
    CHECK(api.Snapshot() == before);
  }
}

TEST_CASE("a ttl_seconds whose microseconds overflow is refused and creates no branch",
          "[security][integers]") {
  Api api;
  REQUIRE(api.Call("post", "/v1/projects", {{"name", "ttl"}}).first == 201);
  // 9223372036855 s * 10^6 passes INT64_MAX: it wrapped to a past expiry.
  auto r = api.Call("post", "/v1/projects/ttl/branches",
                    {{"name", "doomed"}, {"ttl_seconds", 9223372036855}});
  CHECK(r.first == 400);
  CHECK(r.second["error"]["message"].get<std::string>().find("ttl_seconds") != std::string::npos);
  CHECK(api.Call("get", "/v1/projects/ttl/branches/doomed").first == 404);
  // The same through PATCH leaves the branch as it was.
  REQUIRE(api.Call("post", "/v1/projects/ttl/branches", {{"name", "kept"}}).first == 201);
  CHECK(api.Call("patch", "/v1/projects/ttl/branches/kept", {{"ttl_seconds", 9223372036855}})
            .first == 400);
  CHECK(api.Call("get", "/v1/projects/ttl/branches/kept").second["expires_at"].is_null());
  // The largest ttl is accepted and expires a century from now, not at once.
  auto longest = api.Call("post", "/v1/projects/ttl/branches",
                          {{"name", "century"}, {"ttl_seconds", 3153600000LL}});
  REQUIRE(longest.first == 201);
  CHECK(std::stoi(longest.second["expires_at"].get<std::string>().substr(0, 4)) >= 2100);
}

TEST_CASE("a restore window whose microseconds wrap into the allowed range is refused",
          "[security][integers]") {
  Api api;
  // 18446744073710 s * 10^6 wraps (mod 2^64) to 448384 us, inside 0..35 days.
  CHECK(api.Call("post", "/v1/projects", {{"name", "wrap"}, {"restore_window_seconds", 18446744073710LL}})
            .first == 400);
  CHECK(api.Call("get", "/v1/projects/wrap").first == 404);
  REQUIRE(api.Call("post", "/v1/projects", {{"name", "wrap"}}).first == 201);
  CHECK(api.Call("patch", "/v1/projects/wrap", {{"restore_window_seconds", 18446744073710LL}})
            .first == 400);
  CHECK(api.Call("get", "/v1/projects/wrap").second["restore_window_seconds"] == 7 * 86400);
}

TEST_CASE("a PATCH refused for one field applies none of the others", "[security][integers]") {
  Api api;
  REQUIRE(api.Call("post", "/v1/projects", {{"name", "patch"}}).first == 201);
  REQUIRE(api.Call("post", "/v1/projects/patch/branches", {{"name", "dev"}}).first == 201);
  const std::string b = "/v1/projects/patch/branches/dev";
  CHECK(api.Call("patch", b, {{"protected", true}, {"ttl_seconds", 0}}).first == 400);
  CHECK(api.Send("patch", b, R"({"protected":true,"expires_at":1e300})").first == 400);
  CHECK(api.Send("patch", b, R"({"protected":true,"idle_timeout_seconds":-1})").first == 400);
  auto got = api.Call("get", b);
  CHECK(got.second["protected"] == false);
  CHECK(got.second["expires_at"].is_null());
}

TEST_CASE("SQL parameters beyond a double or beyond 64 bits answer 400; the int64 ends bind "
          "exactly",
          "[security][integers]") {
  Api api;
  REQUIRE(api.Call("post", "/v1/projects", {{"name", "params"}}).first == 201);
  const std::string sql = "/v1/projects/params/branches/production/sql";
  auto select = [&](const std::string& value) {
    return api.Send("post", sql, R"({"sql":"SELECT ?","params":[)" + value + "]}");
  };
  for (const char* v : {"1e999999", "-1e999999", "-9223372036854775809", "18446744073709551616",
                        "9223372036854775808", "18446744073709551615"}) {
    INFO(v);
    auto r = select(v);
    CHECK(r.first == 400);  // was 500 for 1e999999; an approximate double for the others
    CHECK((r.second["error"]["code"] == "invalid_json" ||
           r.second["error"]["code"] == "invalid_params"));
  }
  auto low = select("-9223372036854775808");
  REQUIRE(low.first == 200);
  CHECK(low.second["results"][0]["rows"][0][0].dump() == "-9223372036854775808");
  auto high = select("9223372036854775807");
  REQUIRE(high.first == 200);
  CHECK(high.second["results"][0]["rows"][0][0].dump() == "9223372036854775807");
  CHECK(select("1e308").first == 200);  // a double is still a double
  CHECK(select("1.5e2").first == 200);
}

}  // namespace
}  // namespace branchdb::server
