// Cache: one memory budget for the in-memory caches of every page store of a
// process, in the way LevelDB's block cache is shared by all its tables.
//
// A thread-safe, sharded LRU cache of immutable values, bounded by the sum of
// the charges of its entries (bytes: what the inserter charges for its value,
// its heap bytes with kCacheValueOverhead, plus kCacheEntryBytes, which the
// cache adds for its own bookkeeping of the entry). Each page store
// takes an owner id (NewOwnerId) and puts it in its keys, so stores never see
// each other's entries, and drops its entries when it closes (EraseOwner).
// Entries are of a few kinds (CacheKind: page images, record metas, ...), all
// competing for the one capacity; Stats() counts each kind apart, for
// /metrics. A new kind of cache is one more CacheKind (and its name in
// kCacheKindNames): it shares the budget and shows in the statistics at once.
//
// Values are shared: a Lookup's result stays valid after the entry is evicted
// (its memory is freed when the last holder lets go), so an evicted entry may
// outlive the budget briefly while a reader copies it.
//
// Thread-safety: every method is safe to call concurrently. Each shard has its
// own mutex (a leaf lock): callers may hold their own locks while calling in.
#ifndef BRANCHDB_STORAGE_CACHE_H_
#define BRANCHDB_STORAGE_CACHE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

namespace branchdb::storage {

// What the cache spends on an entry besides its value, added to every charge:
// the LRU list node, the hash map's node and bucket, and their allocations'
// headers (glibc's: 8 bytes, 16-byte chunks). cache.cc checks it against the
// node types.
inline constexpr uint64_t kCacheEntryBytes = 160;
// What a value shared through the cache costs besides its own bytes: its
// make_shared control block and the allocation's header. Inserters add it.
inline constexpr uint64_t kCacheValueOverhead = 32;

// What a cache entry holds. kCount must stay last.
enum class CacheKind : uint8_t {
  kPage = 0,      // page images by (LSN, page number)
  kMeta = 1,      // decoded record metas by LSN
  kIndex = 2,     // blocks of sealed segments' on-disk page indexes (format v3)
  kLocation = 3,  // where reads found pages in sealed segments (LocationCache)
  kPath = 4,      // runs' ancestry paths (PathCache)
  kCount
};
inline constexpr size_t kCacheKinds = static_cast<size_t>(CacheKind::kCount);
// The label of each kind in /metrics (branchdb_cache_bytes{cache="page"}).
inline constexpr std::array<const char*, kCacheKinds> kCacheKindNames = {"page", "meta", "index",
                                                                         "location", "path"};

// Key of an entry: its owner (a store), its kind, and two numbers whose
// meaning the kind gives (kPage: LSN and page number; kMeta: LSN and 0;
// kIndex: segment and block; kLocation: run start LSN and page number;
// kPath: run index and the PathCache's generation).
struct CacheKey {
  uint64_t owner = 0;
  CacheKind kind = CacheKind::kPage;
  uint64_t a = 0;
  uint64_t b = 0;
  bool operator==(const CacheKey& o) const {
    return owner == o.owner && kind == o.kind && a == o.a && b == o.b;
  }
};

// One cache's figures, or one kind's within a cache (Cache::Stats). Counters
// start at 0 when the cache is made.
struct CacheStats {
  uint64_t capacity_bytes = 0;
  uint64_t bytes = 0;  // charges of the entries held now
  uint64_t entries = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
};

class Cache {
 public:
  using Value = std::shared_ptr<const void>;

  // A cache holding at most capacity_bytes of charges (0: holds nothing,
  // every Lookup misses). Split into 2^shard_bits shards (default: 16), each
  // with a capacity of its own (capacity_bytes / shards), so one entry must
  // fit in a shard to be kept.
  static std::shared_ptr<Cache> Create(uint64_t capacity_bytes, int shard_bits = 4);

  Cache() = default;
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;
  virtual ~Cache() = default;

  // A new owner id, never returned before by this cache (never 0).
  uint64_t NewOwnerId() { return next_owner_.fetch_add(1, std::memory_order_relaxed); }

  // The value of key and makes it the most recently used; nullptr when absent.
  // Counted as a hit or a miss of key.kind.
  virtual Value Lookup(const CacheKey& key) = 0;
  // Inserts (or replaces) key's value, charged `charge` bytes and
  // kCacheEntryBytes, then evicts the least recently used entries of its
  // shard until the shard is within its capacity. A value whose charge
  // exceeds a shard's capacity is not kept.
  virtual void Insert(const CacheKey& key, Value value, uint64_t charge) = 0;
  // Drops key's entry, if any.
  virtual void Erase(const CacheKey& key) = 0;
  // Drops every entry of owner (a store that closes). O(entries).
  virtual void EraseOwner(uint64_t owner) = 0;

  virtual uint64_t capacity() const = 0;
  // All kinds together.
  virtual CacheStats Stats() const = 0;
  // One kind: its bytes, entries, hits and misses; capacity_bytes is the
  // whole cache's (the kinds share it).
  virtual CacheStats Stats(CacheKind kind) const = 0;

 private:
  std::atomic<uint64_t> next_owner_{1};
};

}  // namespace branchdb::storage

#endif  // BRANCHDB_STORAGE_CACHE_H_
