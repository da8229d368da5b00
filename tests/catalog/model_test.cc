// Randomized model test of branch-tree operations: create (at the head or at a
// past checkpoint), write via SQL, rollback, undo, reset from parent, promote,
// delete, reopen — checked against an in-memory model of every state's contents.
// Seed printed; BRANCHDB_SEED=<n> reproduces; BRANCHDB_MODEL_STEPS=<n> (default 300).
#include <map>
#include <random>

#include "tests/catalog/catalog_fixture.h"
#include "tests/util/test_env.h"

namespace branchdb::catalog::testing {
namespace {

using ::branchdb::testing::EnvU64;
using ::branchdb::testing::TestSeed;

using Contents = std::optional<std::map<int, int>>;  // nullopt: no table yet

std::string Render(const Contents& c) {
  if (!c) return "<none>";
  std::string s;
  for (auto& [k, v] : *c) s += (s.empty() ? "" : ",") + std::to_string(k) + "=" + std::to_string(v);
  return s;
}

struct Model {
  std::map<Lsn, Contents> states;          // every state we know of
  std::map<std::string, std::string> parent;  // live branches -> parent ("" root)
  std::map<std::string, std::vector<Lsn>> undo;  // previous heads of rollbacks/resets
};

TEST_CASE("model: random branch-tree operations match the model") {
  uint64_t seed = TestSeed("checkpoints model test");
  const int steps = static_cast<int>(EnvU64("BRANCHDB_MODEL_STEPS", 300));
  INFO("seed=" << seed);
  std::mt19937_64 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  CatalogFixture f;
  Model m;
  m.states[f.Head("production")] = std::nullopt;
  m.parent["production"] = "";
  int next_value = 1, next_name = 1;

  auto contents = [&](const std::string& b) -> std::string {
    if (f.Query(b, "SELECT count(*) FROM sqlite_schema WHERE name='kv'") == "0") return "<none>";
    return f.Query(b, "SELECT coalesce(group_concat(k || '=' || v, ','), '') FROM "
                      "(SELECT k, v FROM kv ORDER BY k)");
  };
  auto check = [&](const std::string& b) {
    Lsn head = f.Head(b);
    INFO("branch " << b << " head " << head);
    REQUIRE(m.states.count(head));
    CHECK(contents(b) == Render(m.states[head]));
  };
  auto random_branch = [&] {
    auto it = m.parent.begin();
    std::advance(it, pick(m.parent.size()));
    return it->first;
  };
  // A random checkpoint on b's history whose state the model knows.
  auto random_checkpoint = [&](const std::string& b) -> std::optional<Lsn> {
    auto page = f.cat->ListCheckpoints("acme", b, 30);
    REQUIRE(page.ok());
    std::vector<Lsn> known;
    for (auto& c : page->checkpoints) {
      if (m.states.count(c.lsn)) known.push_back(c.lsn);
    }
    if (known.empty()) return std::nullopt;
    return known[pick(known.size())];
  };

  for (int step = 0; step < steps; ++step) {
    std::string b = random_branch();
    int op = static_cast<int>(pick(100));
    INFO("step " << step << " op " << op << " branch " << b);
    if (op < 40) {  // write
      Lsn head = f.Head(b);
      Contents c = m.states[head];
      if (!c) c = std::map<int, int>();
      std::string sql = "CREATE TABLE IF NOT EXISTS kv(k INTEGER PRIMARY KEY, v INTEGER); ";
      if (!c->empty() && pick(3) == 0) {
        auto it = c->begin();
        std::advance(it, pick(c->size()));
        sql += "DELETE FROM kv WHERE k=" + std::to_string(it->first);
        c->erase(it);
      } else {
        int k = static_cast<int>(pick(12)), v = next_value++;
        sql += "INSERT OR REPLACE INTO kv VALUES(" + std::to_string(k) + "," + std::to_string(v) + ")";
        (*c)[k] = v;
      }
      Lsn lsn = f.Sql(b, sql);
      REQUIRE(lsn > head);
      CHECK(f.Head(b) == lsn);
      m.states[lsn] = c;
    } else if (op < 55) {  // create a branch at the head or at a past checkpoint
      std::string name = "b" + std::to_string(next_name++) + (pick(2) ? "/x" : "");
      BranchSource from;
      from.parent = b;
      if (pick(2)) {
        auto at = random_checkpoint(b);
        if (at) {
          from.kind = BranchSource::Kind::kParentLsn;
          from.lsn = *at;
        }
      }
      auto info = f.Branch(name, from);
      INFO(info.status().ToString());
      REQUIRE(info.ok());
      Lsn base = info->branch_point;
      REQUIRE(m.states.count(base));
      m.states[info->head] = m.states[base];
      m.parent[name] = b;
    } else if (op < 70) {  // rollback to a checkpoint
      auto at = random_checkpoint(b);
      if (!at) continue;
      auto r = f.cat->Rollback("acme", b, ToLsn(*at));
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      m.states[r->head_lsn] = m.states[*at];
      m.undo[b].push_back(r->previous_head_lsn);
    } else if (op < 78) {  // undo the latest rollback/reset
      if (m.undo[b].empty()) continue;
      Lsn prev = m.undo[b].back();
      m.undo[b].pop_back();
      auto r = f.cat->Rollback("acme", b, ToLsn(prev));
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      m.states[r->head_lsn] = m.states[prev];
    } else if (op < 86) {  // reset from parent
      auto r = f.cat->ResetFromParent("acme", b);
      if (m.parent[b].empty()) {
        CHECK(Reason(r.status()) == "no_parent");
        continue;
      }
      REQUIRE(r.ok());
      m.states[r->head_lsn] = m.states[r->target_lsn];
      m.undo[b].push_back(r->previous_head_lsn);
    } else if (op < 90) {  // promote into the parent (fast-forward only)
      auto r = f.cat->Promote("acme", b);
      if (m.parent[b].empty()) {
        CHECK(Reason(r.status()) == "no_parent");
        continue;
      }
      if (!r.ok()) {
        CHECK(Reason(r.status()) == "parent_moved");
        continue;
      }
      m.states[r->head_lsn] = m.states[r->target_lsn];
      m.undo[m.parent[b]].push_back(r->previous_head_lsn);
    } else if (op < 96) {  // delete (children re-parented to the parent)
      if (b == "production") continue;
      REQUIRE(f.cat->DeleteBranch("acme", b).ok());
      std::string gp = m.parent[b];
      for (auto& [name, p] : m.parent) {
        if (p == b) p = gp;
      }
      m.parent.erase(b);
      m.undo.erase(b);
    } else {
      f.Reopen();
    }
    // Parent links as modelled.
    auto list = f.cat->ListBranches("acme");
    REQUIRE(list.ok());
    REQUIRE(list->size() == m.parent.size());
    for (auto& bi : *list) CHECK(bi.parent == m.parent[bi.name]);
    if (m.parent.count(b)) check(b);
    check(random_branch());
  }
  for (auto& [name, p] : m.parent) check(name);
}

}  // namespace
}  // namespace branchdb::catalog::testing
