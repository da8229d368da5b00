#include "tests/vfs/vfs_test_util.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <vector>

namespace branchdb::testing {

using storage::PageStore;
using storage::PageStoreOptions;

StoreFixture::StoreFixture(Env* env, uint64_t cache_bytes)
    : store_dir_(dir_.Sub("store")), env_(env), cache_bytes_(cache_bytes) {
  Reopen();
  auto t = store_->CreateTimeline(0, "test");
  REQUIRE(t.ok());
  timeline_ = *t;
}

void StoreFixture::Reopen() {
  store_.reset();
  PageStoreOptions options;
  options.env = env_;
  options.cache_bytes = cache_bytes_;
  options.cache_page_images = true;
  auto store = PageStore::Open(options, store_dir_);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  store_ = std::move(store).value();
}

storage::SqliteHandle StoreFixture::Open(storage::TimelineId t, int cache_pages) {
  storage::ConnectionOptions options;
  options.store = store_;
  options.timeline = t == 0 ? timeline_ : t;
  options.cache_pages = cache_pages;
  auto db = storage::OpenConnection(options);
  INFO(db.status().ToString());
  REQUIRE(db.ok());
  return std::move(db).value();
}

storage::SqliteHandle StoreFixture::OpenAt(storage::TimelineId t, storage::Lsn lsn) {
  storage::ConnectionOptions options;
  options.store = store_;
  options.timeline = t;
  options.as_of = lsn;
  auto db = storage::OpenConnection(options);
  INFO(db.status().ToString());
  REQUIRE(db.ok());
  return std::move(db).value();
}

ExecResult Exec(sqlite3* db, const std::string& sql) {
  ExecResult result;
  char* err = nullptr;
  result.rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  if (result.rc != SQLITE_OK) {
    result.rc = sqlite3_extended_errcode(db);
    result.message = err != nullptr ? err : sqlite3_errmsg(db);
  }
  sqlite3_free(err);
  return result;
}

void MustExec(sqlite3* db, const std::string& sql) {
  ExecResult r = Exec(db, sql);
  INFO(sql.substr(0, 300) << " -> " << r.message);
  REQUIRE(r.rc == SQLITE_OK);
}

uint64_t Fnv64(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string Query(sqlite3* db, const std::string& sql, int* rc_out) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  std::string out;
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      int n = sqlite3_column_count(stmt);
      for (int i = 0; i < n; ++i) {
        if (i > 0) out += '|';
        switch (sqlite3_column_type(stmt, i)) {
          case SQLITE_NULL:
            out += "NULL";
            break;
          case SQLITE_BLOB: {
            const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, i));
            int len = sqlite3_column_bytes(stmt, i);
            std::string bytes(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
            if (len <= 16) {
              static const char* kHex = "0123456789abcdef";
              out += "x'";
              for (unsigned char c : bytes) {
                out += kHex[c >> 4];
                out += kHex[c & 15];
              }
              out += "'";
            } else {
              out += "blob(" + std::to_string(len) + "," + std::to_string(Fnv64(bytes)) + ")";
            }
            break;
          }
          default:
            out += reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
        }
      }
      out += '\n';
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  if (rc != SQLITE_OK) rc = sqlite3_extended_errcode(db);
  sqlite3_finalize(stmt);
  if (rc_out != nullptr) *rc_out = rc;
  return rc == SQLITE_OK ? out : std::string();
}

int64_t QueryInt(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  INFO(sql << ": " << sqlite3_errmsg(db));
  REQUIRE(rc == SQLITE_OK);
  rc = sqlite3_step(stmt);
  INFO(sql << ": " << sqlite3_errmsg(db));
  REQUIRE(rc == SQLITE_ROW);
  int64_t v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return v;
}

std::string Dump(sqlite3* db) {
  int rc = SQLITE_OK;
  std::string schema = Query(db,
                             "SELECT type, name, tbl_name, sql FROM sqlite_schema "
                             "ORDER BY type, name",
                             &rc);
  if (rc != SQLITE_OK) return "<schema query failed: " + std::string(sqlite3_errmsg(db)) + ">";
  std::string out = schema;
  std::string tables = Query(db,
                             "SELECT name FROM sqlite_schema WHERE type='table' AND "
                             "name NOT LIKE 'sqlite_%' ORDER BY name");
  size_t start = 0;
  while (start < tables.size()) {
    size_t end = tables.find('\n', start);
    std::string name = tables.substr(start, end - start);
    start = end + 1;
    out += "== " + name + "\n";
    out += Query(db, "SELECT rowid, * FROM \"" + name + "\" ORDER BY rowid", &rc);
    if (rc != SQLITE_OK) out += "<query failed: " + std::string(sqlite3_errmsg(db)) + ">";
  }
  return out;
}

std::string IntegrityCheck(sqlite3* db) {
  int rc = SQLITE_OK;
  std::string r = Query(db, "PRAGMA integrity_check", &rc);
  if (rc != SQLITE_OK) return "<integrity_check failed: " + std::string(sqlite3_errmsg(db)) + ">";
  if (r == "ok\n") return "ok";
  return r;
}

}  // namespace branchdb::testing
