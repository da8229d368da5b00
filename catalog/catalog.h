// Catalog: the versioning layer of branchdb — projects, branches, checkpoints,
// rollback, reset from parent, protection, TTL, labels, GC, schema and data
// diff. It knows no HTTP; the server maps each call to a route and each Status
// (code + reason()) to an error body.
//
// Layout on disk (DATA_DIR):
//   catalog.db                 SQLite database (WAL) of projects, branches, labels
//   LOCK                       held while a process has the catalog open
//   projects/<project-id>/     the project's PageStore
//
// Model: a branch is a name for a PageStore timeline. Every record on a
// branch's history is a *checkpoint* identified by its LSN; its facts (kind,
// client, request, summary, rows) live in the record's annotation (see
// catalog/annotation.h), so they survive every crash the record survives.
// Rollback and reset are PageStore::ResetTimeline: O(1), durable, and undoable
// by rolling back to the returned previous_head_lsn.
//
// Crash consistency: the store is written first, then the catalog. Open()
// reconciles: store timelines without a catalog row (actions never acknowledged)
// are dropped; catalog rows whose timeline is gone (an interrupted delete) are
// removed; project directories without a catalog row are deleted.
//
// Errors: every failure carries a machine reason (Status::reason()):
//   project_not_found, project_exists, invalid_project_name, branch_not_found,
//   branch_exists, invalid_branch_name, branch_protected, checkpoint_not_found,
//   label_not_found, label_exists, invalid_label, outside_restore_window,
//   invalid_restore_window, invalid_argument, default_branch, parent_moved, head_moved
//   (Conflict: the branch moved during the call; retry), concurrent_write, no_parent,
//   not_replayable, replay_failed, verify_failed (Promote),
//   catalog_error (IOError of catalog.db), store_failed (from the store),
//   disk_full (ResourceExhausted: no room on the disk, from the store or
//   catalog.db; nothing was written, and writes resume once space is freed),
//   too_many_open_files (Unavailable: CreateProject, or opening a project's
//   store, when the process is short of file descriptors), store_damaged
//   (Unavailable: the project's store fails its checks and does not open).
//
// Damage: a project whose store does not open at Open() (its files are
// damaged, or cannot be read) does not fail Open(): it stays listed, its
// calls fail with the open's error (Unavailable store_damaged), and the
// first call that finds its store opening again (after a repair) reconciles
// it as Open() would have. DamagedProjects() lists such projects.
//
// Stores: a project's store is open only while used (opened on first use,
// closed when idle; storage/store_pool.h), so the number of projects is not
// bounded by the open-file limit. It is shared by the catalog and by whoever
// uses it: every connection (OpenBranchConnection, Store) and every call in
// progress holds it, so deleting a project never pulls the store from under
// them; they fail with NotFound project_not_found from the deletion on, and
// the last of them to let go removes the project's directory.
//
// Names:
//   project: 1..63 chars of [a-z0-9_-], starting with a letter or digit.
//   branch:  1..128 chars of [A-Za-z0-9._/-]; no leading or trailing '/', no
//            empty segment ("a//b"), no segment "." or "..".
//   label:   1..128 chars of [A-Za-z0-9._-].
//
// Thread-safety: all methods are safe to call concurrently. Locking is per
// project: one project's slow call (an fsync of its store, a scan of its
// history, a GC, a diff) never waits for another project's; calls on one
// project that change it are serialized, and readers wait only for changes
// (docs/architecture.md, "Ownership and locking").
#ifndef BRANCHDB_CATALOG_CATALOG_H_
#define BRANCHDB_CATALOG_CATALOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "catalog/annotation.h"
#include "storage/page_store.h"
#include "storage/vfs/vfs.h"

struct sqlite3;

