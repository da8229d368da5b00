// Sealed segments' page indexes (segment_index.h).
#include "storage/segment_index.h"

#include <algorithm>

#include "storage/segment_reader.h"

namespace branchdb::storage::internal {

uint64_t SegmentIndex::MemoryBytes() const {
  return sizeof(SegmentIndex) + dir.blocks.capacity() * sizeof(IndexBlockHandle) +
         filter.capacity();
}

Status ReadSegmentIndex(RandomAccessFile* file, uint64_t number, uint64_t size, SegmentIndex* out,
                        std::string* damage) {
  damage->clear();
  if (size < kTrailerSize + kIndexTailSize) {
    *damage = "no page index";
    return Status::OK();
  }
  std::string raw;
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, size - kTrailerSize, kTrailerSize, &raw));
  Trailer t;
  if (!DecodeTrailer(raw, &t) || t.version < kFirstIndexedFormatVersion) {
    *damage = "no page index (trailer)";
    return Status::OK();
  }
  const uint64_t tail_at = size - kTrailerSize - kIndexTailSize;
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, tail_at, kIndexTailSize, &raw));
  IndexTail tail;
  if (!DecodeIndexTail(raw, &tail)) {
    *damage = "page index tail checksum mismatch";
    return Status::OK();
  }
  // Format 4: the record index section (at least its tail) comes first.
  const uint64_t footer_end = t.footer_offset + t.footer_len;
  const bool index_at = t.version >= kFirstRecordIndexFormatVersion
                            ? tail.index_offset >= footer_end + kIndexTailSize
                            : tail.index_offset == footer_end;
  if (!index_at || tail.dir_offset < tail.index_offset ||
      tail.dir_offset > tail_at || tail.dir_offset + tail.dir_len != tail_at) {
    *damage = "page index tail offsets are inconsistent";
    return Status::OK();
  }
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, tail.dir_offset, tail.dir_len, &raw));
  if (Status d = DecodeIndexDirectory(raw, &out->dir); !d.ok()) {
    *damage = d.message();
    return Status::OK();
  }
  const IndexDirectory& dir = out->dir;
  if (dir.filter_offset < tail.index_offset || dir.filter_offset > tail.dir_offset ||
      dir.filter_offset + dir.filter_len > tail.dir_offset) {
    *damage = "page index filter offsets are inconsistent";
    return Status::OK();
  }
  uint64_t at = tail.index_offset;
  for (size_t i = 0; i < dir.blocks.size(); ++i) {
    const IndexBlockHandle& h = dir.blocks[i];
    const bool ordered =
        i == 0 || dir.blocks[i - 1].last_pgno < h.first_pgno ||
        (dir.blocks[i - 1].last_pgno == h.first_pgno && dir.blocks[i - 1].last_lsn < h.first_lsn);
    if (h.offset != at || h.len < 8 || h.offset + h.len > dir.filter_offset || !ordered ||
        h.first_pgno > h.last_pgno) {
      *damage = "page index directory entry " + std::to_string(i) + " is inconsistent";
      return Status::OK();
    }
    at += h.len;
  }
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, dir.filter_offset, dir.filter_len, &raw));
  if (Status f = DecodeFilter(raw, &out->filter); !f.ok()) {
    *damage = f.message();
    return Status::OK();
  }
  out->number = number;
  out->footer_end = footer_end;
  out->index_offset = tail.index_offset;
  out->footer_offset = t.footer_offset;
  out->footer_crc = t.footer_crc;
  out->version = t.version;
  return Status::OK();
}

SegmentDescriptor DescribeSegment(const SegmentIndex& idx, const SegmentRecordIndex& ri,
                                  uint32_t flags) {
  SegmentDescriptor d;
  d.version = idx.version;
  d.flags = flags;
  d.footer_offset = idx.footer_offset;
  d.footer_len = idx.footer_end - idx.footer_offset;
  d.footer_crc = idx.footer_crc;
  d.index_offset = idx.index_offset;
  d.min_lsn = idx.dir.min_lsn;
  d.max_lsn = idx.dir.max_lsn;
  d.versions = idx.dir.versions;
  d.rec_min_lsn = ri.min_lsn();
  d.rec_max_lsn = ri.max_lsn();
  d.records = ri.dir.records;
  return d;
}

std::shared_ptr<SegmentRecordIndex> SegmentRecordIndex::Demote(
    uint64_t number, std::shared_ptr<RandomAccessFile> file,
    const std::vector<FooterEntry>& entries) {
  auto ri = std::make_shared<SegmentRecordIndex>();
  ri->number = number;
  ri->file = std::move(file);
  for (const FooterEntry& e : entries) {
    if (e.meta.flags & kRecordFlagCollected) continue;
    ri->resident.push_back(RecordIndexEntry{
        e.meta.lsn, e.meta.time_micros, e.meta.run_start, e.offset, e.meta_len,
        e.meta.db_size_pages, e.meta.payload_len, static_cast<uint32_t>(e.meta.ImageCount())});
  }
  std::sort(ri->resident.begin(), ri->resident.end(),
            [](const RecordIndexEntry& a, const RecordIndexEntry& b) { return a.lsn < b.lsn; });
  return ri;
}

