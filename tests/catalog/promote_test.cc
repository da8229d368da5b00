// Catalog::Promote: fast-forward, replay over a moved parent, failures that
// leave the parent untouched, verify, dry run, concurrent writes, undo, crash
// safety of the temporary timeline, and a randomized comparison of
// promote-by-replay with the same SQL applied to a native SQLite copy.
#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/catalog/catalog_fixture.h"

namespace branchdb::catalog {
namespace {

using testing::CatalogFixture;
using testing::Reason;
using testing::ToLsn;

// The test's script executor: one transaction, the annotation stored right
// before COMMIT (record = false: a native SQLite connection), ROLLBACK on error.
Status RunScript(sqlite3* db, const std::string& sql, Annotation a, bool record = true) {
  sqlite3_int64 before = sqlite3_total_changes64(db);
  auto fail = [&]() {
    Status st = Status::InvalidArgument(sqlite3_errmsg(db), "sql_error");
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return st;
  };
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return fail();
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return fail();
  a.rows = sqlite3_total_changes64(db) - before;
  if (record) {
    Status st = AnnotateNextCommit(db, a);
    if (!st.ok()) return st;
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return fail();
  return Status::OK();
}

Status Replay(sqlite3* db, const ReplayAction& action) {
  return RunScript(db, action.annotation.sql, action.annotation);
}

Result<std::string> VerifyValue(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return Status::InvalidArgument(sqlite3_errmsg(db), "sql_error");
  }
  std::string out = "null";
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    switch (sqlite3_column_type(stmt, 0)) {
      case SQLITE_INTEGER: out = std::to_string(sqlite3_column_int64(stmt, 0)); break;
      case SQLITE_TEXT:
        out = nlohmann::json(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))).dump();
        break;
      default: break;
    }
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Status::InvalidArgument("step", "sql_error");
  return out;
}

class PromoteFixture : public CatalogFixture {
 public:
  // Runs sql on the branch as the SQL route does (full script recorded).
  Result<Lsn> TryDo(const std::string& branch, const std::string& sql) {
    auto db = cat->OpenBranchConnection("acme", branch);
    if (!db.ok()) return db.status();
    Annotation a;
    a.client_id = "dev-client";
    a.summary = sql.substr(0, 60);
    a.sql = sql;
    BRANCHDB_RETURN_IF_ERROR(RunScript(db->get(), sql, a));
    return storage::LastCommitLsn(db->get());
  }
  Lsn Do(const std::string& branch, const std::string& sql) {
    auto r = TryDo(branch, sql);
    INFO(sql << ": " << r.status().ToString());
    REQUIRE(r.ok());
    return *r;
  }

  PromoteOptions Options() {
    PromoteOptions o;
    o.actor = Actor{"promoter", "req-1"};
    o.replay = Replay;
    o.verify_query = VerifyValue;
    return o;
  }

  size_t Timelines() {
    auto store = cat->Store("acme");
    REQUIRE(store.ok());
    return (*store)->ListTimelines().size();
  }
};

TEST_CASE("annotation: script, replay and promote fields round-trip; large scripts are omitted") {
  Annotation a;
  a.summary = "INSERT";
  a.sql = "INSERT INTO t VALUES(?)";
  a.params_json = "[1,\"x\"]";
  a.replay_of = 12;
  // The record names the script by size and hash; the script is the payload.
  std::string record = EncodeAnnotation(a);
  std::string script = EncodeScript(a);
  CHECK(record.find("INSERT INTO") == std::string::npos);
  CHECK(script == R"j({"sql":"INSERT INTO t VALUES(?)","params":[1,"x"]})j");
  Annotation b = DecodeAnnotation(record);
  CHECK(b.sql.empty());
  CHECK(b.script_bytes == script.size());
  CHECK(b.script_sha256.size() == 64);
  CHECK(b.replay_of == std::optional<uint64_t>(12));
  CHECK(b.replayable());

  // Records written before scripts moved to the payload keep them inline.
  Annotation inline_old = DecodeAnnotation(
      R"({"v":1,"kind":"sql","summary":"x","sql":"DELETE FROM t","params":[2]})");
  CHECK(inline_old.sql == "DELETE FROM t");
  CHECK(inline_old.params_json == "[2]");
  CHECK(inline_old.replayable());

  Annotation p;
  p.kind = "promote";
  p.source = "dev/alex";
  p.actions = {3, 5, 8};
  Annotation q = DecodeAnnotation(EncodeAnnotation(p));
  CHECK(q.source == "dev/alex");
  CHECK(q.actions == std::vector<uint64_t>{3, 5, 8});
  CHECK_FALSE(q.replayable());

  Annotation big;
  big.sql = std::string(kMaxScriptBytes, 'x');
  big.params_json = "[1]";
  std::string bytes = EncodeAnnotation(big);
  CHECK(bytes.size() < 200);
  CHECK(EncodeScript(big).empty());
  Annotation c = DecodeAnnotation(bytes);
  CHECK(c.sql_omitted);
  CHECK(c.sql.empty());
  CHECK_FALSE(c.replayable());

  // An old version-1 record without the new keys still decodes; unknown keys are ignored.
  Annotation old = DecodeAnnotation(R"({"v":1,"kind":"sql","summary":"x","future":[1]})");
  CHECK(old.summary == "x");
  CHECK_FALSE(old.replayable());
}

