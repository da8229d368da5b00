// A full disk (hardening issue #13, item 12). A write that found no space was
// never acknowledged: it must not need a restart. The page store refuses
// writes with disk_full (not store_failed, not a size limit) until reopened;
// a pooled store (storage/store_pool.h) reopens itself, re-running recovery,
// once space is free. A failed fsync stays fail-stop, whatever its errno.
#include <catch2/catch.hpp>

#include "base/mock_clock.h"
#include "storage/store_pool.h"
#include "tests/util/fault_injection_env.h"
#include "tests/util/store_model.h"
#include "tests/util/temp_dir.h"

using namespace branchdb;
using namespace branchdb::testing;

namespace {

// A page store (plain or pooled) with one timeline holding one commit, on a
// FaultInjectionEnv whose clock is a MockClock.
struct DiskFullFixture {
  TempDir dir{FastTestDirBase()};
  MockClock clock;
  EnvWithClock clocked{Env::Default(), &clock};
  FaultInjectionEnv env{&clocked};
  storage::PageStoreOptions options;
  std::unique_ptr<storage::StorePool> pool;
  std::unique_ptr<storage::PageStore> store;
  storage::TimelineId t = 0;
  storage::Lsn head = 0;

  explicit DiskFullFixture(bool pooled) {
    options.env = &env;
    options.cache_bytes = 0;  // reads reach the files
    if (pooled) {
      storage::StorePoolOptions po;
      po.env = &env;
      po.disk_full_retry_micros = 1000000;
      pool = std::make_unique<storage::StorePool>(po);
      store = pool->Add(options, dir.Sub("db"));
    } else {
      auto opened = storage::PageStore::Open(options, dir.Sub("db"));
      REQUIRE(opened.ok());
      store = std::move(*opened);
    }
    auto created = store->CreateTimeline(0, "t");
    REQUIRE(created.ok());
    t = *created;
    head = Commit(1);
  }

  storage::Lsn Commit(uint64_t key) {
    std::string page = PageData(key);
    auto lsn = store->Commit(t, *store->Head(t), {{1, page}}, 1, "c");
    INFO(lsn.status().ToString());
    REQUIRE(lsn.ok());
    return *lsn;
  }
  Status TryCommit(uint64_t key) {
    std::string page = PageData(key);
    auto h = store->Head(t);
    REQUIRE(h.ok());
    auto lsn = store->Commit(t, *h, {{1, page}}, 1, "c");
    return lsn.ok() ? Status::OK() : lsn.status();
  }
  // The disk fills up: every later append fails, after writing half its data.
  void FillDisk() {
    FaultSpec spec;
    spec.type = FaultType::kNoSpace;
    spec.sticky = true;
    spec.op_mask = kOpAppend;
    spec.partial_write = true;
    env.FailNth(spec);
  }
  uint64_t PageKey(storage::Lsn lsn) {
    std::string out;
    Status s = store->ReadPage(t, 1, lsn, &out);
    INFO(s.ToString());
    REQUIRE(s.ok());
    auto key = PageKeyOf(out);
    REQUIRE(key.has_value());
    return *key;
  }
};

bool IsDiskFull(const Status& s) {
  return s.code() == StatusCode::kResourceExhausted && s.reason() == "disk_full" &&
         s.message().find("disk full") != std::string::npos;
}

}  // namespace

TEST_CASE("a write the disk had no room for is refused as disk_full, and the store stops writing "
          "until reopened",
          "[fault]") {
  DiskFullFixture f(/*pooled=*/false);
  f.FillDisk();
  Status first = f.TryCommit(2);
  INFO(first.ToString());
  CHECK(IsDiskFull(first));
  CHECK(first.message().find(f.dir.path()) == std::string::npos);  // no server path
  f.env.ClearFault();
  // Half of the failed write may be in the log: nothing may follow it.
  Status next = f.TryCommit(3);
  CHECK(IsDiskFull(next));
  CHECK(f.store->Health().reason() == "disk_full");
  CHECK(f.PageKey(f.head) == 1);  // reads go on
  f.store.reset();
  auto reopened = storage::PageStore::Open(f.options, f.dir.Sub("db"));
  REQUIRE(reopened.ok());
  f.store = std::move(*reopened);
  CHECK(f.store->Health().ok());
  CHECK(*f.store->Head(f.t) == f.head);  // the failed write is gone
  storage::Lsn after = f.Commit(4);
  CHECK(f.PageKey(after) == 4);
}

TEST_CASE("a pooled store reopens itself once space is freed, without a restart", "[fault]") {
  DiskFullFixture f(/*pooled=*/true);
  f.FillDisk();
  CHECK(IsDiskFull(f.TryCommit(2)));
  // Still full: the next attempt reopens (recovery) and fails again.
  CHECK(IsDiskFull(f.TryCommit(3)));
  CHECK(f.PageKey(f.head) == 1);
  // Space is freed; within the retry interval the store still refuses ...
  f.env.ClearFault();
  CHECK(IsDiskFull(f.TryCommit(4)));
  // ... and after it, it reopens and writes.
  f.clock.AdvanceSeconds(2);
  storage::Lsn after = f.Commit(5);
  CHECK(f.store->Health().ok());
  CHECK(f.PageKey(after) == 5);
  CHECK(f.PageKey(f.head) == 1);
  auto history = f.store->History(f.t, 0, 10);
  REQUIRE(history.ok());
  CHECK(history->size() == 3);  // create, the first commit, the one after: no failed one
  // And a restart agrees.
  f.store.reset();
  auto reopened = storage::PageStore::Open(f.options, f.dir.Sub("db"));
  REQUIRE(reopened.ok());
  CHECK(*(*reopened)->Head(f.t) == after);
}

TEST_CASE("a failed fsync stays fail-stop even when its error is ENOSPC, also in a pool",
          "[fault]") {
  for (bool pooled : {false, true}) {
    INFO("pooled " << pooled);
    DiskFullFixture f(pooled);
    f.env.FailNth(1, FaultType::kNoSpace, /*sticky=*/false, kOpSync);
    Status failed = f.TryCommit(2);
    CHECK_FALSE(failed.ok());
    CHECK(failed.reason() == "store_failed");
    f.env.ClearFault();
    f.clock.AdvanceSeconds(10);
    if (f.pool) CHECK(f.pool->CloseIdle(0) == 0);  // a failed store is never closed
    Status refused = f.TryCommit(3);
    CHECK(refused.IsIOError());
    CHECK(refused.reason() == "store_failed");
    CHECK(f.store->Health().reason() == "store_failed");
  }
}
