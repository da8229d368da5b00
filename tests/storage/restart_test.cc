// Restart independent of history (#15, docs/storage-format.md "Recovery"):
// Open reads no record index block (the runs' record lists of the sealed
// segments MANIFEST lists are completed on first need), and with
// PageStoreOptions::seal_on_close a clean close leaves no tail to scan. Every
// answer is checked against the store as its segments' footers describe it
// (MANIFEST deleted: Open reads every record list), or against the answers
// before the restart.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/crc32c.h"
#include "storage/log_format.h"
#include "tests/storage/store_test_util.h"
#include "tests/util/fault_injection_env.h"

namespace branchdb::storage::testing {
namespace {

constexpr int64_t kHour = 3600ll * 1000000;

// What walks the runs' record lists, which TakeSnapshot leaves out: each
// timeline's state at every LSN (ResolveLsn), at each record's time (LsnAt),
// what changed since its creation (ChangedPages), its payload bytes.
std::vector<std::string> Walks(PageStore& s) {
  std::vector<std::string> out;
  const Lsn last = s.LastLsn();
  auto text = [](const auto& r) {
    return r.ok() ? std::to_string(*r) : std::string(r.status().message());
  };
  for (const TimelineInfo& t : s.ListTimelines()) {
    const std::string id = std::to_string(t.id);
    for (Lsn l = 1; l <= last; ++l) {
      out.push_back(id + "@" + std::to_string(l) + "=" + text(s.ResolveLsn(t.id, l)));
    }
    auto h = s.History(t.id, 0, 1000000);
    REQUIRE(h.ok());
    for (const RecordInfo& rec : *h) {
      out.push_back(id + " at " + std::to_string(rec.time_micros) + "=" +
                    text(s.LsnAt(t.id, rec.time_micros)));
    }
    auto changed = s.ChangedPages(t.created_lsn, t.head);
    out.push_back(id + " changed " + (changed.ok() ? std::to_string(changed->size()) : "error"));
    out.push_back(id + " payloads " + std::to_string(s.PayloadBytes(t.id)));
  }
  return out;
}

// Branches, payloads, a drop and a reset over many 32 KiB segments, one
// millisecond between records.
void Build(StoreFixture& f, uint64_t seed) {
  const TimelineId main = f.Create(0, "main " + std::to_string(seed));
  for (int i = 0; i < 30; ++i) {
    f.clock().Advance(1000);
    f.Commit(main, {{static_cast<PageNo>(i % 5 + 1), seed + static_cast<uint64_t>(i)}}, 6,
             "main commit " + std::to_string(i));
  }
  const Lsn fork = *f.store().Head(main);
  const TimelineId dev = f.Create(fork, "dev");
  for (int i = 0; i < 12; ++i) {
    f.clock().Advance(1000);
    auto head = f.store().Head(dev);
    REQUIRE(head.ok());
    const std::string page = PageData(seed + 500 + static_cast<uint64_t>(i));
    REQUIRE(f.store()
                .Commit(dev, *head, {PageWrite{static_cast<PageNo>(i % 3 + 2), page}}, 6,
                        "dev " + std::to_string(i), "script " + std::to_string(i))
                .ok());
  }
  const TimelineId gone = f.Create(fork, "gone");
  f.Commit(gone, {{1, seed + 900}}, 6);
  REQUIRE(f.store().DropTimeline(gone).ok());
  REQUIRE(f.store().ResetTimeline(main, *f.store().Head(main), fork - 10, "reset").ok());
  for (int i = 0; i < 8; ++i) {
    f.clock().Advance(1000);
    f.Commit(main, {{2, seed + 700 + static_cast<uint64_t>(i)}}, 6);
  }
}

// The store as the footers describe it (MANIFEST deleted, reopened) must
// answer as `snapshot` and `walks` say.
void RequireFootersAgree(StoreFixture& f, const Snapshot& snapshot,
                         const std::vector<std::string>& walks) {
  f.Close();
  REQUIRE(f.env().DeleteFile(JoinPath(f.path(), "MANIFEST")).ok());
  f.Reopen();
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(snapshot, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
}

uint64_t SegmentCount(Env& env, const std::string& dir) {
  auto children = env.GetChildren(dir);
  REQUIRE(children.ok());
  uint64_t n = 0;
  for (const std::string& c : *children) {
    uint64_t number = 0;
    if (internal::ParseSegmentFileName(c, &number)) ++n;
  }
  return n;
}

// The highest-numbered segment file of the store in dir.
std::string NewestSegment(Env& env, const std::string& dir) {
  auto children = env.GetChildren(dir);
  REQUIRE(children.ok());
  uint64_t best = 0;
  for (const std::string& c : *children) {
    uint64_t number = 0;
    if (internal::ParseSegmentFileName(c, &number)) best = std::max(best, number);
  }
  REQUIRE(best > 0);
  return JoinPath(dir, internal::SegmentFileName(best));
}

// Counts the opens of each segment file (by its number).
class CountingEnv : public EnvWrapper {
 public:
  explicit CountingEnv(Env* target) : EnvWrapper(target) {}
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    uint64_t n = 0;
    if (internal::ParseSegmentFileName(path.substr(path.rfind('/') + 1), &n)) ++opens[n];
    return EnvWrapper::NewRandomAccessFile(path);
  }
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    ++children;
    return EnvWrapper::GetChildren(dir);
  }
  std::map<uint64_t, int> opens;
  int children = 0;  // directory listings
};

// The store's MANIFEST, decoded.
internal::Manifest ReadManifest(Env& env, const std::string& dir) {
  auto data = env.ReadFileToString(JoinPath(dir, "MANIFEST"));
  REQUIRE(data.ok());
  internal::Manifest m;
  REQUIRE(internal::DecodeStoreManifest(*data, &m).ok());
  return m;
}

void WriteManifest(Env& env, const std::string& dir, const std::string& contents) {
  auto w = env.NewWritableFile(JoinPath(dir, "MANIFEST"), Env::OpenMode::kTruncate);
  REQUIRE(w.ok());
  REQUIRE((*w)->Append(contents).ok());
  REQUIRE((*w)->Sync().ok());  // durable: a simulated power loss keeps it
  REQUIRE((*w)->Close().ok());
}

// Every page of every state, read by LSN (no walk of a run's list).
void RequirePagesAt(PageStore& s, const Snapshot& snapshot) {
  for (const auto& [lsn, pages] : snapshot.pages) {
    for (size_t p = 0; p < pages.size(); ++p) {
      std::string out;
      Status st = s.ReadPageAt(lsn, static_cast<PageNo>(p + 1), &out);
      INFO("LSN " << lsn << " page " << p + 1 << ": " << st.ToString());
      REQUIRE(st.ok());
      REQUIRE(out == pages[p]);
    }
  }
}

// Many sealed segments, two generations, a GC with compaction, a third
// generation after it.
void BuildCompacted(StoreFixture& f) {
  Build(f, 1000);
  f.clock().Advance(2 * kHour);
  Build(f, 2000);
  GcOptions gc;
  gc.restore_window_micros = kHour;
  auto r = f.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  REQUIRE(r->segments_rewritten > 0);
  Build(f, 3000);
}

// What a store with seal_on_close held after BuildCompacted (taken before its
// clean close, which seals the tail and writes MANIFEST).
struct ClosedStore {
  Snapshot before;
  std::vector<std::string> walks;
};
ClosedStore BuildCompactedAndClose(StoreFixture& f) {
  f.options().seal_on_close = true;
  f.Reopen();
  BuildCompacted(f);
  ClosedStore closed{TakeSnapshot(f.store()), Walks(f.store())};
  f.Close();
  return closed;
}

}  // namespace

