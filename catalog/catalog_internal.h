// Internal to catalog/: the Catalog's state and helpers shared by its .cc
// files. Not a public header.
#ifndef BRANCHDB_CATALOG_CATALOG_INTERNAL_H_
#define BRANCHDB_CATALOG_CATALOG_INTERNAL_H_

#include <sqlite3.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/mutex.h"
#include "catalog/catalog.h"
#include "storage/store_pool.h"

namespace branchdb::catalog {

// Prepared statements of one connection kept across uses, by SQL text: a
// request's queries (FindBranch's on each miss of the row cache, the audit
// row) were parsed again each time, 14% of the server's CPU in a soak whose
// branches come and go. Used under the lock that guards its connection;
// cleared (or destroyed) before the connection closes.
class StmtCache {
 public:
  StmtCache() = default;
  ~StmtCache() { Clear(); }
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;

  // The kept statement of sql on db, prepared on first use, out of the cache
  // until Return (nullptr when it does not prepare): a statement in use twice
  // at once is prepared twice, and the second copy finalized on its return.
  sqlite3_stmt* Checkout(sqlite3* db, const char* sql);
  void Return(const char* sql, sqlite3_stmt* stmt);
  void Clear();

 private:
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
};

class DbUse;

// A prepared statement of catalog.db or ledger.db; finalized on destruction,
// or, when it came from a StmtCache, reset and returned to it.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql);
  Stmt(StmtCache& cache, sqlite3* db, const char* sql);
  // catalog.db's kept statement of sql (DbUse::stmts()); destroyed before
  // use (declare use first, as for get()).
  Stmt(const DbUse& use, const char* sql);
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
  StmtCache* cache_ = nullptr;  // set: stmt_ goes back to it
  const char* sql_ = nullptr;
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
//
// Ownership: the store is shared by the Project (itself held by the catalog's
// map and by every call in progress on the project) and by every VFS
// connection to it. DeleteProject retires it (every later use fails with
// NotFound project_not_found) and drops the project from the map; the last
// owner to let go closes the store and removes its directory (see
// Catalog::Impl::NewStore).
//
// Locking (the whole order is in docs/architecture.md): gc_mu, then mu, then
// either of Catalog::Impl::mu and Catalog::Impl::db_mu.
struct Project {
  Project(ProjectInfo i, std::shared_ptr<storage::PooledStore> s)
      : info(std::move(i)), store(std::move(s)) {}

  // info.id, info.name and info.created_micros are constant. The other fields
  // of info are written with both mu (exclusive) and Catalog::Impl::mu held,
  // and read with either held.
  ProjectInfo info;
  // Constant after construction.
  const std::shared_ptr<storage::PooledStore> store;

  // Serializes the project's catalog changes (branch and label rows, info),
  // together with the store calls that must agree with them (creating and
  // dropping branches' timelines): exclusive to change, shared to read. Held
  // across the project's store I/O, never across another project's. Calls
  // whose long part needs no catalog row (a diff's comparison, a promotion's
  // replay, an import's writes, a GC) release it first and keep the project,
  // and so its store.
  SharedMutex mu;
  bool deleted GUARDED_BY(mu) = false;  // DeleteProject ran
  // Open() could not open the store, so it did not reconcile it yet: the
  // first ReadProject/WriteProject that can open it does (under mu, exclusive).
  std::atomic<bool> reconcile_pending{false};

