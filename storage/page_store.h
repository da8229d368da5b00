// PageStore: the embedded, log-structured, copy-on-write page engine of one
// project. Every SQLite page of every branch of the project lives here.
//
// Model
// -----
// Every durable change is a *record* in an append-only log and gets the next
// LSN of the store (one counter per store, starting at 1; LSN 0 means "nothing",
// i.e. the empty database). Every record LSN therefore names exactly one *state*:
// a complete database image (page size kPageSize, a size in pages).
//
// A *timeline* is a stable id (a branch's storage identity) that points at a
// head state and only accepts commits on top of that head. Three record kinds
// move a timeline:
//   - CreateTimeline(base): a new timeline whose first state is state(base).
//   - Commit(t, ...): state = state(head(t)) + the given page images.
//   - ResetTimeline(t, base): t's next state is state(base) — any state of the
//     store, on any timeline, older or newer. This is rollback, reset-from-parent,
//     undo of a rollback and promotion (fast-forward); O(1) in database size.
// The *history* (path) of a timeline is the chain of records that produced its
// head: its own records back to its latest create/reset record, then the base's
// history, recursively. "Timeline t as of LSN L" is the newest record on t's
// current history with lsn <= L.
//
// Reads of page P at (t, L): the newest version of P written by a commit on
// t's history with lsn <= L; pages past the database size, or never written,
// read as zeros. Read cost does not grow with the length of the history chain.
//
// Durability: a mutating call returns only once its record is durable
// (fdatasync of the log, and of the directory for a new segment file).
// Concurrent mutations, on one timeline or many, share one fdatasync (group
// commit). CommitNoWait is the exception: it returns once the record is in
// the log (written, not yet synced) and visible to reads, and WaitDurable(lsn)
// waits for durability later (early lock release: the next commit on the
// timeline may build on a head that is not yet durable). Records become
// durable in log order: one fdatasync covers every record appended before it,
// so "lsn is durable" implies every smaller LSN is. Reads (Head, ReadPage,
// History, ...) see appended records before they are durable: a caller that
// reports what it read must first WaitDurable(the LSN it read at). A failed
// fsync (or write) puts the store in a failed state: every WaitDurable on a record not
// yet durable (and so every commit built on one) fails, reads no longer see
// those records (Head and ResolveLsn answer as of the last durable LSN, a read
// of a state past it fails with store_failed), and every later mutation
// returns IOError (reason "store_failed") until the store is reopened.
// A write that found the disk full (no fsync failed; never acknowledged)
// stops mutations too, with ResourceExhausted (reason "disk_full"), since its
// bytes may be half in the log: reopening runs recovery, which drops them
// (storage/store_pool.h reopens by itself).
// Recovery on Open validates checksums, truncates a torn tail, and never loses
// an acknowledged record. The format is in docs/storage-format.md.
//
// Garbage collection keeps readable the head state of every live timeline,
// every pinned state and every state recorded within the restore window (the
// "roots"), plus every page version some root reads (so a child keeps the
// data it needs from a dropped parent). Every other state is collected: reads,
// ResolveLsn, LsnAt, GetRecord and CreateTimeline/ResetTimeline on it return
// NotFound (reason "lsn_not_found"), and History skips it. Its page versions
// that no root reads are reclaimed.
//
// Thread-safety: all methods are safe to call concurrently. Only one process
// may open a store directory at a time (Open fails with Unavailable otherwise).
#ifndef BRANCHDB_STORAGE_PAGE_STORE_H_
#define BRANCHDB_STORAGE_PAGE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "storage/cache.h"

