// Tests of the on-disk encoding helpers (docs/storage-format.md).
#include "storage/log_format.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "base/coding.h"
#include "base/crc32c.h"
#include "storage/record_table.h"

namespace branchdb::storage::internal {
namespace {

TEST_CASE("CRC-32C: the CPU's instruction and the tables agree at every length and alignment") {
  std::mt19937_64 rng(12345);
  std::string buf(4100 + 64, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 767, 768, 769, 1000, 1543, 2304,
                     4096, 4100}) {
      uint32_t seed = static_cast<uint32_t>(rng());
      CHECK(crc32c::Extend(seed, buf.data() + offset, n) ==
            crc32c::ExtendPortable(seed, buf.data() + offset, n));
    }
  }
  CHECK(crc32c::ExtendPortable(0, "123456789", 9) == 0xE3069283u);
}

TEST_CASE("CRC-32C matches the standard check value") {
  CHECK(crc32c::Value("123456789") == 0xE3069283u);
  CHECK(crc32c::Value("") == 0u);
  std::string zeros(32, '\0');
  CHECK(crc32c::Value(zeros) == 0x8A9136AAu);  // RFC 3720 B.4
  // Extend is incremental.
  CHECK(crc32c::Extend(crc32c::Value("12345"), "6789", 4) == 0xE3069283u);
}

TEST_CASE("Record metadata round-trips and rejects damage") {
  RecordMeta m;
  m.kind = RecordKind::kReset;
  m.flags = kRecordFlagCollected;
  m.lsn = 42;
  m.timeline = 7;
  m.run_start = 42;
  m.time_micros = -5;
  m.db_size_pages = 9;
  m.base = 40;
  m.base_run_start = 3;
  m.annotation = std::string("who\0what", 8);
  m.entries = {{1, EntryType::kImage}, {5, EntryType::kZero}};
  std::string bytes = EncodeMeta(m);
  RecordMeta d;
  REQUIRE(DecodeMeta(bytes, &d).ok());
  CHECK(d.kind == m.kind);
  CHECK(d.flags == m.flags);
  CHECK(d.lsn == 42);
  CHECK(d.time_micros == -5);
  CHECK(d.base_run_start == 3);
  CHECK(d.annotation == m.annotation);
  REQUIRE(d.entries.size() == 2);
  CHECK(d.entries[1].pgno == 5);
  CHECK(d.entries[1].type == EntryType::kZero);
  CHECK(d.ImageCount() == 1);
  CHECK(DecodeMeta(bytes.substr(0, bytes.size() - 1), &d).IsCorruption());
  CHECK(DecodeMeta(bytes + "x", &d).IsCorruption());
  std::string bad = bytes;
  bad[0] = 9;  // unknown kind
  CHECK(DecodeMeta(bad, &d).IsCorruption());
}

// A page as SQLite fills a b-tree leaf: header and cell pointers at the
// front, cells at the back, zeros between.
std::string LeafPage(size_t front, size_t back, char fill) {
  std::string page(kPageSize, '\0');
  for (size_t i = 0; i < front; ++i) page[i] = static_cast<char>(fill + i % 7 + 1);
  for (size_t i = kPageSize - back; i < kPageSize; ++i) page[i] = static_cast<char>(fill + i % 5 + 1);
  return page;
}

