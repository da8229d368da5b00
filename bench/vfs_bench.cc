// vfs_bench: SQLite on the branchdb VFS against native SQLite (a file in WAL
// mode, synchronous=FULL) in the same run, on the same machine and data:
//   - single-row INSERT transactions per second (target >= 1.0x native)
//   - 1000-row transactions per second
//   - the committing thread's CPU, and what the disk wrote, per transaction of both (context)
//   - point SELECT by primary key and a 10k-row range scan on a 1 GB
//     database (targets >= 0.9x native)
//   - UPDATE transactions of 1000 rows in place on that database (~250
//     existing pages each): the worst case of the commit's comparison of
//     every written page with the stored one (a context metric)
//   - opening a connection (and running a first query) on a branch of that
//     database, p50 (< 5 ms), also with the branch's creation; baseline:
//     copying the native file (sqlite3_backup) and opening the copy
//   - the writers sweep: durable single-row INSERT transactions per second of
//     N = 1, 2, 4, 8, 16 concurrent writers (threads), each on its own branch
//     of one page store, against N native SQLite files (WAL, synchronous=FULL,
//     one file per writer: a branch is a database of its own, and N writers on
//     one native file would only queue on its write lock), and against the
//     disk's raw limit: N threads each appending 4 KiB + fdatasync to a file of
//     its own. Lines carry "writers" for the plot (scripts/bench.sh).
//   - reads deep in history, down a chain of branches, and on a branch whose
//     pages sibling branches keep rewriting, against reads without that
//     (targets: flat, at most 1.5x slower; Depth and Siblings below)
// Environment: BRANCHDB_BENCH_MAX_MB caps the large database (default 1024),
// BRANCHDB_BENCH_SECONDS: one fifth of it is a round of the writers sweep
// (default 5, i.e. rounds of 1 s, 3 rounds per point),
// BRANCHDB_BENCH_DIR is the scratch directory's base (bench_util.h),
// BRANCHDB_BENCH_VFS_PARTS runs only the listed parts (comma-separated, of
// writes, sweep, reads, open, depth, siblings; default: all), BRANCHDB_BENCH_VFS_CACHE_MB
// > 0 caches page images in the page store, in a cache of that many MiB
// (default: PageStoreOptions', no page images cached), BRANCHDB_BENCH_PREALLOCATE
// sets the store's preallocate_bytes (the zero region; default PageStoreOptions').
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "storage/cache.h"
#include "storage/page_store.h"
#include "storage/vfs/vfs.h"

namespace branchdb::bench {
namespace {

using storage::SqliteHandle;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "vfs_bench: %s\n", what.c_str());
  std::exit(1);
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Die(sql.substr(0, 200) + ": " + (err != nullptr ? err : "?"));
  }
}

sqlite3_stmt* Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    Die(std::string("prepare: ") + sqlite3_errmsg(db));
  }
  return stmt;
}

void StepDone(sqlite3* db, sqlite3_stmt* stmt) {
  if (sqlite3_step(stmt) != SQLITE_DONE) Die(std::string("step: ") + sqlite3_errmsg(db));
  sqlite3_reset(stmt);
}

SqliteHandle OpenNative(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  SqliteHandle db(raw);
  if (rc != SQLITE_OK) Die("open " + path);
  Exec(db.get(), "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=2000");
  return db;
}

struct Ours {
  std::shared_ptr<storage::PageStore> store;
  storage::TimelineId timeline = 0;

  // cache_pages > 0: the connection's cache_size (most page reads then
  // reach the store); as_of: a read-only connection of that state.
  SqliteHandle Open(storage::TimelineId t, int cache_pages = 0,
                    std::optional<storage::Lsn> as_of = std::nullopt) {
    storage::ConnectionOptions options;
    options.store = store;
    options.timeline = t;
    options.as_of = as_of;
    if (cache_pages > 0) options.cache_pages = cache_pages;
    auto db = storage::OpenConnection(options);
    if (!db.ok()) Die("OpenConnection: " + db.status().ToString());
    return std::move(db).value();
  }
};

