// Scenario tests of the Catalog: projects, branches, names, protection, TTL,
// checkpoints and paging, rollback/undo chains, reset, labels and GC pins,
// delete of a parent, reconcile of orphans.
#include <atomic>
#include <random>
#include <thread>

#include "tests/catalog/catalog_fixture.h"

namespace branchdb::catalog::testing {
namespace {

const int64_t kSec = kMicrosPerSecond;

TEST_CASE("projects: create, list, get, window bounds, delete") {
  CatalogFixture f(false);
  auto p = f.cat->CreateProject("acme", {});
  REQUIRE(p.ok());
  CHECK(p->restore_window_micros == 7 * kMicrosPerDay);
  CHECK(Reason(f.cat->CreateProject("acme", {}).status()) == "project_exists");
  CHECK(Reason(f.cat->CreateProject("Bad Name", {}).status()) == "invalid_project_name");
  CHECK(Reason(f.cat->CreateProject("-x", {}).status()) == "invalid_project_name");
  CreateProjectOptions too_long;
  too_long.restore_window_micros = 36 * kMicrosPerDay;
  CHECK(Reason(f.cat->CreateProject("other", too_long).status()) == "invalid_restore_window");
  CHECK(Reason(f.cat->SetRestoreWindow("acme", -1)) == "invalid_restore_window");
  REQUIRE(f.cat->SetRestoreWindow("acme", 35 * kMicrosPerDay).ok());
  REQUIRE(f.cat->CreateProject("other", {}).ok());
  CHECK(f.cat->ListProjects().size() == 2);

  // A new project has `production`, an empty database.
  auto branches = f.cat->ListBranches("acme");
  REQUIRE(branches.ok());
  REQUIRE(branches->size() == 1);
  CHECK(branches->at(0).name == "production");
  CHECK(branches->at(0).is_default);
  CHECK(f.Query("production", "SELECT count(*) FROM sqlite_schema") == "0");

  f.Reopen();
  CHECK(f.cat->GetProject("acme")->restore_window_micros == 35 * kMicrosPerDay);
  REQUIRE(f.cat->DeleteProject("other").ok());
  CHECK(Reason(f.cat->GetProject("other").status()) == "project_not_found");
  f.Reopen();
  CHECK(f.cat->ListProjects().size() == 1);
}

TEST_CASE("branch names: slashes allowed, bad names and duplicates refused") {
  CatalogFixture f;
  REQUIRE(f.Branch("dev/alex").ok());
  REQUIRE(f.Branch("ci-pr-42.v_2").ok());
  for (const char* bad : {"", "/x", "x/", "a//b", "a/../b", ".", "a b", "ü", "a\\b"}) {
    INFO(bad);
    CHECK(Reason(f.Branch(bad).status()) == "invalid_branch_name");
  }
  CHECK(Reason(f.Branch(std::string(129, 'a')).status()) == "invalid_branch_name");
  CHECK(f.Branch(std::string(128, 'a')).ok());
  CHECK(Reason(f.Branch("dev/alex").status()) == "branch_exists");
  BranchSource from;
  from.parent = "nope";
  CHECK(Reason(f.Branch("x", from).status()) == "branch_not_found");
  CHECK(Reason(f.cat->GetBranch("acme", "nope").status()) == "branch_not_found");
  CHECK(Reason(f.cat->GetBranch("nope", "production").status()) == "project_not_found");
}

TEST_CASE("ChildBranch: the first direct child by name, kept current across creates, renames and deletes") {
  CatalogFixture f;
  auto child = [&](const std::string& b) {
    auto c = f.cat->ChildBranch("acme", b);
    REQUIRE(c.ok());
    return c->value_or("-");
  };
  CHECK(child("dev") == "-");  // asked before the branch exists: cached as none
  REQUIRE(f.Branch("dev").ok());
  REQUIRE(f.Branch("dev/a/deep").ok());  // a grandchild only
  REQUIRE(f.Branch("dev-x").ok());       // sorts between "dev" and "dev/"
  REQUIRE(f.Branch("dev0").ok());        // just past the range
  CHECK(child("dev") == "-");
  REQUIRE(f.Branch("dev/zed").ok());
  CHECK(child("dev") == "dev/zed");
  REQUIRE(f.Branch("dev/alex").ok());
  CHECK(child("dev") == "dev/alex");
  CHECK(child("dev/a") == "dev/a/deep");  // dev/a itself does not exist
  REQUIRE(f.cat->RenameBranch("acme", "dev/alex", "alex").ok());
  CHECK(child("dev") == "dev/zed");
  REQUIRE(f.cat->DeleteBranch("acme", "dev/zed").ok());
  CHECK(child("dev") == "-");
  CHECK(child("production") == "-");
  CHECK(Reason(f.cat->ChildBranch("nope", "dev").status()) == "project_not_found");
}

TEST_CASE("Branch rows read through the cache match catalog.db after every kind of write") {
  // Random creates (children of any branch, names with '/'), deletes
  // (re-parenting children), renames, TTL, protection, writes policy and
  // idle timeout, each after the rows were read (and cached): GetBranch and
  // ChildBranch must then answer what ListBranches reads from catalog.db.
  CatalogFixture f;
  std::mt19937 rng(977);
  const std::vector<std::string> names = {"a", "a/x", "a/y", "a/x/deep", "b", "b/a", "c"};
  auto pick = [&](const std::vector<BranchInfo>& list) { return list[rng() % list.size()]; };
  for (int step = 0; step < 400; ++step) {
    auto list = f.cat->ListBranches("acme");
    REQUIRE(list.ok());
    for (const BranchInfo& want : *list) {  // every row read, so cached
      auto got = f.cat->GetBranch("acme", want.name);
      REQUIRE(got.ok());
      INFO("step " << step << ", branch " << want.name);
      CHECK(got->timeline == want.timeline);
      CHECK(got->parent == want.parent);
      CHECK(got->parent_timeline == want.parent_timeline);
      CHECK(got->expires_micros == want.expires_micros);
      CHECK(got->is_protected == want.is_protected);
      CHECK(got->writes_promote_only == want.writes_promote_only);
      CHECK(got->idle_timeout_seconds == want.idle_timeout_seconds);
      std::optional<std::string> child;  // the first direct child by name
      for (const BranchInfo& b : *list) {
        const std::string prefix = want.name + "/";
        if (b.name.rfind(prefix, 0) == 0 && b.name.find('/', prefix.size()) == std::string::npos &&
            (!child || b.name < *child)) {
          child = b.name;
        }
      }
      auto c = f.cat->ChildBranch("acme", want.name);
      REQUIRE(c.ok());
      CHECK(*c == child);
    }
    const BranchInfo b = pick(*list);
    const std::string name = names[rng() % names.size()];
    switch (rng() % 7) {
      case 0:
      case 1: {
        BranchSource from;
        from.parent = b.name;
        (void)f.Branch(name, from);  // may exist already
        break;
      }
      case 2:
        if (!b.is_default) (void)f.cat->SetProtected("acme", b.name, false);
        if (!b.is_default) REQUIRE(f.cat->DeleteBranch("acme", b.name).ok());
        break;
      case 3:
        (void)f.cat->RenameBranch("acme", b.name, name);  // may exist already
        break;
      case 4:
        if (!b.is_default) {  // the default branch never expires
          REQUIRE(f.cat->SetTtl("acme", b.name, (1 + rng() % 100) * 1000000LL).ok());
        }
        break;
      case 5:
        REQUIRE(f.cat->SetProtected("acme", b.name, rng() % 2 == 0).ok());
        REQUIRE(f.cat->SetWritesPolicy("acme", b.name, rng() % 2 == 0).ok());
        break;
      case 6:
        REQUIRE(f.cat->SetIdleTimeout("acme", b.name, static_cast<int64_t>(rng() % 600)).ok());
        break;
    }
  }
}

TEST_CASE("branches: create from head, LSN, time, checkpoint, label; tree links") {
  CatalogFixture f;
  Lsn created = f.Sql("production", "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)");
  f.clock().AdvanceSeconds(10);
  Lsn one = f.Sql("production", "INSERT INTO t VALUES(1, 'one')");
  int64_t after_one = f.clock().NowMicros();
  f.clock().AdvanceSeconds(10);
  Lsn two = f.Sql("production", "INSERT INTO t VALUES(2, 'two')");
  REQUIRE(two > one);

  auto head = f.Branch("from-head");
  REQUIRE(head.ok());
  CHECK(head->parent == "production");
  CHECK(head->branch_point == two);
  CHECK(f.Query("from-head", "SELECT count(*) FROM t") == "2");

  BranchSource at_lsn;
  at_lsn.kind = BranchSource::Kind::kParentLsn;
  at_lsn.lsn = one;
  REQUIRE(f.Branch("from-lsn", at_lsn).ok());
  CHECK(f.Query("from-lsn", "SELECT v FROM t") == "one");

  BranchSource at_time;
  at_time.kind = BranchSource::Kind::kParentTime;
  at_time.time_micros = after_one;
  REQUIRE(f.Branch("from-time", at_time).ok());
  CHECK(f.Query("from-time", "SELECT v FROM t") == "one");

  // A checkpoint of another branch: the parent becomes that branch.
  Lsn child_write = f.Sql("from-lsn", "INSERT INTO t VALUES(3, 'three')");
  BranchSource at_ckpt;
  at_ckpt.kind = BranchSource::Kind::kCheckpoint;
  at_ckpt.lsn = child_write;
  auto c = f.Branch("from-ckpt", at_ckpt);
  REQUIRE(c.ok());
  CHECK(c->parent == "from-lsn");
  CHECK(f.Query("from-ckpt", "SELECT group_concat(v) FROM t") == "one,three");
  at_ckpt.lsn = 999999;
  CHECK(Reason(f.Branch("bad-ckpt", at_ckpt).status()) == "checkpoint_not_found");

  REQUIRE(f.cat->LabelCheckpoint("acme", "production", one, "before-two").ok());
  BranchSource at_label;
  at_label.kind = BranchSource::Kind::kLabel;
  at_label.label = "before-two";
  REQUIRE(f.Branch("from-label", at_label).ok());
  CHECK(f.Query("from-label", "SELECT v FROM t") == "one");
  at_label.label = "nope";
  CHECK(Reason(f.Branch("bad-label", at_label).status()) == "label_not_found");

  // Outside the restore window.
  f.clock().Advance(8 * kMicrosPerDay);
  at_time.time_micros = after_one;
  CHECK(Reason(f.Branch("too-old", at_time).status()) == "outside_restore_window");
  at_lsn.lsn = created;  // superseded more than 7 days ago (`one` is labelled: a pin)
  CHECK(Reason(f.Branch("too-old", at_lsn).status()) == "outside_restore_window");
  // The head is always restorable, however old.
  at_lsn.lsn = two;
  CHECK(f.Branch("old-head", at_lsn).ok());

  // Writes on a child never show on the parent.
  CHECK(f.Query("production", "SELECT count(*) FROM t") == "2");
  auto list = f.cat->ListBranches("acme", true);
  REQUIRE(list.ok());
  CHECK(list->size() == 7);
}

TEST_CASE("branch sources: an LSN or checkpoint that is no state of the given parent is refused") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  Lsn p1 = f.Sql("production", "INSERT INTO t VALUES(1)");
  REQUIRE(f.Branch("other").ok());
  Lsn foreign = f.Sql("other", "INSERT INTO t VALUES(100)");
  Lsn p2 = f.Sql("production", "INSERT INTO t VALUES(2)");
  REQUIRE(p1 < foreign);
  REQUIRE(foreign < p2);
  BranchSource at_lsn;
  at_lsn.kind = BranchSource::Kind::kParentLsn;
  // No such LSN at all: was created at the head.
  at_lsn.lsn = 999;
  CHECK(Reason(f.Branch("b1", at_lsn).status()) == "checkpoint_not_found");
  // Another branch's LSN: was created at the parent's neighbouring state (p1).
  at_lsn.lsn = foreign;
  CHECK(Reason(f.Branch("b2", at_lsn).status()) == "checkpoint_not_found");
  // A named parent with another branch's checkpoint: the parent was ignored.
  BranchSource at_ckpt;
  at_ckpt.kind = BranchSource::Kind::kCheckpoint;
  at_ckpt.parent = "production";
  at_ckpt.lsn = foreign;
  CHECK(Reason(f.Branch("b3", at_ckpt).status()) == "checkpoint_not_found");
  // The same checkpoint with its own branch as parent, or no parent, is exact.
  at_ckpt.parent = "other";
  auto b4 = f.Branch("b4", at_ckpt);
  REQUIRE(b4.ok());
  CHECK(b4->parent == "other");
  CHECK(b4->branch_point == foreign);
  // A former head of the parent (rolled back) is one of its states.
  auto rb = f.cat->Rollback("acme", "production", ToLsn(p1));
  REQUIRE(rb.ok());
  at_lsn.lsn = p2;
  auto b5 = f.Branch("b5", at_lsn);
  REQUIRE(b5.ok());
  CHECK(b5->branch_point == p2);
  CHECK(f.Query("b5", "SELECT group_concat(v) FROM t") == "1,2");
  // A time in the future names no state yet.
  BranchSource at_time;
  at_time.kind = BranchSource::Kind::kParentTime;
  at_time.time_micros = f.clock().NowMicros() + 60 * kSec;
  CHECK(Reason(f.Branch("b6", at_time).status()) == "invalid_argument");
}

TEST_CASE("branch sources: every LSN of the project, from every parent, gives that exact state or is refused") {
  CatalogFixture f;
  Lsn created = f.Sql("production", "CREATE TABLE t(v)");
  f.Sql("production", "INSERT INTO t VALUES(1)");
  REQUIRE(f.Branch("dev").ok());
  f.Sql("dev", "INSERT INTO t VALUES(10)");
  f.Sql("production", "INSERT INTO t VALUES(2)");
  Lsn dev_head = f.Sql("dev", "INSERT INTO t VALUES(11)");
  REQUIRE(f.cat->Rollback("acme", "dev", ToLsn(dev_head - 2)).ok());
  f.Sql("production", "INSERT INTO t VALUES(3)");
  auto store = f.cat->Store("acme");
  REQUIRE(store.ok());
  Lsn last = (*store)->LastLsn();
  int n = 0, accepted = 0;
  for (const std::string parent : {"production", "dev"}) {
    for (Lsn lsn = 0; lsn <= last + 2; ++lsn) {
      for (auto kind : {BranchSource::Kind::kParentLsn, BranchSource::Kind::kCheckpoint}) {
        BranchSource from;
        from.kind = kind;
        from.parent = parent;
        from.lsn = lsn;
        std::string name = "x" + std::to_string(n++);
        auto b = f.Branch(name, from);
        INFO(parent << " lsn " << lsn << ": " << b.status().ToString());
        if (!b.ok()) {
          CHECK(Reason(b.status()) == "checkpoint_not_found");
          continue;
        }
        ++accepted;
        CHECK(b->branch_point == lsn);
        CHECK(b->parent == parent);
        // The branch reads exactly the state named.
        if (lsn < created) continue;
        CHECK(f.Query(name, "SELECT group_concat(v) FROM t") ==
              f.Query(parent, "SELECT group_concat(v) FROM t", lsn));
      }
    }
  }
  CHECK(accepted > 0);
}

TEST_CASE("rollback: undo and redo chains, by LSN, time, actions back; checkpoints record it") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  f.clock().AdvanceSeconds(1);
  Lsn v1 = f.Sql("production", "INSERT INTO t VALUES(1)", "req-1");
  f.clock().AdvanceSeconds(1);
  int64_t after_v1 = f.clock().NowMicros();
  f.clock().AdvanceSeconds(1);
  f.Sql("production", "INSERT INTO t VALUES(2)", "req-2");
  f.clock().AdvanceSeconds(1);
  Lsn v3 = f.Sql("production", "INSERT INTO t VALUES(3)", "req-3");
  auto sum = [&] { return f.Query("production", "SELECT coalesce(sum(v), 0) FROM t"); };
  CHECK(sum() == "6");

