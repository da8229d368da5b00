// CacheBudget: how `[storage] cache_mb` (server/config.h) is split between the
// caches of the server, so that their memory together stays within it,
// however many projects are open (docs/storage-format.md, "Memory"):
//   - half for the stores' Cache (storage/cache.h), one for all the open
//     project stores: page images, record metas (and the index blocks of
//     sealed segments), competing in one LRU;
//   - half for SQLite's heap, which is mostly the page caches of the branch
//     connections (the computes): each compute's connection gets an equal
//     share of it as its cache_size (compute_cache_pages, for [compute]
//     budget computes), and sqlite3_soft_heap_limit64 caps all of SQLite's
//     heap in the process at it (SQLite recycles cached pages instead of
//     allocating more once it is reached; other connections — SQL at an LSN,
//     diffs, exports — share the same cap).
// Thread-safety: plain values and pure functions, but ApplySqliteHeapLimit
// sets a process-wide SQLite limit (one server per process).
#ifndef BRANCHDB_SERVER_CACHE_BUDGET_H_
#define BRANCHDB_SERVER_CACHE_BUDGET_H_

#include <cstdint>

namespace branchdb::server {

// What SQLite holds per cached page besides the page (its PgHdr, pcache1's
// header and the allocator's), used to turn bytes into cache_size pages.
inline constexpr uint64_t kSqlitePageOverhead = 256;

struct CacheBudget {
  uint64_t total_bytes = 0;
  uint64_t store_cache_bytes = 0;  // the capacity of the stores' shared Cache
  uint64_t sqlite_bytes = 0;       // SQLite's soft heap limit
  int compute_cache_pages = 0;     // PRAGMA cache_size of each compute's connection
};

// REQUIRES: cache_mb >= 1, compute_budget >= 1 (Validate() checks both).
CacheBudget SplitCacheBudget(int64_t cache_mb, int compute_budget);

// sqlite3_soft_heap_limit64(budget.sqlite_bytes), for the whole process.
void ApplySqliteHeapLimit(const CacheBudget& budget);

// SQLite's heap in use now (sqlite3_memory_used), all connections together.
uint64_t SqliteHeapBytes();

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_CACHE_BUDGET_H_
