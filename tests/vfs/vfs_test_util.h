// Helpers shared by the VFS tests: a page store in a temporary directory,
// running SQL and reading results as text, dumps of a whole database, and the
// seed of randomized tests.
#ifndef BRANCHDB_TESTS_VFS_VFS_TEST_UTIL_H_
#define BRANCHDB_TESTS_VFS_VFS_TEST_UTIL_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "storage/page_store.h"
#include "storage/vfs/vfs.h"
#include "tests/util/temp_dir.h"

namespace branchdb::testing {

// A PageStore in a fresh temporary directory, with one empty timeline.
class StoreFixture {
 public:
  // env: the store's Env (default: POSIX); cache_bytes: its page cache.
  explicit StoreFixture(Env* env = nullptr, uint64_t cache_bytes = 64ull << 20);
  const std::shared_ptr<storage::PageStore>& store() { return store_; }
  storage::TimelineId timeline() const { return timeline_; }
  const std::string& dir() const { return store_dir_; }
  // Closes and reopens the store (recovery), optionally with another Env.
  void Reopen();
  void set_env(Env* env) { env_ = env; }
  // Read-write connection on t (default: the fixture's timeline).
  storage::SqliteHandle Open(storage::TimelineId t = 0, int cache_pages = 2000);
  // Read-only connection on t as of lsn.
  storage::SqliteHandle OpenAt(storage::TimelineId t, storage::Lsn lsn);

 private:
  TempDir dir_;
  std::string store_dir_;
  Env* env_;
  uint64_t cache_bytes_;
  std::shared_ptr<storage::PageStore> store_;
  storage::TimelineId timeline_ = 0;
};

struct ExecResult {
  int rc = SQLITE_OK;         // sqlite3_exec's result (extended code)
  std::string message;        // sqlite3_errmsg on failure
};
// Runs sql (one or more statements) and returns the outcome.
ExecResult Exec(sqlite3* db, const std::string& sql);
// Runs sql; REQUIREs success.
void MustExec(sqlite3* db, const std::string& sql);
// All rows of a query as "v1|v2\n..." (blobs as "x'<hex>'" or, when long,
// "blob(<len>,<fnv64>)"). Empty string if it fails (and *rc is set).
std::string Query(sqlite3* db, const std::string& sql, int* rc = nullptr);
// The first column of the first row as an integer (REQUIREs one).
int64_t QueryInt(sqlite3* db, const std::string& sql);
// Schema and every table's rows in rowid order: equal dumps = equal databases.
std::string Dump(sqlite3* db);
// "ok" when PRAGMA integrity_check passes, else its report.
std::string IntegrityCheck(sqlite3* db);
// 64-bit FNV-1a.
uint64_t Fnv64(const std::string& s);

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_VFS_VFS_TEST_UTIL_H_
