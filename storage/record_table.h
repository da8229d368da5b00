// What the page store keeps in memory per record, and the cache of what it
// reads on demand (internal to storage/; docs/storage-format.md, "Memory"):
//   - RecordEntry: a record's fixed-size facts (48 bytes), those that reads,
//     writes and GC need on their hot paths, and where its meta is on disk;
//   - RecordTable: every live record's entry, sorted by LSN, in fixed-size
//     chunks (no heap node per record, no reallocation of the whole table as
//     it grows);
//   - MetaCache: decoded metas (annotation, page entries) of the records whose
//     meta a call read from disk, in the store's Cache (storage/cache.h);
//   - RecordOffsets: where the records of the active segment are, for its
//     footer (the seal reads back the metas not kept);
//   - MetaList: encoded metas for a footer: the active segment's first ones,
//     completed at its seal, or compaction's output's.
// Thread-safety: RecordTable is guarded by the store's state mutex; MetaCache
// is internally synchronized (a leaf lock).
#ifndef BRANCHDB_STORAGE_RECORD_TABLE_H_
#define BRANCHDB_STORAGE_RECORD_TABLE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/cache.h"
#include "storage/log_format.h"
#include "storage/page_index.h"
#include "storage/page_store.h"

namespace branchdb::storage::internal {

// One live record. Its kind, timeline, base, annotation and page entries are
// in its meta, on disk at `offset` in `segment` (PageStoreImpl::ReadMeta).
struct RecordEntry {
  Lsn lsn = 0;
  int64_t time_micros = 0;
  uint64_t offset = 0;    // of the record (its u32 meta_len) in its segment file
  uint32_t run = kNoRun;  // the run it belongs to (whose timeline is its timeline)
  uint32_t segment = 0;
  uint32_t meta_len = 0;
  uint32_t db_size_pages = 0;  // of the state it names
  uint32_t payload_len = 0;    // 0: none (it follows the images: ReadPayload reads the meta)
};
static_assert(sizeof(RecordEntry) == 48, "a record's fixed cost in memory");

// The entries of the live records, ascending LSN.
class RecordTable {
 public:
  RecordTable() = default;
  RecordTable(const RecordTable&) = delete;
  RecordTable& operator=(const RecordTable&) = delete;

  // Appends e. False (nothing changed) unless e.lsn is above every LSN held.
  bool Append(const RecordEntry& e);
  // The entry of lsn, or nullptr.
  const RecordEntry* Find(Lsn lsn) const;
  RecordEntry* FindMutable(Lsn lsn);
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // The i-th entry in LSN order. REQUIRES: i < size().
  const RecordEntry& at(size_t i) const { return (*chunks_[i / kChunk])[i % kChunk]; }
  // Keeps, in order, the entries for which keep(entry) returns true; frees
  // the chunks no longer needed.
  template <typename Keep>
  void RetainIf(Keep&& keep) {
    size_t w = 0;
    for (size_t r = 0; r < size_; ++r) {
      const RecordEntry e = at(r);
      if (keep(e)) Mutable(w++) = e;
    }
    size_ = w;
    chunks_.resize((size_ + kChunk - 1) / kChunk);
  }
  // Bytes held for the entries themselves (size() * sizeof(RecordEntry)).
  uint64_t EntryBytes() const { return size_ * sizeof(RecordEntry); }

 private:
  static constexpr size_t kChunk = 1024;  // entries per chunk (48 KiB)
  using Chunk = std::array<RecordEntry, kChunk>;
  RecordEntry& Mutable(size_t i) { return (*chunks_[i / kChunk])[i % kChunk]; }
  // Index of the first entry with lsn >= l.
  size_t LowerBound(Lsn l) const;

