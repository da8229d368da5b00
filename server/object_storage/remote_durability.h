// The `remote` durability mode (docs/object-storage.md): what a request
// waits for, after its local durability wait, before it answers.
//
// Thread-safety: safe for concurrent use (the uploader and the guard are).
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_REMOTE_DURABILITY_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_REMOTE_DURABILITY_H_

#include <string>

#include "base/status.h"
#include "storage/page_store.h"

namespace branchdb::server {

struct Services;

// The project's durability: its own setting (PATCH body `durability`), else
// [object_storage] durability; "local" without object storage.
std::string ProjectDurability(Services& s, const std::string& project);

// OK at once unless the project (by name) is in `remote` mode; then OK once
// every record up to lsn is in the bucket (SegmentUploader::WaitUploaded),
// else Unavailable, reason remote_durability_unavailable: the request must
// not be acknowledged. REQUIRES: lsn durable locally.
Status WaitRemoteDurable(Services& s, const std::string& project, storage::Lsn lsn);

// The same for a catalog operation of project (by name) that has just
// succeeded (a branch created, reset, deleted; a label; protection, TTL,
// settings; an import, a promotion): OK at once unless the project is in
// `remote` mode; then OK once its log and a catalog snapshot taken after the
// operation are in the bucket (CatalogBackup::WaitBackedUp), else
// Unavailable, reason remote_durability_unavailable (or the cluster's
// not_owner / lease_lost): the operation must not be acknowledged. A
// project gone from the catalog (deleted) is OK. REQUIRES: the operation's
// records and rows durable locally.
Status WaitCatalogRemoteDurable(Services& s, const std::string& project);

// The same for a project (by id) deleted in `remote` mode (the caller read
// its durability before the deletion): OK once its deletion mark is in the
// bucket (CatalogBackup::WaitDeleted), so that no restore brings it back;
// else Unavailable, reason remote_durability_unavailable. OK at once without
// object storage. REQUIRES: the project is gone from catalog.db.
Status WaitDeletionRemoteDurable(Services& s, const std::string& project_id);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_REMOTE_DURABILITY_H_
