// Helpers shared by the page store tests: a store in a temporary directory
// with a MockClock, deterministic page contents, and a full-state snapshot
// used to compare a store's answers before and after a reopen.
#ifndef BRANCHDB_TESTS_STORAGE_STORE_TEST_UTIL_H_
#define BRANCHDB_TESTS_STORAGE_STORE_TEST_UTIL_H_

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/mock_clock.h"
#include "storage/page_store.h"
#include "tests/util/temp_dir.h"

namespace branchdb::storage::testing {

// A page whose bytes are derived from seed (seed 0: all zeros). Two seeds
// in three leave a run of zeros inside it, of a length and at an offset the
// seed picks (none, a few bytes, most of the page), as SQLite's b-tree pages
// have free space: the store leaves such a hole out of the image it writes.
inline std::string PageData(uint64_t seed) {
  std::string p(kPageSize, '\0');
  if (seed == 0) return p;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < kPageSize; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    for (size_t k = 0; k < 8; ++k) p[i + k] = static_cast<char>(x >> (8 * k));
  }
  if (seed % 3 != 0) {
    const size_t at = 1 + seed % 1021;
    const size_t len = std::min(kPageSize - at, seed % 3 == 1 ? seed % 3001 : seed % 13);
    std::fill(p.begin() + static_cast<ptrdiff_t>(at), p.begin() + static_cast<ptrdiff_t>(at + len),
              '\0');
  }
  return p;
}

class StoreFixture {
 public:
  explicit StoreFixture(uint64_t segment_bytes = 64ull << 20, Env* base = Env::Default())
      : env_(base, &clock_) {
    options_.env = &env_;
    options_.segment_bytes = segment_bytes;
    options_.cache_bytes = 1 << 20;
    options_.cache_page_images = true;  // the cached path is the one to prove
    Reopen();
  }

  void Reopen() {
    store_.reset();
    auto s = PageStore::Open(options_, path());
    INFO(s.status().ToString());
    REQUIRE(s.ok());
    store_ = std::move(*s);
  }
  void Close() { store_.reset(); }

  PageStore& store() { return *store_; }
  MockClock& clock() { return clock_; }
  Env& env() { return env_; }
  PageStoreOptions& options() { return options_; }
  std::string path() const { return dir_.Sub("store"); }

  // Commits pages {pgno -> content seed} on top of the current head.
  Lsn Commit(TimelineId t, const std::map<PageNo, uint64_t>& pages, uint32_t db_size,
             std::string annotation = "") {
    auto head = store_->Head(t);
    REQUIRE(head.ok());
    std::vector<std::string> data;
    std::vector<PageWrite> writes;
    for (const auto& [pgno, seed] : pages) data.push_back(PageData(seed));
    size_t i = 0;
    for (const auto& [pgno, seed] : pages) writes.push_back(PageWrite{pgno, data[i++]});
    auto r = store_->Commit(t, *head, writes, db_size, annotation);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return *r;
  }

  TimelineId Create(Lsn base, std::string annotation = "") {
    auto r = store_->CreateTimeline(base, annotation);
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return *r;
  }

  std::string ReadAt(Lsn state, PageNo pgno) {
    std::string out;
    Status s = store_->ReadPageAt(state, pgno, &out);
    INFO(s.ToString());
    REQUIRE(s.ok());
    return out;
  }

 private:
  ::branchdb::testing::TempDir dir_;
  MockClock clock_;
  EnvWithClock env_;
  PageStoreOptions options_;
  std::unique_ptr<PageStore> store_;
};

// Everything a store answers about its states, for before/after comparisons.
struct Snapshot {
  std::vector<TimelineInfo> timelines;
  std::map<Lsn, std::vector<std::string>> pages;  // state -> page images 1..db_size
  std::map<Lsn, RecordInfo> records;
  std::map<TimelineId, std::vector<Lsn>> history;
  Lsn last_lsn = 0;
};

inline Snapshot TakeSnapshot(PageStore& store) {
  Snapshot s;
  s.timelines = store.ListTimelines();
  s.last_lsn = store.LastLsn();
  for (Lsn l = 1; l <= s.last_lsn; ++l) {
    auto rec = store.GetRecord(l);
    if (!rec.ok()) continue;
    s.records[l] = *rec;
    std::vector<std::string>& pages = s.pages[l];
    for (PageNo p = 1; p <= rec->db_size_pages; ++p) {
      std::string out;
      REQUIRE(store.ReadPageAt(l, p, &out).ok());
      pages.push_back(out);
    }
  }
  for (const TimelineInfo& t : s.timelines) {
    auto h = store.History(t.id, 0, 1000000);
    REQUIRE(h.ok());
    for (const RecordInfo& r : *h) s.history[t.id].push_back(r.lsn);
  }
  return s;
}

inline void RequireSameSnapshot(const Snapshot& a, const Snapshot& b) {
  REQUIRE(a.last_lsn == b.last_lsn);
  REQUIRE(a.timelines.size() == b.timelines.size());
  for (size_t i = 0; i < a.timelines.size(); ++i) {
    CHECK(a.timelines[i].id == b.timelines[i].id);
    CHECK(a.timelines[i].head == b.timelines[i].head);
    CHECK(a.timelines[i].created_lsn == b.timelines[i].created_lsn);
    CHECK(a.timelines[i].base == b.timelines[i].base);
    CHECK(a.timelines[i].created_micros == b.timelines[i].created_micros);
  }
  REQUIRE(a.records.size() == b.records.size());
  for (const auto& [lsn, r] : a.records) {
    const RecordInfo& o = b.records.at(lsn);
    CHECK(r.kind == o.kind);
    CHECK(r.timeline == o.timeline);
    CHECK(r.time_micros == o.time_micros);
    CHECK(r.db_size_pages == o.db_size_pages);
    CHECK(r.base == o.base);
    CHECK(r.annotation == o.annotation);
    CHECK(r.pages == o.pages);
  }
  CHECK(a.pages == b.pages);
  CHECK(a.history == b.history);
}

}  // namespace branchdb::storage::testing

#endif  // BRANCHDB_TESTS_STORAGE_STORE_TEST_UTIL_H_
