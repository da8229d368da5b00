// The C++ SDK against a real `branchdb serve`: every operation of the API
// through branchdb::client::Client, with typed results checked against what
// the server did.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "branchdb/client.h"
#include "test_server.h"

namespace branchdb::client::testing {
namespace {

// The value of a Result, failing the test (with the error) when there is none.
template <typename T>
T Must(Result<T> r) {
  INFO((r.ok() ? std::string() : r.error().ToString()));
  REQUIRE(r.ok());
  return std::move(r).value();
}

void MustOk(const Status& s) {
  INFO((s.ok() ? std::string() : s.error().ToString()));
  REQUIRE(s.ok());
}

// The error of a Result that must have failed.
template <typename T>
Error MustFail(const Result<T>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error();
}

SqlRequest Q(std::string sql, Json params = nullptr) {
  SqlRequest r;
  r.sql = std::move(sql);
  r.params = std::move(params);
  return r;
}

CreateBranchRequest NewBranch(std::string name, std::optional<std::string> parent = std::nullopt) {
  CreateBranchRequest r;
  r.name = std::move(name);
  r.parent = std::move(parent);
  return r;
}

// A project of its own on the shared server, and an admin client.
class Fixture {
 public:
  Fixture() : server(TestServer::Shared()), c(server.AdminClient()), project(UniqueName("p")) {
    CreateProjectRequest req;
    req.name = project;
    Must(c->CreateProject(req));
  }

  SqlResult Sql(const std::string& branch, const std::string& sql, Json params = nullptr) {
    return Must(c->Sql(project, branch, Q(sql, std::move(params))));
  }
  int64_t Count(const std::string& branch, const std::string& table = "t") {
    return Sql(branch, "SELECT count(*) FROM " + table).Scalar().get<int64_t>();
  }