TEST_CASE("verify truthiness") {
  CHECK(IsTruthy("1"));
  CHECK(IsTruthy("-2.5"));
  CHECK(IsTruthy("\"yes\""));
  CHECK_FALSE(IsTruthy("0"));
  CHECK_FALSE(IsTruthy("0.0"));
  CHECK_FALSE(IsTruthy("\"\""));
  CHECK_FALSE(IsTruthy("\"0\""));
  CHECK_FALSE(IsTruthy("\"FALSE\""));
  CHECK_FALSE(IsTruthy("null"));
  CHECK_FALSE(IsTruthy("{\"$blob\":\"AA==\"}"));
}

TEST_CASE("promote: fast-forward when the parent has not moved") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v)");
  REQUIRE(f.Branch("feature").ok());
  Lsn a1 = f.Do("feature", "INSERT INTO t VALUES('a')");
  Lsn a2 = f.Do("feature", "INSERT INTO t VALUES('b'), ('c')");
  Lsn before = f.Head("production");
  auto r = f.cat->Promote("acme", "feature", f.Options());
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->fast_forward);
  CHECK(r->parent == "production");
  CHECK(r->previous_head_lsn == before);
  CHECK(r->target_lsn == std::optional<Lsn>(f.Head("feature")));
  REQUIRE(r->actions.size() == 2);
  CHECK(r->actions[0].lsn == a1);
  CHECK(r->actions[1].lsn == a2);
  CHECK(r->actions[1].rows == 2);
  CHECK(r->attempts == 1);
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") == "a,b,c");
  auto ck = f.cat->GetCheckpoint("acme", "production", *r->head_lsn);
  REQUIRE(ck.ok());
  CHECK(ck->annotation.kind == "promote");
  CHECK(ck->annotation.source == "feature");
  CHECK(ck->annotation.actions == std::vector<uint64_t>{a1, a2});
  CHECK(ck->annotation.client_id == "promoter");
  // fast_forward asked on a moved parent.
  f.Do("production", "INSERT INTO t VALUES('p')");
  f.Do("feature", "INSERT INTO t VALUES('d')");
  PromoteOptions ff = f.Options();
  ff.mode = PromoteOptions::Mode::kFastForward;
  CHECK(Reason(f.cat->Promote("acme", "feature", ff).status()) == "parent_moved");
}

