// Segment headers and sealed segments' record lists (segment_reader.h).
#include "storage/segment_reader.h"

#include <algorithm>
#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace branchdb::storage::internal {
namespace {

constexpr size_t kReadAheadBytes = 64 << 10;
// A block at most this far after the last one read counts as sequential (a
// scan's next leaf: the blocks between are interior pages and record heads).
constexpr uint64_t kSequentialGap = 3 * (kHoleBlockHeader + kPageSize);

// One thread's read-ahead window. `file` is weak: the window keeps no file
// open, and its control block keeps a freed file's address from matching.
struct ReadAhead {
  std::weak_ptr<RandomAccessFile> file;
  uint64_t begin = 0;
  size_t len = 0;
  uint64_t last = ~uint64_t{0};  // offset of the last block read, ~0: none
  std::unique_ptr<char[]> data;

  bool Same(const std::shared_ptr<RandomAccessFile>& f) const {
    return !file.owner_before(f) && !f.owner_before(file);
  }
  // The block at offset (whose header is head_len bytes), from the window:
  // as much of it as the window holds, up to a whole image's bytes; returns
  // the bytes taken (0 when not even the header is there).
  size_t Take(uint64_t offset, size_t head_len, char* head, char* out) {
    const char* block = data.get() + (offset - begin);
    const size_t avail = len - (offset - begin);
    if (avail < head_len) return 0;
    std::memcpy(head, block, head_len);
    const size_t n = std::min(kPageSize, avail - head_len);
    std::memcpy(out, block + head_len, n);
    return head_len + n;
  }
};

thread_local ReadAhead t_read_ahead;

}  // namespace

Status ReadImageBlock(const std::shared_ptr<RandomAccessFile>& file, uint64_t offset,
                      size_t head_len, bool read_ahead, char* head, char* out, size_t* got,
                      bool* buffered) {
  ReadAhead& ra = t_read_ahead;
  const bool same = ra.Same(file);
  *got = 0;
  *buffered = false;
  if (read_ahead && same && offset >= ra.begin &&
      offset + head_len + kPageSize <= ra.begin + ra.len) {
    *got = ra.Take(offset, head_len, head, out);
    ra.last = offset;
    *buffered = true;
    return Status::OK();
  }
  if (read_ahead && same && ra.last != ~uint64_t{0} && offset > ra.last &&
      offset - ra.last <= kSequentialGap) {
    if (!ra.data) ra.data = std::make_unique<char[]>(kReadAheadBytes);
    ra.len = 0;
    auto n = file->Read(offset, kReadAheadBytes, ra.data.get());
    if (!n.ok()) return n.status();
    ra.begin = offset;
    ra.len = *n;
    ra.last = offset;
    *got = ra.Take(offset, head_len, head, out);
    return Status::OK();
  }
  auto n = file->ReadSplit(offset, head, head_len, kPageSize, out);
  if (!n.ok()) return n.status();
  if (!same) {
    ra.file = file;
    ra.len = 0;
  }
  ra.last = offset;
  *got = *n;
  return Status::OK();
}

Status ReadExactly(RandomAccessFile* file, uint64_t offset, size_t n, std::string* out) {
  out->resize(n);
  auto r = file->Read(offset, n, out->data());
  if (!r.ok()) return r.status();
  if (*r != n) return Status::Corruption("short read at offset " + std::to_string(offset));
  return Status::OK();
}

