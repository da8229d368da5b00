// libFuzzer target for the page log's on-disk format (storage/log_format.h) and
// for recovery (PageStore::Open, storage/page_store_open.cc).
//
// Input modes, chosen by the first byte (mod 4):
//   0  decoders: the rest is decoded as record metadata, a segment header, a
//      sealed segment's footer+trailer and a GC manifest. Whatever decodes must
//      re-encode consistently (decode(encode(x)) == x, byte-exact where the
//      format has one encoding).
//   1  raw segment: a valid segment header followed by the rest, written as the
//      only segment of a store directory, then opened.
//   2, 3  mutated store: the files of a small valid store (several segments,
//      sealed and unsealed, a compacted one, GCSTATE; see BuildTemplate) are
//      copied to a fresh directory and edited by the operations encoded in the
//      rest (ApplyOps: flip, truncate, overwrite, insert, delete, copy a range
//      between files), then opened.
// Properties checked (abort on violation): no crash, leak or UB (sanitizers);
// the unedited template opens with its timelines and last LSN; Open either fails with a Status or gives a store whose invariants hold
// (CheckStore): every timeline's head is a readable record, its pages read,
// History walks newest-first from the head, every record LSN up to LastLsn is
// readable or NotFound (collected), a new commit succeeds and survives a reopen.
// Reads may fail with Corruption (Open does not re-verify every image of a
// sealed segment), never with anything else.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/mock_clock.h"
#include "storage/log_format.h"
#include "storage/page_store.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/util/temp_dir.h"

namespace {

using namespace branchdb;
using namespace branchdb::storage;
using namespace branchdb::storage::internal;

// A page whose bytes depend on (tag, pgno).
std::string PageBytes(int tag, PageNo pgno) {
  std::string p(kPageSize, '\0');
  for (size_t i = 0; i < p.size(); i += 64) p[i] = static_cast<char>(tag * 31 + pgno + i / 64);
  return p;
}

struct Fixture {
  MockClock clock;
  EnvWithClock env{Env::Default(), &clock};
  testing::TempDir root{testing::FastTestDirBase()};
  std::string dir = root.Sub("store");
  // The template store's files, name -> bytes, sorted by name.
  std::vector<std::pair<std::string, std::string>> files;
  // What the template store held when closed.
  std::vector<TimelineInfo> timelines;
  Lsn last_lsn = 0;

  PageStoreOptions Options() {
    PageStoreOptions o;
    o.env = &env;
    o.segment_bytes = 12 * 1024;  // a few records per segment: sealed segments with footers
    o.cache_bytes = 64 * 1024;
    return o;
  }

  Fixture() { BuildTemplate(); }

  // A deterministic store touching every record kind, sealed and unsealed
  // segments, a GC (GCSTATE, compaction) and records after it.
  void BuildTemplate() {
    auto opened = PageStore::Open(Options(), dir);
    FUZZ_CHECK(opened.ok());
    PageStore& s = **opened;
    auto commit = [&](TimelineId t, std::vector<PageNo> pages, uint32_t size, int tag) {
      clock.AdvanceSeconds(1);
      std::vector<std::string> bytes;
      for (PageNo p : pages) bytes.push_back(PageBytes(tag, p));
      std::vector<PageWrite> w;
      for (size_t i = 0; i < pages.size(); ++i) w.push_back({pages[i], bytes[i]});
      auto head = s.Head(t);
      FUZZ_CHECK(head.ok());
      auto lsn = s.Commit(t, *head, w, size, "c" + std::to_string(tag));
      FUZZ_CHECK(lsn.ok());
      return *lsn;
    };
    auto t1 = s.CreateTimeline(0, "main");
    FUZZ_CHECK(t1.ok());
    Lsn first = commit(*t1, {1, 2}, 2, 1);
    commit(*t1, {2, 3}, 3, 2);
    auto t2 = s.CreateTimeline(*t1, *s.Head(*t1), "child");
    FUZZ_CHECK(t2.ok());
    commit(*t2, {1}, 3, 3);
    FUZZ_CHECK(s.ResetTimeline(*t1, *s.Head(*t1), first, "rollback").ok());
    commit(*t1, {}, 1, 4);
    auto t3 = s.CreateTimeline(*t2, *s.Head(*t2), "grandchild");
    FUZZ_CHECK(t3.ok());
    FUZZ_CHECK(s.DropTimeline(*t2).ok());
    GcOptions gc;
    gc.restore_window_micros = 0;
    FUZZ_CHECK(s.Gc(gc).ok());
    commit(*t3, {4}, 4, 5);
    commit(*t1, {1, 2}, 2, 6);
    timelines = s.ListTimelines();
    std::sort(timelines.begin(), timelines.end(),
              [](const TimelineInfo& a, const TimelineInfo& b) { return a.id < b.id; });
    last_lsn = s.LastLsn();
    opened->reset();
    auto names = env.GetChildren(dir);
    FUZZ_CHECK(names.ok());
    std::sort(names->begin(), names->end());
    for (const std::string& name : *names) {
      if (name == "LOCK") continue;
      auto data = env.ReadFileToString(JoinPath(dir, name));
      FUZZ_CHECK(data.ok());
      files.emplace_back(name, std::move(*data));
    }
    FUZZ_CHECK(files.size() >= 3);
  }