  TestServer& server;
  std::unique_ptr<Client> c;
  std::string project;
};

TEST_CASE_METHOD(Fixture, "projects: create, list, get, update, delete", "[sdk_cpp]") {
  Project p = Must(c->GetProject(project));
  CHECK(p.name == project);
  CHECK(p.default_branch == "production");
  CHECK_FALSE(p.id.empty());
  CHECK(p.raw["name"] == project);

  auto list = Must(c->ListProjects());
  CHECK(std::any_of(list.begin(), list.end(), [&](const Project& x) { return x.name == project; }));

  UpdateProjectRequest up;
  up.restore_window_seconds = 3600;
  CHECK(Must(c->UpdateProject(project, up)).restore_window_seconds == 3600);
  CHECK(Must(c->GetProject(project)).restore_window_seconds == 3600);

  // Durability: set, refused ("remote" without the server's bucket), the default again.
  UpdateProjectRequest local;
  local.durability = std::string("local");
  CHECK(Must(c->UpdateProject(project, local)).durability == "local");
  UpdateProjectRequest remote;
  remote.durability = std::string("remote");
  Error no_bucket = MustFail(c->UpdateProject(project, remote));
  CHECK(no_bucket.IsBadRequest());
  CHECK(no_bucket.message().find("object_storage") != std::string::npos);
  UpdateProjectRequest back;
  back.durability = std::optional<std::string>();
  CHECK(Must(c->UpdateProject(project, back)).durability == "local");
  CHECK(Must(c->GetProject(project)).durability == "local");

  CreateProjectRequest again;
  again.name = project;
  Error exists = MustFail(c->CreateProject(again));
  CHECK(exists.IsConflict());
  CHECK(exists.code() == "project_exists");

  // A protected branch blocks the delete unless forced.
  UpdateBranchRequest prot;
  prot.is_protected = true;
  Must(c->UpdateBranch(project, "production", prot));
  Status refused = c->DeleteProject(project);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().IsConflict());
  CHECK(refused.error().code() == "branch_protected");
  MustOk(c->DeleteProject(project, /*force=*/true));
  Error gone = MustFail(c->GetProject(project));
  CHECK(gone.IsNotFound());
  CHECK(gone.code() == "project_not_found");
  CHECK_FALSE(gone.request_id().empty());
}

TEST_CASE_METHOD(Fixture, "branches: create at points, list, get, update, delete", "[sdk_cpp]") {
  SqlResult first = Sql("production", "CREATE TABLE t(x)");
  REQUIRE(first.lsn.has_value());
  Sql("production", "INSERT INTO t VALUES (1)");

  CreateBranchRequest at_lsn = NewBranch("dev/at-lsn", "production");
  at_lsn.at = BranchPoint::AtLsn(*first.lsn);
  Branch b = Must(c->CreateBranch(project, at_lsn));
  CHECK(b.name == "dev/at-lsn");
  CHECK(b.parent == std::optional<std::string>("production"));
  CHECK(b.branch_point_lsn == *first.lsn);
  CHECK(Count("dev/at-lsn") == 0);
  CHECK(Count("production") == 1);

  CreateBranchRequest at_cp = NewBranch("at-checkpoint");
  at_cp.at = BranchPoint::AtCheckpoint(*first.lsn);
  CHECK(Must(c->CreateBranch(project, at_cp)).branch_point_lsn == *first.lsn);

  LabelCheckpointRequest label;
  label.label = "schema-only";
  label.lsn = *first.lsn;
  Must(c->LabelCheckpoint(project, "production", label));
  CreateBranchRequest at_label = NewBranch("at-label");
  at_label.at = BranchPoint::AtLabel("schema-only");
  CHECK(Must(c->CreateBranch(project, at_label)).branch_point_lsn == *first.lsn);

  CreateBranchRequest at_time = NewBranch("at-time");
  at_time.at = BranchPoint::AtTimestamp(FormatTime(std::chrono::system_clock::now()));
  CHECK(Count(Must(c->CreateBranch(project, at_time)).name) == 1);

  CreateBranchRequest two = NewBranch("two-points");
  two.at.lsn = 1;
  two.at.label = "x";
  Error e = MustFail(c->CreateBranch(project, two));
  CHECK(e.IsInvalidArgument());
  CHECK(e.attempts() == 0);

  CreateBranchRequest ttl = NewBranch("ttl");
  ttl.ttl_seconds = 600;
  ttl.is_protected = true;
  Branch t = Must(c->CreateBranch(project, ttl));
  CHECK(t.expires_at.has_value());
  CHECK(t.is_protected);

  auto names = Must(c->ListBranches(project));
  std::vector<std::string> got;
  for (auto& x : names) got.push_back(x.name);
  CHECK(got == std::vector<std::string>{"at-checkpoint", "at-label", "at-time", "dev/at-lsn",
                                        "production", "ttl"});
  CHECK(Must(c->GetBranch(project, "dev/at-lsn")).name == "dev/at-lsn");
  CHECK(Must(c->GetBranch(project, "production")).is_default);

  UpdateBranchRequest clear;
  clear.clear_expires_at = true;
  clear.idle_timeout_seconds = 0;
  Branch cleared = Must(c->UpdateBranch(project, "ttl", clear));
  CHECK_FALSE(cleared.expires_at.has_value());
  CHECK(cleared.idle_timeout_seconds == 0);
  UpdateBranchRequest back;
  back.reset_idle_timeout = true;
  back.ttl_seconds = 60;
  Branch b2 = Must(c->UpdateBranch(project, "ttl", back));
  CHECK(b2.idle_timeout_seconds == 300);
  CHECK(b2.expires_at.has_value());

  Status protected_delete = c->DeleteBranch(project, "ttl");
  REQUIRE_FALSE(protected_delete.ok());
  CHECK(protected_delete.error().code() == "branch_protected");
  UpdateBranchRequest rename;
  rename.is_protected = false;
  rename.name = "feature/renamed";
  CHECK(Must(c->UpdateBranch(project, "ttl", rename)).name == "feature/renamed");
  CHECK(MustFail(c->GetBranch(project, "ttl")).code() == "branch_not_found");
  MustOk(c->DeleteBranch(project, "feature/renamed"));
  Status again = c->DeleteBranch(project, "feature/renamed");
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().IsNotFound());

  // A name like a sub-resource is still one branch (encoded '/').
  Must(c->CreateBranch(project, NewBranch("feature")));
  Must(c->CreateBranch(project, NewBranch("feature/schema")));
  CHECK(Must(c->GetBranch(project, "feature/schema")).name == "feature/schema");
}

