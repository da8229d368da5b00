// Route registration, one function per resource (server/routes/<resource>.cc).
// Each handler parses and validates its request, calls a service, and maps the
// result (http::SendError for every failure).
#ifndef BRANCHDB_SERVER_ROUTES_ROUTES_H_
#define BRANCHDB_SERVER_ROUTES_ROUTES_H_

#include "server/services.h"

namespace branchdb::server {
namespace http {
class Router;
}

// GET /healthz, GET /metrics.
void RegisterHealthRoutes(http::Router& router, Services& services);

// POST /oauth/token|revoke|introspect, GET /.well-known/jwks.json and
// /.well-known/oauth-authorization-server.
void RegisterOAuthRoutes(http::Router& router, Services& services);

// POST|GET /v1/clients, DELETE /v1/clients/{id} (admin).
void RegisterClientRoutes(http::Router& router, Services& services);

// /v1/projects (projects.cc).
void RegisterProjectRoutes(http::Router& router, Services& services);
// POST|GET /v1/projects/{p}/branches (branches.cc).
void RegisterBranchRoutes(http::Router& router, Services& services);
// .../branches/{b}/sql|credentials|compute|schema (sql.cc), and the transfer routes.
void RegisterSqlRoutes(http::Router& router, Services& services);
// .../branches/{b}/export, /v1/projects/{p}/import, streamed (transfer.cc).
void RegisterTransferRoutes(http::Router& router, Services& services);
// .../branches/{b}/checkpoints|rollback|reset|diff (checkpoints.cc).
void RegisterCheckpointRoutes(http::Router& router, Services& services);
// POST /mcp (the MCP endpoint, server/mcp/), GET|DELETE /mcp (405),
// GET /.well-known/oauth-protected-resource (RFC 9728). Tool calls run the
// other routes through router.Dispatch.
void RegisterMcpRoutes(http::Router& router, Services& services);
// GET|PATCH|DELETE .../branches/{b}: REQUIRES every .../branches/{b}/<sub>
// route registered before (the branch pattern takes the rest of the path).
void RegisterBranchItemRoutes(http::Router& router, Services& services);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_ROUTES_ROUTES_H_