namespace branchdb::storage {

using Lsn = uint64_t;         // 0 = the empty state / "none"
using TimelineId = uint64_t;  // 0 = "none"; ids are never reused within a store
using PageNo = uint32_t;      // 1-based, as in SQLite

inline constexpr size_t kPageSize = 4096;
// Largest payload of one commit (PageStore::Commit).
inline constexpr size_t kMaxPayloadBytes = 64u << 20;

struct PageStoreOptions {
  // Default: Env::Default(). Not owned; must outlive the store.
  Env* env = nullptr;
  // Create the directory and an empty store when none exists. Default: true.
  bool create_if_missing = true;
  // A segment file is sealed and a new one started once it grows past this.
  // Until then the store keeps up to a sixteenth of it of its records' metas
  // for the footer (the seal reads the others back). Default: 64 MiB.
  uint64_t segment_bytes = 64ull << 20;
  // The active segment is kept this far ahead of its last record with written
  // (and synced) zeros, grown in steps of this size, so that a commit's
  // fdatasync overwrites allocated blocks of a file whose size does not
  // change (docs/storage-format.md, "The zero region"). 0: records are
  // appended to the file's end. Default: 4 MiB.
  uint64_t preallocate_bytes = 4ull << 20;
  // The cache the store keeps decoded record metadata (annotations, page
  // lists), decoded page index blocks, where reads found pages in sealed
  // segments and, with cache_page_images, page images in, shared with other
  // stores (storage/cache.h): one memory budget for all the stores of a
  // process (the server's [storage] cache_mb). The store takes an owner id
  // from it and drops its entries when it closes. Default (null): the store
  // makes caches of its own, sized by cache_bytes and meta_cache_bytes below.
  std::shared_ptr<Cache> cache;
  // Whether page images read from the segments are kept in the cache.
  // Default: false: the segment files are in the OS page cache, and SQLite
  // keeps the pages it uses in its own; a third copy made every read slower
  // (docs/benchmarks.md, "vfs_bench: reads at native speed"), so only the
  // meta (and index) caches take the memory budget. Set it where segments
  // are slow to read.
  bool cache_page_images = false;
  // Without `cache`, with cache_page_images: bytes of page images kept in a
  // cache of the store's own. Default: 64 MiB.
  uint64_t cache_bytes = 64ull << 20;
  // Without `cache`: bytes of decoded record metadata kept in a cache of the
  // store's own; the rest is read from the segments when History, GetRecord
  // or ChangedPages need it. A record's metadata larger than this is never
  // cached. Default: 8 MiB.
  uint64_t meta_cache_bytes = 8ull << 20;
  // Without `cache`: bytes of decoded page index blocks of sealed segments
  // kept in a cache of the store's own (a read of a page whose newest
  // version is in a sealed segment reads its index block through it); an
  // eighth of it again for where such reads found their pages, and four
  // times it for the runs' ancestry paths (PathCache). Default: 8 MiB.
  uint64_t index_cache_bytes = 8ull << 20;
  // A clean close (the store's destruction) seals the active segment when it
  // holds a record and writes MANIFEST, so that the next Open scans no tail
  // (docs/storage-format.md, "Recovery"): each close after writes leaves one
  // more, possibly small, sealed segment. Default: false (the server does
  // not set it yet; the tests model crashes by closing).
  bool seal_on_close = false;
};

enum class RecordKind : uint8_t {
  kCreate = 1,  // CreateTimeline
  kCommit = 2,  // Commit
  kReset = 3,   // ResetTimeline
  kDrop = 4,    // DropTimeline
};

// One record as seen by History(), GetRecord().
struct RecordInfo {
  Lsn lsn = 0;
  RecordKind kind = RecordKind::kCommit;
  TimelineId timeline = 0;
  int64_t time_micros = 0;        // wall clock (Env's Clock) when written
  uint32_t db_size_pages = 0;     // database size in pages of the resulting state
  Lsn base = 0;                   // kCreate/kReset: the state it starts from
  std::string annotation;         // caller's bytes (who / what), verbatim
  std::vector<PageNo> pages;      // kCommit: the pages written, ascending
  uint32_t payload_bytes = 0;     // kCommit: size of its payload (ReadPayload); 0: none
};

struct TimelineInfo {
  TimelineId id = 0;
  Lsn head = 0;             // LSN of the newest record on its history
  Lsn created_lsn = 0;      // LSN of its kCreate record
  Lsn base = 0;             // state it was created from (0 = empty)
  int64_t created_micros = 0;
};

struct PageWrite {
  PageNo pgno = 0;
  std::string_view data;  // exactly kPageSize bytes; not retained after Commit returns
};

// Where the durable part of a store's log ends (PageStore::DurableEnd).
struct DurablePoint {
  Lsn lsn = 0;           // the durable LSN (LastLsn())
  uint64_t segment = 0;  // number of the active (unsealed) segment; 0: not known
  // Its first `bytes` bytes (header included) are durable and hold every
  // record of it up to lsn; they never change (a segment only grows).
  uint64_t bytes = 0;
};

struct GcOptions {
  // Records written within this many microseconds before now stay restorable.
  int64_t restore_window_micros = 7ll * 24 * 3600 * 1000000;
  // States that must stay readable whatever their age (labelled checkpoints,
  // branch points the catalog needs, states open for reading).
  std::vector<Lsn> pins;
  // Which segments compaction may rewrite or delete, by number. Unset (the
  // default): every one. A segment it refuses stays on disk as it is, whole
  // (the GC itself is unchanged: what it collects stays collected, and the
  // segment's garbage waits for a later GC that may rewrite it); the active
  // segment is sealed for compaction only if allowed. Object storage allows
  // only segments the bucket holds (docs/object-storage.md, "Compaction's
  // outputs"). Called during Gc, without the store's locks held; it must not
  // call into the store.
  std::function<bool(uint64_t segment)> may_rewrite;
};

struct GcStats {
  // Versions no root reads. A sealed segment's on-disk page index keeps
  // listing such versions until compaction rewrites the segment, so a
  // version there is counted again by each GC until then.
  uint64_t versions_removed = 0;
  uint64_t bytes_reclaimed = 0;   // file bytes returned to the file system
  uint64_t segments_rewritten = 0;
};

struct StoreStats {
  uint64_t records = 0;                // live records
  uint64_t record_metadata_bytes = 0;  // RecordMetadataBytes()
  // Its caches of decoded record metadata, of page images and of sealed
  // segments' page index blocks. With caches of its own: theirs, counted
  // from the store's open. With a shared cache (PageStoreOptions::cache):
  // that cache's figures for the kind, all its stores together
  // (Cache::Stats(kind)), capacity_bytes the whole cache's.
  CacheStats meta_cache;
  CacheStats page_cache;
  CacheStats index_cache;
  CacheStats location_cache;  // where reads found pages in sealed segments
  // Bytes the page index holds in memory: the versions of the unsealed
  // segment (and of sealed segments without an on-disk index: formats 1
  // and 2, or a damaged index), plus each sealed segment's index directory
  // and filter, and each sealed segment's record index directory, and the
  // cached path maps of runs (bounded: 32 MiB). Does not grow with sealed
  // history beyond the directories.
  uint64_t page_index_bytes = 0;
  uint64_t page_index_versions = 0;    // versions held in memory
  // What the unsealed segment keeps in memory for its footer until the seal:
  // its records' offsets (8 bytes each) and its first records' metas (up to
  // segment_bytes / 16; the others are read back from the file at the
  // seal). Bounded by the segment, not by history.
  uint64_t unsealed_record_bytes = 0;
};

struct SpaceUsage {
  // Bytes of page versions only this timeline's history reaches.
  uint64_t exclusive_bytes = 0;
  // Bytes of page versions it reaches that other live timelines reach too.
  uint64_t shared_bytes = 0;
  // Its head's logical size: db_size_pages * kPageSize.
  uint64_t logical_bytes = 0;
};

class PageStore {
 public:
  PageStore() = default;
  PageStore(const PageStore&) = delete;
  PageStore& operator=(const PageStore&) = delete;
  virtual ~PageStore() = default;

