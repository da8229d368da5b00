// Randomized model test of the PageStore: thousands of random operations
// (create at random states, commits, shrinks, resets, drops, reads at random
// LSNs, history, LsnAt, ChangedPages, GC with random pins and windows under a
// MockClock, reopen), each checked against a simple in-memory model.
//
// The seed is printed; BRANCHDB_SEED=<n> reproduces a run and
// BRANCHDB_MODEL_OPS=<n> changes the number of operations (default 3000).
#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "tests/storage/store_test_util.h"
#include "tests/util/test_env.h"

namespace branchdb::storage::testing {
namespace {

using ::branchdb::testing::EnvU64;
using ::branchdb::testing::TestSeed;

struct ModelState {
  std::map<PageNo, uint64_t> pages;  // seed of each non-zero page
  uint32_t db_size = 0;
  Lsn prev = 0;  // previous record on the history of this state (0: none)
  int64_t time = 0;
  bool collected = false;
  TimelineId timeline = 0;  // the timeline the record was written to
};

class Model {
 public:
  std::map<Lsn, ModelState> states;
  std::map<TimelineId, Lsn> heads;  // live timelines
  Lsn last = 0;

  const ModelState& At(Lsn l) const { return states.at(l); }
  bool Readable(Lsn l) const { return l == 0 || (states.count(l) && !states.at(l).collected); }

  // Newest record on t's history at or before lsn: {found, lsn}. found=false: none;
  // a collected record returns found=true with collected set in *dead.
  std::pair<bool, Lsn> Resolve(TimelineId t, Lsn lsn, bool* dead) const {
    *dead = false;
    for (Lsn l = heads.at(t); l != 0; l = At(l).prev) {
      if (l <= lsn) {
        *dead = At(l).collected;
        return {true, l};
      }
    }
    return {false, 0};
  }
  std::vector<Lsn> History(TimelineId t) const {
    std::vector<Lsn> out;
    for (Lsn l = heads.at(t); l != 0; l = At(l).prev) {
      if (!At(l).collected) out.push_back(l);
    }
    return out;
  }
  std::vector<Lsn> ReadableStates() const {
    std::vector<Lsn> out;
    for (const auto& [l, s] : states) {
      if (!s.collected) out.push_back(l);
    }
    return out;
  }
};

class ModelRunner {
 public:
  // long_history: mostly commits, new timelines branched from the newest
  // timeline's head (deep ancestor chains), segments of segment_bytes.
  explicit ModelRunner(uint64_t seed, uint64_t segment_bytes = 48 << 10, bool long_history = false)
      : rng_(seed), f_(segment_bytes), long_history_(long_history) {}

  void Run(uint64_t ops) {
    for (uint64_t i = 0; i < ops; ++i) {
      op_ = i;
      f_.clock().Advance(Uniform(0, 3'000'000));
      uint64_t dice = Uniform(0, 99);
      if (long_history_ && !m_.heads.empty()) {
        // Commits 72%, deep creates 3%, then reads, GC and reopens now and then.
        if (dice < 72) {
          DoCommit();
        } else if (dice < 75) {
          DoDeepCreate();
        } else if (dice < 77) {
          DoReset();
        } else if (dice < 91) {
          DoRead();
        } else if (dice < 93) {
          DoChangedPages();
        } else if (dice < 95) {
          DoHistory();
        } else if (dice < 97) {
          DoGc();
        } else if (dice < 98) {
          f_.Reopen();
        } else {
          DoDrop();
        }
        if (i % 4000 == 3999) VerifyAll();
        continue;
      }
      if (m_.heads.empty() || dice < 8) {
        DoCreate();
      } else if (dice < 45) {
        DoCommit();
      } else if (dice < 52) {
        DoReset();
      } else if (dice < 55) {
        DoDrop();
      } else if (dice < 75) {
        DoRead();
      } else if (dice < 82) {
        DoHistory();
      } else if (dice < 86) {
        DoLsnAt();
      } else if (dice < 90) {
        DoChangedPages();
      } else if (dice < 94) {
        DoGc();
      } else if (dice < 97) {
        f_.Reopen();
      } else {
        DoConflict();
      }
      if (i % 500 == 499) VerifyAll();
    }
    f_.Reopen();
    VerifyAll();
  }

