// Catalog::Promote: a branch into its parent, by fast-forward or by replay of
// its recorded actions on a temporary internal timeline (see catalog.h).
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"

namespace branchdb::catalog {
namespace {

using storage::RecordInfo;
using storage::RecordKind;

// What one attempt starts from: the two branches and their heads, read under
// the project's lock (shared). The project, and so its store, is held for the
// whole attempt, which runs without the lock.
struct Start {
  std::shared_ptr<Project> project;
  BranchRow source, parent;
  Lsn source_head = 0, parent_head = 0;
};

// The source's SQL commits since its base on the parent, oldest first: the
// newest-first walk of its history stops at its own creation, at its latest
// reset from the parent, or at the first state on the parent's current history.
Result<std::vector<RecordInfo>> CollectActions(const storage::PageStore& store, const Start& s) {
  std::vector<RecordInfo> commits;
  Lsn before = 0;
  bool done = false;
  while (!done) {
    auto hist = store.History(s.source.timeline, before, 256);
    if (!hist.ok()) return hist.status();
    if (hist->empty()) break;
    for (RecordInfo& r : *hist) {
      before = r.lsn - 1;
      auto on_parent = store.ResolveLsn(s.parent.timeline, r.lsn);
      if (on_parent.ok() && *on_parent == r.lsn) {
        done = true;
        break;
      }
      if (r.kind == RecordKind::kCommit) {
        commits.push_back(std::move(r));
        continue;
      }
      if (r.timeline == s.source.timeline &&
          (r.kind == RecordKind::kCreate ||
           (r.kind == RecordKind::kReset && DecodeAnnotation(r.annotation).kind == "reset"))) {
        done = true;
        break;
      }
      // A rollback of the source, or the creation / reset / promotion records
      // of the timelines whose commits were promoted into it: the walk goes on
      // through the states they moved to.
    }
    if (before == 0) break;
  }
  std::reverse(commits.begin(), commits.end());
  return commits;
}

Status Failed(const std::string& msg, const std::string& reason) {
  return Status::FailedPrecondition(msg, reason);
}

std::string Describe(Lsn lsn, const std::string& summary) {
  std::string out = "action " + std::to_string(lsn);
  if (!summary.empty()) out += " (" + summary + ")";
  return out;
}

// Drops the temporary timeline (if any) when the attempt ends, whatever way.
class TempTimeline {
 public:
  explicit TempTimeline(storage::PageStore& store) : store_(store) {}
  ~TempTimeline() {
    if (id_ != 0) (void)store_.DropTimeline(id_);
  }
  TempTimeline(const TempTimeline&) = delete;
  TempTimeline& operator=(const TempTimeline&) = delete;
  TimelineId id_ = 0;

 private:
  storage::PageStore& store_;
};

}  // namespace

bool IsTruthy(const std::string& value_json) {
  nlohmann::json v = nlohmann::json::parse(value_json, nullptr, false);
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return !s.empty() && s != "0" && s != "false";
  }
  return false;
}

