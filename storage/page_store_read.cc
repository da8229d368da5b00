// PageStoreImpl: timelines, reads at LSNs, history, LsnAt, ChangedPages.
#include <algorithm>
#include <cstring>
#include <functional>
#include <iterator>
#include <optional>
#include <queue>
#include <span>
#include <tuple>
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

Status TimelineNotFound(TimelineId t) {
  return Status::NotFound("timeline " + std::to_string(t) + " not found", "timeline_not_found");
}

Status LsnNotFound(Lsn lsn, std::string_view why) {
  return Status::NotFound("LSN " + std::to_string(lsn) + ": " + std::string(why), "lsn_not_found");
}

// Walks the history that run r sees, newest run first: calls fn(entries,
// end) with each run's entries, of which [0, end) are at or below the cutoff
// that applies on it (`cutoff` on r, then, on each base run, the LSN its
// descendant branched off at), until fn returns true or the path ends.
// Returns whether fn stopped the walk.
// REQUIRES: state_mu_ held (runs is the store's runs_).
template <typename Fn>
bool WalkHistory(const std::vector<Run>& runs, uint32_t r, Lsn cutoff, Fn&& fn) {
  for (; r != kNoRun; r = runs[r].base_run) {
    const Run& run = runs[r];
    if (fn(run.entries, run.entries.UpperBound(cutoff))) return true;
    cutoff = std::min(cutoff, run.base);
  }
  return false;
}

// A state on a path: the path map of its run (nullptr for the empty state),
// the run, and its LSN.
struct PathState {
  const PathMap* path;
  uint32_t run;
  Lsn lsn;
  // Its cutoff on run r: its own LSN on its run, the path's cutoff on an
  // ancestor run, 0 off its path.
  Lsn Cut(uint32_t r) const {
    if (path == nullptr) return 0;
    Lsn c = path->Cutoff(r);
    return c == 0 ? 0 : (r == run ? lsn : c);
  }
};

// The LSN ranges (run, lo, hi] whose records one state sees and the other
// does not: on each run of a's path, (common, a's cutoff] where common is
// b's cutoff on that run; and the same from b's side.
std::vector<std::tuple<uint32_t, Lsn, Lsn>> DifferingRanges(const PathState& a,
                                                            const PathState& b) {
  std::vector<std::tuple<uint32_t, Lsn, Lsn>> ranges;
  for (const auto& [mine, theirs] : {std::pair(&a, &b), std::pair(&b, &a)}) {
    if (mine->path == nullptr) continue;
    for (const auto& [r, unused] : mine->path->runs()) {
      Lsn hi = mine->Cut(r);
      Lsn lo = std::min(hi, theirs->Cut(r));
      if (hi > lo) ranges.emplace_back(r, lo, hi);
    }
  }
  return ranges;
}

}  // namespace

std::string PageStoreImpl::SegmentPath(uint64_t number) const {
  return JoinPath(dir_, SegmentFileName(number));
}

Result<const PageStoreImpl::Timeline*> PageStoreImpl::LiveTimeline(TimelineId t) const {
  auto it = timelines_.find(t);
  if (it == timelines_.end() || it->second.dropped) return TimelineNotFound(t);
  return &it->second;
}

Result<TimelineInfo> PageStoreImpl::GetTimeline(TimelineId t) const {
  ReaderLock state(state_mu_);
  auto tl = LiveTimeline(t);
  if (!tl.ok()) return tl.status();
  return (*tl)->info;
}

std::vector<TimelineInfo> PageStoreImpl::ListTimelines() const {
  ReaderLock state(state_mu_);
  std::vector<TimelineInfo> out;
  for (const auto& [id, t] : timelines_) {
    if (!t.dropped) out.push_back(t.info);
  }
  return out;
}

