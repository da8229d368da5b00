// Internal to storage/vfs: the file objects behind the "branchdb" sqlite3_vfs.
//
//  - BranchFile: the main database of one timeline. Reads go to the PageStore
//    at the connection's snapshot; writes go to an overlay that
//    SQLITE_FCNTL_COMMIT_PHASETWO publishes as one PageStore::Commit.
//  - MemFile: an anonymous in-memory file, for the temporary files SQLite
//    asks for without a name (temp databases, sorter spills, transient
//    indexes). Nothing ever reaches the host file system.
//
// Not a public header: only storage/vfs/*.cc and the VFS tests include it.
#ifndef BRANCHDB_STORAGE_VFS_VFS_INTERNAL_H_
#define BRANCHDB_STORAGE_VFS_VFS_INTERNAL_H_

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/mutex.h"
#include "base/status.h"
#include "storage/page_store.h"
#include "storage/vfs/vfs.h"

namespace branchdb::storage::vfs_internal {

inline constexpr char kVfsName[] = "branchdb";
// An LSN that names no state: "SQLite's cache reflects no known state".
inline constexpr Lsn kNoLsn = ~Lsn{0};
// Page 1's bytes 24..39: the change counter and the 12 bytes after it, which
// SQLite compares to tell whether its page cache is still valid.
inline constexpr size_t kVersOffset = 24;
inline constexpr size_t kVersBytes = 16;

// What OpenConnection registers under a minted file name for xOpen to find.
struct OpenRequest {
  std::shared_ptr<PageStore> store;
  TimelineId timeline = 0;
  bool read_only = false;
  Lsn pinned_state = 0;  // read_only: the record LSN the connection reads
  bool pipelined_commits = false;  // ConnectionOptions::pipelined_commits
};

// The state of one main-database file (one SQLite connection). Its methods
// implement the sqlite3_io_methods slots of BranchFile and are called by the
// connection's thread only (SQLite holds the connection's mutex), except the
// atomics and last_error(), which any thread may read.
class BranchConnection {
 public:
  explicit BranchConnection(const OpenRequest& request);
  ~BranchConnection();  // releases a writer slot still held
  BranchConnection(const BranchConnection&) = delete;
  BranchConnection& operator=(const BranchConnection&) = delete;

  int Read(void* buf, int amt, sqlite3_int64 offset);
  int Write(const void* buf, int amt, sqlite3_int64 offset);
  int Truncate(sqlite3_int64 size);
  int FileSize(sqlite3_int64* size);
  int Lock(int level);
  int Unlock(int level);
  int CheckReservedLock(int* out);
  int FileControl(int op, void* arg);

  bool read_only() const { return read_only_; }
  void SetAnnotation(std::string annotation, std::string payload) {
    annotation_ = std::move(annotation);
    payload_ = std::move(payload);
  }
  BranchBytes space() const {
    return BranchBytes{static_cast<uint64_t>(db_size_) * kPageSize, store_->PayloadBytes(timeline_)};
  }
  Lsn last_commit_lsn() const { return last_commit_lsn_.load(); }
  Lsn snapshot_lsn() const { return snapshot_pub_.load(); }
  Lsn observed_lsn() const { return observed_.load(); }
  const std::shared_ptr<PageStore>& store() const { return store_; }
  Status last_error() const;

 private:
  int CommitTransaction();
  // Drops from the overlay every page but page 1 that the transaction wrote
  // back byte-identical to the snapshot's. True when the transaction changes
  // nothing at all: the size is the snapshot's and page 1, if written, differs
  // only in the bytes every commit rewrites; or the snapshot is empty and the
  // transaction wrote only the page 1 of an empty database. Otherwise a page 1
  // that differs only in those bytes (the change counter: SQLite bumps it at
  // every commit) leaves the overlay too, into *counter_only_page1, so that
  // the commit stores the pages that changed only, as WAL-mode SQLite does.
  bool DropUnchangedPages(std::string* counter_only_page1);
  int Pragma(char** args);
  // Loads snapshot_ = (state, size) for a new read transaction.
  int BeginSnapshot();
  // The state and size to read with no lock held (SQLite reads the header
  // once before locking when it opens the database).
  Status UnlockedState(Lsn* state, uint32_t* size);
  // True when `to` is reached from `from` by commits on this timeline only.
  bool IsLinearMove(Lsn from, Lsn to) const;
  // The stored (persisted-form) image of page pgno of `state` into
  // out[0, kPageSize); SQLITE_IOERR_READ with last_error_ set on a failure.
  int ReadStoredPage(PageNo pgno, Lsn state, char* out);
  // The stored (persisted-form) image of page pgno of `state` into page_buf_;
  // returns a pointer to kPageSize bytes, or nullptr with last_error_ set.
  const char* StoredPage(PageNo pgno, Lsn state);
  // The bytes of page 1 that Read serves (schema cookie shifted).
  void ServePage1(const char* page, size_t in_page, size_t n, char* dst);
  void NoteCookie(uint32_t cookie);
  // Raises observed_ to lsn (a state read at or committed).
  void Observe(Lsn lsn);
  bool AcquireWriterSlot();
  void ReleaseWriterSlot();
  int Fail(int rc, Status status);

