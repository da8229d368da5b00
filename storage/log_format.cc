#include "storage/log_format.h"

#include <algorithm>
#include <cstring>
#include <cstdio>

#include "base/coding.h"
#include "base/crc32c.h"

namespace branchdb::storage::internal {

using coding::DecodeFixed32;
using coding::DecodeFixed64;
using coding::Decoder;
using coding::PutFixed16;
using coding::PutFixed32;
using coding::PutFixed64;
using coding::PutFixed8;

size_t RecordMeta::ImageCount() const {
  size_t n = 0;
  for (const PageEntry& e : entries) n += e.type == EntryType::kImage ? 1 : 0;
  return n;
}

std::string EncodeMeta(const RecordMeta& m) {
  // Exactly its size: one allocation, and no capacity beyond it (a string
  // grown past its reservation doubles it).
  size_t size = kMetaFixedBytes + m.annotation.size() + kMetaEntryBytes * m.entries.size();
  if (HasHoles(m)) {
    for (const PageEntry& e : m.entries) size += e.type == EntryType::kImage ? 2 : 0;
  }
  if (m.payload_len > 0) size += 4;
  std::string out;
  out.reserve(size);
  PutFixed8(&out, static_cast<uint8_t>(m.kind));
  uint8_t flags = m.flags & static_cast<uint8_t>(~kRecordFlagPayload);
  if (m.payload_len > 0) flags |= kRecordFlagPayload;
  PutFixed8(&out, flags);
  PutFixed16(&out, 0);
  PutFixed64(&out, m.lsn);
  PutFixed64(&out, m.timeline);
  PutFixed64(&out, m.run_start);
  PutFixed64(&out, static_cast<uint64_t>(m.time_micros));
  PutFixed32(&out, m.db_size_pages);
  PutFixed64(&out, m.base);
  PutFixed64(&out, m.base_run_start);
  PutFixed32(&out, static_cast<uint32_t>(m.annotation.size()));
  out.append(m.annotation);
  PutFixed32(&out, static_cast<uint32_t>(m.entries.size()));
  for (const PageEntry& e : m.entries) {
    PutFixed32(&out, e.pgno);
    PutFixed8(&out, static_cast<uint8_t>(e.type));
    if (HasHoles(m) && e.type == EntryType::kImage) PutFixed16(&out, e.hole);
  }
  if (m.payload_len > 0) PutFixed32(&out, m.payload_len);
  return out;
}

Status DecodeMeta(std::string_view in, RecordMeta* m, MetaParts parts) {
  Decoder d(in);
  uint8_t kind = d.U8();
  m->flags = d.U8();
  d.U16();
  m->lsn = d.U64();
  m->timeline = d.U64();
  m->run_start = d.U64();
  m->time_micros = static_cast<int64_t>(d.U64());
  m->db_size_pages = d.U32();
  m->base = d.U64();
  m->base_run_start = d.U64();
  uint32_t ann = d.U32();
  std::string_view annotation = d.Bytes(ann);
  if (parts == MetaParts::kAll) {
    m->annotation = std::string(annotation);
  } else {
    m->annotation.clear();
  }
  uint32_t n = d.U32();
  if (!d.ok() || n > d.remaining() / kMetaEntryBytes) {
    return Status::Corruption("record metadata truncated");
  }
  if (kind < 1 || kind > 4) return Status::Corruption("unknown record kind");
  m->kind = static_cast<RecordKind>(kind);
  m->entries.resize(n);
  PageNo prev = 0;
  for (uint32_t i = 0; i < n; ++i) {
    m->entries[i].pgno = d.U32();
    uint8_t type = d.U8();
    if (type != 1 && type != 2) return Status::Corruption("unknown page entry type");
    m->entries[i].type = static_cast<EntryType>(type);
    m->entries[i].hole = 0;
    if (HasHoles(*m) && type == 1) {
      m->entries[i].hole = d.U16();
      if (m->entries[i].hole > kPageSize) return Status::Corruption("image hole past its page");
    }
    if (m->entries[i].pgno <= prev) return Status::Corruption("page entries not ascending");
    prev = m->entries[i].pgno;
  }
  m->payload_len = 0;
  if (m->flags & kRecordFlagPayload) {
    m->payload_len = d.U32();
    if (d.ok() && m->payload_len == 0) return Status::Corruption("payload flag with no payload");
  }
  if (!d.ok() || d.remaining() != 0) return Status::Corruption("record metadata has bad length");
  if (m->lsn == 0) return Status::Corruption("record with LSN 0");
  return Status::OK();
}

std::string EncodeRecordPrefix(const std::string& meta_bytes) {
  std::string out;
  PutFixed32(&out, static_cast<uint32_t>(meta_bytes.size()));
  PutFixed32(&out, crc32c::Value(meta_bytes));
  out.append(meta_bytes);
  return out;
}

uint64_t ImagesBytes(const RecordMeta& m) {
  uint64_t n = 0;
  for (const PageEntry& e : m.entries) {
    if (e.type == EntryType::kImage) n += ImageBlockBytes(m, e);
  }
  return n;
}

std::vector<uint64_t> ImageOffsets(uint64_t record_offset, uint32_t meta_len, const RecordMeta& m) {
  std::vector<uint64_t> out;
  uint64_t at = record_offset + kRecordHeaderSize + meta_len;
  for (const PageEntry& e : m.entries) {
    if (e.type != EntryType::kImage) continue;
    out.push_back(at);
    at += ImageBlockBytes(m, e);
  }
  return out;
}

std::pair<uint16_t, uint16_t> FindHole(std::string_view page) {
  // The longest run of zero 8-byte words, then widened byte by byte: a
  // b-tree page's free space (between its cell pointers and its cells) is
  // one such run, zero as SQLite leaves a page it fills.
  constexpr size_t kWords = kPageSize / 8;
  size_t best = 0, best_len = 0, start = 0;
  for (size_t w = 0; w <= kWords; ++w) {
    uint64_t x = 1;
    if (w < kWords) std::memcpy(&x, page.data() + 8 * w, 8);
    if (x == 0) continue;
    if (w - start > best_len) {
      best = start;
      best_len = w - start;
    }
    start = w + 1;
  }
  if (best_len == 0) return {0, 0};  // a few zero bytes are not worth a hole
  size_t begin = best * 8, end = (best + best_len) * 8;
  while (begin > 0 && page[begin - 1] == 0) --begin;
  while (end < kPageSize && page[end] == 0) ++end;
  return {static_cast<uint16_t>(begin), static_cast<uint16_t>(end - begin)};
}

uint16_t AppendImageBlock(std::string* dst, std::string_view page, bool holes) {
  if (!holes) {
    PutFixed32(dst, crc32c::Value(page));
    dst->append(page);
    return 0;
  }
  const auto [off, len] = FindHole(page);
  const size_t at = dst->size();
  PutFixed32(dst, 0);
  PutFixed16(dst, off);
  PutFixed16(dst, len);
  dst->append(page.substr(0, off));
  dst->append(page.substr(off + len));
  const uint32_t crc = crc32c::Value(std::string_view(*dst).substr(at + 4));
  coding::EncodeFixed32(dst->data() + at, crc);
  return len;
}

namespace {

// The hole a block's header names; false when it does not fit in a page.
bool HoleOf(const char* head, size_t* off, size_t* len) {
  *off = coding::DecodeFixed16(head + 4);
  *len = coding::DecodeFixed16(head + 6);
  return *off + *len <= kPageSize;
}

// A page whose bytes after the hole sit right after its bytes before it
// (as a block stores them): moves them to their place and zeroes the hole.
void PutHoleBack(char* page, size_t off, size_t len) {
  std::memmove(page + off + len, page + off, kPageSize - len - off);
  std::memset(page + off, 0, len);
}

}  // namespace

bool ImageBlockValid(std::string_view block, bool holes) {
  if (!holes) {
    return block.size() == kImageBlockSize &&
           DecodeFixed32(block.data()) == crc32c::Value(block.substr(4));
  }
  size_t off = 0, len = 0;
  return block.size() >= kHoleBlockHeader && HoleOf(block.data(), &off, &len) &&
         block.size() == kHoleBlockHeader + kPageSize - len &&
         DecodeFixed32(block.data()) == crc32c::Value(block.substr(4));
}

bool RestoreImage(const char* head, bool holes, char* page, size_t got) {
  if (!holes) {
    return got >= kImageBlockSize && DecodeFixed32(head) == crc32c::Value(page, kPageSize);
  }
  size_t off = 0, len = 0;
  if (got < kHoleBlockHeader || !HoleOf(head, &off, &len) ||
      got < kHoleBlockHeader + kPageSize - len) {
    return false;
  }
  const uint32_t crc = crc32c::Extend(crc32c::Value(head + 4, 4), page, kPageSize - len);
  if (DecodeFixed32(head) != crc) return false;
  PutHoleBack(page, off, len);
  return true;
}

void BlockImage(std::string_view block, bool holes, char* out) {
  const size_t head = ImageBlockHeader(holes);
  std::memcpy(out, block.data() + head, block.size() - head);
  if (holes) {
    size_t off = 0, len = 0;
    HoleOf(block.data(), &off, &len);
    PutHoleBack(out, off, len);
  }
}

void AppendPayloadBlock(std::string* dst, std::string_view payload) {
  PutFixed32(dst, crc32c::Value(payload));
  dst->append(payload);
}

bool PayloadBlockValid(std::string_view block, std::string_view* payload) {
  if (block.size() < kPayloadBlockHeader) return false;
  *payload = block.substr(kPayloadBlockHeader);
  return DecodeFixed32(block.data()) == crc32c::Value(*payload);
}

std::string EncodeSegmentHeader(const SegmentHeader& h) {
  std::string out(kSegmentMagic);
  PutFixed32(&out, h.version);
  PutFixed32(&out, h.flags);
  PutFixed64(&out, h.number);
  PutFixed32(&out, static_cast<uint32_t>(h.supersedes.size()));
  for (uint64_t s : h.supersedes) PutFixed64(&out, s);
  PutFixed32(&out, crc32c::Value(out));
  return out;
}

size_t SegmentHeaderLength(std::string_view fixed) {
  if (fixed.size() < kSegmentHeaderFixed || fixed.substr(0, 8) != kSegmentMagic) return 0;
  uint32_t n = DecodeFixed32(fixed.data() + 24);
  if (n > (1u << 20)) return 0;
  return kSegmentHeaderMinSize + 8ull * n;
}

Status DecodeSegmentHeader(std::string_view in, SegmentHeader* h, size_t* len) {
  size_t n = SegmentHeaderLength(in);
  if (n == 0 || in.size() < n) return Status::Corruption("bad segment header");
  if (DecodeFixed32(in.data() + n - 4) != crc32c::Value(in.substr(0, n - 4))) {
    return Status::Corruption("segment header checksum mismatch");
  }
  Decoder d(in.substr(8, n - 12));
  uint32_t version = d.U32();
  if (version < kOldestFormatVersion || version > kFormatVersion) {
    return Status::Corruption("unsupported segment format version " + std::to_string(version) +
                              " (this build reads versions " +
                              std::to_string(kOldestFormatVersion) + " to " +
                              std::to_string(kFormatVersion) + ")");
  }
  h->version = version;
  h->flags = d.U32();
  h->number = d.U64();
  uint32_t count = d.U32();
  h->supersedes.clear();
  for (uint32_t i = 0; i < count; ++i) h->supersedes.push_back(d.U64());
  if (!d.ok()) return Status::Corruption("bad segment header");
  *len = n;
  return Status::OK();
}

namespace {

uint32_t PageHash(PageNo pgno) {
  // murmur3's finalizer: every input bit reaches every output bit.
  uint32_t h = pgno;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

void PutIndexHandle(std::string* out, const IndexBlockHandle& h) {
  PutFixed32(out, h.first_pgno);
  PutFixed64(out, h.first_lsn);
  PutFixed32(out, h.last_pgno);
  PutFixed64(out, h.last_lsn);
  PutFixed64(out, h.offset);
  PutFixed32(out, h.len);
}

}  // namespace

std::string BuildPageFilter(const std::vector<PageNo>& pages) {
  size_t bits = std::max<size_t>(64, pages.size() * kFilterBitsPerPage);
  const size_t bytes = (bits + 7) / 8;
  bits = bytes * 8;
  const int k = std::clamp(static_cast<int>(kFilterBitsPerPage * 0.69), 1, 30);
  std::string out(bytes, '\0');
  for (PageNo p : pages) {
    uint32_t h = PageHash(p);
    const uint32_t delta = (h >> 17) | (h << 15);
    for (int j = 0; j < k; ++j) {
      const size_t bit = h % bits;
      out[bit / 8] = static_cast<char>(out[bit / 8] | (1 << (bit % 8)));
      h += delta;
    }
  }
  out.push_back(static_cast<char>(k));
  return out;
}

bool FilterMayContain(std::string_view filter, PageNo pgno) {
  if (filter.size() < 2) return true;
  const size_t bits = (filter.size() - 1) * 8;
  const int k = static_cast<uint8_t>(filter.back());
  if (k < 1 || k > 30) return true;  // not a filter this build writes: no answer
  uint32_t h = PageHash(pgno);
  const uint32_t delta = (h >> 17) | (h << 15);
  for (int j = 0; j < k; ++j) {
    const size_t bit = h % bits;
    if ((static_cast<uint8_t>(filter[bit / 8]) & (1 << (bit % 8))) == 0) return false;
    h += delta;
  }
  return true;
}

std::string EncodeIndexSection(const std::vector<IndexEntry>& entries, uint64_t index_offset) {
  std::string out;
  IndexDirectory dir;
  const size_t per_block = (kIndexBlockTarget - 8) / kIndexEntryBytes;
  std::vector<PageNo> pages;
  for (size_t i = 0; i < entries.size(); i += per_block) {
    const size_t end = std::min(entries.size(), i + per_block);
    IndexBlockHandle h;
    h.first_pgno = entries[i].pgno;
    h.first_lsn = entries[i].lsn;
    h.last_pgno = entries[end - 1].pgno;
    h.last_lsn = entries[end - 1].lsn;
    h.offset = index_offset + out.size();
    std::string block;
    PutFixed32(&block, static_cast<uint32_t>(end - i));
    for (size_t j = i; j < end; ++j) {
      PutFixed32(&block, entries[j].pgno);
      PutFixed64(&block, entries[j].lsn);
      PutFixed64(&block, entries[j].run_start);
      PutFixed64(&block, entries[j].offset);
      if (pages.empty() || pages.back() != entries[j].pgno) pages.push_back(entries[j].pgno);
    }
    PutFixed32(&block, crc32c::Value(block));
    h.len = static_cast<uint32_t>(block.size());
    out += block;
    dir.blocks.push_back(h);
  }
  for (const IndexEntry& e : entries) {
    dir.min_lsn = dir.min_lsn == 0 ? e.lsn : std::min(dir.min_lsn, e.lsn);
    dir.max_lsn = std::max(dir.max_lsn, e.lsn);
  }
  std::string filter = BuildPageFilter(pages);
  PutFixed32(&filter, crc32c::Value(filter));
  dir.filter_offset = index_offset + out.size();
  dir.filter_len = static_cast<uint32_t>(filter.size());
  out += filter;
  const uint64_t dir_offset = index_offset + out.size();
  std::string d;
  PutFixed32(&d, static_cast<uint32_t>(dir.blocks.size()));
  for (const IndexBlockHandle& h : dir.blocks) PutIndexHandle(&d, h);
  PutFixed64(&d, dir.filter_offset);
  PutFixed32(&d, dir.filter_len);
  PutFixed64(&d, dir.min_lsn);
  PutFixed64(&d, dir.max_lsn);
  PutFixed64(&d, entries.size());
  PutFixed32(&d, crc32c::Value(d));
  out += d;
  std::string tail;
  PutFixed64(&tail, index_offset);
  PutFixed64(&tail, dir_offset);
  PutFixed32(&tail, static_cast<uint32_t>(d.size()));
  PutFixed32(&tail, crc32c::Value(tail));
  out += tail;
  return out;
}

bool DecodeIndexTail(std::string_view in, IndexTail* t) {
  if (in.size() != kIndexTailSize) return false;
  if (DecodeFixed32(in.data() + 20) != crc32c::Value(in.substr(0, 20))) return false;
  Decoder d(in);
  t->index_offset = d.U64();
  t->dir_offset = d.U64();
  t->dir_len = d.U32();
  return true;
}

Status DecodeIndexDirectory(std::string_view in, IndexDirectory* dir) {
  if (in.size() < 4 ||
      DecodeFixed32(in.data() + in.size() - 4) != crc32c::Value(in.substr(0, in.size() - 4))) {
    return Status::Corruption("page index directory checksum mismatch");
  }
  Decoder d(in.substr(0, in.size() - 4));
  const uint32_t n = d.U32();
  if (n > d.remaining() / kIndexHandleBytes) return Status::Corruption("bad page index directory");
  dir->blocks.resize(n);
  const char* p = d.Bytes(n * kIndexHandleBytes).data();  // checked above
  for (IndexBlockHandle& h : dir->blocks) {
    h.first_pgno = DecodeFixed32(p);
    h.first_lsn = DecodeFixed64(p + 4);
    h.last_pgno = DecodeFixed32(p + 12);
    h.last_lsn = DecodeFixed64(p + 16);
    h.offset = DecodeFixed64(p + 24);
    h.len = DecodeFixed32(p + 32);
    p += kIndexHandleBytes;
  }
  dir->filter_offset = d.U64();
  dir->filter_len = d.U32();
  dir->min_lsn = d.U64();
  dir->max_lsn = d.U64();
  dir->versions = d.U64();
  if (!d.ok() || d.remaining() != 0) return Status::Corruption("bad page index directory");
  return Status::OK();
}

Status DecodeIndexBlock(std::string_view in, std::vector<IndexEntry>* out) {
  if (in.size() < 8 ||
      DecodeFixed32(in.data() + in.size() - 4) != crc32c::Value(in.substr(0, in.size() - 4))) {
    return Status::Corruption("page index block checksum mismatch");
  }
  Decoder d(in.substr(0, in.size() - 4));
  const uint32_t n = d.U32();
  if (static_cast<uint64_t>(n) * kIndexEntryBytes != d.remaining()) {
    return Status::Corruption("bad page index block");
  }
  out->resize(n);
  const char* p = d.Bytes(n * kIndexEntryBytes).data();  // checked above
  for (IndexEntry& e : *out) {
    e.pgno = DecodeFixed32(p);
    e.lsn = DecodeFixed64(p + 4);
    e.run_start = DecodeFixed64(p + 12);
    e.offset = DecodeFixed64(p + 20);
    p += kIndexEntryBytes;
  }
  return Status::OK();
}

Status DecodeFilter(std::string_view in, std::string* filter) {
  if (in.size() < 5 ||
      DecodeFixed32(in.data() + in.size() - 4) != crc32c::Value(in.substr(0, in.size() - 4))) {
    return Status::Corruption("page index filter checksum mismatch");
  }
  filter->assign(in.substr(0, in.size() - 4));
  return Status::OK();
}

Status RecordIndexOf(const FooterMetas& footer, std::vector<RecordIndexEntry>* out,
                     std::vector<PageNo>* pages) {
  out->clear();
  out->reserve(footer.size());
  RecordMeta m;  // one for all: DecodeMeta sets every field, and its entries keep their capacity
  for (const auto& [offset, meta_bytes] : footer) {
    BRANCHDB_RETURN_IF_ERROR(DecodeMeta(meta_bytes, &m, MetaParts::kNoAnnotation));
    if (pages != nullptr) {
      for (const PageEntry& e : m.entries) pages->push_back(e.pgno);
    }
    if (m.flags & kRecordFlagCollected) continue;
    out->push_back(RecordIndexEntry{m.lsn, m.time_micros, m.run_start, offset,
                                    static_cast<uint32_t>(meta_bytes.size()), m.db_size_pages,
                                    m.payload_len, static_cast<uint32_t>(m.ImageCount())});
  }
  std::sort(out->begin(), out->end(),
            [](const RecordIndexEntry& a, const RecordIndexEntry& b) { return a.lsn < b.lsn; });
  return Status::OK();
}

std::string EncodeRecordIndexSection(const std::vector<RecordIndexEntry>& entries,
                                     uint64_t offset) {
  std::string out;
  RecordIndexDirectory dir;
  const size_t per_block = (kIndexBlockTarget - 8) / kRecordIndexEntryBytes;
  for (size_t i = 0; i < entries.size(); i += per_block) {
    const size_t end = std::min(entries.size(), i + per_block);
    RecordIndexHandle h;
    h.first_lsn = entries[i].lsn;
    h.last_lsn = entries[end - 1].lsn;
    h.offset = offset + out.size();
    std::string block;
    PutFixed32(&block, static_cast<uint32_t>(end - i));
    for (size_t j = i; j < end; ++j) {
      const RecordIndexEntry& e = entries[j];
      PutFixed64(&block, e.lsn);
      PutFixed64(&block, static_cast<uint64_t>(e.time_micros));
      PutFixed64(&block, e.run_start);
      PutFixed64(&block, e.offset);
      PutFixed32(&block, e.meta_len);
      PutFixed32(&block, e.db_size_pages);
      PutFixed32(&block, e.payload_len);
      PutFixed32(&block, e.images);
    }
    PutFixed32(&block, crc32c::Value(block));
    h.len = static_cast<uint32_t>(block.size());
    out += block;
    dir.blocks.push_back(h);
  }
  const uint64_t dir_offset = offset + out.size();
  std::string d;
  PutFixed32(&d, static_cast<uint32_t>(dir.blocks.size()));
  for (const RecordIndexHandle& h : dir.blocks) {
    PutFixed64(&d, h.first_lsn);
    PutFixed64(&d, h.last_lsn);
    PutFixed64(&d, h.offset);
    PutFixed32(&d, h.len);
  }
  PutFixed64(&d, entries.size());
  PutFixed32(&d, crc32c::Value(d));
  out += d;
  std::string tail;
  PutFixed64(&tail, offset);
  PutFixed64(&tail, dir_offset);
  PutFixed32(&tail, static_cast<uint32_t>(d.size()));
  PutFixed32(&tail, crc32c::Value(tail));
  out += tail;
  return out;
}

Status DecodeRecordIndexDirectory(std::string_view in, RecordIndexDirectory* dir) {
  if (in.size() < 4 ||
      DecodeFixed32(in.data() + in.size() - 4) != crc32c::Value(in.substr(0, in.size() - 4))) {
    return Status::Corruption("record index directory checksum mismatch");
  }
  Decoder d(in.substr(0, in.size() - 4));
  const uint32_t n = d.U32();
  if (n > d.remaining() / kRecordIndexHandleBytes) {
    return Status::Corruption("bad record index directory");
  }
  dir->blocks.resize(n);
  const char* p = d.Bytes(n * kRecordIndexHandleBytes).data();  // checked above
  for (RecordIndexHandle& h : dir->blocks) {
    h.first_lsn = DecodeFixed64(p);
    h.last_lsn = DecodeFixed64(p + 8);
    h.offset = DecodeFixed64(p + 16);
    h.len = DecodeFixed32(p + 24);
    p += kRecordIndexHandleBytes;
  }
  dir->records = d.U64();
  if (!d.ok() || d.remaining() != 0) return Status::Corruption("bad record index directory");
  return Status::OK();
}

Status DecodeRecordIndexBlock(std::string_view in, std::vector<RecordIndexEntry>* out) {
  if (in.size() < 8 ||
      DecodeFixed32(in.data() + in.size() - 4) != crc32c::Value(in.substr(0, in.size() - 4))) {
    return Status::Corruption("record index block checksum mismatch");
  }
  Decoder d(in.substr(0, in.size() - 4));
  const uint32_t n = d.U32();
  if (static_cast<uint64_t>(n) * kRecordIndexEntryBytes != d.remaining()) {
    return Status::Corruption("bad record index block");
  }
  out->reserve(out->size() + n);
  const char* p = d.Bytes(n * kRecordIndexEntryBytes).data();  // checked above
  for (uint32_t i = 0; i < n; ++i, p += kRecordIndexEntryBytes) {
    RecordIndexEntry e;
    e.lsn = DecodeFixed64(p);
    e.time_micros = static_cast<int64_t>(DecodeFixed64(p + 8));
    e.run_start = DecodeFixed64(p + 16);
    e.offset = DecodeFixed64(p + 24);
    e.meta_len = DecodeFixed32(p + 32);
    e.db_size_pages = DecodeFixed32(p + 36);
    e.payload_len = DecodeFixed32(p + 40);
    e.images = DecodeFixed32(p + 44);
    out->push_back(e);
  }
  return Status::OK();
}

Status WriteFooter(const FooterMetas& entries, uint64_t footer_offset, uint32_t version,
                   const std::vector<IndexEntry>& index,
                   const std::vector<RecordIndexEntry>& records, const FooterSink& sink) {
  size_t body_len = 4;
  for (const auto& entry : entries) body_len += 12 + entry.second.size();
  // The body (every record's meta: megabytes) goes out in pieces of a buffer
  // that stays small, its CRC extended piece by piece.
  std::string piece;
  piece.reserve(std::min(body_len, kFooterPieceBytes) + 16);
  uint32_t body_crc = 0;
  auto send = [&]() -> Status {
    body_crc = crc32c::Extend(body_crc, piece.data(), piece.size());
    Status s = sink(piece);
    piece.clear();
    return s;
  };
  PutFixed32(&piece, static_cast<uint32_t>(entries.size()));
  for (const auto& [offset, meta] : entries) {
    PutFixed64(&piece, offset);
    PutFixed32(&piece, static_cast<uint32_t>(meta.size()));
    piece.append(meta);
    if (piece.size() >= kFooterPieceBytes) BRANCHDB_RETURN_IF_ERROR(send());
  }
  if (!piece.empty()) BRANCHDB_RETURN_IF_ERROR(send());
  uint64_t at = footer_offset + body_len;
  if (version >= kFirstRecordIndexFormatVersion) {
    const std::string section = EncodeRecordIndexSection(records, at);
    at += section.size();
    BRANCHDB_RETURN_IF_ERROR(sink(section));
  }
  std::string tail;
  if (version >= kFirstIndexedFormatVersion) tail = EncodeIndexSection(index, at);
  PutFixed64(&tail, footer_offset);
  PutFixed64(&tail, body_len);
  PutFixed32(&tail, body_crc);
  PutFixed32(&tail, version);
  tail.append(kFooterMagic);
  return sink(tail);
}

std::string EncodeFooter(const FooterMetas& entries, uint64_t footer_offset, uint32_t version,
                         const std::vector<IndexEntry>& index,
                         const std::vector<RecordIndexEntry>& records) {
  std::string out;
  (void)WriteFooter(entries, footer_offset, version, index, records, [&out](std::string_view p) {
    out.append(p);
    return Status::OK();
  });
  return out;
}

bool DecodeTrailer(std::string_view in, Trailer* t) {
  if (in.size() != kTrailerSize || in.substr(24) != kFooterMagic) return false;
  Decoder d(in);
  t->footer_offset = d.U64();
  t->footer_len = d.U64();
  t->footer_crc = d.U32();
  t->version = d.U32();
  return t->version >= kOldestFormatVersion && t->version <= kFormatVersion;
}

Status DecodeFooter(std::string_view body, uint32_t crc, std::vector<FooterEntry>* out,
                    MetaParts parts) {
  if (crc32c::Value(body) != crc) return Status::Corruption("segment footer checksum mismatch");
  Decoder d(body);
  uint32_t n = d.U32();
  if (!d.ok() || n > body.size() / 12) return Status::Corruption("bad segment footer");
  out->resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    FooterEntry& e = (*out)[i];
    e.offset = d.U64();
    e.meta_len = d.U32();
    std::string_view meta = d.Bytes(e.meta_len);
    if (!d.ok()) return Status::Corruption("segment footer truncated");
    BRANCHDB_RETURN_IF_ERROR(DecodeMeta(meta, &e.meta, parts));
  }
  if (d.remaining() != 0) return Status::Corruption("segment footer has trailing bytes");
  return Status::OK();
}

std::string SegmentFileName(uint64_t number) {
  char buf[sizeof("seg-18446744073709551615.log")];
  std::snprintf(buf, sizeof(buf), "seg-%06llu.log", static_cast<unsigned long long>(number));
  return buf;
}

bool ParseSegmentFileName(std::string_view name, uint64_t* number) {
  if (name.size() < 9 || name.substr(0, 4) != "seg-" || name.substr(name.size() - 4) != ".log") {
    return false;
  }
  std::string_view digits = name.substr(4, name.size() - 8);
  if (digits.empty() || digits.size() > 18) return false;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *number = v;
  return true;
}

}  // namespace branchdb::storage::internal
