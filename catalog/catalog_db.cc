// catalog.db access (statements, schema, rows), name rules, small helpers.
#include <random>
#include <utility>

#include "catalog/catalog_internal.h"

namespace branchdb::catalog {

// --- Stmt -------------------------------------------------------------------

Stmt::Stmt(sqlite3* db, const char* sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
}
Stmt::Stmt(StmtCache& cache, sqlite3* db, const char* sql)
    : db_(db), stmt_(cache.Checkout(db, sql)), cache_(&cache), sql_(sql) {}
Stmt::Stmt(const DbUse& use, const char* sql) : Stmt(use.stmts(), use.get(), sql) {}
Stmt::~Stmt() {
  if (cache_ == nullptr) {
    sqlite3_finalize(stmt_);
  } else if (stmt_ != nullptr) {
    cache_->Return(sql_, stmt_);
  }
}
Stmt& Stmt::Bind(int i, int64_t v) {
  if (stmt_) sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, const std::string& v) {
  if (stmt_) sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  if (stmt_) sqlite3_bind_null(stmt_, i);
  return *this;
}
int Stmt::Step() { return stmt_ ? sqlite3_step(stmt_) : SQLITE_ERROR; }
Status Stmt::Run() {
  int rc = Step();
  if (rc != SQLITE_DONE) return CatalogError(db_, "catalog statement");
  return Status::OK();
}
int64_t Stmt::Int(int col) const { return sqlite3_column_int64(stmt_, col); }
std::string Stmt::Text(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, col))
           : std::string();
}
bool Stmt::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

Status CatalogError(sqlite3* db, const std::string& what) {
  if (db != nullptr && sqlite3_errcode(db) == SQLITE_FULL) {
    return Status::ResourceExhausted(
        what + ": disk full (catalog.db; nothing was changed); retry once space is freed",
        "disk_full");
  }
  return Status::IOError(what + ": " + (db ? sqlite3_errmsg(db) : "no catalog"), "catalog_error");
}

// --- DbUse ------------------------------------------------------------------

DbUse::DbUse(Catalog::Impl& im) : lock_(im.db_mu), im_(im), db_(im.db) {}

StmtCache& DbUse::stmts() const {
  im_.db_mu.AssertHeld();  // lock_ holds it
  return im_.stmts;
}

sqlite3_stmt* StmtCache::Checkout(sqlite3* db, const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end() && it->second != nullptr) return std::exchange(it->second, nullptr);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return nullptr;
  }
  return stmt;
}

void StmtCache::Return(const char* sql, sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  sqlite3_stmt*& kept = stmts_[sql];
  if (kept == nullptr) {
    kept = stmt;
  } else {
    sqlite3_finalize(stmt);  // a second copy, of a statement used twice at once
  }
}

void StmtCache::Clear() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  stmts_.clear();
}

Status DbUse::Exec(const char* sql) const {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : "error";
    sqlite3_free(err);
    if ((rc & 0xff) == SQLITE_FULL) return CatalogError(db_, "catalog");
    return Status::IOError(std::string("catalog: ") + msg, "catalog_error");
  }
  return Status::OK();
}

Status DbUse::Transaction(const std::function<Status()>& body) const {
  BRANCHDB_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status st = body();
  if (st.ok()) st = Exec("COMMIT");
  if (!st.ok()) (void)Exec("ROLLBACK");
  return st;
}

// --- Schema -----------------------------------------------------------------

Status Catalog::Impl::InitSchema() {
  BRANCHDB_RETURN_IF_ERROR(DbUse(*this).Exec(
      "CREATE TABLE IF NOT EXISTS projects("
      "  id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, created_micros INTEGER NOT NULL,"
      "  restore_window_micros INTEGER NOT NULL, default_branch TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS branches("
      "  project_id TEXT NOT NULL, timeline INTEGER NOT NULL, name TEXT NOT NULL,"
      "  parent_timeline INTEGER NOT NULL DEFAULT 0, branch_point INTEGER NOT NULL,"
      "  created_micros INTEGER NOT NULL, expires_micros INTEGER,"
      "  protected INTEGER NOT NULL DEFAULT 0, idle_timeout_seconds INTEGER,"
      "  PRIMARY KEY(project_id, timeline), UNIQUE(project_id, name));"
      "CREATE TABLE IF NOT EXISTS labels("
      "  project_id TEXT NOT NULL, timeline INTEGER NOT NULL, label TEXT NOT NULL,"
      "  lsn INTEGER NOT NULL, created_micros INTEGER NOT NULL,"
      "  PRIMARY KEY(project_id, timeline, label));"
      "CREATE INDEX IF NOT EXISTS branches_expiry ON branches(expires_micros)"
      "  WHERE expires_micros IS NOT NULL;"));
  return MigrateSchema();
}