 private:
  uint64_t Uniform(uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  template <typename T>
  T Pick(const std::vector<T>& v) {
    return v[Uniform(0, v.size() - 1)];
  }
  TimelineId RandomTimeline() {
    std::vector<TimelineId> ids;
    for (const auto& [id, h] : m_.heads) ids.push_back(id);
    return Pick(ids);
  }
  Lsn RandomReadable() {
    auto r = m_.ReadableStates();
    if (r.empty() || Uniform(0, 9) == 0) return 0;
    return Pick(r);
  }
  void AddState(Lsn lsn, ModelState s, TimelineId t) {
    INFO("op " << op_);
    REQUIRE(lsn == m_.last + 1);
    m_.last = lsn;
    s.time = f_.clock().NowMicros();
    s.timeline = t;
    m_.states[lsn] = std::move(s);
  }
  ModelState From(Lsn base) const {
    ModelState s;
    if (base != 0) {
      s.pages = m_.At(base).pages;
      s.db_size = m_.At(base).db_size;
    }
    s.prev = base;
    return s;
  }

  void DoCreate() {
    if (!m_.heads.empty() && Uniform(0, 1) == 0) {
      TimelineId a = RandomTimeline();
      Lsn at = Uniform(0, m_.last + 1);
      bool dead = false;
      auto [found, l] = m_.Resolve(a, at, &dead);
      auto r = f_.store().CreateTimeline(a, at, "c");
      if (!found || dead) {
        CHECK(r.status().IsNotFound());
        return;
      }
      INFO("op " << op_ << " " << r.status().ToString());
      REQUIRE(r.ok());
      AddState(m_.last + 1, From(l), *r);
      m_.heads[*r] = m_.last;
      return;
    }
    Lsn base = RandomReadable();
    TimelineId t = f_.Create(base, "create");
    AddState(*f_.store().Head(t), From(base), t);
    m_.heads[t] = m_.last;
  }

  // A new timeline from the head of the newest live one: chains grow deep.
  void DoDeepCreate() {
    const TimelineId newest = m_.heads.rbegin()->first;
    const Lsn base = m_.heads.at(newest);
    TimelineId t = f_.Create(base, "deep");
    AddState(*f_.store().Head(t), From(base), t);
    m_.heads[t] = m_.last;
  }

  void DoCommit() {
    TimelineId t = RandomTimeline();
    Lsn head = m_.heads[t];
    ModelState s = From(head);
    uint32_t old_size = s.db_size;
    uint32_t size = old_size;
    uint64_t shape = Uniform(0, 9);
    if (shape == 0) {
      size = static_cast<uint32_t>(Uniform(0, old_size));
    } else if (shape < 3) {
      size = static_cast<uint32_t>(old_size + Uniform(1, 4));
    }
    if (size == 0 && Uniform(0, 1) == 0) size = 1;
    for (auto it = s.pages.begin(); it != s.pages.end();) {
      it = it->first > size ? s.pages.erase(it) : std::next(it);
    }
    s.db_size = size;
    std::map<PageNo, uint64_t> writes;
    if (size > 0) {
      uint64_t n = Uniform(0, std::min<uint64_t>(4, size));
      for (uint64_t k = 0; k < n; ++k) {
        writes[static_cast<PageNo>(Uniform(1, size))] = Uniform(1, 1ull << 40);
      }
    }
    for (const auto& [p, seed] : writes) s.pages[p] = seed;
    Lsn lsn = f_.Commit(t, writes, size, "commit");
    AddState(lsn, std::move(s), t);
    m_.heads[t] = lsn;
  }

  void DoReset() {
    TimelineId t = RandomTimeline();
    Lsn base = RandomReadable();
    auto r = f_.store().ResetTimeline(t, m_.heads[t], base, "reset");
    INFO("op " << op_ << " " << r.status().ToString());
    REQUIRE(r.ok());
    AddState(*r, From(base), t);
    m_.heads[t] = *r;
  }

  void DoDrop() {
    if (m_.heads.size() < 2) return;
    TimelineId t = RandomTimeline();
    REQUIRE(f_.store().DropTimeline(t).ok());
    AddState(f_.store().LastLsn(), From(m_.heads[t]), t);
    m_.heads.erase(t);
    CHECK(f_.store().Head(t).status().IsNotFound());
  }

  void CheckPage(Lsn state, PageNo p) {
    const ModelState& s = m_.At(state);
    auto it = s.pages.find(p);
    uint64_t seed = (p <= s.db_size && it != s.pages.end()) ? it->second : 0;
    std::string out;
    Status st = f_.store().ReadPageAt(state, p, &out);
    INFO("op " << op_ << " state " << state << " page " << p << " " << st.ToString());
    REQUIRE(st.ok());
    REQUIRE(out == PageData(seed));
  }

  void DoRead() {
    if (Uniform(0, 1) == 0) {
      Lsn l = Uniform(1, m_.last + 1);
      std::string out;
      if (!m_.Readable(l)) {
        CHECK(f_.store().ReadPageAt(l, 1, &out).IsNotFound());
        return;
      }
      CHECK(*f_.store().DbSizeAt(l) == m_.At(l).db_size);
      for (PageNo p = 1; p <= m_.At(l).db_size + 1; ++p) CheckPage(l, p);
      return;
    }
    TimelineId t = RandomTimeline();
    Lsn at = Uniform(0, m_.last + 1);
    bool dead = false;
    auto [found, l] = m_.Resolve(t, at, &dead);
    auto r = f_.store().ResolveLsn(t, at);
    INFO("op " << op_ << " timeline " << t << " at " << at << " " << r.status().ToString());
    if (!found || dead) {
      CHECK(r.status().reason() == "lsn_not_found");
      return;
    }
    REQUIRE(r.ok());
    REQUIRE(*r == l);
    PageNo p = static_cast<PageNo>(Uniform(1, m_.At(l).db_size + 1));
    std::string out;
    REQUIRE(f_.store().ReadPage(t, p, at, &out).ok());
    const ModelState& s = m_.At(l);
    auto it = s.pages.find(p);
    CHECK(out == PageData(p <= s.db_size && it != s.pages.end() ? it->second : 0));
    CHECK(*f_.store().DbSize(t, at) == s.db_size);
  }

  void DoHistory() {
    TimelineId t = RandomTimeline();
    auto h = f_.store().History(t, 0, 1u << 30);
    INFO("op " << op_);
    REQUIRE(h.ok());
    std::vector<Lsn> got;
    for (const auto& r : *h) got.push_back(r.lsn);
    REQUIRE(got == m_.History(t));
    CHECK(*f_.store().Head(t) == m_.heads[t]);
    // Its own records, reached by its history or left behind by a reset.
    const Lsn before = Uniform(0, 1) == 0 ? 0 : Uniform(1, m_.last);
    const size_t limit = Uniform(1, 40);
    std::vector<Lsn> own;
    for (auto it = m_.states.rbegin(); it != m_.states.rend() && own.size() < limit; ++it) {
      const ModelState& s = it->second;
      if ((before == 0 || it->first <= before) && s.timeline == t && !s.collected) {
        own.push_back(it->first);
      }
    }
    auto o = f_.store().OwnRecords(t, before, limit);
    INFO("own records of " << t << " at or below " << before << ", at most " << limit);
    REQUIRE(o.ok());
    got.clear();
    for (const auto& r : *o) got.push_back(r.lsn);
    REQUIRE(got == own);
  }

  void DoLsnAt() {
    TimelineId t = RandomTimeline();
    int64_t now = f_.clock().NowMicros();
    int64_t when = now - static_cast<int64_t>(Uniform(0, 600'000'000));
    Lsn expect = 0;
    bool dead = false;
    for (Lsn l = m_.heads[t]; l != 0; l = m_.At(l).prev) {
      if (m_.At(l).time <= when) {
        expect = l;
        dead = m_.At(l).collected;
        break;
      }
    }
    auto r = f_.store().LsnAt(t, when);
    INFO("op " << op_);
    if (expect == 0 || dead) {
      CHECK(r.status().IsNotFound());
    } else {
      REQUIRE(r.ok());
      CHECK(*r == expect);
    }
  }

  void DoChangedPages() {
    Lsn a = RandomReadable();
    Lsn b = RandomReadable();
    auto r = f_.store().ChangedPages(a, b);
    INFO("op " << op_ << " " << a << " vs " << b);
    REQUIRE(r.ok());
    std::set<PageNo> got(r->begin(), r->end());
    ModelState sa = a ? m_.At(a) : ModelState();
    ModelState sb = b ? m_.At(b) : ModelState();
    uint32_t max = std::max(sa.db_size, sb.db_size);
    for (PageNo p = 1; p <= max; ++p) {
      auto ia = sa.pages.find(p);
      auto ib = sb.pages.find(p);
      uint64_t xa = p <= sa.db_size && ia != sa.pages.end() ? ia->second : 0;
      uint64_t xb = p <= sb.db_size && ib != sb.pages.end() ? ib->second : 0;
      if (xa != xb) CHECK(got.count(p) == 1);
    }
  }

  void DoGc() {
    f_.clock().Advance(Uniform(0, 120'000'000));
    GcOptions o;
    o.restore_window_micros = static_cast<int64_t>(Uniform(0, 200'000'000));
    auto readable = m_.ReadableStates();
    for (uint64_t k = Uniform(0, 3); k > 0 && !readable.empty(); --k) o.pins.push_back(Pick(readable));
    auto r = f_.store().Gc(o);
    INFO("op " << op_ << " " << r.status().ToString());
    REQUIRE(r.ok());
    int64_t oldest = f_.clock().NowMicros() - o.restore_window_micros;
    std::set<Lsn> roots(o.pins.begin(), o.pins.end());
    for (const auto& [t, h] : m_.heads) roots.insert(h);
    for (auto& [l, s] : m_.states) {
      if (!s.collected && !roots.count(l) && s.time < oldest) s.collected = true;
    }
  }

  void DoConflict() {
    TimelineId t = RandomTimeline();
    Lsn wrong = m_.heads[t] == 1 ? 2 : m_.heads[t] - 1;
    auto r = f_.store().Commit(t, wrong, {}, 0, "");
    CHECK(r.status().reason() == "head_moved");
  }

  void VerifyAll() {
    INFO("verify after op " << op_);
    REQUIRE(f_.store().LastLsn() == m_.last);
    for (const auto& [l, s] : m_.states) {
      std::string out;
      if (s.collected) {
        CHECK(f_.store().ReadPageAt(l, 1, &out).IsNotFound());
        continue;
      }
      REQUIRE(*f_.store().DbSizeAt(l) == s.db_size);
      for (PageNo p = 1; p <= s.db_size; ++p) CheckPage(l, p);
    }
    auto list = f_.store().ListTimelines();
    REQUIRE(list.size() == m_.heads.size());
    for (const auto& t : list) CHECK(m_.heads.at(t.id) == t.head);
  }

  std::mt19937_64 rng_;
  StoreFixture f_;
  const bool long_history_;
  Model m_;
  uint64_t op_ = 0;
};

TEST_CASE("Random operations agree with the model") {
  const uint64_t seed = TestSeed("model_test");
  const uint64_t ops = EnvU64("BRANCHDB_MODEL_OPS", 3000);
  INFO("BRANCHDB_SEED=" << seed);
  ModelRunner runner(seed);
  runner.Run(ops);
}

TEST_CASE("Long histories over many small sealed segments agree with the model") {
  // Thousands of commits in segments of 16 KiB (three or four records each,
  // so nearly every version is in a sealed segment's on-disk page index),
  // branches of branches, GC and reopens in between, reads at random LSNs.
  const uint64_t seed = TestSeed("model_test long");
  const uint64_t ops = EnvU64("BRANCHDB_MODEL_LONG_OPS", 12000);
  INFO("BRANCHDB_SEED=" << seed);
  ModelRunner runner(seed, 16 << 10, true);
  runner.Run(ops);
}

}  // namespace
}  // namespace branchdb::storage::testing
