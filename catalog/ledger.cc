// Ledger over <data_dir>/ledger.db (catalog/ledger.h).
#include "catalog/ledger.h"

#include <sqlite3.h>

#include "base/mutex.h"
#include "base/process.h"
#include "catalog/catalog_internal.h"

namespace branchdb::catalog {
namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS audit("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT, time_micros INTEGER NOT NULL,"
    "  project TEXT NOT NULL, branch TEXT NOT NULL, client_id TEXT NOT NULL,"
    "  jti TEXT NOT NULL, request_id TEXT NOT NULL, operation TEXT NOT NULL,"
    "  status INTEGER NOT NULL, code TEXT NOT NULL, details TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS audit_project ON audit(project, seq);"
    "CREATE INDEX IF NOT EXISTS audit_time ON audit(time_micros);"
    "CREATE TABLE IF NOT EXISTS project_quotas("
    "  project_id TEXT PRIMARY KEY, max_branches INTEGER, max_active_computes INTEGER,"
    "  max_bytes INTEGER, max_commits_per_minute INTEGER,"
    "  default_branch_ttl_seconds INTEGER, durability TEXT);"
    "CREATE TABLE IF NOT EXISTS branch_owners("
    "  project_id TEXT NOT NULL, timeline INTEGER NOT NULL, client_id TEXT NOT NULL,"
    "  PRIMARY KEY(project_id, timeline));"
    "CREATE TABLE IF NOT EXISTS commit_counts("
    "  project_id TEXT NOT NULL, timeline INTEGER NOT NULL, client_id TEXT NOT NULL,"
    "  commits INTEGER NOT NULL, PRIMARY KEY(project_id, timeline, client_id));";

Status LedgerError(sqlite3* db, const std::string& what) {
  if (db != nullptr && sqlite3_errcode(db) == SQLITE_FULL) {
    return Status::ResourceExhausted(what + ": disk full (ledger.db)", "disk_full");
  }
  return Status::IOError(what + ": " + (db ? sqlite3_errmsg(db) : "no ledger"), "ledger_error");
}

class LedgerImpl final : public Ledger {
 public:
  LedgerImpl(const LedgerOptions& options, storage::SqliteHandle db)
      : options_(options), db_(std::move(db)) {}

  Status Init() {
    MutexLock l(mu_);
    BRANCHDB_RETURN_IF_ERROR(
        Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + std::string(kSchema)));
    // Added after the table: a ledger.db of an older build gets the column.
    bool has_durability = false;
    {
      Stmt s(db_.get(), "SELECT name FROM pragma_table_info('project_quotas')");
      while (s.Step() == SQLITE_ROW) has_durability |= s.Text(0) == "durability";
    }
    if (has_durability) return Status::OK();
    return Exec("ALTER TABLE project_quotas ADD COLUMN durability TEXT");
  }

  Status Append(AuditEvent* e) override {
    if (e->time_micros == 0) e->time_micros = options_.env->GetClock()->NowMicros();
    if (e->details_json.empty()) e->details_json = "{}";
    MutexLock l(mu_);
    Stmt s(stmts_, db_.get(),
           "INSERT INTO audit(time_micros, project, branch, client_id, jti, request_id,"
           " operation, status, code, details) VALUES(?,?,?,?,?,?,?,?,?,?)");
    s.Bind(1, e->time_micros).Bind(2, e->project).Bind(3, e->branch).Bind(4, e->client_id);
    s.Bind(5, e->jti).Bind(6, e->request_id).Bind(7, e->operation);
    s.Bind(8, static_cast<int64_t>(e->status)).Bind(9, e->code).Bind(10, e->details_json);
    if (s.Step() != SQLITE_DONE) return LedgerError(db_.get(), "audit append");
    e->seq = sqlite3_last_insert_rowid(db_.get());
    return Status::OK();
  }

  Result<std::vector<AuditEvent>> Query(const AuditQuery& q) override {
    MutexLock l(mu_);
    Stmt s(stmts_, db_.get(),
           "SELECT seq, time_micros, project, branch, client_id, jti, request_id, operation,"
           " status, code, details FROM audit WHERE project = ? AND seq > ?"
           " AND time_micros >= ? AND (? = '' OR client_id = ?) ORDER BY seq LIMIT ?");
    s.Bind(1, q.project.value_or("")).Bind(2, q.after_seq).Bind(3, q.since_micros);
    s.Bind(4, q.client_id).Bind(5, q.client_id).Bind(6, q.limit);
    std::vector<AuditEvent> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      AuditEvent e;
      e.seq = s.Int(0);
      e.time_micros = s.Int(1);
      e.project = s.Text(2);
      e.branch = s.Text(3);
      e.client_id = s.Text(4);
      e.jti = s.Text(5);
      e.request_id = s.Text(6);
      e.operation = s.Text(7);
      e.status = static_cast<int>(s.Int(8));
      e.code = s.Text(9);
      e.details_json = s.Text(10);
      out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) return LedgerError(db_.get(), "audit query");
    return out;
  }

