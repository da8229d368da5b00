// Corruption tests of the PageStore (docs/storage-format.md, "Damaged sealed
// segments"): bytes flipped in a sealed segment's trailer, footer, record meta
// and page images. The store opens and reports the damage (or, when a record
// before a damaged footer fails, refuses with a Corruption naming the segment
// and the offset), reads every intact page right at every LSN, never returns
// a wrong page, and never changes the damaged file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "base/coding.h"
#include "storage/log_format.h"
#include "tests/storage/store_test_util.h"
#include "tests/util/fault_injection_env.h"

namespace branchdb::storage::testing {
namespace {

// A store of several sealed segments (about four records each) and its
// answers before any damage; Corrupt() flips bytes in the second segment.
class CorruptionFixture {
 public:
  explicit CorruptionFixture(Env* base = Env::Default()) : f_(16 << 10, base) {
    t_ = f_.Create(0);
    for (uint64_t i = 1; i <= 24; ++i) {
      std::map<PageNo, uint64_t> pages{{static_cast<PageNo>(i % 5 + 1), 1000 + i}};
      if (i == 6) pages[6] = 2006;  // never written again: GC keeps it where it is
      f_.Commit(t_, pages, 6);
    }
    before_ = TakeSnapshot(f_.store());
    f_.Close();
    // These tests damage what Open reads of a sealed segment when no MANIFEST
    // lists it (a store of format 3, a crash before the MANIFEST of a seal):
    // its trailer and record list. A segment found damaged is left out of
    // the MANIFEST Open writes, so every later Open reads it the same way.
    // (With MANIFEST, Open reads the record index instead: manifest_test.)
    REQUIRE(f_.env().DeleteFile(JoinPath(f_.path(), "MANIFEST")).ok());
    segments_ = SegmentFiles();
    REQUIRE(segments_.size() >= 4);
    for (const std::string& s : segments_) sizes_[s] = LogSize(s);
    auto data = f_.env().ReadFileToString(damaged());
    REQUIRE(data.ok());
    data_ = std::move(*data);
  }

  // The sealed segment the tests damage: neither the first nor the newest.
  const std::string& damaged() const { return segments_[1]; }
  const std::string& data() const { return data_; }
  uint64_t size() const { return data_.size(); }
  uint64_t footer_offset() const { return coding::DecodeFixed64(data_.data() + size() - 32); }
  // The parts of its page index (format 3), as written.
  internal::IndexTail index_tail() const {
    internal::IndexTail t;
    REQUIRE(internal::DecodeIndexTail(
        std::string_view(data_).substr(size() - internal::kTrailerSize - internal::kIndexTailSize,
                                       internal::kIndexTailSize),
        &t));
    return t;
  }
  internal::IndexDirectory index_directory() const {
    const internal::IndexTail t = index_tail();
    internal::IndexDirectory d;
    REQUIRE(internal::DecodeIndexDirectory(std::string_view(data_).substr(t.dir_offset, t.dir_len),
                                           &d)
                .ok());
    REQUIRE(!d.blocks.empty());
    return d;
  }
  static constexpr uint64_t kFirstRecord = internal::kSegmentHeaderMinSize;  // no supersedes

  void Flip(uint64_t offset) {
    REQUIRE(offset < data_.size());
    std::string copy = *f_.env().ReadFileToString(damaged());
    copy[offset] = static_cast<char>(copy[offset] ^ 0x5A);
    auto w = f_.env().NewWritableFile(damaged(), Env::OpenMode::kTruncate);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(copy).ok());
    REQUIRE((*w)->Sync().ok());
  }

  // Opens the store; REQUIREs success.
  PageStore& Open() {
    f_.Reopen();
    return f_.store();
  }
  Result<std::unique_ptr<PageStore>> TryOpen() { return PageStore::Open(f_.options(), f_.path()); }
  void Close() { f_.Close(); }
  MockClock& clock() { return f_.clock(); }
  PageStoreOptions& options() { return f_.options(); }

