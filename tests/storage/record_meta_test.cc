// Record metadata read on demand (docs/storage-format.md, "Memory"): a
// record's annotation and page list live in its segment, and GetRecord,
// History and ChangedPages read them back through a bounded cache. These
// tests run the store with that cache at its smallest (1 byte: every read
// goes to the segment) or small enough to evict, and check the answers
// against what was written: after restarts, after GC and compaction moved
// the records, across many sealed segments, and when a meta is damaged.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/crc32c.h"
#include "storage/log_format.h"
#include "tests/storage/store_test_util.h"
#include "tests/util/test_env.h"

namespace branchdb::storage::testing {
namespace {

using ::branchdb::testing::TestSeed;

// What a record was written with.
struct Written {
  TimelineId timeline = 0;
  std::string annotation;
  std::vector<PageNo> pages;
};

std::string AnnotationOf(uint64_t i, size_t len) {
  std::string a = "record " + std::to_string(i) + ":";
  while (a.size() < len) a += static_cast<char>('a' + (i + a.size()) % 26);
  return a;
}

// A store with a small meta cache and small segments, and the model of what
// every record was written with.
class MetaFixture {
 public:
  explicit MetaFixture(uint64_t meta_cache_bytes = 1, uint64_t segment_bytes = 32 << 10)
      : f_(segment_bytes) {
    f_.options().meta_cache_bytes = meta_cache_bytes;
    f_.Reopen();
  }

  StoreFixture& f() { return f_; }
  PageStore& store() { return f_.store(); }

  TimelineId Create(Lsn base, const std::string& annotation) {
    TimelineId t = f_.Create(base, annotation);
    model_[*store().Head(t)] = Written{t, annotation, {}};
    return t;
  }
  Lsn Commit(TimelineId t, const std::map<PageNo, uint64_t>& pages, uint32_t db_size,
             const std::string& annotation) {
    Lsn lsn = f_.Commit(t, pages, db_size, annotation);
    Written w{t, annotation, {}};
    for (const auto& [pgno, seed] : pages) w.pages.push_back(pgno);
    model_[lsn] = w;
    return lsn;
  }

  // GetRecord of lsn matches what it was written with.
  void CheckRecord(Lsn lsn) {
    INFO("LSN " << lsn);
    auto r = store().GetRecord(lsn);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    const Written& w = model_.at(lsn);
    CHECK(r->lsn == lsn);
    CHECK(r->timeline == w.timeline);
    CHECK(r->annotation == w.annotation);
    CHECK(r->pages == w.pages);
  }
  // History of t, read in pages of `batch`, lists its live records newest
  // first, each as written; returns their LSNs.
  std::vector<Lsn> CheckHistory(TimelineId t, size_t batch) {
    std::vector<Lsn> lsns;
    Lsn before = 0;
    for (;;) {
      auto h = store().History(t, before, batch);
      INFO(h.status().ToString());
      REQUIRE(h.ok());
      for (const RecordInfo& r : *h) {
        INFO("LSN " << r.lsn);
        REQUIRE(model_.count(r.lsn) == 1);
        CHECK(r.annotation == model_.at(r.lsn).annotation);
        CHECK(r.pages == model_.at(r.lsn).pages);
        if (!lsns.empty()) CHECK(r.lsn < lsns.back());
        lsns.push_back(r.lsn);
      }
      // (History's `before` 0 means "from the head": LSN 1 ends the walk.)
      if (h->size() < batch || h->back().lsn == 1) break;
      before = h->back().lsn - 1;
    }
    return lsns;
  }
  // ChangedPages between two states of one timeline with no reset between
  // them (a before b): exactly the pages written in (a, b].
  void CheckChangedPages(TimelineId t, Lsn a, Lsn b) {
    std::set<PageNo> want;
    for (auto it = model_.upper_bound(a); it != model_.end() && it->first <= b; ++it) {
      if (it->second.timeline == t) want.insert(it->second.pages.begin(), it->second.pages.end());
    }
    auto got = store().ChangedPages(a, b);
    INFO("ChangedPages(" << a << ", " << b << "): " << got.status().ToString());
    REQUIRE(got.ok());
    CHECK(std::vector<PageNo>(want.begin(), want.end()) == *got);
  }
  // Forgets the records GC collected (GetRecord says NotFound); returns how many.
  size_t DropCollected() {
    size_t n = 0;
    for (auto it = model_.begin(); it != model_.end();) {
      auto r = store().GetRecord(it->first);
      if (r.ok()) {
        ++it;
        continue;
      }
      CHECK(r.status().reason() == "lsn_not_found");
      it = model_.erase(it);
      ++n;
    }
    return n;
  }
  const std::map<Lsn, Written>& model() const { return model_; }

