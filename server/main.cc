// The branchdb binary: `branchdb serve` runs the HTTP service (server/serve.h,
// docs/config.md); every other subcommand is a client of a running server
// (sdk/cli/, talking HTTP only through the C++ SDK; docs/cli.md).
//
//   branchdb serve [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--log-level L]
//                  [--public-url URL]
//   branchdb [--url U] [--project P] [--json] ... <command> ...
//
// The binary lives here, above both the server and the client, so that the
// client (sdk/) never includes a server header.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "sdk/cli/cli.h"
#include "server/config.h"
#include "server/serve.h"

namespace branchdb::server {
namespace {

// `branchdb serve`: the flags given here (or, for --config and --data-dir,
// before the subcommand) override the config file and BRANCHDB_* variables.
void RegisterServe(CLI::App& app, cli::Commands& commands, const cli::Globals& globals) {
  Config defaults;
  struct Opts {
    std::string config_file, data_dir, listen, log_level, public_url;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* serve = app.add_subcommand("serve", "Run the branchdb HTTP server");
  serve->footer(
      "Settings: defaults < --config FILE (TOML) < BRANCHDB_* environment < flags.\n"
      "Examples:\n"
      "  branchdb serve\n"
      "  branchdb serve --data-dir /var/lib/branchdb --listen 0.0.0.0:8080\n"
      "  BRANCHDB_IDLE_TIMEOUT_SECONDS=60 branchdb serve --config /etc/branchdb.toml\n"
      "See docs/config.md.");
  auto* config =
      serve->add_option("--config", o->config_file, "TOML config file (docs/branchdb.sample.toml)");
  auto* data = serve->add_option("--data-dir", o->data_dir,
                                 "Data directory (default " + defaults.data_dir + ")");
  auto* listen = serve->add_option(
      "--listen", o->listen,
      "HOST:PORT to listen on; port 0 = any free port (default " + defaults.listen + ")");
  auto* level = serve->add_option("--log-level", o->log_level,
                                  "trace|debug|info|warn|error|off (default info)");
  auto* public_url = serve->add_option(
      "--public-url", o->public_url,
      "URL clients reach the server at, e.g. https://db.example.com (default: from --listen)");
  commands.AddLocal(serve, [o, config, data, listen, level, public_url, &globals](cli::Context&) {
    ServeFlags flags;
    if (config->count()) {
      flags.config_file = o->config_file;
    } else if (globals.flags.config) {
      flags.config_file = *globals.flags.config;
    }
    if (data->count()) {
      flags.data_dir = o->data_dir;
    } else if (globals.flags.data_dir) {
      flags.data_dir = *globals.flags.data_dir;
    }
    if (listen->count()) flags.listen = o->listen;
    if (level->count()) flags.log_level = o->log_level;
    if (public_url->count()) flags.public_url = o->public_url;
    return RunServe(flags);
  });
}

}  // namespace
}  // namespace branchdb::server

int main(int argc, char** argv) { return branchdb::cli::Main(argc, argv, branchdb::server::RegisterServe); }