TEST_CASE("After a GC and compaction, a reopened store answers every walk of history as before") {
  StoreFixture f(32 << 10);
  Build(f, 1000);
  f.clock().Advance(2 * kHour);
  Build(f, 2000);
  GcOptions gc;
  gc.restore_window_micros = kHour;  // the first build's records go, but heads
  auto r = f.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->segments_rewritten > 0);
  Build(f, 3000);
  const Snapshot before = TakeSnapshot(f.store());
  const std::vector<std::string> walks = Walks(f.store());
  f.Reopen();
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  RequireFootersAgree(f, before, walks);
}

TEST_CASE("Writes before the record lists are complete keep every answer") {
  StoreFixture f(32 << 10);
  Build(f, 1000);
  f.clock().Advance(2 * kHour);
  Build(f, 2000);
  GcOptions gc;
  gc.restore_window_micros = kHour;
  REQUIRE(f.store().Gc(gc).ok());
  const Snapshot before = TakeSnapshot(f.store());
  f.Reopen();
  // Nothing that walks a list yet: head reads, commits that roll segments
  // (each roll writes MANIFEST from the incomplete lists), a branch and a
  // reset onto old states (their bases are looked up, not walked).
  const TimelineId main = 1;
  std::string page;
  REQUIRE(f.store().ReadPage(main, 2, *f.store().Head(main), &page).ok());
  for (int i = 0; i < 12; ++i) f.Commit(main, {{3, 5000 + static_cast<uint64_t>(i)}}, 6);
  const Lsn old = before.records.rbegin()->first - 20;
  REQUIRE(before.records.count(old) == 1);
  const TimelineId branch = f.Create(old, "from an old state");
  f.Commit(branch, {{4, 6000}}, 6);
  REQUIRE(f.store().ResetTimeline(branch, *f.store().Head(branch), old, "reset").ok());
  // Reopened from the MANIFEST those rolls wrote: the lists are completed
  // from two generations of segments.
  f.Reopen();
  CHECK(f.store().Damage().empty());
  const Snapshot after = TakeSnapshot(f.store());
  const std::vector<std::string> walks = Walks(f.store());
  for (const auto& [lsn, rec] : before.records) {
    REQUIRE(after.records.count(lsn) == 1);
    CHECK(after.records.at(lsn).annotation == rec.annotation);
    CHECK(after.pages.at(lsn) == before.pages.at(lsn));
  }
  RequireFootersAgree(f, after, walks);
}

