// Catalog: checkpoints (listing, labels), rollback, reset from parent, GC,
// connections. Promote is in promote.cc.
#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"

namespace branchdb::catalog {
namespace {

Status NoCheckpoint(Lsn lsn) {
  return Status::NotFound("checkpoint " + std::to_string(lsn) + " not found",
                          "checkpoint_not_found");
}
Status Outside() {
  return Status::FailedPrecondition("state is outside the project's restore window",
                                    "outside_restore_window");
}

// True when state lsn was in effect on timeline t at or after window_start:
// it is on t's current history and its successor there (the record that
// replaced it) was written at or after window_start (or there is none: it is
// the head); or it is a former head that a reset within the window replaced.
// Walks t's history newest first, only through records within the window.
bool InEffectSince(const storage::PageStore& store, TimelineId t, Lsn lsn, int64_t window_start) {
  Lsn before = 0;
  int64_t successor_time = INT64_MAX;
  while (true) {
    auto hist = store.History(t, before, 256);
    if (!hist.ok() || hist->empty()) return false;
    for (const storage::RecordInfo& r : *hist) {
      if (r.lsn == lsn) return successor_time >= window_start;
      if (r.lsn < lsn || r.time_micros < window_start) return false;
      if (r.kind == storage::RecordKind::kReset &&
          DecodeAnnotation(r.annotation).previous_head == lsn) {
        return true;
      }
      successor_time = r.time_micros;
      before = r.lsn - 1;
    }
    if (before == 0) return false;
  }
}

}  // namespace

Status Catalog::Impl::CheckRestorable(Project& p, TimelineId t, Lsn lsn) {
  if (lsn == 0) return Status::OK();
  int64_t window_start = Now() - p.info.restore_window_micros;
  if (IsLabelled(p, lsn)) return Status::OK();
  auto rec = p.store->GetRecord(lsn);
  if (!rec.ok()) return NoCheckpoint(lsn);
  if (rec->time_micros >= window_start) return Status::OK();
  if (t != 0) return InEffectSince(*p.store, t, lsn, window_start) ? Status::OK() : Outside();
  for (const BranchRow& r : AllBranches(p)) {
    if (InEffectSince(*p.store, r.timeline, lsn, window_start)) return Status::OK();
  }
  return Outside();
}

// --- Checkpoints ----------------------------------------------------------------

namespace {

// The branch's history as a reflog, newest first: two LSN-ordered streams
// merged. (1) Every record of the branch's own timeline: each is a state the
// branch had as head (its creation, its commits, its moves), whether or not
// its current history still reaches it (rolled_back when not). (2) The
// records of other timelines on its current history (inherited: what its
// state is built on). Every entry is a rollback target of the branch. Both
// are read in batches from `start` down (OwnRecords, History), so a page
// costs what the branch wrote, not what the project wrote since.
class ReflogWalk {
 public:
  // batch: records read per call of each stream (a page's size and one).
  ReflogWalk(const storage::PageStore& store, TimelineId t, Lsn start, size_t batch)
      : store_(store),
        t_(t),
        batch_(std::clamp<size_t>(batch, 1, 64)),
        own_before_(start),
        path_before_(start) {}

  // The next entry (newest first), or nullopt at the end.
  Result<std::optional<storage::RecordInfo>> Next() {
    if (!own_) BRANCHDB_RETURN_IF_ERROR(FindOwn());
    // Stream (2) is read only down to the own entry in hand: an inherited
    // record below it cannot come first. (Reading on to its next inherited
    // record would walk a long own history whole, for every page.)
    if (path_.empty() && !path_done_) BRANCHDB_RETURN_IF_ERROR(FillPath(own_ ? own_->lsn : 0));
    bool take_own = own_ && (path_.empty() || own_->lsn > path_.front().lsn);
    std::optional<storage::RecordInfo> out;
    if (take_own) {
      out = std::move(own_);
      own_.reset();
    } else if (!path_.empty()) {
      out = std::move(path_.front());
      path_.erase(path_.begin());
    }
    return out;
  }

