// ComputeSupervisor: the running part of every branch ("compute"): its SQLite
// connection, hardened by the SQL sandbox, and SQLite's page cache with it.
//
// A compute starts on first use (cold start: open + harden, latency measured),
// is suspended (connection closed) after idle_timeout of no use by Sweep(),
// normally called by the supervisor's own background thread, and resumes
// transparently on the next Acquire(). A budget caps the number of active
// computes: when a cold start would exceed it, the least recently used idle
// compute is suspended first; when every active compute is in use, Acquire()
// fails with ResourceExhausted (reason "compute_budget").
//
// Leases: Acquire() returns a Lease that gives exclusive use of the branch's
// connection (requests on one branch are serialized, as a SQLite connection
// allows one thread at a time) and pins the compute: it is never suspended,
// invalidated or closed while leased. Invalidate() (branch moved: rollback,
// reset, promote) and Remove() (branch or project deleted) close the
// connection at once when idle, or when the last lease is released.
// Connections are closed after the supervisor's lock is released: closing
// the last connection of a deleted project removes its files.
//
// Generic over a ConnectionFactory, so tests open native SQLite files and the
// server opens branchdb VFS connections.
//
// Times come from the injected Clock (idle and last-used from NowMicros,
// cold-start latency from NowMonotonicNanos).
//
// Thread-safety: all methods are safe for concurrent use. A Lease is used by
// one thread and must not outlive the supervisor.
#ifndef BRANCHDB_SERVER_COMPUTE_SUPERVISOR_H_
#define BRANCHDB_SERVER_COMPUTE_SUPERVISOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/env.h"
#include "base/mutex.h"
#include "base/status.h"
#include "server/sql/sandbox.h"

namespace branchdb::server::compute {

// Opens the connection of a compute, by key (e.g. "<project>/<branch>").
using ConnectionFactory = std::function<Result<storage::SqliteHandle>(const std::string& key)>;

struct SupervisorOptions {
  Clock* clock = nullptr;            // required; not owned
  ConnectionFactory open;            // required
  sql::SandboxOptions sandbox;       // applied to every connection (clock filled in)
  int64_t idle_timeout_seconds = 300;  // default per compute; 0 = never suspend
  int budget = 64;                   // active computes at most
  // Background sweeper period; 0 = no background thread (tests call Sweep()).
  int64_t sweep_interval_seconds = 5;
  // Called after every cold start with its latency (for metrics).
  std::function<void(const std::string& key, int64_t nanos)> on_cold_start;
};

struct ComputeInfo {
  std::string key;
  bool active = false;            // connection open
  int64_t last_used_micros = 0;   // wall clock of the last Acquire/Release
  int64_t last_cold_start_nanos = 0;
  uint64_t cold_starts = 0;
  int leases = 0;                 // requests holding it now
  int64_t idle_timeout_seconds = 0;
};

class ComputeSupervisor {
 public:
  class Lease;

  // InvalidArgument without clock or factory, or with budget < 1.
  static Result<std::unique_ptr<ComputeSupervisor>> Create(SupervisorOptions options);
  // Stops the sweeper and closes every connection. REQUIRES: no live Lease.
  ~ComputeSupervisor();
  ComputeSupervisor(const ComputeSupervisor&) = delete;
  ComputeSupervisor& operator=(const ComputeSupervisor&) = delete;

  // Waits for the branch's connection (other leases on key first), starting or
  // resuming the compute when needed. Errors: the factory's, the sandbox's, or
  // ResourceExhausted "compute_budget".
  Result<std::unique_ptr<Lease>> Acquire(const std::string& key);

  // Suspends idle computes whose idle timeout elapsed; returns how many.
  int Sweep();
  // Suspends key's compute now, or when its last lease ends. NotFound if unknown.
  Status Suspend(const std::string& key);
  // Drops key's connection (reopened on next use): now if idle, else when the
  // last lease ends. OK when unknown.
  void Invalidate(const std::string& key);
  // Forgets key (branch deleted); its connection closes when the last lease ends.
  void Remove(const std::string& key);
  // Forgets every compute whose key starts with prefix (e.g. "<project>/":
  // a project deleted), as Remove does: never waits for the requests
  // running on them (their computes close when their leases end).
  void RemoveByPrefix(const std::string& prefix);

  // Per-compute idle timeout (seconds; 0 = never).
  void SetIdleTimeout(const std::string& key, int64_t seconds);

  Result<ComputeInfo> Info(const std::string& key) const;
  std::vector<ComputeInfo> List() const;
  int ActiveCount() const;

 private:
  struct Compute;
  explicit ComputeSupervisor(SupervisorOptions options);
  void Release(const std::shared_ptr<Compute>& c);
  // A connection taken out of a compute under mu_, closed when destroyed:
  // callers declare their vector<Closed> before taking mu_.
  struct Closed {
    storage::SqliteHandle db;
    std::unique_ptr<sql::Sandbox> sandbox;  // destroyed first: it unhooks db
  };
  // REQUIRES: c idle (no leases). Moves c's connection to *closed.
  void CloseLocked(Compute& c, std::vector<Closed>* closed) REQUIRES(mu_);
  // REQUIRES: c erased from computes_. Closes c's connection now if idle,
  // else when its last lease ends.
  void ForgetLocked(Compute& c, std::vector<Closed>* closed) REQUIRES(mu_);
  // Suspends the LRU idle active compute other than `except`.
  bool EvictOneLocked(const Compute* except, std::vector<Closed>* closed) REQUIRES(mu_);
  void SweeperLoop() EXCLUDES(mu_);
  ComputeInfo InfoLocked(const Compute& c) const REQUIRES(mu_);

  const SupervisorOptions options_;

  // Taken after a lease (Compute::use_mu), never across a catalog call, a
  // connection's open or close, or SQL. Also guards the fields of each
  // Compute that say so (clang cannot name this mutex from there).
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<Compute>> computes_ GUARDED_BY(mu_);
  int active_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  CondVar stop_cv_;
  std::thread sweeper_;

 public:
  // Exclusive use of one compute's connection until destroyed.
  class Lease {
   public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    sqlite3* db() const;
    sql::Sandbox& sandbox() const;
    const std::string& key() const;

   private:
    friend class ComputeSupervisor;
    Lease(ComputeSupervisor* owner, std::shared_ptr<Compute> c)
        : owner_(owner), compute_(std::move(c)) {}
    ComputeSupervisor* owner_;
    std::shared_ptr<Compute> compute_;
  };
};

}  // namespace branchdb::server::compute

#endif  // BRANCHDB_SERVER_COMPUTE_SUPERVISOR_H_
