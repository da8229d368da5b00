// Tests of garbage collection, compaction and space accounting.
#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <tuple>
#include <thread>
#include <utility>

#include "storage/log_format.h"
#include "tests/storage/store_test_util.h"
#include "tests/util/fault_injection_env.h"

namespace branchdb::storage::testing {
namespace {

constexpr int64_t kHour = 3600ll * 1000000;

GcOptions Window(int64_t micros, std::vector<Lsn> pins = {}) {
  GcOptions o;
  o.restore_window_micros = micros;
  o.pins = std::move(pins);
  return o;
}

// A GC that must succeed (the test stops here when it does not).
GcStats RunGc(StoreFixture& f, const GcOptions& o) {
  auto r = f.store().Gc(o);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

TEST_CASE("GC removes unreachable versions and returns disk space") {
  StoreFixture f(32 << 10);
  TimelineId t = f.Create(0);
  std::vector<Lsn> lsns;
  for (int i = 1; i <= 40; ++i) {
    lsns.push_back(f.Commit(t, {{1, static_cast<uint64_t>(i)}, {2, 1000u + i}, {3, 7}}, 3));
  }
  uint64_t before = f.store().DiskBytes();
  f.clock().Advance(kHour);
  auto stats = RunGc(f, Window(0));
  CHECK(stats.versions_removed >= 2 * 39);
  CHECK(stats.segments_rewritten > 0);
  CHECK(stats.bytes_reclaimed > 0);
  uint64_t after = f.store().DiskBytes();
  CHECK(after < before / 4);
  Lsn head = lsns.back();
  auto check = [&] {
    CHECK(f.ReadAt(head, 1) == PageData(40));
    CHECK(f.ReadAt(head, 2) == PageData(1040));
    CHECK(f.ReadAt(head, 3) == PageData(7));
    std::string out;
    CHECK(f.store().ReadPageAt(lsns[10], 1, &out).IsNotFound());
    CHECK(f.store().GetRecord(lsns[10]).status().IsNotFound());
    CHECK(f.store().ResolveLsn(t, lsns[10]).status().reason() == "lsn_not_found");
    CHECK(f.store().CreateTimeline(lsns[10], "").status().IsNotFound());
    auto h = f.store().History(t, 0, 100);
    REQUIRE(h.ok());
    REQUIRE(h->size() == 1);
    CHECK(h->at(0).lsn == head);
  };
  check();
  f.Reopen();
  check();
  CHECK(f.store().DiskBytes() == after);
  // The store keeps working, and a second GC after reopening is consistent.
  Lsn next = f.Commit(t, {{1, 99}}, 3);
  f.clock().Advance(kHour);
  RunGc(f, Window(0));
  f.Reopen();
  CHECK(f.ReadAt(next, 1) == PageData(99));
  CHECK(f.ReadAt(next, 3) == PageData(7));
  CHECK(f.store().GetRecord(head).status().IsNotFound());
}

TEST_CASE("GC keeps every state inside the restore window") {
  StoreFixture f(16 << 10);
  TimelineId t = f.Create(0);
  int64_t t0 = f.clock().NowMicros();
  std::vector<Lsn> lsns;
  for (int i = 0; i < 10; ++i) {
    f.clock().Set(t0 + (i + 1) * kHour);
    lsns.push_back(f.Commit(t, {{1, static_cast<uint64_t>(i + 1)}}, 1));
  }
  f.clock().Set(t0 + 12 * kHour);
  RunGc(f, Window(static_cast<int64_t>(5.5 * kHour)));  // keeps records at >= t0 + 6.5h
  auto check = [&] {
    for (int i = 0; i < 10; ++i) {
      std::string out;
      Status s = f.store().ReadPageAt(lsns[i], 1, &out);
      if (i + 1 >= 7) {
        REQUIRE(s.ok());
        CHECK(out == PageData(i + 1));
      } else {
        CHECK(s.IsNotFound());
      }
    }
    CHECK(*f.store().LsnAt(t, t0 + 8 * kHour) == lsns[7]);
    CHECK(f.store().LsnAt(t, t0 + 3 * kHour).status().IsNotFound());
    CHECK(f.store().History(t, 0, 100)->size() == 4);
  };
  check();
  f.Reopen();
  check();
}

TEST_CASE("Pins keep old states readable") {
  StoreFixture f(16 << 10);
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 1}, {2, 2}}, 2);
  Lsn l2 = f.Commit(t, {{1, 3}}, 2);
  Lsn l3 = f.Commit(t, {{2, 4}}, 2);
  Lsn l4 = f.Commit(t, {{1, 5}, {2, 6}}, 2);
  f.clock().Advance(kHour);
  RunGc(f, Window(0, {l2}));
  auto check = [&] {
    CHECK(f.ReadAt(l2, 1) == PageData(3));
    CHECK(f.ReadAt(l2, 2) == PageData(2));
    CHECK(f.ReadAt(l4, 1) == PageData(5));
    std::string out;
    CHECK(f.store().ReadPageAt(l1, 1, &out).IsNotFound());
    CHECK(f.store().ReadPageAt(l3, 1, &out).IsNotFound());
    // A pinned state is a valid base.
    CHECK(*f.store().ResolveLsn(t, l2) == l2);
    CHECK(f.store().ResolveLsn(t, l3).status().IsNotFound());
  };
  check();
  f.Reopen();
  check();
  TimelineId c = f.Create(l2);
  CHECK(f.ReadAt(*f.store().Head(c), 2) == PageData(2));
}

