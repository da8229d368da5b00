#include "server/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <thread>
#include <utility>

#include <sys/stat.h>

#include "auth/auth.h"
#include "base/mutex.h"
#include "base/process.h"
#include "catalog/catalog.h"
#include "cluster/cluster.h"
#include "cluster/etcd_files_env.h"
#include "server/cache_budget.h"
#include "server/cluster/takeover.h"
#include "server/compute/supervisor.h"
#include "server/guard/guard.h"
#include "server/guard/usage_metrics.h"
#include "server/hrana/route.h"
#include "server/http/admission.h"
#include "server/http/auth_guard.h"
#include "server/http/errors.h"
#include "server/http/guarded_server.h"
#include "server/http/idempotency.h"
#include "server/http/log_value.h"
#include "server/http/metrics.h"
#include "server/http/router.h"
#include "server/http/timed_env.h"
#include "server/object_storage/catalog_backup.h"
#include "server/object_storage/restore.h"
#include "server/object_storage/segment_uploader.h"
#include "server/object_storage/tiered_env.h"
#include "server/routes/common.h"
#include "server/routes/table.h"
#include "server/sql/cpu_scheduler.h"
#include "storage/cache.h"
#include "storage/page_store.h"

namespace branchdb::server {
namespace {

// The absolute spellings of the data directory (as configured, made absolute,
// with symlinks resolved), longest first: what error bodies must not show.
std::vector<std::string> DataDirSpellings(const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  auto add = [&out](std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    if (p.size() > 1 && p[0] == '/' && std::find(out.begin(), out.end(), p) == out.end()) {
      out.push_back(std::move(p));
    }
  };
  add(data_dir);
  fs::path absolute = fs::absolute(data_dir, ec);
  if (!ec) add(absolute.lexically_normal().string());
  fs::path canonical = fs::weakly_canonical(data_dir, ec);
  if (!ec) add(canonical.string());
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

// Projects whose store was found damaged: one warning each now (at
// start-up), and the branchdb_damaged_projects gauge at every /metrics.
void ReportDamagedProjects(catalog::Catalog* cat, http::Metrics& metrics, spdlog::logger& logger) {
  metrics.AddCollector([cat](http::Metrics& m) {
    double serving = 0, down = 0;
    for (const catalog::ProjectDamage& d : cat->DamagedProjects()) (d.serving ? serving : down) += 1;
    m.Set(http::kDamagedProjects, {{"serving", "true"}}, serving);
    m.Set(http::kDamagedProjects, {{"serving", "false"}}, down);
  });
  for (const catalog::ProjectDamage& d : cat->DamagedProjects()) {
    if (!d.serving) {
      logger.warn("event=project_damaged project={} serving=false error={}",
                  http::LogValue(d.project), http::LogValue(d.message));
    }
    for (const std::string& segment : d.segments) {
      logger.warn("event=project_damaged project={} serving=true segment={}",
                  http::LogValue(d.project), http::LogValue(segment));
    }
  }
}

// /metrics: the verified-token cache's counts (auth::AuthStats), read at render.
void AddAuthCollector(http::Metrics& metrics, auth::AuthService* auth) {
  metrics.AddCollector([auth](http::Metrics& m) {
    auth::AuthStats s = auth->Stats();
    m.SetCounter(http::kAuthSignatureChecks, {}, static_cast<double>(s.signature_checks));
    m.SetCounter(http::kAuthTokenCache, {{"result", "hit"}}, static_cast<double>(s.cache_hits));
    m.SetCounter(http::kAuthTokenCache, {{"result", "miss"}}, static_cast<double>(s.cache_misses));
    m.SetCounter(http::kAuthTokenCache, {{"result", "rejected_hit"}},
                 static_cast<double>(s.rejected_hits));
  });
}

}  // namespace

struct ApiServer::Parts {
  // [storage] cache_mb, split (server/cache_budget.h); the stores' shared cache.
  CacheBudget cache_budget;
  std::shared_ptr<storage::Cache> store_cache;
  // [object_storage]: the stores' Env, which evicts sealed segments and reads
  // them back from the bucket (null when not configured). Outlives the catalog.
  std::unique_ptr<TieredEnv> tiered_env;
  std::unique_ptr<http::TimedEnv> timed_env;
  // [cluster]: the auth state's files live in etcd (auth_env over auth_etcd);
  // start_lock_lease holds PREFIX/locks/start from before the auth service
  // opens until Bind() has ensured the admin client (0: not held).
  std::unique_ptr<cluster::EtcdClient> auth_etcd;
  std::unique_ptr<cluster::EtcdFilesEnv> auth_env;
  int64_t start_lock_lease = 0;
  // This node's membership and ownerships; started by Bind().
  std::unique_ptr<cluster::ClusterNode> cluster;
  std::unique_ptr<catalog::Catalog> catalog;
  std::unique_ptr<auth::AuthService> auth;
  std::unique_ptr<http::Metrics> metrics;
  std::unique_ptr<http::IdempotencyStore> idempotency;
  // Runs of every sandbox (computes, pages, promote): outlives them all.
  std::unique_ptr<sql::CpuScheduler> scheduler;
  std::unique_ptr<compute::ComputeSupervisor> computes;
  // Quotas, usage and the audit trail (its ledger.db).
  std::unique_ptr<guard::Guard> guard;
  // Hrana streams (their own connections close before the computes').
  std::unique_ptr<hrana::StreamTable> streams;
  // The catalog's reaper may call back before the supervisor exists or while
  // it is being destroyed: it uses the supervisor under reaper_mu only.
  // Taken on the reaper's thread with no catalog lock held; under it only
  // ComputeSupervisor::Remove (the supervisor's mu_).
  Mutex reaper_mu;
  compute::ComputeSupervisor* computes_for_reaper GUARDED_BY(reaper_mu) = nullptr;
  std::unique_ptr<httplib::Server> http;  // a GuardedServer or GuardedSslServer
  std::function<bool()> set_backlog;      // the listen queue, after binding
  std::unique_ptr<http::Admission> admission;
  std::unique_ptr<http::Router> router;
  std::atomic<bool> stopped{false};
  std::atomic<bool> serving{false};     // Serve() entered
  std::atomic<bool> serve_done{false};  // Serve() returned

