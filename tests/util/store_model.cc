#include "tests/util/store_model.h"

#include <algorithm>
#include <cstring>
#include <sstream>

namespace branchdb::testing {

using storage::GcOptions;
using storage::PageStoreOptions;
using storage::PageWrite;
using storage::RecordInfo;
using storage::kPageSize;

namespace {

uint64_t SplitMix(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

const char* KindName(RecordKind kind) {
  switch (kind) {
    case RecordKind::kCreate: return "create";
    case RecordKind::kCommit: return "commit";
    case RecordKind::kReset: return "reset";
    case RecordKind::kDrop: return "drop";
  }
  return "?";
}

std::string Describe(const ModelOp& op) {
  std::ostringstream out;
  out << KindName(op.kind) << "(t" << op.timeline << ", prev " << op.prev;
  if (op.kind == RecordKind::kCommit) out << ", " << op.pages.size() << " pages, size " << op.db_size;
  out << ", '" << op.annotation << "')";
  return out.str();
}

}  // namespace

std::string PageData(uint64_t key) {
  std::string out(kPageSize, '\0');
  if (key == 0) return out;
  uint64_t x = key;
  for (size_t i = 0; i < kPageSize; i += 8) {
    uint64_t v = i == 0 ? key : SplitMix(&x);
    std::memcpy(out.data() + i, &v, 8);
  }
  // Two keys in three leave a run of zeros after the key (a b-tree page's
  // free space): the store writes such an image without its hole.
  if (key % 3 != 0) {
    const size_t at = 8 + key % 1013;
    const size_t len = std::min(kPageSize - at, key % 3 == 1 ? key % 3001 : key % 11);
    std::memset(out.data() + at, 0, len);
  }
  return out;
}

std::optional<uint64_t> PageKeyOf(const std::string& data) {
  if (data.size() != kPageSize) return std::nullopt;
  uint64_t key;
  std::memcpy(&key, data.data(), 8);
  if (data != PageData(key)) return std::nullopt;
  return key;
}

std::string JoinProblems(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems) out += "  - " + p + "\n";
  return out;
}

// --- Model -----------------------------------------------------------------------

void StoreModel::Ack(Lsn lsn, const ModelOp& op) {
  records_[lsn] = op;
  heads_[op.timeline] = lsn;
}

void StoreModel::AckDrop(TimelineId t) {
  heads_.erase(t);
  dropped_.insert(t);
}

void StoreModel::AddUncertain(const ModelOp& op) { uncertain_.push_back(op); }
void StoreModel::AddUncertainDrop(TimelineId t) { uncertain_drops_.insert(t); }

std::string StoreModel::NextAnnotation(const std::string& what) {
  return what + "#" + std::to_string(++attempts_);
}

ModelState StoreModel::StateOf(Lsn lsn) const {
  if (lsn == 0) return {};
  return StateAfter(records_.at(lsn));
}

ModelState StoreModel::StateAfter(const ModelOp& op) const {
  ModelState s = StateOf(op.prev);
  if (op.kind != RecordKind::kCommit) return s;
  s.db_size = op.db_size;
  s.pages.erase(s.pages.upper_bound(op.db_size), s.pages.end());
  for (const auto& [p, key] : op.pages) s.pages[p] = key;
  return s;
}

std::vector<Lsn> StoreModel::Chain(Lsn lsn) const {
  std::vector<Lsn> out;
  while (lsn != 0) {
    out.push_back(lsn);
    lsn = records_.at(lsn).prev;
  }
  return out;
}

std::set<Lsn> StoreModel::Protected() const {
  std::set<Lsn> out;
  for (const auto& [t, head] : heads_) {
    for (Lsn l : Chain(head)) out.insert(l);
  }
  return out;
}

const ModelOp* StoreModel::FindUncertain(const std::string& annotation) const {
  for (const auto& op : uncertain_) {
    if (op.annotation == annotation) return &op;
  }
  return nullptr;
}

std::optional<std::string> StoreModel::CheckState(const PageStore& store, Lsn lsn,
                                                  const ModelState& want) const {
  std::ostringstream err;
  auto size = store.DbSizeAt(lsn);
  if (!size.ok()) return "DbSizeAt(" + std::to_string(lsn) + "): " + size.status().ToString();
  if (*size != want.db_size) {
    err << "DbSizeAt(" << lsn << ") = " << *size << ", want " << want.db_size;
    return err.str();
  }
  std::string out;
  for (PageNo p = 1; p <= want.db_size + 1; ++p) {
    Status s = store.ReadPageAt(lsn, p, &out);
    if (!s.ok()) return "ReadPageAt(" + std::to_string(lsn) + ", " + std::to_string(p) + "): " +
                        s.ToString();
    auto it = want.pages.find(p);
    uint64_t key = (it == want.pages.end() || p > want.db_size) ? 0 : it->second;
    if (out != PageData(key)) {
      auto got = PageKeyOf(out);
      err << "ReadPageAt(" << lsn << ", " << p << ") holds "
          << (got ? "page key " + std::to_string(*got) : std::string("unknown bytes"))
          << ", want key " << key;
      return err.str();
    }
  }
  return std::nullopt;
}

std::optional<std::string> StoreModel::CheckRecord(const PageStore& store, Lsn lsn,
                                                   const ModelOp& op, bool check_state) const {
  auto rec = store.GetRecord(lsn);
  const std::string what = "record " + std::to_string(lsn) + " " + Describe(op) + ": ";
  if (!rec.ok()) return what + "GetRecord: " + rec.status().ToString();
  if (rec->kind != op.kind) return what + "kind " + KindName(rec->kind);
  if (op.timeline != 0 && rec->timeline != op.timeline) {
    return what + "timeline " + std::to_string(rec->timeline);
  }
  if (rec->annotation != op.annotation) return what + "annotation '" + rec->annotation + "'";
  ModelState want = StateAfter(op);
  if (rec->db_size_pages != want.db_size) {
    return what + "db_size_pages " + std::to_string(rec->db_size_pages);
  }
  if (op.kind == RecordKind::kCommit) {
    std::vector<PageNo> pages;
    for (const auto& [p, key] : op.pages) pages.push_back(p);
    if (rec->pages != pages) return what + "wrong page list (" + std::to_string(rec->pages.size()) + " pages)";
  } else if (rec->base != op.prev) {
    return what + "base " + std::to_string(rec->base);
  }
  if (check_state) {
    if (auto e = CheckState(store, lsn, want)) return what + *e;
  }
  return std::nullopt;
}

std::vector<std::string> StoreModel::Check(const PageStore& store) const {
  std::vector<std::string> problems;
  const std::set<Lsn> must_keep = Protected();
  const Lsn last = store.LastLsn();
  if (last < LastAckedLsn()) {
    problems.push_back("LastLsn() = " + std::to_string(last) + " < last acknowledged " +
                       std::to_string(LastAckedLsn()));
  }
  if (Status h = store.Health(); !h.ok()) problems.push_back("Health() after open: " + h.ToString());

  // Acknowledged records: present, exact (GC may remove what nothing protects).
  for (const auto& [lsn, op] : records_) {
    const bool keep = must_keep.count(lsn) != 0;
    auto rec = store.GetRecord(lsn);
    if (!rec.ok()) {
      if (keep || !rec.status().IsNotFound()) {
        problems.push_back("acknowledged " + Describe(op) + " at lsn " + std::to_string(lsn) +
                           " lost: " + rec.status().ToString());
      }
      continue;
    }
    if (auto e = CheckRecord(store, lsn, op, keep)) problems.push_back("acknowledged " + *e);
  }

  // Other records: each one a whole, attempted op (or a drop).
  std::map<Lsn, const ModelOp*> present_uncertain;
  for (Lsn lsn = 1; lsn <= last; ++lsn) {
    if (records_.count(lsn) != 0) continue;
    auto rec = store.GetRecord(lsn);
    if (!rec.ok()) {
      if (!rec.status().IsNotFound()) {
        problems.push_back("GetRecord(" + std::to_string(lsn) + "): " + rec.status().ToString());
      }
      continue;
    }
    if (rec->kind == RecordKind::kDrop) {
      if (dropped_.count(rec->timeline) == 0 && uncertain_drops_.count(rec->timeline) == 0) {
        problems.push_back("drop record " + std::to_string(lsn) + " of t" +
                           std::to_string(rec->timeline) + " was never asked for");
      }
      continue;
    }
    const ModelOp* op = FindUncertain(rec->annotation);
    if (op == nullptr) {
      problems.push_back("record " + std::to_string(lsn) + " ('" + rec->annotation +
                         "') matches no acknowledged or attempted op");
      continue;
    }
    if (auto e = CheckRecord(store, lsn, *op, true)) {
      problems.push_back("unacknowledged op half-visible: " + *e);
      continue;
    }
    present_uncertain[lsn] = op;
  }

  // Timelines: heads and histories.
  for (const auto& [t, head] : heads_) {
    const std::string name = "t" + std::to_string(t);
    auto h = store.Head(t);
    if (!h.ok()) {
      if (!(h.status().IsNotFound() && uncertain_drops_.count(t) != 0)) {
        problems.push_back("Head(" + name + "): " + h.status().ToString());
      }
      continue;
    }
    std::vector<Lsn> want;
    if (*h != head) {
      auto u = present_uncertain.find(*h);
      if (u == present_uncertain.end() || u->second->expected_head != head || *h < head ||
          store.GetRecord(*h)->timeline != t) {
        problems.push_back("Head(" + name + ") = " + std::to_string(*h) + ", acknowledged head " +
                           std::to_string(head));
        continue;
      }
      want.push_back(*h);
    }
    for (Lsn l : Chain(*h != head ? present_uncertain.at(*h)->prev : head)) want.push_back(l);
    auto hist = store.History(t, 0, 100000);
    if (!hist.ok()) {
      problems.push_back("History(" + name + "): " + hist.status().ToString());
      continue;
    }
    std::vector<Lsn> got;
    for (const RecordInfo& r : *hist) got.push_back(r.lsn);
    if (got != want) {
      std::ostringstream err;
      err << "History(" << name << ") =";
      for (Lsn l : got) err << " " << l;
      err << "; want";
      for (Lsn l : want) err << " " << l;
      problems.push_back(err.str());
    }
    std::string page;
    Status s = store.ReadPage(t, 1, *h, &page);
    if (!s.ok()) problems.push_back("ReadPage(" + name + ", 1, head): " + s.ToString());
  }
  for (TimelineId t : dropped_) {
    if (store.Head(t).ok()) problems.push_back("dropped t" + std::to_string(t) + " is back");
  }
  for (const auto& info : store.ListTimelines()) {
    if (heads_.count(info.id) != 0 || uncertain_drops_.count(info.id) != 0) continue;
    auto u = present_uncertain.find(info.created_lsn);
    if (u != present_uncertain.end() && u->second->kind == RecordKind::kCreate) continue;
    problems.push_back("ListTimelines() has unknown t" + std::to_string(info.id) +
                       " (created at " + std::to_string(info.created_lsn) + ")");
  }
  return problems;
}

void StoreModel::Reconcile(const PageStore& store) {
  const Lsn last = store.LastLsn();
  for (Lsn lsn = 1; lsn <= last; ++lsn) {
    if (records_.count(lsn) != 0) continue;
    auto rec = store.GetRecord(lsn);
    if (!rec.ok() || rec->kind == RecordKind::kDrop) continue;
    const ModelOp* op = FindUncertain(rec->annotation);
    if (op == nullptr) continue;
    ModelOp acked = *op;
    acked.timeline = rec->timeline;
    Ack(lsn, acked);
  }
  for (TimelineId t : uncertain_drops_) {
    if (!store.Head(t).ok()) AckDrop(t);
  }
  uncertain_.clear();
  uncertain_drops_.clear();
}

void StoreModel::CheckAcceptsCommits(PageStore* store, std::vector<std::string>* problems) {
  const std::map<TimelineId, Lsn> heads = heads_;
  for (const auto& [t, head] : heads) {
    ModelOp op;
    op.kind = RecordKind::kCommit;
    op.timeline = t;
    op.prev = head;
    op.expected_head = head;
    op.db_size = std::max<uint32_t>(StateOf(head).db_size, 1);
    op.pages[1] = NextKeyBase() | 1;
    op.annotation = NextAnnotation("after-reopen");
    const std::string data = PageData(op.pages[1]);
    auto lsn = store->Commit(t, head, {PageWrite{1, data}}, op.db_size, op.annotation);
    if (!lsn.ok()) {
      problems->push_back("commit on t" + std::to_string(t) + " after reopen: " +
                          lsn.status().ToString());
      continue;
    }
    Ack(*lsn, op);
    std::string out;
    Status s = store->ReadPage(t, 1, *lsn, &out);
    if (!s.ok() || out != data) {
      problems->push_back("page committed after reopen on t" + std::to_string(t) +
                          " does not read back: " + s.ToString());
    }
  }
}

// --- Workload ----------------------------------------------------------------------

namespace {

std::optional<ModelOp> g_in_flight;

// Kinds whose failure means the record may not be durable.
bool IsSyncKind(uint32_t kind) { return (kind & kSyncOps) != 0; }

class Runner {
 public:
  Runner(PageStore* store, FaultInjectionEnv* env, StoreModel* model, WorkloadRun* run)
      : store_(store), env_(env), model_(model), run_(run) {}

