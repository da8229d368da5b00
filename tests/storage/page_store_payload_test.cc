// Record payloads (format 2): bytes a commit stores on disk only, for the
// checkpoint's full SQL script. They are durable with their record, read back
// on demand, counted per timeline, released with their record by GC, kept by
// compaction, and never held in memory: the store's record metadata in memory
// stays bounded per commit whatever the payload's size (hardening issue #13,
// item 10). A format-1 store (no payloads) keeps opening.
#include <catch2/catch.hpp>

#include <algorithm>

#include "base/coding.h"
#include "base/crc32c.h"
#include "storage/log_format.h"
#include "tests/storage/store_test_util.h"

namespace branchdb::storage::testing {
namespace {

// A payload of n bytes that differs per seed.
std::string Payload(size_t n, uint64_t seed) {
  std::string p(n, '\0');
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return p;
}

Lsn CommitWithPayload(StoreFixture& f, TimelineId t, PageNo pgno, uint64_t seed,
                      const std::string& payload) {
  auto head = f.store().Head(t);
  REQUIRE(head.ok());
  std::string page = PageData(seed);
  auto r = f.store().Commit(t, *head, {PageWrite{pgno, page}}, std::max<PageNo>(pgno, 1),
                            "{\"summary\":\"s\"}", payload);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

std::string ReadPayload(StoreFixture& f, Lsn lsn) {
  auto p = f.store().ReadPayload(lsn);
  INFO(p.status().ToString());
  REQUIRE(p.ok());
  return *p;
}

std::vector<std::string> SegmentFiles(Env& env, const std::string& dir) {
  auto children = env.GetChildren(dir);
  REQUIRE(children.ok());
  std::vector<std::string> out;
  for (const auto& c : *children) {
    if (c.rfind("seg-", 0) == 0) out.push_back(JoinPath(dir, c));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void WriteWhole(Env& env, const std::string& path, const std::string& data) {
  auto f = env.NewWritableFile(path, Env::OpenMode::kTruncate);
  REQUIRE(f.ok());
  REQUIRE((*f)->Append(data).ok());
  REQUIRE((*f)->Sync().ok());
}

TEST_CASE("A payload is read back exactly, also after a reopen and from sealed segments") {
  StoreFixture f(256 << 10);  // small segments: payloads end up in sealed ones too
  TimelineId t = f.Create(0);
  std::map<Lsn, std::string> written;
  for (uint64_t i = 1; i <= 12; ++i) {
    std::string p = Payload(50'000 + i, i);
    written[CommitWithPayload(f, t, 1 + i % 3, i, p)] = p;
  }
  Lsn none = f.Commit(t, {{1, 99}}, 3, "no payload");
  auto check = [&] {
    for (const auto& [lsn, p] : written) {
      CHECK(ReadPayload(f, lsn) == p);
      auto rec = f.store().GetRecord(lsn);
      REQUIRE(rec.ok());
      CHECK(rec->payload_bytes == p.size());
      CHECK(rec->annotation == "{\"summary\":\"s\"}");
    }
    CHECK(ReadPayload(f, none).empty());
    CHECK(f.store().GetRecord(none)->payload_bytes == 0);
    CHECK(f.ReadAt(none, 1) == PageData(99));
  };
  check();
  REQUIRE(SegmentFiles(f.env(), f.path()).size() > 2);
  f.Reopen();
  check();
  CHECK(f.store().ReadPayload(f.store().LastLsn() + 5).status().reason() == "lsn_not_found");
}

TEST_CASE("Record metadata in memory is bounded per commit, whatever the payload's size") {
  // The same 40 commits, once with 256 KiB payloads (as 1 MiB scripts were
  // kept in annotations before), once without: the store holds no more
  // metadata in memory (less: the payloads fill segments, whose records'
  // entries then stay on disk), and counts the payloads instead.
  auto run = [](size_t payload_bytes) {
    StoreFixture f(4 << 20);
    TimelineId t = f.Create(0);
    for (uint64_t i = 1; i <= 40; ++i) {
      CommitWithPayload(f, t, 1, i, payload_bytes ? Payload(payload_bytes, i) : "");
    }
    uint64_t in_memory = f.store().RecordMetadataBytes();
    uint64_t counted = f.store().PayloadBytes(t);
    f.Reopen();  // recovery rebuilds the same, from footers and the tail
    CHECK(f.store().RecordMetadataBytes() == in_memory);
    CHECK(f.store().PayloadBytes(t) == counted);
    return std::make_pair(in_memory, counted);
  };
  auto [with_payloads, counted] = run(256 << 10);
  auto [without, none] = run(0);
  CHECK(with_payloads <= without);
  CHECK(without == 41 * 48);  // create and commits, all unsealed: 48 bytes each
  CHECK(counted == 40ull * (256 << 10));
  CHECK(none == 0);
}

TEST_CASE("Payloads count per timeline until GC collects their records; compaction keeps the rest") {
  StoreFixture f(1 << 20);
  TimelineId a = f.Create(0);
  TimelineId b = f.Create(0);
  std::vector<Lsn> a_lsns;
  for (uint64_t i = 1; i <= 30; ++i) {
    a_lsns.push_back(CommitWithPayload(f, a, 1, i, Payload(100'000, i)));
  }
  Lsn b1 = CommitWithPayload(f, b, 1, 7, Payload(3'000, 7));
  CHECK(f.store().PayloadBytes(a) == 30 * 100'000);
  CHECK(f.store().PayloadBytes(b) == 3'000);
  CHECK(f.store().PayloadBytes(999) == 0);

  // A rollback keeps the records it moved away from (they stay restorable).
  auto r = f.store().ResetTimeline(a, a_lsns.back(), a_lsns[4], "rollback");
  REQUIRE(r.ok());
  CHECK(f.store().PayloadBytes(a) == 30 * 100'000);

  f.clock().AdvanceSeconds(3600);
  GcOptions o;
  o.restore_window_micros = 0;
  o.pins = {a_lsns[10]};
  auto stats = f.store().Gc(o);
  INFO(stats.status().ToString());
  REQUIRE(stats.ok());
  CHECK(stats->segments_rewritten > 0);
  // Left: a's head (the reset record, no payload; its base a_lsns[4] is read
  // through it but collected as a state), the pin, and b's head.
  CHECK(f.store().PayloadBytes(a) == 100'000);
  CHECK(f.store().PayloadBytes(b) == 3'000);
  CHECK(f.store().ReadPayload(a_lsns[3]).status().reason() == "lsn_not_found");
  CHECK(ReadPayload(f, a_lsns[10]) == Payload(100'000, 11));
  CHECK(ReadPayload(f, b1) == Payload(3'000, 7));
  CHECK(f.store().DiskBytes() < 10 * 100'000);
  f.Reopen();
  CHECK(ReadPayload(f, a_lsns[10]) == Payload(100'000, 11));
  CHECK(ReadPayload(f, b1) == Payload(3'000, 7));
  CHECK(f.store().PayloadBytes(a) == 100'000);
}

TEST_CASE("A payload cut short by a crash is a torn tail: its record was never acknowledged") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  Lsn kept = CommitWithPayload(f, t, 1, 1, Payload(10'000, 1));
  Lsn torn = CommitWithPayload(f, t, 1, 2, Payload(10'000, 2));
  const uint64_t size = f.store().DiskBytes();  // the log's end (a zero region follows)
  f.Close();
  auto files = SegmentFiles(f.env(), f.path());
  REQUIRE(files.size() == 1);
  REQUIRE(f.env().TruncateFile(files[0], size - 100).ok());
  f.Reopen();
  CHECK(f.store().LastLsn() == kept);
  CHECK(f.store().GetRecord(torn).status().IsNotFound());
  CHECK(ReadPayload(f, kept) == Payload(10'000, 1));
  CHECK(f.store().PayloadBytes(t) == 10'000);
  Lsn next = CommitWithPayload(f, t, 1, 3, Payload(10'000, 3));
  CHECK(next == kept + 1);
}

TEST_CASE("A payload whose bytes changed on disk reads as Corruption") {
  StoreFixture f(16 << 10);
  TimelineId t = f.Create(0);
  Lsn lsn = CommitWithPayload(f, t, 1, 1, Payload(20'000, 1));
  f.Commit(t, {{1, 2}}, 1);  // rolls the segment: the payload's is sealed
  f.Close();
  auto files = SegmentFiles(f.env(), f.path());
  REQUIRE(files.size() == 2);
  auto data = f.env().ReadFileToString(files[0]);
  REQUIRE(data.ok());
  size_t at = data->find(Payload(20'000, 1));
  REQUIRE(at != std::string::npos);
  (*data)[at + 2500] ^= 0x20;
  WriteWhole(f.env(), files[0], *data);
  f.Reopen();  // a sealed segment's records come from its footer: payloads are not read
  auto p = f.store().ReadPayload(lsn);
  CHECK(p.status().IsCorruption());
  CHECK(f.ReadAt(lsn, 1) == PageData(1));
}

TEST_CASE("A format-1 segment opens, and is sealed as format 1 before the first new record") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  auto created = f.store().Head(t);  // no image (a format-1 image block has no hole)
  REQUIRE(created.ok());
  const Lsn old = *created;
  f.Close();
  // Rewrite the (only, unsealed) segment's header as format 1, as an older
  // build wrote it.
  auto files = SegmentFiles(f.env(), f.path());
  REQUIRE(files.size() == 1);
  auto data = f.env().ReadFileToString(files[0]);
  REQUIRE(data.ok());
  size_t len = internal::SegmentHeaderLength(*data);
  REQUIRE(len > 0);
  REQUIRE(coding::DecodeFixed32(data->data() + 8) == internal::kFormatVersion);
  std::string v1;
  coding::PutFixed32(&v1, 1);
  data->replace(8, 4, v1);
  std::string crc;
  coding::PutFixed32(&crc, crc32c::Value(std::string_view(*data).substr(0, len - 4)));
  data->replace(len - 4, 4, crc);
  WriteWhole(f.env(), files[0], *data);

  f.Reopen();
  CHECK(f.store().GetRecord(old).ok());
  Lsn plain = f.Commit(t, {{1, 2}}, 1, "a new record: the old segment is sealed first");
  CHECK(SegmentFiles(f.env(), f.path()).size() == 2);
  Lsn with = CommitWithPayload(f, t, 1, 3, Payload(1'000, 3));
  auto after = SegmentFiles(f.env(), f.path());
  REQUIRE(after.size() == 2);  // the format-1 segment was sealed first, as format 1
  auto first = f.env().ReadFileToString(after[0]);
  REQUIRE(first.ok());
  CHECK(coding::DecodeFixed32(first->data() + first->size() - 12) == 1);
  auto second = f.env().ReadFileToString(after[1]);
  REQUIRE(second.ok());
  CHECK(coding::DecodeFixed32(second->data() + 8) == internal::kFormatVersion);
  f.Reopen();
  CHECK(f.store().GetRecord(old).ok());
  CHECK(f.ReadAt(plain, 1) == PageData(2));
  CHECK(ReadPayload(f, with) == Payload(1'000, 3));
}

TEST_CASE("A segment of a newer format is refused by name, not misread") {
  StoreFixture f;
  f.Create(0);
  f.Close();
  auto files = SegmentFiles(f.env(), f.path());
  auto data = f.env().ReadFileToString(files[0]);
  REQUIRE(data.ok());
  size_t len = internal::SegmentHeaderLength(*data);
  std::string v;
  coding::PutFixed32(&v, internal::kFormatVersion + 1);
  data->replace(8, 4, v);
  std::string crc;
  coding::PutFixed32(&crc, crc32c::Value(std::string_view(*data).substr(0, len - 4)));
  data->replace(len - 4, 4, crc);
  WriteWhole(f.env(), files[0], *data);
  auto s = PageStore::Open(f.options(), f.path());
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().IsCorruption());
  CHECK(s.status().ToString().find("unsupported segment format version") != std::string::npos);
}

TEST_CASE("A payload past kMaxPayloadBytes is refused") {
  StoreFixture f;
  TimelineId t = f.Create(0);
  std::string big(kMaxPayloadBytes + 1, 'x');
  auto r = f.store().Commit(t, *f.store().Head(t), {}, 0, "", big);
  CHECK(r.status().IsInvalidArgument());
}

}  // namespace
}  // namespace branchdb::storage::testing
