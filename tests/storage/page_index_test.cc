// The page index of sealed segments (format 3, docs/storage-format.md "Page
// index"): what it costs in memory as sealed history grows, and the upgrade
// of a store written in format 2 (no on-disk index: its versions are held in
// memory until compaction rewrites its segments in format 3).
#include "storage/page_index.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/coding.h"
#include "storage/log_format.h"
#include "storage/record_table.h"
#include "tests/storage/store_test_util.h"

namespace branchdb::storage::testing {
namespace {

using internal::EncodeFooter;
using internal::RunEntry;
using internal::RunList;
using internal::EncodeMeta;
using internal::EncodeRecordPrefix;
using internal::EncodeSegmentHeader;
using internal::RecordMeta;
using internal::SegmentHeader;

constexpr PageNo kPages = 4;

// The page a v2 fixture's commit `lsn` writes, and the seed of its image.
PageNo PageOf(Lsn lsn) { return static_cast<PageNo>(lsn % kPages + 1); }

// Writes a store in format 2 (or 3), as the builds before format 3 (or 4)
// wrote it: one timeline (created at LSN 1) with commits 2..last, each
// writing one page, `per_segment` records per segment; every segment but the
// last sealed with a footer of that format (record list, format 3: page
// index; trailer), the last one unsealed. No MANIFEST.
void WriteFormat2Store(Env& env, const std::string& dir, Lsn last, int per_segment,
                       uint32_t version = 2) {
  REQUIRE(env.CreateDirs(dir).ok());
  uint64_t number = 0;
  std::unique_ptr<WritableFile> file;
  internal::MetaList footer;
  std::vector<internal::IndexEntry> index;  // format 3
  auto seal = [&] {
    std::sort(index.begin(), index.end(),
              [](const internal::IndexEntry& a, const internal::IndexEntry& b) {
                return a.pgno != b.pgno ? a.pgno < b.pgno : a.lsn < b.lsn;
              });
    REQUIRE(file->Append(EncodeFooter(footer.entries(), file->Size(), version, index)).ok());
    REQUIRE(file->Sync().ok());
    REQUIRE(file->Close().ok());
    footer.Clear();
    index.clear();
  };
  for (Lsn lsn = 1; lsn <= last; ++lsn) {
    if (lsn % per_segment == 1 || per_segment == 1) {
      if (file) seal();
      SegmentHeader h;
      h.version = version;
      h.number = ++number;
      auto f = env.NewWritableFile(JoinPath(dir, internal::SegmentFileName(number)),
                                   Env::OpenMode::kTruncate);
      REQUIRE(f.ok());
      file = std::move(*f);
      REQUIRE(file->Append(EncodeSegmentHeader(h)).ok());
    }
    RecordMeta m;
    m.kind = lsn == 1 ? RecordKind::kCreate : RecordKind::kCommit;
    m.lsn = lsn;
    m.timeline = 1;
    m.run_start = 1;
    m.time_micros = static_cast<int64_t>(lsn) * 1000;
    m.db_size_pages = lsn == 1 ? 0 : kPages;
    m.annotation = "v2 commit " + std::to_string(lsn);
    std::string images;
    if (lsn > 1) {
      m.entries.push_back(internal::PageEntry{PageOf(lsn), internal::EntryType::kImage});
      internal::AppendImageBlock(&images, PageData(lsn), /*holes=*/false);
    }
    const std::string meta = EncodeMeta(m);
    if (lsn > 1) {
      index.push_back(internal::IndexEntry{PageOf(lsn), lsn, 1,
                                           file->Size() + internal::kRecordHeaderSize + meta.size()});
    }
    footer.Add(file->Size(), meta);
    REQUIRE(file->Append(EncodeRecordPrefix(meta) + images).ok());
  }
  REQUIRE(file->Sync().ok());
}

// The seed page p holds at state lsn of the v2 fixture (0: never written).
uint64_t SeedAt(Lsn lsn, PageNo p) {
  for (Lsn l = lsn; l >= 2; --l) {
    if (PageOf(l) == p) return l;
  }
  return 0;
}

void CheckFormat2States(PageStore& store, Lsn first, Lsn last) {
  for (Lsn l = first; l <= last; ++l) {
    for (PageNo p = 1; p <= kPages; ++p) {
      std::string out;
      Status s = store.ReadPageAt(l, p, &out);
      INFO("LSN " << l << " page " << p << ": " << s.ToString());
      REQUIRE(s.ok());
      CHECK(out == PageData(SeedAt(l, p)));
    }
  }
}

uint32_t HeaderVersion(Env& env, const std::string& path) {
  auto data = env.ReadFileToString(path);
  REQUIRE(data.ok());
  return coding::DecodeFixed32(data->data() + 8);
}

}  // namespace

TEST_CASE("The page index's memory does not grow with sealed history") {
  // Segments of 256 KiB: about 60 one-page commits each.
  StoreFixture f(256 << 10);
  TimelineId t = f.Create(0);
  auto commit_n = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const PageNo p = static_cast<PageNo>(i % 50 + 1);
      f.Commit(t, {{p, 7 + static_cast<uint64_t>(i)}}, 50, std::string(200, 'a'));
    }
  };
  commit_n(600);
  const StoreStats early = f.store().Stats();
  commit_n(3000);
  const StoreStats late = f.store().Stats();
  INFO("page index bytes after 600 commits: " << early.page_index_bytes << ", after 3600: "
                                              << late.page_index_bytes);
  // In memory: only the unsealed segment's versions (at most one segment's worth).
  CHECK(late.page_index_versions <= 64);
  // Each sealed segment adds its page index's directory and filter, its
  // record index's directory and its bookkeeping (about 490 bytes for these
  // 60 records): under 9 bytes per commit here, less with real segment
  // sizes, where an in-memory index holds 24 bytes per version and more.
  CHECK(late.page_index_bytes - early.page_index_bytes < 3000 * 9);
  // The same after a reopen: the sealed versions are not loaded back.
  f.Reopen();
  const StoreStats reopened = f.store().Stats();
  CHECK(reopened.page_index_versions <= 64);
  CHECK(reopened.page_index_bytes < late.page_index_bytes + 64 * 1024);
  // And every state still reads right, through the index block cache.
  std::string out;
  REQUIRE(f.store().ReadPageAt(2, 1, &out).ok());
  CHECK(out == PageData(7));
  CHECK(f.store().Stats().index_cache.misses > 0);
}

