// PageStoreImpl: mutations, group commit, segment files, applying records.
#include <algorithm>

#include "storage/page_store_impl.h"
#include "storage/segment_reader.h"

namespace branchdb::storage::internal {
namespace {

Status StoreFailed(const Status& cause) {
  return Status::IOError("page store failed earlier and must be reopened: " + cause.ToString(),
                         "store_failed");
}

// No path in it: the message reaches API clients.
Status DiskFull() {
  return Status::ResourceExhausted(
      "disk full: the store could not write (nothing was committed); retry once space is "
      "freed",
      "disk_full");
}

Status TimelineNotFound(TimelineId t) {
  return Status::NotFound("timeline " + std::to_string(t) + " not found", "timeline_not_found");
}

// What a footer of the active segment (format `version`) is made of: its
// records' metas (*metas, the first ones kept in memory, completed from the
// file up to `end`), and, of formats 3 and later, the pages of their entries
// (ascending, distinct), and of format 4 and later their record index.
Status ReadActiveFooter(RandomAccessFile* file, uint64_t number, uint32_t version,
                        const RecordOffsets& offsets, uint64_t end, MetaList* metas,
                        std::vector<RecordIndexEntry>* records, std::vector<PageNo>* pages) {
  BRANCHDB_RETURN_IF_ERROR(ReadRecordMetas(file, number, offsets, metas->size(), end, metas));
  if (version >= kFirstRecordIndexFormatVersion) {
    // One decode of each meta gives the pages too.
    BRANCHDB_RETURN_IF_ERROR(RecordIndexOf(metas->entries(), records, pages));
  } else if (version >= kFirstIndexedFormatVersion) {
    for (const auto& [offset, meta_bytes] : metas->entries()) {
      RecordMeta meta;
      BRANCHDB_RETURN_IF_ERROR(DecodeMeta(meta_bytes, &meta, MetaParts::kNoAnnotation));
      for (const PageEntry& e : meta.entries) pages->push_back(e.pgno);
    }
  }
  std::sort(pages->begin(), pages->end());
  pages->erase(std::unique(pages->begin(), pages->end()), pages->end());
  return Status::OK();
}

}  // namespace

Status SyncError(Status s) {
  if (s.ok() || s.reason() == "store_failed") return s;
  return Status::IOError("fsync failed, the store stopped (fail-stop): " + s.message(),
                         "store_failed");
}

Status PageStoreImpl::Refusal() const {
  if (failed_.reason() == "disk_full") return DiskFull();
  return StoreFailed(failed_);
}

Status PageStoreImpl::CheckWritable() const {
  if (!failed_.ok()) return Refusal();
  return Status::OK();
}

void PageStoreImpl::Stamp(RecordMeta* meta) {
  meta->lsn = next_lsn_++;
  int64_t now = env_->GetClock()->NowMicros();
  last_time_ = std::max(last_time_, now);
  meta->time_micros = last_time_;
}

Status PageStoreImpl::FillBase(Lsn base, RecordMeta* meta) {
  meta->base = base;
  meta->base_run_start = 0;
  meta->db_size_pages = 0;
  if (base == 0) return Status::OK();
  // A base in a sealed segment may need its record index block read (under
  // mu_, outside state_mu_).
  return WithRecordReads([&](RecordPins* pins) {
    ReaderLock state(state_mu_);
    RecordEntry rec;
    bool found = false;
    BRANCHDB_RETURN_IF_ERROR(FindRecordLocked(base, pins, &rec, &found));
    if (!found) {
      return Status::NotFound("LSN " + std::to_string(base) + " names no state of the store",
                              "lsn_not_found");
    }
    meta->db_size_pages = rec.db_size_pages;
    meta->base_run_start = runs_[rec.run].start;
    return Status::OK();
  });
}

Result<TimelineId> PageStoreImpl::CreateTimeline(Lsn base, std::string_view annotation) {
  auto w = std::make_unique<Writer>();
  w->meta.kind = RecordKind::kCreate;
  w->meta.annotation = std::string(annotation);
  MutexLock lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(BeginAppend());
  BRANCHDB_RETURN_IF_ERROR(FillBase(base, &w->meta));
  w->meta.timeline = next_timeline_++;
  Stamp(&w->meta);
  w->meta.run_start = w->meta.lsn;
  const TimelineId id = w->meta.timeline;
  const PendingTimeline created{w->meta.lsn, w->meta.lsn, w->meta.db_size_pages, false};
  BRANCHDB_RETURN_IF_ERROR(AppendRecord(w.get(), true));
  pending_[id] = created;
  BRANCHDB_RETURN_IF_ERROR(WaitDurableLocked(created.head));
  return id;
}

Result<TimelineId> PageStoreImpl::CreateTimeline(TimelineId ancestor, Lsn ancestor_lsn,
                                                 std::string_view annotation) {
  Result<Lsn> base = ResolveLsn(ancestor, ancestor_lsn);
  if (!base.ok()) return base.status();
  return CreateTimeline(*base, annotation);
}

Result<Lsn> PageStoreImpl::AppendRunRecord(RecordKind kind, TimelineId t, Lsn expected_head,
                                           Lsn base, std::string_view annotation) {
  auto w = std::make_unique<Writer>();
  w->meta.kind = kind;
  w->meta.timeline = t;
  w->meta.annotation = std::string(annotation);
  MutexLock lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(BeginAppend());
  auto it = pending_.find(t);
  if (it == pending_.end() || it->second.dropped) return TimelineNotFound(t);
  PendingTimeline& p = it->second;
  PendingTimeline next = p;
  if (kind == RecordKind::kReset) {
    if (p.head != expected_head) {
      return Status::Conflict("timeline " + std::to_string(t) + " head is " +
                                  std::to_string(p.head) + ", not " + std::to_string(expected_head),
                              "head_moved");
    }
    BRANCHDB_RETURN_IF_ERROR(FillBase(base, &w->meta));
    Stamp(&w->meta);
    w->meta.run_start = w->meta.lsn;
    next.run_start = w->meta.lsn;
  } else {  // kDrop
    w->meta.db_size_pages = p.db_size;
    w->meta.run_start = p.run_start;
    Stamp(&w->meta);
    next.dropped = true;
  }
  next.head = w->meta.lsn;
  next.db_size = w->meta.db_size_pages;
  BRANCHDB_RETURN_IF_ERROR(AppendRecord(w.get(), true));
  p = next;
  // Durable in log order: also every pending commit the base or the
  // previous head was (a reset never acknowledges a state that can fail).
  BRANCHDB_RETURN_IF_ERROR(WaitDurableLocked(next.head));
  return next.head;
}

Result<Lsn> PageStoreImpl::ResetTimeline(TimelineId t, Lsn expected_head, Lsn base,
                                         std::string_view annotation) {
  return AppendRunRecord(RecordKind::kReset, t, expected_head, base, annotation);
}

Status PageStoreImpl::DropTimeline(TimelineId t) {
  Result<Lsn> r = AppendRunRecord(RecordKind::kDrop, t, 0, 0, "");
  return r.ok() ? Status::OK() : r.status();
}

Result<Lsn> PageStoreImpl::Commit(TimelineId t, Lsn expected_head,
                                  const std::vector<PageWrite>& pages, uint32_t db_size_pages,
                                  std::string_view annotation, std::string_view payload) {
  return CommitWith(true, t, expected_head, pages, db_size_pages, annotation, payload);
}

Result<Lsn> PageStoreImpl::CommitNoWait(TimelineId t, Lsn expected_head,
                                        const std::vector<PageWrite>& pages,
                                        uint32_t db_size_pages, std::string_view annotation,
                                        std::string_view payload) {
  return CommitWith(false, t, expected_head, pages, db_size_pages, annotation, payload);
}

Status PageStoreImpl::BuildCommit(TimelineId t, const std::vector<PageWrite>& pages,
                                  uint32_t db_size_pages, std::string_view annotation,
                                  std::string_view payload, Writer* w) {
  if (payload.size() > kMaxPayloadBytes) {
    return Status::InvalidArgument("payload of " + std::to_string(payload.size()) +
                                   " bytes exceeds the maximum " +
                                   std::to_string(kMaxPayloadBytes));
  }
  if (db_size_pages > kMaxDbPages) {
    return Status::InvalidArgument("database size " + std::to_string(db_size_pages) +
                                   " pages exceeds the maximum " + std::to_string(kMaxDbPages));
  }
  std::vector<size_t> order(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    const PageWrite& p = pages[i];
    if (p.data.size() != kPageSize) {
      return Status::InvalidArgument("page " + std::to_string(p.pgno) + " has " +
                                     std::to_string(p.data.size()) + " bytes, not " +
                                     std::to_string(kPageSize));
    }
    if (p.pgno == 0 || p.pgno > db_size_pages) {
      return Status::InvalidArgument("page number " + std::to_string(p.pgno) +
                                     " outside 1.." + std::to_string(db_size_pages));
    }
    order[i] = i;
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return pages[a].pgno < pages[b].pgno; });
  w->meta.kind = RecordKind::kCommit;
  w->meta.timeline = t;
  w->meta.db_size_pages = db_size_pages;
  w->meta.annotation = std::string(annotation);
  w->meta.payload_len = static_cast<uint32_t>(payload.size());
  w->payload = payload;
  w->meta.flags = kRecordFlagHoles;  // appended to a format-5 segment only (BeginAppend)
  w->meta.entries.reserve(pages.size());
  w->images.reserve(pages.size() * (kHoleBlockHeader + kPageSize));
  for (size_t k = 0; k < order.size(); ++k) {
    const PageWrite& p = pages[order[k]];
    if (k > 0 && pages[order[k - 1]].pgno == p.pgno) {
      return Status::InvalidArgument("page " + std::to_string(p.pgno) + " written twice");
    }
    w->meta.entries.push_back(
        PageEntry{p.pgno, EntryType::kImage, AppendImageBlock(&w->images, p.data)});
  }
  return Status::OK();
}

