// PageStoreImpl: Open and recovery (docs/storage-format.md, "Recovery").
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "base/coding.h"
#include "base/crc32c.h"
#include "storage/page_store_impl.h"
#include "storage/segment_reader.h"

namespace branchdb::storage {

Result<std::unique_ptr<PageStore>> PageStore::Open(const PageStoreOptions& options,
                                                   const std::string& dir) {
  auto store = std::make_unique<internal::PageStoreImpl>(options, dir);
  Status s = store->Recover();
  if (!s.ok()) return s.WithContext("open page store " + dir);
  return std::unique_ptr<PageStore>(std::move(store));
}

namespace internal {

namespace {

// The sealed segments `store` lists (number -> size), and those it
// describes (format 4) among them.
// A described segment counts as present even when the directory does not
// list it (its file could be fetched, from object storage, when first used:
// a read of it fails until then); `numbers` stays sorted.
void TableOf(const Manifest& store, SegmentTable<uint64_t>* covered,
             SegmentTable<const ManifestSegment*>* described, std::vector<uint64_t>* numbers) {
  covered->reserve(store.segments.size());
  described->reserve(store.segments.size());
  for (const ManifestSegment& seg : store.segments) {  // ascending
    covered->push_back(seg.number, seg.size);
    if (seg.described && seg.desc.version >= kFirstRecordIndexFormatVersion) {
      described->push_back(seg.number, &seg);
      auto at = std::lower_bound(numbers->begin(), numbers->end(), seg.number);
      if (at == numbers->end() || *at != seg.number) numbers->insert(at, seg.number);
    }
  }
}

}  // namespace

bool InRanges(const std::vector<std::pair<Lsn, Lsn>>& ranges, Lsn lsn) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), lsn,
                             [](Lsn l, const std::pair<Lsn, Lsn>& r) { return l < r.first; });
  if (it == ranges.begin()) return false;
  --it;
  return lsn >= it->first && lsn <= it->second;
}

PageStoreImpl::PageStoreImpl(const PageStoreOptions& options, std::string dir)
    : options_(options),
      env_(options.env != nullptr ? options.env : Env::Default()),
      dir_(std::move(dir)),
      path_cache_(options.cache != nullptr ? options.cache
                                           : Cache::Create(4 * options.index_cache_bytes, 0)),
      page_cache_(options.cache != nullptr ? options.cache : Cache::Create(options.cache_bytes),
                  options.cache_page_images),
      meta_cache_(options.cache != nullptr ? options.cache
                                           : Cache::Create(options.meta_cache_bytes, 0)),
      index_cache_(options.cache != nullptr ? options.cache
                                            : Cache::Create(options.index_cache_bytes, 0)),
      location_cache_(options.cache != nullptr ? options.cache
                                               : Cache::Create(options.index_cache_bytes / 8, 0)),
      record_cache_(options.cache != nullptr ? options.cache
                                             : Cache::Create(options.index_cache_bytes, 0)) {}

PageStoreImpl::~PageStoreImpl() {
  SealAtClose();
  CutZerosAtClose();
}

void PageStoreImpl::SealAtClose() {
  if (!opened_ || !options_.seal_on_close) return;
  MutexLock lock(mu_);  // nothing else runs: the store's last owner is closing it
  if (!active_file_ || !failed_.ok() || gc_running_ || syncing_) return;
  if (active_records_.empty() || active_version_ < kFirstRecordIndexFormatVersion) return;
  const Lsn appended = appended_lsn_;
  Status s = SealActive();  // syncs every record appended so far
  if (s.ok()) {
    MarkDurable(appended);
    s = WriteStoreManifest(EncodeStoreManifest(BuildManifestLocked()));
  }
  (void)s;  // the next Open reads what is on disk, whichever way this went
}

