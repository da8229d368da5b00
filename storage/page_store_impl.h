// PageStoreImpl: the implementation of PageStore (internal to storage/).
// Split by concern: page_store_open.cc (Open, recovery), page_store_write.cc
// (validation, group commit, segments), page_store_locate.cc (where a page
// version is), page_store_read.cc (timelines, history), page_store_gc.cc
// (GC, compaction, usage).
//
// Locking (the annotations below are checked by clang, tests/threads):
// gc_mu_ serializes GCs; mu_ guards appending and the "pending" view of
// timelines that mutations are validated against; state_mu_ (shared for
// readers) guards the applied view (every appended record, durable or not, and
// the durable LSN): records, runs, timelines, the page index and the segment
// table; files_mu_ guards the open segment files; damage_mu_
// the damage reads found. Order: gc_mu_, mu_, state_mu_, files_mu_ (then the
// caches' own locks and damage_mu_, leaves). No file is read under state_mu_
// (a read takes the file's handle under it, and reads after releasing it).
// Appenders (under mu_) write to the active segment file; the group-commit
// leader syncs it outside mu_ (syncing_; so does a lone record's WriteAlone),
// and rolling the segment waits until no leader is syncing. GC excludes both:
// it sets gc_running_ and first makes every appended record durable. A
// protocol on mu_, gc_running_ and syncing_.
#ifndef BRANCHDB_STORAGE_PAGE_STORE_IMPL_H_
#define BRANCHDB_STORAGE_PAGE_STORE_IMPL_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/mutex.h"
#include "storage/log_format.h"
#include "storage/page_index.h"
#include "storage/page_store.h"
#include "storage/record_table.h"
#include "storage/segment_index.h"
#include "storage/segment_table.h"

namespace branchdb::storage::internal {

struct CompactionOutput;  // page_store_gc.cc

// Whether lsn lies in one of the ascending, disjoint, inclusive ranges.
bool InRanges(const std::vector<std::pair<Lsn, Lsn>>& ranges, Lsn lsn);

// The reason of ResolveLocked's Unavailable for a state below its timeline's
// head while the runs' lists are incomplete (just after Open): its callers
// complete them (LoadRunLists) and try again; it never reaches a caller.
inline constexpr std::string_view kRunsIncomplete = "runs_incomplete";

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
  Result<Lsn> CommitNoWait(TimelineId t, Lsn expected_head, const std::vector<PageWrite>& pages,
                           uint32_t db_size_pages, std::string_view annotation,
                           std::string_view payload = {}) override;
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
  uint64_t DiskBytes() const override;
  uint64_t PayloadBytes(TimelineId t) const override;
  uint64_t RecordMetadataBytes() const override;
  StoreStats Stats() const override;
  Status Health() const override;
  std::vector<std::string> Damage() const override;
  Lsn LastLsn() const override;
  DurablePoint DurableEnd() const override;

 private:
  struct Timeline {
    TimelineInfo info;
    uint32_t run = kNoRun;
    bool dropped = false;
    // Image bytes its commits wrote since the store opened (Usage's cache).
    uint64_t image_bytes = 0;
  };
  // A computed Usage (without logical_bytes), valid while usage_epoch_ is
  // the same: then the timeline's commits since only add their own images
  // (image_bytes - image_bytes_base) to its exclusive bytes.
  struct CachedUsage {
    uint64_t epoch = 0;
    uint64_t image_bytes_base = 0;
    SpaceUsage usage;
  };
  struct PendingTimeline {
    Lsn head = 0;
    Lsn run_start = 0;
    uint32_t db_size = 0;
    bool dropped = false;
  };
  // A record being appended.
  struct Writer {
    RecordMeta meta;
    std::string images;  // image blocks (crc + page) in entry order
    std::string_view payload;  // the caller's, alive until AppendRecord returns
  };
  struct Segment {
    uint64_t size = 0;
    bool sealed = false;
    uint32_t flags = 0;  // its header's (kSegmentFlagCompacted)
    uint32_t version = kFormatVersion;  // its header's: the layout of its image blocks
    // Compacted: what it supersedes whose delete failed (MANIFEST lists them).
    std::vector<uint64_t> supersedes = {};
  };
  struct Location {
    uint32_t segment = 0;
    uint64_t offset = 0;
    Lsn lsn = 0;
    // Taken under state_mu_, so compaction deleting the file cannot race the read.
    std::shared_ptr<RandomAccessFile> file;
    bool holes = true;  // the image block has a hole (its segment's format is 5 or later)
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
    bool versions_on_disk = false;  // its segment's page index serves its versions
  };
  // What a read still has to look up in the sealed segments' on-disk
  // indexes after the in-memory index answered (LocateLocked).
  struct DiskQuery {
    bool needed = false;
    PageNo pgno = 0;
    Lsn lsn = 0;            // the state read
    Lsn run_start = 0;      // its run's identity
    Lsn floor = 0;          // LSN of the best answer so far (0: none)
    // The location cache's answer holds up to this LSN: only what is newer is searched.
    Lsn known = 0;
    uint64_t epoch = 0;                   // the store's location epoch during the query
    bool keep = false;                    // the cache holds a newer read's answer: not replaced
    bool inherited = false;               // known is an ancestor run's cached answer's
    size_t stepped_over = 0;              // other runs' versions FindVersion looked at
    std::shared_ptr<const PathMap> path;  // null: the run has no base
    std::shared_ptr<const std::vector<std::shared_ptr<const SegmentIndex>>> sealed;
  };