  // Constant after construction.
  const std::shared_ptr<PageStore> store_;  // held until the connection closes
  const TimelineId timeline_;
  const bool read_only_;
  const Lsn pinned_state_;
  const bool pipelined_commits_;

  // Used by the connection's thread only.
  int lock_level_ = SQLITE_LOCK_NONE;
  bool holds_writer_slot_ = false;
  Lsn snapshot_ = kNoLsn;          // state read by the current/last transaction
  uint32_t snapshot_size_ = 0;     // its size in pages
  uint32_t db_size_ = 0;           // size including the overlay
  std::map<PageNo, std::string> overlay_;  // persisted form, whole pages
  std::optional<std::string> annotation_;
  std::string payload_;  // with annotation_
  // Cache invalidation (see docs/vfs.md): the state SQLite's page cache and
  // parsed schema reflect, and what SQLite last saw of page 1.
  Lsn cache_lsn_ = kNoLsn;
  bool force_reload_ = false;      // the next read transaction must drop the cache
  // The next read transaction must drop SQLite's page cache, while its
  // parsed schema may stay: the head moved by commits of this timeline that
  // need not have stored page 1 (its change counter may be one SQLite holds).
  bool stale_pages_ = false;
  // Page-1 version bytes (24..39) and schema cookie (40): as SQLite held them
  // when its current transaction began (its last full read of page 1, or its
  // last successful commit), and as it last wrote them since. SQLite holds
  // one of the two: the base after a rollback (it restores page 1 from its
  // journal), the written one after a failed commit.
  struct SeenPage1 {
    bool valid = false;
    unsigned char vers[kVersBytes] = {};
    uint32_t cookie = 0;
  };
  SeenPage1 seen_base_;
  SeenPage1 seen_written_;
  uint32_t cookie_delta_ = 0;      // served cookie = stored cookie + cookie_delta_
  // The largest schema cookie SQLite has seen from (or written to) this file.
  // SQLite's parsed schema carries one of the cookies it saw; after a
  // non-linear move the connection serves a larger one, so it must reload.
  bool cookie_seen_ = false;
  uint32_t max_cookie_seen_ = 0;
  // Page 1 of state page1_lsn_ (persisted form), to answer SQLite's 16-byte
  // change-counter check without a store read. After a commit of this
  // connection that left page 1 out (it differed from the stored one in the
  // change counter only), SQLite's own page 1 of that commit: the stored one
  // with SQLite's counter bytes, so that SQLite keeps its cache.
  Lsn page1_lsn_ = kNoLsn;
  std::string page1_;
  // The pages but page 1 of this connection's last commit, the versions the
  // store holds at committed_lsn_ (kept for commits of at most
  // kKeptCommitPages pages): the next commit compares its pages with them
  // without reading the store (a single-row INSERT rewrites the same leaf).
  static constexpr size_t kKeptCommitPages = 16;
  Lsn committed_lsn_ = kNoLsn;
  std::map<PageNo, std::string> committed_;
  std::string page_buf_;

  std::atomic<Lsn> last_commit_lsn_{0};
  std::atomic<Lsn> snapshot_pub_{0};
  std::atomic<Lsn> observed_{0};  // written by the connection's thread only
  mutable Mutex error_mu_;  // a leaf
  Status last_error_ GUARDED_BY(error_mu_);
};

// SQLite allocates pVfs->szOsFile bytes for every file and hands them to
// xOpen; both file kinds are constructed there with placement new and
// destroyed in xClose. Each begins with `sqlite3_file base;`.
struct BranchFile {
  sqlite3_file base;
  std::unique_ptr<BranchConnection> conn;
};

struct MemFile {
  sqlite3_file base;
  std::string data;
};

// Constructs a BranchFile in `file` (raw memory from SQLite).
int OpenBranchFile(const OpenRequest& request, sqlite3_file* file);
// Constructs a MemFile in `file`.
int OpenMemFile(sqlite3_file* file);

// The connection behind a main-database file, or nullptr when the file is
// not a BranchFile.
BranchConnection* ConnectionOf(sqlite3_file* file);

// For tests only: disables the stale-cache protection (force_reload_ and the
// schema-cookie shift), to show that the tests catch its absence. Default on.
void SetCacheInvalidationForTesting(bool enabled);

}  // namespace branchdb::storage::vfs_internal

#endif  // BRANCHDB_STORAGE_VFS_VFS_INTERNAL_H_
