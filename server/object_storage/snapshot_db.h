// Internal to server/object_storage/: the SQLite side of the catalog
// snapshots that CatalogBackup uploads and restore reads back
// (catalog_backup.h lists the tables).
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_SNAPSHOT_DB_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_SNAPSHOT_DB_H_

#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace branchdb::server::snapshot_db {

struct Closer {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using Db = std::unique_ptr<sqlite3, Closer>;

// A table of a snapshot: where its rows come from, and the column that
// selects the project's rows.
struct Table {
  const char* schema;  // "cat" (catalog.db) or "led" (ledger.db)
  const char* name;
  const char* project_column;
  const char* order_by;
};
inline constexpr Table kTables[] = {
    {"cat", "projects", "id", "id"},
    {"cat", "branches", "project_id", "timeline"},
    {"cat", "labels", "project_id", "timeline, label"},
    {"led", "project_quotas", "project_id", "project_id"},
    {"led", "branch_owners", "project_id", "timeline"},
};

// Opens path (":memory:" for an in-memory database), with a busy timeout.
Result<Db> Open(const std::string& path);

// Runs sql (one statement) with text parameters ?1, ?2...; rows, if any, go to
// *rows (each column as text; NULL as "").
Status Exec(sqlite3* db, const std::string& sql, const std::vector<std::string>& params = {},
            std::vector<std::vector<std::string>>* rows = nullptr);

// The column names of schema.table (empty when there is no such table).
Result<std::vector<std::string>> Columns(sqlite3* db, const std::string& schema,
                                         const std::string& table);

}  // namespace branchdb::server::snapshot_db

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_SNAPSHOT_DB_H_
