// The branchdb binary. `branchdb serve` runs the HTTP service.
//
//   branchdb serve [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--log-level L]
//
// Settings: defaults, then the TOML file, then BRANCHDB_* environment
// variables, then these flags (docs/config.md). SIGTERM/SIGINT stop it
// gracefully: no new connections, requests in flight finish, then the stores
// close.
#include <CLI/CLI.hpp>
#include <string>

#include "server/config.h"
#include "server/serve.h"

int main(int argc, char** argv) {
  CLI::App app{"branchdb: database branches for agents, CI and developers"};
  app.require_subcommand(1);
  branchdb::server::Config defaults;
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
    return branchdb::server::RunServe(flags);
  }
  return 0;
}
