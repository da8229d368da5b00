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

namespace {

// The manifest's magic, u32 version and u32 crc: what even an empty one has.
constexpr size_t kManifestMinSize = kManifestMagic.size() + 4 + 4;
// A MANIFEST segment descriptor's encoded size (EncodeStoreManifest).
constexpr size_t kDescriptorBytes = 4 + 4 + 8 + 8 + 4 + 8 + 6 * 8;

}  // namespace

size_t RecordMeta::ImageCount() const {
  size_t n = 0;
  for (const PageEntry& e : entries) n += e.type == EntryType::kImage ? 1 : 0;
  return n;
}

std::string EncodeMeta(const RecordMeta& m) {
  std::string out;
  out.reserve(kMetaFixedBytes + m.annotation.size() + kMetaEntryBytes * m.entries.size());
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

void AppendImageBlock(std::string* dst, std::string_view page) {
  PutFixed32(dst, crc32c::Value(page));
  dst->append(page);
}

bool ImageBlockValid(std::string_view block) {
  return block.size() == kImageBlockSize &&
         DecodeFixed32(block.data()) == crc32c::Value(block.substr(4));
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

Status RecordIndexOf(const std::vector<std::pair<uint64_t, std::string>>& footer,
                     std::vector<RecordIndexEntry>* out, std::vector<PageNo>* pages) {
  out->clear();
  out->reserve(footer.size());
  for (const auto& [offset, meta_bytes] : footer) {
    RecordMeta m;
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

std::string EncodeFooter(const std::vector<std::pair<uint64_t, std::string>>& entries,
                         uint64_t footer_offset, uint32_t version,
                         const std::vector<IndexEntry>& index,
                         const std::vector<RecordIndexEntry>& records) {
  // One buffer, sized once: a segment's footer holds every record's meta
  // (megabytes), and each copy or regrowth of it is paid at the seal, by a
  // commit that waits for it.
  size_t body_len = 4;
  for (const auto& entry : entries) body_len += 12 + entry.second.size();
  std::string out;
  out.reserve(body_len + records.size() * kRecordIndexEntryBytes +
              index.size() * kIndexEntryBytes + 64 * 1024 + kTrailerSize);
  PutFixed32(&out, static_cast<uint32_t>(entries.size()));
  for (const auto& [offset, meta] : entries) {
    PutFixed64(&out, offset);
    PutFixed32(&out, static_cast<uint32_t>(meta.size()));
    out.append(meta);
  }
  const uint32_t body_crc = crc32c::Value(std::string_view(out.data(), body_len));
  if (version >= kFirstRecordIndexFormatVersion) {
    out += EncodeRecordIndexSection(records, footer_offset + out.size());
  }
  if (version >= kFirstIndexedFormatVersion) {
    out += EncodeIndexSection(index, footer_offset + out.size());
  }
  PutFixed64(&out, footer_offset);
  PutFixed64(&out, body_len);
  PutFixed32(&out, body_crc);
  PutFixed32(&out, version);
  out.append(kFooterMagic);
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

namespace {

// The fields GCSTATE and MANIFEST share, after the version.
void PutManifestBody(std::string* out, const Manifest& m) {
  PutFixed64(out, m.last_lsn);
  PutFixed64(out, m.last_timeline);
  PutFixed64(out, static_cast<uint64_t>(m.last_time));
  PutFixed64(out, m.next_segment);
  PutFixed32(out, static_cast<uint32_t>(m.collected.size()));
  for (const auto& [a, b] : m.collected) {
    PutFixed64(out, a);
    PutFixed64(out, b);
  }
  PutFixed32(out, static_cast<uint32_t>(m.runs.size()));
  for (const ManifestRun& r : m.runs) {
    PutFixed64(out, r.start);
    PutFixed64(out, r.timeline);
    PutFixed64(out, r.base);
    PutFixed64(out, r.base_run_start);
    PutFixed64(out, r.live_records);
    PutFixed32(out, static_cast<uint32_t>(r.markers.size()));
    for (const auto& [lsn, time] : r.markers) {
      PutFixed64(out, lsn);
      PutFixed64(out, static_cast<uint64_t>(time));
    }
  }
  PutFixed32(out, static_cast<uint32_t>(m.timelines.size()));
  for (const ManifestTimeline& t : m.timelines) {
    PutFixed64(out, t.id);
    PutFixed64(out, t.head);
    PutFixed64(out, t.run_start);
    PutFixed64(out, t.created_lsn);
    PutFixed64(out, t.base);
    PutFixed64(out, static_cast<uint64_t>(t.created_micros));
  }
}

void GetManifestBody(Decoder* d, Manifest* m) {
  m->last_lsn = d->U64();
  m->last_timeline = d->U64();
  m->last_time = static_cast<int64_t>(d->U64());
  m->next_segment = d->U64();
  uint32_t n = d->U32();
  for (uint32_t i = 0; i < n && d->ok(); ++i) {
    Lsn a = d->U64();
    Lsn b = d->U64();
    m->collected.emplace_back(a, b);
  }
  n = d->U32();
  for (uint32_t i = 0; i < n && d->ok(); ++i) {
    ManifestRun r;
    r.start = d->U64();
    r.timeline = d->U64();
    r.base = d->U64();
    r.base_run_start = d->U64();
    r.live_records = d->U64();
    uint32_t k = d->U32();
    for (uint32_t j = 0; j < k && d->ok(); ++j) {
      Lsn lsn = d->U64();
      int64_t time = static_cast<int64_t>(d->U64());
      r.markers.emplace_back(lsn, time);
    }
    m->runs.push_back(std::move(r));
  }
  n = d->U32();
  for (uint32_t i = 0; i < n && d->ok(); ++i) {
    ManifestTimeline t;
    t.id = d->U64();
    t.head = d->U64();
    t.run_start = d->U64();
    t.created_lsn = d->U64();
    t.base = d->U64();
    t.created_micros = static_cast<int64_t>(d->U64());
    m->timelines.push_back(t);
  }
}

// Checks magic and crc of a manifest file named `name`; *body: what is
// between the magic and the crc.
Status CheckManifestFile(std::string_view in, std::string_view magic, std::string_view name,
                         std::string_view* body) {
  if (in.size() < kManifestMinSize || in.substr(0, 8) != magic) {
    return Status::Corruption(std::string(name) + ": bad magic");
  }
  if (DecodeFixed32(in.data() + in.size() - 4) !=
      crc32c::Value(in.substr(0, in.size() - 4))) {
    return Status::Corruption(std::string(name) + ": checksum mismatch");
  }
  *body = in.substr(8, in.size() - 12);
  return Status::OK();
}

}  // namespace

std::string EncodeManifest(const Manifest& m) {
  std::string out(kManifestMagic);
  PutFixed32(&out, kManifestVersion);
  PutManifestBody(&out, m);
  PutFixed32(&out, crc32c::Value(out));
  return out;
}

Status DecodeManifest(std::string_view in, Manifest* m) {
  std::string_view body;
  BRANCHDB_RETURN_IF_ERROR(CheckManifestFile(in, kManifestMagic, kManifestName, &body));
  Decoder d(body);
  if (d.U32() != kManifestVersion) return Status::Corruption("GCSTATE: unsupported version");
  GetManifestBody(&d, m);
  if (!d.ok() || d.remaining() != 0) return Status::Corruption("GCSTATE: bad length");
  m->gc_lsn = m->last_lsn;
  return Status::OK();
}

std::string EncodeStoreManifest(const Manifest& m, uint32_t version) {
  std::string out(kStoreManifestMagic);
  PutFixed32(&out, version);
  PutManifestBody(&out, m);
  PutFixed64(&out, m.gc_lsn);
  PutFixed32(&out, static_cast<uint32_t>(m.segments.size()));
  for (const ManifestSegment& s : m.segments) {
    PutFixed64(&out, s.number);
    PutFixed64(&out, s.size);
    if (version < 3) continue;
    out.push_back(s.described ? 1 : 0);
    if (version >= 4) {
      PutFixed32(&out, static_cast<uint32_t>(s.supersedes.size()));
      for (uint64_t n : s.supersedes) PutFixed64(&out, n);
    }
    if (!s.described) continue;
    const SegmentDescriptor& d = s.desc;
    PutFixed32(&out, d.version);
    PutFixed32(&out, d.flags);
    PutFixed64(&out, d.footer_offset);
    PutFixed64(&out, d.footer_len);
    PutFixed32(&out, d.footer_crc);
    PutFixed64(&out, d.index_offset);
    for (uint64_t v : {d.min_lsn, d.max_lsn, d.versions, d.rec_min_lsn, d.rec_max_lsn, d.records}) {
      PutFixed64(&out, v);
    }
  }
  if (version >= 4) {
    PutFixed32(&out, static_cast<uint32_t>(m.damaged.size()));
    for (uint64_t n : m.damaged) PutFixed64(&out, n);
    PutFixed64(&out, m.tail_segment);
  }
  PutFixed32(&out, static_cast<uint32_t>(m.known_pages.size()));
  for (const auto& [a, b] : m.known_pages) {
    PutFixed32(&out, a);
    PutFixed32(&out, b);
  }
  if (version >= 2) {
    PutFixed32(&out, static_cast<uint32_t>(m.payloads.size()));
    for (const auto& [t, bytes] : m.payloads) {
      PutFixed64(&out, t);
      PutFixed64(&out, bytes);
    }
  }
  PutFixed32(&out, crc32c::Value(out));
  return out;
}

Status DecodeStoreManifest(std::string_view in, Manifest* m) {
  std::string_view body;
  BRANCHDB_RETURN_IF_ERROR(CheckManifestFile(in, kStoreManifestMagic, kStoreManifestName, &body));
  Decoder d(body);
  const uint32_t version = d.U32();
  if (version < 1 || version > kStoreManifestVersion) {
    return Status::Corruption("MANIFEST: unsupported version " + std::to_string(version));
  }
  GetManifestBody(&d, m);
  m->gc_lsn = d.U64();
  uint32_t n = d.U32();
  m->segments.reserve(std::min<size_t>(n, d.remaining() / 16));
  for (uint32_t i = 0; i < n && d.ok(); ++i) {
    ManifestSegment& s = m->segments.emplace_back();  // decoded in place
    s.number = d.U64();
    s.size = d.U64();
    if (version >= 3) {
      const uint8_t described = d.U8();
      if (described > 1) return Status::Corruption("MANIFEST: bad segment entry");
      s.described = described == 1;
    }
    if (version >= 4) {
      const uint32_t k = d.U32();
      if (k > d.remaining() / 8) return Status::Corruption("MANIFEST: bad segment entry");
      s.supersedes.reserve(k);
      for (uint32_t j = 0; j < k; ++j) s.supersedes.push_back(d.U64());
    }
    if (s.described) {
      // One bounds check for the descriptor's fixed 84 bytes, then plain loads.
      const char* p = d.Bytes(kDescriptorBytes).data();
      if (p == nullptr) break;  // !d.ok(): reported below
      SegmentDescriptor& x = s.desc;
      x.version = DecodeFixed32(p);
      x.flags = DecodeFixed32(p + 4);
      x.footer_offset = DecodeFixed64(p + 8);
      x.footer_len = DecodeFixed64(p + 16);
      x.footer_crc = DecodeFixed32(p + 24);
      x.index_offset = DecodeFixed64(p + 28);
      p += 36;
      for (uint64_t* v : {&x.min_lsn, &x.max_lsn, &x.versions, &x.rec_min_lsn, &x.rec_max_lsn,
                          &x.records}) {
        *v = DecodeFixed64(p);
        p += 8;
      }
    }
  }
  n = version >= 4 ? d.U32() : 0;
  if (n > d.remaining() / 8) return Status::Corruption("MANIFEST: bad length");
  m->damaged.reserve(n);
  for (uint32_t i = 0; i < n; ++i) m->damaged.push_back(d.U64());
  if (version >= 4) m->tail_segment = d.U64();
  n = d.U32();
  for (uint32_t i = 0; i < n && d.ok(); ++i) {
    PageNo a = d.U32();
    PageNo b = d.U32();
    if (b < a) return Status::Corruption("MANIFEST: bad page range");
    m->known_pages.emplace_back(a, b);
  }
  m->has_payloads = version >= 2;
  m->version = version;
  n = m->has_payloads ? d.U32() : 0;
  for (uint32_t i = 0; i < n && d.ok(); ++i) {
    const TimelineId t = d.U64();
    m->payloads.emplace_back(t, d.U64());
  }
  if (!d.ok() || d.remaining() != 0) return Status::Corruption("MANIFEST: bad length");
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
