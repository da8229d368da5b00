// PageStoreImpl: the implementation of PageStore (internal to storage/).
// Split by concern: page_store_open.cc (Open, recovery), page_store_write.cc
// (validation, group commit, segments), page_store_read.cc (reads, history),
// page_store_gc.cc (GC, compaction, usage).
//
// Locking (the annotations below are checked by clang, tests/threads):
// gc_mu_ serializes GCs; mu_ guards the write queue and the "pending" view of
// timelines that mutations are validated against; state_mu_ (shared for
// readers) guards the durable view: records, runs, timelines, the page index
// and the segment table; files_mu_ guards the open segment files; damage_mu_
// the damage reads found. Order: gc_mu_, mu_, state_mu_, files_mu_ (then the
// caches' own locks and damage_mu_, leaves). No file is read under state_mu_
// (a read takes the file's handle under it, and reads after releasing it).
// Only the group-commit leader (or GC, which excludes leaders) touches the
// active segment file: that is a protocol on gc_running_, not a lock.
#ifndef BRANCHDB_STORAGE_PAGE_STORE_IMPL_H_
#define BRANCHDB_STORAGE_PAGE_STORE_IMPL_H_

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/mutex.h"
#include "storage/log_format.h"
#include "storage/page_index.h"
#include "storage/page_store.h"
#include "storage/record_table.h"

namespace branchdb::storage::internal {

struct CompactionOutput;  // page_store_gc.cc

// The error of an fsync (of a file or a directory) as the store reports it:
// IOError store_failed whatever the errno (ENOSPC included), since the data's
// durability is unknown after it (fail-stop). OK stays OK.
Status SyncError(Status s);

class PageStoreImpl final : public PageStore {
 public:
  PageStoreImpl(const PageStoreOptions& options, std::string dir);
  ~PageStoreImpl() override;

  // Called once by PageStore::Open.
  Status Recover();

  Result<TimelineId> CreateTimeline(Lsn base, std::string_view annotation) override;
  Result<TimelineId> CreateTimeline(TimelineId ancestor, Lsn ancestor_lsn,
                                    std::string_view annotation) override;
  Result<Lsn> ResetTimeline(TimelineId t, Lsn expected_head, Lsn base,
                            std::string_view annotation) override;
  Status DropTimeline(TimelineId t) override;
  Result<TimelineInfo> GetTimeline(TimelineId t) const override;
  std::vector<TimelineInfo> ListTimelines() const override;
  Result<Lsn> Head(TimelineId t) const override;

  Result<Lsn> Commit(TimelineId t, Lsn expected_head, const std::vector<PageWrite>& pages,
                     uint32_t db_size_pages, std::string_view annotation,
                     std::string_view payload = {}) override;

  Result<Lsn> ResolveLsn(TimelineId t, Lsn lsn) const override;
  Status ReadPage(TimelineId t, PageNo pgno, Lsn lsn, std::string* out) const override;
  Status ReadPageAt(Lsn state_lsn, PageNo pgno, std::string* out) const override;
  Status ReadPageInto(Lsn state_lsn, PageNo pgno, char* out) const override;
  Result<uint32_t> DbSize(TimelineId t, Lsn lsn) const override;
  Result<uint32_t> DbSizeAt(Lsn state_lsn) const override;

  Result<RecordInfo> GetRecord(Lsn lsn) const override;
  Result<std::string> ReadPayload(Lsn lsn) const override;
  Result<std::vector<RecordInfo>> History(TimelineId t, Lsn before, size_t limit) const override;
  Result<Lsn> LsnAt(TimelineId t, int64_t time_micros) const override;
  Result<std::vector<PageNo>> ChangedPages(Lsn a, Lsn b) const override;