  // A segment file's size; the newest one's without its zero region (Open
  // cuts it and writes a new one: docs/storage-format.md), up to its last
  // non-zero byte (its last record's page is not all zeros).
  uint64_t LogSize(const std::string& path) {
    if (path != segments_.back()) return *f_.env().GetFileSize(path);
    auto data = f_.env().ReadFileToString(path);
    REQUIRE(data.ok());
    return data->find_last_not_of('\0') + 1;
  }
  // Every segment file that existed before has its old size: nothing was cut.
  void CheckNothingTruncated() {
    for (const auto& [path, size] : sizes_) {
      INFO(path);
      CHECK(LogSize(path) == size);
    }
  }
  // The store answers exactly as before the damage, at every LSN.
  void CheckSameAnswers() { RequireSameSnapshot(before_, TakeSnapshot(f_.store())); }
  // The head state reads as before.
  void CheckHead(PageStore& store) {
    const Lsn head = before_.last_lsn;
    const std::vector<std::string>& pages = before_.pages.at(head);
    for (PageNo p = 1; p <= pages.size(); ++p) {
      std::string out;
      REQUIRE(store.ReadPageAt(head, p, &out).ok());
      CHECK(out == pages[p - 1]);
    }
  }
  // The store reports exactly one damaged segment, the damaged one.
  void CheckDamageReported() {
    std::vector<std::string> damage = f_.store().Damage();
    REQUIRE(damage.size() == 1);
    INFO(damage[0]);
    CHECK(damage[0].rfind(internal::SegmentFileName(2) + ": ", 0) == 0);
    CHECK(damage[0].find("rebuilt by scanning") != std::string::npos);
  }
  // The store reports exactly one damage line, for the damaged segment's
  // page index, containing `what`; its versions were rebuilt in memory.
  void CheckIndexDamageReported(const std::string& what) {
    std::vector<std::string> damage = f_.store().Damage();
    REQUIRE(damage.size() == 1);
    INFO(damage[0]);
    CHECK(damage[0].rfind(internal::SegmentFileName(2) + ": ", 0) == 0);
    CHECK(damage[0].find(what) != std::string::npos);
    CHECK(damage[0].find("page versions rebuilt in memory") != std::string::npos);
  }
  // Every page of every state reads as before or fails with Corruption
  // (never as other bytes), and page bad_pgno of state bad_lsn fails.
  // Returns how many reads failed.
  int CheckPagesExceptImageAt(uint64_t bad_lsn, PageNo bad_pgno) {
    int failed = 0;
    for (const auto& [lsn, pages] : before_.pages) {
      for (PageNo p = 1; p <= pages.size(); ++p) {
        std::string out;
        Status s = f_.store().ReadPageAt(lsn, p, &out);
        if (!s.ok()) {
          INFO("LSN " << lsn << " page " << p << ": " << s.ToString());
          CHECK(s.IsCorruption());
          ++failed;
          continue;
        }
        INFO("LSN " << lsn << " page " << p);
        CHECK(out == pages[p - 1]);
      }
    }
    std::string out;
    CHECK(f_.store().ReadPageAt(bad_lsn, bad_pgno, &out).IsCorruption());
    return failed;
  }
  // The LSN whose commit wrote page image `seed`, and that image's page.
  std::pair<Lsn, PageNo> WriterOf(uint64_t seed) const {
    for (const auto& [lsn, pages] : before_.pages) {
      for (PageNo p = 1; p <= pages.size(); ++p) {
        const RecordInfo& r = before_.records.at(lsn);
        if (pages[p - 1] == PageData(seed) &&
            std::find(r.pages.begin(), r.pages.end(), p) != r.pages.end()) {
          return {lsn, p};
        }
      }
    }
    FAIL("no commit wrote seed " << seed);
    return {};
  }
  // An image seed stored in the damaged segment.
  uint64_t SeedInDamaged() const {
    for (uint64_t seed = 1001; seed <= 1024; ++seed) {
      if (data_.find(PageData(seed)) != std::string::npos) return seed;
    }
    FAIL("no image in the damaged segment");
    return 0;
  }

