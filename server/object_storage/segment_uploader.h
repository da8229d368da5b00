// SegmentUploader: with [object_storage] configured, uploads every project's
// log to the bucket and never deletes from it but the tail chunks of a
// segment whose sealed copy is in:
//   - sealed segments (immutable files), as PREFIX/PROJECT_ID/seg-NNNNNN.log
//     (keys named by the writer's epoch with [cluster]: bucket_log.h);
//   - the durable bytes of the unsealed (active) segment, as append-only
//     chunks PREFIX/PROJECT_ID/tail/seg-NNNNNN.log/OOOOOOOOOOOOOOOO (the
//     chunk's start offset, 16 decimal digits), holding bytes [O, O+len) of
//     that segment; a segment's chunks are contiguous from offset 0.
//
// Sealed segments need nothing from the page store but its documented file
// format (docs/storage-format.md): a pass lists data_dir/projects/*/, and a
// segment counts as sealed when its last 8 bytes are the trailer's magic
// "BRDBFTR1" and a higher-numbered segment exists (the store starts the next
// segment only after the seal is durable). The tail needs the store's
// DurableEnd() (options.durable_ends): only bytes an fdatasync covered go up.
//
// Each sealed upload is verified (HEAD: the size, and the ETag against the MD5
// of what was read, or its multipart form), each chunk by its PUT's ETag, and
// then recorded in data_dir/object_storage/PROJECT_ID.uploaded (one
// "NAME SIZE ETAG" line per sealed segment, " EPOCH" added when its key has
// one (bucket_log.h), then one "tail:NAME OFFSET LSN"
// line: the chunks' end and the LSN up to which every record of the project
// is in the bucket; rewritten atomically). A failed upload is retried on a
// later pass; after failures the passes back off (the interval doubled, up
// to 32 times the interval and at most 60 s).
//
// WaitUploaded(project, lsn) is `durability = "remote"`: it returns once every
// record up to lsn is in the bucket, uploading the tail itself when needed
// (group commit: one upload covers every waiter that arrived meanwhile).
//
// Thread-safety: all methods may be called from any thread. Passes never
// overlap; a project's uploads (a pass's, a waiter's) take its own lock.
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_SEGMENT_UPLOADER_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_SEGMENT_UPLOADER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "objstore/s3_client.h"
#include "server/object_storage/pass_thread.h"
#include "server/object_storage/segment_headers.h"
#include "storage/page_store.h"

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
  // Every project's durable end, by project id (the directory name under
  // projects/), with its name (for /metrics). Default (unset): no tail
  // uploads, sealed segments only.
  struct ProjectEnd {
    std::string name;
    storage::DurablePoint durable;
  };
  std::function<std::map<std::string, ProjectEnd>()> durable_ends;
  // Largest tail chunk (a longer durable tail goes up as several).
  // Default: 8 MiB.
  uint64_t max_chunk_bytes = 8ull << 20;
  // With [cluster]: asked (by project id) before a project's pass and before
  // every PUT; gives the epoch this node owns the project with, which names
  // the keys of that PUT (bucket_log.h). An error (reason not_owner,
  // lease_lost...) skips the project and forgets what this process knew of
  // its uploads (it is read again from its state file once allowed: a
  // takeover rewrites it). Default (unset): every project, epoch 0.
  std::function<Result<int64_t>(const std::string& project_id)> may_upload;
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
  // Tail chunks uploaded since start, and their bytes.
  uint64_t tail_chunks = 0;
  uint64_t tail_bytes = 0;
  // Per project id: the LSN up to which every record is in the bucket (its
  // sealed segments and tail chunks), as recorded; 0 when none yet.
  std::map<std::string, storage::Lsn> uploaded_lsn;
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

  // One pass now: uploads every sealed segment not yet uploaded and every
  // project's new durable tail bytes. OK when all went up; else the first
  // error (the others were still tried).
  Status RunOnce();

  // Returns OK once every record of project (its id) up to lsn is in the
  // bucket; uploads what is missing itself unless another waiter's upload
  // covers it. Unavailable (reason "remote_durability_unavailable", with
  // S3's error) when the upload failed, or another that started after this
  // call did. REQUIRES: lsn durable locally (PageStore::WaitDurable).
  Status WaitUploaded(const std::string& project, storage::Lsn lsn);

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
}  // namespace branchdb::server
namespace branchdb::catalog {
class Catalog;
}
namespace branchdb::server {

// The server's uploader for config's [object_storage] (REQUIRES:
// config.ObjectStorageEnabled()), with its /metrics families registered and
// read at every render: branchdb_s3_upload_lag_segments and _bytes (gauges),
// branchdb_s3_uploaded_segments_total and _bytes_total, branchdb_s3_errors_total,
// branchdb_s3_upload_passes_total, branchdb_s3_tail_chunks_total and
// _bytes_total, branchdb_s3_uploaded_lsn{project=NAME}. The projects' durable
// ends come from catalog.
// REQUIRES: metrics and catalog outlive the uploader, and metrics is not
// rendered after it is gone.
// may_upload: SegmentUploaderOptions::may_upload.
Result<std::unique_ptr<SegmentUploader>> StartSegmentUploader(
    const Config& config, Env* env, std::shared_ptr<spdlog::logger> logger,
    http::Metrics& metrics, catalog::Catalog* catalog,
    std::function<Result<int64_t>(const std::string& project_id)> may_upload = {});

// A project's upload record, data_dir/object_storage/PROJECT_ID.uploaded
// (UploadRecordPath): one line "NAME SIZE ETAG[ EPOCH]" per sealed segment
// verified in the bucket, as written or a compaction's output (EPOCH, the
// writer's, which names its key, when not 0), then the upload point
// "tail:NAME OFFSET LSN": the tail chunks of segment NAME end at OFFSET, and
// every record of the project up to LSN is in the bucket. Lines
// "skip:NAME 0 -" come from builds that left compactions' outputs out of the
// bucket (every segment such an output supersedes was in it): read as
// accounted for (CompactionOutputFate), never as uploaded; an output still on
// disk goes up now like any other, and its line goes. Written (atomically)
// by the uploader and by a restore; read by the uploader, by the catalog
// backup and by the tiering Env (tiered_env.h), which evicts only what it
// records sealed. Lines it cannot read are skipped (the file is rewritten
// whole).
struct UploadRecord {
  struct Sealed {
    uint64_t size = 0;
    std::string etag;
    int64_t epoch = 0;
  };
  struct Tail {
    std::string name;
    uint64_t offset = 0;
    uint64_t lsn = 0;
  };
  std::map<std::string, Sealed> sealed;  // by segment file name
  Tail tail;                              // name empty: no tail uploaded
  std::set<std::string> left_out;         // outputs an older build left out, by file name

