// See catalog_backup.h.
#include "server/object_storage/catalog_backup.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <vector>

#include "base/mutex.h"
#include "objstore/sigv4.h"
#include "server/config.h"
#include "server/http/metrics.h"
#include "server/object_storage/bucket_log.h"
#include "server/object_storage/pass_thread.h"
#include "server/object_storage/segment_uploader.h"
#include "server/object_storage/snapshot_db.h"

namespace branchdb::server {
namespace {

std::string Padded16(uint64_t n) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llu", static_cast<unsigned long long>(n));
  return buf;
}

// The decimal number that is all of text; -1 otherwise.
int64_t ParseNumber(std::string_view text) {
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  return !text.empty() && ec == std::errc() && ptr == text.data() + text.size() && n >= 0 ? n : -1;
}

// The end of the log in the active segment file at path (size bytes): the
// file ends with the zero region written ahead of the records
// (docs/storage-format.md, "The zero region"), which is no part of the log.
// The end of its last non-zero byte, which may fall short of the last
// record's end (a record may end in zeros) but never past it and, as every
// record starts with a non-zero meta_len, within that last record: a tail
// copied up to a record's end (DurableEnd) covers the log exactly when it
// reaches this.
uint64_t LogEndOf(Env* env, const std::string& path, uint64_t size) {
  auto file = env->NewRandomAccessFile(path);
  if (!file.ok()) return size;
  std::string block(64 << 10, '\0');
  while (size > 0) {
    const uint64_t start = size - std::min<uint64_t>(size, block.size());
    auto n = (*file)->Read(start, size - start, block.data());
    if (!n.ok() || *n != size - start) return size;
    for (size_t i = *n; i > 0; --i) {
      if (block[i - 1] != '\0') return start + i;
    }
    size = start;
  }
  return 0;
}

// A consistent copy of one project's rows, serialized as a database file.
struct Snapshot {
  std::string name;
  std::string bytes;
  std::string md5;
};

// Where the project's store was right after a snapshot: every timeline and LSN
// the snapshot names is within these segments (the store is written first).
struct StorePosition {
  std::vector<std::string> older;  // segments before the newest
  std::string newest;              // "" when the store had no segment
  uint64_t newest_bytes = 0;
};

struct PendingSnapshot {
  Snapshot snapshot;
  StorePosition position;
};

struct ProjectBackup {
  int64_t epoch = 0;            // the epoch this node owns the project with (0: no cluster)
  bool listed = false;          // newest_version and uploaded_md5 read from the bucket
  uint64_t newest_version = 0;  // 0: none in the bucket
  std::string uploaded_md5;
  std::optional<PendingSnapshot> latest;   // the newest state, not yet in the bucket
  std::optional<PendingSnapshot> waiting;  // an older one kept so that uploads progress
                                           // while the catalog keeps changing
};

}  // namespace

std::string ProjectKeyPrefix(const std::string& prefix, const std::string& project_id) {
  return (prefix.empty() ? "" : prefix + "/") + project_id + "/";
}

std::string CatalogObjectKey(const std::string& prefix, const std::string& project_id,
                             uint64_t version, int64_t epoch) {
  return ProjectKeyPrefix(prefix, project_id) + EpochDir(epoch) + "catalog/" + Padded16(version) +
         ".db";
}

std::string DescriptorKey(const std::string& prefix, const std::string& project_id,
                          int64_t epoch) {
  return ProjectKeyPrefix(prefix, project_id) + EpochDir(epoch) + "project.json";
}

std::string TailChunkSuffix(const std::string& segment_name, uint64_t offset) {
  return "tail/" + segment_name + "/" + Padded16(offset);
}

int64_t ParseSegmentNumber(const std::string& name) {
  constexpr std::string_view kPrefix = "seg-", kSuffix = ".log";
  if (name.size() <= kPrefix.size() + kSuffix.size() || name.rfind(kPrefix, 0) != 0 ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return -1;
  }
  return ParseNumber(std::string_view(name).substr(
      kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size()));
}

