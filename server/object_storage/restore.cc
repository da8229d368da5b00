// See restore.h.
#include "server/object_storage/restore.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/ledger.h"
#include "objstore/sigv4.h"
#include "server/config.h"
#include "server/http/metrics.h"
#include "server/object_storage/bucket_log.h"
#include "server/object_storage/catalog_backup.h"
#include "server/object_storage/segment_uploader.h"
#include "server/object_storage/snapshot_db.h"
#include "storage/log_format.h"
#include "storage/page_store.h"

namespace branchdb::server {
namespace {

using Objects = Listing;  // rest of key -> object

namespace sf = storage::internal;  // segment headers and footers (docs/storage-format.md)

// The LSNs of the records a sealed segment's footer lists (ascending in a
// segment as written), and whether a compaction wrote it. False when its
// bytes do not read as a sealed segment.
bool SegmentRecords(std::string_view data, bool* compacted, std::vector<storage::Lsn>* lsns) {
  sf::SegmentHeader h;
  size_t len = 0;
  sf::Trailer t;
  if (data.size() < sf::kTrailerSize || !sf::DecodeSegmentHeader(data, &h, &len).ok() ||
      !sf::DecodeTrailer(data.substr(data.size() - sf::kTrailerSize), &t) ||
      t.footer_offset > data.size() || t.footer_len > data.size() - t.footer_offset) {
    return false;
  }
  std::vector<sf::FooterEntry> entries;
  if (!sf::DecodeFooter(data.substr(t.footer_offset, t.footer_len), t.footer_crc, &entries,
                        sf::MetaParts::kNoAnnotation)
           .ok()) {
    return false;
  }
  *compacted = (h.flags & sf::kSegmentFlagCompacted) != 0;
  lsns->clear();
  for (const sf::FooterEntry& e : entries) lsns->push_back(e.meta.lsn);
  return true;
}

Status RemoveTree(Env* env, const std::string& path) {
  if (!env->FileExists(path)) return Status::OK();
  auto children = env->GetChildren(path);
  if (!children.ok()) return env->DeleteFile(path);  // a file
  for (const std::string& name : *children) {
    BRANCHDB_RETURN_IF_ERROR(RemoveTree(env, JoinPath(path, name)));
  }
  return env->DeleteDir(path);
}

Status WriteSynced(Env* env, const std::string& path, std::string_view data) {
  auto file = env->NewWritableFile(path, Env::OpenMode::kTruncate);
  if (!file.ok()) return file.status();
  BRANCHDB_RETURN_IF_ERROR((*file)->Append(data));
  BRANCHDB_RETURN_IF_ERROR((*file)->Sync());
  return (*file)->Close();
}

// True when etag is what S3 gives data: its MD5, or the multipart form (the
// part size taken from the client's options, else from the part count).
bool ETagMatches(std::string_view data, const std::string& etag, objstore::S3Options options) {
  const size_t dash = etag.find('-');
  if (dash == std::string::npos) return objstore::Md5Hex(data) == etag;
  options.multipart_threshold_bytes = 0;
  if (objstore::ExpectedETag(data, options) == etag) return true;
  const uint64_t parts = std::strtoull(etag.c_str() + dash + 1, nullptr, 10);
  if (parts == 0) return false;
  constexpr uint64_t kMiB = 1 << 20;
  const uint64_t per_part = (data.size() + parts - 1) / parts;
  options.part_bytes = (per_part + kMiB - 1) / kMiB * kMiB;
  return objstore::ExpectedETag(data, options) == etag;
}

class Restorer {
 public:
  Restorer(const RestoreOptions& options, objstore::S3Client& client)
      : o_(options), client_(client), env_(options.env) {}

  // Downloads key and checks it against its listing (size, ETag).
  Result<std::string> Download(const objstore::ObjectInfo& info) {
    auto data = client_.Get(info.key);
    if (!data.ok()) return data.status();
    BRANCHDB_RETURN_IF_ERROR(Verify(info, *data));
    return data;
  }