Status PageStoreImpl::ScanTail(uint64_t number, RandomAccessFile* file, uint64_t file_size,
                               uint64_t start, std::vector<Loaded>* out, uint64_t* valid_end) {
  std::string data;
  BRANCHDB_RETURN_IF_ERROR(ReadExactly(file, start, file_size - start, &data));
  size_t pos = 0;
  while (data.size() - pos >= kRecordHeaderSize) {
    uint32_t meta_len = coding::DecodeFixed32(data.data() + pos);
    uint32_t meta_crc = coding::DecodeFixed32(data.data() + pos + 4);
    if (meta_len == 0 || meta_len > kMaxMetaBytes ||
        meta_len > data.size() - pos - kRecordHeaderSize) {
      break;
    }
    std::string_view meta_bytes(data.data() + pos + kRecordHeaderSize, meta_len);
    if (crc32c::Value(meta_bytes) != meta_crc) break;
    Loaded rec;
    if (!DecodeMeta(meta_bytes, &rec.meta, MetaParts::kNoAnnotation).ok()) break;
    const uint64_t size = RecordSize(meta_len, rec.meta);
    if (size > data.size() - pos) break;
    bool images_ok = true;
    size_t at = pos + kRecordHeaderSize + meta_len;
    for (const PageEntry& e : rec.meta.entries) {
      if (e.type != EntryType::kImage) continue;
      const size_t n = ImageBlockBytes(rec.meta, e);
      images_ok = ImageBlockValid(std::string_view(data.data() + at, n), HasHoles(rec.meta));
      if (!images_ok) break;
      at += n;
    }
    if (images_ok && rec.meta.payload_len > 0) {
      std::string_view payload;
      images_ok = PayloadBlockValid(
          std::string_view(data.data() + at, kPayloadBlockHeader + rec.meta.payload_len), &payload);
    }
    if (!images_ok) break;
    rec.segment = static_cast<uint32_t>(number);
    rec.offset = start + pos;
    rec.meta_len = meta_len;
    out->push_back(std::move(rec));
    pos += size;
  }
  *valid_end = start + pos;
  return Status::OK();
}

Status PageStoreImpl::LoadSegment(uint64_t number, bool newest_log, bool* sealed, uint32_t* version,
                                  std::vector<Loaded>* out, std::vector<uint64_t>* tail_offsets,
                                  uint64_t* size) {
  const std::string path = SegmentPath(number);
  auto size_or = env_->GetFileSize(path);
  if (!size_or.ok()) return size_or.status();
  *size = *size_or;
  std::shared_ptr<RandomAccessFile> shared_file;
  SegmentHeader h;
  size_t header_len = 0;
  if (auto opened = open_headers_.find(number); opened != open_headers_.end()) {
    // DropSupersededSegments opened it and read its header: neither again.
    shared_file = opened->second.first;
    h = opened->second.second;
    header_len = kSegmentHeaderMinSize + 8 * h.supersedes.size();
  } else {  // a described newest segment at another size (CheckNewestDescribed)
    auto file_or = env_->NewRandomAccessFile(path);
    if (!file_or.ok()) return file_or.status();
    shared_file = std::move(*file_or);
    BRANCHDB_RETURN_IF_ERROR(ReadSegmentHeader(shared_file.get(), number, &h, &header_len));
  }
  RandomAccessFile* file = shared_file.get();
  if (h.number != number) {
    return Status::Corruption(SegmentFileName(number) + ": header names segment " +
                              std::to_string(h.number));
  }
  *version = h.version;
  // Only the newest log segment can have a torn tail, and it is sealed only
  // by an intact footer. Every other one was sealed: damage there is worked
  // around in memory, never by cutting the file.
  SealedRecords records;
  if (newest_log) {  // never a compacted segment (DropSupersededSegments)
    BRANCHDB_RETURN_IF_ERROR(
        ReadFooterEntries(file, header_len, *size, &records.entries, &records.damage,
                          MetaParts::kNoAnnotation));
    *sealed = records.damage.empty();
  } else {
    BRANCHDB_RETURN_IF_ERROR(
        ReadSealedRecords(file, number, header_len, *size, &records, MetaParts::kNoAnnotation));
    if (!records.damage.empty()) {
      damage_.push_back(SegmentFileName(number) + ": " + records.damage);
      damaged_segments_.insert(number);
    }
    *sealed = true;
  }
  if (*sealed) {
    // Format 3 with an intact record list: its versions stay on disk, in the
    // footer's page index, unless that index is damaged too.
    bool on_disk = false;
    if (h.version >= kFirstIndexedFormatVersion && records.damage.empty()) {
      BRANCHDB_RETURN_IF_ERROR(LoadSegmentIndex(number, shared_file, *size, &on_disk));
    }
    for (FooterEntry& e : records.entries) {
      out->push_back(Loaded{std::move(e.meta), static_cast<uint32_t>(number), e.offset,
                            e.meta_len, on_disk});
    }
    return Status::OK();
  }
  uint64_t valid_end = 0;
  const size_t first = out->size();
  BRANCHDB_RETURN_IF_ERROR(ScanTail(number, file, *size, header_len, out, &valid_end));
  for (size_t i = first; i < out->size(); ++i) tail_offsets->push_back((*out)[i].offset);
  if (valid_end < *size) {
    // A torn write at the end of the log: nothing past valid_end was acknowledged.
    BRANCHDB_RETURN_IF_ERROR(env_->TruncateFile(path, valid_end));
    *size = valid_end;
  }
  // Reads of the tail's records use the handle the scan read them with
  // (OpenTail opens the file once more, to append: the Env has no file that
  // does both).
  MutexLock lock(files_mu_);
  files_[static_cast<uint32_t>(number)] = std::move(shared_file);
  return Status::OK();
}

