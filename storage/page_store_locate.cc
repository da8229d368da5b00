// PageStoreImpl: where a page version is (its header, page_store_impl.h,
// says how the store is split). A read looks its page up in the in-memory
// index under state_mu_ (LocateLocked, FindVersion), then, when a sealed
// segment may hold a newer visible version, in the sealed segments' on-disk
// indexes without the lock (LocateOnDisk); where either search would be
// long, what the location cache holds for its run (or a near ancestor)
// bounds it. Then it reads the image (ReadLocation). A damaged index block
// demotes its segment's index to memory (DemoteSegmentIndex, RepairingIndex).
#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "base/coding.h"
#include "base/crc32c.h"
#include "storage/page_store_impl.h"
#include "storage/segment_reader.h"

namespace branchdb::storage::internal {
namespace {

// FindVersion steps over at most this many versions of other runs, newest
// first, before it looks the page up run by run instead (when the page has a
// by-run index).
constexpr size_t kLinearSteps = 32;

// A read looks for a cached location of its own run's and of at most this
// many ancestors' (the run's a rollback or a branch is based on, and that
// one's base): each one a lookup in the shared cache.
constexpr int kCachedAncestors = 2;

// A read whose search in memory steps over this many versions of other runs
// consults the location cache (and searches memory only above its answer),
// and caches its own answer.
constexpr size_t kWorthCaching = 8;
constexpr size_t kNoBudget = std::numeric_limits<size_t>::max();

}  // namespace

const Version* PageStoreImpl::FindVersion(uint32_t run, Lsn lsn, PageNo pgno, Lsn floor,
                                          size_t budget, size_t* steps) const {
  auto versions = index_.Versions(pgno);
  if (versions.empty()) return nullptr;
  auto it = std::upper_bound(versions.begin(), versions.end(), lsn,
                             [](Lsn l, const Version& v) { return l < v.lsn; });
  std::shared_ptr<const PathMap> path;
  const PageIndex::ByRun* by_run = index_.VersionsByRun(pgno);
  bool many = false;  // of other runs' versions: looked up run by run
  while (it != versions.begin() && !many) {
    if (*steps >= budget) return nullptr;
    --it;
    if (it->lsn <= floor) return nullptr;
    if (it->run == run) return &*it;
    // Another run's version.
    many = ++*steps == kLinearSteps && by_run != nullptr;
    if (many || runs_[run].base_run == kNoRun) continue;  // (no base: the path is the run)
    if (!path) path = path_cache_.Get(runs_, run);
    Lsn c = path->Cutoff(it->run);
    if (c != 0 && it->lsn <= c) return &*it;
  }
  if (!many) return nullptr;
  // The newest visible version is the newest among each path run's newest
  // version at or below that run's cutoff: the runs taken from the shorter
  // of the path (deep after many rollbacks: each one adds a run) and the
  // page's runs.
  if (!path) path = path_cache_.Get(runs_, run);
  const Version* best = nullptr;
  auto consider = [&](uint32_t r, Lsn cutoff, const std::vector<uint32_t>& idx) {
    const Lsn c = r == run ? lsn : cutoff;
    auto p = std::upper_bound(idx.begin(), idx.end(), c,
                              [&](Lsn l, uint32_t i) { return l < versions[i].lsn; });
    if (p == idx.begin()) return;
    const Version* v = &versions[*(p - 1)];
    if (best == nullptr || v->lsn > best->lsn) best = v;
  };
  if (by_run->size() < path->size()) {
    for (const auto& [r, idx] : *by_run) {
      if (const Lsn cutoff = path->Cutoff(r); cutoff != 0) consider(r, cutoff, idx);
    }
  } else {
    path->ForEachRun([&](uint32_t r, Lsn cutoff) {
      if (auto f = by_run->find(r); f != by_run->end()) consider(r, cutoff, f->second);
    });
  }
  return best != nullptr && best->lsn > floor ? best : nullptr;
}

Result<std::shared_ptr<RandomAccessFile>> PageStoreImpl::File(uint32_t segment) const {
  MutexLock lock(files_mu_);
  auto it = files_.find(segment);
  if (it != files_.end()) return it->second;
  auto f = env_->NewRandomAccessFile(SegmentPath(segment));
  if (!f.ok()) return f.status();
  std::shared_ptr<RandomAccessFile> file(std::move(*f));
  files_[segment] = file;
  return file;
}

Status PageStoreImpl::ReadLocation(const Location& loc, PageNo pgno, char* out) const {
  if (page_cache_.Lookup(loc.lsn, pgno, out)) return Status::OK();
  // The image straight into out (SQLite's buffer), its header beside it
  // (the hole is put back in place); a scan's next blocks from this thread's
  // read-ahead window.
  char head[kHoleBlockHeader];
  size_t got = 0;
  bool buffered = false;
  for (bool read_ahead : {true, false}) {
    BRANCHDB_RETURN_IF_ERROR(ReadImageBlock(loc.file, loc.offset, ImageBlockHeader(loc.holes),
                                            read_ahead, head, out, &got, &buffered));
    if (RestoreImage(head, loc.holes, out, got)) {
      page_cache_.Insert(loc.lsn, pgno, out);
      return Status::OK();
    }
    if (!buffered) break;  // a fresh read: the block is damaged
  }
  return Status::Corruption("page " + std::to_string(pgno) + " of LSN " + std::to_string(loc.lsn) +
                            " in " + SegmentFileName(loc.segment) + " at offset " +
                            std::to_string(loc.offset) + ": checksum mismatch");
}

Status PageStoreImpl::ReadPage(TimelineId t, PageNo pgno, Lsn lsn, std::string* out) const {
  Location loc;
  BRANCHDB_RETURN_IF_ERROR(LocatePage(t, lsn, true, pgno, &loc));
  out->resize(kPageSize);
  return ReadLocated(loc, pgno, out->data());
}

Status PageStoreImpl::ReadPageAt(Lsn state_lsn, PageNo pgno, std::string* out) const {
  out->resize(kPageSize);
  return ReadPageInto(state_lsn, pgno, out->data());
}

Status PageStoreImpl::ReadPageInto(Lsn state_lsn, PageNo pgno, char* out) const {
  if (pgno == 0) return Status::InvalidArgument("page number 0");
  if (state_lsn == 0) {
    std::memset(out, 0, kPageSize);
    return Status::OK();
  }
  Location loc;
  BRANCHDB_RETURN_IF_ERROR(LocatePage(0, state_lsn, false, pgno, &loc));
  return ReadLocated(loc, pgno, out);
}

Status PageStoreImpl::LocatePage(TimelineId t, Lsn lsn, bool by_timeline, PageNo pgno,
                                 Location* loc) const {
  // A damaged index block found on the way moves its segment's versions
  // into memory (DemoteSegmentIndex); then the read starts over. Each retry
  // has one on-disk index fewer.
  auto attempt = [&](uint64_t* bad) {
    DiskQuery q;
    BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
      *loc = Location{};
      q = DiskQuery{};
      ReaderLock state(state_mu_);
      Lsn state_lsn = lsn;
      if (by_timeline) {
        auto s = ResolveLocked(t, lsn);
        if (!s.ok()) return s.status();
        if (pgno == 0) return Status::InvalidArgument("page number 0");
        state_lsn = *s;
      }
      auto rec = StateLocked(state_lsn, pins);
      if (!rec.ok()) return rec.status();
      return LocateLocked(*rec, state_lsn, pgno, loc, &q);
    }));
    size_t stepped_over = 0;
    if (q.needed) BRANCHDB_RETURN_IF_ERROR(LocateOnDisk(q, loc, bad, &stepped_over));
    // Worth remembering when the search stepped over other runs' versions of
    // the page on disk, or over many in memory: the next read would again
    // (more of them, as they write on); and when an ancestor's answer
    // served, so that the run's own branches and rollbacks find one a level
    // up. A read that found its page at once (one branch's) is not.
    if (!q.keep && (stepped_over > 0 || q.stepped_over >= kWorthCaching || q.inherited)) {
      location_cache_.Insert(q.run_start, pgno,
                             LocationCache::Entry{q.lsn, q.epoch, loc->lsn, loc->segment,
                                                  loc->offset, loc->file == nullptr});
      locations_cached_.store(true, std::memory_order_relaxed);
    }
    return Status::OK();
  };
  Status s = RepairingIndex(attempt);
  if (s.reason() != kRunsIncomplete) return s;
  // A state below its timeline's head just after Open: the runs' lists first.
  BRANCHDB_RETURN_IF_ERROR(LoadRunLists());
  return RepairingIndex(attempt);
}

