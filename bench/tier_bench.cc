// tier_bench: reads of evicted history (issue #16, "Cold read of evicted
// history (fetch from the bucket) p50 against a local read"), at the level
// of the page stores' Env (server/object_storage/tiered_env.h), against a
// real Ceph RGW (scripts/ceph-s3.sh, started here in the scratch directory).
//
// A project of 8 MiB sealed segments is uploaded and recorded as the uploader
// does; then
//   local_read_p50          a 4 KiB read at a random offset of a local segment
//                           (the OS page cache holds the files: a warm local read)
//   cold_read_p50_block_X   the same read of an evicted segment, in a block
//                           not fetched before (one ranged GET of X bytes)
//   warm_read_p50_block_X   the same reads again (fetch cache hits)
//   scan_mb_s_block_X       a sequential scan of every evicted segment, 64 KiB
//                           reads (one GET per block), against a local scan
// for block sizes 64 KiB, 256 KiB, 1 MiB (the default) and 4 MiB.
// BRANCHDB_BENCH_QUICK=1: 2 segments and fewer reads.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <cstring>
#include <map>
#include <random>

#include "bench/bench_util.h"
#include "objstore/s3_client.h"
#include "server/object_storage/segment_uploader.h"
#include "server/object_storage/tiered_env.h"

namespace branchdb::bench {
namespace {

const std::string kScript = std::string(BRANCHDB_SOURCE_DIR) + "/scripts/ceph-s3.sh";
constexpr uint64_t kSegmentBytes = 8ull << 20;
constexpr size_t kReadBytes = 4096 + 32;  // a page and its record header, about

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::perror("tier_bench: free port");
    std::exit(1);
  }
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

struct Fixture {
  std::string dir;
  objstore::S3Options options;
  Fixture() {
    const char* base = std::getenv("BRANCHDB_BENCH_DIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/tier-bench.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::exit(1);
    dir = tmpl;
    const std::string cmd =
        kScript + " start " + dir + "/ceph " + std::to_string(FreePort()) + " >&2";
    if (std::system(cmd.c_str()) != 0) {
      std::cerr << "tier_bench: " << cmd << " failed\n";
      std::exit(1);
    }
    std::ifstream env(dir + "/ceph/s3.env");
    std::string line;
    while (std::getline(env, line)) {
      const size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "endpoint") options.endpoint = value;
      if (key == "access_key_id") options.access_key_id = value;
      if (key == "secret_access_key") options.secret_access_key = value;
    }
    options.bucket = "tier-bench";
  }
  ~Fixture() {
    (void)std::system((kScript + " stop " + dir + "/ceph >&2").c_str());
    (void)std::system(("rm -rf " + dir).c_str());
  }
};

std::string SegmentPath(const std::string& data_dir, uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "seg-%06llu.log", static_cast<unsigned long long>(n));
  return data_dir + "/projects/p1/" + buf;
}