Status ReadRecordMetas(RandomAccessFile* file, uint64_t number, const RecordOffsets& offsets,
                       size_t first, uint64_t end, MetaList* out) {
  constexpr uint64_t kWindowBytes = 1 << 20;
  std::string window, alone;
  uint64_t window_at = 0;  // window holds the file's bytes from there
  const auto in_window = [&](uint64_t at, uint64_t n) {
    return at >= window_at && at + n <= window_at + window.size();
  };
  const auto fill_window = [&](uint64_t at) {
    window_at = at;
    return ReadExactly(file, at, static_cast<size_t>(std::min(kWindowBytes, end - at)), &window);
  };
  for (size_t i = first; i < offsets.size(); ++i) {
    const uint64_t at = offsets.at(i);
    const auto damaged = [&](const char* what) {
      return Status::Corruption(SegmentFileName(number) + ": the record at offset " +
                                std::to_string(at) + " reads back " + what);
    };
    if (at > end || end - at < kRecordHeaderSize) return damaged("past the records' end");
    if (!in_window(at, kRecordHeaderSize)) BRANCHDB_RETURN_IF_ERROR(fill_window(at));
    const char* head = window.data() + (at - window_at);
    const uint32_t meta_len = coding::DecodeFixed32(head);
    const uint32_t meta_crc = coding::DecodeFixed32(head + 4);
    if (meta_len == 0 || meta_len > kMaxMetaBytes || meta_len > end - at - kRecordHeaderSize) {
      return damaged("with a bad meta length");
    }
    std::string_view meta;
    if (kRecordHeaderSize + meta_len > kWindowBytes) {
      BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, at + kRecordHeaderSize, meta_len, &alone));
      meta = alone;
    } else {
      if (!in_window(at, kRecordHeaderSize + meta_len)) BRANCHDB_RETURN_IF_ERROR(fill_window(at));
      meta = std::string_view(window.data() + (at - window_at) + kRecordHeaderSize, meta_len);
    }
    if (crc32c::Value(meta) != meta_crc) return damaged("with a meta checksum mismatch");
    out->Add(at, meta);
  }
  return Status::OK();
}

Status ReadSegmentHeader(RandomAccessFile* file, uint64_t number, SegmentHeader* h, size_t* len) {
  std::string head(kSegmentHeaderFixed, '\0');
  auto n = file->Read(0, head.size(), head.data());
  if (!n.ok()) return n.status();
  head.resize(*n);
  const size_t header_len = SegmentHeaderLength(head);
  if (header_len == 0) return Status::Corruption(SegmentFileName(number) + ": bad segment header");
  head.resize(header_len);
  n = file->Read(0, header_len, head.data());
  if (!n.ok()) return n.status();
  head.resize(*n);  // a short header fails to decode
  return DecodeSegmentHeader(head, h, len).WithContext(SegmentFileName(number));
}

Status ReadFooterEntries(RandomAccessFile* file, size_t header_len, uint64_t size,
                         std::vector<FooterEntry>* entries, std::string* damage,
                         MetaParts parts) {
  if (size < header_len + kTrailerSize) {
    *damage = "no trailer";
    return Status::OK();
  }
  std::string tail;
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, size - kTrailerSize, kTrailerSize, &tail));
  Trailer t;
  if (!DecodeTrailer(tail, &t)) {
    *damage = "trailer has a bad magic or version";
    return Status::OK();
  }
  // Format 3: the index section lies between the body and the trailer (its
  // own checksums: a damaged index leaves the record list usable).
  const bool indexed = t.version >= kFirstIndexedFormatVersion;
  const uint64_t after_body = kTrailerSize + (indexed ? kIndexTailSize : 0);
  if (t.footer_offset < header_len || t.footer_offset > size || t.footer_len > size ||
      (indexed ? t.footer_offset + t.footer_len + after_body > size
               : t.footer_offset + t.footer_len + after_body != size)) {
    *damage = "trailer offsets are inconsistent with the file size";
    return Status::OK();
  }
  std::string body;
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, t.footer_offset, t.footer_len, &body));
  Status decoded = DecodeFooter(body, t.footer_crc, entries, parts);
  if (!decoded.ok()) {
    *damage = decoded.message();
    return Status::OK();
  }
  for (const FooterEntry& e : *entries) {
    if (e.offset < header_len || RecordSize(e.meta_len, e.meta) + e.offset > t.footer_offset) {
      *damage = "footer entry past the records";
      return Status::OK();
    }
  }
  return Status::OK();
}