  static UploadRecord Parse(std::string_view text);
  // The tail line comes last: a build that reads "NAME SIZE ETAG" lines only
  // takes it for a segment that does not exist, and ignores it.
  std::string Format() const;
};
std::string UploadRecordPath(const std::string& data_dir, const std::string& project_id);

// What sealed segment `name` in project directory dir is to the bucket
// (docs/object-storage.md, "Compaction's outputs"), by its header: a
// compaction's output or not, and for an output, whether the segments it
// supersedes are accounted for (`accounted`: verified in the bucket, or an
// output an older build left out, whose own originals were in it):
//   kRedundant: all of them: the bucket holds every record of the output;
//     it goes up (after the tail) to be evicted like any segment, and a
//     restore, which has the originals, drops it;
//   kWaits: one is still on disk, not yet up: it goes first (a restore in
//     between would find the output beside originals it does not supersede
//     in the bucket);
//   kOnlyCopy: one is gone without being accounted for (an older build
//     compacted it before its upload): the output may hold the only copy of
//     its live records, and goes up as a segment as written does (before the
//     tail, and remote commits wait for it).
// This build's GC rewrites only verified segments (RewritableSegments), so
// its outputs are always kRedundant; the other two are for stores of older
// builds.
enum class OutputFate { kNotOutput, kRedundant, kWaits, kOnlyCopy };
// headers (optional): what the file's header said is taken from there (a
// stat, no read, when it knows the file at its size).
OutputFate CompactionOutputFate(Env* env, const std::string& dir, const std::string& name,
                                const std::function<bool(const std::string&)>& accounted,
                                SegmentHeaders* headers = nullptr);

// Which of project_id's segments a compaction may rewrite or delete
// (storage::GcOptions::may_rewrite), as its upload record in data_dir says
// when this is called (read once; each GC asks again): a segment recorded
// verified in the bucket (uploaded whole: tail chunks do not count), as
// written or an output. Anything else stays on disk as written until a pass
// records it, so an output never supersedes a segment the bucket lacks
// (docs/object-storage.md, "Compaction's outputs"). Takes no lock (the
// uploader writes the record atomically, and records a segment there before
// it counts it anywhere): the GC that asks may hold its store's GC slot
// while the uploader waits on that store.
std::function<bool(uint64_t segment)> RewritableSegments(Env* env, const std::string& data_dir,
                                                         const std::string& project_id);

// The keys of a project's log, named by the writer's epoch (bucket_log.h),
// the one place that names them (the uploader writes them, a fetch reads a
// sealed segment back by the epoch its state line records):
// "PREFIX/PROJECT_ID/NAME" ("PROJECT_ID/NAME" without a prefix) for epoch 0,
// "PREFIX/PROJECT_ID/e/EEEEEEEEEEEEEEEE/NAME" for epoch E > 0.
std::string SegmentObjectKey(const std::string& prefix, const std::string& project_id,
                             const std::string& segment_name, int64_t epoch = 0);

// "seg-NNNNNN.log", as the store names its segment `number`
// (docs/storage-format.md).
std::string SegmentName(uint64_t number);

// "PREFIX/PROJECT_ID/[e/EEEEEEEEEEEEEEEE/]tail/NAME/OOOOOOOOOOOOOOOO"
// (offset: 16 decimal digits).
std::string TailChunkKey(const std::string& prefix, const std::string& project_id,
                         const std::string& segment_name, uint64_t offset, int64_t epoch = 0);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_SEGMENT_UPLOADER_H_