TEST_CASE("promote: replay over a moved parent carries schema and data, and is undoable") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
  f.Do("production", "INSERT INTO t(v) VALUES('base')");
  REQUIRE(f.Branch("feature").ok());
  Lsn a1 = f.Do("feature", "ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 0");
  Lsn a2 = f.Do("feature", "CREATE TABLE audit(x); CREATE INDEX t_w ON t(w)");
  Lsn a3 = f.Do("feature", "UPDATE t SET w = 7; INSERT INTO audit VALUES('migrated')");
  // The parent moves: a plain write the migration must keep.
  f.Do("production", "INSERT INTO t(v) VALUES('live')");
  Lsn before = f.Head("production");
  auto r = f.cat->Promote("acme", "feature", f.Options());
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK_FALSE(r->fast_forward);
  CHECK(r->previous_head_lsn == before);
  REQUIRE(r->actions.size() == 3);
  CHECK(r->actions[0].lsn == a1);
  CHECK(r->actions[2].lsn == a3);
  CHECK(r->actions[2].rows == 3);  // two rows updated (base and live), one inserted
  CHECK(f.Query("production", "SELECT v, w FROM t ORDER BY id") == "base|7;live|7");
  CHECK(f.Query("production", "SELECT x FROM audit") == "migrated");
  CHECK(f.Query("production", "SELECT count(*) FROM sqlite_schema WHERE name='t_w'") == "1");
  // The feature branch is unchanged (it never saw 'live').
  CHECK(f.Query("feature", "SELECT group_concat(v) FROM t") == "base");
  // One promote checkpoint on top of three replayed commits; no internal record is listed.
  auto page = f.cat->ListCheckpoints("acme", "production", 5);
  REQUIRE(page.ok());
  REQUIRE(page->checkpoints.size() == 5);
  const auto& top = page->checkpoints[0].annotation;
  CHECK(top.kind == "promote");
  CHECK(top.source == "feature");
  CHECK(top.actions == std::vector<uint64_t>{a1, a2, a3});
  for (int i = 1; i <= 3; ++i) {
    const auto& c = page->checkpoints[static_cast<size_t>(i)].annotation;
    CHECK(c.kind == "sql");
    CHECK(c.client_id == "dev-client");
    CHECK(c.request_id == "req-1");
    CHECK(c.replay_of == std::optional<uint64_t>(std::vector<Lsn>{a3, a2, a1}[i - 1]));
  }
  CHECK(page->checkpoints[4].lsn == before);
  CHECK(f.Timelines() == 2);  // the temporary timeline is gone
  // Undo.
  REQUIRE(f.cat->Rollback("acme", "production", ToLsn(r->previous_head_lsn)).ok());
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") == "base,live");
  CHECK(f.Query("production", "SELECT count(*) FROM sqlite_schema WHERE name='audit'") == "0");
}

TEST_CASE("promote: a failing replay leaves the parent untouched and names the action") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)");
  REQUIRE(f.Branch("feature").ok());
  f.Do("feature", "INSERT INTO t(v) VALUES('ok')");
  Lsn bad = f.Do("feature", "INSERT INTO t(v) VALUES('clash')");
  f.Do("feature", "INSERT INTO t(v) VALUES('after')");
  f.Do("production", "INSERT INTO t(v) VALUES('clash')");
  Lsn before = f.Head("production");
  PromoteFailure failure;
  auto r = f.cat->Promote("acme", "feature", f.Options(), &failure);
  CHECK(Reason(r.status()) == "replay_failed");
  CHECK(failure.index == 1);
  CHECK(failure.lsn == bad);
  CHECK(failure.summary == "INSERT INTO t(v) VALUES('clash')");
  CHECK(failure.error.message().find("UNIQUE") != std::string::npos);
  CHECK(r.status().message().find("UNIQUE") != std::string::npos);
  CHECK(f.Head("production") == before);
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") == "clash");
  CHECK(f.Timelines() == 2);
}

TEST_CASE("promote: verify gates the move") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v INTEGER)");
  REQUIRE(f.Branch("feature").ok());
  f.Do("feature", "INSERT INTO t VALUES(5)");
  f.Do("production", "INSERT INTO t VALUES(1)");
  Lsn before = f.Head("production");
  PromoteOptions o = f.Options();
  o.verify = "SELECT count(*) = 3 FROM t";
  PromoteFailure failure;
  auto r = f.cat->Promote("acme", "feature", o, &failure);
  CHECK(Reason(r.status()) == "verify_failed");
  CHECK(failure.verify_value_json == "0");
  CHECK(f.Head("production") == before);
  o.verify = "SELECT nosuchcolumn FROM t";
  CHECK(Reason(f.cat->Promote("acme", "feature", o, &failure).status()) == "verify_failed");
  CHECK_FALSE(failure.error.ok());
  CHECK(f.Head("production") == before);
  CHECK(f.Timelines() == 2);
  o.verify = "SELECT sum(v) FROM t";
  r = f.cat->Promote("acme", "feature", o);
  REQUIRE(r.ok());
  CHECK(r->verified);
  CHECK(r->verify_value_json == "6");
  CHECK(f.Query("production", "SELECT sum(v) FROM t") == "6");
}

