// The annotation's and the script's encoding, written as text (catalog/
// annotation.cc), against the JSON document whose dump they replaced: the same
// bytes for every field, escapes, invalid UTF-8, truncated summaries and
// parameters that are not JSON, on fixed cases and random ones.
#include <openssl/evp.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "catalog/annotation.h"
#include "tests/util/test_env.h"

namespace branchdb::catalog {
namespace {

using ::branchdb::testing::TestSeed;

std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) == 1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xF];
  }
  return out;
}

std::string TruncateUtf8(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t end = n;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

// The encoder as it was: ordered documents, dumped.
std::pair<std::string, std::string> Reference(const Annotation& a) {
  std::string script;
  if (!a.sql.empty() && !a.sql_omitted &&
      a.sql.size() + a.params_json.size() <= kMaxScriptBytes) {
    nlohmann::ordered_json p;
    p["sql"] = a.sql;
    if (!a.params_json.empty()) {
      nlohmann::json params = nlohmann::json::parse(a.params_json, nullptr, false);
      if (params.is_discarded()) params = a.params_json;
      if (!params.is_null()) p["params"] = std::move(params);
    }
    script = Dump(p);
  }
  nlohmann::ordered_json j;
  j["v"] = 1;
  j["kind"] = a.kind;
  if (!a.client_id.empty()) j["client_id"] = a.client_id;
  if (!a.request_id.empty()) j["request_id"] = a.request_id;
  if (!a.summary.empty()) j["summary"] = TruncateUtf8(a.summary, kMaxSummaryBytes);
  if (a.rows != 0) j["rows"] = a.rows;
  if (!a.branch.empty()) j["branch"] = a.branch;
  if (a.target) j["target"] = *a.target;
  if (a.previous_head) j["previous_head"] = *a.previous_head;
  if (!script.empty()) {
    j["script_bytes"] = script.size();
    j["script_sha256"] = Sha256Hex(script);
  } else if (!a.sql.empty() || a.sql_omitted) {
    j["sql_omitted"] = true;
  }
  if (a.replay_of) j["replay_of"] = *a.replay_of;
  if (!a.source.empty()) j["source"] = a.source;
  if (!a.actions.empty()) j["actions"] = a.actions;
  return {Dump(j), script};
}

void CheckSame(const Annotation& a) {
  auto [annotation, script] = Reference(a);
  CHECK(EncodeAnnotation(a) == annotation);
  CHECK(EncodeScript(a) == script);
}

// Strings that exercise the escaper: plain ASCII, quotes and backslashes,
// control bytes, DEL, valid and invalid UTF-8, a sequence cut short.
const std::vector<std::string>& Samples() {
  static const std::vector<std::string> kSamples = {
      "",
      "INSERT INTO w(v) VALUES (?)",
      "say \"hi\" \\ back/slash",
      std::string("nul\0byte", 8),
      "tab\tnew\nline\rcr\x01\x1f\x7f",
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
      "bad \xff\xfe utf8 \xc3",
      "cut \xe2\x82",
  };
  return kSamples;
}

TEST_CASE("annotation: the text encoder writes the bytes the JSON document's dump wrote") {
  Annotation a;
  CheckSame(a);  // only v and kind
  for (const std::string& s : Samples()) {
    Annotation b;
    b.kind = s.empty() ? "sql" : s;
    b.client_id = s;
    b.request_id = s;
    b.summary = s;
    b.sql = s;
    b.params_json = "[" + nlohmann::json(s).dump(-1, ' ', false,
                                                nlohmann::json::error_handler_t::replace) + "]";
    b.branch = s;
    b.source = s;
    CheckSame(b);
  }
  Annotation all;
  all.client_id = "c1";
  all.request_id = "r1";
  all.summary = "INSERT";
  all.rows = -3;
  all.branch = "dev/alex";
  all.target = 41;
  all.previous_head = UINT64_MAX;
  all.sql = "INSERT INTO t VALUES(?)";
  all.replay_of = 0;
  all.source = "dev/alex";
  all.actions = {12, 15, 0};
  for (const char* params : {"", "null", "[1,\"x\"]", "{\"b\":1,\"a\":[2.5,-0.0,1e300]}", " [1, 2] ",
                             "not json", "[1,", "\"\xff\"", "123456789012345678901234567890"}) {
    all.params_json = params;
    CheckSame(all);
  }
  all.sql_omitted = true;
  CheckSame(all);
  Annotation big;
  big.sql = std::string(kMaxScriptBytes, 'x');
  big.params_json = "[1]";
  CheckSame(big);
  // A summary past kMaxSummaryBytes, cut before a multi-byte sequence.
  Annotation long_summary;
  long_summary.summary = std::string(kMaxSummaryBytes - 1, 's') + "\xe2\x82\xac tail";
  CheckSame(long_summary);
}

TEST_CASE("annotation: random annotations encode as the JSON document's dump did") {
  const uint64_t seed = TestSeed("annotation encoding");
  INFO("seed=" << seed);
  std::mt19937_64 rng(seed);
  auto text = [&] {
    std::string s;
    const size_t n = rng() % 12;
    for (size_t i = 0; i < n; ++i) {
      // Mostly printable ASCII, sometimes any byte.
      s += static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 0x20 + rng() % 95);
    }
    return s;
  };
  auto maybe = [&](auto value) { return rng() % 2 ? std::optional(value) : std::nullopt; };
  for (int i = 0; i < 2000; ++i) {
    Annotation a;
    a.kind = rng() % 4 ? "sql" : text();
    a.client_id = text();
    a.request_id = text();
    a.summary = text();
    a.rows = static_cast<int64_t>(rng() % 7) - 3;
    a.branch = text();
    a.target = maybe(rng());
    a.previous_head = maybe(rng() % 100);
    a.sql = text();
    a.params_json = rng() % 3 ? nlohmann::json::array({text(), rng() % 1000}).dump(
                                    -1, ' ', false, nlohmann::json::error_handler_t::replace)
                              : text();
    a.sql_omitted = rng() % 8 == 0;
    a.replay_of = maybe(rng() % 50);
    a.source = text();
    for (uint64_t n = rng() % 3; n > 0; --n) a.actions.push_back(rng() % 1000);
    CheckSame(a);
  }
}