  std::optional<TimelineId> Create(Lsn base, std::optional<TimelineId> ancestor = std::nullopt) {
    ModelOp op;
    op.kind = RecordKind::kCreate;
    op.prev = base;
    op.annotation = model_->NextAnnotation("create");
    BeforeMutation(op);
    Result<TimelineId> t = ancestor.has_value()
                               ? store_->CreateTimeline(*ancestor, base, op.annotation)
                               : store_->CreateTimeline(base, op.annotation);
    if (!AfterMutation(t.status(), t.ok(), op)) return std::nullopt;
    auto head = store_->Head(*t);
    if (!head.ok()) {
      Violation("Head of new timeline: " + head.status().ToString());
      return std::nullopt;
    }
    op.timeline = *t;
    model_->Ack(*head, op);
    ++run_->acknowledged;
    return *t;
  }

  void Commit(std::optional<TimelineId> t, std::vector<PageNo> pages, uint32_t db_size) {
    if (!t.has_value() || model_->heads().count(*t) == 0) return;
    ModelOp op;
    op.kind = RecordKind::kCommit;
    op.timeline = *t;
    op.prev = model_->heads().at(*t);
    op.expected_head = op.prev;
    op.db_size = db_size;
    const uint64_t base = model_->NextKeyBase();
    std::vector<std::string> data;
    for (PageNo p : pages) {
      op.pages[p] = base | p;
      data.push_back(PageData(base | p));
    }
    std::vector<PageWrite> writes;
    for (size_t i = 0; i < pages.size(); ++i) writes.push_back(PageWrite{pages[i], data[i]});
    op.annotation = model_->NextAnnotation("commit");
    BeforeMutation(op);
    auto lsn = store_->Commit(*t, op.prev, writes, db_size, op.annotation);
    if (!AfterMutation(lsn.status(), lsn.ok(), op)) return;
    model_->Ack(*lsn, op);
    ++run_->acknowledged;
    if (!pages.empty()) ReadBack(*t, *lsn, pages.front(), data.front());
  }

