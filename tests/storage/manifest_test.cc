// The store manifest (MANIFEST, written at every seal) and the record index
// of format-4 segments (docs/storage-format.md, "MANIFEST" and "Record
// index"): Open reads neither the record lists of the sealed segments it
// lists nor anything but their indexes; a damaged or stale MANIFEST, or a
// damaged record index, costs a read of footers, never a state.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "base/coding.h"
#include "storage/log_format.h"
#include "tests/storage/store_test_util.h"
#include "tests/util/fault_injection_env.h"

namespace branchdb::storage::testing {
namespace {

void XorBytes(Env& env, const std::string& path, uint64_t offset, uint64_t len) {
  auto data = env.ReadFileToString(path);
  REQUIRE(data.ok());
  REQUIRE(offset + len <= data->size());
  for (uint64_t i = offset; i < offset + len; ++i) (*data)[i] = static_cast<char>((*data)[i] ^ 0x5A);
  auto f = env.NewWritableFile(path, Env::OpenMode::kTruncate);
  REQUIRE(f.ok());
  REQUIRE((*f)->Append(*data).ok());
  REQUIRE((*f)->Sync().ok());
  REQUIRE((*f)->Close().ok());
}

void WriteWhole(Env& env, const std::string& path, const std::string& data) {
  auto f = env.NewWritableFile(path, Env::OpenMode::kTruncate);
  REQUIRE(f.ok());
  REQUIRE((*f)->Append(data).ok());
  REQUIRE((*f)->Sync().ok());
  REQUIRE((*f)->Close().ok());
}

struct SealedFile {
  std::string path;
  uint64_t footer_offset = 0;
  uint64_t footer_len = 0;
};

// The sealed segments of the store in dir (by their trailer), ascending.
std::vector<SealedFile> SealedSegments(Env& env, const std::string& dir) {
  auto children = env.GetChildren(dir);
  REQUIRE(children.ok());
  std::vector<SealedFile> out;
  for (const std::string& c : *children) {
    uint64_t n = 0;
    if (!internal::ParseSegmentFileName(c, &n)) continue;
    auto data = env.ReadFileToString(JoinPath(dir, c));
    REQUIRE(data.ok());
    const std::string& d = *data;
    if (d.size() < 64 || d.compare(d.size() - 8, 8, "BRDBFTR1") != 0) continue;
    out.push_back(SealedFile{JoinPath(dir, c), coding::DecodeFixed64(d.data() + d.size() - 32),
                             coding::DecodeFixed64(d.data() + d.size() - 24)});
  }
  std::sort(out.begin(), out.end(),
            [](const SealedFile& a, const SealedFile& b) { return a.path < b.path; });
  return out;
}

// A history with branches, a reset, a drop and payloads over many sealed
// segments (32 KiB each: about six one-page commits).
struct History {
  explicit History(StoreFixture& f) {
    const TimelineId main = f.Create(0, "main");
    for (int i = 0; i < 40; ++i) {
      f.Commit(main, {{static_cast<PageNo>(i % 5 + 1), 100 + static_cast<uint64_t>(i)}}, 6,
               "main commit " + std::to_string(i));
    }
    const Lsn fork = *f.store().Head(main);
    const TimelineId dev = f.Create(fork, "dev");
    for (int i = 0; i < 15; ++i) {
      auto head = f.store().Head(dev);
      REQUIRE(head.ok());
      const std::string page = PageData(500 + static_cast<uint64_t>(i));
      REQUIRE(f.store()
                  .Commit(dev, *head, {PageWrite{static_cast<PageNo>(i % 3 + 2), page}}, 6,
                          "dev " + std::to_string(i), "script " + std::to_string(i))
                  .ok());
    }
    const TimelineId gone = f.Create(fork, "gone");
    f.Commit(gone, {{1, 900}}, 6);
    REQUIRE(f.store().DropTimeline(gone).ok());
    REQUIRE(f.store().ResetTimeline(main, *f.store().Head(main), fork - 10, "reset").ok());
    for (int i = 0; i < 10; ++i) f.Commit(main, {{2, 700 + static_cast<uint64_t>(i)}}, 6);
  }
};

}  // namespace

TEST_CASE("Open reads no record list of the sealed segments MANIFEST lists") {
  StoreFixture f(32 << 10);
  History h(f);
  const Snapshot before = TakeSnapshot(f.store());
  f.Close();
  REQUIRE(f.env().FileExists(JoinPath(f.path(), "MANIFEST")));
  const std::vector<SealedFile> sealed = SealedSegments(f.env(), f.path());
  REQUIRE(sealed.size() >= 6);
  // Every sealed segment's record list made unreadable: Open does not see it.
  for (const SealedFile& s : sealed) XorBytes(f.env(), s.path, s.footer_offset, s.footer_len);
  f.Reopen();
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  // The store goes on: more seals, a reopen, the same answers.
  const TimelineId main = 1;
  for (int i = 0; i < 12; ++i) f.Commit(main, {{3, 2000 + static_cast<uint64_t>(i)}}, 6);
  const Snapshot later = TakeSnapshot(f.store());
  f.Reopen();
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(later, TakeSnapshot(f.store()));
  // Without MANIFEST the record lists are read, and found damaged (each
  // segment's records are scanned instead), which is what Open skipped.
  f.Close();
  REQUIRE(f.env().DeleteFile(JoinPath(f.path(), "MANIFEST")).ok());
  f.Reopen();
  CHECK(f.store().Damage().size() == sealed.size());
  RequireSameSnapshot(later, TakeSnapshot(f.store()));
}

TEST_CASE("A damaged MANIFEST is reported, the footers serve, and it is written anew") {
  StoreFixture f(32 << 10);
  History h(f);
  const Snapshot before = TakeSnapshot(f.store());
  f.Close();
  const std::string manifest = JoinPath(f.path(), "MANIFEST");
  auto size = f.env().GetFileSize(manifest);
  REQUIRE(size.ok());
  XorBytes(f.env(), manifest, *size / 2, 1);
  f.Reopen();
  REQUIRE(f.store().Damage().size() == 1);
  CHECK(f.store().Damage()[0].find("MANIFEST: checksum mismatch") != std::string::npos);
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  f.Reopen();
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
}

TEST_CASE("A record index block that fails its checksum is reported and the record list serves") {
  StoreFixture f(32 << 10);
  History h(f);
  const Snapshot before = TakeSnapshot(f.store());
  f.Close();
  const std::vector<SealedFile> sealed = SealedSegments(f.env(), f.path());
  REQUIRE(sealed.size() >= 2);
  // The record index begins where the record list ends: block 0's first entry.
  XorBytes(f.env(), sealed[1].path, sealed[1].footer_offset + sealed[1].footer_len + 6, 1);
  f.Reopen();
  // Open reads no block: the first lookup that needs it (here the runs'
  // record lists, completed on first need) finds the damage and demotes
  // the segment's record index.
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  REQUIRE(f.store().Damage().size() == 1);
  CHECK(f.store().Damage()[0].find("record index block 0") != std::string::npos);
  CHECK(f.store().Damage()[0].find("rebuilt in memory") != std::string::npos);
}

TEST_CASE("The record table holds only the records of the unsealed segment") {
  StoreFixture f(32 << 10);
  History h(f);
  const Snapshot before = TakeSnapshot(f.store());
  const StoreStats live = f.store().Stats();
  // The sealed segments' records are read through their record indexes.
  CHECK(live.records == before.records.size());
  CHECK(live.index_cache.misses > 0);
  // A 32 KiB segment holds at most eight one-page records.
  CHECK(f.store().RecordMetadataBytes() <= 8 * 48);
  f.Reopen();
  CHECK(f.store().Damage().empty());
  CHECK(f.store().RecordMetadataBytes() <= 8 * 48);
  CHECK(f.store().Stats().records == before.records.size());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
}

TEST_CASE("Record lookups are exact with a record index cache too small to hold a block") {
  StoreFixture f(32 << 10);
  f.options().index_cache_bytes = 64;  // every block read is a miss, held by the call alone
  f.Reopen();
  History h(f);
  const Snapshot before = TakeSnapshot(f.store());
  f.Reopen();
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(f.store().Stats().index_cache.entries == 0);
  CHECK(f.store().Damage().empty());
}

TEST_CASE("A record index block damaged after Open is found by a read; its footer serves") {
  StoreFixture f(32 << 10);
  History h(f);
  const Snapshot before = TakeSnapshot(f.store());
  f.Reopen();  // nothing of the record indexes in the cache
  const std::vector<SealedFile> sealed = SealedSegments(f.env(), f.path());
  REQUIRE(sealed.size() >= 2);
  XorBytes(f.env(), sealed[1].path, sealed[1].footer_offset + sealed[1].footer_len + 6, 1);
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  REQUIRE(f.store().Damage().size() == 1);
  CHECK(f.store().Damage()[0].find("record index block 0") != std::string::npos);
  CHECK(f.store().Damage()[0].find("rebuilt in memory") != std::string::npos);
  // The next Open reads its record list (the index is damaged on disk) and
  // reports it again.
  const Snapshot again = TakeSnapshot(f.store());
  f.Reopen();
  RequireSameSnapshot(again, TakeSnapshot(f.store()));
  CHECK(f.store().Damage().size() == 1);
}

TEST_CASE("GC meeting a damaged record index block demotes it and keeps every root") {
  StoreFixture f(32 << 10);
  History h(f);
  const Snapshot before = TakeSnapshot(f.store());
  f.Reopen();
  const std::vector<SealedFile> sealed = SealedSegments(f.env(), f.path());
  REQUIRE(sealed.size() >= 2);
  XorBytes(f.env(), sealed[1].path, sealed[1].footer_offset + sealed[1].footer_len + 6, 1);
  f.clock().Advance(3600ll * 1000000);
  GcOptions gc;
  gc.restore_window_micros = 0;
  for (const auto& [lsn, r] : before.records) gc.pins.push_back(lsn);  // every state a root
  auto r = f.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  REQUIRE(f.store().Damage().size() == 1);
  CHECK(f.store().Damage()[0].find("rebuilt in memory") != std::string::npos);
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  // Without pins GC collects, compacts, and the heads read as before.
  gc.pins.clear();
  r = f.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  const Snapshot after = TakeSnapshot(f.store());
  for (const TimelineInfo& t : after.timelines) {
    REQUIRE(after.records.count(t.head) == 1);
    CHECK(after.records.at(t.head).annotation == before.records.at(t.head).annotation);
    CHECK(after.pages.at(t.head) == before.pages.at(t.head));
  }
  f.Reopen();
  RequireSameSnapshot(after, TakeSnapshot(f.store()));
}

TEST_CASE("Segments sealed after the MANIFEST on disk are read from their footers") {
  // A crash between a seal and its MANIFEST leaves an older MANIFEST: it
  // does not list the newer segments, which Open reads as before.
  StoreFixture f(32 << 10);
  const TimelineId t = f.Create(0);
  for (int i = 0; i < 20; ++i) f.Commit(t, {{static_cast<PageNo>(i % 4 + 1), 10 + static_cast<uint64_t>(i)}}, 4);
  const std::string manifest = JoinPath(f.path(), "MANIFEST");
  auto old = f.env().ReadFileToString(manifest);
  REQUIRE(old.ok());
  const TimelineId dev = f.Create(*f.store().Head(t));
  for (int i = 0; i < 30; ++i) f.Commit(dev, {{static_cast<PageNo>(i % 7 + 1), 50 + static_cast<uint64_t>(i)}}, 8);
  const Snapshot before = TakeSnapshot(f.store());
  f.Close();
  WriteWhole(f.env(), manifest, *old);
  f.Reopen();
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  // Open wrote it anew: it lists them now.
  auto now = f.env().ReadFileToString(manifest);
  REQUIRE(now.ok());
  CHECK(*now != *old);
}

TEST_CASE("A MANIFEST older than the last GC is not used") {
  StoreFixture f(32 << 10);
  History h(f);
  const std::string manifest = JoinPath(f.path(), "MANIFEST");
  auto old = f.env().ReadFileToString(manifest);
  REQUIRE(old.ok());
  f.clock().Advance(3600ll * 1000000);
  GcOptions gc;
  gc.restore_window_micros = 0;
  auto r = f.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->segments_rewritten > 0);
  const Snapshot before = TakeSnapshot(f.store());
  f.Reopen();  // with the MANIFEST the GC wrote
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  // A crash after GCSTATE, before MANIFEST: the old one names segments
  // compaction deleted, and structure GC changed. It is stale, not used.
  f.Close();
  WriteWhole(f.env(), manifest, *old);
  f.Reopen();
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
}

