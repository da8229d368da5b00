// Store I/O failures under SQLite, in the way SQLite tests itself: fail the
// n-th file operation (append, sync or read) of a transaction, for n = 1, 2,
// 3... until none fires. Each time: the statement either succeeds or fails
// cleanly, the connection stays usable, and after reopening the store the
// branch is all-or-nothing (exactly the old or the new state; the new one if
// COMMIT was acknowledged) and passes integrity_check.
#include <catch2/catch.hpp>

#include <atomic>
#include <string>

#include "base/env.h"
#include "storage/vfs/vfs.h"
#include "tests/vfs/vfs_test_util.h"

namespace branchdb::testing {
namespace {

using storage::Lsn;

// Fails the n-th Append, Sync or Read after Arm(n); counts nothing unarmed.
class NthFailureEnv : public EnvWrapper {
 public:
  NthFailureEnv() : EnvWrapper(Env::Default()) {}
  void Arm(int n) {
    countdown_ = n;
    fired_ = false;
  }
  void Disarm() { countdown_ = 0; }
  bool fired() const { return fired_; }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override {
    auto file = target()->NewWritableFile(path, mode);
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(new Writable(std::move(file).value(), this));
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    auto file = target()->NewRandomAccessFile(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<RandomAccessFile>(new Readable(std::move(file).value(), this));
  }

 private:
  // True when this operation is the one to fail.
  bool Hit() {
    int n = countdown_.load();
    while (n > 0 && !countdown_.compare_exchange_weak(n, n - 1)) {
    }
    if (n == 1) {
      fired_ = true;
      return true;
    }
    return false;
  }

  class Writable : public WritableFile {
   public:
    Writable(std::unique_ptr<WritableFile> base, NthFailureEnv* env)
        : base_(std::move(base)), env_(env) {}
    Status Append(std::string_view data) override {
      if (env_->Hit()) return Status::IOError("injected append failure");
      return base_->Append(data);
    }
    Status Sync() override {
      if (env_->Hit()) return Status::IOError("injected fdatasync failure");
      return base_->Sync();
    }
    Status Close() override { return base_->Close(); }
    uint64_t Size() const override { return base_->Size(); }

   private:
    std::unique_ptr<WritableFile> base_;
    NthFailureEnv* env_;
  };

  class Readable : public RandomAccessFile {
   public:
    Readable(std::unique_ptr<RandomAccessFile> base, NthFailureEnv* env)
        : base_(std::move(base)), env_(env) {}
    Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
      if (env_->Hit()) return Status::IOError("injected read failure");
      return base_->Read(offset, n, scratch);
    }

   private:
    std::unique_ptr<RandomAccessFile> base_;
    NthFailureEnv* env_;
  };

  std::atomic<int> countdown_{0};
  std::atomic<bool> fired_{false};
};

TEST_CASE("the n-th store I/O of a transaction fails: all-or-nothing, for every n") {
  const std::string setup =
      "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b BLOB); CREATE INDEX ta ON t(a); "
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<60) "
      "INSERT INTO t SELECT i, i % 17, zeroblob(i * 30) FROM n";
  const std::string txn =
      "BEGIN; UPDATE t SET a = a + 1 WHERE id % 3 = 0; DELETE FROM t WHERE id % 5 = 0; "
      "INSERT INTO t(a, b) VALUES(99, zeroblob(9000)); COMMIT";
  int n = 1;
  int failed_commits = 0;
  for (;; ++n) {
    INFO("failing I/O operation " << n);
    NthFailureEnv env;
    StoreFixture fx(&env, /*cache_bytes=*/16 * 4096);  // a tiny cache: reads reach the files
    std::string before, after;
    {
      auto db = fx.Open(0, 10);
      MustExec(db.get(), setup);
    }
    fx.Reopen();  // drop the store's cached pages
    const Lsn head = fx.store()->Head(fx.timeline()).value();
    auto db = fx.Open(0, 10);
    before = Dump(db.get());

    env.Arm(n);
    ExecResult r = Exec(db.get(), txn);
    env.Disarm();
    const bool fired = env.fired();
    if (r.rc != SQLITE_OK) {
      ++failed_commits;
      CHECK(fired);
      INFO(r.message << " / " << storage::LastVfsError(db.get()).ToString());
      CHECK(!storage::LastVfsError(db.get()).ok());
      if (sqlite3_get_autocommit(db.get()) == 0) MustExec(db.get(), "ROLLBACK");
    }
    const bool acknowledged = r.rc == SQLITE_OK;
    // The connection stays usable and consistent.
    CHECK(IntegrityCheck(db.get()) == "ok");
    if (!acknowledged && fx.store()->Head(fx.timeline()).value() == head) {
      CHECK(Dump(db.get()) == before);
    }
    db.reset();

    // After reopening: exactly the old or the new state.
    fx.Reopen();
    {
      auto check = fx.Open();
      CHECK(IntegrityCheck(check.get()) == "ok");
      std::string now = Dump(check.get());
      // The state the transaction produces, computed on a scratch branch.
      auto scratch = fx.store()->CreateTimeline(fx.timeline(), head, "expected");
      REQUIRE(scratch.ok());
      auto sdb = fx.Open(*scratch);
      MustExec(sdb.get(), txn);
      after = Dump(sdb.get());
      if (acknowledged) {
        CHECK(now == after);
      } else {
        CHECK((now == before || now == after));
      }
    }
    if (!fired) break;
  }
  std::printf("vfs_fault_test: %d failure points, %d failed commits\n", n - 1, failed_commits);
  CHECK(n > 3);
  CHECK(failed_commits > 0);
}

}  // namespace
}  // namespace branchdb::testing
