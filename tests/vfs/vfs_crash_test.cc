// Crash test: a child process commits transactions through the VFS and
// reports each acknowledged COMMIT through a pipe; the parent kills it with
// SIGKILL at a random moment, reopens the store and checks that the database
// passes integrity_check, that every acknowledged transaction is there, and
// that every transaction present is whole (all N rows of its id) and was not
// one the child rolled back. BRANCHDB_CRASH_CYCLES sets the number of cycles
// (default 20); BRANCHDB_SEED reproduces the kill schedule.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <string>

#include "storage/vfs/vfs.h"
#include "tests/util/test_env.h"
#include "tests/vfs/vfs_test_util.h"

namespace branchdb::testing {
namespace {

using storage::PageStore;
using storage::TimelineId;

constexpr int kRowsPerTxn = 20;

// Transactions whose id is a multiple of this are rolled back by the child.
constexpr int64_t kRolledBackEvery = 7;

std::shared_ptr<PageStore> OpenStore(const std::string& dir) {
  auto store = PageStore::Open(storage::PageStoreOptions{}, dir);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return std::move(store).value();
}

// The child: runs transactions until killed. Never returns.
[[noreturn]] void RunChild(const std::string& dir, TimelineId timeline, int64_t first_txn,
                           uint64_t seed, int ack_fd) {
  auto store = PageStore::Open(storage::PageStoreOptions{}, dir);
  if (!store.ok()) _exit(2);
  storage::ConnectionOptions options;
  options.store = std::move(*store);
  options.timeline = timeline;
  options.cache_pages = 30;  // spills mid-transaction
  auto db = storage::OpenConnection(options);
  if (!db.ok()) _exit(3);
  std::mt19937_64 rng(seed);
  for (int64_t txn = first_txn;; ++txn) {
    std::string sql = "BEGIN";
    for (int i = 0; i < kRowsPerTxn; ++i) {
      int pad = std::uniform_int_distribution<int>(0, 9)(rng) == 0 ? 9000 : 50;
      sql += "; INSERT INTO t VALUES(" + std::to_string(txn) + ", " + std::to_string(i) +
             ", randomblob(" + std::to_string(pad) + "))";
    }
    if (txn % kRolledBackEvery == 0) {
      sql += "; ROLLBACK";
      if (sqlite3_exec(db->get(), sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) _exit(4);
      continue;
    }
    if (txn % 5 == 0) sql += "; DELETE FROM t WHERE txn < 0";  // touches more pages, no rows
    sql += "; COMMIT";
    if (sqlite3_exec(db->get(), sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) _exit(5);
    if (write(ack_fd, &txn, sizeof(txn)) != sizeof(txn)) _exit(6);
  }
}

TEST_CASE("kill -9 while committing loses no acknowledged transaction and tears none") {
  const uint64_t seed = TestSeed("vfs_crash_test");
  const int cycles = static_cast<int>(EnvU64("BRANCHDB_CRASH_CYCLES", 20));
  std::mt19937_64 rng(seed);
  TempDir dir;
  const std::string store_dir = dir.Sub("store");
  TimelineId timeline = 0;
  {
    auto store = OpenStore(store_dir);
    timeline = store->CreateTimeline(0, "crash").value();
    storage::ConnectionOptions options;
    options.store = store;
    options.timeline = timeline;
    auto db = storage::OpenConnection(options);
    REQUIRE(db.ok());
    MustExec(db->get(), "CREATE TABLE t(txn INTEGER, i INTEGER, pad BLOB); "
                        "CREATE INDEX t_txn ON t(txn)");
  }

  std::set<int64_t> acked;
  int64_t next_txn = 1;
  int killed_with_acks = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    const uint64_t child_seed = rng();
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      RunChild(store_dir, timeline, next_txn, child_seed, fds[1]);
    }
    close(fds[1]);
    // Let it run for a while (counted in acknowledgements or time), then kill.
    const int wait_acks = std::uniform_int_distribution<int>(0, 12)(rng);
    const int wait_ms = std::uniform_int_distribution<int>(50, 1500)(rng);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    int cycle_acks = 0;
    while (cycle_acks < wait_acks && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, 5) <= 0) continue;
      int64_t txn = 0;
      if (read(fds[0], &txn, sizeof(txn)) != sizeof(txn)) break;  // the child died
      acked.insert(txn);
      ++cycle_acks;
    }
    // Kill at a random point inside the next transaction(s).
    usleep(std::uniform_int_distribution<int>(0, 3000)(rng));
    kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO("cycle " << cycle << ": child status " << status);
    REQUIRE(WIFSIGNALED(status));  // it did not stop on an error of its own
    int64_t txn = 0;
    while (read(fds[0], &txn, sizeof(txn)) == sizeof(txn)) {
      acked.insert(txn);
      ++cycle_acks;
    }
    close(fds[0]);
    if (cycle_acks > 0) ++killed_with_acks;

    auto store = OpenStore(store_dir);
    storage::ConnectionOptions options;
    options.store = store;
    options.timeline = timeline;
    auto db = storage::OpenConnection(options);
    REQUIRE(db.ok());
    REQUIRE(IntegrityCheck(db->get()) == "ok");
    std::string rows = Query(db->get(), "SELECT txn, count(*), count(DISTINCT i) FROM t "
                                        "GROUP BY txn ORDER BY txn");
    std::set<int64_t> present;
    size_t start = 0;
    while (start < rows.size()) {
      size_t end = rows.find('\n', start);
      std::string line = rows.substr(start, end - start);
      start = end + 1;
      int64_t id = std::stoll(line.substr(0, line.find('|')));
      INFO("txn " << id << ": " << line);
      CHECK(line == std::to_string(id) + "|" + std::to_string(kRowsPerTxn) + "|" +
                        std::to_string(kRowsPerTxn));
      CHECK(id % kRolledBackEvery != 0);
      present.insert(id);
    }
    for (int64_t id : acked) {
      INFO("acknowledged txn " << id);
      CHECK(present.count(id) == 1);
    }
    if (!present.empty()) next_txn = std::max(next_txn, *present.rbegin() + 1);
    if (!acked.empty()) next_txn = std::max(next_txn, *acked.rbegin() + 1);
  }
  std::printf("vfs_crash_test: %d cycles, %zu acknowledged transactions, %d cycles killed after "
              "acknowledgements\n",
              cycles, acked.size(), killed_with_acks);
  CHECK(killed_with_acks > 0);
}

}  // namespace
}  // namespace branchdb::testing