// cache: the store's caches in one shared Cache, as the server runs its
// stores (null: the store's own, of PageStoreOptions' default sizes).
Ours OpenOurs(const std::string& dir, std::shared_ptr<storage::Cache> cache = nullptr) {
  Ours ours;
  storage::PageStoreOptions options;
  options.cache = std::move(cache);
  if (const char* pre = std::getenv("BRANCHDB_BENCH_PREALLOCATE")) {
    options.preallocate_bytes = static_cast<uint64_t>(std::atoll(pre));
  }
  if (const char* mb = std::getenv("BRANCHDB_BENCH_VFS_CACHE_MB")) {
    options.cache_bytes = static_cast<uint64_t>(std::atoll(mb)) << 20;
    options.cache_page_images = options.cache_bytes > 0;
  }
  auto store = storage::PageStore::Open(options, dir);
  if (!store.ok()) Die("PageStore::Open: " + store.status().ToString());
  ours.store = std::move(store).value();
  auto t = ours.store->CreateTimeline(0, "bench");
  if (!t.ok()) Die("CreateTimeline: " + t.status().ToString());
  ours.timeline = *t;
  return ours;
}

// CPU time of the calling thread, in seconds.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The block device's stat file (/sys/dev/block/MAJ:MIN/stat) under `dir`;
// empty when there is none (tmpfs).
std::string DeviceStatPath(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || major(st.st_dev) == 0) return "";
  return "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" +
         std::to_string(minor(st.st_dev)) + "/stat";
}

// KiB the device has written so far (its 7th field: sectors written); 0
// without a device. Counts every writer of the device, not only this process.
double DeviceKibWritten(const std::string& stat_path) {
  FILE* f = stat_path.empty() ? nullptr : std::fopen(stat_path.c_str(), "r");
  if (f == nullptr) return 0;
  double fields[7] = {};
  int n = 0;
  while (n < 7 && std::fscanf(f, "%lf", &fields[n]) == 1) ++n;
  std::fclose(f);
  return n == 7 ? fields[6] / 2 : 0;
}

struct InsertRoundResult {
  int txns = 0;
  double seconds = 0;      // elapsed
  double cpu_seconds = 0;  // of the calling thread: the transactions' CPU, not the waits
  double device_kib = 0;   // written by the scratch directory's device meanwhile
};

// Runs `rows`-row INSERT transactions for about `seconds` (at least
// `min_txns`); device_stat: DeviceStatPath() of the database's directory.
InsertRoundResult InsertRound(sqlite3* db, int rows, double seconds, int min_txns,
                              const std::string& device_stat) {
  Exec(db, "CREATE TABLE IF NOT EXISTS ins(id INTEGER PRIMARY KEY, a INTEGER, b TEXT)");
  sqlite3_stmt* ins = Prepare(db, "INSERT INTO ins(a, b) VALUES(?1, 'some text of a row')");
  sqlite3_stmt* begin = Prepare(db, "BEGIN");
  sqlite3_stmt* commit = Prepare(db, "COMMIT");
  int txns = 0;
  const double start = NowSeconds();
  const double cpu_start = ThreadCpuSeconds();
  const double kib_start = DeviceKibWritten(device_stat);
  while (txns < min_txns || NowSeconds() - start < seconds) {
    if (rows > 1) StepDone(db, begin);
    for (int i = 0; i < rows; ++i) {
      sqlite3_bind_int64(ins, 1, txns * 1000 + i);
      StepDone(db, ins);
    }
    if (rows > 1) StepDone(db, commit);
    ++txns;
  }
  InsertRoundResult r;
  r.txns = txns;
  r.cpu_seconds = ThreadCpuSeconds() - cpu_start;
  r.device_kib = DeviceKibWritten(device_stat) - kib_start;
  r.seconds = NowSeconds() - start;
  sqlite3_finalize(ins);
  sqlite3_finalize(begin);
  sqlite3_finalize(commit);
  return r;
}

// Both sides' figures: transactions per second (each side's best round),
// CPU per transaction (over all rounds, µs) and KiB the device wrote per
// transaction (over all rounds; 0 without a device).
struct InsertRates {
  double ours = 0, native = 0;
  double ours_cpu_us = 0, native_cpu_us = 0;
  double ours_kib = 0, native_kib = 0;
};

