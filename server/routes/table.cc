// Registration of kApiRoutes (routes/table.h) with the router.
#include "server/routes/table.h"

#include <httplib.h>

#include "server/cluster/routing.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/http/router.h"
#include "server/object_storage/remote_durability.h"
#include "server/routes/audit.h"
#include "server/routes/call.h"
#include "server/routes/console.h"

namespace branchdb::server::routes {
namespace {

// `remote` durability of a catalog operation that succeeded: answered only
// once its catalog (or, for a deleted project, its deletion mark) is in the
// bucket, else 503 remote_durability_unavailable (the change stays locally:
// outcome unknown to the caller).
void WaitCatalog(Call& call) {
  Status s;
  if (!call.deleted_id.empty()) {
    if (call.deleted_remote) s = WaitDeletionRemoteDurable(call.s, call.deleted_id);
  } else {
    s = WaitCatalogRemoteDurable(
        call.s, call.catalog_project.empty() ? call.project : call.catalog_project);
  }
  if (!s.ok()) http::SendError(call.res, s.WithContext("the change could not be made durable"));
}

// Runs route's handler: in a cluster, a request of a project another node
// owns goes there instead (server/cluster/routing.h); then the bearer check
// of an Access::kOperation route (its refusal is the answer; a streamed body
// is discarded then).
void Run(const Route& route, Services& services, const httplib::Request& req,
         httplib::Response& res, http::RequestContext& ctx, const http::BodyReader* body) {
  if (cluster_routing::RouteToOwner(services, req, res, ctx.Param("project"), body)) return;
  Call call{services, req, res, ctx, ctx.Param("project"), ctx.Param("branch"), std::nullopt,
            body, "", "", false};
  if (route.access == Access::kOperation) {
    call.who =
        http::RequireAuth(services, req, res, ctx, route.operation, call.project, call.branch);
    if (!call.who) {
      if (body != nullptr) (void)(*body)([](const char*, size_t) { return true; });
      return RecordCall(route, call);
    }
  }
  route.handler(call);
  if ((route.flags & kCatalog) && res.status >= 200 && res.status < 300) WaitCatalog(call);
  RecordCall(route, call);
}

}  // namespace

void RegisterRoutes(http::Router& router, Services& services) {
  for (const Route& route : kApiRoutes) {
    http::RouteOptions options;
    options.admission = (route.flags & kAdmit) != 0;
    options.idempotent = (route.flags & kIdempotent) != 0;
    if (route.flags & kStreaming) {
      router.AddStreaming(route.path, options,
                          [&route, &services](const httplib::Request& req, httplib::Response& res,
                                              http::RequestContext& ctx,
                                              const http::BodyReader& read) {
                            Run(route, services, req, res, ctx, &read);
                          });
    } else {
      router.Add(route.method, route.path, options,
                 [&route, &services](const httplib::Request& req, httplib::Response& res,
                                     http::RequestContext& ctx) {
                   Run(route, services, req, res, ctx, nullptr);
                 });
    }
  }
  RegisterConsoleRoutes(router);  // not API routes: GET / and /console/{file}
  router.Install();
}

}  // namespace branchdb::server::routes
