// Data diff between two states: per table rows added / removed / changed.
//
// Which tables: a table whose b-tree pages (interior + leaf, in either state)
// include none of PageStore::ChangedPages(from, to) is unchanged and skipped
// without reading its rows. Changed pages that belong to no b-tree and are not
// on a free list (overflow pages, pointer maps) make every table a candidate.
//
// How: rowid tables keyed by the rowid (no declared key, or an INTEGER
// PRIMARY KEY) compare only the rows on leaf pages that changed or that belong
// to the table in one state only (point lookups by rowid) — cost follows the
// change; if unmapped pages changed, a merge join over all rowids. Other keyed
// tables (a non-integer PRIMARY KEY, WITHOUT ROWID) use SQLite's session
// extension: the "from" rows of the table are copied into a TEMP table of
// the "to" connection (read-only connections cannot ATTACH, but their temp
// schema is writable) and sqlite3session_diff computes the changeset. Tables
// whose columns differ are reported with a note, not compared.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "checkpoints/diff_internal.h"

namespace branchdb::checkpoints {
namespace {

using nlohmann::json;

// The temp schema: writable also on a read-only connection (ATTACH is not).
constexpr const char* kFromSchema = "temp";

Status SqlError(sqlite3* db, const std::string& what) {
  return Status::IOError(what + ": " + sqlite3_errmsg(db));
}

std::string Quote(const std::string& ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

json ValueJson(sqlite3_value* v) {
  if (!v) return nullptr;
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER: return sqlite3_value_int64(v);
    case SQLITE_FLOAT: return sqlite3_value_double(v);
    case SQLITE_TEXT: {
      const char* t = reinterpret_cast<const char*>(sqlite3_value_text(v));
      return std::string(t ? t : "", sqlite3_value_bytes(v));
    }
    case SQLITE_BLOB: {
      static const char* kHex = "0123456789abcdef";
      const auto* p = static_cast<const unsigned char*>(sqlite3_value_blob(v));
      int n = sqlite3_value_bytes(v);
      std::string hex;
      for (int i = 0; i < n; ++i) {
        hex += kHex[p[i] >> 4];
        hex += kHex[p[i] & 0xF];
      }
      return json{{"blob_hex", hex}};
    }
    default: return nullptr;
  }
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool ValueEq(sqlite3_value* a, sqlite3_value* b) {
  int ta = sqlite3_value_type(a), tb = sqlite3_value_type(b);
  if (ta != tb) return false;
  switch (ta) {
    case SQLITE_NULL: return true;
    case SQLITE_INTEGER: return sqlite3_value_int64(a) == sqlite3_value_int64(b);
    case SQLITE_FLOAT: return sqlite3_value_double(a) == sqlite3_value_double(b);
    default: {
      const void* pa = ta == SQLITE_TEXT ? static_cast<const void*>(sqlite3_value_text(a))
                                         : sqlite3_value_blob(a);
      const void* pb = tb == SQLITE_TEXT ? static_cast<const void*>(sqlite3_value_text(b))
                                         : sqlite3_value_blob(b);
      int na = sqlite3_value_bytes(a), nb = sqlite3_value_bytes(b);
      return na == nb && (na == 0 || memcmp(pa, pb, na) == 0);
    }
  }
}

Result<uint64_t> CountRows(sqlite3* db, const std::string& table) {
  std::string sql = "SELECT count(*) FROM " + Quote(table);
  Stmt s(db, sql.c_str());
  if (s.Step() != SQLITE_ROW) return SqlError(db, "count " + table);
  return static_cast<uint64_t>(s.Int(0));
}

std::string ColumnList(const SchemaObject& t) {
  std::string cols;
  for (const ColumnDef& c : t.columns) cols += (cols.empty() ? "" : ", ") + Quote(c.name);
  return cols;
}

// Rowid tables without a declared key: merge join on rowid.
Status DiffByRowid(sqlite3* a, sqlite3* b, const SchemaObject& t, size_t sample,
                   TableDataDiff* out, uint64_t* rows_read) {
  std::string sql = "SELECT rowid, " + ColumnList(t) + " FROM " + Quote(t.name) + " ORDER BY rowid";
  Stmt sa(a, sql.c_str()), sb(b, sql.c_str());
  if (!sa.ok()) return SqlError(a, "diff " + t.name);
  if (!sb.ok()) return SqlError(b, "diff " + t.name);
  int ncol = static_cast<int>(t.columns.size());
  int ra = sa.Step(), rb = sb.Step();
  auto row_json = [&](Stmt& s) {
    json j = json::object();
    for (int c = 0; c < ncol; ++c) j[t.columns[c].name] = ValueJson(sqlite3_column_value(s.get(), c + 1));
    return j;
  };
  while (ra == SQLITE_ROW || rb == SQLITE_ROW) {
    *rows_read += (ra == SQLITE_ROW) + (rb == SQLITE_ROW);
    int64_t ka = ra == SQLITE_ROW ? sa.Int(0) : INT64_MAX;
    int64_t kb = rb == SQLITE_ROW ? sb.Int(0) : INT64_MAX;
    if (ra == SQLITE_ROW && (rb != SQLITE_ROW || ka < kb)) {
      ++out->rows_removed;
      if (out->sample.size() < sample) {
        out->sample.push_back({"delete", Dump(json::array({ka})), Dump(row_json(sa)), ""});
      }
      ra = sa.Step();
    } else if (rb == SQLITE_ROW && (ra != SQLITE_ROW || kb < ka)) {
      ++out->rows_added;
      if (out->sample.size() < sample) {
        out->sample.push_back({"insert", Dump(json::array({kb})), "", Dump(row_json(sb))});
      }
      rb = sb.Step();
    } else {
      json old_j = json::object(), new_j = json::object();
      for (int c = 0; c < ncol; ++c) {
        sqlite3_value* va = sqlite3_column_value(sa.get(), c + 1);
        sqlite3_value* vb = sqlite3_column_value(sb.get(), c + 1);
        if (!ValueEq(va, vb)) {
          old_j[t.columns[c].name] = ValueJson(va);
          new_j[t.columns[c].name] = ValueJson(vb);
        }
      }
      if (!old_j.empty()) {
        ++out->rows_changed;
        if (out->sample.size() < sample) {
          out->sample.push_back({"update", Dump(json::array({ka})), Dump(old_j), Dump(new_j)});
        }
      }
      ra = sa.Step();
      rb = sb.Step();
    }
  }
  if (ra != SQLITE_DONE) return SqlError(a, "diff " + t.name);
  if (rb != SQLITE_DONE) return SqlError(b, "diff " + t.name);
  return Status::OK();
}

Status Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "error";
    sqlite3_free(err);
    return Status::IOError("diff: " + msg);
  }
  return Status::OK();
}

// Copies table t of connection a into kFromSchema of connection b.
Status CopyFromTable(sqlite3* a, sqlite3* b, const SchemaObject& t, uint64_t* rows_read) {
  const std::string kPrefix = "CREATE TABLE ";
  if (t.sql.rfind(kPrefix, 0) != 0) return Status::InvalidArgument("not a plain table");
  BRANCHDB_RETURN_IF_ERROR(Exec(b, "DROP TABLE IF EXISTS " + std::string(kFromSchema) + "." +
                                       Quote(t.name)));
  BRANCHDB_RETURN_IF_ERROR(
      Exec(b, kPrefix + kFromSchema + "." + t.sql.substr(kPrefix.size())));
  std::string cols = ColumnList(t);
  std::string sel = "SELECT " + cols + " FROM " + Quote(t.name);
  std::string ins = "INSERT INTO " + std::string(kFromSchema) + "." + Quote(t.name) + "(" + cols +
                    ") VALUES(";
  for (size_t i = 0; i < t.columns.size(); ++i) ins += i ? ",?" : "?";
  ins += ")";
  Stmt s(a, sel.c_str());
  Stmt w(b, ins.c_str());
  if (!s.ok()) return SqlError(a, "copy " + t.name);
  if (!w.ok()) return SqlError(b, "copy " + t.name);
  BRANCHDB_RETURN_IF_ERROR(Exec(b, "SAVEPOINT diff_copy"));
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    ++*rows_read;
    for (int c = 0; c < static_cast<int>(t.columns.size()); ++c) {
      sqlite3_bind_value(w.get(), c + 1, sqlite3_column_value(s.get(), c));
    }
    if (w.Step() != SQLITE_DONE) {
      (void)Exec(b, "ROLLBACK TO diff_copy; RELEASE diff_copy");
      return SqlError(b, "copy " + t.name);
    }
    sqlite3_reset(w.get());
  }
  if (rc != SQLITE_DONE) {
    (void)Exec(b, "ROLLBACK TO diff_copy; RELEASE diff_copy");
    return SqlError(a, "copy " + t.name);
  }
  return Exec(b, "RELEASE diff_copy");
}

