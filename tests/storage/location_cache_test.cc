// The location cache (storage/page_index.h, LocationCache): a read that had
// to search the sealed segments leaves where it found its page, and the
// run's next read looks only at what is newer than that read's LSN. These
// tests put every kind of newer or moved version in the way of such a
// cached answer: the run's own commit (in memory, then sealed), a shrink's
// zero version, reads at older states of the run after newer ones, GC and
// compaction moving versions, a reopen; each read is checked against the
// page written, while sibling branches keep rewriting the same pages (the
// case the cache is for: each sealed segment full of other runs' versions).
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tests/storage/store_test_util.h"

namespace branchdb::storage::testing {
namespace {

// A few records per segment: nearly every commit seals one.
constexpr uint64_t kSegmentBytes = 16 << 10;

class SiblingsFixture {
 public:
  // mixed: the base writes its pages one a commit, between two commits of a
  // scratch timeline each, so that each of its versions shares a segment with
  // garbage once the scratch timeline is dropped (DropScratch): GC's
  // compaction then rewrites the segments the reader's pages are in.
  // segment_bytes: kSegmentBytes seals nearly every commit; a large size
  // keeps every version in memory.
  explicit SiblingsFixture(bool mixed = false, uint64_t segment_bytes = kSegmentBytes)
      : f_(segment_bytes) {
    base_ = f_.Create(0, "base");
    if (mixed) {
      scratch_ = f_.Create(0, "scratch");
      for (PageNo p = 1; p <= 4; ++p) {
        f_.Commit(base_, {{p, 100 + p}}, 4);
        f_.Commit(scratch_, {{1, 900 + 2 * p}}, 1);
        f_.Commit(scratch_, {{1, 901 + 2 * p}}, 1);
      }
    } else {
      f_.Commit(base_, {{1, 101}, {2, 102}, {3, 103}, {4, 104}}, 4);
    }
    base_head_ = Head(base_);
    reader_ = Child("reader");
  }

  StoreFixture& f() { return f_; }
  TimelineId reader() const { return reader_; }
  Lsn Head(TimelineId t) {
    auto h = f_.store().Head(t);
    REQUIRE(h.ok());
    return *h;
  }
  TimelineId Child(const std::string& annotation) {
    auto t = f_.store().CreateTimeline(base_, base_head_, annotation);
    REQUIRE(t.ok());
    return *t;
  }
  // `rounds` times, each of four siblings rewrites pages 1..4 (a segment or
  // more each): versions of the reader's pages the reader never sees.
  void SiblingsRewrite(int rounds) {
    if (siblings_.empty()) {
      for (int i = 0; i < 4; ++i) siblings_.push_back(Child("sibling"));
    }
    for (int r = 0; r < rounds; ++r) {
      for (TimelineId s : siblings_) {
        const uint64_t seed = 1000 + 10 * ++writes_;
        f_.Commit(s, {{1, seed + 1}, {2, seed + 2}, {3, seed + 3}, {4, seed + 4}}, 4);
      }
    }
  }
  uint64_t Hits() { return f_.store().Stats().location_cache.hits; }
  void DropScratch() { REQUIRE(f_.store().DropTimeline(scratch_).ok()); }

  // Every page of the reader's state `state` (page -> seed, 0: zeros), read
  // twice: the second read answers from the cache where the first searched.
  void Check(Lsn state, const std::map<PageNo, uint64_t>& expected) {
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& [pgno, seed] : expected) {
        std::string out;
        Status s = f_.store().ReadPage(reader_, pgno, state, &out);
        INFO("state " << state << " page " << pgno << " pass " << pass << ": " << s.ToString());
        REQUIRE(s.ok());
        CHECK(out == PageData(seed));
      }
    }
  }

 private:
  StoreFixture f_;
  TimelineId base_ = 0;
  Lsn base_head_ = 0;
  TimelineId reader_ = 0;
  TimelineId scratch_ = 0;
  std::vector<TimelineId> siblings_;
  uint64_t writes_ = 0;
};

