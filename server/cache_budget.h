// CacheBudget: how `[storage] cache_mb` (server/config.h) is split between the
// caches of the server, so that their memory together stays within it,
// however many projects are open (docs/storage-format.md, "Memory"):
//   - half for the stores' Cache (storage/cache.h), one for all the open
//     project stores: page images, record metas (and the index blocks of
//     sealed segments), competing in one LRU;
//   - half for SQLite's page caches of the branch connections (the
//     computes): each compute's connection gets an equal share of it as its
//     cache_size (compute_cache_pages, for [compute] budget computes), which
//     SQLite holds each connection's cache to.
// SQLite's heap limit (sqlite3_soft_heap_limit64) is not used: SQLite
// enforces it only with its memory statistics on, which the server turns off
// (their process-wide mutex in every malloc made queries contend;
// ApiServer::Create). Connections other than the computes' (SQL at an LSN,
// Hrana streams, diff, export, import, promote) keep their own cache_size
// (catalog::ConnectionRequest); the `sqlite` figure of /metrics counts every
// page cache of the process (SQLITE_STATUS_PAGECACHE_OVERFLOW).
// Thread-safety: plain values and pure functions.
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
  uint64_t sqlite_bytes = 0;       // the computes' SQLite page caches together
  int compute_cache_pages = 0;     // PRAGMA cache_size of each compute's connection
};

// REQUIRES: cache_mb >= 1, compute_budget >= 1 (Validate() checks both).
CacheBudget SplitCacheBudget(int64_t cache_mb, int compute_budget);

// Bytes SQLite's page caches hold now, all connections of the process
// together (sqlite3_status64 SQLITE_STATUS_PAGECACHE_OVERFLOW: counted
// whether or not SQLite's memory statistics are on).
uint64_t SqlitePageCacheBytes();

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_CACHE_BUDGET_H_
