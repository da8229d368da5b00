#include "bench/bench_util.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace branchdb::bench {

void Emit(const Metric& m) {
  nlohmann::json j = {{"bench", m.bench},
                      {"metric", m.metric},
                      {"value", m.value},
                      {"unit", m.unit},
                      {"direction", m.lower_is_better ? "lower" : "higher"}};
  std::optional<double> ratio;
  if (m.baseline.has_value()) {
    j["baseline_name"] = m.baseline_name;
    j["baseline"] = *m.baseline;
    double num = m.lower_is_better ? *m.baseline : m.value;
    double den = m.lower_is_better ? m.value : *m.baseline;
    if (den > 0) ratio = num / den;
    j["ratio"] = ratio.has_value() ? nlohmann::json(*ratio) : nlohmann::json(nullptr);
  } else {
    j["baseline_name"] = nullptr;
    j["baseline"] = nullptr;
    j["ratio"] = nullptr;
  }
  j["target"] = m.target.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.target);
  j["met"] = m.met.has_value() ? nlohmann::json(*m.met) : nlohmann::json(nullptr);
  for (const auto& [key, v] : m.extra) j[key] = v;
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "%-10s %-44s %14.4f %-10s", m.bench.c_str(), m.metric.c_str(), m.value,
               m.unit.c_str());
  if (m.baseline.has_value()) {
    std::fprintf(stderr, " | %-18s %14.4f", m.baseline_name.c_str(), *m.baseline);
    if (ratio.has_value()) std::fprintf(stderr, " | ratio %10.3f", *ratio);
  }
  if (!m.target.empty()) {
    std::fprintf(stderr, " | target %s %s", m.target.c_str(),
                 m.met.has_value() ? (*m.met ? "MET" : "NOT MET") : "");
  }
  std::fprintf(stderr, "\n");
}

double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  double rank = p / 100.0 * static_cast<double>(samples.size() - 1);
  size_t lo = static_cast<size_t>(rank);
  size_t hi = std::min(lo + 1, samples.size() - 1);
  double frac = rank - static_cast<double>(lo);
  return samples[lo] * (1 - frac) + samples[hi] * frac;
}

LatencySummary Summarize(const std::vector<double>& ms, size_t failures) {
  LatencySummary l;
  l.p50 = Percentile(ms, 50);
  l.p99 = Percentile(ms, 99);
  l.count = ms.size();
  l.failures = failures;
  return l;
}

size_t TimeCalls(const std::function<bool()>& more, const std::function<bool()>& one,
                 std::vector<double>* ms) {
  size_t failures = 0;
  while (more()) {
    const double t0 = NowSeconds();
    if (!one()) {
      ++failures;
      continue;
    }
    ms->push_back((NowSeconds() - t0) * 1000);
  }
  return failures;
}

ScratchDir::ScratchDir(const std::string& name) {
  const char* base = std::getenv("BRANCHDB_BENCH_DIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/branchdb-bench-" + name +
                     "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

[[noreturn]] void DieIo(const char* what, const Status& s) {
  std::fprintf(stderr, "bench: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

std::string UniqueRawPath(const std::string& dir, size_t bytes) {
  static std::atomic<int> next{0};
  return JoinPath(dir, "raw-" + std::to_string(bytes) + "-" + std::to_string(next.fetch_add(1)));
}

}  // namespace

RawSyncer::RawSyncer(const std::string& dir, size_t bytes) : path_(UniqueRawPath(dir, bytes)) {
  auto f = Env::Default()->NewWritableFile(path_, Env::OpenMode::kTruncate);
  if (!f.ok()) DieIo("raw open", f.status());
  file_ = std::move(*f);
  // Incompressible bytes, so that no layer below can shortcut the write.
  block_.resize(bytes);
  uint64_t x = 0x9e3779b97f4a7c15ull ^ bytes;
  for (char& c : block_) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
}

RawSyncer::~RawSyncer() {
  (void)file_->Close();
  (void)Env::Default()->DeleteFile(path_);
}

double RawSyncer::Once() {
  const double t0 = NowSeconds();
  if (Status s = file_->Append(block_); !s.ok()) DieIo("raw append", s);
  if (Status s = file_->Sync(); !s.ok()) DieIo("raw sync", s);
  return (NowSeconds() - t0) * 1e3;
}

double RawSyncer::Rate(double seconds) {
  uint64_t n = 0;
  const double start = NowSeconds();
  while (NowSeconds() - start < seconds) {
    Once();
    ++n;
  }
  return static_cast<double>(n) / (NowSeconds() - start);
}

}  // namespace branchdb::bench
