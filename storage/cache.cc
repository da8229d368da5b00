// Cache (storage/cache.h): 2^shard_bits shards, each an LRU list plus a hash
// map under a mutex of its own; a key's shard is picked by the top bits of its
// hash.
#include "storage/cache.h"

#include <list>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/mutex.h"

namespace branchdb::storage {
namespace {

struct KeyHash {
  size_t operator()(const CacheKey& k) const {
    // Fibonacci-style mixing of every field (the low bits of LSNs and page
    // numbers vary most).
    uint64_t h = k.owner * 0x9E3779B97F4A7C15ull;
    h ^= (k.a + 0x632BE59BD9B4E019ull + (h << 6) + (h >> 2));
    h ^= (k.b * 0xC2B2AE3D27D4EB4Full + (h << 6) + (h >> 2));
    h ^= static_cast<uint64_t>(k.kind) << 56;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    return static_cast<size_t>(h);
  }
};

struct KindCounts {
  uint64_t bytes = 0;
  uint64_t entries = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
};

class Shard {
 public:
  void set_capacity(uint64_t capacity) { capacity_ = capacity; }

  Cache::Value Lookup(const CacheKey& key) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    KindCounts& k = kinds_[static_cast<size_t>(key.kind)];
    auto it = map_.find(key);
    if (it == map_.end()) {
      ++k.misses;
      return nullptr;
    }
    ++k.hits;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->value;
  }

  // Appends the values it drops to *dropped, for the caller to free outside
  // the lock.
  void Insert(const CacheKey& key, Cache::Value value, uint64_t charge,
              std::vector<Cache::Value>* dropped) EXCLUDES(mu_) {
    charge += kCacheEntryBytes;
    MutexLock lock(mu_);
    if (auto it = map_.find(key); it != map_.end()) {
      dropped->push_back(RemoveLocked(it->second));
    }
    if (charge > capacity_) return;
    lru_.push_front(Entry{key, std::move(value), charge});
    map_.emplace(key, lru_.begin());
    KindCounts& k = kinds_[static_cast<size_t>(key.kind)];
    k.bytes += charge;
    ++k.entries;
    usage_ += charge;
    while (usage_ > capacity_) dropped->push_back(RemoveLocked(std::prev(lru_.end())));
  }

  void Erase(const CacheKey& key, std::vector<Cache::Value>* dropped) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (auto it = map_.find(key); it != map_.end()) {
      dropped->push_back(RemoveLocked(it->second));
    }
  }

  void EraseOwner(uint64_t owner, std::vector<Cache::Value>* dropped) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    for (auto it = lru_.begin(); it != lru_.end();) {
      auto next = std::next(it);
      if (it->key.owner == owner) dropped->push_back(RemoveLocked(it));
      it = next;
    }
  }

  // Adds this shard's figures of `kind` (all kinds when kind is kCount) to *s.
  void AddStats(CacheKind kind, CacheStats* s) const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    for (size_t i = 0; i < kCacheKinds; ++i) {
      if (kind != CacheKind::kCount && i != static_cast<size_t>(kind)) continue;
      s->bytes += kinds_[i].bytes;
      s->entries += kinds_[i].entries;
      s->hits += kinds_[i].hits;
      s->misses += kinds_[i].misses;
    }
  }

 private:
  struct Entry {
    CacheKey key;
    Cache::Value value;
    uint64_t charge;
  };
  using List = std::list<Entry>;
  using Map = std::unordered_map<CacheKey, List::iterator, KeyHash>;
  // A list node (two links and the entry) and a map node (a link, the key
  // and iterator, the cached hash), each in a glibc chunk (an 8-byte header,
  // rounded up to 16), and about two buckets' pointers.
  static constexpr uint64_t kListNode = (2 * sizeof(void*) + sizeof(Entry) + 8 + 15) / 16 * 16;
  static constexpr uint64_t kMapNode =
      (sizeof(void*) + sizeof(Map::value_type) + sizeof(size_t) + 8 + 15) / 16 * 16;
  static_assert(kCacheEntryBytes == kListNode + kMapNode + 2 * sizeof(void*),
                "kCacheEntryBytes (cache.h) is what an entry's nodes take");
  Cache::Value RemoveLocked(List::iterator it) REQUIRES(mu_) {
    KindCounts& k = kinds_[static_cast<size_t>(it->key.kind)];
    k.bytes -= it->charge;
    --k.entries;
    usage_ -= it->charge;
    Cache::Value v = std::move(it->value);
    map_.erase(it->key);
    lru_.erase(it);
    return v;
  }

  uint64_t capacity_ = 0;  // constant after the cache is made
  mutable Mutex mu_;
  List lru_ GUARDED_BY(mu_);  // most recently used first
  Map map_ GUARDED_BY(mu_);
  uint64_t usage_ GUARDED_BY(mu_) = 0;
  std::array<KindCounts, kCacheKinds> kinds_ GUARDED_BY(mu_){};
};

class ShardedLruCache final : public Cache {
 public:
  ShardedLruCache(uint64_t capacity, int shard_bits)
      : capacity_(capacity),
        shard_bits_(shard_bits),
        shard_count_(size_t{1} << shard_bits),
        shards_(new Shard[shard_count_]) {
    for (size_t i = 0; i < shard_count_; ++i) shards_[i].set_capacity(capacity / shard_count_);
  }

  Value Lookup(const CacheKey& key) override { return ShardOf(key).Lookup(key); }

  void Insert(const CacheKey& key, Value value, uint64_t charge) override {
    std::vector<Value> dropped;  // freed here, outside the shard's lock
    ShardOf(key).Insert(key, std::move(value), charge, &dropped);
  }

  void Erase(const CacheKey& key) override {
    std::vector<Value> dropped;
    ShardOf(key).Erase(key, &dropped);
  }

  void EraseOwner(uint64_t owner) override {
    for (size_t i = 0; i < shard_count_; ++i) {
      std::vector<Value> dropped;
      shards_[i].EraseOwner(owner, &dropped);
    }
  }

  uint64_t capacity() const override { return capacity_; }

  CacheStats Stats() const override { return Stats(CacheKind::kCount); }

  CacheStats Stats(CacheKind kind) const override {
    CacheStats s;
    s.capacity_bytes = capacity_;
    for (size_t i = 0; i < shard_count_; ++i) shards_[i].AddStats(kind, &s);
    return s;
  }

 private:
  Shard& ShardOf(const CacheKey& key) {
    if (shard_bits_ == 0) return shards_[0];
    return shards_[static_cast<uint64_t>(KeyHash()(key)) >> (64 - shard_bits_)];
  }

  const uint64_t capacity_;
  const int shard_bits_;
  const size_t shard_count_;
  const std::unique_ptr<Shard[]> shards_;
};

}  // namespace

std::shared_ptr<Cache> Cache::Create(uint64_t capacity_bytes, int shard_bits) {
  if (shard_bits < 0) shard_bits = 0;
  if (shard_bits > 10) shard_bits = 10;
  return std::make_shared<ShardedLruCache>(capacity_bytes, shard_bits);
}

}  // namespace branchdb::storage