TEST_CASE_METHOD(Fixture, "sql: parameters, values, read-only, errors", "[sdk_cpp]") {
  Sql("production", "CREATE TABLE t(a INTEGER, b TEXT, c BLOB, d REAL)");
  std::string bytes("\x00\x01\xfe\xff payload", 12);
  Sql("production", "INSERT INTO t VALUES (?, ?, ?, ?)",
      Json::array({9007199254740993LL, "text", Blob(bytes), 1.5}));
  // Positional parameters are consumed across statements; named need an object.
  Error mixed = MustFail(c->Sql(project, "production",
                                Q("INSERT INTO t VALUES (:a, :b, NULL, NULL)", Json::array({1}))));
  CHECK(mixed.IsApi());
  SqlResult named = Sql("production", "INSERT INTO t VALUES (:a, :b, NULL, NULL)",
                        Json{{"a", 2}, {"b", "named"}});
  REQUIRE(named.lsn.has_value());
  CHECK(named.results.size() == 1);
  CHECK(named.results[0].rows_affected == 1);

  SqlResult sel = Sql("production", "SELECT a, b, c, d FROM t ORDER BY rowid");
  REQUIRE(sel.results.size() == 1);
  const StatementResult& r = sel.results[0];
  CHECK(r.columns == std::vector<std::string>{"a", "b", "c", "d"});
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0][0].get<int64_t>() == 9007199254740993LL);  // exact beyond 2^53
  CHECK(r.rows[0][1] == "text");
  CHECK(BlobBytes(r.rows[0][2]) == std::optional<std::string>(bytes));
  CHECK(r.rows[0][3].get<double>() == 1.5);
  CHECK(r.rows[1][2].is_null());
  CHECK_FALSE(sel.lsn.has_value());  // a read changes nothing
  CHECK(sel.snapshot_lsn == *named.lsn);
  CHECK(Sql("production", "SELECT 42").Scalar() == 42);

  SqlRequest ro = Q("INSERT INTO t VALUES (3, 'x', NULL, NULL)");
  ro.read_only = true;
  Error read_only = MustFail(c->Sql(project, "production", ro));
  CHECK(read_only.IsPermissionDenied());
  CHECK(read_only.code() == "read_only");

  Error bad = MustFail(c->Sql(project, "production", Q("SELECT 1; SELECT * FROM nope")));
  CHECK(bad.IsBadRequest());
  CHECK(bad.http_status() == 400);
  CHECK(bad.code() == "sql_error");
  CHECK(bad.details()["statement"] == 1);

  Error forbidden = MustFail(c->Sql(project, "production", Q("PRAGMA journal_mode=OFF")));
  CHECK(forbidden.IsPermissionDenied());
  CHECK(forbidden.code() == "sql_forbidden");

  Error params = MustFail(c->Sql(project, "production", Q("SELECT ?", 5)));
  CHECK(params.IsInvalidArgument());

  CHECK(MustFail(c->Sql(project, "no-such-branch", Q("SELECT 1"))).code() == "branch_not_found");
  CHECK(MustFail(c->Sql("no-such-project", "production", Q("SELECT 1"))).IsNotFound());
}

