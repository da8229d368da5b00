// Encoding of checkpoint annotations (see annotation.h).
#include "catalog/annotation.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "storage/vfs/vfs.h"

namespace branchdb::catalog {
namespace {

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xF];
  }
  return out;
}

bool KeepsScript(const Annotation& a) {
  return !a.sql.empty() && !a.sql_omitted && a.sql.size() + a.params_json.size() <= kMaxScriptBytes;
}

std::string Dump(const nlohmann::ordered_json& j) {
  // Invalid UTF-8 in caller strings is replaced rather than thrown on.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Truncates s to at most n bytes without splitting a UTF-8 sequence.
std::string TruncateUtf8(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  size_t end = n;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return std::string(s.substr(0, end));
}

// The payload (script) and the annotation that names it by size and hash.
void EncodeParts(const Annotation& a, std::string* annotation, std::string* script) {
  script->clear();
  if (KeepsScript(a)) {
    nlohmann::ordered_json p;
    p["sql"] = a.sql;
    if (!a.params_json.empty()) {
      nlohmann::json params = nlohmann::json::parse(a.params_json, nullptr, false);
      if (params.is_discarded()) params = a.params_json;  // kept as text rather than lost
      if (!params.is_null()) p["params"] = std::move(params);
    }
    *script = Dump(p);
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
  if (!script->empty()) {
    j["script_bytes"] = script->size();
    j["script_sha256"] = Sha256Hex(*script);
  } else if (!a.sql.empty() || a.sql_omitted) {
    j["sql_omitted"] = true;
  }
  if (a.replay_of) j["replay_of"] = *a.replay_of;
  if (!a.source.empty()) j["source"] = a.source;
  if (!a.actions.empty()) j["actions"] = a.actions;
  *annotation = Dump(j);
}

}  // namespace

std::string EncodeAnnotation(const Annotation& a) {
  std::string annotation, script;
  EncodeParts(a, &annotation, &script);
  return annotation;
}

std::string EncodeScript(const Annotation& a) {
  std::string annotation, script;
  EncodeParts(a, &annotation, &script);
  return script;
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
  if (auto it = j.find("script_bytes"); it != j.end() && it->is_number_unsigned()) {
    a.script_bytes = it->get<uint64_t>();
  }
  str("script_sha256", &a.script_sha256);
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

Status LoadScript(const storage::PageStore& store, const storage::RecordInfo& r, Annotation* a) {
  if (a->script_bytes == 0 || !a->sql.empty()) return Status::OK();
  const std::string where = "the script of checkpoint " + std::to_string(r.lsn);
  auto payload = store.ReadPayload(r.lsn);
  if (!payload.ok()) return payload.status().WithContext("reading " + where);
  if (payload->size() != a->script_bytes || Sha256Hex(*payload) != a->script_sha256) {
    return Status::Corruption(where + " does not match the size and SHA-256 its record names");
  }
  nlohmann::json j = nlohmann::json::parse(*payload, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("sql") || !j["sql"].is_string()) {
    return Status::Corruption(where + " is not a script object");
  }
  a->sql = j["sql"].get<std::string>();
  if (auto it = j.find("params"); it != j.end() && !it->is_null()) {
    a->params_json = it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return Status::OK();
}

Status AnnotateNextCommit(sqlite3* db, const Annotation& a, int64_t max_branch_bytes) {
  std::string annotation, script;
  EncodeParts(a, &annotation, &script);
  if (max_branch_bytes > 0 && !script.empty()) {
    const storage::BranchBytes space = storage::BranchSpace(db);
    const uint64_t total = space.database + space.payloads + script.size();
    if (total > static_cast<uint64_t>(max_branch_bytes)) {
      return Status::ResourceExhausted(
          "the branch reached its size limit of " + std::to_string(max_branch_bytes) +
              " bytes: database " + std::to_string(space.database) + " + scripts kept for " +
              "replay " + std::to_string(space.payloads) + " + this script " +
              std::to_string(script.size()) + " bytes (kept scripts count until their "
              "checkpoints leave the restore window; send smaller scripts, or delete or "
              "reset the branch)",
          "branch_size_limit");
    }
  }
  return storage::SetNextCommitAnnotation(db, std::move(annotation), std::move(script));
}

}  // namespace branchdb::catalog
