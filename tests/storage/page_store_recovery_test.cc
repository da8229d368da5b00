// Durability and recovery tests of the PageStore: reopen after every kind of
// operation, segment roll and recovery from sealed footers plus the tail,
// torn-tail truncation, checksum corruption, the directory lock, and group
// commit under concurrency.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <thread>

#include "base/coding.h"
#include "storage/log_format.h"
#include "storage/segment_reader.h"
#include "tests/storage/store_test_util.h"
#include "tests/util/fault_injection_env.h"

namespace branchdb::storage::testing {
namespace {

using ::branchdb::testing::FaultInjectionEnv;
using ::branchdb::testing::FaultType;
using ::branchdb::testing::kOpSync;

std::vector<std::string> SegmentFiles(Env& env, const std::string& dir) {
  auto children = env.GetChildren(dir);
  REQUIRE(children.ok());
  std::vector<std::string> out;
  for (const auto& c : *children) {
    if (c.rfind("seg-", 0) == 0) out.push_back(JoinPath(dir, c));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The bytes of path up to its last non-zero one: an active segment's log
// without its zero region when its last record ends in a non-zero byte (as
// PageData's pages do).
uint64_t LogBytes(Env& env, const std::string& path) {
  auto data = env.ReadFileToString(path);
  REQUIRE(data.ok());
  return data->find_last_not_of('\0') + 1;
}

// Replaces the bytes of path at offset with bytes (the file grows if needed).
void WriteAt(Env& env, const std::string& path, uint64_t offset, std::string_view bytes) {
  auto data = env.ReadFileToString(path);
  REQUIRE(data.ok());
  if (data->size() < offset + bytes.size()) data->resize(offset + bytes.size(), '\0');
  data->replace(offset, bytes.size(), bytes);
  auto f = env.NewWritableFile(path, Env::OpenMode::kTruncate);
  REQUIRE(f.ok());
  REQUIRE((*f)->Append(*data).ok());
  REQUIRE((*f)->Sync().ok());
}

// Counts the opens of each segment file by its number: to read, to write.
class OpenCountingEnv : public EnvWrapper {
 public:
  explicit OpenCountingEnv(Env* target) : EnvWrapper(target) {}
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    ++reads[Number(path)];
    return EnvWrapper::NewRandomAccessFile(path);
  }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override {
    ++writes[Number(path)];
    return EnvWrapper::NewWritableFile(path, mode);
  }
  void Clear() {
    reads.clear();
    writes.clear();
  }
  std::map<uint64_t, int> reads, writes;  // 0: not a segment

 private:
  static uint64_t Number(const std::string& path) {
    uint64_t n = 0;
    return internal::ParseSegmentFileName(path.substr(path.rfind('/') + 1), &n) ? n : 0;
  }
};

// The number of the newest segment file in dir.
uint64_t NewestNumber(Env& env, const std::string& dir) {
  const std::vector<std::string> files = SegmentFiles(env, dir);
  REQUIRE(!files.empty());
  uint64_t n = 0;
  REQUIRE(internal::ParseSegmentFileName(files.back().substr(files.back().rfind('/') + 1), &n));
  return n;
}

void FlipByte(Env& env, const std::string& path, uint64_t offset) {
  auto data = env.ReadFileToString(path);
  REQUIRE(data.ok());
  REQUIRE(offset < data->size());
  (*data)[offset] = static_cast<char>((*data)[offset] ^ 0x5A);
  auto f = env.NewWritableFile(path, Env::OpenMode::kTruncate);
  REQUIRE(f.ok());
  REQUIRE((*f)->Append(*data).ok());
  REQUIRE((*f)->Sync().ok());
}

TEST_CASE("Reopening after every kind of operation gives the same answers") {
  StoreFixture f(16 << 10);  // small segments: several seals along the way
  auto check_reopen = [&] {
    Snapshot before = TakeSnapshot(f.store());
    f.Reopen();
    Snapshot after = TakeSnapshot(f.store());
    RequireSameSnapshot(before, after);
  };
  TimelineId a = f.Create(0, "create a");
  check_reopen();
  Lsn a1 = f.Commit(a, {{1, 1}, {2, 2}, {3, 3}}, 3, "commit a1");
  check_reopen();
  Lsn a2 = f.Commit(a, {{2, 4}, {5, 5}}, 5, "commit a2");
  check_reopen();
  TimelineId b = f.Create(a1, "create b");
  check_reopen();
  f.Commit(b, {{1, 6}}, 3, "commit b1");
  f.Commit(a, {}, 2, "shrink a");
  check_reopen();
  auto r = f.store().ResetTimeline(a, *f.store().Head(a), a1, "reset a");
  REQUIRE(r.ok());
  check_reopen();
  r = f.store().ResetTimeline(a, *r, a2, "undo reset a");
  REQUIRE(r.ok());
  check_reopen();
  REQUIRE(f.store().DropTimeline(b).ok());
  check_reopen();
  for (int i = 0; i < 20; ++i) f.Commit(a, {{static_cast<PageNo>(i % 5 + 1), 100u + i}}, 5);
  check_reopen();
  CHECK(SegmentFiles(f.env(), f.path()).size() > 3);
  // The store keeps working after recovery.
  Lsn next = f.Commit(a, {{1, 999}}, 5);
  CHECK(next == f.store().LastLsn());
  CHECK(f.ReadAt(next, 1) == PageData(999));
}

TEST_CASE("Recovery reads sealed footers and scans the unsealed tail") {
  StoreFixture f(8 << 10);
  TimelineId t = f.Create(0);
  std::vector<Lsn> lsns;
  for (int i = 0; i < 30; ++i) {
    lsns.push_back(f.Commit(t, {{static_cast<PageNo>(i + 1), static_cast<uint64_t>(i + 1)}},
                            static_cast<uint32_t>(i + 1)));
  }
  auto files = SegmentFiles(f.env(), f.path());
  CHECK(files.size() >= 10);
  uint64_t disk = f.store().DiskBytes();
  uint64_t sum = 0;  // the sealed files whole, the active one without its zero region
  for (const auto& p : files) sum += p == files.back() ? LogBytes(f.env(), p) : *f.env().GetFileSize(p);
  CHECK(disk == sum);
  f.Reopen();
  CHECK(f.store().DiskBytes() == disk);
  for (int i = 0; i < 30; ++i) {
    for (int p = 1; p <= i + 1; ++p) CHECK(f.ReadAt(lsns[i], p) == PageData(p));
  }
}

TEST_CASE("Open reads the footers of sealed segments, not their pages") {
  FaultInjectionEnv counting;  // counts the bytes read
  StoreFixture f(64 << 10, &counting);
  TimelineId t = f.Create(0);
  Lsn last = 0;
  for (int i = 0; i < 200; ++i) {
    last = f.Commit(t, {{static_cast<PageNo>(i % 50 + 1), static_cast<uint64_t>(i + 1)},
                        {51, 5000u + i}}, 51);
  }
  uint64_t disk = f.store().DiskBytes();
  const uint64_t before = counting.BytesRead();
  f.Reopen();
  const uint64_t read = counting.BytesRead() - before;
  INFO("read " << read << " of " << disk << " bytes");
  CHECK(read > 0);
  CHECK(read < disk / 10);
  CHECK(f.ReadAt(last, 51) == PageData(5199));
  CHECK(f.ReadAt(last, 1) == PageData(151));
}

// Open opens the unsealed tail's file once to read it (its header, its
// records; reads after Open use the same handle) and once to append to it.
TEST_CASE("Open opens the tail once to read it and once to append to it") {
  OpenCountingEnv counting(Env::Default());
  StoreFixture f(8 << 10, &counting);
  const TimelineId t = f.Create(0);
  std::vector<Lsn> lsns;
  for (int i = 0; i < 12; ++i) lsns.push_back(f.Commit(t, {{1, 100u + i}, {2, 200u + i}}, 2));
  const Snapshot before = TakeSnapshot(f.store());
  const uint64_t tail = NewestNumber(f.env(), f.path());
  REQUIRE(tail > 1);  // sealed segments below it

  SECTION("a tail with records, after a clean close") {
    f.Close();
    counting.Clear();
    f.Reopen();
    CHECK(counting.reads[tail] == 1);
    CHECK(counting.writes[tail] == 1);
    CHECK(f.ReadAt(lsns.back(), 1) == PageData(111));  // its records: the same handle
    CHECK(counting.reads[tail] == 1);
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
  }
  SECTION("a torn tail, cut") {
    f.Close();
    const std::string path = SegmentFiles(f.env(), f.path()).back();
    REQUIRE(f.env().TruncateFile(path, *f.env().GetFileSize(path) - 10).ok());
    counting.Clear();
    f.Reopen();
    CHECK(counting.reads[tail] == 1);
    CHECK(counting.writes[tail] == 1);
    CHECK(f.store().LastLsn() == lsns.back() - 1);
    CHECK(f.ReadAt(lsns[lsns.size() - 2], 2) == PageData(210));
    CHECK(counting.reads[tail] == 1);
  }
  SECTION("a tail of a header only (started by an Open, nothing written)") {
    f.options().seal_on_close = true;
    f.Reopen();
    f.Close();   // seals the tail
    f.Reopen();  // starts a new segment
    f.Close();   // nothing in it to seal
    const uint64_t empty = NewestNumber(f.env(), f.path());
    REQUIRE(empty > tail);
    counting.Clear();
    f.Reopen();
    CHECK(counting.reads[empty] == 1);
    CHECK(counting.writes[empty] == 1);
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
  }
}

TEST_CASE("A torn tail is truncated and the store continues") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 1}}, 1);
  Lsn l2 = f.Commit(t, {{1, 2}, {2, 2}}, 2);
  Snapshot before = TakeSnapshot(f.store());
  const uint64_t size = f.store().DiskBytes();  // one segment: its log's end
  std::string seg = SegmentFiles(f.env(), f.path()).back();
  REQUIRE(*f.env().GetFileSize(seg) > size);  // the zero region follows
  f.Close();
  CHECK(*f.env().GetFileSize(seg) == size);  // cut off at close

  SECTION("garbage after the last record") {
    WriteAt(f.env(), seg, size, std::string(5000, '\x7f'));
    f.Reopen();
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    CHECK(f.store().DiskBytes() == size);
    CHECK(LogBytes(f.env(), seg) == size);  // the garbage is gone, zeros follow
  }
  SECTION("the last record cut short") {
    REQUIRE(f.env().TruncateFile(seg, size - 100).ok());
    f.Reopen();
    CHECK(f.store().LastLsn() == l1);
    CHECK(*f.store().Head(t) == l1);
    CHECK(f.ReadAt(l1, 1) == PageData(1));
    CHECK(f.store().GetRecord(l2).status().IsNotFound());
    Lsn again = f.Commit(t, {{2, 7}}, 2);
    CHECK(again == l2);
    f.Reopen();
    CHECK(f.ReadAt(again, 2) == PageData(7));
    CHECK(f.ReadAt(again, 1) == PageData(1));
  }
  SECTION("only zeros after the last record") {
    REQUIRE(f.env().TruncateFile(seg, size + 8192).ok());
    f.Reopen();
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
  }
  SECTION("the last record torn, zeros after it (the zero region beneath)") {
    WriteAt(f.env(), seg, size - 100, std::string(100, '\0'));
    f.Reopen();
    CHECK(f.store().LastLsn() == l1);
    CHECK(f.store().GetRecord(l2).status().IsNotFound());
    CHECK(f.store().DiskBytes() < size);
    Lsn again = f.Commit(t, {{2, 7}}, 2);
    CHECK(again == l2);
    f.Reopen();
    CHECK(f.ReadAt(again, 2) == PageData(7));
    CHECK(f.ReadAt(again, 1) == PageData(1));
  }
}