TEST_CASE("A store written in format 2 opens, reads everything, and moves to format 3 as it compacts") {
  StoreFixture f;  // only for its directory, clock and Env
  f.Close();
  const Lsn last = 60;
  WriteFormat2Store(f.env(), f.path(), last, 8);
  f.Reopen();
  CHECK(f.store().Damage().empty());
  // Mixed mode: the format-2 versions are in memory.
  CHECK(f.store().Stats().page_index_versions == last - 1);
  CheckFormat2States(f.store(), 1, last);
  // The format-2 tail is sealed at the first new record; new segments are
  // of the current format.
  f.options().segment_bytes = 32 << 10;
  f.Reopen();
  const TimelineId t = 1;
  Lsn head = last;
  for (int i = 0; i < 20; ++i) head = f.Commit(t, {{1, 5000 + static_cast<uint64_t>(i)}}, kPages);
  CheckFormat2States(f.store(), 1, last);
  // GC with only the head as a root: every old segment is mostly garbage and
  // is compacted; compaction's output is format 3.
  f.clock().Advance(3600ll * 1000000);
  GcOptions gc;
  gc.restore_window_micros = 0;
  auto r = f.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->segments_rewritten >= 7);
  auto check_head = [&] {
    for (PageNo p = 1; p <= kPages; ++p) {
      std::string out;
      REQUIRE(f.store().ReadPageAt(head, p, &out).ok());
      CHECK(out == PageData(p == 1 ? 5019 : SeedAt(last, p)));
    }
  };
  check_head();
  f.Reopen();
  check_head();
  CHECK(f.store().Damage().empty());
  auto children = f.env().GetChildren(f.path());
  REQUIRE(children.ok());
  for (const std::string& c : *children) {
    uint64_t n = 0;
    if (!internal::ParseSegmentFileName(c, &n)) continue;
    INFO(c);
    CHECK(HeaderVersion(f.env(), JoinPath(f.path(), c)) >= 2);
  }
  // Nothing of format 2 is left in memory but what is not compacted yet.
  CHECK(f.store().Stats().page_index_versions < last - 1);
}

