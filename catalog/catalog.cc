// Catalog: open/reconcile, projects, branches, TTL reaper.
#include "catalog/catalog.h"

#include <algorithm>
#include <set>

#include "base/process.h"
#include "catalog/catalog_internal.h"

namespace branchdb::catalog {

Catalog::Catalog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Catalog::~Catalog() = default;

Catalog::Impl::~Impl() {
  {
    MutexLock l(reaper_mu);
    stop = true;
  }
  reaper_cv.SignalAll();
  if (reaper.joinable()) reaper.join();
  // Stores still held (by connections) stay open until their owners let go.
  projects.clear();
  MutexLock l(db_mu);
  stmts.Clear();
  db = nullptr;
  db_owner.reset();
}

std::string Catalog::Impl::ProjectDir(const std::string& id) const {
  return JoinPath(JoinPath(data_dir, "projects"), id);
}

std::shared_ptr<storage::PooledStore> Catalog::Impl::NewStore(const std::string& id) {
  storage::PageStoreOptions o = options.store_options;
  o.env = env;
  const std::string dir = ProjectDir(id);
  return std::shared_ptr<storage::PooledStore>(
      pool->Add(o, dir).release(), [pool = pool, env = env, dir](storage::PooledStore* store) {
        const bool deleted = store->retired();
        delete store;  // closes its files first
        if (deleted) (void)RemoveTree(env, dir);
      });
}

namespace {

Status Precondition(const std::string& msg, const std::string& reason) {
  return Status::FailedPrecondition(msg, reason);
}

}  // namespace

Result<std::unique_ptr<Catalog>> Catalog::Open(const CatalogOptions& options,
                                               const std::string& data_dir) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->env = options.env ? options.env : Env::Default();
  impl->data_dir = data_dir;
  Env* env = impl->env;
  storage::StorePoolOptions pool_options;
  pool_options.env = env;
  pool_options.reserved_file_descriptors = kReservedFileDescriptors;
  pool_options.disk_full_retry_micros = kDiskFullRetryMicros;
  impl->pool = std::make_shared<storage::StorePool>(pool_options);
  BRANCHDB_RETURN_IF_ERROR(env->CreateDirs(JoinPath(data_dir, "projects")));
  auto lock = env->LockFile(JoinPath(data_dir, "LOCK"));
  if (!lock.ok()) return lock.status();
  impl->lock = std::move(*lock);

  std::string path = JoinPath(data_dir, "catalog.db");
  BRANCHDB_RETURN_IF_ERROR(PrepareSqliteFile(env, path));
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  {
    MutexLock l(impl->db_mu);  // nothing else runs yet: for the analysis
    impl->db_owner.reset(raw);
    impl->db = raw;
  }
  if (rc != SQLITE_OK) return CatalogError(raw, "open " + path);
  sqlite3_busy_timeout(raw, 5000);
  BRANCHDB_RETURN_IF_ERROR(
      DbUse(*impl).Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  BRANCHDB_RETURN_IF_ERROR(impl->InitSchema());
  BRANCHDB_RETURN_IF_ERROR(impl->LoadProjects());
  if (options.reaper_interval_micros > 0) {
    impl->last_gc_micros = impl->Now();
    Impl* raw = impl.get();
    impl->reaper = std::thread([raw] { raw->ReaperLoop(); });
  }
  return std::unique_ptr<Catalog>(new Catalog(std::move(impl)));
}

// Runs alone (in Open, before the catalog is shared): takes locks only
// because the helpers it calls do.
Status Catalog::Impl::LoadProjects() {
  std::set<std::string> ids;
  std::vector<ProjectInfo> infos;
  {
    DbUse use(*this);
    Stmt s(use.get(),
           "SELECT id, name, created_micros, restore_window_micros, default_branch FROM projects");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      ProjectInfo info;
      info.id = s.Text(0);
      info.name = s.Text(1);
      info.created_micros = s.Int(2);
      info.restore_window_micros = s.Int(3);
      info.default_branch = s.Text(4);
      ids.insert(info.id);
      infos.push_back(std::move(info));
    }
    if (rc != SQLITE_DONE) return CatalogError(use.get(), "load projects");
  }
  for (ProjectInfo& info : infos) {
    // Opened (recovered) and reconciled one at a time, then closed: start-up
    // holds no more descriptors than one store needs.
    auto store = NewStore(info.id);
    auto p = std::make_shared<Project>(std::move(info), std::move(store));
    // A store that does not open fails its project's calls, not the catalog.
    if (p->store->OpenNow().ok()) {
      BRANCHDB_RETURN_IF_ERROR(Reconcile(*p));
      p->store->TryClose();
    } else {
      p->reconcile_pending = true;
    }
    MutexLock l(mu);
    projects[p->info.name] = std::move(p);
  }
  // Directories of projects whose catalog row was never written (or was deleted).
  std::string root = JoinPath(data_dir, "projects");
  auto children = env->GetChildren(root);
  if (!children.ok()) return children.status();
  for (const std::string& child : *children) {
    if (!ids.count(child)) BRANCHDB_RETURN_IF_ERROR(RemoveTree(env, JoinPath(root, child)));
  }
  return Status::OK();
}