TEST_CASE("A read or DbSize below the head, first thing after Open, completes the lists") {
  StoreFixture f(32 << 10);
  Build(f, 1000);
  const TimelineId main = 1;
  const Lsn head = *f.store().Head(main);
  const Lsn below = *f.store().ResolveLsn(main, head - 3);
  REQUIRE(below < head);
  const uint32_t size = *f.store().DbSize(main, head - 3);
  std::vector<std::string> pages;
  for (PageNo p = 1; p <= size; ++p) pages.push_back(f.ReadAt(below, p));
  for (int first = 0; first < 3; ++first) {
    f.Reopen();
    std::string page;
    switch (first) {
      case 0:
        REQUIRE(f.store().ReadPage(main, 2, head - 3, &page).ok());
        CHECK(page == pages[1]);
        break;
      case 1:
        CHECK(*f.store().DbSize(main, head - 3) == size);
        break;
      default:
        CHECK(*f.store().ResolveLsn(main, head - 3) == below);
        break;
    }
    for (PageNo p = 1; p <= size; ++p) {
      REQUIRE(f.store().ReadPage(main, p, head - 3, &page).ok());
      CHECK(page == pages[p - 1]);
    }
  }
}

TEST_CASE("A GC right after Open completes the record lists first") {
  StoreFixture f(32 << 10);
  Build(f, 1000);
  f.clock().Advance(2 * kHour);
  Build(f, 2000);
  f.Reopen();
  GcOptions gc;
  gc.restore_window_micros = kHour;
  auto r = f.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->versions_removed > 0);
  const Snapshot after = TakeSnapshot(f.store());
  const std::vector<std::string> walks = Walks(f.store());
  f.Reopen();
  RequireSameSnapshot(after, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  RequireFootersAgree(f, after, walks);
}