TEST_CASE("A dropped timeline's versions vanish unless another history needs them") {
  StoreFixture f(16 << 10);
  TimelineId parent = f.Create(0);
  Lsn p1 = f.Commit(parent, {{1, 1}, {2, 2}, {3, 3}}, 3);
  TimelineId child = f.Create(p1);
  Lsn c1 = f.Commit(child, {{1, 10}}, 3);
  TimelineId scratch = f.Create(p1);
  Lsn s1 = f.Commit(scratch, {{2, 20}, {4, 40}}, 4);
  Lsn p2 = f.Commit(parent, {{2, 5}, {3, 6}}, 3);
  REQUIRE(f.store().DropTimeline(parent).ok());
  REQUIRE(f.store().DropTimeline(scratch).ok());
  f.clock().Advance(kHour);
  auto stats = RunGc(f, Window(0));
  auto check = [&] {
    CHECK(f.ReadAt(c1, 1) == PageData(10));
    CHECK(f.ReadAt(c1, 2) == PageData(2));
    CHECK(f.ReadAt(c1, 3) == PageData(3));
    std::string out;
    CHECK(f.store().ReadPageAt(s1, 2, &out).IsNotFound());
    CHECK(f.store().ReadPageAt(p2, 2, &out).IsNotFound());
    CHECK(f.store().ReadPageAt(p1, 2, &out).IsNotFound());
    CHECK(f.store().ListTimelines().size() == 1);
    // The child's history still walks into the (now collected) base.
    auto h = f.store().History(child, 0, 10);
    REQUIRE(h.ok());
    CHECK(h->size() == 1);
    auto u = f.store().Usage(child);
    REQUIRE(u.ok());
    CHECK(u->exclusive_bytes == 3 * kPageSize);  // its page 1 and the base's pages 2, 3
    CHECK(u->shared_bytes == 0);
  };
  // Scratch's two versions, parent's p2 (two) and parent's page 1 at p1 go.
  CHECK(stats.versions_removed == 5);
  check();
  f.Reopen();
  check();
  TimelineId next = f.Create(0);
  CHECK(next > scratch);
}

TEST_CASE("ChangedPages stays a superset across collected states") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 1}, {2, 2}, {3, 3}}, 3);
  f.Commit(t, {{2, 4}}, 3);
  f.Commit(t, {{3, 5}}, 3);
  Lsn l4 = f.Commit(t, {{1, 6}}, 3);
  f.clock().Advance(kHour);
  RunGc(f, Window(0, {l1}));
  CHECK(f.store().GetRecord(l1 + 1).status().IsNotFound());
  auto d = f.store().ChangedPages(l1, l4);
  REQUIRE(d.ok());
  CHECK(*d == std::vector<PageNo>{1, 2, 3});
  f.Reopen();
  CHECK(*f.store().ChangedPages(l4, l1) == std::vector<PageNo>{1, 2, 3});
}

