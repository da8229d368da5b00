// StorePool: page stores that hold their files only while they are used, and
// that come back by themselves after a full disk.
//
// A pooled store (StorePool::Add) is a PageStore. Its first call opens the
// store of its directory (PageStore::Open, with recovery); CloseIdle() closes
// it again once no call has used it for a while, and opening a store when the
// process runs short of file descriptors first closes the least recently used
// idle ones. So file descriptors grow with the stores in use, not with every
// store that exists. Closing and reopening are invisible to callers: a pooled
// store's address stays valid for its whole life (VFS connections keep it),
// every durable state stays readable, and nothing else lives between calls.
// A store is closed only while no call is in it.
//
// Full disk: after a write found no space, a store refuses mutations with
// ResourceExhausted (reason "disk_full", see PageStore). The first mutation
// at least disk_full_retry_micros after the last attempt closes it, reopens it
// (recovery drops the bytes of the write that was never acknowledged) and runs
// on the reopened store: writes resume by themselves once space is free. A
// store stopped by a failed fsync (store_failed) is never closed or reopened:
// it keeps refusing mutations until the process restarts (fail-stop).
//
// Damage: a store whose files fail their checks (PageStore::Open returns
// Corruption) does not open: every call gets Unavailable (reason
// "store_damaged", with the open's message), and the open is tried again by
// the first call at least disk_full_retry_micros after the last attempt, so
// a store repaired by an operator comes back without a restart.
//
// Retirement: Retire(why) is for a store whose owner is going away (its
// project was deleted) while others still hold it: every later call fails
// with `why` and the store is never opened again; calls already in it finish.
// Its files close at once when it is idle, else when it is destroyed.
//
// Thread-safety: all methods are safe for concurrent use. Lock order: a
// store's own lock, then the pool's; other stores' locks only by try_lock.
// A pool must outlive its stores (the catalog's stores keep theirs alive
// through their shared owners' deleter).
#ifndef BRANCHDB_STORAGE_STORE_POOL_H_
#define BRANCHDB_STORAGE_STORE_POOL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/mutex.h"
#include "storage/page_store.h"

namespace branchdb::storage {

// File descriptors an open store needs: its LOCK file, the active segment and
// a reader or two.
inline constexpr uint64_t kStoreFileDescriptors = 4;

struct StorePoolOptions {
  // The clock (idle times, reopen interval). Default: Env::Default(). Not owned.
  Env* env = nullptr;
  // Descriptors kept free for the rest of the process (connections, SQLite
  // files): CheckRoom() (asked before a new store is made) fails when fewer
  // than this plus kStoreFileDescriptors would stay free once idle stores are
  // closed; an existing store opens as long as half of it stays free, so that
  // existing projects keep working when new ones are refused. Default: 64.
  uint64_t reserved_file_descriptors = 64;
  // Least time between two reopen attempts of a store stopped by a full disk
  // or found damaged. Default: 1 s.
  int64_t disk_full_retry_micros = 1000000;
};

class StorePool;

class PooledStore final : public PageStore {
 public:
  ~PooledStore() override;  // closes the store

  // Closes the store if it is open, no call is in it, no call used it after
  // last_use_micros (Env clock, monotonic) and it is not stopped by a failed
  // fsync. Returns whether it closed it.
  bool TryClose(int64_t last_use_micros = INT64_MAX);
  bool IsOpen() const;
  // Opens (recovers) the store now if it is closed, e.g. to report its errors.
  Status OpenNow();
  // Every later call that needs the store fails with why (which must not be
  // OK), now and for good; closes the store now if no call is in it. The
  // first reason stays.
  void Retire(Status why);
  bool retired() const { return retired_.load(std::memory_order_acquire); }

  Result<TimelineId> CreateTimeline(Lsn base, std::string_view annotation) override;
  Result<TimelineId> CreateTimeline(TimelineId ancestor, Lsn ancestor_lsn,
                                    std::string_view annotation) override;
  Result<Lsn> ResetTimeline(TimelineId t, Lsn expected_head, Lsn base,
                            std::string_view annotation) override;
  Status DropTimeline(TimelineId t) override;
  Result<TimelineInfo> GetTimeline(TimelineId t) const override;
  // Empty when the store cannot be opened (ListTimelinesOrError says why).
  std::vector<TimelineInfo> ListTimelines() const override;
  Result<std::vector<TimelineInfo>> ListTimelinesOrError() const;
  Result<Lsn> Head(TimelineId t) const override;
  Result<Lsn> Commit(TimelineId t, Lsn expected_head, const std::vector<PageWrite>& pages,
                     uint32_t db_size_pages, std::string_view annotation,
                     std::string_view payload = {}) override;
  Result<Lsn> CommitNoWait(TimelineId t, Lsn expected_head, const std::vector<PageWrite>& pages,
                           uint32_t db_size_pages, std::string_view annotation,
                           std::string_view payload = {}) override;
  // On the store as it is open now: a pending record of a store closed since
  // is durable when its reopen found it (recovery syncs what it reads).
  Status WaitDurable(Lsn lsn) override;
  Result<Lsn> ResolveLsn(TimelineId t, Lsn lsn) const override;
  Status ReadPage(TimelineId t, PageNo pgno, Lsn lsn, std::string* out) const override;
  Status ReadPageAt(Lsn state_lsn, PageNo pgno, std::string* out) const override;
  Status ReadPageInto(Lsn state_lsn, PageNo pgno, char* out) const override;
  Result<uint32_t> DbSize(TimelineId t, Lsn lsn) const override;
  Result<uint32_t> DbSizeAt(Lsn state_lsn) const override;
  Result<RecordInfo> GetRecord(Lsn lsn) const override;
  Result<std::string> ReadPayload(Lsn lsn) const override;
  Result<std::vector<RecordInfo>> History(TimelineId t, Lsn before, size_t limit) const override;
  Result<std::vector<RecordInfo>> OwnRecords(TimelineId t, Lsn before, size_t limit) const override;
  Result<Lsn> LsnAt(TimelineId t, int64_t time_micros) const override;
  Result<std::vector<PageNo>> ChangedPages(Lsn a, Lsn b) const override;
  Result<GcStats> Gc(const GcOptions& options) override;
  Result<SpaceUsage> Usage(TimelineId t) const override;
  // Without opening a closed store (sizes of its segment files).
  uint64_t DiskBytes() const override;
  // Opens a closed store (its counters are rebuilt by recovery); 0 when it
  // cannot be opened.
  uint64_t PayloadBytes(TimelineId t) const override;
  // Without opening a closed store: a closed store holds nothing in memory.
  uint64_t RecordMetadataBytes() const override;
  // Without opening a closed store: zeros when closed (its caches went
  // with it; an open starts them, and their counters, afresh).
  StoreStats Stats() const override;
  // Without opening a closed store: OK when closed, else the open store's.
  Status Health() const override;
  // Without opening a closed store, nor waiting for an open in progress:
  // what the last successful open found.
  std::vector<std::string> Damage() const override;
  // The error of the last open attempt: OK when it opened (the store may
  // have closed since, being idle) or was never opened. Does not wait for an
  // open in progress.
  Status OpenError() const;
  // 0 when the store cannot be opened.
  Lsn LastLsn() const override;
  // Without opening a closed store: the open store's, else what it was when
  // the store last closed (zeros when it never opened).
  DurablePoint DurableEnd() const override;

