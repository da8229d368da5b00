#include "server/http/metrics.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace branchdb::server::http {
namespace {

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatDouble(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace

struct Metrics::Handle {
  Family* family;
  Series* series;
};

namespace {
std::atomic<uint64_t> next_metrics_id{1};
}  // namespace

Metrics::Metrics() : id_(next_metrics_id.fetch_add(1)) {}
Metrics::~Metrics() = default;

std::unique_ptr<Metrics> Metrics::WithServerFamilies() {
  auto m = std::make_unique<Metrics>();
  m->DescribeCounter(kHttpRequests, "HTTP requests by route, method and status.");
  m->DescribeHistogram(kHttpDuration, "HTTP request latency by route and method.",
                       LatencyBuckets());
  m->DescribeCounter(kCommits, "SQL transactions committed (one checkpoint each).");
  m->DescribeHistogram(kFsyncSeconds, "Latency of the page store's fdatasync calls.",
                       LatencyBuckets());
  m->DescribeGauge(kComputesActive, "Branch computes with open connections.");
  m->DescribeGauge(kComputesSuspended, "Branch computes known but suspended.");
  m->DescribeCounter(kColdStarts, "Compute starts (first use or resume after suspend).");
  m->DescribeHistogram(kColdStartSeconds, "Latency of compute cold starts.", LatencyBuckets());
  m->DescribeGauge(kBytesStored, "Bytes of the data directory's stores on disk.");
  m->DescribeGauge(kCacheBudgetBytes, "The memory budget of all caches together ([storage] cache_mb).");
  m->DescribeGauge(kCacheBytes, "Bytes held by the server's caches, by cache.");
  m->DescribeGauge(kCacheCapacityBytes,
                   "Capacity of the server's caches, by cache (page, meta, index share one).");
  m->DescribeGauge(kCacheHitRatio, "Hits / lookups of the stores' caches since start, by cache.");
  m->DescribeGauge(kDamagedProjects,
                   "Projects whose store was found damaged (serving=false: it does not open).");
  m->DescribeCounter(kSqlStatements, "SQL statements executed, by outcome.");
  m->DescribeGauge(kSqlCpuWaiting, "SQL scripts waiting for a CPU run slot (sql.cpu_slots).");
  m->DescribeCounter(kIdempotentReplays, "POSTs answered from the idempotency store.");
  m->DescribeCounter(kConnectionsRefused,
                     "Connections refused (too many from one address) or cut (request "
                     "timeout), by reason.");
  m->DescribeCounter(kTransferChunks, "Pieces of databases streamed by export and import.");
  m->DescribeCounter(kAuthTokenCache,
                     "Bearer token uses by verified-token cache result (hit, miss, "
                     "rejected_hit: a known-bad token).");
  m->DescribeCounter(kAuthSignatureChecks, "Ed25519 signature checks of presented tokens.");
  m->DescribeGauge(kTransferBufferPeak,
                   "Most bytes one export or import has buffered at once (since start).");
  return m;
}

void Metrics::DescribeCounter(const std::string& name, const std::string& help) {
  MutexLock l(mu_);
  families_[name] = Family{Type::kCounter, help, {}, {}};
}

void Metrics::DescribeGauge(const std::string& name, const std::string& help) {
  MutexLock l(mu_);
  families_[name] = Family{Type::kGauge, help, {}, {}};
}

void Metrics::DescribeHistogram(const std::string& name, const std::string& help,
                                std::vector<double> buckets) {
  MutexLock l(mu_);
  families_[name] = Family{Type::kHistogram, help, std::move(buckets), {}};
}

std::string Metrics::RenderLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"" + EscapeLabel(labels[i].second) + "\"";
  }
  return out + "}";
}

Metrics::Family* Metrics::Find(const std::string& name, Type type) {
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != type) return nullptr;
  return &it->second;
}

void Metrics::Increment(const std::string& name, const Labels& labels, double delta) {
  MutexLock l(mu_);
  if (Family* f = Find(name, Type::kCounter)) f->series[RenderLabels(labels)].value += delta;
}

void Metrics::Set(const std::string& name, const Labels& labels, double value) {
  MutexLock l(mu_);
  if (Family* f = Find(name, Type::kGauge)) f->series[RenderLabels(labels)].value = value;
}

void Metrics::SetCounter(const std::string& name, const Labels& labels, double value) {
  MutexLock l(mu_);
  if (Family* f = Find(name, Type::kCounter)) f->series[RenderLabels(labels)].value = value;
}