TEST_CASE_METHOD(Fixture, "checkpoints, labels, rollback to every target, undo, reset",
                 "[sdk_cpp]") {
  Sql("production", "CREATE TABLE t(x INTEGER)");
  Branch work = Must(c->CreateBranch(project, NewBranch("work", "production")));
  std::vector<uint64_t> lsns;
  for (int i = 0; i < 3; ++i) {
    lsns.push_back(*Sql("work", "INSERT INTO t VALUES (?)", Json::array({i})).lsn);
  }

  ListCheckpointsRequest page_req;
  page_req.limit = 2;
  CheckpointPage page = Must(c->ListCheckpoints(project, "work", page_req));
  REQUIRE(page.checkpoints.size() == 2);
  CHECK(page.checkpoints[0].lsn == lsns[2]);
  CHECK(page.checkpoints[0].kind == "sql");
  CHECK(page.checkpoints[0].summary.find("INSERT INTO t") != std::string::npos);
  REQUIRE(page.next.has_value());
  // Paging through everything gives what one big page gives.
  std::vector<uint64_t> paged;
  std::optional<std::string> cursor;
  do {
    ListCheckpointsRequest req;
    req.limit = 2;
    req.cursor = cursor;
    CheckpointPage p = Must(c->ListCheckpoints(project, "work", req));
    for (auto& cp : p.checkpoints) paged.push_back(cp.lsn);
    cursor = p.next;
  } while (cursor);
  ListCheckpointsRequest all_req;
  all_req.limit = 1000;
  std::vector<uint64_t> all;
  bool inherited = false;
  for (auto& cp : Must(c->ListCheckpoints(project, "work", all_req)).checkpoints) {
    all.push_back(cp.lsn);
    inherited = inherited || cp.inherited;
  }
  CHECK(paged == all);
  CHECK(inherited);

  MoveResult moved = Must(c->Rollback(project, "work", RollbackTarget::ToCheckpoint(lsns[0])));
  CHECK(moved.previous_head_lsn == lsns[2]);
  CHECK(Count("work") == 1);
  MoveResult undone = Must(c->Rollback(project, "work", RollbackTarget::ToLsn(moved.previous_head_lsn)));
  CHECK(undone.target_lsn == std::optional<uint64_t>(lsns[2]));
  CHECK(Count("work") == 3);

  MoveResult back = Must(c->Rollback(project, "work", RollbackTarget::Actions(2)));
  CHECK(Count("work") == 1);
  Must(c->Rollback(project, "work", RollbackTarget::ToLsn(back.previous_head_lsn)));
  CHECK(Count("work") == 3);

  LabelCheckpointRequest three;
  three.label = "three";
  Checkpoint head_label = Must(c->LabelCheckpoint(project, "work", three));
  CHECK(head_label.lsn == Must(c->GetBranch(project, "work")).head_lsn);
  LabelCheckpointRequest one;
  one.label = "one";
  one.lsn = lsns[0];
  Checkpoint labelled = Must(c->LabelCheckpoint(project, "work", one));
  CHECK(labelled.lsn == lsns[0]);
  CHECK(std::find(labelled.labels.begin(), labelled.labels.end(), "one") != labelled.labels.end());
  Must(c->Rollback(project, "work", RollbackTarget::ToLabel("one")));
  CHECK(Count("work") == 1);
  Must(c->Rollback(project, "work", RollbackTarget::ToLabel("three")));
  CHECK(Count("work") == 3);
  CHECK(MustFail(c->Rollback(project, "work", RollbackTarget::ToLabel("no-such-label"))).IsNotFound());

  // By time: the moment between two commits.
  std::string between = FormatTime(std::chrono::system_clock::now());
  while (FormatTime(std::chrono::system_clock::now()) == between) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  Sql("work", "INSERT INTO t VALUES (99)");
  MoveResult by_time = Must(c->Rollback(project, "work", RollbackTarget::ToTimestamp(between)));
  CHECK(Count("work") == 3);
  Must(c->Rollback(project, "work", RollbackTarget::ToLsn(by_time.previous_head_lsn)));
  CHECK(Count("work") == 4);

  RollbackTarget none;
  CHECK(MustFail(c->Rollback(project, "work", none)).IsInvalidArgument());
  RollbackTarget both = RollbackTarget::ToLsn(1);
  both.actions = 1;
  CHECK(MustFail(c->Rollback(project, "work", both)).IsInvalidArgument());

  // Reset to the parent's head, and undo it.
  MoveResult reset = Must(c->Reset(project, "work"));
  CHECK(Count("work") == 0);
  Must(c->Rollback(project, "work", RollbackTarget::ToLsn(reset.previous_head_lsn)));
  CHECK(Count("work") == 4);
  CHECK(Count("production") == 0);
  CHECK(MustFail(c->Reset(project, "production")).IsConflict());  // no parent
  (void)work;
}