TEST_CASE("A store written in format 3 opens, writes its first MANIFEST, and moves to format 5") {
  StoreFixture f;  // only for its directory, clock and Env
  f.Close();
  const Lsn last = 60;
  WriteFormat2Store(f.env(), f.path(), last, 8, 3);
  const std::string manifest = JoinPath(f.path(), "MANIFEST");
  REQUIRE(!f.env().FileExists(manifest));
  f.Reopen();
  CHECK(f.store().Damage().empty());
  // Its versions stay on disk (format 3 has a page index); its records come
  // from the footers (format 3 has no record index) at every Open.
  CHECK(f.store().Stats().page_index_versions <= 8);
  CheckFormat2States(f.store(), 1, last);
  CHECK(f.env().FileExists(manifest));
  f.Reopen();
  CHECK(f.store().Damage().empty());
  CheckFormat2States(f.store(), 1, last);
  // New segments are format 5; compaction rewrites the old ones in format 5
  // (their image blocks re-encoded with holes).
  f.options().segment_bytes = 32 << 10;
  f.Reopen();
  const TimelineId t = 1;
  Lsn head = last;
  for (int i = 0; i < 20; ++i) head = f.Commit(t, {{1, 5000 + static_cast<uint64_t>(i)}}, kPages);
  CheckFormat2States(f.store(), 1, last);
  f.clock().Advance(3600ll * 1000000);
  GcOptions gc;
  gc.restore_window_micros = 0;
  auto r = f.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->segments_rewritten >= 7);
  auto check_head = [&] {
    for (PageNo p = 1; p <= kPages; ++p) {
      std::string out;
      REQUIRE(f.store().ReadPageAt(head, p, &out).ok());
      CHECK(out == PageData(p == 1 ? 5019 : SeedAt(last, p)));
    }
  };
  check_head();
  f.Reopen();
  check_head();
  CHECK(f.store().Damage().empty());
  int current = 0;
  auto children = f.env().GetChildren(f.path());
  REQUIRE(children.ok());
  for (const std::string& c : *children) {
    uint64_t n = 0;
    if (!internal::ParseSegmentFileName(c, &n)) continue;
    const uint32_t v = HeaderVersion(f.env(), JoinPath(f.path(), c));
    CHECK(v >= 3);
    current += v == internal::kFormatVersion ? 1 : 0;
  }
  CHECK(current >= 2);
}

TEST_CASE("A run's record list packs 8 bytes per record and reads back every entry") {
  // Close LSNs and times pack; a gap of 2^31 LSNs or of more than 71 minutes
  // within a chunk makes that chunk hold its entries whole; entries pushed
  // out of order (recovery: markers first) are sorted back.
  std::vector<RunEntry> want;
  Lsn lsn = 1;
  int64_t time = 1'000'000;
  for (int i = 0; i < 2000; ++i) {
    lsn += (i == 700) ? (3ull << 31) : 1 + i % 3;
    time += (i == 1300) ? 5'000'000'000ll : i % 5;
    want.push_back(RunEntry{lsn, time, i % 7 != 0});
  }
  RunList packed;
  for (const RunEntry& e : want) packed.push_back(e);
  CHECK(packed.MemoryBytes() < 2000 * 10 + 2 * 256 * 16);
  RunList shuffled;
  for (size_t i = 1; i < want.size(); i += 2) shuffled.push_back(want[i]);
  for (size_t i = 0; i < want.size(); i += 2) shuffled.push_back(want[i]);
  shuffled.SortIfNeeded();
  for (const RunList* l : {&packed, &shuffled}) {
    REQUIRE(l->size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const RunEntry e = (*l)[i];
      REQUIRE(e.lsn == want[i].lsn);
      REQUIRE(e.time_micros == want[i].time_micros);
      REQUIRE(e.live == want[i].live);
    }
    CHECK(l->LowerBound(want[900].lsn) == 900);
    CHECK(l->UpperBound(want[900].lsn) == 901);
    CHECK(l->UpperBoundTime(want[1500].time_micros, l->size()) >= 1501);
  }
}