TEST_CASE("Reads through the location cache see the run's own newer versions, sealed or not") {
  SiblingsFixture s;
  s.SiblingsRewrite(3);
  // A commit of its own makes the reader's state newer than every sealed
  // segment: its reads of pages 1..4 search them all, then remember.
  const Lsn h1 = s.f().Commit(s.reader(), {{5, 505}}, 5);
  std::map<PageNo, uint64_t> at_h1 = {{1, 101}, {2, 102}, {3, 103}, {4, 104}, {5, 505}};
  const uint64_t hits_before = s.Hits();
  s.Check(h1, at_h1);
  CHECK(s.Hits() > hits_before);  // the second pass was answered from the cache

  // Its own version in memory, newer than the cached answer.
  const Lsn h2 = s.f().Commit(s.reader(), {{2, 202}}, 5);
  std::map<PageNo, uint64_t> at_h2 = at_h1;
  at_h2[2] = 202;
  s.Check(h2, at_h2);

  // Its own version sealed away before the run's next read of the page: the
  // cached answer (from h1) is older, and the segment holding the new one is
  // above it.
  const Lsn h3 = s.f().Commit(s.reader(), {{3, 303}}, 5);
  s.SiblingsRewrite(2);
  std::map<PageNo, uint64_t> at_h3 = at_h2;
  at_h3[3] = 303;
  s.Check(h3, at_h3);
  // Older states of the run after newer reads: not from the newer answers.
  s.Check(h1, at_h1);
  s.Check(h2, at_h2);
  s.Check(h3, at_h3);
}

TEST_CASE("Reads through the location cache see a shrink's zero versions") {
  SiblingsFixture s;
  s.SiblingsRewrite(2);
  const Lsn h1 = s.f().Commit(s.reader(), {{1, 111}}, 4);
  const std::map<PageNo, uint64_t> at_h1 = {{1, 111}, {2, 102}, {3, 103}, {4, 104}};
  s.Check(h1, at_h1);
  // Shrink to two pages (zero versions of 3 and 4), grow back to four
  // without writing them, then seal those versions away.
  s.f().Commit(s.reader(), {{1, 112}}, 2);
  const Lsn grown = s.f().Commit(s.reader(), {{1, 113}}, 4);
  s.SiblingsRewrite(2);
  s.Check(grown, {{1, 113}, {2, 102}, {3, 0}, {4, 0}});
  s.Check(h1, at_h1);
}

