// The server's side of a cluster (docs/cluster.md): every request of a
// project goes to the project's owner node. Without [cluster]
// (Services::cluster null) every function here does nothing.
//
// A request for a project another node owns is forwarded to it (a reverse
// proxy, not a redirect: the SDKs, the CLI and @libsql/client then need
// nothing of the cluster, and the caller's Authorization reaches the owner
// unchanged, which browsers' and Python's redirect handling would drop across
// origins). The request body is streamed to the owner; the owner's status,
// headers and body come back as they are, the body streamed too. A forwarded
// request carries X-Branchdb-Forwarded-By: <node>; a node that receives one
// for a project it does not own answers 503 (never forwards twice).
//
// Thread-safety: as Services.
#ifndef BRANCHDB_SERVER_CLUSTER_ROUTING_H_
#define BRANCHDB_SERVER_CLUSTER_ROUTING_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "server/http/router.h"
#include "server/services.h"

namespace branchdb::server::cluster_routing {

// Before a route of project runs: true when the request was answered here
// (forwarded to the owner, or refused: 503 project_unavailable when the
// owner is down, lease_lost / not_owner when this node may no longer write
// it); false when this node serves it. body: a streaming route's body
// reader (nullptr: the body is in req.body).
bool RouteToOwner(Services& s, const httplib::Request& req, httplib::Response& res,
                  const std::string& project, const http::BodyReader* body);

// Registers a new project's name in the cluster with this node as owner,
// before the catalog creates it. AlreadyExists ("project_exists") when any
// node has it. OK without a cluster.
Status ClaimProject(Services& s, const std::string& project);
// Forgets a project's name (deleted, or its creation failed).
void ReleaseProject(Services& s, const std::string& project);

// GET /v1/projects in a cluster, which lists the projects of every node.
// ListsHere: whether this node lists a project of its own disk (it owns it,
// or the cluster has never heard of it; not a stale copy another node took
// over). Without a cluster: true.
bool ListsHere(Services& s, const std::string& project);
// A node's own listing is all a forwarded request (X-Branchdb-Forwarded-By)
// gets. Otherwise every other live node is asked for its own with the
// caller's Authorization (in parallel, each for at most kListTimeoutSeconds),
// and its projects are appended to *projects; the nodes that did not answer
// 200 (or etcd, when the live nodes cannot be read) to *unreachable. Without
// a cluster: nothing.
inline constexpr int kListTimeoutSeconds = 5;
void GatherProjects(Services& s, const httplib::Request& req, nlohmann::json* projects,
                    std::vector<std::string>* unreachable);

}  // namespace branchdb::server::cluster_routing

#endif  // BRANCHDB_SERVER_CLUSTER_ROUTING_H_