TEST_CASE("Format 5: an image block leaves out its page's hole and restores it") {
  struct Case {
    std::string page;
    uint16_t hole_off, hole_len;
  };
  std::string scattered(kPageSize, 'x');
  for (size_t i = 100; i < 107; ++i) scattered[i] = '\0';  // no zero word: no hole
  scattered[3000] = '\0';
  std::string word = scattered;
  for (size_t i = 2001; i < 2017; ++i) word[i] = '\0';  // one zero word, and bytes around it
  std::string tail(kPageSize, '\0');
  tail[0] = 'h';
  std::vector<Case> cases = {
      {LeafPage(12, 30, 'a'), 12, kPageSize - 42},
      {LeafPage(13, 29, 'b'), 13, kPageSize - 42},  // the run's edges are not on words
      {std::string(kPageSize, 'f'), 0, 0},          // full: no hole
      {std::string(kPageSize, '\0'), 0, kPageSize},  // zeros: no bytes
      {scattered, 0, 0},
      {word, 2001, 16},
      {tail, 1, kPageSize - 1},
  };
  for (const Case& c : cases) {
    CAPTURE(c.hole_off, c.hole_len);
    CHECK(FindHole(c.page) == std::make_pair(c.hole_off, c.hole_len));
    std::string block = "prefix";
    CHECK(AppendImageBlock(&block, c.page) == c.hole_len);
    block.erase(0, 6);
    REQUIRE(block.size() == kHoleBlockHeader + kPageSize - c.hole_len);
    CHECK(ImageBlockValid(block, true));
    CHECK_FALSE(ImageBlockValid(block + "x", true));
    // Read as a segment read does: the header apart, the rest (and whatever
    // follows it in the file) into the page's buffer.
    std::string page(kPageSize, '?');
    const size_t stored = block.size() - kHoleBlockHeader;
    std::memcpy(page.data(), block.data() + kHoleBlockHeader, stored);
    CHECK(RestoreImage(block.data(), true, page.data(), block.size()));
    CHECK(page == c.page);
    std::string copy(kPageSize, '?');
    BlockImage(block, true, copy.data());
    CHECK(copy == c.page);
    // A short read, a flipped byte anywhere (hole fields included), a hole
    // past the page: refused.
    if (stored > 0) {
      std::memcpy(page.data(), block.data() + kHoleBlockHeader, stored);
      CHECK_FALSE(RestoreImage(block.data(), true, page.data(), block.size() - 1));
    }
    CHECK_FALSE(RestoreImage(block.data(), true, page.data(), kHoleBlockHeader - 1));
    for (size_t i = 0; i < block.size(); i += 97) {
      std::string bad = block;
      bad[i] = static_cast<char>(bad[i] ^ 0x10);
      CHECK_FALSE(ImageBlockValid(bad, true));
      std::memcpy(page.data(), bad.data() + kHoleBlockHeader, stored);
      CHECK_FALSE(RestoreImage(bad.data(), true, page.data(), kHoleBlockHeader + kPageSize));
    }
  }
  std::string bad;
  AppendImageBlock(&bad, LeafPage(12, 30, 'c'));
  coding::EncodeFixed32(bad.data() + 4, 4000 | (200u << 16));  // offset 4000, length 200
  CHECK_FALSE(ImageBlockValid(bad, true));
  // Formats 1-4: the whole page after its crc.
  std::string old;
  CHECK(AppendImageBlock(&old, cases[0].page, false) == 0);
  CHECK(old.size() == kImageBlockSize);
  CHECK(ImageBlockValid(old, false));
  CHECK_FALSE(ImageBlockValid(old, true));
  std::string page(kPageSize, '?');
  std::memcpy(page.data(), old.data() + 4, kPageSize);
  CHECK_FALSE(RestoreImage(old.data(), false, page.data(), kImageBlockSize - 1));
  CHECK(RestoreImage(old.data(), false, page.data(), kImageBlockSize));
  CHECK(page == cases[0].page);
}

TEST_CASE("Format 5: a meta with holes gives each image block's size and offset") {
  RecordMeta m;
  m.kind = RecordKind::kCommit;
  m.lsn = 9;
  m.flags = kRecordFlagHoles;
  m.payload_len = 10;
  m.entries = {{1, EntryType::kImage, 4000}, {2, EntryType::kZero}, {3, EntryType::kImage, 0},
               {4, EntryType::kImage, kPageSize}};
  const std::string bytes = EncodeMeta(m);
  RecordMeta d;
  REQUIRE(DecodeMeta(bytes, &d).ok());
  REQUIRE(d.entries.size() == 4);
  CHECK(d.entries[0].hole == 4000);
  CHECK(d.entries[1].hole == 0);
  CHECK(d.entries[2].hole == 0);
  CHECK(d.entries[3].hole == kPageSize);
  const uint32_t meta_len = static_cast<uint32_t>(bytes.size());
  CHECK(ImagesBytes(d) == (8 + 96) + (8 + 4096) + 8);
  CHECK(ImageOffsets(1000, meta_len, d) ==
        std::vector<uint64_t>{1000 + 8 + meta_len, 1000 + 8 + meta_len + 104,
                              1000 + 8 + meta_len + 104 + 4104});
  CHECK(PayloadOffset(1000, meta_len, d) == 1000 + 8 + meta_len + ImagesBytes(d));
  CHECK(RecordSize(meta_len, d) == 8 + meta_len + ImagesBytes(d) + 4 + 10);
  // Without the flag the same entries have no hole field: 2 bytes fewer each.
  RecordMeta plain = m;
  plain.flags = 0;
  CHECK(EncodeMeta(plain).size() == bytes.size() - 3 * 2);
  // Each allocated at its exact size: the unsealed segment keeps every
  // record's meta until the seal, and a string grown past its reservation
  // doubles (format 5's hole fields once did that to every meta).
  m.annotation = std::string(2048, 'a');
  for (const RecordMeta& r : {m, plain}) {
    const std::string e = EncodeMeta(r);
    CHECK(e.capacity() == e.size());
  }
  CHECK(ImagesBytes(plain) == 3 * kImageBlockSize);
  // A hole longer than a page is damage.
  RecordMeta wide = m;
  wide.entries[0].hole = kPageSize + 1;
  CHECK(DecodeMeta(EncodeMeta(wide), &d).IsCorruption());
}

