// Cache (storage/cache.h): charges, LRU eviction, per-kind figures, per-owner
// erase, concurrent use; and page stores sharing one cache (one budget for
// all, a closed store's entries dropped).
#include "storage/cache.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/page_store.h"
#include "tests/storage/store_test_util.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

using namespace branchdb;
using namespace branchdb::storage;

namespace {

using ::branchdb::testing::TestSeed;

// The cache's own bytes per entry, which it adds to every charge: the tests
// below charge their round figures less these.
constexpr uint64_t E = kCacheEntryBytes;

CacheKey Page(uint64_t owner, uint64_t lsn, uint64_t pgno = 1) {
  return CacheKey{owner, CacheKind::kPage, lsn, pgno};
}

// A value that says which key it was stored under.
Cache::Value ValueOf(const CacheKey& k) {
  return std::make_shared<const std::string>(std::to_string(k.owner) + "/" +
                                             std::to_string(static_cast<int>(k.kind)) + "/" +
                                             std::to_string(k.a) + "/" + std::to_string(k.b));
}

std::string Text(const Cache::Value& v) { return *static_cast<const std::string*>(v.get()); }

}  // namespace

TEST_CASE("a cache keeps entries up to its capacity and evicts the least recently used") {
  auto cache = Cache::Create(10000, /*shard_bits=*/0);
  const uint64_t o = cache->NewOwnerId();
  cache->Insert(Page(o, 1), ValueOf(Page(o, 1)), 4000 - E);
  cache->Insert(Page(o, 2), ValueOf(Page(o, 2)), 4000 - E);
  REQUIRE(cache->Lookup(Page(o, 1)) != nullptr);         // 1 is now more recent than 2
  cache->Insert(Page(o, 3), ValueOf(Page(o, 3)), 4000 - E);  // 12000 > 10000: evicts 2
  CHECK(cache->Lookup(Page(o, 2)) == nullptr);
  CHECK(Text(cache->Lookup(Page(o, 1))) == Text(ValueOf(Page(o, 1))));
  CHECK(Text(cache->Lookup(Page(o, 3))) == Text(ValueOf(Page(o, 3))));
  CacheStats s = cache->Stats();
  CHECK(s.capacity_bytes == 10000);
  CHECK(s.bytes == 8000);
  CHECK(s.entries == 2);
  CHECK(s.hits == 3);
  CHECK(s.misses == 1);
}

TEST_CASE("a value that is still held outlives its eviction") {
  auto cache = Cache::Create(5000, 0);
  const uint64_t o = cache->NewOwnerId();
  cache->Insert(Page(o, 1), ValueOf(Page(o, 1)), 4000 - E);
  Cache::Value held = cache->Lookup(Page(o, 1));
  cache->Insert(Page(o, 2), ValueOf(Page(o, 2)), 4000 - E);  // evicts 1
  CHECK(cache->Lookup(Page(o, 1)) == nullptr);
  CHECK(Text(held) == Text(ValueOf(Page(o, 1))));
  CHECK(cache->Stats().bytes == 4000);
}

TEST_CASE("an entry larger than a shard is not kept, and a zero capacity keeps nothing") {
  auto cache = Cache::Create(16000, /*shard_bits=*/2);  // shards of 4000
  const uint64_t o = cache->NewOwnerId();
  cache->Insert(Page(o, 1), ValueOf(Page(o, 1)), 4001 - E);
  CHECK(cache->Lookup(Page(o, 1)) == nullptr);
  CHECK(cache->Stats().bytes == 0);
  auto none = Cache::Create(0);
  none->Insert(Page(o, 1), ValueOf(Page(o, 1)), 1);
  CHECK(none->Lookup(Page(o, 1)) == nullptr);
  CHECK(none->Stats().entries == 0);
}

