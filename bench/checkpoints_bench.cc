// checkpoints_bench: latency of the catalog's O(1) operations, and that it does
// not grow with database size or history length:
//   - Rollback to a random one of the branch's checkpoints (p50, p99)
//   - CreateBranch from a timestamp (BranchSource::kParentTime) (p50, p99)
// on a small database (1 MB, 100 checkpoints) and a large one (~1 GB, 10,000
// checkpoints). Targets: p50 < 1 ms, and large/small p50 ratio <= 2 (no growth).
// Each operation is durable (a PageStore record with fdatasync; CreateBranch
// also commits catalog.db), so the absolute numbers follow the disk's fsync.
// Environment: BRANCHDB_BENCH_MAX_MB caps the large database (default 1024),
// BRANCHDB_BENCH_CHECKPOINTS the large history (default 10000),
// BRANCHDB_BENCH_DIR is the scratch directory's base (bench_util.h).
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "catalog/catalog.h"

namespace branchdb::bench {
namespace {

using catalog::Catalog;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "checkpoints_bench: %s\n", what.c_str());
  std::exit(1);
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Die(sql.substr(0, 200) + ": " + (err != nullptr ? err : "?"));
  }
}

struct Setup {
  std::vector<catalog::Lsn> checkpoints;  // LSNs of the history's commits
  std::vector<int64_t> times;                 // their times
};

// Fills project `name` with ~mb MiB of rows, then `history` one-row updates.
Setup Build(Catalog& cat, const std::string& name, int mb, int history) {
  if (!cat.CreateProject(name, {}).ok()) Die("create project");
  auto db = cat.OpenBranchConnection(name, "production");
  if (!db.ok()) Die("open: " + db.status().ToString());
  Exec(db->get(), "CREATE TABLE big(id INTEGER PRIMARY KEY, pad BLOB)");
  // 64 MiB per transaction: rows of ~3.5 KB.
  const int rows_per_mb = 290;
  int total_rows = std::max(1, mb * rows_per_mb);
  for (int done = 0; done < total_rows;) {
    int n = std::min(total_rows - done, 64 * rows_per_mb);
    Exec(db->get(), "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i<" +
                        std::to_string(n - 1) + ") INSERT INTO big SELECT " +
                        std::to_string(done) + "+i, randomblob(3500) FROM n");
    done += n;
  }
  Setup s;
  sqlite3_stmt* upd = nullptr;
  if (sqlite3_prepare_v2(db->get(), "UPDATE big SET pad=randomblob(3500) WHERE id=?1", -1, &upd,
                         nullptr) != SQLITE_OK) {
    Die("prepare");
  }
  std::mt19937_64 rng(42);
  Clock* clock = Clock::Default();
  for (int i = 0; i < history; ++i) {
    sqlite3_bind_int64(upd, 1, static_cast<int64_t>(rng() % total_rows));
    if (sqlite3_step(upd) != SQLITE_DONE) Die("update");
    sqlite3_reset(upd);
    s.checkpoints.push_back(storage::LastCommitLsn(db->get()));
    s.times.push_back(clock->NowMicros());
  }
  sqlite3_finalize(upd);
  return s;
}

struct Latency {
  double p50 = 0, p99 = 0;
};

Latency MeasureRollback(Catalog& cat, const std::string& project, const Setup& s, int n) {
  std::mt19937_64 rng(7);
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    catalog::RollbackTarget t;
    t.lsn = s.checkpoints[rng() % s.checkpoints.size()];
    double t0 = NowSeconds();
    auto r = cat.Rollback(project, "production", t);
    ms.push_back((NowSeconds() - t0) * 1000);
    if (!r.ok()) Die("rollback: " + r.status().ToString());
    // Undo every other one, as an agent would.
    if (i % 2 == 1) {
      t.lsn = r->previous_head_lsn;
      if (!cat.Rollback(project, "production", t).ok()) Die("undo");
    }
  }
  return {Percentile(ms, 50), Percentile(ms, 99)};
}

Latency MeasureBranchFromTime(Catalog& cat, const std::string& project, const Setup& s, int n) {
  std::mt19937_64 rng(9);
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    catalog::CreateBranchOptions o;
    o.from.kind = catalog::BranchSource::Kind::kParentTime;
    o.from.time_micros = s.times[rng() % s.times.size()];
    std::string name = "b/" + std::to_string(i);
    double t0 = NowSeconds();
    auto b = cat.CreateBranch(project, name, o);
    ms.push_back((NowSeconds() - t0) * 1000);
    if (!b.ok()) Die("branch: " + b.status().ToString());
  }
  return {Percentile(ms, 50), Percentile(ms, 99)};
}

void Report(const std::string& what, const std::string& size, Latency l,
            std::optional<double> small_p50) {
  Metric p50;
  p50.bench = "checkpoints";
  p50.metric = what + "_p50_" + size;
  p50.value = l.p50;
  p50.unit = "ms";
  p50.lower_is_better = true;
  if (small_p50) {
    p50.baseline_name = what + "_p50_1MB";
    p50.baseline = *small_p50;
    p50.target = "< 1 ms, <= 2x the 1 MB p50";
    p50.met = l.p50 < 1.0 && l.p50 <= 2 * *small_p50 + 0.05;
  } else {
    p50.target = "< 1 ms";
    p50.met = l.p50 < 1.0;
  }
  Emit(p50);
  Metric p99;
  p99.bench = "checkpoints";
  p99.metric = what + "_p99_" + size;
  p99.value = l.p99;
  p99.unit = "ms";
  p99.lower_is_better = true;
  Emit(p99);
}

int Main() {
  int max_mb = 1024;
  if (const char* s = std::getenv("BRANCHDB_BENCH_MAX_MB")) max_mb = std::max(1, std::atoi(s));
  int history = 10000;
  if (const char* s = std::getenv("BRANCHDB_BENCH_CHECKPOINTS")) history = std::max(10, std::atoi(s));
  ScratchDir dir("checkpoints_bench");
  catalog::CatalogOptions o;
  o.reaper_interval_micros = 0;
  o.gc_interval_micros = 0;
  auto cat = Catalog::Open(o, dir.path());
  if (!cat.ok()) Die("open: " + cat.status().ToString());
  const int kSamples = 300;

  double t0 = NowSeconds();
  Setup small = Build(**cat, "small", 1, 100);
  std::fprintf(stderr, "built 1 MB / 100 checkpoints in %.1f s\n", NowSeconds() - t0);
  t0 = NowSeconds();
  Setup large = Build(**cat, "large", max_mb, history);
  std::string size = max_mb >= 1024 && max_mb % 1024 == 0 ? std::to_string(max_mb / 1024) + "GB"
                                                          : std::to_string(max_mb) + "MB";
  std::fprintf(stderr, "built %s / %d checkpoints in %.1f s\n", size.c_str(), history,
               NowSeconds() - t0);

  Latency rb_small = MeasureRollback(**cat, "small", small, kSamples);
  Latency rb_large = MeasureRollback(**cat, "large", large, kSamples);
  Latency br_small = MeasureBranchFromTime(**cat, "small", small, kSamples);
  Latency br_large = MeasureBranchFromTime(**cat, "large", large, kSamples);
  Report("rollback", "1MB", rb_small, std::nullopt);
  Report("rollback", size, rb_large, rb_small.p50);
  Report("branch_from_time", "1MB", br_small, std::nullopt);
  Report("branch_from_time", size, br_large, br_small.p50);
  return 0;
}

}  // namespace
}  // namespace branchdb::bench

int main() { return branchdb::bench::Main(); }
