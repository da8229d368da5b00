// PageStoreImpl: timelines, LSN resolution, database sizes, records and
// payloads, history, LsnAt, ChangedPages, stats, space usage. Where a page
// version is and its image: page_store_locate.cc.
#include <algorithm>
#include <iterator>
#include <optional>
#include <span>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "storage/page_store_impl.h"
#include "storage/segment_reader.h"

namespace branchdb::storage::internal {
namespace {

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
  for (const auto& sides : {std::pair(&a, &b), std::pair(&b, &a)}) {
    const PathState* mine = sides.first;
    const PathState* theirs = sides.second;
    if (mine->path == nullptr) continue;
    mine->path->ForEachRun([&](uint32_t r, Lsn) {
      Lsn hi = mine->Cut(r);
      Lsn lo = std::min(hi, theirs->Cut(r));
      if (hi > lo) ranges.emplace_back(r, lo, hi);
    });
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
  MetaLocation loc;  // its file taken under state_mu_: compaction cannot delete it first
  uint32_t len = 0;
  BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
    ReaderLock state(state_mu_);
    auto r = StateLocked(lsn, pins);
    if (!r.ok()) return r.status();
    len = r->payload_len;
    if (len == 0) return Status::OK();
    auto l = MetaLocationLocked(*r);
    if (!l.ok()) return l.status();
    loc = std::move(*l);
    return Status::OK();
  }));
  if (len == 0) return std::string();
  // The payload follows the image blocks, whose sizes the meta gives.
  auto meta = ReadMeta(loc);
  if (!meta.ok()) return meta.status();
  const uint64_t at = PayloadOffset(loc.offset, loc.meta_len, **meta);
  std::string block;
  Status s = ReadPayloadBlock(loc.file.get(), at, lsn, len, &block);
  if (!s.ok()) return s.WithContext(SegmentFileName(loc.segment));
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
    s.page_index_bytes = index_.MemoryBytes() + path_cache_.MemoryBytes();
    for (const auto& [n, ri] : rec_indexes_) s.page_index_bytes += ri->MemoryBytes();
    for (const auto& [n, idx] : seg_indexes_) s.page_index_bytes += idx->MemoryBytes() + 64;
    s.page_index_versions = index_.version_count();
  }
  s.unsealed_record_bytes = active_records_.memory_bytes() + active_metas_.mapped_bytes();
  s.meta_cache = meta_cache_.Stats();
  s.page_cache = page_cache_.Stats();
  s.index_cache = index_cache_.Stats();  // record index blocks are of its kind too
  s.location_cache = location_cache_.Stats();
  return s;
}

Result<std::vector<RecordInfo>> PageStoreImpl::History(TimelineId t, Lsn before,
                                                       size_t limit) const {
  return Records(t, before, limit, /*own=*/false);
}

Result<std::vector<RecordInfo>> PageStoreImpl::OwnRecords(TimelineId t, Lsn before,
                                                          size_t limit) const {
  return Records(t, before, limit, /*own=*/true);
}

