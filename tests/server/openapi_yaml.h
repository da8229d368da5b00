// A reader for the YAML subset docs/openapi.yaml is written in (block
// mappings, two-space indents, single-line scalars, flow lists of scalars;
// every scalar a string or a boolean), and $ref resolution: what the tests
// that walk the documented API (tests/server/api_test.cc, the integer ranges
// of tests/security) read it with. Anything outside that subset (block
// scalars `|`/`>`, flow mappings, anchors, lines it cannot place) fails the
// test that reads it, naming the line: a reader that skipped what it did not
// understand would make those tests check less than the document says.
#ifndef BRANCHDB_TESTS_SERVER_OPENAPI_YAML_H_
#define BRANCHDB_TESTS_SERVER_OPENAPI_YAML_H_

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace branchdb::testing {

using json = nlohmann::json;

struct YamlLine {
  int indent;
  std::string text;
};

inline std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  size_t b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

inline nlohmann::json YamlScalar(std::string v) {
  v = Trim(v);
  if (!v.empty() && (v.front() == '|' || v.front() == '>' || v.front() == '{' ||
                     v.front() == '&' || v.front() == '*')) {
    FAIL("openapi_yaml.h does not read this YAML (block scalar, flow mapping, anchor "
         "or alias); write the value on one line: "
         << v);
  }
  if (v.size() >= 2 && ((v.front() == '\'' && v.back() == '\'') ||
                        (v.front() == '"' && v.back() == '"'))) {
    return v.substr(1, v.size() - 2);
  }
  if (!v.empty() && v.front() == '[') {
    json list = json::array();
    std::string inner = v.substr(1, v.size() - 2);
    std::stringstream ss(inner);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (!Trim(item).empty()) list.push_back(YamlScalar(item));
    }
    return list;
  }
  if (v == "true") return true;
  if (v == "false") return false;
  return v;
}

inline nlohmann::json YamlBlock(std::vector<YamlLine>& lines, size_t& i, int indent) {
  if (i < lines.size() && lines[i].text.rfind("- ", 0) == 0) {
    json seq = json::array();
    while (i < lines.size() && lines[i].indent == indent && lines[i].text.rfind("- ", 0) == 0) {
      std::string item = lines[i].text.substr(2);
      bool is_map = item.find(": ") != std::string::npos || item.back() == ':';
      if (is_map) {
        lines[i] = {indent + 2, item};
        seq.push_back(YamlBlock(lines, i, indent + 2));
      } else {
        seq.push_back(YamlScalar(item));
        ++i;
      }
    }
    return seq;
  }
  json map = json::object();
  while (i < lines.size() && lines[i].indent == indent && lines[i].text.rfind("- ", 0) != 0) {
    const std::string& t = lines[i].text;
    size_t sep = t.find(": ");
    if (sep == std::string::npos && t.back() != ':') {
      FAIL("openapi_yaml.h: not a 'key: value' or 'key:' line: " << t);
    }
    std::string key = sep == std::string::npos ? t.substr(0, t.size() - 1) : t.substr(0, sep);
    key = YamlScalar(key).get<std::string>();
    if (sep != std::string::npos) {
      map[key] = YamlScalar(t.substr(sep + 2));
      ++i;
      continue;
    }
    ++i;
    if (i < lines.size() && lines[i].indent > indent) {
      map[key] = YamlBlock(lines, i, lines[i].indent);
    } else {
      map[key] = nullptr;
    }
  }
  return map;
}

inline nlohmann::json ReadYaml(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<YamlLine> lines;
  std::string line;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    lines.push_back({static_cast<int>(line.find_first_not_of(' ')), t});
  }
  size_t i = 0;
  json doc = YamlBlock(lines, i, 0);
  if (i != lines.size()) {
    FAIL("openapi_yaml.h stopped before the end of " << path << ", at: " << lines[i].text);
  }
  return doc;
}

// Follows $ref ("#/components/schemas/X") until node is not a reference.
inline nlohmann::json Resolve(const nlohmann::json& doc, nlohmann::json node) {
  while (node.is_object() && node.contains("$ref")) {
    std::string ref = node["$ref"];  // "#/components/schemas/X"
    json at = doc;
    std::stringstream ss(ref.substr(2));
    std::string part;
    while (std::getline(ss, part, '/')) {
      if (!at.is_object() || !at.contains(part)) FAIL("unresolved $ref " << ref);
      json next = at[part];
      at = std::move(next);
    }
    node = at;
  }
  return node;
}

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_SERVER_OPENAPI_YAML_H_
