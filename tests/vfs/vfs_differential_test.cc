// Differential test: the same random SQL workload runs on native SQLite files
// and on branchdb timelines. After every step both sides must give the same
// result code, the same contents (schema and rows), and pass integrity_check.
// Branches fork at random points (sqlite3_backup to a new file natively,
// CreateTimeline on ours) and are reset onto each other (backup over the file
// natively, ResetTimeline on ours, under the open connection). At the end,
// every branch is read at every LSN of the store (time travel) and must equal
// the native dump recorded when that state was current.
//
// BRANCHDB_SEED reproduces a run; BRANCHDB_VFS_STEPS sets its length.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "storage/vfs/vfs.h"
#include "tests/util/test_env.h"
#include "tests/vfs/vfs_test_util.h"

namespace branchdb::testing {
namespace {

using storage::Lsn;
using storage::TimelineId;

struct Branch {
  std::string native_path;
  storage::SqliteHandle native;
  storage::SqliteHandle ours;
  TimelineId timeline = 0;
  // State of the branch's history: record LSN -> dump hash of that state.
  std::map<Lsn, uint64_t> history;
};

class Workload {
 public:
  explicit Workload(uint64_t seed) : rng_(seed) {}

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  std::string Table() { return "t" + std::to_string(Uniform(0, 3)); }

  std::string Text() {
    std::string s;
    int n = Uniform(0, 60);
    for (int i = 0; i < n; ++i) s += static_cast<char>('a' + Uniform(0, 25));
    return "'" + s + "'";
  }

  std::string Blob() {
    int kind = Uniform(0, 9);
    if (kind < 3) return "NULL";
    int n = kind < 7 ? Uniform(1, 200) : Uniform(3000, 40000);  // the latter spans overflow pages
    static const char* kHex = "0123456789abcdef";
    std::string s = "x'";
    uint32_t x = static_cast<uint32_t>(rng_());
    for (int i = 0; i < n; ++i) {
      x = x * 1103515245u + 12345u;
      unsigned char c = static_cast<unsigned char>(x >> 16);
      s += kHex[c >> 4];
      s += kHex[c & 15];
    }
    return s + "'";
  }

  std::string Statement() {
    std::string t = Table();
    switch (Uniform(0, 19)) {
      case 0:
      case 1:
        return "CREATE TABLE IF NOT EXISTS " + t +
               "(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c BLOB)";
      case 2:
        return "CREATE INDEX IF NOT EXISTS " + t + "_a ON " + t + "(a)";
      case 3:
        return "CREATE INDEX IF NOT EXISTS " + t + "_ba ON " + t + "(b, a)";
      case 4:
        return "DROP INDEX IF EXISTS " + t + (Chance(0.5) ? "_a" : "_ba");
      case 5:
        return Chance(0.15) ? "DROP TABLE IF EXISTS " + t
                           : "ALTER TABLE " + t + " ADD COLUMN d" + std::to_string(Uniform(0, 3)) +
                                 " INTEGER DEFAULT " + std::to_string(Uniform(0, 9));
      case 6:
      case 7:
      case 8:
      case 9: {
        std::string sql = "INSERT INTO " + t + "(a, b, c) VALUES ";
        int rows = Uniform(1, 8);
        for (int i = 0; i < rows; ++i) {
          if (i > 0) sql += ", ";
          sql += "(" + std::to_string(Uniform(0, 999)) + ", " + Text() + ", " + Blob() + ")";
        }
        return sql;
      }
      case 10:
        return "INSERT OR REPLACE INTO " + t + "(id, a, b, c) VALUES (" +
               std::to_string(Uniform(1, 60)) + ", " + std::to_string(Uniform(0, 999)) + ", " +
               Text() + ", " + Blob() + ")";
      case 11:
        return "INSERT INTO " + t + "(a, b, c) SELECT a + 1, b, c FROM " + t + " WHERE a % 13 = " +
               std::to_string(Uniform(0, 12));
      case 12:
      case 13:
        return "UPDATE " + t + " SET a = a + 7, b = b || 'u' WHERE a % 5 = " +
               std::to_string(Uniform(0, 4));
      case 14:
        return "UPDATE " + t + " SET c = " + Blob() + " WHERE id = (SELECT max(id) FROM " + t + ")";
      case 15:
      case 16:
        return "DELETE FROM " + t + " WHERE a < " + std::to_string(Uniform(0, 150));
      case 17:
        return "DELETE FROM " + t + " WHERE id % 3 = " + std::to_string(Uniform(0, 2));
      case 18:
        return "INSERT INTO " + t + "(id, a) VALUES (1, 1)";  // may violate the primary key
      default:
        return "SELECT count(*), sum(length(c)) FROM " + t;
    }
  }