Status PageStoreImpl::LoadSegmentIndex(uint64_t number, std::shared_ptr<RandomAccessFile> file,
                                       uint64_t size, bool* on_disk) {
  auto idx = std::make_shared<SegmentIndex>();
  std::string damage;
  BRANCHDB_RETURN_IF_ERROR(ReadSegmentIndex(file.get(), number, size, idx.get(), &damage));
  *on_disk = damage.empty();
  if (!*on_disk) {
    damage_.push_back(SegmentFileName(number) + ": " + damage +
                      "; page versions rebuilt in memory from the footer's record list");
    damaged_segments_.insert(number);
    return Status::OK();
  }
  idx->file = file;
  {
    MutexLock lock(files_mu_);
    files_[static_cast<uint32_t>(number)] = std::move(file);
  }
  WriterLock state(state_mu_);  // nothing else runs yet: for the analysis
  InstallSegmentIndex(std::move(idx));
  return Status::OK();
}

Status PageStoreImpl::LoadIndexedSegment(uint64_t number, uint64_t size, bool* done) {
  *done = false;
  auto opened = open_headers_.find(number);  // DropSupersededSegments read its header
  if (opened == open_headers_.end()) return Status::OK();
  std::shared_ptr<RandomAccessFile> file = opened->second.first;
  const SegmentHeader& h = opened->second.second;
  if (h.number != number || h.version < kFirstRecordIndexFormatVersion) return Status::OK();
  // The trailer, the page index's tail, directory and filter are read from
  // one read of the file's last bytes (usually), the rest as it comes.
  TailBufferedFile buffered(file.get(), size);
  BRANCHDB_RETURN_IF_ERROR(buffered.Load());
  auto idx = std::make_shared<SegmentIndex>();
  std::string damage;
  BRANCHDB_RETURN_IF_ERROR(ReadSegmentIndex(&buffered, number, size, idx.get(), &damage));
  if (!damage.empty()) return Status::OK();  // LoadSegment reads it again and reports it
  auto ri = std::make_shared<SegmentRecordIndex>();
  // Tail and directory only: a block is read when a lookup needs it.
  BRANCHDB_RETURN_IF_ERROR(ReadRecordIndexSection(&buffered, *idx, ri.get(), nullptr, &damage));
  if (!damage.empty()) {
    damage_.push_back(SegmentFileName(number) + ": " + damage +
                      "; record list read from the footer instead");
    damaged_segments_.insert(number);
    return Status::OK();
  }
  idx->file = file;
  ri->number = number;
  ri->file = file;
  {
    MutexLock lock(files_mu_);
    files_[static_cast<uint32_t>(number)] = std::move(file);
  }
  {
    WriterLock state(state_mu_);  // nothing else runs yet: for the analysis
    InstallSegmentIndex(std::move(idx));
    InstallRecordIndex(std::move(ri));
    open_covered_.insert(number);  // its records' run entries stay on disk
  }
  *done = true;
  return Status::OK();
}