 private:
  std::vector<std::string> SegmentFiles() {
    auto children = f_.env().GetChildren(f_.path());
    REQUIRE(children.ok());
    std::vector<std::string> out;
    for (const auto& c : *children) {
      if (c.rfind("seg-", 0) == 0) out.push_back(JoinPath(f_.path(), c));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  StoreFixture f_;
  TimelineId t_ = 0;
  Snapshot before_;
  std::vector<std::string> segments_;
  std::map<std::string, uint64_t> sizes_;
  std::string data_;
};

}  // namespace

TEST_CASE("A damaged trailer of a sealed segment: its records are found by a scan, nothing cut") {
  CorruptionFixture c;
  // The footer offset, the footer CRC, the version and the magic.
  const uint64_t at = GENERATE(0, 3, 16, 20, 24, 31);
  INFO("trailer byte " << at);
  c.Flip(c.size() - 32 + at);
  c.Open();
  c.CheckDamageReported();
  c.CheckSameAnswers();
  c.CheckNothingTruncated();
  // The file stays as it is: the next open scans it again, with the same result.
  c.Open();
  c.CheckDamageReported();
  c.CheckSameAnswers();
  c.CheckNothingTruncated();
}

TEST_CASE("A damaged footer body of a sealed segment: its records are found by a scan") {
  CorruptionFixture c;
  const uint64_t at = GENERATE(0, 6, 20);  // the count, an offset, a meta
  c.Flip(c.footer_offset() + at);
  c.Open();
  c.CheckDamageReported();
  c.CheckSameAnswers();
  c.CheckNothingTruncated();
}

TEST_CASE("A damaged record meta in a sealed segment with an intact footer changes nothing") {
  // The footer holds a copy of every meta, and it is the one recovery reads.
  CorruptionFixture c;
  c.Flip(CorruptionFixture::kFirstRecord + 8 + 10);  // the record's LSN
  c.Open();
  CHECK(c.Open().Damage().empty());
  c.CheckSameAnswers();
  c.CheckNothingTruncated();
}

TEST_CASE("A damaged record meta before a damaged footer: Open refuses, naming segment and offset") {
  CorruptionFixture c;
  c.Flip(CorruptionFixture::kFirstRecord + 8 + 10);
  c.Flip(c.size() - 1);  // the trailer's magic
  auto s = c.TryOpen();
  REQUIRE_FALSE(s.ok());
  INFO(s.status().ToString());
  CHECK(s.status().IsCorruption());
  CHECK(s.status().message().find(internal::SegmentFileName(2) + ": record at offset " +
                                  std::to_string(CorruptionFixture::kFirstRecord)) !=
        std::string::npos);
  c.CheckNothingTruncated();
}

TEST_CASE("A damaged page image in a sealed segment fails its reads and no other") {
  CorruptionFixture c;
  const uint64_t seed = c.SeedInDamaged();
  const auto [lsn, pgno] = c.WriterOf(seed);
  c.Flip(c.data().find(PageData(seed)) + 100);
  const bool footer_too = GENERATE(false, true);
  INFO("trailer damaged too: " << footer_too);
  if (footer_too) c.Flip(c.size() - 5);
  // Without the image cache, reads in file order go through the read-ahead.
  c.options().cache_page_images = GENERATE(true, false);
  INFO("image cache: " << c.options().cache_page_images);
  PageStore& store = c.Open();
  CHECK(store.Damage().size() == (footer_too ? 1u : 0u));
  // The states that read that version (its own and later ones, until the
  // page is written again) fail; every other read is as before.
  CHECK(c.CheckPagesExceptImageAt(lsn, pgno) >= 1);
  c.CheckNothingTruncated();
}

TEST_CASE("A file operation failing while a damaged segment is read fails the open, never cuts it") {
  // Fails file operation N of the open, for N = 1, 2, ... until none fires.
  ::branchdb::testing::FaultInjectionEnv fault;
  CorruptionFixture c(&fault);
  c.Flip(c.size() - 1);  // the trailer's magic: the segment is read by a scan
  uint64_t n = 1;
  for (;; ++n) {
    fault.FailNth(n, ::branchdb::testing::FaultType::kIOError);
    bool opened = false;
    {
      auto s = c.TryOpen();
      opened = s.ok();
      if (!opened) {
        INFO("operation " << n << ": " << s.status().ToString());
        CHECK_FALSE(s.status().IsCorruption());  // an I/O error is not damage
      }
    }
    const bool fired = fault.FaultFired();
    fault.ClearFault();
    c.CheckNothingTruncated();
    if (!fired) {
      CHECK(opened);
      break;
    }
  }
  INFO(n << " operations");
  CHECK(n > 10);
  c.Open();
  c.CheckDamageReported();
  c.CheckSameAnswers();
}

TEST_CASE("A damaged page index tail, directory or filter: the segment's versions are rebuilt in memory") {
  CorruptionFixture c;
  const internal::IndexTail tail = c.index_tail();
  const internal::IndexDirectory dir = c.index_directory();
  const std::string part = GENERATE("tail", "directory", "block handle", "filter");
  INFO(part);
  uint64_t at = 0;
  std::string what;
  if (part == "tail") {
    at = c.size() - internal::kTrailerSize - internal::kIndexTailSize + 9;
    what = "page index tail checksum mismatch";
  } else if (part == "directory") {
    at = tail.dir_offset + tail.dir_len - 6;  // its version count
    what = "page index directory checksum mismatch";
  } else if (part == "block handle") {
    at = tail.dir_offset + 4 + 1;  // the first block's first page number
    what = "page index directory checksum mismatch";
  } else {
    at = dir.filter_offset + 3;
    what = "page index filter checksum mismatch";
  }
  c.Flip(at);
  c.Open();
  c.CheckIndexDamageReported(what);
  c.CheckSameAnswers();
  c.CheckNothingTruncated();
  c.Open();  // the file stays as it is: found again, with the same result
  c.CheckIndexDamageReported(what);
  c.CheckSameAnswers();
  c.CheckNothingTruncated();
}

TEST_CASE("A damaged page index block is found by the read that needs it, and rebuilt in memory") {
  CorruptionFixture c;
  const internal::IndexDirectory dir = c.index_directory();
  // An entry's LSN: a block read without its checksum would name another version.
  c.Flip(dir.blocks[0].offset + 4 + 4 + 1);
  c.Open();
  CHECK(c.Open().Damage().empty());  // blocks are not read at open
  c.CheckSameAnswers();               // reads every page at every LSN
  c.CheckIndexDamageReported("page index block 0");
  c.CheckNothingTruncated();
}

TEST_CASE("GC over a damaged page index block rebuilds that segment's versions and goes on") {
  CorruptionFixture c;
  c.Flip(c.index_directory().blocks[0].offset + 9);
  PageStore& store = c.Open();
  GcOptions gc;
  gc.restore_window_micros = 0;
  c.clock().Advance(3600ll * 1000000);
  auto r = store.Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  c.CheckHead(store);
  c.CheckHead(c.Open());
}

TEST_CASE("An unsealed newest segment whose last bytes spell the footer magic is not taken as sealed") {
  // A client's payload (the catalog's SQL script) ends the last record.
  StoreFixture f;
  TimelineId t = f.Create(0);
  f.Commit(t, {{1, 1}}, 1);
  const std::string payload = "SELECT 1 -- " + std::string(internal::kFooterMagic);
  auto lsn = f.store().Commit(t, *f.store().Head(t), {}, 1, "", payload);
  REQUIRE(lsn.ok());
  Snapshot before = TakeSnapshot(f.store());
  for (int i = 0; i < 2; ++i) {
    f.Reopen();
    CHECK(f.store().Damage().empty());
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    CHECK(*f.store().ReadPayload(*lsn) == payload);
  }
}

TEST_CASE("GC compacts a sealed segment whose footer is damaged from its scanned records") {
  CorruptionFixture c;
  c.Flip(c.footer_offset() + 6);
  PageStore& store = c.Open();
  GcOptions gc;
  gc.restore_window_micros = 0;  // only the head stays: most of every segment is garbage
  c.clock().Advance(3600ll * 1000000);
  auto r = store.Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->segments_rewritten >= 2);
  c.CheckHead(store);
  c.CheckHead(c.Open());
  CHECK(c.Open().Damage().empty());  // the damaged segment was rewritten whole
}

}  // namespace branchdb::storage::testing
