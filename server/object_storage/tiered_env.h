// TieredEnv: with [object_storage] local_cache_mb > 0, the local directory is
// a bounded cache of the projects' sealed segments. The page stores' Env: it
// forwards every call to its target, except for the sealed segments it has
// EVICTED (docs/object-storage.md, "Eviction").
//
// Eviction (EvictOnce, or the env's own thread every interval_ms): while the
// local bytes of sealed segments plus the fetch cache exceed the budget, the
// least recently read segment (never read since start: the oldest first)
// that data_dir/object_storage/PROJECT_ID.uploaded records as verified in the
// bucket, with its size, whose object HEAD still shows with that size and
// ETag, and that is not its project's highest-numbered segment (the unsealed
// one), is evicted:
//   1. the stub PATH.s3 ("branchdb-evicted-segment 1", then "key", "size",
//      "etag" lines) is written, synced, renamed into place, the directory synced;
//   2. only then is PATH deleted (and the directory synced).
// A crash between the steps leaves both files: the local one is used, and the
// next pass deletes it. So at every point the segment is whole on disk, or
// its stub names a verified object.
//
// To the page store an evicted segment still exists: GetChildren lists
// PATH's name for PATH.s3, FileExists and GetFileSize answer from the stub,
// DeleteFile (GC, compaction) deletes the stub (the object stays in the
// bucket: nothing is deleted there before GC of the bucket proves it
// unreachable), and NewRandomAccessFile returns a file whose reads are ranged
// GETs of aligned blocks (block_bytes, 1 MiB) kept in an in-memory LRU fetch
// cache (fetch_cache_bytes, counted in the budget). A block shorter than its
// place in the object says fails the read with IOError; a bucket that does
// not answer (after the client's retries) fails it with Unavailable (reason
// "object_storage_unavailable"), never with Corruption, so the store never
// takes a bucket outage for damaged history. The page store's checksums
// check what came back. A segment file opened before its eviction switches
// to the bucket at its next read (its local bytes are freed at once).
//
// Thread-safety: every method may be called from any thread.
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_TIERED_ENV_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_TIERED_ENV_H_

#include <cstdint>
#include <memory>
#include <string>

#include "base/env.h"
#include "base/status.h"
#include "objstore/s3_client.h"

namespace spdlog {
class logger;
}

namespace branchdb::server {

struct TieredEnvOptions {
  // Required: the server's data directory (projects/<id>/ and object_storage/ under it).
  std::string data_dir;
  // Key prefix of the bucket's objects (SegmentObjectKey).
  std::string prefix;
  // The budget of the local bytes of sealed segments plus the fetch cache.
  // Default 0: never evict (segments are only fetched when a stub exists).
  uint64_t local_cache_bytes = 0;
  // Default: ranged GETs of 1 MiB aligned blocks, at most 64 MiB of them
  // cached in memory (counted in local_cache_bytes).
  uint64_t block_bytes = 1ull << 20;
  uint64_t fetch_cache_bytes = 64ull << 20;
  // Default: an eviction pass every 2000 ms. 0: no thread (EvictOnce only).
  int64_t interval_ms = 2000;
  // Required.
  std::shared_ptr<spdlog::logger> logger;
};

struct TierStats {
  // As of the last eviction pass: local bytes of sealed segments, and the
  // segments (and their bytes) served from the bucket.
  uint64_t local_bytes = 0;
  uint64_t evicted_segments = 0;
  uint64_t evicted_bytes = 0;
  // Now: bytes in the fetch cache.
  uint64_t fetch_cache_bytes = 0;
  // Since start.
  uint64_t evictions = 0;
  uint64_t fetches = 0;       // ranged GETs that succeeded
  uint64_t fetch_bytes = 0;   // their bytes
  uint64_t cache_hits = 0;    // block reads served by the fetch cache
  uint64_t cache_misses = 0;  // block reads that needed a GET
  uint64_t errors = 0;        // failed GETs, HEADs and eviction steps
};

class TieredEnv : public EnvWrapper {
 public:
  // Starts the eviction thread (when options.interval_ms > 0 and a budget is set).
  static Result<std::unique_ptr<TieredEnv>> Create(Env* target, TieredEnvOptions options,
                                                   std::unique_ptr<objstore::S3Client> client);
  ~TieredEnv() override;  // stops the thread

  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  bool FileExists(const std::string& path) override;
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override;
  Result<uint64_t> GetFileSize(const std::string& path) override;
  Status DeleteFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;

  // One eviction pass now (see above). OK when every eviction it tried
  // succeeded; else the first error (the pass goes on with the next segment).
  Status EvictOnce();
  // Evicts one segment (PATH of a sealed segment recorded as uploaded), also
  // under the budget. For tests and tools.
  Status EvictSegment(const std::string& path);

  TierStats stats() const;

  struct Impl;

 private:
  TieredEnv(Env* target, std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The stub's name for a segment file's path ("PATH.s3").
std::string EvictedStubPath(const std::string& segment_path);

// FailedPrecondition naming one stub when a project under data_dir/projects/
// has an evicted segment: a server without [object_storage] must not open
// such a store (its history would look truncated). OK otherwise.
Status CheckNoEvictedSegments(Env* env, const std::string& data_dir);

struct Config;
namespace http {
class Metrics;
}

// The server's TieredEnv over env for config's [object_storage] (REQUIRES:
// config.ObjectStorageEnabled()), its /metrics families registered:
// branchdb_s3_cache_local_bytes, branchdb_s3_cache_fetch_bytes,
// branchdb_s3_evicted_segments, branchdb_s3_evicted_bytes (gauges),
// branchdb_s3_evictions_total, branchdb_s3_fetches_total,
// branchdb_s3_fetch_bytes_total, branchdb_s3_cache_hits_total,
// branchdb_s3_cache_misses_total, branchdb_s3_cache_hit_ratio,
// branchdb_s3_tier_errors_total.
// REQUIRES: metrics is not rendered after the env is gone.
Result<std::unique_ptr<TieredEnv>> CreateTieredEnv(const Config& config, Env* env,
                                                   std::shared_ptr<spdlog::logger> logger,
                                                   http::Metrics& metrics);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_TIERED_ENV_H_