Status PageStoreImpl::Recover() {
  BRANCHDB_RETURN_IF_ERROR(LockDir());
  Manifest gcstate;
  std::optional<Manifest> store;
  std::vector<uint64_t> numbers;
  bool deleted = false;  // a file was deleted: the directory needs a sync
  const size_t damage_before = damage_.size();
  BRANCHDB_RETURN_IF_ERROR(ReadManifests(&gcstate, &store));
  const bool store_damaged = damage_.size() != damage_before;
  // MANIFEST serves when it builds on the GCSTATE found; a GC after it
  // (interrupted before MANIFEST was rewritten) makes it stale, and the
  // structure comes from GCSTATE and the footers, as before MANIFEST existed.
  const bool use_store = store.has_value() && store->gc_lsn == gcstate.gc_lsn;
  const Manifest& manifest = use_store ? *store : gcstate;
  // Version 4 knows every segment but those started after it: the directory
  // is not listed (its *.tmp files wait for the first GC).
  const bool unlisted = use_store && store->version >= kFirstUnlistedManifestVersion;
  if (unlisted) {
    BRANCHDB_RETURN_IF_ERROR(ProbeSegments(*store, &numbers));
    tmp_unchecked_ = true;
  } else {
    BRANCHDB_RETURN_IF_ERROR(ListDir(&numbers, &deleted));
  }
  SegmentTable<uint64_t> covered;  // sealed segments it lists: number -> size
  Described described;  // those it describes (version 3): not opened
  // A version-1 MANIFEST does not count payloads: its segments are read from
  // their footers once, and it is written anew.
  if (use_store && store->has_payloads) TableOf(*store, &covered, &described, &numbers);
  // Taken before any segment is dropped: a dropped segment's number is never reused.
  const uint64_t max_number = numbers.empty() ? 0 : numbers.back();
  const size_t found = numbers.size();
  BRANCHDB_RETURN_IF_ERROR(DropUnstartedSegment(described, &numbers, &deleted));
  // A dropped number above MANIFEST's is a gap the next Open's probe must
  // step over: MANIFEST is written (with the next number) before a segment
  // is started past it.
  bool manifest_current = !store_damaged && numbers.size() == found;
  uint64_t newest_log = 0;  // the one segment that may have a torn tail
  bool superseded_deleted = false;
  BRANCHDB_RETURN_IF_ERROR(DropSupersededSegments(
      described, unlisted, &numbers, &superseded_deleted, &newest_log));
  // Leftovers deleted: MANIFEST's lists of them are cleared.
  if (superseded_deleted) manifest_current = false;
  deleted = deleted || superseded_deleted;
  BRANCHDB_RETURN_IF_ERROR(CheckNewestDescribed(newest_log, &described));
  if (deleted) BRANCHDB_RETURN_IF_ERROR(env_->SyncDir(dir_));

  std::vector<Loaded> loaded;
  std::optional<TailSegment> tail;
  BRANCHDB_RETURN_IF_ERROR(LoadSegments(numbers, newest_log, covered, described, &loaded, &tail));
  // MANIFEST lists (and describes) every sealed segment as it is.
  // (Without one in use: when there is no sealed segment to list.)
  {
    // Nothing else runs yet, but keep the documented order: mu_, then state_mu_.
    MutexLock lock(mu_);
    WriterLock state(state_mu_);
    if (!ListsAsIs(use_store ? &*store : nullptr)) manifest_current = false;
    BRANCHDB_RETURN_IF_ERROR(Rebuild(manifest, std::move(loaded)));
  }
  // The segments Rebuild's lookups (the timelines' heads) loaded.
  BRANCHDB_RETURN_IF_ERROR(InstallLazySegments(/*loaded_only=*/true));
  if (saw_collected_) {
    // A record collected by the manifest but not yet compacted away brought
    // back all of its versions, garbage included. With every live record as
    // a root, the plan finds exactly the garbage again; the in-memory part is
    // dropped (on-disk indexes keep theirs until compaction: a garbage
    // version is never the newest visible one from a live state).
    GcPlan plan;
    BRANCHDB_RETURN_IF_ERROR(PlanRetained({}, &plan));
    WriterLock state(state_mu_);
    ApplyRemovals(plan);
  }
  // Above every number found (a dropped one's too) and every number the
  // manifest can name (it was written with the next number to use).
  next_segment_ = std::max(max_number + 1, manifest.next_segment);
  BRANCHDB_RETURN_IF_ERROR(OpenTail(std::move(tail), manifest_current));
  opened_ = true;
  return Status::OK();
}

Status PageStoreImpl::OpenTail(std::optional<TailSegment> tail, bool manifest_current) {
  if (tail) {
    auto file = env_->NewWritableFile(SegmentPath(tail->number), Env::OpenMode::kAppend);
    if (!file.ok()) return file.status();
    active_file_ = std::move(*file);
    // What recovery read of the tail may be in the OS's cache only (a killed
    // process wrote it, nothing synced it): make it durable before anything
    // can be acknowledged on top of it (WaitDurable counts it as durable).
    BRANCHDB_RETURN_IF_ERROR(SyncError(active_file_->Sync()));
    active_number_ = tail->number;
    active_version_ = tail->version;
    for (uint64_t offset : tail->offsets) active_records_.Add(offset);
    appended_end_ = active_file_->Size();
    WriterLock state(state_mu_);
    durable_segment_ = active_number_;
    durable_bytes_ = appended_end_;
  }
  // An old store, a stale or damaged MANIFEST, or a crash between a seal and
  // its manifest: write it now, so that the next Open reads no footer.
  // After the tail's sync (MANIFEST counts its records), before a new
  // segment is started (its next_segment is that segment's number, which the
  // next Open's probe reaches whatever gaps lie below it).
  if (!manifest_current) {
    BRANCHDB_RETURN_IF_ERROR(WriteStoreManifest(EncodeStoreManifest(BuildManifest())));
  }
  if (!tail) BRANCHDB_RETURN_IF_ERROR(StartSegment(next_segment_++));
  return Status::OK();
}