Result<Lsn> PageStoreImpl::CommitWith(bool durable, TimelineId t, Lsn expected_head,
                                      const std::vector<PageWrite>& pages, uint32_t db_size_pages,
                                      std::string_view annotation, std::string_view payload) {
  auto w = std::make_unique<Writer>();
  BRANCHDB_RETURN_IF_ERROR(BuildCommit(t, pages, db_size_pages, annotation, payload, w.get()));
  MutexLock lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(BeginAppend());
  auto it = pending_.find(t);
  if (it == pending_.end() || it->second.dropped) return TimelineNotFound(t);
  PendingTimeline& p = it->second;
  if (p.head != expected_head) {
    return Status::Conflict("timeline " + std::to_string(t) + " head is " +
                                std::to_string(p.head) + ", not " + std::to_string(expected_head),
                            "head_moved");
  }
  if (db_size_pages < p.db_size) {
    // Shrink: pages past the new size leave the state. Record a zero version
    // for every such page that may have contents (every appended record is
    // indexed, durable or not).
    std::vector<PageNo> cut;
    {
      ReaderLock state(state_mu_);
      cut = index_.PagesInRange(db_size_pages, p.db_size);
    }
    std::sort(cut.begin(), cut.end());
    cut.erase(std::unique(cut.begin(), cut.end()), cut.end());
    for (PageNo pg : cut) w->meta.entries.push_back(PageEntry{pg, EntryType::kZero});
  }
  w->meta.run_start = p.run_start;
  Stamp(&w->meta);
  BRANCHDB_RETURN_IF_ERROR(AppendRecord(w.get(), durable));
  p.head = w->meta.lsn;
  p.db_size = db_size_pages;
  const Lsn lsn = w->meta.lsn;  // p may change once the wait releases mu_
  if (durable) BRANCHDB_RETURN_IF_ERROR(WaitDurableLocked(lsn));
  return lsn;
}

