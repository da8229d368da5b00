// The lifetime of a project's store, and per-project locking (issue #14):
//  - a connection or store held across DeleteProject keeps the store alive
//    but fails every call with project_not_found; the directory goes with the
//    last holder; a project re-created under the same name meanwhile is empty;
//  - while one project's store fsyncs, calls on other projects (and on the
//    project list) run: no catalog-wide lock is held across a project's I/O;
//  - a stress of threads that create, write, branch, diff, collect, promote,
//    import and reap on projects that other threads delete and re-create, run
//    under AddressSanitizer (the default test build) and ThreadSanitizer
//    (`make tsan`): no crash, no race, only the expected refusals.
// Seed printed; BRANCHDB_SEED=<n> reproduces the stress's choices (not its
// interleaving); BRANCHDB_STRESS_OPS=<n> sets the operations per thread.
#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/mock_clock.h"
#include "catalog/catalog.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

namespace branchdb::catalog {
namespace {

using ::branchdb::testing::EnvU64;
using ::branchdb::testing::TestSeed;

using branchdb::testing::TempDir;

// Runs a SQL script on db; the VFS's error when the store refused, else a
// Status carrying SQLite's code in its message (reason "sqlite").
Status Run(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err != nullptr ? err : "";
  sqlite3_free(err);
  if (rc == SQLITE_OK) return Status::OK();
  if (Status vfs = storage::LastVfsError(db); !vfs.ok()) return vfs;
  if ((rc & 0xff) == SQLITE_BUSY) return Status::Conflict("busy: " + msg, "busy");
  return Status::IOError("sqlite rc=" + std::to_string(rc) + ": " + msg, "sqlite");
}

// One value of a query (or "" on error).
std::string Scalar(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  }
  sqlite3_finalize(s);
  return out;
}

// A small SQLite file (page size 4096), as an import's body.
std::string SmallDatabaseFile() {
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  sqlite3_exec(db,
               "PRAGMA page_size=4096; CREATE TABLE imported(x); "
               "INSERT INTO imported VALUES(1),(2),(3);",
               nullptr, nullptr, nullptr);
  sqlite3_int64 n = 0;
  unsigned char* bytes = sqlite3_serialize(db, "main", &n, 0);
  std::string out(reinterpret_cast<const char*>(bytes), static_cast<size_t>(n));
  sqlite3_free(bytes);
  sqlite3_close(db);
  return out;
}

// An Env whose file syncs under one directory call a hook first (on the
// syncing thread, with whatever locks the caller holds).
class SyncHookEnv final : public EnvWrapper {
 public:
  explicit SyncHookEnv(Env* target) : EnvWrapper(target) {}

  // Calls hook once, at the next sync of a file under dir.
  void OnNextSync(std::string dir, std::function<void()> hook) {
    std::lock_guard<std::mutex> l(mu_);
    dir_ = std::move(dir);
    hook_ = std::move(hook);
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override {
    auto file = EnvWrapper::NewWritableFile(path, mode);
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(new File(this, path, std::move(*file)));
  }

 private:
  class File final : public WritableFile {
   public:
    File(SyncHookEnv* env, std::string path, std::unique_ptr<WritableFile> target)
        : env_(env), path_(std::move(path)), target_(std::move(target)) {}
    Status Append(std::string_view data) override { return target_->Append(data); }
    Status Sync() override {
      env_->BeforeSync(path_);
      return target_->Sync();
    }
    Status Close() override { return target_->Close(); }
    uint64_t Size() const override { return target_->Size(); }

   private:
    SyncHookEnv* const env_;
    const std::string path_;
    std::unique_ptr<WritableFile> target_;
  };

  void BeforeSync(const std::string& path) {
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!hook_ || path.rfind(dir_ + "/", 0) != 0) return;
      hook = std::move(hook_);
      hook_ = nullptr;
    }
    hook();
  }

  std::mutex mu_;
  std::string dir_;              // guarded by mu_
  std::function<void()> hook_;   // guarded by mu_
};

CatalogOptions Options(Env* env) {
  CatalogOptions o;
  o.env = env;
  o.reaper_interval_micros = 0;
  o.gc_interval_micros = 0;
  return o;
}

std::string ProjectDir(const std::string& data_dir, const std::string& id) {
  return data_dir + "/projects/" + id;
}

std::set<std::string> ProjectDirs(const std::string& data_dir) {
  auto children = Env::Default()->GetChildren(data_dir + "/projects");
  REQUIRE(children.ok());
  return std::set<std::string>(children->begin(), children->end());
}

