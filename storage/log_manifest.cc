// The encodings of GCSTATE and MANIFEST, declared in storage/log_format.h
// (docs/storage-format.md); the segments' own are in log_format.cc.
#include "storage/log_format.h"

#include <algorithm>
#include <string>
#include <utility>

#include "base/coding.h"
#include "base/crc32c.h"

namespace branchdb::storage::internal {

using coding::DecodeFixed32;
using coding::DecodeFixed64;
using coding::Decoder;
using coding::PutFixed32;
using coding::PutFixed64;

namespace {

// The manifest's magic, u32 version and u32 crc: what even an empty one has.
constexpr size_t kManifestMinSize = kManifestMagic.size() + 4 + 4;
// A MANIFEST segment descriptor's encoded size (EncodeStoreManifest).
constexpr size_t kDescriptorBytes = 4 + 4 + 8 + 8 + 4 + 8 + 6 * 8;

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

}  // namespace branchdb::storage::internal