namespace branchdb::catalog {

using storage::Lsn;
using storage::TimelineId;

inline constexpr int64_t kMicrosPerSecond = 1000000;
inline constexpr int64_t kMicrosPerDay = 24ll * 3600 * kMicrosPerSecond;
inline constexpr int64_t kMaxRestoreWindowMicros = 35 * kMicrosPerDay;
inline constexpr const char* kDefaultBranch = "production";
// Largest per-branch compute idle timeout (SetIdleTimeout): 7 days.
inline constexpr int64_t kMaxIdleTimeoutSeconds = 7ll * 24 * 3600;

struct CatalogOptions {
  // Files and clock (TTL, restore window, timestamps). Default: Env::Default().
  // Not owned; must outlive the catalog and every connection it opened.
  Env* env = nullptr;
  // Restore window of new projects unless given. Default: 7 days.
  int64_t default_restore_window_micros = 7 * kMicrosPerDay;
  // The reaper thread deletes expired branches every this many microseconds
  // (real time). Default: 1 s. 0: no thread (call ReapExpired() yourself).
  int64_t reaper_interval_micros = kMicrosPerSecond;
  // The reaper also runs Gc() on every project this often. Default: 1 hour.
  // 0: never (call Gc() yourself).
  int64_t gc_interval_micros = 3600 * kMicrosPerSecond;
  // Options of each project's PageStore (env is replaced by the env above).
  storage::PageStoreOptions store_options;
  // Called after the reaper (or ReapExpired) deleted an expired branch, without
  // catalog locks held (it may call the catalog), e.g. so that the server
  // closes the branch's connections. Default: none.
  std::function<void(const std::string& project, const std::string& branch, TimelineId timeline)>
      on_branch_reaped;
  // Asked at each GC with the project's id (its directory's name): which of
  // its segments compaction may rewrite or delete (storage::GcOptions::
  // may_rewrite; called during the GC, which holds the store's GC slot:
  // it must not call into the catalog or the store). Set by the server with
  // object storage: only segments the bucket holds. Default (unset): every one.
  std::function<std::function<bool(uint64_t segment)>(const std::string& project_id)>
      may_rewrite;
};

struct ProjectInfo {
  std::string id;    // stable, used in the directory name
  std::string name;  // unique
  int64_t created_micros = 0;
  int64_t restore_window_micros = 0;
  std::string default_branch = kDefaultBranch;
};

// A project whose store is damaged (PageStore::Damage, storage/store_pool.h).
struct ProjectDamage {
  std::string project;  // its name
  // False: its store does not open (every call on the project fails with
  // Unavailable store_damaged, and a later call tries again). True: it opened,
  // working around damaged segments (listed in `segments`).
  bool serving = false;
  // Why it does not open (without the data directory); empty when serving.
  std::string message;
  std::vector<std::string> segments;  // one line per damaged segment
};

struct CreateProjectOptions {
  // Default (unset): CatalogOptions::default_restore_window_micros.
  // Must be within 0..kMaxRestoreWindowMicros (InvalidArgument otherwise).
  std::optional<int64_t> restore_window_micros;
};

// Who asked: stored in the annotation of the records an operation writes.
struct Actor {
  std::string client_id;
  std::string request_id;
};

// Where a new branch starts. Exactly one of the ways applies, by kind. The
// branch starts at exactly one state, reported as BranchInfo::branch_point; a
// source that names no state of the parent is refused (never rounded).
struct BranchSource {
  enum class Kind {
    kParentHead,  // parent's current head (default)
    kParentLsn,   // exactly state lsn, which must be a state of the parent: on its
                  // history or a former head of it (else checkpoint_not_found)
    kParentTime,  // parent as of time_micros (the newest state at or before it;
                  // a time in the future is invalid_argument)
    kCheckpoint,  // exactly the state lsn: a checkpoint of any branch of the project;
                  // when `parent` is given, it must be a state of that parent
    kLabel,       // the parent's checkpoint labelled `label`
  };
  Kind kind = Kind::kParentHead;
  // Default (empty): the project's default branch. For kCheckpoint without a
  // parent, the parent recorded is the branch owning the checkpoint when it is
  // live, else the default branch.
  std::string parent;
  Lsn lsn = 0;
  int64_t time_micros = 0;
  std::string label;
};

struct CreateBranchOptions {
  BranchSource from;
  // Relative time to live (> 0), or an absolute expire time (> now). At most one.
  std::optional<int64_t> ttl_micros;
  std::optional<int64_t> expires_micros;
  bool is_protected = false;
  // The writes policy: false = any (the default), true = promote_only (SQL
  // writes only by clients with branches:protect; the server enforces it).
  bool writes_promote_only = false;
  Actor actor;
};

struct BranchInfo {
  std::string name;
  TimelineId timeline = 0;   // stable id of the branch (survives rename)
  std::string parent;        // empty: a root (or its parents were all deleted)
  TimelineId parent_timeline = 0;
  Lsn branch_point = 0;      // the state it was created from (0: empty database)
  Lsn head = 0;              // current head checkpoint
  int64_t created_micros = 0;
  std::optional<int64_t> expires_micros;
  bool is_protected = false;
  bool writes_promote_only = false;  // the writes policy (CreateBranchOptions)
  bool is_default = false;
  // Compute idle timeout of the branch in seconds (0: never suspend). Unset:
  // the server's default applies. Set with SetIdleTimeout; kept across rename.
  std::optional<int64_t> idle_timeout_seconds;
  // From PageStore::Usage (filled when with_usage is asked for).
  uint64_t logical_bytes = 0;
  uint64_t exclusive_bytes = 0;  // bytes written only by this branch
};

struct CheckpointInfo {
  Lsn lsn = 0;
  int64_t time_micros = 0;
  storage::RecordKind record_kind = storage::RecordKind::kCommit;
  Annotation annotation;      // kind, client_id, request_id, summary, rows, ...
  bool inherited = false;     // written by another branch (before this one's branch point / reset)
  // A state this branch had as head that its current history no longer
  // reaches (a rollback, reset or promotion moved it away). Still a target
  // for Rollback and CreateBranch; annotation.target / previous_head of the
  // move records say where each move went and came from.
  bool rolled_back = false;
  std::string branch;         // name of the branch that wrote it, if it is still live
  std::vector<std::string> labels;  // this branch's labels on it
  uint32_t db_size_pages = 0;
};

struct LabelInfo {
  std::string label;
  Lsn lsn = 0;
  int64_t created_micros = 0;
};

struct CheckpointPage {
  std::vector<CheckpointInfo> checkpoints;  // newest first
  std::string next_cursor;                  // empty: no more
};

// What to roll back to.
struct RollbackTarget {
  enum class Kind {
    kLsn,          // a state that is on the branch's history or was ever its head
    kTime,         // the branch as of time_micros
    kActionsBack,  // undo the newest `actions` SQL commits on its history
    kLabel,        // the checkpoint this branch labelled `label`
  };
  Kind kind = Kind::kLsn;
  Lsn lsn = 0;
  int64_t time_micros = 0;
  int actions = 1;
  std::string label;
};

struct RollbackResult {
  Lsn head_lsn = 0;           // the new head (the reset record: itself a checkpoint)
  Lsn previous_head_lsn = 0;  // roll back to this to undo
  Lsn target_lsn = 0;         // the state the branch now has
};

// A state to diff: a branch's head, or a checkpoint LSN (of any branch).
struct StateRef {
  std::string branch;  // branch name (its head, or the base for lsn)
  std::optional<Lsn> lsn;
};

struct SchemaObjectDiff {
  std::string type;    // table, index, view, trigger
  std::string name;
  std::string change;  // added, removed, changed
  std::string old_sql, new_sql;
  // Tables: column names added / removed / changed (type, notnull, default, pk).
  std::vector<std::string> columns_added, columns_removed, columns_changed;
};

struct SchemaDiff {
  Lsn from_lsn = 0, to_lsn = 0;
  std::vector<SchemaObjectDiff> objects;  // sorted by (type, name)
  std::string unified;                    // unified text diff of the two schema dumps
};

struct RowChange {
  std::string op;        // insert, delete, update
  std::string key_json;  // primary key (or rowid) values, JSON array (see key_columns)
  // delete: every column of the "from" row; update: the common columns that
  // changed plus the non-NULL values of columns the "to" side dropped.
  std::string old_json;  // JSON object column -> value
  // insert: every column of the "to" row; update: the common columns that
  // changed plus the non-NULL values of columns the "to" side added.
  std::string new_json;
};

struct TableDataDiff {
  std::string table;
  // Totals over the whole comparison (not only the rows of this page).
  uint64_t rows_added = 0, rows_removed = 0, rows_changed = 0;
  // This page's rows (DataDiffOptions::limit over all tables, in table order).
  std::vector<RowChange> rows;
  // The key of key_json: {"rowid"} for rowid tables (a declared INTEGER
  // PRIMARY KEY is the rowid), else the PRIMARY KEY columns in key order.
  std::vector<std::string> key_columns;
  // Columns only the "to" / only the "from" state has. Rows are compared on
  // the key and the common columns, as Dolt does.
  std::vector<std::string> columns_added, columns_removed;
  // e.g. "table added", "table removed", "key_changed: rows not compared"
  std::string note;
};

struct DataDiffOptions {
  // Rows per page, over all tables: 1..1000. Counts are always totals.
  size_t limit = 100;
  // The previous page's DataDiff::next_cursor: the next page of the same two
  // states (it names them; the StateRefs are then ignored). Empty: first page.
  std::string cursor;
  std::vector<std::string> tables;  // empty: all
};

struct DataDiff {
  Lsn from_lsn = 0, to_lsn = 0;
  std::vector<TableDataDiff> tables;  // only tables with changes or notes
  uint64_t pages_changed = 0;         // PageStore::ChangedPages(from, to).size()
  uint64_t tables_skipped = 0;        // tables proven unchanged without reading rows
  uint64_t rows_compared = 0;         // rows read from the two states (the cost)
  std::string next_cursor;            // empty: this was the last page
};

// The diff as SQL that turns the "from" state into the "to" state (as Dolt's
// dolt_patch): run the pages' statements in order, first page first.
struct DataPatch {
  Lsn from_lsn = 0, to_lsn = 0;
  // First page: schema changes (tables and columns dropped and added, indexes
  // and views); then this page's row changes (INSERT / UPDATE / DELETE by
  // key); last page: triggers (after the rows, so that they do not fire).
  std::vector<std::string> statements;
  // False when a schema change has no SQL form here (a table whose columns
  // changed in type or constraints, or whose key changed); such a change is
  // listed as a "-- " comment statement.
  bool complete = true;
  std::string next_cursor;
};

// --- Promote -------------------------------------------------------------------
//
// Fast-forward: when the parent's head is on the source's history (the parent
// has not moved since the source was created or reset from it), the parent
// moves to the source's head: O(1).
// Replay: otherwise the source's *actions* (the SQL commits on its current
// history since its base on the parent: its creation, its latest reset from
// the parent, or the newest state of its history that is on the parent's
// history, whichever the newest-first walk reaches first; rolled-back actions
// are not on the history) are run again, oldest first, on a temporary
// internal timeline created from the parent's head, each as one transaction
// through options.replay, and the parent moves to the result. A non-SQL
// change on that stretch (an import, a promotion into the source, an action
// whose script was too large to record) makes the branch not replayable.

// One action to replay.
struct ReplayAction {
  int index = 0;          // 0-based position in the replay
  Lsn lsn = 0;            // the source's commit
  // The annotation the replayed commit must carry: the original's kind, sql,
  // params (read from the original record's payload), client_id and summary,
  // replay_of = lsn, request_id = the promotion's. The executor fills in rows.
  Annotation annotation;
};

// Runs annotation.sql with annotation.params_json on db (read-write at the
// temporary timeline's head) as one transaction, exactly as the SQL route runs
// a request, and right before COMMIT stores the annotation (rows filled in)
// with AnnotateNextCommit. Returns the script's error (nothing committed) or OK.
using ReplayFunction = std::function<Status(sqlite3* db, const ReplayAction& action)>;

// Runs the verify query read-only on db (the promotion's result state) and
// returns the first column of the first row as JSON text ("null" when there is
// no row), or the query's error.
using VerifyFunction = std::function<Result<std::string>(sqlite3* db, const std::string& sql)>;

struct PromoteOptions {
  enum class Mode { kAuto, kFastForward, kReplay };
  // kAuto: fast-forward when possible, else replay. Default kAuto.
  Mode mode = Mode::kAuto;
  // Do everything (replay, verify) but leave the parent where it is.
  bool dry_run = false;
  // When non-empty: run on the result before the parent moves; its value must
  // be truthy (IsTruthy) or the promotion fails with verify_failed.
  std::string verify;
  // When the parent moved during the replay: retry the whole promotion up to
  // max_retries (0..10) more times instead of failing with concurrent_write.
  bool retry_on_conflict = false;
  int max_retries = 3;
  // Allow a protected parent (the server checks the caller's scope first).
  bool allow_protected = false;
  Actor actor;
  // Required for replay / for verify.
  ReplayFunction replay;
  VerifyFunction verify_query;
  // Test hook: called once per attempt right before the parent moves (not in a
  // dry run), without catalog locks held.
  std::function<void()> before_move;
};

struct PromotedAction {
  Lsn lsn = 0;          // the source's commit
  std::string summary;
  int64_t rows = 0;     // rows changed (replay: by the replay; fast-forward: originally)
};

struct PromoteResult {
  std::string parent, source;
  bool fast_forward = false;
  bool dry_run = false;
  std::optional<Lsn> head_lsn;  // the parent's new head (the promote record); unset in a dry run
  Lsn previous_head_lsn = 0;    // the parent's head before (undo: roll back to it)
  std::optional<Lsn> target_lsn;  // the state the parent has (would have, for fast-forward)
  std::vector<PromotedAction> actions;  // oldest first
  bool verified = false;        // a verify query ran (and was truthy)
  std::string verify_value_json;
  int attempts = 1;
};

// Details of a failed promotion.
struct PromoteFailure {
  // replay_failed / not_replayable: the action (index -1 for not_replayable).
  int index = -1;
  Lsn lsn = 0;
  std::string summary;
  Status error;                   // replay_failed: the action's error; verify_failed: the query's
  std::string verify_value_json;  // verify_failed: the value (JSON text)
};

// Truthiness of a verify value (JSON text): a non-zero number, or a string
// other than "", "0" and "false" (case-insensitive); anything else is false.
bool IsTruthy(const std::string& value_json);

// --- Import ---------------------------------------------------------------------
//
// A new branch whose database is an uploaded SQLite file, written in pieces so
// that memory stays bounded whatever the file's size, and atomic: the pieces
// go to a hidden timeline (created from the default branch's head, as
// CreateBranch does; no catalog row yet), each piece one store commit
// (annotation kind "internal": never listed), the last piece a "sql" commit
// with the import's summary; Finish checks the image (PRAGMA quick_check)
// and names it in one catalog step. Until then no branch of that name exists:
// a crash leaves an orphan timeline that Catalog::Open drops (its pages are
// reclaimed by GC once outside the restore window), an error or an abandoned
// writer drops it at once. A retry after any failure starts afresh.
//
// The file: whole pages of kPageSize bytes (page size 4096 in its header),
// starting with the "SQLite format 3" header. A WAL-mode header (file format
// version 2) is stored as rollback mode (version 1): the branch is the main
// database file alone. Errors: InvalidArgument invalid_database.
class ImportWriter {
 public:
  ImportWriter() = default;
  ImportWriter(const ImportWriter&) = delete;
  ImportWriter& operator=(const ImportWriter&) = delete;
  // Drops the hidden timeline unless Finish succeeded.
  virtual ~ImportWriter() = default;