Status PageStoreImpl::LocateLocked(const RecordEntry& rec, Lsn lsn, PageNo pgno, Location* loc,
                                   DiskQuery* q) const {
  if (pgno > rec.db_size_pages) return Status::OK();  // loc->file stays null: zeros
  // The best answer so far (lsn 0: none), and whether it zeroes the page:
  // the in-memory index's when it is among the page's newest versions there;
  // else, or when a sealed segment may hold a newer one, what an earlier
  // read of the run (or of an ancestor) found (LocationCache), then anything
  // newer in memory, then in the sealed segments.
  Location best;
  bool zero = false;
  q->run_start = runs_[rec.run].start;
  q->lsn = lsn;
  q->epoch = location_epoch_;
  auto take = [&](const Version* v) {
    if (v == nullptr || v->lsn <= best.lsn) return;
    best = Location{v->segment, v->offset, v->lsn, nullptr};
    zero = v->IsZero();
  };
  take(FindVersion(rec.run, lsn, pgno, 0, kWorthCaching, &q->stepped_over));
  const bool gave_up = best.lsn == 0 && q->stepped_over >= kWorthCaching;
  const bool sealed_newer =
      sealed_view_ && !sealed_view_->empty() && sealed_view_->front()->dir.max_lsn > best.lsn;
  if ((gave_up || sealed_newer) && locations_cached_.load(std::memory_order_relaxed)) {
    CachedLocation(rec.run, lsn, pgno, q, &best, &zero);
  }
  if (gave_up && q->known < lsn) {
    take(FindVersion(rec.run, lsn, pgno, q->known, kNoBudget, &q->stepped_over));
  }
  // Only versions above both answers and at most lsn are left to find.
  if (q->known < lsn && sealed_newer &&
      sealed_view_->front()->dir.max_lsn > std::max(best.lsn, q->known)) {
    q->needed = true;
    q->pgno = pgno;
    q->floor = best.lsn;
    if (runs_[rec.run].base_run != kNoRun) q->path = path_cache_.Get(runs_, rec.run);
    q->sealed = sealed_view_;
  }
  loc->lsn = best.lsn;
  if (best.lsn == 0 || zero) return Status::OK();  // loc->file stays null: zeros
  *loc = best;
  auto seg = segments_.find(best.segment);  // its image blocks' layout: its format's
  loc->holes = seg == segments_.end() || seg->second.version >= kFirstHoleFormatVersion;
  auto file = File(best.segment);
  if (!file.ok()) return file.status();
  loc->file = std::move(*file);
  return Status::OK();
}

