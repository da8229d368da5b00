// Restore from the bucket: at the start of `branchdb serve` with
// [object_storage], before the catalog opens, every project the bucket holds
// (PREFIX/PROJECT_ID/ with a catalog snapshot, catalog_backup.h) that the data
// directory lacks is brought back: its sealed segments, the contiguous tail
// chunks of the segment after them, and its newest catalog snapshot, all as
// the fences of its epochs allow them (bucket_log.h).
//
// Per project: every object is downloaded and verified (its size, and its
// ETag against the MD5 of the bytes; the multipart form for large segments)
// into data_dir/restore/PROJECT_ID/, synced; the staged store is opened once
// (its recovery keeps a torn tail's whole records and writes the MANIFEST
// that names every file there; its durable end, with its last record's LSN,
// is the uploader's tail point), and the directory renamed to
// data_dir/projects/PROJECT_ID; then the snapshot's rows go into ledger.db
// and, last, catalog.db in one transaction. Only that commit makes the
// project exist: a crash before it leaves a directory without a catalog row,
// which the next start replaces by restoring again (and Catalog::Open would
// delete). The catalog's reconciliation drops branches whose timelines the
// restored store lacks.
//
// Not restored: projects whose descriptor says deleted; projects whose name is
// taken by another local project (logged); the server-wide auth state (OAuth
// clients, signing keys, revoked tokens: docs/object-storage.md, "Restore").
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_RESTORE_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_RESTORE_H_

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

struct RestoreOptions {
  // Required: the server's data directory.
  std::string data_dir;
  // Key prefix without leading or trailing '/'.
  std::string prefix;
  // Required (not owned).
  Env* env = nullptr;
  // Required.
  std::shared_ptr<spdlog::logger> logger;
  // The client's options (for the ETag that a downloaded segment must have).
  objstore::S3Options client_options;
};

struct RestoreStats {
  uint64_t projects = 0;    // restored
  uint64_t failed = 0;      // tried and failed (logged; tried again at the next start)
  uint64_t segments = 0;    // sealed segments downloaded
  uint64_t bytes = 0;       // segment and tail bytes downloaded
  uint64_t tail_bytes = 0;  // of which from tail chunks
  // Compactions' outputs in the bucket that a restore does not need (every
  // segment one supersedes is there: its header says so): only their
  // headers are read (docs/object-storage.md, "Restore").
  uint64_t outputs_skipped = 0;
};

// Restores every project of the bucket that the data directory lacks.
// Fails only when the bucket cannot be listed; a project that fails is logged
// (event=s3_restore_failed), counted and left out.
// REQUIRES: no catalog is open on data_dir.
Result<RestoreStats> RestoreProjects(const RestoreOptions& options, objstore::S3Client& client);

// Where a single project's restore left it: what a cluster's takeover writes
// in its fence (docs/cluster.md, "Fencing").
struct RestoredPoint {
  std::string id;    // the project's id (its directory and key prefix)
  std::string name;
  int64_t catalog_epoch = 0;     // the snapshot restored: its writer's epoch
  uint64_t catalog_version = 0;  // and version
  uint64_t sealed_segments = 0;  // sealed segments downloaded
  // The highest sealed segment's number in the bucket, a skipped output's
  // too (-1: none); the restored store numbers its segments above it.
  int64_t newest_sealed = -1;
  std::string tail_segment;      // the unsealed tail restored ("" when none)
  uint64_t tail_offset = 0;      // its bytes restored: the upload point
  RestoreStats stats;
};

// Restores the one project named name from the bucket (its live descriptor's
// name) into data_dir, as RestoreProjects restores each: staged, verified,
// renamed, then its rows into ledger.db and catalog.db; the caller then opens
// it (catalog::Catalog::AdoptProject). May run while the catalog is open (it
// takes no LOCK). NotFound when the bucket has no such project (nothing
// local is touched). When the local catalog has the project (its id or its
// name): AlreadyExists without replace_local; else replace_local() runs once
// the bucket's copy is downloaded and verified, and must remove the local
// copy (catalog rows and directory) before it is installed: never mixed,
// and never removed for a restore that cannot be done.
Result<RestoredPoint> RestoreProject(const RestoreOptions& options, objstore::S3Client& client,
                                     const std::string& name,
                                     std::function<Status()> replace_local = {});

struct Config;
namespace http {
class Metrics;
}

// RestoreProjects for config's [object_storage] (REQUIRES:
// config.ObjectStorageEnabled()): creates the bucket when missing, logs
// event=s3_restore with the counts and the time taken, and shows the counts in
// /metrics: branchdb_s3_restored_projects_total,
// branchdb_s3_restore_failed_projects_total, branchdb_s3_restored_bytes_total.
Result<RestoreStats> RestoreFromBucket(const Config& config, Env* env,
                                       std::shared_ptr<spdlog::logger> logger,
                                       http::Metrics& metrics);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_RESTORE_H_