  // --- open (page_store_open.cc) ---
  // The unsealed newest segment found by recovery: writes continue in it.
  struct TailSegment {
    uint64_t number = 0;
    uint32_t version = kFormatVersion;
    std::vector<uint64_t> offsets;  // of its records so far
  };
  // Recovery's steps, in the order Recover takes them. Those that delete a file
  // set *deleted, so that the directory is synced before segments are loaded.
  // Creates the directory if allowed, and takes its LOCK file.
  Status LockDir();
  // GCSTATE and MANIFEST, if any, by name. A MANIFEST that fails its checks
  // is left out and noted in damage_ (GCSTATE's are Corruption).
  Status ReadManifests(Manifest* gcstate, std::optional<Manifest>* store);
  // Without a version-4 MANIFEST in use: the segment numbers in the
  // directory (sorted); deletes leftover *.tmp files.
  Status ListDir(std::vector<uint64_t>* numbers, bool* deleted);
  // With one (`store`): the segments it names and those started after it,
  // probed (docs/storage-format.md, "MANIFEST"), sorted. No listing.
  Status ProbeSegments(const Manifest& store, std::vector<uint64_t>* numbers);
  // Deletes the newest segment when its header never became durable (it was
  // never acknowledged). Any other failure to read that header is returned.
  // A segment MANIFEST describes (`described`) is not looked at.
  using Described = SegmentTable<const ManifestSegment*>;
  Status DropUnstartedSegment(const Described& described, std::vector<uint64_t>* numbers,
                              bool* deleted);
  // Finishes interrupted compactions: deletes the segments that a compacted
  // segment names as superseded. *newest_log receives the highest number of
  // the remaining segments that are not compacted (0: none).
  // A described segment's header is not read: MANIFEST has its flags and
  // (version 4, `listed_supersedes`) its leftovers, deleted here, in
  // `numbers` or not. With version 3, a described compacted segment's header
  // is read when a segment it does not describe lies below it.
  Status DropSupersededSegments(const Described& described, bool listed_supersedes,
                                std::vector<uint64_t>* numbers, bool* deleted,
                                uint64_t* newest_log);
  Status DeleteIfExists(const std::string& path);  // a file already gone is no error
  // A described newest log segment stays described only at its MANIFEST size.
  Status CheckNewestDescribed(uint64_t newest_log, Described* described);
  // Whether `store` (the MANIFEST in use; null: none) lists every sealed
  // segment as it is, with the descriptors this build writes.
  bool ListsAsIs(const Manifest* store) const REQUIRES_SHARED(state_mu_);
  // Loads every segment's records and fills segments_. Only newest_log can be
  // the unsealed tail (*tail); every other segment is read as sealed: by its
  // record index (nothing of its records is read: open_covered_) when
  // `covered` (the store manifest's table) lists it with its size and it has
  // one, else by its footer (*loaded).
  // A described one is not opened at all: it is installed lazy (AddLazySegment).
  Status LoadSegments(const std::vector<uint64_t>& numbers, uint64_t newest_log,
                      const SegmentTable<uint64_t>& covered, const Described& described,
                      std::vector<Loaded>* loaded, std::optional<TailSegment>* tail);
  // Installs the segments ms (described, ascending, above every segment
  // installed) lazy: AddLazySegment with objects from one array each.
  void AddLazySegments(const std::vector<const ManifestSegment*>& ms) REQUIRES(state_mu_);
  // Installs segment m lazy, with the (empty) objects given: its placeholders
  // in seg_indexes_ and rec_indexes_ (the views are rebuilt by the caller),
  // lazy_, open_covered_.
  void AddLazySegment(const ManifestSegment& m, std::shared_ptr<LazySegment> seg,
                      std::shared_ptr<SegmentIndex> idx, std::shared_ptr<SegmentRecordIndex> ri)
      REQUIRES(state_mu_);
  // A sealed format-4 segment through its page index and record index: their
  // tails, directories and the filter, no block. *done false (nothing
  // changed) when it has none, or when either is damaged (the footer's
  // record list serves then; a damaged record index is noted in damage_, a
  // damaged page index is noted by LoadSegment, which reads it again).
  Status LoadIndexedSegment(uint64_t number, uint64_t size, bool* done);
  // One segment. Read as sealed (ReadSealedRecords: its footer, or a scan
  // when the footer is damaged, recorded in damage_; the file is never
  // changed) unless it is the newest log segment: that one is sealed only
  // when its footer is intact, else its records are scanned and a torn tail
  // (a damaged footer included) is truncated.
  Status LoadSegment(uint64_t number, bool newest_log, bool* sealed, uint32_t* version,
                     std::vector<Loaded>* out, std::vector<uint64_t>* tail_offsets, uint64_t* size);
  // For a sealed format-3 segment whose record list is intact: its page
  // index (ReadSegmentIndex), installed, or, when it is damaged, a line in
  // damage_ (its versions are then loaded into memory). *on_disk: installed.
  Status LoadSegmentIndex(uint64_t number, std::shared_ptr<RandomAccessFile> file, uint64_t size,
                          bool* on_disk);
  // Recover's last step: the tail reopened (synced), MANIFEST written unless
  // `manifest_current`, a new segment started when there is no tail.
  Status OpenTail(std::optional<TailSegment> tail, bool manifest_current);
  Status ScanTail(uint64_t number, RandomAccessFile* file, uint64_t file_size, uint64_t start,
                  std::vector<Loaded>* out, uint64_t* valid_end);
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
  // With a manifest that counts payloads (MANIFEST version 2), the live
  // records up to its LSN add none: its count has them.
  Status ApplyLoaded(const Manifest& manifest, std::vector<Loaded> records, Lsn* max_lsn,
                     TimelineId* max_timeline, int64_t* max_time, bool* saw_collected)
      REQUIRES(mu_, state_mu_);
  // Each manifest run's live records up to the manifest's LSN: with no
  // segment read through its record index (open_covered_ empty), those
  // loaded must be as many as the manifest counted (Corruption otherwise);
  // else the rest are in those segments (Run::on_disk, checked when the
  // lists are completed: LoadRunLists).
  Status CountLiveRecords(const Manifest& manifest) REQUIRES(mu_, state_mu_);
  // --- lazy segments (page_store_open.cc) ---
  // The first use of a lazy segment: opens its file (through the Env: a
  // segment could be fetched from object storage there) and reads its
  // header, page index (tail, directory, filter) and record index (tail,
  // directory), checked by their CRCs and against MANIFEST's descriptor.
  // Once per segment (seg.mu); an I/O error is returned and not kept. A
  // file whose indexes fail their checks gives its records instead (a
  // fallback, as Open would read it without MANIFEST). Called with or
  // without state_mu_ (GC's and Open's lookups read under it).
  Result<std::shared_ptr<const LazyLoaded>> LoadLazySegment(LazySegment& seg) const;
  Status ReadLazySegment(const LazySegment& seg, LazyLoaded* out) const;
  // LoadLazySegment, then installs what it found in place of the
  // placeholders (a fallback's versions into memory, its record entries
  // demoted), notes a disagreement in Damage(). A no-op once installed.
  Status InstallLazySegment(std::shared_ptr<LazySegment> seg) const EXCLUDES(state_mu_);
  // Every lazy segment loaded and installed (GC, walks of every run's list);
  // `loaded_only`: those a lookup already loaded (Open, after its lookups).
  Status InstallLazySegments(bool loaded_only = false) const EXCLUDES(state_mu_);
  // A read's use of lazy placeholder idx: its loaded index (installed);
  // Corruption with *bad_segment when its fallback moved its versions into
  // memory (the read starts over: RepairingIndex).
  Result<std::shared_ptr<const SegmentIndex>> LazyIndex(const SegmentIndex& idx,
                                                        uint64_t* bad_segment) const
      EXCLUDES(state_mu_);
  // The table of sealed segments MANIFEST lists (descriptors included); one
  // entry of it (false: not listed).
  std::vector<ManifestSegment> ListedSegments() const REQUIRES_SHARED(state_mu_);
  bool ListedSegment(uint64_t n, const Segment& s, ManifestSegment* m) const
      REQUIRES_SHARED(state_mu_);
  // The sealed segments Open found damaged (not in the table), ascending.
  std::vector<uint64_t> DamagedSegments() const REQUIRES_SHARED(state_mu_);
  // Lazy segments not yet installed (placeholders in the indexes' tables).
  mutable SegmentTable<std::shared_ptr<LazySegment>> lazy_ GUARDED_BY(state_mu_);
  mutable std::atomic<bool> lazy_pending_{false};

