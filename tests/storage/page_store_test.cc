// Unit tests of the PageStore operations: timelines, commits, reads at LSNs,
// database sizes, resets, drops, history, LsnAt, ChangedPages, validation,
// DurableEnd.
#include <catch2/catch.hpp>

#include "storage/log_format.h"
#include "tests/storage/store_test_util.h"

namespace branchdb::storage::testing {
namespace {

TEST_CASE("An empty store has no timelines and reads zeros at LSN 0") {
  StoreFixture f;
  CHECK(f.store().LastLsn() == 0);
  CHECK(f.store().ListTimelines().empty());
  CHECK(f.ReadAt(0, 1) == PageData(0));
  CHECK(*f.store().DbSizeAt(0) == 0);
  CHECK(f.store().Health().ok());
  CHECK(f.store().GetRecord(1).status().IsNotFound());
  CHECK(f.store().Head(1).status().reason() == "timeline_not_found");
}

TEST_CASE("Commits create states readable at every LSN") {
  StoreFixture f;
  TimelineId t = f.Create(0, "create main");
  Lsn c = *f.store().Head(t);
  CHECK(c == 1);
  CHECK(*f.store().DbSize(t, c) == 0);
  CHECK(f.store().DbSize(t, 0).status().reason() == "lsn_not_found");
  Lsn l1 = f.Commit(t, {{1, 11}, {2, 12}}, 2, "first");
  Lsn l2 = f.Commit(t, {{2, 22}, {3, 23}}, 3, "second");
  Lsn l3 = f.Commit(t, {{1, 31}}, 3, "third");
  CHECK(l1 == 2);
  CHECK(l2 == 3);
  CHECK(l3 == 4);
  CHECK(*f.store().Head(t) == l3);
  CHECK(f.store().LastLsn() == l3);

  CHECK(f.ReadAt(c, 1) == PageData(0));
  CHECK(f.ReadAt(l1, 1) == PageData(11));
  CHECK(f.ReadAt(l1, 2) == PageData(12));
  CHECK(f.ReadAt(l1, 3) == PageData(0));  // past the size
  CHECK(f.ReadAt(l2, 1) == PageData(11));
  CHECK(f.ReadAt(l2, 2) == PageData(22));
  CHECK(f.ReadAt(l2, 3) == PageData(23));
  CHECK(f.ReadAt(l3, 1) == PageData(31));
  CHECK(f.ReadAt(l3, 2) == PageData(22));
  CHECK(*f.store().DbSizeAt(l1) == 2);
  CHECK(*f.store().DbSizeAt(l3) == 3);

  // Timeline reads resolve the LSN to the newest record at or before it.
  std::string out;
  REQUIRE(f.store().ReadPage(t, 1, l2, &out).ok());
  CHECK(out == PageData(11));
  REQUIRE(f.store().ReadPage(t, 1, 1000, &out).ok());
  CHECK(out == PageData(31));
  CHECK(*f.store().ResolveLsn(t, 1000) == l3);
  CHECK(*f.store().DbSize(t, l1) == 2);

  auto rec = f.store().GetRecord(l2);
  REQUIRE(rec.ok());
  CHECK(rec->kind == RecordKind::kCommit);
  CHECK(rec->timeline == t);
  CHECK(rec->annotation == "second");
  CHECK(rec->pages == std::vector<PageNo>{2, 3});
  CHECK(rec->db_size_pages == 3);
  CHECK(rec->time_micros == f.clock().NowMicros());

  auto info = f.store().GetTimeline(t);
  REQUIRE(info.ok());
  CHECK(info->created_lsn == c);
  CHECK(info->base == 0);
  CHECK(info->head == l3);
}

TEST_CASE("A timeline created from a base shares its past and diverges after") {
  StoreFixture f;
  TimelineId main = f.Create(0);
  Lsn m1 = f.Commit(main, {{1, 1}, {2, 2}}, 2);
  Lsn m2 = f.Commit(main, {{1, 3}}, 2);
  TimelineId child = f.Create(m1, "branch at m1");
  Lsn c0 = *f.store().Head(child);
  CHECK(*f.store().DbSize(child, c0) == 2);
  CHECK(f.ReadAt(c0, 1) == PageData(1));
  Lsn c1 = f.Commit(child, {{2, 20}, {3, 30}}, 3);
  Lsn m3 = f.Commit(main, {{2, 40}}, 2);
  CHECK(f.ReadAt(c1, 1) == PageData(1));
  CHECK(f.ReadAt(c1, 2) == PageData(20));
  CHECK(f.ReadAt(c1, 3) == PageData(30));
  CHECK(f.ReadAt(m3, 1) == PageData(3));
  CHECK(f.ReadAt(m3, 2) == PageData(40));
  CHECK(f.ReadAt(m2, 2) == PageData(2));

  // Child as of an LSN before its own records sees the base state.
  CHECK(*f.store().ResolveLsn(child, m1) == m1);
  CHECK(*f.store().ResolveLsn(child, m1 - 1) == m1 - 1);  // main's create record
  CHECK(f.store().ResolveLsn(child, 0).status().reason() == "lsn_not_found");
  // Ancestor-as-of-LSN creation resolves the LSN on the ancestor.
  auto g = f.store().CreateTimeline(main, m3 - 1, "grandchild");
  REQUIRE(g.ok());
  auto ginfo = f.store().GetTimeline(*g);
  CHECK(ginfo->base == m2);
  CHECK(f.ReadAt(ginfo->head, 1) == PageData(3));
  CHECK(f.ReadAt(ginfo->head, 2) == PageData(2));
  // And from the child, through the child's base.
  auto g2 = f.store().CreateTimeline(child, m2, "");
  REQUIRE(g2.ok());
  CHECK(f.store().GetTimeline(*g2)->base == m1);
}

TEST_CASE("Shrinking the database drops pages; growing again reads zeros") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 1}, {2, 2}, {3, 3}, {4, 4}}, 4);
  Lsn l2 = f.Commit(t, {}, 2);
  CHECK(*f.store().DbSizeAt(l2) == 2);
  CHECK(f.ReadAt(l2, 3) == PageData(0));
  Lsn l3 = f.Commit(t, {{4, 44}}, 5);
  CHECK(*f.store().DbSizeAt(l3) == 5);
  CHECK(f.ReadAt(l3, 1) == PageData(1));
  CHECK(f.ReadAt(l3, 3) == PageData(0));
  CHECK(f.ReadAt(l3, 4) == PageData(44));
  CHECK(f.ReadAt(l3, 5) == PageData(0));
  CHECK(f.ReadAt(l1, 3) == PageData(3));
  // A child of the shrunk state grows without the old pages.
  TimelineId c = f.Create(l2);
  Lsn c1 = f.Commit(c, {}, 4);
  CHECK(f.ReadAt(c1, 3) == PageData(0));
  CHECK(f.ReadAt(c1, 2) == PageData(2));
  // The record lists only the pages written.
  CHECK(f.store().GetRecord(l2)->pages.empty());
  f.Reopen();
  CHECK(f.ReadAt(l3, 3) == PageData(0));
  CHECK(f.ReadAt(c1, 4) == PageData(0));
  CHECK(f.ReadAt(l1, 4) == PageData(4));
}