TEST_CASE("A version-1 MANIFEST is read from the footers once and written anew") {
  StoreFixture f(32 << 10);
  Build(f, 1000);
  const Snapshot before = TakeSnapshot(f.store());
  const std::vector<std::string> walks = Walks(f.store());
  f.Close();
  // The same manifest as version 1: without the payloads by timeline.
  const std::string path = JoinPath(f.path(), "MANIFEST");
  internal::Manifest m;
  {
    auto data = f.env().ReadFileToString(path);
    REQUIRE(data.ok());
    REQUIRE(internal::DecodeStoreManifest(*data, &m).ok());
    REQUIRE(m.has_payloads);
  }
  const std::string v1 = internal::EncodeStoreManifest(m, 1);
  {
    internal::Manifest back;
    REQUIRE(internal::DecodeStoreManifest(v1, &back).ok());
    CHECK(!back.has_payloads);
  }
  auto w = f.env().NewWritableFile(path, Env::OpenMode::kTruncate);
  REQUIRE(w.ok());
  REQUIRE((*w)->Append(v1).ok());
  REQUIRE((*w)->Close().ok());
  f.Reopen();
  CHECK(f.store().Damage().empty());  // an older version is no damage
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  auto now = f.env().ReadFileToString(path);
  REQUIRE(now.ok());
  internal::Manifest rewritten;
  REQUIRE(internal::DecodeStoreManifest(*now, &rewritten).ok());
  CHECK(rewritten.has_payloads);
}

TEST_CASE("seal_on_close: a clean close leaves no tail, and a damaged seal is never trusted") {
  StoreFixture f(32 << 10);
  f.options().seal_on_close = true;
  f.Reopen();
  Build(f, 1000);
  const Snapshot before = TakeSnapshot(f.store());
  const std::vector<std::string> walks = Walks(f.store());
  f.Close();
  const std::string newest = NewestSegment(f.env(), f.path());
  auto sealed = f.env().ReadFileToString(newest);
  REQUIRE(sealed.ok());
  REQUIRE(sealed->size() > 64);
  CHECK(sealed->compare(sealed->size() - 8, 8, "BRDBFTR1") == 0);
  const uint64_t segments = SegmentCount(f.env(), f.path());

  SECTION("the next Open reads it through its indexes and starts a new segment") {
    f.Reopen();
    CHECK(f.store().Damage().empty());
    CHECK(SegmentCount(f.env(), f.path()) == segments + 1);
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    CHECK(walks == Walks(f.store()));
    f.Reopen();  // nothing written: nothing sealed, no new segment
    CHECK(SegmentCount(f.env(), f.path()) == segments + 1);
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
  }
  SECTION("a checksum failure in its record index: its footer serves, nothing is cut") {
    // The page index tail (just before the trailer) gives the page index's
    // offset; the record index tail lies just before it.
    const uint64_t index_offset =
        coding::DecodeFixed64(sealed->data() + sealed->size() - 32 - 24);
    std::string damaged = *sealed;
    damaged[index_offset - 24 + 3] ^= 0x5A;
    auto w = f.env().NewWritableFile(newest, Env::OpenMode::kTruncate);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(damaged).ok());
    REQUIRE((*w)->Close().ok());
    f.Reopen();
    REQUIRE(f.store().Damage().size() == 1);
    CHECK(f.store().Damage()[0].find("record index tail") != std::string::npos);
    CHECK(*f.env().GetFileSize(newest) == sealed->size());
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    CHECK(walks == Walks(f.store()));
  }
  SECTION("bytes after it (not the size MANIFEST says): scanned as a tail, records kept") {
    auto w = f.env().NewWritableFile(newest, Env::OpenMode::kAppend);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(std::string(100, '\x17')).ok());
    REQUIRE((*w)->Close().ok());
    f.Reopen();
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    CHECK(walks == Walks(f.store()));
  }
}

