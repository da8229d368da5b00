// The per-project usage figures of Guard in /metrics (docs/api.md, "Metrics").
#ifndef BRANCHDB_SERVER_GUARD_USAGE_METRICS_H_
#define BRANCHDB_SERVER_GUARD_USAGE_METRICS_H_

namespace branchdb::catalog {
class Catalog;
}

namespace branchdb::server {
namespace http {
class Metrics;
}
namespace guard {
class Guard;

// Describes the families below and adds a collector that sets them, per
// project, from Guard::ProjectUsage (without the store scans of exclusive
// bytes). REQUIRES: guard and catalog outlive metrics' Render() calls.
//   branchdb_project_branches{project}
//   branchdb_project_logical_bytes{project}
//   branchdb_project_active_computes{project}
//   branchdb_project_commits_total{project}          (kept across restarts)
//   branchdb_project_requests_total{project}         (since start)
//   branchdb_project_compute_seconds_total{project}  (since start)
void AddUsageCollector(http::Metrics& metrics, Guard& guard, catalog::Catalog& catalog);

}  // namespace guard
}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_GUARD_USAGE_METRICS_H_