// Keyed tables: the session extension's diff of kFromSchema.t -> main.t.
Status DiffBySession(sqlite3* a, sqlite3* b, const SchemaObject& t, size_t sample,
                     TableDataDiff* out, uint64_t* rows_read) {
  BRANCHDB_RETURN_IF_ERROR(CopyFromTable(a, b, t, rows_read));
  sqlite3_session* session = nullptr;
  if (sqlite3session_create(b, "main", &session) != SQLITE_OK) return SqlError(b, "session");
  std::unique_ptr<sqlite3_session, void (*)(sqlite3_session*)> guard(session,
                                                                     sqlite3session_delete);
  if (sqlite3session_attach(session, t.name.c_str()) != SQLITE_OK) return SqlError(b, "session");
  char* err = nullptr;
  if (sqlite3session_diff(session, kFromSchema, t.name.c_str(), &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(b);
    sqlite3_free(err);
    return Status::IOError("session diff " + t.name + ": " + msg);
  }
  int n = 0;
  void* buf = nullptr;
  if (sqlite3session_changeset(session, &n, &buf) != SQLITE_OK) return SqlError(b, "changeset");
  std::unique_ptr<void, void (*)(void*)> buf_guard(buf, sqlite3_free);
  sqlite3_changeset_iter* it = nullptr;
  if (sqlite3changeset_start(&it, n, buf) != SQLITE_OK) return SqlError(b, "changeset");
  while (sqlite3changeset_next(it) == SQLITE_ROW) {
    const char* tab = nullptr;
    int ncol = 0, op = 0, indirect = 0;
    sqlite3changeset_op(it, &tab, &ncol, &op, &indirect);
    unsigned char* pk = nullptr;
    int npk = 0;
    sqlite3changeset_pk(it, &pk, &npk);
    bool want = out->sample.size() < sample;
    json key = json::array(), old_j = json::object(), new_j = json::object();
    for (int c = 0; want && c < ncol && c < static_cast<int>(t.columns.size()); ++c) {
      sqlite3_value* ov = nullptr;
      sqlite3_value* nv = nullptr;
      if (op != SQLITE_INSERT) sqlite3changeset_old(it, c, &ov);
      if (op != SQLITE_DELETE) sqlite3changeset_new(it, c, &nv);
      if (pk[c]) key.push_back(ValueJson(op == SQLITE_INSERT ? nv : ov));
      if (op == SQLITE_UPDATE) {
        if (nv) {  // changed column
          old_j[t.columns[c].name] = ValueJson(ov);
          new_j[t.columns[c].name] = ValueJson(nv);
        }
      } else if (op == SQLITE_DELETE) {
        old_j[t.columns[c].name] = ValueJson(ov);
      } else {
        new_j[t.columns[c].name] = ValueJson(nv);
      }
    }
    if (op == SQLITE_INSERT) {
      ++out->rows_added;
      if (want) out->sample.push_back({"insert", Dump(key), "", Dump(new_j)});
    } else if (op == SQLITE_DELETE) {
      ++out->rows_removed;
      if (want) out->sample.push_back({"delete", Dump(key), Dump(old_j), ""});
    } else {
      ++out->rows_changed;
      if (want) out->sample.push_back({"update", Dump(key), Dump(old_j), Dump(new_j)});
    }
  }
  if (sqlite3changeset_finalize(it) != SQLITE_OK) return SqlError(b, "changeset");
  return Exec(b, "DROP TABLE " + std::string(kFromSchema) + "." + Quote(t.name));
}

// A rowid table whose key is the rowid: no declared PRIMARY KEY, or a single
// INTEGER PRIMARY KEY column (an alias of the rowid).
bool IsRowidKeyed(const SchemaObject& t) {
  std::string sql = t.sql;
  for (char& c : sql) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (sql.find("WITHOUT ROWID") != std::string::npos) return false;
  int pk_cols = 0;
  bool integer_pk = false;
  for (const ColumnDef& c : t.columns) {
    if (c.pk > 0) {
      ++pk_cols;
      std::string type = c.type;
      for (char& ch : type) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      integer_pk = type == "INTEGER";
    }
  }
  return pk_cols == 0 || (pk_cols == 1 && integer_pk);
}

// Compares the rows with the given rowids (sorted) in both states.
Status DiffRowids(sqlite3* a, sqlite3* b, const SchemaObject& t, const std::vector<int64_t>& rowids,
                  size_t sample, TableDataDiff* out, uint64_t* rows_read) {
  std::string sql = "SELECT " + ColumnList(t) + " FROM " + Quote(t.name) + " WHERE rowid=?1";
  Stmt sa(a, sql.c_str()), sb(b, sql.c_str());
  if (!sa.ok()) return SqlError(a, "diff " + t.name);
  if (!sb.ok()) return SqlError(b, "diff " + t.name);
  int ncol = static_cast<int>(t.columns.size());
  auto row_json = [&](Stmt& s) {
    json j = json::object();
    for (int c = 0; c < ncol; ++c) j[t.columns[c].name] = ValueJson(sqlite3_column_value(s.get(), c));
    return j;
  };
  for (int64_t rowid : rowids) {
    sqlite3_reset(sa.get());
    sqlite3_reset(sb.get());
    sa.Bind(1, rowid);
    sb.Bind(1, rowid);
    int ra = sa.Step(), rb = sb.Step();
    if ((ra != SQLITE_ROW && ra != SQLITE_DONE) || (rb != SQLITE_ROW && rb != SQLITE_DONE)) {
      return SqlError(ra != SQLITE_ROW && ra != SQLITE_DONE ? a : b, "diff " + t.name);
    }
    *rows_read += (ra == SQLITE_ROW) + (rb == SQLITE_ROW);
    std::string key = Dump(json::array({rowid}));
    if (ra == SQLITE_ROW && rb != SQLITE_ROW) {
      ++out->rows_removed;
      if (out->sample.size() < sample) out->sample.push_back({"delete", key, Dump(row_json(sa)), ""});
    } else if (rb == SQLITE_ROW && ra != SQLITE_ROW) {
      ++out->rows_added;
      if (out->sample.size() < sample) out->sample.push_back({"insert", key, "", Dump(row_json(sb))});
    } else if (ra == SQLITE_ROW) {
      json old_j = json::object(), new_j = json::object();
      for (int c = 0; c < ncol; ++c) {
        sqlite3_value* va = sqlite3_column_value(sa.get(), c);
        sqlite3_value* vb = sqlite3_column_value(sb.get(), c);
        if (!ValueEq(va, vb)) {
          old_j[t.columns[c].name] = ValueJson(va);
          new_j[t.columns[c].name] = ValueJson(vb);
        }
      }
      if (!old_j.empty()) {
        ++out->rows_changed;
        if (out->sample.size() < sample) {
          out->sample.push_back({"update", key, Dump(old_j), Dump(new_j)});
        }
      }
    }
  }
  return Status::OK();
}

}  // namespace