  // Set by Rebuild: a record collected only by the manifest was loaded.
  bool saw_collected_ = false;
  // Set when Recover returns OK: the destructor may seal the active segment.
  bool opened_ = false;
  // Recover listed no directory: the first GC deletes *.tmp (under gc_mu_).
  bool tmp_unchecked_ = false;
  // During Recover: each segment's file and header, as DropSupersededSegments
  // read them (LoadIndexedSegment and LoadSegment read neither again).
  std::map<uint64_t, std::pair<std::shared_ptr<RandomAccessFile>, SegmentHeader>> open_headers_;
  // A clean close (the destructor): seals the active segment when it holds
  // a record and writes MANIFEST, so that the next Open scans no tail; a
  // failure leaves the files as a crash there would (the next Open scans
  // the tail and cuts a torn footer off, its records stay).
  void SealAtClose();

  // --- write path (page_store_write.cc) ---
  // Status of the store for a new mutation.
  Status CheckWritable() const REQUIRES(mu_);
  // What a mutation gets from a failed store: ResourceExhausted disk_full when
  // a write found no space (no fsync failed), else IOError store_failed.
  // REQUIRES: failed_ not OK.
  Status Refusal() const REQUIRES(mu_);
  // Waits until a record may be appended (no GC running), checks that the
  // store is writable and rolls the active segment when the next record must
  // go to a new one (full, or of an older format); sealing syncs the old one,
  // which makes every record appended so far durable. Does not release mu_
  // once it returns OK, so the caller can stamp and append in LSN order.
  Status BeginAppend() REQUIRES(mu_);
  // Appends w (stamped) to the active segment and applies it, so that reads
  // see it; not synced, unless `durable` (the caller waits next) finds no
  // record waiting for a sync: then WriteAlone. A failure stops the store.
  Status AppendRecord(Writer* w, bool durable = false) REQUIRES(mu_);
  // Writes and syncs a record in one call (AppendDurable), mu_ released.
  Status WriteAlone(std::string_view record) REQUIRES(mu_);
  // Commit's argument checks, without a lock: *w gets the record (entries in page order).
  static Status BuildCommit(TimelineId t, const std::vector<PageWrite>& pages,
                            uint32_t db_size_pages, std::string_view annotation,
                            std::string_view payload, Writer* w);
  // Commit (durable: waits for it, and may write it alone) and CommitNoWait.
  Result<Lsn> CommitWith(bool durable, TimelineId t, Lsn expected_head,
                         const std::vector<PageWrite>& pages, uint32_t db_size_pages,
                         std::string_view annotation, std::string_view payload) EXCLUDES(mu_);
  // WaitDurable with mu_ held; the group-commit leader releases mu_ while it
  // syncs (and takes it again).
  Status WaitDurableLocked(Lsn lsn) REQUIRES(mu_);
  // Records every record up to lsn as durable; with a segment, also its
  // first `bytes` bytes (those records' end in the active segment).
  void MarkDurable(Lsn lsn, uint64_t segment = 0, uint64_t bytes = 0) REQUIRES(mu_);
  // Records s as the store's failure (a failed fsync overrides a full disk)
  // and returns what the caller reports.
  Status StopWrites(Status s) REQUIRES(mu_);
  Status RollSegment();
  // Writes zeros ahead of the active segment's last record when fewer than
  // half of the next step (zeros_step_, up to options_.preallocate_bytes) are
  // left (not synced: the next Sync of the active file makes them durable).
  // Best effort (a full disk).
  void ExtendZeros();
  // At close, when the active segment was not sealed: cuts its zero region
  // off, so that a closed store's files hold its log only (their sizes are
  // its DiskBytes) and the next Open reads no zeros. Best effort.
  void CutZerosAtClose();
  Status SealActive();
  // The page index of segment `number` (`size` bytes), just written and
  // synced, read back through the file as a reopen would read it (so the
  // in-memory copy is exactly what is on disk). IOError when it reads back
  // damaged; the read's error otherwise.
  Result<std::shared_ptr<const SegmentIndex>> ReadBackIndex(uint64_t number, uint64_t size);
  // The record index of the format-4 segment of idx, just written (IOError
  // when it reads back damaged).
  Result<std::shared_ptr<const SegmentRecordIndex>> ReadBackRecordIndex(const SegmentIndex& idx);
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
  // index_versions == false: its versions are in its segment's on-disk index.
  Status ApplyRecord(const RecordMeta& meta, uint32_t segment, uint64_t offset, uint32_t meta_len,
                     bool live, bool structural, bool index_versions = true) REQUIRES(state_mu_);
  // The sealed segments' on-disk indexes (segment_index.h). REQUIRES: state_mu_ held.
  void InstallSegmentIndex(std::shared_ptr<const SegmentIndex> idx) const REQUIRES(state_mu_);
  void DropSegmentIndex(uint64_t number) const REQUIRES(state_mu_);
  void RebuildSealedView() const REQUIRES(state_mu_);
  // Adds the versions of the record (meta, at offset in segment) to memory, in run `run`.
  void IndexVersions(const RecordMeta& meta, uint32_t run, uint32_t segment, uint64_t offset,
                     uint32_t meta_len) const REQUIRES(state_mu_);
  bool IndexedOnDisk(uint64_t number) const REQUIRES_SHARED(state_mu_) {
    return seg_indexes_.count(number) != 0;
  }
  // A damaged block of segment `number`'s on-disk index was found (`why`):
  // its versions are loaded into memory from its footer's record list (or a
  // scan of its records), its on-disk index is no longer used, and Damage()
  // says so. No-op when that segment's index is not in use any more.
  // REQUIRES: state_mu_ not held (reads the segment).
  Status DemoteSegmentIndex(uint64_t number, const std::string& why) const EXCLUDES(state_mu_);
  // Calls fn for every page with versions, ascending, with all of its
  // versions (in memory and in the sealed segments' indexes, merged one page
  // at a time, sorted by LSN; an on-disk version's run is kNoRun when its
  // run no longer exists). On a damaged index block, returns Corruption and
  // sets *bad_segment to that segment (see DemoteSegmentIndex).
  using PageVisitor = std::function<void(PageNo, std::span<const Version>)>;
  Status ForEachPage(const PageVisitor& fn, uint64_t* bad_segment) const
      REQUIRES_SHARED(state_mu_);
  // Runs fn (which takes state_mu_ itself and calls ForEachPage) again
  // after demoting each segment whose damaged index block it reported.
  Status RepairingIndex(const std::function<Status(uint64_t* bad_segment)>& fn) const
      EXCLUDES(state_mu_);
  // The on-disk half of a read (DiskQuery): the newest visible version in the
  // sealed segments' indexes above q.floor, newest segment first. Sets *loc
  // (file null: zeros) when there is one; *bad_segment on a damaged block;
  // *stepped_over to the number of other runs' versions of the page it
  // passed on its way.
  // REQUIRES: state_mu_ not held.
  Status LocateOnDisk(const DiskQuery& q, Location* loc, uint64_t* bad_segment,
                      size_t* stepped_over) const EXCLUDES(state_mu_);
  // Whole reads: the in-memory index under state_mu_, then the on-disk part.
  Status LocatePage(TimelineId t, Lsn lsn, bool by_timeline, PageNo pgno, Location* loc) const
      EXCLUDES(state_mu_);
  uint32_t NewRun(TimelineId timeline, Lsn start, Lsn base, uint32_t base_run)
      REQUIRES(state_mu_);
  void ForgetDroppedRuns(std::vector<TimelineId> timelines) REQUIRES(state_mu_);
  Result<const Timeline*> LiveTimeline(TimelineId t) const REQUIRES_SHARED(state_mu_);
  // The state of t at lsn: its head when lsn is at or after it, else by
  // walking its runs' lists (Unavailable kRunsIncomplete while incomplete).
  Result<Lsn> ResolveLocked(TimelineId t, Lsn lsn) const REQUIRES_SHARED(state_mu_);
  // The entry of live record lsn (not past failed_limit_), NotFound
  // otherwise. With pins: no file is read (a record of a sealed segment whose
  // record index block is neither in pins nor in the cache sets
  // pins->missed and returns Unavailable: see WithRecordReads). Without
  // (GC, Usage, Open, off the hot path): the block is read under the lock.
  Result<RecordEntry> StateLocked(Lsn lsn, RecordPins* pins) const REQUIRES_SHARED(state_mu_);
  // StateLocked's lookup: *found false when lsn is no live record (or a
  // block was missed: pins->missed()). Errors: a blocking read's.
  Status FindRecordLocked(Lsn lsn, RecordPins* pins, RecordEntry* out, bool* found) const
      REQUIRES_SHARED(state_mu_);
  // Whether lsn is a live entry of run r (its run's list, by binary search;
  // a record of a segment in open_covered_ not in an incomplete list is
  // live unless MANIFEST's collected ranges name it).
  bool LiveInRun(uint32_t r, Lsn lsn) const REQUIRES_SHARED(state_mu_);
  // Completes the runs' record lists (Run::on_disk) from the record indexes
  // of open_covered_, read block by block outside the lock (Corruption when
  // a run's count differs from MANIFEST's; a damaged block demotes its
  // segment's record index and the reading starts over). Every operation
  // that walks a run's list calls it first; a no-op once done.
  Status LoadRunLists() const EXCLUDES(state_mu_);

