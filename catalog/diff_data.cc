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
// schema is writable) and sqlite3session_diff computes the changeset.
// Tables whose columns differ (a column added, dropped or redefined) are
// compared on their key and the columns both states have, as Dolt does: the
// values of added columns show in "new", those of dropped ones in "old"
// (rowid tables: a merge join on the rowid; others: the "from" rows copied
// into TEMP and joined on the key). A key that changed is noted, not compared.
//
// Paging: every row change gets an index in a fixed order (tables by name,
// then the order of the table's comparison); a page holds the changes with
// index in [offset, offset + limit). The cursor names the two states and the
// next offset, so later pages compare the same states again.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "catalog/diff_internal.h"

namespace branchdb::catalog {
namespace {

using nlohmann::json;

// The temp schema: writable also on a read-only connection (ATTACH is not).
constexpr const char* kFromSchema = "temp";

Status SqlError(sqlite3* db, const std::string& what) { return StateReadError(db, what); }

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

// Which row changes of the whole comparison this page materializes.
class RowPager {
 public:
  RowPager(uint64_t offset, size_t limit) : offset_(offset), limit_(limit) {}
  // Call once per row change, in order: true when it belongs to this page.
  bool Take() {
    uint64_t index = seen_++;
    if (index >= offset_ + limit_) more_ = true;
    return index >= offset_ && index < offset_ + limit_;
  }
  bool more() const { return more_; }
  uint64_t next_offset() const { return offset_ + limit_; }

