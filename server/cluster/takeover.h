// Takeover of a dead owner's project from the bucket (docs/cluster.md,
// "Takeover" and "Fencing"): with [cluster] and [object_storage], the node
// that won the project's etcd take (cluster::ClusterOptions::take_over) brings
// it here:
//   1. the project is restored from the bucket alone (RestoreProject);
//   2. a stale local copy (from an earlier ownership of this node) is deleted
//      from the catalog and its directory once the bucket's is downloaded
//      and verified (never for a restore that cannot be done), and never
//      mixed with it;
//   3. the fence of the new epoch, PREFIX/PROJECT_ID/epochs/EEEEEEEEEEEEEEEE
//      (a JSON object: the epoch, the node, the upload point it restored
//      from), is written once (If-None-Match: *) before the project is served;
//   4. the catalog adopts it (catalog::Catalog::AdoptProject).
// Its uploads start once the ownership is this node's (MayUpload).
//
// Thread-safety: safe for concurrent use.
#ifndef BRANCHDB_SERVER_CLUSTER_TAKEOVER_H_
#define BRANCHDB_SERVER_CLUSTER_TAKEOVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "base/env.h"
#include "base/mutex.h"
#include "base/status.h"
#include "objstore/s3_client.h"
#include "server/services.h"

namespace branchdb::server {

struct Config;

class Takeover {
 public:
  // REQUIRES: config.ObjectStorageEnabled() and config.clustered();
  // s.catalog set, and outliving this.
  static Result<std::unique_ptr<Takeover>> Create(const Config& config, Env* env, Services& s);

  // Brings project (taken with epoch) here, as above.
  Status Run(const std::string& project, int64_t epoch);

  // Whether this node may upload the project with this id now (its segments,
  // tail, catalog snapshots): only while it owns it by etcd (CheckWrite:
  // its lease by its own clock, then etcd's owner key).
  // OK with the epoch it owns the project with (which names the keys).
  Result<int64_t> MayUpload(const std::string& project_id);
  // The node, once it has joined the cluster (ApiServer::Bind, after the
  // uploader's thread, which asks MayUpload, has started). Until then
  // MayUpload refuses.
  void SetNode(cluster::ClusterNode* node) { node_.store(node, std::memory_order_release); }
  // Whether the catalog backup may mark a project gone from the catalog as
  // deleted in the bucket: not when a takeover removed it as a stale copy.
  bool MayMarkDeleted(const std::string& project_id);

  // The fence object's key: "PREFIX/PROJECT_ID/epochs/EEEEEEEEEEEEEEEE".
  static std::string FenceKey(const std::string& prefix, const std::string& project_id,
                              int64_t epoch);

 private:
  Takeover(const Config& config, Env* env, Services& s, std::unique_ptr<objstore::S3Client> client);
  Status DropStaleCopy(const std::string& project);

  const Config& config_;
  Env* const env_;
  Services& s_;
  const std::unique_ptr<objstore::S3Client> client_;
  std::atomic<cluster::ClusterNode*> node_{nullptr};
  Mutex mu_;
  std::set<std::string> replaced_ids_ GUARDED_BY(mu_);  // stale copies removed
};

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_CLUSTER_TAKEOVER_H_