  // Runs fn (which takes state_mu_ itself and looks records up with the pins
  // given) again after reading, without the lock, each record index block it
  // missed; the blocks read stay pinned until it returns. A damaged block
  // demotes its segment's record index (DemoteRecordIndex) and fn runs again.
  // (A template: it is on every read's path, and a std::function of the
  // caller's lambda would allocate.)
  template <typename Fn>
  Status WithRecordReads(Fn&& fn) const EXCLUDES(state_mu_) {
    RecordPins pins;
    for (;;) {
      Status s = fn(&pins);
      if (!pins.missed()) return s;
      BRANCHDB_RETURN_IF_ERROR(ReadMissedBlock(&pins));
    }
  }
  // Reads the block pins missed into pins; a damaged one demotes its
  // segment's record index instead (DemoteRecordIndex).
  Status ReadMissedBlock(RecordPins* pins) const EXCLUDES(state_mu_);
  // The sealed segments' record indexes (segment_index.h).
  void InstallRecordIndex(std::shared_ptr<const SegmentRecordIndex> ri) const
      REQUIRES(state_mu_);
  void RebuildRecordView() const REQUIRES(state_mu_);
  // A damaged block of segment `number`'s record index was found (`why`):
  // its entries are rebuilt in memory from its footer's record list (the
  // index is demoted) and Damage() says so. REQUIRES: state_mu_ not held.
  Status DemoteRecordIndex(uint64_t number, const std::string& why) const EXCLUDES(state_mu_);
  // Calls fn for every entry of every sealed segment's record index (live or
  // not: see LiveInRun), reading blocks under the lock (GC, off the hot path).
  // On a damaged block, returns Corruption and sets *bad_segment to that
  // segment (see RepairingRecords).
  using SealedRecordVisitor = std::function<void(uint64_t segment, const RecordIndexEntry&)>;
  Status ForEachSealedRecord(const SealedRecordVisitor& fn, uint64_t* bad_segment) const
      REQUIRES_SHARED(state_mu_);
  // Runs fn (which takes state_mu_ itself) again after demoting the record
  // index of each segment whose damaged block it reported.
  Status RepairingRecords(const std::function<Status(uint64_t* bad_segment)>& fn) const
      EXCLUDES(state_mu_);
  // The live records' LSNs with their runs, from the runs' lists.
  template <typename Fn>
  void ForEachLive(Fn&& fn) const REQUIRES_SHARED(state_mu_) {
    for (uint32_t r = 0; r < runs_.size(); ++r) {
      if (!runs_[r].exists) continue;
      for (const RunEntry& e : runs_[r].entries) {
        if (e.live) fn(static_cast<Lsn>(e.lsn), r, e.time_micros);
      }
    }
  }
  // Newest visible version of pgno at state (run, lsn) in memory if it is
  // above floor, else nullptr. Adds the other runs' versions it looked at to
  // *steps, and gives up (nullptr) once *steps reaches budget.
  const Version* FindVersion(uint32_t run, Lsn lsn, PageNo pgno, Lsn floor, size_t budget,
                             size_t* steps) const REQUIRES_SHARED(state_mu_);
  // The page image at loc into out[0, kPageSize): from the page cache, else
  // read from its segment (checksum verified: Corruption otherwise), then cached.
  Status ReadLocation(const Location& loc, PageNo pgno, char* out) const;
  // Where page pgno of the state (rec's run, lsn) lives; leaves loc->file
  // null when the page reads as zeros.
  Status LocateLocked(const RecordEntry& rec, Lsn lsn, PageNo pgno, Location* loc,
                      DiskQuery* q) const REQUIRES_SHARED(state_mu_);
  // The location cache's answer for LocateLocked's read of (run, lsn): the
  // run's own or a near ancestor's (kCachedAncestors); raises *best and sets
  // q->known, q->keep, q->inherited.
  void CachedLocation(uint32_t run, Lsn lsn, PageNo pgno, DiskQuery* q, Location* best,
                      bool* zero) const REQUIRES_SHARED(state_mu_);
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
  Result<std::vector<RecordInfo>> Records(TimelineId t, Lsn before, size_t limit, bool own) const;
  std::string SegmentPath(uint64_t number) const;