  std::vector<std::string> SegmentFiles() {
    auto children = f_.env().GetChildren(f_.path());
    REQUIRE(children.ok());
    std::vector<std::string> out;
    for (const auto& c : *children) {
      if (c.rfind("seg-", 0) == 0 && c.find(".tmp") == std::string::npos) {
        out.push_back(JoinPath(f_.path(), c));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // Flips one byte of a file (the store may have it open: reads are preads).
  void Flip(const std::string& path, uint64_t offset) {
    std::string data = *f_.env().ReadFileToString(path);
    REQUIRE(offset < data.size());
    data[offset] = static_cast<char>(data[offset] ^ 0x5A);
    auto w = f_.env().NewWritableFile(path, Env::OpenMode::kTruncate);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(data).ok());
    REQUIRE((*w)->Sync().ok());
  }
  // Where the record lsn begins in file `path`: the first offset holding a
  // meta_len, a meta_crc that matches and a meta naming lsn.
  uint64_t RecordOffset(const std::string& path, Lsn lsn) {
    std::string data = *f_.env().ReadFileToString(path);
    for (size_t at = internal::kSegmentHeaderMinSize; at + 8 <= data.size(); ++at) {
      const uint32_t len = coding::DecodeFixed32(data.data() + at);
      if (len == 0 || len > data.size() - at - 8) continue;
      const std::string_view meta(data.data() + at + 8, len);
      if (crc32c::Value(meta) != coding::DecodeFixed32(data.data() + at + 4)) continue;
      internal::RecordMeta decoded;
      if (internal::DecodeMeta(meta, &decoded).ok() && decoded.lsn == lsn) return at;
    }
    FAIL("record " << lsn << " not found in " << path);
    return 0;
  }

 private:
  StoreFixture f_;
  std::map<Lsn, Written> model_;
};

// Writes a history over two timelines (a branch of the first) across many
// sealed segments: 60 commits with annotations of 0 to ~3 KiB.
struct TwoTimelines {
  TimelineId main = 0, branch = 0;
  Lsn branch_point = 0;
};
TwoTimelines WriteHistory(MetaFixture& m) {
  TwoTimelines h;
  h.main = m.Create(0, "create main");
  for (uint64_t i = 1; i <= 30; ++i) {
    m.Commit(h.main, {{static_cast<PageNo>(i % 7 + 1), i}, {9, 100 + i}}, 9,
             AnnotationOf(i, (i * 397) % 3000));
  }
  h.branch_point = *m.store().Head(h.main);
  h.branch = m.Create(h.branch_point, "create branch");
  for (uint64_t i = 31; i <= 60; ++i) {
    const TimelineId t = i % 2 ? h.main : h.branch;
    m.Commit(t, {{static_cast<PageNo>(i % 5 + 1), i}}, 9, AnnotationOf(i, (i * 211) % 3000));
  }
  return h;
}

}  // namespace

TEST_CASE("Records of sealed segments keep nothing in memory but their run's entry") {
  MetaFixture m;
  WriteHistory(m);
  REQUIRE(m.SegmentFiles().size() > 5);
  const StoreStats s = m.store().Stats();
  CHECK(s.records == m.model().size());
  // 48 bytes per record of the unsealed segment only.
  CHECK(s.record_metadata_bytes % 48 == 0);
  CHECK(s.record_metadata_bytes < 48 * m.model().size() / 2);
  CHECK(m.store().RecordMetadataBytes() == s.record_metadata_bytes);
  CHECK(s.meta_cache.capacity_bytes == 1);
  CHECK(s.meta_cache.entries == 0);  // nothing fits in one byte
}

TEST_CASE("History, GetRecord and ChangedPages read the metadata back, also after a restart") {
  const uint64_t cache = GENERATE(1, 8 << 10, 8 << 20);
  INFO("meta cache " << cache << " bytes");
  MetaFixture m(cache);
  TwoTimelines h = WriteHistory(m);
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round << " (1: after a restart)");
    for (const auto& [lsn, w] : m.model()) m.CheckRecord(lsn);
    CHECK(m.CheckHistory(h.main, 7).size() == 1 + 30 + 15);
    CHECK(m.CheckHistory(h.branch, 256).size() == 1 + 30 + 1 + 15);
    m.CheckChangedPages(h.main, 2, *m.store().Head(h.main));
    m.CheckChangedPages(h.main, 5, h.branch_point);
    const StoreStats s = m.store().Stats();
    CHECK(s.meta_cache.bytes <= cache);
    // Commits warm the cache: with room for all, the first round reads nothing.
    CHECK((s.meta_cache.misses > 0) == (cache < (1 << 20) || round == 1));
    m.f().Reopen();
  }
}

TEST_CASE("The meta cache serves repeated reads and stays within its capacity") {
  MetaFixture m(64 << 10);
  WriteHistory(m);
  m.f().Reopen();  // an empty cache
  const Lsn lsn = m.model().begin()->first + 3;
  m.CheckRecord(lsn);
  const StoreStats first = m.store().Stats();
  m.CheckRecord(lsn);
  const StoreStats second = m.store().Stats();
  CHECK(second.meta_cache.hits == first.meta_cache.hits + 1);
  CHECK(second.meta_cache.misses == first.meta_cache.misses);
  for (const auto& [l, w] : m.model()) m.CheckRecord(l);
  const StoreStats all = m.store().Stats();
  CHECK(all.meta_cache.bytes <= 64 << 10);
  CHECK(all.meta_cache.entries > 0);
  CHECK(all.meta_cache.entries < m.model().size());  // ~90 KiB of annotations: some evicted
}

TEST_CASE("After GC and compaction the surviving records read as written, from the new segments") {
  const uint64_t cache = GENERATE(1, 8 << 20);
  INFO("meta cache " << cache << " bytes");
  MetaFixture m(cache);
  TwoTimelines h = WriteHistory(m);
  // Warm the cache (when it has room) with metas whose records compaction moves.
  for (const auto& [lsn, w] : m.model()) m.CheckRecord(lsn);
  const Lsn pinned = m.model().begin()->first + 10;
  m.f().clock().AdvanceSeconds(3600);
  const Lsn recent = m.Commit(h.main, {{3, 999}}, 9, AnnotationOf(999, 1500));
  GcOptions gc;
  gc.restore_window_micros = 60ll * 1000000;  // keeps `recent` only, besides heads and pins
  gc.pins = {pinned};
  const std::vector<std::string> files_before = m.SegmentFiles();
  auto r = m.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->segments_rewritten > 0);
  CHECK(m.SegmentFiles() != files_before);
  CHECK(m.DropCollected() > 0);
  CHECK(m.model().count(pinned) == 1);
  CHECK(m.model().count(recent) == 1);
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round << " (1: after a restart)");
    for (const auto& [lsn, w] : m.model()) m.CheckRecord(lsn);
    m.CheckHistory(h.main, 3);
    m.CheckHistory(h.branch, 3);
    CHECK(m.store().RecordMetadataBytes() <= 48 * m.model().size());
    CHECK(m.store().Stats().records == m.model().size());
    m.f().Reopen();
  }
}