Status Catalog::Impl::ReconcileIfPending(Project& p) {
  if (!p.reconcile_pending.load()) return Status::OK();
  BRANCHDB_RETURN_IF_ERROR(p.store->OpenNow());
  BRANCHDB_RETURN_IF_ERROR(Reconcile(p));
  p.reconcile_pending = false;
  return Status::OK();
}

std::vector<ProjectDamage> Catalog::DamagedProjects() {
  std::vector<ProjectDamage> out;
  for (const std::shared_ptr<Project>& p : impl_->Projects()) {
    ProjectDamage d;
    d.project = p->info.name;
    const Status open = p->store->OpenError();
    if (open.reason() == "store_damaged") {
      d.message = open.message();  // names the segment, not the directory
    } else if (!open.ok() && p->reconcile_pending.load()) {
      // Another failure (an I/O error): its message may name server paths.
      d.message = "the store does not open (" + std::string(StatusCodeName(open.code())) + " " +
                  open.reason() + "); see the server log";
    } else {
      d.segments = p->store->Damage();
      if (d.segments.empty()) continue;
      d.serving = true;
    }
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(),
            [](const ProjectDamage& a, const ProjectDamage& b) { return a.project < b.project; });
  return out;
}

Status Catalog::Impl::Reconcile(Project& p) {
  std::vector<BranchRow> rows = AllBranches(p);
  std::set<TimelineId> known;
  for (const BranchRow& r : rows) known.insert(r.timeline);
  std::set<TimelineId> live;
  auto timelines = p.store->ListTimelinesOrError();  // never "none" for "cannot open"
  if (!timelines.ok()) return timelines.status();
  for (const storage::TimelineInfo& t : *timelines) {
    live.insert(t.id);
    if (!known.count(t.id)) {
      // Created in the store, never acknowledged: an orphan.
      BRANCHDB_RETURN_IF_ERROR(p.store->DropTimeline(t.id));
    }
  }
  for (const BranchRow& r : rows) {
    if (!live.count(r.timeline)) {
      // An interrupted delete (catalog first, store second, never both): finish it.
      BRANCHDB_RETURN_IF_ERROR(DeleteBranchRow(p, r));
    }
  }
  return Status::OK();
}

// --- Projects -----------------------------------------------------------------

namespace {
Status CheckWindow(int64_t w) {
  if (w < 0 || w > kMaxRestoreWindowMicros) {
    return Status::InvalidArgument("restore window must be within 0..35 days",
                                   "invalid_restore_window");
  }
  return Status::OK();
}
}  // namespace

