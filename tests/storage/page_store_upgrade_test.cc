// A store written by the previous format's build (format 4, a369ccc) opens
// in this one: every state reads as it did, new records go to format-5
// segments, and compaction rewrites the old segments' images in format 5.
// The fixture, tests/storage/data/format4/, was written by the program in
// its README.md; expected.txt lists every state's pages.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/coding.h"
#include "base/env.h"
#include "storage/log_format.h"
#include "tests/storage/store_test_util.h"

namespace branchdb::storage {
namespace {

using testing::StoreFixture;

const std::string kFixture = std::string(BRANCHDB_SOURCE_DIR) + "/tests/storage/data/format4";

// The pages of the fixture (its writer has the same function).
std::string FixturePage(uint64_t seed) {
  std::string p(kPageSize, '\0');
  if (seed == 0) return p;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 7;
  const size_t front = 8 + seed % 200;
  const size_t back = seed % 5 == 0 ? kPageSize - front : seed % 1500;
  for (size_t i = 0; i < kPageSize; ++i) {
    if (i >= front && i < kPageSize - back) continue;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = static_cast<char>(x | 1);
  }
  return p;
}

std::string Payload(uint64_t seed, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (seed + i) % 26);
  return s;
}

struct Expected {
  struct Page {
    Lsn lsn;
    PageNo pgno;
    uint64_t seed;
  };
  std::vector<Page> pages;
  Lsn payload_lsn = 0;
  size_t payload_len = 0;
  uint64_t payload_seed = 0;
};

Expected ReadExpected() {
  Expected e;
  std::ifstream in(kFixture + "/expected.txt");
  REQUIRE(in.good());
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    if (kind == "page") {
      Expected::Page p{};
      fields >> p.lsn >> p.pgno >> p.seed;
      e.pages.push_back(p);
    } else if (kind == "payload") {
      fields >> e.payload_lsn >> e.payload_len >> e.payload_seed;
    }
  }
  REQUIRE(e.pages.size() > 500);
  REQUIRE(e.payload_lsn != 0);
  return e;
}

void CheckStates(PageStore& store, const Expected& e) {
  for (const Expected::Page& p : e.pages) {
    std::string out;
    Status s = store.ReadPageAt(p.lsn, p.pgno, &out);
    INFO("LSN " << p.lsn << " page " << p.pgno << ": " << s.ToString());
    REQUIRE(s.ok());
    REQUIRE(out == FixturePage(p.seed));
  }
  auto payload = store.ReadPayload(e.payload_lsn);
  REQUIRE(payload.ok());
  CHECK(*payload == Payload(e.payload_seed, e.payload_len));
}

// The format version in each segment file's header, by file name.
std::vector<uint32_t> SegmentVersions(Env& env, const std::string& dir) {
  std::vector<uint32_t> out;
  auto children = env.GetChildren(dir);
  REQUIRE(children.ok());
  for (const std::string& c : *children) {
    uint64_t n = 0;
    if (!internal::ParseSegmentFileName(c, &n)) continue;
    auto data = env.ReadFileToString(JoinPath(dir, c));
    REQUIRE(data.ok());
    out.push_back(coding::DecodeFixed32(data->data() + 8));
  }
  return out;
}

TEST_CASE("A format-4 store opens, reads every state, and moves to format 5") {
  StoreFixture f(40 << 10);  // the fixture's segment size
  f.Close();
  auto children = f.env().GetChildren(kFixture + "/store");
  REQUIRE(children.ok());
  REQUIRE(f.env().CreateDirs(f.path()).ok());
  for (const std::string& c : *children) {
    auto data = f.env().ReadFileToString(kFixture + "/store/" + c);
    REQUIRE(data.ok());
    REQUIRE(f.env().WriteFileAtomic(JoinPath(f.path(), c), *data).ok());
  }
  std::vector<uint32_t> before = SegmentVersions(f.env(), f.path());
  REQUIRE(before.size() >= 4);
  for (uint32_t v : before) CHECK(v == 4);
  const Expected e = ReadExpected();
  f.clock().Set(1893456000ll * 1000000);  // 2030: after the fixture's records (written in 2026)

  f.Reopen();
  CHECK(f.store().Damage().empty());
  CheckStates(f.store(), e);
  f.Reopen();  // through MANIFEST's descriptors of the format-4 segments
  CheckStates(f.store(), e);

  // The format-4 tail is sealed before the first new record.
  const TimelineId main_timeline = 1;
  Lsn head = 0;
  for (uint64_t i = 0; i < 40; ++i) {
    head = f.Commit(main_timeline, {{1 + i % 9, 9000 + i}}, 9);
  }
  std::vector<uint32_t> after = SegmentVersions(f.env(), f.path());
  CHECK(std::count(after.begin(), after.end(), 4u) == static_cast<long>(before.size()));
  CHECK(std::count(after.begin(), after.end(), internal::kFormatVersion) >= 1);
  CheckStates(f.store(), e);

  // GC with only the timelines' heads as roots: the old segments are mostly
  // garbage, and compaction rewrites what they keep in format 5.
  std::vector<std::string> heads;
  for (PageNo p = 1; p <= 9; ++p) heads.push_back(f.ReadAt(head, p));
  f.clock().Advance(30ll * 24 * 3600 * 1000000);
  GcOptions gc;
  gc.restore_window_micros = 0;
  auto r = f.store().Gc(gc);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->segments_rewritten >= 2);
  f.Reopen();
  CHECK(f.store().Damage().empty());
  for (PageNo p = 1; p <= 9; ++p) CHECK(f.ReadAt(head, p) == heads[p - 1]);
  const std::vector<uint32_t> compacted = SegmentVersions(f.env(), f.path());
  CHECK(std::count(compacted.begin(), compacted.end(), 4u) < static_cast<long>(before.size()));
}

}  // namespace
}  // namespace branchdb::storage
