// PooledStore::Retire (storage/store_pool.h): a store whose owner went away
// (its project was deleted) while others still hold it refuses every call
// with the given reason, is never opened again, and closes as soon as no call
// is in it; a call already in it when it is retired finishes. And a damaged
// store: refused with store_damaged until repaired. DurableEnd of a closed store.
#include <catch2/catch.hpp>

#include "base/mock_clock.h"
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

// Damage (storage/store_pool.h): a store that fails its checks does not open;
// it answers store_damaged, and opens again by itself once repaired, at the
// first call a retry interval after the last attempt.
TEST_CASE("a damaged store answers store_damaged and reopens once repaired") {
  TempDir dir{FastTestDirBase()};
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  storage::StorePoolOptions po;
  po.env = &env;
  storage::StorePool pool(po);
  storage::PageStoreOptions o;
  o.env = &env;
  o.segment_bytes = 1;  // every record rolls: seg 1 is empty, the create record alone in seg 2
  auto store = pool.Add(o, dir.Sub("db"));
  auto t = store->CreateTimeline(0, "t");
  REQUIRE(t.ok());
  auto head = store->Head(*t);
  REQUIRE(head.ok());
  const std::string page = PageData(7);
  auto lsn = store->Commit(*t, *head, {{1, page}}, 1, "c");
  REQUIRE(lsn.ok());
  REQUIRE(store->TryClose());

  const std::string seg = dir.Sub("db") + "/seg-000002.log";
  auto good = env.ReadFileToString(seg);
  REQUIRE(good.ok());
  auto write = [&](const std::string& bytes) {
    auto w = env.NewWritableFile(seg, Env::OpenMode::kTruncate);
    REQUIRE(w.ok());
    REQUIRE((*w)->Append(bytes).ok());
    REQUIRE((*w)->Sync().ok());
  };
  // Without MANIFEST, Open reads every sealed segment (with it, a segment
  // it describes is read on first use, and its damage is a Corruption for
  // the operations that need it: restart_test).
  REQUIRE(env.DeleteFile(dir.Sub("db") + "/MANIFEST").ok());
  std::string bad = *good;
  bad[bad.size() - 1] ^= 0x5A;  // the trailer's magic
  bad[32 + 8 + 10] ^= 0x5A;     // the first record's meta
  write(bad);

  Status s = store->OpenNow();
  INFO(s.ToString());
  CHECK(s.IsUnavailable());
  CHECK(s.reason() == "store_damaged");
  CHECK(s.message().find("seg-000002.log: record at offset 32") != std::string::npos);
  CHECK(s.message().find(dir.Sub("db")) == std::string::npos);
  CHECK(store->OpenError().reason() == "store_damaged");
  CHECK(store->Head(*t).status().reason() == "store_damaged");

  write(*good);  // an operator restores the file
  CHECK(store->OpenNow().reason() == "store_damaged");  // not retried within the interval
  clock.Advance(po.disk_full_retry_micros);
  REQUIRE(store->OpenNow().ok());
  CHECK(store->OpenError().ok());
  CHECK(store->Damage().empty());
  std::string out;
  REQUIRE(store->ReadPage(*t, 1, *lsn, &out).ok());
  CHECK(out == page);
}

TEST_CASE("a closed store reports the durable end it had, and DurableEnd does not open it") {
  PoolFixture f;
  auto lsn = f.Commit(1);
  REQUIRE(lsn.ok());
  const storage::DurablePoint open = f.store->DurableEnd();
  CHECK(open.lsn == *lsn);
  CHECK(open.segment > 0);
  REQUIRE(f.store->TryClose());
  const storage::DurablePoint closed = f.store->DurableEnd();
  CHECK_FALSE(f.store->IsOpen());
  CHECK(closed.lsn == open.lsn);
  CHECK(closed.segment == open.segment);
  CHECK(closed.bytes == open.bytes);
}