Result<ProjectInfo> Catalog::CreateProject(const std::string& name,
                                           const CreateProjectOptions& options) {
  BRANCHDB_RETURN_IF_ERROR(ValidateProjectName(name));
  int64_t window = options.restore_window_micros.value_or(impl_->options.default_restore_window_micros);
  BRANCHDB_RETURN_IF_ERROR(CheckWindow(window));
  Impl& im = *impl_;
  {
    MutexLock l(im.mu);
    if (im.projects.count(name) || im.creating.count(name)) {
      return Status::AlreadyExists("project '" + name + "' exists", "project_exists");
    }
    im.creating.insert(name);
  }
  // The name is reserved: the store and the rows are written without catalog
  // locks. A project that fails half way is let go retired: its directory goes.
  auto make = [&]() -> Result<std::shared_ptr<Project>> {
    ProjectInfo info;
    info.id = NewProjectId();  // a new directory, also for a name deleted a moment ago
    info.name = name;
    info.created_micros = im.Now();
    info.restore_window_micros = window;
    BRANCHDB_RETURN_IF_ERROR(
        im.pool->CheckRoom().WithContext("cannot create project '" + name + "'"));
    auto store = im.NewStore(info.id);
    auto p = std::make_shared<Project>(std::move(info), std::move(store));
    Annotation a;
    a.kind = "create";
    a.branch = kDefaultBranch;
    auto t = p->store->CreateTimeline(Lsn{0}, EncodeAnnotation(a));
    Status st = t.status();
    if (st.ok()) {
      BranchRow row;
      row.name = kDefaultBranch;
      row.timeline = *t;
      row.created_micros = p->info.created_micros;
      st = im.InsertProject(p->info, row);
    }
    if (!st.ok()) {
      p->store->Retire(st);
      return st;
    }
    return p;
  };
  auto made = make();
  MutexLock l(im.mu);  // released before `made` is let go
  im.creating.erase(name);
  if (!made.ok()) return made.status();
  im.projects[name] = *made;
  return (*made)->info;
}

Result<ProjectInfo> Catalog::GetProject(const std::string& name) {
  auto p = impl_->FindProject(name);
  if (!p.ok()) return p.status();
  MutexLock l(impl_->mu);  // info's mutable fields
  return (*p)->info;
}

std::vector<ProjectInfo> Catalog::ListProjects() {
  MutexLock l(impl_->mu);
  std::vector<ProjectInfo> out;
  for (auto& [name, p] : impl_->projects) out.push_back(p->info);
  return out;
}

Status Catalog::DeleteProject(const std::string& name, bool force) {
  Impl& im = *impl_;
  auto p = im.WriteProject(name);
  if (!p.ok()) return p.status();
  if (!force) {
    for (const BranchRow& r : im.AllBranches(**p)) {
      if (r.is_protected) {
        return Precondition("branch '" + r.name + "' is protected", "branch_protected");
      }
    }
  }
  // Catalog first: a crash from here on leaves an orphan directory that Open removes.
  BRANCHDB_RETURN_IF_ERROR(im.DeleteProjectRows(**p));
  // Nobody finds it any more; whoever still holds it (a call in progress, a
  // connection) fails from now on, and the last of them removes its directory.
  (*p)->mu.AssertHeld();  // by p.lock
  (*p)->deleted = true;
  (*p)->store->Retire(
      Status::NotFound("project '" + name + "' was deleted", "project_not_found"));
  MutexLock l(im.mu);
  auto it = im.projects.find(name);
  if (it != im.projects.end() && it->second == p->project) im.projects.erase(it);
  return Status::OK();
}

Result<ProjectInfo> Catalog::AdoptProject(const std::string& id) {
  Impl& im = *impl_;
  ProjectInfo info;
  {
    DbUse use(im);
    Stmt s(use.get(),
           "SELECT id, name, created_micros, restore_window_micros, default_branch FROM projects "
           "WHERE id = ?1");
    s.Bind(1, id);
    const int rc = s.Step();
    if (rc == SQLITE_DONE) {
      return Status::NotFound("no catalog row for project id " + id, "project_not_found");
    }
    if (rc != SQLITE_ROW) return CatalogError(use.get(), "adopt project");
    info.id = s.Text(0);
    info.name = s.Text(1);
    info.created_micros = s.Int(2);
    info.restore_window_micros = s.Int(3);
    info.default_branch = s.Text(4);
  }
  {
    MutexLock l(im.mu);
    if (im.projects.count(info.name)) {
      return Status::AlreadyExists("project '" + info.name + "' already exists", "project_exists");
    }
  }
  auto p = std::make_shared<Project>(info, im.NewStore(info.id));
  // Not shared yet: reconciled without its lock, as in LoadProjects.
  BRANCHDB_RETURN_IF_ERROR(p->store->OpenNow());
  BRANCHDB_RETURN_IF_ERROR(im.Reconcile(*p));
  p->store->TryClose();
  MutexLock l(im.mu);
  im.projects[info.name] = std::move(p);
  return info;
}