Status PageStoreImpl::BeginAppend() {
  for (;;) {
    if (gc_running_ || writing_alone_) {
      ++append_waiters_;
      cv_.Wait(mu_);
      --append_waiters_;
      continue;
    }
    BRANCHDB_RETURN_IF_ERROR(CheckWritable());
    if (!active_file_) return StopWrites(Status::IOError("no active segment"));
    // A segment written by an older build is sealed before its first new
    // record: records go into segments of the current format only (image
    // blocks with holes), so that every block of a segment has one layout.
    const bool roll =
        active_file_->Size() >= options_.segment_bytes || active_version_ < kFormatVersion;
    if (!roll) return Status::OK();
    if (syncing_) {  // the leader syncs the active file: it must stay open
      cv_.Wait(mu_);
      continue;
    }
    const Lsn appended = appended_lsn_;
    Status s = SealActive();  // syncs every record appended so far
    if (s.ok()) {
      MarkDurable(appended);
      s = StartSegment(next_segment_++);
    }
    // The sealed segment joins the manifest, so that Open need not read its footer.
    if (s.ok()) s = WriteStoreManifest(EncodeStoreManifest(BuildManifestLocked()));
    if (!s.ok()) return StopWrites(s);
    return Status::OK();
  }
}

Status PageStoreImpl::AppendRecord(Writer* w, bool durable) {
  const Lsn lsn = w->meta.lsn;
  const uint64_t offset = active_file_->Size();
  std::string meta = EncodeMeta(w->meta);
  std::string buf = EncodeRecordPrefix(meta);
  buf += w->images;
  if (w->meta.payload_len > 0) AppendPayloadBlock(&buf, w->payload);
  // Alone: no leader syncing, every appended record durable, and no other
  // append waiting (those woken after a lone record share the next sync).
  bool alone = false;
  if (durable && !syncing_ && append_waiters_ == 0 && failed_.ok()) {
    ReaderLock state(state_mu_);
    alone = appended_lsn_ == durable_lsn_;
  }
  Status s = alone ? WriteAlone(buf) : active_file_->Append(buf);
  // A failed write's bytes may be in the file, half written, so nothing may
  // follow them until recovery truncates them (reopen). A failed sync is
  // fail-stop whatever its errno.
  if (!s.ok()) return StopWrites(s.reason() == WritableFile::kSyncFailed ? SyncError(s) : s);
  {
    WriterLock state(state_mu_);
    s = ApplyRecord(w->meta, static_cast<uint32_t>(active_number_), offset,
                    static_cast<uint32_t>(meta.size()), true, true);
    if (!s.ok()) return StopWrites(s.WithContext("applying a written record"));
    segments_[active_number_].size = active_file_->Size();
  }
  appended_end_ = offset + buf.size();
  // The newest records are the likeliest to be read (a branch's latest
  // checkpoints): their metas start in the cache.
  meta_cache_.Insert(lsn, std::make_shared<const RecordMeta>(std::move(w->meta)));
  // Its meta is kept for the footer while every earlier one was and they fit
  // in the budget; the seal reads the others back from the file.
  if (active_metas_.size() == active_records_.size() &&
      active_metas_.bytes() + meta.size() <= options_.segment_bytes / 16) {
    active_metas_.Add(offset, meta);
  }
  active_records_.Add(offset);
  appended_lsn_ = lsn;
  if (alone) {
    MarkDurable(lsn, active_number_, appended_end_);
    // Ahead of the next records, as a leader does before its sync: these
    // zeros are synced by the next commit (not alone: the file is unsynced).
    ExtendZeros();
  }
  return Status::OK();
}