TEST_CASE("replacing an entry charges the new value only") {
  auto cache = Cache::Create(10000, 0);
  const uint64_t o = cache->NewOwnerId();
  cache->Insert(Page(o, 1), ValueOf(Page(o, 1)), 3000 - E);
  cache->Insert(Page(o, 1), ValueOf(Page(o, 7)), 1000 - E);
  CHECK(cache->Stats().bytes == 1000);
  CHECK(cache->Stats().entries == 1);
  CHECK(Text(cache->Lookup(Page(o, 1))) == Text(ValueOf(Page(o, 7))));
  cache->Erase(Page(o, 1));
  CHECK(cache->Stats().bytes == 0);
  CHECK(cache->Lookup(Page(o, 1)) == nullptr);
}

TEST_CASE("each kind of entry is counted apart, and all share the capacity") {
  auto cache = Cache::Create(10000, 0);
  const uint64_t o = cache->NewOwnerId();
  const CacheKey meta{o, CacheKind::kMeta, 5, 0};
  cache->Insert(Page(o, 5), ValueOf(Page(o, 5)), 4000 - E);
  cache->Insert(meta, ValueOf(meta), 3000 - E);
  CHECK(cache->Lookup(meta) != nullptr);
  CHECK(cache->Lookup(CacheKey{o, CacheKind::kMeta, 6, 0}) == nullptr);
  CacheStats p = cache->Stats(CacheKind::kPage), m = cache->Stats(CacheKind::kMeta);
  CHECK(p.bytes == 4000);
  CHECK(p.entries == 1);
  CHECK(p.hits + p.misses == 0);
  CHECK(m.bytes == 3000);
  CHECK(m.hits == 1);
  CHECK(m.misses == 1);
  CHECK(p.capacity_bytes == 10000);
  CHECK(m.capacity_bytes == 10000);
  CHECK(cache->Stats(CacheKind::kIndex).entries == 0);
  // The same numbers under another kind are another entry; a big page evicts
  // the older meta.
  cache->Insert(CacheKey{o, CacheKind::kIndex, 5, 0}, ValueOf(meta), 3000 - E);
  CHECK(cache->Stats().bytes == 10000);
  cache->Insert(Page(o, 6), ValueOf(Page(o, 6)), 2000 - E);  // 12000: the page of LSN 5 goes
  CHECK(cache->Lookup(Page(o, 5)) == nullptr);
  CHECK(cache->Lookup(meta) != nullptr);
  CHECK(cache->Stats().bytes == 8000);
}

TEST_CASE("the cache counts its own bytes per entry in each charge") {
  auto cache = Cache::Create(10 * (100 + E), 0);
  const uint64_t o = cache->NewOwnerId();
  cache->Insert(Page(o, 1), ValueOf(Page(o, 1)), 100);
  CHECK(cache->Stats().bytes == 100 + E);
  CHECK(cache->Stats(CacheKind::kPage).bytes == 100 + E);
  for (uint64_t i = 2; i <= 11; ++i) cache->Insert(Page(o, i), ValueOf(Page(o, i)), 100);
  CHECK(cache->Stats().entries == 10);  // the eleventh pushed the first out
  CHECK(cache->Lookup(Page(o, 1)) == nullptr);
  // An entry charged nothing still costs the cache its node.
  auto tiny = Cache::Create(E - 1, 0);
  tiny->Insert(Page(o, 1), ValueOf(Page(o, 1)), 0);
  CHECK(tiny->Stats().entries == 0);
}

TEST_CASE("EraseOwner drops one owner's entries and keeps the others'") {
  auto cache = Cache::Create(1 << 20);
  const uint64_t a = cache->NewOwnerId(), b = cache->NewOwnerId();
  CHECK(a != b);
  CHECK(a != 0);
  for (uint64_t i = 1; i <= 100; ++i) {
    cache->Insert(Page(a, i), ValueOf(Page(a, i)), 100);
    cache->Insert(Page(b, i), ValueOf(Page(b, i)), 100);
  }
  CHECK(cache->Stats().entries == 200);
  cache->EraseOwner(a);
  CHECK(cache->Stats().entries == 100);
  CHECK(cache->Stats().bytes == 100 * (100 + E));
  for (uint64_t i = 1; i <= 100; ++i) {
    CHECK(cache->Lookup(Page(a, i)) == nullptr);
    REQUIRE(cache->Lookup(Page(b, i)) != nullptr);
  }
}