TEST_CASE_METHOD(Fixture, "schema and diff", "[sdk_cpp]") {
  Sql("production", "CREATE TABLE t(x INTEGER PRIMARY KEY, y TEXT)");
  Branch work = Must(c->CreateBranch(project, NewBranch("work")));
  Sql("work", "INSERT INTO t VALUES (1, 'a'); CREATE TABLE extra(id INTEGER PRIMARY KEY)");

  SchemaInfo schema = Must(c->GetSchema(project, "work"));
  std::vector<std::string> tables;
  for (auto& o : schema.objects) {
    if (o.type == "table") tables.push_back(o.name);
  }
  std::sort(tables.begin(), tables.end());
  CHECK(tables == std::vector<std::string>{"extra", "t"});
  SchemaInfo old = Must(c->GetSchema(project, "work", work.head_lsn));
  CHECK(old.lsn == work.head_lsn);
  CHECK(old.objects.size() == 1);

  DiffResult sd = Must(c->Diff(project, "work"));
  CHECK(sd.kind == "schema");
  CHECK(std::any_of(sd.objects.begin(), sd.objects.end(), [](const SchemaObjectDiff& o) {
    return o.name == "extra" && o.change == "added";
  }));

  DiffRequest data;
  data.kind = "data";
  data.base = "production";
  data.tables = {"t"};
  DiffResult dd = Must(c->Diff(project, "work", data));
  CHECK(dd.kind == "data");
  CHECK(dd.to_lsn == Must(c->GetBranch(project, "work")).head_lsn);
  REQUIRE(dd.tables.size() == 1);
  CHECK(dd.tables[0].table == "t");
  CHECK(dd.tables[0].rows_added == 1);
  REQUIRE(dd.tables[0].rows.size() == 1);
  CHECK(dd.tables[0].rows[0].op == "insert");
  CHECK(dd.tables[0].rows[0].new_row == Json{{"x", 1}, {"y", "a"}});

  DiffRequest bad;
  bad.kind = "pages";
  CHECK(MustFail(c->Diff(project, "work", bad)).IsInvalidArgument());
}

TEST_CASE_METHOD(Fixture, "promote: fast-forward, dry run, replay with verify, undo",
                 "[sdk_cpp]") {
  Sql("production", "CREATE TABLE t(x INTEGER)");
  Must(c->CreateBranch(project, NewBranch("feature")));
  Sql("feature", "INSERT INTO t VALUES (1)");

  PromoteRequest dry;
  dry.dry_run = true;
  PromoteResult preview = Must(c->Promote(project, "feature", dry));
  CHECK(preview.dry_run);
  CHECK(preview.branch == "production");
  CHECK(preview.source == "feature");
  CHECK(Count("production") == 0);

  PromoteResult ff = Must(c->Promote(project, "feature"));
  CHECK(ff.mode == "fast_forward");
  CHECK(Count("production") == 1);

  // The parent moves on; the branch's new work is replayed onto it.
  Sql("production", "INSERT INTO t VALUES (2)");
  Sql("feature", "INSERT INTO t VALUES (3)");
  PromoteRequest replay;
  replay.mode = "replay";
  replay.verify = "SELECT count(*) = 3 FROM t";
  replay.on_conflict = "retry";
  replay.max_retries = 2;
  PromoteResult rp = Must(c->Promote(project, "feature", replay));
  CHECK(rp.mode == "replay");
  CHECK(rp.actions.size() == 1);
  CHECK(rp.verify.is_object());
  CHECK(Count("production") == 3);
  Must(c->Rollback(project, "production", RollbackTarget::ToLsn(rp.previous_head_lsn)));
  CHECK(Count("production") == 2);

  PromoteRequest failing;
  failing.mode = "replay";
  failing.verify = "SELECT 0";
  Error verify = MustFail(c->Promote(project, "feature", failing));
  CHECK(verify.IsConflict());
  CHECK(verify.code() == "verify_failed");
  CHECK(verify.details().contains("value"));

  PromoteRequest ff_only;
  ff_only.mode = "fast_forward";
  CHECK(MustFail(c->Promote(project, "feature", ff_only)).code() == "parent_moved");
  CHECK(MustFail(c->Promote(project, "production")).code() == "no_parent");
}