 private:
  Status FindOwn() {
    while (true) {
      while (own_next_ < own_batch_.size()) {
        storage::RecordInfo& r = own_batch_[own_next_++];
        if (r.kind == storage::RecordKind::kDrop) continue;
        own_ = std::move(r);
        return Status::OK();
      }
      if (own_done_ || own_before_ == 0) return Status::OK();
      auto recs = store_.OwnRecords(t_, own_before_, batch_);
      if (!recs.ok()) return recs.status();
      own_done_ = recs->size() < batch_;
      own_batch_ = std::move(*recs);
      own_next_ = 0;
      if (!own_batch_.empty()) own_before_ = own_batch_.back().lsn - 1;
    }
  }
  // Reads stream (2) until it holds an entry, ends, or has read every record
  // above `floor`.
  Status FillPath(Lsn floor) {
    while (path_.empty() && !path_done_ && path_before_ > floor) {
      auto hist = store_.History(t_, path_before_, batch_);
      if (!hist.ok()) return hist.status();
      path_done_ = hist->size() < batch_;
      for (storage::RecordInfo& r : *hist) {
        path_before_ = r.lsn - 1;
        if (r.timeline != t_ && r.kind != storage::RecordKind::kDrop) path_.push_back(std::move(r));
      }
      if (path_before_ == 0) path_done_ = true;
    }
    return Status::OK();
  }

  const storage::PageStore& store_;
  const TimelineId t_;
  const size_t batch_;
  Lsn own_before_;  // OwnRecords cursor of stream (1)
  std::vector<storage::RecordInfo> own_batch_;
  size_t own_next_ = 0;
  bool own_done_ = false;
  std::optional<storage::RecordInfo> own_;
  Lsn path_before_;                        // History cursor of stream (2)
  std::vector<storage::RecordInfo> path_;  // inherited records, newest first
  bool path_done_ = false;
};

}  // namespace

Result<CheckpointPage> Catalog::ListCheckpoints(const std::string& project,
                                                const std::string& branch, size_t limit,
                                                const std::string& cursor) {
  if (limit == 0 || limit > 1000) {
    return Status::InvalidArgument("limit must be within 1..1000", "invalid_argument");
  }
  Lsn before = 0;
  if (!cursor.empty()) {
    auto [ptr, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), before);
    if (ec != std::errc() || ptr != cursor.data() + cursor.size() || before == 0) {
      return Status::InvalidArgument("bad cursor", "invalid_argument");
    }
  }
  Impl& im = *impl_;
  auto found = im.ReadProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  Project& p = *found->project;
  const BranchRow& row = found->row;
  // The branch of each timeline the page shows, looked up once each (not
  // every branch of the project: a page of 5 in a project of thousands).
  std::map<TimelineId, std::optional<std::string>> names;
  auto name_of = [&](TimelineId t) -> const std::optional<std::string>& {
    auto it = names.find(t);
    if (it == names.end()) {
      auto owner = im.FindBranchByTimeline(p, t);  // none once dropped
      it = names.emplace(t, owner.ok() ? std::optional(owner->name) : std::nullopt).first;
    }
    return it->second;
  };
  auto tl = p.store->GetTimeline(row.timeline);
  if (!tl.ok()) return tl.status();
  Lsn start = before;
  if (start == 0) start = tl->head;
  // The newest checkpoint listed may be a pipelined commit not yet durable:
  // never list one that could still fail.
  BRANCHDB_RETURN_IF_ERROR(p.store->WaitDurable(std::min(start, tl->head)));
  ReflogWalk walk(*p.store, row.timeline, start, limit + 1);
  CheckpointPage page;
  while (true) {
    auto next = walk.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) break;
    const storage::RecordInfo& r = **next;
    CheckpointInfo c = MakeCheckpoint(r, row.timeline);
    if (c.annotation.kind == "internal") continue;
    if (page.checkpoints.size() == limit) {
      page.next_cursor = std::to_string(r.lsn);
      break;
    }
    if (!c.inherited) {
      auto on_history = p.store->ResolveLsn(row.timeline, r.lsn);
      c.rolled_back = !on_history.ok() || *on_history != r.lsn;
    }
    if (const std::optional<std::string>& name = name_of(r.timeline)) c.branch = *name;
    c.labels = im.LabelsAt(p, row.timeline, r.lsn);
    page.checkpoints.push_back(std::move(c));
  }
  return page;
}