Lsn SegmentRecordIndex::min_lsn() const {
  if (lazy) return lazy_min;
  if (Demoted()) return resident.front().lsn;
  return dir.blocks.empty() ? 0 : dir.blocks.front().first_lsn;
}

Lsn SegmentRecordIndex::max_lsn() const {
  if (lazy) return lazy_max;
  if (Demoted()) return resident.back().lsn;
  return dir.blocks.empty() ? 0 : dir.blocks.back().last_lsn;
}

int SegmentRecordIndex::BlockOf(Lsn lsn) const {
  auto it = std::upper_bound(dir.blocks.begin(), dir.blocks.end(), lsn,
                             [](Lsn l, const RecordIndexHandle& h) { return l < h.first_lsn; });
  if (it == dir.blocks.begin()) return -1;
  --it;
  return lsn <= it->last_lsn ? static_cast<int>(it - dir.blocks.begin()) : -1;
}

uint64_t SegmentRecordIndex::MemoryBytes() const {
  return sizeof(SegmentRecordIndex) + dir.blocks.capacity() * sizeof(RecordIndexHandle) +
         resident.capacity() * sizeof(RecordIndexEntry);
}

namespace {

// Decodes block i of dir from raw (the block's bytes) into *out (appended)
// and checks it against its directory entry: "" or what is wrong.
std::string DecodeRecordBlockChecked(std::string_view raw, const RecordIndexDirectory& dir,
                                     size_t i, std::vector<RecordIndexEntry>* out) {
  const RecordIndexHandle& h = dir.blocks[i];
  const size_t before = out->size();
  if (Status b = DecodeRecordIndexBlock(raw, out); !b.ok()) {
    return "record index block " + std::to_string(i) + " at offset " + std::to_string(h.offset) +
           ": " + b.message();
  }
  if (out->size() == before || (*out)[before].lsn != h.first_lsn || out->back().lsn != h.last_lsn) {
    return "record index block " + std::to_string(i) + " does not match its directory entry";
  }
  return "";
}

}  // namespace

Status ReadRecordIndexSection(RandomAccessFile* file, const SegmentIndex& idx,
                              SegmentRecordIndex* out, std::vector<RecordIndexEntry>* entries,
                              std::string* damage) {
  damage->clear();
  const uint64_t tail_at = idx.index_offset - kIndexTailSize;
  if (tail_at < idx.footer_end) {
    *damage = "record index tail offsets are inconsistent";
    return Status::OK();
  }
  // raw: the file's bytes from `base` to the page index: the whole section
  // with its blocks, or (entries null) from the directory on, found by the
  // tail read first: two small reads, the blocks are read on demand.
  uint64_t base = idx.footer_end;
  std::string raw;
  if (entries == nullptr) {
    BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, tail_at, kIndexTailSize, &raw));
    IndexTail probe;
    if (!DecodeIndexTail(raw, &probe)) {
      *damage = "record index tail checksum mismatch";
      return Status::OK();
    }
    if (probe.dir_offset < idx.footer_end || probe.dir_offset > tail_at) {
      *damage = "record index tail offsets are inconsistent";
      return Status::OK();
    }
    base = probe.dir_offset;
  }
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, base, idx.index_offset - base, &raw));
  IndexTail tail;
  if (!DecodeIndexTail(std::string_view(raw).substr(tail_at - base), &tail)) {
    *damage = "record index tail checksum mismatch";
    return Status::OK();
  }
  if (tail.index_offset != idx.footer_end || tail.dir_offset < tail.index_offset ||
      tail.dir_offset + tail.dir_len != tail_at) {
    *damage = "record index tail offsets are inconsistent";
    return Status::OK();
  }
  auto at = [&](uint64_t offset, uint64_t len) {
    return std::string_view(raw).substr(offset - base, len);
  };
  RecordIndexDirectory& dir = out->dir;
  if (Status d = DecodeRecordIndexDirectory(at(tail.dir_offset, tail.dir_len), &dir); !d.ok()) {
    *damage = d.message();
    return Status::OK();
  }
  uint64_t next = tail.index_offset;
  for (size_t i = 0; i < dir.blocks.size(); ++i) {
    const RecordIndexHandle& h = dir.blocks[i];
    if (h.offset != next || h.len < 8 || h.offset + h.len > tail.dir_offset ||
        h.first_lsn > h.last_lsn || (i > 0 && dir.blocks[i - 1].last_lsn >= h.first_lsn)) {
      *damage = "record index directory entry " + std::to_string(i) + " is inconsistent";
      return Status::OK();
    }
    next += h.len;
  }
  if (next != tail.dir_offset) {
    *damage = "record index directory does not cover its blocks";
    return Status::OK();
  }
  if (entries == nullptr) return Status::OK();
  entries->clear();
  entries->reserve(dir.records);
  for (size_t i = 0; i < dir.blocks.size(); ++i) {
    const RecordIndexHandle& h = dir.blocks[i];
    *damage = DecodeRecordBlockChecked(at(h.offset, h.len), dir, i, entries);
    if (!damage->empty()) {
      entries->clear();
      return Status::OK();
    }
  }
  if (entries->size() != dir.records) {
    *damage = "record index lists " + std::to_string(entries->size()) + " records, its directory " +
              std::to_string(dir.records);
    entries->clear();
  }
  return Status::OK();
}