storage::SqliteHandle MustOpen(Catalog& cat, const std::string& project, const std::string& branch,
                               bool read_only = false) {
  ConnectionRequest r;
  r.read_only = read_only;
  auto db = cat.OpenBranchConnection(project, branch, r);
  INFO(db.status().ToString());
  REQUIRE(db.ok());
  return std::move(*db);
}

TEST_CASE("a connection and a store held across DeleteProject fail with project_not_found, "
          "and the directory goes with the last of them") {
  TempDir dir(branchdb::testing::FastTestDirBase());
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  auto cat = Catalog::Open(Options(&env), dir.path());
  REQUIRE(cat.ok());
  auto old = (*cat)->CreateProject("shop", {});
  REQUIRE(old.ok());
  const std::string old_dir = ProjectDir(dir.path(), old->id);
  {
    auto db = MustOpen(**cat, "shop", "production");
    REQUIRE(Run(db.get(), "CREATE TABLE orders(id INTEGER PRIMARY KEY, total)").ok());
  }
  REQUIRE((*cat)->CreateBranch("shop", "dev", {}).ok());

  auto writer = MustOpen(**cat, "shop", "production");
  auto reader = MustOpen(**cat, "shop", "dev", /*read_only=*/true);
  auto store = (*cat)->Store("shop");
  REQUIRE(store.ok());
  auto head = (*cat)->GetBranch("shop", "production");
  REQUIRE(head.ok());

  REQUIRE((*cat)->DeleteProject("shop").ok());
  CHECK((*cat)->GetProject("shop").status().reason() == "project_not_found");
  CHECK(Env::Default()->FileExists(old_dir));  // still held

  // The name is free at once; the new project is empty, in a new directory.
  auto fresh = (*cat)->CreateProject("shop", {});
  REQUIRE(fresh.ok());
  CHECK(fresh->id != old->id);
  auto branches = (*cat)->ListBranches("shop");
  REQUIRE(branches.ok());
  REQUIRE(branches->size() == 1);
  CHECK(branches->front().name == "production");
  {
    auto db = MustOpen(**cat, "shop", "production", /*read_only=*/true);
    CHECK(Scalar(db.get(), "SELECT count(*) FROM sqlite_schema") == "0");
  }

  // Whoever still holds the old store can neither write nor read it.
  Status write = Run(writer.get(), "INSERT INTO orders(total) VALUES(1)");
  CHECK(write.reason() == "project_not_found");
  Status read = Run(reader.get(), "SELECT count(*) FROM orders");
  CHECK(read.reason() == "project_not_found");
  std::string page;
  CHECK((*store)->ReadPageAt(head->head, 1, &page).reason() == "project_not_found");
  CHECK((*store)->CreateTimeline(storage::Lsn{0}, "").status().reason() == "project_not_found");

  writer.reset();
  reader.reset();
  CHECK(Env::Default()->FileExists(old_dir));  // the store is still held
  store = Status::NotFound("let go");
  CHECK_FALSE(Env::Default()->FileExists(old_dir));
  CHECK(ProjectDirs(dir.path()) == std::set<std::string>{fresh->id});
  // The new project is untouched by all of it.
  auto db = MustOpen(**cat, "shop", "production");
  CHECK(Run(db.get(), "CREATE TABLE t(x); INSERT INTO t VALUES(1)").ok());
}

TEST_CASE("a connection may outlive the catalog: it keeps its store working until it closes") {
  TempDir dir(branchdb::testing::FastTestDirBase());
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  storage::SqliteHandle db;
  {
    auto cat = Catalog::Open(Options(&env), dir.path());
    REQUIRE(cat.ok());
    REQUIRE((*cat)->CreateProject("shop", {}).ok());
    db = MustOpen(**cat, "shop", "production");
  }
  CHECK(Run(db.get(), "CREATE TABLE t(x); INSERT INTO t VALUES(7)").ok());
  CHECK(Scalar(db.get(), "SELECT x FROM t") == "7");
  db.reset();
  auto cat = Catalog::Open(Options(&env), dir.path());
  REQUIRE(cat.ok());
  auto again = MustOpen(**cat, "shop", "production", /*read_only=*/true);
  CHECK(Scalar(again.get(), "SELECT x FROM t") == "7");
}

