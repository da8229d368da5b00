#include "auth/internal/token_cache.h"

#include <algorithm>

#include "auth/internal/crypto.h"
#include "base/sha256.h"

namespace branchdb::auth::internal {
namespace {

// Shards when the cache is large enough for each to hold a useful number of
// entries; a small cache is one shard, so that its bound is exact.
constexpr size_t kShards = 16;
constexpr size_t kMinEntriesPerShard = 4;

}  // namespace

TokenCache::TokenCache(size_t capacity) {
  if (capacity == 0) return;
  size_t shards = capacity >= kShards * kMinEntriesPerShard ? kShards : 1;
  per_shard_ = capacity / shards;  // rounds down: never more than capacity in all
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

TokenCache::Key TokenCache::KeyOf(std::string_view token) {
  Key key{};
  Sha256To(token, key.data());
  return key;
}

std::shared_ptr<const TokenVerdict> TokenCache::Lookup(const Key& key) {
  if (!enabled()) return nullptr;
  Shard& s = ShardOf(key);
  MutexLock lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) {
    ++s.misses;
    return nullptr;
  }
  ++s.hits;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->verdict;
}

void TokenCache::Insert(const Key& key, std::shared_ptr<const TokenVerdict> verdict) {
  if (!enabled()) return;
  Shard& s = ShardOf(key);
  MutexLock lock(s.mu);
  auto it = s.index.find(key);
  if (it != s.index.end()) {
    it->second->verdict = std::move(verdict);
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return;
  }
  s.lru.push_front(Node{key, std::move(verdict)});
  s.index.emplace(key, s.lru.begin());
  if (s.lru.size() > per_shard_) {
    s.index.erase(s.lru.back().key);
    s.lru.pop_back();
  }
}

void TokenCache::Erase(const Key& key) {
  if (!enabled()) return;
  Shard& s = ShardOf(key);
  MutexLock lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return;
  s.lru.erase(it->second);
  s.index.erase(it);
}

TokenCache::Counts TokenCache::counts() {
  Counts c;
  for (auto& s : shards_) {
    MutexLock lock(s->mu);
    c.hits += s->hits;
    c.misses += s->misses;
    c.entries += s->lru.size();
  }
  return c;
}

}  // namespace branchdb::auth::internal