TEST_CASE("Usage splits a timeline's bytes into exclusive and shared") {
  StoreFixture f;
  TimelineId a = f.Create(0);
  Lsn a1 = f.Commit(a, {{1, 1}, {2, 2}, {3, 3}}, 3);
  TimelineId b = f.Create(a1);
  f.Commit(b, {{1, 4}, {4, 5}}, 4);
  f.Commit(a, {{3, 6}}, 3);
  auto ua = f.store().Usage(a);
  REQUIRE(ua.ok());
  CHECK(ua->shared_bytes == 3 * kPageSize);
  CHECK(ua->exclusive_bytes == 1 * kPageSize);
  CHECK(ua->logical_bytes == 3 * kPageSize);
  auto ub = f.store().Usage(b);
  REQUIRE(ub.ok());
  CHECK(ub->shared_bytes == 3 * kPageSize);
  CHECK(ub->exclusive_bytes == 2 * kPageSize);
  CHECK(ub->logical_bytes == 4 * kPageSize);
  CHECK(f.store().Usage(99).status().IsNotFound());
}

// Usage answers from a cache between the changes that move versions between
// exclusive and shared; after every step, what it answers must equal a fresh
// computation (a reopened store starts with an empty cache).
TEST_CASE("Usage's cached answers equal a fresh computation after every kind of change") {
  StoreFixture f(16 << 10);  // small segments: versions in on-disk indexes too
  auto usage_of_all = [&f] {
    std::map<TimelineId, std::tuple<uint64_t, uint64_t, uint64_t>> out;
    for (const TimelineInfo& t : f.store().ListTimelines()) {
      auto u = f.store().Usage(t.id);
      INFO(u.status().ToString());
      REQUIRE(u.ok());
      out[t.id] = {u->exclusive_bytes, u->shared_bytes, u->logical_bytes};
    }
    return out;
  };
  TimelineId a = f.Create(0);
  TimelineId b = 0;
  TimelineId c = 0;
  Lsn a1 = 0;
  const std::vector<std::function<void()>> steps = {
      [&] { a1 = f.Commit(a, {{1, 1}, {2, 2}, {3, 3}}, 3); },
      [&] { f.Commit(a, {{2, 4}}, 3); },
      [&] { b = f.Create(a1); },
      [&] { f.Commit(b, {{1, 5}, {4, 6}}, 4); },
      [&] { f.Commit(a, {{3, 7}}, 3); },
      [&] { c = f.Create(*f.store().Head(b)); },
      [&] { f.Commit(c, {{4, 8}}, 4); },
      [&] { f.Commit(a, {}, 1); },  // a shrink: zero versions
      [&] {
        auto r = f.store().ResetTimeline(b, *f.store().Head(b), a1, "");
        REQUIRE(r.ok());
      },
      [&] { f.Commit(b, {{2, 9}}, 3); },
      [&] { REQUIRE(f.store().DropTimeline(c).ok()); },
      [&] { f.Commit(b, {{3, 10}}, 3); },
      [&] {
        f.clock().Advance(kHour);
        RunGc(f, Window(0));
      },
      [&] { f.Commit(a, {{1, 11}, {2, 12}}, 2); },
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    INFO("step " << i);
    usage_of_all();  // fills the cache
    steps[i]();
    auto cached = usage_of_all();
    CHECK(usage_of_all() == cached);
    f.Reopen();
    CHECK(usage_of_all() == cached);
  }
}

TEST_CASE("GC keeps zero pages of a shrink that a root still needs") {
  StoreFixture f(8 << 10);
  TimelineId t = f.Create(0);
  f.Commit(t, {{1, 1}, {2, 2}, {3, 3}}, 3);
  f.Commit(t, {}, 1);                       // pages 2, 3 leave the state
  for (int i = 0; i < 6; ++i) f.Commit(t, {{1, 10u + i}}, 1);
  Lsn grown = f.Commit(t, {}, 3);           // back to 3 pages: 2, 3 read as zeros
  f.clock().Advance(kHour);
  RunGc(f, Window(0));
  CHECK(f.ReadAt(grown, 2) == PageData(0));
  CHECK(f.ReadAt(grown, 3) == PageData(0));
  CHECK(f.ReadAt(grown, 1) == PageData(15));
  f.Reopen();
  CHECK(f.ReadAt(grown, 2) == PageData(0));
  CHECK(f.ReadAt(grown, 3) == PageData(0));
}