void Metrics::SetMax(const std::string& name, const Labels& labels, double value) {
  MutexLock l(mu_);
  if (Family* f = Find(name, Type::kGauge)) {
    double& v = f->series[RenderLabels(labels)].value;
    if (value > v) v = value;
  }
}

void Metrics::ObserveLocked(const Family& f, Series& s, double value) {
  if (s.counts.empty()) s.counts.assign(f.buckets.size() + 1, 0);
  size_t i = 0;
  while (i < f.buckets.size() && value > f.buckets[i]) ++i;
  s.counts[i]++;
  s.sum += value;
  s.count++;
}

void Metrics::Observe(const std::string& name, const Labels& labels, double value) {
  MutexLock l(mu_);
  Family* f = Find(name, Type::kHistogram);
  if (f == nullptr) return;
  ObserveLocked(*f, f->series[RenderLabels(labels)], value);
}

const Metrics::Handle* Metrics::SeriesHandle(const std::string& name, Type type,
                                             const Labels& labels) {
  const std::string rendered = RenderLabels(labels);
  MutexLock l(mu_);
  Family* f = Find(name, type);
  if (f == nullptr) return nullptr;
  std::unique_ptr<Handle>& h = handles_[std::to_string(static_cast<int>(type)) + name + rendered];
  Series* series = &f->series[rendered];
  if (h == nullptr) h = std::make_unique<Handle>();
  h->family = f;  // the same, unless the family was described again
  h->series = series;
  return h.get();
}

const Metrics::Handle* Metrics::CounterSeries(const std::string& name, const Labels& labels) {
  return SeriesHandle(name, Type::kCounter, labels);
}

const Metrics::Handle* Metrics::HistogramSeries(const std::string& name, const Labels& labels) {
  return SeriesHandle(name, Type::kHistogram, labels);
}

void Metrics::Increment(const Handle* counter, double delta) {
  if (counter == nullptr) return;
  MutexLock l(mu_);
  counter->series->value += delta;
}

void Metrics::Observe(const Handle* histogram, double value) {
  if (histogram == nullptr) return;
  MutexLock l(mu_);
  ObserveLocked(*histogram->family, *histogram->series, value);
}

void Metrics::AddCollector(std::function<void(Metrics&)> fn) {
  MutexLock l(mu_);
  collectors_.push_back(std::move(fn));
}

double Metrics::Value(const std::string& name, const Labels& labels) {
  MutexLock l(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto s = it->second.series.find(RenderLabels(labels));
  if (s == it->second.series.end()) return 0;
  return it->second.type == Type::kHistogram ? static_cast<double>(s->second.count)
                                             : s->second.value;
}

std::string Metrics::Render() {
  std::vector<std::function<void(Metrics&)>> collectors;
  {
    MutexLock l(mu_);
    collectors = collectors_;
  }
  for (auto& c : collectors) c(*this);
  MutexLock l(mu_);
  std::ostringstream out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    out << "# HELP " << name << " " << f.help << "\n# TYPE " << name << " " << type << "\n";
    for (const auto& [labels, s] : f.series) {
      if (f.type != Type::kHistogram) {
        out << name << labels << " " << FormatDouble(s.value) << "\n";
        continue;
      }
      // Histogram: cumulative buckets with an "le" label added to the set.
      std::string inner = labels.empty() ? "" : labels.substr(1, labels.size() - 2) + ",";
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= f.buckets.size(); ++i) {
        cumulative += s.counts[i];
        std::string le = i < f.buckets.size() ? FormatDouble(f.buckets[i]) : "+Inf";
        out << name << "_bucket{" << inner << "le=\"" << le << "\"} " << cumulative << "\n";
      }
      out << name << "_sum" << labels << " " << FormatDouble(s.sum) << "\n";
      out << name << "_count" << labels << " " << s.count << "\n";
    }
  }
  return out.str();
}

void CountSqlStatements(Metrics& metrics, bool ok, double statements) {
  thread_local uint64_t metrics_id = 0;
  thread_local const Metrics::Handle* series[2] = {nullptr, nullptr};  // error, ok
  if (metrics_id != metrics.id()) {
    series[0] = series[1] = nullptr;
    metrics_id = metrics.id();
  }
  // Found on first use: a series shows in /metrics once counted, as before.
  const Metrics::Handle*& h = series[ok ? 1 : 0];
  if (h == nullptr) h = metrics.CounterSeries(kSqlStatements, {{"outcome", ok ? "ok" : "error"}});
  metrics.Increment(h, statements);
}

}  // namespace branchdb::server::http
