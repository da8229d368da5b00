// libFuzzer target for SQL plus database images through the branchdb SQLite
// VFS (storage/vfs/vfs.h) over a real PageStore.
//
// Input layout:
//   byte 0        flags: bit 0 = image is a patch of the template database
//                 (else raw bytes from page 1 on), bit 1 = open the connection
//                 read-only as of the head (else read-write at the head);
//   bytes 1..2    n, little-endian: length of the image part;
//   next n bytes  the image part: raw bytes (zero-padded to whole pages, at most
//                 kMaxPages), or patch operations on the template (ApplyPatch);
//   the rest      SQL, run statement by statement (a failing statement is
//                 skipped up to the next ';').
// Each input gets a fresh store in a temporary directory: the image is
// committed directly as the pages of a new timeline (no validation, as a
// corrupt store would present it), the SQL runs through OpenConnection, then
// PRAGMA integrity_check, close; then a read-only connection at the new head
// runs PRAGMA quick_check. SQL is bounded: a progress handler stops a
// connection after kMaxProgressCalls callbacks (deterministic, no clock),
// length/page-count/heap limits, and an authorizer that refuses ATTACH (and so
// VACUUM INTO) and PRAGMAs that name host paths.
// Properties checked (abort on violation): no crash, leak or UB (sanitizers);
// the timeline's head afterwards is the connection's last commit (or unchanged
// when it made none); a read-only connection never moves the head; the new head
// opens again.
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "storage/page_store.h"
#include "storage/vfs/vfs.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/util/temp_dir.h"

namespace {

using namespace branchdb;
using namespace branchdb::storage;

constexpr uint32_t kMaxPages = 64;
constexpr int kMaxProgressCalls = 2000;  // x 100 VM instructions
constexpr int kMaxStatements = 64;

// Runs sql on an in-memory database (the template's builder).
void MustExec(sqlite3* db, const char* sql) {
  FUZZ_CHECK(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
}

struct Fixture {
  testing::TempDir root{testing::FastTestDirBase()};
  std::string dir = root.Sub("store");
  // A small valid database: tables with and without rowid, indexes, a view, a
  // trigger, overflow pages, a freelist page.
  std::string template_image;

  Fixture() {
    FUZZ_CHECK(RegisterVfs().ok());
    sqlite3_hard_heap_limit64(256ll << 20);
    sqlite3* db = nullptr;
    FUZZ_CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
    MustExec(db,
             "PRAGMA page_size=4096;"
             "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c BLOB);"
             "CREATE INDEX t_b ON t(b);"
             "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
             "CREATE VIEW big AS SELECT a, length(c) AS n FROM t WHERE length(c) > 100;"
             "CREATE TABLE log(x);"
             "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.a); END;"
             "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM i WHERE n < 60)"
             "  INSERT INTO t(b, c) SELECT printf('row%03d', n), zeroblob(n * 20) FROM i;"
             "INSERT INTO t(b, c) VALUES ('overflow', randomblob(9000));"
             "INSERT INTO kv VALUES ('a', 1), ('b', 2.5), ('c', 'three'), ('d', x'04');"
             "CREATE TABLE gone(x); INSERT INTO gone SELECT c FROM t; DROP TABLE gone;");
    sqlite3_int64 size = 0;
    unsigned char* bytes = sqlite3_serialize(db, "main", &size, 0);
    FUZZ_CHECK(bytes != nullptr && size > 0 && size % kPageSize == 0 && size / kPageSize <= kMaxPages);
    template_image.assign(reinterpret_cast<char*>(bytes), static_cast<size_t>(size));
    sqlite3_free(bytes);
    sqlite3_close(db);
  }

  void ClearDir() {
    Env* env = Env::Default();
    auto names = env->GetChildren(dir);
    if (!names.ok()) return;
    for (const std::string& name : *names) FUZZ_CHECK(env->DeleteFile(JoinPath(dir, name)).ok());
  }
};

Fixture& F() {
  static Fixture f;  // its directory is removed at exit
  return f;
}

// Patch operations, until the bytes run out: u8 page index (mod the template's
// pages), u16 offset in the page, u8 length, then that many bytes written there
// (clipped at the image's end).
std::string ApplyPatch(std::string image, std::string_view ops) {
  const size_t pages = image.size() / kPageSize;
  size_t pos = 0;
  while (ops.size() - pos >= 4) {
    size_t page = static_cast<uint8_t>(ops[pos]) % pages;
    size_t off = (static_cast<uint8_t>(ops[pos + 1]) | (static_cast<uint8_t>(ops[pos + 2]) << 8)) %
                 kPageSize;
    size_t len = std::min<size_t>(static_cast<uint8_t>(ops[pos + 3]), ops.size() - pos - 4);
    size_t at = page * kPageSize + off;
    image.replace(at, std::min(len, image.size() - at), ops.substr(pos + 4, len));
    pos += 4 + len;
  }
  return image;
}

int Authorize(void*, int action, const char* a, const char*, const char*, const char*) {
  if (action == SQLITE_ATTACH || action == SQLITE_DETACH) return SQLITE_DENY;
  if (action == SQLITE_PRAGMA && a != nullptr &&
      (sqlite3_stricmp(a, "temp_store_directory") == 0 ||
       sqlite3_stricmp(a, "data_store_directory") == 0)) {
    return SQLITE_DENY;
  }
  return SQLITE_OK;
}

int Progress(void* calls) {
  return ++*static_cast<int*>(calls) > kMaxProgressCalls ? 1 : 0;
}

// Bounds a connection: limits, authorizer, progress budget (in *calls).
void Harden(sqlite3* db, int* calls) {
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1 << 20);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 1 << 16);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 100);
  sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 50);
  sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 32);
  sqlite3_set_authorizer(db, Authorize, nullptr);
  sqlite3_progress_handler(db, 100, Progress, calls);
  sqlite3_exec(db, "PRAGMA max_page_count=2048", nullptr, nullptr, nullptr);
}