TEST_CASE("Reset moves a timeline to any state, and resetting back undoes it") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 1}}, 1);
  Lsn l2 = f.Commit(t, {{1, 2}, {2, 2}}, 2);
  Lsn l3 = f.Commit(t, {{1, 3}}, 2);
  auto r = f.store().ResetTimeline(t, l3, l1, "rollback to l1");
  REQUIRE(r.ok());
  Lsn reset = *r;
  CHECK(*f.store().Head(t) == reset);
  CHECK(*f.store().DbSize(t, reset) == 1);
  CHECK(f.ReadAt(reset, 1) == PageData(1));
  CHECK(f.ReadAt(reset, 2) == PageData(0));
  Lsn l5 = f.Commit(t, {{2, 5}}, 2);
  CHECK(f.ReadAt(l5, 1) == PageData(1));
  CHECK(f.ReadAt(l5, 2) == PageData(5));
  // Undo: reset to the previous head.
  auto undo = f.store().ResetTimeline(t, l5, l3, "undo");
  REQUIRE(undo.ok());
  CHECK(f.ReadAt(*undo, 1) == PageData(3));
  CHECK(f.ReadAt(*undo, 2) == PageData(2));
  // As-of reads follow the current history: l5 is no longer on it.
  CHECK(*f.store().ResolveLsn(t, l5) == l3);
  CHECK(*f.store().ResolveLsn(t, l2) == l2);
  // History walks through resets and bases, newest first.
  auto h = f.store().History(t, 0, 100);
  REQUIRE(h.ok());
  std::vector<Lsn> lsns;
  for (const auto& rec : *h) lsns.push_back(rec.lsn);
  CHECK(lsns == std::vector<Lsn>{*undo, l3, l2, l1, 1});
  CHECK((*h)[0].kind == RecordKind::kReset);
  CHECK((*h)[0].base == l3);
  CHECK((*h)[0].annotation == "undo");
  auto h2 = f.store().History(t, l2, 2);
  REQUIRE(h2.ok());
  REQUIRE(h2->size() == 2);
  CHECK((*h2)[0].lsn == l2);
  CHECK((*h2)[1].lsn == l1);
  // Reset to a newer state of another timeline (fast-forward).
  TimelineId o = f.Create(*undo);
  Lsn o1 = f.Commit(o, {{3, 9}}, 3);
  auto ff = f.store().ResetTimeline(t, *undo, o1, "promote");
  REQUIRE(ff.ok());
  CHECK(f.ReadAt(*ff, 3) == PageData(9));
  CHECK(f.ReadAt(*ff, 1) == PageData(3));
  // Reset to the empty state.
  auto empty = f.store().ResetTimeline(t, *ff, 0, "");
  REQUIRE(empty.ok());
  CHECK(*f.store().DbSize(t, *empty) == 0);
}