// The active segment's zero region (docs/storage-format.md, "The zero
// region"): records overwrite zeros written ahead; the log ends at the
// first record header of zeros; recovery cuts the region off and writes a
// fresh one; sealing cuts it before the footer.
TEST_CASE("Records are written over a zero region ahead of them, which recovery cuts") {
  StoreFixture f;
  f.options().preallocate_bytes = 64 << 10;
  f.Reopen();
  TimelineId t = f.Create(0);
  std::vector<Lsn> lsns;
  std::vector<uint64_t> ends;  // the log's end after each commit
  for (int i = 0; i < 30; ++i) {  // 120 KiB of records: the region grows twice or more
    lsns.push_back(f.Commit(t, {{static_cast<PageNo>(i % 5 + 1), static_cast<uint64_t>(i + 1)}}, 5));
    ends.push_back(f.store().DiskBytes());
  }
  const std::string seg = SegmentFiles(f.env(), f.path()).back();
  const uint64_t end = ends.back();
  {
    auto data = f.env().ReadFileToString(seg);
    REQUIRE(data.ok());
    INFO("file " << data->size() << " bytes, log " << end);
    CHECK(data->size() >= end + (32 << 10));  // at least half a step ahead
    CHECK(data->find_first_not_of('\0', end) == std::string::npos);
  }
  // Only the records are durable as far as a copy of the log is concerned.
  CHECK(f.store().DurableEnd().bytes == end);
  Snapshot before = TakeSnapshot(f.store());

  SECTION("a kill: reopened with the region, same answers, appends go on") {
    auto image = f.env().ReadFileToString(seg);  // what a kill -9 leaves
    REQUIRE(image.ok());
    f.Close();
    WriteAt(f.env(), seg, 0, *image);
    REQUIRE(*f.env().GetFileSize(seg) >= end + (32 << 10));
    f.Reopen();
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    CHECK(f.store().DiskBytes() == end);
    CHECK(*f.env().GetFileSize(seg) == end);  // cut; none written to read
    Lsn next = f.Commit(t, {{9, 99}}, 9);
    CHECK(*f.env().GetFileSize(seg) >= f.store().DiskBytes() + (32 << 10));  // a fresh region
    CHECK(LogBytes(f.env(), seg) == f.store().DiskBytes());
    f.Reopen();
    CHECK(f.ReadAt(next, 9) == PageData(99));
    CHECK(f.ReadAt(lsns.back(), 5) == PageData(30));
  }
  SECTION("a record lost while a later one reached the disk: the later one never comes back") {
    auto image = f.env().ReadFileToString(seg);  // a power loss: the region stays
    REQUIRE(image.ok());
    f.Close();
    WriteAt(f.env(), seg, 0, *image);
    // Record 28 (0-based) reverted to zeros, 29 whole after it (neither synced, say).
    const uint64_t at = ends[27];
    WriteAt(f.env(), seg, at, std::string(ends[28] - at, '\0'));
    f.Reopen();
    CHECK(f.store().LastLsn() == lsns[27]);
    CHECK(f.store().GetRecord(lsns[29]).status().IsNotFound());
    CHECK(LogBytes(f.env(), seg) == at);  // cut, zeros after: the stale record is gone
    // A new record where the lost one was (about as long): nothing of the
    // stale one after it is read back.
    Lsn again = f.Commit(t, {{1, 555}}, 5);
    f.Reopen();
    CHECK(f.store().LastLsn() == again);
    CHECK(f.ReadAt(again, 1) == PageData(555));
    CHECK(f.ReadAt(again, 5) == PageData(25));
  }
}

