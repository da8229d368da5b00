#include "storage/log_format.h"

#include <cstdio>

#include "base/coding.h"
#include "base/crc32c.h"

namespace branchdb::storage::internal {

using coding::Decoder;
using coding::PutFixed16;
using coding::PutFixed32;
using coding::PutFixed64;
using coding::PutFixed8;

namespace {

// The manifest's magic, u32 version and u32 crc: what even an empty one has.
constexpr size_t kManifestMinSize = kManifestMagic.size() + 4 + 4;

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
         coding::DecodeFixed32(block.data()) == crc32c::Value(block.substr(4));
}

void AppendPayloadBlock(std::string* dst, std::string_view payload) {
  PutFixed32(dst, crc32c::Value(payload));
  dst->append(payload);
}

bool PayloadBlockValid(std::string_view block, std::string_view* payload) {
  if (block.size() < kPayloadBlockHeader) return false;
  *payload = block.substr(kPayloadBlockHeader);
  return coding::DecodeFixed32(block.data()) == crc32c::Value(*payload);
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
  uint32_t n = coding::DecodeFixed32(fixed.data() + 24);
  if (n > (1u << 20)) return 0;
  return kSegmentHeaderMinSize + 8ull * n;
}

Status DecodeSegmentHeader(std::string_view in, SegmentHeader* h, size_t* len) {
  size_t n = SegmentHeaderLength(in);
  if (n == 0 || in.size() < n) return Status::Corruption("bad segment header");
  if (coding::DecodeFixed32(in.data() + n - 4) != crc32c::Value(in.substr(0, n - 4))) {
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

std::string EncodeFooter(const std::vector<std::pair<uint64_t, std::string>>& entries,
                         uint64_t footer_offset, uint32_t version) {
  std::string body;
  PutFixed32(&body, static_cast<uint32_t>(entries.size()));
  for (const auto& [offset, meta] : entries) {
    PutFixed64(&body, offset);
    PutFixed32(&body, static_cast<uint32_t>(meta.size()));
    body.append(meta);
  }
  std::string out = body;
  PutFixed64(&out, footer_offset);
  PutFixed64(&out, body.size());
  PutFixed32(&out, crc32c::Value(body));
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
  uint32_t version = d.U32();
  return version >= kOldestFormatVersion && version <= kFormatVersion;
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

std::string EncodeManifest(const Manifest& m) {
  std::string out(kManifestMagic);
  PutFixed32(&out, kManifestVersion);
  PutFixed64(&out, m.last_lsn);
  PutFixed64(&out, m.last_timeline);
  PutFixed64(&out, static_cast<uint64_t>(m.last_time));
  PutFixed64(&out, m.next_segment);
  PutFixed32(&out, static_cast<uint32_t>(m.collected.size()));
  for (const auto& [a, b] : m.collected) {
    PutFixed64(&out, a);
    PutFixed64(&out, b);
  }
  PutFixed32(&out, static_cast<uint32_t>(m.runs.size()));
  for (const ManifestRun& r : m.runs) {
    PutFixed64(&out, r.start);
    PutFixed64(&out, r.timeline);
    PutFixed64(&out, r.base);
    PutFixed64(&out, r.base_run_start);
    PutFixed64(&out, r.live_records);
    PutFixed32(&out, static_cast<uint32_t>(r.markers.size()));
    for (const auto& [lsn, time] : r.markers) {
      PutFixed64(&out, lsn);
      PutFixed64(&out, static_cast<uint64_t>(time));
    }
  }
  PutFixed32(&out, static_cast<uint32_t>(m.timelines.size()));
  for (const ManifestTimeline& t : m.timelines) {
    PutFixed64(&out, t.id);
    PutFixed64(&out, t.head);
    PutFixed64(&out, t.run_start);
    PutFixed64(&out, t.created_lsn);
    PutFixed64(&out, t.base);
    PutFixed64(&out, static_cast<uint64_t>(t.created_micros));
  }
  PutFixed32(&out, crc32c::Value(out));
  return out;
}

Status DecodeManifest(std::string_view in, Manifest* m) {
  if (in.size() < kManifestMinSize || in.substr(0, 8) != kManifestMagic) {
    return Status::Corruption("GCSTATE: bad magic");
  }
  if (coding::DecodeFixed32(in.data() + in.size() - 4) !=
      crc32c::Value(in.substr(0, in.size() - 4))) {
    return Status::Corruption("GCSTATE: checksum mismatch");
  }
  Decoder d(in.substr(8, in.size() - 12));
  if (d.U32() != kManifestVersion) return Status::Corruption("GCSTATE: unsupported version");
  m->last_lsn = d.U64();
  m->last_timeline = d.U64();
  m->last_time = static_cast<int64_t>(d.U64());
  m->next_segment = d.U64();
  uint32_t n = d.U32();
  for (uint32_t i = 0; i < n && d.ok(); ++i) {
    Lsn a = d.U64();
    Lsn b = d.U64();
    m->collected.emplace_back(a, b);
  }
  n = d.U32();
  for (uint32_t i = 0; i < n && d.ok(); ++i) {
    ManifestRun r;
    r.start = d.U64();
    r.timeline = d.U64();
    r.base = d.U64();
    r.base_run_start = d.U64();
    r.live_records = d.U64();
    uint32_t k = d.U32();
    for (uint32_t j = 0; j < k && d.ok(); ++j) {
      Lsn lsn = d.U64();
      int64_t time = static_cast<int64_t>(d.U64());
      r.markers.emplace_back(lsn, time);
    }
    m->runs.push_back(std::move(r));
  }
  n = d.U32();
  for (uint32_t i = 0; i < n && d.ok(); ++i) {
    ManifestTimeline t;
    t.id = d.U64();
    t.head = d.U64();
    t.run_start = d.U64();
    t.created_lsn = d.U64();
    t.base = d.U64();
    t.created_micros = static_cast<int64_t>(d.U64());
    m->timelines.push_back(t);
  }
  if (!d.ok() || d.remaining() != 0) return Status::Corruption("GCSTATE: bad length");
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