  // Appends the next whole pages of the file (pages.size() a positive
  // multiple of kPageSize) as one durable commit on the hidden timeline. The
  // first call must start with page 1. After an error the writer is aborted:
  // every later call fails.
  virtual Status Append(std::string_view pages) = 0;
  // Appends last_pages (possibly empty) as the final commit, annotated with
  // summary, checks the database and creates the branch. Errors:
  // invalid_database (empty, truncated or corrupt file: quick_check),
  // branch_exists (the name was taken meanwhile), store and catalog errors;
  // on any error nothing remains.
  virtual Result<BranchInfo> Finish(std::string_view last_pages, const std::string& summary) = 0;
  // Pages written so far.
  virtual uint64_t pages() const = 0;
};

struct ConnectionRequest {
  bool read_only = false;       // read-only at the head now (or as_of)
  std::optional<Lsn> as_of;     // read-only as of this LSN of the branch's history
  int cache_pages = 2000;
  // Read-write: storage::ConnectionOptions::pipelined_commits (the caller
  // acknowledges with storage::WaitDurable). Default: false.
  bool pipelined_commits = false;
};

class Catalog {
 public:
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;
  ~Catalog();  // stops the reaper, closes stores and catalog.db

  // Opens or creates the catalog in data_dir, opens every project's store (one
  // at a time, closing it again) and reconciles (see above). Unavailable when
  // another process has it open.
  static Result<std::unique_ptr<Catalog>> Open(const CatalogOptions& options,
                                               const std::string& data_dir);

