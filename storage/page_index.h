// In-memory structures of the page store (internal to storage/):
//   - Run: a create/reset record plus the records that follow it on its
//     timeline, with a link to the state it starts from (base).
//   - PathMap: for one run, every run on its ancestry path and that run's
//     cutoff LSN, so a read checks visibility in O(log depth).
//   - PageIndex: for each page number, its versions (lsn, run, location)
//     sorted by LSN, all runs mixed; about 24 bytes per version.
//   - PageCache: page images keyed by (lsn, pgno), in the store's Cache.
//   - LocationCache: where a run's reads found a page in the sealed segments.
// Thread-safety: PageIndex and Run are guarded by the store's state mutex;
// PageCache and LocationCache are internally synchronized.
#ifndef BRANCHDB_STORAGE_PAGE_INDEX_H_
#define BRANCHDB_STORAGE_PAGE_INDEX_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "storage/cache.h"
#include "storage/page_store.h"

namespace branchdb::storage::internal {

inline constexpr uint32_t kNoRun = std::numeric_limits<uint32_t>::max();
inline constexpr uint64_t kZeroOffset = std::numeric_limits<uint64_t>::max();
inline constexpr Lsn kMaxLsn = std::numeric_limits<Lsn>::max();

// One version of one page. offset == kZeroOffset: the page reads as zeros
// (written when a commit shrinks the database); segment is still the one
// holding the record.
struct Version {
  Lsn lsn = 0;
  uint32_t run = kNoRun;
  uint32_t segment = 0;
  uint64_t offset = 0;  // of the image block (crc + image) in the segment file
  bool IsZero() const { return offset == kZeroOffset; }
};

// An entry of a run's record list: a live record, or the first record of a
// stretch of garbage-collected ones (live == false). One per live record, so
// packed into 16 bytes: the flag takes the LSN's top bit (LSNs count commits
// from 1 and never reach 2^63).
struct RunEntry {
  RunEntry() = default;
  RunEntry(Lsn l, int64_t time, bool is_live) : lsn(l), live(is_live), time_micros(time) {}
  Lsn lsn : 63 = 0;
  Lsn live : 1 = 1;
  int64_t time_micros = 0;
};
static_assert(sizeof(RunEntry) == 16, "a record's cost in its run's list");

// A run's record list, ascending LSN, packed: in chunks of 256 entries, each
// an 8-byte word relative to the chunk's first entry (31 bits of LSN delta,
// the live flag, 32 bits of time delta in microseconds), so 8 bytes per
// record. A chunk whose entries do not fit that (a gap of 2^31 LSNs or of
// 71 minutes within it, or entries pushed out of order) holds them whole
// (16 bytes each). Entries are read by value.
class RunList {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  RunEntry operator[](size_t i) const {
    const Chunk& c = chunks_[i / kChunk];
    if (!c.wide.empty()) return c.wide[i % kChunk];
    const uint64_t w = c.packed[i % kChunk];
    return RunEntry{c.first_lsn + (w >> 33), c.first_time + static_cast<int64_t>(w & 0xffffffffu),
                    ((w >> 32) & 1) != 0};
  }
  RunEntry back() const { return (*this)[size_ - 1]; }
  void push_back(const RunEntry& e);
  // The index of the first entry with lsn > l (UpperBound), >= l (LowerBound).
  size_t UpperBound(Lsn l) const;
  size_t LowerBound(Lsn l) const;
  // The index of the first entry in [0, end) with time_micros > t (times
  // never decrease with LSN), or end.
  size_t UpperBoundTime(int64_t t, size_t end) const;
  // Sorts by LSN when entries were pushed out of order (recovery).
  void SortIfNeeded();
  uint64_t MemoryBytes() const;

  // Range-for over the entries, by value.
  class Iterator {
   public:
    Iterator(const RunList* l, size_t i) : l_(l), i_(i) {}
    RunEntry operator*() const { return (*l_)[i_]; }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const Iterator& o) const { return i_ != o.i_; }

   private:
    const RunList* l_;
    size_t i_;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, size_); }

 private:
  static constexpr size_t kChunk = 256;
  struct Chunk {
    Lsn first_lsn = 0;
    int64_t first_time = 0;
    std::vector<uint64_t> packed;
    std::vector<RunEntry> wide;  // all of the chunk's entries, when one did not pack
  };
  std::vector<Chunk> chunks_;
  size_t size_ = 0;
};