  Status Verify(const objstore::ObjectInfo& info, std::string_view data) {
    if (data.size() != info.size || !ETagMatches(data, info.etag, o_.client_options)) {
      return Status::Corruption("downloaded " + info.key + " does not match its listing (" +
                                std::to_string(data.size()) + " bytes; listed " +
                                std::to_string(info.size) + ", ETag " + info.etag + ")");
    }
    return Status::OK();
  }

  // The sealed segments into dir; *newest = the highest number (-1: none);
  // *uploaded records them as the uploader does (UploadRecord). A
  // compaction's output every segment of whose `supersedes` list the bucket
  // holds is skipped after a read of its header (FetchSealed): its records
  // are all in those (a compaction copies records of the segments it
  // supersedes only, and one of those that is an output is skipped or kept
  // by the same rule), and beside them it would not open without the
  // store's GCSTATE. Not recorded either: it is not part of the restored
  // store.
  // Footers are not decoded here (the staged store's Open decodes each one):
  // only when an output is kept does DropRedundantOutputs read them.
  Status FetchSegments(const std::string& id, const BucketLog& log, const std::string& dir,
                       int64_t* newest, UploadRecord* uploaded) {
    *newest = -1;
    for (const auto& [name, piece] : log.sealed) {
      *newest = std::max(*newest, ParseSegmentNumber(name));
      bool output = false;
      auto data = FetchSealed(log, piece, &output);
      if (!data.ok()) return data.status();
      if (!*data) {
        ++stats_.outputs_skipped;
        o_.logger->info("event=s3_restore_output_dropped project_id={} segment={} by=header", id,
                        name);
        continue;
      }
      BRANCHDB_RETURN_IF_ERROR(WriteSynced(env_, JoinPath(dir, name), **data));
      staged_.push_back(name);
      output_kept_ = output_kept_ || output;
      uploaded->sealed[name] = {piece.info.size, piece.info.etag, piece.epoch};
      ++stats_.segments;
      stats_.bytes += (*data)->size();
    }
    return Status::OK();
  }

  // Sealed segment `piece`, downloaded and verified; nullopt for an output
  // whose superseded segments are all in log. Its first kHeadProbe bytes
  // come first (a ranged GET; the whole of a segment up to twice that size,
  // in one request as before), then the rest: a skipped output costs at
  // most that read, a larger segment as written one request more. *output:
  // its header says a compaction wrote it.
  Result<std::optional<std::string>> FetchSealed(const BucketLog& log, const LogPiece& piece,
                                                 bool* output) {
    constexpr uint64_t kHeadProbe = 1 << 20;
    const uint64_t first = piece.info.size <= 2 * kHeadProbe ? piece.info.size : kHeadProbe;
    auto data = client_.GetRange(piece.info.key, 0, first);
    if (!data.ok()) return data.status();
    sf::SegmentHeader h;
    size_t len = 0;
    // A header longer than the probe (an output of thousands of segments):
    // the whole object is read, and judged by its records (DropRedundantOutputs).
    const bool probed = sf::DecodeSegmentHeader(*data, &h, &len).ok();
    if (probed &&
        (h.flags & sf::kSegmentFlagCompacted) != 0 && !h.supersedes.empty() &&
        std::all_of(h.supersedes.begin(), h.supersedes.end(),
                    [&log](uint64_t n) { return log.sealed.count(SegmentName(n)) != 0; })) {
      return std::optional<std::string>();
    }
    if (data->size() < piece.info.size) {
      auto rest = client_.GetRange(piece.info.key, data->size(), piece.info.size - data->size());
      if (!rest.ok()) return rest.status();
      *data += *rest;
    }
    BRANCHDB_RETURN_IF_ERROR(Verify(piece.info, *data));
    *output = (probed || sf::DecodeSegmentHeader(*data, &h, &len).ok()) &&
              (h.flags & sf::kSegmentFlagCompacted) != 0;
    return std::optional<std::string>(std::move(*data));
  }