TEST_CASE("Record metadata decodes without its annotation, checked the same way") {
  RecordMeta m;
  m.lsn = 3;
  m.annotation = std::string(5000, 'a');
  m.entries = {{2, EntryType::kImage}};
  m.payload_len = 7;
  const std::string bytes = EncodeMeta(m);
  RecordMeta d;
  d.annotation = "stale";
  REQUIRE(DecodeMeta(bytes, &d, MetaParts::kNoAnnotation).ok());
  CHECK(d.annotation.empty());
  CHECK(d.lsn == 3);
  CHECK(d.payload_len == 7);
  REQUIRE(d.entries.size() == 1);
  CHECK(d.entries[0].pgno == 2);
  CHECK(DecodeMeta(bytes.substr(0, 100), &d, MetaParts::kNoAnnotation).IsCorruption());
}

TEST_CASE("A record's payload length is in its meta (format 2); its bytes are not") {
  RecordMeta m;
  m.kind = RecordKind::kCommit;
  m.lsn = 3;
  m.annotation = "summary";
  m.entries = {{2, EntryType::kImage}};
  std::string plain = EncodeMeta(m);
  m.payload_len = 100'000;
  std::string bytes = EncodeMeta(m);
  CHECK(bytes.size() == plain.size() + 4);
  RecordMeta d;
  REQUIRE(DecodeMeta(bytes, &d).ok());
  CHECK(d.payload_len == 100'000);
  CHECK((d.flags & kRecordFlagPayload) != 0);
  CHECK(RecordSize(static_cast<uint32_t>(bytes.size()), d) ==
        8 + bytes.size() + kImageBlockSize + 4 + 100'000);
  // The flag without a length, or with length 0, is damage.
  std::string flag_only = plain;
  flag_only[1] = static_cast<char>(kRecordFlagPayload);
  CHECK(DecodeMeta(flag_only, &d).IsCorruption());
  CHECK(DecodeMeta(flag_only + std::string(4, '\0'), &d).IsCorruption());
  std::string block;
  AppendPayloadBlock(&block, "script");
  std::string_view payload;
  CHECK(PayloadBlockValid(block, &payload));
  CHECK(payload == "script");
  block.back() ^= 1;
  CHECK_FALSE(PayloadBlockValid(block, &payload));
}

TEST_CASE("Segment headers, footers and the manifest round-trip") {
  SegmentHeader h;
  h.number = 12;
  h.flags = kSegmentFlagCompacted;
  h.supersedes = {3, 4};
  std::string hb = EncodeSegmentHeader(h);
  CHECK(hb.size() == 32 + 16);
  CHECK(SegmentHeaderLength(hb.substr(0, kSegmentHeaderFixed)) == hb.size());
  SegmentHeader hd;
  size_t len = 0;
  REQUIRE(DecodeSegmentHeader(hb, &hd, &len).ok());
  CHECK(hd.number == 12);
  CHECK(hd.supersedes == std::vector<uint64_t>{3, 4});
  hb[20] ^= 1;
  CHECK(DecodeSegmentHeader(hb, &hd, &len).IsCorruption());

  RecordMeta m;
  m.lsn = 1;
  std::string footer = EncodeFooter({{100, EncodeMeta(m)}}, 5000);
  Trailer t;
  REQUIRE(DecodeTrailer(footer.substr(footer.size() - kTrailerSize), &t));
  CHECK(t.footer_offset == 5000);
  std::vector<FooterEntry> entries;
  REQUIRE(DecodeFooter(footer.substr(0, t.footer_len), t.footer_crc, &entries).ok());
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].offset == 100);
  CHECK(entries[0].meta.lsn == 1);
  CHECK(DecodeFooter(footer.substr(0, t.footer_len), t.footer_crc ^ 1, &entries).IsCorruption());

  Manifest man;
  man.last_lsn = 99;
  man.last_timeline = 4;
  man.collected = {{1, 5}, {9, 9}};
  ManifestRun run;
  run.start = 6;
  run.live_records = 2;
  run.markers = {{6, 1000}};
  man.runs.push_back(run);
  man.timelines.push_back(ManifestTimeline{4, 8, 6, 6, 0, 1000});
  std::string mb = EncodeManifest(man);
  Manifest md;
  REQUIRE(DecodeManifest(mb, &md).ok());
  CHECK(md.last_lsn == 99);
  CHECK(md.collected == man.collected);
  REQUIRE(md.runs.size() == 1);
  CHECK(md.runs[0].markers == run.markers);
  CHECK(md.timelines.at(0).head == 8);
  mb[10] ^= 1;
  Manifest bad;
  CHECK(DecodeManifest(mb, &bad).IsCorruption());
}

