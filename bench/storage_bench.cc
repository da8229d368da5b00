// storage_bench: the page store's figures against physical baselines measured
// in the same run on the same file system ($BRANCHDB_BENCH_DIR or /tmp):
//   - branch (timeline) creation latency on stores of 1 MB, 10 MB, 100 MB and
//     1 GB versus copying a file of that size (read + write + fdatasync); the
//     lines carry "db_mb" for the plot of creation time against size;
//   - durable commit rate of one writer (1 and 4 pages per commit) versus a
//     raw loop of 4 KiB appends + fdatasync, and of 16 writers on 16 timelines
//     versus one writer (group commit);
//   - ReadPage latency on the largest store (store cache cold, then warm);
//   - recovery (Open) time of the largest store;
//   - RAM per indexed page version (RSS delta of Open in a fresh process).
// One JSON line per metric on stdout (bench_util.h), a table on stderr.
//
// Environment: BRANCHDB_BENCH_MAX_MB caps the largest store (default 1024),
// BRANCHDB_BENCH_SECONDS the length of each rate measurement (default 5).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/env.h"
#include "bench/bench_util.h"
#include "storage/page_store.h"

using namespace branchdb;
using namespace branchdb::storage;
using bench::Emit;
using bench::Metric;
using bench::NowSeconds;
using bench::Percentile;
using bench::RawSyncer;

namespace {

Env* const kEnv = Env::Default();
constexpr uint64_t kMiB = 1ull << 20;

struct Summary {
  std::string metric;
  std::string value;
  std::string target;
  bool met;
};
std::vector<Summary> g_summary;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "storage_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Check(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what, r.status());
  return std::move(*r);
}

void Report(Metric m) {
  m.bench = "storage";
  Emit(m);
  if (m.met.has_value()) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.4g %s", m.value, m.unit.c_str());
    g_summary.push_back({m.metric, buf, m.target, *m.met});
  }
}

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* s = std::getenv(name);
  return (s != nullptr && *s != '\0') ? std::strtoull(s, nullptr, 10) : fallback;
}

std::string SizeName(uint64_t mb) {
  return mb >= 1024 && mb % 1024 == 0 ? std::to_string(mb / 1024) + "GB"
                                      : std::to_string(mb) + "MB";
}

// A page whose bytes differ per (pgno, salt).
std::string MakePage(uint64_t pgno, uint64_t salt) {
  std::string page(kPageSize, '\0');
  uint64_t x = pgno * 0x9e3779b97f4a7c15ull + salt;
  for (size_t i = 0; i < kPageSize; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(page.data() + i, &x, 8);
  }
  return page;
}

std::unique_ptr<PageStore> OpenStore(const std::string& dir, uint64_t cache_bytes = 64 * kMiB) {
  PageStoreOptions o;
  o.env = kEnv;
  o.cache_bytes = cache_bytes;
  return Check(PageStore::Open(o, dir), "open " + dir);
}

// Deletes a store's directory (its files, then the directory).
void DeleteStore(const std::string& dir) {
  auto children = kEnv->GetChildren(dir);
  if (children.ok()) {
    for (const auto& c : *children) (void)kEnv->DeleteFile(JoinPath(dir, c));
  }
  (void)kEnv->DeleteDir(dir);
}

struct BuiltStore {
  std::unique_ptr<PageStore> store;
  TimelineId timeline = 0;
  Lsn head = 0;
  uint32_t pages = 0;
  uint64_t versions = 0;
};

// A store holding one timeline with mb MiB of pages, written 1 MiB per commit.
BuiltStore BuildStore(const std::string& dir, uint64_t mb) {
  BuiltStore b;
  b.store = OpenStore(dir);
  b.timeline = Check(b.store->CreateTimeline(0, "bench"), "create");
  b.head = Check(b.store->Head(b.timeline), "head");
  b.pages = static_cast<uint32_t>(mb * kMiB / kPageSize);
  const uint32_t batch = static_cast<uint32_t>(kMiB / kPageSize);
  std::vector<std::string> data(batch);
  for (uint32_t first = 1; first <= b.pages; first += batch) {
    std::vector<PageWrite> writes;
    for (uint32_t i = 0; i < batch && first + i <= b.pages; ++i) {
      data[i] = MakePage(first + i, 1);
      writes.push_back(PageWrite{first + i, data[i]});
    }
    b.head = Check(b.store->Commit(b.timeline, b.head, writes, b.pages, "load"), "load commit");
    b.versions += writes.size();
  }
  return b;
}