Status PageStoreImpl::WriteAlone(std::string_view record) {
  // As a group-commit leader's sync: no other leader, roll, GC or close
  // touches the file meanwhile (syncing_). And no record is appended before
  // this one is applied (BeginAppend and GC wait for writing_alone_): it is
  // not in the state yet, and will be only once durable.
  syncing_ = true;
  writing_alone_ = true;
  WritableFile* file = active_file_.get();
  mu_.Unlock();
  Status s = file->AppendDurable(record);
  mu_.Lock();
  syncing_ = false;
  writing_alone_ = false;
  cv_.SignalAll();
  return s;
}

Status PageStoreImpl::WaitDurable(Lsn lsn) {
  MutexLock lock(mu_);
  return WaitDurableLocked(lsn);
}

Status PageStoreImpl::WaitDurableLocked(Lsn lsn) {
  for (;;) {
    {
      ReaderLock state(state_mu_);
      if (lsn <= durable_lsn_) return Status::OK();
    }
    // A full disk stops new records, not the sync of those already appended.
    if (!failed_.ok() && failed_.reason() != "disk_full") return Refusal();
    if (lsn > appended_lsn_) {
      return Status::IOError("LSN " + std::to_string(lsn) +
                                 " is not in the log (never made durable; the store was "
                                 "reopened or its write failed)",
                             "not_durable");
    }
    if (!syncing_) break;
    cv_.Wait(mu_);
  }
  // Leader: one fdatasync for every record appended so far. Appenders go on
  // meanwhile (the segment does not roll while syncing_).
  if (!active_file_) return StopWrites(Status::IOError("no active segment"));
  // The zero region is grown by the leader, ahead of need, and made durable
  // by this sync: the records later written over it change no file size.
  ExtendZeros();
  syncing_ = true;
  const Lsn target = appended_lsn_;
  const uint64_t target_end = appended_end_;  // the segment cannot roll while syncing_
  WritableFile* file = active_file_.get();
  mu_.Unlock();
  Status s = SyncError(file->Sync());
  mu_.Lock();
  syncing_ = false;
  if (s.ok()) {
    MarkDurable(target, active_number_, target_end);
    if (!failed_.ok()) {
      // A write failed while this sync ran (syncs never overlap, and none
      // starts once stopped): the records it covered are durable and their
      // waiters acknowledged, so reads see them.
      WriterLock state(state_mu_);
      if (failed_limit_ != ~Lsn{0}) failed_limit_ = std::max(failed_limit_, target);
    }
  } else {
    (void)StopWrites(s);  // every waiter reports Refusal() below
  }
  cv_.SignalAll();
  return s.ok() ? Status::OK() : Refusal();
}

