// Encoding of checkpoint annotations (see annotation.h).
#include "catalog/annotation.h"

#include <nlohmann/json.hpp>

#include "base/sha256.h"
#include "storage/vfs/vfs.h"

namespace branchdb::catalog {
namespace {

bool KeepsScript(const Annotation& a) {
  return !a.sql.empty() && !a.sql_omitted && a.sql.size() + a.params_json.size() <= kMaxScriptBytes;
}

template <typename Json>
std::string Dump(const Json& j) {
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

// The encoding is written as text, byte for byte what nlohmann's compact dump
// of the same ordered object writes (annotation_test compares the two): a
// commit's annotation is built on every committed SQL transaction, and the
// document (an ordered_map per object, its entries copied as it grows) cost
// more than the rest of the INSERT's SQL.

// s as a JSON string: verbatim between quotes when it is printable ASCII
// without '"' or '\\' (which the dump writes unchanged), else by the dump
// (escapes, UTF-8 checked, invalid bytes replaced).
void AppendString(std::string* out, std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7F || c == '"' || c == '\\') {
      *out += Dump(nlohmann::json(s));
      return;
    }
  }
  out->push_back('"');
  out->append(s);
  out->push_back('"');
}

void AppendKey(std::string* out, const char* key) {
  out->push_back(out->empty() ? '{' : ',');
  out->push_back('"');
  out->append(key);
  out->append("\":");
}

void AppendStringField(std::string* out, const char* key, std::string_view value) {
  AppendKey(out, key);
  AppendString(out, value);
}

template <typename Int>
void AppendIntField(std::string* out, const char* key, Int value) {
  AppendKey(out, key);
  out->append(std::to_string(value));
}

// {"sql":...,"params":...}: params omitted when null; parsed and dumped again
// unless they are a dump already (the same text: dumping what a dump parses
// to gives it back), and kept as a string when they are not JSON.
std::string EncodeScriptText(const Annotation& a) {
  std::string out;
  AppendStringField(&out, "sql", a.sql);
  if (a.params_json_is_dump) {
    if (!a.params_json.empty() && a.params_json != "null") {
      AppendKey(&out, "params");
      out += a.params_json;
    }
  } else if (!a.params_json.empty()) {
    nlohmann::json params = nlohmann::json::parse(a.params_json, nullptr, false);
    if (params.is_discarded()) params = a.params_json;  // kept as text rather than lost
    if (!params.is_null()) {
      AppendKey(&out, "params");
      out += Dump(params);
    }
  }
  out.push_back('}');
  return out;
}

// The payload (script) and the annotation that names it by size and hash.
void EncodeParts(const Annotation& a, std::string* annotation, std::string* script) {
  script->clear();
  if (KeepsScript(a)) *script = EncodeScriptText(a);
  std::string& j = *annotation;
  j.clear();
  j.reserve(256);
  AppendIntField(&j, "v", 1);
  AppendStringField(&j, "kind", a.kind);
  if (!a.client_id.empty()) AppendStringField(&j, "client_id", a.client_id);
  if (!a.request_id.empty()) AppendStringField(&j, "request_id", a.request_id);
  if (a.summary.size() > kMaxSummaryBytes) {
    AppendStringField(&j, "summary", TruncateUtf8(a.summary, kMaxSummaryBytes));
  } else if (!a.summary.empty()) {
    AppendStringField(&j, "summary", a.summary);
  }
  if (a.rows != 0) AppendIntField(&j, "rows", a.rows);
  if (!a.branch.empty()) AppendStringField(&j, "branch", a.branch);
  if (a.target) AppendIntField(&j, "target", *a.target);
  if (a.previous_head) AppendIntField(&j, "previous_head", *a.previous_head);
  if (!script->empty()) {
    AppendIntField(&j, "script_bytes", script->size());
    AppendStringField(&j, "script_sha256", Sha256Hex(*script));
  } else if (!a.sql.empty() || a.sql_omitted) {
    AppendKey(&j, "sql_omitted");
    j += "true";
  }
  if (a.replay_of) AppendIntField(&j, "replay_of", *a.replay_of);
  if (!a.source.empty()) AppendStringField(&j, "source", a.source);
  if (!a.actions.empty()) {
    AppendKey(&j, "actions");
    for (size_t i = 0; i < a.actions.size(); ++i) {
      j.push_back(i == 0 ? '[' : ',');
      j += std::to_string(a.actions[i]);
    }
    j.push_back(']');
  }
  j.push_back('}');
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
    a.params_json_is_dump = true;
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
    a->params_json_is_dump = true;
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