Status Catalog::SetRestoreWindow(const std::string& project, int64_t w) {
  BRANCHDB_RETURN_IF_ERROR(CheckWindow(w));
  Impl& im = *impl_;
  auto p = im.WriteProject(project);
  if (!p.ok()) return p.status();
  {
    DbUse use(im);
    Stmt s(use.get(), "UPDATE projects SET restore_window_micros=?2 WHERE id=?1");
    s.Bind(1, (*p)->info.id).Bind(2, w);
    BRANCHDB_RETURN_IF_ERROR(s.Run());
  }
  MutexLock l(im.mu);
  (*p)->info.restore_window_micros = w;
  return Status::OK();
}

// --- Branches -------------------------------------------------------------------

namespace {
// A branch's info as its row alone gives it.
BranchInfo RowInfo(const Project& p, const BranchRow& r) {
  BranchInfo b;
  b.name = r.name;
  b.timeline = r.timeline;
  b.parent_timeline = r.parent_timeline;
  b.branch_point = r.branch_point;
  b.created_micros = r.created_micros;
  b.expires_micros = r.expires_micros;
  b.is_protected = r.is_protected;
  b.writes_promote_only = r.promote_only;
  b.idle_timeout_seconds = r.idle_timeout_seconds;
  b.is_default = r.name == p.info.default_branch;
  return b;
}
}  // namespace

Result<BranchInfo> Catalog::Impl::MakeInfo(Project& p, const BranchRow& r, bool with_usage) {
  BranchInfo b = RowInfo(p, r);
  if (r.parent_timeline != 0) {
    auto parent = FindBranchByTimeline(p, r.parent_timeline);
    if (parent.ok()) b.parent = parent->name;
  }
  auto head = p.store->Head(r.timeline);
  if (!head.ok()) return head.status();
  // The head may be a pipelined commit not yet durable: never report one
  // that could still fail (or vanish in a crash).
  BRANCHDB_RETURN_IF_ERROR(p.store->WaitDurable(*head));
  b.head = *head;
  if (with_usage) {
    auto u = p.store->Usage(r.timeline);
    if (!u.ok()) return u.status();
    b.logical_bytes = u->logical_bytes;
    b.exclusive_bytes = u->exclusive_bytes;
  }
  return b;
}

namespace {
Status NotParentState(const std::string& parent, Lsn lsn, const std::string& hint) {
  return Status::NotFound("LSN " + std::to_string(lsn) + " is not a state of branch '" + parent +
                              "' (" + hint + ")",
                          "checkpoint_not_found");
}
}  // namespace

