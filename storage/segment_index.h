// The page index of a sealed format-3 segment, on disk in its footer
// (docs/storage-format.md, "Page index"): what a store keeps of it in memory
// (SegmentIndex: the directory and the filter), the LRU cache its blocks are
// read through (IndexBlockCache), a point lookup (FindInSegment) and a
// sequential reader for GC's merge (SegmentIndexIterator).
// Internal to storage/. SegmentIndex is immutable once built and shared by
// readers (shared_ptr); IndexBlockCache is internally synchronized; an
// iterator belongs to one thread.
#ifndef BRANCHDB_STORAGE_SEGMENT_INDEX_H_
#define BRANCHDB_STORAGE_SEGMENT_INDEX_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/env.h"
#include "base/mutex.h"
#include "base/status.h"
#include "storage/cache.h"
#include "storage/log_format.h"

namespace branchdb::storage::internal {

struct LazySegment;

// What the store holds in memory for one sealed segment with an intact index.
// A *lazy* one (`lazy` set) stands for a segment MANIFEST describes that was
// not opened yet: only dir's min_lsn, max_lsn and versions are filled (from
// MANIFEST), no block, no filter, no file (PageStoreImpl::LoadLazySegment).
struct SegmentIndex {
  uint64_t number = 0;
  std::shared_ptr<RandomAccessFile> file;  // kept readable after compaction deletes it
  IndexDirectory dir;
  std::string filter;  // bits and the probe count (FilterMayContain)
  uint64_t footer_end = 0;    // footer_offset + footer_len: where the record list ends
  uint64_t index_offset = 0;  // where the page index begins (format 4: after the record index)
  uint64_t footer_offset = 0;  // the trailer's fields
  uint32_t footer_crc = 0;
  uint32_t version = 0;
  std::shared_ptr<LazySegment> lazy;

  bool MayContain(PageNo pgno) const { return FilterMayContain(filter, pgno); }
  // Bytes this object holds on the heap and in itself.
  uint64_t MemoryBytes() const;
};

// Reads and checks the index section of segment `number` (`size` bytes),
// whose trailer and record list passed ReadFooterEntries: the index tail,
// the directory and the filter, each by its crc, and their offsets against
// each other and the file (blocks are checked when they are read). OK with
// *damage empty and *out filled (but for number and file), or OK with
// *damage saying what failed; the reads' errors as they are.
Status ReadSegmentIndex(RandomAccessFile* file, uint64_t number, uint64_t size, SegmentIndex* out,
                        std::string* damage);

// What the store holds in memory of a sealed format-4 segment's record
// index: its directory (28 bytes per block of 85 records); the entries stay
// on disk and are read block by block through RecordBlockCache. A segment
// whose record index was found damaged after Open is *demoted*: `resident`
// then holds its entries, rebuilt from the footer's record list.
// A lazy one (`lazy` set, as SegmentIndex's) has only its LSN range and
// dir.records, from MANIFEST.
struct SegmentRecordIndex {
  uint64_t number = 0;
  std::shared_ptr<RandomAccessFile> file;  // kept readable after compaction deletes it
  RecordIndexDirectory dir;
  std::vector<RecordIndexEntry> resident;  // demoted: every entry, ascending LSN
  std::shared_ptr<LazySegment> lazy;
  Lsn lazy_min = 0;  // lazy: its records' LSN range, from MANIFEST
  Lsn lazy_max = 0;

  // A demoted index of segment `number` (its record-index blocks cannot be
  // used): every entry of its record list but compaction's skeletons,
  // resident, ascending LSN.
  static std::shared_ptr<SegmentRecordIndex> Demote(uint64_t number,
                                                    std::shared_ptr<RandomAccessFile> file,
                                                    const std::vector<FooterEntry>& entries);

