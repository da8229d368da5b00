// The API's routes, described once: method, path template as docs/openapi.yaml
// writes it, who may call it, how the router treats it, and its handler.
// Everything else is derived from kApiRoutes: the router's matching and
// registration (RegisterRoutes), admission of the routes that run SQL, the
// MCP tools' targets (server/mcp/tools.cc), the OpenAPI check
// (tests/server/api_test.cc) and the router fuzzer's routes (tests/fuzz).
// Adding a route: docs/architecture.md, "Adding a route".
//
// This header includes no httplib, SQLite or JSON, so that tools (the fuzz
// seed writer) can read the table; the handlers are declared here and defined
// per resource in server/routes/<resource>.cc (their Call: routes/call.h).
#ifndef BRANCHDB_SERVER_ROUTES_TABLE_H_
#define BRANCHDB_SERVER_ROUTES_TABLE_H_

#include <cstddef>
#include <string_view>

#include "auth/auth.h"

namespace branchdb::server {
struct Services;
namespace http {
class Router;
}

namespace routes {

struct Call;
using Handler = void (*)(Call& call);

// Who may call a route.
enum class Access {
  kPublic,     // no bearer token checked here (health, OAuth's own client
               // authentication, discovery metadata, MCP's own check)
  kOperation,  // a bearer token allowed `operation` on the path's {project}
               // and {branch}, checked before the handler (Call::who)
  kHandler,    // the handler checks it: the operation depends on the body or
               // query (`operation` names the usual one)
};

// Route flags.
inline constexpr unsigned kAdmit = 1;       // runs SQL or reads a whole branch: admission
inline constexpr unsigned kIdempotent = 2;  // POST honouring Idempotency-Key
inline constexpr unsigned kStreaming = 4;   // POST whose handler reads the body (Call::body)
// Changes the project's catalog (branches, labels, settings; the project's
// creation and deletion): in `remote` durability its 2xx waits for the
// catalog, or the deletion mark, in the bucket (RegisterRoutes).
inline constexpr unsigned kCatalog = 8;

struct Route {
  const char* method;  // "GET", "POST", "PATCH", "DELETE"
  const char* path;    // "/v1/projects/{project}/branches/{branch}/sql"
  Access access;
  auth::Operation operation;  // for kOperation and kHandler
  unsigned flags;
  Handler handler;
};

// --- handlers (server/routes/<resource>.cc) -------------------------------------
// health.cc
void HandleHealthz(Call&);
void HandleMetrics(Call&);
// oauth.cc
void HandleOAuthToken(Call&);
void HandleOAuthRevoke(Call&);
void HandleOAuthIntrospect(Call&);
void HandleJwks(Call&);
void HandleAuthServerMetadata(Call&);
void HandleOAuthAuthorize(Call&);
// mcp.cc
void HandleProtectedResourceMetadata(Call&);
void HandleMcp(Call&);
void HandleMcpNotAllowed(Call&);
// clients.cc
void HandleCreateClient(Call&);
void HandleListClients(Call&);
void HandleDeleteClient(Call&);
// projects.cc
void HandleCreateProject(Call&);
void HandleListProjects(Call&);
void HandleGetProject(Call&);
void HandleUpdateProject(Call&);
void HandleDeleteProject(Call&);
// branches.cc
void HandleCreateBranch(Call&);
void HandleListBranches(Call&);
void HandleGetBranch(Call&);
void HandleUpdateBranch(Call&);
void HandleDeleteBranch(Call&);
// sql.cc
void HandleSql(Call&);
void HandleSchema(Call&);
void HandleIssueCredential(Call&);
void HandleGetCompute(Call&);
void HandleSuspendCompute(Call&);
// transfer.cc
void HandleExport(Call&);
void HandleImport(Call&);
// checkpoints.cc
void HandleListCheckpoints(Call&);
void HandleLabelCheckpoint(Call&);
void HandleRollback(Call&);
void HandleReset(Call&);
void HandlePromote(Call&);
void HandleDiff(Call&);
// guard.cc
void HandleUsage(Call&);
void HandleProjectAudit(Call&);
void HandleServerAudit(Call&);
// cluster.cc
void HandleGetCluster(Call&);

// --- the table --------------------------------------------------------------------
// In the order the router fuzzer's corpus numbers them (tests/fuzz): append new
// routes at the end. Matching order is the router's (a template ending in
// {branch} after every other), whatever the order here.

#define BRANCHDB_BRANCH "/v1/projects/{project}/branches/{branch}"
inline constexpr Route kApiRoutes[] = {
    {"GET", "/healthz", Access::kPublic, {}, 0, HandleHealthz},
    {"GET", "/metrics", Access::kPublic, {}, 0, HandleMetrics},
    {"GET", "/.well-known/jwks.json", Access::kPublic, {}, 0, HandleJwks},
    {"GET", "/.well-known/oauth-authorization-server", Access::kPublic, {}, 0,
     HandleAuthServerMetadata},
    {"GET", "/.well-known/oauth-protected-resource", Access::kPublic, {}, 0,
     HandleProtectedResourceMetadata},
    // OAuth's answers carry secrets: never idempotency-cached.
    {"POST", "/oauth/token", Access::kPublic, {}, 0, HandleOAuthToken},
    {"POST", "/oauth/introspect", Access::kPublic, {}, 0, HandleOAuthIntrospect},
    {"POST", "/oauth/revoke", Access::kPublic, {}, 0, HandleOAuthRevoke},
    {"GET", "/v1/clients", Access::kOperation, auth::Operation::kManageClients, 0,
     HandleListClients},
    // The answer holds the client's secret: never stored.
    {"POST", "/v1/clients", Access::kOperation, auth::Operation::kManageClients, 0,
     HandleCreateClient},
    {"DELETE", "/v1/clients/{client_id}", Access::kOperation, auth::Operation::kManageClients, 0,
     HandleDeleteClient},
    {"GET", "/v1/projects", Access::kOperation, auth::Operation::kListProjects, 0,
     HandleListProjects},
    // Authorized on the name it asks for (a client restricted to projects).
    {"POST", "/v1/projects", Access::kHandler, auth::Operation::kCreateProject,
     kIdempotent | kCatalog, HandleCreateProject},
    {"GET", "/v1/projects/{project}", Access::kOperation, auth::Operation::kGetProject, 0,
     HandleGetProject},
    {"PATCH", "/v1/projects/{project}", Access::kOperation, auth::Operation::kUpdateProject,
     kCatalog, HandleUpdateProject},
    {"DELETE", "/v1/projects/{project}", Access::kOperation, auth::Operation::kDeleteProject,
     kCatalog, HandleDeleteProject},
    {"GET", "/v1/projects/{project}/branches", Access::kOperation,
     auth::Operation::kListBranches, 0, HandleListBranches},
    {"POST", "/v1/projects/{project}/branches", Access::kOperation,
     auth::Operation::kCreateBranch, kIdempotent | kCatalog, HandleCreateBranch},
    {"GET", BRANCHDB_BRANCH, Access::kOperation, auth::Operation::kGetBranch, 0,
     HandleGetBranch},
    {"PATCH", BRANCHDB_BRANCH, Access::kOperation, auth::Operation::kCreateBranch, kCatalog,
     HandleUpdateBranch},
    {"DELETE", BRANCHDB_BRANCH, Access::kOperation, auth::Operation::kDeleteBranch, kCatalog,
     HandleDeleteBranch},
    // sql:read; writes need sql:write too (else the script runs read-only).
    {"POST", BRANCHDB_BRANCH "/sql", Access::kOperation, auth::Operation::kSqlRead,
     kAdmit | kIdempotent, HandleSql},
    {"GET", BRANCHDB_BRANCH "/schema", Access::kOperation, auth::Operation::kGetBranch, kAdmit,
     HandleSchema},
    {"GET", BRANCHDB_BRANCH "/diff", Access::kOperation, auth::Operation::kDiffBranch, kAdmit,
     HandleDiff},
    {"GET", BRANCHDB_BRANCH "/export", Access::kOperation, auth::Operation::kExportBranch, kAdmit,
     HandleExport},
    {"GET", BRANCHDB_BRANCH "/checkpoints", Access::kOperation,
     auth::Operation::kListCheckpoints, 0, HandleListCheckpoints},
    {"POST", BRANCHDB_BRANCH "/checkpoints", Access::kOperation,
     auth::Operation::kCreateCheckpoint, kIdempotent | kCatalog, HandleLabelCheckpoint},
    {"POST", BRANCHDB_BRANCH "/rollback", Access::kOperation, auth::Operation::kRollbackBranch,
     kIdempotent | kCatalog, HandleRollback},
    {"POST", BRANCHDB_BRANCH "/reset", Access::kOperation, auth::Operation::kResetBranch,
     kIdempotent | kCatalog, HandleReset},
    // A protected parent also takes kPromoteProtectedBranch (checked by the handler).
    {"POST", BRANCHDB_BRANCH "/promote", Access::kOperation, auth::Operation::kPromoteBranch,
     kAdmit | kIdempotent | kCatalog, HandlePromote},
    {"GET", BRANCHDB_BRANCH "/compute", Access::kOperation, auth::Operation::kGetBranch, 0,
     HandleGetCompute},
    {"POST", BRANCHDB_BRANCH "/compute/suspend", Access::kOperation,
     auth::Operation::kCreateBranch, kIdempotent, HandleSuspendCompute},
    // The operation depends on the access asked for; the answer holds a
    // credential: never stored.
    {"POST", BRANCHDB_BRANCH "/credentials", Access::kHandler,
     auth::Operation::kIssueReadCredential, 0, HandleIssueCredential},
    // On the branch named by the query; needs sql:write too.
    {"POST", "/v1/projects/{project}/import", Access::kHandler, auth::Operation::kCreateBranch,
     kAdmit | kIdempotent | kStreaming | kCatalog, HandleImport},
    // MCP checks the bearer token itself (its 401 names the resource metadata);
    // each tool call is a Dispatch of another route, authorized there.
    {"POST", "/mcp", Access::kPublic, {}, 0, HandleMcp},
    {"GET", "/mcp", Access::kPublic, {}, 0, HandleMcpNotAllowed},
    {"DELETE", "/mcp", Access::kPublic, {}, 0, HandleMcpNotAllowed},
    // Named by the metadata (clients such as the MCP SDK require one); no
    // grant uses it: it refuses every request (client credentials only).
    {"GET", "/oauth/authorize", Access::kPublic, {}, 0, HandleOAuthAuthorize},
    // Quotas, usage and the audit trail (issue #18).
    {"GET", "/v1/projects/{project}/usage", Access::kOperation, auth::Operation::kGetProject, 0,
     HandleUsage},
    {"GET", "/v1/projects/{project}/audit", Access::kOperation, auth::Operation::kReadAudit, 0,
     HandleProjectAudit},
    {"GET", "/v1/audit", Access::kOperation, auth::Operation::kReadAudit, 0, HandleServerAudit},
    {"GET", "/v1/cluster", Access::kOperation, auth::Operation::kReadCluster, 0, HandleGetCluster},
};
#undef BRANCHDB_BRANCH

inline constexpr size_t kApiRouteCount = sizeof(kApiRoutes) / sizeof(kApiRoutes[0]);

// The index of route (method, path template) in kApiRoutes; kApiRouteCount
// when it has none.
constexpr size_t RouteIndex(std::string_view method, std::string_view path) {
  for (size_t i = 0; i < kApiRouteCount; ++i) {
    if (method == kApiRoutes[i].method && path == kApiRoutes[i].path) return i;
  }
  return kApiRouteCount;
}

// Adds every route of kApiRoutes to router, each running its handler with a
// Call (after the bearer check of an Access::kOperation route), and the web
// console's files (routes/console.h: not API routes), then installs them
// (http::Router::Install). REQUIRES: services outlives router.
void RegisterRoutes(http::Router& router, Services& services);

}  // namespace routes
}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_ROUTES_TABLE_H_