// Every source names one exact state of the parent, or is refused: an LSN or
// checkpoint that the parent never had (an unknown LSN, another branch's
// state) is not rounded to a neighbouring state.
Result<Lsn> Catalog::Impl::ResolveSource(Project& p, const BranchSource& from,
                                         const BranchRow& parent, TimelineId* parent_t) {
  storage::PageStore& store = *p.store;
  switch (from.kind) {
    case BranchSource::Kind::kParentHead:
      return store.Head(parent.timeline);
    case BranchSource::Kind::kParentLsn: {
      if (from.lsn == 0 || !IsBranchState(store, parent.timeline, from.lsn)) {
        return NotParentState(parent.name, from.lsn,
                              "its checkpoints list its states; to start from another branch's "
                              "checkpoint, name that checkpoint without a parent");
      }
      BRANCHDB_RETURN_IF_ERROR(CheckRestorable(p, parent.timeline, from.lsn));
      return from.lsn;
    }
    case BranchSource::Kind::kParentTime: {
      int64_t now = Now();
      if (from.time_micros > now) {
        return Status::InvalidArgument("the time is in the future", "invalid_argument");
      }
      if (from.time_micros < now - p.info.restore_window_micros) {
        return Precondition("time is outside the project's restore window",
                            "outside_restore_window");
      }
      auto r = store.LsnAt(parent.timeline, from.time_micros);
      if (!r.ok()) {
        return Status::NotFound("branch '" + parent.name + "' has no state at that time",
                                "checkpoint_not_found");
      }
      return *r;  // the newest state at or before the time: the branch point reports it
    }
    case BranchSource::Kind::kCheckpoint: {
      auto rec = store.GetRecord(from.lsn);
      if (from.lsn == 0 || !rec.ok() || rec->kind == storage::RecordKind::kDrop) {
        return Status::NotFound("checkpoint " + std::to_string(from.lsn) + " not found",
                                "checkpoint_not_found");
      }
      if (!from.parent.empty()) {
        // A parent was named: the checkpoint must be one of its states.
        if (!IsBranchState(store, parent.timeline, from.lsn)) {
          return NotParentState(parent.name, from.lsn,
                                "leave the parent out to branch from the branch that wrote it");
        }
      } else if (auto owner = FindBranchByTimeline(p, rec->timeline); owner.ok()) {
        *parent_t = owner->timeline;
      }
      BRANCHDB_RETURN_IF_ERROR(CheckRestorable(p, 0, from.lsn));
      return from.lsn;
    }
    case BranchSource::Kind::kLabel: {
      std::optional<Lsn> lsn = LabelLsn(p, parent.timeline, from.label);
      if (!lsn) {
        return Status::NotFound("label '" + from.label + "' not found on branch '" +
                                    parent.name + "'",
                                "label_not_found");
      }
      return *lsn;
    }
  }
  return Status::InvalidArgument("unknown branch source", "invalid_argument");
}

Result<BranchInfo> Catalog::CreateBranch(const std::string& project, const std::string& name,
                                         const CreateBranchOptions& o) {
  BRANCHDB_RETURN_IF_ERROR(ValidateBranchName(name));
  if (o.ttl_micros && o.expires_micros) {
    return Status::InvalidArgument("give a ttl or an expire time, not both", "invalid_argument");
  }
  Impl& im = *impl_;
  auto pr = im.WriteProject(project);  // held across the store's fsync: this project only
  if (!pr.ok()) return pr.status();
  Project& p = **pr;
  int64_t now = im.Now();
  std::optional<int64_t> expires;
  if (o.ttl_micros) {
    if (*o.ttl_micros <= 0) return Status::InvalidArgument("ttl must be > 0", "invalid_argument");
    expires = now + *o.ttl_micros;
  } else if (o.expires_micros) {
    if (*o.expires_micros <= now) {
      return Status::InvalidArgument("expire time is in the past", "invalid_argument");
    }
    expires = o.expires_micros;
  }
  if (im.FindBranch(p, name).ok()) {
    return Status::AlreadyExists("branch '" + name + "' exists", "branch_exists");
  }
  auto parent = im.FindBranch(p, o.from.parent.empty() ? p.info.default_branch : o.from.parent);
  if (!parent.ok()) return parent.status();
  TimelineId parent_t = parent->timeline;
  auto resolved = im.ResolveSource(p, o.from, *parent, &parent_t);
  if (!resolved.ok()) return resolved.status();
  Lsn base = *resolved;
  storage::PageStore& store = *p.store;
  Annotation a;
  a.kind = "create";
  a.branch = name;
  a.client_id = o.actor.client_id;
  a.request_id = o.actor.request_id;
  a.target = base;
  // Store first, then catalog: a crash in between leaves an orphan that Open drops.
  auto t = store.CreateTimeline(base, EncodeAnnotation(a));
  if (!t.ok()) return t.status();
  BranchRow row;
  row.name = name;
  row.timeline = *t;
  row.parent_timeline = parent_t;
  row.branch_point = base;
  row.created_micros = now;
  row.expires_micros = expires;
  row.is_protected = o.is_protected;
  row.promote_only = o.writes_promote_only;
  Status st = im.InsertBranch(p, row);
  if (!st.ok()) {
    (void)store.DropTimeline(*t);
    return st;
  }
  return im.MakeInfo(p, row, false);
}

