// Checkpoint annotations: the who/what facts of one committed action, stored
// verbatim in the PageStore commit record (RecordInfo::annotation), so that an
// acknowledged action always has its checkpoint, also after a crash.
//
// Encoding (version 1): one compact JSON object, keys in this order, optional
// keys omitted when empty/absent:
//   {"v":1,"kind":"sql","client_id":"c1","request_id":"r1","summary":"INSERT ...",
//    "rows":3,"branch":"dev/alex","target":41,"previous_head":57,
//    "sql":"INSERT ...; UPDATE ...","params":[1,"x"],"replay_of":12,
//    "source":"dev/alex","actions":[12,15]}
// kind is one of "sql" (a SQL transaction), "create" (a branch was created),
// "rollback", "reset" (reset from parent), "promote", "internal" (scratch
// states of the catalog itself; never listed). Readers ignore unknown keys
// (so records written with the keys added later, sql to actions, stay
// readable by older readers, and older records simply lack them).
// summary is truncated to kMaxSummaryBytes (on a UTF-8 boundary).
//
// Replay (Catalog::Promote): a "sql" record carries the full script ("sql")
// and its parameters ("params", any JSON value; omitted when null) so that the
// action can be run again on another branch. Record annotations are held in
// memory by the PageStore, so the script is kept only while
// sql.size() + params (as JSON text) <= kMaxScriptBytes; a larger action is
// recorded with "sql_omitted":true instead, and is not replayable.
//
// The server calls EncodeAnnotation() and passes the bytes to
// storage::SetNextCommitAnnotation(db, ...) right before COMMIT.
//
// Thread-safety: pure functions.
#ifndef BRANCHDB_CHECKPOINTS_ANNOTATION_H_
#define BRANCHDB_CHECKPOINTS_ANNOTATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace branchdb::checkpoints {

inline constexpr size_t kMaxSummaryBytes = 1024;
// Largest script (SQL text + parameters as JSON text) kept for replay: 1 MiB.
inline constexpr size_t kMaxScriptBytes = 1u << 20;

struct Annotation {
  std::string kind = "sql";
  std::string client_id;
  std::string request_id;
  std::string summary;  // e.g. the first statement of the script, abbreviated
  int64_t rows = 0;     // rows changed (sqlite3_total_changes delta)
  std::string branch;   // kind create: the new branch's name
  std::optional<uint64_t> target;         // rollback/reset/promote: the state moved to
  std::optional<uint64_t> previous_head;  // rollback/reset/promote: the head before
  // kind sql: the full script and its parameters (JSON text; empty: none), for
  // replay. Encoding drops both and sets sql_omitted when they exceed
  // kMaxScriptBytes together.
  std::string sql;
  std::string params_json;
  bool sql_omitted = false;
  std::optional<uint64_t> replay_of;  // kind sql: a replay (promote) of this LSN
  std::string source;                 // kind promote: the branch promoted
  std::vector<uint64_t> actions;      // kind promote: the source LSNs it carried

  // True when the record carries a script that Promote can replay.
  bool replayable() const { return kind == "sql" && !sql.empty() && !sql_omitted; }
};

// Compact JSON, as above. Never fails.
std::string EncodeAnnotation(const Annotation& a);

// Parses an annotation. Bytes that are empty or not a version-1 JSON object
// decode to a default Annotation (kind "sql", empty fields) with the raw bytes
// (up to kMaxSummaryBytes) as summary when non-empty; never fails.
Annotation DecodeAnnotation(std::string_view bytes);

}  // namespace branchdb::checkpoints

#endif  // BRANCHDB_CHECKPOINTS_ANNOTATION_H_
