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
  b.compute_cache_pages = static_cast<int>(std::clamp<uint64_t>(
      per_compute / (storage::kPageSize + kSqlitePageOverhead), 16, 1 << 20));
  return b;
}

void ApplySqliteHeapLimit(const CacheBudget& budget) {
  sqlite3_soft_heap_limit64(static_cast<sqlite3_int64>(budget.sqlite_bytes));
}

uint64_t SqliteHeapBytes() { return static_cast<uint64_t>(sqlite3_memory_used()); }

}  // namespace branchdb::server