  // Held across a store GC (without mu) and by LabelCheckpoint, so that a
  // state cannot be labelled while a GC that does not pin it runs.
  Mutex gc_mu ACQUIRED_BEFORE(mu);
};

// A project found by name and locked (ProjectRef<shared_lock> to read,
// <unique_lock> to change it), not deleted. The lock is released before the
// project is let go (members are destroyed in reverse order).
//
// The lock is a std lock over Project::mu (base/mutex.h) because it leaves
// the function that took it (ReadProject, WriteProject): clang's analysis
// cannot follow it there, so the functions below that need p.mu held (the
// catalog rows it guards are not C++ members either) say so in comments.
template <class Lock>
struct ProjectRef {
  std::shared_ptr<Project> project;
  Lock lock;  // of project->mu
  Project& operator*() const { return *project; }
  Project* operator->() const { return project.get(); }
};
using ReadLock = std::shared_lock<SharedMutex>;
using WriteLock = std::unique_lock<SharedMutex>;
using ReadLocked = ProjectRef<ReadLock>;
using WriteLocked = ProjectRef<WriteLock>;

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
  bool promote_only = false;  // writes policy (column writes_promote_only)
};

struct Catalog::Impl {
  // Constant after Open.
  CatalogOptions options;
  Env* env = nullptr;  // must outlive every store (see NewStore)
  std::string data_dir;
  std::unique_ptr<FileLock> lock;
  // The projects' stores' pool: shared with their deleters, so that it
  // outlives every store, also one a connection holds after the catalog is gone.
  std::shared_ptr<storage::StorePool> pool;

  // Guards the name -> project map and the names being created; held briefly,
  // never across I/O. (With Project::mu it also guards ProjectInfo's mutable
  // fields, see Project.)
  Mutex mu;
  std::map<std::string, std::shared_ptr<Project>> projects GUARDED_BY(mu);  // by name
  std::set<std::string> creating GUARDED_BY(mu);

  // Guards catalog.db (one connection, shared by every project): taken through
  // DbUse around each statement or transaction, never across store I/O.
  // Never held with mu: DbUse EXCLUDES mu, and mu may not be taken after it.
  Mutex db_mu ACQUIRED_AFTER(mu);
  storage::SqliteHandle db_owner GUARDED_BY(db_mu);  // opened and closed alone
  sqlite3* db GUARDED_BY(db_mu) = nullptr;           // == db_owner.get()
  StmtCache stmts GUARDED_BY(db_mu);  // db's kept statements, cleared before it closes

  // The branch rows FindBranch and FindBranchByTimeline read last, by
  // (project id, name) and (project id, timeline), so that a request's
  // branch lookup (every SQL request asks) does not query catalog.db under
  // db_mu, which serialized concurrent requests (#20). Every write of branch
  // rows forgets the rows it may change, before it and after it (ForgetRows,
  // which also moves rows_generation on): a branch's write its row and its
  // children's (a delete re-parents them), a project's every row of it; a
  // reader remembers the row it read only if no write began or ended since
  // it started reading (RowsGeneration taken before the query), so that a
  // row read before a write never outlives it, whatever lock the reader
  // holds. At most kMaxCachedRows rows (then emptied). A leaf: taken last,
  // never across I/O.
  Mutex rows_mu ACQUIRED_AFTER(db_mu);
  uint64_t rows_generation GUARDED_BY(rows_mu) = 0;
  std::map<std::pair<std::string, std::string>, BranchRow> rows_by_name GUARDED_BY(rows_mu);
  std::map<std::pair<std::string, TimelineId>, BranchRow> rows_by_timeline GUARDED_BY(rows_mu);
  // FirstChild's answers, by (project id, name), under the same rules.
  // (Any write in the project forgets all of its answers: a create, delete
  // or rename changes the children of names that are prefixes of its own.)
  // At most kMaxCachedRows answers, as rows.
  std::map<std::pair<std::string, std::string>, std::optional<std::string>> child_by_name
      GUARDED_BY(rows_mu);
  static constexpr size_t kMaxCachedRows = 4096;
  uint64_t RowsGeneration() EXCLUDES(rows_mu);
  void RememberRow(uint64_t generation, const std::string& project_id, const BranchRow& row)
      EXCLUDES(rows_mu);
  // Forgets project_id's rows of timeline and of its children; all of them
  // when timeline is nullopt.
  void ForgetRows(const std::string& project_id, std::optional<TimelineId> timeline)
      EXCLUDES(rows_mu);