TEST_CASE("while one project's store fsyncs, calls on other projects run to completion") {
  TempDir dir(branchdb::testing::FastTestDirBase());
  SyncHookEnv env(Env::Default());
  auto opened = Catalog::Open(Options(&env), dir.path());
  REQUIRE(opened.ok());
  Catalog& cat = **opened;
  auto slow = cat.CreateProject("slow", {});
  REQUIRE(slow.ok());
  REQUIRE(cat.CreateProject("other", {}).ok());
  {
    auto db = MustOpen(cat, "other", "production");
    REQUIRE(Run(db.get(), "CREATE TABLE t(x); INSERT INTO t VALUES(1)").ok());
  }
  REQUIRE(cat.CreateBranch("other", "dev", {}).ok());

  // Inside the fsync of "slow"'s CreateBranch (its project lock held), on the
  // same thread: any catalog-wide lock held across it would deadlock here.
  std::vector<std::string> failures;
  bool ran = false;
  auto expect = [&](const Status& st, const char* what) {
    if (!st.ok()) failures.push_back(std::string(what) + ": " + st.ToString());
  };
  env.OnNextSync(ProjectDir(dir.path(), slow->id), [&] {
    ran = true;
    expect(cat.GetProject("slow").status(), "GetProject(slow)");
    if (cat.ListProjects().size() != 2) failures.push_back("ListProjects");
    expect(cat.ListBranches("other", /*with_usage=*/true).status(), "ListBranches");
    expect(cat.CreateBranch("other", "feature", {}).status(), "CreateBranch");
    expect(cat.ListCheckpoints("other", "production").status(), "ListCheckpoints");
    auto production = cat.GetBranch("other", "production");
    expect(production.status(), "GetBranch");
    if (production.ok()) {
      expect(cat.LabelCheckpoint("other", "production", production->head, "v1"),
             "LabelCheckpoint");
    }
    {
      auto db = cat.OpenBranchConnection("other", "dev");
      expect(db.status(), "OpenBranchConnection");
      if (db.ok()) expect(Run(db->get(), "INSERT INTO t VALUES(2)"), "commit");
    }
    expect(cat.DiffData("other", {"production", {}}, {"dev", {}}).status(), "DiffData");
    expect(cat.Gc("other").status(), "Gc");
    expect(cat.CreateProject("third", {}).status(), "CreateProject");
    expect(cat.DeleteProject("third"), "DeleteProject");
  });
  REQUIRE(cat.CreateBranch("slow", "dev", {}).ok());
  CHECK(ran);
  std::string all;
  for (const std::string& f : failures) all += f + "\n";
  INFO(all);
  CHECK(failures.empty());
  auto other = cat.ListBranches("other");
  REQUIRE(other.ok());
  CHECK(other->size() == 3);
}

// --- The stress -------------------------------------------------------------------

// Refusals a call may meet when other threads delete what it works on, or
// write where it writes: anything else is a failure of the test.
bool Expected(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk:
    case StatusCode::kNotFound:       // project / branch / checkpoint / state gone
    case StatusCode::kAlreadyExists:  // project_exists, branch_exists
    case StatusCode::kConflict:       // head_moved, concurrent_write, busy (writer slot)
      return true;
    case StatusCode::kFailedPrecondition:  // promote of a branch whose parent moved or went
      return st.reason() == "parent_moved" || st.reason() == "no_parent";
    default:
      return false;
  }
}

class Stress {
 public:
  Stress(Catalog& cat, MockClock& clock, uint64_t seed) : cat_(cat), clock_(clock), seed_(seed) {}