  // --- Projects ---------------------------------------------------------------
  // Creates the project, its store and its default branch `production` (an
  // empty database). AlreadyExists (project_exists), InvalidArgument,
  // Unavailable (too_many_open_files) while fewer than 64 file descriptors
  // would stay free.
  Result<ProjectInfo> CreateProject(const std::string& name, const CreateProjectOptions& options);
  Result<ProjectInfo> GetProject(const std::string& name);
  std::vector<ProjectInfo> ListProjects();
  // Deletes the project and all its branches: once it returns, no call finds
  // it (project_not_found) and a project of the same name can be created (in
  // a new directory). Calls still in progress on it and its open connections
  // fail from then on with NotFound project_not_found (none of them can write
  // to it); its store directory is removed when the last of them ends (or, if
  // the process dies first, by the next Open). FailedPrecondition
  // (branch_protected) when a branch is protected and !force.
  Status DeleteProject(const std::string& name, bool force = false);
  // Brings in a project whose directory (projects/<id>) and catalog.db rows
  // another writer put there while the catalog is open (a cluster's takeover
  // restores one from the bucket: server/object_storage/restore.h): reads its
  // row, opens and reconciles its store as Open does. AlreadyExists
  // (project_exists) when a live project has its name; NotFound when no row
  // has the id.
  Result<ProjectInfo> AdoptProject(const std::string& id);
  // 0..kMaxRestoreWindowMicros, InvalidArgument (invalid_restore_window) otherwise.
  Status SetRestoreWindow(const std::string& project, int64_t restore_window_micros);