  // Opens (recovering if needed) or creates the store in dir.
  static Result<std::unique_ptr<PageStore>> Open(const PageStoreOptions& options,
                                                 const std::string& dir);

  // --- Timelines -------------------------------------------------------------

  // Creates a timeline whose first state is state(base) (base 0: empty; else
  // any record LSN of the store). O(1). Returns its id; its head is the LSN of
  // the kCreate record. NotFound if base names no state (or was collected).
  virtual Result<TimelineId> CreateTimeline(Lsn base, std::string_view annotation) = 0;

  // Same, from "ancestor as of ancestor_lsn" (ResolveLsn(ancestor, ancestor_lsn)).
  virtual Result<TimelineId> CreateTimeline(TimelineId ancestor, Lsn ancestor_lsn,
                                            std::string_view annotation) = 0;

  // Moves t to state(base): durable, O(1). expected_head must equal Head(t)
  // (Conflict, reason "head_moved", otherwise). Returns the new head (the
  // kReset record's LSN); the previous head stays a valid base for undo.
  virtual Result<Lsn> ResetTimeline(TimelineId t, Lsn expected_head, Lsn base,
                                    std::string_view annotation) = 0;

  // Removes the timeline t by appending a kDrop record (whose state is t's
  // last head). Its states stay readable as bases until GC collects them (they
  // survive GC while pinned or inside the restore window); the page versions
  // other timelines' histories read are kept whatever happens to t's states.
  virtual Status DropTimeline(TimelineId t) = 0;