Result<Lsn> PageStoreImpl::Head(TimelineId t) const {
  {
    ReaderLock state(state_mu_);
    auto tl = LiveTimeline(t);
    if (!tl.ok()) return tl.status();
    if ((*tl)->info.head <= failed_limit_) return (*tl)->info.head;
  }
  BRANCHDB_RETURN_IF_ERROR(LoadRunLists());  // a failed store: its last durable state
  ReaderLock state(state_mu_);
  return ResolveLocked(t, failed_limit_);
}

Result<Lsn> PageStoreImpl::ResolveLocked(TimelineId t, Lsn lsn) const {
  auto tl = LiveTimeline(t);
  if (!tl.ok()) return tl.status();
  lsn = std::min(lsn, failed_limit_);  // never a pending record of a failed store
  // The head is the newest record of its run, and live.
  if (lsn >= (*tl)->info.head) return (*tl)->info.head;
  if (runs_on_disk_.load(std::memory_order_acquire)) {  // the caller completes them, tries again
    return Status::Unavailable("the runs' record lists are not complete yet",
                               std::string(kRunsIncomplete));
  }
  std::optional<RunEntry> newest;  // the newest entry at or below lsn
  WalkHistory(runs_, (*tl)->run, lsn, [&](const RunList& entries, size_t end) {
    if (end > 0) newest = entries[end - 1];
    return newest.has_value();
  });
  if (!newest) {
    return LsnNotFound(lsn, "before the history of timeline " + std::to_string(t) + " begins");
  }
  if (!newest->live) return LsnNotFound(lsn, "that state was garbage-collected");
  return newest->lsn;
}

Result<Lsn> PageStoreImpl::ResolveLsn(TimelineId t, Lsn lsn) const {
  for (;;) {
    {
      ReaderLock state(state_mu_);
      auto r = ResolveLocked(t, lsn);
      if (r.ok() || r.status().reason() != kRunsIncomplete) return r;
    }
    BRANCHDB_RETURN_IF_ERROR(LoadRunLists());  // a state below the head, just after Open
  }
}