  // --- Branches ---------------------------------------------------------------
  // O(1) in database size. AlreadyExists (branch_exists), InvalidArgument,
  // NotFound (branch_not_found / checkpoint_not_found / label_not_found),
  // FailedPrecondition (outside_restore_window).
  Result<BranchInfo> CreateBranch(const std::string& project, const std::string& name,
                                  const CreateBranchOptions& options);
  // with_usage: also fill logical_bytes / exclusive_bytes (PageStore::Usage).
  Result<BranchInfo> GetBranch(const std::string& project, const std::string& branch,
                               bool with_usage = true);
  // The branch's catalog row alone: GetBranch's fields but head (0), parent
  // (empty) and the usage. Never touches the store, so never waits for a
  // pipelined commit's fsync: for the checks every request makes (protection,
  // writes policy, the timeline), from memory once the row was read.
  Result<BranchInfo> GetBranchRow(const std::string& project, const std::string& branch);
  // A branch named "<branch>/<segment>" (no further '/'), the first by name,
  // or none: what a libSQL URL that lost its last segment may have meant
  // (server/hrana/route.cc). From memory once read, as GetBranchRow; the
  // branch itself need not exist.
  Result<std::optional<std::string>> ChildBranch(const std::string& project,
                                                 const std::string& branch);
  // Sorted by name; parent links let the caller render the tree.
  Result<std::vector<BranchInfo>> ListBranches(const std::string& project,
                                               bool with_usage = false);
  Status RenameBranch(const std::string& project, const std::string& from, const std::string& to);
  // Deletes a branch (not the default one: FailedPrecondition default_branch;
  // not a protected one: branch_protected). Its children keep their data and
  // are re-parented to its parent.
  Status DeleteBranch(const std::string& project, const std::string& branch);
  // Unset: never expires. Set: absolute expire time (must be > now).
  Status SetExpiry(const std::string& project, const std::string& branch,
                   std::optional<int64_t> expires_micros);
  Status SetTtl(const std::string& project, const std::string& branch, int64_t ttl_micros);
  Status SetProtected(const std::string& project, const std::string& branch, bool is_protected);
  // The writes policy (see CreateBranchOptions::writes_promote_only); kept
  // across rename. NotFound.
  Status SetWritesPolicy(const std::string& project, const std::string& branch,
                         bool promote_only);
  // The branch's compute idle timeout: 0..kMaxIdleTimeoutSeconds seconds (0:
  // never suspend), or unset (the server default). Persisted in catalog.db.
  // InvalidArgument (invalid_argument) out of range; NotFound.
  Status SetIdleTimeout(const std::string& project, const std::string& branch,
                        std::optional<int64_t> seconds);
  // Deletes every branch whose expire time has passed (Env clock). Returns how
  // many. Called by the reaper thread; tests call it directly.
  Result<int> ReapExpired();