void PageStoreImpl::CachedLocation(uint32_t run, Lsn lsn, PageNo pgno, DiskQuery* q, Location* best,
                                   bool* zero) const {
  // The answer cached for run r of the path (the run itself, then its
  // ancestors) with cutoff c (the run's own: lsn) holds for the read when it
  // names a version at or below c: a version at LSN v newest among those r
  // sees at as_of is newest among those it sees at any LSN in [v, as_of], and
  // no version is ever added at a passed LSN. Everything the read sees
  // besides is above min(as_of, c): the versions of r in (as_of, c], and
  // those of the runs between the read's and r, which all start above c.
  uint32_t r = run;
  Lsn cutoff = lsn;
  for (int level = 0; level <= kCachedAncestors && r != kNoRun; ++level) {
    auto c = location_cache_.Lookup(runs_[r].start, pgno);
    if (c && c->epoch == q->epoch) {
      // A later read's answer is not replaced by this earlier one's.
      if (level == 0) q->keep = c->as_of > lsn;
      if (c->lsn <= cutoff) {
        q->known = std::min(c->as_of, cutoff);
        q->inherited = level > 0;
        if (c->lsn > best->lsn) {
          *best = Location{c->segment, c->offset, c->lsn, nullptr};
          *zero = c->zero;
        }
        return;
      }
    }
    cutoff = runs_[r].base;
    r = runs_[r].base_run;
  }
}