TEST_CASE("promote: dry run replays and verifies but moves nothing") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v INTEGER)");
  REQUIRE(f.Branch("feature").ok());
  Lsn a1 = f.Do("feature", "INSERT INTO t VALUES(5), (6)");
  PromoteOptions o = f.Options();
  o.dry_run = true;
  o.verify = "SELECT count(*) FROM t";
  // Fast-forward dry run: says where the parent would go.
  auto r = f.cat->Promote("acme", "feature", o);
  REQUIRE(r.ok());
  CHECK(r->fast_forward);
  CHECK(r->dry_run);
  CHECK_FALSE(r->head_lsn.has_value());
  CHECK(r->target_lsn == std::optional<Lsn>(f.Head("feature")));
  CHECK(r->verify_value_json == "2");
  // Replay dry run.
  f.Do("production", "INSERT INTO t VALUES(1)");
  Lsn before = f.Head("production");
  size_t listed = f.cat->ListCheckpoints("acme", "production")->checkpoints.size();
  r = f.cat->Promote("acme", "feature", o);
  REQUIRE(r.ok());
  CHECK_FALSE(r->fast_forward);
  CHECK_FALSE(r->head_lsn.has_value());
  CHECK_FALSE(r->target_lsn.has_value());
  REQUIRE(r->actions.size() == 1);
  CHECK(r->actions[0].lsn == a1);
  CHECK(r->actions[0].rows == 2);
  CHECK(r->verify_value_json == "3");
  CHECK(f.Head("production") == before);
  CHECK(f.cat->ListCheckpoints("acme", "production")->checkpoints.size() == listed);
  CHECK(f.Timelines() == 2);
  // A failing dry run fails as the real one would.
  o.verify = "SELECT 0";
  CHECK(Reason(f.cat->Promote("acme", "feature", o).status()) == "verify_failed");
}

TEST_CASE("promote: a write reaching the parent during the replay is never overwritten") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v TEXT)");
  REQUIRE(f.Branch("feature").ok());
  f.Do("feature", "INSERT INTO t VALUES('feature')");
  f.Do("production", "INSERT INTO t VALUES('moved')");
  int writes = 0;
  PromoteOptions o = f.Options();
  o.before_move = [&] {
    if (writes < 1) f.Do("production", "INSERT INTO t VALUES('concurrent')");
    ++writes;
  };
  auto r = f.cat->Promote("acme", "feature", o);
  CHECK(Reason(r.status()) == "concurrent_write");
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") == "moved,concurrent");
  CHECK(f.Timelines() == 2);

  // With retry: the second attempt replays onto the new head and succeeds.
  writes = 0;
  o.retry_on_conflict = true;
  o.max_retries = 2;
  r = f.cat->Promote("acme", "feature", o);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->attempts == 2);
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") ==
        "moved,concurrent,concurrent,feature");

  // Retries run out.
  o.before_move = [&] { f.Do("production", "INSERT INTO t VALUES('again')"); };
  o.max_retries = 1;
  CHECK(Reason(f.cat->Promote("acme", "feature", o).status()) == "concurrent_write");
  o.max_retries = 11;
  CHECK(Reason(f.cat->Promote("acme", "feature", o).status()) == "invalid_argument");
}

TEST_CASE("promote: actions without a recorded script are not replayable") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v)");
  REQUIRE(f.Branch("feature").ok());
  f.Do("feature", "INSERT INTO t VALUES(1)");
  Lsn opaque = f.Sql("feature", "INSERT INTO t VALUES(2)");  // annotation without "sql"
  f.Do("production", "INSERT INTO t VALUES(0)");
  Lsn before = f.Head("production");
  PromoteFailure failure;
  auto r = f.cat->Promote("acme", "feature", f.Options(), &failure);
  CHECK(Reason(r.status()) == "not_replayable");
  CHECK(failure.lsn == opaque);
  CHECK(f.Head("production") == before);
  CHECK(f.Timelines() == 2);
  // Fast-forward needs no script: after a reset from the parent the branch's
  // history holds only recorded actions again.
  REQUIRE(f.cat->ResetFromParent("acme", "feature").ok());
  f.Do("feature", "INSERT INTO t VALUES(3)");
  f.Sql("feature", "INSERT INTO t VALUES(4)");
  auto ff = f.cat->Promote("acme", "feature", f.Options());
  REQUIRE(ff.ok());
  CHECK(ff->fast_forward);
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") == "0,3,4");
}

