// PageStoreImpl: record entries, from the in-memory table (the unsealed
// segment's records) or from the sealed segments' on-disk record indexes
// (docs/storage-format.md, "Memory: what is held, what is read on demand"),
// and the lookups GC and compaction make of them (roots, payloads, whether
// a record is live in a segment).
#include <algorithm>

#include "storage/page_store_impl.h"
#include "storage/segment_reader.h"

namespace branchdb::storage::internal {

bool PageStoreImpl::LiveInRun(uint32_t r, Lsn lsn) const {
  const Run& run = runs_[r];
  const size_t i = run.entries.LowerBound(lsn);
  if (i < run.entries.size() && run.entries[i].lsn == lsn) return run.entries[i].live;
  // Not in an incomplete list: a record a segment's record index lists as
  // live when it was sealed is live unless collected since, and no GC ran
  // since Open (GC completes the lists first).
  return run.on_disk > 0 && lsn <= open_last_lsn_ && !InRanges(open_collected_, lsn);
}

// What MANIFEST (and GCSTATE) say of the store now, the runs' live counts
// and collected ranges among it.
Manifest PageStoreImpl::BuildManifest() const {
  MutexLock lock(mu_);
  return BuildManifestLocked();
}

Manifest PageStoreImpl::BuildManifestLocked() const {
  Manifest m;
  m.last_timeline = next_timeline_ - 1;
  m.last_time = last_time_;
  ReaderLock state(state_mu_);
  m.last_lsn = durable_lsn_;
  m.next_segment = next_segment_;
  m.gc_lsn = gc_lsn_;
  m.segments = ListedSegments();
  m.damaged = DamagedSegments();
  m.tail_segment = active_file_ ? active_number_ : 0;
  m.known_pages = index_.KnownRanges();
  m.has_payloads = true;
  for (const auto& [t, bytes] : payload_bytes_) {
    if (bytes > 0) m.payloads.emplace_back(t, bytes);
  }
  std::sort(m.payloads.begin(), m.payloads.end());
  // While the runs' lists are incomplete (no GC since Open), what was
  // collected up to Open's MANIFEST is what it said; the lists have every
  // live record after it.
  const bool incomplete = runs_on_disk_.load(std::memory_order_acquire);
  const Lsn from = incomplete ? open_last_lsn_ : 0;
  if (incomplete) m.collected = open_collected_;
  std::vector<Lsn> live;
  ForEachLive([&](Lsn lsn, uint32_t, int64_t) {
    if (lsn > from) live.push_back(lsn);
  });
  std::sort(live.begin(), live.end());
  Lsn expect = from + 1;
  auto add_collected = [&m](Lsn first, Lsn last) {
    if (!m.collected.empty() && m.collected.back().second + 1 == first) {
      m.collected.back().second = last;
    } else {
      m.collected.emplace_back(first, last);
    }
  };
  for (const Lsn lsn : live) {
    if (lsn > expect) add_collected(expect, lsn - 1);
    expect = lsn + 1;
  }
  if (expect <= m.last_lsn) add_collected(expect, m.last_lsn);
  std::vector<uint32_t> order;
  for (uint32_t r = 0; r < runs_.size(); ++r) {
    if (runs_[r].exists) order.push_back(r);
  }
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) REQUIRES_SHARED(state_mu_) {
              return runs_[a].start < runs_[b].start;
            });
  for (uint32_t r : order) {
    const Run& run = runs_[r];
    ManifestRun mr;
    mr.start = run.start;
    mr.timeline = run.timeline;
    mr.base = run.base;
    mr.base_run_start = run.base_run == kNoRun ? 0 : runs_[run.base_run].start;
    mr.live_records = run.on_disk;
    for (const RunEntry& e : run.entries) {
      if (e.live) {
        ++mr.live_records;
      } else {
        mr.markers.emplace_back(e.lsn, e.time_micros);
      }
    }
    m.runs.push_back(std::move(mr));
  }
  for (const auto& [id, t] : timelines_) {
    if (t.dropped) continue;
    m.timelines.push_back(ManifestTimeline{id, t.info.head, runs_[t.run].start,
                                           t.info.created_lsn, t.info.base,
                                           t.info.created_micros});
  }
  return m;
}