TEST_CASE_METHOD(Fixture, "credentials and compute", "[sdk_cpp]") {
  Sql("production", "CREATE TABLE t(x); INSERT INTO t VALUES (42)");
  Must(c->CreateBranch(project, NewBranch("agent")));
  CredentialRequest rw;
  rw.access = "read_write";
  rw.ttl_seconds = 120;
  Credential cred = Must(c->CreateCredential(project, "agent", rw));
  CHECK(cred.branch == "agent");
  CHECK(cred.access == "read_write");
  CHECK(cred.expires_in > 0);
  // RFC 3339, as every time in the API ("2026-01-01T12:00:00.000Z").
  CHECK(cred.expires_at.size() == 24);
  CHECK(cred.expires_at.back() == 'Z');

  ClientOptions as_agent;
  as_agent.url = server.url();
  as_agent.token = cred.credential;
  auto agent = Must(Client::Create(as_agent));
  Must(agent->Sql(project, "agent", Q("INSERT INTO t VALUES (1)")));
  CHECK(Count("agent") == 2);
  Error other = MustFail(agent->Sql(project, "production", Q("SELECT 1")));
  CHECK(other.IsPermissionDenied());
  CHECK(other.code() == "insufficient_scope");
  CHECK(MustFail(agent->GetBranch(project, "agent")).IsPermissionDenied());
  CHECK(Must(agent->AccessToken()) == cred.credential);

  ClientOptions as_reader = as_agent;
  as_reader.token = Must(c->CreateCredential(project, "agent")).credential;
  auto reader = Must(Client::Create(as_reader));
  CHECK(Must(reader->Sql(project, "agent", Q("SELECT max(x) FROM t"))).Scalar() == 42);
  CHECK(MustFail(reader->Sql(project, "agent", Q("INSERT INTO t VALUES (2)"))).code() ==
        "read_only");

  Sql("production", "SELECT 1");
  CHECK(Must(c->GetCompute(project, "production")).state == "active");
  ComputeState s = Must(c->SuspendCompute(project, "production"));
  CHECK(s.state == "suspended");
  CHECK(Sql("production", "SELECT x FROM t").Scalar() == 42);
  ComputeState after = Must(c->GetCompute(project, "production"));
  CHECK(after.state == "active");
  CHECK(after.cold_starts >= 1);
}

TEST_CASE_METHOD(Fixture, "OAuth clients, scoped tokens, introspection, health", "[sdk_cpp]") {
  CHECK(Must(c->Health())["status"] == "ok");
  CHECK(Must(c->Metrics()).find("branchdb_http_requests_total") != std::string::npos);

  CreateClientRequest req;
  req.name = "reader";
  req.scopes = {"projects:read", "branches:read", "sql:read"};
  req.projects = {project};
  NewClient nc = Must(c->CreateClient(req));
  CHECK_FALSE(nc.client_secret.empty());
  CHECK(nc.scopes == req.scopes);
  CHECK(nc.projects == req.projects);
  CHECK(nc.created_at.size() == 24);
  CHECK(nc.created_at[10] == 'T');
  auto clients = Must(c->ListClients());
  CHECK(std::any_of(clients.begin(), clients.end(),
                    [&](const ClientInfo& x) { return x.client_id == nc.client_id; }));

  ClientOptions ro = server.AdminOptions();
  ro.client_id = nc.client_id;
  ro.client_secret = nc.client_secret;
  auto reader = Must(Client::Create(ro));
  CHECK(Must(reader->GetProject(project)).name == project);
  Error denied = MustFail(reader->CreateBranch(project, NewBranch("nope")));
  CHECK(denied.IsPermissionDenied());
  CHECK(denied.code() == "insufficient_scope");
  CHECK(MustFail(reader->ListClients()).IsPermissionDenied());

  TokenIntrospection ti = Must(reader->Introspect());
  CHECK(ti.active);
  CHECK(ti.client_id == nc.client_id);
  CHECK(ti.scope.find("sql:read") != std::string::npos);
  CHECK_FALSE(Must(reader->Introspect("not-a-token")).active);

  // A deleted client's tokens stop working; a new token is refused too.
  MustOk(c->DeleteClient(nc.client_id));
  Error after = MustFail(reader->GetProject(project));
  INFO(after.ToString());
  CHECK(after.IsUnauthenticated());
  CHECK(after.code() == "invalid_client");

  ClientOptions wrong = server.AdminOptions();
  wrong.client_secret = "bdbs_wrong";
  Error bad_secret = MustFail(Must(Client::Create(wrong))->ListProjects());
  INFO(bad_secret.ToString());
  CHECK(bad_secret.IsUnauthenticated());
  CHECK(bad_secret.code() == "invalid_client");
}