TEST_CASE("promote: large scripts replay from their payloads; memory keeps their summaries only") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v INTEGER)");
  REQUIRE(f.Branch("feature").ok());
  auto store = f.cat->Store("acme");
  REQUIRE(store.ok());
  const uint64_t memory_before = (*store)->RecordMetadataBytes();
  const std::string pad(kMaxScriptBytes - 100, 'x');  // near the largest kept script
  for (int i = 1; i <= 20; ++i) {
    f.Do("feature", "INSERT INTO t VALUES(" + std::to_string(i) + "); -- " + pad);
  }
  const uint64_t memory_grown = (*store)->RecordMetadataBytes() - memory_before;
  CHECK(memory_grown < 20 * 1024);  // was 20 MiB: every script held in memory
  {
    auto db = f.cat->OpenBranchConnection("acme", "feature");
    REQUIRE(db.ok());
    CHECK(storage::BranchSpace(db->get()).payloads > 20 * pad.size());
  }
  f.Do("production", "INSERT INTO t VALUES(0)");  // the parent moved: replay
  auto r = f.cat->Promote("acme", "feature", f.Options());
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK_FALSE(r->fast_forward);
  CHECK(f.Query("production", "SELECT count(*), sum(v) FROM t") == "21|210");
  // The replayed records keep their scripts too (a promote of production's
  // own child could replay them again).
  auto page = f.cat->ListCheckpoints("acme", "production", 2);
  REQUIRE(page.ok());
  const CheckpointInfo& replayed = page->checkpoints[1];
  REQUIRE(replayed.annotation.replay_of.has_value());
  auto rec = (*store)->GetRecord(replayed.lsn);
  REQUIRE(rec.ok());
  Annotation a = DecodeAnnotation(rec->annotation);
  CHECK(a.sql.empty());
  REQUIRE(LoadScript(**store, *rec, &a).ok());
  CHECK(a.sql == "INSERT INTO t VALUES(20); -- " + pad);
}

TEST_CASE("annotation: a script is refused when it would take the branch past its size limit") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v TEXT)");
  auto db = f.cat->OpenBranchConnection("acme", "production");
  REQUIRE(db.ok());
  REQUIRE(sqlite3_exec(db->get(), "BEGIN; INSERT INTO t VALUES('a')", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  const storage::BranchBytes space = storage::BranchSpace(db->get());
  CHECK(space.database == 2 * storage::kPageSize);
  REQUIRE(space.payloads > 0);  // the CREATE TABLE script
  Annotation a;
  a.sql = std::string(1000, 'y');
  const std::string script = EncodeScript(a);
  const int64_t exact = static_cast<int64_t>(space.database + space.payloads + script.size());
  Status refused = AnnotateNextCommit(db->get(), a, exact - 1);
  CHECK(refused.code() == StatusCode::kResourceExhausted);
  CHECK(refused.reason() == "branch_size_limit");
  CHECK(AnnotateNextCommit(db->get(), a, exact).ok());
  CHECK(AnnotateNextCommit(db->get(), Annotation{}, 1).ok());  // no script: nothing to count
  REQUIRE(sqlite3_exec(db->get(), "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
}

TEST_CASE("promote: the replay base follows resets and skips rolled-back actions") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v)");
  REQUIRE(f.Branch("feature").ok());
  f.Sql("feature", "INSERT INTO t VALUES('before reset, opaque')");
  f.Do("production", "INSERT INTO t VALUES('p1')");
  REQUIRE(f.cat->ResetFromParent("acme", "feature").ok());
  Lsn kept = f.Do("feature", "INSERT INTO t VALUES('kept')");
  f.Do("feature", "INSERT INTO t VALUES('rolled back')");
  REQUIRE(f.cat->Rollback("acme", "feature", ToLsn(kept)).ok());
  Lsn last = f.Do("feature", "INSERT INTO t VALUES('last')");
  f.Do("production", "INSERT INTO t VALUES('p2')");
  auto r = f.cat->Promote("acme", "feature", f.Options());
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK_FALSE(r->fast_forward);
  REQUIRE(r->actions.size() == 2);
  CHECK(r->actions[0].lsn == kept);
  CHECK(r->actions[1].lsn == last);
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") == "p1,p2,kept,last");
}

TEST_CASE("promote: protected parents need allow_protected; no parent") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v)");
  REQUIRE(f.Branch("feature").ok());
  f.Do("feature", "INSERT INTO t VALUES(1)");
  REQUIRE(f.cat->SetProtected("acme", "production", true).ok());
  PromoteOptions o = f.Options();
  CHECK(Reason(f.cat->Promote("acme", "feature", o).status()) == "branch_protected");
  o.allow_protected = true;
  REQUIRE(f.cat->Promote("acme", "feature", o).ok());
  CHECK(f.Query("production", "SELECT count(*) FROM t") == "1");
  CHECK(Reason(f.cat->Promote("acme", "production", o).status()) == "no_parent");
}