namespace {

// Scans records from `start` while each one's meta_len, meta CRC and meta are
// valid and the record fits in the file; *end receives where the scan stopped.
Status ScanRecordMetas(RandomAccessFile* file, uint64_t start, uint64_t size, MetaParts parts,
                       std::vector<FooterEntry>* out, uint64_t* end) {
  uint64_t pos = start;
  std::string head;
  std::string meta;
  while (size - pos >= kRecordHeaderSize) {
    BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, pos, kRecordHeaderSize, &head));
    const uint32_t meta_len = coding::DecodeFixed32(head.data());
    const uint32_t meta_crc = coding::DecodeFixed32(head.data() + 4);
    if (meta_len == 0 || meta_len > kMaxMetaBytes || meta_len > size - pos - kRecordHeaderSize) {
      break;
    }
    BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, pos + kRecordHeaderSize, meta_len, &meta));
    FooterEntry e;
    if (crc32c::Value(meta) != meta_crc || !DecodeMeta(meta, &e.meta, parts).ok()) break;
    const uint64_t record = RecordSize(meta_len, e.meta);
    if (record > size - pos) break;
    e.offset = pos;
    e.meta_len = meta_len;
    out->push_back(std::move(e));
    pos += record;
  }
  *end = pos;
  return Status::OK();
}

// Whether a footer begins at `end`, where the scan of `scanned` stopped: the
// file ends there (a segment whose footer was never written), or the
// trailer's offsets (magic or CRC aside) say so, or the bytes from there to
// the trailer decode as a footer (CRC aside) listing exactly those records.
Result<bool> FooterBeginsAt(RandomAccessFile* file, uint64_t end, uint64_t size,
                            const std::vector<FooterEntry>& scanned) {
  if (end == size) return true;
  if (size - end < kTrailerSize + 4) return false;
  std::string tail;
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, size - kTrailerSize, kTrailerSize, &tail));
  const uint64_t footer_offset = coding::DecodeFixed64(tail.data());
  const uint64_t footer_len = coding::DecodeFixed64(tail.data() + 8);
  if (footer_offset == end && footer_len <= size - end - kTrailerSize) return true;
  // Format 3: the body ends where the index section begins, which its own
  // tail (checked by its crc) tells.
  uint64_t body_end = size - kTrailerSize;
  if (size - end >= kTrailerSize + kIndexTailSize) {
    std::string raw;
    BRANCHDB_RETURN_IF_ERROR(
        ReadExactly(file, size - kTrailerSize - kIndexTailSize, kIndexTailSize, &raw));
    IndexTail it;
    if (DecodeIndexTail(raw, &it) && it.index_offset > end && it.index_offset <= body_end) {
      body_end = it.index_offset;
    }
    // Format 4: the record index section comes first; its tail (checked by
    // its crc) ends where the page index begins.
    if (body_end - end >= kIndexTailSize) {
      const uint64_t rtail_at = body_end - kIndexTailSize;
      BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, rtail_at, kIndexTailSize, &raw));
      IndexTail rt;
      if (DecodeIndexTail(raw, &rt) && rt.index_offset >= end && rt.index_offset <= rt.dir_offset &&
          rt.dir_offset + rt.dir_len == rtail_at) {
        body_end = rt.index_offset;
      }
    }
  }
  std::string body;
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, end, body_end - end, &body));
  std::vector<FooterEntry> listed;
  if (!DecodeFooter(body, crc32c::Value(body), &listed, MetaParts::kNoAnnotation).ok()) {
    return false;
  }
  if (listed.size() != scanned.size()) return false;
  for (size_t i = 0; i < listed.size(); ++i) {
    if (listed[i].offset != scanned[i].offset) return false;
  }
  return true;
}