// A chain of n runs, each based on the one before (as rollbacks make them):
// the path map of run r holds r + 1 runs.
std::vector<internal::Run> RunChain(uint32_t n) {
  std::vector<internal::Run> runs(n);
  for (uint32_t r = 0; r < n; ++r) {
    runs[r].exists = true;
    runs[r].start = 10 * (r + 1);
    runs[r].base = r == 0 ? 0 : 10 * r + 5;
    runs[r].base_run = r == 0 ? internal::kNoRun : r - 1;
  }
  return runs;
}

void CheckChainMap(const internal::PathMap& m, const std::vector<internal::Run>& runs,
                   uint32_t r) {
  REQUIRE(m.size() == r + 1);
  CHECK(m.Cutoff(r) == internal::kMaxLsn);
  CHECK(m.Cutoff(r - 1) == 10 * r + 5);
  CHECK(m.Cutoff(0) == 15);
  CHECK(m.Cutoff(r + 1) == 0);
  CHECK(m.CutoffByStart(runs[r].start) == internal::kMaxLsn);
  CHECK(m.CutoffByStart(runs[r - 1].start) == 10 * r + 5);
  CHECK(m.CutoffByStart(runs[r].start + 1) == 0);
}

TEST_CASE("Path maps of a rollback chain share their chunks and live in the store's cache") {
  const auto runs = RunChain(2000);
  auto cache = Cache::Create(8 << 20, 0);
  internal::PathCache paths(cache);
  // The first map of the chain is walked: it holds its 1,000 runs alone.
  auto walked = paths.Get(runs, 999);
  CheckChainMap(*walked, runs, 999);
  CHECK(walked->MemoryBytes() >= 1000 * 2 * 16);
  // Each later run's map is made from the one before (a rollback's new run is
  // read after its base): it holds a few hundred bytes of its own (the chunk
  // directory and the chunks its run changed), not its whole path.
  std::shared_ptr<const internal::PathMap> last;
  for (uint32_t r = 1000; r < 2000; ++r) {
    last = paths.Get(runs, r);
    CHECK(last->MemoryBytes() < 8 * 1024);
  }
  CheckChainMap(*last, runs, 1999);
  CHECK(last->runs().Entries() == internal::BuildPathMap(runs, 1999)->runs().Entries());
  CHECK(last->by_start().Entries() == internal::BuildPathMap(runs, 1999)->by_start().Entries());
  // The cache holds them all, charged what each holds alone: about one
  // walked path and a thousand small maps, where copies would take 1,000 x
  // 1,500 runs x 32 bytes (48 MB).
  const CacheStats st = paths.Stats();
  CHECK(st.entries == 1001);
  CHECK(st.bytes < walked->MemoryBytes() + 1000 * 8 * 1024);
  CHECK(cache->Stats().bytes == st.bytes);
  // A hit is the same map.
  CHECK(paths.Get(runs, 1500) == paths.Get(runs, 1500));
  // After Clear (GC renumbered runs) no earlier map is returned.
  auto before = paths.Get(runs, 1999);
  paths.Clear();
  auto after = paths.Get(runs, 1999);
  CHECK(after != before);
  CheckChainMap(*after, runs, 1999);
}