  void Reset(std::optional<TimelineId> t, Lsn base) {
    if (!t.has_value() || model_->heads().count(*t) == 0 || base == 0) return;
    ModelOp op;
    op.kind = RecordKind::kReset;
    op.timeline = *t;
    op.prev = base;
    op.expected_head = model_->heads().at(*t);
    op.annotation = model_->NextAnnotation("reset");
    BeforeMutation(op);
    auto lsn = store_->ResetTimeline(*t, model_->heads().at(*t), base, op.annotation);
    if (!AfterMutation(lsn.status(), lsn.ok(), op)) return;
    model_->Ack(*lsn, op);
    ++run_->acknowledged;
  }

  void Drop(std::optional<TimelineId> t) {
    if (!t.has_value() || model_->heads().count(*t) == 0) return;
    ModelOp op;
    op.kind = RecordKind::kDrop;
    op.timeline = *t;
    op.annotation = "drop";
    BeforeMutation(op);
    Status s = store_->DropTimeline(*t);
    const bool was_ok = s.ok();
    g_in_flight.reset();
    Check(s, was_ok, op);
    if (was_ok) {
      model_->AckDrop(*t);
      ++run_->acknowledged;
    } else {
      model_->AddUncertainDrop(*t);
    }
  }

  void Gc(int64_t restore_window_micros) {
    GcOptions options;
    options.restore_window_micros = restore_window_micros;
    for (Lsn l : model_->Protected()) options.pins.push_back(l);
    const uint64_t before = Fired();
    auto stats = store_->Gc(options);
    if (!stats.ok() && Fired() == before && !run_->fsync_failed && !AnyFault()) {
      Violation("Gc failed with no fault injected: " + stats.status().ToString());
    }
    NoteSyncFault(before);
  }

