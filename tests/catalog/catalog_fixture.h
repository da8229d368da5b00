// Test fixture for the catalog/ tests: a Catalog on a temp dir with a
// MockClock, one project "acme", and SQL helpers that go through the real VFS.
#ifndef BRANCHDB_TESTS_CHECKPOINTS_CATALOG_FIXTURE_H_
#define BRANCHDB_TESTS_CHECKPOINTS_CATALOG_FIXTURE_H_

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>

#include "base/mock_clock.h"
#include "catalog/catalog.h"
#include "tests/util/temp_dir.h"

namespace branchdb::catalog::testing {

inline std::string Reason(const Status& s) { return s.reason(); }

class CatalogFixture {
  branchdb::testing::TempDir dir_;
  MockClock clock_;
  EnvWithClock env_;

 public:
  explicit CatalogFixture(bool create_project = true)
      : dir_(branchdb::testing::FastTestDirBase()), env_(Env::Default(), &clock_) {
    Open();
    if (create_project) {
      auto p = cat->CreateProject("acme", {});
      REQUIRE(p.ok());
    }
  }

  void Open() {
    CatalogOptions o;
    o.env = &env_;
    o.reaper_interval_micros = 0;
    o.gc_interval_micros = 0;
    auto r = Catalog::Open(o, dir_.path());
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    cat = std::move(*r);
  }
  void Reopen() {
    cat.reset();
    Open();
  }

  // Runs a script as one transaction on the branch head; returns the commit LSN
  // (0 if nothing was committed).
  Lsn Sql(const std::string& branch, const std::string& sql, const std::string& request_id = "",
          const std::string& project = "acme") {
    auto db = cat->OpenBranchConnection(project, branch);
    INFO(db.status().ToString());
    REQUIRE(db.ok());
    Annotation a;
    a.client_id = "test-client";
    a.request_id = request_id;
    a.summary = sql.substr(0, 60);
    a.rows = 1;
    REQUIRE(storage::SetNextCommitAnnotation(db->get(), EncodeAnnotation(a)).ok());
    std::string script = "BEGIN; " + sql + "; COMMIT;";
    char* err = nullptr;
    int rc = sqlite3_exec(db->get(), script.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    INFO(msg);
    REQUIRE(rc == SQLITE_OK);
    return storage::LastCommitLsn(db->get());
  }

  // Rows of a query as "a|b;c|d" (NULL as "NULL"), read-only at the head or as of.
  std::string Query(const std::string& branch, const std::string& sql,
                    std::optional<Lsn> as_of = std::nullopt, const std::string& project = "acme") {
    ConnectionRequest req;
    req.read_only = true;
    req.as_of = as_of;
    auto db = cat->OpenBranchConnection(project, branch, req);
    INFO(db.status().ToString());
    REQUIRE(db.ok());
    std::string out;
    char* err = nullptr;
    int rc = sqlite3_exec(
        db->get(), sql.c_str(),
        [](void* arg, int n, char** vals, char**) {
          auto* s = static_cast<std::string*>(arg);
          if (!s->empty()) *s += ";";
          for (int i = 0; i < n; ++i) {
            if (i) *s += "|";
            *s += vals[i] ? vals[i] : "NULL";
          }
          return 0;
        },
        &out, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    INFO(msg);
    REQUIRE(rc == SQLITE_OK);
    return out;
  }

  Result<BranchInfo> Branch(const std::string& name, BranchSource from = {},
                            std::optional<int64_t> ttl = std::nullopt, bool prot = false) {
    CreateBranchOptions o;
    o.from = std::move(from);
    o.ttl_micros = ttl;
    o.is_protected = prot;
    return cat->CreateBranch("acme", name, o);
  }

  Lsn Head(const std::string& branch) {
    auto list = cat->ListBranches("acme");
    REQUIRE(list.ok());
    for (const BranchInfo& b : *list) {
      if (b.name == branch) return b.head;
    }
    FAIL("no branch " << branch);
    return 0;
  }

  MockClock& clock() { return clock_; }
  Env* env() { return &env_; }
  const std::string& dir() const { return dir_.path(); }

  // Declared last: destroyed before the env and the directory.
  std::unique_ptr<Catalog> cat;
};

inline RollbackTarget ToLsn(Lsn lsn) {
  RollbackTarget t;
  t.kind = RollbackTarget::Kind::kLsn;
  t.lsn = lsn;
  return t;
}

}  // namespace branchdb::catalog::testing

#endif  // BRANCHDB_TESTS_CHECKPOINTS_CATALOG_FIXTURE_H_
