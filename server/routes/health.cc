// GET /healthz: liveness (and the state of the layers below, when present).
// GET /metrics: Prometheus text exposition.
#include <httplib.h>

#include "server/http/errors.h"
#include "server/http/metrics.h"
#include "server/http/router.h"
#include "server/routes/routes.h"

namespace branchdb::server {

void RegisterHealthRoutes(http::Router& router, Services& services) {
  router.Get("/healthz", "/healthz",
             [&services](const httplib::Request&, httplib::Response& res, http::RequestContext&) {
               http::SendJson(res, 200, {{"status", "ok"}});
             });
  router.Get("/metrics", "/metrics",
             [&services](const httplib::Request&, httplib::Response& res, http::RequestContext&) {
               res.set_content(services.metrics->Render(), "text/plain; version=0.0.4");
             });
}

}  // namespace branchdb::server
