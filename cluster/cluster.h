// ClusterNode: this server's part in a cluster of branchdb nodes that share one
// etcd (docs/cluster.md). It
//   - registers PREFIX/nodes/NAME -> advertise_url under a lease of its own,
//     which a thread keeps alive (every TTL/3);
//   - owns projects: PREFIX/owners/PROJECT -> {"node","url","epoch"} under that
//     lease, taken by a transaction that succeeds only when no owner key exists
//     (a dead owner's key goes with its lease) and PREFIX/epochs/PROJECT is as
//     read; the epoch (PREFIX/epochs/PROJECT, no lease) grows by one on every
//     take, and is the project's fencing token (Epoch());
//   - keeps PREFIX/projects/PROJECT -> {"home": NAME}, the cluster-wide
//     registry of project names (no lease: a project whose owner is down still
//     exists);
//   - polls nodes and owners (and the prefixes of ClusterOptions::watches) every poll
//     interval, so that routing decisions need no etcd call in the common case.
// A node whose lease is lost (keepalive answers "not found", or no keepalive
// succeeded within the TTL) forgets its ownerships at once: CheckWrite refuses
// from that moment. It then registers again with a new lease and claims its
// local projects again, each with a new epoch, unless another node owns them.
//
// Thread-safety: every method is safe for concurrent use.
#ifndef BRANCHDB_CLUSTER_CLUSTER_H_
#define BRANCHDB_CLUSTER_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "cluster/etcd_client.h"

namespace spdlog {
class logger;
}

namespace branchdb::cluster {

struct ClusterOptions {
  std::vector<std::string> etcd_endpoints;  // required
  std::string node_name;                    // required, unique in the cluster
  std::string advertise_url;                // required: how other nodes reach this one
  // Every key lives under this prefix. Default: "/branchdb".
  std::string prefix = "/branchdb";
  // The node's lease. Default: 10 s. etcd grants at least about 2 s.
  int64_t lease_ttl_seconds = 10;
  // How often nodes and owners are re-read. Default: 500 ms.
  int64_t poll_interval_ms = 500;
  // The projects on this node's disk: claimed at start and after a lost lease.
  std::function<std::vector<std::string>()> local_projects;
  // Calls on_change (on the poll thread) whenever a key under PREFIX/suffix
  // changes, appears or goes (e.g. {"auth/", reload the auth state}).
  struct PrefixWatch {
    std::string suffix;
    std::function<void()> on_change;
  };
  std::vector<PrefixWatch> watches;
  // Takeover (docs/cluster.md, "Takeover"): when set, the node takes
  // registered projects that nobody owns (their owner's lease expired) and
  // whose home is another node, when it has no more projects than any other
  // live node (or the first to win etcd's transaction among those): the take
  // makes it the project's home and owner with the next epoch, then
  // take_over(project, epoch) runs (on a thread of its own) and must bring
  // the project here (restore it from the bucket, fence the older epochs,
  // open it). Until it returns the project is kTaking (503 here); when it
  // fails the ownership is given up for another try.
  std::function<Status(const std::string& project, int64_t epoch)> take_over;
  Clock* clock = nullptr;                  // required (monotonic time: lease deadline)
  std::shared_ptr<spdlog::logger> logger;  // default: spdlog's default logger
};

struct NodeInfo {
  std::string name;
  std::string url;
  int64_t lease = 0;
};

struct OwnerInfo {
  std::string project;
  std::string node;
  std::string url;
  int64_t epoch = 0;
};

// What etcd says now, for GET /v1/cluster.
struct ClusterView {
  std::vector<NodeInfo> nodes;        // live nodes (their lease holds)
  std::vector<OwnerInfo> owners;      // owned projects
  // Registered projects with no owner now (their home node is down).
  std::vector<std::pair<std::string, std::string>> unowned;  // {project, home}
  int64_t revision = 0;
};

// Where a request for a project goes.
struct Location {
  enum class Kind {
    kLocal,        // this node owns it
    kRemote,       // another live node owns it: forward to url
    kUnavailable,  // registered, but no node owns it now (home is down)
    kUnknown,      // not registered anywhere: a local answer (404, or create)
    kTaking,       // this node is taking it over (restoring it): not served yet
  };
  Kind kind = Kind::kUnknown;
  std::string node;  // kRemote, kUnavailable (the home)
  std::string url;   // kRemote
  int64_t epoch = 0;
};

class ClusterNode {
 public:
  // Registers this node, claims its local projects, starts the keepalive and
  // poll thread. Unavailable when etcd cannot be reached; AlreadyExists
  // ("node_name_taken") when a node of the same name stays registered for
  // longer than a lease TTL and 5 s (it is alive: a crashed one's lease expires).
  static Result<std::unique_ptr<ClusterNode>> Start(ClusterOptions options);
  // Stops the thread and revokes the lease (this node's keys go at once).
  ~ClusterNode();
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  const std::string& node_name() const;
  EtcdClient& etcd();

  // Where project lives (from the polled view; etcd is asked on a miss).
  Location Locate(const std::string& project);
  // Before a state-changing request of a project this node owns: OK only when
  // the lease has not expired by the local clock and etcd says this node owns
  // it with the same epoch. Unavailable ("lease_lost", "not_owner",
  // "etcd_unavailable") otherwise; the ownership is dropped when etcd says
  // another owner or epoch.
  Status CheckWrite(const std::string& project);
  // CheckWrite, giving the epoch it confirmed (what names this node's
  // uploads of the project: docs/cluster.md, "Fencing").
  Result<int64_t> CheckOwner(const std::string& project);
  // Registers a new project with this node as home and owner (epoch 1, or one
  // past the last epoch the name had). AlreadyExists ("project_exists") when
  // the name is registered (on any node).
  Result<int64_t> ClaimNew(const std::string& project);
  // Forgets a deleted project: its registry, owner and epoch keys.
  Status Release(const std::string& project);
  // Takeovers finished by this node since start (and failed ones).
  uint64_t TakeoverCount() const;
  uint64_t TakeoverFailures() const;
  // The fencing token of a project this node owns; nullopt otherwise.
  std::optional<int64_t> Epoch(const std::string& project) const;

  // Fresh from etcd.
  Result<ClusterView> View();
  // From the last poll (for /metrics).
  size_t LiveNodeCount() const;
  size_t OwnedProjectCount() const;
  bool LeaseHeld() const;

  class Impl;

 private:
  explicit ClusterNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace branchdb::cluster

#endif  // BRANCHDB_CLUSTER_CLUSTER_H_
