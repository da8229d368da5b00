// PageStoreImpl: garbage collection and compaction (space usage, which
// runs GC's plan: page_store_read.cc).
//
// GC keeps, for every root state (live timeline heads, pins, records inside
// the restore window) and every page, the newest version visible from it;
// every other version is garbage, and every non-root record is collected
// (its state is no longer readable). The plan is computed per page over the
// run tree: a run's "queries" are its own root LSNs plus the base LSNs of
// child runs that still need the page from it (docs/storage-format.md, "GC").
#include <algorithm>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "storage/page_store_impl.h"
#include "storage/segment_reader.h"

namespace branchdb::storage::internal {
namespace {

// What compaction counts, roughly, for each version a segment keeps besides
// its image: its entries in its record's meta and in the footer's copy of it.
constexpr uint64_t kKeptVersionBytes = 16;
// Compaction appends its output in pieces of about this size.
constexpr size_t kCompactionAppendBytes = 1u << 20;

struct Query {
  Lsn lsn = 0;
  uint32_t child = kNoRun;  // kNoRun: a root of the run itself
};
using Queries = std::vector<std::vector<Query>>;  // by run, each sorted by LSN

// One page's share of PlanGc: which of its versions some root still reads.
// A run answers its queries with its newest version at or below each query's
// LSN; a query from a child run counts only while that child has demand (one
// of its own active queries reads below its first version of the page).
class PagePlanner {
 public:
  PagePlanner(const std::vector<Run>& runs, const std::vector<char>& rooted,
              const Queries& queries)
      : runs_(runs), rooted_(rooted), queries_(queries) {}

  // REQUIRES: vs is one page's versions, sorted by LSN (as the index keeps
  // them). Returns, by version, 1 to keep it; valid until the next call.
  const std::vector<char>& Keep(std::span<const Version> vs) {
    CollectRuns(vs);
    keep_.assign(vs.size(), 0);
    for (size_t i : DeepestFirst()) Decide(here_[i], vs);
    return keep_;
  }

 private:
  struct RunHere {
    uint32_t run;
    std::vector<size_t> versions;  // indexes into the page's versions
    bool demand = false;
  };

  // The runs holding a version of the page, and their ancestors (which pass
  // the page's demand upwards).
  void CollectRuns(std::span<const Version> vs) {
    const size_t nruns = runs_.size();
    pos_.clear();
    here_.clear();
    for (size_t i = 0; i < vs.size(); ++i) {
      uint32_t r = vs[i].run;
      if (r >= nruns) continue;  // an on-disk version whose run is gone: never kept
      auto [it, inserted] = pos_.emplace(r, here_.size());
      if (inserted) here_.push_back(RunHere{r, {}, false});
      here_[it->second].versions.push_back(i);
      for (uint32_t a = runs_[r].base_run; a != kNoRun;
           a = runs_[a].base_run) {
        auto [ait, ains] = pos_.emplace(a, here_.size());
        if (!ains) break;
        here_.push_back(RunHere{a, {}, false});
      }
    }
  }

  // Deepest runs first, so a child's demand is known before its parent's.
  std::vector<size_t> DeepestFirst() const {
    std::vector<size_t> order(here_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return runs_[here_[a].run].depth > runs_[here_[b].run].depth;
    });
    return order;
  }

  bool Active(const Query& x) const {
    if (x.child == kNoRun) return true;
    auto it = pos_.find(x.child);
    return it == pos_.end() || here_[it->second].demand;
  }

  // Sets h's demand, and keeps each of h's versions that an active query of
  // h lands on (at or above it, below h's next version).
  void Decide(RunHere& h, std::span<const Version> vs) {
    if (h.run >= runs_.size() || !rooted_[h.run]) return;
    const std::vector<Query>& q = queries_[h.run];
    Lsn first = h.versions.empty() ? kMaxLsn : vs[h.versions.front()].lsn;
    for (const Query& x : q) {
      if (x.lsn >= first) break;
      if (Active(x)) {
        h.demand = true;
        break;
      }
    }
    for (size_t k = 0; k < h.versions.size(); ++k) {
      Lsn lo = vs[h.versions[k]].lsn;
      Lsn hi = k + 1 < h.versions.size() ? vs[h.versions[k + 1]].lsn : kMaxLsn;
      auto it = std::lower_bound(q.begin(), q.end(), lo,
                                 [](const Query& x, Lsn l) { return x.lsn < l; });
      for (; it != q.end() && it->lsn < hi; ++it) {
        if (Active(*it)) {
          keep_[h.versions[k]] = 1;
          break;
        }
      }
    }
  }

