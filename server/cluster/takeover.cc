// See takeover.h.
#include "server/cluster/takeover.h"

#include <spdlog/spdlog.h>

#include <cinttypes>
#include <cstdio>

#include "catalog/catalog.h"
#include "cluster/cluster.h"
#include "server/compute/supervisor.h"
#include "server/config.h"
#include "server/guard/guard.h"
#include "server/http/log_value.h"
#include "server/object_storage/bucket_log.h"
#include "server/object_storage/restore.h"

namespace branchdb::server {

Result<std::unique_ptr<Takeover>> Takeover::Create(const Config& config, Env* env, Services& s) {
  objstore::S3Options options = ObjectStorageClientOptions(config);
  options.clock = env->GetClock();
  auto client = objstore::S3Client::Open(options);
  if (!client.ok()) return client.status();
  return std::unique_ptr<Takeover>(new Takeover(config, env, s, std::move(*client)));
}

Takeover::Takeover(const Config& config, Env* env, Services& s,
                   std::unique_ptr<objstore::S3Client> client)
    : config_(config), env_(env), s_(s), client_(std::move(client)) {}

std::string Takeover::FenceKey(const std::string& prefix, const std::string& project_id,
                               int64_t epoch) {
  char digits[24];
  std::snprintf(digits, sizeof(digits), "%016" PRId64, epoch);
  return (prefix.empty() ? "" : prefix + "/") + project_id + "/epochs/" + digits;
}

// A copy of the project on this disk is from an earlier ownership of this
// node: its history may have gone on elsewhere since. Deleted (catalog rows,
// ledger rows, computes, then its directory once its last reference drops)
// before the bucket's copy comes in under the same id.
Status Takeover::DropStaleCopy(const std::string& project) {
  auto info = s_.catalog->GetProject(project);
  if (!info.ok()) return Status::OK();
  {
    MutexLock l(mu_);
    replaced_ids_.insert(info->id);  // no deletion mark for it in the bucket
  }
  BRANCHDB_RETURN_IF_ERROR(s_.catalog->DeleteProject(project, /*force=*/true));
  if (s_.guard != nullptr) s_.guard->ForgetProject(info->id);
  if (s_.computes != nullptr) s_.computes->RemoveByPrefix(project + "/");
  const std::string dir = JoinPath(JoinPath(config_.data_dir, "projects"), info->id);
  for (int i = 0; i < 200 && env_->FileExists(dir); ++i) env_->GetClock()->SleepForMicros(50'000);
  if (env_->FileExists(dir)) {
    return Status::Unavailable("the stale copy of " + project + " is still in use", "busy");
  }
  s_.logger->info("event=cluster_stale_copy_removed project={} project_id={}",
                  http::LogValue(project), info->id);
  return Status::OK();
}

Status Takeover::Run(const std::string& project, int64_t epoch) {
  const int64_t started = env_->GetClock()->NowMonotonicNanos();
  RestoreOptions options;
  options.data_dir = config_.data_dir;
  options.prefix = config_.object_storage_prefix;
  options.env = env_;
  options.logger = s_.logger;
  options.client_options = ObjectStorageClientOptions(config_);
  auto point =
      RestoreProject(options, *client_, project, [&] { return DropStaleCopy(project); });
  if (!point.ok()) return point.status().WithContext("restoring " + project + " from the bucket");
  // The fence: what this epoch starts from. Written once, before the
  // project is served (and before any upload of this epoch).
  FencePoint fence;
  fence.newest_sealed = point->newest_sealed;
  fence.tail_segment = point->tail_segment;
  fence.tail_offset = point->tail_offset;
  fence.catalog_epoch = point->catalog_epoch;
  fence.catalog_version = point->catalog_version;
  objstore::PutOptions once;
  once.if_none_match = true;
  auto put = client_->Put(
      FenceKey(config_.object_storage_prefix, point->id, epoch),
      FormatFence(epoch, config_.node_name, fence, env_->GetClock()->NowMicros()), once);
  if (!put.ok()) return put.status().WithContext("writing the fence of epoch " + std::to_string(epoch));
  auto adopted = s_.catalog->AdoptProject(point->id);
  if (!adopted.ok()) return adopted.status().WithContext("opening the restored " + project);
  s_.logger->info(
      "event=cluster_project_restored project={} project_id={} epoch={} segments={} bytes={} "
      "tail_segment={} tail_offset={} seconds={:.3f}",
      http::LogValue(project), point->id, epoch, point->sealed_segments, point->stats.bytes,
      point->tail_segment, point->tail_offset,
      static_cast<double>(env_->GetClock()->NowMonotonicNanos() - started) / 1e9);
  return Status::OK();
}

Result<int64_t> Takeover::MayUpload(const std::string& project_id) {
  cluster::ClusterNode* node = node_.load(std::memory_order_acquire);
  if (node == nullptr) return Status::Unavailable("not in the cluster yet", "not_owner");
  for (const catalog::ProjectInfo& p : s_.catalog->ListProjects()) {
    if (p.id == project_id) return node->CheckOwner(p.name);
  }
  // Deleted, or being restored (not adopted yet).
  return Status::Unavailable("project " + project_id + " is not in the catalog", "not_owner");
}

bool Takeover::MayMarkDeleted(const std::string& project_id) {
  MutexLock l(mu_);
  return replaced_ids_.count(project_id) == 0;
}

}  // namespace branchdb::server