 private:
  const uint64_t offset_;
  const size_t limit_;
  uint64_t seen_ = 0;
  bool more_ = false;
};

// A row as a JSON object of the given columns, read from column `first` of s.
json RowJson(sqlite3_stmt* s, const std::vector<ColumnDef>& cols, int first) {
  json j = json::object();
  for (size_t c = 0; c < cols.size(); ++c) {
    j[cols[c].name] = ValueJson(sqlite3_column_value(s, first + static_cast<int>(c)));
  }
  return j;
}

bool HasColumn(const std::vector<ColumnDef>& cols, const std::string& name) {
  return std::any_of(cols.begin(), cols.end(), [&](const ColumnDef& c) { return c.name == name; });
}

// Compares a matched row of columns ca (from, read at column fa of sa) and cb
// (to, at fb of sb): changed common columns in both objects, the non-NULL
// values of dropped columns in old_j and of added columns in new_j.
void CompareRow(sqlite3_stmt* sa, const std::vector<ColumnDef>& ca, int fa, sqlite3_stmt* sb,
                const std::vector<ColumnDef>& cb, int fb, json* old_j, json* new_j) {
  for (size_t i = 0; i < cb.size(); ++i) {
    sqlite3_value* vb = sqlite3_column_value(sb, fb + static_cast<int>(i));
    auto same = std::find_if(ca.begin(), ca.end(),
                             [&](const ColumnDef& c) { return c.name == cb[i].name; });
    if (same == ca.end()) {
      if (sqlite3_value_type(vb) != SQLITE_NULL) (*new_j)[cb[i].name] = ValueJson(vb);
      continue;
    }
    sqlite3_value* va = sqlite3_column_value(sa, fa + static_cast<int>(same - ca.begin()));
    if (!ValueEq(va, vb)) {
      (*old_j)[cb[i].name] = ValueJson(va);
      (*new_j)[cb[i].name] = ValueJson(vb);
    }
  }
  for (size_t i = 0; i < ca.size(); ++i) {
    sqlite3_value* va = sqlite3_column_value(sa, fa + static_cast<int>(i));
    if (!HasColumn(cb, ca[i].name) && sqlite3_value_type(va) != SQLITE_NULL) {
      (*old_j)[ca[i].name] = ValueJson(va);
    }
  }
}

// Counts and pages one row change of the table.
void AddChange(RowPager& pg, TableDataDiff* out, const char* op, const json& key,
               const json& old_j, const json& new_j) {
  std::string o = op;
  if (o == "insert") ++out->rows_added;
  else if (o == "delete") ++out->rows_removed;
  else ++out->rows_changed;
  if (!pg.Take()) return;
  out->rows.push_back({o, Dump(key), old_j.is_null() ? "" : Dump(old_j),
                       new_j.is_null() ? "" : Dump(new_j)});
}

// Rowid tables, all rows: a merge join on the rowid of ta (from) and tb (to),
// whose columns may differ.
Status DiffByRowid(sqlite3* a, sqlite3* b, const SchemaObject& ta, const SchemaObject& tb,
                   RowPager& pg, TableDataDiff* out, uint64_t* rows_read) {
  std::string qa = "SELECT rowid, " + ColumnList(ta) + " FROM " + Quote(ta.name) + " ORDER BY rowid";
  std::string qb = "SELECT rowid, " + ColumnList(tb) + " FROM " + Quote(tb.name) + " ORDER BY rowid";
  Stmt sa(a, qa.c_str()), sb(b, qb.c_str());
  if (!sa.ok()) return SqlError(a, "diff " + ta.name);
  if (!sb.ok()) return SqlError(b, "diff " + tb.name);
  int ra = sa.Step(), rb = sb.Step();
  while (ra == SQLITE_ROW || rb == SQLITE_ROW) {
    *rows_read += (ra == SQLITE_ROW) + (rb == SQLITE_ROW);
    int64_t ka = ra == SQLITE_ROW ? sa.Int(0) : INT64_MAX;
    int64_t kb = rb == SQLITE_ROW ? sb.Int(0) : INT64_MAX;
    if (ra == SQLITE_ROW && (rb != SQLITE_ROW || ka < kb)) {
      AddChange(pg, out, "delete", json::array({ka}), RowJson(sa.get(), ta.columns, 1), nullptr);
      ra = sa.Step();
    } else if (rb == SQLITE_ROW && (ra != SQLITE_ROW || kb < ka)) {
      AddChange(pg, out, "insert", json::array({kb}), nullptr, RowJson(sb.get(), tb.columns, 1));
      rb = sb.Step();
    } else {
      json old_j = json::object(), new_j = json::object();
      CompareRow(sa.get(), ta.columns, 1, sb.get(), tb.columns, 1, &old_j, &new_j);
      if (!old_j.empty() || !new_j.empty()) {
        AddChange(pg, out, "update", json::array({ka}), old_j, new_j);
      }
      ra = sa.Step();
      rb = sb.Step();
    }
  }
  if (ra != SQLITE_DONE) return SqlError(a, "diff " + ta.name);
  if (rb != SQLITE_DONE) return SqlError(b, "diff " + tb.name);
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
Status DiffBySession(sqlite3* a, sqlite3* b, const SchemaObject& t, RowPager& pg,
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
    bool want = pg.Take();
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
      if (want) out->rows.push_back({"insert", Dump(key), "", Dump(new_j)});
    } else if (op == SQLITE_DELETE) {
      ++out->rows_removed;
      if (want) out->rows.push_back({"delete", Dump(key), Dump(old_j), ""});
    } else {
      ++out->rows_changed;
      if (want) out->rows.push_back({"update", Dump(key), Dump(old_j), Dump(new_j)});
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
                  RowPager& pg, TableDataDiff* out, uint64_t* rows_read) {
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
      if (pg.Take()) out->rows.push_back({"delete", key, Dump(row_json(sa)), ""});
    } else if (rb == SQLITE_ROW && ra != SQLITE_ROW) {
      ++out->rows_added;
      if (pg.Take()) out->rows.push_back({"insert", key, "", Dump(row_json(sb))});
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
        if (pg.Take()) out->rows.push_back({"update", key, Dump(old_j), Dump(new_j)});
      }
    }
  }
  return Status::OK();
}

// The key of key_json: the rowid, or the PRIMARY KEY columns in key order.
std::vector<std::string> KeyOf(const SchemaObject& t) {
  if (IsRowidKeyed(t)) return {"rowid"};
  std::vector<std::pair<int, std::string>> pk;
  for (const ColumnDef& c : t.columns) {
    if (c.pk > 0) pk.push_back({c.pk, c.name});
  }
  std::sort(pk.begin(), pk.end());
  std::vector<std::string> out;
  for (auto& [i, name] : pk) out.push_back(name);
  return out;
}