  const std::vector<Run>& runs_;
  const std::vector<char>& rooted_;
  const Queries& queries_;
  // Scratch for the current page, reused across pages.
  std::unordered_map<uint32_t, size_t> pos_;  // run -> slot in here_
  std::vector<RunHere> here_;
  std::vector<char> keep_;
};

}  // namespace

Status PageStoreImpl::PlanGc(const Roots& roots,
                             const std::vector<uint64_t>& collect, GcPlan* out,
                             uint64_t* bad_segment, const KeptVisitor& on_kept) const {
  GcPlan& plan = *out;
  plan = GcPlan();
  // Runs that hold a root, and everything on their paths, are needed; each
  // gets a query for its own roots and for the base of each needed child.
  const size_t nruns = runs_.size();
  plan.rooted.assign(nruns, 0);
  std::vector<char>& rooted = plan.rooted;
  Queries queries(nruns);
  for (const auto& [r, root_run] : roots) {
    uint32_t run = root_run;
    queries[run].push_back(Query{r, kNoRun});
    while (run != kNoRun && !rooted[run]) {
      rooted[run] = 1;
      if (runs_[run].base_run != kNoRun) {
        queries[runs_[run].base_run].push_back(Query{runs_[run].base, run});
      }
      run = runs_[run].base_run;
    }
  }
  for (auto& q : queries) {
    std::sort(q.begin(), q.end(), [](const Query& a, const Query& b) { return a.lsn < b.lsn; });
  }

  // Per page, its versions in memory and on disk merged: keep the versions
  // some root still reads.
  PagePlanner planner(runs_, rooted, queries);
  for (uint64_t seg : collect) plan.retained[seg];
  Status s = ForEachPage(
      [&](PageNo pgno, std::span<const Version> vs) {
        state_mu_.AssertReaderHeld();  // the caller's
        const std::vector<char>& keep = planner.Keep(vs);
        std::vector<Lsn> dropped;
        for (size_t i = 0; i < vs.size(); ++i) {
          const Version& v = vs[i];
          if (keep[i]) {
            if (on_kept) on_kept(v);
            // An image block's size at most (one with a hole is smaller).
            plan.kept_bytes[v.segment] +=
                kKeptVersionBytes + (v.IsZero() ? 0 : kHoleBlockHeader + kPageSize);
            auto r = plan.retained.find(v.segment);
            if (r != plan.retained.end()) r->second.emplace_back(v.lsn, pgno);
            continue;
          }
          ++plan.removed;
          if (!IndexedOnDisk(v.segment)) dropped.push_back(v.lsn);
        }
        if (!dropped.empty()) plan.removals.emplace_back(pgno, std::move(dropped));
      },
      bad_segment);
  for (auto& [seg, list] : plan.retained) std::sort(list.begin(), list.end());
  return s;
}

Status PageStoreImpl::PlanRetained(const std::vector<uint64_t>& collect, GcPlan* plan) const {
  BRANCHDB_RETURN_IF_ERROR(LoadRunLists());  // its roots: every live record
  return RepairingIndex([&](uint64_t* bad) {
    ReaderLock state(state_mu_);
    Roots roots;
    ForEachLive([&](Lsn lsn, uint32_t run, int64_t) { roots.emplace(lsn, run); });
    return PlanGc(roots, collect, plan, bad);
  });
}

void PageStoreImpl::ApplyRemovals(const GcPlan& plan) {
  for (const auto& removal : plan.removals) {
    const std::vector<Lsn>& lsns = removal.second;
    index_.RemoveIf(removal.first, [&lsns](const Version& v) {
      return std::binary_search(lsns.begin(), lsns.end(), v.lsn);
    });
  }
}

