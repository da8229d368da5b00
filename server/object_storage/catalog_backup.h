// CatalogBackup: with [object_storage] configured, puts into the bucket what a
// project needs besides its page store, so that a server on an empty data
// directory can open it from the bucket alone (server/object_storage/restore.h):
//
//   PREFIX/PROJECT_ID/[e/EEEEEEEEEEEEEEEE/]catalog/NNNNNNNNNNNNNNNN.db  a
//       SQLite snapshot of the project's rows: catalog.db's projects (name,
//       restore window, default branch), branches (timelines, parents,
//       protection, TTLs, idle timeouts, writes policy) and labels;
//       ledger.db's project_quotas (quotas, default branch TTL) and
//       branch_owners. N counts up from 1 in each epoch.
//   PREFIX/PROJECT_ID/[e/EEEEEEEEEEEEEEEE/]project.json  the descriptor: id,
//       name, epoch, the newest snapshot's key and MD5, the store position it
//       needs; or {"deleted": true} once the project was deleted (by the
//       next pass; at once for a deletion in `remote` durability: WaitDeleted).
// Both are named by the writer's epoch as the log is (bucket_log.h: no "e/"
// level for epoch 0, a single node): with [cluster], the epoch may_upload
// confirms just before the PUT, so an old owner's snapshot that lands after a
// takeover is fenced off (ResolveCatalog), and a version is written once
// (If-None-Match: *). The descriptor of the highest epoch is the project's.
//
// A pass (every interval) snapshots each project of catalog.db (one read
// transaction over catalog.db and ledger.db) into an in-memory database and
// serializes it. When its MD5 equals the newest uploaded snapshot's, nothing
// more happens. Otherwise the snapshot waits until the page store state it may
// refer to is in the bucket: the store position noted right after the
// snapshot (the newest segment and its size; the store is written before the
// catalog, so every timeline and LSN the snapshot names is within it) must be
// covered by the bucket's sealed segments (every older local segment, and that
// segment sealed) or by its tail chunks (tail/seg-NNNNNN.log/OFFSET, from 0,
// contiguous, up to that size). Then it goes up (PUT with Content-MD5, then
// HEAD: size and ETag), the descriptor after it, and catalog versions older
// than the newest kKeepCatalogVersions are deleted.
//
// WaitBackedUp(project_id) is `durability = "remote"` for catalog operations
// (docs/object-storage.md): it returns once a snapshot taken after the call
// is in the bucket, uploading the project's log first (upload_log) and then
// the snapshot itself, not waiting for the next pass; one such upload serves
// every caller that arrived before its snapshot was taken (group commit).
//
// Thread-safety: RunOnce(), WaitBackedUp() and stats() may be called from any
// thread; passes and waiters' uploads never overlap.
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_CATALOG_BACKUP_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_CATALOG_BACKUP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/env.h"
#include "base/status.h"
#include "objstore/s3_client.h"

namespace spdlog {
class logger;
}

namespace branchdb::server {

inline constexpr int kKeepCatalogVersions = 4;

struct CatalogBackupOptions {
  // Required: the server's data directory (catalog.db, ledger.db, projects/).
  std::string data_dir;
  // Key prefix without leading or trailing '/'; "" = keys start at PROJECT_ID.
  std::string prefix;
  // Default: a pass every 2000 ms. 0: no background thread (RunOnce only).
  int64_t interval_ms = 2000;
  // Required (not owned).
  Env* env = nullptr;
  // Required.
  std::shared_ptr<spdlog::logger> logger;
  // With [cluster]: asked (by project id) before a project's snapshot goes
  // up and again just before its PUT; gives the epoch this node owns the
  // project with, which names the keys. An error skips it and forgets its
  // versions (listed again once allowed: another owner may have uploaded
  // meanwhile). Default: every one, epoch 0.
  std::function<Result<int64_t>(const std::string& project_id)> may_upload;
  // With [cluster]: whether a project gone from the catalog may be marked
  // deleted in the bucket (not a stale copy a takeover replaced).
  std::function<bool(const std::string& project_id)> may_mark_deleted;
  // For WaitBackedUp: puts the project's log into the bucket up to its
  // durable end now (SegmentUploader::WaitUploaded), so that the snapshot's
  // store position is covered. Default (unset): the uploader's next pass.
  std::function<Status(const std::string& project_id)> upload_log;
};

struct CatalogBackupStats {
  // As of the last pass: projects whose newest catalog state is not in the
  // bucket yet (waiting for their page store, or failed).
  uint64_t pending_projects = 0;
  // Since start.
  uint64_t uploaded_snapshots = 0;
  uint64_t errors = 0;
  uint64_t passes = 0;  // passes completed
};

class CatalogBackup {
 public:
  // Starts the background thread (the bucket must exist).
  static Result<std::unique_ptr<CatalogBackup>> Start(CatalogBackupOptions options,
                                                      std::unique_ptr<objstore::S3Client> client);
  // Stops the thread (a pass in flight finishes first).
  ~CatalogBackup();
  CatalogBackup(const CatalogBackup&) = delete;
  CatalogBackup& operator=(const CatalogBackup&) = delete;

