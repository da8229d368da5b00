// Ledger: the server's record of who did what and what each project may use
// (issue #18), in a SQLite database of its own, <data_dir>/ledger.db (WAL,
// synchronous=NORMAL): an event is on disk when Append returns, so it
// survives a crash of the process and a clean restart; a power loss may lose
// the last events (the file system's writes not yet synced), never corrupt
// the file. Kept apart from catalog.db so that recording an event never
// waits for a project's catalog change.
//
//   audit          one row per state-changing request, refusal or auth
//                  failure (AuditEvent), in order of seq; rows older than
//                  the retention are pruned (Prune)
//   project_quotas a project's quotas and default branch TTL, by project id
//                  (a project re-created under the same name starts afresh)
//   branch_owners  which client created which branch (per-client quotas)
//   commit_counts  commits acknowledged, by project id, branch timeline and
//                  client, kept across restarts
//
// Errors: IOError (reason "ledger_error"), ResourceExhausted disk_full.
//
// Thread-safety: safe for concurrent use (one connection under a mutex).
#ifndef BRANCHDB_CATALOG_LEDGER_H_
#define BRANCHDB_CATALOG_LEDGER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/quotas.h"
#include "base/status.h"

namespace branchdb::catalog {

struct AuditEvent {
  int64_t seq = 0;          // set by Append: increasing, never reused
  int64_t time_micros = 0;  // Env clock
  std::string project;      // "" for server-wide events (clients, auth failures)
  std::string branch;       // "" when not about one
  std::string client_id;    // "" when the caller was not authenticated
  std::string jti;          // the token's id ("" when none)
  std::string request_id;
  std::string operation;    // "branch.create", "auth.failure", ... (docs/api.md)
  int status = 0;           // HTTP status of the answer
  std::string code;         // the error code ("" on success)
  std::string details_json; // JSON object text ("{}" when none)
};

struct AuditQuery {
  // Events of this project only; nullopt: server-wide events only (project "").
  std::optional<std::string> project;
  std::string client_id;     // "" = any
  int64_t since_micros = 0;  // events at or after this time
  int64_t after_seq = 0;     // events with seq > this (paging)
  int64_t limit = 100;       // at most this many, oldest first
};

struct ProjectSettings {
  Quotas quotas;
  // Applied to branches created without a TTL by clients that are not admin.
  std::optional<int64_t> default_branch_ttl_seconds;
  // "local" or "remote" (docs/object-storage.md); unset: the server's default.
  std::optional<std::string> durability;
};

struct CommitCount {
  uint64_t timeline = 0;
  std::string client_id;
  int64_t commits = 0;
};

struct LedgerOptions {
  Env* env = nullptr;  // required (clock); not owned
  // Audit events older than this are pruned by Prune(). Default: 90 days.
  int64_t retention_micros = 90ll * 24 * 3600 * 1000000;
};

class Ledger {
 public:
  // Opens or creates <data_dir>/ledger.db (mode 0600).
  static Result<std::unique_ptr<Ledger>> Open(const LedgerOptions& options,
                                              const std::string& data_dir);
  virtual ~Ledger() = default;
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Appends *event (time_micros set from the clock when 0; seq set).
  virtual Status Append(AuditEvent* event) = 0;
  // Matching events, oldest first.
  virtual Result<std::vector<AuditEvent>> Query(const AuditQuery& query) = 0;
  // Deletes audit events older than the retention; returns how many.
  virtual Result<int64_t> Prune() = 0;

  // Settings of project_id (none set: empty settings).
  virtual Result<ProjectSettings> GetSettings(const std::string& project_id) = 0;
  virtual Status PutSettings(const std::string& project_id, const ProjectSettings& settings) = 0;
  // Forgets everything about project_id but its audit events.
  virtual Status ForgetProject(const std::string& project_id) = 0;

  virtual Status SetBranchOwner(const std::string& project_id, uint64_t timeline,
                                const std::string& client_id) = 0;
  // (timeline, client) of every branch of the project whose creator is known.
  virtual Result<std::vector<std::pair<uint64_t, std::string>>> BranchOwners(
      const std::string& project_id) = 0;

  // Adds each count's commits (> 0) to project_id's (timeline, client) row,
  // all in one transaction: all of them or, on an error, none.
  virtual Status AddCommits(const std::string& project_id,
                            const std::vector<CommitCount>& counts) = 0;
  virtual Result<std::vector<CommitCount>> CommitCounts(const std::string& project_id) = 0;

 protected:
  Ledger() = default;
};

}  // namespace branchdb::catalog

#endif  // BRANCHDB_CATALOG_LEDGER_H_
