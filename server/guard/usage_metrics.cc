#include "server/guard/usage_metrics.h"

#include "catalog/catalog.h"
#include "server/guard/guard.h"
#include "server/http/metrics.h"

namespace branchdb::server::guard {

void AddUsageCollector(http::Metrics& metrics, Guard& guard, catalog::Catalog& catalog) {
  metrics.DescribeGauge("branchdb_project_branches", "Branches of the project.");
  metrics.DescribeGauge("branchdb_project_logical_bytes",
                        "Sum of the project's branches' database sizes.");
  metrics.DescribeGauge("branchdb_project_active_computes", "Active computes of the project.");
  metrics.DescribeCounter("branchdb_project_commits_total",
                          "Commits acknowledged on the project (kept across restarts).");
  metrics.DescribeCounter("branchdb_project_requests_total",
                          "API requests on the project since the server started.");
  metrics.DescribeCounter("branchdb_project_compute_seconds_total",
                          "Seconds of SQL run on the project's computes since the server started.");
  metrics.AddCollector([&guard, &catalog](http::Metrics& m) {
    for (const auto& p : catalog.ListProjects()) {
      auto u = guard.ProjectUsage(p.name, "", false);
      if (!u.ok()) continue;  // a damaged or just deleted project: no figures
      const http::Labels labels = {{"project", p.name}};
      m.Set("branchdb_project_branches", labels, static_cast<double>(u->branches.size()));
      m.Set("branchdb_project_logical_bytes", labels, static_cast<double>(u->logical_bytes));
      m.Set("branchdb_project_active_computes", labels, static_cast<double>(u->active_computes));
      m.SetCounter("branchdb_project_commits_total", labels, static_cast<double>(u->commits));
      m.SetCounter("branchdb_project_requests_total", labels, static_cast<double>(u->requests));
      m.SetCounter("branchdb_project_compute_seconds_total", labels, u->compute_seconds);
    }
  });
}

}  // namespace branchdb::server::guard
