// The branchdb SQLite VFS: every branch is a real SQLite database whose pages
// live in a PageStore.
//
// A connection opens the database of one timeline: read-write at the head, or
// read-only as of an LSN (time travel). Reads go to the PageStore at the
// connection's snapshot LSN, taken when SQLite takes its SHARED lock. The
// writes of a transaction are kept in an overlay and published as one
// PageStore::Commit at SQLITE_FCNTL_COMMIT_PHASETWO; a transaction that never
// reaches it leaves no trace, and an error there makes the COMMIT fail with the
// branch unchanged. A transaction that changes nothing (SQLite wrote pages back
// unchanged) commits nothing, and a commit carries only the pages it changed.
// journal_mode=MEMORY is forced; WAL, OFF and page-size changes are refused.
// When a timeline's head moves under an open connection (ResetTimeline by
// another component, or another connection's commit), the connection never
// serves a stale page.
//
// One writer per timeline at a time (in this process): a second writer gets
// SQLITE_BUSY. Read-only connections pinned at an LSN read concurrently.
// With ConnectionOptions::pipelined_commits, a COMMIT returns before its
// commit is durable, and the next transaction may read and build on it:
// WaitDurable(db) is then what acknowledges a transaction.
//
// Thread-safety: the functions here are thread-safe; a connection is used by
// one thread at a time, as SQLite requires.
#ifndef BRANCHDB_STORAGE_VFS_VFS_H_
#define BRANCHDB_STORAGE_VFS_VFS_H_

#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "storage/page_store.h"

struct sqlite3;

namespace branchdb::storage {

// Closes a connection with sqlite3_close_v2.
struct SqliteCloser {
  void operator()(sqlite3* db) const;
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

struct ConnectionOptions {
  // The store. Required. Shared: the connection holds it until it closes, so
  // whoever else owns the store may let it go before the connection does.
  std::shared_ptr<PageStore> store;
  // The timeline whose database to open. Required.
  TimelineId timeline = 0;
  // Default (unset): read-write, at the head. Set: read-only, the state of the
  // timeline as of this LSN (ResolveLsn); never moves.
  std::optional<Lsn> as_of;
  // Set: read-only at exactly state(state), any record LSN of the store,
  // whether or not it is on a timeline's current history (a former head, a
  // rolled-back state); timeline may then be 0. Takes precedence over as_of.
  std::optional<Lsn> state;
  // SQLite page cache size in pages (PRAGMA cache_size). Default: 2000.
  int cache_pages = 2000;
  // Read-write connections: commit with PageStore::CommitNoWait, so that
  // SQLite's COMMIT returns (and the branch's write lock is free for the next
  // writer) once the commit is in the log, before it is durable (early lock
  // release; its fsync is shared with the commits that follow). The caller
  // must then call WaitDurable(db) after the transaction and before it tells
  // anyone what the connection wrote or read. Default: false (COMMIT returns
  // once durable).
  bool pipelined_commits = false;
};

// Registers the "branchdb" VFS with SQLite (not as default). Idempotent.
Status RegisterVfs();

// Opens a connection through the VFS (registering it if needed), with
// journal_mode=MEMORY set and page size 4096 for a new database.
// InvalidArgument for a missing store/timeline, NotFound for an unknown
// timeline, an as_of before its history, or a state that is not (or no longer)
// in the store.
Result<SqliteHandle> OpenConnection(const ConnectionOptions& options);

// Bytes to store as the annotation of this connection's next commit, and its
// payload (kept on disk only: PageStore::Commit, ReadPayload); both consumed
// by it. Only for read-write connections.
Status SetNextCommitAnnotation(sqlite3* db, std::string annotation, std::string payload = {});

// What a connection's branch holds against a size quota: its database size
// (including the writes of the open transaction) and the payloads its
// timeline's live records keep (PageStore::PayloadBytes). Zeros when db is not
// a branchdb connection. Call on the connection's thread.
struct BranchBytes {
  uint64_t database = 0;
  uint64_t payloads = 0;
};
BranchBytes BranchSpace(sqlite3* db);

// LSN of the last commit this connection made; 0 if none.
Lsn LastCommitLsn(sqlite3* db);

// The LSN of the state the connection reads now (or read in its last
// transaction).
Lsn SnapshotLsn(sqlite3* db);

// The highest LSN this connection has observed: the newest state it read at
// (also before SQLite took its lock) or committed (durable or not). 0 if none.
Lsn ObservedLsn(sqlite3* db);

// What a connection has observed, to wait for after the connection is
// handed on (another thread may use it meanwhile): Wait() is
// PageStore::WaitDurable(lsn) on its store (OK when store is null).
struct PendingDurability {
  std::shared_ptr<PageStore> store;
  Lsn lsn = 0;
  Status Wait() const { return store == nullptr ? Status::OK() : store->WaitDurable(lsn); }
};
// Of db's ObservedLsn(db); empty (nothing to wait for) when db is not a
// branchdb connection. Call on the connection's thread.
PendingDurability ObservedDurability(sqlite3* db);

// Waits until every state this connection has observed is durable
// (ObservedDurability(db).Wait()): so that a reader that saw a pending
// commit, and the writer of one, report nothing a crash could take back.
// Call after the transaction ended (SQLite released the branch's lock).
// Fails as PageStore::WaitDurable does when the store could not make it
// durable: the commit (and every commit built on it) is then not
// acknowledged. OK when db is not a branchdb connection.
Status WaitDurable(sqlite3* db);

// Added by the VFS implementation: the cause of this connection's last VFS
// failure, with its message (SQLite itself only reports a code such as
// SQLITE_IOERR_WRITE or SQLITE_BUSY_SNAPSHOT, "disk I/O error"). E.g. after a
// failed COMMIT: Conflict (reason "head_moved") when the branch moved under
// the transaction, IOError when the store could not make it durable. OK when
// there was none since the connection's last successful commit, or when db is
// not a branchdb connection.
Status LastVfsError(sqlite3* db);

}  // namespace branchdb::storage

#endif  // BRANCHDB_STORAGE_VFS_VFS_H_