TEST_CASE("Reads through the location cache stay right when GC and compaction move versions") {
  SiblingsFixture s(/*mixed=*/true);
  const Lsn h1 = s.f().Commit(s.reader(), {{5, 505}}, 5);
  const std::map<PageNo, uint64_t> at_h1 = {{1, 101}, {2, 102}, {3, 103}, {4, 104}, {5, 505}};
  s.Check(h1, at_h1);
  const Lsn h2 = s.f().Commit(s.reader(), {{2, 202}}, 5);
  std::map<PageNo, uint64_t> at_h2 = at_h1;
  at_h2[2] = 202;
  s.Check(h2, at_h2);
  // Everything but the heads and h1 is collected; compaction rewrites the
  // segments the cached answers point into (and deletes them).
  s.DropScratch();
  s.f().clock().Advance(3'600'000'000);
  GcOptions gc;
  gc.restore_window_micros = 0;
  gc.pins = {h1};
  auto stats = s.f().store().Gc(gc);
  INFO(stats.status().ToString());
  REQUIRE(stats.ok());
  CHECK(stats->segments_rewritten > 0);
  s.Check(h2, at_h2);
  s.Check(h1, at_h1);
  // And after a reopen (the cache starts empty).
  s.f().Reopen();
  s.Check(h2, at_h2);
  s.Check(h1, at_h1);
}

TEST_CASE("A rollback's first reads are answered through the rolled-back run's cached answers") {
  SiblingsFixture s;
  s.SiblingsRewrite(3);
  const Lsn h1 = s.f().Commit(s.reader(), {{5, 505}}, 5);
  const std::map<PageNo, uint64_t> at_h1 = {{1, 101}, {2, 102}, {3, 103}, {4, 104}, {5, 505}};
  s.Check(h1, at_h1);  // searches, then remembers
  s.f().Commit(s.reader(), {{1, 111}}, 5);
  // Back to h1: a new run, based on the reader's run at h1.
  auto undo = s.f().store().ResetTimeline(s.reader(), s.Head(s.reader()), h1, "rollback");
  REQUIRE(undo.ok());
  const uint64_t hits = s.Hits();
  std::string out;
  for (PageNo p = 1; p <= 4; ++p) {  // pages 1..4 of the base, each cached for h1
    REQUIRE(s.f().store().ReadPageAt(*undo, p, &out).ok());
    CHECK(out == PageData(at_h1.at(p)));
  }
  CHECK(s.Hits() >= hits + 4);
}

// Rollbacks, undos and branches of the reader, each a new run whose reads
// may be answered through an ancestor run's cached answer (the run it is
// based on, or that one's base), while the reader and its branches go on
// writing and siblings fill segments with versions of the same pages. Every
// state made is read back, page by page, at random against a model.
TEST_CASE("Reads through an ancestor's cached answer match a model of rollbacks and branches") {
  // Small segments (the versions mostly sealed) and one large one (all of
  // them in memory, many per page: answers cached from the in-memory index).
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u, 6u}) {
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    auto pick = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
    SiblingsFixture s(false, seed <= 4 ? kSegmentBytes : (64 << 20));
    // Page -> content seed of every state made (absent: zeros).
    std::map<Lsn, std::map<PageNo, uint64_t>> states;
    std::vector<Lsn> made;  // the same states, in the order made
    auto add = [&](Lsn lsn, std::map<PageNo, uint64_t> pages) {
      states[lsn] = std::move(pages);
      made.push_back(lsn);
    };
    const std::map<PageNo, uint64_t> base = {{1, 101}, {2, 102}, {3, 103}, {4, 104}};
    std::vector<TimelineId> timelines = {s.reader()};
    add(s.Head(s.reader()), base);
    constexpr PageNo kPages = 6;
    uint64_t next_seed = 10000;
    auto read = [&](Lsn state) {
      const auto& expected = states.at(state);
      const PageNo pgno = 1 + static_cast<PageNo>(pick(kPages));
      auto it = expected.find(pgno);
      std::string out;
      Status st = s.f().store().ReadPageAt(state, pgno, &out);
      INFO("state " << state << " page " << pgno << ": " << st.ToString());
      REQUIRE(st.ok());
      CHECK(out == PageData(it == expected.end() ? 0 : it->second));
    };
    for (int step = 0; step < 300; ++step) {
      const TimelineId t = timelines[pick(timelines.size())];
      const Lsn head = s.Head(t);
      switch (pick(6)) {
        case 0: {  // a commit of one or two pages
          auto pages = states.at(head);
          std::map<PageNo, uint64_t> writes;
          for (int n = 1 + static_cast<int>(pick(2)); n > 0; --n) {
            writes[1 + static_cast<PageNo>(pick(kPages))] = ++next_seed;
          }
          for (const auto& [pgno, v] : writes) pages[pgno] = v;
          add(s.f().Commit(t, writes, kPages), std::move(pages));
          break;
        }
        case 1: {  // a rollback (or undo) to any state made on the way
          const Lsn to = made[pick(made.size())];
          auto r = s.f().store().ResetTimeline(t, head, to, "rollback");
          REQUIRE(r.ok());
          add(*r, states.at(to));
          break;
        }
        case 2: {  // a branch of any state
          if (timelines.size() >= 6) break;
          const Lsn from = made[pick(made.size())];
          auto b = s.f().store().CreateTimeline(from, "branch");
          REQUIRE(b.ok());
          timelines.push_back(*b);
          add(s.Head(*b), states.at(from));
          break;
        }
        case 3:
          s.SiblingsRewrite(1);
          break;
        default:  // reads: the head, twice (the second may hit), and any state
          read(s.Head(t));
          read(s.Head(t));
          read(made[pick(made.size())]);
      }
    }
    for (Lsn state : made) {
      for (int i = 0; i < 3; ++i) read(state);
    }
    INFO("location cache hits " << s.Hits());
    CHECK(s.Hits() > 0);
  }
}

}  // namespace
}  // namespace branchdb::storage::testing