TEST_CASE("History crosses bases and respects before and limit") {
  StoreFixture f;
  TimelineId a = f.Create(0, "a");
  Lsn a1 = f.Commit(a, {{1, 1}}, 1, "a1");
  Lsn a2 = f.Commit(a, {{1, 2}}, 1, "a2");
  TimelineId b = f.Create(a1, "b");
  Lsn b1 = f.Commit(b, {{1, 3}}, 1, "b1");
  auto h = f.store().History(b, 0, 10);
  REQUIRE(h.ok());
  std::vector<std::string> notes;
  for (const auto& r : *h) notes.push_back(r.annotation);
  CHECK(notes == std::vector<std::string>{"b1", "b", "a1", "a"});
  CHECK(f.store().History(b, 0, 1)->at(0).lsn == b1);
  CHECK(f.store().History(b, a2, 10)->size() == 2);  // a2 is not on b's history
  CHECK(f.store().History(99, 0, 10).status().reason() == "timeline_not_found");
}

TEST_CASE("Drop removes the timeline but keeps its states as bases") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 1}}, 1);
  REQUIRE(f.store().DropTimeline(t).ok());
  CHECK(f.store().Head(t).status().reason() == "timeline_not_found");
  CHECK(f.store().GetTimeline(t).status().IsNotFound());
  CHECK(f.store().ListTimelines().empty());
  CHECK(f.store().DropTimeline(t).IsNotFound());
  CHECK(f.store().Commit(t, l1, {}, 1, "").status().reason() == "timeline_not_found");
  CHECK(f.ReadAt(l1, 1) == PageData(1));
  Lsn drop = f.store().LastLsn();
  CHECK(f.store().GetRecord(drop)->kind == RecordKind::kDrop);
  CHECK(f.ReadAt(drop, 1) == PageData(1));
  TimelineId u = f.Create(l1);
  CHECK(u != t);
  CHECK(f.ReadAt(*f.store().Head(u), 1) == PageData(1));
  f.Reopen();
  CHECK(f.store().Head(t).status().IsNotFound());
  CHECK(f.store().ListTimelines().size() == 1);
  TimelineId v = f.Create(0);
  CHECK(v > u);
}