  // When the bucket's highest-numbered sealed segment was skipped or
  // dropped and no tail lies above it, an empty file of its name: the
  // store's Open takes it for a segment never started (a crash's left-over),
  // deletes it and never uses its number (docs/storage-format.md, "Recovery
  // (Open)"). Else the restored store would start its next segment under
  // that number, and in the bucket its tail chunks would lie below the
  // skipped output's sealed copy, which hides them from the next restore
  // (BucketLog::TailSegment).
  Status ReserveNumber(int64_t newest, const std::string& dir) {
    if (newest < 0 || !point_.tail_segment.empty()) return Status::OK();
    const std::string path = JoinPath(dir, SegmentName(static_cast<uint64_t>(newest)));
    if (env_->FileExists(path)) return Status::OK();
    return WriteSynced(env_, path, "");
  }

  // Notes the LSNs of sealed segment `name`: a segment as written holds
  // every record between its first and last (LSNs ascend through the log).
  void NoteRecords(const std::string& name, std::string_view data) {
    bool compacted = false;
    std::vector<storage::Lsn> lsns;
    if (!SegmentRecords(data, &compacted, &lsns)) return;  // kept (the store judges it)
    if (compacted) {
      outputs_[name] = std::move(lsns);
    } else if (!lsns.empty()) {
      written_.emplace_back(lsns.front(), lsns.back());
    }
  }

  // Deletes from dir (and from *uploaded) the compactions' outputs that
  // FetchSealed kept (a segment they supersede is not in the bucket) whose
  // every record is in a segment as written that the bucket holds: those
  // supersede nothing a restore needs, and with the originals they would
  // not open without the store's GCSTATE (docs/object-storage.md,
  // "Compaction's outputs": an output of an output an older build left out
  // of the bucket).
  // Without a kept output (the usual case: this build's outputs are skipped
  // by their header) it reads nothing.
  Status DropRedundantOutputs(const std::string& id, const std::string& dir,
                              UploadRecord* uploaded) {
    if (!output_kept_) return Status::OK();
    for (const std::string& name : staged_) {
      auto data = env_->ReadFileToString(JoinPath(dir, name));
      if (!data.ok()) return data.status();
      NoteRecords(name, *data);
    }
    std::sort(written_.begin(), written_.end());
    auto in_written = [this](storage::Lsn lsn) {
      auto it = std::upper_bound(written_.begin(), written_.end(),
                                 std::make_pair(lsn, UINT64_MAX));
      return it != written_.begin() && std::prev(it)->second >= lsn;
    };
    for (const auto& [name, lsns] : outputs_) {
      if (!std::all_of(lsns.begin(), lsns.end(), in_written)) continue;
      BRANCHDB_RETURN_IF_ERROR(env_->DeleteFile(JoinPath(dir, name)));
      uploaded->sealed.erase(name);
      o_.logger->info("event=s3_restore_output_dropped project_id={} segment={} by=records", id,
                      name);
    }
    return Status::OK();
  }

  // The unsealed tail (BucketLog::TailSegment: the highest-numbered segment
  // with chunks, if it is above every sealed segment in the bucket; chunks of
  // a segment whose sealed copy is there are left-overs, the sealed copy
  // holds their bytes; segment numbers have gaps, so the tail need not be the
  // next number; the uploader puts a tail up only once every sealed segment
  // below it is in the bucket). Read from its chunks as the fences allow
  // them: contiguous from offset 0, up to the first gap, a chunk cut at its
  // epoch's fence. Where the listing's run ends, the next chunk's key is
  // asked for directly (NextChunk): a listing may lag behind a PUT that was
  // acknowledged, a read of the key does not.
  Status FetchTail(const std::string& id, const BucketLog& log,
                   const std::map<int64_t, FencePoint>& fences, const std::string& dir) {
    const std::string tail = log.TailSegment();
    if (tail.empty()) return Status::OK();
    std::string bytes;
    int64_t epoch = 0;
    for (const LogPiece& piece : log.chunks.at(tail)) {
      auto data = Download(piece.info);
      if (!data.ok()) return data.status();
      bytes.append(*data, 0, piece.bytes);  // beyond its fence: never read
      chunk_starts_.push_back(piece.offset);
      epoch = piece.epoch;
    }
    // Only an epoch that no fence follows may have written past the run.
    while (!bytes.empty() && fences.upper_bound(epoch) == fences.end()) {
      auto next = NextChunk(id, tail, bytes.size(), epoch);
      if (!next.ok()) return next.status();
      if (!*next) break;
      o_.logger->warn("event=s3_restore_chunk_unlisted project_id={} segment={} offset={}", id,
                      tail, bytes.size());
      chunk_starts_.push_back(bytes.size());
      bytes += **next;
    }
    if (bytes.empty()) return Status::OK();
    BRANCHDB_RETURN_IF_ERROR(WriteSynced(env_, JoinPath(dir, tail), bytes));
    point_.tail_segment = tail;
    point_.tail_offset = bytes.size();
    stats_.bytes += bytes.size();
    stats_.tail_bytes += bytes.size();
    return Status::OK();
  }