  void ClearDir() {
    auto names = env.GetChildren(dir);
    if (!names.ok()) return;
    for (const std::string& name : *names) FUZZ_CHECK(env.DeleteFile(JoinPath(dir, name)).ok());
  }

  void WriteFiles(const std::vector<std::pair<std::string, std::string>>& fs) {
    ClearDir();
    FUZZ_CHECK(env.CreateDirs(dir).ok());
    for (const auto& [name, data] : fs) {
      auto f = env.NewWritableFile(JoinPath(dir, name), Env::OpenMode::kTruncate);
      FUZZ_CHECK(f.ok());
      FUZZ_CHECK((*f)->Append(data).ok());
      FUZZ_CHECK((*f)->Close().ok());
    }
  }
};

Fixture& F() {
  static Fixture f;  // its directory is removed at exit
  return f;
}

bool ReadOk(const Status& s) { return s.ok() || s.code() == StatusCode::kCorruption; }

// The invariants of a store that opened (see the file comment).
void CheckStore(PageStore& s) {
  const Lsn last = s.LastLsn();
  std::string page;
  for (const TimelineInfo& t : s.ListTimelines()) {
    auto head = s.Head(t.id);
    FUZZ_CHECK(head.ok() && *head == t.head && t.head >= 1 && t.head <= last);
    FUZZ_CHECK(t.created_lsn >= 1 && t.created_lsn <= t.head);
    auto rec = s.GetRecord(t.head);
    FUZZ_CHECK(rec.ok() && rec->lsn == t.head);
    auto size = s.DbSize(t.id, t.head);
    FUZZ_CHECK(size.ok() && *size == rec->db_size_pages);
    for (PageNo p = 1; p <= std::min<uint32_t>(*size, 16); ++p) {
      Status st = s.ReadPage(t.id, p, t.head, &page);
      FUZZ_CHECK(ReadOk(st));
      if (st.ok()) FUZZ_CHECK(page.size() == kPageSize);
    }
    auto hist = s.History(t.id, 0, 64);
    FUZZ_CHECK(hist.ok() && !hist->empty() && hist->front().lsn == t.head);
    for (size_t i = 1; i < hist->size(); ++i) FUZZ_CHECK((*hist)[i].lsn < (*hist)[i - 1].lsn);
  }
  for (Lsn lsn = 1; lsn <= std::min<Lsn>(last, 64); ++lsn) {
    auto rec = s.GetRecord(lsn);
    if (!rec.ok()) {
      FUZZ_CHECK(rec.status().code() == StatusCode::kNotFound ||
            rec.status().code() == StatusCode::kCorruption);
      continue;
    }
    FUZZ_CHECK(rec->lsn == lsn);
    auto size = s.DbSizeAt(lsn);
    FUZZ_CHECK(size.ok() && *size == rec->db_size_pages);
    for (PageNo p : rec->pages) {
      if (p > *size) continue;
      FUZZ_CHECK(ReadOk(s.ReadPageAt(lsn, p, &page)));
    }
  }
}

// Writes one more commit and checks it survives a reopen.
void CheckWritable(std::unique_ptr<PageStore> s) {
  Fixture& f = F();
  auto timelines = s->ListTimelines();
  if (timelines.empty()) {
    auto t = s->CreateTimeline(0, "fuzz");
    FUZZ_CHECK(t.ok());
    timelines = s->ListTimelines();
  }
  const TimelineInfo& t = timelines.front();
  std::string bytes = PageBytes(99, 1);
  auto lsn = s->Commit(t.id, t.head, {{1, bytes}}, 1, "fuzz");
  FUZZ_CHECK(lsn.ok() && *lsn > t.head);
  s.reset();
  auto again = PageStore::Open(f.Options(), f.dir);
  FUZZ_CHECK(again.ok());
  auto head = (*again)->Head(t.id);
  FUZZ_CHECK(head.ok() && *head == *lsn);
  std::string page;
  FUZZ_CHECK((*again)->ReadPage(t.id, 1, *lsn, &page).ok() && page == bytes);
  CheckStore(**again);
}

// unchanged: the template's files as written; they must open as they were.
void OpenAndCheck(bool unchanged) {
  Fixture& f = F();
  auto s = PageStore::Open(f.Options(), f.dir);
  FUZZ_CHECK(s.ok() || !unchanged);
  if (!s.ok()) return;  // failing cleanly is fine
  if (unchanged) {
    auto timelines = (*s)->ListTimelines();
    std::sort(timelines.begin(), timelines.end(),
              [](const TimelineInfo& a, const TimelineInfo& b) { return a.id < b.id; });
    FUZZ_CHECK((*s)->LastLsn() == f.last_lsn && timelines.size() == f.timelines.size());
    for (size_t i = 0; i < timelines.size(); ++i) {
      FUZZ_CHECK(timelines[i].id == f.timelines[i].id && timelines[i].head == f.timelines[i].head &&
                 timelines[i].base == f.timelines[i].base &&
                 timelines[i].created_lsn == f.timelines[i].created_lsn);
    }
  }
  CheckStore(**s);
  CheckWritable(std::move(*s));
}

// --- mode 0: decoders -------------------------------------------------------

bool SameMeta(const RecordMeta& a, const RecordMeta& b) {
  if (a.entries.size() != b.entries.size()) return false;
  for (size_t i = 0; i < a.entries.size(); ++i) {
    if (a.entries[i].pgno != b.entries[i].pgno || a.entries[i].type != b.entries[i].type) {
      return false;
    }
  }
  return a.kind == b.kind && a.flags == b.flags && a.lsn == b.lsn && a.timeline == b.timeline &&
         a.run_start == b.run_start && a.time_micros == b.time_micros &&
         a.db_size_pages == b.db_size_pages && a.base == b.base &&
         a.base_run_start == b.base_run_start && a.annotation == b.annotation;
}

void FuzzDecoders(std::string_view in) {
  RecordMeta m;
  if (DecodeMeta(in, &m).ok()) {
    std::string again = EncodeMeta(m);
    // Bytes 2..3 are reserved (written as zero, ignored when read).
    FUZZ_CHECK(again.size() == in.size() && again.substr(0, 2) == in.substr(0, 2) &&
          again.substr(4) == in.substr(4));
    RecordMeta m2;
    FUZZ_CHECK(DecodeMeta(again, &m2).ok() && SameMeta(m, m2));
    FUZZ_CHECK(m.ImageCount() <= m.entries.size());
  }

  SegmentHeader h;
  size_t len = 0;
  if (DecodeSegmentHeader(in, &h, &len).ok()) {
    FUZZ_CHECK(len <= in.size() && len == SegmentHeaderLength(in.substr(0, kSegmentHeaderFixed)));
    FUZZ_CHECK(EncodeSegmentHeader(h) == in.substr(0, len));
  }

  if (in.size() >= kTrailerSize) {
    Trailer t;
    if (DecodeTrailer(in.substr(in.size() - kTrailerSize), &t) &&
        t.footer_len <= in.size() - kTrailerSize) {
      std::string_view body = in.substr(in.size() - kTrailerSize - t.footer_len, t.footer_len);
      std::vector<FooterEntry> entries;
      if (DecodeFooter(body, t.footer_crc, &entries).ok()) {
        std::vector<std::string> metas;  // the views below point into these
        FooterMetas enc;
        for (const FooterEntry& e : entries) metas.push_back(EncodeMeta(e.meta));
        for (size_t i = 0; i < entries.size(); ++i) enc.emplace_back(entries[i].offset, metas[i]);
        std::string again = EncodeFooter(enc, t.footer_offset);
        Trailer t2;
        FUZZ_CHECK(DecodeTrailer(std::string_view(again).substr(again.size() - kTrailerSize), &t2));
        FUZZ_CHECK(t2.footer_offset == t.footer_offset && t2.footer_len == t.footer_len);
        std::vector<FooterEntry> entries2;
        FUZZ_CHECK(DecodeFooter(std::string_view(again).substr(0, t2.footer_len), t2.footer_crc,
                           &entries2)
                  .ok());
        FUZZ_CHECK(entries2.size() == entries.size());
        for (size_t i = 0; i < entries.size(); ++i) {
          FUZZ_CHECK(entries2[i].offset == entries[i].offset &&
                entries2[i].meta_len == entries[i].meta_len &&
                SameMeta(entries2[i].meta, entries[i].meta));
        }
      }
    }
  }

  Manifest man;
  if (DecodeManifest(in, &man).ok()) FUZZ_CHECK(EncodeManifest(man) == in);

  uint64_t number = 0;
  if (ParseSegmentFileName(in, &number) && in.size() == 14) {
    FUZZ_CHECK(SegmentFileName(number) == in);
  }
}

// --- mode 2/3: edits of the template store ------------------------------------

// Reads the input as a little program; running out of bytes ends it.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool done() const { return pos_ >= in_.size(); }
  uint8_t U8() { return pos_ < in_.size() ? static_cast<uint8_t>(in_[pos_++]) : 0; }
  uint32_t U16() { return U8() | (uint32_t{U8()} << 8); }
  std::string_view Bytes(size_t n) {
    n = std::min(n, in_.size() - std::min(pos_, in_.size()));
    std::string_view b = in_.substr(pos_, n);
    pos_ += n;
    return b;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

// Each operation: u8 file index (mod number of files), u8 op, then operands.
// Offsets are u16 taken modulo (file size + 1).
void ApplyOps(std::string_view program, std::vector<std::pair<std::string, std::string>>* fs) {
  Reader r(program);
  int ops = 0;
  while (!r.done() && !fs->empty() && ops++ < 16) {
    size_t index = r.U8() % fs->size();
    std::string& name = (*fs)[index].first;
    std::string& data = (*fs)[index].second;
    uint8_t op = r.U8();
    size_t off = r.U16() % (data.size() + 1);
    switch (op % 7) {
      case 0:  // flip one bit
        if (off < data.size()) data[off] = static_cast<char>(data[off] ^ (1 << (r.U8() % 8)));
        break;
      case 1:  // truncate
        data.resize(off);
        break;
      case 2: {  // overwrite with bytes from the input
        std::string_view b = r.Bytes(r.U8() % 32);
        data.replace(off, std::min(b.size(), data.size() - off), b);
        break;
      }
      case 3: {  // insert bytes from the input
        std::string_view b = r.Bytes(r.U8() % 32);
        data.insert(off, b);
        break;
      }
      case 4:  // delete the file
        fs->erase(fs->begin() + static_cast<std::ptrdiff_t>(index));
        break;
      case 5: {  // copy a range of another file over this one (splice records)
        const std::string& src = (*fs)[r.U8() % fs->size()].second;
        size_t from = r.U16() % (src.size() + 1);
        size_t n = std::min<size_t>(r.U16(), src.size() - from);
        std::string piece = src.substr(from, n);
        data.replace(off, std::min(piece.size(), data.size() - off), piece);
        break;
      }
      case 6: {  // rename a segment (a gap, a duplicate or an unknown number)
        uint64_t number = 0;
        if (ParseSegmentFileName(name, &number)) {
          std::string to = SegmentFileName(r.U8() % 8);
          bool taken = false;
          for (const auto& other : *fs) taken |= other.first == to;
          if (!taken) name = to;
        }
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  Fixture& f = F();
  switch (data[0] % 4) {
    case 0:
      FuzzDecoders(in);
      break;
    case 1: {
      SegmentHeader h;
      h.number = 1;
      f.WriteFiles({{SegmentFileName(1), EncodeSegmentHeader(h) + std::string(in)}});
      OpenAndCheck(false);
      break;
    }
    default: {
      auto fs = f.files;
      ApplyOps(in, &fs);
      f.WriteFiles(fs);
      OpenAndCheck(fs == f.files);
      break;
    }
  }
  return 0;
}