std::string KeyList(const std::vector<std::string>& key, const std::string& alias) {
  std::string out;
  for (const std::string& k : key) {
    out += (out.empty() ? "" : ", ") + alias + (k == "rowid" ? k : Quote(k));
  }
  return out;
}

// "o.k1 IS n.k1 AND ...": the join of two aliases on the key.
std::string KeyJoin(const std::vector<std::string>& key, const std::string& x,
                    const std::string& y) {
  std::string out;
  for (const std::string& k : key) {
    std::string col = k == "rowid" ? k : Quote(k);
    out += (out.empty() ? "" : " AND ") + x + "." + col + " IS " + y + "." + col;
  }
  return out;
}

json KeyJson(sqlite3_stmt* s, size_t n) {
  json key = json::array();
  for (size_t i = 0; i < n; ++i) key.push_back(ValueJson(sqlite3_column_value(s, static_cast<int>(i))));
  return key;
}

// Every row of a table only one state has: inserts (added table) or deletes.
Status ListRows(sqlite3* db, const SchemaObject& t, const char* op, RowPager& pg,
                TableDataDiff* out, uint64_t* rows_read) {
  std::vector<std::string> key = KeyOf(t);
  std::string keys = KeyList(key, "");
  std::string sql = "SELECT " + keys + ", " + ColumnList(t) + " FROM " + Quote(t.name) +
                    " ORDER BY " + keys;
  Stmt s(db, sql.c_str());
  if (!s.ok()) return SqlError(db, "diff " + t.name);
  int rc;
  bool insert = std::string(op) == "insert";
  while ((rc = s.Step()) == SQLITE_ROW) {
    ++*rows_read;
    json row = RowJson(s.get(), t.columns, static_cast<int>(key.size()));
    AddChange(pg, out, op, KeyJson(s.get(), key.size()), insert ? json() : row,
              insert ? row : json());
  }
  return rc == SQLITE_DONE ? Status::OK() : SqlError(db, "diff " + t.name);
}

// Tables with a declared key whose columns differ: the "from" rows are copied
// into TEMP of b and joined with main on the key.
Status DiffReshapedByKey(sqlite3* a, sqlite3* b, const SchemaObject& ta, const SchemaObject& tb,
                         RowPager& pg, TableDataDiff* out, uint64_t* rows_read) {
  BRANCHDB_RETURN_IF_ERROR(CopyFromTable(a, b, ta, rows_read));
  std::vector<std::string> key = KeyOf(tb);
  std::string from = std::string(kFromSchema) + "." + Quote(ta.name);
  std::string to = "main." + Quote(tb.name);
  std::string ocols, ncols;
  for (const ColumnDef& c : ta.columns) ocols += ", o." + Quote(c.name);
  for (const ColumnDef& c : tb.columns) ncols += ", n." + Quote(c.name);
  int na = static_cast<int>(ta.columns.size());
  int nk = static_cast<int>(key.size());
  // Rows of "from": matched (update or equal) or not (delete), in key order.
  std::string q1 = "SELECT " + KeyList(key, "o.") + ocols + ncols + ", n." +
                   (key[0] == "rowid" ? key[0] : Quote(key[0])) + " IS NOT NULL OR EXISTS(SELECT 1 FROM " +
                   to + " x WHERE " + KeyJoin(key, "x", "o") + ") FROM " + from + " o LEFT JOIN " +
                   to + " n ON " + KeyJoin(key, "n", "o") + " ORDER BY " + KeyList(key, "o.");
  Stmt s1(b, q1.c_str());
  if (!s1.ok()) return SqlError(b, "diff " + tb.name);
  int rc;
  while ((rc = s1.Step()) == SQLITE_ROW) {
    ++*rows_read;
    json k = KeyJson(s1.get(), key.size());
    if (s1.Int(nk + na + static_cast<int>(tb.columns.size())) == 0) {
      AddChange(pg, out, "delete", k, RowJson(s1.get(), ta.columns, nk), nullptr);
      continue;
    }
    json old_j = json::object(), new_j = json::object();
    CompareRow(s1.get(), ta.columns, nk, s1.get(), tb.columns, nk + na, &old_j, &new_j);
    if (!old_j.empty() || !new_j.empty()) AddChange(pg, out, "update", k, old_j, new_j);
  }
  if (rc != SQLITE_DONE) return SqlError(b, "diff " + tb.name);
  // Rows only "to" has.
  std::string q2 = "SELECT " + KeyList(key, "n.") + ncols + " FROM " + to + " n WHERE NOT EXISTS(" +
                   "SELECT 1 FROM " + from + " o WHERE " + KeyJoin(key, "o", "n") + ") ORDER BY " +
                   KeyList(key, "n.");
  Stmt s2(b, q2.c_str());
  if (!s2.ok()) return SqlError(b, "diff " + tb.name);
  while ((rc = s2.Step()) == SQLITE_ROW) {
    ++*rows_read;
    AddChange(pg, out, "insert", KeyJson(s2.get(), key.size()), nullptr,
              RowJson(s2.get(), tb.columns, nk));
  }
  if (rc != SQLITE_DONE) return SqlError(b, "diff " + tb.name);
  return Exec(b, "DROP TABLE " + from);
}