TEST_CASE("A damaged record meta in a sealed segment is read from the footer's intact copy") {
  MetaFixture m;
  WriteHistory(m);
  m.f().Close();
  const std::string seg = m.SegmentFiles()[2];
  const Lsn lsn = [&] {  // a record of that segment
    for (const auto& [l, w] : m.model()) {
      std::string data = *m.f().env().ReadFileToString(seg);
      if (data.find(w.annotation) != std::string::npos && w.annotation.size() > 100) return l;
    }
    FAIL("no record in " << seg);
    return Lsn{0};
  }();
  m.Flip(seg, m.RecordOffset(seg, lsn) + 40);  // a byte of its meta (its time)
  m.f().Reopen();
  CHECK(m.store().Damage().empty());  // recovery reads the footer's copy
  m.CheckRecord(lsn);
  for (const auto& [l, w] : m.model()) m.CheckRecord(l);
  std::vector<std::string> damage = m.store().Damage();
  REQUIRE(damage.size() == 1);
  INFO(damage[0]);
  const std::string want =
      internal::SegmentFileName(3) + ": record meta of LSN " + std::to_string(lsn) + " at offset";
  CHECK(damage[0].rfind(want, 0) == 0);
  CHECK(damage[0].find("footer's copy") != std::string::npos);
}