  // The tail chunk of segment at offset written by epoch, when the bucket
  // has one (read by its key, not from a listing); nullopt when not.
  Result<std::optional<std::string>> NextChunk(const std::string& id, const std::string& segment,
                                               uint64_t offset, int64_t epoch) {
    objstore::ObjectInfo info;
    info.key = TailChunkKey(o_.prefix, id, segment, offset, epoch);
    auto head = client_.Head(info.key);
    if (head.status().IsNotFound()) return std::optional<std::string>();
    if (!head.ok()) return head.status();
    if (head->size == 0) return std::optional<std::string>();
    info.size = head->size;
    info.etag = head->etag;
    auto data = Download(info);
    if (!data.ok()) return data.status();
    return std::optional<std::string>(std::move(*data));
  }

  // Opens the staged store once: its recovery reads what the restored log
  // holds (a tail whose last chunk ends within a record keeps its whole
  // records only) and writes its MANIFEST from the directory's listing, so
  // that every file the restore put there is named. Its durable end is the
  // uploader's tail line: the LSN of its last record (all in the bucket),
  // and the offset from which the bucket's chunks go on. That is the end of
  // the restored run when the store kept all of it; when it cut a torn
  // record, the start of the chunk that holds the cut (that chunk is written
  // again, from there, with the store's bytes: a chunk at the cut would
  // never be read behind the longer run); for a segment the restore did not
  // bring (the store started it), 0.
  Status OpenStaged(const std::string& id, const std::string& dir, UploadRecord* uploaded) {
    storage::PageStoreOptions options;
    options.env = env_;
    options.create_if_missing = false;
    options.preallocate_bytes = 0;
    auto store = storage::PageStore::Open(options, dir);
    if (!store.ok()) return store.status().WithContext("opening the restored store");
    const storage::DurablePoint d = (*store)->DurableEnd();
    store->reset();
    const std::string name = SegmentName(d.segment);
    uint64_t offset = 0;
    if (name == point_.tail_segment) {
      offset = d.bytes;
      if (d.bytes < point_.tail_offset) {
        for (uint64_t start : chunk_starts_) {
          if (start <= d.bytes) offset = start;
        }
        o_.logger->warn(
            "event=s3_restore_tail_cut project_id={} segment={} restored={} kept={} "
            "upload_from={}",
            id, name, point_.tail_offset, d.bytes, offset);
      }
    }
    uploaded->tail = {name, offset, d.lsn};
    return Status::OK();
  }

  // The snapshot's rows into ledger.db (replacing: an earlier try may have
  // put them there), then into catalog.db in one transaction: the commit
  // that makes the project exist.
  Status InsertRows(const std::string& snapshot_path) {
    auto db = snapshot_db::Open(JoinPath(o_.data_dir, "catalog.db"));
    if (!db.ok()) return db.status();
    sqlite3* s = db->get();
    BRANCHDB_RETURN_IF_ERROR(snapshot_db::Exec(s, "ATTACH ?1 AS snap", {snapshot_path}));
    BRANCHDB_RETURN_IF_ERROR(
        snapshot_db::Exec(s, "ATTACH ?1 AS led", {JoinPath(o_.data_dir, "ledger.db")}));
    for (const char* schema : {"led", "cat"}) {
      BRANCHDB_RETURN_IF_ERROR(snapshot_db::Exec(s, "BEGIN IMMEDIATE"));
      Status st = CopyTables(s, schema);
      (void)snapshot_db::Exec(s, st.ok() ? "COMMIT" : "ROLLBACK");
      BRANCHDB_RETURN_IF_ERROR(st);
    }
    return Status::OK();
  }