  Result<GcStats> Gc(const GcOptions& options) override;
  Result<SpaceUsage> Usage(TimelineId t) const override;
  uint64_t DiskBytes() const override;
  uint64_t PayloadBytes(TimelineId t) const override;
  uint64_t RecordMetadataBytes() const override;
  StoreStats Stats() const override;
  Status Health() const override;
  std::vector<std::string> Damage() const override;
  Lsn LastLsn() const override;

 private:
  struct Timeline {
    TimelineInfo info;
    uint32_t run = kNoRun;
    bool dropped = false;
  };
  struct PendingTimeline {
    Lsn head = 0;
    Lsn run_start = 0;
    uint32_t db_size = 0;
    bool dropped = false;
  };
  struct Writer {
    RecordMeta meta;
    std::string images;  // image blocks (crc + page) in entry order
    std::string_view payload;  // the caller's, alive until Submit returns
    Status status;
    bool done = false;
  };
  struct Segment {
    uint64_t size = 0;
    bool sealed = false;
  };
  struct Location {
    uint32_t segment = 0;
    uint64_t offset = 0;
    Lsn lsn = 0;
    // Taken under state_mu_, so compaction deleting the file cannot race the read.
    std::shared_ptr<RandomAccessFile> file;
  };
  // Where a live record's meta is, taken under state_mu_ for a read after it.
  struct MetaLocation {
    Lsn lsn = 0;
    uint32_t segment = 0;
    uint64_t offset = 0;
    uint32_t meta_len = 0;
    uint64_t sealed_size = 0;  // its segment's size when sealed (a footer copy); else 0
    std::shared_ptr<RandomAccessFile> file;
  };
  // A record found on disk during recovery.
  struct Loaded {
    RecordMeta meta;
    uint32_t segment = 0;
    uint64_t offset = 0;
    uint32_t meta_len = 0;
  };

  // --- open (page_store_open.cc) ---
  // The unsealed newest segment found by recovery: writes continue in it.
  struct TailSegment {
    uint64_t number = 0;
    uint32_t version = kFormatVersion;
    std::vector<std::pair<uint64_t, std::string>> footer;  // its records so far
  };
  // Recovery's steps, in the order Recover takes them. Those that delete a file
  // set *deleted, so that the directory is synced before segments are loaded.
  // Creates the directory if allowed, and takes its LOCK file.
  Status LockDir();
  // The segment numbers found (sorted) and the manifest, if any; deletes
  // leftover *.tmp files (an interrupted manifest write or compaction).
  Status ListDir(Manifest* manifest, std::vector<uint64_t>* numbers, bool* deleted);
  // Deletes the newest segment when its header never became durable (it was
  // never acknowledged). Any other failure to read that header is returned.
  Status DropUnstartedSegment(std::vector<uint64_t>* numbers, bool* deleted);
  // Finishes interrupted compactions: deletes the segments that a compacted
  // segment names as superseded. *newest_log receives the highest number of
  // the remaining segments that are not compacted (0: none).
  Status DropSupersededSegments(std::vector<uint64_t>* numbers, bool* deleted,
                                uint64_t* newest_log);
  // Loads every segment's records and fills segments_. Only newest_log can be
  // the unsealed tail (*tail); every other segment is read as sealed.
  Status LoadSegments(const std::vector<uint64_t>& numbers, uint64_t newest_log,
                      std::vector<Loaded>* loaded, std::optional<TailSegment>* tail);
  // One segment. Read as sealed (ReadSealedRecords: its footer, or a scan
  // when the footer is damaged, recorded in damage_; the file is never
  // changed) unless it is the newest log segment: that one is sealed only
  // when its footer is intact, else its records are scanned and a torn tail
  // (a damaged footer included) is truncated.
  Status LoadSegment(uint64_t number, bool newest_log, bool* sealed, uint32_t* version,
                     std::vector<Loaded>* out,
                     std::vector<std::pair<uint64_t, std::string>>* footer, uint64_t* size);
  Status ScanTail(uint64_t number, RandomAccessFile* file, uint64_t file_size, uint64_t start,
                  std::vector<Loaded>* out, std::vector<std::pair<uint64_t, std::string>>* footer,
                  uint64_t* valid_end);
  // Builds the in-memory state from the manifest and the loaded records.
  Status Rebuild(const Manifest& manifest, std::vector<Loaded> records) REQUIRES(mu_, state_mu_);
  // Rebuild's steps.
  // The runs (with their markers) and the timelines the manifest names.
  Status RestoreManifestRuns(const Manifest& manifest) REQUIRES(mu_, state_mu_);
  // Applies the records in LSN order (Corruption on a duplicate LSN), as
  // collected when flagged so or in the manifest's collected ranges. Raises
  // the *max_* counters to the records' LSN, timeline and time; sets
  // *saw_collected when a record is collected by the manifest only (its
  // segment not yet compacted, so its garbage versions came back with it).
  Status ApplyLoaded(const Manifest& manifest, std::vector<Loaded> records, Lsn* max_lsn,
                     TimelineId* max_timeline, int64_t* max_time, bool* saw_collected)
      REQUIRES(mu_, state_mu_);
  // Corruption unless each manifest run has as many live records up to the
  // manifest's LSN as the manifest counted.
  Status CheckLiveCounts(const Manifest& manifest) const REQUIRES(mu_, state_mu_);