namespace {

// MANIFEST is current when it builds on GCSTATE's gc_lsn. After a GC with no
// record since the last one, that GC's GCSTATE has the same gc_lsn as the
// MANIFEST on disk, which would pass for current until the GC's own is
// written, and name segments its compaction deletes: it is deleted (durably,
// a missing one is fine) before that GCSTATE is written. Open then builds
// the structure from GCSTATE and the footers.
Status DeleteStoreManifest(Env* env, const std::string& dir) {
  const std::string path = JoinPath(dir, std::string(kStoreManifestName));
  if (!env->FileExists(path)) return Status::OK();
  BRANCHDB_RETURN_IF_ERROR(env->DeleteFile(path));
  return SyncError(env->SyncDir(dir));
}

}  // namespace

Result<GcStats> PageStoreImpl::Gc(const GcOptions& options) {
  BRANCHDB_RETURN_IF_ERROR(LoadRunLists());  // roots and the plan walk every run's list
  MutexLock gc_lock(gc_mu_);
  {
    MutexLock lock(mu_);
    // A lone record written outside mu_ (WriteAlone) is applied first.
    while (gc_running_ || writing_alone_) cv_.Wait(mu_);
    gc_running_ = true;  // new mutations wait (none is mid-append: that is under mu_)
  }
  struct Done {
    PageStoreImpl* s;
    ~Done() {
      MutexLock lock(s->mu_);
      s->gc_running_ = false;
      s->cv_.SignalAll();
    }
  } done{this};
  {
    MutexLock lock(mu_);
    // Every appended record durable first: the manifest names records up to
    // the durable LSN, and no leader may sync while GC works on the files.
    BRANCHDB_RETURN_IF_ERROR(WaitDurableLocked(appended_lsn_));
    if (!failed_.ok()) return Refusal();
  }
  if (tmp_unchecked_) {
    BRANCHDB_RETURN_IF_ERROR(DeleteTmpFiles());
    tmp_unchecked_ = false;
  }

  GcStats stats;
  const int64_t now = env_->GetClock()->NowMicros();
  const int64_t oldest = now - options.restore_window_micros;
  std::map<uint64_t, uint64_t> kept_bytes;
  bool same_gc_lsn = false;  // no record since the last GC
  {
    auto pinned = PinnedRoots(options);
    if (!pinned.ok()) return pinned.status();
    Roots roots;
    GcPlan plan;
    // The plan reads the sealed segments' index blocks under the shared
    // lock: only mutations wait on it, and they wait for GC anyway.
    BRANCHDB_RETURN_IF_ERROR(RepairingIndex([&](uint64_t* bad) {
      ReaderLock state(state_mu_);
      roots = GcRoots(*pinned, oldest);
      return PlanGc(roots, {}, &plan, bad);
    }));
    BRANCHDB_RETURN_IF_ERROR(RepairingRecords([&](uint64_t* bad) {
      ReaderLock state(state_mu_);
      plan.sealed_payloads.clear();
      return SealedPayloadsCollected(roots, &plan.sealed_payloads, bad);
    }));
    stats.versions_removed = plan.removed;
    kept_bytes = plan.kept_bytes;

    // Apply the plan. No mutation can run (gc_running_), so the state read
    // above is still current when the exclusive lock is taken (a read that
    // demotes a damaged index meanwhile only adds versions: the plan removes
    // in-memory versions by LSN, never replaces a page's list).
    WriterLock excl(state_mu_);
    const Lsn previous_gc_lsn = gc_lsn_;
    ApplyGcPlan(std::move(plan), roots);
    same_gc_lsn = gc_lsn_ == previous_gc_lsn;
  }
  {
    MutexLock lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      it = it->second.dropped ? pending_.erase(it) : std::next(it);
    }
  }
  if (same_gc_lsn) BRANCHDB_RETURN_IF_ERROR(FailStopOnSyncError(DeleteStoreManifest(env_, dir_)));
  // The manifest must be durable before compaction drops anything from disk.
  std::string manifest = EncodeManifest(BuildManifest());
  BRANCHDB_RETURN_IF_ERROR(WriteManifest(manifest));
  BRANCHDB_RETURN_IF_ERROR(Compact(&stats, kept_bytes, options.may_rewrite));
  // The store manifest follows: it lists the segments compaction left (until
  // it is written, Open finds it older than GCSTATE and reads footers).
  BRANCHDB_RETURN_IF_ERROR(
      FailStopOnSyncError(WriteStoreManifest(EncodeStoreManifest(BuildManifest()))));
  return stats;
}