  // --- gc (page_store_gc.cc) ---
  struct GcPlan {
    std::vector<char> rooted;  // by run: holds a root or is on a root's path
    // In-memory versions no root reads: (page, their LSNs).
    std::vector<std::pair<PageNo, std::vector<Lsn>>> removals;
    uint64_t removed = 0;  // versions no root reads, in memory and on disk
    // Per segment: bytes of the versions it keeps (compaction's measure).
    std::map<uint64_t, uint64_t> kept_bytes;
    // For the segments asked for: the (lsn, pgno) of each version they keep, sorted.
    std::map<uint64_t, std::vector<std::pair<Lsn, PageNo>>> retained;
    // Payload bytes, by timeline, of the sealed records it collects.
    std::map<TimelineId, uint64_t> sealed_payloads;
  };
  // Which versions the given root states still read. `collect`: segments
  // whose retained versions to list (plan->retained). Corruption (and
  // *bad_segment) on a damaged index block.
  // on_kept, when set, sees every kept version.
  using KeptVisitor = std::function<void(const Version&)>;
  // Roots: live records' LSNs with their runs.
  using Roots = std::unordered_map<Lsn, uint32_t>;
  Status PlanGc(const Roots& roots, const std::vector<uint64_t>& collect,
                GcPlan* plan, uint64_t* bad_segment, const KeptVisitor& on_kept = {}) const
      REQUIRES_SHARED(state_mu_);
  // PlanGc with every live record as a root (after a GC: exactly what the
  // store keeps), under its own lock, repairing damaged indexes.
  Status PlanRetained(const std::vector<uint64_t>& collect, GcPlan* plan) const
      EXCLUDES(state_mu_);
  // The states GC keeps readable: live timelines' heads, the pins that name a
  // record (`pinned`: PinnedRoots), and every record at or after `oldest`
  // (restore window, in micros).
  Roots GcRoots(const Roots& pinned, int64_t oldest) const REQUIRES_SHARED(state_mu_);
  // The pins of options that name a live record, with their runs.
  Result<Roots> PinnedRoots(const GcOptions& options) const EXCLUDES(state_mu_);
  // Drops what the plan computed from `roots` does not keep: versions,
  // non-root records, unneeded runs, dropped timelines; clears the path cache.
  // REQUIRES: no mutation since the plan was made.
  void ApplyGcPlan(GcPlan plan, const Roots& roots) REQUIRES(state_mu_);
  // The payload bytes, by timeline, of the live records of sealed segments'
  // record indexes that are not roots (what ApplyGcPlan collects with them).
  Status SealedPayloadsCollected(const Roots& roots, std::map<TimelineId, uint64_t>* out,
                                 uint64_t* bad_segment) const REQUIRES_SHARED(state_mu_);
  // Drops the in-memory versions the plan found unread.
  void ApplyRemovals(const GcPlan& plan) REQUIRES(state_mu_);
  // The store's structure now (GCSTATE's fields and the store manifest's;
  // in page_store_records.cc, beside LoadRunLists: while the runs' lists are
  // incomplete, the collected ranges up to Open's MANIFEST are its own).
  // REQUIRES: every appended record durable (last_lsn is the durable LSN).
  Manifest BuildManifest() const EXCLUDES(mu_);
  Manifest BuildManifestLocked() const REQUIRES(mu_);
  Status Compact(GcStats* stats, const std::map<uint64_t, uint64_t>& kept_bytes,
                 const std::function<bool(uint64_t)>& may_rewrite);
  // Deletes sealed segment n, which holds nothing any state reads.
  Status DropEmptySegment(uint64_t n, uint64_t size, GcStats* stats);
  // After an Open that listed no directory (tmp_unchecked_): deletes leftover
  // *.tmp files. REQUIRES: GC running (nothing else writes one).
  Status DeleteTmpFiles();
  // Records s as the store's failure (if it is the first) and returns it.
  Status FailStopOnError(Status s);
  // FailStopOnError for a failed fsync (store_failed); other errors are only returned.
  Status FailStopOnSyncError(Status s);
  // Writes dir_/name atomically and durably (tmp, fsync, rename, directory
  // fsync). A failed fsync comes back as store_failed; on any failure the
  // file as it was stays in place (or the new one, after the rename).
  Status WriteFileDurably(std::string_view name, const std::string& contents);
  // Writes GCSTATE atomically; a failed fsync fails the store.
  Status WriteManifest(const std::string& contents);
  // Writes MANIFEST atomically; the caller decides what a failure does.
  Status WriteStoreManifest(const std::string& contents);
  // Rewrites the sealed segments of `group` into one new segment holding only
  // what they still must keep, makes it durable, points the state at it, then
  // deletes the group. REQUIRES: GC running (no leader touches the segments).
  Status CompactGroup(const std::vector<uint64_t>& group,
                      const std::vector<std::pair<Lsn, PageNo>>& retained, GcStats* stats);
  // Appends to *out the records of segment seg that it still must keep.
  Status CopyRetained(uint64_t seg, const std::vector<std::pair<Lsn, PageNo>>& retained,
                      CompactionOutput* out) EXCLUDES(state_mu_);
  // One record of seg (its footer entry e): live records whole; a collected
  // one only with its retained versions, its annotation and payload dropped,
  // and not at all when it retains none.
  Status CopyRecord(uint64_t seg, RandomAccessFile* file, const FooterEntry& e,
                    const std::vector<std::pair<Lsn, PageNo>>& retained, CompactionOutput* out);
  // Trims meta->entries to those seg still must keep: all of them when the
  // record is live in seg, else those `retained` (the plan's list for seg)
  // holds. Appends the old image index of each kept image entry to
  // *old_image. Returns whether the record is live in seg. Takes state_mu_.
  Result<bool> RetainEntries(uint64_t seg, const std::vector<std::pair<Lsn, PageNo>>& retained,
                     RecordMeta* meta, std::vector<size_t>* old_image) const EXCLUDES(state_mu_);
  // Points the index, the records and the segment table at the new segment
  // `number` and forgets the group's files. REQUIRES: that segment durable.
  void InstallCompacted(const std::vector<uint64_t>& group, uint64_t number, uint64_t new_size,
                        CompactionOutput& out, std::shared_ptr<const SegmentIndex> idx,
                        std::shared_ptr<const SegmentRecordIndex> ri)
      EXCLUDES(state_mu_);

