// The data diff as SQL (Dolt's dolt_patch): statements that turn the "from"
// state into the "to" state, paged with the data diff's cursor.
//
// Order: the first page starts with the schema changes (triggers, views and
// indexes that go or change are dropped; removed tables dropped; columns
// dropped and added with ALTER TABLE; added tables created; indexes and views
// created), then each page has its row changes (INSERT, UPDATE of the changed
// and added columns, DELETE, by key; rows of removed tables need none); the
// last page ends with the triggers, created after the rows so that they do
// not fire on them. A schema change ALTER TABLE cannot express (a column whose
// type or constraints changed, a new key, a changed constraint) becomes a
// "-- " comment and DataPatch::complete is false.
#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "catalog/diff_internal.h"

namespace branchdb::catalog {
namespace {

using nlohmann::json;

std::string Ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A JSON value of the data diff (blobs as {"blob_hex": ...}) as an SQL literal.
std::string Literal(const json& v) {
  if (v.is_null()) return "NULL";
  if (v.is_boolean()) return v.get<bool>() ? "1" : "0";
  if (v.is_number()) return v.dump();
  if (v.is_object() && v.contains("blob_hex")) return "X'" + v["blob_hex"].get<std::string>() + "'";
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string Where(const TableDataDiff& t, const json& key) {
  std::string out;
  for (size_t i = 0; i < t.key_columns.size() && i < key.size(); ++i) {
    const std::string& k = t.key_columns[i];
    out += (out.empty() ? " WHERE " : " AND ") + (k == "rowid" ? k : Ident(k)) + " IS " +
           Literal(key[i]);
  }
  return out;
}

bool HasIntegerKeyColumn(const SchemaObject& t) {
  for (const ColumnDef& c : t.columns) {
    if (c.pk > 0) return true;
  }
  return false;
}

// One row change as a statement ("" when there is nothing to write).
std::string RowSql(const TableDataDiff& t, const RowChange& r, const SchemaMap& to) {
  json key = json::parse(r.key_json, nullptr, false);
  if (key.is_discarded() || !key.is_array()) return "";
  std::string table = Ident(t.table);
  if (r.op == "delete") return "DELETE FROM " + table + Where(t, key);
  json row = json::parse(r.new_json, nullptr, false);
  if (row.is_discarded() || !row.is_object() || row.empty()) return "";
  if (r.op == "update") {
    std::string set;
    for (auto& [col, v] : row.items()) set += (set.empty() ? "" : ", ") + Ident(col) + " = " + Literal(v);
    return "UPDATE " + table + " SET " + set + Where(t, key);
  }
  std::string cols, vals;
  auto schema = to.find({"table", t.table});
  bool with_rowid = t.key_columns == std::vector<std::string>{"rowid"} && schema != to.end() &&
                    !HasIntegerKeyColumn(schema->second) && !key.empty();
  if (with_rowid) {
    cols = "rowid";
    vals = Literal(key[0]);
  }
  for (auto& [col, v] : row.items()) {
    cols += (cols.empty() ? "" : ", ") + Ident(col);
    vals += (vals.empty() ? "" : ", ") + Literal(v);
  }
  return "INSERT INTO " + table + "(" + cols + ") VALUES(" + vals + ")";
}

std::string ColumnSql(const ColumnDef& c) {
  std::string out = Ident(c.name);
  if (!c.type.empty()) out += " " + c.type;
  if (c.notnull) out += " NOT NULL";
  if (!c.dflt.empty()) out += " DEFAULT " + c.dflt;
  return out;
}

// ALTER TABLE statements for a changed table, or a comment (*complete false).
void AlterTable(const SchemaObjectDiff& o, const SchemaMap& to, std::vector<std::string>* out,
                bool* complete) {
  auto schema = to.find({"table", o.name});
  bool simple = o.columns_changed.empty() && schema != to.end() &&
                (!o.columns_added.empty() || !o.columns_removed.empty());
  for (const std::string& c : o.columns_added) {
    for (const ColumnDef& def : schema == to.end() ? std::vector<ColumnDef>{} : schema->second.columns) {
      if (def.name == c && def.pk > 0) simple = false;
    }
  }
  if (!simple) {
    *complete = false;
    out->push_back("-- table " + o.name + " changed in a way ALTER TABLE cannot express; its new " +
                   "definition: " + o.new_sql);
    return;
  }
  for (const std::string& c : o.columns_removed) {
    out->push_back("ALTER TABLE " + Ident(o.name) + " DROP COLUMN " + Ident(c));
  }
  for (const ColumnDef& def : schema->second.columns) {
    if (std::find(o.columns_added.begin(), o.columns_added.end(), def.name) !=
        o.columns_added.end()) {
      out->push_back("ALTER TABLE " + Ident(o.name) + " ADD COLUMN " + ColumnSql(def));
    }
  }
}

bool Gone(const SchemaObjectDiff& o) { return o.change == "removed" || o.change == "changed"; }
bool Comes(const SchemaObjectDiff& o) { return o.change == "added" || o.change == "changed"; }

std::vector<std::string> SchemaPrelude(const SchemaDiff& s, const SchemaMap& to, bool* complete) {
  std::vector<std::string> out;
  for (const char* type : {"trigger", "view", "index"}) {
    for (const auto& o : s.objects) {
      if (o.type != type || !Gone(o)) continue;
      std::string kind = o.type;
      for (char& c : kind) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out.push_back("DROP " + kind + " IF EXISTS " + Ident(o.name));
    }
  }
  for (const auto& o : s.objects) {
    if (o.type == "table" && o.change == "removed") out.push_back("DROP TABLE " + Ident(o.name));
  }
  for (const auto& o : s.objects) {
    if (o.type == "table" && o.change == "changed") AlterTable(o, to, &out, complete);
  }
  for (const char* type : {"table", "index", "view"}) {
    for (const auto& o : s.objects) {
      if (o.type == type && (std::string(type) == "table" ? o.change == "added" : Comes(o)) &&
          !o.new_sql.empty()) {
        out.push_back(o.new_sql);
      }
    }
  }
  return out;
}

}  // namespace

Result<DataPatch> Catalog::DiffPatch(const std::string& project, const StateRef& from,
                                     const StateRef& to, const DataDiffOptions& options) {
  auto data = DiffData(project, from, to, options);
  if (!data.ok()) return data.status();
  StateRef a{"", data->from_lsn}, b{"", data->to_lsn};
  DataPatch patch;
  patch.from_lsn = data->from_lsn;
  patch.to_lsn = data->to_lsn;
  patch.next_cursor = data->next_cursor;
  auto schema = DiffSchema(project, a, b);
  if (!schema.ok()) return schema.status();
  SchemaMap to_schema;
  {
    Impl& im = *impl_;
    auto pr = im.ReadProject(project);
    if (!pr.ok()) return pr.status();
    auto conn = StateConnection::Open(im, pr->project, data->to_lsn);
    if (!conn.ok()) return conn.status();
    pr->lock.unlock();  // the connection holds the store
    auto read = ReadSchema((*conn)->db());
    if (!read.ok()) return read.status();
    to_schema = std::move(*read);
  }
  if (options.cursor.empty()) patch.statements = SchemaPrelude(*schema, to_schema, &patch.complete);
  for (const TableDataDiff& t : data->tables) {
    if (t.note == "table removed") continue;
    for (const RowChange& r : t.rows) {
      std::string sql = RowSql(t, r, to_schema);
      if (!sql.empty()) patch.statements.push_back(std::move(sql));
    }
  }
  if (patch.next_cursor.empty()) {
    for (const auto& o : schema->objects) {
      if (o.type == "trigger" && Comes(o) && !o.new_sql.empty()) patch.statements.push_back(o.new_sql);
    }
  }
  return patch;
}

}  // namespace branchdb::catalog