Status PageStoreImpl::LoadRunLists() const {
  // Every walk of the lists (and GC) needs every sealed segment's indexes.
  BRANCHDB_RETURN_IF_ERROR(InstallLazySegments());
  if (!runs_on_disk_.load(std::memory_order_acquire)) return Status::OK();
  // The live entries of the covered segments, by run start, read without the
  // lock (no GC can run meanwhile: it calls this first and waits for it).
  std::unordered_map<Lsn, std::vector<RunEntry>> found;
  BRANCHDB_RETURN_IF_ERROR(RepairingRecords([&](uint64_t* bad) {
    found.clear();
    std::vector<std::shared_ptr<const SegmentRecordIndex>> ris;
    Lsn last = 0;
    std::vector<std::pair<Lsn, Lsn>> collected;
    {
      ReaderLock state(state_mu_);
      for (uint64_t n : open_covered_) {
        if (auto it = rec_indexes_.find(n); it != rec_indexes_.end()) ris.push_back(it->second);
      }
      last = open_last_lsn_;
      collected = open_collected_;
    }
    auto take = [&](const RecordIndexEntry& e) {
      if (e.lsn > last || InRanges(collected, e.lsn)) return;
      found[e.run_start].push_back(RunEntry{e.lsn, e.time_micros, true});
    };
    for (const auto& ri : ris) {
      for (const RecordIndexEntry& e : ri->resident) take(e);  // demoted
      for (uint32_t b = 0; !ri->Demoted() && b < ri->dir.blocks.size(); ++b) {
        auto block = ReadRecordBlock(*ri, b, nullptr);  // every block once: not cached
        if (!block.ok()) {
          if (block.status().IsCorruption()) *bad = ri->number;
          return block.status();
        }
        for (const RecordIndexEntry& e : **block) take(e);
      }
    }
    return Status::OK();
  }));
  WriterLock state(state_mu_);
  if (!runs_on_disk_.load(std::memory_order_relaxed)) return Status::OK();  // done meanwhile
  for (auto& [start, list] : found) {
    auto it = run_by_start_.find(start);
    const uint64_t expected = it == run_by_start_.end() ? 0 : runs_[it->second].on_disk;
    if (list.size() != expected) {
      return Status::Corruption("run " + std::to_string(start) + " has " +
                                std::to_string(list.size()) +
                                " records in the record indexes of the segments MANIFEST lists, "
                                "MANIFEST says " + std::to_string(expected));
    }
  }
  for (Run& run : runs_) {
    if (run.on_disk == 0) continue;
    auto it = found.find(run.start);
    if (it == found.end()) {
      return Status::Corruption("run " + std::to_string(run.start) +
                                " has no record in the record indexes of the segments MANIFEST "
                                "lists, MANIFEST says " + std::to_string(run.on_disk));
    }
    std::vector<RunEntry>& disk = it->second;
    std::sort(disk.begin(), disk.end(),
              [](const RunEntry& a, const RunEntry& b) { return a.lsn < b.lsn; });
    RunList merged;
    size_t i = 0;
    for (const RunEntry& e : run.entries) {
      for (; i < disk.size() && disk[i].lsn <= e.lsn; ++i) {
        if (disk[i].lsn == e.lsn) {
          return Status::Corruption("LSN " + std::to_string(e.lsn) + " appears twice in the log");
        }
        merged.push_back(disk[i]);
      }
      merged.push_back(e);
    }
    for (; i < disk.size(); ++i) merged.push_back(disk[i]);
    run.entries = std::move(merged);
    run.on_disk = 0;
  }
  open_covered_.clear();
  open_collected_.clear();
  runs_on_disk_.store(false, std::memory_order_release);
  return Status::OK();
}

