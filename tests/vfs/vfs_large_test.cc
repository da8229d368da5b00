// Databases past 1 GiB and SQLite's lock-byte page (the page holding byte
// offset 2^30, which SQLite never reads or writes).
//
// Writing a real gigabyte would take most of a minute under the sanitizers,
// so the tests stay sparse:
//  1. SQLite's test hook SQLITE_TESTCTRL_PENDING_BYTE moves the lock-byte
//     page to a low offset, and the database grows across it naturally.
//     A SQLite built with SQLITE_UNTESTABLE (or SQLITE_OMIT_WSD) has no such
//     hook: the test then prints "SKIPPED:" and CTest reports it skipped
//     (tests/vfs/CMakeLists.txt runs it alone, as vfs_lock_byte_hook_test).
//  2. A 1.03 GiB database is made by committing page 1 and a freelist whose
//     trunk pages list every page up to past 1 GiB (about 1 MiB of writes);
//     SQLite then allocates its new pages from the top of that freelist, past
//     the lock-byte page, and integrity_check walks all of it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "storage/vfs/vfs.h"
#include "tests/vfs/vfs_test_util.h"

namespace branchdb::testing {
namespace {

using storage::kPageSize;
using storage::Lsn;
using storage::PageNo;

constexpr uint32_t kDefaultPendingByte = 0x40000000;  // 1 GiB

uint32_t Get32(const std::string& p, size_t off) {
  auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[off + i])); };
  return (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
}
void Put32(std::string* p, size_t off, uint32_t v) {
  (*p)[off] = static_cast<char>(v >> 24);
  (*p)[off + 1] = static_cast<char>(v >> 16);
  (*p)[off + 2] = static_cast<char>(v >> 8);
  (*p)[off + 3] = static_cast<char>(v);
}

// Reads `size` bytes at `offset` of the main database file through the VFS.
std::string ReadThroughVfs(sqlite3* db, sqlite3_int64 offset, int size, int* rc) {
  sqlite3_file* file = nullptr;
  REQUIRE(sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK);
  std::string buf(static_cast<size_t>(size), '\x55');
  *rc = file->pMethods->xRead(file, buf.data(), size, offset);
  return buf;
}