  virtual Result<TimelineInfo> GetTimeline(TimelineId t) const = 0;
  virtual std::vector<TimelineInfo> ListTimelines() const = 0;
  virtual Result<Lsn> Head(TimelineId t) const = 0;

  // --- Writes ---------------------------------------------------------------

  // Appends one commit to t: the given pages (any order, no duplicates, each
  // exactly kPageSize bytes, pgno in 1..db_size_pages) on top of Head(t), and
  // the new database size (pages past it are dropped from the state). Returns
  // the new LSN once durable. Conflict (reason "head_moved") when Head(t) !=
  // expected_head. An empty page list is allowed (e.g. a size change).
  // The annotation is kept in memory for the record's life (keep it small);
  // the payload (at most kMaxPayloadBytes; empty: none) is written in the
  // same record, durable with it, but only on disk: ReadPayload reads it back,
  // and PayloadBytes(t) counts it while the record lives.
  virtual Result<Lsn> Commit(TimelineId t, Lsn expected_head, const std::vector<PageWrite>& pages,
                             uint32_t db_size_pages, std::string_view annotation,
                             std::string_view payload = {}) = 0;

  // Commit without waiting for durability: validates and appends the record
  // exactly as Commit does and returns its LSN once the record is in the log
  // (not yet synced) and visible to reads; Head(t) is then that LSN, and the
  // next commit on t may build on it. The commit is not acknowledged until
  // WaitDurable(lsn) returns OK: a crash may take it back, and a failed fsync
  // fails it (and every record after it).
  virtual Result<Lsn> CommitNoWait(TimelineId t, Lsn expected_head,
                                   const std::vector<PageWrite>& pages, uint32_t db_size_pages,
                                   std::string_view annotation, std::string_view payload = {}) = 0;

  // Waits until every record up to lsn is durable (durability is in log
  // order); OK at once when it already is (lsn 0 included). Concurrent
  // waiters share one fdatasync, which covers every record appended so far.
  // Fails with the store's failure (IOError store_failed) when an fsync
  // failed before lsn became durable, also for every waiter that comes later;
  // with IOError (reason "not_durable") when lsn names no record of the log
  // (e.g. a record a reopen did not find). A full disk (disk_full) does not
  // stop records already appended from becoming durable.
  virtual Status WaitDurable(Lsn lsn) = 0;

  // --- Reads ----------------------------------------------------------------

  // Newest record on t's history with lsn <= lsn (NotFound if none, i.e. lsn
  // is before t's history begins or was garbage-collected).
  virtual Result<Lsn> ResolveLsn(TimelineId t, Lsn lsn) const = 0;

  // Page pgno of state(ResolveLsn(t, lsn)) into out (resized to kPageSize).
  virtual Status ReadPage(TimelineId t, PageNo pgno, Lsn lsn, std::string* out) const = 0;
  // Page pgno of state(state_lsn), where state_lsn is any record LSN.
  virtual Status ReadPageAt(Lsn state_lsn, PageNo pgno, std::string* out) const = 0;
  // The same into out[0, kPageSize) (SQLite's buffer: no copy in between).
  // On an error, out's bytes are unspecified.
  virtual Status ReadPageInto(Lsn state_lsn, PageNo pgno, char* out) const = 0;

  // Database size in pages of the state of t as of lsn / of state(state_lsn).
  virtual Result<uint32_t> DbSize(TimelineId t, Lsn lsn) const = 0;
  virtual Result<uint32_t> DbSizeAt(Lsn state_lsn) const = 0;

  // --- History --------------------------------------------------------------

  // GetRecord, History and ChangedPages read the records' metadata from
  // their segments (through the meta cache), each checked by its checksum: a
  // damaged one is served from the segment footer's copy when that is intact
  // (and listed in Damage()), else the call returns Corruption naming the
  // segment, the offset and the LSN. Never a wrong answer.
  virtual Result<RecordInfo> GetRecord(Lsn lsn) const = 0;