  // --- write path (page_store_write.cc) ---
  // Status of the store for a new mutation.
  Status CheckWritable() const REQUIRES(mu_);
  // What a mutation gets from a failed store: ResourceExhausted disk_full when
  // a write found no space (no fsync failed), else IOError store_failed.
  // REQUIRES: failed_ not OK.
  Status Refusal() const REQUIRES(mu_);
  // Queues w and waits until it is durable; the leader of a group commit
  // releases mu_ while it writes and syncs (and takes it again).
  Result<Lsn> Submit(std::unique_ptr<Writer> w) REQUIRES(mu_);
  Status WriteBatch(const std::vector<Writer*>& batch);
  Status RollSegment();
  Status SealActive();
  Status StartSegment(uint64_t number);
  // Assigns LSN and time.
  void Stamp(RecordMeta* meta) REQUIRES(mu_);
  // Validates a base state and fills db size / base_run_start.
  Status FillBase(Lsn base, RecordMeta* meta) REQUIRES(mu_) EXCLUDES(state_mu_);
  Result<Lsn> AppendRunRecord(RecordKind kind, TimelineId t, Lsn expected_head, Lsn base,
                              std::string_view annotation) EXCLUDES(mu_);

  // --- state (page_store_read.cc), REQUIRES: state_mu_ held ---
  // live == false: only index the versions (a collected record). structural ==
  // false: the run and timeline already exist (records older than the manifest).
  Status ApplyRecord(const RecordMeta& meta, uint32_t segment, uint64_t offset, uint32_t meta_len,
                       bool live, bool structural) REQUIRES(state_mu_);
  uint32_t NewRun(TimelineId timeline, Lsn start, Lsn base, uint32_t base_run)
      REQUIRES(state_mu_);
  Result<const Timeline*> LiveTimeline(TimelineId t) const REQUIRES_SHARED(state_mu_);
  Result<Lsn> ResolveLocked(TimelineId t, Lsn lsn) const REQUIRES_SHARED(state_mu_);
  Result<const RecordEntry*> StateLocked(Lsn lsn) const REQUIRES_SHARED(state_mu_);
  // Newest visible version of pgno at state (run, lsn), or nullptr.
  const Version* FindVersion(uint32_t run, Lsn lsn, PageNo pgno) const
      REQUIRES_SHARED(state_mu_);
  // The page image at loc into out[0, kPageSize): from the page cache, else
  // read from its segment (checksum verified: Corruption otherwise), then cached.
  Status ReadLocation(const Location& loc, PageNo pgno, char* out) const;
  // Where page pgno of the state (rec's run, lsn) lives; leaves loc->file
  // null when the page reads as zeros.
  Status LocateLocked(const RecordEntry& rec, Lsn lsn, PageNo pgno, Location* loc) const
      REQUIRES_SHARED(state_mu_);
  // ReadLocation, or zeros when LocateLocked found no version.
  Status ReadLocated(const Location& loc, PageNo pgno, char* out) const;
  Result<std::shared_ptr<RandomAccessFile>> File(uint32_t segment) const;
  // Reads the payload block (crc + len bytes) of record lsn at file offset
  // `at` into *block; Corruption when its checksum does not match.
  static Status ReadPayloadBlock(RandomAccessFile* file, uint64_t at, Lsn lsn, uint32_t len,
                                 std::string* block);
  // Where rec's meta is (its segment's file taken).
  Result<MetaLocation> MetaLocationLocked(const RecordEntry& rec) const
      REQUIRES_SHARED(state_mu_);
  // The meta of the record at loc: from the meta cache, else read from its
  // segment by ReadRecordMeta (segment_reader.h), then cached; a damaged copy
  // that the footer's copy stood in for is noted in read_damage_.
  // REQUIRES: state_mu_ not held (it reads files).
  Result<std::shared_ptr<const RecordMeta>> ReadMeta(const MetaLocation& loc) const
      EXCLUDES(state_mu_);
  static RecordInfo ToInfo(const RecordMeta& meta);
  std::string SegmentPath(uint64_t number) const;

