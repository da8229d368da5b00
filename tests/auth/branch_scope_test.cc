// Branch-scoped clients in auth/ alone: patterns (syntax, matching), the
// limits stored with a client (validated, persisted, carried into every
// token's principal), Authorize's refusals (branch_not_allowed naming the
// patterns; whole-project operations), and the branches:protect scope.
// The HTTP side (every route, MCP, CLI): tests/security/access_matrix_test.cc.
#include "tests/auth/auth_fixture.h"

namespace branchdb::auth::testing {
namespace {

ClientSpec Agent() {
  ClientSpec spec;
  spec.name = "agent";
  spec.scopes = {Scope::kBranchesWrite, Scope::kSqlWrite};
  spec.projects = {"shop"};
  spec.branches = {"agent/*", "scratch"};
  spec.max_branch_ttl_seconds = 3600;
  return spec;
}

TEST_CASE("a branch pattern matches its literal parts around at most one star") {
  CHECK(BranchPatternMatches("agent/*", "agent/x"));
  CHECK(BranchPatternMatches("agent/*", "agent/x/y"));
  CHECK(BranchPatternMatches("agent/*", "agent/"));
  CHECK_FALSE(BranchPatternMatches("agent/*", "agent"));
  CHECK_FALSE(BranchPatternMatches("agent/*", "production"));
  CHECK_FALSE(BranchPatternMatches("agent/*", "xagent/x"));
  CHECK(BranchPatternMatches("ci-pr-*", "ci-pr-42"));
  CHECK(BranchPatternMatches("*-scratch", "alex-scratch"));
  CHECK_FALSE(BranchPatternMatches("a*a", "a"));  // prefix and suffix may not overlap
  CHECK(BranchPatternMatches("production", "production"));
  CHECK_FALSE(BranchPatternMatches("production", "production2"));
  CHECK(AnyBranchPatternMatches({}, "anything"));
  CHECK(AnyBranchPatternMatches({"x", "agent/*"}, "agent/1"));
  CHECK_FALSE(AnyBranchPatternMatches({"x", "agent/*"}, "y"));
}

TEST_CASE("a branch pattern is a branch name with at most one star") {
  for (const char* ok : {"agent/*", "*", "ci-pr-*", "a.b_c-d/e", "*x"}) {
    INFO(ok);
    CHECK(ValidateBranchPattern(ok).ok());
  }
  for (const std::string& bad : {std::string(), std::string(129, 'a'), std::string("a**"),
                                std::string("*a*"), std::string("a b"), std::string("a?"),
                                std::string("é")}) {
    INFO(bad);
    Status st = ValidateBranchPattern(bad);
    CHECK(st.IsInvalidArgument());
    CHECK(st.reason() == "invalid_branch_pattern");
  }
}

TEST_CASE_METHOD(AuthFixture, "a client's branch limits are validated, kept and carried into its tokens") {
  auto created = svc().CreateClient(Agent());
  REQUIRE(created.ok());
  CHECK(created->info.branches == std::vector<std::string>{"agent/*", "scratch"});
  Reopen();  // persisted
  auto got = svc().GetClient(created->info.client_id);
  REQUIRE(got.ok());
  CHECK(got->branches == std::vector<std::string>{"agent/*", "scratch"});
  CHECK(got->max_branch_ttl_seconds == 3600);
  json shown = json::parse(got->ToJson());
  CHECK(shown["branches"] == json({"agent/*", "scratch"}));
  CHECK(shown["max_branch_ttl_seconds"] == 3600);
  BearerError e;
  auto p = svc().Authenticate("Bearer " + GetToken(*created), &e);
  REQUIRE(p.has_value());
  CHECK(p->branches == std::vector<std::string>{"agent/*", "scratch"});
  CHECK(p->max_branch_ttl_seconds == 3600);

  for (auto change : std::vector<std::function<void(ClientSpec&)>>{
           [](ClientSpec& s) { s.branches = {"a**"}; },
           [](ClientSpec& s) { s.branches = std::vector<std::string>(33, "x"); },
           [](ClientSpec& s) { s.max_branch_ttl_seconds = 59; },
           [](ClientSpec& s) { s.max_branch_ttl_seconds = -1; },
           [](ClientSpec& s) { s.max_branch_ttl_seconds = kMaxBranchTtlSeconds + 1; }}) {
    ClientSpec spec = Agent();
    change(spec);
    CHECK(svc().CreateClient(spec).status().IsInvalidArgument());
  }
}

TEST_CASE_METHOD(AuthFixture, "a branch-scoped client is refused every branch outside its patterns") {
  auto agent = svc().CreateClient(Agent());
  REQUIRE(agent.ok());
  BearerError e;
  auto p = svc().Authenticate("Bearer " + GetToken(*agent), &e);
  REQUIRE(p.has_value());
  CHECK(svc().Allows(*p, Operation::kSqlWrite, "shop", "agent/1"));
  CHECK(svc().Allows(*p, Operation::kDeleteBranch, "shop", "scratch"));
  CHECK(svc().Allows(*p, Operation::kListBranches, "shop", ""));  // filtered by the caller
  auto refused = svc().Authorize(*p, Operation::kSqlRead, "shop", "production");
  REQUIRE(refused.has_value());
  CHECK(refused->HttpStatus() == 403);
  CHECK(refused->api_code == "branch_not_allowed");
  CHECK(refused->branch_patterns == std::vector<std::string>{"agent/*", "scratch"});
  CHECK(refused->description.find("agent/*") != std::string::npos);
  // Operations on a whole project reach every branch: refused even with the scope.
  ClientSpec spec = Agent();
  spec.scopes = {Scope::kAdmin};
  auto scoped_admin = svc().CreateClient(spec);
  REQUIRE(scoped_admin.ok());
  auto q = svc().Authenticate("Bearer " + GetToken(*scoped_admin), &e);
  REQUIRE(q.has_value());
  for (Operation op : {Operation::kUpdateProject, Operation::kDeleteProject,
                       Operation::kCreateProject, Operation::kManageClients}) {
    auto r = svc().Authorize(*q, op, "shop", "");
    REQUIRE(r.has_value());
    CHECK(r->api_code == "branch_not_allowed");
  }
  CHECK(svc().Allows(*q, Operation::kGetProject, "shop", ""));
  // Another project: refused by the project list first.
  CHECK_FALSE(svc().Allows(*p, Operation::kSqlRead, "other", "agent/1"));
}

TEST_CASE_METHOD(AuthFixture, "a credential of a branch-scoped client stays within its patterns") {
  auto agent = svc().CreateClient(Agent());
  REQUIRE(agent.ok());
  BearerError e;
  auto p = svc().Authenticate("Bearer " + GetToken(*agent), &e);
  REQUIRE(p.has_value());
  CHECK_FALSE(svc().IssueDbCredential(*p, "shop", "production", kIds, DbAccess::kRead, 0, &e));
  CHECK(e.api_code == "branch_not_allowed");
  auto cred = svc().IssueDbCredential(*p, "shop", "agent/1", kIds, DbAccess::kReadWrite, 0, &e);
  REQUIRE(cred.has_value());
  CHECK(svc().Authenticate("Bearer " + cred->token, &e).has_value());
}

TEST_CASE("branches:protect is its own scope, implied by admin only") {
  auto parsed = ScopeSet::Parse("branches:protect");
  REQUIRE(parsed.ok());
  CHECK(parsed->Covers(Scope::kBranchesProtect));
  CHECK(RequiredScope(Operation::kProtectBranch) == Scope::kBranchesProtect);
  CHECK(ScopeSet{Scope::kAdmin}.Covers(Scope::kBranchesProtect));
  CHECK_FALSE(ScopeSet({Scope::kBranchesWrite, Scope::kSqlWrite, Scope::kProjectsWrite,
                        Scope::kBranchesPromoteProtected})
                  .Covers(Scope::kBranchesProtect));
  CHECK(ScopeSet::FromBits(ScopeSet::kAllBits).Has(Scope::kBranchesProtect));
}

}  // namespace
}  // namespace branchdb::auth::testing
