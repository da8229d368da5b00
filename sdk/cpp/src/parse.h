// Internal: JSON answers of the API -> the typed results of types.h.
// Each FromJson may throw nlohmann::json exceptions on a body of the wrong
// shape; Decode() turns those into kUnexpectedResponse errors. Unknown fields
// are ignored (and kept in `raw`).
#ifndef BRANCHDB_SDK_CPP_SRC_PARSE_H_
#define BRANCHDB_SDK_CPP_SRC_PARSE_H_

#include <string>
#include <vector>

#include "branchdb/error.h"
#include "branchdb/types.h"

namespace branchdb::client::internal {

void FromJson(const Json& j, Token& out);
void FromJson(const Json& j, TokenIntrospection& out);
void FromJson(const Json& j, ClientInfo& out);
void FromJson(const Json& j, NewClient& out);
void FromJson(const Json& j, Project& out);
void FromJson(const Json& j, Branch& out);
void FromJson(const Json& j, SqlResult& out);
void FromJson(const Json& j, Checkpoint& out);
void FromJson(const Json& j, CheckpointPage& out);
void FromJson(const Json& j, Usage& out);
void FromJson(const Json& j, AuditEvent& out);
void FromJson(const Json& j, AuditPage& out);
void FromJson(const Json& j, MoveResult& out);
void FromJson(const Json& j, PromoteResult& out);
void FromJson(const Json& j, SchemaInfo& out);
void FromJson(const Json& j, DiffResult& out);
void FromJson(const Json& j, Credential& out);
void FromJson(const Json& j, ComputeState& out);

// T from a JSON value; kUnexpectedResponse when it has another shape.
template <typename T>
Result<T> Decode(const Json& j, int http_status) {
  T out;
  try {
    if (!j.is_object()) throw std::invalid_argument("not a JSON object");
    FromJson(j, out);
  } catch (const std::exception& e) {
    return Error::UnexpectedResponse(http_status, std::string("unexpected answer: ") + e.what());
  }
  return out;
}

// The list under `key` ({"projects":[...]}) as T's.
template <typename T>
Result<std::vector<T>> DecodeList(const Json& j, const char* key, int http_status) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_array()) {
    return Error::UnexpectedResponse(http_status,
                                     std::string("unexpected answer: no list \"") + key + "\"");
  }
  std::vector<T> out;
  for (const Json& item : j[key]) {
    auto r = Decode<T>(item, http_status);
    if (!r.ok()) return r.error();
    out.push_back(std::move(r).value());
  }
  return out;
}

}  // namespace branchdb::client::internal

#endif  // BRANCHDB_SDK_CPP_SRC_PARSE_H_
