// One pipeline request's work on a Hrana stream: runs its requests (execute,
// batch, sequence, describe, store_sql, close_sql, get_autocommit, close) on
// the stream's connection through the SQL sandbox, as the REST /sql route
// runs a script: the same sandbox, limits and statement timeout, and the same
// checkpoint annotation (server/sql/annotate.h) for every committed
// transaction:
//   - a statement outside a transaction runs on the branch's compute in a
//     transaction of its own: one checkpoint when it changed something,
//     annotated with its SQL and parameters;
//   - a statement that opens a transaction (BEGIN) moves the stream onto a
//     connection of its own (stream.h) for the life of the transaction; its
//     COMMIT makes one checkpoint annotated with every statement that ran in
//     it (replayable by promote unless one had named parameters).
//
// Thread-safety: a Session is used by the request that holds its stream.
#ifndef BRANCHDB_SERVER_HRANA_SESSION_H_
#define BRANCHDB_SERVER_HRANA_SESSION_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "server/compute/supervisor.h"
#include "server/hrana/protocol.h"
#include "server/hrana/stream.h"
#include "server/services.h"

namespace branchdb::server::hrana {

// Who runs the pipeline, already authorized for the stream's branch.
struct Caller {
  std::string client_id;
  std::string request_id;
  bool read_only = false;  // no sql:write (or a read credential): writes refused
};

class Session {
 public:
  // REQUIRES: stream checked out by this request.
  Session(Services& services, Stream& stream, Caller caller);
  // Finish()es.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The stream result of one request: {"type":"ok","response":{...}} or
  // {"type":"error","error":{"message","code"}}.
  nlohmann::json Run(const StreamRequest& request);
  // Run's result as JSON text appended to *out (byte for byte its DumpJson):
  // an execute's written directly, without building a document.
  void RunInto(const StreamRequest& request, std::string* out);
  // A close request ran: the stream ends with this pipeline.
  bool closed() const { return closed_; }
  // Ends the pipeline's use of connections: the compute is released (the
  // stream's own connection is closed as soon as its transaction ends).
  void Finish();
  // After Finish: waits until every state the pipeline's statements read or
  // committed is durable (their commits are pipelined: the branch was handed
  // on before their fsync). An error means none of them is acknowledged.
  Status WaitDurable();

  // The result of a batch (exposed for the cursor endpoint): per step, its
  // result or its error, or neither when its condition was false.
  struct StepOutcome {
    bool ran = false;
    bool ok = false;
    sql::StatementResult result;
    Error error;
  };
  std::vector<StepOutcome> RunBatch(const std::vector<BatchStep>& steps);

 private:
  // Runs one statement; on failure *error.
  bool Execute(const Stmt& stmt, sql::StatementResult* out, Error* error);
  bool ExecuteSql(const std::string& sql, const nlohmann::json& params, sql::StatementResult* out,
                  Error* error);
  // The connection a statement runs on: the stream's own, else the compute
  // (acquired on first use).
  Result<sql::Sandbox*> Connection();
  Status OpenOwnConnection();
  // The annotation of the commit a statement makes: its own (outside a
  // transaction: in_txn false), or its transaction's (a COMMIT).
  Status AnnotateCommit(sqlite3* db, const sql::Script& script, bool in_txn,
                        int64_t changes_before);
  // Appends a statement that ran in the stream's open transaction to its
  // record, as a REST script replays it: statements in order, positional
  // parameters consumed in order (named ones make it not replayable).
  void RecordInTransaction(const std::string& text, const nlohmann::json& params);
  // Closes the stream's own connection once no transaction is open on it.
  void ReleaseOwnConnectionIfDone();
  nlohmann::json Describe(const StreamRequest& r);
  nlohmann::json StoreSql(const StreamRequest& r);
  bool EvalCondition(const BatchCond& c, const std::vector<StepOutcome>& steps);
  bool Autocommit() const;
  Result<std::string> ResolveSql(const std::optional<std::string>& sql,
                                 const std::optional<int32_t>& sql_id) const;

  Services& s_;
  Stream& stream_;
  const Caller caller_;
  std::unique_ptr<compute::ComputeSupervisor::Lease> lease_;
  bool closed_ = false;
  // Approximate bytes of the rows answered so far: past max_result_bytes the
  // pipeline's further statements are not run (RESULT_TOO_LARGE).
  int64_t result_bytes_ = 0;
  // What the statements observed, per store: waited for by WaitDurable().
  std::vector<storage::PendingDurability> observed_;
};

}  // namespace branchdb::server::hrana

#endif  // BRANCHDB_SERVER_HRANA_SESSION_H_