  void Worker(int index, int ops) {
    std::mt19937_64 rng(seed_ + static_cast<uint64_t>(index));
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    for (int i = 0; i < ops; ++i) {
      const std::string project = kProjects[pick(kProjects.size())];
      const std::string branch = pick(2) == 0 ? "production" : kBranches[pick(kBranches.size())];
      Step(pick(100), project, branch, rng);
    }
  }

  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> l(mu_);
    return failures_;
  }
  // Calls that succeeded, by kind; "kind=ok/refused ..." for the log.
  int Succeeded(const std::string& what) {
    std::lock_guard<std::mutex> l(mu_);
    return ok_[what];
  }
  std::string Summary() {
    std::lock_guard<std::mutex> l(mu_);
    std::set<std::string> kinds;
    for (const auto& [k, n] : ok_) kinds.insert(k);
    for (const auto& [k, n] : refused_) kinds.insert(k);
    std::string out;
    for (const std::string& k : kinds) {
      out += k + "=" + std::to_string(ok_[k]) + "/" + std::to_string(refused_[k]) + " ";
    }
    return out;
  }

  inline static const std::vector<std::string> kProjects = {"p0", "p1", "p2"};
  inline static const std::vector<std::string> kBranches = {"b0", "b1", "b2"};

 private:
  void Note(const std::string& what, const Status& st) {
    std::lock_guard<std::mutex> l(mu_);
    (st.ok() ? ok_ : refused_)[what]++;
    if (!Expected(st)) failures_.push_back(what + ": " + st.ToString());
  }
  void Fail(const std::string& what) {
    std::lock_guard<std::mutex> l(mu_);
    failures_.push_back(what);
  }

  void Step(size_t roll, const std::string& project, const std::string& branch,
            std::mt19937_64& rng) {
    if (roll < 10) {
      Note("CreateProject", cat_.CreateProject(project, {}).status());
      return;
    }
    if (roll < 17) {
      Note("DeleteProject", cat_.DeleteProject(project, /*force=*/true));
      return;
    }
    if (roll < 30) {
      CreateBranchOptions o;
      if (rng() % 3 == 0) o.ttl_micros = kMicrosPerSecond;  // for the reaper
      if (branch != "production") Note("CreateBranch", cat_.CreateBranch(project, branch, o).status());
      return;
    }
    if (roll < 52) {
      Write(project, branch, rng);
      return;
    }
    if (roll < 62) {
      DataDiffOptions o;
      o.limit = 10;
      if (rng() % 2) {
        Note("DiffData", cat_.DiffData(project, {"production", {}}, {branch, {}}, o).status());
      } else {
        Note("DiffSchema", cat_.DiffSchema(project, {"production", {}}, {branch, {}}).status());
      }
      return;
    }
    if (roll < 69) {
      Note("Gc", cat_.Gc(project).status());
      return;
    }
    if (roll < 74) {
      clock_.Advance(2 * kMicrosPerSecond);  // TTL branches expire; the reaper thread GCs
      Note("ReapExpired", cat_.ReapExpired().status());
      return;
    }
    if (roll < 79) {
      if (branch != "production") Note("Promote", cat_.Promote(project, branch).status());
      return;
    }
    if (roll < 84) {
      Export(project);
      return;
    }
    if (roll < 89) {
      Note("ListBranches", cat_.ListBranches(project, /*with_usage=*/true).status());
      Note("ListCheckpoints", cat_.ListCheckpoints(project, "production", 20).status());
      return;
    }
    if (roll < 94) {
      Import(project, rng);
      return;
    }
    DeleteUnderConnection(project);
  }

  // A script as the SQL route runs it: one transaction on the branch's head.
  void Write(const std::string& project, const std::string& branch, std::mt19937_64& rng) {
    auto db = cat_.OpenBranchConnection(project, branch);
    Note("OpenBranchConnection", db.status());
    if (!db.ok()) return;
    Annotation a;
    a.kind = "sql";
    a.summary = "stress";
    Note("SetNextCommitAnnotation", storage::SetNextCommitAnnotation(db->get(), EncodeAnnotation(a)));
    const std::string sql = "BEGIN; CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v BLOB); "
                            "INSERT INTO t(v) VALUES(randomblob(" +
                            std::to_string(100 + rng() % 6000) + ")); COMMIT;";
    Note("sql", Run(db->get(), sql));
  }

  // What the export route does: the store held while its pages are read.
  void Export(const std::string& project) {
    auto store = cat_.Store(project);
    Note("Store", store.status());
    if (!store.ok()) return;
    auto b = cat_.GetBranch(project, "production", /*with_usage=*/false);
    Note("GetBranch", b.status());
    if (!b.ok()) return;
    auto size = (*store)->DbSizeAt(b->head);
    Note("DbSizeAt", size.status());
    std::string page;
    for (uint32_t p = 1; size.ok() && p <= *size; ++p) {
      Status st = (*store)->ReadPageAt(b->head, p, &page);
      Note("ReadPageAt", st);
      if (!st.ok()) break;
    }
  }

  void Import(const std::string& project, std::mt19937_64& rng) {
    static const std::string file = SmallDatabaseFile();
    const std::string name = "imported" + std::to_string(rng() % 3);
    auto w = cat_.BeginImport(project, name, {});
    Note("BeginImport", w.status());
    if (!w.ok()) return;
    const size_t half = file.size() / storage::kPageSize / 2 * storage::kPageSize;
    if (half > 0) {
      Status st = (*w)->Append(std::string_view(file).substr(0, half));
      Note("ImportWriter::Append", st);
      if (!st.ok()) return;
    }
    Note("ImportWriter::Finish",
         (*w)->Finish(std::string_view(file).substr(half), "stress import").status());
  }

  // Opens a connection, deletes the project itself, then uses the connection:
  // once its own DeleteProject returned OK, the connection must be refused.
  void DeleteUnderConnection(const std::string& project) {
    auto db = cat_.OpenBranchConnection(project, "production");
    Note("OpenBranchConnection", db.status());
    if (!db.ok()) return;
    Status deleted = cat_.DeleteProject(project, /*force=*/true);
    Note("DeleteProject", deleted);
    Status st = Run(db->get(), "CREATE TABLE IF NOT EXISTS after_delete(x)");
    if (deleted.ok() && st.reason() != "project_not_found") {
      Fail("a connection to a deleted project was not refused: " + st.ToString());
    }
    Note("sql after delete", st);
  }

  Catalog& cat_;
  MockClock& clock_;
  const uint64_t seed_;
  std::mutex mu_;
  std::map<std::string, int> ok_, refused_;  // guarded by mu_
  std::vector<std::string> failures_;        // guarded by mu_
};