TEST_CASE("A GC with no new records does not leave a MANIFEST that passes for current") {
  // Two GCs at the same durable LSN: the first collects nothing (its window
  // keeps everything), the second, an hour later, collects and compacts,
  // and its MANIFEST's rename fails (a crash there). Its GCSTATE has the
  // same gc_lsn as the first GC's MANIFEST, which names segments the
  // compaction deleted: that MANIFEST must not be on disk to be taken.
  branchdb::testing::FaultInjectionEnv faults;
  StoreFixture f(32 << 10, &faults);
  History h(f);
  GcOptions keep_all;
  keep_all.restore_window_micros = 24ll * 3600 * 1000000;
  auto first = f.store().Gc(keep_all);
  INFO(first.status().ToString());
  REQUIRE(first.ok());
  f.clock().Advance(3600ll * 1000000);
  branchdb::testing::FaultSpec spec;
  spec.op_mask = branchdb::testing::kOpRename;
  spec.only_if = [](uint32_t, const std::string& path) {
    return path.size() >= 8 && path.compare(path.size() - 8, 8, "MANIFEST") == 0;
  };
  faults.FailNth(spec);
  GcOptions gc;
  gc.restore_window_micros = 0;
  auto second = f.store().Gc(gc);
  REQUIRE(faults.FaultFired());
  REQUIRE_FALSE(second.ok());
  faults.ClearFault();
  const Snapshot before = TakeSnapshot(f.store());  // the second GC's plan applied
  f.Reopen();
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  f.Reopen();
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
}
}  // namespace branchdb::storage::testing
