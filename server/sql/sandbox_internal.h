// Internal to server/sql: the state the authorizer and progress handler share
// with Sandbox::Execute. Not a public header.
#ifndef BRANCHDB_SERVER_SQL_SANDBOX_INTERNAL_H_
#define BRANCHDB_SERVER_SQL_SANDBOX_INTERNAL_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "server/sql/cpu_scheduler.h"
#include "server/sql/sandbox.h"

namespace branchdb::server::sql {

struct Sandbox::State {
  Clock* clock = nullptr;
  bool internal = false;         // our own BEGIN/COMMIT/ROLLBACK: authorizer allows all
  bool read_only = false;        // the running script is read-only
  int64_t deadline_nanos = 0;    // 0: no deadline
  bool timed_out = false;        // the progress handler interrupted
  bool cpu_wait = false;         // ... while the script waited for a run slot
  CpuScheduler::Run* run = nullptr;  // the running script's claim (Execute's), or null
  bool denied_read_only = false; // the last denial was a write in read-only mode
  std::string denial;            // why the authorizer last denied
  bool wrote = false;            // the authorizer allowed a write during this script
  bool settings_changed = false; // a script set a connection PRAGMA (restored after it)
  bool session = false;          // the running script is a session's (Script::session)
  // Session: the transaction control the last prepare asked for
  // (SQLITE_TRANSACTION's "BEGIN"/"COMMIT"/"ROLLBACK", SQLITE_SAVEPOINT's
  // "BEGIN"/"RELEASE"/"ROLLBACK" as "SAVEPOINT"/"RELEASE"/"ROLLBACK TO"); "" none.
  std::string txn_control;
  int last_rc = 0;               // SQLite's result code of the last SQLite failure
  // Connection settings as Attach found them, restored after a script set them.
  bool foreign_keys = false;
  bool recursive_triggers = false;
  // sqlite3_total_changes64 when the script began: changes() and
  // total_changes() count from here (no other request's counts show).
  int64_t total_changes_base = 0;
  // Our control statements ("BEGIN IMMEDIATE", "COMMIT", ...: string
  // literals, keyed by their text), prepared on first use and kept for the
  // connection's life, since parsing them again on every script cost about a
  // tenth of a point SELECT's server CPU (#20). Finalized by ~Sandbox.
  std::vector<std::pair<std::string, sqlite3_stmt*>> control;
  // The scripts of exactly one statement run last on this connection, kept
  // prepared (SQLITE_PREPARE_PERSISTENT) so that the next run of the same
  // text skips SQLite's parser and planner, as a client's prepared statement
  // does on PostgreSQL (#20). Keyed by the whole script's text and read_only
  // (the authorizer's only input that changes between scripts: a statement
  // prepared read-write is never run by a read-only script); wrote is what
  // the authorizer noted while preparing it, replayed on each use. SQLite
  // re-prepares a statement itself when the schema changed (and so runs the
  // authorizer again). At most kPreparedCacheSize, least recently used
  // first; reset with no bindings while cached; finalized by ~Sandbox.
  struct Prepared {
    std::string sql;
    bool read_only = false;
    bool wrote = false;
    bool one_read = false;  // IsOneRead: runs without our BEGIN/ROLLBACK around it
    sqlite3_stmt* stmt = nullptr;
  };
  static constexpr size_t kPreparedCacheSize = 16;
  static constexpr size_t kPreparedMaxSqlBytes = 4096;  // longer scripts are not kept
  std::vector<Prepared> prepared;
};

// The statement prepared for a script of exactly this text and the running
// script's read_only (State::prepared), taken out of the cache into *stmt
// (the caller owns it now), with what the authorizer noted when it was
// prepared in *wrote. False when there is none.
bool TakePrepared(Sandbox::State* st, const std::string& sql, sqlite3_stmt** stmt, bool* wrote);
// Blanks, ';' and SQL comments from p to end skipped.
const char* SkipBlanksAndComments(const char* p, const char* end);
// True when the script of exactly this text and this read_only is kept
// prepared (State::prepared) as a one-statement read (IsOneRead): Execute
// then runs it without a transaction of its own.
bool PreparedIsOneRead(const Sandbox::State* st, const std::string& sql, bool read_only);
// A script's one statement that only reads: SQLite says it writes nothing,
// the authorizer allowed no write while preparing it, and its text starts
// with SELECT, VALUES or WITH (so neither a PRAGMA such as optimize, whose
// nested SQL writes although SQLite calls the statement read-only, nor
// transaction control). Such a statement runs in the read transaction SQLite
// opens for it and closes when it is reset: the same snapshot as our BEGIN
// DEFERRED ... ROLLBACK, without two more statements, and without BEGIN
// IMMEDIATE's write lock for a read-write request (#20).
bool IsOneRead(sqlite3_stmt* stmt, const std::string& sql, bool wrote);
// Keeps stmt (a script's one statement, run to its end or cut; owned by the
// cache now) prepared for the next script of the same text: reset, its
// bindings cleared (no value of one request stays on the connection), the
// least recently used one finalized when the cache is full.
// read_only: the script's (what the authorizer saw when it was prepared).
void KeepPrepared(Sandbox::State* st, const std::string& sql, bool read_only, sqlite3_stmt* stmt,
                  bool wrote);

// Puts the connection back as Attach left it after a script: TEMP objects are
// dropped by Execute before COMMIT; this restores connection PRAGMAs a script
// set and last_insert_rowid(). Runs outside any transaction.
void ResetConnectionState(sqlite3* db, Sandbox::State* st);

}  // namespace branchdb::server::sql

#endif  // BRANCHDB_SERVER_SQL_SANDBOX_INTERNAL_H_