  bool Demoted() const { return !resident.empty(); }
  Lsn min_lsn() const;  // 0 when it lists no record
  Lsn max_lsn() const;
  // The block whose LSN range holds lsn, or -1 (not demoted).
  int BlockOf(Lsn lsn) const;
  uint64_t MemoryBytes() const;
};

// What the first use of a lazy segment found (PageStoreImpl::LoadLazySegment):
// its indexes, read from its file and checked; or, when they failed their
// checks, its records (the footer's record list, or a scan) to be held in
// memory, with `ri` demoted (its entries resident), and `damage` saying why.
struct LazyLoaded {
  std::shared_ptr<RandomAccessFile> file;
  uint32_t flags = 0;                       // the header's
  uint64_t size = 0;                        // the file's
  std::shared_ptr<const SegmentIndex> idx;  // null: the fallback's records serve
  std::shared_ptr<const SegmentRecordIndex> ri;
  std::vector<FooterEntry> fallback;
  std::string damage;                       // "": it agrees with MANIFEST
};

// A sealed segment MANIFEST describes, not opened at Open: loaded once, by
// its first use, under mu (which comes after the store's state_mu_).
struct LazySegment {
  uint64_t number = 0;
  uint64_t size = 0;
  SegmentDescriptor desc;
  Mutex mu;
  std::shared_ptr<const LazyLoaded> loaded GUARDED_BY(mu);
  std::atomic<bool> is_loaded{false};  // `loaded` is set (read without mu)
  bool reported GUARDED_BY(mu) = false;  // a Corruption of its load is in Damage()
};

// The descriptor MANIFEST keeps of a format-4 segment with these indexes
// (`flags`: its header's).
SegmentDescriptor DescribeSegment(const SegmentIndex& idx, const SegmentRecordIndex& ri,
                                  uint32_t flags);

// Reads and checks the record index of a sealed format-4 segment whose page
// index `idx` passed ReadSegmentIndex (its footer_end and index_offset say
// where the record index section lies): its tail and directory, each by its
// crc, and their offsets. When `entries` is not null, every block too, into
// *entries (ascending LSN). OK with *damage empty and *out's directory filled
// (but for number and file), or OK with *damage saying what failed; the
// reads' errors as they are. One read for the whole section; without
// `entries`, a read of the tail and one of the directory (no block).
Status ReadRecordIndexSection(RandomAccessFile* file, const SegmentIndex& idx,
                              SegmentRecordIndex* out, std::vector<RecordIndexEntry>* entries,
                              std::string* damage);

using RecordBlock = std::vector<RecordIndexEntry>;

// Decoded record index blocks by (segment, block), in the store's Cache under
// an owner id of their own, of the kind of the page index's blocks
// (CacheKind::kIndex: blocks of sealed segments' indexes), charged by the
// bytes they hold. No invalidation needed (a sealed segment never changes).
// Thread-safe.
class RecordBlockCache {
 public:
  explicit RecordBlockCache(std::shared_ptr<Cache> cache)
      : cache_(std::move(cache)), owner_(cache_->NewOwnerId()) {}
  ~RecordBlockCache() { cache_->EraseOwner(owner_); }
  RecordBlockCache(const RecordBlockCache&) = delete;
  RecordBlockCache& operator=(const RecordBlockCache&) = delete;

  std::shared_ptr<const RecordBlock> Lookup(uint64_t segment, uint32_t block) const;
  void Insert(uint64_t segment, uint32_t block, std::shared_ptr<const RecordBlock> b) const;
  CacheStats Stats() const { return cache_->Stats(CacheKind::kIndex); }
  static uint64_t Charge(const RecordBlock& b) {
    return b.size() * sizeof(RecordIndexEntry) + kCacheValueOverhead;
  }

 private:
  const std::shared_ptr<Cache> cache_;
  const uint64_t owner_;
};

// RecordPins::Miss's block when the segment itself is lazy (not loaded yet).
inline constexpr uint32_t kLazyBlock = ~uint32_t{0};

// The record index blocks one call has read (PageStoreImpl::WithRecordReads),
// held so that its retry finds them even if the cache evicted them, and the
// block its last attempt missed.
class RecordPins {
 public:
  std::shared_ptr<const RecordBlock> Find(uint64_t segment, uint32_t block) const {
    for (const auto& [key, b] : pinned_) {
      if (key == std::make_pair(segment, block)) return b;
    }
    return nullptr;
  }
  void Pin(uint64_t segment, uint32_t block, std::shared_ptr<const RecordBlock> b) {
    pinned_.emplace_back(std::make_pair(segment, block), std::move(b));
  }
  bool missed() const { return missed_ != nullptr; }
  void Miss(std::shared_ptr<const SegmentRecordIndex> ri, uint32_t block) {
    missed_ = std::move(ri);
    missed_block_ = block;
  }
  std::shared_ptr<const SegmentRecordIndex> TakeMiss(uint32_t* block) {
    *block = missed_block_;
    return std::move(missed_);
  }