int64_t ParseCatalogVersion(const std::string& rest) {
  constexpr std::string_view kPrefix = "catalog/", kSuffix = ".db";
  if (rest.size() <= kPrefix.size() + kSuffix.size() || rest.rfind(kPrefix, 0) != 0 ||
      rest.compare(rest.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return -1;
  }
  return ParseNumber(std::string_view(rest).substr(
      kPrefix.size(), rest.size() - kPrefix.size() - kSuffix.size()));
}

bool ParseTailChunk(const std::string& rest, std::string* segment_name, uint64_t* offset) {
  if (rest.rfind("tail/", 0) != 0) return false;
  const size_t slash = rest.find('/', 5);
  if (slash == std::string::npos) return false;
  std::string name = rest.substr(5, slash - 5);
  const int64_t off = ParseNumber(std::string_view(rest).substr(slash + 1));
  if (ParseSegmentNumber(name) < 0 || off < 0) return false;
  *segment_name = std::move(name);
  *offset = static_cast<uint64_t>(off);
  return true;
}

struct CatalogBackup::Impl {
  CatalogBackupOptions options;
  std::unique_ptr<objstore::S3Client> client;

  Mutex pass_mu;  // held for a whole pass; before mu
  std::map<std::string, ProjectBackup> projects GUARDED_BY(pass_mu);  // by id
  FenceCache fences GUARDED_BY(pass_mu);  // fences read (written once: kept)
  SegmentHeaders headers;  // what the segments' headers said (its own lock)

  mutable Mutex mu ACQUIRED_AFTER(pass_mu);  // a leaf
  CatalogBackupStats stats GUARDED_BY(mu);
  // WaitBackedUp's callers, per project id: tickets in arrival order.
  struct Waiters {
    uint64_t arrived = 0;      // tickets handed out
    uint64_t served = 0;       // tickets up to this one are in the bucket
    uint64_t failed_upto = 0;  // tickets up to this one get `failure`
    Status failure;
    bool leading = false;      // a caller is uploading for the others
  };
  std::map<std::string, Waiters> waiters GUARDED_BY(mu);
  CondVar waiters_cv;
  PassThread passes;  // last: stopped (joined) before the rest goes

  std::string CatalogPath() const { return JoinPath(options.data_dir, "catalog.db"); }
  std::string LedgerPath() const { return JoinPath(options.data_dir, "ledger.db"); }

  // Ids of catalog.db's projects.
  Result<std::vector<std::string>> ProjectIds() {
    auto db = snapshot_db::Open(CatalogPath());
    if (!db.ok()) return db.status();
    std::vector<std::vector<std::string>> rows;
    BRANCHDB_RETURN_IF_ERROR(
        snapshot_db::Exec(db->get(), "SELECT id FROM projects ORDER BY id", {}, &rows));
    std::vector<std::string> ids;
    for (auto& row : rows) ids.push_back(std::move(row[0]));
    return ids;
  }

  // The project's rows, in one read transaction over catalog.db and ledger.db,
  // copied into a fresh in-memory database and serialized (the same rows give
  // the same bytes). NotFound when the project is gone.
  Result<Snapshot> TakeSnapshot(const std::string& id) {
    auto db = snapshot_db::Open(":memory:");
    if (!db.ok()) return db.status();
    sqlite3* s = db->get();
    const bool with_ledger = options.env->FileExists(LedgerPath());
    BRANCHDB_RETURN_IF_ERROR(snapshot_db::Exec(s, "ATTACH ?1 AS cat", {CatalogPath()}));
    if (with_ledger) {
      BRANCHDB_RETURN_IF_ERROR(snapshot_db::Exec(s, "ATTACH ?1 AS led", {LedgerPath()}));
    }
    BRANCHDB_RETURN_IF_ERROR(snapshot_db::Exec(s, "BEGIN"));
    Status copied;
    for (const snapshot_db::Table& t : snapshot_db::kTables) {
      if (!with_ledger && std::string_view(t.schema) == "led") continue;
      const std::string from = std::string(t.schema) + "." + t.name;
      copied = snapshot_db::Exec(s, "CREATE TABLE main." + std::string(t.name) +
                                        " AS SELECT * FROM " + from + " WHERE 0");
      if (copied.ok()) {
        copied = snapshot_db::Exec(s, "INSERT INTO main." + std::string(t.name) + " SELECT * FROM " +
                                          from + " WHERE " + t.project_column + " = ?1 ORDER BY " +
                                          t.order_by,
                                   {id});
      }
      if (!copied.ok()) break;
    }
    std::vector<std::vector<std::string>> rows;
    if (copied.ok()) copied = snapshot_db::Exec(s, "SELECT name FROM main.projects", {}, &rows);
    (void)snapshot_db::Exec(s, copied.ok() ? "COMMIT" : "ROLLBACK");
    BRANCHDB_RETURN_IF_ERROR(copied.WithContext("catalog snapshot of project " + id));
    if (rows.empty()) return Status::NotFound("project " + id + " is gone");
    sqlite3_int64 size = 0;
    unsigned char* bytes = sqlite3_serialize(s, "main", &size, 0);
    if (bytes == nullptr) return Status::IOError("catalog snapshot of project " + id + ": serialize");
    Snapshot snap;
    snap.name = rows[0][0];
    snap.bytes.assign(reinterpret_cast<const char*>(bytes), static_cast<size_t>(size));
    sqlite3_free(bytes);
    snap.md5 = objstore::Md5Hex(snap.bytes);
    return snap;
  }

  StorePosition NotePosition(const std::string& id) {
    StorePosition pos;
    auto names = options.env->GetChildren(JoinPath(JoinPath(options.data_dir, "projects"), id));
    if (!names.ok()) return pos;
    const std::string dir = JoinPath(JoinPath(options.data_dir, "projects"), id);
    headers.Prune(dir, *names);  // compacted away
    std::vector<std::pair<int64_t, std::string>> segments;
    for (const std::string& name : *names) {
      if (int64_t n = ParseSegmentNumber(name); n >= 0) segments.emplace_back(n, name);
    }
    if (segments.empty()) return pos;
    std::sort(segments.begin(), segments.end());
    // Compaction numbers its outputs above the active segment: the newest
    // segment that is no output is the tail.
    auto any = [](const std::string&) { return true; };
    while (segments.size() > 1 && CompactionOutputFate(options.env, dir, segments.back().second,
                                                       any, &headers) != OutputFate::kNotOutput) {
      pos.older.push_back(std::move(segments.back().second));
      segments.pop_back();
    }
    pos.newest = segments.back().second;
    segments.pop_back();
    for (auto& [n, name] : segments) pos.older.push_back(std::move(name));
    const std::string newest = JoinPath(dir, pos.newest);
    auto size = options.env->GetFileSize(newest);
    // vanished: wait for a newer position
    pos.newest_bytes = size.ok() ? LogEndOf(options.env, newest, *size) : UINT64_MAX;
    return pos;
  }

  // True when the bucket holds the store up to pos: every older segment still
  // on disk (compaction may have replaced some) but the compactions' outputs
  // not yet up whose records it holds (their superseded segments are in it,
  // or were left out by an older build: the uploader's record), and the
  // newest one sealed or in contiguous tail chunks from offset 0 up to its
  // size then; read through the fences (bucket_log.h), as a restore reads it.
  bool Covered(const std::string& id, const StorePosition& pos, const Listing& listing)
      REQUIRES(pass_mu) {
    const std::string dir = JoinPath(JoinPath(options.data_dir, "projects"), id);
    auto fences = ReadFences(*client, listing, &this->fences);
    if (!fences.ok()) return false;  // tried again at the next pass
    const BucketLog log = ResolveBucketLog(listing, *fences);
    std::optional<std::set<std::string>> left_out;  // read when needed
    auto accounted = [&](const std::string& name) {
      if (log.sealed.count(name)) return true;
      if (!left_out) {
        auto text = options.env->ReadFileToString(UploadRecordPath(options.data_dir, id));
        left_out = text.ok() ? UploadRecord::Parse(*text).left_out : std::set<std::string>{};
      }
      return left_out->count(name) != 0;
    };
    for (const std::string& name : pos.older) {
      if (log.sealed.count(name) || !options.env->FileExists(JoinPath(dir, name))) continue;
      if (CompactionOutputFate(options.env, dir, name, accounted, &headers) !=
          OutputFate::kRedundant) {
        return false;
      }
    }
    if (pos.newest.empty() || log.sealed.count(pos.newest)) return true;
    return log.ChunkBytes(pos.newest) >= pos.newest_bytes;
  }

  Result<Listing> List(const std::string& id) {
    const std::string prefix = ProjectKeyPrefix(options.prefix, id);
    auto objects = client->ListAll(prefix);
    if (!objects.ok()) return objects.status();
    Listing listing;
    for (objstore::ObjectInfo& o : *objects) {
      std::string rest = o.key.substr(prefix.size());
      listing.emplace(std::move(rest), std::move(o));
    }
    return listing;
  }

  // The versions of epoch's snapshots in listing, oldest first.
  static std::vector<uint64_t> Versions(const Listing& listing, int64_t epoch) {
    std::vector<uint64_t> versions;
    for (const auto& [rest, o] : listing) {
      int64_t e = 0;
      uint64_t v = 0;
      if (ParseCatalogKey(rest, &e, &v) && e == epoch) versions.push_back(v);
    }
    std::sort(versions.begin(), versions.end());
    return versions;
  }

  // Uploads p as the next version of st.epoch, verifies it, writes the
  // descriptor, prunes that epoch's old versions (earlier epochs' stay: a
  // fence may name one of them; the bucket's GC takes them).
  Status Upload(const std::string& id, ProjectBackup& st, const PendingSnapshot& p,
                const Listing& listing) {
    const uint64_t version = st.newest_version + 1;
    const std::string key = CatalogObjectKey(options.prefix, id, version, st.epoch);
    objstore::PutOptions put_options;
    if (options.may_upload) {
      // A cluster: asked again just before (the key is named by the epoch it
      // confirms: landing late, after a takeover, it is fenced off), and a
      // version is never replaced.
      auto epoch = options.may_upload(id);
      if (!epoch.ok()) return epoch.status();
      if (*epoch != st.epoch) {
        st.listed = false;
        return Status::Unavailable("project " + id + " is owned with another epoch now",
                                   "not_owner");
      }
      put_options.if_none_match = true;
    }
    auto put = client->Put(key, p.snapshot.bytes, put_options);
    if (!put.ok()) {
      st.listed = false;  // another node wrote this version: listed again
      return put.status();
    }
    auto head = client->Head(key);
    if (!head.ok()) return head.status();
    if (head->size != p.snapshot.bytes.size() || head->etag != p.snapshot.md5) {
      return Status::Corruption("uploaded " + key + " reads back as " + std::to_string(head->size) +
                                " bytes, ETag " + head->etag + "; expected ETag " + p.snapshot.md5);
    }
    nlohmann::json d = {{"id", id},
                        {"name", p.snapshot.name},
                        {"epoch", st.epoch},
                        {"catalog", key},
                        {"catalog_version", version},
                        {"catalog_md5", p.snapshot.md5},
                        {"catalog_bytes", p.snapshot.bytes.size()},
                        {"store_segment", p.position.newest},
                        {"store_segment_bytes", p.position.newest_bytes},
                        {"time_micros", options.env->GetClock()->NowMicros()}};
    auto written = client->Put(DescriptorKey(options.prefix, id, st.epoch), d.dump() + "\n");
    if (!written.ok()) return written.status();
    st.newest_version = version;
    st.uploaded_md5 = p.snapshot.md5;
    for (uint64_t v : Versions(listing, st.epoch)) {
      if (v + kKeepCatalogVersions > version) break;
      Status deleted = client->Delete(CatalogObjectKey(options.prefix, id, v, st.epoch));
      if (!deleted.ok()) return deleted.WithContext("pruning catalog version " + std::to_string(v));
    }
    return Status::OK();
  }

  // One project: snapshot; when changed, upload once its store is covered.
  // Sets *pending when its newest state is not in the bucket afterwards.
  // Long: the steps of one project's backup, each of which may end it.
  Status BackupProject(const std::string& id, bool* pending) REQUIRES(pass_mu) {
    int64_t epoch = 0;
    if (options.may_upload) {
      auto may = options.may_upload(id);
      if (!may.ok()) {
        projects.erase(id);  // listed again once ours
        return Status::OK();
      }
      epoch = *may;
    }
    auto snap = TakeSnapshot(id);
    if (snap.status().IsNotFound()) return Status::OK();  // deleted meanwhile
    if (!snap.ok()) return snap.status();
    ProjectBackup& st = projects[id];
    if (st.epoch != epoch) {  // owned anew: its own versions
      st = ProjectBackup();
      st.epoch = epoch;
    }
    std::optional<Listing> listing;
    if (!st.listed) {
      auto l = List(id);
      if (!l.ok()) return l.status();
      const std::vector<uint64_t> versions = Versions(*l, epoch);
      st.newest_version = versions.empty() ? 0 : versions.back();
      st.uploaded_md5.clear();
      auto newest = l->find(EpochDir(epoch) + "catalog/" + Padded16(st.newest_version) + ".db");
      if (newest != l->end()) st.uploaded_md5 = newest->second.etag;
      st.listed = true;
      listing = std::move(*l);
    }
    if (snap->md5 == st.uploaded_md5) {
      st.latest.reset();
      st.waiting.reset();
      return Status::OK();
    }
    if (!st.latest || st.latest->snapshot.md5 != snap->md5) {
      if (!st.waiting) st.waiting = std::move(st.latest);
      st.latest = PendingSnapshot{std::move(*snap), NotePosition(id)};
    }
    *pending = true;
    if (!listing) {
      auto l = List(id);
      if (!l.ok()) return l.status();
      listing = std::move(*l);
    }
    if (Covered(id, st.latest->position, *listing)) {
      BRANCHDB_RETURN_IF_ERROR(Upload(id, st, *st.latest, *listing));
      st.latest.reset();
      st.waiting.reset();
      *pending = false;
      Uploaded(id, st.newest_version);
    } else if (st.waiting && Covered(id, st.waiting->position, *listing)) {
      BRANCHDB_RETURN_IF_ERROR(Upload(id, st, *st.waiting, *listing));
      st.waiting.reset();
      Uploaded(id, st.newest_version);
    }
    return Status::OK();
  }

  // A ticket; then either another caller's upload covers it, or this caller
  // uploads (for itself and every ticket handed out before its snapshot).
  Status WaitBackedUp(const std::string& id) {
    uint64_t upto = 0;
    {
      MutexLock l(mu);
      Waiters& w = waiters[id];
      const uint64_t ticket = ++w.arrived;
      while (true) {
        if (w.served >= ticket) return Status::OK();
        if (w.failed_upto >= ticket) return w.failure;
        if (!w.leading) break;
        waiters_cv.Wait(mu);
      }
      w.leading = true;
      upto = w.arrived;  // the snapshot below is taken after each of these
    }
    Status s = BackUpNow(id);
    MutexLock l(mu);
    Waiters& w = waiters[id];
    w.leading = false;
    if (s.ok()) {
      w.served = std::max(w.served, upto);
    } else {
      w.failed_upto = std::max(w.failed_upto, upto);
      w.failure = s;
      ++stats.errors;
    }
    waiters_cv.SignalAll();
    return s;
  }

  // The project's log up to its durable end, then a snapshot taken now, into
  // the bucket.
  Status BackUpNow(const std::string& id) {
    MutexLock pass(pass_mu);
    Status s;
    if (options.may_upload) {
      if (auto may = options.may_upload(id); !may.ok()) return may.status();
    }
    if (options.upload_log) s = options.upload_log(id);  // usually covers the snapshot
    bool pending = false;
    if (s.ok()) s = BackupProject(id, &pending);
    if (s.ok() && pending) s = UploadLatestWhenCovered(id);
    if (s.ok() || s.reason() == "not_owner" || s.reason() == "lease_lost" ||
        s.reason() == "etcd_unavailable" || s.reason() == "remote_durability_unavailable") {
      return s;
    }
    options.logger->warn("event=s3_catalog_upload_failed project_id={} error=\"{}\"", id,
                         s.ToString());
    return Status::Unavailable(
        "the change is durable locally but the project's catalog could not be copied to object "
        "storage (durability = \"remote\"); it is not acknowledged: " + s.ToString(),
        "remote_durability_unavailable");
  }

  // The project's newest snapshot, up once the bucket covers its store
  // position. That position may hold records of operations still in flight
  // (written, their fdatasync not done yet: the position is noted after the
  // snapshot); they become durable within a group commit, and the log goes
  // up again until it covers them.
  Status UploadLatestWhenCovered(const std::string& id) REQUIRES(pass_mu) {
    constexpr int kAttempts = 100;
    constexpr int64_t kWaitMicros = 10'000;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      auto it = projects.find(id);
      if (it == projects.end() || !it->second.latest) return Status::OK();
      ProjectBackup& st = it->second;
      if (attempt > 0) options.env->GetClock()->SleepForMicros(kWaitMicros);
      if (options.upload_log) BRANCHDB_RETURN_IF_ERROR(options.upload_log(id));
      auto listing = List(id);
      if (!listing.ok()) return listing.status();
      if (!Covered(id, st.latest->position, *listing)) continue;
      BRANCHDB_RETURN_IF_ERROR(Upload(id, st, *st.latest, *listing));
      st.latest.reset();
      st.waiting.reset();
      Uploaded(id, st.newest_version);
      return Status::OK();
    }
    return Status::Unavailable("the catalog snapshot waits for its log to reach the bucket");
  }

  void Uploaded(const std::string& id, uint64_t version) {
    MutexLock l(mu);
    ++stats.uploaded_snapshots;
    options.logger->info("event=s3_catalog_uploaded project_id={} version={}", id, version);
  }

  // The descriptor of a project deleted since this process saw it, under
  // the epoch it was last backed up with.
  Status MarkDeleted(const std::string& id, int64_t epoch) {
    nlohmann::json d = {{"id", id},
                        {"deleted", true},
                        {"epoch", epoch},
                        {"time_micros", options.env->GetClock()->NowMicros()}};
    auto put = client->Put(DescriptorKey(options.prefix, id, epoch), d.dump() + "\n");
    if (put.ok()) options.logger->info("event=s3_project_deleted project_id={}", id);
    return put.status();
  }

  // WaitDeleted: the deletion mark of a project gone from catalog.db, now,
  // under the epoch it was last backed up with (one a pass did not see: its
  // newest descriptor's).
  Status MarkDeletedNow(const std::string& id) {
    MutexLock pass(pass_mu);
    auto ids = ProjectIds();
    Status s = ids.status();
    if (s.ok() && std::binary_search(ids->begin(), ids->end(), id)) {
      return Status::FailedPrecondition("project " + id + " is still in the catalog");
    }
    if (s.ok() && options.may_mark_deleted && !options.may_mark_deleted(id)) {
      projects.erase(id);
      return Status::OK();  // a stale copy that a takeover replaced
    }
    int64_t epoch = 0;
    if (auto it = projects.find(id); s.ok() && it != projects.end()) {
      epoch = it->second.epoch;
    } else if (s.ok()) {
      auto listing = List(id);
      s = listing.status();
      const objstore::ObjectInfo* newest = s.ok() ? NewestDescriptor(*listing) : nullptr;
      std::string name;
      if (newest != nullptr) {
        (void)SplitEpoch(newest->key.substr(ProjectKeyPrefix(options.prefix, id).size()), &epoch,
                         &name);
      }
    }
    if (s.ok()) s = MarkDeleted(id, epoch);
    if (s.ok()) {
      projects.erase(id);  // marked: not again by a pass
      return s;
    }
    {
      MutexLock l(mu);
      ++stats.errors;
    }
    options.logger->warn("event=s3_project_delete_mark_failed project_id={} error=\"{}\"", id,
                         s.ToString());
    return Status::Unavailable(
        "the project is deleted locally but its deletion could not be marked in object storage "
        "(durability = \"remote\"); it is not acknowledged: " + s.ToString(),
        "remote_durability_unavailable");
  }

  Status Pass() {
    MutexLock pass(pass_mu);
    Status first;
    uint64_t pending = 0, errors = 0;
    auto note = [&](const std::string& id, const Status& s) {
      if (s.ok()) return;
      ++errors;
      options.logger->warn("event=s3_catalog_upload_failed project_id={} error=\"{}\"", id,
                           s.ToString());
      if (first.ok()) first = s;
    };
    auto ids = ProjectIds();
    if (!ids.ok()) {
      note("", ids.status());
    } else {
      for (const std::string& id : *ids) {
        bool waits = false;
        Status s = BackupProject(id, &waits);
        note(id, s);
        if (waits || !s.ok()) ++pending;
        if (s.IsUnavailable()) break;  // the bucket is unreachable: the rest waits
      }
      for (auto it = projects.begin(); it != projects.end();) {
        if (std::binary_search(ids->begin(), ids->end(), it->first)) {
          ++it;
          continue;
        }
        if (options.may_mark_deleted && !options.may_mark_deleted(it->first)) {
          it = projects.erase(it);
          continue;
        }
        Status s = MarkDeleted(it->first, it->second.epoch);
        note(it->first, s);
        it = s.ok() ? projects.erase(it) : std::next(it);
      }
    }
    MutexLock l(mu);
    stats.pending_projects = pending;
    stats.errors += errors;
    ++stats.passes;
    return first;
  }

};