bool PageStoreImpl::ListsAsIs(const Manifest* store) const {
  if (store != nullptr && store->version < kStoreManifestVersion) return false;
  const std::vector<ManifestSegment> none;
  const std::vector<ManifestSegment>& want = store != nullptr ? store->segments : none;
  size_t i = 0;
  ManifestSegment m;  // compared one by one: no table built
  auto lazy = lazy_.begin();
  for (const auto& [number, seg] : segments_) {
    while (lazy != lazy_.end() && lazy->first < number) ++lazy;
    if (lazy != lazy_.end() && lazy->first == number && seg.sealed &&
        damaged_segments_.count(number) == 0) {
      // A lazy one (most of them): ListedSegment's entry, without building it.
      if (i == want.size()) return false;
      const ManifestSegment& w = want[i++];
      if (w.number != number || w.size != seg.size || !w.described ||
          w.supersedes != seg.supersedes || w.desc != lazy->second->desc) {
        return false;
      }
      continue;
    }
    if (!ListedSegment(number, seg, &m)) continue;
    if (i == want.size() || !(want[i++] == m)) return false;
  }
  const std::vector<uint64_t> damaged = DamagedSegments();
  return i == want.size() && (store != nullptr ? damaged == store->damaged : damaged.empty());
}

Status PageStoreImpl::CheckNewestDescribed(uint64_t newest_log, Described* described) {
  // Trusted sealed only at MANIFEST's size (a seal at a clean close): one
  // stat. At any other size it is a tail to scan.
  auto d = described->find(newest_log);
  if (d == described->end()) return Status::OK();
  auto size = env_->GetFileSize(SegmentPath(newest_log));
  if (size.status().IsNotFound()) return Status::OK();  // not here: fetched when used
  if (!size.ok()) return size.status();
  if (*size != d->second->size) described->erase(d);
  return Status::OK();
}

Status PageStoreImpl::LockDir() {
  if (!env_->FileExists(dir_)) {
    if (!options_.create_if_missing) {
      return Status::NotFound("page store directory does not exist", "store_not_found");
    }
  }
  BRANCHDB_RETURN_IF_ERROR(env_->CreateDirs(dir_));
  auto lock = env_->LockFile(JoinPath(dir_, "LOCK"));
  if (!lock.ok()) return lock.status();
  lock_ = std::move(*lock);
  return Status::OK();
}

Status PageStoreImpl::ReadManifests(Manifest* gcstate, std::optional<Manifest>* store) {
  auto gc = env_->ReadFileToString(JoinPath(dir_, std::string(kManifestName)));
  if (gc.ok()) {
    BRANCHDB_RETURN_IF_ERROR(DecodeManifest(*gc, gcstate));
  } else if (!gc.status().IsNotFound()) {
    return gc.status();
  }
  auto data = env_->ReadFileToString(JoinPath(dir_, std::string(kStoreManifestName)));
  if (data.status().IsNotFound()) return Status::OK();
  if (!data.ok()) return data.status();
  Manifest m;
  if (Status s = DecodeStoreManifest(*data, &m); !s.ok()) {
    damage_.push_back(s.message() +
                      "; the store's structure read from the segments' footers instead, "
                      "MANIFEST rewritten");
  } else {
    *store = std::move(m);
  }
  return Status::OK();
}

Status PageStoreImpl::ListDir(std::vector<uint64_t>* numbers, bool* deleted) {
  auto children = env_->GetChildren(dir_);
  if (!children.ok()) return children.status();
  for (const std::string& name : *children) {
    uint64_t n = 0;
    if (ParseSegmentFileName(name, &n)) {
      numbers->push_back(n);
    } else if (name.size() > 4 && name.substr(name.size() - 4) == ".tmp") {
      BRANCHDB_RETURN_IF_ERROR(env_->DeleteFile(JoinPath(dir_, name)));
      *deleted = true;
    }
  }
  std::sort(numbers->begin(), numbers->end());
  return Status::OK();
}

Status PageStoreImpl::ProbeSegments(const Manifest& store, std::vector<uint64_t>* numbers) {
  numbers->reserve(store.segments.size() + store.damaged.size() + 2);
  for (const ManifestSegment& seg : store.segments) numbers->push_back(seg.number);
  numbers->insert(numbers->end(), store.damaged.begin(), store.damaged.end());
  std::sort(numbers->begin(), numbers->end());
  uint64_t from = numbers->empty() ? 1 : numbers->back() + 1;
  // The unsealed tail it knew (compaction's outputs may lie above it). No
  // segment it needs lies between the highest it lists and the tail.
  if (store.tail_segment >= from) {
    from = store.tail_segment;
  } else if (store.tail_segment != 0 &&
             !std::binary_search(numbers->begin(), numbers->end(), store.tail_segment)) {
    auto size = env_->GetFileSize(SegmentPath(store.tail_segment));
    if (size.ok()) {
      numbers->insert(std::lower_bound(numbers->begin(), numbers->end(), store.tail_segment),
                      store.tail_segment);
    } else if (!size.status().IsNotFound()) {
      return size.status();
    }
  }
  // Past the segments it lists: those below its next_segment (the tail it
  // knew, or a number a failed Open dropped), then whatever was started
  // after it was written: contiguous numbers (an Open that leaves a gap
  // above them writes MANIFEST first; see Recover).
  for (uint64_t n = from;; ++n) {
    auto size = env_->GetFileSize(SegmentPath(n));
    if (size.ok()) {
      numbers->push_back(n);
    } else if (!size.status().IsNotFound()) {
      return size.status();
    } else if (n > store.next_segment) {
      return Status::OK();
    }
  }
}