  // The payload of record lsn, read from its segment (checksum verified:
  // Corruption otherwise); empty when it has none. NotFound (reason
  // "lsn_not_found") when lsn names no live record.
  virtual Result<std::string> ReadPayload(Lsn lsn) const = 0;

  // Records on t's history with lsn <= before (0: from the head), newest first,
  // at most limit of them, walking through resets and into bases.
  virtual Result<std::vector<RecordInfo>> History(TimelineId t, Lsn before,
                                                  size_t limit) const = 0;

  // Records written to t itself with lsn <= before (0: from the newest),
  // newest first, at most limit of them: its creation, its commits and its
  // resets, on its current history or left behind by a reset (a branch's
  // reflog; History gives its current history). Costs what t wrote, not
  // what the store holds.
  virtual Result<std::vector<RecordInfo>> OwnRecords(TimelineId t, Lsn before,
                                                     size_t limit) const = 0;

  // Newest record on t's history written at or before time_micros (NotFound if none).
  virtual Result<Lsn> LsnAt(TimelineId t, int64_t time_micros) const = 0;

  // Pages whose contents may differ between state(a) and state(b) (a superset
  // of the pages that differ; exact when one state is an ancestor of the other).
  virtual Result<std::vector<PageNo>> ChangedPages(Lsn a, Lsn b) const = 0;

  // --- Space ----------------------------------------------------------------

  // Collects what the roots (see the file comment) do not need, writes the new
  // structure durably, then rewrites segments that are mostly garbage and
  // deletes the old files. Mutations wait while it runs; reads continue. An
  // error while rewriting is returned but leaves the store working (every
  // intermediate state is recoverable), except a failed directory fsync after
  // a rewritten segment is renamed into place, which fails the store as a
  // failed log fsync does. Pins naming no live state are ignored.
  virtual Result<GcStats> Gc(const GcOptions& options) = 0;
  virtual Result<SpaceUsage> Usage(TimelineId t) const = 0;
  // Bytes of all segment files.
  virtual uint64_t DiskBytes() const = 0;
  // Bytes of payloads of the live records written on t (its own commits,
  // including those a rollback moved away from, until GC collects them).
  // 0 for an unknown timeline. Cheap (a counter).
  virtual uint64_t PayloadBytes(TimelineId t) const = 0;
  // Bytes of record metadata the store holds in memory for its live records:
  // a fixed cost (48 bytes) per record of the unsealed segment (and of sealed
  // segments without a usable record index: formats 1 to 3, damaged),
  // whatever its annotation, page list or payload (those are on disk, read
  // on demand; the bounded cache of what was read is in Stats().meta_cache).
  // A sealed format-4 segment's records cost nothing here: their entries
  // are read from its record index, through Stats().index_cache.
  virtual uint64_t RecordMetadataBytes() const = 0;
  // Sizes and hit counts of the store's in-memory caches.
  virtual StoreStats Stats() const = 0;

  // OK, or the failure that stopped the store's writes: IOError store_failed
  // (an fsync), or the failed write's own error (disk_full for a full disk).
  virtual Status Health() const = 0;
  // The damage recovery found and worked around when it opened the store: one
  // line per sealed segment whose trailer or footer failed its checks and
  // whose record list was rebuilt by scanning its records ("seg-000003.log:
  // footer checksum mismatch; record list rebuilt by scanning 120 records").
  // Then one line per damaged record metadata that a read found since and
  // served from the segment footer's intact copy (a record whose metadata
  // has no intact copy is a Corruption for the calls that need it). The
  // files are left as they are; every open scans them again. Empty when none.
  virtual std::vector<std::string> Damage() const = 0;
  // Newest durable LSN of the store (appended records past it are pending).
  virtual Lsn LastLsn() const = 0;
  // The durable LSN with the active segment's durable size: what a copy of
  // the log may take of the unsealed segment (object storage's tail
  // uploads). Every sealed segment is durable whole.
  virtual DurablePoint DurableEnd() const = 0;
};

}  // namespace branchdb::storage

#endif  // BRANCHDB_STORAGE_PAGE_STORE_H_
