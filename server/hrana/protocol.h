// Hrana over HTTP (libSQL's remote protocol, versions 2 and 3, JSON
// encoding): the requests and results of a pipeline, and their JSON codec.
// Pure data and functions: no connection, no stream, no HTTP (stream.h holds
// streams, route.cc the HTTP glue). docs/libsql.md describes what we speak.
//
// Values: a Hrana value ({"type":"null"|"integer"|"float"|"text"|"blob",...})
// is held as the SQL sandbox's parameter JSON (server/sql/sandbox.h): null,
// an int64 number, a double, a string, {"$blob": "<base64>"}. An integer
// travels as a decimal string (exact beyond 2^53); it must fit SQLite's 64
// bits. A blob's base64 may come without padding.
//
// Every decoding failure is a ProtocolError (a Hrana error with code
// "PROTO_ERROR" or "ARGS_INVALID"), naming the field; decoding never throws
// and never trusts a number: every integer field is range-checked.
//
// Thread-safety: pure functions.
#ifndef BRANCHDB_SERVER_HRANA_PROTOCOL_H_
#define BRANCHDB_SERVER_HRANA_PROTOCOL_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "server/sql/sandbox.h"

namespace branchdb::server::hrana {

// Limits of a decoded pipeline (past them: PROTO_ERROR).
inline constexpr size_t kMaxRequests = 1000;     // requests in one pipeline
inline constexpr size_t kMaxSteps = 1000;        // steps in one batch
inline constexpr size_t kMaxArgs = 999;          // SQLITE_LIMIT_VARIABLE_NUMBER
inline constexpr int kMaxConditionDepth = 32;    // nesting of not/and/or
inline constexpr int64_t kMaxSqlId = INT32_MAX;  // sql_id is a signed 32-bit integer

// A Hrana error: SQLite's message and a code (SQLite's result code name, e.g.
// "SQLITE_CONSTRAINT_PRIMARYKEY", or one of Hrana's: "PROTO_ERROR",
// "ARGS_INVALID", "STREAM_EXPIRED", ...).
struct Error {
  std::string message;
  std::string code;
};

struct Stmt {
  std::optional<std::string> sql;
  std::optional<int32_t> sql_id;
  nlohmann::json args = nlohmann::json::array();  // positional, sandbox values
  std::vector<std::pair<std::string, nlohmann::json>> named_args;
  bool want_rows = true;
};

struct BatchCond {
  enum class Kind { kOk, kError, kNot, kAnd, kOr, kIsAutocommit };
  Kind kind = Kind::kOk;
  uint32_t step = 0;             // kOk, kError
  std::vector<BatchCond> conds;  // kNot (one), kAnd, kOr
};

struct BatchStep {
  std::optional<BatchCond> condition;
  Stmt stmt;
};

struct StreamRequest {
  enum class Type {
    kClose,
    kExecute,
    kBatch,
    kSequence,
    kDescribe,
    kStoreSql,
    kCloseSql,
    kGetAutocommit
  };
  Type type = Type::kClose;
  Stmt stmt;                       // kExecute
  std::vector<BatchStep> steps;    // kBatch
  std::optional<std::string> sql;  // kSequence, kDescribe, kStoreSql
  std::optional<int32_t> sql_id;   // kSequence, kDescribe, kStoreSql, kCloseSql
};

struct Pipeline {
  std::optional<std::string> baton;
  std::vector<StreamRequest> requests;
};

// The JSON "type" of a request type ("execute", ...).
const char* TypeName(StreamRequest::Type type);

// Decodes a pipeline request body. version: 2 or 3 (get_autocommit and
// is_autocommit are version 3's). A malformed one: Error PROTO_ERROR (or
// ARGS_INVALID for a bad value), as a Status whose message is the error's and
// whose reason is its code.
Result<Pipeline> DecodePipeline(std::string_view body, int version);
// The same through a JSON document (exposed for tests): DecodePipeline takes
// it for every body but the common statement pipeline, which it decodes
// straight from the parser's events (the same answer, without the document).
Result<Pipeline> DecodePipelineDocument(std::string_view body, int version);
// One value (exposed for tests).
Result<nlohmann::json> DecodeValue(const nlohmann::json& value, const std::string& where);

// The Hrana value of a sandbox value (as rows hold them).
nlohmann::json EncodeValue(const nlohmann::json& value);
// A statement's result: {"cols":[{"name","decltype"}],"rows":[[value...]],
// "affected_row_count","last_insert_rowid"}; rows empty unless want_rows.
nlohmann::json EncodeStmtResult(const sql::StatementResult& result, bool want_rows);
// The same two as JSON text appended to *out, written without building a
// document: byte for byte what DumpJson (server/http/errors.h) makes of
// EncodeValue and EncodeStmtResult (keys sorted, invalid UTF-8 replaced).
void AppendValue(std::string* out, const nlohmann::json& value);
void AppendStmtResult(std::string* out, const sql::StatementResult& result, bool want_rows);
nlohmann::json EncodeError(const Error& error);

// The Hrana error of a failed statement: SQLite's message, and SQLite's
// result code name when SQLite itself refused (error.sqlite_code), else the
// sandbox's reason upper-cased ("READ_ONLY", "SQL_FORBIDDEN",
// "STATEMENT_TIMEOUT", ...).
Error ErrorFromScript(const sql::ScriptError& error);
// The Hrana error of any other Status: its message; code its reason
// upper-cased (or "INTERNAL").
Error ErrorFromStatus(const Status& status);
// A Status carrying a Hrana error (reason: the code), as DecodePipeline returns.
Status ProtocolError(const std::string& message, const std::string& code = "PROTO_ERROR");

// SQLite's name of an (extended) result code: "SQLITE_CONSTRAINT_UNIQUE",
// "SQLITE_BUSY", ...; the primary code's name for an extended one it does
// not know.
std::string SqliteCodeName(int code);

}  // namespace branchdb::server::hrana

#endif  // BRANCHDB_SERVER_HRANA_PROTOCOL_H_