  // --- gc (page_store_gc.cc) ---
  struct GcPlan {
    std::vector<char> rooted;  // by run: holds a root or is on a root's path
    std::vector<std::pair<PageNo, std::vector<Version>>> rewrites;  // pages losing versions
    uint64_t removed = 0;
  };
  // Which versions the given root states still read.
  GcPlan PlanGc(const std::unordered_set<Lsn>& roots) const REQUIRES_SHARED(state_mu_);
  // The states GC keeps readable: live timelines' heads, the pins that name a
  // record, and every record at or after `oldest` (restore window, in micros).
  std::unordered_set<Lsn> GcRoots(const GcOptions& options, int64_t oldest) const
      REQUIRES_SHARED(state_mu_);
  // Drops what the plan computed from `roots` does not keep: versions,
  // non-root records, unneeded runs, dropped timelines; clears the path cache.
  // REQUIRES: no mutation since the plan was made.
  void ApplyGcPlan(GcPlan plan, const std::unordered_set<Lsn>& roots) REQUIRES(state_mu_);
  Manifest BuildManifest() const;
  Status Compact(GcStats* stats);
  // Records s as the store's failure (if it is the first) and returns it.
  Status FailStopOnError(Status s);
  // Writes GCSTATE atomically; a failed fsync fails the store.
  Status WriteManifest(const std::string& contents);
  // Rewrites the sealed segments of `group` into one new segment holding only
  // what they still must keep, makes it durable, points the state at it, then
  // deletes the group. REQUIRES: GC running (no leader touches the segments).
  Status CompactGroup(const std::vector<uint64_t>& group, GcStats* stats);
  // Appends to *out the records of segment seg that it still must keep.
  Status CopyRetained(uint64_t seg, CompactionOutput* out) EXCLUDES(state_mu_);
  // One record of seg (its footer entry e): live records whole; a collected
  // one only with its retained versions, its annotation and payload dropped,
  // and not at all when it retains none.
  Status CopyRecord(uint64_t seg, RandomAccessFile* file, const FooterEntry& e,
                    CompactionOutput* out);
  // Trims meta->entries to those seg still must keep: all of them when the
  // record is live in seg, else those whose version the index still places
  // in seg. Appends the old image index of each kept image entry to
  // *old_image. Returns whether the record is live in seg. Takes state_mu_.
  bool RetainEntries(uint64_t seg, RecordMeta* meta, std::vector<size_t>* old_image) const
      EXCLUDES(state_mu_);
  // Points the index, the records and the segment table at the new segment
  // `number` and forgets the group's files. REQUIRES: that segment durable.
  void InstallCompacted(const std::vector<uint64_t>& group, uint64_t number, uint64_t new_size,
                        const CompactionOutput& out) EXCLUDES(state_mu_);

