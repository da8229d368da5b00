// TieredEnv: the Env calls, the files of evicted segments read from the
// bucket by ranged GETs, and the fetch cache (tiered_env.h). Eviction is in
// tiered_evict.cc.
#include "server/object_storage/tiered_env.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <set>
#include <sstream>

#include "server/config.h"
#include "server/http/metrics.h"
#include "server/object_storage/tiered_env_impl.h"

namespace branchdb::server {

namespace {

constexpr std::string_view kStubSuffix = ".s3";
constexpr std::string_view kStubMagic = "branchdb-evicted-segment 1";

// A segment file as the page store sees it: its local file while there is
// one, else its stub's object in the bucket (switched by eviction).
class TieredFile : public RandomAccessFile {
 public:
  TieredFile(TieredEnv::Impl* impl, std::shared_ptr<SegmentState> state, Clock* clock)
      : impl_(impl), state_(std::move(state)), clock_(clock) {}

  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    std::shared_ptr<RandomAccessFile> local;
    std::shared_ptr<const EvictedStub> stub;
    Current(&local, &stub);
    if (local) return local->Read(offset, n, scratch);
    return impl_->ReadRemote(*stub, offset, n, scratch);
  }

  Result<size_t> ReadSplit(uint64_t offset, char* head, size_t head_n, size_t n,
                           char* scratch) const override {
    std::shared_ptr<RandomAccessFile> local;
    std::shared_ptr<const EvictedStub> stub;
    Current(&local, &stub);
    if (local) return local->ReadSplit(offset, head, head_n, n, scratch);
    return RandomAccessFile::ReadSplit(offset, head, head_n, n, scratch);  // through Read
  }

 private:
  void Current(std::shared_ptr<RandomAccessFile>* local,
               std::shared_ptr<const EvictedStub>* stub) const {
    state_->last_use->store(clock_->NowMonotonicNanos(), std::memory_order_relaxed);
    MutexLock l(state_->mu);
    *local = state_->local;
    *stub = state_->stub;
  }

  TieredEnv::Impl* const impl_;
  const std::shared_ptr<SegmentState> state_;
  Clock* const clock_;
};

}  // namespace

bool ParseSegmentName(std::string_view name, uint64_t* number) {
  constexpr std::string_view kPrefix = "seg-", kSuffix = ".log";
  if (name.size() <= kPrefix.size() + kSuffix.size() || name.substr(0, kPrefix.size()) != kPrefix ||
      !name.ends_with(kSuffix)) {
    return false;
  }
  std::string_view digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), *number);
  return r.ec == std::errc() && r.ptr == digits.data() + digits.size();
}

std::string EvictedStubPath(const std::string& segment_path) {
  return segment_path + std::string(kStubSuffix);
}

std::string EncodeStub(const EvictedStub& stub) {
  return std::string(kStubMagic) + "\nkey " + stub.key + "\nsize " + std::to_string(stub.size) +
         "\netag " + stub.etag + "\n";
}

Result<EvictedStub> DecodeStub(const std::string& path, const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  EvictedStub stub;
  bool magic = false, size = false;
  while (std::getline(lines, line)) {
    if (line == kStubMagic) {
      magic = true;
    } else if (line.rfind("key ", 0) == 0) {
      stub.key = line.substr(4);
    } else if (line.rfind("etag ", 0) == 0) {
      stub.etag = line.substr(5);
    } else if (line.rfind("size ", 0) == 0) {
      auto r = std::from_chars(line.data() + 5, line.data() + line.size(), stub.size);
      size = r.ec == std::errc() && r.ptr == line.data() + line.size();
    }
  }
  if (!magic || !size || stub.key.empty()) {
    return Status::IOError(path + ": not a stub of an evicted segment", "bad_evicted_stub");
  }
  return stub;
}

bool TieredEnv::Impl::IsSegmentPath(const std::string& path) const {
  if (path.size() <= projects_dir.size() + 1 || path.compare(0, projects_dir.size(), projects_dir) != 0 ||
      path[projects_dir.size()] != '/') {
    return false;
  }
  std::string_view rest = std::string_view(path).substr(projects_dir.size() + 1);
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  std::string_view name = rest.substr(slash + 1);
  uint64_t n = 0;
  return name.find('/') == std::string_view::npos && ParseSegmentName(name, &n);
}

std::shared_ptr<SegmentState> TieredEnv::Impl::StateOf(const std::string& path) {
  MutexLock l(mu);
  Tracked& t = tracked[path];
  if (!t.last_use) t.last_use = std::make_shared<std::atomic<int64_t>>(0);
  auto state = t.state.lock();
  if (!state) {
    state = std::make_shared<SegmentState>();
    state->last_use = t.last_use;
    t.state = state;
  }
  return state;
}