  Actor actor{"agent-7", "rb-1"};
  auto r1 = f.cat->Rollback("acme", "production", ToLsn(v1), actor);
  REQUIRE(r1.ok());
  CHECK(r1->previous_head_lsn == v3);
  CHECK(r1->target_lsn == v1);
  CHECK(f.Head("production") == r1->head_lsn);
  CHECK(sum() == "1");

  // Undo: back to the previous head (no longer on the history).
  auto undo = f.cat->Rollback("acme", "production", ToLsn(r1->previous_head_lsn));
  REQUIRE(undo.ok());
  CHECK(sum() == "6");
  // Redo: the rollback's own record is a state of the branch too.
  auto redo = f.cat->Rollback("acme", "production", ToLsn(r1->head_lsn));
  REQUIRE(redo.ok());
  CHECK(sum() == "1");
  // Undo the redo, write on top, and the chain still holds.
  REQUIRE(f.cat->Rollback("acme", "production", ToLsn(redo->previous_head_lsn)).ok());
  CHECK(sum() == "6");
  f.Sql("production", "INSERT INTO t VALUES(4)");
  CHECK(sum() == "10");

  RollbackTarget back;
  back.kind = RollbackTarget::Kind::kActionsBack;
  back.actions = 2;
  REQUIRE(f.cat->Rollback("acme", "production", back).ok());
  CHECK(sum() == "3");  // undid INSERT 4 and INSERT 3
  back.actions = 100;
  CHECK(Reason(f.cat->Rollback("acme", "production", back).status()) == "checkpoint_not_found");