  Result<int64_t> Prune() override {
    const int64_t cutoff = options_.env->GetClock()->NowMicros() - options_.retention_micros;
    MutexLock l(mu_);
    Stmt s(db_.get(), "DELETE FROM audit WHERE time_micros < ?");
    s.Bind(1, cutoff);
    if (s.Step() != SQLITE_DONE) return LedgerError(db_.get(), "audit prune");
    return static_cast<int64_t>(sqlite3_changes(db_.get()));
  }

  Result<ProjectSettings> GetSettings(const std::string& project_id) override {
    MutexLock l(mu_);
    Stmt s(stmts_, db_.get(),
           "SELECT max_branches, max_active_computes, max_bytes, max_commits_per_minute,"
           " default_branch_ttl_seconds, durability FROM project_quotas WHERE project_id = ?");
    s.Bind(1, project_id);
    ProjectSettings out;
    int rc = s.Step();
    if (rc == SQLITE_ROW) {
      int col = 0;
      for (const QuotaField& f : kQuotaFields) {
        if (!s.IsNull(col)) out.quotas.*f.member = s.Int(col);
        ++col;
      }
      if (!s.IsNull(4)) out.default_branch_ttl_seconds = s.Int(4);
      if (!s.IsNull(5)) out.durability = s.Text(5);
    } else if (rc != SQLITE_DONE) {
      return LedgerError(db_.get(), "project settings");
    }
    return out;
  }

  Status PutSettings(const std::string& project_id, const ProjectSettings& p) override {
    MutexLock l(mu_);
    Stmt s(db_.get(),
           "INSERT OR REPLACE INTO project_quotas(project_id, max_branches, max_active_computes,"
           " max_bytes, max_commits_per_minute, default_branch_ttl_seconds, durability)"
           " VALUES(?,?,?,?,?,?,?)");
    s.Bind(1, project_id);
    int col = 2;
    for (const QuotaField& f : kQuotaFields) {
      const auto& v = p.quotas.*f.member;
      v ? s.Bind(col, *v) : s.BindNull(col);
      ++col;
    }
    p.default_branch_ttl_seconds ? s.Bind(6, *p.default_branch_ttl_seconds) : s.BindNull(6);
    p.durability ? s.Bind(7, *p.durability) : s.BindNull(7);
    if (s.Step() != SQLITE_DONE) return LedgerError(db_.get(), "project settings");
    return Status::OK();
  }

  Status ForgetProject(const std::string& project_id) override {
    MutexLock l(mu_);
    for (const char* sql : {"DELETE FROM project_quotas WHERE project_id = ?",
                            "DELETE FROM branch_owners WHERE project_id = ?",
                            "DELETE FROM commit_counts WHERE project_id = ?"}) {
      Stmt s(db_.get(), sql);
      s.Bind(1, project_id);
      if (s.Step() != SQLITE_DONE) return LedgerError(db_.get(), "forget project");
    }
    return Status::OK();
  }