Status PageStoreImpl::LocateOnDisk(const DiskQuery& q, Location* loc, uint64_t* bad_segment,
                                   size_t* stepped_over) const {
  auto visible = [&q, stepped_over](const IndexEntry& e) {
    if (e.run_start == q.run_start) return true;
    const Lsn c = q.path ? q.path->CutoffByStart(e.run_start) : 0;
    if (c != 0 && e.lsn <= c) return true;
    ++*stepped_over;
    return false;
  };
  Lsn floor = q.floor;
  // Newest segments first: one whose newest version is not above the best
  // answer so far cannot improve it, and neither can any after it; nor can
  // one at or below what the location cache answered for.
  for (const auto& view_idx : *q.sealed) {
    if (view_idx->dir.max_lsn <= std::max(floor, q.known)) break;
    if (view_idx->dir.min_lsn > q.lsn) continue;
    const SegmentIndex* idx = view_idx.get();
    std::shared_ptr<const SegmentIndex> loaded;
    if (idx->lazy) {  // MANIFEST's LSN range brought the read here: opened now
      auto l = LazyIndex(*idx, bad_segment);
      if (!l.ok()) return l.status();
      loaded = std::move(*l);
      idx = loaded.get();
    }
    if (!idx->MayContain(q.pgno)) continue;
    auto hit = FindInSegment(*idx, q.pgno, q.lsn, floor, &index_cache_, visible);
    if (!hit.ok()) {
      if (hit.status().IsCorruption()) *bad_segment = idx->number;
      return hit.status();
    }
    if (!hit->has_value()) continue;
    const IndexEntry& e = **hit;
    floor = e.lsn;
    // A zeroing version: lsn kept (for the location cache), no file (zeros).
    *loc = Location{static_cast<uint32_t>(idx->number), e.offset, e.lsn,
                    e.IsZero() ? nullptr : idx->file, idx->version >= kFirstHoleFormatVersion};
  }
  return Status::OK();
}

void PageStoreImpl::InstallSegmentIndex(std::shared_ptr<const SegmentIndex> idx) const {
  seg_indexes_[idx->number] = std::move(idx);
  RebuildSealedView();
}

void PageStoreImpl::DropSegmentIndex(uint64_t number) const {
  ++location_epoch_;
  seg_indexes_.erase(number);
  RebuildSealedView();
}

void PageStoreImpl::RebuildSealedView() const {
  std::vector<std::shared_ptr<const SegmentIndex>> v;
  v.reserve(seg_indexes_.size());
  for (auto it = seg_indexes_.rbegin(); it != seg_indexes_.rend(); ++it) {  // newest segment
    if (it->second->dir.versions > 0) v.push_back(it->second);  // first: usually sorted so
  }
  auto newer = [](const auto& a, const auto& b) { return a->dir.max_lsn > b->dir.max_lsn; };
  if (!std::is_sorted(v.begin(), v.end(), newer)) std::sort(v.begin(), v.end(), newer);
  sealed_view_ = std::make_shared<std::vector<std::shared_ptr<const SegmentIndex>>>(std::move(v));
}