  // --- Checkpoints ------------------------------------------------------------
  // The branch's history as a reflog, newest first: every state the branch
  // has had as head (its creation, commits, rollbacks, resets, promotions;
  // those its current history no longer reaches are flagged rolled_back),
  // merged by LSN with the states of other branches its current history is
  // built on (inherited). Every entry is a target for Rollback. limit
  // 1..1000 (default 50); cursor (an LSN) from the previous page.
  // Cost: a page reads the project's records from the cursor down to its
  // entries (and at most down to the branch's creation).
  Result<CheckpointPage> ListCheckpoints(const std::string& project, const std::string& branch,
                                         size_t limit = 50, const std::string& cursor = "");
  // One checkpoint by LSN (any record of the project's store; labels of `branch`).
  Result<CheckpointInfo> GetCheckpoint(const std::string& project, const std::string& branch,
                                       Lsn lsn);
  // Labels are per branch, unique within it; a labelled checkpoint is a GC pin.
  Status LabelCheckpoint(const std::string& project, const std::string& branch, Lsn lsn,
                         const std::string& label);
  Status UnlabelCheckpoint(const std::string& project, const std::string& branch,
                           const std::string& label);
  // The branch's labels, sorted by label.
  Result<std::vector<LabelInfo>> ListLabels(const std::string& project, const std::string& branch);