// A random document: every JSON type, doubles of any magnitude (and NaN,
// which dumps as null), strings of any bytes, nested.
nlohmann::json RandomDocument(std::mt19937_64& rng, int depth) {
  switch (rng() % (depth > 0 ? 8 : 6)) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<int64_t>(rng());
    case 3: return rng();
    case 4: {
      double d;
      const uint64_t bits = rng();
      std::memcpy(&d, &bits, sizeof d);
      return rng() % 2 ? d : static_cast<double>(static_cast<int64_t>(rng() % 2001) - 1000) / 8;
    }
    case 5: {
      std::string s;
      for (uint64_t n = rng() % 8; n > 0; --n) s += static_cast<char>(rng() % 256);
      return s;
    }
    case 6: {
      nlohmann::json a = nlohmann::json::array();
      for (uint64_t n = rng() % 4; n > 0; --n) a.push_back(RandomDocument(rng, depth - 1));
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      for (uint64_t n = rng() % 4; n > 0; --n) {
        o[std::string(1, static_cast<char>('a' + rng() % 26))] = RandomDocument(rng, depth - 1);
      }
      return o;
    }
  }
}

TEST_CASE("annotation: parameters given as a document's dump go into the script as they are") {
  const uint64_t seed = TestSeed("annotation parameters");
  INFO("seed=" << seed);
  std::mt19937_64 rng(seed);
  Annotation a;
  a.sql = "INSERT INTO t VALUES (?)";
  a.params_json_is_dump = true;
  for (const char* params : {"", "null", "[1,\"x\"]", "{\"a\":[2.5,-0.0,1e+300]}"}) {
    a.params_json = params;
    CheckSame(a);
  }
  for (int i = 0; i < 5000; ++i) {
    a.params_json = RandomDocument(rng, 3).dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
    INFO("params " << a.params_json);
    CheckSame(a);
  }
}

}  // namespace
}  // namespace branchdb::catalog