void PageStoreImpl::MarkDurable(Lsn lsn, uint64_t segment, uint64_t bytes) {
  WriterLock state(state_mu_);
  durable_lsn_ = std::max(durable_lsn_, lsn);
  if (segment == durable_segment_) durable_bytes_ = std::max(durable_bytes_, bytes);
}

Status PageStoreImpl::StopWrites(Status s) {
  if (failed_.ok() || (failed_.reason() == "disk_full" && s.reason() == "store_failed")) {
    failed_ = s;
  }
  if (s.reason() != "disk_full") {
    // The pending records will never be durable (a full disk still lets
    // them be synced): hide them from reads. A failed write stops the store
    // as a failed sync does.
    WriterLock state(state_mu_);
    failed_limit_ = std::min(failed_limit_, durable_lsn_);
  }
  cv_.SignalAll();
  if (s.reason() == "disk_full") return DiskFull();
  return s;
}

Status PageStoreImpl::SealActive() {
  const bool indexed = active_version_ >= kFirstIndexedFormatVersion;
  // Format 3: the footer carries the segment's page index, made of the
  // versions the in-memory index holds for it (GC may have dropped some).
  std::vector<IndexEntry> index;
  std::vector<PageNo> pages;  // of its records, ascending, distinct
  // Format 4: and its record index, so that Open needs no record list.
  std::vector<RecordIndexEntry> records;
  {
    auto file = File(static_cast<uint32_t>(active_number_));
    if (!file.ok()) return file.status();
    BRANCHDB_RETURN_IF_ERROR(ReadActiveFooter(file->get(), active_number_, active_version_,
                                              active_records_, active_file_->Size(), &active_metas_,
                                              &records, &pages));
  }
  if (indexed) {
    index.reserve(pages.size());  // every page entry of its records: at most one version each
    ReaderLock state(state_mu_);
    for (PageNo pgno : pages) {
      for (const Version& v : index_.Versions(pgno)) {
        if (v.segment != active_number_) continue;
        index.push_back(IndexEntry{pgno, v.lsn, runs_[v.run].start, v.IsZero() ? 0 : v.offset});
      }
    }
  }
  if (zeros_end_ > active_file_->Size()) {
    // The zero region goes first (and the records become durable): the
    // footer is then the file's end, the sealed format unchanged.
    BRANCHDB_RETURN_IF_ERROR(
        SyncError(env_->TruncateFile(SegmentPath(active_number_), active_file_->Size())));
    zeros_end_ = active_file_->Size();
  }
  BRANCHDB_RETURN_IF_ERROR(WriteFooter(
      active_metas_.entries(), active_file_->Size(), active_version_, index, records,
      [file = active_file_.get()](std::string_view piece) { return file->Append(piece); }));
  BRANCHDB_RETURN_IF_ERROR(SyncError(active_file_->Sync()));
  BRANCHDB_RETURN_IF_ERROR(active_file_->Close());
  const uint64_t size = active_file_->Size();
  std::shared_ptr<const SegmentIndex> idx;
  std::shared_ptr<const SegmentRecordIndex> ri;
  if (indexed) {
    auto read = ReadBackIndex(active_number_, size);
    if (!read.ok()) return read.status();
    idx = std::move(*read);
  }
  if (idx && active_version_ >= kFirstRecordIndexFormatVersion) {
    auto read = ReadBackRecordIndex(*idx);
    if (!read.ok()) return read.status();
    ri = std::move(*read);
  }
  {
    WriterLock state(state_mu_);
    segments_[active_number_] = Segment{size, true, 0, active_version_};
    if (idx) {
      // Its versions leave memory: from now on they are read from its footer.
      const uint32_t seg = static_cast<uint32_t>(active_number_);
      for (PageNo pgno : pages) {
        index_.RemoveIf(pgno, [seg](const Version& v) { return v.segment == seg; });
      }
      InstallSegmentIndex(std::move(idx));
    }
    if (ri) {
      // Its records' entries leave memory too: read from its record index.
      records_.RetainIf([seg = active_number_](const RecordEntry& rec) { return rec.segment != seg; });
      InstallRecordIndex(std::move(ri));
    }
  }
  active_records_.Clear();
  active_metas_.Clear();
  active_file_.reset();
  return Status::OK();
}