  RollbackTarget at;
  at.kind = RollbackTarget::Kind::kTime;
  at.time_micros = after_v1;
  REQUIRE(f.cat->Rollback("acme", "production", at).ok());
  CHECK(sum() == "1");

  // A state of another branch is not a rollback target of this one.
  REQUIRE(f.Branch("other").ok());
  Lsn foreign = f.Sql("other", "INSERT INTO t VALUES(100)");
  CHECK(Reason(f.cat->Rollback("acme", "production", ToLsn(foreign)).status()) ==
        "checkpoint_not_found");

  // The history shows the rollback as a checkpoint with its facts.
  auto page = f.cat->ListCheckpoints("acme", "production", 50);
  REQUIRE(page.ok());
  REQUIRE(!page->checkpoints.empty());
  CHECK(page->checkpoints[0].annotation.kind == "rollback");
  auto first_rb = f.cat->GetCheckpoint("acme", "production", r1->head_lsn);
  REQUIRE(first_rb.ok());
  CHECK(first_rb->annotation.kind == "rollback");
  CHECK(first_rb->annotation.client_id == "agent-7");
  CHECK(first_rb->annotation.request_id == "rb-1");
  CHECK(first_rb->annotation.previous_head == v3);
  CHECK(first_rb->annotation.target == v1);
  auto sql_ckpt = f.cat->GetCheckpoint("acme", "production", v1);
  REQUIRE(sql_ckpt.ok());
  CHECK(sql_ckpt->annotation.kind == "sql");
  CHECK(sql_ckpt->annotation.request_id == "req-1");
  CHECK(sql_ckpt->annotation.summary == "INSERT INTO t VALUES(1)");