Status PageStoreImpl::FindRecordLocked(Lsn lsn, RecordPins* pins, RecordEntry* out,
                                       bool* found) const {
  *found = false;
  if (const RecordEntry* rec = records_.Find(lsn)) {
    *out = *rec;
    *found = true;
    return Status::OK();
  }
  // Segments whose first LSN is at or below lsn, newest first, while one of
  // them (or an older one) reaches lsn.
  auto it = std::upper_bound(rec_view_.begin(), rec_view_.end(), lsn,
                             [](Lsn l, const RecordRange& r) { return l < r.min; });
  while (it != rec_view_.begin()) {
    --it;
    if (it->max_so_far < lsn) break;
    if (it->ri->max_lsn() < lsn) continue;
    std::shared_ptr<const SegmentRecordIndex> cur = it->ri;
    if (cur->lazy) {
      // Not opened since Open: a read loads it outside the lock
      // (ReadMissedBlock); GC and Open read it here, installed later.
      if (pins != nullptr) {
        pins->Miss(cur, kLazyBlock);
        return Status::OK();
      }
      auto loaded = LoadLazySegment(*cur->lazy);
      if (!loaded.ok()) return loaded.status();
      cur = (*loaded)->ri;
    }
    const SegmentRecordIndex& ri = *cur;
    const RecordIndexEntry* e = nullptr;
    std::shared_ptr<const RecordBlock> block;
    const std::vector<RecordIndexEntry>* entries = &ri.resident;
    if (!ri.Demoted()) {
      const int b = ri.BlockOf(lsn);
      if (b < 0) continue;
      const uint32_t bi = static_cast<uint32_t>(b);
      if (pins != nullptr) {
        block = pins->Find(ri.number, bi);
        if (!block) block = record_cache_.Lookup(ri.number, bi);
        if (!block) {
          pins->Miss(cur, bi);
          return Status::OK();
        }
      } else {
        auto read = ReadRecordBlock(ri, bi, &record_cache_);
        if (!read.ok()) return read.status();
        block = std::move(*read);
      }
      entries = block.get();
    }
    auto f = std::lower_bound(entries->begin(), entries->end(), lsn,
                              [](const RecordIndexEntry& x, Lsn l) { return x.lsn < l; });
    if (f == entries->end() || f->lsn != lsn) continue;
    e = &*f;
    // Listed as live when its segment was sealed; its run's list says
    // whether it still is (GC collects records without rewriting indexes).
    auto run = run_by_start_.find(e->run_start);
    if (run == run_by_start_.end() || !LiveInRun(run->second, lsn)) return Status::OK();
    *out = RecordEntry{
        e->lsn,      e->time_micros,   e->offset,     run->second, static_cast<uint32_t>(ri.number),
        e->meta_len, e->db_size_pages, e->payload_len};
    *found = true;
    return Status::OK();
  }
  return Status::OK();
}

Result<RecordEntry> PageStoreImpl::StateLocked(Lsn lsn, RecordPins* pins) const {
  if (lsn > failed_limit_) {
    return Status::IOError("LSN " + std::to_string(lsn) +
                               " was never made durable: an fsync failed, the store stopped",
                           "store_failed");
  }
  RecordEntry rec;
  bool found = false;
  BRANCHDB_RETURN_IF_ERROR(FindRecordLocked(lsn, pins, &rec, &found));
  if (pins != nullptr && pins->missed()) {
    return Status::Unavailable("record index block not in memory yet");
  }
  if (!found) {
    if (lsn == 0) {
      return Status::NotFound("LSN 0: the empty state has no record", "lsn_not_found");
    }
    return Status::NotFound(
        "LSN " + std::to_string(lsn) + ": no such state (never written, or garbage-collected)",
        "lsn_not_found");
  }
  return rec;
}