// Steps every row of every statement of sql; a statement that fails to
// prepare is skipped up to the next ';'.
void RunSql(sqlite3* db, std::string_view sql) {
  int statements = 0;
  while (!sql.empty() && statements++ < kMaxStatements) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
    if (rc != SQLITE_OK || tail == nullptr) {
      sqlite3_finalize(stmt);
      size_t semi = sql.find(';');
      if (semi == std::string_view::npos) break;
      sql.remove_prefix(semi + 1);
      continue;
    }
    if (tail == sql.data()) {  // a NUL byte ends the SQL
      sqlite3_finalize(stmt);
      break;
    }
    sql.remove_prefix(static_cast<size_t>(tail - sql.data()));
    if (stmt == nullptr) continue;  // whitespace or a comment
    int rows = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW && rows++ < 10000) {
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        (void)sqlite3_column_text(stmt, i);
        (void)sqlite3_column_bytes(stmt, i);
      }
    }
    sqlite3_finalize(stmt);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  Fixture& f = F();
  const uint8_t flags = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 3, size - 3);
  size_t n = std::min<size_t>(data[1] | (data[2] << 8), in.size());
  std::string image;
  if (flags & 1) {
    image = ApplyPatch(f.template_image, in.substr(0, n));
  } else {
    image = std::string(in.substr(0, std::min<size_t>(n, kMaxPages * kPageSize)));
    image.resize((image.size() + kPageSize - 1) / kPageSize * kPageSize, '\0');
  }
  std::string sql(in.substr(n));  // NUL-terminated for SQLite
  const bool read_only = flags & 2;

  f.ClearDir();
  PageStoreOptions po;
  po.segment_bytes = 256 * 1024;
  po.cache_bytes = 1 << 20;
  auto opened = PageStore::Open(po, f.dir);
  FUZZ_CHECK(opened.ok());
  std::shared_ptr<PageStore> store = std::move(*opened);
  PageStore& s = *store;
  auto t = s.CreateTimeline(0, "fuzz");
  FUZZ_CHECK(t.ok());
  const uint32_t pages = static_cast<uint32_t>(image.size() / kPageSize);
  std::vector<PageWrite> writes;
  for (uint32_t i = 0; i < pages; ++i) {
    writes.push_back({i + 1, std::string_view(image).substr(i * kPageSize, kPageSize)});
  }
  auto first = s.Commit(*t, *s.Head(*t), writes, pages, "image");
  FUZZ_CHECK(first.ok());

  ConnectionOptions co;
  co.store = store;
  co.timeline = *t;
  co.cache_pages = 64;
  if (read_only) co.as_of = *first;
  Lsn last_commit = 0;
  {
    auto conn = OpenConnection(co);
    if (!conn.ok()) return 0;  // its setup reads the header: a bad image may fail here
    int calls = 0;
    Harden(conn->get(), &calls);
    RunSql(conn->get(), sql);
    calls = 0;
    RunSql(conn->get(), "PRAGMA integrity_check");
    last_commit = LastCommitLsn(conn->get());
  }
  auto head = s.Head(*t);
  FUZZ_CHECK(head.ok());
  if (read_only) {
    FUZZ_CHECK(last_commit == 0 && *head == *first);
  } else {
    FUZZ_CHECK(*head == (last_commit == 0 ? *first : last_commit));
  }

  ConnectionOptions ro = co;
  ro.as_of = *head;
  auto again = OpenConnection(ro);
  FUZZ_CHECK(again.ok() || last_commit == 0);  // what a commit wrote must open again
  if (!again.ok()) return 0;
  int calls = 0;
  Harden(again->get(), &calls);
  RunSql(again->get(), "PRAGMA quick_check; SELECT count(*) FROM sqlite_schema");
  return 0;
}
