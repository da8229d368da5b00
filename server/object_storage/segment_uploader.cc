#include "server/object_storage/segment_uploader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "server/config.h"
#include "server/http/metrics.h"

namespace branchdb::server {
namespace {

constexpr std::string_view kTrailerMagic = "BRDBFTR1";  // docs/storage-format.md
// After failed passes the wait doubles, up to 32 intervals and at most this.
constexpr int64_t kMaxBackoffMs = 60000;
constexpr int kMaxBackoffDoublings = 5;

// The number of "seg-NNNNNN.log"; -1 for any other name.
int64_t SegmentNumber(const std::string& name) {
  constexpr std::string_view kPrefix = "seg-", kSuffix = ".log";
  if (name.size() <= kPrefix.size() + kSuffix.size() || name.rfind(kPrefix, 0) != 0 ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return -1;
  }
  const char* begin = name.data() + kPrefix.size();
  const char* end = name.data() + name.size() - kSuffix.size();
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(begin, end, n);
  return ec == std::errc() && ptr == end ? n : -1;
}

struct Uploaded {
  uint64_t size = 0;
  std::string etag;
};
using ProjectState = std::map<std::string, Uploaded>;  // segment name -> what is in the bucket

struct Pending {
  std::string project;
  std::string name;
  uint64_t size = 0;
};

}  // namespace

std::string SegmentObjectKey(const std::string& prefix, const std::string& project_id,
                             const std::string& segment_name) {
  return (prefix.empty() ? "" : prefix + "/") + project_id + "/" + segment_name;
}

struct SegmentUploader::Impl {
  SegmentUploaderOptions options;
  std::unique_ptr<objstore::S3Client> client;
  std::string projects_dir;
  std::string state_dir;

  Mutex pass_mu;  // held for a whole pass; before mu
  std::map<std::string, ProjectState> states GUARDED_BY(pass_mu);  // loaded on first use

  mutable Mutex mu ACQUIRED_AFTER(pass_mu);  // a leaf
  CondVar cv;
  bool stop GUARDED_BY(mu) = false;
  UploadStats stats GUARDED_BY(mu);
  std::thread thread;

  std::string StatePath(const std::string& project) const {
    return JoinPath(state_dir, project + ".uploaded");
  }

  ProjectState& State(const std::string& project) REQUIRES(pass_mu) {
    auto it = states.find(project);
    if (it != states.end()) return it->second;
    ProjectState state;
    auto text = options.env->ReadFileToString(StatePath(project));
    if (text.ok()) {
      std::istringstream lines(*text);
      std::string name, etag;
      uint64_t size = 0;
      while (lines >> name >> size >> etag) state[name] = {size, etag};
    }
    return states[project] = std::move(state);
  }

  Status WriteState(const std::string& project, const ProjectState& state) {
    std::string text;
    for (const auto& [name, u] : state) {
      text += name + " " + std::to_string(u.size) + " " + u.etag + "\n";
    }
    return options.env->WriteFileAtomic(StatePath(project), text, 0600);
  }

  Result<std::string> ReadAll(const std::string& path, uint64_t size) {
    auto file = options.env->NewRandomAccessFile(path);
    if (!file.ok()) return file.status();
    std::string data(size, '\0');
    for (uint64_t done = 0; done < size;) {
      auto n = (*file)->Read(done, size - done, data.data() + done);
      if (!n.ok()) return n.status();
      if (*n == 0) return Status::IOError(path + ": shorter than its size");
      done += *n;
    }
    return data;
  }

  // True when path ends with the trailer's magic.
  bool EndsWithTrailer(const std::string& path, uint64_t size) {
    if (size < kTrailerMagic.size()) return false;
    auto file = options.env->NewRandomAccessFile(path);
    if (!file.ok()) return false;
    char magic[8];
    auto n = (*file)->Read(size - sizeof(magic), sizeof(magic), magic);
    return n.ok() && *n == sizeof(magic) && std::string_view(magic, sizeof(magic)) == kTrailerMagic;
  }

