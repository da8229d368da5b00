// The ledger (catalog/ledger.h): audit events in order and filtered, paging,
// retention on a moved clock, project settings, branch owners and commit
// counts, all kept across a reopen.
#include "catalog/ledger.h"

#include <catch2/catch.hpp>

#include "base/mock_clock.h"
#include "tests/util/temp_dir.h"

namespace branchdb::catalog {
namespace {

constexpr int64_t kDay = 24ll * 3600 * 1000000;

struct LedgerFixture {
  testing::TempDir dir;
  MockClock clock{1'700'000'000'000'000};
  EnvWithClock env{Env::Default(), &clock};

  std::unique_ptr<Ledger> Open(int64_t retention_days = 90) {
    LedgerOptions o;
    o.env = &env;
    o.retention_micros = retention_days * kDay;
    auto l = Ledger::Open(o, dir.path());
    REQUIRE(l.ok());
    return std::move(*l);
  }
  // Events of project, then narrowed by the caller.
  static AuditQuery Of(const std::string& project) {
    AuditQuery q;
    q.project = project;
    return q;
  }
  static AuditEvent Event(const std::string& project, const std::string& client,
                          const std::string& op) {
    AuditEvent e;
    e.project = project;
    e.client_id = client;
    e.operation = op;
    e.status = 200;
    return e;
  }
};

TEST_CASE("ledger: events are kept in order, filtered, paged and survive a reopen", "[ledger]") {
  LedgerFixture f;
  {
    auto l = f.Open();
    for (const char* op : {"a", "b", "c"}) {
      AuditEvent e = LedgerFixture::Event("shop", "c1", op);
      REQUIRE(l->Append(&e).ok());
      CHECK(e.seq > 0);
      f.clock.AdvanceSeconds(1);
    }
    AuditEvent other = LedgerFixture::Event("shop", "c2", "d");
    REQUIRE(l->Append(&other).ok());
    AuditEvent server = LedgerFixture::Event("", "c1", "client.create");
    REQUIRE(l->Append(&server).ok());
  }
  auto l = f.Open();
  auto all = l->Query(LedgerFixture::Of("shop"));
  REQUIRE(all.ok());
  REQUIRE(all->size() == 4);
  CHECK((*all)[0].operation == "a");
  CHECK((*all)[3].operation == "d");
  AuditQuery by_client = LedgerFixture::Of("shop");
  by_client.client_id = "c1";
  auto c1 = l->Query(by_client);
  CHECK(c1->size() == 3);
  AuditQuery next = LedgerFixture::Of("shop");
  next.after_seq = (*all)[1].seq;
  next.limit = 1;
  auto page = l->Query(next);
  REQUIRE(page->size() == 1);
  CHECK((*page)[0].operation == "c");
  AuditQuery recent = LedgerFixture::Of("shop");
  recent.since_micros = (*all)[2].time_micros;
  auto since = l->Query(recent);
  CHECK(since->size() == 2);
  auto server_wide = l->Query(AuditQuery());
  REQUIRE(server_wide->size() == 1);
  CHECK((*server_wide)[0].operation == "client.create");
}

TEST_CASE("ledger: events older than the retention are pruned, newer ones kept", "[ledger]") {
  LedgerFixture f;
  auto l = f.Open(30);
  AuditEvent old = LedgerFixture::Event("shop", "c", "old");
  REQUIRE(l->Append(&old).ok());
  f.clock.Advance(20 * kDay);
  AuditEvent recent = LedgerFixture::Event("shop", "c", "recent");
  REQUIRE(l->Append(&recent).ok());
  auto none = l->Prune();
  REQUIRE(none.ok());
  CHECK(*none == 0);
  f.clock.Advance(11 * kDay);  // old is 31 days old, recent 11
  auto pruned = l->Prune();
  REQUIRE(pruned.ok());
  CHECK(*pruned == 1);
  auto left = l->Query(LedgerFixture::Of("shop"));
  REQUIRE(left->size() == 1);
  CHECK((*left)[0].operation == "recent");
}

TEST_CASE("ledger: settings, owners and commit counts are per project id and forgettable",
          "[ledger]") {
  LedgerFixture f;
  {
    auto l = f.Open();
    ProjectSettings s;
    s.quotas.max_branches = 3;
    s.quotas.max_bytes = int64_t{1} << 53;
    s.default_branch_ttl_seconds = 60;
    REQUIRE(l->PutSettings("p1", s).ok());
    REQUIRE(l->SetBranchOwner("p1", 7, "agent").ok());
    REQUIRE(l->AddCommits("p1", {{7, "agent", 1}, {1, "admin", 1}}).ok());
    REQUIRE(l->AddCommits("p1", {{7, "agent", 1}}).ok());  // added to the row, not replacing it
  }
  auto l = f.Open();
  auto s = l->GetSettings("p1");
  REQUIRE(s.ok());
  CHECK(s->quotas.max_branches == 3);
  CHECK(s->quotas.max_bytes == (int64_t{1} << 53));
  CHECK(!s->quotas.max_active_computes);
  CHECK(s->default_branch_ttl_seconds == 60);
  CHECK(l->GetSettings("p2")->quotas.empty());
  auto owners = l->BranchOwners("p1");
  REQUIRE(owners->size() == 1);
  CHECK((*owners)[0] == std::make_pair(uint64_t{7}, std::string("agent")));
  auto counts = l->CommitCounts("p1");
  REQUIRE(counts->size() == 2);
  int64_t agent = 0;
  for (const auto& c : *counts) agent += c.client_id == "agent" ? c.commits : 0;
  CHECK(agent == 2);
  REQUIRE(l->ForgetProject("p1").ok());
  CHECK(l->GetSettings("p1")->quotas.empty());
  CHECK(l->BranchOwners("p1")->empty());
  CHECK(l->CommitCounts("p1")->empty());
}

}  // namespace
}  // namespace branchdb::catalog
