// Internal to auth/: the verified-token cache, so that only the first use of a
// bearer token pays for its Ed25519 signature check and claim parsing.
//
// What is cached is what a token string proves once and for all: that its
// signature verified under key `kid` and what its claims say (TokenFacts), or
// that it can never verify (a rejection: bad signature, claims wrong whatever
// the time, expired). Everything that can change after that (the clock,
// revocations, the client registry, which keys still verify) is checked by
// the service on every use of a cached entry (AuthServiceImpl::Admit), so no
// event has to reach the cache for a token to stop working.
//
// Keyed by SHA-256 of the whole token string: the token itself is never kept.
// Bounded: a fixed number of entries, least recently used evicted first, in
// shards of their own lock, so that concurrent requests do not meet on one
// mutex (a shard's critical section is a hash lookup and a list splice).
//
// Thread-safety: all methods are safe for concurrent use.
#ifndef BRANCHDB_AUTH_INTERNAL_TOKEN_CACHE_H_
#define BRANCHDB_AUTH_INTERNAL_TOKEN_CACHE_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/auth.h"
#include "base/mutex.h"

namespace branchdb::auth::internal {

// What a token's verified signature and claims establish. `claimed` holds the
// scopes the token names (not yet narrowed to the client's current ones) and
// no project list: both are read from the registry on every use.
struct TokenFacts {
  Principal claimed;
  std::string kid;
  int64_t nbf = 0;  // 0 when the token has no nbf
};

// A cached verdict on one token string: valid (facts, in the cache of
// verified tokens) or never valid (rejection, the error_description to
// answer, in the cache of rejected ones).
struct TokenVerdict {
  TokenFacts facts;
  std::string rejection;
};

class TokenCache {
 public:
  using Key = std::array<unsigned char, 32>;  // SHA-256 of the token string

  // capacity 0: a disabled cache (Lookup finds nothing, Insert keeps nothing).
  explicit TokenCache(size_t capacity);
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  static Key KeyOf(std::string_view token);

  bool enabled() const { return !shards_.empty(); }
  // The verdict on `key`, or nullptr; a hit makes the entry the most recent.
  std::shared_ptr<const TokenVerdict> Lookup(const Key& key);
  // Adds or replaces; evicts the least recently used entry of the shard when full.
  void Insert(const Key& key, std::shared_ptr<const TokenVerdict> verdict);
  void Erase(const Key& key);

  struct Counts {
    uint64_t hits = 0, misses = 0;
    size_t entries = 0;
  };
  Counts counts();

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const {
      size_t h;
      std::memcpy(&h, k.data(), sizeof h);  // already uniformly distributed
      return h;
    }
  };
  struct Node {
    Key key;
    std::shared_ptr<const TokenVerdict> verdict;
  };
  struct Shard {
    Mutex mu;
    std::list<Node> lru GUARDED_BY(mu);  // front: most recently used
    std::unordered_map<Key, std::list<Node>::iterator, KeyHash> index GUARDED_BY(mu);
    uint64_t hits GUARDED_BY(mu) = 0;
    uint64_t misses GUARDED_BY(mu) = 0;
  };
  Shard& ShardOf(const Key& key) { return *shards_[key[31] % shards_.size()]; }

  // Constant after construction.
  size_t per_shard_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace branchdb::auth::internal

#endif  // BRANCHDB_AUTH_INTERNAL_TOKEN_CACHE_H_