Result<std::shared_ptr<const SegmentIndex>> PageStoreImpl::ReadBackIndex(uint64_t number,
                                                                       uint64_t size) {
  auto file = File(static_cast<uint32_t>(number));
  if (!file.ok()) return file.status();
  auto idx = std::make_shared<SegmentIndex>();
  std::string damage;
  BRANCHDB_RETURN_IF_ERROR(ReadSegmentIndex(file->get(), number, size, idx.get(), &damage));
  if (!damage.empty()) {
    return Status::IOError(SegmentFileName(number) +
                           ": the page index just written reads back damaged: " + damage);
  }
  idx->file = std::move(*file);
  return std::shared_ptr<const SegmentIndex>(std::move(idx));
}

Status PageStoreImpl::StartSegment(uint64_t number) {
  const std::string path = SegmentPath(number);
  auto file = env_->NewWritableFile(path, Env::OpenMode::kTruncate);
  if (!file.ok()) return file.status();
  SegmentHeader h;
  h.number = number;
  BRANCHDB_RETURN_IF_ERROR((*file)->Append(EncodeSegmentHeader(h)));
  BRANCHDB_RETURN_IF_ERROR(SyncError((*file)->Sync()));
  BRANCHDB_RETURN_IF_ERROR(SyncError(env_->SyncDir(dir_)));
  active_file_ = std::move(*file);
  active_number_ = number;
  active_version_ = kFormatVersion;
  active_records_.Clear();
  active_metas_.Clear();
  appended_end_ = active_file_->Size();
  {
    WriterLock state(state_mu_);
    segments_[number] = Segment{active_file_->Size(), false};
    // Every record before it is durable (sealed): only its synced header counts.
    durable_segment_ = number;
    durable_bytes_ = appended_end_;
  }
  // The zero region after the synced header (a crash before this sync leaves
  // a whole header, maybe followed by zeros: an empty log).
  zeros_end_ = appended_end_;
  zeros_step_ = 0;
  ExtendZeros();
  if (zeros_end_ > appended_end_) return SyncError(active_file_->Sync());
  return Status::OK();
}

