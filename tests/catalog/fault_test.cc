// Fault sweep: fail the n-th file operation (EIO) of the store for n = 1, 2, ...
// during a sequence of catalog actions, then reopen and check that every
// action that returned OK holds (the failed one may or may not have taken
// effect: a failed fsync's outcome is unknown), no orphan timelines remain,
// and the catalog and store agree. (catalog.db is opened by SQLite itself, so only store operations go
// through the faulty Env.) And a project whose store is damaged on disk: the
// catalog opens, the other projects work, and the damaged one comes back,
// reconciled, once repaired.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "base/mock_clock.h"
#include "catalog/catalog.h"
#include "tests/util/fault_injection_env.h"
#include "tests/util/temp_dir.h"

namespace branchdb::catalog::testing {
namespace {

CatalogOptions Options(Env* env) {
  CatalogOptions o;
  o.env = env;
  o.reaper_interval_micros = 0;
  o.gc_interval_micros = 0;
  return o;
}

std::map<std::string, Lsn> Heads(Catalog& cat) {
  std::map<std::string, Lsn> out;
  auto list = cat.ListBranches("acme");
  REQUIRE(list.ok());
  for (const BranchInfo& b : *list) out[b.name] = b.head;
  return out;
}

TEST_CASE("fault sweep: failed store operations leave catalog and store consistent") {
  int fired_runs = 0;
  for (uint64_t n = 1; n < 400; ++n) {
    INFO("n=" << n);
    branchdb::testing::TempDir dir(branchdb::testing::FastTestDirBase());
    branchdb::testing::FaultInjectionEnv env;
    Lsn base = 0;
    {
      auto cat = Catalog::Open(Options(&env), dir.path());
      REQUIRE(cat.ok());
      REQUIRE((*cat)->CreateProject("acme", {}).ok());
      auto db = (*cat)->OpenBranchConnection("acme", "production");
      REQUIRE(db.ok());
      REQUIRE(sqlite3_exec(db->get(), "CREATE TABLE t(v); INSERT INTO t VALUES(1)", nullptr,
                           nullptr, nullptr) == SQLITE_OK);
      base = storage::LastCommitLsn(db->get());
    }
    auto cat = Catalog::Open(Options(&env), dir.path());
    REQUIRE(cat.ok());
    env.FailNth(n, branchdb::testing::FaultType::kIOError);
    // Actions; stop at the first failure (the store is fail-stop).
    std::map<std::string, Lsn> expect;  // branch -> head, for acknowledged actions
    bool failed = false;
    std::set<std::string> uncertain;  // touched by the failed action: either outcome
    auto step = [&](std::vector<std::string> touches, auto&& action) {
      if (failed) return;
      failed = !action();
      if (failed) uncertain.insert(touches.begin(), touches.end());
    };
    step({"dev/a"}, [&] {
      CreateBranchOptions o;
      auto b = (*cat)->CreateBranch("acme", "dev/a", o);
      if (b.ok()) expect["dev/a"] = b->head;
      return b.ok();
    });
    step({"dev/a"}, [&] {
      RollbackTarget t;
      t.lsn = base;
      auto r = (*cat)->Rollback("acme", "dev/a", t);
      if (r.ok()) expect["dev/a"] = r->head_lsn;
      return r.ok();
    });
    step({"dev/b"}, [&] {
      CreateBranchOptions o;
      o.from.parent = "dev/a";
      auto b = (*cat)->CreateBranch("acme", "dev/b", o);
      if (b.ok()) expect["dev/b"] = b->head;
      return b.ok();
    });
    step({"dev/b"}, [&] {
      auto r = (*cat)->ResetFromParent("acme", "dev/b");
      if (r.ok()) expect["dev/b"] = r->head_lsn;
      return r.ok();
    });
    step({"dev/a"}, [&] {
      Status s = (*cat)->DeleteBranch("acme", "dev/a");
      if (s.ok()) expect.erase("dev/a");
      return s.ok();
    });
    bool fired = env.FaultFired();
    env.ClearFault();
    cat->reset();
    auto reopened = Catalog::Open(Options(&env), dir.path());
    INFO(reopened.status().ToString());
    REQUIRE(reopened.ok());
    std::map<std::string, Lsn> heads = Heads(**reopened);
    for (const auto& [name, head] : expect) {
      INFO("branch " << name);
      if (uncertain.count(name)) continue;
      REQUIRE(heads.count(name));
      CHECK(heads[name] == head);
    }
    auto store = (*reopened)->Store("acme");
    REQUIRE(store.ok());
    CHECK((*store)->ListTimelines().size() == heads.size());
    if (!fired) break;
    ++fired_runs;
  }
  CHECK(fired_runs > 5);
}

TEST_CASE("a project whose store does not open fails alone, and is reconciled once repaired") {
  branchdb::testing::TempDir dir;
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  std::string store_dir;
  {
    auto cat = Catalog::Open(Options(&env), dir.path());
    REQUIRE(cat.ok());
    REQUIRE((*cat)->CreateProject("good", {}).ok());
    const auto before = env.GetChildren(dir.path() + "/projects");
    REQUIRE((*cat)->CreateProject("bad", {}).ok());
    const auto after = env.GetChildren(dir.path() + "/projects");
    for (const std::string& c : *after) {
      if (std::find(before->begin(), before->end(), c) == before->end()) {
        store_dir = dir.path() + "/projects/" + c;
      }
    }
  }
  REQUIRE(!store_dir.empty());
  // Seal the store's first segment behind an orphan timeline (a create the
  // catalog never acknowledged: reconciling drops it), then damage it.
  {
    storage::PageStoreOptions o;
    o.segment_bytes = 1;
    auto store = storage::PageStore::Open(o, store_dir);
    REQUIRE(store.ok());
    REQUIRE((*store)->CreateTimeline(0, "orphan").ok());
  }
  const std::string seg = store_dir + "/seg-000001.log";
  const std::string good = *env.ReadFileToString(seg);
  std::string bad = good;
  bad[bad.size() - 1] ^= 0x5A;  // the trailer's magic
  bad[32 + 8 + 10] ^= 0x5A;     // the first record's meta
  REQUIRE(env.WriteFileAtomic(seg, bad).ok());

  auto cat = Catalog::Open(Options(&env), dir.path());
  INFO(cat.status().ToString());
  REQUIRE(cat.ok());
  CHECK((*cat)->ListBranches("good").ok());
  CHECK((*cat)->ListBranches("bad").status().reason() == "store_damaged");
  std::vector<ProjectDamage> damaged = (*cat)->DamagedProjects();
  REQUIRE(damaged.size() == 1);
  CHECK(damaged[0].project == "bad");
  CHECK_FALSE(damaged[0].serving);
  CHECK(damaged[0].message.find("seg-000001.log: record at offset 32") != std::string::npos);

  REQUIRE(env.WriteFileAtomic(seg, good).ok());  // repaired
  clock.AdvanceSeconds(1);                        // the store's retry interval
  auto branches = (*cat)->ListBranches("bad");
  INFO(branches.status().ToString());
  REQUIRE(branches.ok());
  CHECK(branches->size() == 1);
  CHECK((*cat)->DamagedProjects().empty());
  auto store = (*cat)->Store("bad");
  REQUIRE(store.ok());
  CHECK((*store)->ListTimelines().size() == 1);  // the orphan was dropped
}

}  // namespace
}  // namespace branchdb::catalog::testing
