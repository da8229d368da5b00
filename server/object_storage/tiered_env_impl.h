// TieredEnv's internals, shared by tiered_env.cc (the Env calls, the files
// read from the bucket, the fetch cache) and tiered_evict.cc (eviction).
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_TIERED_ENV_IMPL_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_TIERED_ENV_IMPL_H_

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "base/mutex.h"
#include "server/object_storage/pass_thread.h"
#include "server/object_storage/tiered_env.h"

namespace branchdb::server {

// What an evicted segment's stub records.
struct EvictedStub {
  std::string key;
  uint64_t size = 0;
  std::string etag;
};
// The number of a segment's file name "seg-NNNNNN.log" (docs/storage-format.md).
bool ParseSegmentName(std::string_view name, uint64_t* number);
std::string EncodeStub(const EvictedStub& stub);
Result<EvictedStub> DecodeStub(const std::string& path, const std::string& text);

// One segment file opened through the env: its local file until it is
// evicted, then its stub. Shared by the files opened on it (their reads);
// the env keeps a weak reference, so the local descriptor closes with the
// last file.
struct SegmentState {
  Mutex mu;
  std::shared_ptr<RandomAccessFile> local GUARDED_BY(mu);  // null once evicted
  std::shared_ptr<const EvictedStub> stub GUARDED_BY(mu);  // set when evicted
  std::shared_ptr<std::atomic<int64_t>> last_use;          // constant pointer
};

struct TieredEnv::Impl {
  Env* target = nullptr;
  TieredEnvOptions options;
  std::unique_ptr<objstore::S3Client> client;
  std::string projects_dir;  // data_dir/projects

  // Held across an eviction's steps and a segment's DeleteFile, so that GC
  // never deletes a segment between an eviction's check and its stub (which
  // would bring the segment back as a stub), and opening a file never falls
  // between the stub's rename and the local file's deletion.
  Mutex evict_mu ACQUIRED_BEFORE(mu);

  struct Tracked {
    std::weak_ptr<SegmentState> state;
    std::shared_ptr<std::atomic<int64_t>> last_use;  // monotonic nanos of the last read
  };
  mutable Mutex mu ACQUIRED_BEFORE(cache_mu);
  std::map<std::string, Tracked> tracked GUARDED_BY(mu);
  TierStats stats GUARDED_BY(mu);

  // The fetch cache: blocks by "KEY#BLOCK", most recently used first.
  using Block = std::shared_ptr<const std::string>;
  Mutex cache_mu;
  std::list<std::pair<std::string, Block>> lru GUARDED_BY(cache_mu);
  std::unordered_map<std::string, std::list<std::pair<std::string, Block>>::iterator> blocks
      GUARDED_BY(cache_mu);
  uint64_t cache_bytes GUARDED_BY(cache_mu) = 0;

  // True for PROJECTS_DIR/ID/seg-NNNNNN.log.
  bool IsSegmentPath(const std::string& path) const;
  // The tracked state of path (created when missing).
  std::shared_ptr<SegmentState> StateOf(const std::string& path) EXCLUDES(mu);
  // Bytes [offset, offset + n) of the evicted segment, from the fetch cache
  // or the bucket; short only at its end.
  Result<size_t> ReadRemote(const EvictedStub& stub, uint64_t offset, size_t n, char* scratch);
  Result<Block> FetchBlock(const EvictedStub& stub, uint64_t block);
  uint64_t CacheBytes() EXCLUDES(cache_mu);
  void CountError() EXCLUDES(mu);

  // tiered_evict.cc
  // Evicts until the local bytes are at most budget.
  Status EvictPass(uint64_t budget);
  struct Candidate;
  Status Evict(const Candidate& c);

  PassThread passes;  // the eviction passes (last: stopped before the rest goes)
};

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_TIERED_ENV_IMPL_H_