struct Run {
  bool exists = false;
  TimelineId timeline = 0;
  Lsn start = 0;           // LSN of its create/reset record
  Lsn base = 0;            // state it starts from (0 = empty)
  uint32_t base_run = kNoRun;
  uint32_t depth = 0;      // 0 when base == 0
  RunList entries;  // ascending LSN
  // Live records of this run in the sealed segments MANIFEST listed at Open
  // that are not in `entries` yet: Open reads no record index, the list is
  // completed on first need (PageStoreImpl::LoadRunLists). 0: complete.
  uint64_t on_disk = 0;
};

// A sorted map from a key (a run index, or a run's start LSN) to a cutoff
// LSN, held in chunks of at most 2 * kChunk entries that maps share: a map
// made from another (ExtendPathMap) copies the other's chunk directory and
// only the chunks it changes, so a branch thousands of rollbacks deep gets
// each new run's map for O(depth / kChunk) pointers and two chunks, and the
// maps of one branch's runs hold its path once, not once per map.
// Immutable once shared (chunks are never written after they are shared).
template <typename K>
class CutoffMap {
 public:
  using Entry = std::pair<K, Lsn>;
  static constexpr size_t kChunk = 64;

  CutoffMap() = default;
  // From entries sorted by key, without duplicates.
  explicit CutoffMap(const std::vector<Entry>& sorted);
  // The cutoff of key, or 0 when key is not in the map.
  Lsn Find(K key) const;
  // Sets key's cutoff, inserting key when absent. Copies the chunk it changes.
  void Set(K key, Lsn cutoff);
  // A copy that shares every chunk of this map and owns none of them.
  CutoffMap Derive() const {
    CutoffMap m;
    m.chunks_.reserve(std::bit_ceil(chunks_.size() + 1));  // room for a new run's chunk
    m.chunks_.assign(chunks_.begin(), chunks_.end());
    m.firsts_.reserve(m.chunks_.capacity());
    m.firsts_.assign(firsts_.begin(), firsts_.end());
    m.size_ = size_;
    return m;
  }
  size_t size() const { return size_; }
  // Every entry, ascending key.
  std::vector<Entry> Entries() const {
    std::vector<Entry> out;
    out.reserve(size_);
    ForEach([&out](K k, Lsn c) { out.emplace_back(k, c); });
    return out;
  }
  // Calls fn(key, cutoff) for every entry, ascending key.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& c : chunks_) {
      for (const Entry& e : *c) fn(e.first, e.second);
    }
  }
  // Bytes this map holds alone: its chunk directory and the chunks no other
  // map holds (at its making: the ones it made; the ones it shares with its
  // base are counted by the base).
  uint64_t OwnBytes() const {
    uint64_t n = chunks_.capacity() * sizeof(chunks_[0]) + firsts_.capacity() * sizeof(K);
    for (const auto& c : chunks_) {
      if (c.use_count() == 1) n += 48 + c->capacity() * sizeof(Entry);
    }
    return n;
  }

 private:
  using Chunk = std::vector<Entry>;
  // The index of the chunk that holds key or would (0 for an empty map).
  size_t ChunkOf(K key) const;

  std::vector<std::shared_ptr<const Chunk>> chunks_;  // never empty ones
  std::vector<K> firsts_;                             // each chunk's first key
  size_t size_ = 0;
};

// Runs on the ancestry path of one run, with cutoffs: by run index and by
// the run's start LSN (the run's identity in a sealed segment's on-disk
// index). The run itself has cutoff kMaxLsn (the reader's LSN applies).
class PathMap {
 public:
  PathMap(CutoffMap<uint32_t> runs, CutoffMap<Lsn> by_start)
      : runs_(std::move(runs)), by_start_(std::move(by_start)) {}
  // Cutoff of run on this path, or 0 when run is not on it.
  Lsn Cutoff(uint32_t run) const { return runs_.Find(run); }
  // Cutoff of the run that starts at LSN start, or 0 when it is not on it.
  Lsn CutoffByStart(Lsn start) const { return by_start_.Find(start); }
  // Runs on the path.
  size_t size() const { return runs_.size(); }
  // Calls fn(run, cutoff) for every run on the path, ascending run index.
  template <typename Fn>
  void ForEachRun(Fn&& fn) const {
    runs_.ForEach(fn);
  }
  const CutoffMap<uint32_t>& runs() const { return runs_; }
  const CutoffMap<Lsn>& by_start() const { return by_start_; }
  // Bytes this map holds alone (CutoffMap::OwnBytes) and the object.
  uint64_t MemoryBytes() const { return sizeof(PathMap) + runs_.OwnBytes() + by_start_.OwnBytes(); }

 private:
  CutoffMap<uint32_t> runs_;
  CutoffMap<Lsn> by_start_;
};

