// Guard: quotas, usage and the audit trail of issue #18, for the routes.
//
// Quotas (docs/api.md, "Quotas"): a project's (PATCH /v1/projects/{p},
// kept in the ledger by project id) and a client's (POST /v1/clients, kept
// with the client by auth/). A client's quotas count what is its own within
// the project it acts on: the branches it created (ledger's branch owners),
// their active computes and their logical bytes; its commits per minute count
// over every project. Each check runs before the change (or, for commits,
// inside the transaction right before its COMMIT, so that a refused commit
// leaves nothing), and refuses with ResourceExhausted "quota_exceeded" (429)
// filling a Refusal, whose Details() are the error body's details.
//
// Usage: branches and bytes from the catalog and the store; commits from the
// ledger (kept across restarts); requests and compute-seconds (time spent
// running SQL on a compute) counted in memory since the server started.
//
// Off the commit path (#20): an acknowledged commit is counted in memory and
// the counts reach the ledger in one transaction every
// GuardOptions::flush_interval (and at destruction, a clean shutdown), so a
// crash loses at most the counts of that interval's commits: the usage's
// "commits" then errs low, never high. No quota reads those counts
// (max_commits_per_minute counts its window in memory, as before). The
// max_bytes check reads a running figure per project (each branch's logical
// bytes and owner), made by a walk of the project's branches at most once
// per flush_interval, updated in place by each commit it passes, and made
// afresh after a branch is created; a change made by another route in the
// meantime (rollback, reset, promote, delete) shows within flush_interval.
//
// Thread-safety: safe for concurrent use. mu_ is a leaf: no catalog, auth,
// ledger or supervisor call is made while it is held.
#ifndef BRANCHDB_SERVER_GUARD_GUARD_H_
#define BRANCHDB_SERVER_GUARD_GUARD_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "auth/auth.h"
#include "base/env.h"
#include "base/mutex.h"
#include "base/quotas.h"
#include "base/status.h"
#include "catalog/ledger.h"

struct sqlite3;

namespace branchdb::catalog {
class Catalog;
}

namespace branchdb::server::compute {
class ComputeSupervisor;
}

namespace branchdb::server::guard {

// One quota a request would pass.
struct Refusal {
  std::string quota;  // "max_branches", ...
  std::string scope;  // "project" or "client"
  std::string owner;  // the project's name or the client's id
  int64_t limit = 0;
  int64_t current = 0;  // the figure now (for commits: with this one)

  // ResourceExhausted "quota_exceeded", its message naming all of the above.
  Status ToStatus() const;
  // {"quota","scope","project"|"client_id","limit","current"}
  nlohmann::json Details() const;
};

struct GuardOptions {
  Clock* clock = nullptr;                            // required; not owned
  catalog::Catalog* catalog = nullptr;               // required; not owned
  auth::AuthService* auth = nullptr;                 // optional; not owned
  compute::ComputeSupervisor* computes = nullptr;    // required; not owned
  // How often commit counts reach the ledger, and how old the max_bytes
  // check's running figure may get (see above). Default: 1 s.
  std::chrono::milliseconds flush_interval{1000};
};

// A project's figures (GET /v1/projects/{p}/usage; with a client: its share).
struct BranchUsage {
  std::string name;
  std::string owner;  // the client that created it ("" when unknown)
  uint64_t logical_bytes = 0, exclusive_bytes = 0, shared_bytes = 0;
  int64_t commits = 0;
  bool compute_active = false;
};
struct Usage {
  std::string project;
  std::string client_id;  // "" for the whole project
  std::vector<BranchUsage> branches;
  uint64_t logical_bytes = 0, exclusive_bytes = 0;
  int64_t commits = 0;
  int64_t commits_last_minute = 0;
  int64_t active_computes = 0;
  double compute_seconds = 0;
  int64_t requests = 0;
  int64_t since_micros = 0;  // when requests and compute_seconds started counting
};

class Guard {
 public:
  // Starts the thread that flushes commit counts to the ledger.
  Guard(GuardOptions options, std::unique_ptr<catalog::Ledger> ledger);
  // Stops that thread and writes the counts not yet in the ledger.
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  catalog::Ledger& ledger() { return *ledger_; }

  // --- project settings --------------------------------------------------
  Result<catalog::ProjectSettings> Settings(const std::string& project);
  Status PutSettings(const std::string& project, const catalog::ProjectSettings& settings);
  // After DeleteProject: forgets its settings, owners and counts (by id).
  void ForgetProject(const std::string& project_id);

  // Held across a check and the change it admits (branch create, import),
  // so that concurrent changes of one project cannot pass a quota together.
  using ProjectLock = std::unique_lock<std::mutex>;
  ProjectLock LockProject(const std::string& project);