  // Outside the restore window.
  f.clock().Advance(8 * kMicrosPerDay);
  at.time_micros = after_v1;
  CHECK(Reason(f.cat->Rollback("acme", "production", at).status()) == "outside_restore_window");
  CHECK(Reason(f.cat->Rollback("acme", "production", ToLsn(v3)).status()) ==
        "outside_restore_window");
}

TEST_CASE("reset from parent, and its undo") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v); INSERT INTO t VALUES('base')");
  REQUIRE(f.Branch("dev/alex").ok());
  f.Sql("dev/alex", "INSERT INTO t VALUES('alex')");
  f.Sql("production", "INSERT INTO t VALUES('prod')");
  auto all = [&](const std::string& b) {
    return f.Query(b, "SELECT group_concat(v, ',') FROM (SELECT v FROM t ORDER BY v)");
  };
  CHECK(all("dev/alex") == "alex,base");
  auto r = f.cat->ResetFromParent("acme", "dev/alex", Actor{"c", "r"});
  REQUIRE(r.ok());
  CHECK(all("dev/alex") == "base,prod");
  REQUIRE(f.cat->Rollback("acme", "dev/alex", ToLsn(r->previous_head_lsn)).ok());
  CHECK(all("dev/alex") == "alex,base");
  CHECK(Reason(f.cat->ResetFromParent("acme", "production").status()) == "no_parent");
  auto ck = f.cat->GetCheckpoint("acme", "dev/alex", r->head_lsn);
  REQUIRE(ck.ok());
  CHECK(ck->annotation.kind == "reset");
}

TEST_CASE("promote: fast-forward into an unmoved parent, undoable; refused when it moved") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v); INSERT INTO t VALUES('base')");
  REQUIRE(f.Branch("feature").ok());
  f.Sql("feature", "INSERT INTO t VALUES('feature')");
  auto p = f.cat->Promote("acme", "feature", Actor{"ci", "promote-1"});
  INFO(p.status().ToString());
  REQUIRE(p.ok());
  CHECK(f.Query("production", "SELECT count(*) FROM t") == "2");
  auto ck = f.cat->GetCheckpoint("acme", "production", p->head_lsn);
  REQUIRE(ck.ok());
  CHECK(ck->annotation.kind == "promote");
  REQUIRE(f.cat->Rollback("acme", "production", ToLsn(p->previous_head_lsn)).ok());
  CHECK(f.Query("production", "SELECT count(*) FROM t") == "1");
  // production moved (the undo): no fast-forward.
  CHECK(Reason(f.cat->Promote("acme", "feature").status()) == "parent_moved");
  CHECK(Reason(f.cat->Promote("acme", "production").status()) == "no_parent");
  // After a reset from the parent it is possible again.
  REQUIRE(f.cat->ResetFromParent("acme", "feature").ok());
  f.Sql("feature", "INSERT INTO t VALUES('again')");
  REQUIRE(f.cat->SetProtected("acme", "production", true).ok());
  CHECK(Reason(f.cat->Promote("acme", "feature").status()) == "branch_protected");
  REQUIRE(f.cat->SetProtected("acme", "production", false).ok());
  REQUIRE(f.cat->Promote("acme", "feature").ok());
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") == "base,again");
}

TEST_CASE("protected branches refuse delete, rollback and reset") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  Lsn one = f.Sql("production", "INSERT INTO t VALUES(1)");
  f.Sql("production", "INSERT INTO t VALUES(2)");
  REQUIRE(f.cat->SetProtected("acme", "production", true).ok());
  CHECK(Reason(f.cat->Rollback("acme", "production", ToLsn(one)).status()) == "branch_protected");
  REQUIRE(f.Branch("dev", {}, std::nullopt, true).ok());
  CHECK(Reason(f.cat->DeleteBranch("acme", "dev")) == "branch_protected");
  CHECK(Reason(f.cat->ResetFromParent("acme", "dev").status()) == "branch_protected");
  CHECK(Reason(f.cat->DeleteProject("acme")) == "branch_protected");
  CHECK(f.Query("production", "SELECT count(*) FROM t") == "2");
  REQUIRE(f.cat->SetProtected("acme", "dev", false).ok());
  CHECK(f.cat->ResetFromParent("acme", "dev").ok());
  CHECK(f.cat->DeleteBranch("acme", "dev").ok());
  CHECK(Reason(f.cat->DeleteBranch("acme", "production")) == "default_branch");
}

