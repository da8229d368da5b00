// history_bench: what a long history costs the page store in memory (#15).
// One timeline takes N commits of one page each (over a working set of 1,000
// pages) with a 2 KiB annotation, the shape of an agent's checkpointed
// actions. Measured in this process, in ten phases:
//   - rss_per_commit: the process's RSS growth per commit, a least-squares
//     slope over the phases after the first (the first pays for allocator
//     arenas and the page index's slots);
//   - rss_net_per_commit: the same slope of RSS less the unsealed segment's
//     record offsets (Stats().unsealed_record_bytes: 0 to a few MB along each
//     segment, released at its seal, which ten samples catch at arbitrary
//     points of that cycle);
//   - record_metadata_per_commit: PageStore::RecordMetadataBytes() / N;
//   - page_index_per_commit: Stats().page_index_bytes / N (format 3: only the
//     unsealed segment's versions and the sealed ones' directories and
//     filters are in memory);
// then, in a freshly executed process (memory this one freed cannot hide it):
//   - open_rss_per_commit: the RSS growth of opening the store, / N, and
//     open_rss_trimmed_per_commit, the same after malloc_trim(0) (without
//     what the allocator kept of recovery's transient buffers);
// and, as context, History() and GetRecord() over the whole history (every
// record's annotation read back and checked) with the store's meta cache
// statistics; then
//   - restart_ratio: the time from Open to the first answered read (a page
//     of the head state) of this store against the same for an empty store,
//     each the best of five opens in this process, one after the other (the
//     stores are opened with seal_on_close: a clean close leaves no tail).
//     The empty store is an empty database as SQLite leaves it: a timeline
//     and one commit of page 1, so that both first reads look a page up and
//     read it; restart_ratio_bare is the same against a store with a
//     timeline and no page (whose first read reads no file), for context.
// fsync is skipped (an Env whose files' Sync does nothing): memory does not
// depend on it, and N commits at one fdatasync each would take N disk flushes.
//
// Environment: BRANCHDB_BENCH_DIR scratch directory (default /tmp),
// BRANCHDB_BENCH_COMMITS N (default 200000; BRANCHDB_BENCH_QUICK=1: 20000),
// BRANCHDB_BENCH_KEEP=1 keeps the store (its path is printed), and
// BRANCHDB_BENCH_RESTART_ONLY=<store dir> measures only the restart of a
// kept store (open to first read, best of five) against an empty store's, to
// iterate on Open (with BRANCHDB_BENCH_RESTART_LOOPS=K: only K rounds of the
// kept store's five opens, nothing printed, for a profiler). The allocator's
// mmap threshold is pinned as `branchdb serve` pins it
// (PinMallocMmapThreshold); BRANCHDB_BENCH_MALLOC_DEFAULT=1 leaves glibc's
// default (a threshold that rises with every large block freed).
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/process.h"
#include "bench/bench_util.h"
#include "storage/page_store.h"

using namespace branchdb;
using namespace branchdb::storage;
using bench::Emit;
using bench::Metric;
using bench::NowSeconds;

namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint32_t kWorkingSetPages = 1000;
constexpr size_t kAnnotationBytes = 2048;
constexpr int kPhases = 10;

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "history_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Check(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what, r.status());
  return std::move(*r);
}

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* s = std::getenv(name);
  return (s != nullptr && *s != '\0') ? std::strtoull(s, nullptr, 10) : fallback;
}

// A file whose Sync does nothing (see the file comment).
class NoSyncFile : public WritableFile {
 public:
  explicit NoSyncFile(std::unique_ptr<WritableFile> f) : f_(std::move(f)) {}
  Status Append(std::string_view data) override { return f_->Append(data); }
  Status Sync() override { return Status::OK(); }
  Status Close() override { return f_->Close(); }
  uint64_t Size() const override { return f_->Size(); }

 private:
  std::unique_ptr<WritableFile> f_;
};

class NoSyncEnv : public EnvWrapper {
 public:
  NoSyncEnv() : EnvWrapper(Env::Default()) {}
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override {
    auto f = target()->NewWritableFile(path, mode);
    if (!f.ok()) return f.status();
    return std::unique_ptr<WritableFile>(std::make_unique<NoSyncFile>(std::move(*f)));
  }
  Status SyncDir(const std::string&) override { return Status::OK(); }
};

NoSyncEnv* BenchEnv() {
  static NoSyncEnv env;
  return &env;
}