// Catalogs created before a column existed get it here (ALTER TABLE ADD
// COLUMN of a nullable column: O(1), existing rows read NULL).
Status Catalog::Impl::MigrateSchema() {
  DbUse use(*this);
  bool has_idle_timeout = false;
  bool has_writes_policy = false;
  {
    Stmt s(use.get(), "SELECT name FROM pragma_table_info('branches')");
    if (!s.ok()) return CatalogError(use.get(), "table_info");
    while (s.Step() == SQLITE_ROW) {
      if (s.Text(0) == "idle_timeout_seconds") has_idle_timeout = true;
      if (s.Text(0) == "writes_promote_only") has_writes_policy = true;
    }
  }
  if (!has_idle_timeout) {
    BRANCHDB_RETURN_IF_ERROR(use.Exec("ALTER TABLE branches ADD COLUMN idle_timeout_seconds INTEGER"));
  }
  // The writes policy (NULL or 0: any; 1: promote_only).
  if (!has_writes_policy) {
    BRANCHDB_RETURN_IF_ERROR(use.Exec("ALTER TABLE branches ADD COLUMN writes_promote_only INTEGER"));
  }
  return Status::OK();
}

// --- Rows -------------------------------------------------------------------

namespace {
constexpr const char* kBranchCols =
    "name, timeline, parent_timeline, branch_point, created_micros, expires_micros, protected,"
    " idle_timeout_seconds, writes_promote_only";

BranchRow ReadBranch(const Stmt& s) {
  BranchRow r;
  r.name = s.Text(0);
  r.timeline = static_cast<TimelineId>(s.Int(1));
  r.parent_timeline = static_cast<TimelineId>(s.Int(2));
  r.branch_point = static_cast<Lsn>(s.Int(3));
  r.created_micros = s.Int(4);
  if (!s.IsNull(5)) r.expires_micros = s.Int(5);
  r.is_protected = s.Int(6) != 0;
  if (!s.IsNull(7)) r.idle_timeout_seconds = s.Int(7);
  r.promote_only = !s.IsNull(8) && s.Int(8) != 0;
  return r;
}
}  // namespace

Result<std::shared_ptr<Project>> Catalog::Impl::FindProject(const std::string& name) {
  MutexLock l(mu);
  auto it = projects.find(name);
  if (it == projects.end()) {
    return Status::NotFound("project '" + name + "' not found", "project_not_found");
  }
  return it->second;
}

namespace {
Status ProjectGone(const Project& p) {
  return Status::NotFound("project '" + p.info.name + "' not found", "project_not_found");
}
}  // namespace

Result<ReadLocked> Catalog::Impl::ReadProject(const std::string& name) {
  auto p = FindProject(name);
  if (!p.ok()) return p.status();
  return ReadProject(std::move(*p));
}

Result<ReadLocked> Catalog::Impl::ReadProject(std::shared_ptr<Project> p) {
  if (p->reconcile_pending.load()) {
    WriteLock w(p->mu);
    p->mu.AssertHeld();  // by w
    if (!p->deleted) BRANCHDB_RETURN_IF_ERROR(ReconcileIfPending(*p));
  }
  ReadLocked r{std::move(p), {}};
  r.lock = ReadLock(r.project->mu);
  r.project->mu.AssertReaderHeld();  // by r.lock
  if (r.project->deleted) return ProjectGone(*r.project);
  return r;
}

Result<WriteLocked> Catalog::Impl::WriteProject(const std::string& name) {
  auto p = FindProject(name);
  if (!p.ok()) return p.status();
  return WriteProject(std::move(*p));
}

