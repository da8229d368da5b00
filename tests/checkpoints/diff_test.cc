// Schema diff and data diff between branch heads and checkpoints.
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>

#include "tests/checkpoints/catalog_fixture.h"

namespace branchdb::checkpoints::testing {
namespace {

const SchemaObjectDiff* Find(const SchemaDiff& d, const std::string& type, const std::string& name) {
  for (auto& o : d.objects) {
    if (o.type == type && o.name == name) return &o;
  }
  return nullptr;
}

const TableDataDiff* Find(const DataDiff& d, const std::string& table) {
  for (auto& t : d.tables) {
    if (t.table == table) return &t;
  }
  return nullptr;
}

StateRef Head(const std::string& b) { return StateRef{b, std::nullopt}; }
StateRef At(Lsn lsn) { return StateRef{"", lsn}; }

TEST_CASE("schema diff: tables, columns, indexes, views, triggers") {
  CatalogFixture f;
  Lsn base = f.Sql("production",
                   "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);"
                   "CREATE TABLE gone(x);"
                   "CREATE INDEX users_name ON users(name);"
                   "CREATE VIEW v1 AS SELECT id FROM users");
  REQUIRE(f.Branch("migrate").ok());
  f.Sql("migrate",
        "ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';"
        "DROP TABLE gone;"
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INTEGER);"
        "DROP INDEX users_name; CREATE INDEX users_name ON users(name, email);"
        "CREATE TRIGGER trg AFTER INSERT ON orders BEGIN SELECT 1; END");
  auto d = f.cat->DiffSchema("acme", Head("production"), Head("migrate"));
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  CHECK(d->from_lsn == base);
  const auto* users = Find(*d, "table", "users");
  REQUIRE(users);
  CHECK(users->change == "changed");
  CHECK(users->columns_added == std::vector<std::string>{"email"});
  REQUIRE(Find(*d, "table", "gone"));
  CHECK(Find(*d, "table", "gone")->change == "removed");
  REQUIRE(Find(*d, "table", "orders"));
  CHECK(Find(*d, "table", "orders")->change == "added");
  REQUIRE(Find(*d, "index", "users_name"));
  CHECK(Find(*d, "index", "users_name")->change == "changed");
  REQUIRE(Find(*d, "trigger", "trg"));
  CHECK(Find(*d, "trigger", "trg")->change == "added");
  CHECK(Find(*d, "view", "v1") == nullptr);  // unchanged
  CHECK(d->unified.find("--- schema@") == 0);
  CHECK(d->unified.find("\n+CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INTEGER);") !=
        std::string::npos);
  CHECK(d->unified.find("\n-CREATE TABLE gone(x);") != std::string::npos);
  CHECK(d->unified.find("@@ -") != std::string::npos);
  // A changed line: its old version first, then the new one (as diff -u).
  size_t old_users = d->unified.find("\n-CREATE TABLE users(");
  size_t new_users = d->unified.find("\n+CREATE TABLE users(");
  REQUIRE(old_users != std::string::npos);
  REQUIRE(new_users != std::string::npos);
  CHECK(old_users < new_users);