void TieredEnv::Impl::CountError() {
  MutexLock l(mu);
  ++stats.errors;
}

uint64_t TieredEnv::Impl::CacheBytes() {
  MutexLock l(cache_mu);
  return cache_bytes;
}

Result<TieredEnv::Impl::Block> TieredEnv::Impl::FetchBlock(const EvictedStub& stub,
                                                          uint64_t block) {
  const std::string id = stub.key + "#" + std::to_string(block);
  {
    MutexLock l(cache_mu);
    if (auto it = blocks.find(id); it != blocks.end()) {
      lru.splice(lru.begin(), lru, it->second);
      Block b = it->second->second;
      l.Unlock();
      MutexLock s(mu);
      ++stats.cache_hits;
      return b;
    }
  }
  const uint64_t offset = block * options.block_bytes;
  const uint64_t length = std::min(options.block_bytes, stub.size - offset);
  auto data = client->GetRange(stub.key, offset, length);
  {
    MutexLock s(mu);
    ++stats.cache_misses;
    if (data.ok()) {
      ++stats.fetches;
      stats.fetch_bytes += data->size();
    } else {
      ++stats.errors;
    }
  }
  if (!data.ok()) {
    const Status& e = data.status();
    if (e.IsNotFound()) {
      return Status::IOError("evicted segment " + stub.key + " is missing from the bucket: " +
                             e.message(), "object_storage_missing");
    }
    return Status::Unavailable("cannot read evicted history from object storage (" +
                                   stub.key + "): " + e.message() +
                                   "; try again once the bucket answers",
                               "object_storage_unavailable");
  }
  if (data->size() != length) {
    CountError();
    return Status::IOError("evicted segment " + stub.key + ": the bucket returned " +
                               std::to_string(data->size()) + " bytes at offset " +
                               std::to_string(offset) + ", expected " + std::to_string(length),
                           "object_storage_short_read");
  }
  auto b = std::make_shared<const std::string>(std::move(*data));
  MutexLock l(cache_mu);
  if (blocks.find(id) == blocks.end()) {
    lru.emplace_front(id, b);
    blocks[id] = lru.begin();
    cache_bytes += b->size();
    while (cache_bytes > options.fetch_cache_bytes && lru.size() > 1) {
      cache_bytes -= lru.back().second->size();
      blocks.erase(lru.back().first);
      lru.pop_back();
    }
  }
  return b;
}

Result<size_t> TieredEnv::Impl::ReadRemote(const EvictedStub& stub, uint64_t offset, size_t n,
                                           char* scratch) {
  if (offset >= stub.size) return size_t{0};
  n = static_cast<size_t>(std::min<uint64_t>(n, stub.size - offset));
  for (size_t done = 0; done < n;) {
    const uint64_t pos = offset + done;
    const uint64_t block = pos / options.block_bytes;
    auto b = FetchBlock(stub, block);
    if (!b.ok()) return b.status();
    const uint64_t in = pos - block * options.block_bytes;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n - done, (*b)->size() - in));
    std::memcpy(scratch + done, (*b)->data() + in, take);
    done += take;
  }
  return n;
}

TieredEnv::TieredEnv(Env* target, std::unique_ptr<Impl> impl)
    : EnvWrapper(target), impl_(std::move(impl)) {}

TieredEnv::~TieredEnv() { impl_->passes.Stop(); }

Result<std::unique_ptr<TieredEnv>> TieredEnv::Create(Env* target, TieredEnvOptions options,
                                                     std::unique_ptr<objstore::S3Client> client) {
  if (options.data_dir.empty() || !options.logger || !client || options.block_bytes == 0) {
    return Status::InvalidArgument("TieredEnv: data_dir, logger, client and block_bytes required");
  }
  auto impl = std::make_unique<Impl>();
  impl->target = target;
  impl->projects_dir = JoinPath(options.data_dir, "projects");
  impl->options = std::move(options);
  impl->client = std::move(client);
  std::unique_ptr<TieredEnv> env(new TieredEnv(target, std::move(impl)));
  Impl* i = env->impl_.get();
  if (i->options.local_cache_bytes > 0) {
    i->passes.Start(i->options.interval_ms, [i] {
      Status s = i->EvictPass(i->options.local_cache_bytes);
      if (!s.ok()) i->options.logger->warn("event=s3_evict_pass_failed error=\"{}\"", s.ToString());
      return s;
    });
  }
  return env;
}