TEST_CASE("A damaged record meta with no intact copy is a Corruption for the calls that read it") {
  MetaFixture m;
  TwoTimelines h = WriteHistory(m);
  // The store stays open: the damage appears after recovery checked the
  // segments, in a sealed segment whose footer is damaged too, and in the
  // unsealed tail (no footer at all).
  const std::vector<std::string> files = m.SegmentFiles();
  const std::string sealed = files[1];
  const std::string tail = files.back();
  const Lsn head = *m.store().Head(h.main);
  Lsn in_sealed = 0;
  for (const auto& [l, w] : m.model()) {
    std::string data = *m.f().env().ReadFileToString(sealed);
    if (w.annotation.size() > 100 && data.find(w.annotation) != std::string::npos) in_sealed = l;
  }
  REQUIRE(in_sealed != 0);
  m.Flip(sealed, m.RecordOffset(sealed, in_sealed) + 40);
  m.Flip(sealed, *m.f().env().GetFileSize(sealed) - 20);  // the trailer's footer length
  const Lsn in_tail = m.Commit(h.main, {{2, 777}}, 9, AnnotationOf(777, 300));
  REQUIRE(*m.f().env().GetFileSize(tail) > 0);
  m.Flip(tail, m.RecordOffset(tail, in_tail) + 40);

  for (const Lsn bad : {in_sealed, in_tail}) {
    INFO("LSN " << bad);
    auto r = m.store().GetRecord(bad);
    REQUIRE_FALSE(r.ok());
    INFO(r.status().ToString());
    CHECK(r.status().IsCorruption());
    CHECK(r.status().message().find("record meta of LSN " + std::to_string(bad)) !=
          std::string::npos);
  }
  // History through a damaged record fails; History above it answers.
  const TimelineId of_sealed = m.model().at(in_sealed).timeline;
  CHECK(m.store().History(of_sealed, 0, 1000).status().IsCorruption());
  auto above = m.store().History(h.main, head, 1);
  REQUIRE(above.ok());
  // Every other record reads as written; the pages read as before.
  for (const auto& [l, w] : m.model()) {
    if (l != in_sealed && l != in_tail) m.CheckRecord(l);
  }
  std::string page;
  CHECK(m.store().ReadPageAt(in_tail, 2, &page).ok());
  CHECK(page == PageData(777));
}

TEST_CASE("A long history over many sealed segments reads as written, across GC and restarts") {
  const uint64_t seed = TestSeed("record_meta_test long history");
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  MetaFixture m(16 << 10, 64 << 10);  // ~10 records per segment; a cache of a few metas
  std::vector<TimelineId> timelines{m.Create(0, "t0")};
  std::vector<Lsn> pins;
  const int kCommits = 2000;
  for (int i = 1; i <= kCommits; ++i) {
    const uint64_t op = rng() % 100;
    if (op < 2 && timelines.size() < 8) {
      const TimelineId from = timelines[rng() % timelines.size()];
      timelines.push_back(m.Create(*m.store().Head(from), "branch " + std::to_string(i)));
      continue;
    }
    const TimelineId t = timelines[rng() % timelines.size()];
    std::map<PageNo, uint64_t> pages;
    for (uint64_t k = rng() % 3; k > 0; --k) pages[static_cast<PageNo>(1 + rng() % 16)] = rng();
    const Lsn lsn = m.Commit(t, pages, 16, AnnotationOf(i, rng() % 600));
    if (rng() % 50 == 0) pins.push_back(lsn);
    if (i % 500 == 0) {
      m.f().clock().AdvanceSeconds(3600);
      GcOptions gc;
      gc.restore_window_micros = 1800ll * 1000000;
      gc.pins = pins;
      auto r = m.store().Gc(gc);
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      m.DropCollected();
      for (Lsn p : pins) CHECK(m.model().count(p) == 1);
    }
    if (i % 700 == 0) m.f().Reopen();
    if (i % 100 == 0) {
      // Random records, and one timeline's history.
      std::vector<Lsn> lsns;
      for (const auto& [l, w] : m.model()) lsns.push_back(l);
      for (int k = 0; k < 50; ++k) m.CheckRecord(lsns[rng() % lsns.size()]);
      m.CheckHistory(timelines[rng() % timelines.size()], 1 + rng() % 64);
    }
  }
  REQUIRE(m.SegmentFiles().size() > 20);
  m.f().Reopen();
  for (const auto& [l, w] : m.model()) m.CheckRecord(l);
  // Every live record is on its own timeline's history (there are no resets).
  std::set<Lsn> listed;
  for (TimelineId t : timelines) {
    for (Lsn l : m.CheckHistory(t, 100)) listed.insert(l);
  }
  std::set<Lsn> live;
  for (const auto& [l, w] : m.model()) live.insert(l);
  CHECK(listed == live);
}

}  // namespace branchdb::storage::testing