  // Same state: empty diff. Between a checkpoint LSN and a head works too.
  auto same = f.cat->DiffSchema("acme", Head("production"), At(base));
  REQUIRE(same.ok());
  CHECK(same->objects.empty());
  CHECK(same->unified.empty());
  CHECK(Reason(f.cat->DiffSchema("acme", At(999999), Head("production")).status()) ==
        "checkpoint_not_found");
}

TEST_CASE("data diff: keyed and rowid tables, counts, samples, untouched tables skipped") {
  CatalogFixture f;
  std::string setup =
      "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);"
      "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
      "CREATE TABLE log(msg);"
      "CREATE TABLE untouched(id INTEGER PRIMARY KEY, pad);"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<500)"
      "  INSERT INTO untouched SELECT i, randomblob(200) FROM n;"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<100)"
      "  INSERT INTO users SELECT i, 'user' || i FROM n;"
      "INSERT INTO kv VALUES('a', 1), ('b', 2);"
      "INSERT INTO log VALUES('one'), ('two')";
  Lsn base = f.Sql("production", setup);
  REQUIRE(f.Branch("dev").ok());
  f.Sql("dev",
        "INSERT INTO users VALUES(1000, 'new');"
        "UPDATE users SET name='renamed' WHERE id=5;"
        "DELETE FROM users WHERE id IN (7, 8);"
        "UPDATE kv SET v=20 WHERE k='b'; INSERT INTO kv VALUES('c', X'00FF');"
        "DELETE FROM log WHERE msg='one'; INSERT INTO log VALUES('three')");
  auto d = f.cat->DiffData("acme", Head("production"), Head("dev"));
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  CHECK(d->from_lsn == base);
  CHECK(d->pages_changed > 0);
  CHECK(d->tables_skipped >= 1);
  CHECK(Find(*d, "untouched") == nullptr);

  const auto* users = Find(*d, "users");
  REQUIRE(users);
  CHECK(users->rows_added == 1);
  CHECK(users->rows_changed == 1);
  CHECK(users->rows_removed == 2);
  bool saw_update = false;
  for (auto& r : users->sample) {
    if (r.op == "update") {
      saw_update = true;
      CHECK(r.key_json == "[5]");
      CHECK(r.old_json == R"({"name":"user5"})");
      CHECK(r.new_json == R"({"name":"renamed"})");
    }
  }
  CHECK(saw_update);

  const auto* kv = Find(*d, "kv");
  REQUIRE(kv);
  CHECK(kv->rows_added == 1);
  CHECK(kv->rows_changed == 1);
  bool saw_blob = false;
  for (auto& r : kv->sample) {
    if (r.op == "insert" && r.new_json.find(R"("blob_hex":"00ff")") != std::string::npos) {
      saw_blob = true;
    }
  }
  CHECK(saw_blob);

  const auto* log = Find(*d, "log");  // no declared key: by rowid
  REQUIRE(log);
  CHECK(log->rows_added == 1);
  CHECK(log->rows_removed == 1);

  // Reverse direction swaps added and removed.
  auto back = f.cat->DiffData("acme", Head("dev"), Head("production"));
  REQUIRE(back.ok());
  REQUIRE(Find(*back, "users"));
  CHECK(Find(*back, "users")->rows_added == 2);
  CHECK(Find(*back, "users")->rows_removed == 1);

  // Samples are bounded.
  DataDiffOptions small;
  small.sample_rows = 1;
  auto bounded = f.cat->DiffData("acme", Head("production"), Head("dev"), small);
  REQUIRE(bounded.ok());
  REQUIRE(Find(*bounded, "users"));
  CHECK(Find(*bounded, "users")->sample.size() == 1);

  // Identical states: nothing.
  auto none = f.cat->DiffData("acme", Head("production"), At(base));
  REQUIRE(none.ok());
  CHECK(none->tables.empty());
}

TEST_CASE("data diff: added, removed and reshaped tables are reported, not compared") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE a(x); INSERT INTO a VALUES(1),(2); CREATE TABLE b(y)");
  REQUIRE(f.Branch("dev").ok());
  f.Sql("dev", "DROP TABLE a; ALTER TABLE b ADD COLUMN z; CREATE TABLE c(q); INSERT INTO c VALUES(1)");
  auto d = f.cat->DiffData("acme", Head("production"), Head("dev"));
  REQUIRE(d.ok());
  REQUIRE(Find(*d, "a"));
  CHECK(Find(*d, "a")->note == "table removed");
  CHECK(Find(*d, "a")->rows_removed == 2);
  REQUIRE(Find(*d, "c"));
  CHECK(Find(*d, "c")->note == "table added");
  CHECK(Find(*d, "c")->rows_added == 1);
  REQUIRE(Find(*d, "b"));
  CHECK(Find(*d, "b")->note.rfind("schema_changed", 0) == 0);
}