Status PageStoreImpl::DropUnstartedSegment(const Described& described,
                                           std::vector<uint64_t>* numbers, bool* deleted) {
  if (numbers->empty() || described.count(numbers->back()) != 0) return Status::OK();
  const std::string path = SegmentPath(numbers->back());
  auto size = env_->GetFileSize(path);
  if (!size.ok()) return size.status();
  if (*size > kSegmentHeaderMinSize) return Status::OK();
  auto file = env_->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  SegmentHeader h;
  size_t len = 0;
  Status header = ReadSegmentHeader(file->get(), numbers->back(), &h, &len);
  if (header.ok()) {  // a segment started, nothing written to it: read as any other
    open_headers_[numbers->back()] = {std::shared_ptr<RandomAccessFile>(std::move(*file)), h};
  }
  if (!header.IsCorruption()) return header;
  BRANCHDB_RETURN_IF_ERROR(env_->DeleteFile(path));
  numbers->pop_back();
  *deleted = true;
  return Status::OK();
}

Status PageStoreImpl::DropSupersededSegments(const Described& described,
                                             bool listed_supersedes,
                                             std::vector<uint64_t>* numbers, bool* deleted,
                                             uint64_t* newest_log) {
  std::vector<uint64_t> superseded;
  std::vector<uint64_t> leftovers;  // MANIFEST's: may exist, listed or not
  *newest_log = 0;
  // A described compacted segment is not opened. MANIFEST version 4 lists the
  // segments it supersedes whose delete failed after the compaction (loading
  // such a leftover too would count its records twice). With version 3, its
  // header is read instead, when a segment MANIFEST does not describe lies
  // below it (the directory listing found such a leftover). Normally the
  // only undescribed segment is the newest, above every compacted one.
  // Both lists ascend: one walk of each (no search per segment).
  uint64_t lowest_undescribed = UINT64_MAX;
  auto d = described.begin();
  for (uint64_t n : *numbers) {
    while (d != described.end() && d->first < n) ++d;
    if (d == described.end() || d->first != n) {
      lowest_undescribed = n;
      break;
    }
  }
  d = described.begin();
  for (uint64_t n : *numbers) {
    while (d != described.end() && d->first < n) ++d;
    if (d != described.end() && d->first == n) {
      const bool compacted = (d->second->desc.flags & kSegmentFlagCompacted) != 0;
      if (!compacted) *newest_log = n;  // numbers ascend
      if (listed_supersedes) {
        leftovers.insert(leftovers.end(), d->second->supersedes.begin(),
                         d->second->supersedes.end());
      } else if (compacted && n > lowest_undescribed) {
        auto file = env_->NewRandomAccessFile(SegmentPath(n));
        if (!file.ok()) return file.status();
        SegmentHeader h;
        size_t len = 0;
        BRANCHDB_RETURN_IF_ERROR(ReadSegmentHeader(file->get(), n, &h, &len));
        superseded.insert(superseded.end(), h.supersedes.begin(), h.supersedes.end());
      }
      continue;
    }
    if (open_headers_.count(n) == 0) {  // DropUnstartedSegment may have read it
      auto file = env_->NewRandomAccessFile(SegmentPath(n));
      if (!file.ok()) return file.status();
      SegmentHeader h;
      size_t len = 0;
      BRANCHDB_RETURN_IF_ERROR(ReadSegmentHeader(file->get(), n, &h, &len));
      open_headers_[n] = {std::shared_ptr<RandomAccessFile>(std::move(*file)), h};
    }
    const SegmentHeader& h = open_headers_[n].second;
    if (h.flags & kSegmentFlagCompacted) {
      superseded.insert(superseded.end(), h.supersedes.begin(), h.supersedes.end());
    } else {
      *newest_log = n;  // numbers ascend
    }
  }
  if (superseded.empty() && leftovers.empty()) return Status::OK();  // the usual case
  std::vector<uint64_t> live_numbers;
  for (uint64_t n : *numbers) {
    if (std::find(superseded.begin(), superseded.end(), n) != superseded.end() ||
        std::find(leftovers.begin(), leftovers.end(), n) != leftovers.end()) {
      BRANCHDB_RETURN_IF_ERROR(DeleteIfExists(SegmentPath(n)));
      *deleted = true;
    } else {
      live_numbers.push_back(n);
    }
  }
  // A leftover MANIFEST lists need not be in `numbers` (not listed, not probed).
  for (uint64_t n : leftovers) {
    if (std::find(numbers->begin(), numbers->end(), n) != numbers->end()) continue;
    BRANCHDB_RETURN_IF_ERROR(DeleteIfExists(SegmentPath(n)));
    *deleted = true;
  }
  *numbers = std::move(live_numbers);
  return Status::OK();
}