  // Constant after construction.
  const PageStoreOptions options_;
  Env* const env_;
  const std::string dir_;
  std::unique_ptr<FileLock> lock_;
  // Constant once Recover returns: the damaged sealed segments it read by
  // scanning, one line each ("seg-000003.log: <what was wrong>; ...").
  std::vector<std::string> damage_;
  // The segments of those lines: the store manifest does not list them, so
  // that every Open reads them from their footers (or a scan) and reports
  // them again.
  SegmentSet damaged_segments_;

  // One GC at a time (held across it, with mu_ and state_mu_ taken inside).
  Mutex gc_mu_ ACQUIRED_BEFORE(mu_);

  mutable Mutex mu_ ACQUIRED_BEFORE(state_mu_);
  CondVar cv_;  // with mu_: gc_running_, syncing_, durable_lsn_ or failed_ changed
  // Highest LSN whose record is in the log and applied (maybe not durable).
  Lsn appended_lsn_ GUARDED_BY(mu_) = 0;
  // A leader (or WriteAlone) syncs the active segment outside mu_: rolls wait.
  bool syncing_ GUARDED_BY(mu_) = false;
  bool writing_alone_ GUARDED_BY(mu_) = false;  // WriteAlone's: appends wait
  int append_waiters_ GUARDED_BY(mu_) = 0;      // in BeginAppend's wait
  std::map<TimelineId, PendingTimeline> pending_ GUARDED_BY(mu_);
  // The first failure of a write (sticky until reopened): a failed fsync, or a
  // failed write whose bytes may be half in the file (reason disk_full when
  // the disk was full: recovery on reopen truncates them).
  Status failed_ GUARDED_BY(mu_);
  Lsn next_lsn_ GUARDED_BY(mu_) = 1;
  TimelineId next_timeline_ GUARDED_BY(mu_) = 1;
  int64_t last_time_ GUARDED_BY(mu_) = 0;
  bool gc_running_ GUARDED_BY(mu_) = false;