TEST_CASE("diff of a state no live branch has any more (after rollback)") {
  CatalogFixture f;
  f.Sql("production", "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  Lsn one = f.Sql("production", "INSERT INTO t VALUES(1, 'a')");
  Lsn two = f.Sql("production", "INSERT INTO t VALUES(2, 'b')");
  REQUIRE(f.cat->Rollback("acme", "production", ToLsn(one)).ok());
  // `two` is on no live history now: read through a scratch timeline.
  auto d = f.cat->DiffData("acme", At(two), Head("production"));
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  REQUIRE(d->tables.size() == 1);
  CHECK(d->tables[0].rows_removed == 1);
  // The scratch timeline is gone afterwards.
  auto store = f.cat->Store("acme");
  REQUIRE(store.ok());
  CHECK((*store)->ListTimelines().size() == 1);
}

TEST_CASE("data diff: overflow-only change is still found") {
  CatalogFixture f;
  f.Sql("production",
        "CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB); CREATE TABLE other(x);"
        "INSERT INTO big VALUES(1, zeroblob(20000)); INSERT INTO other VALUES(1)");
  REQUIRE(f.Branch("dev").ok());
  // Same size, only the tail differs: SQLite may rewrite overflow pages only.
  f.Sql("dev", "UPDATE big SET b = zeroblob(19999) || X'01' WHERE id=1");
  auto d = f.cat->DiffData("acme", Head("production"), Head("dev"));
  REQUIRE(d.ok());
  REQUIRE(Find(*d, "big"));
  CHECK(Find(*d, "big")->rows_changed == 1);
}

TEST_CASE("data diff: cost follows the change; non-integer keys go through the session") {
  CatalogFixture f;
  f.Sql("production",
        "CREATE TABLE big(id INTEGER PRIMARY KEY, pad BLOB);"
        "CREATE TABLE tags(name TEXT PRIMARY KEY, n INTEGER);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<4000)"
        "  INSERT INTO big SELECT i, randomblob(300) FROM n;"
        "INSERT INTO tags VALUES('a', 1), ('b', 2)");
  REQUIRE(f.Branch("dev").ok());
  f.Sql("dev", "UPDATE big SET pad=X'01' WHERE id=2500; INSERT INTO big VALUES(5000, X'02');"
               "UPDATE tags SET n=3 WHERE name='b'; DELETE FROM tags WHERE name='a'");
  auto d = f.cat->DiffData("acme", Head("production"), Head("dev"));
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  const auto* big = Find(*d, "big");
  REQUIRE(big);
  CHECK(big->rows_changed == 1);
  CHECK(big->rows_added == 1);
  CHECK(big->rows_removed == 0);
  const auto* tags = Find(*d, "tags");
  REQUIRE(tags);
  CHECK(tags->rows_changed == 1);
  CHECK(tags->rows_removed == 1);
  bool saw_key = false;
  for (auto& r : tags->sample) saw_key |= r.key_json == R"(["b"])";
  CHECK(saw_key);
  // Rows read: those on the few changed leaf pages (plus the small table), not 4000.
  CHECK(d->rows_compared < 200);
}

TEST_CASE("data diff: randomized changes match a brute-force comparison") {
  uint64_t seed = std::getenv("BRANCHDB_SEED") ? std::strtoull(std::getenv("BRANCHDB_SEED"), nullptr, 10)
                                               : std::random_device{}();
  std::cout << "checkpoints diff random test seed=" << seed << " (BRANCHDB_SEED reproduces)\n";
  INFO("seed=" << seed);
  std::mt19937_64 rng(seed);
  CatalogFixture f;
  std::map<int64_t, std::string> base;
  std::string values;
  bool allow_overflow = true;
  auto value = [&](int64_t id) {
    // Some values spill to overflow pages (which makes the diff compare all rows).
    size_t len = allow_overflow && rng() % 10 == 0 ? 3000 + rng() % 3000 : 5 + rng() % 400;
    return "v" + std::to_string(id) + "-" + std::to_string(rng()) + std::string(len, 'x');
  };
  std::string sql = "CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT)";
  for (int64_t id = 1; id <= 600; ++id) {
    base[id] = value(id);
    sql += "; INSERT INTO r VALUES(" + std::to_string(id) + ", '" + base[id] + "')";
  }
  f.Sql("production", sql);
  for (int round = 0; round < 4; ++round) {
    std::string name = "dev" + std::to_string(round);
    allow_overflow = round % 2 == 1;  // even rounds: the page-targeted comparison
    REQUIRE(f.Branch(name).ok());
    std::map<int64_t, std::string> now = base;
    std::string script = "SELECT 1";
    int ops = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < ops; ++i) {
      int64_t id = 1 + static_cast<int64_t>(rng() % 700);
      int kind = static_cast<int>(rng() % 3);
      if (kind == 0 && now.count(id)) {
        script += "; DELETE FROM r WHERE id=" + std::to_string(id);
        now.erase(id);
      } else {
        now[id] = value(id);
        script += "; INSERT OR REPLACE INTO r VALUES(" + std::to_string(id) + ", '" + now[id] + "')";
      }
    }
    f.Sql(name, script);
    uint64_t added = 0, removed = 0, changed = 0;
    for (auto& [id, v] : now) {
      if (!base.count(id)) ++added;
      else if (base[id] != v) ++changed;
    }
    for (auto& [id, v] : base) removed += !now.count(id);
    auto d = f.cat->DiffData("acme", Head("production"), Head(name));
    INFO("round " << round);
    REQUIRE(d.ok());
    const auto* r = Find(*d, "r");
    if (added + removed + changed == 0) {
      CHECK(r == nullptr);
      continue;
    }
    REQUIRE(r);
    CHECK(r->rows_added == added);
    CHECK(r->rows_removed == removed);
    CHECK(r->rows_changed == changed);
  }
}

}  // namespace
}  // namespace branchdb::checkpoints::testing