void PageStoreImpl::ExtendZeros() {
  if (options_.preallocate_bytes == 0) return;
  // From kFirstZerosBytes after Open or a new segment, doubling up to
  // preallocate_bytes: a store woken for one commit writes (and syncs) a
  // small region with it, not 4 MiB of zeros.
  const uint64_t step = std::min<uint64_t>(options_.preallocate_bytes,
                                           std::max<uint64_t>(zeros_step_, kFirstZerosBytes));
  const uint64_t end = active_file_->Size();
  zeros_end_ = std::max(zeros_end_, end);  // records written past the zeros
  if (zeros_end_ - end >= step / 2) return;
  // Not past the size at which the segment rolls: its last record may be
  // appended beyond.
  const uint64_t target = std::min(zeros_end_ + step, std::max(options_.segment_bytes, end));
  if (target <= zeros_end_) return;
  // A failure (a full disk) is no failure of the log: records are then
  // appended past the zeros, as without them, and zeros half written are
  // past every record (cut at reopen, or by sealing: zeros_end_ bounds the
  // file's size either way). A failing disk fails the records' own writes
  // and syncs.
  (void)active_file_->ExtendWithZeros(target);
  zeros_end_ = target;
  zeros_step_ = step * 2;
}

void PageStoreImpl::CutZerosAtClose() {
  MutexLock lock(mu_);  // nothing else runs: the store's last owner is closing it
  if (!opened_ || !active_file_ || syncing_ || zeros_end_ <= active_file_->Size()) return;
  // Only zeros lie past the write position (records past the zeros moved
  // zeros_end_ along): the cut never takes a record's byte.
  (void)env_->TruncateFile(SegmentPath(active_number_), active_file_->Size());
}

Status PageStoreImpl::RollSegment() {
  BRANCHDB_RETURN_IF_ERROR(SealActive());
  return StartSegment(next_segment_++);
}

uint32_t PageStoreImpl::NewRun(TimelineId timeline, Lsn start, Lsn base, uint32_t base_run) {
  Run r;
  r.exists = true;
  r.timeline = timeline;
  r.start = start;
  r.base = base;
  r.base_run = base_run;
  r.depth = base_run == kNoRun ? 0 : runs_[base_run].depth + 1;
  uint32_t id = static_cast<uint32_t>(runs_.size());
  runs_.push_back(std::move(r));
  run_by_start_[start] = id;
  // In start order: at the end, but for runs Open reads out of order.
  std::vector<uint32_t>& mine = timeline_runs_[timeline];
  auto later = mine.end();
  while (later != mine.begin() && runs_[*(later - 1)].start > start) --later;
  mine.insert(later, id);
  return id;
}

// Takes the runs GC dropped out of timeline_runs_: one pass over each list.
void PageStoreImpl::ForgetDroppedRuns(std::vector<TimelineId> timelines) {
  std::sort(timelines.begin(), timelines.end());
  timelines.erase(std::unique(timelines.begin(), timelines.end()), timelines.end());
  for (TimelineId t : timelines) {
    auto it = timeline_runs_.find(t);
    if (it == timeline_runs_.end()) continue;
    std::erase_if(it->second, [&](uint32_t r) {
      state_mu_.AssertHeld();  // the caller's
      return !runs_[r].exists;
    });
    if (it->second.empty()) timeline_runs_.erase(it);
  }
}