TEST_CASE("TTL: expired branches are reaped, under a mock clock") {
  CatalogFixture f;
  REQUIRE(f.Branch("ci-1", {}, 60 * kSec).ok());
  REQUIRE(f.Branch("ci-2", {}, 600 * kSec).ok());
  REQUIRE(f.Branch("keep", {}, 60 * kSec, /*prot=*/true).ok());
  REQUIRE(f.Branch("later").ok());
  REQUIRE(f.cat->SetTtl("acme", "later", 30 * kSec).ok());
  CHECK(Reason(f.cat->SetTtl("acme", "production", 30 * kSec)) == "default_branch");
  CHECK(Reason(f.cat->SetExpiry("acme", "later", f.clock().NowMicros() - 1)) == "invalid_argument");
  f.clock().AdvanceSeconds(29);
  CHECK(*f.cat->ReapExpired() == 0);
  f.clock().AdvanceSeconds(2);
  CHECK(*f.cat->ReapExpired() == 1);  // later
  REQUIRE(f.cat->SetExpiry("acme", "ci-2", std::nullopt).ok());  // cleared
  f.clock().AdvanceSeconds(60);
  CHECK(*f.cat->ReapExpired() == 1);  // ci-1; keep is protected
  auto list = f.cat->ListBranches("acme");
  REQUIRE(list.ok());
  std::string names;
  for (auto& b : *list) names += b.name + " ";
  CHECK(names == "ci-2 keep production ");
  f.clock().Advance(kMicrosPerDay);
  CHECK(*f.cat->ReapExpired() == 0);
}

TEST_CASE("reaper thread deletes expired branches on its own") {
  CatalogFixture f;
  REQUIRE(f.Branch("short", {}, 5 * kSec).ok());
  f.clock().AdvanceSeconds(6);
  f.cat.reset();
  CatalogOptions o;
  o.env = f.env();
  o.reaper_interval_micros = 10000;  // 10 ms of real time
  std::atomic<int> notified{0};
  std::string notified_name;
  o.on_branch_reaped = [&](const std::string& project, const std::string& branch, TimelineId) {
    if (project == "acme") notified_name = branch;
    ++notified;
  };
  auto cat = Catalog::Open(o, f.dir());
  REQUIRE(cat.ok());
  // Waits for the effect (bounded), not for a time.
  bool gone = false;
  for (int i = 0; i < 500 && notified == 0; ++i) Clock::Default()->SleepForMicros(10000);
  gone = Reason((*cat)->GetBranch("acme", "short").status()) == "branch_not_found";
  CHECK(gone);
  CHECK(notified == 1);
  CHECK(notified_name == "short");
}

TEST_CASE("deleting a parent keeps what its children read; children are re-parented") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  REQUIRE(f.Branch("mid").ok());
  f.Sql("mid", "INSERT INTO t VALUES('mid')");
  BranchSource from;
  from.parent = "mid";
  REQUIRE(f.Branch("leaf", from).ok());
  f.Sql("leaf", "INSERT INTO t VALUES('leaf')");
  REQUIRE(f.cat->LabelCheckpoint("acme", "mid", f.Head("mid"), "mid-label").ok());
  REQUIRE(f.cat->DeleteBranch("acme", "mid").ok());
  CHECK(f.Query("leaf", "SELECT group_concat(v) FROM t") == "mid,leaf");
  auto leaf = f.cat->GetBranch("acme", "leaf");
  REQUIRE(leaf.ok());
  CHECK(leaf->parent == "production");
  REQUIRE(f.cat->Gc("acme").ok());
  f.Reopen();
  CHECK(f.Query("leaf", "SELECT group_concat(v) FROM t") == "mid,leaf");
  // Inherited checkpoints of the deleted parent are still listed.
  auto page = f.cat->ListCheckpoints("acme", "leaf", 100);
  REQUIRE(page.ok());
  bool saw_mid_write = false;
  for (auto& c : page->checkpoints) {
    if (c.inherited && c.annotation.summary == "INSERT INTO t VALUES('mid')") {
      saw_mid_write = true;
      CHECK(c.branch.empty());  // its branch is gone: no name
    }
  }
  CHECK(saw_mid_write);
  REQUIRE(f.cat->ResetFromParent("acme", "leaf").ok());
  CHECK(f.Query("leaf", "SELECT count(*) FROM t") == "0");
}

TEST_CASE("labels pin checkpoints beyond the restore window until unlabelled") {
  CatalogFixture f;
  REQUIRE(f.cat->SetRestoreWindow("acme", kMicrosPerDay).ok());
  f.Sql("production", "CREATE TABLE t(v)");
  Lsn keep = f.Sql("production", "INSERT INTO t VALUES('keep')");
  Lsn drop = f.Sql("production", "UPDATE t SET v='drop'");
  f.Sql("production", "UPDATE t SET v='now'");
  REQUIRE(f.cat->LabelCheckpoint("acme", "production", keep, "before-migration").ok());
  CHECK(Reason(f.cat->LabelCheckpoint("acme", "production", drop, "before-migration")) ==
        "label_exists");
  CHECK(Reason(f.cat->LabelCheckpoint("acme", "production", drop, "bad label")) == "invalid_label");
  CHECK(Reason(f.cat->LabelCheckpoint("acme", "production", 99999, "x")) == "checkpoint_not_found");
  f.clock().Advance(2 * kMicrosPerDay);
  f.Sql("production", "UPDATE t SET v='later'");
  CHECK(Reason(f.cat->Rollback("acme", "production", ToLsn(drop)).status()) ==
        "outside_restore_window");
  // Unlabelled, `keep` is as old as `drop`; labelled again, it is restorable.
  REQUIRE(f.cat->UnlabelCheckpoint("acme", "production", "before-migration").ok());
  CHECK(Reason(f.cat->UnlabelCheckpoint("acme", "production", "before-migration")) ==
        "label_not_found");
  CHECK(Reason(f.cat->Rollback("acme", "production", ToLsn(keep)).status()) ==
        "outside_restore_window");
  REQUIRE(f.cat->LabelCheckpoint("acme", "production", keep, "before-migration").ok());
  auto ck = f.cat->GetCheckpoint("acme", "production", keep);
  REQUIRE(ck.ok());
  CHECK(ck->labels == std::vector<std::string>{"before-migration"});
  REQUIRE(f.cat->LabelCheckpoint("acme", "production", drop, "a-second").ok());
  auto labels = f.cat->ListLabels("acme", "production");
  REQUIRE(labels.ok());
  REQUIRE(labels->size() == 2);
  CHECK(labels->at(0).label == "a-second");
  CHECK(labels->at(0).lsn == drop);
  CHECK(labels->at(1).label == "before-migration");
  CHECK(labels->at(1).lsn == keep);
  REQUIRE(f.cat->UnlabelCheckpoint("acme", "production", "a-second").ok());

  // GC keeps the pinned state readable; the unpinned old one may be gone.
  REQUIRE(f.cat->Gc("acme").ok());
  std::string after_gc = Reason(f.cat->Rollback("acme", "production", ToLsn(drop)).status());
  CHECK((after_gc == "outside_restore_window" || after_gc == "checkpoint_not_found"));
  RollbackTarget by_label;
  by_label.kind = RollbackTarget::Kind::kLabel;
  by_label.label = "before-migration";
  auto r = f.cat->Rollback("acme", "production", by_label);
  REQUIRE(r.ok());
  CHECK(f.Query("production", "SELECT v FROM t") == "keep");
  REQUIRE(f.cat->Rollback("acme", "production", ToLsn(r->previous_head_lsn)).ok());
  CHECK(f.Query("production", "SELECT v FROM t") == "later");
  f.Reopen();
  CHECK(f.Query("production", "SELECT v FROM t", keep) == "keep");
}