TEST_CASE_METHOD(Fixture, "a branch-scoped client and the writes policy", "[sdk_cpp]") {
  CreateClientRequest req;
  req.name = "agent";
  req.scopes = {"branches:write", "sql:write"};
  req.projects = {project};
  req.branches = {"agent/*"};
  req.max_branch_ttl_seconds = 3600;
  NewClient nc = Must(c->CreateClient(req));
  CHECK(nc.branches == req.branches);
  CHECK(nc.max_branch_ttl_seconds == 3600);
  ClientOptions ao = server.AdminOptions();
  ao.client_id = nc.client_id;
  ao.client_secret = nc.client_secret;
  auto agent = Must(Client::Create(ao));
  Branch b = Must(agent->CreateBranch(project, NewBranch("agent/x")));
  CHECK(b.expires_at.has_value());  // the client's maximum TTL
  Error outside = MustFail(agent->CreateBranch(project, NewBranch("dev/x")));
  CHECK(outside.IsPermissionDenied());
  CHECK(outside.code() == "branch_not_allowed");
  UpdateBranchRequest guard;
  guard.writes = "promote_only";
  CHECK(Must(agent->UpdateBranch(project, "agent/x", guard)).writes == "promote_only");
  Error write = MustFail(agent->Sql(project, "agent/x", Q("CREATE TABLE t(a)")));
  CHECK(write.code() == "branch_promote_only");
  UpdateBranchRequest lift;
  lift.writes = "any";
  CHECK(MustFail(agent->UpdateBranch(project, "agent/x", lift)).code() == "branch_protected");
  CHECK(Must(c->UpdateBranch(project, "agent/x", lift)).writes == "any");
  MustOk(c->DeleteClient(nc.client_id));
}

TEST_CASE_METHOD(Fixture, "export and import: files, callbacks, progress, cancel", "[sdk_cpp]") {
  Sql("production", "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  // About 1.5 MB, so the transfer takes many progress steps.
  Sql("production",
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) "
      "INSERT INTO t SELECT i, randomblob(1000) FROM n");
  uint64_t head = Must(c->GetBranch(project, "production")).head_lsn;
  std::string dir = server.tmp_dir() + "/" + UniqueName("export");
  std::filesystem::create_directories(dir);
  std::string path = dir + "/db.sqlite";

  std::vector<std::pair<uint64_t, uint64_t>> down;
  ExportRequest ex;
  ex.progress = [&](uint64_t done, uint64_t total) {
    down.emplace_back(done, total);
    return true;
  };
  ExportResult res = Must(c->ExportToFile(project, "production", path, ex));
  CHECK(res.lsn == head);
  CHECK(res.bytes == std::filesystem::file_size(path));
  CHECK(res.bytes > 1500 * 1000);
  CHECK_FALSE(std::filesystem::exists(path + ".part"));
  REQUIRE(down.size() > 1);
  CHECK(down.back().first == res.bytes);
  for (size_t i = 1; i < down.size(); ++i) CHECK(down[i].first > down[i - 1].first);
  std::ifstream in(path, std::ios::binary);
  std::string magic(16, '\0');
  in.read(magic.data(), 16);
  CHECK(magic == std::string("SQLite format 3\0", 16));

  std::vector<std::pair<uint64_t, uint64_t>> up;
  ImportRequest im;
  im.branch = "copy/one";
  im.progress = [&](uint64_t done, uint64_t total) {
    up.emplace_back(done, total);
    return true;
  };
  Branch copy = Must(c->ImportFile(project, path, im));
  CHECK(copy.name == "copy/one");
  REQUIRE(up.size() > 1);
  CHECK(up.back().first == res.bytes);
  CHECK(up.back().second == res.bytes);
  CHECK(Count("copy/one") == 1500);
  CHECK(Sql("copy/one", "SELECT sum(length(v)) FROM t").Scalar() == 1500 * 1000);
  CHECK(MustFail(c->ImportFile(project, path, im)).code() == "branch_exists");

  // To a callback, at an older LSN; from memory.
  std::string bytes;
  ExportRequest at_head;
  at_head.lsn = head;
  auto sink = [&](const char* d, size_t n) {
    bytes.append(d, n);
    return true;
  };
  ExportResult r2 = Must(c->Export(project, "production", sink, at_head));
  CHECK(r2.bytes == bytes.size());
  CHECK(r2.lsn == head);
  ImportRequest from_mem;
  from_mem.branch = "copy/two";
  Must(c->ImportData(project, bytes, from_mem));
  CHECK(Count("copy/two") == 1500);

  // Cancel from the progress callback; nothing is left behind.
  ExportRequest cancel;
  cancel.progress = [](uint64_t done, uint64_t) { return done < 100000; };
  std::string cancelled_path = dir + "/cancelled.sqlite";
  Error cancelled = MustFail(c->ExportToFile(project, "production", cancelled_path, cancel));
  CHECK(cancelled.kind() == ErrorKind::kCancelled);
  CHECK_FALSE(std::filesystem::exists(cancelled_path));
  CHECK_FALSE(std::filesystem::exists(cancelled_path + ".part"));
  ImportRequest cancel_up;
  cancel_up.branch = "never";
  cancel_up.progress = [](uint64_t done, uint64_t) { return done < 100000; };
  CHECK(MustFail(c->ImportFile(project, path, cancel_up)).kind() == ErrorKind::kCancelled);
  CHECK(MustFail(c->GetBranch(project, "never")).IsNotFound());

  // Local and server-side failures.
  ImportRequest missing;
  missing.branch = "missing";
  CHECK(MustFail(c->ImportFile(project, dir + "/no-such-file", missing)).kind() == ErrorKind::kIo);
  CHECK(MustFail(c->ExportToFile(project, "production", dir + "/no-dir/x.sqlite")).kind() ==
        ErrorKind::kIo);
  Error invalid = MustFail(c->ImportData(project, std::string(4096, 'x'), missing));
  CHECK(invalid.IsBadRequest());
  CHECK(invalid.code() == "invalid_database");
  Error no_branch = MustFail(c->ExportToFile(project, "no-such-branch", dir + "/nb.sqlite"));
  CHECK(no_branch.IsNotFound());
  CHECK_FALSE(std::filesystem::exists(dir + "/nb.sqlite.part"));
}


