#include "server/object_storage/remote_durability.h"

#include "catalog/catalog.h"
#include "cluster/cluster.h"
#include "server/guard/guard.h"
#include "server/object_storage/catalog_backup.h"
#include "server/object_storage/segment_uploader.h"
#include "server/services.h"

namespace branchdb::server {

std::string ProjectDurability(Services& s, const std::string& project) {
  if (s.uploader == nullptr) return "local";
  if (s.guard != nullptr) {
    auto settings = s.guard->Settings(project);
    if (settings.ok() && settings->durability) return *settings->durability;
  }
  return s.config->object_storage_durability;
}

Status WaitRemoteDurable(Services& s, const std::string& project, storage::Lsn lsn) {
  if (s.uploader == nullptr || lsn == 0 || ProjectDurability(s, project) != "remote") {
    return Status::OK();
  }
  auto info = s.catalog->GetProject(project);
  if (!info.ok()) return info.status();
  BRANCHDB_RETURN_IF_ERROR(s.uploader->WaitUploaded(info->id, lsn));
  // A cluster: the upload may have finished after this node lost the
  // project (a pause, a partition), when a new owner may already have
  // restored without it. Acknowledged only if etcd still names this node
  // with the same epoch now (docs/cluster.md, "Fencing").
  if (s.cluster != nullptr) return s.cluster->CheckWrite(project);
  return Status::OK();
}

Status WaitCatalogRemoteDurable(Services& s, const std::string& project) {
  if (s.catalog_backup == nullptr || project.empty() ||
      ProjectDurability(s, project) != "remote") {
    return Status::OK();
  }
  auto info = s.catalog->GetProject(project);
  if (!info.ok()) return info.status().IsNotFound() ? Status::OK() : info.status();
  BRANCHDB_RETURN_IF_ERROR(s.catalog_backup->WaitBackedUp(info->id));
  // As WaitRemoteDurable: still this node's, with the same epoch, after it.
  if (s.cluster != nullptr) return s.cluster->CheckWrite(project);
  return Status::OK();
}

Status WaitDeletionRemoteDurable(Services& s, const std::string& project_id) {
  if (s.catalog_backup == nullptr) return Status::OK();
  return s.catalog_backup->WaitDeleted(project_id);
}

}  // namespace branchdb::server