// cp + fsync of a bytes-long file: seconds.
double CopyBaseline(const std::string& dir, uint64_t bytes) {
  const std::string src = JoinPath(dir, "copy-src");
  const std::string dst = JoinPath(dir, "copy-dst");
  {
    auto f = Check(kEnv->NewWritableFile(src, Env::OpenMode::kTruncate), "copy src");
    std::string chunk;
    for (uint64_t i = 0; i < kMiB / kPageSize; ++i) chunk += MakePage(i, 7);
    for (uint64_t done = 0; done < bytes; done += chunk.size()) {
      Status s = f->Append(std::string_view(chunk).substr(0, std::min<uint64_t>(chunk.size(), bytes - done)));
      if (!s.ok()) Die("copy src", s);
    }
    if (Status s = f->Sync(); !s.ok()) Die("copy src sync", s);
  }
  const int reps = bytes >= 512 * kMiB ? 1 : 3;
  std::vector<double> times;
  std::vector<char> buf(kMiB);
  for (int r = 0; r < reps; ++r) {
    const double start = NowSeconds();
    auto in = Check(kEnv->NewRandomAccessFile(src), "copy open");
    auto out = Check(kEnv->NewWritableFile(dst, Env::OpenMode::kTruncate), "copy dst");
    for (uint64_t off = 0;;) {
      size_t n = Check(in->Read(off, buf.size(), buf.data()), "copy read");
      if (n == 0) break;
      if (Status s = out->Append(std::string_view(buf.data(), n)); !s.ok()) Die("copy write", s);
      off += n;
    }
    if (Status s = out->Sync(); !s.ok()) Die("copy sync", s);
    if (Status s = out->Close(); !s.ok()) Die("copy close", s);
    if (Status s = kEnv->SyncDir(dir); !s.ok()) Die("copy syncdir", s);
    times.push_back(NowSeconds() - start);
    (void)kEnv->DeleteFile(dst);
  }
  (void)kEnv->DeleteFile(src);
  return Percentile(times, 50);
}

// A store with `writers` timelines, each written by its own thread in Run().
class CommitLoad {
 public:
  CommitLoad(const std::string& dir, int writers, int pages) : pages_(pages) {
    store_ = OpenStore(dir);
    for (int i = 0; i < writers; ++i) {
      TimelineId t = Check(store_->CreateTimeline(0, "w"), "create");
      tls_.push_back(t);
      heads_.push_back(Check(store_->Head(t), "head"));
    }
  }

