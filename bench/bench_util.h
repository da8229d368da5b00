// Shared helpers of the benchmark programs: timing, percentiles, and the one
// output format every benchmark prints — one JSON object per line on stdout:
//   {"bench":"storage","metric":"branch_create_p50_1GB","value":0.02,"unit":"ms",
//    "baseline_name":"cp+fsync","baseline":850.0,"ratio":42500.0,
//    "target":">=1000","met":true}
// and a human-readable row on stderr.
#ifndef BRANCHDB_BENCH_BENCH_UTIL_H_
#define BRANCHDB_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

}  // namespace branchdb::bench

#endif  // BRANCHDB_BENCH_BENCH_UTIL_H_