TEST_CASE("Sealing a preallocated segment cuts its zeros before the footer") {
  StoreFixture f(64 << 10);
  f.options().preallocate_bytes = 16 << 10;
  f.options().seal_on_close = true;
  f.Reopen();
  TimelineId t = f.Create(0);
  Lsn last = 0;
  for (int i = 0; i < 60; ++i) {
    last = f.Commit(t, {{static_cast<PageNo>(i % 7 + 1), static_cast<uint64_t>(i + 1)}}, 7);
  }
  Snapshot before = TakeSnapshot(f.store());
  auto files = SegmentFiles(f.env(), f.path());
  REQUIRE(files.size() >= 3);
  uint64_t sealed_bytes = 0;
  for (size_t i = 0; i + 1 < files.size(); ++i) {
    auto data = f.env().ReadFileToString(files[i]);
    REQUIRE(data.ok());
    // Footer and trailer at the file's end, the trailer's magic last.
    INFO(files[i]);
    CHECK(data->size() < (64 << 10) + 2 * 4200 + 4096);
    CHECK(data->back() != '\0');
    sealed_bytes += data->size();
  }
  CHECK(f.store().DiskBytes() == sealed_bytes + LogBytes(f.env(), files.back()));
  f.Close();  // seals the active segment too
  uint64_t all = 0;
  for (const auto& p : SegmentFiles(f.env(), f.path())) all += *f.env().GetFileSize(p);
  f.Reopen();
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  // The sealed files whole, and the header of the new segment Open started.
  CHECK(f.store().DiskBytes() > all);
  CHECK(f.store().DiskBytes() < all + 128);
  CHECK(f.ReadAt(last, (59 % 7) + 1) == PageData(60));
  Lsn next = f.Commit(t, {{1, 1234}}, 7);
  f.Reopen();
  CHECK(f.ReadAt(next, 1) == PageData(1234));
}