TEST_CASE("undo of a rollback whose previous head is older than the restore window") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  Lsn old = f.Sql("production", "INSERT INTO t VALUES('old')");
  Lsn head = f.Sql("production", "UPDATE t SET v='head'");
  REQUIRE(f.cat->LabelCheckpoint("acme", "production", old, "pinned").ok());
  f.clock().Advance(30 * kMicrosPerDay);
  RollbackTarget by_label;
  by_label.kind = RollbackTarget::Kind::kLabel;
  by_label.label = "pinned";
  auto r = f.cat->Rollback("acme", "production", by_label);
  REQUIRE(r.ok());
  CHECK(r->previous_head_lsn == head);
  CHECK(f.Query("production", "SELECT v FROM t") == "old");
  // `head` was written 30 days ago but was the head until just now.
  auto undo = f.cat->Rollback("acme", "production", ToLsn(r->previous_head_lsn));
  INFO(undo.status().ToString());
  REQUIRE(undo.ok());
  CHECK(f.Query("production", "SELECT v FROM t") == "head");
}

TEST_CASE("checkpoints: newest first, paged by cursor, inherited across the branch point") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  for (int i = 0; i < 12; ++i) f.Sql("production", "INSERT INTO t VALUES(" + std::to_string(i) + ")");
  REQUIRE(f.Branch("dev").ok());
  for (int i = 0; i < 5; ++i) f.Sql("dev", "INSERT INTO t VALUES(100)");
  std::vector<CheckpointInfo> all;
  std::string cursor;
  int pages = 0;
  do {
    auto page = f.cat->ListCheckpoints("acme", "dev", 4, cursor);
    REQUIRE(page.ok());
    REQUIRE(page->checkpoints.size() <= 4);
    for (auto& c : page->checkpoints) all.push_back(c);
    cursor = page->next_cursor;
    ++pages;
  } while (!cursor.empty() && pages < 100);
  // 5 dev commits + dev's create record + 13 production commits + production's create.
  REQUIRE(all.size() == 20);
  for (size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].lsn > all[i].lsn);
  for (size_t i = 0; i < 6; ++i) {
    CHECK_FALSE(all[i].inherited);
    CHECK(all[i].branch == "dev");
  }
  CHECK(all[5].annotation.kind == "create");
  CHECK(all[5].annotation.branch == "dev");
  for (size_t i = 6; i < all.size(); ++i) {
    CHECK(all[i].inherited);
    CHECK(all[i].branch == "production");
  }
  CHECK(Reason(f.cat->ListCheckpoints("acme", "dev", 4, "zz").status()) == "invalid_argument");
  CHECK(Reason(f.cat->ListCheckpoints("acme", "dev", 0).status()) == "invalid_argument");
}

TEST_CASE("checkpoints: a reflog; states a rollback left stay listed as rolled back, moves carry their ends") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  Lsn v1 = f.Sql("production", "INSERT INTO t VALUES(1)");
  Lsn v2 = f.Sql("production", "INSERT INTO t VALUES(2)");
  Lsn v3 = f.Sql("production", "INSERT INTO t VALUES(3)");
  auto rb = f.cat->Rollback("acme", "production", ToLsn(v1));
  REQUIRE(rb.ok());
  auto list = [&](size_t page_size) {
    std::vector<CheckpointInfo> all;
    std::string cursor;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = f.cat->ListCheckpoints("acme", "production", page_size, cursor);
      REQUIRE(page.ok());
      for (auto& c : page->checkpoints) all.push_back(c);
      cursor = page->next_cursor;
      if (cursor.empty()) break;
    }
    return all;
  };
  auto find = [](const std::vector<CheckpointInfo>& all, Lsn lsn) -> const CheckpointInfo* {
    for (const auto& c : all) if (c.lsn == lsn) return &c;
    return nullptr;
  };
  auto all = list(50);
  REQUIRE(find(all, v2) != nullptr);  // was absent: only the current history was listed
  CHECK(find(all, v2)->rolled_back);
  REQUIRE(find(all, v3) != nullptr);
  CHECK(find(all, v3)->rolled_back);
  CHECK_FALSE(find(all, v1)->rolled_back);
  REQUIRE(find(all, rb->head_lsn) != nullptr);
  CHECK(find(all, rb->head_lsn)->annotation.target == v1);
  CHECK(find(all, rb->head_lsn)->annotation.previous_head == v3);
  // The undo moves back onto v3: v2 and v3 are on the history again, the first
  // rollback's record is now the rolled-back one.
  auto undo = f.cat->Rollback("acme", "production", ToLsn(rb->previous_head_lsn));
  REQUIRE(undo.ok());
  all = list(3);
  CHECK_FALSE(find(all, v3)->rolled_back);
  CHECK(find(all, rb->head_lsn)->rolled_back);
  // Newest first, each state once, and paging gives the same list.
  for (size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].lsn > all[i].lsn);
  auto one_page = list(1000);
  REQUIRE(one_page.size() == all.size());
  // Every own record of the timeline is listed: the reflog has one entry per
  // head the branch has had.
  auto store = f.cat->Store("acme");
  REQUIRE(store.ok());
  size_t own = 0;
  for (Lsn l = 1; l <= (*store)->LastLsn(); ++l) {
    auto rec = (*store)->GetRecord(l);
    if (rec.ok() && rec->timeline == f.cat->GetBranch("acme", "production")->timeline) ++own;
  }
  CHECK(all.size() == own);
}