std::shared_ptr<const RecordBlock> RecordBlockCache::Lookup(uint64_t segment,
                                                            uint32_t block) const {
  return std::static_pointer_cast<const RecordBlock>(
      cache_->Lookup(CacheKey{owner_, CacheKind::kIndex, segment, block}));
}

void RecordBlockCache::Insert(uint64_t segment, uint32_t block,
                              std::shared_ptr<const RecordBlock> b) const {
  const uint64_t charge = Charge(*b);
  cache_->Insert(CacheKey{owner_, CacheKind::kIndex, segment, block}, std::move(b), charge);
}

Result<std::shared_ptr<const RecordBlock>> ReadRecordBlock(const SegmentRecordIndex& ri,
                                                           uint32_t b,
                                                           const RecordBlockCache* cache) {
  if (cache != nullptr) {
    if (auto cached = cache->Lookup(ri.number, b)) return cached;
  }
  const RecordIndexHandle& h = ri.dir.blocks[b];
  std::string raw;
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(ri.file.get(), h.offset, h.len, &raw));
  auto block = std::make_shared<RecordBlock>();
  const std::string damage = DecodeRecordBlockChecked(raw, ri.dir, b, block.get());
  if (!damage.empty()) return Status::Corruption(SegmentFileName(ri.number) + ": " + damage);
  if (cache != nullptr) cache->Insert(ri.number, b, block);
  return std::shared_ptr<const RecordBlock>(std::move(block));
}

std::shared_ptr<const IndexBlock> IndexBlockCache::Lookup(uint64_t segment,
                                                          uint32_t block) const {
  return std::static_pointer_cast<const IndexBlock>(
      cache_->Lookup(CacheKey{owner_, CacheKind::kIndex, segment, block}));
}

void IndexBlockCache::Insert(uint64_t segment, uint32_t block,
                             std::shared_ptr<const IndexBlock> b) const {
  const uint64_t charge = Charge(*b);
  cache_->Insert(CacheKey{owner_, CacheKind::kIndex, segment, block}, std::move(b), charge);
}

namespace {

Status ReadBlockFromFile(const SegmentIndex& idx, uint32_t b, IndexBlock* out) {
  const IndexBlockHandle& h = idx.dir.blocks[b];
  std::string raw;
  Status s = ReadExactly(idx.file.get(), h.offset, h.len, &raw);
  if (s.ok()) s = DecodeIndexBlock(raw, out);
  if (!s.ok() && s.IsCorruption()) {
    return Status::Corruption(SegmentFileName(idx.number) + ": page index block " +
                              std::to_string(b) + " at offset " + std::to_string(h.offset) +
                              ": " + s.message());
  }
  return s;
}

}  // namespace

Result<std::shared_ptr<const IndexBlock>> ReadIndexBlock(const SegmentIndex& idx, uint32_t b,
                                                         const IndexBlockCache* cache) {
  if (auto cached = cache->Lookup(idx.number, b)) return cached;
  auto block = std::make_shared<IndexBlock>();
  BRANCHDB_RETURN_IF_ERROR(ReadBlockFromFile(idx, b, block.get()));
  cache->Insert(idx.number, b, block);
  return std::shared_ptr<const IndexBlock>(std::move(block));
}

Status SegmentIndexIterator::Fill() {
  while (pos_ >= block_.size() && next_block_ < idx_->dir.blocks.size()) {
    block_.clear();
    pos_ = 0;
    BRANCHDB_RETURN_IF_ERROR(ReadBlockFromFile(*idx_, next_block_++, &block_));
  }
  return Status::OK();
}

Status SegmentIndexIterator::TakePage(std::vector<IndexEntry>* out) {
  const PageNo p = pgno();
  while (Valid() && block_[pos_].pgno == p) {
    out->push_back(block_[pos_++]);
    BRANCHDB_RETURN_IF_ERROR(Fill());
  }
  return Status::OK();
}

}  // namespace branchdb::storage::internal