  // Durable commits per second of all writers over `seconds`.
  double Run(double seconds) {
    constexpr uint32_t kDbPages = 1024;
    std::atomic<uint64_t> commits{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    const double start = NowSeconds();
    for (size_t w = 0; w < tls_.size(); ++w) {
      threads.emplace_back([&, w] {
        std::mt19937_64 rng(w + 1000 * salt_);
        std::vector<std::string> data(pages_);
        uint64_t salt = 0;
        while (!stop.load()) {
          std::vector<PageWrite> writes;
          std::vector<PageNo> used;
          for (int i = 0; i < pages_; ++i) {
            PageNo p;
            do {
              p = 1 + static_cast<PageNo>(rng() % kDbPages);
            } while (std::find(used.begin(), used.end(), p) != used.end());
            used.push_back(p);
            data[i] = MakePage(p, ++salt);
            writes.push_back(PageWrite{p, data[i]});
          }
          heads_[w] = Check(store_->Commit(tls_[w], heads_[w], writes, kDbPages, "c"), "commit");
          commits.fetch_add(1);
        }
      });
    }
    while (NowSeconds() - start < seconds) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    stop.store(true);
    for (auto& t : threads) t.join();
    ++salt_;
    return static_cast<double>(commits.load()) / (NowSeconds() - start);
  }

 private:
  const int pages_;
  std::unique_ptr<PageStore> store_;
  std::vector<TimelineId> tls_;
  std::vector<Lsn> heads_;
  uint64_t salt_ = 0;
};

// Resident set size in bytes, from /proc/self/statm.
uint64_t RssBytes() {
  auto text = kEnv->ReadFileToString("/proc/self/statm");
  if (!text.ok()) return 0;
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(text->c_str(), "%llu %llu", &size, &resident) != 2) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// In a fresh process (this program re-executed with --open-rss DIR FD): the
// RSS growth of opening the store in DIR, written as a double to FD.
[[noreturn]] void OpenRssChild(const std::string& dir, int fd) {
  const uint64_t before = RssBytes();
  auto store = OpenStore(dir, /*cache_bytes=*/kMiB);
  const double delta = static_cast<double>(RssBytes()) - static_cast<double>(before);
  ssize_t w = ::write(fd, &delta, sizeof(delta));
  std::_Exit(w == sizeof(delta) ? 0 : 1);
}

// RSS growth of opening the store in dir, measured in a freshly executed
// process so that memory this process freed (and kept resident) cannot hide it.
double OpenRssDelta(const std::string& dir) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const std::string fd = std::to_string(fds[1]);
    ::execl("/proc/self/exe", "storage_bench", "--open-rss", dir.c_str(), fd.c_str(),
            static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(fds[1]);
  double delta = -1;
  if (::read(fds[0], &delta, sizeof(delta)) != sizeof(delta)) delta = -1;
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return delta;
}

void BranchCreation(const std::string& root, const std::vector<uint64_t>& sizes) {
  RawSyncer raw(root, kPageSize);
  const uint64_t largest = sizes.back();
  const uint64_t second = sizes.size() > 1 ? sizes[sizes.size() - 2] : 0;
  for (uint64_t mb : sizes) {
    const std::string dir = JoinPath(root, "store-" + SizeName(mb));
    BuiltStore b = BuildStore(dir, mb);
    // Each creation is durable (one fdatasync at least); the disk's own
    // fdatasync latency is sampled in between, as context.
    std::vector<double> ms, sync_ms;
    for (int i = 0; i < 200; ++i) {
      const double t0 = NowSeconds();
      auto t = b.store->CreateTimeline(b.timeline, b.head, "branch");
      ms.push_back((NowSeconds() - t0) * 1e3);
      if (!t.ok()) Die("branch", t.status());
      sync_ms.push_back(raw.Once());
    }
    const double copy_ms = CopyBaseline(root, mb * kMiB) * 1e3;
    const double p50 = Percentile(ms, 50);
    const double p99 = Percentile(ms, 99);
    Metric m;
    m.metric = "branch_create_p50_" + SizeName(mb);
    m.value = p50;
    m.unit = "ms";
    m.baseline_name = "cp+fsync";
    m.baseline = copy_ms;
    m.lower_is_better = true;
    m.extra = {{"db_mb", static_cast<double>(mb)}};
    if (mb == largest) {
      m.target = ">=1000x faster than cp+fsync, p50 < 1 ms";
      m.met = copy_ms / p50 >= 1000 && p50 < 1.0;
    } else {
      m.target = "p50 < 1 ms";
      m.met = p50 < 1.0;
    }
    Report(m);
    Metric m99 = m;
    m99.metric = "branch_create_p99_" + SizeName(mb);
    m99.value = p99;
    m99.target.clear();
    m99.met.reset();
    Report(m99);
    Metric f;
    f.metric = "disk_fdatasync_p50_during_" + SizeName(mb);
    f.value = Percentile(sync_ms, 50);
    f.unit = "ms";
    f.lower_is_better = true;
    Report(f);
    b.store.reset();
    if (mb != largest && mb != second) DeleteStore(dir);  // those two are measured again later
  }
}

// The disk's fdatasync latency drifts a lot on shared machines, so the
// store's loads and the raw baselines run in alternating short rounds; each
// figure is the median over the rounds.
void CommitThroughput(const std::string& root, double seconds) {
  constexpr int kRounds = 5;
  const double phase = seconds / kRounds;
  RawSyncer raw4(root, kPageSize), raw16(root, 4 * kPageSize);
  CommitLoad one_1(JoinPath(root, "commit-1x1"), 1, 1);
  CommitLoad one_4(JoinPath(root, "commit-1x4"), 1, 4);
  CommitLoad many(JoinPath(root, "commit-16x1"), 16, 1);
  std::vector<double> r4, r16, c1, c4, c16;
  for (int r = 0; r < kRounds; ++r) {
    r4.push_back(raw4.Rate(phase));
    c1.push_back(one_1.Run(phase));
    c4.push_back(one_4.Run(phase));
    r16.push_back(raw16.Rate(phase));
    c16.push_back(many.Run(phase));
  }
  const double raw = Percentile(r4, 50), raw16_rate = Percentile(r16, 50);
  const double one = Percentile(c1, 50), four = Percentile(c4, 50), all = Percentile(c16, 50);
  Metric m;
  m.metric = "commit_rate_1_writer_1_page";
  m.value = one;
  m.unit = "commits/s";
  m.baseline_name = "raw 4KiB append+fdatasync";
  m.baseline = raw;
  m.target = ">=0.9x raw";
  m.met = one >= 0.9 * raw;
  Report(m);
  m.metric = "commit_rate_1_writer_4_pages";
  m.value = four;
  m.met = four >= 0.9 * raw;
  Report(m);
  Metric m16 = m;
  m16.metric = "commit_rate_1_writer_4_pages_vs_16KiB";
  m16.baseline_name = "raw 16KiB append+fdatasync";
  m16.baseline = raw16_rate;
  m16.met = four >= 0.9 * raw16_rate;
  Report(m16);
  Metric w;
  w.metric = "commit_rate_16_writers_1_page";
  w.value = all;
  w.unit = "commits/s";
  w.baseline_name = "1 writer";
  w.baseline = one;
  w.target = ">=4x one writer";
  w.met = all >= 4 * one;
  Report(w);
}

// One writer's single-page commits, each with a 200-byte annotation (an SQL
// statement's size), until the log has rolled twice at the default segment
// size: the commit that fills a segment seals it (writes its footer and
// index, syncs, starts the next segment and writes MANIFEST) before it is
// answered. Context for #15 ("writes unchanged"): the slowest commit against
// the median, and where the slowest ones fall.
void SegmentRolls(const std::string& root) {
  const std::string dir = JoinPath(root, "rolls");
  std::unique_ptr<PageStore> store = OpenStore(dir);
  const TimelineId t = Check(store->CreateTimeline(0, "rolls"), "create");
  Lsn head = Check(store->Head(t), "head");
  const std::string annotation(200, 'a');
  const uint64_t segment = PageStoreOptions{}.segment_bytes;
  const uint64_t commits = 2 * segment / (kPageSize + annotation.size()) + 2000;
  std::vector<double> ms;
  ms.reserve(commits);
  for (uint64_t i = 0; i < commits; ++i) {
    const std::string page = MakePage(1 + i % 256, i);
    const double start = NowSeconds();
    head = Check(store->Commit(t, head, {PageWrite{1 + static_cast<PageNo>(i % 256), page}}, 256,
                               annotation),
                 "commit");
    ms.push_back((NowSeconds() - start) * 1000);
  }
  std::vector<size_t> order(ms.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::partial_sort(order.begin(), order.begin() + 3, order.end(),
                    [&](size_t a, size_t b) { return ms[a] > ms[b]; });
  std::fprintf(
      stderr,
      "segment rolls: %llu commits; slowest at commits %zu, %zu, %zu (%.1f, %.1f, %.1f ms)\n",
      static_cast<unsigned long long>(commits), order[0], order[1], order[2], ms[order[0]],
      ms[order[1]], ms[order[2]]);
  Metric m;
  m.metric = "commit_latency_max_1_page_across_rolls";
  m.value = ms[order[0]];
  m.unit = "ms";
  m.baseline_name = "p50 of the same commits";
  m.baseline = Percentile(ms, 50);
  m.lower_is_better = true;
  m.target = "context: a roll seals the segment inside its commit";
  m.extra = {{"commits", static_cast<double>(commits)},
             {"p99_ms", Percentile(ms, 99)},
             {"p999_ms", Percentile(ms, 99.9)}};
  Report(m);
  store.reset();
  DeleteStore(dir);
}

void ReadsRecoveryMemory(const std::string& root, uint64_t mb, uint64_t small_mb) {
  const std::string dir = JoinPath(root, "store-" + SizeName(mb));
  // Recovery: median of three opens.
  std::vector<double> opens;
  for (int i = 0; i < 3; ++i) {
    const double t0 = NowSeconds();
    auto s = OpenStore(dir);
    opens.push_back(NowSeconds() - t0);
  }
  Metric r;
  r.metric = "recovery_open_" + SizeName(mb);
  r.value = Percentile(opens, 50) * 1e3;
  r.unit = "ms";
  r.lower_is_better = true;
  r.target = "< 2000 ms";
  r.met = r.value < 2000;
  Report(r);

  auto store = OpenStore(dir);
  const TimelineId t = store->ListTimelines().front().id;
  const Lsn head = Check(store->Head(t), "head");
  const uint32_t pages = Check(store->DbSize(t, head), "size");
  std::mt19937_64 rng(42);
  std::string out;
  auto sample = [&](const std::vector<PageNo>& pgnos) {
    std::vector<double> us;
    for (PageNo p : pgnos) {
      const double t0 = NowSeconds();
      Status s = store->ReadPage(t, p, head, &out);
      us.push_back((NowSeconds() - t0) * 1e6);
      if (!s.ok()) Die("read", s);
    }
    return us;
  };
  std::vector<PageNo> cold, hot;
  for (int i = 0; i < 5000; ++i) cold.push_back(1 + static_cast<PageNo>(rng() % pages));
  for (int i = 0; i < 5000; ++i) hot.push_back(1 + static_cast<PageNo>(rng() % 1000));
  std::vector<double> cold_us = sample(cold);
  (void)sample(hot);
  std::vector<double> warm_us = sample(hot);
  for (auto [name, v] : {std::pair{"cold", &cold_us}, std::pair{"warm", &warm_us}}) {
    for (double p : {50.0, 99.0}) {
      Metric m;
      m.metric = std::string("read_page_") + name + "_p" + std::to_string(int(p)) + "_" +
                 SizeName(mb);
      m.value = Percentile(*v, p);
      m.unit = "us";
      m.lower_is_better = true;
      Report(m);
    }
  }
  store.reset();

  // RAM: RSS growth of Open in a fresh process, for the largest store and
  // for a smaller one; the slope between them is the cost per indexed page
  // version without the fixed costs of a process and an open store.
  const double delta = OpenRssDelta(dir);
  const double versions = static_cast<double>(mb * kMiB / kPageSize);
  Metric total;
  total.metric = "ram_open_" + SizeName(mb);
  total.value = delta / kMiB;
  total.unit = "MiB";
  total.lower_is_better = true;
  Report(total);
  Metric mem;
  mem.metric = "ram_per_page_version";
  mem.unit = "bytes";
  mem.lower_is_better = true;
  mem.target = "< 64 bytes";
  if (small_mb > 0 && small_mb < mb) {
    const double small_delta = OpenRssDelta(JoinPath(root, "store-" + SizeName(small_mb)));
    const double small_versions = static_cast<double>(small_mb * kMiB / kPageSize);
    mem.value = (delta - small_delta) / (versions - small_versions);
  } else {
    mem.value = delta / versions;  // includes the fixed costs
  }
  mem.met = delta >= 0 && mem.value < 64;
  Report(mem);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--open-rss") {
    OpenRssChild(argv[2], std::atoi(argv[3]));
  }
  const uint64_t max_mb = EnvU64("BRANCHDB_BENCH_MAX_MB", 1024);
  const double seconds = static_cast<double>(EnvU64("BRANCHDB_BENCH_SECONDS", 5));
  std::vector<uint64_t> sizes;
  for (uint64_t mb : {1ull, 10ull, 100ull, 1024ull}) sizes.push_back(std::min(mb, max_mb));
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  bench::ScratchDir root("storage");
  const double start = NowSeconds();

  BranchCreation(root.path(), sizes);
  CommitThroughput(root.path(), seconds);
  SegmentRolls(root.path());
  ReadsRecoveryMemory(root.path(), sizes.back(), sizes.size() > 1 ? sizes[sizes.size() - 2] : 0);

  std::fprintf(stderr, "\nstorage_bench summary (%.0f s, largest store %s):\n",
               NowSeconds() - start, SizeName(sizes.back()).c_str());
  for (const auto& s : g_summary) {
    std::fprintf(stderr, "  %-40s %-16s %-44s %s\n", s.metric.c_str(), s.value.c_str(),
                 s.target.c_str(), s.met ? "MET" : "NOT MET");
  }
  return 0;
}