TEST_CASE("promote: a temporary timeline abandoned by a crash leaves no trace after reopen") {
  PromoteFixture f;
  f.Do("production", "CREATE TABLE t(v)");
  REQUIRE(f.Branch("feature").ok());
  f.Do("feature", "INSERT INTO t VALUES(1)");
  f.Do("production", "INSERT INTO t VALUES(0)");
  // Stop a replay midway, as a crash would: the temporary timeline exists then.
  size_t during = 0;
  PromoteOptions o = f.Options();
  o.replay = [&](sqlite3* db, const ReplayAction& a) {
    Status st = Replay(db, a);
    during = f.Timelines();
    return st;
  };
  o.dry_run = true;
  REQUIRE(f.cat->Promote("acme", "feature", o).ok());
  CHECK(during == 3);
  // What a crash leaves: a timeline in the store without a catalog row.
  auto store = f.cat->Store("acme");
  REQUIRE(store.ok());
  Annotation internal;
  internal.kind = "internal";
  Lsn head = f.Head("production");
  auto temp = (*store)->CreateTimeline(head, EncodeAnnotation(internal));
  REQUIRE(temp.ok());
  {
    storage::ConnectionOptions co;
    co.store = *store;
    co.timeline = *temp;
    auto db = storage::OpenConnection(co);
    REQUIRE(db.ok());
    Annotation a;
    a.sql = "INSERT INTO t VALUES(99)";
    REQUIRE(RunScript(db->get(), a.sql, a).ok());
  }
  CHECK(f.Timelines() == 3);
  store = Status::NotFound("let go");  // a held store stays open: Reopen could not open it
  f.Reopen();
  CHECK(f.Timelines() == 2);
  store = f.cat->Store("acme");
  REQUIRE(store.ok());
  for (const auto& t : (*store)->ListTimelines()) CHECK(t.id != *temp);
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") == "0");
  auto r = f.cat->Promote("acme", "feature", f.Options());
  REQUIRE(r.ok());
  CHECK(f.Query("production", "SELECT group_concat(v) FROM t") == "0,1");
}

// --- Randomized: promote-by-replay == the same SQL on a native SQLite copy ---

// Schema and rows of every table, as text.
std::string Dump(sqlite3* db) {
  std::string out;
  std::vector<std::pair<std::string, std::string>> objects;
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE "
                             "'sqlite_%' ORDER BY type, name",
                             -1, &s, nullptr) == SQLITE_OK);
  while (sqlite3_step(s) == SQLITE_ROW) {
    std::string type = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    std::string name = reinterpret_cast<const char*>(sqlite3_column_text(s, 1));
    const unsigned char* sql = sqlite3_column_text(s, 2);
    out += type + " " + name + ": " + (sql ? reinterpret_cast<const char*>(sql) : "") + "\n";
    if (type == "table") objects.emplace_back(name, "");
  }
  sqlite3_finalize(s);
  for (const auto& [table, unused] : objects) {
    std::string q = "SELECT * FROM \"" + table + "\" ORDER BY rowid";
    REQUIRE(sqlite3_prepare_v2(db, q.c_str(), -1, &s, nullptr) == SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
      out += table + ":";
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        const unsigned char* v = sqlite3_column_text(s, i);
        out += std::string(" ") + (v ? reinterpret_cast<const char*>(v) : "NULL");
      }
      out += "\n";
    }
    sqlite3_finalize(s);
  }
  return out;
}

