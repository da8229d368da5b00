// Internal to catalog/: the Catalog's state and helpers shared by its .cc
// files. Not a public header.
#ifndef BRANCHDB_CATALOG_CATALOG_INTERNAL_H_
#define BRANCHDB_CATALOG_CATALOG_INTERNAL_H_

#include <sqlite3.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "storage/store_pool.h"

namespace branchdb::catalog {

// A prepared statement of catalog.db; finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, const std::string& v);
  Stmt& BindNull(int i);
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step();
  // Steps to completion; IOError (catalog_error) unless SQLITE_DONE.
  Status Run();
  int64_t Int(int col) const;
  std::string Text(int col) const;
  bool IsNull(int col) const;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

Status CatalogError(sqlite3* db, const std::string& what);

// A project's store is opened on first use and closed once unused this long
// (checked by the reaper thread), so that idle projects hold no file
// descriptors and the number of projects is not bounded by the open-file
// limit (storage/store_pool.h).
inline constexpr int64_t kStoreIdleMicros = 60 * kMicrosPerSecond;
// File descriptors kept free for the rest of the process: CreateProject
// refuses (Unavailable too_many_open_files) when fewer would stay free once
// idle stores are closed; an existing project's store opens down to half.
inline constexpr uint64_t kReservedFileDescriptors = 64;
// Least time between two attempts to reopen a store whose writes a full disk
// stopped (reason disk_full; see storage/store_pool.h).
inline constexpr int64_t kDiskFullRetryMicros = kMicrosPerSecond;

// One project: its catalog facts and its store (open while used, see
// storage/store_pool.h).
struct Project {
  ProjectInfo info;
  std::unique_ptr<storage::PooledStore> store;
  // Held across a store GC (without the catalog lock) and by LabelCheckpoint,
  // so that a state cannot be labelled while a GC that does not pin it runs.
  // Lock order: gc_mu before Catalog::Impl::mu.
  std::mutex gc_mu;
};

// A catalog row of one branch (without store facts).
struct BranchRow {
  std::string name;
  TimelineId timeline = 0;
  TimelineId parent_timeline = 0;
  Lsn branch_point = 0;
  int64_t created_micros = 0;
  std::optional<int64_t> expires_micros;
  bool is_protected = false;
  std::optional<int64_t> idle_timeout_seconds;
};

struct Catalog::Impl {
  // Constant after Open.
  CatalogOptions options;
  Env* env = nullptr;
  std::string data_dir;
  std::unique_ptr<FileLock> lock;
  // The projects' stores; outlives them (projects are cleared first).
  std::unique_ptr<storage::StorePool> pool;

  // Guards db and projects, and serializes catalog mutations.
  std::mutex mu;
  storage::SqliteHandle db_owner;  // catalog.db (ordinary SQLite file, WAL)
  sqlite3* db = nullptr;           // == db_owner.get()
  std::map<std::string, std::shared_ptr<Project>> projects;  // by name

  // Reaper thread.
  std::mutex reaper_mu;
  std::condition_variable reaper_cv;
  bool stop = false;
  std::thread reaper;
  int64_t last_gc_micros = 0;

  ~Impl();

  int64_t Now() { return env->GetClock()->NowMicros(); }
  std::string ProjectDir(const std::string& id) const;

  // --- catalog.db (REQUIRES: mu held) ---
  Status InitSchema();
  Status MigrateSchema();
  Status Exec(const char* sql);
  Status LoadProjects();
  Status Reconcile(Project& p);
  Result<std::shared_ptr<Project>> FindProject(const std::string& name);
  Result<BranchRow> FindBranch(const Project& p, const std::string& name);
  // FindProject, then FindBranch in it: the start of most per-branch calls.
  struct ProjectBranch {
    std::shared_ptr<Project> project;
    BranchRow row;
  };
  Result<ProjectBranch> FindProjectBranch(const std::string& project, const std::string& branch);
  Result<BranchRow> FindBranchByTimeline(const Project& p, TimelineId t);
  std::vector<BranchRow> AllBranches(const Project& p);
  Status InsertBranch(const Project& p, const BranchRow& row);
  Status DeleteBranchRow(const Project& p, const BranchRow& row);
  std::vector<std::string> LabelsAt(const Project& p, TimelineId t, Lsn lsn);
  std::vector<Lsn> Pins(const Project& p);
  Status DeleteBranchLocked(Project& p, const BranchRow& row);
  Result<BranchInfo> MakeInfo(Project& p, const BranchRow& row, bool with_usage);

  // The state a new branch starts from (see BranchSource), given its parent's
  // row; sets *parent_t to the parent recorded (kCheckpoint without a parent:
  // the branch that wrote it, when live). NotFound when the source names no
  // state of the parent.
  Result<Lsn> ResolveSource(Project& p, const BranchSource& from, const BranchRow& parent,
                            TimelineId* parent_t);

  // Restore window check of state lsn: OK when labelled, or when it was in
  // effect on timeline t's history (t != 0) or on any branch's history at some
  // time within the window, or when written within the window. Otherwise
  // FailedPrecondition outside_restore_window.
  Status CheckRestorable(Project& p, TimelineId t, Lsn lsn);

  struct ReapedBranch {
    std::string project, branch;
    TimelineId timeline = 0;
  };
  // Deletes expired branches, appending them to *reaped.
  Result<int> ReapLocked(std::vector<ReapedBranch>* reaped);
  // Calls options.on_branch_reaped for each. REQUIRES: mu not held.
  void NotifyReaped(const std::vector<ReapedBranch>& reaped);
  // GC of one project: pins and window read under mu, the store GC without it.
  // REQUIRES: mu not held.
  Result<storage::GcStats> GcProject(const std::shared_ptr<Project>& p);
  // Background loop.
  void ReaperLoop();
};

// Deletes dir and everything under it through env.
Status RemoveTree(Env* env, const std::string& dir);

// Directory-safe project id, random.
std::string NewProjectId();

// A state of the branch on timeline t: the empty database (0), a state on its
// current history, or a state it once had as head (a record of its own
// timeline, e.g. one a rollback left behind). What rollback, labels and
// branch creation from a parent accept.
bool IsBranchState(const storage::PageStore& store, TimelineId t, Lsn lsn);

CheckpointInfo MakeCheckpoint(const storage::RecordInfo& r, TimelineId branch_timeline);

}  // namespace branchdb::catalog

#endif  // BRANCHDB_CATALOG_CATALOG_INTERNAL_H_
