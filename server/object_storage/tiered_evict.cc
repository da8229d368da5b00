// TieredEnv's eviction (tiered_env.h): passes over every project's segments
// that keep the local bytes of sealed segments under the budget.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "server/object_storage/segment_uploader.h"
#include "server/object_storage/tiered_env_impl.h"

namespace branchdb::server {

namespace {

// The sealed segments that PROJECT_ID.uploaded records as verified in the
// bucket, with the epoch that names each one's key.
std::map<std::string, UploadRecord::Sealed> ReadUploaded(Env* env, const std::string& path) {
  auto text = env->ReadFileToString(path);
  if (!text.ok()) return {};
  return UploadRecord::Parse(*text).sealed;
}

}  // namespace

struct TieredEnv::Impl::Candidate {
  int64_t last_use = 0;
  std::string project;
  uint64_t number = 0;
  std::string dir;
  std::string name;
  uint64_t size = 0;
  std::string etag;
  int64_t epoch = 0;  // the uploader's, which names the key
};

// Evicts c (tiered_env.h: HEAD, stub written and synced, local file deleted).
Status TieredEnv::Impl::Evict(const Candidate& c) {
  const std::string key = SegmentObjectKey(options.prefix, c.project, c.name, c.epoch);
  auto head = client->Head(key);
  if (!head.ok()) return head.status().WithContext("evict " + c.project + "/" + c.name);
  if (head->size != c.size || head->etag != c.etag) {
    return Status::FailedPrecondition("evict " + c.project + "/" + c.name + ": the bucket's " +
                                          key + " has size " + std::to_string(head->size) +
                                          " and ETag " + head->etag + ", recorded " +
                                          std::to_string(c.size) + " and " + c.etag,
                                      "object_storage_mismatch");
  }
  const std::string path = JoinPath(c.dir, c.name);
  const std::string stub_path = EvictedStubPath(path);
  MutexLock e(evict_mu);
  auto size = target->GetFileSize(path);
  if (!size.ok() || *size != c.size) return Status::OK();  // deleted (GC) or changed meanwhile
  if (!target->FileExists(stub_path)) {
    EvictedStub stub{key, c.size, c.etag};
    BRANCHDB_RETURN_IF_ERROR(target->WriteFileAtomic(stub_path, EncodeStub(stub)));
  }
  // From here the segment is the bucket's: open files switch at their next read.
  auto stub_text = target->ReadFileToString(stub_path);
  if (!stub_text.ok()) return stub_text.status();
  auto stub = DecodeStub(stub_path, *stub_text);
  if (!stub.ok()) return stub.status();
  {
    MutexLock l(mu);
    if (auto it = tracked.find(path); it != tracked.end()) {
      if (auto state = it->second.state.lock()) {
        MutexLock s(state->mu);
        state->stub = std::make_shared<const EvictedStub>(std::move(*stub));
        state->local.reset();
      }
    }
  }
  BRANCHDB_RETURN_IF_ERROR(target->DeleteFile(path));
  BRANCHDB_RETURN_IF_ERROR(target->SyncDir(c.dir));
  MutexLock l(mu);
  ++stats.evictions;
  return Status::OK();
}

// Long: one pass lists every project, sums, sorts and evicts; split it and the
// candidates' bookkeeping spreads over several signatures for no clarity.
Status TieredEnv::Impl::EvictPass(uint64_t budget) {
  auto projects = target->GetChildren(projects_dir);
  if (!projects.ok()) return projects.status();
  std::vector<Candidate> candidates;
  uint64_t local_bytes = 0, evicted_segments = 0, evicted_bytes = 0;
  std::vector<Candidate> leftovers;  // a local file beside its stub: a crash mid-eviction
  for (const std::string& project : *projects) {
    const std::string dir = JoinPath(projects_dir, project);
    auto names = target->GetChildren(dir);
    if (!names.ok()) continue;  // not a directory
    std::map<uint64_t, std::string> local;  // number -> name
    std::map<uint64_t, std::string> stubs;
    uint64_t highest = 0;
    for (const std::string& name : *names) {
      uint64_t n = 0;
      if (name.size() > 7 && name.substr(name.size() - 7) == ".s3.tmp") {
        MutexLock e(evict_mu);  // not one being written: a crash's left-over
        (void)target->DeleteFile(JoinPath(dir, name));
        continue;
      }
      if (ParseSegmentName(name, &n)) {
        local[n] = name;
      } else if (name.size() > 3 && name.substr(name.size() - 3) == ".s3" &&
                 ParseSegmentName(name.substr(0, name.size() - 3), &n)) {
        stubs[n] = name;
      } else {
        continue;
      }
      highest = std::max(highest, n);
    }
    const std::map<std::string, UploadRecord::Sealed> uploaded =
        ReadUploaded(target, UploadRecordPath(options.data_dir, project));
    for (const auto& [n, name] : stubs) {
      auto text = target->ReadFileToString(JoinPath(dir, name));
      if (!text.ok()) continue;
      auto stub = DecodeStub(name, *text);
      if (!stub.ok()) continue;
      ++evicted_segments;
      evicted_bytes += stub->size;
    }
    for (const auto& [n, name] : local) {
      if (n == highest) continue;  // the unsealed segment (or the newest sealed): never
      auto size = target->GetFileSize(JoinPath(dir, name));
      if (!size.ok()) continue;
      Candidate c;
      c.project = project;
      c.number = n;
      c.dir = dir;
      c.name = name;
      c.size = *size;
      if (stubs.count(n) != 0) {
        auto it = uploaded.find(name);
        if (it != uploaded.end() && it->second.size == *size) {
          c.etag = it->second.etag;
          c.epoch = it->second.epoch;
          leftovers.push_back(std::move(c));
        }
        continue;
      }
      local_bytes += *size;
      auto it = uploaded.find(name);
      if (it == uploaded.end() || it->second.size != *size) continue;  // not verified in the bucket
      c.etag = it->second.etag;
      c.epoch = it->second.epoch;
      {
        MutexLock l(mu);
        if (auto t = tracked.find(JoinPath(dir, name)); t != tracked.end() && t->second.last_use) {
          c.last_use = t->second.last_use->load(std::memory_order_relaxed);
        }
      }
      candidates.push_back(std::move(c));
    }
  }
  Status first;
  for (const Candidate& c : leftovers) {  // finish what a crash interrupted
    if (Status s = Evict(c); !s.ok() && first.ok()) first = s;
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.last_use, a.number, a.project) < std::tie(b.last_use, b.number, b.project);
  });
  uint64_t total = local_bytes + CacheBytes();
  for (const Candidate& c : candidates) {
    if (total <= budget) break;
    Status s = Evict(c);
    if (!s.ok()) {
      CountError();
      options.logger->warn("event=s3_evict_failed project={} segment={} error=\"{}\"", c.project,
                           c.name, s.ToString());
      if (first.ok()) first = s;
      continue;
    }
    total -= c.size;
    local_bytes -= c.size;
    ++evicted_segments;
    evicted_bytes += c.size;
  }
  MutexLock l(mu);
  stats.local_bytes = local_bytes;
  stats.evicted_segments = evicted_segments;
  stats.evicted_bytes = evicted_bytes;
  return first;
}