TEST_CASE("LsnAt finds the newest record at or before a time") {
  StoreFixture f;
  int64_t t0 = f.clock().NowMicros();
  TimelineId t = f.Create(0);
  f.clock().AdvanceSeconds(10);
  Lsn l1 = f.Commit(t, {{1, 1}}, 1);
  f.clock().AdvanceSeconds(10);
  Lsn l2 = f.Commit(t, {{1, 2}}, 1);
  f.clock().AdvanceSeconds(10);
  TimelineId c = f.Create(l1);
  f.clock().AdvanceSeconds(10);
  Lsn c1 = f.Commit(c, {{1, 3}}, 1);
  CHECK(*f.store().LsnAt(t, t0) == 1);
  CHECK(*f.store().LsnAt(t, t0 + 10'000'000) == l1);
  CHECK(*f.store().LsnAt(t, t0 + 15'000'000) == l1);
  CHECK(*f.store().LsnAt(t, t0 + 20'000'000) == l2);
  CHECK(*f.store().LsnAt(t, t0 + 99'000'000) == l2);
  CHECK(f.store().LsnAt(t, t0 - 1).status().IsNotFound());
  // Through the base: c's history is c1, create, l1, create(t).
  CHECK(*f.store().LsnAt(c, t0 + 25'000'000) == l1);
  CHECK(*f.store().LsnAt(c, t0 + 30'000'000) == f.store().GetTimeline(c)->created_lsn);
  CHECK(*f.store().LsnAt(c, t0 + 40'000'000) == c1);
  // A clock that moves backwards does not break the order.
  f.clock().Set(t0);
  Lsn l3 = f.Commit(t, {{1, 4}}, 1);
  CHECK(f.store().GetRecord(l3)->time_micros >= f.store().GetRecord(l2)->time_micros);
  f.Reopen();
  CHECK(*f.store().LsnAt(t, t0 + 20'000'000) == l2);
}

TEST_CASE("ChangedPages lists pages written between related states") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 1}, {2, 2}, {3, 3}}, 3);
  Lsn l2 = f.Commit(t, {{2, 4}}, 3);
  Lsn l3 = f.Commit(t, {{3, 5}}, 3);
  CHECK(*f.store().ChangedPages(l1, l2) == std::vector<PageNo>{2});
  CHECK(*f.store().ChangedPages(l1, l3) == std::vector<PageNo>{2, 3});
  CHECK(*f.store().ChangedPages(l3, l1) == std::vector<PageNo>{2, 3});
  CHECK(f.store().ChangedPages(l2, l2)->empty());
  CHECK(*f.store().ChangedPages(0, l1) == std::vector<PageNo>{1, 2, 3});
  TimelineId c = f.Create(l2);
  Lsn c1 = f.Commit(c, {{1, 9}}, 3);
  auto d = f.store().ChangedPages(l3, c1);
  REQUIRE(d.ok());
  CHECK(*d == std::vector<PageNo>{1, 3});
  Lsn shrink = f.Commit(t, {}, 1);
  CHECK(*f.store().ChangedPages(l3, shrink) == std::vector<PageNo>{2, 3});
  CHECK(f.store().ChangedPages(l1, 999).status().IsNotFound());
}

TEST_CASE("Invalid arguments are refused with clear errors") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  Lsn h = *f.store().Head(t);
  std::string good = PageData(1);
  std::string small(100, 'x');
  auto r = f.store().Commit(t, h, {PageWrite{1, small}}, 1, "");
  CHECK(r.status().IsInvalidArgument());
  r = f.store().Commit(t, h, {PageWrite{0, good}}, 1, "");
  CHECK(r.status().IsInvalidArgument());
  r = f.store().Commit(t, h, {PageWrite{3, good}}, 2, "");
  CHECK(r.status().IsInvalidArgument());
  r = f.store().Commit(t, h, {PageWrite{1, good}, PageWrite{1, good}}, 1, "");
  CHECK(r.status().IsInvalidArgument());
  r = f.store().Commit(t, h, {}, 0xFFFFFFFFu, "");
  CHECK(r.status().IsInvalidArgument());
  CHECK(f.store().Commit(77, 0, {}, 1, "").status().reason() == "timeline_not_found");
  CHECK(f.store().CreateTimeline(999, "").status().reason() == "lsn_not_found");
  CHECK(f.store().CreateTimeline(77, 1, "").status().reason() == "timeline_not_found");
  CHECK(f.store().ResetTimeline(t, h, 999, "").status().reason() == "lsn_not_found");
  CHECK(f.store().ResetTimeline(77, 0, 0, "").status().reason() == "timeline_not_found");
  std::string out;
  CHECK(f.store().ReadPageAt(h, 0, &out).IsInvalidArgument());
  CHECK(f.store().ReadPageAt(999, 1, &out).IsNotFound());
  CHECK(f.store().ReadPage(77, 1, 0, &out).IsNotFound());
  // Nothing above changed the store.
  CHECK(*f.store().Head(t) == h);
  CHECK(f.store().LastLsn() == h);
}