  Status CopyTables(sqlite3* s, std::string_view schema) {
    for (const snapshot_db::Table& t : snapshot_db::kTables) {
      if (schema != t.schema) continue;
      const std::string target = schema == "cat" ? "main" : "led";
      auto from = snapshot_db::Columns(s, "snap", t.name);
      auto to = snapshot_db::Columns(s, target, t.name);
      if (!from.ok()) return from.status();
      if (!to.ok()) return to.status();
      std::string cols;
      for (const std::string& c : *from) {
        if (std::find(to->begin(), to->end(), c) != to->end()) cols += (cols.empty() ? "" : ", ") + c;
      }
      if (cols.empty()) continue;  // a table the snapshot lacks
      BRANCHDB_RETURN_IF_ERROR(snapshot_db::Exec(
          s, std::string(schema == "cat" ? "INSERT" : "INSERT OR REPLACE") + " INTO " + target +
                 "." + t.name + "(" + cols + ") SELECT " + cols + " FROM snap." + t.name));
    }
    return Status::OK();
  }

  // The project's name in a snapshot file.
  Result<std::string> SnapshotName(const std::string& snapshot_path) {
    auto db = snapshot_db::Open(snapshot_path);
    if (!db.ok()) return db.status();
    std::vector<std::vector<std::string>> rows;
    BRANCHDB_RETURN_IF_ERROR(snapshot_db::Exec(db->get(), "PRAGMA integrity_check", {}, &rows));
    if (rows.empty() || rows[0][0] != "ok") {
      return Status::Corruption("catalog snapshot " + snapshot_path + " fails integrity_check");
    }
    rows.clear();
    BRANCHDB_RETURN_IF_ERROR(snapshot_db::Exec(db->get(), "SELECT name FROM projects", {}, &rows));
    if (rows.size() != 1) return Status::Corruption("catalog snapshot without its project row");
    return rows[0][0];
  }