Status PageStoreImpl::ReadMissedBlock(RecordPins* pins) const {
  uint32_t b = 0;
  std::shared_ptr<const SegmentRecordIndex> ri = pins->TakeMiss(&b);
  if (ri->lazy) return InstallLazySegment(ri->lazy);  // the lookup starts over
  auto block = ReadRecordBlock(*ri, b, &record_cache_);
  if (block.ok()) {
    pins->Pin(ri->number, b, std::move(*block));
    return Status::OK();
  }
  if (!block.status().IsCorruption()) return block.status();
  return DemoteRecordIndex(ri->number, block.status().message());
}

void PageStoreImpl::InstallRecordIndex(std::shared_ptr<const SegmentRecordIndex> ri) const {
  rec_indexes_[ri->number] = std::move(ri);
  RebuildRecordView();
}

void PageStoreImpl::RebuildRecordView() const {
  rec_view_.clear();
  rec_view_.reserve(rec_indexes_.size());
  for (const auto& [n, ri] : rec_indexes_) {
    if (ri->min_lsn() != 0) rec_view_.push_back(RecordRange{ri->min_lsn(), ri->max_lsn(), ri});
  }
  // Ascending segment numbers usually ascend in LSN too.
  auto lower = [](const RecordRange& a, const RecordRange& b) { return a.min < b.min; };
  if (!std::is_sorted(rec_view_.begin(), rec_view_.end(), lower)) {
    std::sort(rec_view_.begin(), rec_view_.end(), lower);
  }
  Lsn high = 0;
  for (RecordRange& r : rec_view_) {
    high = std::max(high, r.max_so_far);
    r.max_so_far = high;
  }
}

Status PageStoreImpl::DemoteRecordIndex(uint64_t number, const std::string& why) const {
  std::shared_ptr<const SegmentRecordIndex> ri;
  uint64_t size = 0;
  {
    ReaderLock state(state_mu_);
    auto it = rec_indexes_.find(number);
    if (it == rec_indexes_.end() || it->second->Demoted()) return Status::OK();
    ri = it->second;
    size = segments_.at(number).size;
  }
  SegmentHeader h;
  size_t header_len = 0;
  BRANCHDB_RETURN_IF_ERROR(ReadSegmentHeader(ri->file.get(), number, &h, &header_len));
  SealedRecords records;
  BRANCHDB_RETURN_IF_ERROR(ReadSealedRecords(ri->file.get(), number, header_len, size, &records,
                                             MetaParts::kNoAnnotation));
  auto demoted = SegmentRecordIndex::Demote(number, ri->file, records.entries);
  const size_t n = demoted->resident.size();
  {
    WriterLock state(state_mu_);
    if (rec_indexes_.count(number) == 0) return Status::OK();  // compacted meanwhile
    if (n == 0) {
      rec_indexes_.erase(number);
      RebuildRecordView();
    } else {
      InstallRecordIndex(std::move(demoted));
    }
  }
  MutexLock lock(damage_mu_);
  read_damage_.push_back(why + "; record entries rebuilt in memory from the footer's record list (" +
                         std::to_string(n) + " records)");
  return Status::OK();
}

Status PageStoreImpl::ForEachSealedRecord(const SealedRecordVisitor& fn,
                                          uint64_t* bad_segment) const {
  for (const auto& [n, ri] : rec_indexes_) {
    if (ri->lazy) return Status::FailedPrecondition(SegmentFileName(n) + " not loaded (InstallLazySegments)");
    if (ri->Demoted()) {
      for (const RecordIndexEntry& e : ri->resident) fn(n, e);
      continue;
    }
    for (uint32_t b = 0; b < ri->dir.blocks.size(); ++b) {
      // Not through the cache: GC reads every block once.
      auto block = ReadRecordBlock(*ri, b, nullptr);
      if (!block.ok()) {
        if (block.status().IsCorruption()) *bad_segment = n;
        return block.status();
      }
      for (const RecordIndexEntry& e : **block) fn(n, e);
    }
  }
  return Status::OK();
}