// Measured in alternating rounds, each side's best round counting, so that
// background load on a shared machine hits both alike and spikes do not
// decide the ratio.
InsertRates MeasureInserts(sqlite3* ours, sqlite3* native, int rows, int rounds,
                           double round_seconds, int min_txns, const std::string& device_stat) {
  InsertRates rates;
  InsertRoundResult ours_total, native_total;
  auto add = [](InsertRoundResult* total, const InsertRoundResult& r) {
    total->txns += r.txns;
    total->cpu_seconds += r.cpu_seconds;
    total->device_kib += r.device_kib;
  };
  for (int i = 0; i < rounds; ++i) {
    InsertRoundResult n = InsertRound(native, rows, round_seconds, min_txns, device_stat);
    rates.native = std::max(rates.native, n.txns / n.seconds);
    add(&native_total, n);
    InsertRoundResult o = InsertRound(ours, rows, round_seconds, min_txns, device_stat);
    rates.ours = std::max(rates.ours, o.txns / o.seconds);
    add(&ours_total, o);
  }
  rates.ours_cpu_us = ours_total.cpu_seconds * 1e6 / std::max(1, ours_total.txns);
  rates.native_cpu_us = native_total.cpu_seconds * 1e6 / std::max(1, native_total.txns);
  rates.ours_kib = ours_total.device_kib / std::max(1, ours_total.txns);
  rates.native_kib = native_total.device_kib / std::max(1, native_total.txns);
  return rates;
}

// Fills kv(id, v) with `rows` rows of ~1000 bytes, 20000 rows per transaction.
void Fill(sqlite3* db, int64_t rows) {
  Exec(db, "CREATE TABLE kv(id INTEGER PRIMARY KEY, v BLOB)");
  sqlite3_stmt* ins = Prepare(db, "INSERT INTO kv(id, v) VALUES(?1, randomblob(1000))");
  for (int64_t id = 1; id <= rows;) {
    Exec(db, "BEGIN");
    for (int i = 0; i < 20000 && id <= rows; ++i, ++id) {
      sqlite3_bind_int64(ins, 1, id);
      StepDone(db, ins);
    }
    Exec(db, "COMMIT");
  }
  sqlite3_finalize(ins);
}

double PointSelectRate(sqlite3* db, int64_t rows, int queries, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(1, rows);
  sqlite3_stmt* sel = Prepare(db, "SELECT length(v) FROM kv WHERE id = ?1");
  const double start = NowSeconds();
  int64_t total = 0;
  for (int i = 0; i < queries; ++i) {
    sqlite3_bind_int64(sel, 1, pick(rng));
    if (sqlite3_step(sel) != SQLITE_ROW) Die("point select");
    total += sqlite3_column_int64(sel, 0);
    sqlite3_reset(sel);
  }
  const double elapsed = NowSeconds() - start;
  sqlite3_finalize(sel);
  if (total == 0) Die("no data");
  return queries / elapsed;
}

double RangeScanRate(sqlite3* db, int64_t rows, int scans, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(1, std::max<int64_t>(1, rows - 10000));
  sqlite3_stmt* scan =
      Prepare(db, "SELECT count(*), sum(length(v)) FROM kv WHERE id BETWEEN ?1 AND ?1 + 9999");
  const double start = NowSeconds();
  for (int i = 0; i < scans; ++i) {
    sqlite3_bind_int64(scan, 1, pick(rng));
    if (sqlite3_step(scan) != SQLITE_ROW) Die("range scan");
    sqlite3_reset(scan);
  }
  const double elapsed = NowSeconds() - start;
  sqlite3_finalize(scan);
  return scans / elapsed;
}

// Rewrites 1000 consecutive rows of kv in place (new blobs of the same size)
// per transaction, `txns` times; returns transactions per second.
double UpdateRate(sqlite3* db, int64_t rows, int txns, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(1, std::max<int64_t>(1, rows - 1000));
  sqlite3_stmt* upd =
      Prepare(db, "UPDATE kv SET v = randomblob(1000) WHERE id BETWEEN ?1 AND ?1 + 999");
  const double start = NowSeconds();
  for (int i = 0; i < txns; ++i) {
    sqlite3_bind_int64(upd, 1, pick(rng));
    StepDone(db, upd);
  }
  const double elapsed = NowSeconds() - start;
  sqlite3_finalize(upd);
  return txns / elapsed;
}