  // The sealed segments of every project not yet uploaded.
  std::vector<Pending> FindPending() REQUIRES(pass_mu) {
    std::vector<Pending> pending;
    auto projects = options.env->GetChildren(projects_dir);
    if (!projects.ok()) return pending;
    std::sort(projects->begin(), projects->end());
    for (const std::string& project : *projects) {
      const std::string dir = JoinPath(projects_dir, project);
      auto names = options.env->GetChildren(dir);
      if (!names.ok()) continue;  // not a directory, or deleted meanwhile
      std::vector<std::pair<int64_t, std::string>> segments;
      for (const std::string& name : *names) {
        if (int64_t n = SegmentNumber(name); n >= 0) segments.emplace_back(n, name);
      }
      if (segments.size() < 2) continue;
      std::sort(segments.begin(), segments.end());
      segments.pop_back();  // the newest: the unsealed tail, or sealed a moment ago
      const ProjectState& state = State(project);
      for (const auto& [number, name] : segments) {
        if (state.count(name)) continue;
        const std::string path = JoinPath(dir, name);
        auto size = options.env->GetFileSize(path);
        if (!size.ok() || !EndsWithTrailer(path, *size)) continue;
        pending.push_back({project, name, *size});
      }
    }
    return pending;
  }

  // Uploads one segment, verifies it and records it.
  Status Upload(const Pending& p) REQUIRES(pass_mu) {
    const std::string path = JoinPath(JoinPath(projects_dir, p.project), p.name);
    auto data = ReadAll(path, p.size);
    if (!data.ok()) return data.status();
    const std::string key = SegmentObjectKey(options.prefix, p.project, p.name);
    auto put = client->Put(key, *data);
    if (!put.ok()) return put.status();
    auto head = client->Head(key);
    if (!head.ok()) return head.status();
    const std::string expected = objstore::ExpectedETag(*data, options.client_options);
    if (head->size != data->size() || head->etag != expected) {
      return Status::Corruption("uploaded " + key + " reads back as " +
                                std::to_string(head->size) + " bytes, ETag " + head->etag +
                                "; expected " + std::to_string(data->size()) + " bytes, ETag " +
                                expected);
    }
    ProjectState& state = State(p.project);
    state[p.name] = {data->size(), head->etag};
    Status written = WriteState(p.project, state);
    if (!written.ok()) {
      state.erase(p.name);  // uploaded again on a later pass: same bytes, same key
      return written.WithContext("upload state of project " + p.project);
    }
    return Status::OK();
  }

  Status Pass() {
    MutexLock pass(pass_mu);
    std::vector<Pending> pending = FindPending();
    uint64_t lag_bytes = 0;
    for (const Pending& p : pending) lag_bytes += p.size;
    {
      MutexLock l(mu);
      stats.lag_segments = pending.size();
      stats.lag_bytes = lag_bytes;
      ++stats.passes;
    }
    Status first;
    for (const Pending& p : pending) {
      {
        MutexLock l(mu);
        if (stop) break;
      }
      Status s = Upload(p);
      MutexLock l(mu);
      if (s.ok()) {
        --stats.lag_segments;
        stats.lag_bytes -= p.size;
        ++stats.uploaded_segments;
        stats.uploaded_bytes += p.size;
        options.logger->info("event=s3_segment_uploaded project={} segment={} bytes={}",
                             p.project, p.name, p.size);
        continue;
      }
      ++stats.errors;
      options.logger->warn("event=s3_upload_failed project={} segment={} error=\"{}\"", p.project,
                           p.name, s.ToString());
      if (first.ok()) first = s;
      // The bucket is unreachable: the rest waits for the next pass.
      if (s.IsUnavailable()) break;
    }
    return first;
  }