TEST_CASE("checkpoints: own and inherited entries interleave by LSN on a long history, in pages of any size") {
  // dev has hundreds of records of its own; resets from production put
  // production's later commits on its history between them. The list must be
  // every own record and every inherited one, newest first, however it is
  // paged (a page reads the inherited stream only down to the own entry in
  // hand, not to its next inherited record).
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  REQUIRE(f.Branch("dev").ok());
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 70; ++i) f.Sql("dev", "INSERT INTO t VALUES(" + std::to_string(i) + ")");
    f.Sql("production", "INSERT INTO t VALUES(-1)");
    f.Sql("production", "INSERT INTO t VALUES(-2)");
    REQUIRE(f.cat->ResetFromParent("acme", "dev").ok());
  }
  for (int i = 0; i < 40; ++i) f.Sql("dev", "INSERT INTO t VALUES(" + std::to_string(i) + ")");

  auto store = f.cat->Store("acme");
  REQUIRE(store.ok());
  const TimelineId t = f.cat->GetBranch("acme", "dev")->timeline;
  auto tl = (*store)->GetTimeline(t);
  REQUIRE(tl.ok());
  std::vector<Lsn> want;  // own records, then inherited ones: merged below
  for (Lsn l = tl->created_lsn; l <= (*store)->LastLsn(); ++l) {
    auto rec = (*store)->GetRecord(l);
    if (rec.ok() && rec->timeline == t && rec->kind != storage::RecordKind::kDrop) want.push_back(l);
  }
  const size_t own = want.size();
  auto hist = (*store)->History(t, 0, 100000);
  REQUIRE(hist.ok());
  for (const storage::RecordInfo& r : *hist) {
    if (r.timeline != t && r.kind != storage::RecordKind::kDrop) want.push_back(r.lsn);
  }
  REQUIRE(own > 250);
  REQUIRE(want.size() > own + 6);  // production's commits, inherited through the resets
  std::sort(want.rbegin(), want.rend());

  for (size_t page_size : {1000, 1, 4, 7}) {
    INFO("page size " << page_size);
    std::vector<Lsn> got;
    std::string cursor;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = f.cat->ListCheckpoints("acme", "dev", page_size, cursor);
      REQUIRE(page.ok());
      for (const CheckpointInfo& c : page->checkpoints) got.push_back(c.lsn);
      cursor = page->next_cursor;
      if (cursor.empty()) break;
    }
    CHECK(got == want);
  }
}

TEST_CASE("checkpoints: every listed state of every branch is a rollback target giving that state") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v)");
  f.Sql("production", "INSERT INTO t VALUES(1)");
  REQUIRE(f.Branch("dev").ok());
  Lsn d1 = f.Sql("dev", "INSERT INTO t VALUES(10)");
  f.Sql("dev", "INSERT INTO t VALUES(11)");
  REQUIRE(f.cat->Rollback("acme", "dev", ToLsn(d1)).ok());
  f.Sql("production", "INSERT INTO t VALUES(2)");
  REQUIRE(f.cat->ResetFromParent("acme", "dev").ok());
  f.Sql("dev", "INSERT INTO t VALUES(12)");
  for (const std::string branch : {"production", "dev"}) {
    auto page = f.cat->ListCheckpoints("acme", branch, 1000);
    REQUIRE(page.ok());
    for (const CheckpointInfo& c : page->checkpoints) {
      INFO(branch << " lsn " << c.lsn << " kind " << c.annotation.kind);
      std::string expected = c.lsn < 2 ? "" : f.Query(branch, "SELECT group_concat(v) FROM t", c.lsn);
      auto r = f.cat->Rollback("acme", branch, ToLsn(c.lsn));
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      if (c.lsn >= 2) CHECK(f.Query(branch, "SELECT group_concat(v) FROM t") == expected);
      // Undo, so that the next entry is tried against the history listed.
      REQUIRE(f.cat->Rollback("acme", branch, ToLsn(r->previous_head_lsn)).ok());
    }
  }
}

TEST_CASE("rename keeps identity, data and children") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v); INSERT INTO t VALUES(1)");
  REQUIRE(f.Branch("dev").ok());
  BranchSource from;
  from.parent = "dev";
  REQUIRE(f.Branch("dev-child", from).ok());
  TimelineId id = f.cat->GetBranch("acme", "dev")->timeline;
  REQUIRE(f.cat->RenameBranch("acme", "dev", "dev/bob").ok());
  CHECK(f.cat->GetBranch("acme", "dev/bob")->timeline == id);
  CHECK(f.cat->GetBranch("acme", "dev-child")->parent == "dev/bob");
  CHECK(Reason(f.cat->RenameBranch("acme", "dev/bob", "production")) == "branch_exists");
  CHECK(Reason(f.cat->RenameBranch("acme", "dev/bob", "a//b")) == "invalid_branch_name");
  REQUIRE(f.cat->RenameBranch("acme", "production", "main").ok());
  CHECK(f.cat->GetProject("acme")->default_branch == "main");
  f.Reopen();
  CHECK(f.Query("dev/bob", "SELECT v FROM t") == "1");
  CHECK(f.cat->GetBranch("acme", "main")->is_default);
}