// An annotation of len bytes that differs for every i (and does not compress).
std::string AnnotationOf(uint64_t i, size_t len) {
  std::string a(len, '\0');
  uint64_t x = i * 0x9E3779B97F4A7C15ull + 7;
  for (char& c : a) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>('a' + x % 26);
  }
  return a;
}

TEST_CASE("A seal writes its footer from its records' metas read back from the segment") {
  // Memory keeps the active segment's record offsets and the metas of its
  // first records (64 KiB of them here): the seal reads the others back,
  // 1 MiB at a time and a longer one alone, and after a reopen all of them,
  // from the offsets Open's scan of the tail found.
  StoreFixture f(1 << 20);
  const TimelineId t = f.Create(0);
  std::map<Lsn, std::string> annotations;
  for (uint64_t i = 0; i < 400; ++i) {
    if (i == 200) f.Reopen();
    const size_t len = i % 97 == 13 ? (3u << 19) : 64 + i * 37 % 3000;  // 1.5 MiB metas too
    std::string a = AnnotationOf(i, len);
    const PageNo pgno = static_cast<PageNo>(i % 7 + 1);
    annotations[f.Commit(t, {{pgno, i + 1}}, 7, a)] = std::move(a);
  }
  CHECK(f.store().Stats().unsealed_record_bytes > 0);
  f.Close();
  const std::vector<std::string> files = SegmentFiles(f.env(), f.path());
  REQUIRE(files.size() >= 4);
  size_t records = 0, long_metas = 0;
  for (size_t i = 0; i + 1 < files.size(); ++i) {  // every sealed one
    INFO(files[i]);
    auto file = f.env().NewRandomAccessFile(files[i]);
    REQUIRE(file.ok());
    auto size = f.env().GetFileSize(files[i]);
    REQUIRE(size.ok());
    internal::SegmentHeader h;
    size_t header_len = 0;
    REQUIRE(internal::ReadSegmentHeader(file->get(), 0, &h, &header_len).ok());
    internal::SealedRecords sealed;
    REQUIRE(internal::ReadSealedRecords(file->get(), h.number, header_len, *size, &sealed).ok());
    CHECK(sealed.damage.empty());  // the footer served, and it holds...
    for (const internal::FooterEntry& e : sealed.entries) {
      ++records;
      if (e.meta.kind != RecordKind::kCommit) continue;
      CHECK(e.meta.annotation == annotations.at(e.meta.lsn));  // ...every meta as written
      if (e.meta_len > (1u << 20)) ++long_metas;
    }
  }
  CHECK(records > 300);
  CHECK(long_metas >= 3);
}

