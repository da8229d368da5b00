// Schema diff and data diff between branch heads and checkpoints.
#include <map>
#include <random>

#include "tests/catalog/catalog_fixture.h"
#include "tests/util/test_env.h"

namespace branchdb::catalog::testing {
namespace {

using ::branchdb::testing::TestSeed;

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
  for (auto& r : users->rows) {
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
  for (auto& r : kv->rows) {
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

  // Pages are bounded.
  DataDiffOptions small;
  small.limit = 1;
  auto bounded = f.cat->DiffData("acme", Head("production"), Head("dev"), small);
  REQUIRE(bounded.ok());
  size_t listed = 0;
  for (const auto& t : bounded->tables) listed += t.rows.size();
  CHECK(listed == 1);
  CHECK_FALSE(bounded->next_cursor.empty());

  // Identical states: nothing.
  auto none = f.cat->DiffData("acme", Head("production"), At(base));
  REQUIRE(none.ok());
  CHECK(none->tables.empty());
}

TEST_CASE("data diff: added and removed tables list their rows; reshaped tables are compared") {
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
  REQUIRE(Find(*d, "c")->rows.size() == 1);
  CHECK(Find(*d, "c")->rows[0].op == "insert");
  CHECK(Find(*d, "a")->rows.size() == 2);
  REQUIRE(Find(*d, "b"));
  CHECK(Find(*d, "b")->note.empty());
  CHECK(Find(*d, "b")->columns_added == std::vector<std::string>{"z"});
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
  for (auto& r : tags->rows) saw_key |= r.key_json == R"(["b"])";
  CHECK(saw_key);
  // Rows read: those on the few changed leaf pages (plus the small table), not 4000.
  CHECK(d->rows_compared < 200);
}

TEST_CASE("data diff: randomized changes match a brute-force comparison") {
  const uint64_t seed = TestSeed("checkpoints diff random test");
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

// Every row change of a diff, through all pages of `limit`.
std::vector<std::pair<std::string, RowChange>> AllRows(Catalog& cat, const StateRef& from,
                                                       const StateRef& to, size_t limit) {
  std::vector<std::pair<std::string, RowChange>> out;
  DataDiffOptions o;
  o.limit = limit;
  for (int pages = 0; pages < 10000; ++pages) {
    auto d = cat.DiffData("acme", from, to, o);
    INFO(d.status().ToString());
    REQUIRE(d.ok());
    for (const auto& t : d->tables) {
      for (const auto& r : t.rows) out.push_back({t.table, r});
    }
    if (d->next_cursor.empty()) break;
    o.cursor = d->next_cursor;
  }
  return out;
}

const RowChange* FindRow(const TableDataDiff& t, const std::string& key) {
  for (const auto& r : t.rows) {
    if (r.key_json == key) return &r;
  }
  return nullptr;
}

TEST_CASE("data diff: a column added and backfilled compares rows on key and common columns") {
  CatalogFixture f;
  f.Sql("production",
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO customers VALUES(1, 'ann'), (2, 'bob'), (3, 'cy'), (4, 'di'), (5, 'ed')");
  REQUIRE(f.Branch("dev").ok());
  f.Sql("dev",
        "ALTER TABLE customers ADD COLUMN tier TEXT;"
        "UPDATE customers SET tier = 'gold' WHERE id <= 2;"
        "UPDATE customers SET name = 'cyd' WHERE id = 3;"
        "DELETE FROM customers WHERE id = 4; INSERT INTO customers VALUES(10, 'new', 'silver')");
  auto d = f.cat->DiffData("acme", Head("production"), Head("dev"));
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  const auto* t = Find(*d, "customers");
  REQUIRE(t);
  CHECK(t->note.empty());  // was "schema_changed: rows not compared"
  CHECK(t->columns_added == std::vector<std::string>{"tier"});
  CHECK(t->key_columns == std::vector<std::string>{"rowid"});
  CHECK(t->rows_changed == 3);
  CHECK(t->rows_added == 1);
  CHECK(t->rows_removed == 1);
  REQUIRE(FindRow(*t, "[1]"));
  CHECK(FindRow(*t, "[1]")->new_json == R"({"tier":"gold"})");
  REQUIRE(FindRow(*t, "[3]"));
  CHECK(FindRow(*t, "[3]")->old_json == R"({"name":"cy"})");
  CHECK(FindRow(*t, "[3]")->new_json == R"({"name":"cyd"})");
  CHECK(FindRow(*t, "[5]") == nullptr);  // unchanged: its added column is NULL
  REQUIRE(FindRow(*t, "[10]"));
  CHECK(FindRow(*t, "[10]")->new_json == R"({"id":10,"name":"new","tier":"silver"})");
  // The other way round the column is dropped: its values show as old.
  auto back = f.cat->DiffData("acme", Head("dev"), Head("production"));
  REQUIRE(back.ok());
  const auto* b = Find(*back, "customers");
  REQUIRE(b);
  CHECK(b->columns_removed == std::vector<std::string>{"tier"});
  REQUIRE(FindRow(*b, "[2]"));
  CHECK(FindRow(*b, "[2]")->old_json == R"({"tier":"gold"})");
}

TEST_CASE("data diff: a reshaped table with a declared key is joined on that key") {
  CatalogFixture f;
  f.Sql("production",
        "CREATE TABLE kv(k TEXT PRIMARY KEY, v, gone) WITHOUT ROWID;"
        "INSERT INTO kv VALUES('a', 1, 'x'), ('b', 2, NULL), ('c', 3, NULL)");
  REQUIRE(f.Branch("dev").ok());
  f.Sql("dev",
        "ALTER TABLE kv DROP COLUMN gone; ALTER TABLE kv ADD COLUMN w;"
        "UPDATE kv SET v = 20 WHERE k = 'b'; DELETE FROM kv WHERE k = 'c';"
        "INSERT INTO kv VALUES('d', 4, 'w')");
  auto d = f.cat->DiffData("acme", Head("production"), Head("dev"));
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  const auto* t = Find(*d, "kv");
  REQUIRE(t);
  CHECK(t->key_columns == std::vector<std::string>{"k"});
  CHECK(t->columns_added == std::vector<std::string>{"w"});
  CHECK(t->columns_removed == std::vector<std::string>{"gone"});
  CHECK(t->rows_changed == 2);  // a: its dropped value; b: v
  CHECK(t->rows_removed == 1);
  CHECK(t->rows_added == 1);
  REQUIRE(FindRow(*t, R"(["a"])"));
  CHECK(FindRow(*t, R"(["a"])")->old_json == R"({"gone":"x"})");
  REQUIRE(FindRow(*t, R"(["d"])"));
  CHECK(FindRow(*t, R"(["d"])")->new_json == R"({"k":"d","v":4,"w":"w"})");
}

TEST_CASE("data diff: pages of any size join into the whole diff, and counts are totals") {
  CatalogFixture f;
  f.Sql("production",
        "CREATE TABLE a(id INTEGER PRIMARY KEY, v); CREATE TABLE k(name TEXT PRIMARY KEY, n);"
        "CREATE TABLE old(x);"
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<60)"
        "  INSERT INTO a SELECT i, i FROM s;"
        "INSERT INTO k VALUES('p', 1), ('q', 2), ('r', 3); INSERT INTO old VALUES(1), (2)");
  REQUIRE(f.Branch("dev").ok());
  f.Sql("dev",
        "UPDATE a SET v = v * 10 WHERE id % 3 = 0; DELETE FROM a WHERE id % 7 = 0;"
        "INSERT INTO a VALUES(100, 1), (101, 2); UPDATE k SET n = 9; DROP TABLE old;"
        "CREATE TABLE fresh(y); INSERT INTO fresh VALUES('f')");
  auto all = AllRows(*f.cat, Head("production"), Head("dev"), 1000);
  auto d = f.cat->DiffData("acme", Head("production"), Head("dev"));
  REQUIRE(d.ok());
  uint64_t total = 0;
  for (const auto& t : d->tables) total += t.rows_added + t.rows_removed + t.rows_changed;
  CHECK(all.size() == total);  // was at most 20 samples per table
  CHECK(total > 20);
  for (size_t limit : {1, 2, 3, 7, 20}) {
    INFO("limit " << limit);
    auto paged = AllRows(*f.cat, Head("production"), Head("dev"), limit);
    REQUIRE(paged.size() == all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      CHECK(paged[i].first == all[i].first);
      CHECK(paged[i].second.key_json == all[i].second.key_json);
      CHECK(paged[i].second.op == all[i].second.op);
    }
  }
  // A cursor pins both states: pages stay the same while the branch moves.
  DataDiffOptions o;
  o.limit = 5;
  auto first = f.cat->DiffData("acme", Head("production"), Head("dev"), o);
  REQUIRE(first.ok());
  f.Sql("dev", "DELETE FROM a");
  o.cursor = first->next_cursor;
  auto second = f.cat->DiffData("acme", Head("production"), Head("dev"), o);
  REQUIRE(second.ok());
  CHECK(second->to_lsn == first->to_lsn);
  CHECK(Reason(f.cat->DiffData("acme", Head("production"), Head("dev"),
                               DataDiffOptions{5, "d1.x", {}}).status()) == "invalid_argument");
}

// Applies every page of the patch from -> to on a branch made at `from`, and
// checks that its data and schema are then those of `to`.
void CheckPatch(CatalogFixture& f, Lsn from, const std::string& to, size_t limit) {
  std::string name = "patched" + std::to_string(from) + "-" + std::to_string(limit);
  BranchSource at;
  at.kind = BranchSource::Kind::kCheckpoint;
  at.lsn = from;
  REQUIRE(f.Branch(name, at).ok());
  DataDiffOptions o;
  o.limit = limit;
  for (int pages = 0; pages < 1000; ++pages) {
    auto p = f.cat->DiffPatch("acme", At(from), Head(to), o);
    INFO(p.status().ToString());
    REQUIRE(p.ok());
    CHECK(p->complete);
    std::string script = "SELECT 1";
    for (const auto& s : p->statements) script += ";\n" + s;
    INFO(script);
    f.Sql(name, script);
    if (p->next_cursor.empty()) break;
    o.cursor = p->next_cursor;
  }
  auto data = f.cat->DiffData("acme", Head(name), Head(to));
  REQUIRE(data.ok());
  for (const auto& t : data->tables) {
    INFO("table " << t.table << " note " << t.note);
    CHECK(t.rows_added + t.rows_removed + t.rows_changed == 0);
    CHECK(t.columns_added.empty());
    CHECK(t.columns_removed.empty());
  }
  auto schema = f.cat->DiffSchema("acme", Head(name), Head(to));
  REQUIRE(schema.ok());
  for (const auto& s : schema->objects) {
    INFO(s.type << " " << s.name << " " << s.change << ": " << s.old_sql << " -> " << s.new_sql);
    CHECK((s.change == "changed" && s.columns_changed.empty() && s.columns_added.empty() &&
           s.columns_removed.empty()));  // only the CREATE text may differ after ALTER TABLE
  }
}

TEST_CASE("data diff as SQL: applying the patch turns one state into the other, page by page") {
  CatalogFixture f;
  Lsn base = f.Sql("production",
                   "CREATE TABLE c(id INTEGER PRIMARY KEY, name TEXT);"
                   "CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
                   "CREATE TABLE log(msg); CREATE TABLE gone(x);"
                   "CREATE INDEX c_name ON c(name);"
                   "INSERT INTO c VALUES(1, 'a'), (2, 'it''s'), (3, NULL);"
                   "INSERT INTO kv VALUES('x', X'00ff'), ('y', 1.5);"
                   "INSERT INTO log VALUES('one'), ('two'); INSERT INTO gone VALUES(1)");
  REQUIRE(f.Branch("dev").ok());
  f.Sql("dev",
        "ALTER TABLE c ADD COLUMN tier TEXT NOT NULL DEFAULT 'std';"
        "UPDATE c SET tier = 'gold' WHERE id = 1; UPDATE c SET name = 'b' WHERE id = 2;"
        "DELETE FROM c WHERE id = 3; INSERT INTO c VALUES(7, 'n', 'vip');"
        "UPDATE kv SET v = 2.25 WHERE k = 'y'; INSERT INTO kv VALUES('z', NULL);"
        "DELETE FROM log WHERE msg = 'one'; INSERT INTO log VALUES('three');"
        "DROP TABLE gone; CREATE TABLE fresh(id INTEGER PRIMARY KEY, w); INSERT INTO fresh VALUES(5, 'w');"
        "DROP INDEX c_name; CREATE INDEX c_tier ON c(tier);"
        "CREATE TRIGGER c_log AFTER INSERT ON c BEGIN INSERT INTO log VALUES('trig'); END");
  for (size_t limit : {1, 3, 1000}) {
    INFO("limit " << limit);
    CheckPatch(f, base, "dev", limit);
  }
  // And back: dev's state into production's (columns and tables dropped).
  Lsn dev_head = f.Head("dev");
  REQUIRE(f.cat->LabelCheckpoint("acme", "dev", dev_head, "dev-head").ok());
  CheckPatch(f, dev_head, "production", 2);
}

}  // namespace
}  // namespace branchdb::catalog::testing
