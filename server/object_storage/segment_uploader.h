// SegmentUploader: with [object_storage] configured, uploads every project's
// sealed log segments (immutable files) to the bucket, as
// PREFIX/PROJECT_ID/seg-NNNNNN.log, and never deletes from it.
//
// It needs nothing from the page store but its documented file format
// (docs/storage-format.md): a pass lists data_dir/projects/*/, and a segment
// counts as sealed when its last 8 bytes are the trailer's magic "BRDBFTR1"
// and a higher-numbered segment exists (the store starts the next segment only
// after the seal is durable). The unsealed tail is never uploaded.
//
// Each upload is verified (HEAD: the size, and the ETag against the MD5 of
// what was read, or its multipart form) and then recorded in
// data_dir/object_storage/PROJECT_ID.uploaded (one "NAME SIZE ETAG" line per
// segment, rewritten atomically). A failed upload is retried on a later pass;
// after failures the passes back off (the interval doubled, up to 32 times
// the interval and at most 60 s).
//
// Thread-safety: RunOnce() and stats() may be called from any thread; passes
// never overlap (the background thread and RunOnce() share one lock).
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_SEGMENT_UPLOADER_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_SEGMENT_UPLOADER_H_

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

struct SegmentUploaderOptions {
  // Required: the server's data directory (projects/<id>/ under it).
  std::string data_dir;
  // Key prefix without leading or trailing '/'; "" = keys start at PROJECT_ID.
  std::string prefix;
  // Default: a pass every 2000 ms. 0: no background thread (RunOnce only).
  int64_t interval_ms = 2000;
  // Required (not owned).
  Env* env = nullptr;
  // Required.
  std::shared_ptr<spdlog::logger> logger;
  // The client's options (for the ETag that a verified upload must have).
  objstore::S3Options client_options;
};

struct UploadStats {
  // As of the last pass: sealed segments (and their bytes) not yet uploaded.
  uint64_t lag_segments = 0;
  uint64_t lag_bytes = 0;
  // Since start.
  uint64_t uploaded_segments = 0;
  uint64_t uploaded_bytes = 0;
  uint64_t errors = 0;  // failed uploads, verifications, reads and state writes
  uint64_t passes = 0;  // passes started
};

class SegmentUploader {
 public:
  // Creates the bucket when missing (an error here fails the start: a wrong
  // endpoint or key should stop the server, not be found days later), then
  // starts the background thread.
  static Result<std::unique_ptr<SegmentUploader>> Start(SegmentUploaderOptions options,
                                                        std::unique_ptr<objstore::S3Client> client);
  // Stops the thread (an upload in flight finishes first).
  ~SegmentUploader();
  SegmentUploader(const SegmentUploader&) = delete;
  SegmentUploader& operator=(const SegmentUploader&) = delete;

  // One pass now: uploads every sealed segment not yet uploaded. OK when all
  // went up; else the first error (the others were still tried).
  Status RunOnce();

  UploadStats stats() const;

  struct Impl;

 private:
  explicit SegmentUploader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct Config;
namespace http {
class Metrics;
}

// The server's uploader for config's [object_storage] (REQUIRES:
// config.ObjectStorageEnabled()), with its /metrics families registered and
// read at every render: branchdb_s3_upload_lag_segments and _bytes (gauges),
// branchdb_s3_uploaded_segments_total and _bytes_total, branchdb_s3_errors_total,
// branchdb_s3_upload_passes_total.
// REQUIRES: metrics outlives the uploader, and is not rendered after it is gone.
Result<std::unique_ptr<SegmentUploader>> StartSegmentUploader(
    const Config& config, Env* env, std::shared_ptr<spdlog::logger> logger,
    http::Metrics& metrics);

// "PREFIX/PROJECT_ID/NAME" ("PROJECT_ID/NAME" without a prefix).
std::string SegmentObjectKey(const std::string& prefix, const std::string& project_id,
                             const std::string& segment_name);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_SEGMENT_UPLOADER_H_