TEST_CASE("A commit or reset on a moved head is a conflict") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  Lsn h0 = *f.store().Head(t);
  Lsn l1 = f.Commit(t, {{1, 1}}, 1);
  std::string page = PageData(2);
  auto r = f.store().Commit(t, h0, {PageWrite{1, page}}, 1, "");
  CHECK(r.status().IsConflict());
  CHECK(r.status().reason() == "head_moved");
  auto rr = f.store().ResetTimeline(t, h0, 0, "");
  CHECK(rr.status().reason() == "head_moved");
  CHECK(*f.store().Head(t) == l1);
  CHECK(f.ReadAt(l1, 1) == PageData(1));
}

TEST_CASE("Reads stay correct through 150-deep chains of bases and resets") {
  StoreFixture f(1 << 20);
  constexpr int kDepth = 150;
  TimelineId t = f.Create(0);
  Lsn head = f.Commit(t, {{1, 1000}}, kDepth + 1);
  std::vector<Lsn> heads{head};
  for (int i = 1; i <= kDepth; ++i) {
    TimelineId c = f.Create(head);
    head = f.Commit(c, {{static_cast<PageNo>(i + 1), static_cast<uint64_t>(i)}}, kDepth + 1);
    heads.push_back(head);
  }
  auto check_chain = [&] {
    for (int p = 2; p <= kDepth + 1; ++p) CHECK(f.ReadAt(head, p) == PageData(p - 1));
    CHECK(f.ReadAt(head, 1) == PageData(1000));
    CHECK(f.ReadAt(heads[kDepth / 2], kDepth) == PageData(0));
    CHECK(f.ReadAt(heads[kDepth / 2], kDepth / 2 + 1) == PageData(kDepth / 2));
  };
  check_chain();

  // A reset chain: one timeline reset to its own previous states over and over.
  TimelineId r = f.Create(0);
  Lsn rh = f.Commit(r, {{1, 1}}, 2);
  std::vector<Lsn> states{rh};
  for (int i = 0; i < kDepth; ++i) {
    auto reset = f.store().ResetTimeline(r, rh, states.back(), "");
    REQUIRE(reset.ok());
    rh = f.Commit(r, {{2, static_cast<uint64_t>(i + 10)}}, 2);
    states.push_back(rh);
  }
  CHECK(f.ReadAt(rh, 1) == PageData(1));
  CHECK(f.ReadAt(rh, 2) == PageData(kDepth - 1 + 10));
  CHECK(f.ReadAt(states[1], 2) == PageData(10));
  CHECK(f.store().History(r, 0, 10000)->size() == 2 + 2 * kDepth);
  f.Reopen();
  check_chain();
  CHECK(f.ReadAt(rh, 2) == PageData(kDepth - 1 + 10));
}

