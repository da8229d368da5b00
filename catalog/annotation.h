// Checkpoint annotations: the who/what facts of one committed action, stored
// in the PageStore commit record, so that an acknowledged action always has
// its checkpoint, also after a crash.
//
// A record holds two parts, written atomically in the same record:
//   - the annotation (RecordInfo::annotation), in the record's metadata,
//     which the store reads back (through a bounded cache) every time the
//     checkpoint is listed: small, bounded per commit whatever the script's size;
//   - for kind "sql", the script (SQL text and parameters) as the record's
//     payload: on disk only (PageStore::ReadPayload), read when promote
//     replays it. The annotation names it by size and SHA-256.
//
// Annotation encoding (version 1): one compact JSON object, keys in this
// order, optional keys omitted when empty/absent:
//   {"v":1,"kind":"sql","client_id":"c1","request_id":"r1","summary":"INSERT ...",
//    "rows":3,"branch":"dev/alex","target":41,"previous_head":57,
//    "script_bytes":1234,"script_sha256":"9f86...","replay_of":12,
//    "source":"dev/alex","actions":[12,15]}
// kind is one of "sql" (a SQL transaction), "create" (a branch was created),
// "rollback", "reset" (reset from parent), "promote", "internal" (scratch
// states of the catalog itself; never listed). Readers ignore unknown keys.
// summary is truncated to kMaxSummaryBytes (on a UTF-8 boundary).
// Records written before scripts moved to the payload carry the script inline
// ("sql", "params"); DecodeAnnotation still reads them.
//
// Script encoding (the payload): {"sql":"INSERT ...; UPDATE ...","params":[1,"x"]}
// (params omitted when null). A script is kept only while sql.size() +
// params (as JSON text) <= kMaxScriptBytes; a larger action is recorded with
// "sql_omitted":true instead, and is not replayable.
//
// The server calls AnnotateNextCommit(db, a, max_branch_bytes) right before
// COMMIT; scripts kept count against the branch's size quota.
//
// Thread-safety: pure functions, except AnnotateNextCommit (the connection's
// thread) and LoadScript (PageStore calls, thread-safe).
#ifndef BRANCHDB_CATALOG_ANNOTATION_H_
#define BRANCHDB_CATALOG_ANNOTATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "storage/page_store.h"

struct sqlite3;

namespace branchdb::catalog {

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
  // replay. They go to the record's payload (EncodeScript), not its
  // annotation; encoding drops both and sets sql_omitted when they exceed
  // kMaxScriptBytes together. Decoding a record's annotation leaves them empty
  // (except for records from before payloads) until LoadScript reads them.
  std::string sql;
  std::string params_json;
  // params_json is the compact dump of a JSON document (error handler
  // "replace": what AnnotateScript, DecodeAnnotation and LoadScript write),
  // which the script takes as it is. False: the script parses it and dumps it
  // again, and keeps it as a string when it is not JSON.
  bool params_json_is_dump = false;
  bool sql_omitted = false;
  // kind sql: size and SHA-256 (lowercase hex) of the script in the payload;
  // set by decoding; 0/empty when the record keeps no script there.
  uint64_t script_bytes = 0;
  std::string script_sha256;
  std::optional<uint64_t> replay_of;  // kind sql: a replay (promote) of this LSN
  std::string source;                 // kind promote: the branch promoted
  std::vector<uint64_t> actions;      // kind promote: the source LSNs it carried

  // True when the record carries a script that Promote can replay (inline, or
  // in its payload).
  bool replayable() const {
    return kind == "sql" && !sql_omitted && (!sql.empty() || script_bytes > 0);
  }
};

// The annotation's compact JSON, as above (the script only by size and hash).
// Never fails.
std::string EncodeAnnotation(const Annotation& a);

// The payload: the script and its parameters as JSON; empty when a keeps no
// script (not kind sql, no SQL, or omitted / past kMaxScriptBytes).
std::string EncodeScript(const Annotation& a);

// Parses an annotation. Bytes that are empty or not a version-1 JSON object
// decode to a default Annotation (kind "sql", empty fields) with the raw bytes
// (up to kMaxSummaryBytes) as summary when non-empty; never fails.
Annotation DecodeAnnotation(std::string_view bytes);

// Fills a->sql and a->params_json from the script of record r (decoded into
// *a by DecodeAnnotation): read from the record's payload, its SHA-256 checked
// against the annotation's (Corruption otherwise). OK and nothing changes when
// the record keeps no script in a payload.
Status LoadScript(const storage::PageStore& store, const storage::RecordInfo& r, Annotation* a);

// Sets a as the annotation of db's next commit (storage::SetNextCommitAnnotation),
// its script as the record's payload. With max_branch_bytes > 0 a script is
// counted against the branch's size: ResourceExhausted (reason
// "branch_size_limit") when the database size, the payloads the branch keeps
// and this script together exceed it. REQUIRES: db is a read-write branchdb
// connection inside the transaction to be committed.
Status AnnotateNextCommit(sqlite3* db, const Annotation& a, int64_t max_branch_bytes = 0);

}  // namespace branchdb::catalog

#endif  // BRANCHDB_CATALOG_ANNOTATION_H_
