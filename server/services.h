// Services: what route handlers reach. Owned by ApiServer; handlers get a
// reference. Pointers are never null once the server is built, except those
// marked optional (a layer the server was built without).
//
// Thread-safety: every service here is safe for concurrent use.
#ifndef BRANCHDB_SERVER_SERVICES_H_
#define BRANCHDB_SERVER_SERVICES_H_

#include <memory>

#include "base/env.h"
#include "server/config.h"
#include "server/sql/sandbox.h"

namespace spdlog {
class logger;
}

namespace branchdb::auth {
class AuthService;
}
namespace branchdb::catalog {
class Catalog;
}
namespace branchdb::cluster {
class ClusterNode;
}

namespace branchdb::server {

namespace http {
class Metrics;
class IdempotencyStore;
class Router;
}  // namespace http
namespace compute {
class ComputeSupervisor;
}
namespace guard {
class Guard;
}
class SegmentUploader;
class CatalogBackup;
class TieredEnv;

struct Services {
  const Config* config = nullptr;
  // Config::PublicUrl() of the bound port: what discovery metadata and
  // challenges name (never a request's Host header). Set before serving.
  std::string public_url;
  Env* env = nullptr;
  Clock* clock = nullptr;
  std::shared_ptr<spdlog::logger> logger;
  http::Metrics* metrics = nullptr;
  http::IdempotencyStore* idempotency = nullptr;
  compute::ComputeSupervisor* computes = nullptr;
  // The server's routes, for running one in-process (the MCP tools).
  const http::Router* router = nullptr;
  auth::AuthService* auth = nullptr;          // optional
  catalog::Catalog* catalog = nullptr;    // optional
  // Quotas, usage and the audit trail (server/guard/guard.h); optional.
  guard::Guard* guard = nullptr;
  // This node's part in a cluster ([cluster], docs/cluster.md); optional:
  // null on a single node. Set by Bind(), before serving.
  cluster::ClusterNode* cluster = nullptr;
  // With [object_storage]: the uploader, which `remote` durability waits on
  // (server/object_storage/remote_durability.h); optional.
  SegmentUploader* uploader = nullptr;
  // With [object_storage]: the catalog backup, which `remote` durability of
  // catalog operations waits on (remote_durability.h); optional.
  CatalogBackup* catalog_backup = nullptr;
  // With [object_storage]: the stores' Env, which evicts sealed segments and
  // reads them back (its statistics for GET /v1/cluster).
  TieredEnv* tiered_env = nullptr;
  // The sandbox of every SQL connection (computes, promote's replay), from config.
  sql::SandboxOptions sandbox;
};

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_SERVICES_H_
