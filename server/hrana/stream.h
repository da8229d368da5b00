// Hrana streams over HTTP: what lives between the requests of one stream, and
// the batons that name it.
//
// A stream belongs to one branch and one caller (owner: the principal's kind,
// client id and, for a database credential, its jti). Its baton is
// "<id>.<secret>": the secret is 128 random bits, new in every response, so a
// baton serves exactly one request; it is accepted only from the stream's
// owner, for the stream's branch. A stream is used by one request at a time.
//
// A stream outside a transaction holds no connection (its statements run on
// the branch's compute, as REST requests do). A stream whose statement opened
// a transaction (BEGIN) holds a connection of its own (db + sandbox) until the
// transaction ends, so that the transaction spans requests; other writers to
// the branch meanwhile get SQLITE_BUSY, readers read the last commit.
//
// Expiry: a stream not used for idle_timeout is expired by the table's sweeper
// thread: its connection is closed (an open transaction rolls back) and its
// baton answers STREAM_EXPIRED (for a while; then BATON_INVALID). A stream in
// use never expires.
//
// Thread-safety: StreamTable is safe for concurrent use; a checked-out Stream
// is used by the one request that holds it.
#ifndef BRANCHDB_SERVER_HRANA_STREAM_H_
#define BRANCHDB_SERVER_HRANA_STREAM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "base/env.h"
#include "base/mutex.h"
#include "base/status.h"
#include "server/sql/sandbox.h"
#include "storage/vfs/vfs.h"

namespace branchdb::server::hrana {

// The transaction a stream has open on its own connection, recorded for its
// checkpoint: the statements that ran in it (SQL and positional parameters,
// as a REST script replays them) and the connection's change count at BEGIN.
struct OpenTransaction {
  std::string sql;
  nlohmann::json params = nlohmann::json::array();
  bool replayable = true;  // false: a statement had named parameters
  int64_t changes_before = 0;
};

struct Stream {
  // Constant after Open().
  uint64_t id = 0;
  std::string project;
  std::string branch;
  std::string owner;

  // The request that checked the stream out owns these.
  std::unique_ptr<sql::Sandbox> sandbox;  // destroyed before db: it unhooks db
  storage::SqliteHandle db;               // own connection (a transaction open), or null
  OpenTransaction txn;
  std::map<int32_t, std::string> stored_sql;  // store_sql
  size_t stored_bytes = 0;

  // Closes the own connection (an open transaction rolls back).
  void DropConnection() {
    sandbox.reset();
    db.reset();
    txn = OpenTransaction();
  }
};

struct StreamTableOptions {
  Clock* clock = nullptr;  // required; not owned
  int64_t idle_timeout_seconds = 10;
  int max_streams = 1024;
  // How often the sweeper looks for idle streams; 0: no sweeper thread (tests
  // call Sweep()).
  int64_t sweep_interval_ms = 500;
};

class StreamTable {
 public:
  static Result<std::unique_ptr<StreamTable>> Create(StreamTableOptions options);
  // Stops the sweeper; closes every stream's connection.
  ~StreamTable();
  StreamTable(const StreamTable&) = delete;
  StreamTable& operator=(const StreamTable&) = delete;

  // A new stream of owner on project/branch, checked out. Unavailable
  // "STREAMS_EXHAUSTED" at max_streams.
  Result<std::shared_ptr<Stream>> Open(const std::string& project, const std::string& branch,
                                       const std::string& owner);
  // The stream baton names, checked out. Errors (InvalidArgument, reason the
  // Hrana code): BATON_INVALID (unknown, malformed, already used, another
  // owner or branch), STREAM_EXPIRED, BATON_REUSED (the stream is in use by
  // another request).
  Result<std::shared_ptr<Stream>> Checkout(const std::string& baton, const std::string& project,
                                           const std::string& branch, const std::string& owner);
  // Gives a checked-out stream back: its next baton, or "" when close (the
  // stream is forgotten and its connection closed).
  std::string Return(const std::shared_ptr<Stream>& stream, bool close);

  // Expires the streams idle past the timeout; returns how many.
  int Sweep();
  // Streams open now (not expired).
  int Count() const;

 private:
  struct Entry {
    std::shared_ptr<Stream> stream;
    std::string secret;
    bool in_use = false;
    bool expired = false;
    int64_t last_used_nanos = 0;
  };
  explicit StreamTable(StreamTableOptions options);
  void SweeperLoop();

  const StreamTableOptions options_;
  mutable Mutex mu_;
  std::map<uint64_t, Entry> entries_ GUARDED_BY(mu_);
  int open_ GUARDED_BY(mu_) = 0;
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  bool stopping_ GUARDED_BY(mu_) = false;
  CondVar stop_cv_;
  std::thread sweeper_;
};

}  // namespace branchdb::server::hrana

#endif  // BRANCHDB_SERVER_HRANA_STREAM_H_
