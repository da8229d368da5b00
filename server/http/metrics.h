// Metrics: a small Prometheus registry (text exposition format 0.0.4) for
// GET /metrics. Counters, gauges and histograms, each a family of label sets.
// A family is described once (Describe*) and then updated by name; updating
// an undescribed family is a programming error and is ignored (logged once).
// Collectors run at Render() time to refresh gauges read from other
// components (active computes, bytes stored).
//
// The names the server uses are the k* constants below; docs/api.md lists them.
//
// Thread-safety: all methods are safe for concurrent use.
#ifndef BRANCHDB_SERVER_HTTP_METRICS_H_
#define BRANCHDB_SERVER_HTTP_METRICS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/mutex.h"

namespace branchdb::server::http {

using Labels = std::vector<std::pair<std::string, std::string>>;

inline constexpr const char* kHttpRequests = "branchdb_http_requests_total";
inline constexpr const char* kHttpDuration = "branchdb_http_request_duration_seconds";
inline constexpr const char* kCommits = "branchdb_commits_total";
inline constexpr const char* kFsyncSeconds = "branchdb_fsync_duration_seconds";
inline constexpr const char* kComputesActive = "branchdb_computes_active";
inline constexpr const char* kComputesSuspended = "branchdb_computes_suspended";
inline constexpr const char* kColdStarts = "branchdb_compute_cold_starts_total";
inline constexpr const char* kColdStartSeconds = "branchdb_compute_cold_start_seconds";
inline constexpr const char* kBytesStored = "branchdb_bytes_stored";
inline constexpr const char* kDamagedProjects = "branchdb_damaged_projects";
// The caches under the [storage] cache_mb budget (server/cache_budget.h):
// the budget itself, and by cache (label cache: page, meta, index — the
// kinds of the stores' shared storage::Cache — or sqlite, SQLite's page
// caches, the capacity the computes' share) the
// bytes held, the capacity (page, meta and index share one) and the hit
// ratio since the server started (not for sqlite).
inline constexpr const char* kCacheBudgetBytes = "branchdb_cache_budget_bytes";
inline constexpr const char* kCacheBytes = "branchdb_cache_bytes";
inline constexpr const char* kCacheCapacityBytes = "branchdb_cache_capacity_bytes";
inline constexpr const char* kCacheHitRatio = "branchdb_cache_hit_ratio";
inline constexpr const char* kSqlStatements = "branchdb_sql_statements_total";
// SQL scripts waiting for a run slot of the CPU scheduler (sql/cpu_scheduler.h).
inline constexpr const char* kSqlCpuWaiting = "branchdb_sql_cpu_waiting";
inline constexpr const char* kIdempotentReplays = "branchdb_idempotent_replays_total";
inline constexpr const char* kConnectionsRefused = "branchdb_http_connections_refused_total";
// Export and import (label direction): pieces moved, and the most bytes one
// transfer has held in its buffer at once (its memory, whatever the size).
inline constexpr const char* kTransferChunks = "branchdb_transfer_chunks_total";
inline constexpr const char* kTransferBufferPeak = "branchdb_transfer_buffer_peak_bytes";
// The verified-token cache (auth::AuthStats): uses by result, and the Ed25519
// checks that the misses cost.
inline constexpr const char* kAuthTokenCache = "branchdb_auth_token_cache_total";
inline constexpr const char* kAuthSignatureChecks = "branchdb_auth_signature_checks_total";

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Registers the families above (what the server exports).
  static std::unique_ptr<Metrics> WithServerFamilies();

  void DescribeCounter(const std::string& name, const std::string& help);
  void DescribeGauge(const std::string& name, const std::string& help);
  // buckets: ascending upper bounds (the +Inf bucket is implicit).
  void DescribeHistogram(const std::string& name, const std::string& help,
                         std::vector<double> buckets);

  void Increment(const std::string& name, const Labels& labels = {}, double delta = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  // Sets a counter kept elsewhere (a collector copying a component's count).
  void SetCounter(const std::string& name, const Labels& labels, double value);
  // Raises a gauge to value when it is lower (a high-water mark).
  void SetMax(const std::string& name, const Labels& labels, double value);
  void Observe(const std::string& name, const Labels& labels, double value);

  // A series found once (its family looked up, its labels rendered) and then
  // updated through the handle: the request path's per-route series (#20).
  // Null when the family is not described as that type. A handle stays valid
  // as long as the registry, unless its family is described again.
  struct Handle;
  const Handle* CounterSeries(const std::string& name, const Labels& labels);
  const Handle* HistogramSeries(const std::string& name, const Labels& labels);
  // Increment / Observe of the handle's series; nothing for a null handle.
  void Increment(const Handle* counter, double delta = 1);
  void Observe(const Handle* histogram, double value);
  // This registry's number, unique in the process (handles cached elsewhere
  // are keyed by it, never by an address that a later registry may reuse).
  uint64_t id() const { return id_; }

  // fn runs (without the registry's lock held) at the start of every Render().
  void AddCollector(std::function<void(Metrics&)> fn);

  // The exposition text (Content-Type: text/plain; version=0.0.4).
  std::string Render();

  // Current value of a counter or gauge series (0 when absent); for tests.
  double Value(const std::string& name, const Labels& labels = {});

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    double value = 0;              // counter / gauge
    std::vector<uint64_t> counts;  // histogram: per bucket (not cumulative) + Inf
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> buckets;
    std::map<std::string, Series> series;  // key: rendered label set
  };
  static std::string RenderLabels(const Labels& labels);
  Family* Find(const std::string& name, Type type) REQUIRES(mu_);
  const Handle* SeriesHandle(const std::string& name, Type type, const Labels& labels);
  static void ObserveLocked(const Family& f, Series& s, double value);

  const uint64_t id_;
  Mutex mu_;  // a leaf: collectors run without it
  std::map<std::string, Family> families_ GUARDED_BY(mu_);
  std::vector<std::function<void(Metrics&)>> collectors_ GUARDED_BY(mu_);
  // The handles given out (stable addresses), by type, name and labels.
  std::map<std::string, std::unique_ptr<Handle>> handles_ GUARDED_BY(mu_);
};

// kSqlStatements by outcome ("ok" or "error") += statements, through this
// thread's handles of the two series (no labels rendered per request).
void CountSqlStatements(Metrics& metrics, bool ok, double statements = 1);

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_METRICS_H_
