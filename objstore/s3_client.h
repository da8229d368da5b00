// An S3 client for S3-compatible object stores (tested against Ceph's RADOS
// Gateway): path-style addressing on an http:// endpoint, AWS Signature V4
// header authentication with unsigned payloads (each PUT carries Content-MD5,
// which the server checks), retries with exponential backoff and full jitter.
//
// What is retried: transport failures (refused connection, timeouts), 5xx and
// 429 (SlowDown), up to Options::max_attempts in all; never any other 4xx.
// Errors come back as a Status whose reason is S3's error code ("NoSuchKey",
// "PreconditionFailed", ...; "transport_error" when no answer came) and whose
// message names the operation, the key, the HTTP status and S3's message:
//   404 -> NotFound, 412 -> FailedPrecondition, 409 -> Conflict,
//   401/403 -> PermissionDenied, other 4xx -> InvalidArgument,
//   5xx, 429 and transport failures (after the retries) -> Unavailable.
// The secret access key is never part of a message.
//
// Connections are kept alive and reused (up to 8 idle ones per client; a
// request takes an idle one or opens one, and a connection whose request
// failed is closed, never reused).
//
// Thread-safety: an S3Client is safe to use from many threads at once (each
// request has a connection of its own while it runs).
#ifndef BRANCHDB_OBJSTORE_S3_CLIENT_H_
#define BRANCHDB_OBJSTORE_S3_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"

namespace branchdb::objstore {

struct S3Options {
  // "http://127.0.0.1:9000" (scheme, host, optional port; no path). Required.
  std::string endpoint;
  // Required. Path-style: requests go to ENDPOINT/BUCKET/KEY.
  std::string bucket;
  // Default: us-east-1.
  std::string region = "us-east-1";
  // Required.
  std::string access_key_id;
  std::string secret_access_key;
  // Default: 2000 ms to connect; 30000 ms for each read or write on the socket.
  int64_t connect_timeout_ms = 2000;
  int64_t request_timeout_ms = 30000;
  // Default: 5 attempts per request; the wait before attempt n+1 is uniform in
  // [0, min(retry_max_ms, retry_base_ms * 2^n)] ("full jitter").
  int max_attempts = 5;
  int64_t retry_base_ms = 100;
  int64_t retry_max_ms = 5000;
  // Default: objects of 16 MiB and more go up in 8 MiB parts (multipart upload).
  // part_bytes must be at least 5 MiB (S3's minimum), except in tests of small
  // objects against servers that allow it.
  uint64_t multipart_threshold_bytes = 16ull << 20;
  uint64_t part_bytes = 8ull << 20;
  // Default: the real clock (request times; the waits between retries).
  Clock* clock = nullptr;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  // Without quotes. A single PUT's ETag is the MD5 of the object (hex); a
  // multipart upload's is MD5(concatenated parts' MD5s) + "-" + part count.
  std::string etag;
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  // Non-empty when more objects follow: pass it to the next List.
  std::string next_continuation_token;
};

struct PutOptions {
  // Send If-None-Match: * (the PUT fails with FailedPrecondition, reason
  // "PreconditionFailed", when the key exists).
  bool if_none_match = false;
};

// The ETag S3 gives an object uploaded as data (MD5 hex for a single PUT, the
// multipart form when data.size() >= options.multipart_threshold_bytes), for
// checking an upload against what was sent.
std::string ExpectedETag(std::string_view data, const S3Options& options);

// Returns InvalidArgument naming the field when an option is missing or wrong
// (endpoint not http://host[:port], empty bucket or keys, part size < 1 byte).
Status ValidateS3Options(const S3Options& options);

class S3Client {
 public:
  // REQUIRES: ValidateS3Options(options).ok() (else InvalidArgument).
  static Result<std::unique_ptr<S3Client>> Open(S3Options options);

  virtual ~S3Client() = default;
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Creates the bucket; OK when it exists already (and is ours).
  virtual Status CreateBucketIfMissing() = 0;

  // Uploads data as key (multipart when large, see S3Options), with Content-MD5
  // on every request. Returns the object's size and ETag (read back with HEAD
  // after a multipart upload, whose Complete answer may carry none).
  virtual Result<ObjectInfo> Put(std::string_view key, std::string_view data,
                                 const PutOptions& put = {}) = 0;

  // The whole object, or length bytes from offset (fewer at its end).
  virtual Result<std::string> Get(std::string_view key) = 0;
  virtual Result<std::string> GetRange(std::string_view key, uint64_t offset,
                                       uint64_t length) = 0;

  // Size and ETag; NotFound when there is no such key.
  virtual Result<ObjectInfo> Head(std::string_view key) = 0;

  // Deletes key; OK also when it did not exist (as S3 does).
  virtual Status Delete(std::string_view key) = 0;

  // One page (at most max_keys) of the keys that start with prefix, in key order.
  virtual Result<ListPage> List(std::string_view prefix, std::string_view continuation_token = {},
                                int max_keys = 1000) = 0;
  // Every key that starts with prefix (follows the continuation tokens).
  Result<std::vector<ObjectInfo>> ListAll(std::string_view prefix);

 protected:
  S3Client() = default;
};

}  // namespace branchdb::objstore

#endif  // BRANCHDB_OBJSTORE_S3_CLIENT_H_