Result<WriteLocked> Catalog::Impl::WriteProject(std::shared_ptr<Project> p) {
  WriteLocked w{std::move(p), {}};
  w.lock = WriteLock(w.project->mu);
  w.project->mu.AssertHeld();  // by w.lock
  if (w.project->deleted) return ProjectGone(*w.project);
  BRANCHDB_RETURN_IF_ERROR(ReconcileIfPending(*w.project));
  return w;
}

Result<Catalog::Impl::BranchRef<ReadLock>>
Catalog::Impl::ReadProjectBranch(const std::string& project, const std::string& branch) {
  auto p = ReadProject(project);
  if (!p.ok()) return p.status();
  auto row = FindBranch(**p, branch);
  if (!row.ok()) return row.status();
  return BranchRef<ReadLock>{std::move(*p), std::move(*row)};
}

Result<Catalog::Impl::BranchRef<WriteLock>>
Catalog::Impl::WriteProjectBranch(const std::string& project, const std::string& branch) {
  auto p = WriteProject(project);
  if (!p.ok()) return p.status();
  auto row = FindBranch(**p, branch);
  if (!row.ok()) return row.status();
  return BranchRef<WriteLock>{std::move(*p), std::move(*row)};
}

std::vector<std::shared_ptr<Project>> Catalog::Impl::Projects() {
  MutexLock l(mu);
  std::vector<std::shared_ptr<Project>> out;
  out.reserve(projects.size());
  for (const auto& [name, p] : projects) out.push_back(p);
  return out;
}

uint64_t Catalog::Impl::RowsGeneration() {
  MutexLock l(rows_mu);
  return rows_generation;
}

void Catalog::Impl::RememberRow(uint64_t generation, const std::string& project_id,
                                const BranchRow& row) {
  MutexLock l(rows_mu);
  if (generation != rows_generation) return;  // a write began or ended meanwhile
  if (rows_by_timeline.size() >= kMaxCachedRows) {
    rows_by_name.clear();
    rows_by_timeline.clear();
  }
  rows_by_name[{project_id, row.name}] = row;
  rows_by_timeline[{project_id, row.timeline}] = row;
}

namespace {

// Erases project_id's entries for which drop(value) is true: the maps are
// ordered by project id first, so only that project's entries are visited.
template <typename Map, typename Pred>
void EraseInProject(Map& m, const std::string& project_id, Pred drop) {
  for (auto it = m.lower_bound({project_id, {}}); it != m.end() && it->first.first == project_id;) {
    it = drop(it->second) ? m.erase(it) : std::next(it);
  }
}

}  // namespace

void Catalog::Impl::ForgetRows(const std::string& project_id,
                               std::optional<TimelineId> timeline) {
  MutexLock l(rows_mu);
  ++rows_generation;
  auto changed = [&](const BranchRow& row) {
    return !timeline || row.timeline == *timeline || row.parent_timeline == *timeline;
  };
  EraseInProject(rows_by_name, project_id, changed);
  EraseInProject(rows_by_timeline, project_id, changed);
  EraseInProject(child_by_name, project_id, [](const auto&) { return true; });
}

Result<BranchRow> Catalog::Impl::FindBranch(const Project& p, const std::string& name) {
  {
    MutexLock l(rows_mu);
    auto it = rows_by_name.find({p.info.id, name});
    if (it != rows_by_name.end()) return it->second;
  }
  const uint64_t generation = RowsGeneration();
  static const std::string sql =
      std::string("SELECT ") + kBranchCols + " FROM branches WHERE project_id=?1 AND name=?2";
  DbUse use(*this);
  Stmt s(use, sql.c_str());
  s.Bind(1, p.info.id).Bind(2, name);
  int rc = s.Step();
  if (rc == SQLITE_ROW) {
    BranchRow row = ReadBranch(s);
    RememberRow(generation, p.info.id, row);
    return row;
  }
  if (rc == SQLITE_DONE) {
    return Status::NotFound("branch '" + name + "' not found in project '" + p.info.name + "'",
                            "branch_not_found");
  }
  return CatalogError(use.get(), "find branch");
}

