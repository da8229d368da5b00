// PooledStore::Retire (storage/store_pool.h): a store whose owner went away
// (its project was deleted) while others still hold it refuses every call
// with the given reason, is never opened again, and closes as soon as no call
// is in it; a call already in it when it is retired finishes.
#include <catch2/catch.hpp>

#include "storage/store_pool.h"
#include "tests/util/fault_injection_env.h"
#include "tests/util/store_model.h"
#include "tests/util/temp_dir.h"

using namespace branchdb;
using namespace branchdb::testing;

namespace {

struct PoolFixture {
  TempDir dir{FastTestDirBase()};
  FaultInjectionEnv env{Env::Default()};
  storage::StorePool pool;
  std::unique_ptr<storage::PooledStore> store;
  storage::TimelineId t = 0;

  PoolFixture() : pool(Options()) {
    storage::PageStoreOptions o;
    o.env = &env;
    store = pool.Add(o, dir.Sub("db"));
    auto created = store->CreateTimeline(0, "t");
    REQUIRE(created.ok());
    t = *created;
  }
  storage::StorePoolOptions Options() {
    storage::StorePoolOptions o;
    o.env = &env;
    return o;
  }
  Result<storage::Lsn> Commit(uint64_t key) {
    std::string page = PageData(key);
    auto head = store->Head(t);
    if (!head.ok()) return head.status();
    return store->Commit(t, *head, {{1, page}}, 1, "c");
  }
};

Status Gone() { return Status::NotFound("project 'p' was deleted", "project_not_found"); }

TEST_CASE("a retired store refuses every call with its reason and is never opened again") {
  PoolFixture f;
  REQUIRE(f.Commit(1).ok());
  REQUIRE(f.store->TryClose());
  f.store->Retire(Gone());
  CHECK(f.store->retired());
  CHECK(f.store->Head(f.t).status().reason() == "project_not_found");
  CHECK(f.Commit(2).status().reason() == "project_not_found");
  CHECK(f.store->ListTimelinesOrError().status().reason() == "project_not_found");
  std::string page;
  CHECK(f.store->ReadPage(f.t, 1, 0, &page).reason() == "project_not_found");
  CHECK(f.store->Gc({}).status().reason() == "project_not_found");
  CHECK(f.store->OpenNow().reason() == "project_not_found");
  CHECK_FALSE(f.store->IsOpen());
  CHECK(f.pool.OpenCount() == 0);
  // The first reason stays.
  f.store->Retire(Status::IOError("another"));
  CHECK(f.store->Head(f.t).status().reason() == "project_not_found");
}

TEST_CASE("retiring an idle open store closes it at once") {
  PoolFixture f;
  REQUIRE(f.Commit(1).ok());
  REQUIRE(f.store->IsOpen());
  f.store->Retire(Gone());
  CHECK_FALSE(f.store->IsOpen());
  CHECK(f.pool.OpenCount() == 0);
}

TEST_CASE("a call in the store when it is retired finishes; the store closes when destroyed") {
  PoolFixture f;
  bool retired_during_commit = false;
  f.env.SetBeforeSyncCallback([&](uint32_t, const std::string&) {
    if (retired_during_commit) return;
    retired_during_commit = true;
    f.store->Retire(Gone());  // from inside the commit's fsync
  });
  auto lsn = f.Commit(1);
  f.env.SetBeforeSyncCallback(nullptr);
  REQUIRE(retired_during_commit);
  INFO(lsn.status().ToString());
  CHECK(lsn.ok());             // it was in the store: acknowledged, durable
  CHECK(f.store->IsOpen());    // it could not be closed under the call
  CHECK(f.Commit(2).status().reason() == "project_not_found");
  f.store.reset();
  CHECK(f.pool.OpenCount() == 0);
  // What the call wrote is in the files.
  auto reopened = storage::PageStore::Open(storage::PageStoreOptions{}, f.dir.Sub("db"));
  REQUIRE(reopened.ok());
  CHECK((*reopened)->Head(f.t).value() == *lsn);
}

}  // namespace
