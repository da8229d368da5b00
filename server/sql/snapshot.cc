#include "server/sql/snapshot.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>

#include "catalog/catalog.h"

namespace branchdb::server::sql {
namespace {

Result<storage::SqliteHandle> OpenReadOnly(catalog::Catalog& catalog, const std::string& project,
                                           const std::string& branch,
                                           std::optional<storage::Lsn> lsn) {
  catalog::ConnectionRequest r;
  r.read_only = true;
  if (lsn) r.as_of = *lsn;
  return catalog.OpenBranchConnection(project, branch, r);
}

std::optional<std::string> Text(sqlite3_stmt* stmt, int i) {
  const unsigned char* t = sqlite3_column_text(stmt, i);
  if (t == nullptr) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(t));
}

}  // namespace

Result<BranchSchema> ReadSchema(catalog::Catalog& catalog, const std::string& project,
                                const std::string& branch, std::optional<storage::Lsn> lsn) {
  auto conn = OpenReadOnly(catalog, project, branch, lsn);
  if (!conn.ok()) return conn.status();
  sqlite3* db = conn->get();
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT type, name, tbl_name, sql FROM sqlite_schema "
                         "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
                         -1, &stmt, nullptr) != SQLITE_OK) {
    return Status::IOError(sqlite3_errmsg(db), "sql_io_error");
  }
  BranchSchema schema;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    schema.objects.push_back({Text(stmt, 0).value_or(""), Text(stmt, 1).value_or(""),
                              Text(stmt, 2).value_or(""), Text(stmt, 3)});
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Status::IOError(sqlite3_errmsg(db), "sql_io_error");
  schema.lsn = storage::SnapshotLsn(db);
  return schema;
}

ExportSnapshot::ExportSnapshot(storage::SqliteHandle conn,
                               std::shared_ptr<const storage::PageStore> store,
                               storage::Lsn state, uint64_t size_bytes)
    : conn_(std::move(conn)), store_(std::move(store)), state_(state), size_bytes_(size_bytes) {}

Result<std::unique_ptr<ExportSnapshot>> ExportSnapshot::Open(catalog::Catalog& catalog,
                                                             const std::string& project,
                                                             const std::string& branch,
                                                             std::optional<storage::Lsn> lsn) {
  auto conn = OpenReadOnly(catalog, project, branch, lsn);
  if (!conn.ok()) return conn.status();
  sqlite3* db = conn->get();
  auto store = catalog.Store(project);
  if (!store.ok()) return store.status();
  // A read transaction pins one snapshot for the whole copy.
  if (sqlite3_exec(db, "BEGIN; SELECT count(*) FROM sqlite_schema;", nullptr, nullptr,
                   nullptr) != SQLITE_OK) {
    Status vfs = storage::LastVfsError(db);
    if (!vfs.ok()) return vfs;
    return Status::IOError(std::string("export failed: ") + sqlite3_errmsg(db), "sql_io_error");
  }
  const storage::Lsn state = storage::SnapshotLsn(db);
  auto pages = (*store)->DbSizeAt(state);
  if (!pages.ok()) return pages.status();
  return std::unique_ptr<ExportSnapshot>(
      new ExportSnapshot(std::move(*conn), std::move(*store), state,
                         static_cast<uint64_t>(*pages) * storage::kPageSize));
}

bool ExportSnapshot::Read(uint64_t offset, size_t n, char* out) {
  for (size_t done = 0; done < n; done += storage::kPageSize) {
    auto pgno = static_cast<storage::PageNo>((offset + done) / storage::kPageSize + 1);
    if (!store_->ReadPageAt(state_, pgno, &page_).ok()) return false;
    std::memcpy(out + done, page_.data(), std::min(storage::kPageSize, n - done));
  }
  return true;
}

}  // namespace branchdb::server::sql