TEST_CASE("A seal that reads a record back damaged writes no footer and stops the store") {
  // 64 KiB segments: the metas of the first 4 KiB of records are kept, the
  // later ones read back at the seal, the 8th's damaged on disk meanwhile.
  StoreFixture f(64 << 10);
  const TimelineId t = f.Create(0);
  for (uint64_t i = 1; i <= 8; ++i) f.Commit(t, {{1, i}}, 2, AnnotationOf(i, 1024));
  const std::string first = SegmentFiles(f.env(), f.path()).front();
  {
    std::string data = *f.env().ReadFileToString(first);
    const size_t at = data.find(AnnotationOf(8, 1024));
    REQUIRE(at != std::string::npos);
    data[at + 100] ^= 0x5A;
    auto w = f.env().NewWritableFile(first, Env::OpenMode::kTruncate);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(data).ok());
  }
  Status failed;
  for (uint64_t i = 9; i < 100 && failed.ok(); ++i) {
    Lsn head = *f.store().Head(t);
    const std::string page = PageData(i);
    failed = f.store().Commit(t, head, {PageWrite{1, page}}, 2, "").status();
  }
  INFO(failed.ToString());
  REQUIRE(failed.IsCorruption());
  CHECK(failed.message().find(internal::SegmentFileName(1) + ": the record at offset ") !=
        std::string::npos);
  CHECK(failed.message().find(" reads back with a meta checksum mismatch") != std::string::npos);
  CHECK(SegmentFiles(f.env(), f.path()).size() == 1);  // not sealed, no segment after it
  auto head = f.store().Head(t);
  REQUIRE(head.ok());
  CHECK_FALSE(f.store().Commit(t, *head, {PageWrite{1, PageData(7)}}, 2, "").ok());
}