Result<DataDiff> Catalog::DiffData(const std::string& project, const StateRef& from,
                                   const StateRef& to, const DataDiffOptions& options) {
  Impl& im = *impl_;
  std::unique_ptr<StateConnection> a, b;
  std::shared_ptr<Project> p;
  {
    std::lock_guard<std::mutex> l(im.mu);
    auto pr = im.FindProject(project);
    if (!pr.ok()) return pr.status();
    p = *pr;
    auto la = ResolveState(im, *p, from);
    if (!la.ok()) return la.status();
    auto lb = ResolveState(im, *p, to);
    if (!lb.ok()) return lb.status();
    auto ca = StateConnection::Open(im, p, *la);
    if (!ca.ok()) return ca.status();
    auto cb = StateConnection::Open(im, p, *lb);
    if (!cb.ok()) return cb.status();
    a = std::move(*ca);
    b = std::move(*cb);
  }
  DataDiff d;
  d.from_lsn = a->state();
  d.to_lsn = b->state();
  auto sa = ReadSchema(a->db());
  if (!sa.ok()) return sa.status();
  auto sb = ReadSchema(b->db());
  if (!sb.ok()) return sb.status();

  // Which tables own changed pages.
  std::set<std::string> touched;
  std::set<storage::PageNo> changed_set;
  PageMap ma, mb;
  bool all_candidates = false;
  if (d.from_lsn != d.to_lsn) {
    auto changed = p->store->ChangedPages(d.from_lsn, d.to_lsn);
    if (!changed.ok()) return changed.status();
    d.pages_changed = changed->size();
    changed_set.insert(changed->begin(), changed->end());
    auto ra = MapPages(*p->store, d.from_lsn, *sa);
    if (!ra.ok()) return ra.status();
    auto rb = MapPages(*p->store, d.to_lsn, *sb);
    if (!rb.ok()) return rb.status();
    ma = std::move(*ra);
    mb = std::move(*rb);
    for (storage::PageNo pg : *changed) {
      auto ia = ma.find(pg);
      auto ib = mb.find(pg);
      if (ia != ma.end()) touched.insert(ia->second.table);
      if (ib != mb.end()) touched.insert(ib->second.table);
      if (ia == ma.end() && ib == mb.end()) all_candidates = true;  // overflow, ptrmap, ...
    }
  }
  // Rowids that may differ in table `name`: those on its leaf pages that
  // changed or belong to its tree in one state only. Rows on a leaf page that
  // is unchanged and in the table's tree in both states are identical.
  auto candidate_rowids = [&](const std::string& name) -> Result<std::vector<int64_t>> {
    std::set<int64_t> rowids;
    std::vector<int64_t> cells;
    auto collect = [&](const PageMap& mine, const PageMap& theirs, Lsn state) -> Status {
      for (const auto& [pg, own] : mine) {
        if (own.table != name || !own.table_leaf) continue;
        auto other = theirs.find(pg);
        bool shared = other != theirs.end() && other->second.table == name &&
                      other->second.table_leaf && !changed_set.count(pg);
        if (shared) continue;
        cells.clear();
        BRANCHDB_RETURN_IF_ERROR(LeafRowids(*p->store, state, pg, &cells));
        rowids.insert(cells.begin(), cells.end());
      }
      return Status::OK();
    };
    BRANCHDB_RETURN_IF_ERROR(collect(ma, mb, d.from_lsn));
    BRANCHDB_RETURN_IF_ERROR(collect(mb, ma, d.to_lsn));
    return std::vector<int64_t>(rowids.begin(), rowids.end());
  };
  auto wanted = [&](const std::string& name) {
    if (options.tables.empty()) return true;
    return std::find(options.tables.begin(), options.tables.end(), name) != options.tables.end();
  };
  std::set<std::string> names;
  for (auto& [k, o] : *sa) if (k.first == "table" && !o.internal) names.insert(o.name);
  for (auto& [k, o] : *sb) if (k.first == "table" && !o.internal) names.insert(o.name);
  for (const std::string& name : names) {
    if (!wanted(name)) continue;
    auto ia = sa->find({"table", name});
    auto ib = sb->find({"table", name});
    TableDataDiff td;
    td.table = name;
    if (ia == sa->end()) {
      auto n = CountRows(b->db(), name);
      if (n.ok()) td.rows_added = *n;
      td.note = "table added";
    } else if (ib == sb->end()) {
      auto n = CountRows(a->db(), name);
      if (n.ok()) td.rows_removed = *n;
      td.note = "table removed";
    } else if (ia->second.rootpage == 0 || ib->second.rootpage == 0) {
      continue;  // virtual tables: their shadow tables are compared
    } else if (!(ia->second.columns == ib->second.columns)) {
      td.note = "schema_changed: rows not compared";
    } else if (!all_candidates && !touched.count(name)) {
      ++d.tables_skipped;
      continue;
    } else {
      const SchemaObject& t = ib->second;
      Status st;
      if (IsRowidKeyed(t) && !all_candidates) {
        auto rowids = candidate_rowids(name);
        if (!rowids.ok()) return rowids.status();
        st = DiffRowids(a->db(), b->db(), t, *rowids, options.sample_rows, &td, &d.rows_compared);
      } else if (IsRowidKeyed(t)) {
        st = DiffByRowid(a->db(), b->db(), t, options.sample_rows, &td, &d.rows_compared);
      } else {
        st = DiffBySession(a->db(), b->db(), t, options.sample_rows, &td, &d.rows_compared);
      }
      if (!st.ok()) return st;
      if (td.rows_added == 0 && td.rows_removed == 0 && td.rows_changed == 0) continue;
    }
    d.tables.push_back(std::move(td));
  }
  std::lock_guard<std::mutex> l(im.mu);
  a.reset();
  b.reset();
  return d;
}

}  // namespace branchdb::checkpoints
