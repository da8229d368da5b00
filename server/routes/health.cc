// GET /healthz: {"status":"ok","damaged_projects":...} while the server serves.
// GET /metrics: Prometheus text exposition.
#include <httplib.h>

#include "catalog/catalog.h"
#include "server/http/errors.h"
#include "server/http/metrics.h"
#include "server/routes/call.h"

namespace branchdb::server::routes {

namespace {

// The damaged projects this caller may see by name: none without a valid
// bearer token (the health check is public, project names are not), else
// those it may list.
std::vector<catalog::ProjectDamage> VisibleDamage(Call& c,
                                                  std::vector<catalog::ProjectDamage> all) {
  std::string header = c.req.get_header_value("Authorization");
  auth::BearerError error;
  std::optional<auth::Principal> who;
  if (!header.empty() && !all.empty()) who = c.s.auth->Authenticate(header, &error);
  std::vector<catalog::ProjectDamage> out;
  for (catalog::ProjectDamage& d : all) {
    if (who && c.s.auth->Allows(*who, auth::Operation::kListProjects, d.project, "")) {
      out.push_back(std::move(d));
    }
  }
  return out;
}

}  // namespace

void HandleHealthz(Call& c) {
  nlohmann::json body{{"status", "ok"}};
  if (c.s.catalog != nullptr) {
    std::vector<catalog::ProjectDamage> all = c.s.catalog->DamagedProjects();
    body["damaged_project_count"] = all.size();
    body["damaged_projects"] = http::DamagedProjectsJson(VisibleDamage(c, std::move(all)));
  }
  http::SendJson(c.res, 200, body);
}

void HandleMetrics(Call& c) {
  c.res.set_content(c.s.metrics->Render(), "text/plain; version=0.0.4");
}

}  // namespace branchdb::server::routes
