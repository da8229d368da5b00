// See serve.h.
#include "server/serve.h"

#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <spdlog/spdlog.h>
#include <string>
#include <thread>

#include "base/env.h"
#include "server/http/log_sink.h"
#include "server/server.h"

namespace branchdb::server {
namespace {

constexpr int kServeMallocArenas = 2;

}  // namespace

int RunServe(const ServeFlags& flags) {
  // glibc gives a thread that finds the malloc arenas busy one of its own,
  // up to eight per core: a server's request and pool threads end up with a
  // dozen, and once the caches churn, memory freed in one arena is not
  // reused by another, nor returned (docs/benchmarks.md, "Memory outside the
  // caches"). A few arenas keep it in use at no measurable cost in
  // throughput; MALLOC_ARENA_MAX, when set, decides instead.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, kServeMallocArenas);
  branchdb::Env* env = branchdb::Env::Default();
  auto config = branchdb::server::LoadConfig(
      flags, [](const char* name) { return std::getenv(name); },
      [env](const std::string& path) { return env->ReadFileToString(path); });
  if (!config.ok()) {
    std::fprintf(stderr, "branchdb serve: %s\n", config.status().message().c_str());
    return 2;
  }
  if (auto errors = branchdb::server::Validate(*config); !errors.empty()) {
    std::fprintf(stderr, "branchdb serve: invalid configuration:\n");
    for (const auto& e : errors) std::fprintf(stderr, "  %s\n", e.ToString().c_str());
    std::fprintf(stderr, "See docs/config.md and docs/branchdb.sample.toml.\n");
    return 2;
  }

  // Signals are taken by a dedicated thread (sigwait), which stops the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Lines go out in batches when stdout is not a terminal (at most 100 ms
  // late; warnings and errors at once): the access-log line costs no write(2).
  // After the mask: the sink's flusher thread must not take SIGTERM.
  branchdb::server::http::InstallServeLogger();
  spdlog::set_level(spdlog::level::from_str(config->log_level));

  auto server = branchdb::server::ApiServer::Create(*config, env);
  if (!server.ok()) {
    spdlog::default_logger()->flush();  // the lines logged so far, before the error
    std::fprintf(stderr, "branchdb serve: %s\n", server.status().ToString().c_str());
    return 1;
  }
  auto port = (*server)->Bind();
  if (!port.ok()) {
    spdlog::default_logger()->flush();
    std::fprintf(stderr, "branchdb serve: %s\n", port.status().message().c_str());
    return 1;
  }
  branchdb::server::ApiServer* api = server->get();
  std::thread signal_thread([&signals, api] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGINT || sig == SIGTERM) spdlog::info("event=shutdown signal={}", sig);
    api->Stop();
  });
  spdlog::info("event=listening address={}://{}:{} data_dir={}",
               config->tls_cert_file.empty() ? "http" : "https", config->ListenHost(), *port,
               config->data_dir);
  spdlog::default_logger()->flush();  // scripts wait for this line
  (void)api->Serve();
  pthread_kill(signal_thread.native_handle(), SIGTERM);  // if Serve ended otherwise
  signal_thread.join();
  server->reset();
  spdlog::info("event=stopped");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace branchdb::server