// min_ratio: the target, value >= min_ratio x native; none: a context metric.
void EmitRatio(const std::string& metric, double value, double native, const std::string& unit,
               std::optional<double> min_ratio) {
  Metric m;
  m.bench = "vfs";
  m.metric = metric;
  m.value = value;
  m.unit = unit;
  m.baseline_name = "native sqlite (WAL, sync=FULL)";
  m.baseline = native;
  if (min_ratio.has_value()) {
    char target[32];
    std::snprintf(target, sizeof(target), ">= %.1fx native", *min_ratio);
    m.target = target;
    m.met = native > 0 && value / native >= *min_ratio;
  }
  Emit(m);
}

// Context lines of both sides, lower is better: the committing thread's CPU
// per transaction (where a disk-bound rate's gap is CPU and where it is the
// waits), and what the device wrote per transaction (absent without one).
void EmitPerTxn(const std::string& prefix, const InsertRates& r) {
  Metric m;
  m.bench = "vfs";
  m.baseline_name = "native sqlite (WAL, sync=FULL)";
  m.lower_is_better = true;
  m.metric = prefix + "_cpu_per_txn";
  m.value = r.ours_cpu_us;
  m.unit = "us";
  m.baseline = r.native_cpu_us;
  Emit(m);
  if (r.native_kib <= 0) return;
  m.metric = prefix + "_device_kib_per_txn";
  m.value = r.ours_kib;
  m.unit = "KiB";
  m.baseline = r.native_kib;
  Emit(m);
}

// One writer of the sweep: its own connection and prepared single-row INSERT
// (autocommit: one durable transaction each).
class SqlWriter {
 public:
  explicit SqlWriter(SqliteHandle db) : db_(std::move(db)) {
    Exec(db_.get(), "CREATE TABLE IF NOT EXISTS sweep(id INTEGER PRIMARY KEY, a INTEGER, b TEXT)");
    ins_ = Prepare(db_.get(), "INSERT INTO sweep(a, b) VALUES(?1, 'some text of a row')");
  }
  ~SqlWriter() { sqlite3_finalize(ins_); }
  SqlWriter(const SqlWriter&) = delete;
  SqlWriter& operator=(const SqlWriter&) = delete;
  void Once() {
    sqlite3_bind_int64(ins_, 1, ++n_);
    StepDone(db_.get(), ins_);
  }

 private:
  SqliteHandle db_;
  sqlite3_stmt* ins_ = nullptr;
  int64_t n_ = 0;
};

// Runs every op in a thread of its own, in a loop, for about `seconds`;
// returns the operations per second of all together.
double ParallelRate(const std::vector<std::function<void()>>& ops, double seconds) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> threads;
  for (const auto& op : ops) {
    threads.emplace_back([&, op] {
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        op();
        ++n;
      }
      total.fetch_add(n);
    });
  }
  while (ready.load() < static_cast<int>(ops.size())) std::this_thread::yield();
  const double start = NowSeconds();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  return static_cast<double>(total.load()) / (NowSeconds() - start);
}