TEST_CASE("a database grows across the lock-byte page (moved low by the test hook)",
          "[pending_byte_hook]") {
  if (sqlite3_compileoption_used("UNTESTABLE") || sqlite3_compileoption_used("OMIT_WSD")) {
    WARN("SKIPPED: this SQLite (" << sqlite3_libversion()
                                  << ") is built without SQLITE_TESTCTRL_PENDING_BYTE");
    return;
  }
  // The lock-byte page becomes page 65 (offset 256 KiB). No connection may be
  // open while it changes: this test runs alone in its process.
  constexpr uint32_t kPendingByte = 0x40000;
  int old = sqlite3_test_control(SQLITE_TESTCTRL_PENDING_BYTE, kPendingByte);
  REQUIRE(old == static_cast<int>(kDefaultPendingByte));
  const PageNo lock_page = kPendingByte / kPageSize + 1;
  {
    StoreFixture fx;
    auto db = fx.Open(0, 20);
    MustExec(db.get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
    for (int i = 0; i < 8; ++i) {
      MustExec(db.get(), "INSERT INTO t(b) VALUES(randomblob(60000))");
    }
    const Lsn head = storage::LastCommitLsn(db.get());
    const uint32_t size = *fx.store()->DbSize(fx.timeline(), head);
    CHECK(size > lock_page + 20);
    CHECK(IntegrityCheck(db.get()) == "ok");
    // No commit on the timeline ever wrote the lock-byte page.
    auto history = fx.store()->History(fx.timeline(), 0, 100);
    REQUIRE(history.ok());
    for (const auto& record : *history) {
      CHECK(std::find(record.pages.begin(), record.pages.end(), lock_page) == record.pages.end());
    }
    int rc = SQLITE_OK;
    std::string page = ReadThroughVfs(db.get(), kPendingByte, kPageSize, &rc);
    CHECK(rc == SQLITE_OK);
    CHECK(page == std::string(kPageSize, '\0'));
    std::string expect = Query(db.get(), "SELECT id, b FROM t ORDER BY id");
    auto other = fx.Open();
    CHECK(Query(other.get(), "SELECT id, b FROM t ORDER BY id") == expect);
    MustExec(db.get(), "DELETE FROM t WHERE id > 2; VACUUM");
    CHECK(IntegrityCheck(db.get()) == "ok");
    CHECK(*fx.store()->DbSize(fx.timeline(), fx.store()->LastLsn()) < lock_page);
  }
  sqlite3_test_control(SQLITE_TESTCTRL_PENDING_BYTE, kDefaultPendingByte);
}

TEST_CASE("a database past 1 GiB works: pages beyond the lock-byte page, integrity, VACUUM") {
  const PageNo lock_page = kDefaultPendingByte / kPageSize + 1;  // 262145
  const PageNo size = lock_page + 1500;                            // ~1.006 GiB
  StoreFixture fx;
  {
    auto db = fx.Open();
    MustExec(db.get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)");
  }
  // Grow it sparsely: page 1's header names `size` pages and a freelist of
  // every page from 3 to size except the lock-byte page, in trunks from the
  // top down (trunk = highest free page, its leaves the pages below it).
  const Lsn head = fx.store()->Head(fx.timeline()).value();
  std::string page1;
  REQUIRE(fx.store()->ReadPageAt(head, 1, &page1).ok());
  std::vector<PageNo> free_pages;
  for (PageNo p = size; p >= 3; --p) {
    if (p != lock_page) free_pages.push_back(p);
  }
  constexpr size_t kLeavesPerTrunk = kPageSize / 4 - 2;
  std::vector<std::string> images;
  std::vector<PageNo> trunks;
  for (size_t i = 0; i < free_pages.size();) {
    PageNo trunk = free_pages[i++];
    std::string image(kPageSize, '\0');
    size_t n = std::min(kLeavesPerTrunk, free_pages.size() - i);
    Put32(&image, 4, static_cast<uint32_t>(n));
    for (size_t k = 0; k < n; ++k) Put32(&image, 8 + 4 * k, free_pages[i + k]);
    i += n;
    trunks.push_back(trunk);
    images.push_back(std::move(image));
  }
  for (size_t k = 0; k + 1 < trunks.size(); ++k) Put32(&images[k], 0, trunks[k + 1]);
  const uint32_t counter = Get32(page1, 24) + 1;
  Put32(&page1, 24, counter);
  Put32(&page1, 92, counter);  // version-valid-for: the size at 28 is valid
  Put32(&page1, 28, size);
  Put32(&page1, 32, trunks.front());
  Put32(&page1, 36, static_cast<uint32_t>(free_pages.size()));
  std::vector<storage::PageWrite> writes;
  writes.push_back({1, page1});
  for (size_t k = 0; k < trunks.size(); ++k) writes.push_back({trunks[k], images[k]});
  std::sort(writes.begin(), writes.end(),
            [](const auto& a, const auto& b) { return a.pgno < b.pgno; });
  REQUIRE(fx.store()->Commit(fx.timeline(), head, writes, size, "sparse grow").ok());

  auto db = fx.Open();
  CHECK(QueryInt(db.get(), "PRAGMA page_count") == size);
  CHECK(static_cast<uint64_t>(QueryInt(db.get(), "PRAGMA page_count")) * kPageSize >
        (uint64_t{1} << 30));
  CHECK(QueryInt(db.get(), "PRAGMA freelist_count") == static_cast<int64_t>(free_pages.size()));
  CHECK(IntegrityCheck(db.get()) == "ok");

  // New rows land at the top of the file, past the lock-byte page.
  MustExec(db.get(), "BEGIN");
  for (int i = 0; i < 40; ++i) MustExec(db.get(), "INSERT INTO t(b) VALUES(randomblob(20000))");
  MustExec(db.get(), "COMMIT");
  auto record = fx.store()->GetRecord(storage::LastCommitLsn(db.get()));
  REQUIRE(record.ok());
  CHECK(record->db_size_pages == size);
  CHECK(record->pages.back() > lock_page);
  CHECK(std::count_if(record->pages.begin(), record->pages.end(),
                      [&](PageNo p) { return p > lock_page; }) > 150);
  CHECK(std::find(record->pages.begin(), record->pages.end(), lock_page) == record->pages.end());
  CHECK(IntegrityCheck(db.get()) == "ok");

  int rc = SQLITE_OK;
  std::string lock_bytes =
      ReadThroughVfs(db.get(), static_cast<sqlite3_int64>(kDefaultPendingByte), kPageSize, &rc);
  CHECK(rc == SQLITE_OK);
  CHECK(lock_bytes == std::string(kPageSize, '\0'));
  std::string past_end = ReadThroughVfs(db.get(), sqlite3_int64{size} * kPageSize, 100, &rc);
  CHECK(rc == SQLITE_IOERR_SHORT_READ);
  CHECK(past_end == std::string(100, '\0'));

  std::string expect = Query(db.get(), "SELECT id, b FROM t ORDER BY id");
  auto other = fx.Open();
  CHECK(Query(other.get(), "SELECT id, b FROM t ORDER BY id") == expect);
  auto at = fx.OpenAt(fx.timeline(), storage::LastCommitLsn(db.get()));
  CHECK(Query(at.get(), "SELECT id, b FROM t ORDER BY id") == expect);

  // VACUUM moves everything down and truncates 1 GiB to about a megabyte.
  MustExec(db.get(), "VACUUM");
  const uint32_t after = *fx.store()->DbSize(fx.timeline(), fx.store()->LastLsn());
  CHECK(after < 400);
  CHECK(QueryInt(db.get(), "PRAGMA freelist_count") == 0);
  CHECK(Query(db.get(), "SELECT id, b FROM t ORDER BY id") == expect);
  CHECK(IntegrityCheck(db.get()) == "ok");
}

}  // namespace
}  // namespace branchdb::testing