  // Long: the steps of one project's restore, in the order that keeps a crash
  // from leaving a half-restored project that looks complete.
  Status RestoreOne(const std::string& id, const Objects& objects,
                    std::set<std::string>& local_names) {
    const std::string staging_root = JoinPath(o_.data_dir, "restore");
    const std::string staging = JoinPath(staging_root, id);
    const std::string snapshot_path = JoinPath(staging_root, id + ".catalog.db");
    const std::string target = JoinPath(JoinPath(o_.data_dir, "projects"), id);
    BRANCHDB_RETURN_IF_ERROR(RemoveTree(env_, staging));
    BRANCHDB_RETURN_IF_ERROR(env_->CreateDirs(staging));

    // The log and the catalog as the fences allow them: an old owner's late
    // uploads are not read.
    auto fences = ReadFences(client_, objects);
    if (!fences.ok()) return fences.status();
    const std::optional<CatalogPiece> catalog = ResolveCatalog(objects, *fences);
    if (!catalog) return Status::NotFound("no catalog snapshot of " + id + " that the fences allow");
    auto snapshot = Download(catalog->info);
    if (!snapshot.ok()) return snapshot.status();
    BRANCHDB_RETURN_IF_ERROR(WriteSynced(env_, snapshot_path, *snapshot));
    auto name = SnapshotName(snapshot_path);
    if (!name.ok()) return name.status();
    if (local_names.count(*name)) {
      return Status::AlreadyExists("a local project is named " + *name, "project_exists");
    }
    const RestoreStats before = stats_;
    int64_t newest_sealed = -1;
    UploadRecord uploaded;
    point_ = RestoredPoint{};
    point_.id = id;
    point_.name = *name;
    point_.catalog_epoch = catalog->epoch;
    point_.catalog_version = catalog->version;
    const BucketLog log = ResolveBucketLog(objects, *fences);
    if (log.fenced_off > 0) {
      o_.logger->warn("event=s3_restore_fenced_off project_id={} objects={}", id, log.fenced_off);
    }
    outputs_.clear();
    written_.clear();
    staged_.clear();
    output_kept_ = false;
    BRANCHDB_RETURN_IF_ERROR(FetchSegments(id, log, staging, &newest_sealed, &uploaded));
    BRANCHDB_RETURN_IF_ERROR(DropRedundantOutputs(id, staging, &uploaded));
    point_.sealed_segments = stats_.segments - before.segments;
    point_.newest_sealed = newest_sealed;
    chunk_starts_.clear();
    BRANCHDB_RETURN_IF_ERROR(FetchTail(id, log, *fences, staging));
    BRANCHDB_RETURN_IF_ERROR(ReserveNumber(newest_sealed, staging));
    BRANCHDB_RETURN_IF_ERROR(env_->SyncDir(staging));
    BRANCHDB_RETURN_IF_ERROR(OpenStaged(id, staging, &uploaded));
    // A stale local copy goes only now that the bucket's is here, verified.
    if (replace_local_) BRANCHDB_RETURN_IF_ERROR(replace_local_());

    // The segments in the bucket are not uploaded again, nor the tail's chunks.
    BRANCHDB_RETURN_IF_ERROR(env_->CreateDirs(JoinPath(o_.data_dir, "object_storage")));
    BRANCHDB_RETURN_IF_ERROR(
        env_->WriteFileAtomic(UploadRecordPath(o_.data_dir, id), uploaded.Format(), 0600));
    BRANCHDB_RETURN_IF_ERROR(env_->CreateDirs(JoinPath(o_.data_dir, "projects")));
    BRANCHDB_RETURN_IF_ERROR(RemoveTree(env_, target));  // left by a restore that crashed
    BRANCHDB_RETURN_IF_ERROR(env_->RenameFile(staging, target));
    BRANCHDB_RETURN_IF_ERROR(env_->SyncDir(JoinPath(o_.data_dir, "projects")));
    if (Status s = InsertRows(snapshot_path); !s.ok()) {
      (void)RemoveTree(env_, target);
      return s;
    }
    (void)env_->DeleteFile(snapshot_path);
    local_names.insert(*name);
    ++stats_.projects;
    o_.logger->info(
        "event=s3_project_restored project={} project_id={} catalog_epoch={} catalog_version={} "
        "segments={} outputs_skipped={} bytes={} tail_bytes={}",
        *name, id, catalog->epoch, catalog->version, stats_.segments - before.segments,
        stats_.outputs_skipped - before.outputs_skipped, stats_.bytes - before.bytes,
        stats_.tail_bytes - before.tail_bytes);
    return Status::OK();
  }

  // True when the project's descriptor (its newest epoch's) marks it deleted.
  bool Deleted(const Objects& objects) {
    const objstore::ObjectInfo* descriptor = NewestDescriptor(objects);
    if (descriptor == nullptr) return false;
    auto text = client_.Get(descriptor->key);
    if (!text.ok()) return false;  // the catalog snapshots decide
    auto d = nlohmann::json::parse(*text, nullptr, false);
    return d.is_object() && d.value("deleted", false);
  }

  // The bucket's objects by project id, each by the rest of its key.
  Result<std::map<std::string, Objects>> ListByProject() {
    const std::string root = o_.prefix.empty() ? "" : o_.prefix + "/";
    auto listed = client_.ListAll(root);
    if (!listed.ok()) return listed.status().WithContext("listing the bucket");
    std::map<std::string, Objects> by_project;
    for (objstore::ObjectInfo& o : *listed) {
      const std::string rest = o.key.substr(root.size());
      const size_t slash = rest.find('/');
      if (slash == std::string::npos) continue;
      by_project[rest.substr(0, slash)].emplace(rest.substr(slash + 1), std::move(o));
    }
    return by_project;
  }