// The writers sweep (see the file comment). The three sides run in
// alternating rounds; each point is the median of its rounds.
void WritersSweep(const std::string& dir, double round_seconds, int rounds) {
  for (int n : {1, 2, 4, 8, 16}) {
    const std::string tag = std::to_string(n);
    Ours ours = OpenOurs(dir + "/sweep-store-" + tag);
    std::vector<std::unique_ptr<SqlWriter>> mine, native;
    std::vector<std::unique_ptr<RawSyncer>> raw;
    for (int w = 0; w < n; ++w) {
      storage::TimelineId t = ours.timeline;
      if (w > 0) {
        auto created = ours.store->CreateTimeline(0, "writer");
        if (!created.ok()) Die("CreateTimeline: " + created.status().ToString());
        t = *created;
      }
      mine.push_back(std::make_unique<SqlWriter>(ours.Open(t)));
      native.push_back(std::make_unique<SqlWriter>(
          OpenNative(dir + "/sweep-" + tag + "-" + std::to_string(w) + ".db")));
      raw.push_back(std::make_unique<RawSyncer>(dir, 4096));
    }
    std::vector<std::function<void()>> mine_ops, native_ops, raw_ops;
    for (int w = 0; w < n; ++w) {
      mine_ops.push_back([p = mine[w].get()] { p->Once(); });
      native_ops.push_back([p = native[w].get()] { p->Once(); });
      raw_ops.push_back([p = raw[w].get()] { p->Once(); });
    }
    std::vector<double> m, v, r;
    for (int i = 0; i < rounds; ++i) {
      v.push_back(ParallelRate(native_ops, round_seconds));
      m.push_back(ParallelRate(mine_ops, round_seconds));
      r.push_back(ParallelRate(raw_ops, round_seconds));
    }
    Metric rate;
    rate.bench = "vfs";
    rate.metric = "commit_rate_" + tag + "_writers";
    rate.value = Percentile(m, 50);
    rate.unit = "txn/s";
    rate.baseline_name = "native sqlite (WAL, sync=FULL), a file per writer";
    rate.baseline = Percentile(v, 50);
    rate.target = ">= 1.0x native";
    rate.met = rate.value >= *rate.baseline;
    rate.extra = {{"writers", n}};
    Emit(rate);
    Metric limit;
    limit.bench = "vfs";
    limit.metric = "raw_fdatasync_rate_" + tag + "_writers";
    limit.value = Percentile(r, 50);
    limit.unit = "syncs/s";
    limit.extra = {{"writers", n}};
    Emit(limit);
  }
}

// Point selects per second on `db` (cache_size 100 pages, so that most page
// reads reach the VFS), best of alternating rounds with `other`: {db, other}.
std::pair<double, double> PointRates(sqlite3* db, sqlite3* other, int64_t rows) {
  double a = 0, b = 0;
  for (int r = 0; r < 7; ++r) {
    a = std::max(a, PointSelectRate(db, rows, 20000, 40 + r));
    b = std::max(b, PointSelectRate(other, rows, 20000, 40 + r));
  }
  return {a, b};
}

// A read rate against the same reads without what should not slow them
// (target: flat, at most 1.5x slower).
void EmitFlat(const std::string& metric, double rate, double baseline,
              const std::string& baseline_name) {
  Metric m;
  m.bench = "vfs";
  m.metric = metric;
  m.value = rate;
  m.unit = "queries/s";
  m.baseline_name = baseline_name;
  m.baseline = baseline;
  m.target = "flat: >= 0.67x baseline";
  m.met = rate >= baseline / 1.5;
  Emit(m);
}

// Read latency deep in history and down a chain of branches, against reads
// at the head of the same store (target: flat, at most 1.5x slower): a 20 MB
// table, then kHistory single-row updates; "deep" reads at the LSN right
// after the fill (every page it reads has many newer versions); "branch"
// reads at the head of a branch 100 levels down (each level a branch of the
// one above, with one update of its own).
void Depth(const std::string& dir) {
  constexpr int64_t kRows = 20000;
  constexpr int kHistory = 2000;
  constexpr int kLevels = 100;
  Ours ours = OpenOurs(dir + "/depth-store");
  auto db = ours.Open(ours.timeline);
  Fill(db.get(), kRows);
  const storage::Lsn filled = storage::LastCommitLsn(db.get());
  std::mt19937_64 rng(7);
  sqlite3_stmt* upd = Prepare(db.get(), "UPDATE kv SET v = randomblob(1000) WHERE id = ?1");
  for (int i = 0; i < kHistory; ++i) {
    sqlite3_bind_int64(upd, 1, static_cast<int64_t>(rng() % kRows) + 1);
    StepDone(db.get(), upd);
  }
  sqlite3_finalize(upd);
  storage::TimelineId t = ours.timeline;
  for (int level = 0; level < kLevels; ++level) {
    auto child = ours.store->CreateTimeline(t, ours.store->Head(t).value(), "level");
    if (!child.ok()) Die("CreateTimeline: " + child.status().ToString());
    t = *child;
    auto bdb = ours.Open(t);
    Exec(bdb.get(), "UPDATE kv SET v = randomblob(1000) WHERE id = " +
                        std::to_string(static_cast<int64_t>(rng() % kRows) + 1));
  }
  auto open = [&](storage::TimelineId timeline, std::optional<storage::Lsn> as_of) {
    return ours.Open(timeline, 100, as_of);
  };
  auto head = open(ours.timeline, std::nullopt);
  auto deep = open(ours.timeline, filled);
  auto branch = open(t, std::nullopt);
  for (auto* c : {head.get(), deep.get(), branch.get()}) PointSelectRate(c, kRows, 20000, 1);
  for (const auto& [name, c] :
       {std::pair("history_lsn_" + std::to_string(kHistory) + "_commits_back", deep.get()),
        std::pair("branch_" + std::to_string(kLevels) + "_levels_deep", branch.get())}) {
    auto [rate, head_rate] = PointRates(c, head.get(), kRows);
    EmitFlat("point_select_per_s_" + name, rate, head_rate,
             "the same at the head (cache_size 100)");
  }
}