Result<std::unique_ptr<RandomAccessFile>> TieredEnv::NewRandomAccessFile(const std::string& path) {
  Impl& i = *impl_;
  if (!i.IsSegmentPath(path)) return target()->NewRandomAccessFile(path);
  std::shared_ptr<SegmentState> state = i.StateOf(path);
  auto file = [&] {
    return std::make_unique<TieredFile>(&i, state, target()->GetClock());
  };
  {
    MutexLock l(state->mu);
    if (state->local || state->stub) return std::unique_ptr<RandomAccessFile>(file());
  }
  MutexLock e(i.evict_mu);  // not between a stub's rename and the local file's deletion
  if (target()->FileExists(path)) {
    auto local = target()->NewRandomAccessFile(path);
    if (!local.ok()) return local.status();
    MutexLock l(state->mu);
    if (!state->local && !state->stub) state->local = std::move(*local);
    return std::unique_ptr<RandomAccessFile>(file());
  }
  const std::string stub_path = EvictedStubPath(path);
  if (!target()->FileExists(stub_path)) return target()->NewRandomAccessFile(path);  // its error
  auto text = target()->ReadFileToString(stub_path);
  if (!text.ok()) return text.status();
  auto stub = DecodeStub(stub_path, *text);
  if (!stub.ok()) return stub.status();
  MutexLock l(state->mu);
  if (!state->local && !state->stub) {
    state->stub = std::make_shared<const EvictedStub>(std::move(*stub));
  }
  return std::unique_ptr<RandomAccessFile>(file());
}

bool TieredEnv::FileExists(const std::string& path) {
  if (target()->FileExists(path)) return true;
  return impl_->IsSegmentPath(path) && target()->FileExists(EvictedStubPath(path));
}

Result<std::vector<std::string>> TieredEnv::GetChildren(const std::string& dir) {
  auto names = target()->GetChildren(dir);
  if (!names.ok()) return names;
  std::set<std::string> present(names->begin(), names->end());
  std::vector<std::string> out;
  for (const std::string& name : *names) {
    uint64_t n = 0;
    if (name.ends_with(".s3.tmp")) continue;  // an eviction's stub being written
    if (name.ends_with(kStubSuffix)) {
      std::string segment = name.substr(0, name.size() - kStubSuffix.size());
      if (ParseSegmentName(segment, &n)) {
        if (present.count(segment) == 0) out.push_back(std::move(segment));
        continue;
      }
    }
    out.push_back(name);
  }
  return out;
}

Result<uint64_t> TieredEnv::GetFileSize(const std::string& path) {
  if (!impl_->IsSegmentPath(path) || target()->FileExists(path)) {
    return target()->GetFileSize(path);
  }
  const std::string stub_path = EvictedStubPath(path);
  if (!target()->FileExists(stub_path)) return target()->GetFileSize(path);  // its error
  auto text = target()->ReadFileToString(stub_path);
  if (!text.ok()) return text.status();
  auto stub = DecodeStub(stub_path, *text);
  if (!stub.ok()) return stub.status();
  return stub->size;
}

Status TieredEnv::RenameFile(const std::string& from, const std::string& to) {
  Status s = target()->RenameFile(from, to);
  if (impl_->IsSegmentPath(to)) {  // a new file under that name: opened afresh
    MutexLock l(impl_->mu);
    impl_->tracked.erase(to);
  }
  return s;
}

Status TieredEnv::DeleteFile(const std::string& path) {
  Impl& i = *impl_;
  if (!i.IsSegmentPath(path)) return target()->DeleteFile(path);
  MutexLock e(i.evict_mu);
  const std::string stub_path = EvictedStubPath(path);
  const bool evicted = target()->FileExists(stub_path);
  Status s = target()->DeleteFile(path);
  if (evicted) {
    if (s.IsNotFound()) s = Status::OK();
    // The object stays in the bucket (docs/object-storage.md): only the stub goes.
    if (Status d = target()->DeleteFile(stub_path); !d.ok() && s.ok()) s = d;
  }
  MutexLock l(i.mu);
  i.tracked.erase(path);
  return s;
}

TierStats TieredEnv::stats() const {
  TierStats s;
  {
    MutexLock l(impl_->mu);
    s = impl_->stats;
  }
  s.fetch_cache_bytes = impl_->CacheBytes();
  return s;
}

Status CheckNoEvictedSegments(Env* env, const std::string& data_dir) {
  const std::string projects = JoinPath(data_dir, "projects");
  if (!env->FileExists(projects)) return Status::OK();
  auto ids = env->GetChildren(projects);
  if (!ids.ok()) return ids.status();
  for (const std::string& id : *ids) {
    auto names = env->GetChildren(JoinPath(projects, id));
    if (!names.ok()) continue;  // not a directory
    for (const std::string& name : *names) {
      uint64_t n = 0;
      if (name.ends_with(kStubSuffix) &&
          ParseSegmentName(std::string_view(name).substr(0, name.size() - kStubSuffix.size()), &n)) {
        return Status::FailedPrecondition(
            "projects/" + id + "/" + name +
                ": segments of this data directory were evicted to object storage; configure "
                "[object_storage] (the same endpoint, bucket and prefix) to serve them",
            "evicted_segments");
      }
    }
  }
  return Status::OK();
}