TEST_CASE_METHOD(Fixture, "quotas, usage and the audit trail", "[sdk_cpp]") {
  UpdateProjectRequest up;
  up.quotas["max_branches"] = 1;
  up.default_branch_ttl_seconds = std::optional<int64_t>(600);
  Project p = Must(c->UpdateProject(project, up));
  CHECK(p.raw["quotas"]["max_branches"] == 1);
  CHECK(p.raw["default_branch_ttl_seconds"] == 600);
  // A quota refusal is not retried: one attempt, its details kept.
  Error refused = MustFail(c->CreateBranch(project, NewBranch("over")));
  CHECK(refused.http_status() == 429);
  CHECK(refused.code() == "quota_exceeded");
  CHECK(refused.details()["quota"] == "max_branches");
  CHECK(refused.attempts() == 1);
  UpdateProjectRequest lift;
  lift.quotas["max_branches"] = std::nullopt;
  lift.default_branch_ttl_seconds = std::optional<int64_t>();
  CHECK(Must(c->UpdateProject(project, lift)).raw["quotas"]["max_branches"].is_null());
  Must(c->CreateBranch(project, NewBranch("dev")));
  Sql("dev", "CREATE TABLE t(a)");

  Usage u = Must(c->GetUsage(project));
  CHECK(u.branches == 2);
  CHECK(u.commits == 1);
  CHECK(u.logical_bytes > 0);

  ListAuditRequest r;
  r.limit = 2;
  std::vector<std::string> ops;
  for (int pages = 0; pages < 10; ++pages) {
    AuditPage page = Must(c->ListAudit(project, r));
    for (const auto& e : page.events) ops.push_back(e.operation);
    if (!page.next_cursor) break;
    r.cursor = page.next_cursor;
  }
  CHECK(ops == std::vector<std::string>{"project.create", "project.update", "branch.create",
                                        "project.update", "branch.create"});
  AuditPage server = Must(c->ListAudit("", {}));
  CHECK_FALSE(server.events.empty());
}

// The server's log goes to a file in batches (docs/config.md, "Logging"): a
// SIGTERM still writes every line, the last request's access line and
// `event=stopped` included.
TEST_CASE("serve: SIGTERM writes the log's last lines", "[sdk_cpp]") {
  TestServer server;
  auto client = server.AdminClient();
  Must(client->Health());
  server.Stop();
  const std::string log = server.Log();
  CHECK(log.find("event=access method=GET path=/healthz status=200") != std::string::npos);
  CHECK(log.find("event=shutdown signal=15") != std::string::npos);
  CHECK(log.find("event=stopped") != std::string::npos);
}

}  // namespace
}  // namespace branchdb::client::testing