// Each section fails one operation of a GC, to stop it half-way: what a crash
// at that point leaves behind, since the steps before it are durable.
TEST_CASE("An interrupted compaction is finished or discarded by recovery") {
  namespace fi = ::branchdb::testing;
  fi::FaultInjectionEnv stop;
  StoreFixture f(16 << 10, &stop);
  TimelineId t = f.Create(0);
  TimelineId keep = f.Create(0);
  Lsn k1 = f.Commit(keep, {{1, 77}}, 1);
  Lsn last = 0;
  for (int i = 0; i < 30; ++i) last = f.Commit(t, {{1, 100u + i}, {2, 200u + i}}, 2);
  f.clock().Advance(kHour);
  auto names = [](std::string_view part) {
    return [part](uint32_t, const std::string& path) {
      return path.find(part) != std::string::npos;
    };
  };
  fi::FaultSpec fault;  // the first operation that the section picks fails
  SECTION("before the GC state file is renamed into place") {
    fault.op_mask = fi::kOpRename;
    fault.only_if = names(internal::kManifestName);
  }
  SECTION("before the output file is renamed into place") {
    fault.op_mask = fi::kOpRename;
    fault.only_if = names("seg-");
  }
  SECTION("before the replaced segments are deleted") {
    fault.op_mask = fi::kOpDelete;
    fault.only_if = names("seg-");
  }
  bool dir_sync_case = false;
  SECTION("when the directory fsync after the rename fails") {
    fault.op_mask = fi::kOpRename | fi::kOpSyncDir;
    fault.only_if = [renamed = false](uint32_t kind, const std::string& path) mutable {
      if (kind == fi::kOpRename) {
        renamed = path.find("seg-") != std::string::npos;
        return false;
      }
      return std::exchange(renamed, false);  // the SyncDir right after it
    };
    dir_sync_case = true;
  }
  stop.FailNth(fault);
  auto r = f.store().Gc(Window(0));
  stop.ClearFault();
  INFO(r.status().ToString());
  CHECK(stop.FaultsFired() == 1);
  CHECK_FALSE(r.ok());
  // Compaction errors do not stop the store, except a failed fsync.
  CHECK(f.store().Health().ok() == !dir_sync_case);
  f.Reopen();
  CHECK(f.ReadAt(last, 1) == PageData(129));
  CHECK(f.ReadAt(last, 2) == PageData(229));
  CHECK(f.ReadAt(k1, 1) == PageData(77));
  // Leftover *.tmp files are deleted by recovery, or (an Open that listed no
  // directory: MANIFEST version 4 in use) by the first GC after it.
  RunGc(f, Window(0));
  auto children = f.env().GetChildren(f.path());
  REQUIRE(children.ok());
  for (const auto& c : *children) CHECK(c.find(".tmp") == std::string::npos);
  f.Reopen();
  CHECK(f.ReadAt(last, 1) == PageData(129));
  CHECK(f.ReadAt(k1, 1) == PageData(77));
}

// Two timelines: u with one commit (a root in the first segment), t with 60
// commits of page 1, each hiding the one before; then an hour passes, so that
// a GC with a zero window collects t's older commits.
struct CollectableHistory {
  TimelineId t, u;
  Lsn u_head;
  std::vector<Lsn> lsns;  // t's commits, oldest first
};

CollectableHistory WriteCollectableHistory(StoreFixture& f) {
  CollectableHistory h;
  h.t = f.Create(0);
  h.u = f.Create(0);
  h.u_head = f.Commit(h.u, {{2, 500}}, 2);
  for (int i = 1; i <= 60; ++i) {
    h.lsns.push_back(f.Commit(h.t, {{1, static_cast<uint64_t>(i)}}, 1));
  }
  f.clock().Advance(kHour);
  return h;
}

// The store's segment files, by number, with their bytes.
std::map<uint64_t, std::string> SegmentFiles(StoreFixture& f) {
  std::map<uint64_t, std::string> files;
  auto children = f.env().GetChildren(f.path());
  REQUIRE(children.ok());
  for (const std::string& name : *children) {
    uint64_t n = 0;
    if (!internal::ParseSegmentFileName(name, &n)) continue;
    auto bytes = f.env().ReadFileToString(JoinPath(f.path(), name));
    REQUIRE(bytes.ok());
    files[n] = *bytes;
  }
  return files;
}