void PageStoreImpl::ApplyGcPlan(GcPlan plan, const Roots& roots) {
  const std::vector<char>& rooted = plan.rooted;
  const size_t nruns = runs_.size();
  ApplyRemovals(plan);
  // Every record that is not a root is collected (with its payload's bytes).
  records_.RetainIf([&](const RecordEntry& rec) {
    state_mu_.AssertHeld();  // taken by the caller
    if (roots.count(rec.lsn)) return true;
    if (rec.payload_len > 0) {
      auto p = payload_bytes_.find(runs_[rec.run].timeline);
      if (p != payload_bytes_.end() && (p->second -= rec.payload_len) == 0) payload_bytes_.erase(p);
    }
    return false;
  });
  for (const auto& [timeline, bytes] : plan.sealed_payloads) {
    auto p = payload_bytes_.find(timeline);
    if (p != payload_bytes_.end() && (p->second -= std::min(p->second, bytes)) == 0) {
      payload_bytes_.erase(p);
    }
  }
  live_records_ = roots.size();
  // Runs no root needs go; a needed run keeps its live roots, and each stretch
  // of collected entries between them shrinks to one marker.
  std::vector<TimelineId> dropped;  // the timelines of the runs that go
  for (uint32_t r = 0; r < nruns; ++r) {
    Run& run = runs_[r];
    if (!run.exists) continue;
    if (!rooted[r]) {
      run_by_start_.erase(run.start);
      dropped.push_back(run.timeline);
      run = Run();
      continue;
    }
    RunList entries;
    for (const RunEntry& e : run.entries) {
      bool live = e.live && roots.count(e.lsn) != 0;
      if (!live && !entries.empty() && !entries.back().live) continue;
      entries.push_back(RunEntry{e.lsn, e.time_micros, live});
    }
    run.entries = std::move(entries);
  }
  ForgetDroppedRuns(std::move(dropped));
  for (auto it = timelines_.begin(); it != timelines_.end();) {
    it = it->second.dropped ? timelines_.erase(it) : std::next(it);
  }
  gc_lsn_ = durable_lsn_;
  ++usage_epoch_;
  path_cache_.Clear();
}

Status PageStoreImpl::DeleteTmpFiles() {
  auto children = env_->GetChildren(dir_);
  if (!children.ok()) return children.status();
  // Not synced: a delete a crash undoes leaves a file nothing reads.
  for (const std::string& name : *children) {
    if (name.size() <= 4 || name.substr(name.size() - 4) != ".tmp") continue;
    BRANCHDB_RETURN_IF_ERROR(DeleteIfExists(JoinPath(dir_, name)));
  }
  return Status::OK();
}

// Env::WriteFileAtomic, step by step, so that the caller can tell a failed
// fsync (SyncError: store_failed) from other failures, which leave the old
// file in place.
Status PageStoreImpl::WriteFileDurably(std::string_view name, const std::string& contents) {
  const std::string path = JoinPath(dir_, std::string(name));
  const std::string tmp = path + ".tmp";
  {
    auto file = env_->NewWritableFile(tmp, Env::OpenMode::kTruncate);
    if (!file.ok()) return file.status();
    BRANCHDB_RETURN_IF_ERROR((*file)->Append(contents));
    BRANCHDB_RETURN_IF_ERROR(SyncError((*file)->Sync()));
    BRANCHDB_RETURN_IF_ERROR((*file)->Close());
  }
  BRANCHDB_RETURN_IF_ERROR(env_->RenameFile(tmp, path));
  return SyncError(env_->SyncDir(dir_));
}

Status PageStoreImpl::WriteManifest(const std::string& contents) {
  return FailStopOnSyncError(WriteFileDurably(kManifestName, contents));
}