CatalogBackup::CatalogBackup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CatalogBackup::~CatalogBackup() { impl_->passes.Stop(); }

Result<std::unique_ptr<CatalogBackup>> CatalogBackup::Start(
    CatalogBackupOptions options, std::unique_ptr<objstore::S3Client> client) {
  if (options.env == nullptr || !options.logger || options.data_dir.empty() || !client) {
    return Status::InvalidArgument("CatalogBackup: env, logger, data_dir and client are required");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->client = std::move(client);
  Impl* raw = impl.get();
  std::unique_ptr<CatalogBackup> backup(new CatalogBackup(std::move(impl)));
  raw->passes.Start(raw->options.interval_ms, [raw] { return raw->Pass(); });
  return backup;
}

Status CatalogBackup::RunOnce() { return impl_->Pass(); }

Status CatalogBackup::WaitDeleted(const std::string& project_id) {
  return impl_->MarkDeletedNow(project_id);
}

Status CatalogBackup::WaitBackedUp(const std::string& project_id) {
  return impl_->WaitBackedUp(project_id);
}

CatalogBackupStats CatalogBackup::stats() const {
  MutexLock l(impl_->mu);
  return impl_->stats;
}

Result<std::unique_ptr<CatalogBackup>> StartCatalogBackup(
    const Config& config, Env* env,
    std::shared_ptr<spdlog::logger> logger, http::Metrics& metrics,
    std::function<Result<int64_t>(const std::string& project_id)> may_upload,
    std::function<bool(const std::string& project_id)> may_mark_deleted,
    std::function<Status(const std::string& project_id)> upload_log) {
  CatalogBackupOptions options;
  options.upload_log = std::move(upload_log);
  options.may_upload = std::move(may_upload);
  options.may_mark_deleted = std::move(may_mark_deleted);
  options.data_dir = config.data_dir;
  options.prefix = config.object_storage_prefix;
  options.interval_ms = config.object_storage_upload_interval_ms;
  options.env = env;
  options.logger = std::move(logger);
  objstore::S3Options client_options = ObjectStorageClientOptions(config);
  client_options.clock = env->GetClock();
  auto client = objstore::S3Client::Open(client_options);
  if (!client.ok()) return client.status();
  auto backup = CatalogBackup::Start(std::move(options), std::move(*client));
  if (!backup.ok()) return backup.status();
  metrics.DescribeGauge("branchdb_s3_catalog_pending_projects",
                        "Projects whose newest catalog state is not in the bucket yet.");
  metrics.DescribeCounter("branchdb_s3_catalog_uploads_total",
                          "Catalog snapshots uploaded to the bucket and verified.");
  metrics.DescribeCounter("branchdb_s3_catalog_errors_total",
                          "Failed catalog snapshots, uploads and descriptor writes.");
  metrics.DescribeCounter("branchdb_s3_catalog_passes_total",
                          "Completed passes of the catalog backup over the projects.");
  metrics.AddCollector([b = backup->get()](http::Metrics& m) {
    const CatalogBackupStats s = b->stats();
    m.Set("branchdb_s3_catalog_pending_projects", {}, static_cast<double>(s.pending_projects));
    m.SetCounter("branchdb_s3_catalog_uploads_total", {}, static_cast<double>(s.uploaded_snapshots));
    m.SetCounter("branchdb_s3_catalog_errors_total", {}, static_cast<double>(s.errors));
    m.SetCounter("branchdb_s3_catalog_passes_total", {}, static_cast<double>(s.passes));
  });
  return backup;
}

}  // namespace branchdb::server