Result<BranchInfo> Catalog::GetBranch(const std::string& project, const std::string& branch,
                                      bool with_usage) {
  auto found = impl_->ReadProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  return impl_->MakeInfo(*found->project, found->row, with_usage);
}

Result<BranchInfo> Catalog::GetBranchRow(const std::string& project, const std::string& branch) {
  auto found = impl_->ReadProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  return RowInfo(*found->project, found->row);
}

Result<std::optional<std::string>> Catalog::ChildBranch(const std::string& project,
                                                       const std::string& branch) {
  auto p = impl_->ReadProject(project);
  if (!p.ok()) return p.status();
  return impl_->FirstChild(**p, branch);
}

Result<std::vector<BranchInfo>> Catalog::ListBranches(const std::string& project,
                                                      bool with_usage) {
  auto p = impl_->ReadProject(project);
  if (!p.ok()) return p.status();
  std::vector<BranchInfo> out;
  for (const BranchRow& r : impl_->AllBranches(**p)) {
    auto info = impl_->MakeInfo(**p, r, with_usage);
    if (!info.ok()) return info.status();
    out.push_back(std::move(*info));
  }
  return out;
}

Status Catalog::RenameBranch(const std::string& project, const std::string& from,
                             const std::string& to) {
  BRANCHDB_RETURN_IF_ERROR(ValidateBranchName(to));
  Impl& im = *impl_;
  auto found = im.WriteProjectBranch(project, from);
  if (!found.ok()) return found.status();
  Project& p = *found->project;
  const BranchRow& row = found->row;
  if (from == to) return Status::OK();
  if (im.FindBranch(p, to).ok()) {
    return Status::AlreadyExists("branch '" + to + "' exists", "branch_exists");
  }
  bool is_default = p.info.default_branch == from;
  {
    RowsWrite write(im, p.info.id, row.timeline);
    DbUse use(im);
    BRANCHDB_RETURN_IF_ERROR(use.Transaction([&] {
      Stmt s(use.get(), "UPDATE branches SET name=?3 WHERE project_id=?1 AND timeline=?2");
      s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(row.timeline)).Bind(3, to);
      BRANCHDB_RETURN_IF_ERROR(s.Run());
      if (!is_default) return Status::OK();
      Stmt d(use.get(), "UPDATE projects SET default_branch=?2 WHERE id=?1");
      d.Bind(1, p.info.id).Bind(2, to);
      return d.Run();
    }));
  }
  if (is_default) {
    MutexLock l(im.mu);
    p.info.default_branch = to;
  }
  return Status::OK();
}

Status Catalog::Impl::DeleteBranchLocked(Project& p, const BranchRow& row) {
  // Catalog first: after a crash the timeline is an orphan that Open drops. The
  // store keeps every state the children's histories reach.
  BRANCHDB_RETURN_IF_ERROR(DeleteBranchRow(p, row));
  return p.store->DropTimeline(row.timeline);
}

Status Catalog::DeleteBranch(const std::string& project, const std::string& branch) {
  Impl& im = *impl_;
  auto found = im.WriteProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  Project& p = *found->project;
  const BranchRow& row = found->row;
  if (row.name == p.info.default_branch) {
    return Precondition("the default branch cannot be deleted", "default_branch");
  }
  if (row.is_protected) {
    return Precondition("branch '" + branch + "' is protected", "branch_protected");
  }
  return im.DeleteBranchLocked(p, row);
}