Result<CheckpointInfo> Catalog::GetCheckpoint(const std::string& project,
                                              const std::string& branch, Lsn lsn) {
  Impl& im = *impl_;
  auto found = im.ReadProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  Project& pr = *found->project;
  const BranchRow& row = found->row;
  auto rec = pr.store->GetRecord(lsn);
  if (!rec.ok() || rec->kind == storage::RecordKind::kDrop) return NoCheckpoint(lsn);
  BRANCHDB_RETURN_IF_ERROR(pr.store->WaitDurable(lsn));  // maybe a pipelined commit
  CheckpointInfo c = MakeCheckpoint(*rec, row.timeline);
  if (!c.inherited) {
    auto on_history = pr.store->ResolveLsn(row.timeline, lsn);
    c.rolled_back = !on_history.ok() || *on_history != lsn;
  }
  auto owner = im.FindBranchByTimeline(pr, rec->timeline);
  if (owner.ok()) c.branch = owner->name;
  c.labels = im.LabelsAt(pr, row.timeline, lsn);
  return c;
}

bool IsBranchState(const storage::PageStore& store, TimelineId t, Lsn lsn) {
  if (lsn == 0) return true;
  auto resolved = store.ResolveLsn(t, lsn);
  if (resolved.ok() && *resolved == lsn) return true;
  auto rec = store.GetRecord(lsn);
  return rec.ok() && rec->timeline == t && rec->kind != storage::RecordKind::kDrop;
}

Status Catalog::LabelCheckpoint(const std::string& project, const std::string& branch, Lsn lsn,
                                const std::string& label) {
  BRANCHDB_RETURN_IF_ERROR(ValidateLabel(label));
  Impl& im = *impl_;
  auto project_ref = im.FindProject(project);
  if (!project_ref.ok()) return project_ref.status();
  MutexLock gc_lock((*project_ref)->gc_mu);  // no GC while labelling
  auto pr = im.WriteProject(*project_ref);
  if (!pr.ok()) return pr.status();
  const Project& p = **pr;
  auto row = im.FindBranch(p, branch);
  if (!row.ok()) return row.status();
  if (lsn == 0 || !IsBranchState(*p.store, row->timeline, lsn)) return NoCheckpoint(lsn);
  DbUse use(im);
  Stmt s(use.get(),
         "INSERT INTO labels(project_id, timeline, label, lsn, created_micros) "
         "VALUES(?1,?2,?3,?4,?5)");
  s.Bind(1, p.info.id).Bind(2, static_cast<int64_t>(row->timeline)).Bind(3, label);
  s.Bind(4, static_cast<int64_t>(lsn)).Bind(5, im.Now());
  int rc = s.Step();
  if (rc == SQLITE_CONSTRAINT) {
    return Status::AlreadyExists("label '" + label + "' exists on branch '" + branch + "'",
                                 "label_exists");
  }
  if (rc != SQLITE_DONE) return CatalogError(use.get(), "label");
  return Status::OK();
}

Status Catalog::UnlabelCheckpoint(const std::string& project, const std::string& branch,
                                  const std::string& label) {
  Impl& im = *impl_;
  auto found = im.WriteProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  const Project& pr = *found->project;
  const BranchRow& row = found->row;
  DbUse use(im);
  Stmt s(use.get(), "DELETE FROM labels WHERE project_id=?1 AND timeline=?2 AND label=?3");
  s.Bind(1, pr.info.id).Bind(2, static_cast<int64_t>(row.timeline)).Bind(3, label);
  BRANCHDB_RETURN_IF_ERROR(s.Run());
  if (sqlite3_changes(use.get()) == 0) {
    return Status::NotFound("label '" + label + "' not found", "label_not_found");
  }
  return Status::OK();
}

Result<std::vector<LabelInfo>> Catalog::ListLabels(const std::string& project,
                                                   const std::string& branch) {
  Impl& im = *impl_;
  auto found = im.ReadProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  const Project& pr = *found->project;
  const BranchRow& row = found->row;
  DbUse use(im);
  Stmt s(use.get(),
         "SELECT label, lsn, created_micros FROM labels WHERE project_id=?1 AND timeline=?2 "
         "ORDER BY label");
  s.Bind(1, pr.info.id).Bind(2, static_cast<int64_t>(row.timeline));
  std::vector<LabelInfo> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back(LabelInfo{s.Text(0), static_cast<Lsn>(s.Int(1)), s.Int(2)});
  }
  if (rc != SQLITE_DONE) return CatalogError(use.get(), "list labels");
  return out;
}