namespace {

// Reads, under the project's lock (shared), the source branch, its parent and
// their heads, and checks that the parent may be promoted into.
Result<Start> ReadStart(Catalog::Impl& im, const std::string& project, const std::string& branch,
                        const PromoteOptions& o) {
  Start s;
  auto pr = im.ReadProject(project);
  if (!pr.ok()) return pr.status();
  s.project = pr->project;
  auto row = im.FindBranch(*s.project, branch);
  if (!row.ok()) return row.status();
  s.source = *row;
  if (s.source.parent_timeline == 0) {
    return Failed("branch '" + branch + "' has no parent", "no_parent");
  }
  auto parent = im.FindBranchByTimeline(*s.project, s.source.parent_timeline);
  if (!parent.ok()) return Failed("branch '" + branch + "' has no parent", "no_parent");
  s.parent = *parent;
  if (s.parent.is_protected && !o.allow_protected) {
    return Failed("branch '" + s.parent.name + "' is protected", "branch_protected");
  }
  auto ph = s.project->store->Head(s.parent.timeline);
  if (!ph.ok()) return ph.status();
  s.parent_head = *ph;
  auto sh = s.project->store->Head(s.source.timeline);
  if (!sh.ok()) return sh.status();
  s.source_head = *sh;
  return s;
}

// FailedPrecondition not_replayable (naming the first in *fail) unless every
// commit of `branch` kept its SQL script.
Status CheckReplayable(const std::vector<RecordInfo>& commits, const std::string& branch,
                       const Start& s, PromoteFailure* fail) {
  for (const RecordInfo& r : commits) {
    Annotation a = DecodeAnnotation(r.annotation);
    if (!a.replayable()) {
      fail->lsn = r.lsn;
      fail->summary = a.summary;
      std::string why = a.sql_omitted ? "its script exceeded the 1 MiB kept for replay"
                                      : "it recorded no SQL script (e.g. an import)";
      return Failed(Describe(r.lsn, a.summary) + " of '" + branch + "' cannot be replayed: " +
                        why + "; promote by fast-forward needs '" + s.parent.name +
                        "' unmoved since the branch point",
                    "not_replayable");
    }
  }
  return Status::OK();
}

// Replays the commits in order, through o.replay, on a new timeline from the
// parent's head (its id in temp->id_, dropped by the caller's TempTimeline).
// Returns the state the replay ends in and appends each action, with the rows
// its replay changed, to *actions; on the first failure *fail names it.
Result<Lsn> Replay(storage::PageStore& store, const Start& s,
                   const std::vector<RecordInfo>& commits, const PromoteOptions& o,
                   TempTimeline* temp, std::vector<PromotedAction>* actions,
                   PromoteFailure* fail) {
  Annotation ta;
  ta.kind = "internal";
  ta.client_id = o.actor.client_id;
  ta.request_id = o.actor.request_id;
  ta.source = s.source.name;
  ta.target = s.parent_head;
  auto t = store.CreateTimeline(s.parent_head, EncodeAnnotation(ta));
  if (!t.ok()) return t.status();
  temp->id_ = *t;
  storage::ConnectionOptions co;
  co.store = s.project->store;
  co.timeline = temp->id_;
  auto conn = storage::OpenConnection(co);
  if (!conn.ok()) return conn.status();
  for (size_t i = 0; i < commits.size(); ++i) {
    const RecordInfo& r = commits[i];
    ReplayAction act;
    act.index = static_cast<int>(i);
    act.lsn = r.lsn;
    act.annotation = DecodeAnnotation(r.annotation);
    // One script at a time, from the record's payload on disk.
    if (Status st = LoadScript(store, r, &act.annotation); !st.ok()) return st;
    act.annotation.kind = "sql";
    act.annotation.request_id = o.actor.request_id;
    act.annotation.rows = 0;
    act.annotation.replay_of = r.lsn;
    Lsn before = storage::LastCommitLsn(conn->get());
    Status st = o.replay(conn->get(), act);
    if (!st.ok()) {
      fail->index = act.index;
      fail->lsn = r.lsn;
      fail->summary = act.annotation.summary;
      fail->error = st;
      return Failed(Describe(r.lsn, act.annotation.summary) + " (#" + std::to_string(i + 1) +
                        " of " + std::to_string(commits.size()) + ") failed on '" +
                        s.parent.name + "': " + st.message(),
                    "replay_failed");
    }
    Lsn after = storage::LastCommitLsn(conn->get());
    int64_t rows = 0;
    if (after != before) {
      auto rec = store.GetRecord(after);
      if (rec.ok()) rows = DecodeAnnotation(rec->annotation).rows;
    }
    actions->push_back(PromotedAction{r.lsn, act.annotation.summary, rows});
  }
  conn->reset();
  auto head = store.Head(temp->id_);
  if (!head.ok()) return head.status();
  return *head;
}

// Runs o.verify on the state the parent would move to; FailedPrecondition
// verify_failed (the value in *fail) unless it returns a truthy value.
Status Verify(const Start& s, Lsn result_state, const PromoteOptions& o, PromoteResult* res,
              PromoteFailure* fail) {
  if (!o.verify_query) {
    return Status::InvalidArgument("verify needs a verify function", "invalid_argument");
  }
  storage::ConnectionOptions vo;
  vo.store = s.project->store;
  vo.state = result_state;
  auto conn = storage::OpenConnection(vo);
  if (!conn.ok()) return conn.status();
  auto value = o.verify_query(conn->get(), o.verify);
  if (!value.ok()) {
    fail->error = value.status();
    fail->verify_value_json = "null";
    return Failed("verify query failed: " + value.status().message(), "verify_failed");
  }
  res->verify_value_json = *value;
  if (!IsTruthy(*value)) {
    fail->verify_value_json = *value;
    return Failed("verify query returned " + *value + " (not truthy); '" + s.parent.name +
                      "' is unchanged",
                  "verify_failed");
  }
  res->verified = true;
  return Status::OK();
}

// Moves the parent from the head read at the start to result_state, in one
// record that names the promoted actions. Conflict concurrent_write when the
// parent was written since (nothing is overwritten).
Result<Lsn> MoveParent(storage::PageStore& store, const Start& s,
                       const std::vector<RecordInfo>& commits, Lsn result_state,
                       const PromoteOptions& o) {
  Annotation pa;
  pa.kind = "promote";
  pa.client_id = o.actor.client_id;
  pa.request_id = o.actor.request_id;
  pa.target = result_state;
  pa.previous_head = s.parent_head;
  pa.source = s.source.name;
  for (const RecordInfo& r : commits) pa.actions.push_back(r.lsn);
  auto moved = store.ResetTimeline(s.parent.timeline, s.parent_head, result_state,
                                   EncodeAnnotation(pa));
  if (!moved.ok() && moved.status().IsConflict()) {
    return Status::Conflict("'" + s.parent.name + "' was written while the promotion ran; "
                                "nothing was overwritten (retry, or use on_conflict=retry)",
                            "concurrent_write");
  }
  return moved;
}

// One attempt: read the start, collect the source's actions, build the state
// the parent moves to (the source's head by fast-forward, else a replay of
// the actions on the parent's head), verify it, move the parent.
Result<PromoteResult> PromoteOnce(Catalog::Impl& im, const std::string& project,
                                  const std::string& branch, const PromoteOptions& o,
                                  PromoteFailure* fail) {
  auto start = ReadStart(im, project, branch, o);
  if (!start.ok()) return start.status();
  const Start& s = *start;
  storage::PageStore& store = *s.project->store;
  auto commits = CollectActions(store, s);
  if (!commits.ok()) return commits.status();
  auto resolved = store.ResolveLsn(s.source.timeline, s.parent_head);
  bool can_fast_forward = resolved.ok() && *resolved == s.parent_head;
  if (o.mode == PromoteOptions::Mode::kFastForward && !can_fast_forward) {
    return Failed("'" + s.parent.name + "' moved since '" + branch +
                      "' was branched or reset from it (promote by replay instead)",
                  "parent_moved");
  }
  PromoteResult res;
  res.parent = s.parent.name;
  res.source = s.source.name;
  res.fast_forward = o.mode == PromoteOptions::Mode::kFastForward ||
                     (o.mode == PromoteOptions::Mode::kAuto && can_fast_forward);
  res.dry_run = o.dry_run;
  res.previous_head_lsn = s.parent_head;

  TempTimeline temp(store);  // the replay's timeline, dropped when the attempt ends
  Lsn result_state = s.source_head;
  if (res.fast_forward) {
    for (const RecordInfo& r : *commits) {
      Annotation a = DecodeAnnotation(r.annotation);
      res.actions.push_back(PromotedAction{r.lsn, a.summary, a.rows});
    }
  } else {
    if (!o.replay) {
      return Status::InvalidArgument("promote by replay needs a replay function",
                                     "invalid_argument");
    }
    BRANCHDB_RETURN_IF_ERROR(CheckReplayable(*commits, branch, s, fail));
    auto replayed = Replay(store, s, *commits, o, &temp, &res.actions, fail);
    if (!replayed.ok()) return replayed.status();
    result_state = *replayed;
  }
  if (!o.verify.empty()) BRANCHDB_RETURN_IF_ERROR(Verify(s, result_state, o, &res, fail));
  if (o.dry_run) {
    if (res.fast_forward) res.target_lsn = result_state;
    return res;
  }
  if (o.before_move) o.before_move();
  auto moved = MoveParent(store, s, *commits, result_state, o);
  if (!moved.ok()) return moved.status();
  res.head_lsn = *moved;
  res.target_lsn = result_state;
  return res;
}

}  // namespace

