// GET /v1/cluster (admin): the cluster as etcd sees it now (docs/cluster.md).
//   {"enabled":true,"node":"a","lease_held":true,"revision":42,
//    "nodes":[{"name":"a","url":"http://...","alive":true},...],
//    "owners":[{"project":"shop","node":"a","url":"http://...","epoch":3},...],
//    "unowned_projects":[{"project":"crm","home":"b"}]}
// A node is listed alive while its lease holds; a node that is down is listed
// (alive false) when it is the home of a project nobody owns now. Without
// [cluster]: {"enabled":false,...} with empty lists. With [object_storage],
// "cache": this node's local cache of sealed segments (docs/object-storage.md,
// "Eviction"): {"local_bytes","evicted_segments","evicted_bytes",
// "fetch_cache_bytes","evictions","fetches","fetch_bytes","hit_ratio","errors"}.
#include <httplib.h>

#include <set>

#include "cluster/cluster.h"
#include "server/http/errors.h"
#include "server/object_storage/tiered_env.h"
#include "server/routes/call.h"
#include "server/routes/common.h"

namespace branchdb::server::routes {

using nlohmann::json;

namespace {

json CacheJson(const TieredEnv& env) {
  const TierStats s = env.stats();
  const uint64_t reads = s.cache_hits + s.cache_misses;
  return json{{"local_bytes", s.local_bytes},
              {"evicted_segments", s.evicted_segments},
              {"evicted_bytes", s.evicted_bytes},
              {"fetch_cache_bytes", s.fetch_cache_bytes},
              {"evictions", s.evictions},
              {"fetches", s.fetches},
              {"fetch_bytes", s.fetch_bytes},
              {"hit_ratio", reads == 0 ? 1.0 : static_cast<double>(s.cache_hits) / reads},
              {"errors", s.errors}};
}

}  // namespace

void HandleGetCluster(Call& c) {
  json out = {{"enabled", c.s.cluster != nullptr}, {"nodes", json::array()},
              {"owners", json::array()}, {"unowned_projects", json::array()}};
  if (c.s.tiered_env != nullptr) out["cache"] = CacheJson(*c.s.tiered_env);
  if (c.s.cluster == nullptr) return http::SendJson(c.res, 200, out);
  BRANCHDB_TRY_SEND(c.res, view, c.s.cluster->View());
  out["node"] = c.s.cluster->node_name();
  out["lease_held"] = c.s.cluster->LeaseHeld();
  out["revision"] = view->revision;
  std::set<std::string> alive;
  for (const cluster::NodeInfo& n : view->nodes) {
    alive.insert(n.name);
    out["nodes"].push_back(json{{"name", n.name}, {"url", n.url}, {"alive", true}});
  }
  for (const cluster::OwnerInfo& o : view->owners) {
    out["owners"].push_back(
        json{{"project", o.project}, {"node", o.node}, {"url", o.url}, {"epoch", o.epoch}});
  }
  for (const auto& [project, home] : view->unowned) {
    out["unowned_projects"].push_back(json{{"project", project}, {"home", home}});
    if (alive.insert(home).second) {
      out["nodes"].push_back(json{{"name", home}, {"url", nullptr}, {"alive", false}});
    }
  }
  http::SendJson(c.res, 200, out);
}

}  // namespace branchdb::server::routes