  // The id of the live project named name in the bucket (by its descriptor).
  Result<std::string> FindByName(const std::map<std::string, Objects>& by_project,
                                 const std::string& name) {
    for (const auto& [id, objects] : by_project) {
      const objstore::ObjectInfo* descriptor = NewestDescriptor(objects);
      if (descriptor == nullptr || !HasCatalog(objects)) continue;
      auto text = client_.Get(descriptor->key);
      if (!text.ok()) return text.status().WithContext("reading the descriptor of " + id);
      auto d = nlohmann::json::parse(*text, nullptr, false);
      if (d.is_object() && !d.value("deleted", false) && d.value("name", "") == name) return id;
    }
    return Status::NotFound("no project named " + name + " in the bucket", "project_not_found");
  }

  // One project, by name, while the catalog may be open (a takeover).
  Result<RestoredPoint> RunOne(const std::string& name, std::function<Status()> replace_local) {
    auto by_project = ListByProject();
    if (!by_project.ok()) return by_project.status();
    auto id = FindByName(*by_project, name);
    if (!id.ok()) return id.status();
    std::set<std::string> local_ids, local_names;
    BRANCHDB_RETURN_IF_ERROR(LocalProjects(&local_ids, &local_names));
    if (local_ids.count(*id) || local_names.count(name)) {
      if (!replace_local) {
        return Status::AlreadyExists("project " + name + " is in the local catalog",
                                     "project_exists");
      }
      local_names.erase(name);  // replaced once the bucket's copy is staged
      replace_local_ = std::move(replace_local);
    }
    const Objects& objects = (*by_project)[*id];
    Status s = RestoreOne(*id, objects, local_names);
    if (!s.ok()) {
      (void)RemoveTree(env_, JoinPath(JoinPath(o_.data_dir, "restore"), *id));
      (void)env_->DeleteFile(JoinPath(JoinPath(o_.data_dir, "restore"), *id + ".catalog.db"));
      return s;
    }
    point_.stats = stats_;
    return point_;
  }

  // Long: lists the bucket, groups by project, restores the ones missing here.
  Result<RestoreStats> Run() {
    auto listed = ListByProject();
    if (!listed.ok()) return listed.status();
    std::map<std::string, Objects>& by_project = *listed;
    std::vector<std::string> candidates;  // ids with a catalog snapshot
    for (const auto& [id, objects] : by_project) {
      if (HasCatalog(objects)) candidates.push_back(id);
    }
    if (candidates.empty()) return stats_;
    BRANCHDB_RETURN_IF_ERROR(EnsureSchemas());
    auto lock = env_->LockFile(JoinPath(o_.data_dir, "LOCK"));
    if (!lock.ok()) return lock.status();
    // What an earlier restore left (it crashed, or its snapshot was not deleted).
    BRANCHDB_RETURN_IF_ERROR(RemoveTree(env_, JoinPath(o_.data_dir, "restore")));
    std::set<std::string> local_ids, local_names;
    BRANCHDB_RETURN_IF_ERROR(LocalProjects(&local_ids, &local_names));
    for (const std::string& id : candidates) {
      if (local_ids.count(id) || Deleted(by_project[id])) continue;
      Status s = RestoreOne(id, by_project[id], local_names);
      if (s.ok()) continue;
      ++stats_.failed;
      (void)RemoveTree(env_, JoinPath(JoinPath(o_.data_dir, "restore"), id));
      (void)env_->DeleteFile(JoinPath(JoinPath(o_.data_dir, "restore"), id + ".catalog.db"));
      o_.logger->error("event=s3_restore_failed project_id={} error=\"{}\"", id, s.ToString());
    }
    return stats_;
  }

 private:
  // catalog.db and ledger.db with their tables (opened once when missing).
  Status EnsureSchemas() {
    if (!env_->FileExists(JoinPath(o_.data_dir, "catalog.db"))) {
      catalog::CatalogOptions options;
      options.env = env_;
      options.reaper_interval_micros = 0;
      options.gc_interval_micros = 0;
      auto cat = catalog::Catalog::Open(options, o_.data_dir);
      if (!cat.ok()) return cat.status().WithContext("creating catalog.db");
    }
    catalog::LedgerOptions options;
    options.env = env_;
    auto ledger = catalog::Ledger::Open(options, o_.data_dir);
    return ledger.status().WithContext("opening ledger.db");
  }