Status PageStoreImpl::WriteStoreManifest(const std::string& contents) {
  return WriteFileDurably(kStoreManifestName, contents);
}

Status PageStoreImpl::FailStopOnSyncError(Status s) {
  return s.reason() == "store_failed" ? FailStopOnError(std::move(s)) : s;
}

Status PageStoreImpl::FailStopOnError(Status s) {
  if (!s.ok()) {
    MutexLock lock(mu_);
    if (failed_.ok()) failed_ = s;
  }
  return s;
}

Status PageStoreImpl::DropEmptySegment(uint64_t n, uint64_t size, GcStats* stats) {
  BRANCHDB_RETURN_IF_ERROR(env_->DeleteFile(SegmentPath(n)));
  {
    WriterLock state(state_mu_);
    segments_.erase(n);
    if (IndexedOnDisk(n)) DropSegmentIndex(n);
  }
  {
    MutexLock lock(files_mu_);
    files_.erase(static_cast<uint32_t>(n));
  }
  stats->bytes_reclaimed += size;
  stats->segments_rewritten += 1;
  return Status::OK();
}

Status PageStoreImpl::Compact(GcStats* stats, const std::map<uint64_t, uint64_t>& kept_bytes,
                              const std::function<bool(uint64_t)>& may_rewrite) {
  // Bytes each segment must keep: live records' metadata and retained images.
  std::map<uint64_t, uint64_t> keep = kept_bytes;
  SegmentTable<Segment> segments;
  BRANCHDB_RETURN_IF_ERROR(RepairingRecords([&](uint64_t* bad) {
    ReaderLock state(state_mu_);
    keep = kept_bytes;
    segments = segments_;
    for (size_t i = 0; i < records_.size(); ++i) {
      const RecordEntry& rec = records_.at(i);
      keep[rec.segment] += kRecordHeaderSize + rec.meta_len + rec.payload_len;
    }
    return ForEachSealedRecord(
        [&](uint64_t seg, const RecordIndexEntry& e) {
          state_mu_.AssertReaderHeld();  // taken above
          auto run = run_by_start_.find(e.run_start);
          if (run == run_by_start_.end() || !LiveInRun(run->second, e.lsn)) return;
          keep[seg] += kRecordHeaderSize + e.meta_len + e.payload_len;
        },
        bad);
  }));
  // A segment the caller refuses (GcOptions::may_rewrite) stays whole.
  auto worth = [&](uint64_t n, const Segment& s) {
    return keep[n] * 2 <= s.size && (!may_rewrite || may_rewrite(n));
  };
  // The active segment is sealed first when most of it is garbage.
  auto active = segments.find(active_number_);
  if (active_file_ && active != segments.end() && !active_records_.empty() &&
      worth(active_number_, active->second)) {
    BRANCHDB_RETURN_IF_ERROR(FailStopOnError(RollSegment()));
    ReaderLock state(state_mu_);
    segments = segments_;
  }
  // The groups to rewrite, then the versions they keep (one merge of every
  // page's versions, keeping only those of the groups' segments in memory).
  std::vector<std::vector<uint64_t>> groups;
  std::vector<uint64_t> group;
  std::vector<uint64_t> candidates;
  uint64_t group_bytes = 0;
  for (const auto& [n, s] : segments) {
    if (!s.sealed || n == active_number_ || !worth(n, s)) continue;
    if (keep[n] == 0) {
      // Nothing left in it: recovery would ignore all of it anyway.
      BRANCHDB_RETURN_IF_ERROR(DropEmptySegment(n, s.size, stats));
      continue;
    }
    if (!group.empty() && group_bytes + keep[n] > options_.segment_bytes) {
      groups.push_back(std::move(group));
      group.clear();
      group_bytes = 0;
    }
    group.push_back(n);
    candidates.push_back(n);
    group_bytes += keep[n];
  }
  if (!group.empty()) groups.push_back(std::move(group));
  if (!groups.empty()) {
    GcPlan plan;
    BRANCHDB_RETURN_IF_ERROR(PlanRetained(candidates, &plan));
    for (const std::vector<uint64_t>& g : groups) {
      std::vector<std::pair<Lsn, PageNo>> retained;
      for (uint64_t n : g) {
        auto& list = plan.retained[n];
        retained.insert(retained.end(), list.begin(), list.end());
        list = {};
      }
      std::sort(retained.begin(), retained.end());
      BRANCHDB_RETURN_IF_ERROR(CompactGroup(g, retained, stats));
    }
  }
  return FailStopOnError(SyncError(env_->SyncDir(dir_)));
}