// Point SELECTs/s of a fresh connection (cache_size 100) of the reader
// right after each of a number of actions (an INSERT), each rolled back
// (`rollback`: a new run each time, as an agent's rollback makes, whose
// reads start with no cached answers of their own) or kept. The same keys
// after each action, as an agent checks the same rows after each try.
double ReadsAfterActions(Ours& ours, storage::TimelineId reader, bool rollback, int64_t rows,
                         uint64_t seed) {
  constexpr int kActions = 40;
  constexpr int kQueries = 250;
  auto open = [&] { return ours.Open(reader, 100); };
  double seconds = 0;
  for (int i = 0; i < kActions; ++i) {
    const storage::Lsn before = ours.store->Head(reader).value();
    Exec(open().get(), "INSERT INTO mine VALUES(2)");
    if (rollback) {
      auto r =
          ours.store->ResetTimeline(reader, ours.store->Head(reader).value(), before, "rollback");
      if (!r.ok()) Die("ResetTimeline: " + r.status().ToString());
    }
    seconds += kQueries / PointSelectRate(open().get(), rows, kQueries, seed);
  }
  return kActions * kQueries / seconds;
}

// Reads on a branch whose pages other branches keep rewriting (target: flat,
// at most 1.5x slower): a branch that reads its base's pages, while kSiblings
// sibling branches of the same base each rewrite the whole 20 MB table once
// (~10 sealed segments, each with a few siblings' versions of every page the
// reader reads), then writes a table of its own (its state the newest).
// Baseline, in a second store: the same reader and the same volume written by
// its base timeline into another table (the same number of segments, no
// other versions of the reader's pages).
// Then, in the first store: the reader's reads right after each action it
// rolls back (each rollback a new run), against the same reads after actions
// it keeps (the same target).
void Siblings(const std::string& dir) {
  constexpr int64_t kRows = 20000;
  // The stores' shared cache of a server at its default cache_mb (512:
  // half of it for the stores, server/cache_budget.cc).
  constexpr uint64_t kServerStoreCacheBytes = 256ull << 20;
  constexpr int kSiblings = 31;
  auto reader_of = [&](const std::string& name, bool busy) {
    Ours ours = OpenOurs(dir + "/" + name, storage::Cache::Create(kServerStoreCacheBytes));
    auto base = ours.Open(ours.timeline);
    Fill(base.get(), kRows);
    auto reader = ours.store->CreateTimeline(ours.timeline, ours.store->Head(ours.timeline).value(),
                                             "reader");
    if (!reader.ok()) Die("CreateTimeline: " + reader.status().ToString());
    if (!busy) Exec(base.get(), "CREATE TABLE pad(id INTEGER PRIMARY KEY, v BLOB)");
    for (int i = 0; i < kSiblings; ++i) {
      if (!busy) {
        Exec(base.get(), "INSERT INTO pad(v) SELECT randomblob(1000) FROM kv");
        continue;
      }
      auto sibling = ours.store->CreateTimeline(ours.timeline,
                                                ours.store->Head(ours.timeline).value(), "sibling");
      if (!sibling.ok()) Die("CreateTimeline: " + sibling.status().ToString());
      Exec(ours.Open(*sibling).get(), "UPDATE kv SET v = randomblob(1000)");
    }
    auto c = ours.Open(*reader, 100);
    // A write of its own makes the reader's state the newest: every sealed
    // segment is at or below it, none can be skipped by its LSN range.
    Exec(c.get(), "CREATE TABLE mine(x); INSERT INTO mine VALUES(1)");
    return std::make_tuple(std::move(ours), std::move(c), *reader);
  };
  auto [busy_store, busy, busy_reader] = reader_of("siblings-store", true);
  [[maybe_unused]] auto [quiet_store, quiet, quiet_reader] =
      reader_of("siblings-quiet-store", false);
  std::fprintf(stderr, "siblings: %llu and %llu bytes of segments\n",
               static_cast<unsigned long long>(busy_store.store->DiskBytes()),
               static_cast<unsigned long long>(quiet_store.store->DiskBytes()));
  for (auto* c : {busy.get(), quiet.get()}) PointSelectRate(c, kRows, 20000, 1);
  auto [rate, quiet_rate] = PointRates(busy.get(), quiet.get(), kRows);
  EmitFlat("point_select_per_s_while_" + std::to_string(kSiblings) + "_siblings_rewrite_its_pages",
           rate, quiet_rate, "the same reader, the same volume written to other pages");
  // The first reads of each run an agent's rollbacks make, while the
  // siblings' versions are in the way, against reads after kept actions.
  double rolled = 0, kept = 0;
  for (int r = 0; r < 3; ++r) {
    rolled = std::max(rolled, ReadsAfterActions(busy_store, busy_reader, true, kRows, r));
    kept = std::max(kept, ReadsAfterActions(busy_store, busy_reader, false, kRows, r));
  }
  EmitFlat("point_select_per_s_after_each_rollback_while_" + std::to_string(kSiblings) +
               "_siblings_rewrite_its_pages",
           rolled, kept, "the same reads after an action kept (fresh connection, cache_size 100)");
}