// History (own: false) and OwnRecords (own: true): the live entries of the
// runs each walks, from `before` down, and their metas read outside the lock.
Result<std::vector<RecordInfo>> PageStoreImpl::Records(TimelineId t, Lsn before, size_t limit,
                                                       bool own) const {
  BRANCHDB_RETURN_IF_ERROR(LoadRunLists());
  const Lsn below = before == 0 ? kMaxLsn : before;
  std::vector<MetaLocation> locs;
  BRANCHDB_RETURN_IF_ERROR(WithRecordReads([&](RecordPins* pins) {
    locs.clear();
    ReaderLock state(state_mu_);
    auto tl = LiveTimeline(t);
    if (!tl.ok()) return tl.status();
    Status failed;
    // Takes the live ones of entries[0, end), newest first; true when done.
    auto take = [&](const RunList& entries, size_t end) {
      state_mu_.AssertReaderHeld();  // taken above
      for (size_t i = end; i-- > 0 && locs.size() < limit;) {
        const RunEntry e = entries[i];
        if (!e.live) continue;
        auto rec = StateLocked(e.lsn, pins);
        auto loc = rec.ok() ? MetaLocationLocked(*rec) : Result<MetaLocation>(rec.status());
        if (!loc.ok()) {
          failed = loc.status();
          return true;
        }
        locs.push_back(std::move(*loc));
      }
      return locs.size() >= limit;
    };
    if (!own) {
      WalkHistory(runs_, (*tl)->run, below, take);
    } else if (auto mine = timeline_runs_.find(t); mine != timeline_runs_.end()) {
      // t's runs hold its records one after another (a reset starts the
      // next): the newest run first.
      for (size_t k = mine->second.size(); k-- > 0;) {
        const RunList& entries = runs_[mine->second[k]].entries;
        if (take(entries, entries.UpperBound(below))) break;
      }
    }
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

Result<SpaceUsage> PageStoreImpl::Usage(TimelineId t) const {
  BRANCHDB_RETURN_IF_ERROR(LoadRunLists());  // its roots: every live record
  ReaderLock state(state_mu_);
  auto tl = LiveTimeline(t);
  if (!tl.ok()) return tl.status();
  // The head's entry: a sealed one reads its record index block under the
  // lock when it is not cached (Usage is off the read path).
  auto head = StateLocked((*tl)->info.head, nullptr);
  if (!head.ok()) return head.status();
  const uint64_t logical_bytes = static_cast<uint64_t>(head->db_size_pages) * kPageSize;
  const uint64_t epoch = usage_epoch_;
  const uint64_t records = live_records_;
  {
    MutexLock lock(usage_mu_);
    auto cached = usage_cache_.find(t);
    if (cached != usage_cache_.end() && cached->second.epoch == epoch) {
      SpaceUsage u = cached->second.usage;
      u.exclusive_bytes += (*tl)->image_bytes - cached->second.image_bytes_base;
      u.logical_bytes = logical_bytes;
      return u;
    }
  }
  auto mine = BuildPathMap(runs_, (*tl)->run);
  // For every run, the highest cutoff through which another live timeline reads it.
  std::unordered_map<uint32_t, Lsn> others;
  for (const auto& [id, other] : timelines_) {
    if (other.dropped || id == t) continue;
    Lsn cutoff = kMaxLsn;
    for (uint32_t r = other.run; r != kNoRun; r = runs_[r].base_run) {
      Lsn& c = others[r];
      c = std::max(c, cutoff);
      cutoff = runs_[r].base;
    }
  }
  SpaceUsage u;
  // Only the versions the store keeps count: a sealed segment's on-disk index
  // still lists what GC dropped until compaction rewrites it, so the versions
  // go through the plan with every live record as a root.
  Roots roots;
  ForEachLive([&](Lsn lsn, uint32_t run, int64_t) { roots.emplace(lsn, run); });
  state.Unlock();
  GcPlan plan;
  // current: no record was applied since `roots`, `mine` and `others` (a
  // commit meanwhile would be in image_bytes but not among the roots).
  bool current = false;
  uint64_t image_bytes_base = 0;
  Status planned = RepairingIndex([&](uint64_t* bad) {
    ReaderLock again(state_mu_);
    u = SpaceUsage();
    auto now = LiveTimeline(t);
    current = usage_epoch_ == epoch && live_records_ == records && now.ok();
    if (current) image_bytes_base = (*now)->image_bytes;
    return PlanGc(roots, {}, &plan, bad, [&](const Version& v) {
      if (v.IsZero()) return;
      Lsn c = mine->Cutoff(v.run);
      if (c == 0 || v.lsn > c) return;
      auto it = others.find(v.run);
      if (it != others.end() && v.lsn <= it->second) {
        u.shared_bytes += kPageSize;
      } else {
        u.exclusive_bytes += kPageSize;
      }
    });
  });
  if (!planned.ok()) return planned;
  if (current) {
    // The plan ran under the same lock as image_bytes_base was read: what
    // commits add from here on is the timeline's own.
    MutexLock lock(usage_mu_);
    std::erase_if(usage_cache_, [epoch](const auto& e) { return e.second.epoch != epoch; });
    usage_cache_[t] = CachedUsage{epoch, image_bytes_base, u};
  }
  u.logical_bytes = logical_bytes;
  return u;
}

}  // namespace branchdb::storage::internal