Result<BranchRow> Catalog::Impl::FindBranchByTimeline(const Project& p, TimelineId t) {
  {
    MutexLock l(rows_mu);
    auto it = rows_by_timeline.find({p.info.id, t});
    if (it != rows_by_timeline.end()) return it->second;
  }
  const uint64_t generation = RowsGeneration();
  static const std::string sql =
      std::string("SELECT ") + kBranchCols + " FROM branches WHERE project_id=?1 AND timeline=?2";
  DbUse use(*this);
  Stmt s(use, sql.c_str());
  s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(t));
  int rc = s.Step();
  if (rc == SQLITE_ROW) {
    BranchRow row = ReadBranch(s);
    RememberRow(generation, p.info.id, row);
    return row;
  }
  if (rc == SQLITE_DONE) return Status::NotFound("no branch of timeline", "branch_not_found");
  return CatalogError(use.get(), "find branch");
}

std::vector<BranchRow> Catalog::Impl::AllBranches(const Project& p) {
  static const std::string sql =
      std::string("SELECT ") + kBranchCols + " FROM branches WHERE project_id=?1 ORDER BY name";
  DbUse use(*this);
  Stmt s(use, sql.c_str());
  s.Bind(1, p.info.id);
  std::vector<BranchRow> out;
  while (s.Step() == SQLITE_ROW) out.push_back(ReadBranch(s));
  return out;
}

Result<std::optional<std::string>> Catalog::Impl::FirstChild(const Project& p,
                                                           const std::string& name) {
  {
    MutexLock l(rows_mu);
    auto it = child_by_name.find({p.info.id, name});
    if (it != child_by_name.end()) return it->second;
  }
  const uint64_t generation = RowsGeneration();
  // Names below "name/" sort in ["name/", "name0"): '0' follows '/'. Their
  // grandchildren ("name/x/y") are skipped on the way.
  const std::string prefix = name + "/";
  std::optional<std::string> child;
  {
    DbUse use(*this);
    Stmt s(use,
           "SELECT name FROM branches WHERE project_id=?1 AND name>?2 AND name<?3 ORDER BY name");
    s.Bind(1, p.info.id).Bind(2, prefix).Bind(3, name + "0");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      std::string n = s.Text(0);
      if (n.find('/', prefix.size()) == std::string::npos) {
        child = std::move(n);
        break;
      }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return CatalogError(use.get(), "find child branch");
  }
  MutexLock l(rows_mu);
  if (generation != rows_generation) return child;
  if (child_by_name.size() >= kMaxCachedRows) child_by_name.clear();  // names asked are any
  child_by_name[{p.info.id, name}] = child;
  return child;
}