// Whether BRANCHDB_BENCH_VFS_PARTS (default: all) lists part.
bool Part(const char* part) {
  const char* parts = std::getenv("BRANCHDB_BENCH_VFS_PARTS");
  if (parts == nullptr || *parts == '\0') return true;
  const std::string list = "," + std::string(parts) + ",";
  return list.find("," + std::string(part) + ",") != std::string::npos;
}

// Reads, updates and branch opens on a large database (see the file comment).
void LargeDatabase(const std::string& dir, int64_t max_mb, int64_t rows) {
  const std::string size_tag = std::to_string(max_mb) + "MB";
  auto native = OpenNative(dir + "/large.db");
  Ours ours = OpenOurs(dir + "/large-store");
  auto db = ours.Open(ours.timeline);
  double t0 = NowSeconds();
  Fill(native.get(), rows);
  double native_fill = NowSeconds() - t0;
  t0 = NowSeconds();
  Fill(db.get(), rows);
  double our_fill = NowSeconds() - t0;
  std::fprintf(stderr, "filled %lld rows: native %.1f s, branchdb %.1f s\n",
               static_cast<long long>(rows), native_fill, our_fill);
  Exec(native.get(), "PRAGMA wal_checkpoint(TRUNCATE)");
  if (Part("reads")) {
    // Warm both once, then measure.
    PointSelectRate(native.get(), rows, 20000, 1);
    PointSelectRate(db.get(), rows, 20000, 1);
    // Alternating rounds, best round of each side, as above.
    double np = 0, op = 0, ns = 0, os = 0;
    for (int r = 0; r < 7; ++r) {
      np = std::max(np, PointSelectRate(native.get(), rows, 40000, 10 + r));
      op = std::max(op, PointSelectRate(db.get(), rows, 40000, 10 + r));
      ns = std::max(ns, RangeScanRate(native.get(), rows, 20, 20 + r));
      os = std::max(os, RangeScanRate(db.get(), rows, 20, 20 + r));
    }
    EmitRatio("point_select_per_s_" + size_tag, op, np, "queries/s", 0.9);
    EmitRatio("range_scan_10k_rows_per_s_" + size_tag, os, ns, "scans/s", 0.9);
    double nu = 0, ou = 0;
    for (int r = 0; r < 7; ++r) {
      nu = std::max(nu, UpdateRate(native.get(), rows, 20, 30 + r));
      ou = std::max(ou, UpdateRate(db.get(), rows, 20, 30 + r));
    }
    EmitRatio("update_1000_rows_txns_per_s_" + size_tag, ou, nu, "txn/s", std::nullopt);
  }
  if (!Part("open")) return;

  // --- opening a connection on a branch -------------------------------------
  // open: OpenConnection + the first query on an existing branch;
  // create+open: also CreateTimeline (a durable record) first.
  std::vector<double> opens, creates;
  const branchdb::storage::Lsn head = ours.store->Head(ours.timeline).value();
  for (int i = 0; i < 100; ++i) {
    double start = NowSeconds();
    auto branch = ours.store->CreateTimeline(ours.timeline, head, "bench branch");
    if (!branch.ok()) Die("CreateTimeline: " + branch.status().ToString());
    double opened = NowSeconds();
    auto bdb = ours.Open(*branch);
    sqlite3_stmt* sel = Prepare(bdb.get(), "SELECT length(v) FROM kv WHERE id = 1");
    if (sqlite3_step(sel) != SQLITE_ROW) Die("first query on a branch");
    sqlite3_finalize(sel);
    const double end = NowSeconds();
    opens.push_back((end - opened) * 1000);
    creates.push_back((end - start) * 1000);
  }
  double copy_ms = 0;
  {
    double start = NowSeconds();
    auto copy = OpenNative(dir + "/copy.db");
    sqlite3_backup* b = sqlite3_backup_init(copy.get(), "main", native.get(), "main");
    if (b == nullptr || sqlite3_backup_step(b, -1) != SQLITE_DONE) Die("backup");
    sqlite3_backup_finish(b);
    sqlite3_stmt* sel = Prepare(copy.get(), "SELECT length(v) FROM kv WHERE id = 1");
    if (sqlite3_step(sel) != SQLITE_ROW) Die("first query on the copy");
    sqlite3_finalize(sel);
    copy_ms = (NowSeconds() - start) * 1000;
  }
  for (int k = 0; k < 2; ++k) {
    Metric m;
    m.bench = "vfs";
    m.metric = (k == 0 ? "open_branch_connection_p50_" : "create_branch_and_open_p50_") + size_tag;
    m.value = Percentile(k == 0 ? opens : creates, 50);
    m.unit = "ms";
    m.baseline_name = "native file copy + open";
    m.baseline = copy_ms;
    m.lower_is_better = true;
    m.target = "< 5 ms";
    m.met = m.value < 5.0;
    Emit(m);
  }
}

}  // namespace
}  // namespace branchdb::bench