  // Constant after construction.
  const PageStoreOptions options_;
  Env* const env_;
  const std::string dir_;
  std::unique_ptr<FileLock> lock_;
  // Constant once Recover returns: the damaged sealed segments it read by
  // scanning, one line each ("seg-000003.log: <what was wrong>; ...").
  std::vector<std::string> damage_;

  // One GC at a time (held across it, with mu_ and state_mu_ taken inside).
  Mutex gc_mu_ ACQUIRED_BEFORE(mu_);

  mutable Mutex mu_ ACQUIRED_BEFORE(state_mu_);
  CondVar cv_;  // with mu_: gc_running_, queue_ and writers' done changed
  std::deque<Writer*> queue_ GUARDED_BY(mu_);
  std::map<TimelineId, PendingTimeline> pending_ GUARDED_BY(mu_);
  // The first failure of a write (sticky until reopened): a failed fsync, or a
  // failed write whose bytes may be half in the file (reason disk_full when
  // the disk was full: recovery on reopen truncates them).
  Status failed_ GUARDED_BY(mu_);
  Lsn next_lsn_ GUARDED_BY(mu_) = 1;
  TimelineId next_timeline_ GUARDED_BY(mu_) = 1;
  int64_t last_time_ GUARDED_BY(mu_) = 0;
  bool gc_running_ GUARDED_BY(mu_) = false;

  // Used only by the group-commit leader or by GC (which excludes leaders).
  std::unique_ptr<WritableFile> active_file_;
  uint64_t active_number_ = 0;
  uint32_t active_version_ = kFormatVersion;  // a format-1 segment takes no payloads
  std::vector<std::pair<uint64_t, std::string>> active_footer_;
  uint64_t next_segment_ = 1;

  mutable SharedMutex state_mu_ ACQUIRED_BEFORE(files_mu_);
  RecordTable records_ GUARDED_BY(state_mu_);
  std::vector<Run> runs_ GUARDED_BY(state_mu_);
  std::unordered_map<Lsn, uint32_t> run_by_start_ GUARDED_BY(state_mu_);
  std::map<TimelineId, Timeline> timelines_ GUARDED_BY(state_mu_);
  PageIndex index_ GUARDED_BY(state_mu_);
  std::map<uint64_t, Segment> segments_ GUARDED_BY(state_mu_);
  // Live records' payloads, by timeline.
  std::unordered_map<TimelineId, uint64_t> payload_bytes_ GUARDED_BY(state_mu_);
  Lsn durable_lsn_ GUARDED_BY(state_mu_) = 0;
  Lsn gc_lsn_ GUARDED_BY(state_mu_) = 0;  // last_lsn of the newest GC manifest

  // Internally synchronized.
  static constexpr size_t kPathCacheRuns = 4096;  // path maps kept, one per run
  mutable PathCache path_cache_{kPathCacheRuns};
  mutable PageCache page_cache_;
  mutable MetaCache meta_cache_;
  // Damaged record metas reads found and served from their footer's copy,
  // one line each (Damage()).
  mutable Mutex damage_mu_;
  mutable std::vector<std::string> read_damage_ GUARDED_BY(damage_mu_);
  mutable Mutex files_mu_;
  mutable std::unordered_map<uint32_t, std::shared_ptr<RandomAccessFile>> files_
      GUARDED_BY(files_mu_);
};

}  // namespace branchdb::storage::internal

#endif  // BRANCHDB_STORAGE_PAGE_STORE_IMPL_H_