  // Moves the branch to the target state: O(1). Target rules: the state must be
  // on the branch's current history or a state the branch ever had as head,
  // and within the restore window unless labelled. Protected branches refuse
  // (branch_protected) unless allow_protected (the server checks the
  // caller's branches:protect first). Undo: Rollback to previous_head_lsn.
  Result<RollbackResult> Rollback(const std::string& project, const std::string& branch,
                                  const RollbackTarget& target, const Actor& actor = {},
                                  bool allow_protected = false);
  // Moves the branch to its parent's current head (undo as for Rollback).
  // FailedPrecondition no_parent for a root.
  Result<RollbackResult> ResetFromParent(const std::string& project, const std::string& branch,
                                         const Actor& actor = {}, bool allow_protected = false);

  // Promotes the branch into its parent (see PromoteOptions and
  // docs/branching.md). The parent moves at most once, atomically, by
  // ResetTimeline with the head it had when the promotion started, to a
  // "promote" checkpoint annotated with the source's name and the source LSNs
  // it carries; undo: Rollback the parent to previous_head_lsn. Nothing
  // changes on any failure. Errors (*failure, when given, gets the details):
  //   FailedPrecondition: no_parent, branch_protected (the parent is protected
  //     and !allow_protected), parent_moved (mode kFastForward on a moved
  //     parent), not_replayable (an action on the source's history without a
  //     recorded script), replay_failed (an action failed on the parent's
  //     state), verify_failed;
  //   Conflict concurrent_write: the parent moved while the replay ran (after
  //     max_retries more attempts when retry_on_conflict);
  //   InvalidArgument: replay mode without a replay function, verify without
  //     a verify function, max_retries outside 0..10;
  //   NotFound project_not_found: the project was deleted while it ran.
  Result<PromoteResult> Promote(const std::string& project, const std::string& branch,
                                const PromoteOptions& options, PromoteFailure* failure = nullptr);
  // Fast-forward only (mode kFastForward, no verify), as a move.
  Result<RollbackResult> Promote(const std::string& project, const std::string& branch,
                                 const Actor& actor = {});