namespace {
Status InsertBranchRow(sqlite3* db, const std::string& project_id, const BranchRow& r) {
  Stmt s(db,
         "INSERT INTO branches(project_id, name, timeline, parent_timeline, branch_point,"
         " created_micros, expires_micros, protected, idle_timeout_seconds, writes_promote_only)"
         " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
  s.Bind(1, project_id).Bind(2, r.name).Bind(3, static_cast<int64_t>(r.timeline));
  s.Bind(4, static_cast<int64_t>(r.parent_timeline)).Bind(5, static_cast<int64_t>(r.branch_point));
  s.Bind(6, r.created_micros);
  if (r.expires_micros) s.Bind(7, *r.expires_micros); else s.BindNull(7);
  s.Bind(8, r.is_protected ? 1 : 0);
  if (r.idle_timeout_seconds) s.Bind(9, *r.idle_timeout_seconds); else s.BindNull(9);
  s.Bind(10, r.promote_only ? 1 : 0);
  return s.Run();
}
}  // namespace

Status Catalog::Impl::InsertBranch(const Project& p, const BranchRow& r) {
  RowsWrite write(*this, p.info.id, r.timeline);
  DbUse use(*this);
  return InsertBranchRow(use.get(), p.info.id, r);
}

Status Catalog::Impl::InsertProject(const ProjectInfo& info, const BranchRow& default_branch) {
  RowsWrite write(*this, info.id, std::nullopt);
  DbUse use(*this);
  return use.Transaction([&] {
    Stmt s(use.get(),
           "INSERT INTO projects(id, name, created_micros, restore_window_micros, default_branch)"
           " VALUES(?1,?2,?3,?4,?5)");
    s.Bind(1, info.id).Bind(2, info.name).Bind(3, info.created_micros);
    s.Bind(4, info.restore_window_micros).Bind(5, info.default_branch);
    BRANCHDB_RETURN_IF_ERROR(s.Run());
    return InsertBranchRow(use.get(), info.id, default_branch);
  });
}

Status Catalog::Impl::DeleteProjectRows(const Project& p) {
  RowsWrite write(*this, p.info.id, std::nullopt);
  DbUse use(*this);
  return use.Transaction([&] {
    for (const char* sql : {"DELETE FROM labels WHERE project_id=?1",
                            "DELETE FROM branches WHERE project_id=?1",
                            "DELETE FROM projects WHERE id=?1"}) {
      Stmt s(use.get(), sql);
      s.Bind(1, p.info.id);
      BRANCHDB_RETURN_IF_ERROR(s.Run());
    }
    return Status::OK();
  });
}

// Removes the row and its labels, and re-parents its children to its parent,
// in one catalog transaction.
Status Catalog::Impl::DeleteBranchRow(const Project& p, const BranchRow& r) {
  RowsWrite write(*this, p.info.id, r.timeline);
  DbUse use(*this);
  return use.Transaction([&] {
    {
      Stmt s(use.get(),
             "UPDATE branches SET parent_timeline=?3 WHERE project_id=?1 AND parent_timeline=?2");
      s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(r.timeline));
      s.Bind(3, static_cast<int64_t>(r.parent_timeline));
      BRANCHDB_RETURN_IF_ERROR(s.Run());
    }
    {
      Stmt s(use.get(), "DELETE FROM labels WHERE project_id=?1 AND timeline=?2");
      s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(r.timeline));
      BRANCHDB_RETURN_IF_ERROR(s.Run());
    }
    Stmt s(use.get(), "DELETE FROM branches WHERE project_id=?1 AND timeline=?2");
    s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(r.timeline));
    return s.Run();
  });
}

Status Catalog::Impl::UpdateBranch(const Project& p, const BranchRow& r, const char* column,
                                   std::optional<int64_t> value) {
  std::string sql =
      std::string("UPDATE branches SET ") + column + "=?3 WHERE project_id=?1 AND timeline=?2";
  RowsWrite write(*this, p.info.id, r.timeline);
  DbUse use(*this);
  Stmt s(use.get(), sql.c_str());
  s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(r.timeline));
  if (value) s.Bind(3, *value); else s.BindNull(3);
  return s.Run();
}

std::optional<Lsn> Catalog::Impl::LabelLsn(const Project& p, TimelineId t,
                                           const std::string& label) {
  DbUse use(*this);
  Stmt s(use, "SELECT lsn FROM labels WHERE project_id=?1 AND timeline=?2 AND label=?3");
  s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(t)).Bind(3, label);
  if (s.Step() != SQLITE_ROW) return std::nullopt;
  return static_cast<Lsn>(s.Int(0));
}

bool Catalog::Impl::IsLabelled(const Project& p, Lsn lsn) {
  DbUse use(*this);
  Stmt s(use, "SELECT 1 FROM labels WHERE project_id=?1 AND lsn=?2 LIMIT 1");
  s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(lsn));
  return s.Step() == SQLITE_ROW;
}

std::vector<std::string> Catalog::Impl::LabelsAt(const Project& p, TimelineId t, Lsn lsn) {
  DbUse use(*this);
  Stmt s(use,
         "SELECT label FROM labels WHERE project_id=?1 AND timeline=?2 AND lsn=?3 ORDER BY label");
  s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(t)).Bind(3, static_cast<int64_t>(lsn));
  std::vector<std::string> out;
  while (s.Step() == SQLITE_ROW) out.push_back(s.Text(0));
  return out;
}

