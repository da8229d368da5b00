// GET /healthz: liveness (and the state of the layers below, when present:
// the projects whose store is damaged).
// GET /metrics: Prometheus text exposition.
#include <httplib.h>

#include "catalog/catalog.h"
#include "server/http/errors.h"
#include "server/http/metrics.h"
#include "server/http/router.h"
#include "server/routes/routes.h"

namespace branchdb::server {

void RegisterHealthRoutes(http::Router& router, Services& services) {
  router.Get("/healthz", "/healthz",
             [&services](const httplib::Request&, httplib::Response& res, http::RequestContext&) {
               nlohmann::json body{{"status", "ok"}};
               if (services.catalog != nullptr) {
                 body["damaged_projects"] =
                     http::DamagedProjectsJson(services.catalog->DamagedProjects());
               }
               http::SendJson(res, 200, body);
             });
  router.Get("/metrics", "/metrics",
             [&services](const httplib::Request&, httplib::Response& res, http::RequestContext&) {
               res.set_content(services.metrics->Render(), "text/plain; version=0.0.4");
             });
}

}  // namespace branchdb::server