TEST_CASE("stress: projects deleted and re-created while diffs, GC, SQL, branch creation, "
          "promotion, import and the reaper run on them") {
  const uint64_t seed = TestSeed("lifetime stress test");
  const int ops = static_cast<int>(EnvU64("BRANCHDB_STRESS_OPS", 300));
  INFO("seed=" << seed);
  TempDir dir(branchdb::testing::FastTestDirBase());
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  CatalogOptions o;
  o.env = &env;
  o.reaper_interval_micros = 1000;            // real time: the reaper thread runs throughout
  o.gc_interval_micros = 2 * kMicrosPerSecond;  // mock time: every second reap step
  std::set<std::string> live_ids;
  {
    auto opened = Catalog::Open(o, dir.path());
    REQUIRE(opened.ok());
    Catalog& cat = **opened;
    for (const std::string& p : Stress::kProjects) REQUIRE(cat.CreateProject(p, {}).ok());

    Stress stress(cat, clock, seed);
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) threads.emplace_back([&stress, t, ops] { stress.Worker(t, ops); });
    for (std::thread& t : threads) t.join();
    std::cout << "calls ok/refused: " << stress.Summary() << "\n";
    // The stress did run on live projects, not only into refusals.
    CHECK(stress.Succeeded("sql") > 0);
    CHECK(stress.Succeeded("DiffData") + stress.Succeeded("DiffSchema") > 0);
    CHECK(stress.Succeeded("DeleteProject") > 0);
    std::vector<std::string> failures = stress.failures();
    std::string all;
    for (const std::string& f : failures) all += f + "\n";
    INFO(all);
    CHECK(failures.empty());

    // Each name, deleted and re-created while a connection and the store of
    // the old project are held, comes back empty.
    for (const std::string& p : Stress::kProjects) {
      (void)cat.CreateProject(p, {});
      auto old_db = MustOpen(cat, p, "production");
      REQUIRE(Run(old_db.get(), "CREATE TABLE IF NOT EXISTS leftover(x); "
                                "INSERT INTO leftover VALUES(1)").ok());
      (void)cat.CreateBranch(p, "leftover", {});
      auto old_store = cat.Store(p);
      REQUIRE(old_store.ok());
      REQUIRE(cat.DeleteProject(p, /*force=*/true).ok());
      REQUIRE(cat.CreateProject(p, {}).ok());
      auto branches = cat.ListBranches(p);
      REQUIRE(branches.ok());
      CHECK(branches->size() == 1);
      auto db = MustOpen(cat, p, "production", /*read_only=*/true);
      CHECK(Scalar(db.get(), "SELECT count(*) FROM sqlite_schema") == "0");
      CHECK(Run(old_db.get(), "INSERT INTO leftover VALUES(2)").reason() == "project_not_found");
    }
    for (const ProjectInfo& p : cat.ListProjects()) live_ids.insert(p.id);
  }
  // The catalog is gone (its reaper joined), and with it every holder of a
  // store: exactly the live projects' directories remain.
  CHECK(ProjectDirs(dir.path()) == live_ids);
  // And the catalog opens again on what the stress left.
  auto reopened = Catalog::Open(Options(&env), dir.path());
  REQUIRE(reopened.ok());
  CHECK((*reopened)->ListProjects().size() == Stress::kProjects.size());
}

}  // namespace
}  // namespace branchdb::catalog