// What CompactGroup writes: the new segment, appended in pieces, and where
// each version and live record it copied now lives (applied to the in-memory
// state only once the segment is durable under its final name).
struct CompactionOutput {
  struct Move {
    PageNo pgno;
    Lsn lsn;
    uint64_t offset;  // kZeroOffset: a zero version
    Lsn run_start;
  };
  struct LiveMove {
    Lsn lsn;
    uint64_t offset;
    uint32_t meta_len;
  };
  std::unique_ptr<WritableFile> file;
  std::string buf;      // written, not yet appended to the file
  uint64_t offset = 0;  // bytes appended to the file so far
  MetaList footer;
  std::vector<Move> moves;
  std::vector<PageNo> pages;  // of every record read (their in-memory versions leave)
  std::vector<LiveMove> live_moves;
  uint64_t old_bytes = 0;  // the sizes of the segments read
};

namespace {

// Appends what out still buffers, then its footer: every record's meta, the
// record index, and the page index of the versions it moved, by (pgno, lsn).
Status FinishOutput(CompactionOutput* out) {
  std::vector<IndexEntry> index;
  index.reserve(out->moves.size());
  for (const CompactionOutput::Move& m : out->moves) {
    index.push_back(IndexEntry{m.pgno, m.lsn, m.run_start, m.offset == kZeroOffset ? 0 : m.offset});
  }
  std::sort(index.begin(), index.end(), [](const IndexEntry& a, const IndexEntry& b) {
    return a.pgno != b.pgno ? a.pgno < b.pgno : a.lsn < b.lsn;
  });
  std::vector<RecordIndexEntry> records;
  BRANCHDB_RETURN_IF_ERROR(RecordIndexOf(out->footer.entries(), &records));
  const uint64_t footer_offset = out->offset + out->buf.size();
  BRANCHDB_RETURN_IF_ERROR(out->file->Append(out->buf));
  return WriteFooter(
      out->footer.entries(), footer_offset, kFormatVersion, index, records,
      [file = out->file.get()](std::string_view piece) { return file->Append(piece); });
}

// The image blocks of e's kept image entries (meta's; old_image: their
// indexes among e's images), read from segment seg and checked, appended to
// *images with holes (format 5: a block of an older format is re-encoded,
// its entry given its hole); meta gets kRecordFlagHoles.
Status CopyImages(uint64_t seg, RandomAccessFile* file, const FooterEntry& e,
                  const std::vector<size_t>& old_image, RecordMeta* meta, std::string* images) {
  const bool holes = HasHoles(e.meta);
  const std::vector<uint64_t> old_offsets = ImageOffsets(e.offset, e.meta_len, e.meta);
  meta->flags |= kRecordFlagHoles;
  std::string block, page(kPageSize, '\0');
  size_t j = 0;
  for (PageEntry& pe : meta->entries) {
    if (pe.type != EntryType::kImage) continue;
    block.resize(ImageBlockBytes(e.meta, pe));  // pe's hole is its old entry's
    auto n = file->Read(old_offsets[old_image[j++]], block.size(), block.data());
    if (!n.ok()) return n.status();
    if (*n != block.size() || !ImageBlockValid(block, holes)) {
      return Status::Corruption(SegmentFileName(seg) + ": page " + std::to_string(pe.pgno) +
                                " of LSN " + std::to_string(meta->lsn) + ": checksum mismatch");
    }
    if (holes) {
      *images += block;
      continue;
    }
    BlockImage(block, false, page.data());
    pe.hole = AppendImageBlock(images, page);
  }
  return Status::OK();
}

}  // namespace