Status PageStoreImpl::DeleteIfExists(const std::string& path) {
  Status s = env_->DeleteFile(path);
  return s.IsNotFound() ? Status::OK() : s;
}

Status PageStoreImpl::LoadSegments(const std::vector<uint64_t>& numbers, uint64_t newest_log,
                                   const SegmentTable<uint64_t>& covered,
                                   const Described& described, std::vector<Loaded>* loaded,
                                   std::optional<TailSegment>* tail) {
  {
    // The described ones first, ascending (each map grows at its end).
    std::vector<const ManifestSegment*> lazy;
    lazy.reserve(numbers.size());
    auto d = described.begin();  // both ascend: one walk of each
    for (uint64_t n : numbers) {
      while (d != described.end() && d->first < n) ++d;
      if (d != described.end() && d->first == n) lazy.push_back(d->second);
    }
    WriterLock state(state_mu_);  // nothing else runs yet: for the analysis
    AddLazySegments(lazy);
  }
  auto d = described.begin();
  for (uint64_t n : numbers) {
    while (d != described.end() && d->first < n) ++d;
    if (d != described.end() && d->first == n) continue;
    auto header = open_headers_.find(n);  // DropSupersededSegments read every other header
    const uint32_t flags = header == open_headers_.end() ? 0 : header->second.second.flags;
    const uint32_t header_version =
        header == open_headers_.end() ? kFormatVersion : header->second.second.version;
    // The newest log segment is sealed only by an intact footer (LoadSegment),
    // or when MANIFEST lists it with its size (sealed at a clean close:
    // MANIFEST was written after the seal's fsync, and a sealed segment is
    // never appended to).
    if (auto it = covered.find(n); it != covered.end()) {
      auto size = env_->GetFileSize(SegmentPath(n));
      if (!size.ok()) return size.status();
      bool done = false;
      if (*size == it->second) {
        BRANCHDB_RETURN_IF_ERROR(LoadIndexedSegment(n, *size, &done));
      }
      if (done) {
        WriterLock state(state_mu_);  // nothing else runs yet: for the analysis
        segments_[n] = Segment{*size, true, flags, header_version};
        continue;
      }
    }
    bool sealed = false;
    uint32_t version = 0;
    uint64_t size = 0;
    std::vector<uint64_t> offsets;
    BRANCHDB_RETURN_IF_ERROR(
        LoadSegment(n, n == newest_log, &sealed, &version, loaded, &offsets, &size));
    if (!sealed) *tail = TailSegment{n, version, std::move(offsets)};
    WriterLock state(state_mu_);  // nothing else runs yet: for the analysis
    segments_[n] = Segment{size, sealed, flags, version};
  }
  open_headers_.clear();  // the files LoadIndexedSegment kept are in files_
  WriterLock state(state_mu_);
  if (!lazy_.empty()) {
    RebuildSealedView();
    RebuildRecordView();
    lazy_pending_.store(true, std::memory_order_release);
  }
  return Status::OK();
}

Status PageStoreImpl::Rebuild(const Manifest& manifest, std::vector<Loaded> records) {
  gc_lsn_ = manifest.gc_lsn;
  BRANCHDB_RETURN_IF_ERROR(RestoreManifestRuns(manifest));
  // The live records of the segments read through their record index are
  // in MANIFEST's counts: their runs' lists are completed on first need.
  open_last_lsn_ = manifest.last_lsn;
  open_collected_ = manifest.collected;
  if (manifest.has_payloads) {
    for (const auto& [t, bytes] : manifest.payloads) payload_bytes_[t] += bytes;
  }
  // Pages with versions in the segments read through their record index
  // (their metas, which list them, are not read).
  for (const auto& [first, last] : manifest.known_pages) {
    for (uint64_t p = first; p <= last; ++p) index_.NoteOnDisk(static_cast<PageNo>(p));
  }
  Lsn max_lsn = manifest.last_lsn;
  TimelineId max_timeline = manifest.last_timeline;
  int64_t max_time = manifest.last_time;
  bool saw_collected = false;
  BRANCHDB_RETURN_IF_ERROR(ApplyLoaded(manifest, std::move(records), &max_lsn, &max_timeline,
                                       &max_time, &saw_collected));
  for (Run& run : runs_) run.entries.SortIfNeeded();
  BRANCHDB_RETURN_IF_ERROR(CountLiveRecords(manifest));
  saw_collected_ = saw_collected;  // Recover drops the garbage it brought back
  durable_lsn_ = max_lsn;
  appended_lsn_ = max_lsn;
  next_lsn_ = max_lsn + 1;
  next_timeline_ = max_timeline + 1;
  last_time_ = max_time;
  for (const auto& [id, t] : timelines_) {
    if (t.dropped) continue;
    RecordEntry head;
    bool found = false;
    BRANCHDB_RETURN_IF_ERROR(FindRecordLocked(t.info.head, nullptr, &head, &found));
    if (!found) {
      return Status::Corruption("timeline " + std::to_string(id) + ": head record missing");
    }
    pending_[id] = PendingTimeline{t.info.head, runs_[t.run].start, head.db_size_pages, false};
  }
  return Status::OK();
}