TEST_CASE("seal_on_close: a fault at any file operation of the close loses nothing") {
  uint64_t n = 1;
  for (;; ++n) {
    ::branchdb::testing::FaultInjectionEnv fault;
    StoreFixture f(32 << 10, &fault);
    f.options().seal_on_close = true;
    f.Reopen();
    const TimelineId t = f.Create(0, "main");
    for (int i = 0; i < 5; ++i) {
      f.Commit(t, {{static_cast<PageNo>(i % 3 + 1), 10 + static_cast<uint64_t>(i)}}, 4, "c");
    }
    const Snapshot before = TakeSnapshot(f.store());
    fault.FailNth(n, ::branchdb::testing::FaultType::kIOError);
    f.Close();
    const bool fired = fault.FaultFired();
    INFO("fault #" << n << ": " << (fired ? fault.FiredOpDescription() : "none"));
    fault.ClearFault();
    REQUIRE(fault.DropUnsyncedData().ok());  // and a power loss right after
    f.Reopen();
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    f.Commit(t, {{1, 99}}, 4);  // the store goes on
    if (!fired) break;
  }
  CHECK(n > 5);  // the seal's appends and syncs, MANIFEST's write, sync and rename
}

}  // namespace branchdb::storage::testing

namespace branchdb::storage::testing {
namespace {

TEST_CASE("Open opens no sealed segment MANIFEST describes; its first use opens it, once") {
  CountingEnv counting(Env::Default());
  StoreFixture f(32 << 10, &counting);
  const auto [before, walks] = BuildCompactedAndClose(f);
  const internal::Manifest m = ReadManifest(f.env(), f.path());
  CHECK(m.version == internal::kStoreManifestVersion);
  REQUIRE(m.segments.size() > 10);
  bool compacted = false;
  for (const internal::ManifestSegment& seg : m.segments) {
    CHECK(seg.described);
    compacted = compacted || (seg.desc.flags & internal::kSegmentFlagCompacted) != 0;
  }
  CHECK(compacted);

  counting.opens.clear();
  f.Reopen();
  // Only the segments of the live timelines' heads (Open needs their
  // records' sizes), at most: one per timeline.
  size_t opened = 0;
  for (const internal::ManifestSegment& seg : m.segments) opened += counting.opens[seg.number];
  CHECK(opened <= f.store().ListTimelines().size());
  // Reads by LSN load what they need, each segment once.
  RequirePagesAt(f.store(), before);
  for (const internal::ManifestSegment& seg : m.segments) {
    INFO(internal::SegmentFileName(seg.number));
    CHECK(counting.opens[seg.number] <= 1);
  }
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  for (const internal::ManifestSegment& seg : m.segments) CHECK(counting.opens[seg.number] <= 1);
  RequireFootersAgree(f, before, walks);
}

TEST_CASE("A MANIFEST entry that disagrees with its segment is found on first use; never a wrong page") {
  StoreFixture f(32 << 10);
  const auto [before, walks] = BuildCompactedAndClose(f);
  internal::Manifest m = ReadManifest(f.env(), f.path());
  REQUIRE(m.segments.size() > 4);
  // A segment in the middle, whose versions and records reads need.
  internal::ManifestSegment* victim = nullptr;
  for (internal::ManifestSegment& seg : m.segments) {
    if (seg.desc.versions > 0 && seg.desc.records > 0 && &seg != &m.segments.back()) victim = &seg;
    if (victim != nullptr && &seg - &m.segments.front() >= 2) break;
  }
  REQUIRE(victim != nullptr);
  const std::string name = internal::SegmentFileName(victim->number);
  const std::string kind = GENERATE(std::string("size"), std::string("footer crc"),
                                    std::string("record LSN range"), std::string("versions"),
                                    std::string("index offset"));
  INFO(kind << " of " << name);
  if (kind == "size") victim->size += 4096;
  if (kind == "footer crc") victim->desc.footer_crc ^= 0x10;
  if (kind == "record LSN range") victim->desc.rec_max_lsn += 1;
  if (kind == "versions") victim->desc.versions += 1;
  if (kind == "index offset") victim->desc.index_offset -= 8;
  WriteManifest(f.env(), f.path(), internal::EncodeStoreManifest(m));
  f.Reopen();
  RequirePagesAt(f.store(), before);
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  const std::vector<std::string> damage = f.store().Damage();
  REQUIRE(damage.size() == 1);
  CHECK(damage[0].rfind(name + ": MANIFEST describes it", 0) == 0);
  // The file is as it was; the next MANIFEST written describes it rightly.
  f.Commit(1, {{1, 77}}, 6);
  f.Close();
  f.Reopen();
  CHECK(f.store().Damage().empty());
}

TEST_CASE("A described segment whose own index is damaged is read from its records on first use") {
  StoreFixture f(32 << 10);
  BuildCompacted(f);
  const Snapshot before = TakeSnapshot(f.store());
  const std::vector<std::string> walks = Walks(f.store());
  f.Close();
  const internal::Manifest m = ReadManifest(f.env(), f.path());
  REQUIRE(m.segments.size() > 4);
  const internal::ManifestSegment& victim = m.segments[m.segments.size() / 2];
  REQUIRE(victim.described);
  const std::string path = JoinPath(f.path(), internal::SegmentFileName(victim.number));
  auto data = f.env().ReadFileToString(path);
  REQUIRE(data.ok());
  // A byte of the page index's directory (just before its 24-byte tail).
  std::string damaged = *data;
  damaged[damaged.size() - 32 - 24 - 10] ^= 0x5A;
  {
    auto w = f.env().NewWritableFile(path, Env::OpenMode::kTruncate);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(damaged).ok());
    REQUIRE((*w)->Close().ok());
  }
  f.Reopen();
  RequirePagesAt(f.store(), before);
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  const std::vector<std::string> damage = f.store().Damage();
  REQUIRE(damage.size() == 1);
  CHECK(damage[0].rfind(internal::SegmentFileName(victim.number) + ": ", 0) == 0);
  CHECK(damage[0].find("rebuilt in memory") != std::string::npos);
  CHECK(*f.env().GetFileSize(path) == data->size());  // nothing cut
}

TEST_CASE("A described segment absent at Open: Open needs it not, its reads fail until it is back") {
  StoreFixture f(32 << 10);
  const Snapshot before = BuildCompactedAndClose(f).before;
  const internal::Manifest m = ReadManifest(f.env(), f.path());
  REQUIRE(m.segments.size() > 4);
  // One that holds no timeline's head (Open looks the heads up).
  const internal::ManifestSegment* found = nullptr;
  for (const internal::ManifestSegment& seg : m.segments) {
    bool head = false;
    for (const TimelineInfo& t : before.timelines) {
      head = head || (t.head >= seg.desc.rec_min_lsn && t.head <= seg.desc.rec_max_lsn);
    }
    if (!head && seg.described && seg.desc.versions > 0) found = &seg;
  }
  REQUIRE(found != nullptr);
  const internal::ManifestSegment& victim = *found;
  // Away, as a store that keeps sealed segments in object storage would
  // have it (the Env would fetch it on its first open).
  const std::string path = JoinPath(f.path(), internal::SegmentFileName(victim.number));
  REQUIRE(f.env().RenameFile(path, path + ".away").ok());
  f.Reopen();
  size_t failed = 0;
  for (const auto& [lsn, pages] : before.pages) {
    for (size_t p = 0; p < pages.size(); ++p) {
      std::string out;
      Status st = f.store().ReadPageAt(lsn, static_cast<PageNo>(p + 1), &out);
      if (!st.ok()) {
        ++failed;
        continue;
      }
      REQUIRE(out == pages[p]);  // never a wrong page
    }
  }
  CHECK(failed > 0);
  CHECK(!f.store().History(1, 0, 1000000).ok());  // a walk needs every segment
  REQUIRE(f.env().RenameFile(path + ".away", path).ok());
  RequirePagesAt(f.store(), before);
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(f.store().Damage().empty());
}

TEST_CASE("A version-2 MANIFEST is used once and written anew as the current version") {
  StoreFixture f(32 << 10);
  BuildCompacted(f);
  const Snapshot before = TakeSnapshot(f.store());
  const std::vector<std::string> walks = Walks(f.store());
  f.Close();
  internal::Manifest m = ReadManifest(f.env(), f.path());
  const std::string v2 = internal::EncodeStoreManifest(m, 2);
  {
    internal::Manifest back;
    REQUIRE(internal::DecodeStoreManifest(v2, &back).ok());
    CHECK(back.version == 2);
    CHECK(back.has_payloads);
    for (const internal::ManifestSegment& seg : back.segments) CHECK(!seg.described);
  }
  WriteManifest(f.env(), f.path(), v2);
  f.Reopen();
  CHECK(f.store().Damage().empty());  // an older version is no damage
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  const internal::Manifest rewritten = ReadManifest(f.env(), f.path());
  CHECK(rewritten.version == internal::kStoreManifestVersion);
  CHECK(rewritten.segments == m.segments);
}

TEST_CASE("Upgrading a MANIFEST: a fault at any file operation of that Open loses nothing") {
  const uint32_t from = GENERATE(2u, 3u);
  INFO("from version " << from);
  uint64_t n = 1;
  for (;; ++n) {
    ::branchdb::testing::FaultInjectionEnv fault;
    StoreFixture f(32 << 10, &fault);
    const TimelineId t = f.Create(0, "main");
    for (int i = 0; i < 40; ++i) {
      f.Commit(t, {{static_cast<PageNo>(i % 3 + 1), 10 + static_cast<uint64_t>(i)}}, 4, "c");
    }
    const Snapshot before = TakeSnapshot(f.store());
    f.Close();
    internal::Manifest m = ReadManifest(f.env(), f.path());
    REQUIRE(m.segments.size() > 3);
    WriteManifest(f.env(), f.path(), internal::EncodeStoreManifest(m, from));
    fault.FailNth(n, ::branchdb::testing::FaultType::kIOError);
    { auto s = PageStore::Open(f.options(), f.path()); }  // fails or not, then closes
    const bool fired = fault.FaultFired();
    INFO("fault #" << n << ": " << (fired ? fault.FiredOpDescription() : "none"));
    fault.ClearFault();
    REQUIRE(fault.DropUnsyncedData().ok());  // and a power loss right after
    f.Reopen();
    CHECK(f.store().Damage().empty());
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    f.Close();
    f.Reopen();  // from whichever MANIFEST is on disk now
    RequireSameSnapshot(before, TakeSnapshot(f.store()));
    f.Close();
    CHECK(ReadManifest(f.env(), f.path()).version == internal::kStoreManifestVersion);
    if (!fired) break;
  }
  CHECK(n > 5);
}

TEST_CASE("A version-3 MANIFEST is used once (the directory listed) and written anew as version 4") {
  CountingEnv counting(Env::Default());
  StoreFixture f(32 << 10, &counting);
  const auto [before, walks] = BuildCompactedAndClose(f);
  const internal::Manifest m = ReadManifest(f.env(), f.path());
  const std::string v3 = internal::EncodeStoreManifest(m, 3);
  {
    internal::Manifest back;
    REQUIRE(internal::DecodeStoreManifest(v3, &back).ok());
    CHECK(back.version == 3);
    CHECK(back.segments.size() == m.segments.size());
    CHECK(back.tail_segment == 0);
  }
  WriteManifest(f.env(), f.path(), v3);
  f.Reopen();
  CHECK(f.store().Damage().empty());  // an older version is no damage
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  f.Close();
  const internal::Manifest rewritten = ReadManifest(f.env(), f.path());
  CHECK(rewritten.version == internal::kStoreManifestVersion);
  CHECK(rewritten.segments == m.segments);
  // From version 4 on, Open lists no directory.
  counting.children = 0;
  f.Reopen();
  CHECK(counting.children == 0);
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
}

TEST_CASE("A superseded segment left by a failed delete: MANIFEST lists it, Open deletes it unread") {
  ::branchdb::testing::FaultInjectionEnv fault;
  CountingEnv counting(&fault);
  StoreFixture f(32 << 10, &counting);
  Build(f, 1000);
  f.clock().Advance(2 * kHour);
  Build(f, 2000);
  // Compaction's delete of a superseded segment fails (the output is
  // durable and in use): the GC fails, the store goes on.
  GcOptions gc;
  gc.restore_window_micros = kHour;
  internal::Manifest m;
  const internal::ManifestSegment* output = nullptr;
  for (uint64_t n = 1; output == nullptr; ++n) {
    REQUIRE(n < 50);
    fault.FailNth(n, ::branchdb::testing::FaultType::kIOError, false,
                  ::branchdb::testing::kOpDelete);
    auto r = f.store().Gc(gc);
    const bool fired = fault.FaultFired();
    fault.ClearFault();
    REQUIRE(fired);
    REQUIRE(!r.ok());
    // Commits that roll segments write MANIFEST (current: it builds on the
    // GCSTATE this GC wrote).
    Build(f, 3000 + n);
    f.Close();
    m = ReadManifest(f.env(), f.path());
    for (const internal::ManifestSegment& seg : m.segments) {
      if (!seg.supersedes.empty()) output = &seg;
    }
    f.Reopen();
  }
  // The Open that just ran deleted the leftover; do it again with a copy.
  const uint64_t leftover = output->supersedes.front();
  const std::string path = JoinPath(f.path(), internal::SegmentFileName(leftover));
  CHECK(!f.env().FileExists(path));
  const Snapshot before = TakeSnapshot(f.store());
  const std::vector<std::string> walks = Walks(f.store());
  f.Close();
  // Put a leftover back (a segment file of the same store, with records that
  // loading it would count twice) and the MANIFEST that lists it.
  auto copy = f.env().ReadFileToString(JoinPath(f.path(), internal::SegmentFileName(output->number)));
  REQUIRE(copy.ok());
  WriteManifest(f.env(), f.path(), internal::EncodeStoreManifest(m));
  {
    auto w = f.env().NewWritableFile(path, Env::OpenMode::kTruncate);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(*copy).ok());
    REQUIRE((*w)->Close().ok());
  }
  counting.opens.clear();
  counting.children = 0;
  f.Reopen();
  CHECK(counting.children == 0);
  CHECK(counting.opens[leftover] == 0);
  CHECK(!f.env().FileExists(path));
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  f.Close();
  for (const internal::ManifestSegment& seg : ReadManifest(f.env(), f.path()).segments) {
    CHECK(seg.supersedes.empty());  // written anew without it
  }
  RequireFootersAgree(f, before, walks);
}