  std::vector<std::unique_ptr<Chunk>> chunks_;
  size_t size_ = 0;
};

// The decoded record metas of one store in a Cache (storage/cache.h), keyed
// by LSN, each charged what it holds on the heap plus the cache's bookkeeping
// per entry. A record's meta never changes while it lives (compaction copies
// it as it is), and a collected record is never looked up again (its LSN is
// not reused), so entries need no invalidation. Thread-safe.
class MetaCache {
 public:
  // Entries go into `cache` under a new owner id of it; dropped when this
  // object goes (the store closes).
  explicit MetaCache(std::shared_ptr<Cache> cache)
      : cache_(std::move(cache)), owner_(cache_->NewOwnerId()) {}
  ~MetaCache() { cache_->EraseOwner(owner_); }
  MetaCache(const MetaCache&) = delete;
  MetaCache& operator=(const MetaCache&) = delete;

  // The cached meta of lsn, or nullptr (counted as a hit or a miss).
  std::shared_ptr<const RecordMeta> Lookup(Lsn lsn) const;
  void Insert(Lsn lsn, std::shared_ptr<const RecordMeta> meta) const;
  // The cache's figures for metas (Cache::Stats(CacheKind::kMeta)).
  CacheStats Stats() const { return cache_->Stats(CacheKind::kMeta); }
  // What one meta counts for.
  static uint64_t Charge(const RecordMeta& meta);

 private:
  const std::shared_ptr<Cache> cache_;
  const uint64_t owner_;
};

// The offsets of the records of the active segment, in file order, for its
// footer: the seal reads back from the file (ReadRecordMetas) the metas the
// store did not keep a copy of (PageStoreImpl::active_metas_: tens of MB per
// segment of small records with 2 KiB annotations, were they all kept:
// docs/benchmarks.md, "RSS per commit on format 5"). 8 bytes per record, in
// chunks of 64 KiB. Not thread-safe, but for memory_bytes().
class RecordOffsets {
 public:
  RecordOffsets() = default;
  RecordOffsets(const RecordOffsets&) = delete;
  RecordOffsets& operator=(const RecordOffsets&) = delete;

  // Appends offset. REQUIRES: above every offset held.
  void Add(uint64_t offset);
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint64_t at(size_t i) const { return (*chunks_[i / kChunk])[i % kChunk]; }
  void Clear();
  // The chunks' bytes; readable from any thread (Stats).
  uint64_t memory_bytes() const { return memory_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kChunk = 8192;
  using Chunk = std::array<uint64_t, kChunk>;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  size_t size_ = 0;
  std::atomic<uint64_t> memory_{0};
};

// The encoded metas of the active segment's first records (up to a budget),
// completed at its seal by ReadRecordMetas, or of compaction's output, with
// their records' offsets, for its footer (WriteFooter). Their bytes live in
// blocks of their own (anonymous mappings of kBlockBytes or more, unmapped
// by Clear), not in one heap string each: megabytes of metas stay apart from
// the heap's other allocations and go back to the system when the footer is
// written. Not thread-safe, but for mapped_bytes().
class MetaList {
 public:
  static constexpr size_t kBlockBytes = 1 << 20;

  MetaList() = default;
  MetaList(const MetaList&) = delete;
  MetaList& operator=(const MetaList&) = delete;
  ~MetaList() { Clear(); }

  // Appends a copy of meta (the record at `offset`).
  void Add(uint64_t offset, std::string_view meta);
  const FooterMetas& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // The metas' bytes.
  uint64_t bytes() const { return bytes_; }
  void Clear();
  // The blocks' bytes; readable from any thread (Stats).
  uint64_t mapped_bytes() const { return mapped_.load(std::memory_order_relaxed); }

 private:
  struct Block {
    char* data;
    size_t size;
    size_t used;
  };
  FooterMetas entries_;
  std::vector<Block> blocks_;
  uint64_t bytes_ = 0;
  std::atomic<uint64_t> mapped_{0};
};

}  // namespace branchdb::storage::internal

#endif  // BRANCHDB_STORAGE_RECORD_TABLE_H_