// A table whose columns differ between the states.
Status DiffReshaped(sqlite3* a, sqlite3* b, const SchemaObject& ta, const SchemaObject& tb,
                    RowPager& pg, TableDataDiff* out, uint64_t* rows_read) {
  for (const ColumnDef& c : tb.columns) {
    if (!HasColumn(ta.columns, c.name)) out->columns_added.push_back(c.name);
  }
  for (const ColumnDef& c : ta.columns) {
    if (!HasColumn(tb.columns, c.name)) out->columns_removed.push_back(c.name);
  }
  if (KeyOf(ta) != KeyOf(tb)) {
    out->note = "key_changed: rows not compared";
    return Status::OK();
  }
  if (KeyOf(tb)[0] == "rowid") return DiffByRowid(a, b, ta, tb, pg, out, rows_read);
  return DiffReshapedByKey(a, b, ta, tb, pg, out, rows_read);
}

constexpr const char* kCursorPrefix = "d1.";

std::string EncodeCursor(Lsn from, Lsn to, uint64_t offset) {
  return kCursorPrefix + std::to_string(from) + "." + std::to_string(to) + "." +
         std::to_string(offset);
}

// "d1.<from>.<to>.<offset>".
Status DecodeCursor(const std::string& cursor, Lsn* from, Lsn* to, uint64_t* offset) {
  Status bad = Status::InvalidArgument("bad cursor", "invalid_argument");
  if (cursor.rfind(kCursorPrefix, 0) != 0) return bad;
  uint64_t v[3];
  const char* p = cursor.data() + std::strlen(kCursorPrefix);
  const char* end = cursor.data() + cursor.size();
  for (int i = 0; i < 3; ++i) {
    auto [next, ec] = std::from_chars(p, end, v[i]);
    if (ec != std::errc() || (i < 2 ? (next == end || *next != '.') : next != end)) return bad;
    p = next + 1;
  }
  *from = v[0];
  *to = v[1];
  *offset = v[2];
  return Status::OK();
}

// What changed between the two states, page by page: which tables own a
// changed page (in either state), and whether a changed page belongs to no
// b-tree (an overflow page, a pointer map), which makes every table a
// candidate. Empty when the states are the same.
struct PageChanges {
  std::set<storage::PageNo> changed;
  PageMap from, to;  // page -> owning tree, in each state
  std::set<std::string> touched;
  bool all_candidates = false;
};