TEST_CASE("Without a listing: segments started after MANIFEST are probed, *.tmp files wait for GC") {
  CountingEnv counting(Env::Default());
  StoreFixture f(32 << 10, &counting);
  Build(f, 1000);
  f.Close();
  const std::string manifest = JoinPath(f.path(), "MANIFEST");
  auto old = f.env().ReadFileToString(manifest);
  REQUIRE(old.ok());
  f.Reopen();
  // Many segments started (and sealed) after that MANIFEST; a crash would
  // leave them unlisted behind the old one.
  Build(f, 2000);
  const Snapshot before = TakeSnapshot(f.store());
  const std::vector<std::string> walks = Walks(f.store());
  f.Close();
  REQUIRE(ReadManifest(f.env(), f.path()).segments.size() >
          [&] { internal::Manifest o; REQUIRE(internal::DecodeStoreManifest(*old, &o).ok());
                return o.segments.size() + 3; }());
  WriteManifest(f.env(), f.path(), *old);
  // Leftovers of an interrupted compaction and manifest write.
  const std::string tmp_segment = JoinPath(f.path(), internal::SegmentFileName(999) + ".tmp");
  const std::string tmp_manifest = manifest + ".tmp";
  for (const std::string& p : {tmp_segment, tmp_manifest}) {
    auto w = f.env().NewWritableFile(p, Env::OpenMode::kTruncate);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append("partial").ok());
    REQUIRE((*w)->Close().ok());
  }
  counting.children = 0;
  f.Reopen();
  CHECK(counting.children == 0);
  CHECK(f.store().Damage().empty());
  RequireSameSnapshot(before, TakeSnapshot(f.store()));
  CHECK(walks == Walks(f.store()));
  CHECK(f.env().FileExists(tmp_segment));
  f.Commit(1, {{1, 4242}}, 6);
  GcOptions gc;
  gc.restore_window_micros = 1000 * kHour;
  REQUIRE(f.store().Gc(gc).ok());
  CHECK(!f.env().FileExists(tmp_segment));
  CHECK(!f.env().FileExists(tmp_manifest));
  f.Reopen();
  CHECK(f.store().Damage().empty());
}

}  // namespace
}  // namespace branchdb::storage::testing