const Version* PageStoreImpl::FindVersion(uint32_t run, Lsn lsn, PageNo pgno) const {
  auto versions = index_.Versions(pgno);
  if (versions.empty()) return nullptr;
  auto it = std::upper_bound(versions.begin(), versions.end(), lsn,
                             [](Lsn l, const Version& v) { return l < v.lsn; });
  std::shared_ptr<const PathMap> path;
  const PageIndex::ByRun* by_run = index_.VersionsByRun(pgno);
  size_t steps = 0;
  while (it != versions.begin()) {
    --it;
    if (it->run == run) return &*it;
    if (by_run != nullptr && ++steps == kLinearSteps) break;  // many other runs' versions
    if (runs_[run].base_run == kNoRun) continue;              // path is the run alone
    if (!path) path = path_cache_.Get(runs_, run);
    Lsn c = path->Cutoff(it->run);
    if (c != 0 && it->lsn <= c) return &*it;
  }
  if (by_run == nullptr || steps < kLinearSteps) return nullptr;
  // The newest visible version is the newest among each path run's newest
  // version at or below that run's cutoff.
  if (!path) path = path_cache_.Get(runs_, run);
  const Version* best = nullptr;
  for (const auto& [r, cutoff] : path->runs()) {
    auto f = by_run->find(r);
    if (f == by_run->end()) continue;
    const Lsn c = r == run ? lsn : cutoff;
    const std::vector<uint32_t>& idx = f->second;
    auto p = std::upper_bound(idx.begin(), idx.end(), c,
                              [&](Lsn l, uint32_t i) { return l < versions[i].lsn; });
    if (p == idx.begin()) continue;
    const Version* v = &versions[*(p - 1)];
    if (best == nullptr || v->lsn > best->lsn) best = v;
  }
  return best;
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
  // The image straight into out (SQLite's buffer), its crc beside it; a
  // scan's next blocks from this thread's read-ahead window.
  char crc[4];
  bool complete = false, buffered = false;
  for (bool read_ahead : {true, false}) {
    BRANCHDB_RETURN_IF_ERROR(
        ReadImageBlock(loc.file, loc.offset, read_ahead, crc, out, &complete, &buffered));
    if (complete && coding::DecodeFixed32(crc) == crc32c::Value(std::string_view(out, kPageSize))) {
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
    if (!q.needed) return Status::OK();
    return LocateOnDisk(q, loc, bad);
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
  const Version* v = FindVersion(rec.run, lsn, pgno);
  q->floor = v == nullptr ? 0 : v->lsn;
  if (sealed_view_ && !sealed_view_->empty() && sealed_view_->front()->dir.max_lsn > q->floor) {
    // A sealed segment may hold a newer visible version.
    q->needed = true;
    q->pgno = pgno;
    q->lsn = lsn;
    q->run_start = runs_[rec.run].start;
    if (runs_[rec.run].base_run != kNoRun) q->path = path_cache_.Get(runs_, rec.run);
    q->sealed = sealed_view_;
  }
  if (v == nullptr || v->IsZero()) return Status::OK();  // loc->file stays null: zeros
  *loc = Location{v->segment, v->offset, v->lsn, nullptr};
  auto file = File(v->segment);
  if (!file.ok()) return file.status();
  loc->file = std::move(*file);
  return Status::OK();
}

Status PageStoreImpl::LocateOnDisk(const DiskQuery& q, Location* loc,
                                   uint64_t* bad_segment) const {
  auto visible = [&q](const IndexEntry& e) {
    if (e.run_start == q.run_start) return true;
    if (!q.path) return false;
    const Lsn c = q.path->CutoffByStart(e.run_start);
    return c != 0 && e.lsn <= c;
  };
  Lsn floor = q.floor;
  // Newest segments first: one whose newest version is not above the best
  // answer so far cannot improve it, and neither can any after it.
  for (const auto& view_idx : *q.sealed) {
    if (view_idx->dir.max_lsn <= floor) break;
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
    *loc = e.IsZero() ? Location{} : Location{static_cast<uint32_t>(idx->number), e.offset, e.lsn,
                                              idx->file};
  }
  return Status::OK();
}

void PageStoreImpl::InstallSegmentIndex(std::shared_ptr<const SegmentIndex> idx) const {
  seg_indexes_[idx->number] = std::move(idx);
  RebuildSealedView();
}

void PageStoreImpl::DropSegmentIndex(uint64_t number) const {
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
    if (idx->lazy) return Status::FailedPrecondition(SegmentFileName(n) + " not loaded (InstallLazySegments)");
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
      std::sort(vs.begin(), vs.end(), [](const Version& a, const Version& b) { return a.lsn < b.lsn; });
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

Result<uint32_t> PageStoreImpl::DbSize(TimelineId t, Lsn lsn) const {
  uint32_t size = 0;
  auto attempt = [&](RecordPins* pins) {
    ReaderLock state(state_mu_);
    auto s = ResolveLocked(t, lsn);
    if (!s.ok()) return s.status();
    auto rec = StateLocked(*s, pins);
    if (!rec.ok()) return rec.status();
    size = rec->db_size_pages;
    return Status::OK();
  };
  Status s = WithRecordReads(attempt);
  if (s.reason() == kRunsIncomplete) {  // below the head just after Open
    BRANCHDB_RETURN_IF_ERROR(LoadRunLists());
    s = WithRecordReads(attempt);
  }
  if (!s.ok()) return s;
  return size;
}

Result<uint32_t> PageStoreImpl::DbSizeAt(Lsn state_lsn) const {
  if (state_lsn == 0) return 0u;
  uint32_t size = 0;
  BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
    ReaderLock state(state_mu_);
    auto rec = StateLocked(state_lsn, pins);
    if (!rec.ok()) return rec.status();
    size = rec->db_size_pages;
    return Status::OK();
  }));
  return size;
}