std::string RandomScript(std::mt19937& rng) {
  auto n = [&](int hi) { return std::to_string(std::uniform_int_distribution<int>(0, hi)(rng)); };
  switch (std::uniform_int_distribution<int>(0, 6)(rng)) {
    case 0:
      return "INSERT INTO t(k, v) VALUES('k" + n(40) + "', " + n(100) + ")";
    case 1:
      return "UPDATE t SET v = v + " + n(9) + " WHERE id % 3 = " + n(2);
    case 2:
      return "DELETE FROM t WHERE v % 7 = " + n(6);
    case 3: {
      std::string u = "u" + n(3);
      return "CREATE TABLE IF NOT EXISTS " + u + "(a, b); INSERT INTO " + u + " VALUES(" + n(50) +
             ", 'x" + n(50) + "')";
    }
    case 4:
      return "ALTER TABLE t ADD COLUMN c" + n(5) + " DEFAULT " + n(9);
    case 5:
      return "INSERT INTO t(k, v) VALUES('k" + n(40) + "', 1); UPDATE t SET v = v * 2 WHERE v < " +
             n(20);
    default:
      return "CREATE INDEX IF NOT EXISTS t_v" + n(2) + " ON t(v)";
  }
}

TEST_CASE("promote: randomized replay equals the same SQL on a native SQLite copy") {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    std::cout << "promote randomized seed=" << seed << std::endl;
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    PromoteFixture f;
    f.Do("production", "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT UNIQUE, v INTEGER)");
    for (int i = 0; i < 5; ++i) (void)f.TryDo("production", RandomScript(rng));
    REQUIRE(f.Branch("feature").ok());
    // The branch's actions: scripts that committed there (a failing script, or
    // one that changed nothing, records no action).
    std::vector<std::string> scripts;
    for (int i = 0; i < 12; ++i) {
      std::string sql = RandomScript(rng);
      auto lsn = f.TryDo("feature", sql);
      if (lsn.ok() && *lsn != 0) scripts.push_back(sql);
    }
    for (int i = 0; i < 6; ++i) (void)f.TryDo("production", RandomScript(rng));
    Lsn before = f.Head("production");

    // The native copy of the parent, and the scripts applied to it.
    ConnectionRequest req;
    req.read_only = true;
    auto parent = f.cat->OpenBranchConnection("acme", "production", req);
    REQUIRE(parent.ok());
    REQUIRE(sqlite3_exec(parent->get(), "SELECT count(*) FROM sqlite_schema", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    sqlite3_int64 size = 0;
    unsigned char* bytes = sqlite3_serialize(parent->get(), "main", &size, 0);
    REQUIRE(bytes != nullptr);
    sqlite3* native = nullptr;
    REQUIRE(sqlite3_open(":memory:", &native) == SQLITE_OK);
    REQUIRE(sqlite3_deserialize(native, "main", bytes, size, size,
                                SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) ==
            SQLITE_OK);
    int first_failure = -1;
    for (size_t i = 0; i < scripts.size() && first_failure < 0; ++i) {
      if (!RunScript(native, scripts[i], {}, /*record=*/false).ok()) {
        first_failure = static_cast<int>(i);
      }
    }
    std::string expected = Dump(native);
    sqlite3_close(native);
    parent->reset();

    PromoteOptions o = f.Options();
    o.mode = PromoteOptions::Mode::kReplay;
    PromoteFailure failure;
    auto r = f.cat->Promote("acme", "feature", o, &failure);
    auto conn = f.cat->OpenBranchConnection("acme", "production", req);
    REQUIRE(conn.ok());
    std::string got = Dump(conn->get());
    std::cout << "  actions=" << scripts.size() << " first_failure=" << first_failure
              << std::endl;
    if (first_failure >= 0) {
      CHECK(Reason(r.status()) == "replay_failed");
      CHECK(failure.index == first_failure);
      CHECK(f.Head("production") == before);
    } else {
      INFO(r.status().ToString());
      REQUIRE(r.ok());
      CHECK(r->actions.size() == scripts.size());
      CHECK(got == expected);
    }
    CHECK(f.Timelines() == 2);
  }
}

}  // namespace
}  // namespace branchdb::catalog