Status PageStoreImpl::RepairingRecords(const std::function<Status(uint64_t*)>& fn) const {
  for (;;) {
    uint64_t bad = 0;
    Status s = fn(&bad);
    if (s.ok() || bad == 0) return s;
    BRANCHDB_RETURN_IF_ERROR(DemoteRecordIndex(bad, s.message()));
  }
}

Result<std::shared_ptr<const SegmentRecordIndex>> PageStoreImpl::ReadBackRecordIndex(
    const SegmentIndex& idx) {
  auto ri = std::make_shared<SegmentRecordIndex>();
  std::string damage;
  BRANCHDB_RETURN_IF_ERROR(ReadRecordIndexSection(idx.file.get(), idx, ri.get(), nullptr, &damage));
  if (!damage.empty()) {
    return Status::IOError(SegmentFileName(idx.number) +
                           ": the record index just written reads back damaged: " + damage);
  }
  ri->number = idx.number;
  ri->file = idx.file;
  return std::shared_ptr<const SegmentRecordIndex>(std::move(ri));
}

// --- for GC and compaction ---

Result<PageStoreImpl::Roots> PageStoreImpl::PinnedRoots(const GcOptions& options) const {
  Roots pinned;
  BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
    ReaderLock state(state_mu_);
    pinned.clear();
    for (Lsn pin : options.pins) {
      auto rec = StateLocked(pin, pins);
      if (rec.ok()) {
        pinned.emplace(pin, rec->run);
      } else if (!rec.status().IsNotFound()) {
        return rec.status();
      }
    }
    return Status::OK();
  }));
  return pinned;
}

PageStoreImpl::Roots PageStoreImpl::GcRoots(const Roots& pinned, int64_t oldest) const {
  Roots roots = pinned;
  for (const auto& [id, t] : timelines_) {
    if (!t.dropped) roots.emplace(t.info.head, t.run);
  }
  for (uint32_t r = 0; r < runs_.size(); ++r) {
    if (!runs_[r].exists) continue;
    const RunList& entries = runs_[r].entries;
    for (size_t i = entries.size(); i-- > 0;) {
      const RunEntry e = entries[i];
      if (e.time_micros < oldest) break;  // times never decrease with LSN
      if (e.live) roots.emplace(e.lsn, r);
    }
  }
  return roots;
}

Status PageStoreImpl::SealedPayloadsCollected(const Roots& roots,
                                              std::map<TimelineId, uint64_t>* out,
                                              uint64_t* bad_segment) const {
  return ForEachSealedRecord([&](uint64_t, const RecordIndexEntry& e) {
    state_mu_.AssertReaderHeld();  // the caller's
    if (e.payload_len == 0 || roots.count(e.lsn) != 0) return;
    auto run = run_by_start_.find(e.run_start);
    if (run == run_by_start_.end() || !LiveInRun(run->second, e.lsn)) return;
    (*out)[runs_[run->second].timeline] += e.payload_len;
  }, bad_segment);
}

Result<bool> PageStoreImpl::RetainEntries(uint64_t seg,
                                          const std::vector<std::pair<Lsn, PageNo>>& retained,
                                          RecordMeta* meta,
                                          std::vector<size_t>* old_image) const {
  bool live = false;
  BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
    ReaderLock state(state_mu_);
    RecordEntry rec;
    bool found = false;
    BRANCHDB_RETURN_IF_ERROR(FindRecordLocked(meta->lsn, pins, &rec, &found));
    live = found && rec.segment == seg;
    return Status::OK();
  }));
  std::vector<PageEntry> kept;
  size_t image = 0;
  for (const PageEntry& pe : meta->entries) {
    const bool keep =
        std::binary_search(retained.begin(), retained.end(), std::make_pair(meta->lsn, pe.pgno));
    if (live || keep) {
      kept.push_back(pe);
      if (pe.type == EntryType::kImage) old_image->push_back(image);
    }
    if (pe.type == EntryType::kImage) ++image;
  }
  meta->entries = std::move(kept);
  return live;
}

}  // namespace branchdb::storage::internal