  Lsn HeadOf(std::optional<TimelineId> t) const {
    if (!t.has_value() || model_->heads().count(*t) == 0) return 0;
    return model_->heads().at(*t);
  }

 private:
  uint64_t Fired() const { return env_ ? env_->FaultsFired() : 0; }
  bool AnyFault() const { return env_ && env_->FaultFired(); }

  void Violation(const std::string& what) { run_->violations.push_back(what); }

  void BeforeMutation(const ModelOp& op) {
    ++run_->attempted;
    fired_before_ = Fired();
    failed_before_ = run_->fsync_failed;
    g_in_flight = op;
  }

  void NoteSyncFault(uint64_t fired_before) {
    if (env_ && Fired() > fired_before && IsSyncKind(env_->FiredOpKind())) {
      run_->fsync_failed = true;
      if (store_->Health().ok()) {
        Violation("Health() is OK after a failed " + env_->FiredOpDescription());
      }
    }
  }

  // Common checks; returns whether the op succeeded.
  bool AfterMutation(const Status& status, bool ok, const ModelOp& op) {
    g_in_flight.reset();
    Check(status, ok, op);
    if (!ok) model_->AddUncertain(op);
    return ok;
  }

  void Check(const Status& status, bool ok, const ModelOp& op) {
    const bool fired = Fired() > fired_before_;
    if (ok && failed_before_) {
      Violation(Describe(op) + " succeeded after a failed fsync (" +
                (env_ ? env_->FiredOpDescription() : std::string()) + ")");
    }
    if (ok && fired && IsSyncKind(env_->FiredOpKind())) {
      Violation(Describe(op) + " reported success although " + env_->FiredOpDescription() +
                " failed during it");
    }
    if (!ok && failed_before_ &&
        !(status.IsIOError() && status.reason() == "store_failed")) {
      Violation(Describe(op) + " after a failed fsync returned " + status.ToString() +
                ", want IOError reason store_failed");
    }
    if (!ok && !fired && !AnyFault()) {
      Violation(Describe(op) + " failed with no fault injected: " + status.ToString());
    }
    NoteSyncFault(fired_before_);
  }

