// PageStoreImpl: sealed segments MANIFEST describes, opened on first use
// (docs/storage-format.md, "MANIFEST": descriptors; "Recovery (Open)").
#include <algorithm>

#include "storage/page_store_impl.h"
#include "storage/segment_reader.h"

namespace branchdb::storage::internal {

namespace {

// A lazy segment's two placeholders.
struct Placeholders {
  SegmentIndex idx;
  SegmentRecordIndex ri;
};

// Puts ri in place of the entry of its segment in the record view `view`
// (PageStoreImpl::rec_view_) when that entry covers the same LSNs (a lazy
// placeholder replaced by its loaded index): no rebuild. False (nothing
// changed) otherwise.
template <typename Ranges>
bool ReplaceInRecordView(Ranges& view, const std::shared_ptr<const SegmentRecordIndex>& ri) {
  for (auto& r : view) {
    if (r.ri->number != ri->number) continue;
    if (r.ri->min_lsn() != ri->min_lsn() || r.ri->max_lsn() != ri->max_lsn()) return false;
    r.ri = ri;
    return true;
  }
  return false;
}

}  // namespace

void PageStoreImpl::AddLazySegments(const std::vector<const ManifestSegment*>& ms) {
  if (ms.empty()) return;
  // A few allocations for them all: each pointer into an array keeps that
  // array alive (an array of placeholders stays until none is in use).
  std::shared_ptr<LazySegment[]> segs(new LazySegment[ms.size()]);
  auto holders = std::make_shared<Placeholders[]>(ms.size());
  // The tables are sorted arrays: room for them all, then appends.
  seg_indexes_.reserve(seg_indexes_.size() + ms.size());
  rec_indexes_.reserve(rec_indexes_.size() + ms.size());
  lazy_.reserve(lazy_.size() + ms.size());
  open_covered_.reserve(open_covered_.size() + ms.size());
  segments_.reserve(segments_.size() + ms.size() + 1);  // and the tail
  for (size_t i = 0; i < ms.size(); ++i) {
    AddLazySegment(*ms[i], std::shared_ptr<LazySegment>(segs, &segs[i]),
                   std::shared_ptr<SegmentIndex>(holders, &holders[i].idx),
                   std::shared_ptr<SegmentRecordIndex>(holders, &holders[i].ri));
  }
}

void PageStoreImpl::AddLazySegment(const ManifestSegment& m, std::shared_ptr<LazySegment> seg,
                                   std::shared_ptr<SegmentIndex> idx,
                                   std::shared_ptr<SegmentRecordIndex> ri) {
  seg->number = m.number;
  seg->size = m.size;
  seg->desc = m.desc;
  idx->number = m.number;
  idx->dir.min_lsn = m.desc.min_lsn;
  idx->dir.max_lsn = m.desc.max_lsn;
  idx->dir.versions = m.desc.versions;
  idx->version = m.desc.version;
  idx->lazy = seg;
  ri->number = m.number;
  ri->dir.records = m.desc.records;
  ri->lazy_min = m.desc.rec_min_lsn;
  ri->lazy_max = m.desc.rec_max_lsn;
  ri->lazy = seg;
  // The views are rebuilt once, by LoadSegments. Numbers come ascending.
  seg_indexes_[m.number] = std::move(idx);
  rec_indexes_[m.number] = std::move(ri);
  lazy_[m.number] = std::move(seg);
  open_covered_.insert(m.number);  // run entries stay on disk
  segments_[m.number] = Segment{m.size, true, m.desc.flags, m.desc.version};
}

Result<std::shared_ptr<const LazyLoaded>> PageStoreImpl::LoadLazySegment(LazySegment& seg) const {
  MutexLock lock(seg.mu);
  if (seg.loaded) return seg.loaded;
  auto out = std::make_shared<LazyLoaded>();
  Status s = ReadLazySegment(seg, out.get());
  if (s.IsCorruption() && !seg.reported) {
    // Not kept (the next use reads again), but reported once.
    seg.reported = true;
    MutexLock lock(damage_mu_);
    read_damage_.push_back(s.message());
  }
  BRANCHDB_RETURN_IF_ERROR(s);
  seg.loaded = out;
  seg.is_loaded.store(true, std::memory_order_release);
  return seg.loaded;
}

Status PageStoreImpl::ReadLazySegment(const LazySegment& seg, LazyLoaded* out) const {
  const uint64_t n = seg.number;
  const std::string path = SegmentPath(n);
  auto opened = env_->NewRandomAccessFile(path);
  if (!opened.ok()) return opened.status().WithContext(SegmentFileName(n));
  out->file = std::shared_ptr<RandomAccessFile>(std::move(*opened));
  RandomAccessFile* file = out->file.get();
  auto size = env_->GetFileSize(path);
  if (!size.ok()) return size.status();
  SegmentHeader h;
  size_t header_len = 0;
  BRANCHDB_RETURN_IF_ERROR(ReadSegmentHeader(file, n, &h, &header_len));
  out->flags = h.flags;
  out->size = *size;
  // The file's own indexes, by their checks; then compared with MANIFEST.
  std::string damage;
  auto idx = std::make_shared<SegmentIndex>();
  auto ri = std::make_shared<SegmentRecordIndex>();
  if (h.number != n || h.version < kFirstRecordIndexFormatVersion) {
    damage = "header names segment " + std::to_string(h.number) + " of format " +
             std::to_string(h.version);
  } else {
    TailBufferedFile buffered(file, *size);
    BRANCHDB_RETURN_IF_ERROR(buffered.Load());
    BRANCHDB_RETURN_IF_ERROR(ReadSegmentIndex(&buffered, n, *size, idx.get(), &damage));
    if (damage.empty()) {
      BRANCHDB_RETURN_IF_ERROR(ReadRecordIndexSection(&buffered, *idx, ri.get(), nullptr, &damage));
    }
  }
  if (damage.empty()) {
    idx->file = out->file;
    ri->number = n;
    ri->file = out->file;
    if (*size != seg.size || DescribeSegment(*idx, *ri, h.flags) != seg.desc) {
      out->damage = SegmentFileName(n) + ": MANIFEST describes it as " + std::to_string(seg.size) +
                    " bytes, LSNs " + std::to_string(seg.desc.rec_min_lsn) + " to " +
                    std::to_string(seg.desc.rec_max_lsn) + ", the file has " +
                    std::to_string(*size) + " bytes, LSNs " + std::to_string(ri->min_lsn()) +
                    " to " + std::to_string(ri->max_lsn()) +
                    " (or other fields differ); its indexes read from the file";
    }
    out->idx = std::move(idx);
    out->ri = std::move(ri);
    return Status::OK();
  }
  // As Open reads a sealed segment without MANIFEST: its record list (a scan
  // when the footer is damaged too); its versions and entries go to memory.
  SealedRecords records;
  BRANCHDB_RETURN_IF_ERROR(
      ReadSealedRecords(file, n, header_len, *size, &records, MetaParts::kNoAnnotation));
  auto demoted = SegmentRecordIndex::Demote(n, out->file, records.entries);
  out->damage = SegmentFileName(n) + ": " + damage +
                (records.damage.empty() ? "" : "; " + records.damage) +
                "; page versions and record entries rebuilt in memory from " +
                (records.damage.empty() ? "the footer's record list (" : "a scan (") +
                std::to_string(records.entries.size()) + " records)";
  out->ri = std::move(demoted);
  out->fallback = std::move(records.entries);
  return Status::OK();
}

Status PageStoreImpl::InstallLazySegment(std::shared_ptr<LazySegment> seg) const {
  auto loaded = LoadLazySegment(*seg);
  if (!loaded.ok()) return loaded.status();
  const LazyLoaded& l = **loaded;
  {
    WriterLock state(state_mu_);
    auto it = lazy_.find(seg->number);
    if (it == lazy_.end() || it->second != seg) return Status::OK();  // done meanwhile
    const uint64_t n = seg->number;
    if (l.idx) {
      seg_indexes_[n] = l.idx;
    } else {
      ++location_epoch_;
      seg_indexes_.erase(n);
      for (const FooterEntry& e : l.fallback) {
        auto run = run_by_start_.find(e.meta.run_start);
        if (run == run_by_start_.end()) continue;  // garbage of a run that no longer exists
        IndexVersions(e.meta, run->second, static_cast<uint32_t>(n), e.offset, e.meta_len);
      }
    }
    bool view_done = false;
    if (l.idx || l.ri->Demoted()) {
      rec_indexes_[n] = l.ri;
      view_done = ReplaceInRecordView(rec_view_, l.ri);  // as MANIFEST described it: usually
    } else {
      rec_indexes_.erase(n);  // a fallback without live records
    }
    if (auto sg = segments_.find(n); sg != segments_.end()) sg->second.size = l.size;
    lazy_.erase(it);
    if (lazy_.empty()) lazy_pending_.store(false, std::memory_order_release);
    RebuildSealedView();
    if (!view_done) RebuildRecordView();
  }
  {
    MutexLock lock(files_mu_);
    files_[static_cast<uint32_t>(seg->number)] = l.file;
  }
  if (!l.damage.empty()) {
    MutexLock lock(damage_mu_);
    read_damage_.push_back(l.damage);
  }
  return Status::OK();
}

Status PageStoreImpl::InstallLazySegments(bool loaded_only) const {
  if (!lazy_pending_.load(std::memory_order_acquire)) return Status::OK();
  std::vector<std::shared_ptr<LazySegment>> todo;
  {
    ReaderLock state(state_mu_);
    for (const auto& [n, seg] : lazy_) {
      if (loaded_only && !seg->is_loaded.load(std::memory_order_acquire)) continue;
      todo.push_back(seg);
    }
  }
  for (auto& seg : todo) BRANCHDB_RETURN_IF_ERROR(InstallLazySegment(std::move(seg)));
  return Status::OK();
}

Result<std::shared_ptr<const SegmentIndex>> PageStoreImpl::LazyIndex(const SegmentIndex& idx,
                                                                    uint64_t* bad_segment) const {
  BRANCHDB_RETURN_IF_ERROR(InstallLazySegment(idx.lazy));
  std::shared_ptr<const LazyLoaded> loaded;
  {
    MutexLock lock(idx.lazy->mu);
    loaded = idx.lazy->loaded;
  }
  if (!loaded) return Status::FailedPrecondition(SegmentFileName(idx.number) + " was not loaded");
  if (!loaded->idx) {
    // Its versions went into memory: the read starts over (RepairingIndex;
    // nothing is left to demote).
    *bad_segment = idx.number;
    return Status::Corruption(loaded->damage);
  }
  return loaded->idx;
}

bool PageStoreImpl::ListedSegment(uint64_t number, const Segment& seg, ManifestSegment* m) const {
  // A segment Open found damaged is read (and reported) the old way at every Open.
  if (!seg.sealed || damaged_segments_.count(number) != 0) return false;
  *m = ManifestSegment();
  m->number = number;
  m->size = seg.size;
  m->supersedes = seg.supersedes;
  if (auto l = lazy_.find(number); l != lazy_.end()) {
    m->described = true;
    m->desc = l->second->desc;
  } else {
    auto i = seg_indexes_.find(number);
    auto r = rec_indexes_.find(number);
    if (i != seg_indexes_.end() && r != rec_indexes_.end() && !r->second->Demoted()) {
      m->described = true;
      m->desc = DescribeSegment(*i->second, *r->second, seg.flags);
    }
  }
  return true;
}

std::vector<ManifestSegment> PageStoreImpl::ListedSegments() const {
  std::vector<ManifestSegment> out;
  ManifestSegment m;
  for (const auto& [number, seg] : segments_) {
    if (ListedSegment(number, seg, &m)) out.push_back(std::move(m));
  }
  return out;
}

std::vector<uint64_t> PageStoreImpl::DamagedSegments() const {
  std::vector<uint64_t> out;
  for (uint64_t number : damaged_segments_) {  // ascending
    auto seg = segments_.find(number);
    if (seg != segments_.end() && seg->second.sealed) out.push_back(number);
  }
  return out;
}

}  // namespace branchdb::storage::internal