  // Appended to (and rolled) under mu_, synced outside it by the leader or
  // WriteAlone (syncing_), used by GC alone while it runs (gc_running_).
  std::unique_ptr<WritableFile> active_file_;
  uint64_t active_number_ = 0;
  // End of the last record appended to the active segment (its header's
  // end in a new one): what a sync of it makes durable.
  uint64_t appended_end_ = 0;
  // The active segment file's size: appended_end_ plus the zeros written
  // ahead (ExtendZeros), cut off at the seal; at most appended_end_ when it
  // has none (after Open: recovery cut any; the first sync writes new ones).
  uint64_t zeros_end_ = 0;
  // The next growth of the zero region (ExtendZeros): 0 after Open and in a
  // new segment (kFirstZerosBytes), doubled by each growth.
  uint64_t zeros_step_ = 0;
  static constexpr uint64_t kFirstZerosBytes = 256 << 10;
  uint32_t active_version_ = kFormatVersion;  // a format-1 segment takes no payloads
  RecordOffsets active_records_;              // for its footer, and its first records' metas
  MetaList active_metas_;                     // (up to segment_bytes / 16; the seal reads the rest)
  uint64_t next_segment_ = 1;

  mutable SharedMutex state_mu_ ACQUIRED_BEFORE(files_mu_);
  // The entries of the live records not in a sealed segment's record index
  // (the unsealed segment's; those of formats 1 to 3 and damaged indexes).
  RecordTable records_ GUARDED_BY(state_mu_);
  // The sealed segments whose record index serves their records' entries
  // (read block by block through record_cache_), and the same ordered by
  // their first LSN, with the highest last LSN up to each (LSN ranges of
  // compacted segments may overlap others).
  struct RecordRange {
    Lsn min = 0;
    Lsn max_so_far = 0;
    std::shared_ptr<const SegmentRecordIndex> ri;
  };
  mutable SegmentTable<std::shared_ptr<const SegmentRecordIndex>> rec_indexes_
      GUARDED_BY(state_mu_);
  mutable std::vector<RecordRange> rec_view_ GUARDED_BY(state_mu_);
  uint64_t live_records_ GUARDED_BY(state_mu_) = 0;
  // Mutable: LoadRunLists completes the lists of a store just opened.
  mutable std::vector<Run> runs_ GUARDED_BY(state_mu_);
  // While some run's list is incomplete (Run::on_disk): the segments Open
  // read through their record index (their records' entries), and MANIFEST's
  // LSN and collected ranges then (no GC runs before the lists are complete).
  mutable std::atomic<bool> runs_on_disk_{false};
  mutable SegmentSet open_covered_ GUARDED_BY(state_mu_);
  Lsn open_last_lsn_ GUARDED_BY(state_mu_) = 0;
  mutable std::vector<std::pair<Lsn, Lsn>> open_collected_ GUARDED_BY(state_mu_);
  std::unordered_map<Lsn, uint32_t> run_by_start_ GUARDED_BY(state_mu_);
  // Every run of each timeline, by start (OwnRecords).
  std::unordered_map<TimelineId, std::vector<uint32_t>> timeline_runs_ GUARDED_BY(state_mu_);
  std::map<TimelineId, Timeline> timelines_ GUARDED_BY(state_mu_);
  // Versions in memory: the unsealed segment's, and those of sealed segments
  // without a usable on-disk index (formats 1 and 2, damaged). Mutable: a
  // read that finds a damaged index block moves that segment's versions here.
  mutable PageIndex index_ GUARDED_BY(state_mu_);
  // The sealed segments whose on-disk page index is in use, and the same as
  // one shared list ordered by their newest version, newest first (a read
  // takes the list and searches it without the lock).
  mutable SegmentTable<std::shared_ptr<const SegmentIndex>> seg_indexes_ GUARDED_BY(state_mu_);
  mutable std::shared_ptr<const std::vector<std::shared_ptr<const SegmentIndex>>> sealed_view_
      GUARDED_BY(state_mu_);
  // Mutable: a lazy segment's first use sets its size as its file has it.
  mutable SegmentTable<Segment> segments_ GUARDED_BY(state_mu_);
  // Live records' payloads, by timeline.
  std::unordered_map<TimelineId, uint64_t> payload_bytes_ GUARDED_BY(state_mu_);
  Lsn durable_lsn_ GUARDED_BY(state_mu_) = 0;
  // DurableEnd's segment and bytes: the active segment and its synced bytes.
  uint64_t durable_segment_ GUARDED_BY(state_mu_) = 0;
  uint64_t durable_bytes_ GUARDED_BY(state_mu_) = 0;
  // After a failed fsync: the durable LSN then. Reads never see a record past
  // it (pending records that can no longer become durable): Head and
  // ResolveLsn answer as of it, reads of a state past it fail store_failed.
  Lsn failed_limit_ GUARDED_BY(state_mu_) = ~Lsn{0};
  Lsn gc_lsn_ GUARDED_BY(state_mu_) = 0;  // last_lsn of the newest GC manifest
  // Ends a CachedUsage: bumped by every change that can move a version between
  // exclusive and shared or drop one (create, reset, drop, GC), not a commit.
  uint64_t usage_epoch_ GUARDED_BY(state_mu_) = 0;
  // Ends every LocationCache answer: bumped by what moves versions or
  // deletes their files (compaction, a segment's index dropped or demoted).
  // A seal does not: a version's segment and offset stay what they were. Nor
  // does GC's removal of versions: a version a cached answer names that a
  // live state still reads is kept, and a newer one is found above as_of.
  mutable uint64_t location_epoch_ GUARDED_BY(state_mu_) = 0;

  // Internally synchronized.
  mutable PathCache path_cache_;
  mutable PageCache page_cache_;
  mutable MetaCache meta_cache_;
  mutable IndexBlockCache index_cache_;
  mutable LocationCache location_cache_;
  // Whether a read has put an answer in location_cache_: until then reads do
  // not look it up (a single branch's reads never pay for the cache).
  mutable std::atomic<bool> locations_cached_{false};
  mutable RecordBlockCache record_cache_;
  // Damaged record metas reads served from their footer's copy (Damage()).
  mutable Mutex damage_mu_;
  mutable std::vector<std::string> read_damage_ GUARDED_BY(damage_mu_);
  // Usage(t) answers from here (a full plan reads every segment's index).
  mutable Mutex usage_mu_;
  mutable std::unordered_map<TimelineId, CachedUsage> usage_cache_ GUARDED_BY(usage_mu_);
  mutable Mutex files_mu_;
  mutable std::unordered_map<uint32_t, std::shared_ptr<RandomAccessFile>> files_
      GUARDED_BY(files_mu_);
};

}  // namespace branchdb::storage::internal

#endif  // BRANCHDB_STORAGE_PAGE_STORE_IMPL_H_