  // [object_storage]: uploads sealed segments (null when not configured).
  std::unique_ptr<SegmentUploader> uploader;
  // [object_storage]: uploads the projects' catalog snapshots (null when not configured).
  std::unique_ptr<CatalogBackup> catalog_backup;
  // [cluster] with [object_storage]: takes dead owners' projects over from
  // the bucket, and says which projects this node may upload (null otherwise).
  std::unique_ptr<Takeover> takeover;

  // Housekeeping thread: auth key rotation and pruning, every minute.
  std::thread housekeeper;
  Mutex hk_mu;  // a leaf: Maintain() runs without it
  CondVar hk_cv;
  bool hk_stop GUARDED_BY(hk_mu) = false;
};

ApiServer::ApiServer(const Config& config, Env* env)
    : config_(config), env_(env), parts_(std::make_unique<Parts>()) {}

ApiServer::~ApiServer() {
  Stop();
  if (parts_->housekeeper.joinable()) {
    {
      MutexLock l(parts_->hk_mu);
      parts_->hk_stop = true;
    }
    parts_->hk_cv.SignalAll();
    parts_->housekeeper.join();
  }
  // Close in dependency order: the HTTP server (no more handlers), computes
  // (their connections), then the stores below them.
  parts_->router.reset();
  parts_->http.reset();
  services_.catalog_backup = nullptr;
  parts_->catalog_backup.reset();  // its waiters upload the log through the uploader
  services_.uploader = nullptr;
  parts_->uploader.reset();  // before the metrics its collector reads
  // Leaves the cluster (its lease revoked: its ownerships go at once) before
  // the auth service its poll thread reloads and the catalog go.
  services_.cluster = nullptr;
  parts_->cluster.reset();  // its takeover thread first
  parts_->takeover.reset();
  if (parts_->start_lock_lease != 0) (void)parts_->auth_etcd->LeaseRevoke(parts_->start_lock_lease);
  parts_->streams.reset();
  parts_->guard.reset();
  {
    MutexLock l(parts_->reaper_mu);
    parts_->computes_for_reaper = nullptr;
  }
  parts_->computes.reset();
  parts_->idempotency.reset();
  parts_->catalog.reset();
  parts_->auth.reset();
}

Result<std::unique_ptr<ApiServer>> ApiServer::Create(const Config& config, Env* env) {
  if (auto errors = Validate(config); !errors.empty()) {
    return Status::InvalidArgument("invalid config: " + errors.front().ToString(),
                                   "invalid_config");
  }
  // SQLite's memory statistics (SQLITE_CONFIG_MEMSTATUS, on by default) take
  // one process-wide mutex in every sqlite3_malloc and sqlite3_free, so every
  // query's thread contends with every other's, and a long query's thread
  // preempted while it holds the mutex stalls all the others (perf showed it
  // under bench/load_bench). branchdb reads none of those statistics and sets
  // no heap limit: off. Possible only before SQLite initializes, so the first
  // server of a process does it (SQLITE_MISUSE afterwards: nothing to do).
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  std::unique_ptr<ApiServer> server(new ApiServer(config, env));
  BRANCHDB_RETURN_IF_ERROR(server->Init());
  return server;
}

namespace {

// The config-derived services everything else is built with; the logger.
void InitServices(const Config& config, Env* env, Services& services) {
  Clock* clock = env->GetClock();
  services.config = &config;
  services.public_url = config.PublicUrl();
  services.env = env;
  services.clock = clock;
  services.sandbox.clock = clock;
  services.sandbox.statement_timeout_ms = config.statement_timeout_ms;
  services.sandbox.max_result_rows = config.max_result_rows;
  services.sandbox.max_result_bytes = config.max_result_bytes;
  services.sandbox.max_sql_bytes = config.max_sql_bytes;
  services.sandbox.max_db_bytes = config.max_branch_bytes;
  services.logger = spdlog::default_logger();
  // Seals free buffers of megabytes all day: keep them out of the heap.
  if (!PinMallocMmapThreshold()) services.logger->warn("event=malloc_threshold_not_pinned");
  // Every open project store, connection and SQLite file is a descriptor:
  // take all the kernel allows (stores are also closed when idle).
  if (auto limit = RaiseFileDescriptorLimit(); limit.ok()) {
    services.logger->info("event=open_file_limit limit={}", *limit);
  } else {
    services.logger->warn("event=open_file_limit_not_raised error=\"{}\"",
                          limit.status().ToString());
  }
}

// Nodes of a cluster starting together must not each create the shared auth
// state (the first signing key, the admin client): PREFIX/locks/start is held
// by one at a time, under a lease of its own (a crash frees it), from before
// the auth service opens until the admin client exists. Unavailable when it
// stays taken for 30 s or etcd cannot be reached.
Result<int64_t> TakeStartLock(const Config& config, cluster::EtcdClient& etcd, Clock* clock) {
  const std::string key = config.cluster_prefix + "/locks/start";
  const int64_t deadline = clock->NowMonotonicNanos() + 30'000'000'000;
  for (;;) {
    auto lease = etcd.LeaseGrant(10);
    if (!lease.ok()) return lease.status().WithContext("cluster start lock");
    auto txn = etcd.Txn(
        {{key, cluster::Compare::Target::kCreateRevision, cluster::Compare::Op::kEqual, 0, ""}},
        {{cluster::TxnOp::Kind::kPut, key, config.node_name, lease->id, false}}, {});
    if (txn.ok() && txn->succeeded) return lease->id;
    (void)etcd.LeaseRevoke(lease->id);
    if (!txn.ok()) return txn.status().WithContext("cluster start lock");
    if (clock->NowMonotonicNanos() > deadline) {
      return Status::Unavailable("cluster start lock " + key + " stayed taken for 30 s",
                                 "cluster_start_lock");
    }
    clock->SleepForMicros(100'000);
  }
}

Status OpenAuth(const Config& config, Env* env, ApiServer::Parts& parts, Services& services) {
  auth::AuthOptions aopts;
  aopts.data_dir = config.data_dir;
  if (config.clustered()) {
    // Clients, signing keys and revocations are the cluster's, in etcd, so
    // that a token issued by any node is accepted by every other.
    cluster::EtcdOptions eo;
    eo.endpoints = config.etcd_endpoints;
    auto etcd = cluster::EtcdClient::Create(eo);
    if (!etcd.ok()) return etcd.status().WithContext("cluster");
    parts.auth_etcd = std::move(*etcd);
    auto lease = TakeStartLock(config, *parts.auth_etcd, env->GetClock());
    if (!lease.ok()) return lease.status();
    parts.start_lock_lease = *lease;
    parts.auth_env = std::make_unique<cluster::EtcdFilesEnv>(
        env, parts.auth_etcd.get(), JoinPath(config.data_dir, "auth"),
        config.cluster_prefix + "/auth/");
    env = parts.auth_env.get();
    aopts.shared_state = true;
  }
  aopts.access_token_lifetime_seconds = config.token_lifetime_seconds;
  aopts.token_cache_entries = static_cast<size_t>(config.token_cache_entries);
  auto auth_service = auth::AuthService::Open(env, std::move(aopts));
  if (!auth_service.ok()) return auth_service.status().WithContext("auth");
  parts.auth = std::move(*auth_service);
  services.auth = parts.auth.get();
  return Status::OK();
}

// CPU scheduling of every sandboxed script (server/sql/cpu_scheduler.h).
Status StartScheduler(const Config& config, ApiServer::Parts& parts, Services& services) {
  sql::CpuSchedulerOptions sched;
  sched.clock = services.clock;
  sched.slots = config.sql_cpu_slots;
  sched.quantum_nanos = config.sql_cpu_quantum_ms * 1'000'000;
  auto scheduler = sql::CpuScheduler::Create(sched);
  if (!scheduler.ok()) return scheduler.status();
  parts.scheduler = std::move(*scheduler);
  services.sandbox.scheduler = parts.scheduler.get();
  services.logger->info("event=sql_cpu_slots slots={} quantum_ms={}", parts.scheduler->slots(),
                        config.sql_cpu_quantum_ms);
  services.metrics->AddCollector([scheduler = parts.scheduler.get()](http::Metrics& m) {
    m.Set(http::kSqlCpuWaiting, {}, scheduler->waiting());
  });
  return Status::OK();
}

// The catalog, on an Env that times fsyncs; its reaper drops the computes of
// expired branches. With object storage, compaction rewrites only segments
// the bucket holds (their upload records read through plain_env).
Status OpenCatalog(const Config& config, Env* env, Env* plain_env, ApiServer::Parts& parts,
                   Services& services) {
  http::Metrics* metrics = services.metrics;
  parts.timed_env = std::make_unique<http::TimedEnv>(
      env, [metrics](double seconds) { metrics->Observe(http::kFsyncSeconds, {}, seconds); });
  catalog::CatalogOptions cat_opts;
  cat_opts.env = parts.timed_env.get();
  parts.cache_budget = SplitCacheBudget(config.cache_mb, config.compute_budget);
  parts.store_cache = storage::Cache::Create(parts.cache_budget.store_cache_bytes);
  cat_opts.store_options.cache = parts.store_cache;
  cat_opts.store_options.segment_bytes = static_cast<uint64_t>(config.segment_bytes);
  if (config.ObjectStorageEnabled()) {
    cat_opts.may_rewrite = [plain_env, data_dir = config.data_dir](const std::string& id) {
      return RewritableSegments(plain_env, data_dir, id);
    };
  }
  services.logger->info(
      "event=cache_budget cache_mb={} store_cache_bytes={} sqlite_bytes={} compute_cache_pages={}",
      config.cache_mb, parts.cache_budget.store_cache_bytes, parts.cache_budget.sqlite_bytes,
      parts.cache_budget.compute_cache_pages);
  ApiServer::Parts* p = &parts;
  cat_opts.on_branch_reaped = [p, logger = services.logger](const std::string& project,
                                                           const std::string& branch,
                                                           storage::TimelineId) {
    logger->info("event=branch_expired project={} branch={}", http::LogValue(project),
                 http::LogValue(branch));
    MutexLock l(p->reaper_mu);
    if (p->computes_for_reaper != nullptr) {
      p->computes_for_reaper->Remove(routes::ComputeKey(project, branch));
    }
  };
  auto catalog = catalog::Catalog::Open(cat_opts, config.data_dir);
  if (!catalog.ok()) return catalog.status().WithContext("catalog");
  parts.catalog = std::move(*catalog);
  services.catalog = parts.catalog.get();
  metrics->AddCollector([cat = parts.catalog.get()](http::Metrics& m) {
    double bytes = 0;
    for (const auto& project : cat->ListProjects()) {
      auto store = cat->Store(project.name);
      if (store.ok()) bytes += static_cast<double>((*store)->DiskBytes());
    }
    m.Set(http::kBytesStored, {}, bytes);
  });
  metrics->AddCollector([cache = parts.store_cache, budget = parts.cache_budget](http::Metrics& m) {
    m.Set(http::kCacheBudgetBytes, {}, static_cast<double>(budget.total_bytes));
    for (size_t k = 0; k < storage::kCacheKinds; ++k) {
      const storage::CacheStats c = cache->Stats(static_cast<storage::CacheKind>(k));
      const std::string name = storage::kCacheKindNames[k];
      const uint64_t lookups = c.hits + c.misses;
      m.Set(http::kCacheBytes, {{"cache", name}}, static_cast<double>(c.bytes));
      m.Set(http::kCacheCapacityBytes, {{"cache", name}}, static_cast<double>(c.capacity_bytes));
      m.Set(http::kCacheHitRatio, {{"cache", name}},
            lookups == 0 ? 0.0 : static_cast<double>(c.hits) / static_cast<double>(lookups));
    }
    m.Set(http::kCacheBytes, {{"cache", "sqlite"}}, static_cast<double>(SqlitePageCacheBytes()));
    m.Set(http::kCacheCapacityBytes, {{"cache", "sqlite"}},
          static_cast<double>(budget.sqlite_bytes));
  });
  ReportDamagedProjects(parts.catalog.get(), *metrics, *services.logger);
  return Status::OK();
}

Status OpenIdempotency(const Config& config, Env* env, ApiServer::Parts& parts,
                       Services& services) {
  const std::string path = JoinPath(config.data_dir, "idempotency.db");
  BRANCHDB_RETURN_IF_ERROR(PrepareSqliteFile(env, path));
  auto idem = http::IdempotencyStore::Open(path, services.clock, config.idempotency_ttl_seconds);
  if (!idem.ok()) return idem.status();
  parts.idempotency = std::move(*idem);
  services.idempotency = parts.idempotency.get();
  return Status::OK();
}

// The compute supervisor. A compute's key is "<project>/<branch>" (project
// names have no '/'). Every cold start also applies the branch's idle timeout
// from the catalog (its own, else the server default), so that a compute
// created after a rename or a restart sweeps by the persisted value.
Status StartComputes(const Config& config, ApiServer::Parts& parts, Services& services) {
  compute::SupervisorOptions copts;
  copts.clock = services.clock;
  copts.idle_timeout_seconds = config.idle_timeout_seconds;
  copts.budget = config.compute_budget;
  copts.sweep_interval_seconds = config.sweep_interval_seconds;
  copts.sandbox = services.sandbox;
  ApiServer::Parts* p = &parts;
  copts.open = [cat = services.catalog, p, default_idle = config.idle_timeout_seconds](
                   const std::string& key) -> Result<storage::SqliteHandle> {
    size_t slash = key.find('/');
    std::string project = key.substr(0, slash), branch = key.substr(slash + 1);
    // Pipelined: a request commits, hands the branch on, then waits for its
    // commit's fsync (shared with the commits behind it) before answering.
    catalog::ConnectionRequest request;
    request.pipelined_commits = true;
    request.cache_pages = p->cache_budget.compute_cache_pages;  // its share of cache_mb
    auto conn = cat->OpenBranchConnection(project, branch, request);
    if (!conn.ok()) return conn.status();
    auto info = cat->GetBranch(project, branch, /*with_usage=*/false);
    if (info.ok() && p->computes != nullptr) {
      p->computes->SetIdleTimeout(key, info->idle_timeout_seconds.value_or(default_idle));
    }
    return storage::SqliteHandle(conn->release());
  };
  http::Metrics* metrics = services.metrics;
  copts.on_cold_start = [metrics](const std::string&, int64_t nanos) {
    metrics->Increment(http::kColdStarts);
    metrics->Observe(http::kColdStartSeconds, {}, static_cast<double>(nanos) / 1e9);
  };
  auto sup = compute::ComputeSupervisor::Create(std::move(copts));
  if (!sup.ok()) return sup.status();
  parts.computes = std::move(*sup);
  services.computes = parts.computes.get();
  {
    MutexLock l(parts.reaper_mu);
    parts.computes_for_reaper = parts.computes.get();
  }
  metrics->AddCollector([computes = parts.computes.get()](http::Metrics& m) {
    int active = 0, suspended = 0;
    for (const auto& c : computes->List()) (c.active ? active : suspended)++;
    m.Set(http::kComputesActive, {}, active);
    m.Set(http::kComputesSuspended, {}, suspended);
  });
  return Status::OK();
}

// Quotas, usage and the audit trail over <data_dir>/ledger.db (server/guard/).
Status StartGuard(const Config& config, Env* env, ApiServer::Parts& parts, Services& services) {
  catalog::LedgerOptions options;
  options.env = env;
  options.retention_micros = config.audit_retention_days * 24 * 3600 * 1000000ll;
  auto ledger = catalog::Ledger::Open(options, config.data_dir);
  if (!ledger.ok()) return ledger.status().WithContext("ledger");
  if (auto pruned = (*ledger)->Prune(); !pruned.ok()) return pruned.status();
  guard::GuardOptions g;
  g.clock = services.clock;
  g.catalog = services.catalog;
  g.auth = services.auth;
  g.computes = services.computes;
  parts.guard = std::make_unique<guard::Guard>(g, std::move(*ledger));
  services.guard = parts.guard.get();
  guard::AddUsageCollector(*services.metrics, *services.guard, *services.catalog);
  return Status::OK();
}

// The guarded HTTP (or, with a certificate, HTTPS) server, not yet bound.
Status CreateHttpServer(const Config& config, ApiServer::Parts& parts, Services& services) {
  http::GuardOptions guard;
  guard.clock = services.clock;
  guard.min_threads = config.http_threads;
  guard.max_connections = config.max_connections;
  guard.max_connections_per_client = config.max_connections_per_client;
  guard.listen_backlog = config.listen_backlog;
  guard.request_timeout_ms = config.request_timeout_seconds * 1000;
  guard.min_rate = config.request_min_rate;
  guard.on_event = [logger = services.logger, metrics = services.metrics](
                       const char* event, const std::string& address) {
    metrics->Increment(http::kConnectionsRefused, {{"reason", event}});
    logger->warn("event={} remote_addr={}", event, http::LogValue(address));
  };
  if (!config.tls_cert_file.empty()) {
    auto ssl = std::make_unique<http::GuardedSslServer>(config.tls_cert_file.c_str(),
                                                        config.tls_key_file.c_str(), guard);
    if (!ssl->is_valid()) {
      return Status::InvalidArgument(
          "tls_cert_file/tls_key_file: cannot load the certificate or key (PEM expected)",
          "invalid_config");
    }
    parts.set_backlog = [server = ssl.get()] { return server->SetBacklog(); };
    parts.http = std::move(ssl);
  } else {
    auto plain = std::make_unique<http::GuardedServer>(guard);
    parts.set_backlog = [server = plain.get()] { return server->SetBacklog(); };
    parts.http = std::move(plain);
  }
  return Status::OK();
}

// httplib's own settings for the API.
void ConfigureHttp(const Config& config, httplib::Server& http) {
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a
  // second server bind the same port silently.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });
  // The largest body: an import (streamed) may hold a whole branch; the Router
  // caps every other body at max_request_bytes.
  http.set_payload_max_length(
      static_cast<size_t>(std::max(config.max_request_bytes, config.max_branch_bytes)));
  http.set_keep_alive_timeout(5);
  // httplib writes a response's headers and body separately; with Nagle's
  // algorithm on, the client's delayed ACK then holds every answer ~40 ms.
  http.set_tcp_nodelay(true);
  // No cap on the requests of one keep-alive connection (httplib's default
  // closes it after 5; a cap makes a busy client reconnect for nothing, as
  // PostgreSQL's connections never do): it ends when idle for the keep-alive
  // timeout, on Stop(), or when the client closes it.
  http.set_keep_alive_max_count(std::numeric_limits<size_t>::max());
  http.set_read_timeout(30);
  http.set_write_timeout(30);
}

// The router on parts.http, with every route of the table (routes/table.h).
void CreateRouter(const Config& config, ApiServer::Parts& parts, Services& services) {
  // Requests that run SQL are bounded apart (http/admission.h), so slow SQL
  // cannot hold every thread and core while /healthz and others wait.
  parts.admission = std::make_unique<http::Admission>(config.sql_max_concurrent,
                                                      config.sql_max_concurrent_per_client);
  http::RouterOptions ropts;
  ropts.metrics = services.metrics;
  ropts.idempotency = parts.idempotency.get();
  ropts.clock = services.clock;
  ropts.logger = services.logger;
  ropts.redacted_paths = DataDirSpellings(config.data_dir);
  ropts.cors_origins = config.cors_origins;
  ropts.admission = parts.admission.get();
  ropts.max_body_bytes = config.max_request_bytes;
  ropts.principal_of = [s = &services](const httplib::Request& req, http::RequestContext& ctx) {
    return http::PrincipalOf(*s, req, ctx);
  };
  parts.router = std::make_unique<http::Router>(*parts.http, std::move(ropts));
  services.router = parts.router.get();
  hrana::RegisterHranaRoutes(*parts.router, services, parts.streams.get());
  routes::RegisterRoutes(*parts.router, services);
}

// Hrana's streams (docs/libsql.md), swept by their own thread.
Status StartStreams(const Config& config, ApiServer::Parts& parts, Services& services) {
  hrana::StreamTableOptions options;
  options.clock = services.clock;
  options.idle_timeout_seconds = config.libsql_stream_idle_timeout_seconds;
  options.max_streams = config.libsql_max_streams;
  auto streams = hrana::StreamTable::Create(options);
  if (!streams.ok()) return streams.status();
  parts.streams = std::move(*streams);
  return Status::OK();
}

// Housekeeping: auth key rotation and pruning, every minute.
void StartHousekeeper(ApiServer::Parts& parts, std::shared_ptr<spdlog::logger> logger) {
  ApiServer::Parts* p = &parts;
  parts.housekeeper = std::thread([p, logger] {
    MutexLock l(p->hk_mu);
    while (!p->hk_stop) {
      p->hk_cv.WaitFor(p->hk_mu, std::chrono::seconds(60));
      if (p->hk_stop) break;
      l.Unlock();
      if (Status s = p->auth->Maintain(); !s.ok()) {
        logger->warn("event=auth_maintain_failed error=\"{}\"", http::LogValue(s.ToString()));
      }
      if (auto pruned = p->guard->ledger().Prune(); !pruned.ok()) {
        logger->warn("event=audit_prune_failed error=\"{}\"",
                     http::LogValue(pruned.status().ToString()));
      }
      l.Lock();
    }
  });
}

}  // namespace

Status ApiServer::Init() {
  BRANCHDB_RETURN_IF_ERROR(env_->CreateDirs(config_.data_dir).WithContext("data directory"));
  // Private to the service user, also when it was made earlier (with 0755).
  BRANCHDB_RETURN_IF_ERROR(
      env_->SetPermissions(config_.data_dir, 0700).WithContext("data directory"));
  InitServices(config_, env_, services_);
  BRANCHDB_RETURN_IF_ERROR(OpenAuth(config_, env_, *parts_, services_));
  parts_->metrics = http::Metrics::WithServerFamilies();
  services_.metrics = parts_->metrics.get();
  AddAuthCollector(*services_.metrics, services_.auth);
  BRANCHDB_RETURN_IF_ERROR(StartScheduler(config_, *parts_, services_));
  // Projects the bucket has and the data directory lacks, before the catalog
  // opens (a cluster takes projects over through their owners instead).
  if (config_.ObjectStorageEnabled() && !config_.clustered()) {
    auto restored = RestoreFromBucket(config_, env_, services_.logger, *services_.metrics);
    if (!restored.ok()) return restored.status().WithContext("restore from object storage");
  }
  // The stores' Env evicts and fetches segments only when a bound is set or
  // segments were evicted before; otherwise the stores use env_ as ever.
  Env* store_env = env_;
  const Status no_stubs = CheckNoEvictedSegments(env_, config_.data_dir);
  if (!config_.ObjectStorageEnabled()) {
    BRANCHDB_RETURN_IF_ERROR(no_stubs);
  } else if (config_.object_storage_local_cache_mb > 0 || !no_stubs.ok()) {
    auto tiered = CreateTieredEnv(config_, env_, services_.logger, *services_.metrics);
    if (!tiered.ok()) return tiered.status().WithContext("object storage");
    parts_->tiered_env = std::move(*tiered);
    store_env = parts_->tiered_env.get();
    services_.tiered_env = parts_->tiered_env.get();
  }
  BRANCHDB_RETURN_IF_ERROR(OpenCatalog(config_, store_env, env_, *parts_, services_));
  std::function<Result<int64_t>(const std::string&)> upload_epoch;  // the epoch that names keys
  std::function<bool(const std::string&)> may_mark_deleted;
  if (config_.ObjectStorageEnabled() && config_.clustered()) {
    auto takeover = Takeover::Create(config_, env_, services_);
    if (!takeover.ok()) return takeover.status().WithContext("object storage");
    parts_->takeover = std::move(*takeover);
    upload_epoch = [t = parts_->takeover.get()](const std::string& id) { return t->MayUpload(id); };
    may_mark_deleted = [t = parts_->takeover.get()](const std::string& id) {
      return t->MayMarkDeleted(id);
    };
  }
  if (config_.ObjectStorageEnabled()) {
    auto uploader = StartSegmentUploader(config_, env_, services_.logger, *services_.metrics,
                                         parts_->catalog.get(), upload_epoch);
    if (!uploader.ok()) return uploader.status().WithContext("object storage");
    parts_->uploader = std::move(*uploader);
    services_.uploader = parts_->uploader.get();
  }
  BRANCHDB_RETURN_IF_ERROR(OpenIdempotency(config_, env_, *parts_, services_));
  BRANCHDB_RETURN_IF_ERROR(StartComputes(config_, *parts_, services_));
  BRANCHDB_RETURN_IF_ERROR(StartGuard(config_, env_, *parts_, services_));
  if (config_.ObjectStorageEnabled()) {  // after the guard: it reads ledger.db too
    // remote durability of catalog operations: the log first, up to its
    // durable end now, so that a snapshot taken after it is covered.
    auto upload_log = [u = parts_->uploader.get(),
                       c = parts_->catalog.get()](const std::string& id) -> Status {
      for (const catalog::ProjectInfo& info : c->ListProjects()) {
        if (info.id != id) continue;
        auto store = c->Store(info.name);
        if (!store.ok()) return store.status();
        return u->WaitUploaded(id, (*store)->DurableEnd().lsn);
      }
      return Status::OK();  // gone: nothing to wait for
    };
    auto backup = StartCatalogBackup(config_, env_, services_.logger, *services_.metrics,
                                     upload_epoch, may_mark_deleted, upload_log);
    if (!backup.ok()) return backup.status().WithContext("object storage");
    parts_->catalog_backup = std::move(*backup);
    services_.catalog_backup = parts_->catalog_backup.get();
  }
  BRANCHDB_RETURN_IF_ERROR(CreateHttpServer(config_, *parts_, services_));
  ConfigureHttp(config_, *parts_->http);
  BRANCHDB_RETURN_IF_ERROR(StartStreams(config_, *parts_, services_));
  CreateRouter(config_, *parts_, services_);
  StartHousekeeper(*parts_, services_.logger);
  return Status::OK();
}

http::Router& ApiServer::router() { return *parts_->router; }

Result<int> ApiServer::Bind() {
  std::string host = config_.ListenHost();
  int port = config_.ListenPort();
  if (port == 0) {
    port = parts_->http->bind_to_any_port(host);
    if (port < 0) {
      return Status::Unavailable("cannot listen on " + host + " (any port)", "listen_failed");
    }
  } else if (!parts_->http->bind_to_port(host, port)) {
    return Status::Unavailable("cannot listen on " + config_.listen +
                                   " (address in use? try another --listen port)",
                               "listen_failed");
  }
  if (!parts_->set_backlog()) {
    return Status::Unavailable("cannot set the listen backlog of " + config_.listen,
                               "listen_failed");
  }
  port_ = port;
  services_.public_url = config_.PublicUrl(port);
  // First start: an admin client, its secret written to a 0600 file (never logged).
  auto admin = parts_->auth->EnsureAdminClient(services_.public_url + "/oauth/token");
  if (!admin.ok()) return admin.status().WithContext("admin client");
  if (admin->created) {
    services_.logger->info("event=admin_client_created client_id={} credentials_file={}",
                           admin->client_id, admin->path);
  }
  if (config_.clustered()) BRANCHDB_RETURN_IF_ERROR(StartCluster());
  return port;
}

// Joins the cluster: registers this node, claims the projects on its disk,
// reloads the auth state whenever another node changes it; releases the start
// lock (the auth state is in etcd by now).
Status ApiServer::StartCluster() {
  if (parts_->start_lock_lease != 0) {
    (void)parts_->auth_etcd->LeaseRevoke(parts_->start_lock_lease);
    parts_->start_lock_lease = 0;
  }
  cluster::ClusterOptions options;
  options.etcd_endpoints = config_.etcd_endpoints;
  options.node_name = config_.node_name;
  options.advertise_url =
      config_.advertise_url.empty() ? services_.public_url : config_.advertise_url;
  while (!options.advertise_url.empty() && options.advertise_url.back() == '/') {
    options.advertise_url.pop_back();
  }
  options.prefix = config_.cluster_prefix;
  options.lease_ttl_seconds = config_.cluster_lease_ttl_seconds;
  options.clock = services_.clock;
  options.logger = services_.logger;
  options.local_projects = [cat = services_.catalog] {
    std::vector<std::string> names;
    for (const auto& p : cat->ListProjects()) names.push_back(p.name);
    return names;
  };
  auth::AuthService* auth = services_.auth;
  std::shared_ptr<spdlog::logger> logger = services_.logger;
  options.watches.push_back({"auth/", [auth, logger] {
                               if (Status s = auth->Reload(); !s.ok()) {
                                 logger->warn("event=auth_reload_failed error=\"{}\"",
                                              http::LogValue(s.ToString()));
                               }
                             }});
  if (parts_->takeover) {
    options.take_over = [t = parts_->takeover.get()](const std::string& project, int64_t epoch) {
      return t->Run(project, epoch);
    };
  }
  const std::string advertise_url = options.advertise_url;
  auto node = cluster::ClusterNode::Start(std::move(options));
  if (!node.ok()) return node.status().WithContext("cluster");
  parts_->cluster = std::move(*node);
  services_.cluster = parts_->cluster.get();
  if (parts_->takeover) parts_->takeover->SetNode(parts_->cluster.get());
  http::Metrics& m = *services_.metrics;
  m.DescribeGauge("branchdb_cluster_nodes", "Live nodes of the cluster (their etcd lease holds).");
  m.DescribeGauge("branchdb_cluster_owned_projects", "Projects this node owns.");
  m.DescribeGauge("branchdb_cluster_lease_held", "1 while this node's etcd lease holds, else 0.");
  m.AddCollector([node = parts_->cluster.get()](http::Metrics& metrics) {
    metrics.Set("branchdb_cluster_nodes", {}, static_cast<double>(node->LiveNodeCount()));
    metrics.Set("branchdb_cluster_owned_projects", {},
                static_cast<double>(node->OwnedProjectCount()));
    metrics.Set("branchdb_cluster_lease_held", {}, node->LeaseHeld() ? 1 : 0);
  });
  services_.logger->info("event=cluster_joined node={} advertise_url={}", config_.node_name,
                         http::LogValue(advertise_url));
  return Status::OK();
}

Status ApiServer::Serve() {
  if (port_ < 0) return Status::FailedPrecondition("Serve() before Bind()");
  parts_->serving.store(true);
  if (!parts_->stopped.load()) {
    parts_->http->listen_after_bind();  // returns once stopped and in-flight requests ended
  }
  parts_->serve_done.store(true);
  return Status::OK();
}

void ApiServer::Stop() {
  if (parts_->stopped.exchange(true)) return;
  if (!parts_->http) return;
  // Serve() may be between its check of `stopped` and listening: wait until
  // the server runs (then stop it) or Serve() has returned.
  if (parts_->serving.load()) {
    while (!parts_->http->is_running() && !parts_->serve_done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  parts_->http->stop();
}

}  // namespace branchdb::server