TEST_CASE("Checksum corruption in a sealed segment is reported, not ignored") {
  StoreFixture f(8 << 10);
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 4242}}, 1);
  for (int i = 0; i < 10; ++i) f.Commit(t, {{2, static_cast<uint64_t>(i + 1)}}, 2);
  f.Close();
  std::string first = SegmentFiles(f.env(), f.path()).front();
  auto data = f.env().ReadFileToString(first);
  REQUIRE(data.ok());

  SECTION("a page image") {
    size_t at = data->find(PageData(4242));
    REQUIRE(at != std::string::npos);
    FlipByte(f.env(), first, at + 100);
    f.Reopen();
    std::string out;
    Status s = f.store().ReadPageAt(l1, 1, &out);
    CHECK(s.IsCorruption());
    CHECK(f.ReadAt(f.store().LastLsn(), 2) == PageData(10));
  }
  SECTION("the footer: the records are scanned instead (page_store_corruption_test)") {
    uint64_t footer = coding::DecodeFixed64(data->data() + data->size() - 32);
    FlipByte(f.env(), first, footer + 6);
    // Without MANIFEST, Open reads every sealed segment's record list (with
    // it, the record index serves and the record list is not read:
    // manifest_test).
    REQUIRE(f.env().DeleteFile(JoinPath(f.path(), "MANIFEST")).ok());
    f.Reopen();
    CHECK(f.store().Damage().size() == 1);
    CHECK(f.ReadAt(l1, 1) == PageData(4242));
    CHECK(*f.env().GetFileSize(first) == data->size());
  }
  SECTION("the segment header, with MANIFEST: a Corruption for the reads that need it") {
    // MANIFEST describes the segment: Open does not open it, its first use does.
    FlipByte(f.env(), first, 9);
    f.Reopen();
    std::string out;
    CHECK(f.store().ReadPageAt(l1, 1, &out).IsCorruption());
    CHECK(f.store().ReadPageAt(l1, 1, &out).IsCorruption());  // and again: nothing cut
    CHECK(f.store().Damage().size() == 1);  // reported once
    CHECK(f.ReadAt(f.store().LastLsn(), 2) == PageData(10));
    CHECK(*f.env().GetFileSize(first) == data->size());
  }
  SECTION("the segment header, without MANIFEST: Open reads it") {
    FlipByte(f.env(), first, 9);
    REQUIRE(f.env().DeleteFile(JoinPath(f.path(), "MANIFEST")).ok());
    auto s = PageStore::Open(f.options(), f.path());
    CHECK(s.status().IsCorruption());
  }
}

// A segment file is created, then its header written and synced: a crash in
// between leaves a newest segment with no whole header, which never held an
// acknowledged record. Anywhere else, a bad header is corruption.
TEST_CASE("A newest segment whose header never became durable is removed; elsewhere it is corruption") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  f.Commit(t, {{1, 1}}, 1);
  Snapshot before = TakeSnapshot(f.store());
  f.Close();
  const std::vector<std::string> segments = SegmentFiles(f.env(), f.path());
  REQUIRE(segments.size() == 1);
  auto header = f.env().ReadFileToString(segments.front());
  REQUIRE(header.ok());
  auto write = [&](uint64_t number, std::string_view bytes) {
    const std::string path = JoinPath(f.path(), internal::SegmentFileName(number));
    auto w = f.env().NewWritableFile(path, Env::OpenMode::kTruncate);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(bytes).ok());
    REQUIRE((*w)->Close().ok());
    return path;
  };

  SECTION("an empty newest segment") {
    const std::string torn = write(2, "");
    f.Reopen();
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    CHECK_FALSE(f.env().FileExists(torn));
  }
  SECTION("a newest segment holding part of its header") {
    const std::string torn = write(2, header->substr(0, internal::kSegmentHeaderFixed - 3));
    f.Reopen();
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    CHECK_FALSE(f.env().FileExists(torn));
  }
  SECTION("a whole header of the newest segment with a bad checksum") {
    std::string bad = header->substr(0, internal::kSegmentHeaderFixed + 4);
    bad.back() ^= 0x5A;
    const std::string torn = write(2, bad);
    f.Reopen();
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    CHECK_FALSE(f.env().FileExists(torn));
  }
  SECTION("part of a header in a segment older than the newest") {
    write(0, header->substr(0, internal::kSegmentHeaderFixed - 3));
    auto s = PageStore::Open(f.options(), f.path());
    INFO(s.status().ToString());
    CHECK(s.status().IsCorruption());
    CHECK_THAT(s.status().message(), Catch::Contains("seg-000000.log: bad segment header"));
  }
}