RecordInfo PageStoreImpl::ToInfo(const RecordMeta& meta) {
  RecordInfo info;
  info.lsn = meta.lsn;
  info.kind = meta.kind;
  info.timeline = meta.timeline;
  info.time_micros = meta.time_micros;
  info.db_size_pages = meta.db_size_pages;
  info.base = meta.base;
  info.annotation = meta.annotation;
  for (const PageEntry& e : meta.entries) {
    if (e.type == EntryType::kImage) info.pages.push_back(e.pgno);
  }
  info.payload_bytes = meta.payload_len;
  return info;
}

Result<PageStoreImpl::MetaLocation> PageStoreImpl::MetaLocationLocked(
    const RecordEntry& rec) const {
  MetaLocation loc;
  loc.lsn = rec.lsn;
  loc.segment = rec.segment;
  loc.offset = rec.offset;
  loc.meta_len = rec.meta_len;
  auto seg = segments_.find(rec.segment);
  if (seg != segments_.end() && seg->second.sealed) loc.sealed_size = seg->second.size;
  auto file = File(rec.segment);
  if (!file.ok()) return file.status();
  loc.file = std::move(*file);
  return loc;
}

Result<std::shared_ptr<const RecordMeta>> PageStoreImpl::ReadMeta(const MetaLocation& loc) const {
  if (auto cached = meta_cache_.Lookup(loc.lsn)) return cached;
  auto meta = std::make_shared<RecordMeta>();
  std::string damage;
  BRANCHDB_RETURN_IF_ERROR(ReadRecordMeta(loc.file.get(), loc.segment, loc.offset, loc.meta_len,
                                          loc.lsn, loc.sealed_size, meta.get(), &damage));
  if (!damage.empty()) {
    MutexLock lock(damage_mu_);
    if (std::find(read_damage_.begin(), read_damage_.end(), damage) == read_damage_.end()) {
      read_damage_.push_back(damage);
    }
  }
  meta_cache_.Insert(loc.lsn, meta);
  return std::shared_ptr<const RecordMeta>(std::move(meta));
}

Result<RecordInfo> PageStoreImpl::GetRecord(Lsn lsn) const {
  MetaLocation loc;
  BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
    ReaderLock state(state_mu_);
    auto rec = StateLocked(lsn, pins);
    if (!rec.ok()) return rec.status();
    auto l = MetaLocationLocked(*rec);
    if (!l.ok()) return l.status();
    loc = std::move(*l);
    return Status::OK();
  }));
  auto meta = ReadMeta(loc);
  if (!meta.ok()) return meta.status();
  return ToInfo(**meta);
}

Status PageStoreImpl::ReadPayloadBlock(RandomAccessFile* file, uint64_t at, Lsn lsn, uint32_t len,
                                       std::string* block) {
  block->assign(kPayloadBlockHeader + len, '\0');
  auto n = file->Read(at, block->size(), block->data());
  if (!n.ok()) return n.status();
  std::string_view payload;
  if (*n != block->size() || !PayloadBlockValid(*block, &payload)) {
    return Status::Corruption("payload of LSN " + std::to_string(lsn) + " at offset " +
                              std::to_string(at) + ": checksum mismatch");
  }
  return Status::OK();
}

Result<std::string> PageStoreImpl::ReadPayload(Lsn lsn) const {
  std::shared_ptr<RandomAccessFile> file;
  uint32_t segment = 0, len = 0;
  uint64_t at = 0;
  BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
    ReaderLock state(state_mu_);
    auto r = StateLocked(lsn, pins);
    if (!r.ok()) return r.status();
    const RecordEntry& rec = *r;
    len = rec.payload_len;
    if (len == 0) return Status::OK();
    segment = rec.segment;
    at = PayloadOffset(rec.offset, rec.meta_len, rec.images);
    auto f = File(segment);  // taken under state_mu_: compaction cannot delete it first
    if (!f.ok()) return f.status();
    file = std::move(*f);
    return Status::OK();
  }));
  if (len == 0) return std::string();
  std::string block;
  Status s = ReadPayloadBlock(file.get(), at, lsn, len, &block);
  if (!s.ok()) return s.WithContext(SegmentFileName(segment));
  return block.substr(kPayloadBlockHeader);
}