TEST_CASE("Reads are right for pages with hundreds of versions from many timelines") {
  StoreFixture f(64 << 10);
  TimelineId main = f.Create(0);
  Lsn base = f.Commit(main, {{1, 1}, {2, 2}}, 2);
  // Several children of base and grandchildren interleave writes to page 1;
  // "quiet" writes page 1 once and then only page 2.
  std::vector<TimelineId> kids;
  for (int i = 0; i < 5; ++i) kids.push_back(f.Create(base));
  TimelineId quiet = f.Create(base);
  Lsn quiet_p1 = f.Commit(quiet, {{1, 777}}, 2);
  std::map<Lsn, uint64_t> page1;  // state -> expected page 1 of that kid's state
  std::vector<std::pair<TimelineId, Lsn>> samples;
  for (int round = 0; round < 80; ++round) {
    for (size_t i = 0; i < kids.size(); ++i) {
      uint64_t seed = 10000 + round * 10 + i;
      Lsn l = f.Commit(kids[i], {{1, seed}}, 2);
      page1[l] = seed;
      if (round % 9 == 0) samples.emplace_back(kids[i], l);
    }
    if (round % 10 == 0) f.Commit(quiet, {{2, 500u + round}}, 2);
  }
  TimelineId grand = f.Create(samples[3].second);
  Lsn g1 = f.Commit(grand, {{2, 42}}, 2);
  for (int i = 0; i < 60; ++i) f.Commit(kids[0], {{1, 90000u + i}}, 2);
  Lsn quiet_head = f.Commit(quiet, {{2, 43}}, 2);
  auto check = [&] {
    CHECK(f.ReadAt(quiet_head, 1) == PageData(777));
    CHECK(f.ReadAt(quiet_p1, 1) == PageData(777));
    CHECK(f.ReadAt(g1, 1) == PageData(page1.at(samples[3].second)));
    CHECK(f.ReadAt(g1, 2) == PageData(42));
    for (const auto& [t, l] : samples) CHECK(f.ReadAt(l, 1) == PageData(page1.at(l)));
    CHECK(f.ReadAt(*f.store().Head(kids[0]), 1) == PageData(90059));
    CHECK(f.ReadAt(*f.store().Head(kids[4]), 1) == PageData(10000 + 79 * 10 + 4));
  };
  check();
  f.Reopen();
  check();
}

TEST_CASE("Pages read in file order (a scan: the read-ahead) are right, also after later appends") {
  StoreFixture f;
  f.options().cache_page_images = false;  // every read reaches the file
  f.Reopen();
  const TimelineId t = f.Create(0);
  std::map<PageNo, uint64_t> first, second;
  for (PageNo p = 1; p <= 40; ++p) first[p] = 100 + p;
  for (PageNo p = 1; p <= 40; p += 2) second[p] = 200 + p;
  const Lsn l1 = f.Commit(t, first, 40);
  // A scan of the first pages: its read-ahead window reaches past the end of
  // the file, where the next record is appended.
  for (PageNo p = 1; p <= 5; ++p) CHECK(f.ReadAt(l1, p) == PageData(100 + p));
  const Lsn l2 = f.Commit(t, second, 40);
  for (int round = 0; round < 2; ++round) {
    for (PageNo p = 1; p <= 40; ++p) CHECK(f.ReadAt(l2, p) == PageData((p % 2 ? 200 : 100) + p));
    for (PageNo p = 1; p <= 40; ++p) CHECK(f.ReadAt(l1, p) == PageData(100 + p));
    for (PageNo p = 40; p >= 1; --p) CHECK(f.ReadAt(l2, p) == PageData((p % 2 ? 200 : 100) + p));
  }
}

