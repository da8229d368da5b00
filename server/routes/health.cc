// GET /healthz: liveness (and the state of the layers below, when present).
// GET /metrics: Prometheus text exposition.
#include <httplib.h>

#include "server/http/errors.h"
#include "server/http/metrics.h"
#include "server/routes/call.h"

namespace branchdb::server::routes {

void HandleHealthz(Call& c) { http::SendJson(c.res, 200, {{"status", "ok"}}); }

void HandleMetrics(Call& c) {
  c.res.set_content(c.s.metrics->Render(), "text/plain; version=0.0.4");
}

}  // namespace branchdb::server::routes