  // Reaper thread. reaper_mu is a leaf: the loop checks stop under it, and
  // reaps and collects without it.
  Mutex reaper_mu;
  CondVar reaper_cv;
  bool stop GUARDED_BY(reaper_mu) = false;
  std::thread reaper;
  int64_t last_gc_micros = 0;  // used by the reaper thread only

  ~Impl();

  int64_t Now() { return env->GetClock()->NowMicros(); }
  std::string ProjectDir(const std::string& id) const;
  // The store of the project with this id, shared: when its last owner lets
  // go, it is closed and, if it was retired (the project deleted), its
  // directory is removed, by whichever thread let go (errors ignored: Open
  // removes the directories of projects it does not know).
  std::shared_ptr<storage::PooledStore> NewStore(const std::string& id);

  // --- Projects ---
  // The live project named name (NotFound project_not_found), from the map.
  Result<std::shared_ptr<Project>> FindProject(const std::string& name) EXCLUDES(mu);
  // FindProject, then p->mu shared / exclusive; NotFound when it was deleted
  // meanwhile. REQUIRES: no catalog lock held.
  Result<ReadLocked> ReadProject(const std::string& name);
  Result<ReadLocked> ReadProject(std::shared_ptr<Project> p);
  Result<WriteLocked> WriteProject(const std::string& name);
  Result<WriteLocked> WriteProject(std::shared_ptr<Project> p);
  // ReadProject / WriteProject, then the branch's row (NotFound branch_not_found).
  template <class Lock>
  struct BranchRef {
    ProjectRef<Lock> project;
    BranchRow row;
  };
  Result<BranchRef<ReadLock>> ReadProjectBranch(
      const std::string& project, const std::string& branch);
  Result<BranchRef<WriteLock>> WriteProjectBranch(
      const std::string& project, const std::string& branch);
  // The live projects now.
  std::vector<std::shared_ptr<Project>> Projects() EXCLUDES(mu);

  // --- catalog.db (each takes db_mu itself, through DbUse) ---
  Status InitSchema();
  Status MigrateSchema();
  Status LoadProjects();
  Status Reconcile(Project& p);
  // Reconciles p if Open() could not: opens its store (its error when it
  // still does not open), then Reconcile. REQUIRES: p.mu held exclusive.
  Status ReconcileIfPending(Project& p);
  // Rows of project p (REQUIRES: p.mu held, shared or exclusive, except at Open).
  Result<BranchRow> FindBranch(const Project& p, const std::string& name);
  Result<BranchRow> FindBranchByTimeline(const Project& p, TimelineId t);
  std::vector<BranchRow> AllBranches(const Project& p);
  // The first (by name) branch "name/x" with no '/' in x, or none.
  Result<std::optional<std::string>> FirstChild(const Project& p, const std::string& name);
  std::optional<Lsn> LabelLsn(const Project& p, TimelineId t, const std::string& label);
  bool IsLabelled(const Project& p, Lsn lsn);
  std::vector<std::string> LabelsAt(const Project& p, TimelineId t, Lsn lsn);
  std::vector<Lsn> Pins(const Project& p);
  // The project's row and its default branch's, in one transaction.
  Status InsertProject(const ProjectInfo& info, const BranchRow& default_branch);
  // The project's rows, its branches' and its labels', in one transaction.
  Status DeleteProjectRows(const Project& p);
  // REQUIRES: p.mu held exclusive.
  Status InsertBranch(const Project& p, const BranchRow& row);
  Status DeleteBranchRow(const Project& p, const BranchRow& row);
  Status DeleteBranchLocked(Project& p, const BranchRow& row);
  // Sets one column of the branch's row (NULL when value is unset).
  // REQUIRES: p.mu held exclusive.
  Status UpdateBranch(const Project& p, const BranchRow& row, const char* column,
                      std::optional<int64_t> value);
  // REQUIRES: p.mu held (shared or exclusive).
  Result<BranchInfo> MakeInfo(Project& p, const BranchRow& row, bool with_usage);

