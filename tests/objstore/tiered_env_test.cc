// TieredEnv (server/object_storage/tiered_env.h) on the real Ceph RGW fixture:
// a project directory of segment files, some uploaded and recorded as the
// uploader records them; eviction replaces the verified sealed ones by stubs,
// and the page store's view (names, sizes, bytes) stays the same, read back
// from the bucket by ranged GETs. A dead endpoint fails reads with
// Unavailable (never Corruption), and an eviction cut at any step (every
// later call failing, as a crash) leaves the whole local file or a stub of a
// verified object, which a restarted env reads and finishes evicting.
#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "objstore/s3_client.h"
#include "server/object_storage/segment_uploader.h"
#include "server/object_storage/tiered_env.h"
#include "tests/objstore/ceph_s3.h"
#include "tests/objstore/server_bucket.h"

namespace branchdb::testing {
namespace {

using server::TieredEnv;
using server::TieredEnvOptions;

constexpr uint64_t kBlock = 64 * 1024;

std::string SegmentName(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "seg-%06llu.log", static_cast<unsigned long long>(n));
  return buf;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// data_dir/projects/p1/seg-00000N.log for N = 1..4 (sizes not block-aligned);
// 1, 2 and 4 in the bucket and recorded in p1.uploaded, 3 only local. 2 was
// uploaded by the owner of epoch 5 (a project taken over): its key is named
// by that epoch.
struct Project {
  explicit Project(const std::string& bucket_name) : bucket(bucket_name) {
    auto opened = objstore::S3Client::Open(SharedCephS3().Options(bucket));
    REQUIRE(opened.ok());
    client = std::move(*opened);
    REQUIRE(client->CreateBucketIfMissing().ok());
    Env* env = Env::Default();
    REQUIRE(env->CreateDirs(dir()).ok());
    REQUIRE(env->CreateDirs(dir_.Sub("data/object_storage")).ok());
    server::UploadRecord uploaded;
    for (uint64_t n = 1; n <= 4; ++n) {
      const std::string name = SegmentName(n);
      bytes[n] = RandomBytes(3 * kBlock + 1000 * n, static_cast<uint32_t>(n));
      REQUIRE(env->WriteFileAtomic(Path(n), bytes[n]).ok());
      if (n == 3) continue;
      auto put = client->Put(Key(n), bytes[n]);
      REQUIRE(put.ok());
      uploaded.sealed[name] = {bytes[n].size(), put->etag, Epoch(n)};
    }
    uploaded.tail = {"seg-000004.log", 0, 7};
    REQUIRE(env->WriteFileAtomic(server::UploadRecordPath(data_dir(), "p1"), uploaded.Format())
                .ok());
  }

  std::string data_dir() const { return dir_.Sub("data"); }
  std::string dir() const { return dir_.Sub("data/projects/p1"); }
  std::string Path(uint64_t n) const { return dir() + "/" + SegmentName(n); }
  static int64_t Epoch(uint64_t n) { return n == 2 ? 5 : 0; }
  std::string Key(uint64_t n) const {
    return server::SegmentObjectKey("pre", "p1", SegmentName(n), Epoch(n));
  }

  std::unique_ptr<TieredEnv> Open(Env* target, objstore::S3Options client_options) {
    TieredEnvOptions o;
    o.data_dir = data_dir();
    o.prefix = "pre";
    o.local_cache_bytes = 1;  // evict every segment it may
    o.block_bytes = kBlock;
    o.fetch_cache_bytes = 2 * kBlock;
    o.interval_ms = 0;
    o.logger = spdlog::default_logger();
    auto c = objstore::S3Client::Open(client_options);
    REQUIRE(c.ok());
    auto env = TieredEnv::Create(target, o, std::move(*c));
    REQUIRE(env.ok());
    return std::move(*env);
  }
  std::unique_ptr<TieredEnv> Open(Env* target = Env::Default()) {
    return Open(target, SharedCephS3().Options(bucket));
  }