Result<std::unique_ptr<TieredEnv>> CreateTieredEnv(const Config& config, Env* env,
                                                   std::shared_ptr<spdlog::logger> logger,
                                                   http::Metrics& metrics) {
  objstore::S3Options client_options = ObjectStorageClientOptions(config);
  client_options.clock = env->GetClock();
  auto client = objstore::S3Client::Open(client_options);
  if (!client.ok()) return client.status();
  TieredEnvOptions options;
  options.data_dir = config.data_dir;
  options.prefix = config.object_storage_prefix;
  options.local_cache_bytes = static_cast<uint64_t>(config.object_storage_local_cache_mb) << 20;
  if (options.local_cache_bytes > 0) {
    // A quarter of the budget, between one block and 64 MiB.
    options.fetch_cache_bytes =
        std::clamp<uint64_t>(options.local_cache_bytes / 4, options.block_bytes, 64ull << 20);
  }
  options.interval_ms = config.object_storage_upload_interval_ms;
  options.logger = logger;
  auto tiered = TieredEnv::Create(env, std::move(options), std::move(*client));
  if (!tiered.ok()) return tiered.status();
  logger->info("event=object_storage_cache local_cache_mb={}", config.object_storage_local_cache_mb);
  metrics.DescribeGauge("branchdb_s3_cache_local_bytes",
                        "Local bytes of sealed segments (as of the last eviction pass).");
  metrics.DescribeGauge("branchdb_s3_cache_fetch_bytes",
                        "Bytes of evicted segments held in the fetch cache.");
  metrics.DescribeGauge("branchdb_s3_evicted_segments",
                        "Sealed segments served from the bucket (evicted locally).");
  metrics.DescribeGauge("branchdb_s3_evicted_bytes", "Bytes of the evicted segments.");
  metrics.DescribeCounter("branchdb_s3_evictions_total", "Segments evicted from the local disk.");
  metrics.DescribeCounter("branchdb_s3_fetches_total",
                          "Ranged GETs of evicted segments' blocks that succeeded.");
  metrics.DescribeCounter("branchdb_s3_fetch_bytes_total", "Bytes fetched from evicted segments.");
  metrics.DescribeCounter("branchdb_s3_cache_hits_total",
                          "Block reads of evicted segments served by the fetch cache.");
  metrics.DescribeCounter("branchdb_s3_cache_misses_total",
                          "Block reads of evicted segments that needed a GET.");
  metrics.DescribeGauge("branchdb_s3_cache_hit_ratio",
                        "Fetch cache hits / (hits + misses) since start (1 before any).");
  metrics.DescribeCounter("branchdb_s3_tier_errors_total",
                          "Failed fetches of evicted segments and failed eviction steps.");
  metrics.AddCollector([t = tiered->get()](http::Metrics& m) {
    const TierStats s = t->stats();
    m.Set("branchdb_s3_cache_local_bytes", {}, static_cast<double>(s.local_bytes));
    m.Set("branchdb_s3_cache_fetch_bytes", {}, static_cast<double>(s.fetch_cache_bytes));
    m.Set("branchdb_s3_evicted_segments", {}, static_cast<double>(s.evicted_segments));
    m.Set("branchdb_s3_evicted_bytes", {}, static_cast<double>(s.evicted_bytes));
    m.SetCounter("branchdb_s3_evictions_total", {}, static_cast<double>(s.evictions));
    m.SetCounter("branchdb_s3_fetches_total", {}, static_cast<double>(s.fetches));
    m.SetCounter("branchdb_s3_fetch_bytes_total", {}, static_cast<double>(s.fetch_bytes));
    m.SetCounter("branchdb_s3_cache_hits_total", {}, static_cast<double>(s.cache_hits));
    m.SetCounter("branchdb_s3_cache_misses_total", {}, static_cast<double>(s.cache_misses));
    const uint64_t reads = s.cache_hits + s.cache_misses;
    m.Set("branchdb_s3_cache_hit_ratio", {},
          reads == 0 ? 1.0 : static_cast<double>(s.cache_hits) / static_cast<double>(reads));
    m.SetCounter("branchdb_s3_tier_errors_total", {}, static_cast<double>(s.errors));
  });
  return tiered;
}

}  // namespace branchdb::server