TEST_CASE("GC leaves whole the segments its caller may not rewrite, until a later GC may") {
  StoreFixture f(64 << 10);
  const auto [t, u, u_head, lsns] = WriteCollectableHistory(f);
  const std::map<uint64_t, std::string> before = SegmentFiles(f);
  const uint64_t active = f.store().DurableEnd().segment;
  REQUIRE(before.size() >= 4);
  // The first segment keeps u's head (a compaction rewrites it); the second
  // keeps nothing (deleted outright).
  const uint64_t first = before.begin()->first;
  const uint64_t second = std::next(before.begin())->first;
  GcOptions o = Window(0);
  std::set<uint64_t> asked;
  o.may_rewrite = [&](uint64_t n) {
    asked.insert(n);
    return n != first && n != second;
  };
  GcStats stats = RunGc(f, o);
  CHECK(stats.segments_rewritten > 0);
  CHECK(asked.count(first) == 1);
  CHECK(asked.count(second) == 1);
  std::map<uint64_t, std::string> after = SegmentFiles(f);
  REQUIRE(after.count(first) == 1);
  REQUIRE(after.count(second) == 1);
  CHECK(after.at(first) == before.at(first));  // byte-identical
  CHECK(after.at(second) == before.at(second));
  for (const auto& [n, bytes] : before) {
    if (n != first && n != second && n != active) CHECK(after.count(n) == 0);
  }
  // What GC collected stays collected; every other state reads as before.
  auto check = [&] {
    CHECK(f.ReadAt(lsns.back(), 1) == PageData(60));
    CHECK(f.ReadAt(u_head, 2) == PageData(500));
    std::string out;
    for (size_t i = 0; i + 1 < lsns.size(); ++i) {
      CHECK(f.store().ReadPageAt(lsns[i], 1, &out).IsNotFound());
    }
    auto h = f.store().History(t, 0, 100);
    REQUIRE(h.ok());
    REQUIRE(h->size() == 1);
    CHECK(h->at(0).lsn == lsns.back());
  };
  check();
  const Snapshot collected = TakeSnapshot(f.store());
  f.Reopen();
  check();
  RequireSameSnapshot(collected, TakeSnapshot(f.store()));
  // A later GC that may rewrite them compacts the first and deletes the second.
  o.may_rewrite = [](uint64_t) { return true; };
  stats = RunGc(f, o);
  CHECK(stats.segments_rewritten >= 2);
  after = SegmentFiles(f);
  CHECK(after.count(first) == 0);
  CHECK(after.count(second) == 0);
  check();
  RequireSameSnapshot(collected, TakeSnapshot(f.store()));
  f.Reopen();
  check();
  RequireSameSnapshot(collected, TakeSnapshot(f.store()));
}

TEST_CASE("GC seals the active segment for compaction only if its caller may rewrite it") {
  StoreFixture f(1 << 20);  // every record in the active segment
  TimelineId t = f.Create(0);
  Lsn head = 0;
  for (int i = 1; i <= 20; ++i) head = f.Commit(t, {{1, static_cast<uint64_t>(i)}}, 1);
  f.clock().Advance(kHour);
  const DurablePoint d = f.store().DurableEnd();
  const std::map<uint64_t, std::string> before = SegmentFiles(f);
  GcOptions o = Window(0);
  o.may_rewrite = [&d](uint64_t n) { return n != d.segment; };
  GcStats stats = RunGc(f, o);
  CHECK(stats.segments_rewritten == 0);
  CHECK(f.store().DurableEnd().segment == d.segment);  // not sealed
  CHECK(SegmentFiles(f) == before);
  CHECK(f.ReadAt(head, 1) == PageData(20));
  const Lsn next = f.Commit(t, {{1, 21}}, 1);  // goes on in the same segment
  CHECK(f.store().DurableEnd().segment == d.segment);
  f.clock().Advance(kHour);
  o.may_rewrite = [](uint64_t) { return true; };
  stats = RunGc(f, o);
  CHECK(stats.segments_rewritten >= 1);
  CHECK(SegmentFiles(f).count(d.segment) == 0);  // sealed, then compacted
  CHECK(f.ReadAt(next, 1) == PageData(21));
  f.Reopen();
  CHECK(f.ReadAt(next, 1) == PageData(21));
}

