// Internal to catalog/: reading two states for diff.
#ifndef BRANCHDB_CATALOG_DIFF_INTERNAL_H_
#define BRANCHDB_CATALOG_DIFF_INTERNAL_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "catalog/catalog_internal.h"

namespace branchdb::catalog {

// A read-only connection at one state of a project's store: through a live
// timeline that has the state on its history, else opened at the exact state.
// The empty state (LSN 0) is read through a scratch timeline (annotation kind
// "internal") dropped again on destruction (Open reconciles it after a crash).
class StateConnection {
 public:
  StateConnection() = default;
  StateConnection(const StateConnection&) = delete;
  StateConnection& operator=(const StateConnection&) = delete;
  ~StateConnection();

  // REQUIRES: p->mu held, shared or exclusive (reads catalog rows). The
  // connection holds p's store until it is destroyed, with no lock needed.
  static Result<std::unique_ptr<StateConnection>> Open(Catalog::Impl& im,
                                                       std::shared_ptr<Project> p, Lsn state);
  sqlite3* db() const { return db_.get(); }
  Lsn state() const { return state_; }

 private:
  std::shared_ptr<Project> project_;
  storage::SqliteHandle db_;
  TimelineId scratch_ = 0;
  Lsn state_ = 0;
};

struct ColumnDef {
  std::string name, type, dflt;
  bool notnull = false;
  int pk = 0;
  bool operator==(const ColumnDef&) const = default;
};

struct SchemaObject {
  std::string type, name, tbl_name, sql;
  uint32_t rootpage = 0;
  std::vector<ColumnDef> columns;  // tables only
  bool internal = false;           // sqlite_* objects (autoindexes, sqlite_sequence, ...)
};

// The error of a failed read through a StateConnection's db: the store's own
// (e.g. NotFound project_not_found once the project is deleted, lsn_not_found
// once the state is collected) when it refused, else IOError with SQLite's.
Status StateReadError(sqlite3* db, const std::string& what);

// (type, name) -> object, sqlite_* internal objects included (flagged).
using SchemaMap = std::map<std::pair<std::string, std::string>, SchemaObject>;
Result<SchemaMap> ReadSchema(sqlite3* db);

struct PageOwner {
  std::string table;        // owning table ("" for free-list pages)
  bool table_leaf = false;  // a leaf page of the table's own b-tree (not an index)
};
using PageMap = std::map<storage::PageNo, PageOwner>;

// Pages of each table's b-tree (interior and leaf pages; only one leaf per
// bottom interior page is read, to learn that its level is the leaf level),
// index b-trees counted for their table, free-list pages under the name "".
Result<PageMap> MapPages(const storage::PageStore& store, Lsn state, const SchemaMap& schema);

// Rowids of the cells of a table leaf page (type 0x0d) of state.
Status LeafRowids(const storage::PageStore& store, Lsn state, storage::PageNo pgno,
                  std::vector<int64_t>* out);

// The state a StateRef names. REQUIRES: p.mu held (shared or exclusive).
Result<Lsn> ResolveState(Catalog::Impl& im, Project& p, const StateRef& ref);

}  // namespace branchdb::catalog

#endif  // BRANCHDB_CATALOG_DIFF_INTERNAL_H_