  void Loop() {
    int failures = 0;
    for (;;) {
      const bool ok = Pass().ok();
      failures = ok ? 0 : std::min(failures + 1, kMaxBackoffDoublings + 1);
      const int64_t wait_ms =
          std::min(kMaxBackoffMs, options.interval_ms << (failures > 0 ? failures - 1 : 0));
      MutexLock l(mu);
      if (stop) return;
      cv.WaitFor(mu, std::chrono::milliseconds(wait_ms));
      if (stop) return;
    }
  }
};

SegmentUploader::SegmentUploader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SegmentUploader::~SegmentUploader() {
  {
    MutexLock l(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.SignalAll();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<SegmentUploader>> SegmentUploader::Start(
    SegmentUploaderOptions options, std::unique_ptr<objstore::S3Client> client) {
  if (options.env == nullptr || !options.logger || options.data_dir.empty() || !client) {
    return Status::InvalidArgument("SegmentUploader: env, logger, data_dir and client are required");
  }
  BRANCHDB_RETURN_IF_ERROR(client->CreateBucketIfMissing().WithContext(
      "object storage bucket " + options.client_options.bucket));
  auto impl = std::make_unique<Impl>();
  impl->projects_dir = JoinPath(options.data_dir, "projects");
  impl->state_dir = JoinPath(options.data_dir, "object_storage");
  BRANCHDB_RETURN_IF_ERROR(options.env->CreateDirs(impl->state_dir));
  impl->options = std::move(options);
  impl->client = std::move(client);
  Impl* raw = impl.get();
  std::unique_ptr<SegmentUploader> uploader(new SegmentUploader(std::move(impl)));
  if (raw->options.interval_ms > 0) raw->thread = std::thread([raw] { raw->Loop(); });
  return uploader;
}

Status SegmentUploader::RunOnce() { return impl_->Pass(); }

Result<std::unique_ptr<SegmentUploader>> StartSegmentUploader(
    const Config& config, Env* env, std::shared_ptr<spdlog::logger> logger,
    http::Metrics& metrics) {
  SegmentUploaderOptions options;
  options.data_dir = config.data_dir;
  options.prefix = config.object_storage_prefix;
  options.interval_ms = config.object_storage_upload_interval_ms;
  options.env = env;
  options.logger = logger;
  options.client_options = ObjectStorageClientOptions(config);
  options.client_options.clock = env->GetClock();
  auto client = objstore::S3Client::Open(options.client_options);
  if (!client.ok()) return client.status();
  // Never the secret: the endpoint, bucket, prefix and key id only.
  logger->info("event=object_storage endpoint={} bucket={} prefix={} access_key_id={} durability={}",
               config.object_storage_endpoint, config.object_storage_bucket,
               config.object_storage_prefix, config.object_storage_access_key_id,
               config.object_storage_durability);
  auto uploader = SegmentUploader::Start(std::move(options), std::move(*client));
  if (!uploader.ok()) return uploader.status();
  metrics.DescribeGauge("branchdb_s3_upload_lag_segments",
                        "Sealed segments not yet uploaded to the bucket (as of the last pass).");
  metrics.DescribeGauge("branchdb_s3_upload_lag_bytes",
                        "Bytes of sealed segments not yet uploaded to the bucket.");
  metrics.DescribeCounter("branchdb_s3_uploaded_segments_total",
                          "Segments uploaded to the bucket and verified.");
  metrics.DescribeCounter("branchdb_s3_uploaded_bytes_total",
                          "Bytes of segments uploaded to the bucket and verified.");
  metrics.DescribeCounter("branchdb_s3_errors_total",
                          "Failed uploads, verifications, reads and upload-state writes.");
  metrics.DescribeCounter("branchdb_s3_upload_passes_total",
                          "Passes of the uploader over the projects' sealed segments.");
  metrics.AddCollector([u = uploader->get()](http::Metrics& m) {
    const UploadStats s = u->stats();
    m.Set("branchdb_s3_upload_lag_segments", {}, static_cast<double>(s.lag_segments));
    m.Set("branchdb_s3_upload_lag_bytes", {}, static_cast<double>(s.lag_bytes));
    m.SetCounter("branchdb_s3_uploaded_segments_total", {}, static_cast<double>(s.uploaded_segments));
    m.SetCounter("branchdb_s3_uploaded_bytes_total", {}, static_cast<double>(s.uploaded_bytes));
    m.SetCounter("branchdb_s3_errors_total", {}, static_cast<double>(s.errors));
    m.SetCounter("branchdb_s3_upload_passes_total", {}, static_cast<double>(s.passes));
  });
  return uploader;
}

UploadStats SegmentUploader::stats() const {
  MutexLock l(impl_->mu);
  return impl_->stats;
}

}  // namespace branchdb::server