// What a restore from a bucket holding the store's GCSTATE would open (issue
// #16, part 2): every segment as written, every compaction output, GCSTATE,
// no MANIFEST. Recovery finishes the compaction (an output supersedes its
// group) and reads as the GC left the store; a segment the GC deleted
// outright is back, ignored (its records are in GCSTATE's collected ranges),
// until the next GC deletes it again.
TEST_CASE("GCSTATE with the segments as written and the outputs opens as the GC left the store") {
  StoreFixture f(64 << 10);
  const auto [t, u, u_head, lsns] = WriteCollectableHistory(f);
  const std::map<uint64_t, std::string> written = SegmentFiles(f);
  const uint64_t active = f.store().DurableEnd().segment;
  GcOptions o = Window(0);
  o.may_rewrite = [active](uint64_t n) { return n != active; };  // as with object storage
  REQUIRE(RunGc(f, o).segments_rewritten > 0);
  const Snapshot collected = TakeSnapshot(f.store());
  const std::map<uint64_t, std::string> left = SegmentFiles(f);
  const std::string gcstate_path = JoinPath(f.path(), std::string(internal::kManifestName));
  auto gcstate = f.env().ReadFileToString(gcstate_path);
  REQUIRE(gcstate.ok());
  f.Close();
  auto children = f.env().GetChildren(f.path());
  REQUIRE(children.ok());
  for (const std::string& c : *children) REQUIRE(f.env().DeleteFile(JoinPath(f.path(), c)).ok());
  std::map<uint64_t, std::string> all = written;
  for (const auto& [n, bytes] : left) all[n] = bytes;
  for (const auto& [n, bytes] : all) {
    const std::string path = JoinPath(f.path(), internal::SegmentFileName(n));
    REQUIRE(f.env().WriteFileAtomic(path, bytes, 0600).ok());
  }
  REQUIRE(f.env().WriteFileAtomic(gcstate_path, *gcstate, 0600).ok());
  f.Reopen();
  RequireSameSnapshot(collected, TakeSnapshot(f.store()));
  CHECK(f.ReadAt(u_head, 2) == PageData(500));
  // The outputs' groups are gone; segments deleted outright are back.
  std::map<uint64_t, std::string> opened = SegmentFiles(f);
  size_t back = 0;
  for (const auto& [n, bytes] : written) {
    if (left.count(n)) continue;
    back += opened.count(n);
  }
  CHECK(back > 0);
  REQUIRE(RunGc(f, Window(0)).segments_rewritten >= back);
  opened = SegmentFiles(f);
  for (const auto& [n, bytes] : written) {
    if (n != active && !left.count(n)) CHECK(opened.count(n) == 0);
  }
  f.Reopen();
  CHECK(f.ReadAt(lsns.back(), 1) == PageData(60));
  CHECK(f.ReadAt(u_head, 2) == PageData(500));
}

TEST_CASE("GC runs while other threads commit and read") {
  StoreFixture f(32 << 10);
  constexpr int kWriters = 3;
  std::vector<TimelineId> ts;
  for (int i = 0; i < kWriters; ++i) ts.push_back(f.Create(0));
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::pair<Lsn, uint64_t>>> heads(kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 60; ++k) {
        uint64_t seed = static_cast<uint64_t>(i) * 1000 + k + 1;
        std::string page = PageData(seed);
        Lsn head = *f.store().Head(ts[i]);
        auto r = f.store().Commit(ts[i], head, {PageWrite{static_cast<PageNo>(k % 3 + 1), page}},
                                  3, "");
        if (!r.ok()) {
          FAIL_CHECK(r.status().ToString());
          return;
        }
        heads[i].emplace_back(*r, seed);
        // The head just written is a root: it must read back whatever GC does.
        std::string out;
        Status s = f.store().ReadPageAt(*r, static_cast<PageNo>(k % 3 + 1), &out);
        if (!s.ok() || out != page) FAIL_CHECK("lost head " << *r << " " << s.ToString());
      }
    });
  }
  std::thread gc([&] {
    while (!stop.load()) {
      f.clock().Advance(kHour);
      auto r = f.store().Gc(Window(0));
      if (!r.ok()) FAIL_CHECK(r.status().ToString());
    }
  });
  for (auto& th : threads) th.join();
  stop = true;
  gc.join();
  f.clock().Advance(kHour);
  RunGc(f, Window(0));
  f.Reopen();
  for (int i = 0; i < kWriters; ++i) {
    Lsn last = heads[i].back().first;
    CHECK(*f.store().Head(ts[i]) == last);
    for (int k = 57; k < 60; ++k) {
      CHECK(f.ReadAt(last, static_cast<PageNo>(k % 3 + 1)) == PageData(i * 1000 + k + 1));
    }
  }
}

}  // namespace
}  // namespace branchdb::storage::testing