  // The state a new branch starts from (see BranchSource), given its parent's
  // row; sets *parent_t to the parent recorded (kCheckpoint without a parent:
  // the branch that wrote it, when live). NotFound when the source names no
  // state of the parent. REQUIRES: p.mu held.
  Result<Lsn> ResolveSource(Project& p, const BranchSource& from, const BranchRow& parent,
                            TimelineId* parent_t);

  // Restore window check of state lsn: OK when labelled, or when it was in
  // effect on timeline t's history (t != 0) or on any branch's history at some
  // time within the window, or when written within the window. Otherwise
  // FailedPrecondition outside_restore_window. REQUIRES: p.mu held.
  Status CheckRestorable(Project& p, TimelineId t, Lsn lsn);

  struct ReapedBranch {
    std::string project, branch;
    TimelineId timeline = 0;
  };
  // Projects (by id) with a branch whose expire time is at or before now.
  std::set<std::string> ProjectsWithExpired(int64_t now);
  // Deletes expired branches, one project at a time (its mu exclusive),
  // appending them to *reaped. REQUIRES: no catalog lock held.
  Result<int> Reap(std::vector<ReapedBranch>* reaped);
  // Calls options.on_branch_reaped for each. REQUIRES: no catalog lock held.
  void NotifyReaped(const std::vector<ReapedBranch>& reaped);
  // GC of one project: pins and window read under p->mu (shared), the store
  // GC under gc_mu only. REQUIRES: no catalog lock held.
  Result<storage::GcStats> GcProject(const std::shared_ptr<Project>& p);
  // Background loop.
  void ReaperLoop();
};

// Exclusive use of catalog.db for one statement or one transaction: holds
// Catalog::Impl::db_mu, and is the only way to reach the connection.
// Statements prepared on get() must be destroyed first (declare the DbUse
// before them). Never held across store I/O or with another catalog lock
// taken after it.
class SCOPED_CAPABILITY DbUse {
 public:
  explicit DbUse(Catalog::Impl& im) ACQUIRE(im.db_mu) EXCLUDES(im.mu);
  ~DbUse() RELEASE() = default;
  DbUse(const DbUse&) = delete;
  DbUse& operator=(const DbUse&) = delete;

  sqlite3* get() const { return db_; }
  // catalog.db's kept statements (Stmt(const DbUse&, sql)).
  StmtCache& stmts() const;
  // sqlite3_exec: IOError catalog_error, or ResourceExhausted disk_full.
  Status Exec(const char* sql) const;
  // body's statements as one transaction (BEGIN IMMEDIATE .. COMMIT); rolled
  // back when body or the COMMIT fails.
  Status Transaction(const std::function<Status()>& body) const;

 private:
  MutexLock lock_;
  Catalog::Impl& im_;
  sqlite3* const db_;
};

// Around a write of branch rows: forgets the cached rows it may change
// (Impl::ForgetRows: the branch of timeline and its children, or the whole
// project when timeline is nullopt) when it begins and again when it ends,
// so that no reader remembers a row read before the write ended. Declare it
// before the write's DbUse.
class RowsWrite {
 public:
  RowsWrite(Catalog::Impl& im, std::string project_id, std::optional<TimelineId> timeline)
      : im_(im), project_id_(std::move(project_id)), timeline_(timeline) {
    im_.ForgetRows(project_id_, timeline_);
  }
  ~RowsWrite() { im_.ForgetRows(project_id_, timeline_); }
  RowsWrite(const RowsWrite&) = delete;
  RowsWrite& operator=(const RowsWrite&) = delete;

 private:
  Catalog::Impl& im_;
  const std::string project_id_;
  const std::optional<TimelineId> timeline_;
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
