// The branchdb binary. `branchdb serve` runs the HTTP service.
//
//   branchdb serve [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--log-level L]
//
// Settings: defaults, then the TOML file, then BRANCHDB_* environment
// variables, then these flags (docs/config.md). SIGTERM/SIGINT stop it
// gracefully: no new connections, requests in flight finish, then the stores
// close.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <spdlog/spdlog.h>
#include <string>
#include <thread>

#include "server/config.h"
#include "server/server.h"
#include "storage/env/env.h"

namespace {

using branchdb::server::Config;

int Serve(const branchdb::server::ServeFlags& flags) {
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
  spdlog::set_level(spdlog::level::from_str(config->log_level));

  // Signals are taken by a dedicated thread (sigwait), which stops the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = branchdb::server::ApiServer::Create(*config, env);
  if (!server.ok()) {
    std::fprintf(stderr, "branchdb serve: %s\n", server.status().ToString().c_str());
    return 1;
  }
  auto port = (*server)->Bind();
  if (!port.ok()) {
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
  (void)api->Serve();
  pthread_kill(signal_thread.native_handle(), SIGTERM);  // if Serve ended otherwise
  signal_thread.join();
  server->reset();
  spdlog::info("event=stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"branchdb: database branches for agents, CI and developers"};
  app.require_subcommand(1);
  Config defaults;
  std::string config_file, data_dir, listen, log_level;
  CLI::App* serve = app.add_subcommand("serve", "Run the branchdb HTTP server");
  serve->footer(
      "Settings: defaults < --config FILE (TOML) < BRANCHDB_* environment < flags.\n"
      "Examples:\n"
      "  branchdb serve\n"
      "  branchdb serve --data-dir /var/lib/branchdb --listen 0.0.0.0:8080\n"
      "  BRANCHDB_IDLE_TIMEOUT_SECONDS=60 branchdb serve --config /etc/branchdb.toml\n"
      "See docs/config.md.");
  auto* o_config = serve->add_option("--config", config_file, "TOML config file (docs/branchdb.sample.toml)");
  auto* o_data = serve->add_option("--data-dir", data_dir,
                                   "Data directory (default " + defaults.data_dir + ")");
  auto* o_listen = serve->add_option(
      "--listen", listen, "HOST:PORT to listen on; port 0 = any free port (default " +
                              defaults.listen + ")");
  auto* o_level = serve->add_option("--log-level", log_level,
                                    "trace|debug|info|warn|error|off (default info)");
  CLI11_PARSE(app, argc, argv);
  if (serve->parsed()) {
    branchdb::server::ServeFlags flags;
    if (o_config->count()) flags.config_file = config_file;
    if (o_data->count()) flags.data_dir = data_dir;
    if (o_listen->count()) flags.listen = listen;
    if (o_level->count()) flags.log_level = log_level;
    return Serve(flags);
  }
  return 0;
}