  // Garbage-collects the project's store: pins = labels + branch points; the
  // project's restore window. Runs without blocking other catalog calls
  // (LabelCheckpoint on the same project waits for it), and without holding
  // up DeleteProject (the deleted project's files go when it ends).
  Result<storage::GcStats> Gc(const std::string& project);

  // --- Import -----------------------------------------------------------------
  // Starts an import of a new branch `name` (see ImportWriter). Fails early
  // with branch_exists when the name is taken, and with the CreateBranch
  // errors of a bad name or project. The writer holds the project's store;
  // once the project is deleted its calls fail with project_not_found.
  Result<std::unique_ptr<ImportWriter>> BeginImport(const std::string& project,
                                                    const std::string& name, const Actor& actor);

  // --- SQL --------------------------------------------------------------------
  // A connection to the branch through the branchdb VFS: read-write at the head
  // (the caller sets annotations with storage::SetNextCommitAnnotation), or
  // read-only now / as of an LSN. The connection holds the project's store:
  // it may outlive DeleteProject (its calls then fail with project_not_found)
  // and the catalog (it keeps working; the Env must outlive it).
  Result<storage::SqliteHandle> OpenBranchConnection(const std::string& project,
                                                     const std::string& branch,
                                                     const ConnectionRequest& request = {});

  // --- Diff -------------------------------------------------------------------
  Result<SchemaDiff> DiffSchema(const std::string& project, const StateRef& from,
                                const StateRef& to);
  // Row differences per table, paged (DataDiffOptions). Each page compares
  // the two states again (cost per page follows the change, not the page).
  // InvalidArgument (invalid_argument): limit outside 1..1000, a bad cursor.
  Result<DataDiff> DiffData(const std::string& project, const StateRef& from, const StateRef& to,
                            const DataDiffOptions& options = {});
  // The same comparison as SQL (see DataPatch), paged like DiffData.
  Result<DataPatch> DiffPatch(const std::string& project, const StateRef& from,
                              const StateRef& to, const DataDiffOptions& options = {});

  // Projects whose store was found damaged by its last open (ProjectDamage),
  // by name. Opens no store.
  std::vector<ProjectDamage> DamagedProjects();

  // The project's store (for the server's export and metrics, and for tests),
  // shared: holding it keeps it open, also past DeleteProject (whose calls
  // then fail with project_not_found) or the catalog's destruction.
  Result<std::shared_ptr<storage::PageStore>> Store(const std::string& project);

  struct Impl;

 private:
  explicit Catalog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Validation of names (rules above). OK or InvalidArgument with the reason.
Status ValidateProjectName(const std::string& name);
Status ValidateBranchName(const std::string& name);
Status ValidateLabel(const std::string& label);

}  // namespace branchdb::catalog

#endif  // BRANCHDB_CATALOG_CATALOG_H_