std::unique_ptr<server::TieredEnv> OpenEnv(const Fixture& f, const std::string& data_dir,
                                           uint64_t block) {
  server::TieredEnvOptions o;
  o.data_dir = data_dir;
  o.local_cache_bytes = 1;  // evict every verified sealed segment
  o.block_bytes = block;
  o.interval_ms = 0;
  o.logger = std::make_shared<spdlog::logger>("tier", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto client = objstore::S3Client::Open(f.options);
  if (!client.ok()) std::exit(1);
  auto env = server::TieredEnv::Create(Env::Default(), o, std::move(*client));
  if (!env.ok()) std::exit(1);
  return std::move(*env);
}

// Writes segments 1..n+1 (the last is the "unsealed" one), uploads 1..n and
// records them in p1.uploaded.
void BuildProject(const Fixture& f, const std::string& data_dir, int n) {
  Env* env = Env::Default();
  auto client = objstore::S3Client::Open(f.options);
  if (!client.ok() || !(*client)->CreateBucketIfMissing().ok()) std::exit(1);
  (void)env->CreateDirs(data_dir + "/projects/p1");
  (void)env->CreateDirs(data_dir + "/object_storage");
  std::mt19937_64 rng(42);
  std::string uploaded;
  for (int i = 1; i <= n + 1; ++i) {
    std::string bytes(kSegmentBytes, '\0');
    for (size_t k = 0; k + 8 <= bytes.size(); k += 8) {
      const uint64_t v = rng();
      std::memcpy(bytes.data() + k, &v, 8);
    }
    const std::string path = SegmentPath(data_dir, i);
    if (!env->WriteFileAtomic(path, bytes).ok()) std::exit(1);
    if (i > n) break;
    const std::string name = path.substr(path.rfind('/') + 1);
    auto put = (*client)->Put(server::SegmentObjectKey("", "p1", name), bytes);
    if (!put.ok()) {
      std::cerr << "tier_bench: " << put.status().ToString() << "\n";
      std::exit(1);
    }
    uploaded += name + " " + std::to_string(bytes.size()) + " " + put->etag + "\n";
  }
  if (!env->WriteFileAtomic(data_dir + "/object_storage/p1.uploaded", uploaded).ok()) std::exit(1);
}

struct Offset {
  int segment;
  uint64_t offset;
};

// Random read offsets in distinct blocks (of block bytes) of segments 1..n.
std::vector<Offset> DistinctBlocks(int n, uint64_t block, size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Offset> all;
  for (int s = 1; s <= n; ++s) {
    for (uint64_t b = 0; b < kSegmentBytes / block; ++b) {
      all.push_back({s, b * block + rng() % (block - kReadBytes)});
    }
  }
  std::shuffle(all.begin(), all.end(), rng);
  if (all.size() > count) all.resize(count);
  return all;
}

double ReadP50(Env& env, const std::string& data_dir, const std::vector<Offset>& reads) {
  std::vector<double> ms;
  std::string buf(kReadBytes, '\0');
  std::map<int, std::unique_ptr<RandomAccessFile>> files;
  for (const Offset& r : reads) {
    auto& f = files[r.segment];
    if (!f) {
      auto opened = env.NewRandomAccessFile(SegmentPath(data_dir, r.segment));
      if (!opened.ok()) std::exit(1);
      f = std::move(*opened);
    }
    const double t0 = NowSeconds();
    auto n = f->Read(r.offset, kReadBytes, buf.data());
    if (!n.ok() || *n != kReadBytes) {
      std::cerr << "tier_bench: read failed\n";
      std::exit(1);
    }
    ms.push_back((NowSeconds() - t0) * 1000);
  }
  return Percentile(ms, 50);
}

double ScanMbPerSecond(Env& env, const std::string& data_dir, int n) {
  std::string buf(64 << 10, '\0');
  const double t0 = NowSeconds();
  for (int s = 1; s <= n; ++s) {
    auto f = env.NewRandomAccessFile(SegmentPath(data_dir, s));
    if (!f.ok()) std::exit(1);
    for (uint64_t pos = 0; pos < kSegmentBytes; pos += buf.size()) {
      if (!(*f)->Read(pos, buf.size(), buf.data()).ok()) std::exit(1);
    }
  }
  return static_cast<double>(n) * kSegmentBytes / 1e6 / (NowSeconds() - t0);
}

int Main() {
  const bool quick = std::getenv("BRANCHDB_BENCH_QUICK") != nullptr &&
                     std::string(std::getenv("BRANCHDB_BENCH_QUICK")) == "1";
  const int segments = quick ? 2 : 8;
  const size_t cold_reads = quick ? 16 : 64;
  Fixture f;
  const std::string data_dir = f.dir + "/data";
  BuildProject(f, data_dir, segments);
  auto env = OpenEnv(f, data_dir, 1 << 20);
  const double local_p50 =
      ReadP50(*env, data_dir, DistinctBlocks(segments, 64 << 10, quick ? 200 : 2000, 1));
  const double local_scan = ScanMbPerSecond(*env, data_dir, segments);
  if (!env->EvictOnce().ok()) std::exit(1);
  Metric m;
  m.bench = "tier";
  m.metric = "local_read_p50";
  m.value = local_p50;
  m.unit = "ms";
  Emit(m);
  for (uint64_t block : {64ull << 10, 256ull << 10, 1ull << 20, 4ull << 20}) {
    const std::string tag = block < (1 << 20) ? std::to_string(block >> 10) + "kib"
                                              : std::to_string(block >> 20) + "mib";
    auto cold_env = OpenEnv(f, data_dir, block);
    const auto reads = DistinctBlocks(segments, block, cold_reads, 7);
    Metric cold{"tier", "cold_read_p50_block_" + tag, ReadP50(*cold_env, data_dir, reads), "ms",
                "local_read_p50", local_p50, true};
    Emit(cold);
    Metric warm{"tier", "warm_read_p50_block_" + tag, ReadP50(*cold_env, data_dir, reads), "ms",
                "local_read_p50", local_p50, true};
    Emit(warm);
    auto scan_env = OpenEnv(f, data_dir, block);
    Metric scan{"tier", "scan_mb_s_block_" + tag, ScanMbPerSecond(*scan_env, data_dir, segments),
                "MB/s", "local_scan_mb_s", local_scan};
    Emit(scan);
  }
  return 0;
}

}  // namespace
}  // namespace branchdb::bench

int main() { return branchdb::bench::Main(); }