uint64_t PageStoreImpl::PayloadBytes(TimelineId t) const {
  ReaderLock state(state_mu_);
  auto it = payload_bytes_.find(t);
  return it == payload_bytes_.end() ? 0 : it->second;
}

uint64_t PageStoreImpl::RecordMetadataBytes() const {
  ReaderLock state(state_mu_);
  return records_.EntryBytes();
}

StoreStats PageStoreImpl::Stats() const {
  StoreStats s;
  {
    ReaderLock state(state_mu_);
    s.records = live_records_;
    s.record_metadata_bytes = records_.EntryBytes();
    for (const auto& [n, ri] : rec_indexes_) s.page_index_bytes += ri->MemoryBytes();
    s.page_index_bytes = index_.MemoryBytes();
    for (const auto& [n, idx] : seg_indexes_) s.page_index_bytes += idx->MemoryBytes() + 64;
    s.page_index_versions = index_.version_count();
  }
  s.meta_cache = meta_cache_.Stats();
  s.page_cache = page_cache_.Stats();
  s.index_cache = index_cache_.Stats();  // record index blocks are of its kind too
  return s;
}

Result<std::vector<RecordInfo>> PageStoreImpl::History(TimelineId t, Lsn before,
                                                       size_t limit) const {
  BRANCHDB_RETURN_IF_ERROR(LoadRunLists());
  std::vector<MetaLocation> locs;
  BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
    locs.clear();
    ReaderLock state(state_mu_);
    auto tl = LiveTimeline(t);
    if (!tl.ok()) return tl.status();
    Status failed;
    WalkHistory(runs_, (*tl)->run, before == 0 ? kMaxLsn : before,
                [&](const RunList& entries, size_t end) {
                  state_mu_.AssertReaderHeld();  // taken above
                  for (size_t i = end; i-- > 0 && locs.size() < limit;) {
                    const RunEntry e = entries[i];
                    if (!e.live) continue;
                    auto rec = StateLocked(e.lsn, pins);
                    auto loc = rec.ok() ? MetaLocationLocked(*rec)
                                        : Result<MetaLocation>(rec.status());
                    if (!loc.ok()) {
                      failed = loc.status();
                      return true;
                    }
                    locs.push_back(std::move(*loc));
                  }
                  return locs.size() >= limit;
                });
    return failed;
  }));
  std::vector<RecordInfo> out;
  out.reserve(locs.size());
  for (const MetaLocation& loc : locs) {
    auto meta = ReadMeta(loc);
    if (!meta.ok()) return meta.status();
    out.push_back(ToInfo(**meta));
  }
  return out;
}

Result<Lsn> PageStoreImpl::LsnAt(TimelineId t, int64_t time_micros) const {
  BRANCHDB_RETURN_IF_ERROR(LoadRunLists());
  ReaderLock state(state_mu_);
  auto tl = LiveTimeline(t);
  if (!tl.ok()) return tl.status();
  std::optional<RunEntry> newest;  // the newest entry written at or before time_micros
  WalkHistory(runs_, (*tl)->run, kMaxLsn, [&](const RunList& entries, size_t end) {
    // Record times never decrease with LSN, so the entries are sorted by time too.
    const size_t i = entries.UpperBoundTime(time_micros, end);
    if (i > 0) newest = entries[i - 1];
    return newest.has_value();
  });
  if (!newest) {
    return Status::NotFound("timeline " + std::to_string(t) + " has no record at or before " +
                                std::to_string(time_micros),
                            "lsn_not_found");
  }
  if (!newest->live) {
    return Status::NotFound(
        "the state of timeline " + std::to_string(t) + " at that time was garbage-collected",
        "lsn_not_found");
  }
  return newest->lsn;
}