std::vector<Lsn> Catalog::Impl::Pins(const Project& p) {
  DbUse use(*this);
  std::vector<Lsn> pins;
  Stmt s(use,
         "SELECT lsn FROM labels WHERE project_id=?1 UNION "
         "SELECT branch_point FROM branches WHERE project_id=?1 AND branch_point>0");
  s.Bind(1, p.info.id);
  while (s.Step() == SQLITE_ROW) pins.push_back(static_cast<Lsn>(s.Int(0)));
  return pins;
}

std::set<std::string> Catalog::Impl::ProjectsWithExpired(int64_t now) {
  DbUse use(*this);
  Stmt s(use,
         "SELECT DISTINCT project_id FROM branches WHERE expires_micros IS NOT NULL"
         " AND expires_micros<=?1");
  s.Bind(1, now);
  std::set<std::string> out;
  while (s.Step() == SQLITE_ROW) out.insert(s.Text(0));
  return out;
}

// --- Names ------------------------------------------------------------------

namespace {
bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

Status ValidateProjectName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 63 &&
            ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9'));
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) ok = false;
  }
  if (ok) return Status::OK();
  return Status::InvalidArgument(
      "invalid project name '" + name +
          "': 1-63 chars of a-z 0-9 - _, starting with a letter or digit",
      "invalid_project_name");
}

Status ValidateBranchName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("invalid branch name '" + name + "': " + why +
                                       " (1-128 chars of A-Z a-z 0-9 . _ - /)",
                                   "invalid_branch_name");
  };
  if (name.empty() || name.size() > 128) return bad("length");
  for (char c : name) {
    if (!(IsAlnum(c) || c == '.' || c == '_' || c == '-' || c == '/')) return bad("character");
  }
  if (name.front() == '/' || name.back() == '/') return bad("leading or trailing '/'");
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string seg = name.substr(start, end - start);
    if (seg.empty()) return bad("empty segment");
    if (seg == "." || seg == "..") return bad("'.' or '..' segment");
    start = end + 1;
  }
  return Status::OK();
}

Status ValidateLabel(const std::string& label) {
  bool ok = !label.empty() && label.size() <= 128;
  for (char c : label) {
    if (!(IsAlnum(c) || c == '.' || c == '_' || c == '-')) ok = false;
  }
  if (ok) return Status::OK();
  return Status::InvalidArgument("invalid label '" + label + "': 1-128 chars of A-Z a-z 0-9 . _ -",
                                 "invalid_label");
}

// --- Helpers ----------------------------------------------------------------

Status RemoveTree(Env* env, const std::string& dir) {
  if (!env->FileExists(dir)) return Status::OK();
  auto children = env->GetChildren(dir);
  if (!children.ok()) {
    // Not a directory: a file.
    return env->DeleteFile(dir);
  }
  for (const std::string& name : *children) {
    std::string path = JoinPath(dir, name);
    auto sub = env->GetChildren(path);
    if (sub.ok()) {
      BRANCHDB_RETURN_IF_ERROR(RemoveTree(env, path));
    } else {
      BRANCHDB_RETURN_IF_ERROR(env->DeleteFile(path));
    }
  }
  return env->DeleteDir(dir);
}

std::string NewProjectId() {
  static Mutex mu;  // of rng
  static std::mt19937_64 rng{std::random_device{}()};
  MutexLock l(mu);
  uint64_t v = rng();
  static const char* kHex = "0123456789abcdef";
  std::string id = "p";
  for (int i = 0; i < 16; ++i) id += kHex[(v >> (i * 4)) & 0xF];
  return id;
}

CheckpointInfo MakeCheckpoint(const storage::RecordInfo& r, TimelineId branch_timeline) {
  CheckpointInfo c;
  c.lsn = r.lsn;
  c.time_micros = r.time_micros;
  c.record_kind = r.kind;
  c.annotation = DecodeAnnotation(r.annotation);
  if (r.annotation.empty()) {
    if (r.kind == storage::RecordKind::kCreate) c.annotation.kind = "create";
    if (r.kind == storage::RecordKind::kReset) c.annotation.kind = "rollback";
  }
  c.inherited = r.timeline != branch_timeline;
  c.db_size_pages = r.db_size_pages;
  return c;
}

}  // namespace branchdb::catalog