  Status SetBranchOwner(const std::string& project_id, uint64_t timeline,
                        const std::string& client_id) override {
    MutexLock l(mu_);
    Stmt s(stmts_, db_.get(),
           "INSERT OR REPLACE INTO branch_owners(project_id, timeline, client_id) VALUES(?,?,?)");
    s.Bind(1, project_id).Bind(2, static_cast<int64_t>(timeline)).Bind(3, client_id);
    if (s.Step() != SQLITE_DONE) return LedgerError(db_.get(), "branch owner");
    return Status::OK();
  }

  Result<std::vector<std::pair<uint64_t, std::string>>> BranchOwners(
      const std::string& project_id) override {
    MutexLock l(mu_);
    Stmt s(stmts_, db_.get(), "SELECT timeline, client_id FROM branch_owners WHERE project_id = ?");
    s.Bind(1, project_id);
    std::vector<std::pair<uint64_t, std::string>> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      out.emplace_back(static_cast<uint64_t>(s.Int(0)), s.Text(1));
    }
    if (rc != SQLITE_DONE) return LedgerError(db_.get(), "branch owners");
    return out;
  }

  Status AddCommits(const std::string& project_id,
                    const std::vector<CommitCount>& counts) override {
    MutexLock l(mu_);
    BRANCHDB_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    for (const CommitCount& c : counts) {
      Stmt s(stmts_, db_.get(),
             "INSERT INTO commit_counts(project_id, timeline, client_id, commits) VALUES(?,?,?,?)"
             " ON CONFLICT(project_id, timeline, client_id) DO UPDATE SET"
             " commits = commits + excluded.commits");
      s.Bind(1, project_id).Bind(2, static_cast<int64_t>(c.timeline)).Bind(3, c.client_id);
      s.Bind(4, c.commits);
      if (s.Step() != SQLITE_DONE) {
        Status st = LedgerError(db_.get(), "commit counts");
        (void)Exec("ROLLBACK");
        return st;
      }
    }
    Status st = Exec("COMMIT");
    if (!st.ok()) (void)Exec("ROLLBACK");  // none of them: the caller keeps them all
    return st;
  }

  Result<std::vector<CommitCount>> CommitCounts(const std::string& project_id) override {
    MutexLock l(mu_);
    Stmt s(stmts_, db_.get(),
           "SELECT timeline, client_id, commits FROM commit_counts WHERE project_id = ?");
    s.Bind(1, project_id);
    std::vector<CommitCount> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      out.push_back({static_cast<uint64_t>(s.Int(0)), s.Text(1), s.Int(2)});
    }
    if (rc != SQLITE_DONE) return LedgerError(db_.get(), "commit counts");
    return out;
  }

 private:
  Status Exec(const std::string& sql) REQUIRES(mu_) {
    char* err = nullptr;
    if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "error";
      sqlite3_free(err);
      return Status::IOError("ledger: " + msg, "ledger_error");
    }
    return Status::OK();
  }

  const LedgerOptions options_;
  Mutex mu_;
  storage::SqliteHandle db_ GUARDED_BY(mu_);
  StmtCache stmts_ GUARDED_BY(mu_);  // db_'s kept statements: destroyed before db_
};

}  // namespace

Result<std::unique_ptr<Ledger>> Ledger::Open(const LedgerOptions& options,
                                             const std::string& data_dir) {
  if (options.env == nullptr) return Status::InvalidArgument("ledger: env required");
  const std::string path = JoinPath(data_dir, "ledger.db");
  BRANCHDB_RETURN_IF_ERROR(PrepareSqliteFile(options.env, path));
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  storage::SqliteHandle db(raw);
  if (rc != SQLITE_OK) return LedgerError(raw, "open " + path);
  sqlite3_busy_timeout(raw, 5000);
  auto ledger = std::make_unique<LedgerImpl>(options, std::move(db));
  BRANCHDB_RETURN_IF_ERROR(ledger->Init());
  return std::unique_ptr<Ledger>(std::move(ledger));
}

}  // namespace branchdb::catalog