TEST_CASE("A second Open of the same directory is refused") {
  StoreFixture f;
  auto second = PageStore::Open(f.options(), f.path());
  CHECK(second.status().IsUnavailable());
  f.Close();
  auto third = PageStore::Open(f.options(), f.path());
  CHECK(third.ok());
}

TEST_CASE("Open without create_if_missing fails on a missing directory") {
  StoreFixture f;
  PageStoreOptions o = f.options();
  o.create_if_missing = false;
  auto s = PageStore::Open(o, f.path() + "-missing");
  CHECK(s.status().IsNotFound());
}

TEST_CASE("Concurrent commits share fsyncs and are all readable") {
  FaultInjectionEnv counting;  // counts the fsyncs, each of which takes a while,
  counting.SetSyncDelayMicros(2000);  // so that concurrent commits queue behind the leader
  StoreFixture f(256 << 10, &counting);
  constexpr int kThreads = 8;
  constexpr int kCommits = 20;
  std::vector<TimelineId> timelines;
  for (int i = 0; i < kThreads; ++i) timelines.push_back(f.Create(0));
  TimelineId shared = f.Create(0);
  std::vector<std::vector<std::pair<Lsn, uint64_t>>> acked(kThreads + 2);
  const uint64_t syncs_before = counting.CallCount(kOpSync);
  std::atomic<int> commits{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads + 2; ++i) {
    threads.emplace_back([&, i] {
      TimelineId t = i < kThreads ? timelines[i] : shared;
      for (int k = 0; k < kCommits; ++k) {
        uint64_t seed = static_cast<uint64_t>(i) * 1000 + k + 1;
        std::string page = PageData(seed);
        PageNo pgno = i < kThreads ? 1 : static_cast<PageNo>(i - kThreads + 1);
        while (true) {
          Lsn head = *f.store().Head(t);
          auto r = f.store().Commit(t, head, {PageWrite{pgno, page}}, 2, "");
          if (r.ok()) {
            acked[i].emplace_back(*r, seed);
            commits.fetch_add(1);
            break;
          }
          if (!r.status().IsConflict()) {
            FAIL_CHECK(r.status().ToString());
            return;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const uint64_t syncs = counting.CallCount(kOpSync) - syncs_before;
  CHECK(commits.load() == (kThreads + 2) * kCommits);
  INFO("syncs " << syncs << " for " << commits.load() << " commits");
  CHECK(syncs > 0);
  CHECK(syncs < static_cast<uint64_t>(commits.load()));
  for (int i = 0; i < kThreads + 2; ++i) {
    PageNo pgno = i < kThreads ? 1 : static_cast<PageNo>(i - kThreads + 1);
    for (const auto& [lsn, seed] : acked[i]) CHECK(f.ReadAt(lsn, pgno) == PageData(seed));
  }
  f.Reopen();
  for (int i = 0; i < kThreads + 2; ++i) {
    PageNo pgno = i < kThreads ? 1 : static_cast<PageNo>(i - kThreads + 1);
    for (const auto& [lsn, seed] : acked[i]) CHECK(f.ReadAt(lsn, pgno) == PageData(seed));
  }
}

TEST_CASE("Lone, grouped and pipelined commits interleave on real files") {
  // On the POSIX Env a durable commit with no other record waiting for a
  // sync is written and synced in one call (pwritev2 with RWF_DSYNC) and
  // applied after; commits arriving meanwhile wait, then share the next
  // leader's fdatasync with pipelined ones (CommitNoWait + WaitDurable).
  StoreFixture f(256 << 10);  // several segment rolls between them
  constexpr int kThreads = 6;
  constexpr int kCommits = 40;
  std::vector<TimelineId> timelines;
  for (int i = 0; i < kThreads; ++i) {
    timelines.push_back(f.Create(0));
    f.Commit(timelines.back(), {{1, 99}}, 1);  // every head has a page 1 to read
  }
  std::vector<std::vector<std::pair<Lsn, uint64_t>>> acked(kThreads);
  std::atomic<bool> stop{false};
  std::thread reader([&] {  // heads read back while they move
    while (!stop.load()) {
      for (TimelineId t : timelines) {
        Lsn head = *f.store().Head(t);
        std::string out;
        Status s = f.store().ReadPageAt(head, 1, &out);
        if (!s.ok()) FAIL_CHECK(s.ToString());
      }
    }
  });
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const bool pipelined = i >= 4;
      for (int k = 0; k < kCommits; ++k) {
        const uint64_t seed = static_cast<uint64_t>(i) * 1000 + k + 1;
        const std::string page = PageData(seed);
        const Lsn head = *f.store().Head(timelines[i]);
        const std::vector<PageWrite> writes{PageWrite{1, page}};
        auto r = pipelined ? f.store().CommitNoWait(timelines[i], head, writes, 1, "")
                           : f.store().Commit(timelines[i], head, writes, 1, "");
        if (r.ok() && pipelined) {
          Status s = f.store().WaitDurable(*r);
          if (!s.ok()) r = s;
        }
        if (!r.ok()) {
          FAIL_CHECK(r.status().ToString());
          return;
        }
        acked[i].emplace_back(*r, seed);
      }
    });
  }
  for (auto& th : threads) th.join();
  stop = true;
  reader.join();
  auto check = [&] {
    for (int i = 0; i < kThreads; ++i) {
      REQUIRE(acked[i].size() == static_cast<size_t>(kCommits));
      CHECK(*f.store().Head(timelines[i]) == acked[i].back().first);
      for (const auto& [lsn, seed] : acked[i]) CHECK(f.ReadAt(lsn, 1) == PageData(seed));
    }
  };
  check();
  f.Reopen();
  check();
}

TEST_CASE("A failed fsync stops the store until it is reopened") {
  FaultInjectionEnv failing;
  StoreFixture f(1 << 20, &failing);
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 1}}, 1);
  failing.FailNth(1, FaultType::kIOError, /*sticky=*/true, kOpSync);  // every file fsync
  std::string page = PageData(2);
  auto r = f.store().Commit(t, l1, {PageWrite{1, page}}, 1, "");
  CHECK(r.status().IsIOError());
  CHECK(f.store().Health().IsIOError());
  CHECK(failing.FaultsFired() == 1);
  const uint64_t syncs = failing.CallCount(kOpSync);
  failing.ClearFault();  // even when the disk "recovers", nothing is retried
  auto again = f.store().Commit(t, l1, {PageWrite{1, page}}, 1, "");
  CHECK(again.status().reason() == "store_failed");
  CHECK(f.store().CreateTimeline(0, "").status().reason() == "store_failed");
  CHECK(f.store().ResetTimeline(t, l1, 0, "").status().reason() == "store_failed");
  CHECK(f.store().DropTimeline(t).reason() == "store_failed");
  CHECK(f.store().Gc(GcOptions()).status().reason() == "store_failed");
  CHECK(failing.CallCount(kOpSync) == syncs);
  // Reads still work from what was acknowledged.
  CHECK(f.ReadAt(l1, 1) == PageData(1));
  CHECK(*f.store().Head(t) == l1);
  f.Reopen();
  CHECK(f.store().Health().ok());
  CHECK(f.ReadAt(l1, 1) == PageData(1));
  Lsn head = *f.store().Head(t);
  auto ok = f.store().Commit(t, head, {PageWrite{1, page}}, 1, "");
  CHECK(ok.ok());
}

}  // namespace
}  // namespace branchdb::storage::testing