  // One step: a statement, a transaction (committed or rolled back, maybe
  // with a savepoint rolled back or released inside), or a VACUUM.
  std::string Step() {
    int kind = Uniform(0, 19);
    if (kind < 8) return Statement();
    if (kind == 8) return "VACUUM";
    std::string sql = "BEGIN";
    int n = Uniform(1, 6);
    for (int i = 0; i < n; ++i) sql += "; " + Statement();
    if (Chance(0.4)) {
      sql += "; SAVEPOINT sp";
      int m = Uniform(1, 4);
      for (int i = 0; i < m; ++i) sql += "; " + Statement();
      sql += Chance(0.5) ? "; ROLLBACK TO sp; RELEASE sp" : "; RELEASE sp";
      sql += "; " + Statement();
    }
    sql += Chance(0.25) ? "; ROLLBACK" : "; COMMIT";
    return sql;
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
};

storage::SqliteHandle OpenNative(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  storage::SqliteHandle db(raw);
  REQUIRE(rc == SQLITE_OK);
  return db;
}

// Copies the whole database src into dst (both native connections).
void Backup(sqlite3* src, sqlite3* dst) {
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
  REQUIRE(b != nullptr);
  REQUIRE(sqlite3_backup_step(b, -1) == SQLITE_DONE);
  REQUIRE(sqlite3_backup_finish(b) == SQLITE_OK);
}

TEST_CASE("random SQL on branches matches native SQLite, at every step and every LSN") {
  uint64_t seed = TestSeed("vfs_differential_test");
  const int steps = static_cast<int>(EnvU64("BRANCHDB_VFS_STEPS", 300));
  Workload w(seed);
  StoreFixture fx;
  TempDir native_dir;
  std::vector<std::unique_ptr<Branch>> branches;

  auto open_ours = [&](TimelineId t) {
    auto db = fx.Open(t, w.Chance(0.4) ? 12 : 2000);  // small caches spill mid-transaction
    // The commit point never depends on xSync, which synchronous=OFF skips.
    if (w.Chance(0.5)) MustExec(db.get(), "PRAGMA synchronous=OFF");
    return db;
  };
  {
    auto b = std::make_unique<Branch>();
    b->native_path = native_dir.Sub("b0.db");
    b->native = OpenNative(b->native_path);
    b->timeline = fx.timeline();
    b->ours = open_ours(b->timeline);
    b->history[fx.store()->Head(b->timeline).value()] = Fnv64(Dump(b->native.get()));
    branches.push_back(std::move(b));
  }
  int forks = 0, resets = 0, commits = 0;
  // Start with every table, so that fewer statements fail on a missing one.
  for (int i = 0; i < 4; ++i) {
    const std::string sql = "CREATE TABLE t" + std::to_string(i) +
                            "(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c BLOB)";
    Branch& b = *branches[0];
    MustExec(b.native.get(), sql);
    MustExec(b.ours.get(), sql);
    b.history[storage::LastCommitLsn(b.ours.get())] = Fnv64(Dump(b.native.get()));
  }

  for (int step = 0; step < steps; ++step) {
    const double r = std::uniform_real_distribution<double>(0, 1)(w.rng());
    if (r < 0.04 && branches.size() < 5) {  // fork a branch at its head
      Branch& src = *branches[w.Uniform(0, static_cast<int>(branches.size()) - 1)];
      auto b = std::make_unique<Branch>();
      b->native_path = native_dir.Sub("b" + std::to_string(branches.size()) + ".db");
      b->native = OpenNative(b->native_path);
      Backup(src.native.get(), b->native.get());
      Lsn head = fx.store()->Head(src.timeline).value();
      auto t = fx.store()->CreateTimeline(src.timeline, head, "fork");
      REQUIRE(t.ok());
      b->timeline = *t;
      b->ours = open_ours(b->timeline);
      b->history = src.history;
      b->history[fx.store()->Head(b->timeline).value()] = Fnv64(Dump(b->native.get()));
      branches.push_back(std::move(b));
      ++forks;
      continue;
    }
    if (r < 0.06 && branches.size() > 1) {  // reset a branch onto another's head
      int i = w.Uniform(0, static_cast<int>(branches.size()) - 1);
      int j = w.Uniform(0, static_cast<int>(branches.size()) - 1);
      if (i == j) continue;
      Branch& dst = *branches[i];
      Branch& src = *branches[j];
      Backup(src.native.get(), dst.native.get());
      Lsn head = fx.store()->Head(dst.timeline).value();
      auto lsn = fx.store()->ResetTimeline(dst.timeline, head,
                                           fx.store()->Head(src.timeline).value(), "reset");
      REQUIRE(lsn.ok());
      dst.history = src.history;
      dst.history[*lsn] = Fnv64(Dump(dst.native.get()));
      ++resets;
      // The open connection of dst must now see src's state.
      REQUIRE(Dump(dst.ours.get()) == Dump(dst.native.get()));
      continue;
    }

    Branch& b = *branches[w.Uniform(0, static_cast<int>(branches.size()) - 1)];
    const std::string sql = w.Step();
    const Lsn lsn_before = fx.store()->LastLsn();
    ExecResult native = Exec(b.native.get(), sql);
    ExecResult ours = Exec(b.ours.get(), sql);
    INFO("seed " << seed << " step " << step << " timeline " << b.timeline << ": "
                 << sql.substr(0, 400));
    INFO("native: " << native.rc << " " << native.message << " / ours: " << ours.rc << " "
                    << ours.message << " " << storage::LastVfsError(b.ours.get()).ToString());
    REQUIRE((native.rc & 0xff) == (ours.rc & 0xff));
    REQUIRE(sqlite3_get_autocommit(b.native.get()) == sqlite3_get_autocommit(b.ours.get()));
    if (sqlite3_get_autocommit(b.native.get()) == 0) {  // a failed statement left it open
      MustExec(b.native.get(), "ROLLBACK");
      MustExec(b.ours.get(), "ROLLBACK");
    }
    const std::string native_dump = Dump(b.native.get());
    const std::string our_dump = Dump(b.ours.get());
    REQUIRE(our_dump == native_dump);
    REQUIRE(IntegrityCheck(b.ours.get()) == "ok");
    REQUIRE(IntegrityCheck(b.native.get()) == "ok");
    const Lsn lsn_after = fx.store()->LastLsn();
    REQUIRE(lsn_after - lsn_before <= 1);  // a transaction is at most one commit
    if (lsn_after != lsn_before) {
      REQUIRE(storage::LastCommitLsn(b.ours.get()) == lsn_after);
      b.history[lsn_after] = Fnv64(native_dump);
      ++commits;
    } else {
      REQUIRE(Fnv64(native_dump) == b.history.rbegin()->second);  // no commit, no change
    }
  }
  std::printf("vfs_differential_test: %d steps, %d commits, %d forks, %d resets\n", steps, commits,
              forks, resets);

  // Time travel: every branch at every LSN of the store.
  const Lsn last = fx.store()->LastLsn();
  int checked = 0;
  for (const auto& b : branches) {
    for (Lsn lsn = 1; lsn <= last; ++lsn) {
      auto it = b->history.upper_bound(lsn);
      storage::ConnectionOptions options;
      options.store = fx.store();
      options.timeline = b->timeline;
      options.as_of = lsn;
      auto db = storage::OpenConnection(options);
      INFO("seed " << seed << " timeline " << b->timeline << " as of " << lsn);
      if (it == b->history.begin()) {
        CHECK(db.status().IsNotFound());
        continue;
      }
      REQUIRE(db.ok());
      --it;
      CHECK(storage::SnapshotLsn(db->get()) == it->first);
      REQUIRE(Fnv64(Dump(db->get())) == it->second);
      ++checked;
    }
  }
  CHECK(checked > 0);
}

}  // namespace
}  // namespace branchdb::testing