TEST_CASE("concurrent lookups, inserts and erases keep the cache within its capacity") {
  const uint64_t seed = TestSeed("storage_cache_test concurrent");
  INFO("seed " << seed);
  auto cache = Cache::Create(64 << 10);  // 16 shards of 4 KiB
  std::vector<uint64_t> owners;
  for (int i = 0; i < 4; ++i) owners.push_back(cache->NewOwnerId());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + t);
      for (int i = 0; i < 20000; ++i) {
        const CacheKey k = Page(owners[rng() % owners.size()], rng() % 64, rng() % 4);
        switch (rng() % 10) {
          case 0:
            cache->Erase(k);
            break;
          case 1:
            if (rng() % 100 == 0) cache->EraseOwner(k.owner);
            break;
          case 2:
          case 3:
          case 4:
            cache->Insert(k, ValueOf(k), 100 + rng() % 900);
            break;
          default:
            if (Cache::Value v = cache->Lookup(k); v != nullptr && Text(v) != Text(ValueOf(k))) {
              wrong.fetch_add(1);
            }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong.load() == 0);
  CacheStats s = cache->Stats();
  CHECK(s.bytes <= s.capacity_bytes);
  CHECK(s.hits + s.misses > 0);
  uint64_t by_kind = 0;
  for (size_t k = 0; k < kCacheKinds; ++k) by_kind += cache->Stats(CacheKind(k)).bytes;
  CHECK(by_kind == s.bytes);
}

TEST_CASE("page stores sharing a cache stay within its capacity and drop their entries on close") {
  branchdb::testing::TempDir dir;
  auto cache = Cache::Create(256 << 10);  // 64 pages at most, for 4 stores of 40 pages
  PageStoreOptions o;
  o.cache = cache;
  o.cache_page_images = true;
  std::vector<std::unique_ptr<PageStore>> stores;
  std::vector<Lsn> heads;
  for (int i = 0; i < 4; ++i) {
    auto s = PageStore::Open(o, dir.Sub("store" + std::to_string(i)));
    REQUIRE(s.ok());
    auto t = (*s)->CreateTimeline(0, "t");
    REQUIRE(t.ok());
    std::vector<std::string> data;
    std::vector<PageWrite> writes;
    for (PageNo p = 1; p <= 40; ++p) data.push_back(storage::testing::PageData(i * 1000 + p));
    for (PageNo p = 1; p <= 40; ++p) writes.push_back(PageWrite{p, data[p - 1]});
    auto lsn = (*s)->Commit(*t, *(*s)->Head(*t), writes, 40, "fill");
    REQUIRE(lsn.ok());
    heads.push_back(*lsn);
    stores.push_back(std::move(*s));
  }
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      for (PageNo p = 1; p <= 40; ++p) {
        char page[kPageSize];
        REQUIRE(stores[i]->ReadPageInto(heads[i], p, page).ok());
        REQUIRE(std::memcmp(page, storage::testing::PageData(i * 1000 + p).data(), kPageSize) == 0);
      }
      CHECK(cache->Stats().bytes <= cache->capacity());
    }
  }
  const CacheStats pages = cache->Stats(CacheKind::kPage);
  CHECK(pages.entries > 0);
  CHECK(pages.misses > 0);
  // Every store reports the shared cache's figures.
  CHECK(stores[0]->Stats().page_cache.capacity_bytes == cache->capacity());
  CHECK(stores[1]->Stats().page_cache.entries == pages.entries);
  // Closing every store drops every entry.
  stores.clear();
  CHECK(cache->Stats().entries == 0);
  CHECK(cache->Stats().bytes == 0);
}