Status TieredEnv::EvictOnce() {
  // With no budget, nothing is evicted: the statistics only.
  const uint64_t budget = impl_->options.local_cache_bytes;
  return impl_->EvictPass(budget == 0 ? UINT64_MAX : budget);
}

Status TieredEnv::EvictSegment(const std::string& path) {
  Impl& i = *impl_;
  if (!i.IsSegmentPath(path)) return Status::InvalidArgument(path + ": not a segment's path");
  const std::string dir = path.substr(0, path.rfind('/'));
  Impl::Candidate c;
  c.dir = dir;
  c.project = dir.substr(dir.rfind('/') + 1);
  c.name = path.substr(path.rfind('/') + 1);
  auto size = target()->GetFileSize(path);
  if (!size.ok()) return size.status();
  c.size = *size;
  const auto uploaded = ReadUploaded(target(), UploadRecordPath(i.options.data_dir, c.project));
  auto it = uploaded.find(c.name);
  if (it == uploaded.end() || it->second.size != c.size) {
    return Status::FailedPrecondition(path + ": not recorded as uploaded with its size",
                                      "not_uploaded");
  }
  c.etag = it->second.etag;
  c.epoch = it->second.epoch;
  auto names = GetChildren(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    uint64_t n = 0, mine = 0;
    if (ParseSegmentName(name, &n) && ParseSegmentName(c.name, &mine) &&
        n > mine) {
      return i.Evict(c);
    }
  }
  return Status::FailedPrecondition(path + ": the newest segment is never evicted", "newest_segment");
}

}  // namespace branchdb::server