Status PageStoreImpl::DemoteSegmentIndex(uint64_t number, const std::string& why) const {
  std::shared_ptr<const SegmentIndex> idx;
  uint64_t size = 0;
  {
    ReaderLock state(state_mu_);
    auto it = seg_indexes_.find(number);
    if (it == seg_indexes_.end()) return Status::OK();
    idx = it->second;
    size = segments_.at(number).size;
  }
  SegmentHeader h;
  size_t header_len = 0;
  BRANCHDB_RETURN_IF_ERROR(ReadSegmentHeader(idx->file.get(), number, &h, &header_len));
  SealedRecords records;
  BRANCHDB_RETURN_IF_ERROR(ReadSealedRecords(idx->file.get(), number, header_len, size, &records,
                                             MetaParts::kNoAnnotation));
  uint64_t versions = 0;
  {
    WriterLock state(state_mu_);
    if (seg_indexes_.count(number) == 0) return Status::OK();  // done meanwhile
    for (const FooterEntry& e : records.entries) {
      auto run = run_by_start_.find(e.meta.run_start);
      if (run == run_by_start_.end()) continue;  // garbage of a run that no longer exists
      IndexVersions(e.meta, run->second, static_cast<uint32_t>(number), e.offset, e.meta_len);
      versions += e.meta.entries.size();
    }
    DropSegmentIndex(number);
  }
  MutexLock lock(damage_mu_);
  read_damage_.push_back(why + "; page versions rebuilt in memory from the footer's record list (" +
                         std::to_string(versions) + " versions)");
  return Status::OK();
}

Status PageStoreImpl::ForEachPage(const PageVisitor& fn, uint64_t* bad_segment) const {
  std::vector<SegmentIndexIterator> its;
  its.reserve(seg_indexes_.size());
  using Item = std::pair<PageNo, size_t>;  // (its page, iterator)
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  for (const auto& [n, idx] : seg_indexes_) {
    if (idx->lazy)
      return Status::FailedPrecondition(SegmentFileName(n) + " not loaded (InstallLazySegments)");
    its.emplace_back(idx);
    if (Status s = its.back().Init(); !s.ok()) {
      if (s.IsCorruption()) *bad_segment = n;
      return s;
    }
    if (its.back().Valid()) heap.emplace(its.back().pgno(), its.size() - 1);
  }
  PageNo mem = 0;
  bool mem_valid = index_.NextPage(0, &mem);
  std::vector<Version> vs;
  std::vector<IndexEntry> entries;
  while (mem_valid || !heap.empty()) {
    PageNo p = mem_valid ? mem : heap.top().first;
    if (!heap.empty()) p = std::min(p, heap.top().first);
    vs.clear();
    size_t sources = 0;
    if (mem_valid && mem == p) {
      auto m = index_.Versions(p);
      vs.assign(m.begin(), m.end());
      mem_valid = index_.NextPage(p + 1, &mem);
      ++sources;
    }
    while (!heap.empty() && heap.top().first == p) {
      SegmentIndexIterator& it = its[heap.top().second];
      const size_t i = heap.top().second;
      heap.pop();
      entries.clear();
      if (Status s = it.TakePage(&entries); !s.ok()) {
        if (s.IsCorruption()) *bad_segment = it.index().number;
        return s;
      }
      for (const IndexEntry& e : entries) {
        auto run = run_by_start_.find(e.run_start);
        vs.push_back(Version{e.lsn, run == run_by_start_.end() ? kNoRun : run->second,
                             static_cast<uint32_t>(it.index().number),
                             e.IsZero() ? kZeroOffset : e.offset});
      }
      if (it.Valid()) heap.emplace(it.pgno(), i);
      ++sources;
    }
    if (sources > 1) {
      std::sort(vs.begin(), vs.end(),
                [](const Version& a, const Version& b) { return a.lsn < b.lsn; });
    }
    if (!vs.empty()) fn(p, vs);
  }
  return Status::OK();
}

Status PageStoreImpl::RepairingIndex(const std::function<Status(uint64_t*)>& fn) const {
  for (;;) {
    uint64_t bad = 0;
    Status s = fn(&bad);
    if (s.ok() || bad == 0) return s;
    BRANCHDB_RETURN_IF_ERROR(DemoteSegmentIndex(bad, s.message()));
  }
}

Status PageStoreImpl::ReadLocated(const Location& loc, PageNo pgno, char* out) const {
  if (loc.file == nullptr) {
    std::memset(out, 0, kPageSize);
    return Status::OK();
  }
  return ReadLocation(loc, pgno, out);
}

}  // namespace branchdb::storage::internal