 private:
  std::vector<std::pair<std::pair<uint64_t, uint32_t>, std::shared_ptr<const RecordBlock>>> pinned_;
  std::shared_ptr<const SegmentRecordIndex> missed_;
  uint32_t missed_block_ = 0;
};

// Block b of ri, from the cache (when not null) or read from the file and
// checked by its crc and against its directory entry (Corruption naming the
// segment, the block and its offset otherwise), then cached.
Result<std::shared_ptr<const RecordBlock>> ReadRecordBlock(const SegmentRecordIndex& ri,
                                                           uint32_t b,
                                                           const RecordBlockCache* cache);

using IndexBlock = std::vector<IndexEntry>;

// Decoded index blocks by (segment, block), in the store's Cache (shared by
// every store of the process: storage/cache.h) under an owner id of their
// own, charged by the bytes they hold. Segment numbers are never reused and
// a sealed segment never changes, so entries need no invalidation.
// Thread-safe.
class IndexBlockCache {
 public:
  // Entries go into `cache` under a new owner id of it; dropped when this
  // object goes (the store closes).
  explicit IndexBlockCache(std::shared_ptr<Cache> cache)
      : cache_(std::move(cache)), owner_(cache_->NewOwnerId()) {}
  ~IndexBlockCache() { cache_->EraseOwner(owner_); }
  IndexBlockCache(const IndexBlockCache&) = delete;
  IndexBlockCache& operator=(const IndexBlockCache&) = delete;

  std::shared_ptr<const IndexBlock> Lookup(uint64_t segment, uint32_t block) const;
  void Insert(uint64_t segment, uint32_t block, std::shared_ptr<const IndexBlock> b) const;
  // The cache's figures for index blocks (Cache::Stats(CacheKind::kIndex)).
  CacheStats Stats() const { return cache_->Stats(CacheKind::kIndex); }
  static uint64_t Charge(const IndexBlock& b) {
    return b.size() * sizeof(IndexEntry) + kCacheValueOverhead;
  }

 private:
  const std::shared_ptr<Cache> cache_;
  const uint64_t owner_;
};

// Block b of idx, from the cache or read from the file and checked by its
// crc (Corruption naming the segment, the block and its offset otherwise).
Result<std::shared_ptr<const IndexBlock>> ReadIndexBlock(const SegmentIndex& idx, uint32_t b,
                                                         const IndexBlockCache* cache);

// The newest entry of pgno in idx with floor < lsn <= at for which
// visible(entry) is true; nullopt when none. Reads only the blocks whose key
// range holds pgno, newest first, and stops at the first hit.
template <typename Visible>
Result<std::optional<IndexEntry>> FindInSegment(const SegmentIndex& idx, PageNo pgno, Lsn at,
                                                Lsn floor, const IndexBlockCache* cache,
                                                Visible&& visible) {
  const auto& blocks = idx.dir.blocks;
  // Blocks [0, hi) begin at or before the key (pgno, at).
  size_t lo_b = 0, hi = blocks.size();
  while (lo_b < hi) {
    size_t mid = (lo_b + hi) / 2;
    const IndexBlockHandle& h = blocks[mid];
    if (h.first_pgno < pgno || (h.first_pgno == pgno && h.first_lsn <= at)) {
      lo_b = mid + 1;
    } else {
      hi = mid;
    }
  }
  for (size_t b = hi; b-- > 0;) {
    if (blocks[b].last_pgno < pgno) break;
    auto block = ReadIndexBlock(idx, static_cast<uint32_t>(b), cache);
    if (!block.ok()) return block.status();
    const IndexBlock& entries = **block;
    // Entries ascend by (pgno, lsn): start at the last one at or below the key.
    auto it = std::upper_bound(entries.begin(), entries.end(), std::pair(pgno, at),
                               [](const std::pair<PageNo, Lsn>& key, const IndexEntry& e) {
                                 return key.first < e.pgno ||
                                        (key.first == e.pgno && key.second < e.lsn);
                               });
    while (it != entries.begin()) {
      const IndexEntry& e = *--it;
      if (e.pgno < pgno || e.lsn <= floor) return std::optional<IndexEntry>();
      if (visible(e)) return std::optional<IndexEntry>(e);
    }
  }
  return std::optional<IndexEntry>();
}

// Reads a segment's index blocks in order (not through the cache), one page
// at a time: for GC's merge by page number.
class SegmentIndexIterator {
 public:
  explicit SegmentIndexIterator(std::shared_ptr<const SegmentIndex> idx) : idx_(std::move(idx)) {}
  // Positions at the first page; the block read's error otherwise.
  Status Init() { return Fill(); }
  bool Valid() const { return pos_ < block_.size(); }
  PageNo pgno() const { return block_[pos_].pgno; }
  const SegmentIndex& index() const { return *idx_; }
  // Appends the current page's entries (ascending LSN) to *out and moves on.
  // REQUIRES: Valid().
  Status TakePage(std::vector<IndexEntry>* out);

 private:
  // Skips to the next block with entries when the current one is used up.
  Status Fill();
  std::shared_ptr<const SegmentIndex> idx_;
  uint32_t next_block_ = 0;
  IndexBlock block_;
  size_t pos_ = 0;
};

}  // namespace branchdb::storage::internal

#endif  // BRANCHDB_STORAGE_SEGMENT_INDEX_H_
