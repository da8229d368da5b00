// Shared helpers of the benchmark programs: timing, percentiles, the disk's raw
// fdatasync limit, and the one output format every benchmark prints — one JSON
// object per line on stdout:
//   {"bench":"storage","metric":"branch_create_p50_1GB","value":0.02,"unit":"ms",
//    "direction":"lower","baseline_name":"cp+fsync","baseline":850.0,"ratio":42500.0,
//    "target":">=1000x faster than cp+fsync, p50 < 1 ms","met":true,"db_mb":1024}
// and a human-readable row on stderr. Every line has every key: baseline_name,
// baseline and ratio are null without a baseline; target and met are null for a
// context metric (one that explains another, e.g. the disk's fdatasync latency).
// "direction" says which way is better for value (and ratio is always oriented
// so that > 1 means branchdb is better than the baseline). Extra numeric keys
// (Metric::extra) carry a sweep's coordinates for the plots (scripts/bench.sh).
#ifndef BRANCHDB_BENCH_BENCH_UTIL_H_
#define BRANCHDB_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/env.h"

namespace branchdb::bench {

struct Metric {
  std::string bench;   // program, e.g. "storage"
  std::string metric;  // e.g. "commit_rate_1_writer_1_page"
  double value = 0;
  std::string unit;    // "ms", "commits/s", "bytes", ...
  std::string baseline_name;       // empty: no baseline
  std::optional<double> baseline;
  // ratio = value / baseline, or baseline / value when lower_is_better.
  bool lower_is_better = false;
  std::string target;              // human text, e.g. ">= 1000x" (empty: none)
  std::optional<bool> met;         // whether the target is met
  // Extra numeric fields, e.g. {"writers", 4} for a point of a sweep.
  std::vector<std::pair<std::string, double>> extra;
};

// Computes ratio, prints the JSON line to stdout and a table row to stderr.
void Emit(const Metric& m);

// p in [0, 100]; sorts a copy.
double Percentile(std::vector<double> samples, double p);

// Seconds since an arbitrary origin (steady clock), as a double.
inline double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Latencies (ms) of a run of calls: percentiles, count, and the calls that
// failed (not timed).
struct LatencySummary {
  double p50 = 0, p99 = 0;
  size_t count = 0;
  size_t failures = 0;
};
LatencySummary Summarize(const std::vector<double>& ms, size_t failures = 0);

// Calls one() back to back while more() holds, appending the latency (ms) of
// each call that returned true to *ms; returns how many returned false.
size_t TimeCalls(const std::function<bool()>& more, const std::function<bool()>& one,
                 std::vector<double>* ms);

// A scratch directory for a benchmark: $BRANCHDB_BENCH_DIR or /tmp, removed at exit
// of the object.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name);
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A file in `dir` that measures the disk's physical limit: appends of `bytes`
// followed by fdatasync (through Env). Dies on an I/O error. Not thread-safe:
// one per thread.
class RawSyncer {
 public:
  RawSyncer(const std::string& dir, size_t bytes);
  ~RawSyncer();
  RawSyncer(const RawSyncer&) = delete;
  RawSyncer& operator=(const RawSyncer&) = delete;
  // One append + fdatasync; returns its duration in ms.
  double Once();
  // Iterations per second over `seconds`.
  double Rate(double seconds);

 private:
  const std::string path_;
  std::unique_ptr<WritableFile> file_;
  std::string block_;
};

}  // namespace branchdb::bench

#endif  // BRANCHDB_BENCH_BENCH_UTIL_H_