int main() {
  using namespace branchdb::bench;
  const char* max_mb_env = std::getenv("BRANCHDB_BENCH_MAX_MB");
  const int64_t max_mb = max_mb_env != nullptr ? std::atoll(max_mb_env) : 1024;
  const int64_t rows = std::max<int64_t>(20000, max_mb * 1024 * 1024 / 1100);
  ScratchDir scratch("vfs_bench");

  // --- writes ---------------------------------------------------------------
  if (Part("writes")) {
    auto native = OpenNative(scratch.path() + "/small.db");
    Ours ours = OpenOurs(scratch.path() + "/small-store");
    auto db = ours.Open(ours.timeline);
    const std::string device = DeviceStatPath(scratch.path());
    InsertRates one = MeasureInserts(db.get(), native.get(), 1, 8, 0.5, 20, device);
    EmitRatio("single_row_insert_txns_per_s", one.ours, one.native, "txn/s", 1.0);
    EmitPerTxn("single_row_insert", one);
    InsertRates many = MeasureInserts(db.get(), native.get(), 1000, 8, 0.5, 3, device);
    EmitRatio("1000_row_txns_per_s", many.ours, many.native, "txn/s", std::nullopt);
    EmitPerTxn("1000_row", many);
  }
  if (Part("sweep")) {
    const char* seconds_env = std::getenv("BRANCHDB_BENCH_SECONDS");
    const double seconds = seconds_env != nullptr ? std::max(0.5, std::atof(seconds_env)) : 5.0;
    WritersSweep(scratch.path(), seconds / 5, 3);
  }

  if (Part("reads") || Part("open")) LargeDatabase(scratch.path(), max_mb, rows);
  if (Part("depth")) Depth(scratch.path());
  if (Part("siblings")) Siblings(scratch.path());
  return 0;
}