  // The TTL a new branch of project gets when its create names none: the
  // project's default_branch_ttl_seconds for a caller without scope admin;
  // nullopt otherwise.
  Result<std::optional<int64_t>> DefaultTtlMicros(const std::string& project,
                                                 const auth::Principal& who);

  // --- checks (OK, or quota_exceeded with *refused filled) ------------------
  Status CheckBranchCreate(const std::string& project, const std::string& client_id,
                           Refusal* refused);
  // Before taking the compute of project/branch: when it is not active and a
  // wake would pass max_active_computes, the least recently used idle compute
  // counted against that quota is suspended first; refused when none is idle.
  Status CheckWake(const std::string& project, const std::string& branch,
                   const std::string& client_id, Refusal* refused);
  // Inside the transaction of db (a connection to project/branch), right
  // before its COMMIT: max_commits_per_minute (this commit counted when it
  // passes) and max_bytes (the database with the transaction's writes; a
  // commit that does not grow the bytes always passes).
  Status CheckCommit(const std::string& project, const std::string& branch,
                     const std::string& client_id, sqlite3* db, Refusal* refused);
  // Before an import of `bytes` into a new branch of project.
  Status CheckImport(const std::string& project, const std::string& client_id, uint64_t bytes,
                     Refusal* refused);

  // --- recording ----------------------------------------------------------
  void BranchCreated(const std::string& project, const std::string& branch,
                     const std::string& client_id);
  // Counted in memory; in the ledger within flush_interval (see above).
  void Committed(const std::string& project, const std::string& branch,
                 const std::string& client_id);
  // Writes the commit counts not yet in the ledger (the flusher's work; a
  // failed write keeps them for the next one). Returns the ledger's error.
  Status FlushCommitCounts();
  void CountRequest(const std::string& project, const std::string& client_id);
  void CountCompute(const std::string& project, const std::string& client_id, int64_t nanos);
  // Appends to the audit trail; a failure is logged by the caller, never
  // fails the request it records.
  Status Audit(catalog::AuditEvent* event) { return ledger_->Append(event); }

  // --- usage --------------------------------------------------------------
  // with_store_bytes: also exclusive and shared bytes (a scan of the store's
  // page index per branch: GET .../usage, not /metrics).
  Result<Usage> ProjectUsage(const std::string& project, const std::string& client_id,
                             bool with_store_bytes);

 private:
  struct Counters {
    int64_t requests = 0;
    int64_t compute_nanos = 0;
  };
  // The client's quotas (none without auth or for an unknown client).
  Quotas ClientQuotas(const std::string& client_id);
  // The project's branches and the owner of each (by timeline).
  struct Branches;
  Result<Branches> ListBranches(const std::string& project);
  // Commits in the last minute of key, with those older dropped.
  int64_t WindowCount(std::deque<int64_t>& window, int64_t now) REQUIRES(mu_);
  // The max_bytes check's running figure of a project (see above).
  struct BranchBytes {
    uint64_t bytes = 0;
    std::string owner;
  };
  struct ByteFigure {
    int64_t made_micros = 0;
    std::map<std::string, BranchBytes> branches;  // by branch name
  };
  // The project's figure, walked again when missing or older than
  // flush_interval. Takes mu_ itself (never across the walk).
  Result<ByteFigure> Figure(const std::string& project) EXCLUDES(mu_);
  void FlushLoop();

  const GuardOptions options_;
  const std::unique_ptr<catalog::Ledger> ledger_;
  const int64_t started_micros_;

  Mutex mu_;
  // The ledger's project settings, by project id (this process is the only
  // writer: PutSettings updates both).
  std::map<std::string, catalog::ProjectSettings> settings_ GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<std::mutex>> project_locks_ GUARDED_BY(mu_);
  std::map<std::string, Counters> projects_ GUARDED_BY(mu_);  // by project name
  std::map<std::pair<std::string, std::string>, Counters> clients_
      GUARDED_BY(mu_);  // by (project, client)
  std::map<std::string, std::deque<int64_t>> project_commits_ GUARDED_BY(mu_);
  std::map<std::string, std::deque<int64_t>> client_commits_ GUARDED_BY(mu_);
  // Commits acknowledged and not yet in the ledger, by (project id,
  // timeline, client id).
  std::map<std::tuple<std::string, uint64_t, std::string>, int64_t> unflushed_commits_
      GUARDED_BY(mu_);
  std::map<std::string, ByteFigure> figures_ GUARDED_BY(mu_);  // by project name
  bool stop_ GUARDED_BY(mu_) = false;
  CondVar stop_cv_;  // with mu_: stop_ set
  Mutex flush_mu_ ACQUIRED_BEFORE(mu_);  // one flush at a time (held across the ledger write)
  std::thread flusher_;  // last: started when the rest is built
};

}  // namespace branchdb::server::guard

#endif  // BRANCHDB_SERVER_GUARD_GUARD_H_
