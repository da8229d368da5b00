// Reads of one state of a branch that are not user SQL (so neither sandboxed
// nor CPU-scheduled: docs/architecture.md): its schema, and its database file
// for an export. The routes parse and reply; the SQLite and page-store work
// is here.
//
// Thread-safety: ReadSchema is safe for concurrent use; an ExportSnapshot is
// used by one thread at a time.
#ifndef BRANCHDB_SERVER_SQL_SNAPSHOT_H_
#define BRANCHDB_SERVER_SQL_SNAPSHOT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "storage/page_store.h"
#include "storage/vfs/vfs.h"

namespace branchdb::catalog {
class Catalog;
}

namespace branchdb::server::sql {

struct SchemaObject {
  std::string type;                // "table", "index", "view", "trigger"
  std::string name;
  std::string table;               // the table it belongs to (sqlite_schema.tbl_name)
  std::optional<std::string> sql;  // its CREATE statement; nullopt when SQLite keeps none
};

struct BranchSchema {
  storage::Lsn lsn = 0;               // the state read
  std::vector<SchemaObject> objects;  // by type, then name; none of SQLite's own (sqlite_*)
};

// The schema of branch as of lsn (default: its head). The catalog's errors
// (project_not_found, branch_not_found, an LSN not of the branch, ...);
// IOError sql_io_error when SQLite cannot read it.
Result<BranchSchema> ReadSchema(catalog::Catalog& catalog, const std::string& project,
                                const std::string& branch, std::optional<storage::Lsn> lsn);

// One state of a branch, pinned (a read transaction of a read-only
// connection) for as long as the snapshot lives, and its database file read
// a piece at a time from the page store as stored (the VFS serves page 1 with
// an adjusted schema cookie). It holds the project's store, so that a
// deletion of the project meanwhile cuts the file short instead of pulling
// the store away.
class ExportSnapshot {
 public:
  // The state of branch as of lsn (default: its head). The catalog's errors;
  // a VFS error, or IOError sql_io_error, when the state cannot be pinned.
  static Result<std::unique_ptr<ExportSnapshot>> Open(catalog::Catalog& catalog,
                                                      const std::string& project,
                                                      const std::string& branch,
                                                      std::optional<storage::Lsn> lsn);
  ExportSnapshot(const ExportSnapshot&) = delete;
  ExportSnapshot& operator=(const ExportSnapshot&) = delete;

  storage::Lsn lsn() const { return state_; }
  // The file's size: a whole number of pages.
  uint64_t size_bytes() const { return size_bytes_; }

  // Copies the file's n bytes at offset into out. REQUIRES: offset a multiple
  // of storage::kPageSize, offset + n <= size_bytes(). False when the state
  // is gone (collected, or the project deleted).
  bool Read(uint64_t offset, size_t n, char* out);

 private:
  ExportSnapshot(storage::SqliteHandle conn, std::shared_ptr<const storage::PageStore> store,
                 storage::Lsn state, uint64_t size_bytes);

  const storage::SqliteHandle conn_;  // its read transaction pins state_
  const std::shared_ptr<const storage::PageStore> store_;
  const storage::Lsn state_;
  const uint64_t size_bytes_;
  std::string page_;
};

}  // namespace branchdb::server::sql

#endif  // BRANCHDB_SERVER_SQL_SNAPSHOT_H_