Status PageStoreImpl::ApplyRecord(const RecordMeta& meta, uint32_t segment, uint64_t offset,
                                  uint32_t meta_len, bool live, bool structural,
                                  bool index_versions) {
  const bool starts_run = meta.kind == RecordKind::kCreate || meta.kind == RecordKind::kReset;
  uint32_t run = kNoRun;
  if (structural && starts_run) {
    uint32_t base_run = kNoRun;
    if (meta.base != 0) {
      auto it = run_by_start_.find(meta.base_run_start);
      if (it == run_by_start_.end()) {
        return Status::Corruption("record " + std::to_string(meta.lsn) + ": base run missing");
      }
      base_run = it->second;
    }
    run = NewRun(meta.timeline, meta.lsn, meta.base, base_run);
  } else {
    auto it = run_by_start_.find(meta.run_start);
    if (it == run_by_start_.end()) {
      if (!live) return Status::OK();  // garbage of a run that no longer exists
      return Status::Corruption("record " + std::to_string(meta.lsn) + ": run missing");
    }
    run = it->second;
  }
  if (live) {
    runs_[run].entries.push_back(RunEntry{meta.lsn, meta.time_micros, true});
    ++live_records_;
    if (structural) {
      if (meta.kind == RecordKind::kCreate) {
        Timeline& t = timelines_[meta.timeline];
        t.info = TimelineInfo{meta.timeline, meta.lsn, meta.lsn, meta.base, meta.time_micros};
        t.run = run;
        t.dropped = false;
      } else {
        auto it = timelines_.find(meta.timeline);
        if (it == timelines_.end()) {
          return Status::Corruption("record " + std::to_string(meta.lsn) + ": unknown timeline");
        }
        it->second.info.head = meta.lsn;
        if (starts_run) it->second.run = run;
        if (meta.kind == RecordKind::kDrop) it->second.dropped = true;
        if (meta.kind == RecordKind::kCommit) {
          it->second.image_bytes += static_cast<uint64_t>(meta.ImageCount()) * kPageSize;
        }
      }
      if (meta.kind != RecordKind::kCommit) ++usage_epoch_;
    }
    RecordEntry rec;
    rec.lsn = meta.lsn;
    rec.time_micros = meta.time_micros;
    rec.offset = offset;
    rec.run = run;
    rec.segment = segment;
    rec.meta_len = meta_len;
    rec.db_size_pages = meta.db_size_pages;
    rec.payload_len = meta.payload_len;
    if (!records_.Append(rec)) {
      return Status::Corruption("record " + std::to_string(meta.lsn) + " is not above LSN " +
                                std::to_string(records_.at(records_.size() - 1).lsn));
    }
    if (meta.payload_len > 0) payload_bytes_[meta.timeline] += meta.payload_len;
  }
  if (!index_versions) {
    for (const PageEntry& e : meta.entries) index_.NoteOnDisk(e.pgno);
    return Status::OK();
  }
  IndexVersions(meta, run, segment, offset, meta_len);
  return Status::OK();
}

void PageStoreImpl::IndexVersions(const RecordMeta& meta, uint32_t run, uint32_t segment,
                                  uint64_t offset, uint32_t meta_len) const {
  uint64_t at = offset + kRecordHeaderSize + meta_len;  // the next image block's
  for (const PageEntry& e : meta.entries) {
    Version v;
    v.lsn = meta.lsn;
    v.run = run;
    v.segment = segment;
    v.offset = kZeroOffset;
    if (e.type == EntryType::kImage) {
      v.offset = at;
      at += ImageBlockBytes(meta, e);
    }
    index_.Add(e.pgno, v);
  }
}

}  // namespace branchdb::storage::internal