Status Catalog::SetExpiry(const std::string& project, const std::string& branch,
                          std::optional<int64_t> expires_micros) {
  Impl& im = *impl_;
  auto found = im.WriteProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  const Project& p = *found->project;
  if (expires_micros) {
    if (found->row.name == p.info.default_branch) {
      return Precondition("the default branch cannot expire", "default_branch");
    }
    if (*expires_micros <= im.Now()) {
      return Status::InvalidArgument("expire time is in the past", "invalid_argument");
    }
  }
  return im.UpdateBranch(p, found->row, "expires_micros", expires_micros);
}

Status Catalog::SetTtl(const std::string& project, const std::string& branch, int64_t ttl) {
  if (ttl <= 0) return Status::InvalidArgument("ttl must be > 0", "invalid_argument");
  return SetExpiry(project, branch, impl_->Now() + ttl);
}

Status Catalog::SetProtected(const std::string& project, const std::string& branch, bool on) {
  auto found = impl_->WriteProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  return impl_->UpdateBranch(*found->project, found->row, "protected", on ? 1 : 0);
}

Status Catalog::SetWritesPolicy(const std::string& project, const std::string& branch,
                                bool promote_only) {
  auto found = impl_->WriteProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  return impl_->UpdateBranch(*found->project, found->row, "writes_promote_only",
                             promote_only ? 1 : 0);
}

Status Catalog::SetIdleTimeout(const std::string& project, const std::string& branch,
                               std::optional<int64_t> seconds) {
  if (seconds && (*seconds < 0 || *seconds > kMaxIdleTimeoutSeconds)) {
    return Status::InvalidArgument(
        "idle_timeout_seconds must be 0.." + std::to_string(kMaxIdleTimeoutSeconds),
        "invalid_argument");
  }
  auto found = impl_->WriteProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  return impl_->UpdateBranch(*found->project, found->row, "idle_timeout_seconds", seconds);
}

Result<int> Catalog::Impl::Reap(std::vector<ReapedBranch>* reaped) {
  int64_t now = Now();
  std::set<std::string> ids = ProjectsWithExpired(now);
  if (ids.empty()) return 0;
  int count = 0;
  for (const std::shared_ptr<Project>& project : Projects()) {
    if (!ids.count(project->info.id)) continue;
    auto p = WriteProject(project);
    if (!p.ok()) continue;  // deleted meanwhile
    for (const BranchRow& r : AllBranches(**p)) {
      if (!r.expires_micros || *r.expires_micros > now) continue;
      if (r.is_protected || r.name == (*p)->info.default_branch) continue;
      BRANCHDB_RETURN_IF_ERROR(DeleteBranchLocked(**p, r));
      reaped->push_back(ReapedBranch{(*p)->info.name, r.name, r.timeline});
      ++count;
    }
  }
  return count;
}

void Catalog::Impl::NotifyReaped(const std::vector<ReapedBranch>& reaped) {
  if (!options.on_branch_reaped) return;
  for (const ReapedBranch& r : reaped) options.on_branch_reaped(r.project, r.branch, r.timeline);
}

Result<int> Catalog::ReapExpired() {
  std::vector<Impl::ReapedBranch> reaped;
  Result<int> n = impl_->Reap(&reaped);
  impl_->NotifyReaped(reaped);
  return n;
}

void Catalog::Impl::ReaperLoop() {
  MutexLock l(reaper_mu);
  while (!stop) {
    reaper_cv.WaitFor(reaper_mu, std::chrono::microseconds(options.reaper_interval_micros));
    if (stop) break;
    l.Unlock();
    std::vector<ReapedBranch> reaped;
    (void)Reap(&reaped);
    NotifyReaped(reaped);
    std::vector<std::shared_ptr<Project>> to_gc;
    int64_t now = Now();
    if (options.gc_interval_micros > 0 && now - last_gc_micros >= options.gc_interval_micros) {
      last_gc_micros = now;
      to_gc = Projects();
    }
    pool->CloseIdle(kStoreIdleMicros);
    for (const auto& p : to_gc) {
      {
        MutexLock s(reaper_mu);
        if (stop) break;
      }
      (void)GcProject(p);  // NotFound project_not_found once deleted
    }
    to_gc.clear();  // without reaper_mu: a deleted project's last owner removes its files
    l.Lock();
  }
}

}  // namespace branchdb::catalog