TEST_CASE("Path maps too large for the cache are still right, and the last one is kept") {
  const auto runs = RunChain(1000);
  internal::PathCache paths(Cache::Create(1024, 0));  // holds no map
  auto a = paths.Get(runs, 999);
  CheckChainMap(*a, runs, 999);
  CHECK(paths.Stats().entries == 0);
  CHECK(paths.Get(runs, 999) == a);  // the last map made is held here
  CHECK(paths.MemoryBytes() == a->MemoryBytes());
  for (uint32_t r : {500u, 998u, 10u, 999u}) CheckChainMap(*paths.Get(runs, r), runs, r);
}

TEST_CASE("A cutoff map matches a sorted map through inserts in any order and updates") {
  std::mt19937 rng(77);
  for (int round = 0; round < 20; ++round) {
    std::map<uint32_t, Lsn> want;
    internal::CutoffMap<uint32_t> got;
    std::vector<internal::CutoffMap<uint32_t>> derived;  // earlier versions stay as they were
    std::vector<std::map<uint32_t, Lsn>> derived_want;
    const int n = 1 + static_cast<int>(rng() % 2000);
    for (int i = 0; i < n; ++i) {
      // Appends (a new run), updates and inserts anywhere (chunks split).
      uint32_t key = rng() % 3 == 0 ? static_cast<uint32_t>(want.size() * 7 + 100000)
                                    : static_cast<uint32_t>(rng() % 5000);
      Lsn cutoff = 1 + rng() % 1000000;
      got.Set(key, cutoff);
      want[key] = cutoff;
      if (rng() % 200 == 0) {
        derived.push_back(got.Derive());
        derived_want.push_back(want);
      }
    }
    REQUIRE(got.size() == want.size());
    std::vector<std::pair<uint32_t, Lsn>> flat(want.begin(), want.end());
    REQUIRE(got.Entries() == flat);
    for (uint32_t k = 0; k < 5100; k += 7) {
      auto it = want.find(k);
      REQUIRE(got.Find(k) == (it == want.end() ? 0 : it->second));
    }
    for (size_t d = 0; d < derived.size(); ++d) {
      std::vector<std::pair<uint32_t, Lsn>> then(derived_want[d].begin(), derived_want[d].end());
      REQUIRE(derived[d].Entries() == then);
    }
    // Built from sorted entries: the same.
    REQUIRE(internal::CutoffMap<uint32_t>(flat).Entries() == flat);
  }
}

TEST_CASE("A path map made from its base run's map equals the one walked from the runs") {
  // A run tree as branches and rollbacks make it: each run based on an
  // earlier one (a rollback's: the run before it, mostly), at an LSN at or
  // above that run's start, and started at an LSN above every earlier one.
  std::mt19937 rng(4242);
  std::vector<internal::Run> runs(3000);
  for (uint32_t r = 0; r < runs.size(); ++r) {
    runs[r].exists = true;
    runs[r].start = 10 * (r + 1);
    if (r == 0 || rng() % 50 == 0) continue;  // a new root: a project's first branch
    uint32_t b = rng() % 4 != 0 ? r - 1 : static_cast<uint32_t>(rng() % r);
    runs[r].base_run = b;
    runs[r].base = runs[b].start + rng() % (10 * (r - b));
  }
  // Reads go to a run after its base's map was cached (the extension) or
  // to any run (the walk); a small cache evicts along the way.
  internal::PathCache cache(Cache::Create(256 << 10, 0));
  uint32_t next = 0;  // runs in the order they were made
  for (int i = 0; i < 20000; ++i) {
    uint32_t r = static_cast<uint32_t>(rng() % runs.size());
    if (rng() % 2 == 0) r = next++ % runs.size();
    auto got = cache.Get(runs, r);
    auto want = internal::BuildPathMap(runs, r);
    REQUIRE(got->runs().Entries() == want->runs().Entries());
    REQUIRE(got->by_start().Entries() == want->by_start().Entries());
  }
}

}  // namespace branchdb::storage::testing