TEST_CASE("idle timeout: unset by default, set, validated, kept across rename and reopen") {
  CatalogFixture f;
  REQUIRE(f.Branch("dev").ok());
  CHECK_FALSE(f.cat->GetBranch("acme", "dev")->idle_timeout_seconds.has_value());
  REQUIRE(f.cat->SetIdleTimeout("acme", "dev", 0).ok());
  REQUIRE(f.cat->SetIdleTimeout("acme", "production", kMaxIdleTimeoutSeconds).ok());
  CHECK(f.cat->GetBranch("acme", "dev")->idle_timeout_seconds == std::optional<int64_t>(0));
  CHECK(Reason(f.cat->SetIdleTimeout("acme", "dev", -1)) == "invalid_argument");
  CHECK(Reason(f.cat->SetIdleTimeout("acme", "dev", kMaxIdleTimeoutSeconds + 1)) ==
        "invalid_argument");
  CHECK(Reason(f.cat->SetIdleTimeout("acme", "nope", 5)) == "branch_not_found");
  CHECK(Reason(f.cat->SetIdleTimeout("nope", "dev", 5)) == "project_not_found");
  // A refused value left the stored one alone.
  CHECK(f.cat->GetBranch("acme", "dev")->idle_timeout_seconds == std::optional<int64_t>(0));
  REQUIRE(f.cat->RenameBranch("acme", "dev", "dev/bob").ok());
  REQUIRE(f.Branch("other").ok());
  f.Reopen();
  CHECK(f.cat->GetBranch("acme", "dev/bob")->idle_timeout_seconds == std::optional<int64_t>(0));
  CHECK(f.cat->GetBranch("acme", "production")->idle_timeout_seconds ==
        std::optional<int64_t>(kMaxIdleTimeoutSeconds));
  CHECK_FALSE(f.cat->GetBranch("acme", "other")->idle_timeout_seconds.has_value());
  auto list = f.cat->ListBranches("acme");
  REQUIRE(list.ok());
  for (const BranchInfo& b : *list) {
    if (b.name == "dev/bob") CHECK(b.idle_timeout_seconds == std::optional<int64_t>(0));
  }
  // Unset again: back to the server default; delete still works.
  REQUIRE(f.cat->SetIdleTimeout("acme", "dev/bob", std::nullopt).ok());
  f.Reopen();
  CHECK_FALSE(f.cat->GetBranch("acme", "dev/bob")->idle_timeout_seconds.has_value());
  REQUIRE(f.cat->DeleteBranch("acme", "dev/bob").ok());
  CHECK(Reason(f.cat->GetBranch("acme", "dev/bob").status()) == "branch_not_found");
}

TEST_CASE("idle timeout: a catalog from before the column is migrated on open") {
  CatalogFixture f;
  REQUIRE(f.Branch("dev").ok());
  f.cat.reset();
  {
    // Make catalog.db what an older version wrote: branches without the column.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((f.dir() + "/catalog.db").c_str(), &db) == SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, "ALTER TABLE branches DROP COLUMN idle_timeout_seconds", nullptr,
                          nullptr, &err);
    INFO((err ? err : ""));
    sqlite3_free(err);
    CHECK(rc == SQLITE_OK);
    sqlite3_close(db);
  }
  f.Open();
  auto dev = f.cat->GetBranch("acme", "dev");
  REQUIRE(dev.ok());
  CHECK_FALSE(dev->idle_timeout_seconds.has_value());
  REQUIRE(f.cat->SetIdleTimeout("acme", "dev", 42).ok());
  REQUIRE(f.Branch("new").ok());
  f.Reopen();
  CHECK(f.cat->GetBranch("acme", "dev")->idle_timeout_seconds == std::optional<int64_t>(42));
  CHECK_FALSE(f.cat->GetBranch("acme", "new")->idle_timeout_seconds.has_value());
}

TEST_CASE("reconcile: orphan timelines (never acknowledged) are dropped on open") {
  CatalogFixture f;
  auto store = f.cat->Store("acme");
  REQUIRE(store.ok());
  auto orphan = (*store)->CreateTimeline(storage::Lsn{0}, "");
  REQUIRE(orphan.ok());
  size_t before = (*store)->ListTimelines().size();
  store = Status::NotFound("let go");  // a held store stays open: Reopen could not open it
  f.Reopen();
  store = f.cat->Store("acme");
  REQUIRE(store.ok());
  CHECK((*store)->ListTimelines().size() == before - 1);
  CHECK_FALSE((*store)->GetTimeline(*orphan).ok());
  CHECK(f.cat->GetBranch("acme", "production").ok());
}

TEST_CASE("branch usage: exclusive bytes follow what the branch wrote") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(v BLOB); INSERT INTO t VALUES(zeroblob(40000))");
  REQUIRE(f.Branch("dev").ok());
  auto fresh = f.cat->GetBranch("acme", "dev");
  REQUIRE(fresh.ok());
  CHECK(fresh->exclusive_bytes == 0);
  CHECK(fresh->logical_bytes > 40000);
  f.Sql("dev", "INSERT INTO t VALUES(randomblob(20000))");
  auto grown = f.cat->GetBranch("acme", "dev");
  REQUIRE(grown.ok());
  CHECK(grown->exclusive_bytes >= 20000);
}

TEST_CASE("concurrent writers and rollbacks: each rollback either applies or reports head_moved") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  Lsn first = f.Sql("production", "INSERT INTO t VALUES(1, 1)");
  REQUIRE(f.Branch("other").ok());
  std::atomic<bool> stop{false};
  std::atomic<int> commits{0};
  std::thread writer([&] {
    auto db = f.cat->OpenBranchConnection("acme", "production");
    if (!db.ok()) return;
    for (int i = 0; i < 200 && !stop; ++i) {
      if (sqlite3_exec(db->get(), "INSERT INTO t(v) VALUES(2)", nullptr, nullptr, nullptr) ==
          SQLITE_OK) {
        ++commits;
      }
    }
  });
  std::thread other([&] {
    for (int i = 0; i < 50; ++i) {
      auto db = f.cat->OpenBranchConnection("acme", "other");
      if (db.ok()) sqlite3_exec(db->get(), "INSERT INTO t(v) VALUES(3)", nullptr, nullptr, nullptr);
      (void)f.cat->ListCheckpoints("acme", "other", 5);
    }
  });
  int applied = 0, moved = 0;
  for (int i = 0; i < 50; ++i) {
    auto r = f.cat->Rollback("acme", "production", ToLsn(first));
    if (r.ok()) {
      ++applied;
    } else {
      INFO(r.status().ToString());
      CHECK(r.status().IsConflict());
      CHECK(Reason(r.status()) == "head_moved");
      ++moved;
    }
  }
  stop = true;
  writer.join();
  other.join();
  CHECK(applied + moved == 50);
  CHECK(applied > 0);
  CHECK(f.Query("production", "PRAGMA integrity_check") == "ok");
  CHECK(f.Query("other", "PRAGMA integrity_check") == "ok");
}

}  // namespace
}  // namespace branchdb::catalog::testing