// --- Rollback / reset ------------------------------------------------------------

namespace {

Result<RollbackResult> MoveBranch(storage::PageStore& store, TimelineId t, Lsn head, Lsn target,
                                  const std::string& kind, const Actor& actor) {
  Annotation a;
  a.kind = kind;
  a.client_id = actor.client_id;
  a.request_id = actor.request_id;
  a.target = target;
  a.previous_head = head;
  auto new_head = store.ResetTimeline(t, head, target, EncodeAnnotation(a));
  if (!new_head.ok()) return new_head.status();
  RollbackResult r;
  r.head_lsn = *new_head;
  r.previous_head_lsn = head;
  r.target_lsn = target;
  return r;
}

// The state before the last `actions` SQL commits of timeline t: walking
// the history back, the record after the n-th commit is the state before it;
// 0 (the empty database) when the history ends right after it. NotFound when
// the history has fewer commits.
Result<Lsn> LsnActionsBack(const storage::PageStore& store, TimelineId t, int actions) {
  int commits = 0;
  Lsn before = 0;
  // The first batch is what `actions` commits and the state before them take
  // when nothing else is between them (each record read is a meta read).
  size_t batch = std::min<size_t>(256, static_cast<size_t>(actions) + 2);
  while (true) {
    auto hist = store.History(t, before, batch);
    batch = 256;
    if (!hist.ok()) return hist.status();
    if (hist->empty()) break;
    for (const storage::RecordInfo& r : *hist) {
      if (commits == actions) return r.lsn;
      if (r.kind == storage::RecordKind::kCommit) ++commits;
      before = r.lsn - 1;
    }
    if (before == 0) break;
  }
  if (commits < actions) {
    return Status::NotFound("the branch has only " + std::to_string(commits) +
                                " actions on its history",
                            "checkpoint_not_found");
  }
  return Lsn{0};  // back to the empty database
}

// The LSN a rollback of timeline t (of project p) goes to, checked: a state
// of the branch, inside the restore window. REQUIRES: p's lock held.
Result<Lsn> RollbackLsn(Catalog::Impl& im, Project& p, TimelineId t,
                        const RollbackTarget& target) {
  storage::PageStore& store = *p.store;
  switch (target.kind) {
    case RollbackTarget::Kind::kLsn: {
      if (!IsBranchState(store, t, target.lsn)) return NoCheckpoint(target.lsn);
      BRANCHDB_RETURN_IF_ERROR(im.CheckRestorable(p, t, target.lsn));
      return target.lsn;
    }
    case RollbackTarget::Kind::kTime: {
      if (target.time_micros < im.Now() - p.info.restore_window_micros) return Outside();
      auto r = store.LsnAt(t, target.time_micros);
      if (!r.ok()) {
        return Status::NotFound("branch has no state at that time", "checkpoint_not_found");
      }
      return *r;
    }
    case RollbackTarget::Kind::kActionsBack: {
      if (target.actions < 1) {
        return Status::InvalidArgument("actions must be >= 1", "invalid_argument");
      }
      auto to = LsnActionsBack(store, t, target.actions);
      if (!to.ok()) return to.status();
      BRANCHDB_RETURN_IF_ERROR(im.CheckRestorable(p, t, *to));
      return *to;
    }
    case RollbackTarget::Kind::kLabel: {
      std::optional<Lsn> lsn = im.LabelLsn(p, t, target.label);
      if (!lsn) {
        return Status::NotFound("label '" + target.label + "' not found", "label_not_found");
      }
      return *lsn;
    }
  }
  return Lsn{0};
}

}  // namespace

Result<RollbackResult> Catalog::Rollback(const std::string& project, const std::string& branch,
                                         const RollbackTarget& target, const Actor& actor,
                                         bool allow_protected) {
  Impl& im = *impl_;
  auto found = im.ReadProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  Project& p = *found->project;
  const BranchRow& row = found->row;
  if (row.is_protected && !allow_protected) {
    return Status::FailedPrecondition("branch '" + branch + "' is protected", "branch_protected");
  }
  storage::PageStore& store = *p.store;
  TimelineId t = row.timeline;
  auto head = store.Head(t);
  if (!head.ok()) return head.status();
  auto to = RollbackLsn(im, p, t, target);
  if (!to.ok()) return to.status();
  // The durable reset runs without the project's lock (found keeps the
  // project, and so its store); a concurrent commit makes it fail with
  // Conflict head_moved.
  found->project.lock.unlock();
  return MoveBranch(store, t, *head, *to, "rollback", actor);
}