Status PageStoreImpl::RestoreManifestRuns(const Manifest& manifest) {
  for (const ManifestRun& mr : manifest.runs) {
    uint32_t base_run = kNoRun;
    if (mr.base != 0) {
      auto it = run_by_start_.find(mr.base_run_start);
      if (it == run_by_start_.end()) return Status::Corruption("GCSTATE: base run missing");
      base_run = it->second;
    }
    uint32_t r = NewRun(mr.timeline, mr.start, mr.base, base_run);
    for (const auto& [lsn, time] : mr.markers) runs_[r].entries.push_back(RunEntry{lsn, time, false});
  }
  for (const ManifestTimeline& mt : manifest.timelines) {
    auto it = run_by_start_.find(mt.run_start);
    if (it == run_by_start_.end()) return Status::Corruption("GCSTATE: timeline run missing");
    Timeline& t = timelines_[mt.id];
    t.info = TimelineInfo{mt.id, mt.head, mt.created_lsn, mt.base, mt.created_micros};
    t.run = it->second;
  }
  return Status::OK();
}

Status PageStoreImpl::ApplyLoaded(const Manifest& manifest, std::vector<Loaded> records,
                                  Lsn* max_lsn, TimelineId* max_timeline, int64_t* max_time,
                                  bool* saw_collected) {
  std::sort(records.begin(), records.end(),
            [](const Loaded& a, const Loaded& b) { return a.meta.lsn < b.meta.lsn; });
  for (size_t i = 0; i < records.size(); ++i) {
    const Loaded& rec = records[i];
    const Lsn lsn = rec.meta.lsn;
    if (i > 0 && records[i - 1].meta.lsn == lsn) {
      return Status::Corruption("LSN " + std::to_string(lsn) + " appears twice in the log");
    }
    bool collected = (rec.meta.flags & kRecordFlagCollected) ||
                     (lsn <= manifest.last_lsn && InRanges(manifest.collected, lsn));
    if (collected && !(rec.meta.flags & kRecordFlagCollected)) *saw_collected = true;
    Status s = ApplyRecord(rec.meta, rec.segment, rec.offset, rec.meta_len, !collected,
                           !collected && lsn > manifest.last_lsn, !rec.versions_on_disk);
    if (!s.ok()) return s;
    if (manifest.has_payloads && !collected && lsn <= manifest.last_lsn &&
        rec.meta.payload_len > 0) {
      payload_bytes_[rec.meta.timeline] -= rec.meta.payload_len;  // MANIFEST counted it
    }
    *max_lsn = std::max(*max_lsn, lsn);
    *max_timeline = std::max(*max_timeline, rec.meta.timeline);
    *max_time = std::max(*max_time, rec.meta.time_micros);
  }
  return Status::OK();
}

Status PageStoreImpl::CountLiveRecords(const Manifest& manifest) {
  bool on_disk = false;
  for (const ManifestRun& mr : manifest.runs) {
    Run& run = runs_[run_by_start_.at(mr.start)];
    uint64_t live = 0;
    for (const RunEntry& e : run.entries) live += (e.live && e.lsn <= manifest.last_lsn) ? 1 : 0;
    if (live > mr.live_records || (live != mr.live_records && open_covered_.empty())) {
      return Status::Corruption("run " + std::to_string(mr.start) + " has " +
                                std::to_string(live) + " records on disk, GCSTATE says " +
                                std::to_string(mr.live_records));
    }
    run.on_disk = mr.live_records - live;
    live_records_ += run.on_disk;
    on_disk = on_disk || run.on_disk > 0;
  }
  runs_on_disk_.store(on_disk, std::memory_order_release);
  return Status::OK();
}

}  // namespace internal
}  // namespace branchdb::storage