Result<PromoteResult> Catalog::Promote(const std::string& project, const std::string& branch,
                                       const PromoteOptions& options, PromoteFailure* failure) {
  if (options.max_retries < 0 || options.max_retries > 10) {
    return Status::InvalidArgument("max_retries must be within 0..10", "invalid_argument");
  }
  PromoteFailure scratch;
  PromoteFailure* fail = failure ? failure : &scratch;
  for (int attempt = 1;; ++attempt) {
    *fail = PromoteFailure{};
    auto r = PromoteOnce(*impl_, project, branch, options, fail);
    if (r.ok()) {
      r->attempts = attempt;
      return r;
    }
    bool again = r.status().reason() == "concurrent_write" && options.retry_on_conflict &&
                 attempt <= options.max_retries;
    if (!again) return r.status();
  }
}

Result<RollbackResult> Catalog::Promote(const std::string& project, const std::string& branch,
                                        const Actor& actor) {
  PromoteOptions o;
  o.mode = PromoteOptions::Mode::kFastForward;
  o.actor = actor;
  auto r = Promote(project, branch, o);
  if (!r.ok()) return r.status();
  RollbackResult out;
  out.head_lsn = *r->head_lsn;
  out.previous_head_lsn = r->previous_head_lsn;
  out.target_lsn = *r->target_lsn;
  return out;
}

}  // namespace branchdb::catalog