TEST_CASE("A footer written in pieces is the footer's layout, byte for byte") {
  // 3000 records of ~400-byte metas: a body of ~1.2 MB, several pieces.
  MetaList list;
  std::vector<IndexEntry> index;
  for (Lsn l = 1; l <= 3000; ++l) {
    RecordMeta m;
    m.lsn = l;
    m.annotation = std::string(300 + l % 200, static_cast<char>('a' + l % 26));
    m.entries.push_back(PageEntry{static_cast<PageNo>(1 + l % 50), EntryType::kImage});
    list.Add(4096 * l, EncodeMeta(m));
    index.push_back(IndexEntry{static_cast<PageNo>(1 + l % 50), l, 1, 4096 * l});
  }
  std::sort(index.begin(), index.end(), [](const IndexEntry& a, const IndexEntry& b) {
    return a.pgno != b.pgno ? a.pgno < b.pgno : a.lsn < b.lsn;
  });
  const FooterMetas& metas = list.entries();
  std::vector<RecordIndexEntry> records;
  REQUIRE(RecordIndexOf(metas, &records).ok());
  const uint64_t at = 12345678;

  // The layout (docs/storage-format.md): body (count, then offset, length and
  // meta of each record), record index section, page index section, trailer
  // with the body's length and CRC.
  std::string want;
  coding::PutFixed32(&want, static_cast<uint32_t>(metas.size()));
  for (const auto& [offset, meta] : metas) {
    coding::PutFixed64(&want, offset);
    coding::PutFixed32(&want, static_cast<uint32_t>(meta.size()));
    want += meta;
  }
  const uint64_t body_len = want.size();
  const uint32_t body_crc = crc32c::Value(want);
  want += EncodeRecordIndexSection(records, at + body_len);
  want += EncodeIndexSection(index, at + want.size());
  coding::PutFixed64(&want, at);
  coding::PutFixed64(&want, body_len);
  coding::PutFixed32(&want, body_crc);
  coding::PutFixed32(&want, kFormatVersion);
  want += kFooterMagic;

  std::vector<std::string> pieces;
  REQUIRE(WriteFooter(metas, at, kFormatVersion, index, records, [&](std::string_view p) {
            pieces.emplace_back(p);
            return Status::OK();
          }).ok());
  std::string got;
  for (const std::string& p : pieces) got += p;
  CHECK(got == want);
  CHECK(got == EncodeFooter(metas, at, kFormatVersion, index, records));
  // The body in pieces of kFooterPieceBytes (plus at most one meta), never
  // whole; then the record index section; then the page index and trailer.
  REQUIRE(pieces.size() >= 6);
  for (size_t i = 0; i + 2 < pieces.size(); ++i) {
    CHECK(pieces[i].size() < kFooterPieceBytes + 12 + 600);
  }
  Trailer t;
  REQUIRE(DecodeTrailer(std::string_view(got).substr(got.size() - kTrailerSize), &t));
  std::vector<FooterEntry> entries;
  REQUIRE(DecodeFooter(std::string_view(got).substr(0, t.footer_len), t.footer_crc, &entries).ok());
  CHECK(entries.size() == metas.size());

  // The first failure of the sink ends the footer and is returned.
  size_t calls = 0;
  Status s = WriteFooter(metas, at, kFormatVersion, index, records, [&](std::string_view) {
    return ++calls == 2 ? Status::IOError("disk full", "disk_full") : Status::OK();
  });
  CHECK(s.reason() == "disk_full");
  CHECK(calls == 2);
}