// Builds the path map of run r (walks its base chain).
std::shared_ptr<const PathMap> BuildPathMap(const std::vector<Run>& runs, uint32_t r);
// The same from the map of r's base run (runs[r].base_run != kNoRun),
// without the walk: it shares the base map's chunks (CutoffMap).
std::shared_ptr<const PathMap> ExtendPathMap(const PathMap& base, const std::vector<Run>& runs,
                                             uint32_t r);

// The path maps of one store's runs, by run index, in the store's Cache
// (CacheKind::kPath), each charged the bytes it holds alone
// (PathMap::MemoryBytes: a map made from its base run's shares its chunks).
// The map last made is also held here, so that a map too large for a shard
// of the cache (a path of a million runs) is not rebuilt at every read.
// Maps stay valid after eviction. Thread-safe.
class PathCache {
 public:
  explicit PathCache(std::shared_ptr<Cache> cache)
      : cache_(std::move(cache)), owner_(cache_->NewOwnerId()) {}
  ~PathCache() { cache_->EraseOwner(owner_); }
  PathCache(const PathCache&) = delete;
  PathCache& operator=(const PathCache&) = delete;

  // REQUIRES: caller holds the state mutex (shared is enough).
  std::shared_ptr<const PathMap> Get(const std::vector<Run>& runs, uint32_t r) EXCLUDES(mu_);
  // Forgets every map (run indexes changed). REQUIRES: the state mutex held
  // exclusively (no Get runs meanwhile).
  void Clear() EXCLUDES(mu_);
  // The cache's figures for path maps (Cache::Stats(CacheKind::kPath)).
  CacheStats Stats() const { return cache_->Stats(CacheKind::kPath); }
  // Bytes held outside the cache (the map last made).
  uint64_t MemoryBytes() const EXCLUDES(mu_);

 private:
  CacheKey Key(uint32_t r) const {
    return CacheKey{owner_, CacheKind::kPath, r, generation_.load(std::memory_order_relaxed)};
  }

  const std::shared_ptr<Cache> cache_;
  const uint64_t owner_;
  // In the keys: Clear() makes every earlier entry unreachable (the cache
  // evicts them as they age) without a pass over the cache.
  std::atomic<uint64_t> generation_{0};
  mutable Mutex mu_;
  uint32_t last_run_ GUARDED_BY(mu_) = kNoRun;
  std::shared_ptr<const PathMap> last_ GUARDED_BY(mu_);
};

// Versions of every page, sorted by LSN per page.
class PageIndex {
 public:
  // Adds v to pgno's versions (v.lsn is normally the largest so far).
  void Add(PageNo pgno, const Version& v);
  std::span<const Version> Versions(PageNo pgno) const;
  // For pages with many versions: the positions (in Versions()) of each run's
  // versions, ascending; nullptr when the page has few versions.
  using ByRun = std::unordered_map<uint32_t, std::vector<uint32_t>>;
  const ByRun* VersionsByRun(PageNo pgno) const;
  static constexpr size_t kByRunThreshold = 48;
  std::span<Version> MutableVersions(PageNo pgno);
  // Replaces pgno's versions (sorted by LSN).
  void Set(PageNo pgno, std::vector<Version> versions);
  bool HasVersions(PageNo pgno) const { return !Versions(pgno).empty(); }
  // Highest page number that has ever had a slot (0 if none).
  PageNo MaxPgno() const;
  // Calls fn(pgno, span) for every page with versions, ascending pgno.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (size_t c = 0; c < chunks_.size(); ++c) {
      if (!chunks_[c]) continue;
      for (size_t i = 0; i < kChunk; ++i) {
        PageNo pgno = static_cast<PageNo>(c * kChunk + i);
        auto v = Versions(pgno);
        if (!v.empty()) fn(pgno, v);
      }
    }
  }
  // Page numbers in (lo, hi] that may have versions, here or in a sealed
  // segment's on-disk index (NoteOnDisk), ascending: a superset (a page
  // whose versions GC removed stays in it).
  std::vector<PageNo> PagesInRange(PageNo lo, PageNo hi) const;
  // Records that pgno has a version in a sealed segment's on-disk index.
  void NoteOnDisk(PageNo pgno) { MarkKnown(pgno); }
  // The pages PagesInRange knows of, as inclusive ranges, ascending (for
  // the store manifest, which gives them back through NoteOnDisk).
  std::vector<std::pair<PageNo, PageNo>> KnownRanges() const;
  // Removes pgno's versions for which drop(version) is true.
  template <typename Pred>
  void RemoveIf(PageNo pgno, Pred&& drop) {
    auto vs = Versions(pgno);
    if (vs.empty()) return;
    std::vector<Version> kept;
    for (const Version& v : vs) {
      if (!drop(v)) kept.push_back(v);
    }
    if (kept.size() != vs.size()) Set(pgno, std::move(kept));
  }
  // The first page number >= from with versions here; false when none.
  bool NextPage(PageNo from, PageNo* out) const;
  uint64_t version_count() const { return version_count_; }
  // Bytes held: slots, versions, by-run positions, the known-page bitmap.
  uint64_t MemoryBytes() const;

 private:
  static constexpr size_t kChunk = 1024;
  struct Slot {
    Version one;               // the only version, when more is empty and one.lsn != 0
    std::vector<Version> more;  // all versions, when there are two or more
    std::unique_ptr<ByRun> by_run;  // when more.size() >= kByRunThreshold
  };
  static void BuildByRun(Slot* s);
  using Chunk = std::array<Slot, kChunk>;
  const Slot* FindSlot(PageNo pgno) const;
  Slot* GetSlot(PageNo pgno);

  void MarkKnown(PageNo pgno) {
    if (pgno / 64 >= known_.size()) known_.resize(pgno / 64 + 1);
    known_[pgno / 64] |= 1ull << (pgno % 64);
  }

  std::vector<std::unique_ptr<Chunk>> chunks_;
  uint64_t version_count_ = 0;
  std::vector<uint64_t> known_;  // bit per page number that may have versions
};