Result<RollbackResult> Catalog::ResetFromParent(const std::string& project,
                                                const std::string& branch, const Actor& actor,
                                                bool allow_protected) {
  Impl& im = *impl_;
  auto found = im.ReadProjectBranch(project, branch);
  if (!found.ok()) return found.status();
  const BranchRow& row = found->row;
  if (row.is_protected && !allow_protected) {
    return Status::FailedPrecondition("branch '" + branch + "' is protected", "branch_protected");
  }
  if (row.parent_timeline == 0) {
    return Status::FailedPrecondition("branch '" + branch + "' has no parent", "no_parent");
  }
  storage::PageStore& store = *found->project->store;
  auto parent_head = store.Head(row.parent_timeline);
  if (!parent_head.ok()) return parent_head.status();
  auto head = store.Head(row.timeline);
  if (!head.ok()) return head.status();
  found->project.lock.unlock();  // found->project keeps the store
  return MoveBranch(store, row.timeline, *head, *parent_head, "reset", actor);
}

// --- GC, connections ---------------------------------------------------------------

Result<storage::GcStats> Catalog::Impl::GcProject(const std::shared_ptr<Project>& p) {
  MutexLock gc_lock(p->gc_mu);
  storage::GcOptions o;
  std::string id;
  {
    auto locked = ReadProject(p);
    if (!locked.ok()) return locked.status();
    o.restore_window_micros = p->info.restore_window_micros;
    o.pins = Pins(*p);
    id = p->info.id;
  }
  if (options.may_rewrite) o.may_rewrite = options.may_rewrite(id);  // no catalog lock held
  return p->store->Gc(o);  // p keeps the store; a deletion meanwhile does not wait for it
}

Result<storage::GcStats> Catalog::Gc(const std::string& project) {
  auto p = impl_->FindProject(project);
  if (!p.ok()) return p.status();
  return impl_->GcProject(*p);
}

Result<storage::SqliteHandle> Catalog::OpenBranchConnection(const std::string& project,
                                                            const std::string& branch,
                                                            const ConnectionRequest& request) {
  storage::ConnectionOptions o;
  {
    auto found = impl_->ReadProjectBranch(project, branch);
    if (!found.ok()) return found.status();
    const BranchRow& row = found->row;
    o.store = found->project->store;  // the connection holds it until it closes
    o.timeline = row.timeline;
    o.cache_pages = request.cache_pages;
    o.pipelined_commits = request.pipelined_commits;
    if (request.as_of) {
      // A state this branch itself recorded (on its history, or a former head
      // that a rollback or reset left behind) is read exactly; any other LSN
      // reads the branch's history as of it.
      auto record = o.store->GetRecord(*request.as_of);
      if (record.ok() && record->timeline == row.timeline) {
        o.state = *request.as_of;
      } else {
        o.as_of = *request.as_of;
      }
    } else if (request.read_only) {
      auto head = o.store->Head(row.timeline);
      if (!head.ok()) return head.status();
      o.as_of = *head;
    }
  }
  auto conn = storage::OpenConnection(o);
  if (!conn.ok() && conn.status().IsNotFound() && conn.status().reason() != "project_not_found") {
    return Status::NotFound(conn.status().message(), "checkpoint_not_found");
  }
  if (conn.ok() && (o.state || o.as_of)) {
    // A read-only state is pinned now: it may be a pipelined commit not yet
    // durable, which nothing may report before it is (it could still fail).
    BRANCHDB_RETURN_IF_ERROR(o.store->WaitDurable(storage::SnapshotLsn(conn->get())));
  }
  return conn;
}

Result<std::shared_ptr<storage::PageStore>> Catalog::Store(const std::string& project) {
  auto p = impl_->FindProject(project);
  if (!p.ok()) return p.status();
  return std::shared_ptr<storage::PageStore>((*p)->store);
}

}  // namespace branchdb::catalog