Result<std::vector<PageNo>> PageStoreImpl::ChangedPages(Lsn a, Lsn b) const {
  BRANCHDB_RETURN_IF_ERROR(LoadRunLists());
  std::shared_ptr<const PathMap> pa, pb;
  uint32_t ra = kNoRun, rb = kNoRun;
  std::vector<MetaLocation> locs;  // of the records in the ranges
  bool exact = true;
  BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
    ReaderLock state(state_mu_);
    locs.clear();
    exact = true;
    if (a != 0) {
      auto rec = StateLocked(a, pins);
      if (!rec.ok()) return rec.status();
      ra = rec->run;
      pa = path_cache_.Get(runs_, ra);
    }
    if (b != 0) {
      auto rec = StateLocked(b, pins);
      if (!rec.ok()) return rec.status();
      rb = rec->run;
      pb = path_cache_.Get(runs_, rb);
    }
    // Collect the pages of the records in the ranges written on one path and
    // not the other.
    for (const auto& [r, lo, hi] : DifferingRanges({pa.get(), ra, a}, {pb.get(), rb, b})) {
      const RunList& entries = runs_[r].entries;
      size_t i = entries.UpperBound(lo);
      // A collected stretch reaching into the range hides which pages it wrote.
      if (i > 0 && !entries[i - 1].live) exact = false;
      for (; exact && i < entries.size() && entries[i].lsn <= hi; ++i) {
        const RunEntry e = entries[i];
        if (!e.live) {
          exact = false;
          break;
        }
        auto rec = StateLocked(e.lsn, pins);
        if (!rec.ok()) return rec.status();
        auto loc = MetaLocationLocked(*rec);
        if (!loc.ok()) return loc.status();
        locs.push_back(std::move(*loc));
      }
      if (!exact) break;
    }
    return Status::OK();
  }));
  std::vector<PageNo> out;
  if (exact) {  // the records' page lists are read from their segments
    for (const MetaLocation& loc : locs) {
      auto meta = ReadMeta(loc);
      if (!meta.ok()) return meta.status();
      for (const PageEntry& e : (*meta)->entries) out.push_back(e.pgno);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
  // Fallback: compare, page by page, which versions each state can see.
  auto visible = [](const std::shared_ptr<const PathMap>& p, uint32_t r, Lsn at,
                    const Version& v) {
    if (!p || v.run == kNoRun) return false;
    if (v.run == r) return v.lsn <= at;
    Lsn c = p->Cutoff(v.run);
    return c != 0 && v.lsn <= c;
  };
  BRANCHDB_RETURN_IF_ERROR(RepairingIndex([&](uint64_t* bad) {
    ReaderLock again(state_mu_);
    out.clear();
    return ForEachPage(
        [&](PageNo pgno, std::span<const Version> versions) {
          for (const Version& v : versions) {
            if (visible(pa, ra, a, v) != visible(pb, rb, b, v)) {
              out.push_back(pgno);
              return;
            }
          }
        },
        bad);
  }));
  return out;
}

Status PageStoreImpl::Health() const {
  MutexLock lock(mu_);
  return failed_;
}

std::vector<std::string> PageStoreImpl::Damage() const {
  std::vector<std::string> out = damage_;
  MutexLock lock(damage_mu_);
  out.insert(out.end(), read_damage_.begin(), read_damage_.end());
  return out;
}

Lsn PageStoreImpl::LastLsn() const {
  ReaderLock state(state_mu_);
  return durable_lsn_;
}

DurablePoint PageStoreImpl::DurableEnd() const {
  ReaderLock state(state_mu_);
  return DurablePoint{durable_lsn_, durable_segment_, durable_bytes_};
}

uint64_t PageStoreImpl::DiskBytes() const {
  ReaderLock state(state_mu_);
  uint64_t total = 0;
  for (const auto& [n, s] : segments_) total += s.size;
  return total;
}

}  // namespace branchdb::storage::internal
