// The branchdb binary: `branchdb serve` runs the HTTP service (server/serve.h,
// docs/config.md); every other subcommand is a client of a running server,
// talking HTTP through the C++ SDK (docs/cli.md).
//
//   branchdb serve [--config FILE] [--data-dir DIR] [--listen HOST:PORT] [--log-level L]
//                  [--public-url URL]
//   branchdb [--url U] [--project P] [--json] ... <command> ...
//
// Exit codes: 0 ok, 1 API error, 2 usage, 3 server unreachable, 4 auth (401/403),
// 5 conflict (409), 6 not found (404).
#include <CLI/CLI.hpp>
#include <string>

#include "sdk/cli/cli.h"
#include "server/config.h"
#include "server/serve.h"

namespace {

using namespace branchdb::cli;

// `branchdb serve`: the flags given here (or, for --config and --data-dir,
// before the subcommand) override the config file and BRANCHDB_* variables.
void RegisterServe(CLI::App& app, Commands& commands, const Globals& globals) {
  branchdb::server::Config defaults;
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
  commands.Add(serve, [o, config, data, listen, level, public_url, &globals](Context&) {
    branchdb::server::ServeFlags flags;
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
    return branchdb::server::RunServe(flags);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "branchdb: database branches for agents, CI and developers.\n"
      "`branchdb serve` runs the server; every other command talks to one over HTTP."};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand
  app.footer(
      "Settings, highest first: flags, environment (BRANCHDB_URL, BRANCHDB_PROJECT, "
      "BRANCHDB_TOKEN,\nBRANCHDB_CLIENT_ID + BRANCHDB_CLIENT_SECRET, BRANCHDB_DATA_DIR), the "
      "config file, then a local\nserver's DATA_DIR/admin-credentials.json.\n"
      "Exit codes: 0 ok, 1 API error, 2 usage, 3 server unreachable, 4 auth (401/403), "
      "5 conflict (409),\n6 not found (404).\n"
      "Examples:\n"
      "  branchdb project create shop\n"
      "  branchdb --project shop sql production \"CREATE TABLE items(id INTEGER PRIMARY KEY, name "
      "TEXT)\"\n"
      "  branchdb --project shop branch create dev/alex --parent production --ttl 24h\n"
      "  branchdb --project shop rollback dev/alex --actions 1\n"
      "Docs: docs/cli.md.");

  Globals globals;
  auto flag = [&](const std::string& name, std::optional<std::string>* target,
                  const std::string& description) {
    app.add_option_function<std::string>(
           name, [target](const std::string& v) { *target = v; }, description)
        ->type_name("TEXT");
  };
  flag("--url", &globals.flags.url,
       std::string("Server URL (env BRANCHDB_URL; default ") + kDefaultUrl + ")");
  flag("--project", &globals.flags.project, "Project (env BRANCHDB_PROJECT)");
  flag("--token", &globals.flags.token,
       "Bearer token: an access token or a database credential (env BRANCHDB_TOKEN)");
  flag("--client-id", &globals.flags.client_id, "OAuth client id (env BRANCHDB_CLIENT_ID)");
  flag("--client-secret", &globals.flags.client_secret,
       "OAuth client secret (env BRANCHDB_CLIENT_SECRET)");
  flag("--data-dir", &globals.flags.data_dir,
       std::string("A local server's data dir, for its admin-credentials.json (env "
                   "BRANCHDB_DATA_DIR; default ") +
           kDefaultDataDir + ")");
  flag("--config", &globals.flags.config,
       "CLI config file (env BRANCHDB_CONFIG; default ~/.config/branchdb/config.toml)");
  app.add_flag("--json", globals.json,
               "Print the API's JSON answer (one document on stdout) instead of tables");

  Commands commands;
  RegisterServe(app, commands, globals);
  RegisterProjectCommands(app, commands);
  RegisterBranchCommands(app, commands);
  RegisterSqlCommands(app, commands);
  RegisterHistoryCommands(app, commands);
  RegisterInspectCommands(app, commands);
  RegisterTransferCommands(app, commands);
  RegisterAccessCommands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints help, or the error with a pointer to --help
    return code == 0 ? kExitOk : kExitUsage;
  }
  const Action* action = commands.Parsed();
  if (action == nullptr) return kExitUsage;  // unreachable: require_subcommand
  Context ctx(globals);
  bool is_serve = app.got_subcommand("serve");
  if (!is_serve && !ctx.Init()) return kExitUsage;
  return (*action)(ctx);
}
