// Crash test: a child process (fork) writes, creates branches and rolls back
// through the Catalog, reporting each acknowledged action through a pipe; the
// parent kills it with SIGKILL at a random point, reopens the catalog and
// checks that every acknowledged action holds: each acknowledged commit is a
// checkpoint with its request id, each acknowledged branch exists, and every
// branch whose last action was acknowledged has exactly that head; no orphan
// timelines remain. Seed printed; BRANCHDB_SEED reproduces the kill points;
// BRANCHDB_CRASH_CYCLES (default 10).
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "catalog/catalog.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

namespace branchdb::catalog::testing {
namespace {

using ::branchdb::testing::EnvU64;
using ::branchdb::testing::TestSeed;

CatalogOptions Options() {
  CatalogOptions o;
  o.reaper_interval_micros = 0;
  o.gc_interval_micros = 0;
  return o;
}

void Report(int fd, const std::string& line) {
  std::string l = line + "\n";
  if (write(fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) _exit(3);
}

[[noreturn]] void Fail(int fd, const std::string& what) {
  Report(fd, "E " + what);
  _exit(2);
}

// The child: acts until killed. Never returns.
[[noreturn]] void ChildMain(const std::string& dir, int fd, uint64_t seed, int cycle) {
  auto cat = Catalog::Open(Options(), dir);
  if (!cat.ok()) Fail(fd, "open " + cat.status().ToString());
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 100000; ++i) {
    auto list = (*cat)->ListBranches("acme");
    if (!list.ok()) Fail(fd, "list");
    const BranchInfo& b = (*list)[rng() % list->size()];
    int op = static_cast<int>(rng() % 10);
    Report(fd, "I " + b.name);
    if (op < 6) {
      std::string req = "c" + std::to_string(cycle) + "-" + std::to_string(i);
      auto db = (*cat)->OpenBranchConnection("acme", b.name);
      if (!db.ok()) Fail(fd, "conn " + db.status().ToString());
      Annotation a;
      a.request_id = req;
      a.summary = "insert";
      if (!storage::SetNextCommitAnnotation(db->get(), EncodeAnnotation(a)).ok()) Fail(fd, "annot");
      // Rollbacks may reach the state before the table existed.
      std::string sql = "BEGIN; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT);"
                        " INSERT INTO t(v) VALUES('" + req + "'); COMMIT";
      if (sqlite3_exec(db->get(), sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
        Fail(fd, std::string("sql ") + sqlite3_errmsg(db->get()));
      }
      Report(fd, "A " + b.name + " " + std::to_string(storage::LastCommitLsn(db->get())) + " " + req);
    } else if (op < 7 && list->size() < 8) {
      std::string name = "c" + std::to_string(cycle) + "/b" + std::to_string(i);
      CreateBranchOptions o;
      o.from.parent = b.name;
      Report(fd, "I " + name);
      auto nb = (*cat)->CreateBranch("acme", name, o);
      if (!nb.ok()) Fail(fd, "create " + nb.status().ToString());
      Report(fd, "A " + name + " " + std::to_string(nb->head) + " -");
    } else {
      auto page = (*cat)->ListCheckpoints("acme", b.name, 10);
      if (!page.ok() || page->checkpoints.empty()) Fail(fd, "list checkpoints");
      Lsn to = page->checkpoints[rng() % page->checkpoints.size()].lsn;
      RollbackTarget t;
      t.lsn = to;
      auto r = (*cat)->Rollback("acme", b.name, t);
      if (!r.ok()) Fail(fd, "rollback " + r.status().ToString());
      Report(fd, "A " + b.name + " " + std::to_string(r->head_lsn) + " -");
    }
  }
  _exit(0);
}

std::optional<BranchInfo> FindBranch(Catalog& cat, const std::string& name) {
  auto list = cat.ListBranches("acme");
  REQUIRE(list.ok());
  for (const BranchInfo& b : *list) {
    if (b.name == name) return b;
  }
  return std::nullopt;
}

struct Ack {
  std::string branch;
  Lsn lsn = 0;
  std::string request_id;  // "-" unless a commit
};

TEST_CASE("crash: acknowledged actions survive kill -9 of the process") {
  uint64_t seed = TestSeed("checkpoints crash test");
  const int cycles = static_cast<int>(EnvU64("BRANCHDB_CRASH_CYCLES", 10));
  INFO("seed=" << seed);
  std::mt19937_64 rng(seed);
  branchdb::testing::TempDir dir(branchdb::testing::FastTestDirBase());
  {
    auto cat = Catalog::Open(Options(), dir.path());
    REQUIRE(cat.ok());
    REQUIRE((*cat)->CreateProject("acme", {}).ok());
    auto db = (*cat)->OpenBranchConnection("acme", "production");
    REQUIRE(db.ok());
    REQUIRE(sqlite3_exec(db->get(), "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", nullptr,
                         nullptr, nullptr) == SQLITE_OK);
  }
  std::vector<Ack> all_commits;
  std::set<std::string> acked_branches{"production"};
  for (int cycle = 0; cycle < cycles; ++cycle) {
    INFO("cycle " << cycle);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    uint64_t child_seed = rng();
    size_t kill_after = 2 + rng() % 25;  // acknowledgements before the kill
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      ChildMain(dir.path(), fds[1], child_seed, cycle);
    }
    close(fds[1]);
    FILE* in = fdopen(fds[0], "r");
    REQUIRE(in != nullptr);
    std::vector<std::string> lines;
    size_t acks = 0;
    char buf[512];
    bool killed = false;
    while (fgets(buf, sizeof buf, in)) {
      lines.emplace_back(buf);
      if (lines.back()[0] == 'A' && ++acks >= kill_after && !killed) {
        kill(pid, SIGKILL);
        killed = true;
      }
    }
    if (!killed) kill(pid, SIGKILL);
    fclose(in);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    // Replay the report: which branch's last event is an acknowledgement.
    std::map<std::string, std::optional<Ack>> last;  // nullopt: an action in flight
    for (const std::string& line : lines) {
      INFO(line);
      REQUIRE(line[0] != 'E');
      std::istringstream is(line.substr(2));
      if (line[0] == 'I') {
        std::string b;
        is >> b;
        last[b] = std::nullopt;
      } else if (line[0] == 'A') {
        Ack a;
        is >> a.branch >> a.lsn >> a.request_id;
        last[a.branch] = a;
        acked_branches.insert(a.branch);
        if (a.request_id != "-") all_commits.push_back(a);
      }
    }
    auto cat = Catalog::Open(Options(), dir.path());
    REQUIRE(cat.ok());
    for (const Ack& a : all_commits) {
      auto c = (*cat)->GetCheckpoint("acme", "production", a.lsn);
      INFO("commit " << a.lsn << " " << a.request_id);
      REQUIRE(c.ok());
      CHECK(c->annotation.request_id == a.request_id);
    }
    for (const std::string& b : acked_branches) CHECK(FindBranch(**cat, b).has_value());
    for (const auto& [b, a] : last) {
      if (!a) continue;
      auto info = FindBranch(**cat, b);
      REQUIRE(info.has_value());
      INFO("branch " << b);
      CHECK(info->head == a->lsn);
    }
    auto store = (*cat)->Store("acme");
    REQUIRE(store.ok());
    auto branches = (*cat)->ListBranches("acme");
    REQUIRE(branches.ok());
    CHECK((*store)->ListTimelines().size() == branches->size());
  }
}

}  // namespace
}  // namespace branchdb::catalog::testing
