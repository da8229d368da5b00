// Encoding of checkpoint annotations (see annotation.h).
#include "checkpoints/annotation.h"

#include <nlohmann/json.hpp>

namespace branchdb::checkpoints {
namespace {

// Truncates s to at most n bytes without splitting a UTF-8 sequence.
std::string TruncateUtf8(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  size_t end = n;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return std::string(s.substr(0, end));
}

}  // namespace

std::string EncodeAnnotation(const Annotation& a) {
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
  if (!a.sql.empty() || a.sql_omitted) {
    nlohmann::json params;
    if (!a.params_json.empty()) {
      params = nlohmann::json::parse(a.params_json, nullptr, false);
      if (params.is_discarded()) params = a.params_json;  // kept as text rather than lost
    }
    if (a.sql_omitted || a.sql.size() + a.params_json.size() > kMaxScriptBytes) {
      j["sql_omitted"] = true;
    } else {
      j["sql"] = a.sql;
      if (!params.is_null()) j["params"] = std::move(params);
    }
  }
  if (a.replay_of) j["replay_of"] = *a.replay_of;
  if (!a.source.empty()) j["source"] = a.source;
  if (!a.actions.empty()) j["actions"] = a.actions;
  // Invalid UTF-8 in caller strings is replaced rather than thrown on.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Annotation DecodeAnnotation(std::string_view bytes) {
  Annotation a;
  nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("v") || !j["v"].is_number_integer() ||
      j["v"].get<int64_t>() != 1) {
    if (!bytes.empty()) a.summary = TruncateUtf8(bytes, kMaxSummaryBytes);
    return a;
  }
  auto str = [&](const char* key, std::string* out) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) *out = it->get<std::string>();
  };
  str("kind", &a.kind);
  str("client_id", &a.client_id);
  str("request_id", &a.request_id);
  str("summary", &a.summary);
  str("branch", &a.branch);
  if (auto it = j.find("rows"); it != j.end() && it->is_number_integer()) {
    a.rows = it->get<int64_t>();
  }
  if (auto it = j.find("target"); it != j.end() && it->is_number_unsigned()) {
    a.target = it->get<uint64_t>();
  }
  if (auto it = j.find("previous_head"); it != j.end() && it->is_number_unsigned()) {
    a.previous_head = it->get<uint64_t>();
  }
  str("sql", &a.sql);
  if (auto it = j.find("params"); it != j.end() && !it->is_null()) {
    a.params_json = it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (auto it = j.find("sql_omitted"); it != j.end() && it->is_boolean()) {
    a.sql_omitted = it->get<bool>();
  }
  if (auto it = j.find("replay_of"); it != j.end() && it->is_number_unsigned()) {
    a.replay_of = it->get<uint64_t>();
  }
  str("source", &a.source);
  if (auto it = j.find("actions"); it != j.end() && it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_number_unsigned()) a.actions.push_back(v.get<uint64_t>());
    }
  }
  return a;
}

}  // namespace branchdb::checkpoints
