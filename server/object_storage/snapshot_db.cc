// See snapshot_db.h.
#include "server/object_storage/snapshot_db.h"

namespace branchdb::server::snapshot_db {
namespace {

Status SnapshotDbError(sqlite3* db, const std::string& what) {
  return Status::IOError(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"),
                         "catalog_snapshot_error");
}

}  // namespace

Result<Db> Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return SnapshotDbError(raw, "open " + path);
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

Status Exec(sqlite3* db, const std::string& sql, const std::vector<std::string>& params,
            std::vector<std::vector<std::string>>* rows) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return SnapshotDbError(db, sql);
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owned(stmt, sqlite3_finalize);
  for (size_t i = 0; i < params.size(); ++i) {
    sqlite3_bind_text(stmt, static_cast<int>(i + 1), params[i].data(),
                      static_cast<int>(params[i].size()), SQLITE_TRANSIENT);
  }
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (rows == nullptr) continue;
    std::vector<std::string>& row = rows->emplace_back();
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      const unsigned char* text = sqlite3_column_text(stmt, c);
      row.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
  }
  if (rc != SQLITE_DONE) return SnapshotDbError(db, sql);
  return Status::OK();
}

Result<std::vector<std::string>> Columns(sqlite3* db, const std::string& schema,
                                         const std::string& table) {
  std::vector<std::vector<std::string>> rows;
  BRANCHDB_RETURN_IF_ERROR(
      Exec(db, "SELECT name FROM pragma_table_info(?1, ?2)", {table, schema}, &rows));
  std::vector<std::string> names;
  for (auto& row : rows) names.push_back(std::move(row[0]));
  return names;
}

}  // namespace branchdb::server::snapshot_db