TEST_CASE("A page index section decodes back: tail, directory, blocks and filter") {
  // 400 versions of 130 pages: three blocks of 146 entries at most.
  std::vector<IndexEntry> entries;
  for (PageNo p = 1; p <= 130; ++p) {
    for (Lsn l = p; l < p + 3 + (p % 2); ++l) {
      entries.push_back(IndexEntry{p, l * 10, 5, p % 7 == 0 ? 0 : 4096 * l});
    }
  }
  const uint64_t at = 70000;
  const std::string section = EncodeIndexSection(entries, at);
  IndexTail tail;
  REQUIRE(DecodeIndexTail(section.substr(section.size() - kIndexTailSize), &tail));
  CHECK(tail.index_offset == at);
  IndexDirectory dir;
  REQUIRE(DecodeIndexDirectory(section.substr(tail.dir_offset - at, tail.dir_len), &dir).ok());
  CHECK(dir.versions == entries.size());
  CHECK(dir.min_lsn == 10);
  CHECK(dir.max_lsn == entries.back().lsn);
  REQUIRE(dir.blocks.size() == (entries.size() + 145) / 146);
  std::vector<IndexEntry> all;
  for (const IndexBlockHandle& h : dir.blocks) {
    std::vector<IndexEntry> block;
    REQUIRE(DecodeIndexBlock(section.substr(h.offset - at, h.len), &block).ok());
    CHECK(block.front().pgno == h.first_pgno);
    CHECK(block.back().lsn == h.last_lsn);
    all.insert(all.end(), block.begin(), block.end());
  }
  REQUIRE(all.size() == entries.size());
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(all[i].pgno == entries[i].pgno);
    CHECK(all[i].lsn == entries[i].lsn);
    CHECK(all[i].run_start == 5);
    CHECK(all[i].offset == entries[i].offset);
  }
  std::string filter;
  REQUIRE(DecodeFilter(section.substr(dir.filter_offset - at, dir.filter_len), &filter).ok());
  // No false negatives; few false positives (about 1% at 10 bits per page).
  for (PageNo p = 1; p <= 130; ++p) CHECK(FilterMayContain(filter, p));
  int false_positives = 0;
  for (PageNo p = 1000; p < 11000; ++p) false_positives += FilterMayContain(filter, p) ? 1 : 0;
  CHECK(false_positives < 300);
  // Each part fails its checksum when a byte of it changes.
  std::string bad = section;
  bad[dir.blocks[1].offset - at + 7] ^= 1;
  std::vector<IndexEntry> block;
  CHECK(DecodeIndexBlock(std::string_view(bad).substr(dir.blocks[1].offset - at, dir.blocks[1].len),
                         &block)
            .IsCorruption());
  bad = section;
  bad[tail.dir_offset - at + 3] ^= 1;
  CHECK(DecodeIndexDirectory(std::string_view(bad).substr(tail.dir_offset - at, tail.dir_len), &dir)
            .IsCorruption());
  bad = section;
  bad[bad.size() - 10] ^= 1;
  CHECK_FALSE(DecodeIndexTail(std::string_view(bad).substr(bad.size() - kIndexTailSize), &tail));
}

TEST_CASE("Segment file names parse back") {
  uint64_t n = 0;
  CHECK(SegmentFileName(7) == "seg-000007.log");
  REQUIRE(ParseSegmentFileName("seg-000007.log", &n));
  CHECK(n == 7);
  REQUIRE(ParseSegmentFileName("seg-12345678.log", &n));
  CHECK(n == 12345678);
  CHECK_FALSE(ParseSegmentFileName("seg-00x007.log", &n));
  CHECK_FALSE(ParseSegmentFileName("seg-000007.log.tmp", &n));
  CHECK_FALSE(ParseSegmentFileName("LOCK", &n));
}

}  // namespace
}  // namespace branchdb::storage::internal
