#include "server/cache_budget.h"

#include <sqlite3.h>

#include <algorithm>

#include "storage/page_store.h"

namespace branchdb::server {

CacheBudget SplitCacheBudget(int64_t cache_mb, int compute_budget) {
  CacheBudget b;
  b.total_bytes = static_cast<uint64_t>(cache_mb) << 20;
  b.store_cache_bytes = b.total_bytes / 2;
  b.sqlite_bytes = b.total_bytes - b.store_cache_bytes;
  const uint64_t per_compute = b.sqlite_bytes / static_cast<uint64_t>(compute_budget);
  // SQLite's own floor is 10 pages; below 16 a b-tree descent thrashes.
  b.compute_cache_pages = static_cast<int>(
      std::clamp<uint64_t>(per_compute / (storage::kPageSize + kSqlitePageOverhead), 16, 1 << 20));
  return b;
}

uint64_t SqlitePageCacheBytes() {
  sqlite3_int64 current = 0, highwater = 0;
  if (sqlite3_status64(SQLITE_STATUS_PAGECACHE_OVERFLOW, &current, &highwater, 0) != SQLITE_OK) {
    return 0;
  }
  return static_cast<uint64_t>(current);
}

}  // namespace branchdb::server