  // One pass now. OK when every project's newest state is in the bucket or
  // waits for its page store; else the first error (the others were tried).
  Status RunOnce();

  // Returns OK once a snapshot of the project (by id) taken after this call
  // is in the bucket with the log it needs (or the project is gone from the
  // catalog). Unavailable, reason "remote_durability_unavailable" (with S3's
  // error), when that upload failed, or one that started after this call
  // did; the ownership check's error (not_owner, lease_lost) as it is.
  // REQUIRES: what the caller waits for is durable locally.
  Status WaitBackedUp(const std::string& project_id);

  // `remote` durability of a project's deletion: returns once the deletion
  // mark (the descriptor {"deleted": true}) of the project (by id, gone from
  // catalog.db) is in the bucket, put now rather than by the next pass, so
  // that no restore brings the project back. OK at once for a stale copy
  // that a takeover replaced (may_mark_deleted). Unavailable, reason
  // "remote_durability_unavailable" (with S3's error), when the PUT failed.
  Status WaitDeleted(const std::string& project_id);

  CatalogBackupStats stats() const;

  struct Impl;

 private:
  explicit CatalogBackup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct Config;
namespace http {
class Metrics;
}

// The server's catalog backup for config's [object_storage] (REQUIRES:
// config.ObjectStorageEnabled()), with its /metrics families:
// branchdb_s3_catalog_pending_projects (gauge),
// branchdb_s3_catalog_uploads_total, branchdb_s3_catalog_errors_total,
// branchdb_s3_catalog_passes_total.
// REQUIRES: metrics outlives the backup, and is not rendered after it is gone.
// may_upload, may_mark_deleted, upload_log: CatalogBackupOptions'.
Result<std::unique_ptr<CatalogBackup>> StartCatalogBackup(
    const Config& config, Env* env, std::shared_ptr<spdlog::logger> logger,
    http::Metrics& metrics,
    std::function<Result<int64_t>(const std::string& project_id)> may_upload = {},
    std::function<bool(const std::string& project_id)> may_mark_deleted = {},
    std::function<Status(const std::string& project_id)> upload_log = {});

// Keys of a project's objects ("PREFIX/PROJECT_ID/..."; no "PREFIX/" when empty).
std::string ProjectKeyPrefix(const std::string& prefix, const std::string& project_id);
// Catalog snapshots and descriptors are named by the writer's epoch
// (bucket_log.h's EpochDir: nothing for epoch 0).
std::string CatalogObjectKey(const std::string& prefix, const std::string& project_id,
                             uint64_t version, int64_t epoch = 0);
std::string DescriptorKey(const std::string& prefix, const std::string& project_id,
                          int64_t epoch = 0);
// "tail/seg-NNNNNN.log/OOOOOOOOOOOOOOOO": a chunk of an unsealed segment's
// bytes from offset (written by the tail uploader, read by restore).
std::string TailChunkSuffix(const std::string& segment_name, uint64_t offset);

// Parsers for the names above; -1 when name is not of that form.
int64_t ParseSegmentNumber(const std::string& name);          // "seg-NNNNNN.log"
int64_t ParseCatalogVersion(const std::string& rest);          // "catalog/N.db"
// "tail/seg-NNNNNN.log/OFFSET": the segment's name and the offset.
bool ParseTailChunk(const std::string& rest, std::string* segment_name, uint64_t* offset);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_CATALOG_BACKUP_H_