 private:
  friend class StorePool;
  PooledStore(StorePool* pool, const PageStoreOptions& options, std::string dir);

  // The open store, held open (shared) for one call; opened or reopened
  // first when needed. mutation: a write, which reopens a store stopped by a
  // full disk (see the file comment).
  struct Use {
    std::shared_lock<SharedMutex> lock;  // of mu_
    PageStore* store = nullptr;
  };
  Result<Use> Acquire(bool mutation) const EXCLUDES(mu_);
  // The Use of the store if it is open and needs no reopen; nothing otherwise.
  std::optional<Use> UseIfOpen(bool mutation) const EXCLUDES(mu_);
  bool NeedsReopenLocked() const REQUIRES_SHARED(mu_);
  Status OpenLocked() const REQUIRES(mu_);
  void CloseLocked() const REQUIRES(mu_);
  int64_t NowMicros() const;

  // Constant after construction.
  StorePool* const pool_;
  const PageStoreOptions options_;
  Env* const env_;
  const std::string dir_;

  // Shared: a call in the store; exclusive: open/close. Taken before the
  // pool's mu_ (an open makes room), and other stores' only by try-lock.
  mutable SharedMutex mu_;
  mutable std::unique_ptr<PageStore> store_ GUARDED_BY(mu_);  // null while closed
  mutable int64_t last_reopen_micros_ GUARDED_BY(mu_) = 0;
  mutable Status open_error_ GUARDED_BY(mu_);  // of the last open
  // What the last open found, for OpenError() and Damage(), under a leaf lock
  // of its own: reporting (/healthz, /metrics) never waits for a recovery.
  mutable Mutex report_mu_;
  mutable Status reported_open_error_ GUARDED_BY(report_mu_);
  mutable std::vector<std::string> damage_ GUARDED_BY(report_mu_);  // of the last good open
  mutable DurablePoint closed_durable_ GUARDED_BY(report_mu_);  // as the store last closed
  mutable std::atomic<int64_t> last_use_micros_{0};
  // Set once by Retire; retired_status_ is written (under retire_mu_) before
  // retired_ turns true and never changes after.
  std::atomic<bool> retired_{false};
  mutable Mutex retire_mu_;  // a leaf
  Status retired_status_ GUARDED_BY(retire_mu_);
};

class StorePool {
 public:
  explicit StorePool(const StorePoolOptions& options = {});
  StorePool(const StorePool&) = delete;
  StorePool& operator=(const StorePool&) = delete;
  ~StorePool();  // REQUIRES: every store of the pool is destroyed

  // The store of dir (options.env is the pool's env unless set), not opened
  // yet: its first call opens it (creating it if options allow).
  std::unique_ptr<PooledStore> Add(const PageStoreOptions& options, const std::string& dir);

  // Closes the stores no call used for idle_micros or more (Env clock);
  // returns how many.
  size_t CloseIdle(int64_t idle_micros);

  // OK when one more store can be opened while reserved_file_descriptors stay
  // free, after closing idle stores (least recently used first) if needed;
  // Unavailable (reason "too_many_open_files") otherwise, with the numbers.
  Status CheckRoom() { return MakeRoom(nullptr, options_.reserved_file_descriptors); }

  // Stores open now.
  size_t OpenCount() const { return open_count_.load(); }

 private:
  friend class PooledStore;
  // Closes idle stores other than `opening` until reserve + kStoreFileDescriptors
  // descriptors are free.
  Status MakeRoom(const PooledStore* opening, uint64_t reserve) EXCLUDES(mu_);
  void Register(PooledStore* store) EXCLUDES(mu_);
  void Unregister(PooledStore* store) EXCLUDES(mu_);

  const StorePoolOptions options_;
  Env* const env_;
  std::atomic<size_t> open_count_{0};
  // Taken after a store's mu_; under it, other stores' mu_ only by try-lock.
  Mutex mu_;
  std::set<PooledStore*> stores_ GUARDED_BY(mu_);
};

}  // namespace branchdb::storage

#endif  // BRANCHDB_STORAGE_STORE_POOL_H_