Status MapChanges(const storage::PageStore& store, Lsn from, Lsn to, const SchemaMap& sa,
                  const SchemaMap& sb, PageChanges* out, uint64_t* pages_changed) {
  if (from == to) return Status::OK();
  auto changed = store.ChangedPages(from, to);
  if (!changed.ok()) return changed.status();
  *pages_changed = changed->size();
  out->changed.insert(changed->begin(), changed->end());
  auto ra = MapPages(store, from, sa);
  if (!ra.ok()) return ra.status();
  auto rb = MapPages(store, to, sb);
  if (!rb.ok()) return rb.status();
  out->from = std::move(*ra);
  out->to = std::move(*rb);
  for (storage::PageNo pg : *changed) {
    auto ia = out->from.find(pg);
    auto ib = out->to.find(pg);
    if (ia != out->from.end()) out->touched.insert(ia->second.table);
    if (ib != out->to.end()) out->touched.insert(ib->second.table);
    if (ia == out->from.end() && ib == out->to.end()) out->all_candidates = true;
  }
  return Status::OK();
}

// What comparing one table needs: the two states, what changed between them,
// the pager, and the diff being built.
struct DiffContext {
  const storage::PageStore& store;
  StateConnection& a;  // "from"
  StateConnection& b;  // "to"
  const PageChanges& changes;
  RowPager& pg;
  DataDiff& d;
};

// Rowids that may differ in table `name`: those on its leaf pages that
// changed or belong to its tree in one state only. Rows on a leaf page that
// is unchanged and in the table's tree in both states are identical.
Result<std::vector<int64_t>> CandidateRowids(const DiffContext& c, const std::string& name) {
  std::set<int64_t> rowids;
  std::vector<int64_t> cells;
  auto collect = [&](const PageMap& mine, const PageMap& theirs, Lsn state) -> Status {
    for (const auto& [pg, own] : mine) {
      if (own.table != name || !own.table_leaf) continue;
      auto other = theirs.find(pg);
      bool shared = other != theirs.end() && other->second.table == name &&
                    other->second.table_leaf && !c.changes.changed.count(pg);
      if (shared) continue;
      cells.clear();
      BRANCHDB_RETURN_IF_ERROR(LeafRowids(c.store, state, pg, &cells));
      rowids.insert(cells.begin(), cells.end());
    }
    return Status::OK();
  };
  BRANCHDB_RETURN_IF_ERROR(collect(c.changes.from, c.changes.to, c.d.from_lsn));
  BRANCHDB_RETURN_IF_ERROR(collect(c.changes.to, c.changes.from, c.d.to_lsn));
  return std::vector<int64_t>(rowids.begin(), rowids.end());
}

// A table only one state has: every row an insert (added) or a delete; a
// virtual table's rows only counted (its shadow tables are listed).
Status DiffOneSided(const DiffContext& c, const SchemaObject& t, bool added, TableDataDiff* td) {
  td->note = added ? "table added" : "table removed";
  td->key_columns = KeyOf(t);
  sqlite3* db = added ? c.b.db() : c.a.db();
  if (t.rootpage == 0) {
    auto n = CountRows(db, t.name);
    if (n.ok()) (added ? td->rows_added : td->rows_removed) = *n;
    return Status::OK();
  }
  return ListRows(db, t, added ? "insert" : "delete", c.pg, td, &c.d.rows_compared);
}

// A table both states have with the same columns: rowid tables by their
// candidate rowids (or a merge join on all of them when unmapped pages
// changed), others by the session extension.
Status DiffSameShape(const DiffContext& c, const SchemaObject& ta, const SchemaObject& tb,
                     TableDataDiff* td) {
  td->key_columns = KeyOf(tb);
  if (IsRowidKeyed(tb) && !c.changes.all_candidates) {
    auto rowids = CandidateRowids(c, tb.name);
    if (!rowids.ok()) return rowids.status();
    return DiffRowids(c.a.db(), c.b.db(), tb, *rowids, c.pg, td, &c.d.rows_compared);
  }
  if (IsRowidKeyed(tb)) {
    return DiffByRowid(c.a.db(), c.b.db(), ta, tb, c.pg, td, &c.d.rows_compared);
  }
  return DiffBySession(c.a.db(), c.b.db(), tb, c.pg, td, &c.d.rows_compared);
}