  TempDir dir_;
  std::string bucket;
  std::unique_ptr<objstore::S3Client> client;
  std::map<uint64_t, std::string> bytes;
};

// The whole file through env, read in odd-sized pieces that cross blocks.
std::string ReadAll(RandomAccessFile& f, uint64_t size) {
  std::string out(size, '\0');
  for (uint64_t pos = 0; pos < size;) {
    auto n = f.Read(pos, std::min<uint64_t>(10007, size - pos), out.data() + pos);
    REQUIRE(n.ok());
    REQUIRE(*n > 0);
    pos += *n;
  }
  return out;
}

std::string ReadAll(Env& env, const std::string& path) {
  auto f = env.NewRandomAccessFile(path);
  INFO(path << ": " << (f.ok() ? "" : f.status().ToString()));
  REQUIRE(f.ok());
  auto size = env.GetFileSize(path);
  REQUIRE(size.ok());
  return ReadAll(**f, *size);
}

TEST_CASE("eviction replaces verified sealed segments by stubs and reads them back from the bucket") {
  Project p("tiered-evict");
  auto env = p.Open();
  auto before = env->NewRandomAccessFile(p.Path(1));  // open across the eviction
  REQUIRE(before.ok());
  REQUIRE(env->EvictOnce().ok());

  Env* raw = Env::Default();
  CHECK_FALSE(raw->FileExists(p.Path(1)));
  CHECK_FALSE(raw->FileExists(p.Path(2)));
  CHECK(raw->FileExists(server::EvictedStubPath(p.Path(1))));
  CHECK(raw->FileExists(p.Path(3)));  // not in the bucket
  CHECK(raw->FileExists(p.Path(4)));  // the newest: never
  CHECK(env->stats().evictions == 2);

  auto names = env->GetChildren(p.dir());
  REQUIRE(names.ok());
  std::sort(names->begin(), names->end());
  CHECK(*names == std::vector<std::string>{"seg-000001.log", "seg-000002.log", "seg-000003.log",
                                           "seg-000004.log"});
  for (uint64_t n = 1; n <= 4; ++n) {
    CHECK(env->FileExists(p.Path(n)));
    CHECK(*env->GetFileSize(p.Path(n)) == p.bytes[n].size());
    CHECK(ReadAll(*env, p.Path(n)) == p.bytes[n]);
  }
  CHECK(ReadAll(**before, p.bytes[1].size()) == p.bytes[1]);
  // A read past the end is short, as a local file's.
  char c;
  CHECK(*(*before)->Read(p.bytes[1].size(), 1, &c) == 0);
  const server::TierStats s = env->stats();
  CHECK(s.fetches >= 8);  // 4 blocks of each evicted segment
  CHECK(s.fetch_cache_bytes <= 2 * kBlock);

  // GC deletes the stub; the object stays in the bucket.
  REQUIRE(env->DeleteFile(p.Path(1)).ok());
  CHECK_FALSE(env->FileExists(p.Path(1)));
  CHECK_FALSE(raw->FileExists(server::EvictedStubPath(p.Path(1))));
  CHECK(p.client->Head(p.Key(1)).ok());

  // A restarted env sees the same.
  auto again = p.Open();
  CHECK(ReadAll(*again, p.Path(2)) == p.bytes[2]);
  CHECK_FALSE(again->FileExists(p.Path(1)));
}

TEST_CASE("a bucket that does not answer fails reads of evicted segments with Unavailable") {
  Project p("tiered-dead");
  REQUIRE(p.Open()->EvictOnce().ok());
  objstore::S3Options dead = SharedCephS3().Options(p.bucket);
  dead.endpoint = "http://127.0.0.1:" + std::to_string(FreeTcpPort());
  dead.max_attempts = 2;
  auto env = p.Open(Env::Default(), dead);
  auto f = env->NewRandomAccessFile(p.Path(1));  // the stub alone: no request
  REQUIRE(f.ok());
  char buf[100];
  auto r = (*f)->Read(0, sizeof buf, buf);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().IsUnavailable());
  CHECK(r.status().reason() == "object_storage_unavailable");
  CHECK(env->stats().errors >= 1);
  // Nothing was changed: the bucket back (another env), the bytes are there.
  CHECK(ReadAll(*p.Open(), p.Path(1)) == p.bytes[1]);
}

// Fails every creating, renaming, deleting or syncing call from the n-th on,
// as if the process died before it.
class CrashEnv : public EnvWrapper {
 public:
  CrashEnv(Env* target, int crash_at) : EnvWrapper(target), left_(crash_at) {}
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override {
    BRANCHDB_RETURN_IF_ERROR(Step());
    return EnvWrapper::NewWritableFile(path, mode);
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    BRANCHDB_RETURN_IF_ERROR(Step());
    return EnvWrapper::RenameFile(from, to);
  }
  Status DeleteFile(const std::string& path) override {
    BRANCHDB_RETURN_IF_ERROR(Step());
    return EnvWrapper::DeleteFile(path);
  }
  Status SyncDir(const std::string& dir) override {
    BRANCHDB_RETURN_IF_ERROR(Step());
    return EnvWrapper::SyncDir(dir);
  }
  bool crashed() const { return left_ < 0; }

 private:
  Status Step() {
    if (--left_ < 0) return Status::IOError("crashed");
    return Status::OK();
  }
  int left_;
};

TEST_CASE("an eviction cut at any step leaves the whole local file or a stub of a verified object") {
  for (int crash_at = 0;; ++crash_at) {
    INFO("crash at step " << crash_at);
    Project p("tiered-crash");
    CrashEnv crash(Env::Default(), crash_at);
    {
      auto env = p.Open(&crash);
      (void)env->EvictSegment(p.Path(2));
    }
    Env* raw = Env::Default();
    const bool local = raw->FileExists(p.Path(2));
    const bool stub = raw->FileExists(server::EvictedStubPath(p.Path(2)));
    if (local) CHECK(*raw->ReadFileToString(p.Path(2)) == p.bytes[2]);
    if (!local) CHECK(stub);
    auto restarted = p.Open();
    CHECK(ReadAll(*restarted, p.Path(2)) == p.bytes[2]);
    // The next pass finishes (or redoes) the eviction.
    REQUIRE(restarted->EvictOnce().ok());
    CHECK_FALSE(raw->FileExists(p.Path(2)));
    CHECK(ReadAll(*restarted, p.Path(2)) == p.bytes[2]);
    auto names = raw->GetChildren(p.dir());
    REQUIRE(names.ok());
    for (const std::string& name : *names) CHECK(name.find(".tmp") == std::string::npos);
    if (!crash.crashed()) break;  // every step ran
  }
}

}  // namespace
}  // namespace branchdb::testing