// What is wrong with the record meta read at the start of `record` (its
// header and meta_len bytes); empty when it passes every check (*meta set).
std::string CheckRecordMeta(std::string_view record, uint32_t meta_len, Lsn lsn,
                            RecordMeta* meta) {
  if (record.size() != kRecordHeaderSize + meta_len) return "cut short";
  const uint32_t len = coding::DecodeFixed32(record.data());
  if (len != meta_len) {
    return "meta length " + std::to_string(len) + ", expected " + std::to_string(meta_len);
  }
  const std::string_view bytes = record.substr(kRecordHeaderSize);
  if (coding::DecodeFixed32(record.data() + 4) != crc32c::Value(bytes)) {
    return "meta checksum mismatch";
  }
  if (Status d = DecodeMeta(bytes, meta); !d.ok()) return d.message();
  if (meta->lsn != lsn) return "meta names LSN " + std::to_string(meta->lsn);
  return "";
}

// Why the footer of a sealed segment (`size` bytes) holds no intact copy of
// the meta at `offset`; empty when it does (*meta set).
Result<std::string> FooterCopy(RandomAccessFile* file, uint64_t number, uint64_t size,
                               uint64_t offset, uint32_t meta_len, Lsn lsn, RecordMeta* meta) {
  SegmentHeader h;
  size_t header_len = 0;
  Status header = ReadSegmentHeader(file, number, &h, &header_len);
  if (!header.ok()) {
    if (!header.IsCorruption()) return header;
    return header.message();
  }
  std::vector<FooterEntry> entries;
  std::string damage;
  BRANCHDB_RETURN_IF_ERROR(ReadFooterEntries(file, header_len, size, &entries, &damage));
  if (!damage.empty()) return damage;
  for (FooterEntry& e : entries) {
    if (e.offset != offset) continue;
    if (e.meta.lsn != lsn || e.meta_len != meta_len) break;
    *meta = std::move(e.meta);
    return std::string();
  }
  return std::string("the footer lists no such record");
}

}  // namespace

Status ReadRecordMeta(RandomAccessFile* file, uint64_t number, uint64_t offset, uint32_t meta_len,
                      Lsn lsn, uint64_t sealed_size, RecordMeta* meta, std::string* damage) {
  damage->clear();
  std::string record(kRecordHeaderSize + meta_len, '\0');
  auto n = file->Read(offset, record.size(), record.data());
  if (!n.ok()) return n.status();
  record.resize(*n);
  const std::string why = CheckRecordMeta(record, meta_len, lsn, meta);
  if (why.empty()) return Status::OK();
  const std::string what = SegmentFileName(number) + ": record meta of LSN " +
                           std::to_string(lsn) + " at offset " + std::to_string(offset) + ": " +
                           why;
  std::string no_copy = "the segment is not sealed";
  if (sealed_size > 0) {
    auto footer = FooterCopy(file, number, sealed_size, offset, meta_len, lsn, meta);
    if (!footer.ok()) return footer.status();
    if (footer->empty()) {
      *damage = what + "; read from the segment footer's copy";
      return Status::OK();
    }
    no_copy = *footer;
  }
  return Status::Corruption(what + ", and it has no intact copy (" + no_copy + ")");
}

Status ReadSealedRecords(RandomAccessFile* file, uint64_t number, size_t header_len, uint64_t size,
                         SealedRecords* out, MetaParts parts) {
  out->entries.clear();
  out->damage.clear();
  BRANCHDB_RETURN_IF_ERROR(
      ReadFooterEntries(file, header_len, size, &out->entries, &out->damage, parts));
  if (out->damage.empty()) return Status::OK();
  out->entries.clear();
  uint64_t end = 0;
  BRANCHDB_RETURN_IF_ERROR(ScanRecordMetas(file, header_len, size, parts, &out->entries, &end));
  auto footer = FooterBeginsAt(file, end, size, out->entries);
  if (!footer.ok()) return footer.status();
  if (!*footer) {
    return Status::Corruption(SegmentFileName(number) + ": record at offset " +
                              std::to_string(end) + " fails its checks and the footer (" +
                              out->damage + ") cannot tell the records after it");
  }
  out->damage += "; record list rebuilt by scanning " + std::to_string(out->entries.size()) +
                 " records";
  return Status::OK();
}

}  // namespace branchdb::storage::internal