uint64_t RssBytes() {
  auto text = Env::Default()->ReadFileToString("/proc/self/statm");
  if (!text.ok()) return 0;
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(text->c_str(), "%llu %llu", &size, &resident) != 2) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Of RssBytes(), the pages of mapped files (statm's "shared").
uint64_t RssFileBytes() {
  auto text = Env::Default()->ReadFileToString("/proc/self/statm");
  if (!text.ok()) return 0;
  unsigned long long size = 0, resident = 0, shared = 0;
  if (std::sscanf(text->c_str(), "%llu %llu %llu", &size, &resident, &shared) != 3) return 0;
  return shared * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::unique_ptr<PageStore> OpenStore(const std::string& dir) {
  PageStoreOptions o;
  o.env = BenchEnv();
  o.cache_bytes = kMiB;  // page images: not what is measured
  o.seal_on_close = true;  // the next Open scans no tail
  return Check(PageStore::Open(o, dir), "open " + dir);
}

// The annotation of commit i: 2 KiB, its number first (checked when read back).
std::string Annotation(uint64_t i) {
  std::string a = "{\"commit\":" + std::to_string(i) + ",\"sql\":\"";
  a.resize(kAnnotationBytes - 2, static_cast<char>('a' + i % 26));
  return a + "\"}";
}

bool AnnotationIs(const std::string& a, uint64_t i) {
  return a.size() == kAnnotationBytes && a == Annotation(i);
}

// Least-squares slope of y over x.
double Slope(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// One metric measured over n commits; target empty: a context metric.
void Report(const std::string& metric, double value, const std::string& unit, bool lower_is_better,
            uint64_t n, const std::string& target = "", bool met = false) {
  Metric m;
  m.bench = "history";
  m.metric = metric;
  m.value = value;
  m.unit = unit;
  m.lower_is_better = lower_is_better;
  if (!target.empty()) {
    m.target = target;
    m.met = met;
  }
  m.extra = {{"commits", static_cast<double>(n)}};
  Emit(m);
}

// In a fresh process (re-executed with --open-rss DIR FD): the RSS growth of
// opening the store in DIR, then the same after malloc_trim (what the store
// holds, without what the allocator kept of recovery's transient buffers),
// written as two doubles to FD.
[[noreturn]] void OpenRssChild(const std::string& dir, int fd) {
  const uint64_t before = RssBytes();
  auto store = OpenStore(dir);
  double delta[2];
  delta[0] = static_cast<double>(RssBytes()) - static_cast<double>(before);
  ::malloc_trim(0);
  delta[1] = static_cast<double>(RssBytes()) - static_cast<double>(before);
  ssize_t w = ::write(fd, delta, sizeof(delta));
  std::_Exit(w == sizeof(delta) ? 0 : 1);
}

// {RSS growth of an open, the same after malloc_trim}; -1 on failure.
std::pair<double, double> OpenRssDelta(const std::string& dir) {
  int fds[2];
  if (::pipe(fds) != 0) return {-1, -1};
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const std::string fd = std::to_string(fds[1]);
    ::execl("/proc/self/exe", "history_bench", "--open-rss", dir.c_str(), fd.c_str(),
            static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(fds[1]);
  double delta[2] = {-1, -1};
  if (::read(fds[0], delta, sizeof(delta)) != sizeof(delta)) delta[0] = delta[1] = -1;
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {delta[0], delta[1]};
}

// Deletes the store's files and its directory.
void RemoveStore(const std::string& dir) {
  Env* env = Env::Default();
  auto names = env->GetChildren(dir);
  if (!names.ok()) return;
  for (const std::string& name : *names) (void)env->DeleteFile(JoinPath(dir, name));
  (void)env->DeleteDir(dir);
}

// Open to first answered read (a page of the head state of the first
// timeline), the best of five opens.
double RestartSeconds(const std::string& d, uint64_t* disk_bytes) {
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    const double s0 = NowSeconds();
    auto s = OpenStore(d);
    const std::vector<TimelineInfo> timelines = s->ListTimelines();
    if (timelines.empty()) Die("first read", Status::NotFound("no timeline"));
    const TimelineId t = timelines.front().id;
    const Lsn h = Check(s->Head(t), "head");
    std::string out;
    Status read = s->ReadPage(t, 1, h, &out);
    if (!read.ok()) Die("first read", read);
    best = std::min(best, NowSeconds() - s0);
    if (disk_bytes != nullptr) *disk_bytes = s->DiskBytes();
  }
  return best;
}

// The empty stores a restart is compared with, measured as RestartSeconds
// measures: `empty`, an empty database as SQLite leaves it (one timeline and
// one commit of page 1, so that its first read takes the same steps as the
// big store's: a page index lookup and a page read), and `bare`, one timeline
// and no page (its first read finds no version: zeros, no file read), the
// baseline before, for context.
struct EmptyRestarts {
  double empty = 0;
  double bare = 0;
};
EmptyRestarts EmptyRestartSeconds(const std::string& base) {
  EmptyRestarts out;
  for (const bool with_page : {true, false}) {
    const std::string d = base + (with_page ? ".empty" : ".bare");
    RemoveStore(d);
    {
      auto store = OpenStore(d);
      const TimelineId t = Check(store->CreateTimeline(0, "bench"), "create");
      if (with_page) {
        const std::string page(kPageSize, 'p');
        Check(store->Commit(t, Check(store->Head(t), "head"), {PageWrite{1, page}}, 1,
                            Annotation(0)),
              "commit");
      }
    }
    (with_page ? out.empty : out.bare) = RestartSeconds(d, nullptr);
    RemoveStore(d);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // As `branchdb serve` does, unless the allocator's default is asked for.
  if (EnvU64("BRANCHDB_BENCH_MALLOC_DEFAULT", 0) == 0) PinMallocMmapThreshold();
  if (argc == 4 && std::strcmp(argv[1], "--open-rss") == 0) {
    OpenRssChild(argv[2], std::atoi(argv[3]));
  }
  if (const char* only = std::getenv("BRANCHDB_BENCH_RESTART_ONLY"); only != nullptr && *only) {
    if (const uint64_t loops = EnvU64("BRANCHDB_BENCH_RESTART_LOOPS", 0); loops > 0) {
      for (uint64_t i = 0; i < loops; ++i) RestartSeconds(only, nullptr);  // for a profiler
      return 0;
    }
    uint64_t disk_bytes = 0;
    const double s = RestartSeconds(only, &disk_bytes);
    // And the empty stores', as the full run measures them.
    const EmptyRestarts e = EmptyRestartSeconds(only);
    std::fprintf(stderr,
                 "history_bench: store %s of %.1f MiB, restart %.6f s, empty %.6f s (%.2fx), "
                 "bare %.6f s (%.2fx)\n",
                 only, static_cast<double>(disk_bytes) / kMiB, s, e.empty, s / e.empty, e.bare,
                 s / e.bare);
    // Then the first walk of a run's list (the state before the head),
    // which completes the lists Open left on disk.
    auto store = OpenStore(only);
    const TimelineId t = store->ListTimelines().front().id;
    const Lsn h = Check(store->Head(t), "head");
    const double w0 = NowSeconds();
    Check(store->ResolveLsn(t, h - 1), "resolve");
    const double w1 = NowSeconds();
    Check(store->ResolveLsn(t, h - 2), "resolve");
    std::fprintf(stderr, "history_bench: first walk after open %.6f s, the next %.6f s\n",
                 w1 - w0, NowSeconds() - w1);
    return 0;
  }
  const bool quick = EnvU64("BRANCHDB_BENCH_QUICK", 0) != 0;
  const uint64_t n =
      std::max<uint64_t>(kPhases * 2, EnvU64("BRANCHDB_BENCH_COMMITS", quick ? 20000 : 200000));
  const char* root_env = std::getenv("BRANCHDB_BENCH_DIR");
  const std::string root = root_env != nullptr && *root_env ? root_env : "/tmp";
  const std::string dir = JoinPath(root, "history_bench." + std::to_string(::getpid()));
  RemoveStore(dir);

  auto store = OpenStore(dir);
  const TimelineId t = Check(store->CreateTimeline(0, "bench"), "create");
  Lsn head = Check(store->Head(t), "head");
  const Lsn first = head + 1;
  std::string page(kPageSize, '\0');
  std::vector<double> xs, ys, net;
  const double t0 = NowSeconds();
  for (int phase = 1; phase <= kPhases; ++phase) {
    const uint64_t end = n * phase / kPhases;
    for (uint64_t i = n * (phase - 1) / kPhases; i < end; ++i) {
      std::memcpy(page.data(), &i, sizeof(i));
      const PageNo pgno = static_cast<PageNo>(1 + i % kWorkingSetPages);
      head = Check(store->Commit(t, head, {PageWrite{pgno, page}}, kWorkingSetPages, Annotation(i)),
                   "commit");
    }
    if (phase > 1) {
      xs.push_back(static_cast<double>(end));
      ys.push_back(static_cast<double>(RssBytes()));
      net.push_back(ys.back() - static_cast<double>(store->Stats().unsealed_record_bytes));
    }
    const struct mallinfo2 heap = ::mallinfo2();
    std::fprintf(
        stderr,
        "history_bench: %" PRIu64
        " commits, RSS %.1f MiB (file-backed %.1f, unsealed "
        "records %.1f; heap in use %.1f, free %.1f, mapped %.1f)\n",
        end, static_cast<double>(RssBytes()) / kMiB, static_cast<double>(RssFileBytes()) / kMiB,
        static_cast<double>(store->Stats().unsealed_record_bytes) / kMiB,
        static_cast<double>(heap.uordblks) / kMiB, static_cast<double>(heap.fordblks) / kMiB,
        static_cast<double>(heap.hblkhd) / kMiB);
  }
  const double commit_seconds = NowSeconds() - t0;
  const double per_commit = Slope(xs, ys);
  const double meta = static_cast<double>(store->RecordMetadataBytes()) / static_cast<double>(n);
  const double index_bytes =
      static_cast<double>(store->Stats().page_index_bytes) / static_cast<double>(n);
  const std::string where = std::to_string(n) + " commits of 1 page, 2 KiB annotation";
  Report("rss_per_commit", per_commit, "bytes", true, n, "< 16 bytes (16 MB per 1M commits, #15)",
         per_commit < 16);
  const double net_per_commit = Slope(xs, net);
  Report("rss_net_per_commit", net_per_commit, "bytes", true, n,
         "< 16 bytes (RSS less the unsealed segment's record offsets)", net_per_commit < 16);
  Report("record_metadata_per_commit", meta, "bytes", true, n);
  Report("page_index_per_commit", index_bytes, "bytes", true, n);
  Report("commit_rate_nosync", static_cast<double>(n) / commit_seconds, "commits/s", false, n);

  // Every record read back: History over the whole timeline, then GetRecord
  // at random LSNs.
  const double h0 = NowSeconds();
  uint64_t seen = 0;
  Lsn before = 0;
  for (;;) {
    auto page_of = Check(store->History(t, before, 256), "history");
    for (const RecordInfo& r : page_of) {
      if (r.lsn < first) continue;  // the create record
      if (!AnnotationIs(r.annotation, r.lsn - first))
        Die("history", Status::Corruption("annotation"));
      ++seen;
    }
    if (page_of.size() < 256 || page_of.back().lsn == 1) break;  // before 0 is the head
    before = page_of.back().lsn - 1;
  }
  const double history_seconds = NowSeconds() - h0;
  if (seen != n) Die("history", Status::Corruption("history has " + std::to_string(seen)));
  std::mt19937_64 rng(42);
  const double g0 = NowSeconds();
  constexpr int kGets = 20000;
  for (int i = 0; i < kGets; ++i) {
    const Lsn lsn = first + rng() % n;
    auto r = Check(store->GetRecord(lsn), "get");
    if (!AnnotationIs(r.annotation, lsn - first)) Die("get", Status::Corruption("annotation"));
  }
  const double get_seconds = NowSeconds() - g0;
  Report("history_walk_records_per_s", static_cast<double>(n) / history_seconds, "records/s", false,
         n);
  Report("get_record_random_us", get_seconds / kGets * 1e6, "us", true, n);
  store.reset();

  const auto [open_delta, open_trimmed] = OpenRssDelta(dir);
  Report("open_rss_per_commit", open_delta / static_cast<double>(n), "bytes", true, n);
  Report("open_rss_trimmed_per_commit", open_trimmed / static_cast<double>(n), "bytes", true, n);

  // Restart: open to first answered read, this store against an empty one.
  uint64_t disk_bytes = 0;
  const double restart_big = RestartSeconds(dir, &disk_bytes);
  const EmptyRestarts restart_empty = EmptyRestartSeconds(dir);
  Report("restart_seconds", restart_big, "s", true, n);
  Report("restart_empty_seconds", restart_empty.empty, "s", true, n);
  Report("restart_ratio", restart_big / restart_empty.empty, "x", true, n,
         "<= 1.5 (#15: on >= 5 GB, >= 1M commits)", restart_big / restart_empty.empty <= 1.5);
  Report("restart_bare_seconds", restart_empty.bare, "s", true, n);
  Report("restart_ratio_bare", restart_big / restart_empty.bare, "x", true, n);
  std::fprintf(stderr,
               "history_bench: store of %.1f MiB, restart %.6f s, empty %.6f s, bare %.6f s\n",
               static_cast<double>(disk_bytes) / kMiB, restart_big, restart_empty.empty,
               restart_empty.bare);
  std::fprintf(stderr, "history_bench: %s\n", where.c_str());
  if (EnvU64("BRANCHDB_BENCH_KEEP", 0) != 0) {
    std::fprintf(stderr, "history_bench: store kept in %s\n", dir.c_str());
  } else {
    RemoveStore(dir);
  }
  return 0;
}