// The page images of one store in a Cache (storage/cache.h), keyed by
// (lsn, pgno), when PageStoreOptions::cache_page_images is set; else Lookup
// always misses (uncounted) and Insert keeps nothing. A page version's image
// never changes (compaction copies it as it is), so entries need no
// invalidation. Thread-safe.
class PageCache {
 public:
  // Entries go into `cache` under a new owner id of it; dropped when this
  // object goes (the store closes).
  PageCache(std::shared_ptr<Cache> cache, bool enabled)
      : cache_(std::move(cache)), owner_(cache_->NewOwnerId()), enabled_(enabled) {}
  ~PageCache() { cache_->EraseOwner(owner_); }
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  // Copies the cached image of (lsn, pgno) to out[0, kPageSize); false when absent.
  bool Lookup(Lsn lsn, PageNo pgno, char* out) const;
  // Caches a copy of data[0, kPageSize).
  void Insert(Lsn lsn, PageNo pgno, const char* data) const;
  // The cache's figures for page images (Cache::Stats(CacheKind::kPage)).
  CacheStats Stats() const { return cache_->Stats(CacheKind::kPage); }

 private:
  const std::shared_ptr<Cache> cache_;
  const uint64_t owner_;
  const bool enabled_;
};

// Where a run's newest visible version of a page was found by a read that
// had to search the sealed segments, keyed by (run start, pgno), in the
// store's Cache (CacheKind::kLocation). An answer found for a read at LSN
// as_of stays the answer below as_of for every later read of the run at
// LSN >= as_of: the other runs on its path are visible only up to cutoffs
// below the run's start, and no version is ever added at an LSN already
// passed. So such a read looks only at what is newer than as_of (memory, and
// segments whose newest version is above it). What moves versions or
// deletes their files (compaction, a segment's index dropped or demoted)
// changes the store's location epoch; an entry of another epoch is not an
// answer. Thread-safe.
class LocationCache {
 public:
  struct Entry {
    Lsn as_of = 0;       // the LSN of the read that found it
    uint64_t epoch = 0;  // the store's location epoch then
    Lsn lsn = 0;         // the version's LSN; 0: no version (zeros)
    uint32_t segment = 0;
    uint64_t offset = 0;
    bool zero = false;  // a version that zeroes the page
  };
  explicit LocationCache(std::shared_ptr<Cache> cache)
      : cache_(std::move(cache)), owner_(cache_->NewOwnerId()) {}
  ~LocationCache() { cache_->EraseOwner(owner_); }
  LocationCache(const LocationCache&) = delete;
  LocationCache& operator=(const LocationCache&) = delete;

  std::shared_ptr<const Entry> Lookup(Lsn run_start, PageNo pgno) const;
  void Insert(Lsn run_start, PageNo pgno, const Entry& e) const;
  // The cache's figures for locations (Cache::Stats(CacheKind::kLocation)).
  CacheStats Stats() const { return cache_->Stats(CacheKind::kLocation); }

 private:
  const std::shared_ptr<Cache> cache_;
  const uint64_t owner_;
};

}  // namespace branchdb::storage::internal

#endif  // BRANCHDB_STORAGE_PAGE_INDEX_H_