// Compares table `name` (ta, tb: its schema in each state, null where it is
// absent) and appends its diff to c.d.tables unless nothing in it differs.
// A table whose pages did not change is skipped unread (counted).
Status DiffTable(const DiffContext& c, const std::string& name, const SchemaObject* ta,
                 const SchemaObject* tb) {
  TableDataDiff td;
  td.table = name;
  if (ta == nullptr || tb == nullptr) {
    BRANCHDB_RETURN_IF_ERROR(DiffOneSided(c, ta == nullptr ? *tb : *ta, ta == nullptr, &td));
  } else if (ta->rootpage == 0 || tb->rootpage == 0) {
    return Status::OK();  // virtual tables: their shadow tables are compared
  } else if (!(ta->columns == tb->columns)) {
    td.key_columns = KeyOf(*tb);
    BRANCHDB_RETURN_IF_ERROR(
        DiffReshaped(c.a.db(), c.b.db(), *ta, *tb, c.pg, &td, &c.d.rows_compared));
    if (td.rows_added + td.rows_removed + td.rows_changed == 0 && td.columns_added.empty() &&
        td.columns_removed.empty() && td.note.empty()) {
      return Status::OK();
    }
  } else if (!c.changes.all_candidates && !c.changes.touched.count(name)) {
    ++c.d.tables_skipped;
    return Status::OK();
  } else {
    BRANCHDB_RETURN_IF_ERROR(DiffSameShape(c, *ta, *tb, &td));
    if (td.rows_added == 0 && td.rows_removed == 0 && td.rows_changed == 0) return Status::OK();
  }
  c.d.tables.push_back(std::move(td));
  return Status::OK();
}

}  // namespace

Result<DataDiff> Catalog::DiffData(const std::string& project, const StateRef& from,
                                   const StateRef& to, const DataDiffOptions& options) {
  if (options.limit < 1 || options.limit > 1000) {
    return Status::InvalidArgument("limit must be within 1..1000", "invalid_argument");
  }
  uint64_t offset = 0;
  StateRef from_ref = from, to_ref = to;
  if (!options.cursor.empty()) {
    Lsn f = 0, t = 0;
    BRANCHDB_RETURN_IF_ERROR(DecodeCursor(options.cursor, &f, &t, &offset));
    from_ref = StateRef{"", f};
    to_ref = StateRef{"", t};
  }
  Impl& im = *impl_;
  std::unique_ptr<StateConnection> a, b;
  std::shared_ptr<Project> p;  // keeps the store for the comparison, which runs unlocked
  {
    auto pr = im.ReadProject(project);
    if (!pr.ok()) return pr.status();
    p = pr->project;
    auto la = ResolveState(im, *p, from_ref);
    if (!la.ok()) return la.status();
    auto lb = ResolveState(im, *p, to_ref);
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
  PageChanges changes;
  BRANCHDB_RETURN_IF_ERROR(
      MapChanges(*p->store, d.from_lsn, d.to_lsn, *sa, *sb, &changes, &d.pages_changed));

  // Every table either state has, by name: its changes, in that order.
  RowPager pg(offset, options.limit);
  const DiffContext c{*p->store, *a, *b, changes, pg, d};
  std::set<std::string> names;
  for (auto& [k, o] : *sa) if (k.first == "table" && !o.internal) names.insert(o.name);
  for (auto& [k, o] : *sb) if (k.first == "table" && !o.internal) names.insert(o.name);
  for (const std::string& name : names) {
    if (!options.tables.empty() &&
        std::find(options.tables.begin(), options.tables.end(), name) == options.tables.end()) {
      continue;
    }
    auto ia = sa->find({"table", name});
    auto ib = sb->find({"table", name});
    BRANCHDB_RETURN_IF_ERROR(DiffTable(c, name, ia == sa->end() ? nullptr : &ia->second,
                                       ib == sb->end() ? nullptr : &ib->second));
  }
  if (pg.more()) d.next_cursor = EncodeCursor(d.from_lsn, d.to_lsn, pg.next_offset());
  return d;
}

}  // namespace branchdb::catalog