Status PageStoreImpl::CompactGroup(const std::vector<uint64_t>& group,
                                   const std::vector<std::pair<Lsn, PageNo>>& retained,
                                   GcStats* stats) {
  const uint64_t number = next_segment_++;
  const std::string final_path = SegmentPath(number);
  const std::string tmp_path = final_path + ".tmp";
  SegmentHeader header;
  header.number = number;
  header.flags = kSegmentFlagCompacted;
  header.supersedes = group;
  auto out_or = env_->NewWritableFile(tmp_path, Env::OpenMode::kTruncate);
  if (!out_or.ok()) return out_or.status();
  CompactionOutput out;
  out.file = std::move(*out_or);
  out.buf = EncodeSegmentHeader(header);
  Status s;
  for (uint64_t seg : group) {
    s = CopyRetained(seg, retained, &out);
    if (!s.ok()) break;
  }
  if (s.ok()) s = FinishOutput(&out);
  if (s.ok()) s = FailStopOnError(SyncError(out.file->Sync()));  // a failed fsync is never survived
  if (s.ok()) s = out.file->Close();
  // A number consumed without its file would leave a gap past MANIFEST's
  // numbers, which Open's probe does not step over: given back when no file
  // took it.
  if (!s.ok()) {
    out.file.reset();
    (void)env_->DeleteFile(tmp_path);
    next_segment_ = number;
    return s;
  }
  const uint64_t new_size = out.file->Size();
  out.file.reset();
  if (Status renamed = env_->RenameFile(tmp_path, final_path); !renamed.ok()) {
    if (!env_->FileExists(final_path)) next_segment_ = number;
    return renamed;
  }
  // On failure the output may or may not be durable under its final name; a
  // later compaction of the same segments would then duplicate their records.
  // Fail-stop: recovery sorts it out (the output supersedes the group).
  BRANCHDB_RETURN_IF_ERROR(FailStopOnError(SyncError(env_->SyncDir(dir_))));
  // The output is durable and supersedes the group: the state must point at
  // it before the group goes, so a failure to read its index back stops the
  // store (recovery sorts it out).
  auto idx = ReadBackIndex(number, new_size);
  if (!idx.ok()) return FailStopOnError(idx.status());
  auto ri = ReadBackRecordIndex(**idx);
  if (!ri.ok()) return FailStopOnError(ri.status());
  InstallCompacted(group, number, new_size, out, std::move(*idx), std::move(*ri));
  for (size_t i = 0; i < group.size(); ++i) {
    Status deleted = env_->DeleteFile(SegmentPath(group[i]));
    if (deleted.ok()) continue;
    // Left behind: MANIFEST lists the rest with the output (the next Open
    // deletes them; it lists no directory that would find them).
    WriterLock state(state_mu_);
    segments_[number].supersedes.assign(group.begin() + static_cast<ptrdiff_t>(i), group.end());
    return deleted;
  }
  stats->segments_rewritten += group.size();
  stats->bytes_reclaimed += out.old_bytes > new_size ? out.old_bytes - new_size : 0;
  return Status::OK();
}

Status PageStoreImpl::CopyRetained(uint64_t seg,
                                   const std::vector<std::pair<Lsn, PageNo>>& retained,
                                   CompactionOutput* out) {
  std::shared_ptr<RandomAccessFile> file;
  uint64_t size = 0;
  {
    ReaderLock state(state_mu_);
    size = segments_.at(seg).size;
    auto f = File(static_cast<uint32_t>(seg));
    if (!f.ok()) return f.status();
    file = std::move(*f);
  }
  out->old_bytes += size;
  SegmentHeader h;
  size_t header_len = 0;
  BRANCHDB_RETURN_IF_ERROR(ReadSegmentHeader(file.get(), seg, &h, &header_len));
  SealedRecords records;  // a damaged footer is rebuilt by a scan, as recovery does
  BRANCHDB_RETURN_IF_ERROR(ReadSealedRecords(file.get(), seg, header_len, size, &records));
  for (const FooterEntry& e : records.entries) {
    for (const PageEntry& pe : e.meta.entries) out->pages.push_back(pe.pgno);
    BRANCHDB_RETURN_IF_ERROR(CopyRecord(seg, file.get(), e, retained, out));
  }
  return Status::OK();
}