TEST_CASE("DurableEnd covers exactly the synced records of the active segment") {
  StoreFixture f(16 * kPageSize);
  const DurablePoint empty = f.store().DurableEnd();
  CHECK(empty.segment >= 1);
  CHECK(empty.bytes > 0);  // the header
  TimelineId t = f.Create(0);
  Lsn l1 = f.Commit(t, {{1, 1}}, 1);
  DurablePoint p1 = f.store().DurableEnd();
  CHECK(p1.lsn == l1);
  CHECK(p1.segment == empty.segment);
  const std::string seg = f.path() + "/" + internal::SegmentFileName(p1.segment);
  // The log's end in an active segment file: its zero region follows
  // (docs/storage-format.md), the last record ends in a page of PageData.
  auto log_end = [&](const std::string& path) {
    auto data = f.env().ReadFileToString(path);
    REQUIRE(data.ok());
    return data->find_last_not_of('\0') + 1;
  };
  CHECK(p1.bytes == log_end(seg));
  CHECK(*f.env().GetFileSize(seg) > p1.bytes);  // the zero region is not covered

  // Appended, not synced: not covered until WaitDurable.
  auto pending = f.store().CommitNoWait(t, l1, {PageWrite{1, PageData(2)}}, 1, "");
  REQUIRE(pending.ok());
  CHECK(f.store().DurableEnd().bytes == p1.bytes);
  REQUIRE(f.store().WaitDurable(*pending).ok());
  DurablePoint p2 = f.store().DurableEnd();
  CHECK(p2.lsn == *pending);
  CHECK(p2.bytes > p1.bytes);
  CHECK(p2.bytes == log_end(seg));

  // Past segment_bytes the segment rolls: the new one's header only.
  for (uint64_t i = 3; f.store().DurableEnd().segment == p1.segment; ++i) {
    f.Commit(t, {{1, i}}, 1);
  }
  DurablePoint rolled = f.store().DurableEnd();
  CHECK(rolled.segment > p1.segment);
  CHECK(rolled.bytes == log_end(f.path() + "/" + internal::SegmentFileName(rolled.segment)));

  // A reopen reports the recovered tail as durable.
  f.Reopen();
  DurablePoint reopened = f.store().DurableEnd();
  CHECK(reopened.lsn == rolled.lsn);
  CHECK(reopened.segment == rolled.segment);
  CHECK(reopened.bytes == rolled.bytes);
}

TEST_CASE("A page with many runs' versions in memory reads right from short and deep paths") {
  // One segment (nothing sealed): every version is in the in-memory index.
  // 40 sibling runs write page 1 twice each, so a read that is not theirs
  // steps over more than 32 versions and looks the page up run by run,
  // from the path's runs (short: the reader's two) or from the page's runs
  // (when the path is longer: a reader rolled back 120 times, against 82
  // runs with versions of the page), each checked by breaking the other.
  StoreFixture f;
  TimelineId base = f.Create(0, "base");
  const Lsn based = f.Commit(base, {{1, 11}, {2, 12}}, 2);
  auto child = [&] {
    auto t = f.store().CreateTimeline(base, based, "child");
    REQUIRE(t.ok());
    return *t;
  };
  TimelineId reader = child();
  for (int i = 0; i < 40; ++i) {
    TimelineId s = child();
    f.Commit(s, {{1, 100 + 2 * static_cast<uint64_t>(i)}}, 2);
    f.Commit(s, {{1, 101 + 2 * static_cast<uint64_t>(i)}}, 2);
  }
  auto read = [&](Lsn lsn, PageNo pgno) {
    std::string out;
    Status s = f.store().ReadPage(reader, pgno, lsn, &out);
    INFO(s.ToString());
    REQUIRE(s.ok());
    return out;
  };
  const Lsn before_own = f.Commit(reader, {{2, 22}}, 2);
  CHECK(read(before_own, 1) == PageData(11));
  // Deepen the reader's path: each rollback starts a run on the one before.
  const Lsn own = f.Commit(reader, {{1, 21}}, 2);
  Lsn head = own;
  for (int i = 0; i < 120; ++i) {
    const Lsn kept = f.Commit(reader, {{2, 1000 + static_cast<uint64_t>(i)}}, 2);
    const Lsn undone = f.Commit(reader, {{2, 5000}}, 2);
    auto r = f.store().ResetTimeline(reader, undone, kept, "rollback");  // a run on this one
    REQUIRE(r.ok());
    head = *r;
  }
  CHECK(read(head, 1) == PageData(21));
  CHECK(read(head, 2) == PageData(1119));
  // Other runs write page 1 on: the deep reader steps over them.
  for (int i = 0; i < 40; ++i) f.Commit(child(), {{1, 500}}, 2);
  head = f.Commit(reader, {{2, 2000}}, 2);
  CHECK(read(head, 1) == PageData(21));
  // Back before its own version of page 1 (a run on the reader's first:
  // a short path again): the base's version.
  auto r = f.store().ResetTimeline(reader, head, before_own, "rollback");
  REQUIRE(r.ok());
  head = f.Commit(reader, {{2, 3000}}, 2);
  CHECK(read(head, 1) == PageData(11));
  CHECK(read(head, 2) == PageData(3000));
}

}  // namespace
}  // namespace branchdb::storage::testing