  Status LocalProjects(std::set<std::string>* ids, std::set<std::string>* names) {
    auto db = snapshot_db::Open(JoinPath(o_.data_dir, "catalog.db"));
    if (!db.ok()) return db.status();
    std::vector<std::vector<std::string>> rows;
    BRANCHDB_RETURN_IF_ERROR(
        snapshot_db::Exec(db->get(), "SELECT id, name FROM projects", {}, &rows));
    for (auto& row : rows) {
      ids->insert(row[0]);
      names->insert(row[1]);
    }
    return Status::OK();
  }

  const RestoreOptions& o_;
  objstore::S3Client& client_;
  Env* env_;
  RestoreStats stats_;
  RestoredPoint point_;  // of the last RestoreOne
  std::vector<uint64_t> chunk_starts_;  // its tail's chunks' offsets, ascending
  // Of its sealed segments: the compactions' outputs' LSNs, by name, and the
  // LSN ranges of the segments as written.
  std::map<std::string, std::vector<storage::Lsn>> outputs_;
  std::vector<std::pair<storage::Lsn, storage::Lsn>> written_;
  std::vector<std::string> staged_;  // the sealed segments it staged
  bool output_kept_ = false;         // one of them is a compaction's output
  std::function<Status()> replace_local_;  // RunOne's, when a local copy is replaced
};

}  // namespace

Result<RestoreStats> RestoreProjects(const RestoreOptions& options, objstore::S3Client& client) {
  if (options.env == nullptr || !options.logger || options.data_dir.empty()) {
    return Status::InvalidArgument("RestoreProjects: env, logger and data_dir are required");
  }
  BRANCHDB_RETURN_IF_ERROR(options.env->CreateDirs(options.data_dir));
  return Restorer(options, client).Run();
}

Result<RestoredPoint> RestoreProject(const RestoreOptions& options, objstore::S3Client& client,
                                     const std::string& name,
                                     std::function<Status()> replace_local) {
  if (options.env == nullptr || !options.logger || options.data_dir.empty()) {
    return Status::InvalidArgument("RestoreProject: env, logger and data_dir are required");
  }
  return Restorer(options, client).RunOne(name, std::move(replace_local));
}

Result<RestoreStats> RestoreFromBucket(const Config& config, Env* env,
                                       std::shared_ptr<spdlog::logger> logger,
                                       http::Metrics& metrics) {
  RestoreOptions options;
  options.data_dir = config.data_dir;
  options.prefix = config.object_storage_prefix;
  options.env = env;
  options.logger = logger;
  options.client_options = ObjectStorageClientOptions(config);
  options.client_options.clock = env->GetClock();
  auto client = objstore::S3Client::Open(options.client_options);
  if (!client.ok()) return client.status();
  BRANCHDB_RETURN_IF_ERROR((*client)->CreateBucketIfMissing().WithContext(
      "object storage bucket " + config.object_storage_bucket));
  const int64_t start = env->GetClock()->NowMonotonicNanos();
  auto stats = RestoreProjects(options, **client);
  if (!stats.ok()) return stats.status();
  logger->info(
      "event=s3_restore projects={} failed={} segments={} bytes={} tail_bytes={} seconds={:.3f}",
      stats->projects, stats->failed, stats->segments, stats->bytes, stats->tail_bytes,
      static_cast<double>(env->GetClock()->NowMonotonicNanos() - start) / 1e9);
  metrics.DescribeCounter("branchdb_s3_restored_projects_total",
                          "Projects restored from the bucket at start.");
  metrics.DescribeCounter("branchdb_s3_restore_failed_projects_total",
                          "Projects of the bucket whose restore at start failed.");
  metrics.DescribeCounter("branchdb_s3_restored_bytes_total",
                          "Segment and tail bytes downloaded by the restore at start.");
  metrics.AddCollector([s = *stats](http::Metrics& m) {
    m.SetCounter("branchdb_s3_restored_projects_total", {}, static_cast<double>(s.projects));
    m.SetCounter("branchdb_s3_restore_failed_projects_total", {}, static_cast<double>(s.failed));
    m.SetCounter("branchdb_s3_restored_bytes_total", {}, static_cast<double>(s.bytes));
  });
  return stats;
}

}  // namespace branchdb::server