  void ReadBack(TimelineId t, Lsn lsn, PageNo p, const std::string& want) {
    const uint64_t before = Fired();
    std::string out;
    Status s = store_->ReadPage(t, p, lsn, &out);
    if (s.ok() && out != want) {
      Violation("ReadPage(t" + std::to_string(t) + ", " + std::to_string(p) + ", " +
                std::to_string(lsn) + ") returned wrong bytes" +
                (Fired() > before ? " while a read fault fired" : ""));
    }
    if (!s.ok() && Fired() == before && !AnyFault()) {
      Violation("ReadPage failed with no fault injected: " + s.ToString());
    }
  }

  PageStore* const store_;
  FaultInjectionEnv* const env_;
  StoreModel* const model_;
  WorkloadRun* const run_;
  uint64_t fired_before_ = 0;
  bool failed_before_ = false;
};

}  // namespace

const std::optional<ModelOp>& InFlightOp() { return g_in_flight; }

WorkloadRun RunWorkload(const std::string& dir, Env* env, FaultInjectionEnv* fault_env,
                        StoreModel* model, const WorkloadOptions& options) {
  WorkloadRun run;
  PageStoreOptions store_options;
  store_options.env = env;
  store_options.segment_bytes = options.segment_bytes;
  store_options.preallocate_bytes = options.preallocate_bytes;
  store_options.seal_on_close = options.seal_on_close;
  store_options.cache_bytes = 4 * kPageSize;  // reads reach the files
  const uint64_t fired_before = fault_env ? fault_env->FaultsFired() : 0;
  auto opened = PageStore::Open(store_options, dir);
  if (!opened.ok()) {
    if (fault_env == nullptr || fault_env->FaultsFired() == fired_before) {
      run.violations.push_back("Open failed with no fault injected: " +
                               opened.status().ToString());
    }
    return run;
  }
  run.opened = true;
  std::unique_ptr<PageStore> store = std::move(*opened);
  if (fault_env && fault_env->FaultsFired() > fired_before &&
      IsSyncKind(fault_env->FiredOpKind())) {
    run.fsync_failed = true;
    if (store->Health().ok()) {
      run.violations.push_back("Open succeeded with Health() OK after a failed " +
                               fault_env->FiredOpDescription());
    }
  }
  Runner r(store.get(), fault_env, model, &run);

  std::optional<TimelineId> t1, t2;
  for (int round = 0; round < options.rounds; ++round) {
    if (!t1.has_value()) t1 = r.Create(0);
    r.Commit(t1, {1, 2, 3}, 3);
    r.Commit(t1, {2}, 3);
    const Lsn t1_mid = r.HeadOf(t1);
    if (!t2.has_value()) {
      t2 = t1.has_value() ? r.Create(r.HeadOf(t1), t1) : std::nullopt;
    }
    r.Commit(t2, {4, 1}, 4);
    r.Commit(t1, {1}, 2);                    // shrink: page 3 leaves the state
    r.Reset(t2, t1_mid);                     // rollback-style reset to another timeline's state
    r.Commit(t2, {3, 2}, 3);
    auto t3 = r.Create(r.HeadOf(t2));
    r.Commit(t3, {1, 2, 3, 4}, 5);
    r.Drop(t3);
    if (options.with_gc) {
      // The first GC keeps everything (a day's window); the second, at the
      // same durable LSN, collects: two GCSTATEs with the same gc_lsn.
      r.Gc(24ll * 3600 * 1000000);
      r.Gc(0);
    }
    r.Commit(t1, {4, 3, 2, 1}, 4);
    r.Commit(t2, {5}, 5);
    r.Commit(t1, {}, 6);                     // grow only: pages 5, 6 read as zeros
  }
  return run;
}

std::vector<std::string> ReopenAndCheck(const std::string& dir, StoreModel* model, Env* env) {
  PageStoreOptions options;
  options.env = env != nullptr ? env : Env::Default();
  // A store that lost its files would come back empty: the check catches that.
  options.create_if_missing = true;
  options.segment_bytes = 16 * 1024;
  auto store = PageStore::Open(options, dir);
  if (!store.ok()) return {"reopen failed: " + store.status().ToString()};
  std::vector<std::string> problems = model->Check(**store);
  if (!problems.empty()) return problems;
  model->Reconcile(**store);
  model->CheckAcceptsCommits(store->get(), &problems);
  return problems;
}

std::vector<std::string> ReopenAndCheckBoth(FaultInjectionEnv* env, const std::string& db,
                                            const std::string& crash_dir, StoreModel* model) {
  StoreModel crash_model = *model;
  Status snapshot = env->SnapshotCrashState(db, crash_dir);
  if (!snapshot.ok()) return {"power loss: snapshot failed: " + snapshot.ToString()};
  std::vector<std::string> problems;
  for (std::string& p : ReopenAndCheck(db, model)) problems.push_back("clean reopen: " + p);
  for (std::string& p : ReopenAndCheck(crash_dir, &crash_model)) {
    problems.push_back("power loss: " + p);
  }
  return problems;
}

std::optional<TimelineId> CreateTimelineInModel(PageStore* store, StoreModel* model) {
  ModelOp op;
  op.kind = RecordKind::kCreate;
  op.annotation = model->NextAnnotation("create");
  auto t = store->CreateTimeline(0, op.annotation);
  if (!t.ok()) {
    model->AddUncertain(op);
    return std::nullopt;
  }
  op.timeline = *t;
  model->Ack(*store->Head(*t), op);
  return *t;
}

}  // namespace branchdb::testing