Status PageStoreImpl::CopyRecord(uint64_t seg, RandomAccessFile* file, const FooterEntry& e,
                                 const std::vector<std::pair<Lsn, PageNo>>& retained,
                                 CompactionOutput* out) {
  RecordMeta meta = e.meta;
  std::vector<size_t> old_image;  // old image index of each kept image entry
  auto retains = RetainEntries(seg, retained, &meta, &old_image);
  if (!retains.ok()) return retains.status();
  const bool live = *retains;
  if (!live && meta.entries.empty()) return Status::OK();
  if (!live) {
    meta.flags |= kRecordFlagCollected;
    meta.annotation.clear();
    meta.payload_len = 0;
  }
  // The kept images' blocks come before the meta is encoded: it carries
  // each one's hole, which a block of an older format gets only now.
  std::string images;
  BRANCHDB_RETURN_IF_ERROR(CopyImages(seg, file, e, old_image, &meta, &images));
  std::string meta_bytes = EncodeMeta(meta);
  const uint64_t rec_off = out->offset + out->buf.size();
  out->buf += EncodeRecordPrefix(meta_bytes);
  const std::vector<uint64_t> at =
      ImageOffsets(rec_off, static_cast<uint32_t>(meta_bytes.size()), meta);
  size_t image = 0;
  for (const PageEntry& pe : meta.entries) {
    const uint64_t offset = pe.type == EntryType::kImage ? at[image++] : kZeroOffset;
    out->moves.push_back(CompactionOutput::Move{pe.pgno, meta.lsn, offset, meta.run_start});
  }
  out->buf += images;
  if (meta.payload_len > 0) {
    std::string block;
    Status p = ReadPayloadBlock(file, PayloadOffset(e.offset, e.meta_len, e.meta), meta.lsn,
                                meta.payload_len, &block);
    if (!p.ok()) return p.WithContext(SegmentFileName(seg));
    out->buf += block;
  }
  if (live) {
    out->live_moves.push_back(
        CompactionOutput::LiveMove{meta.lsn, rec_off, static_cast<uint32_t>(meta_bytes.size())});
  }
  out->footer.Add(rec_off, meta_bytes);
  if (out->buf.size() >= kCompactionAppendBytes) {
    BRANCHDB_RETURN_IF_ERROR(out->file->Append(out->buf));
    out->offset += out->buf.size();
    out->buf.clear();
  }
  return Status::OK();
}

void PageStoreImpl::InstallCompacted(const std::vector<uint64_t>& group, uint64_t number,
                                     uint64_t new_size, CompactionOutput& out,
                                     std::shared_ptr<const SegmentIndex> idx,
                                     std::shared_ptr<const SegmentRecordIndex> ri) {
  {
    WriterLock state(state_mu_);
    ++location_epoch_;  // the group's versions move to the output
    // The group's versions, in memory (formats 1 and 2, damaged indexes) or
    // in their on-disk indexes, are now all in the output's index.
    std::sort(out.pages.begin(), out.pages.end());
    out.pages.erase(std::unique(out.pages.begin(), out.pages.end()), out.pages.end());
    for (PageNo pgno : out.pages) {
      index_.RemoveIf(pgno, [&group](const Version& v) {
        return std::find(group.begin(), group.end(), v.segment) != group.end();
      });
    }
    for (uint64_t seg : group) {
      if (IndexedOnDisk(seg)) seg_indexes_.erase(seg);
    }
    InstallSegmentIndex(std::move(idx));
    // The live records it holds are found through its record index from now
    // on: the group's record indexes and table entries go.
    for (uint64_t seg : group) rec_indexes_.erase(seg);
    InstallRecordIndex(std::move(ri));
    records_.RetainIf([&group](const RecordEntry& rec) {
      return std::find(group.begin(), group.end(), rec.segment) == group.end();
    });
    for (uint64_t seg : group) segments_.erase(seg);
    segments_[number] = Segment{new_size, true, kSegmentFlagCompacted};
  }
  {
    MutexLock lock(files_mu_);
    for (uint64_t seg : group) files_.erase(static_cast<uint32_t>(seg));
  }
}

}  // namespace branchdb::storage::internal
