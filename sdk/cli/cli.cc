// The branchdb command line: every subcommand here is a client of a running
// server, talking HTTP through the C++ SDK (docs/cli.md). The binary's main
// (server/main.cc) adds `branchdb serve`, which runs the server itself.
//
//   branchdb [--url U] [--project P] [--json] ... <command> ...
//
// Exit codes: 0 ok, 1 API error, 2 usage, 3 server unreachable, 4 auth (401/403),
// 5 conflict (409), 6 not found (404).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "sdk/cli/cli.h"

namespace branchdb::cli {
namespace {

// Edit distance of a and b (insert, delete, substitute, swap adjacent).
size_t Distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// When the parse failed where a subcommand was due and the command line has a
// word there that names none ("branchdb projct list"): says so, suggests the
// nearest subcommand, and returns true. False for any other parse error.
bool ReportUnknownCommand(CLI::App& app) {
  CLI::App* at = &app;
  std::string path = "branchdb";
  for (auto parsed = at->get_subcommands(); !parsed.empty(); parsed = at->get_subcommands()) {
    at = parsed.front();
    path += " " + at->get_name();
  }
  std::vector<CLI::App*> choices =
      at->get_subcommands([](CLI::App* c) { return !c->get_name().empty(); });
  if (choices.empty()) return false;  // a leaf: its own arguments were wrong
  // Unmatched words fall through to the top (app.fallthrough()): look there.
  std::string word;
  for (const std::string& arg : app.remaining(/*recurse=*/true)) {
    if (!arg.empty() && arg[0] != '-') {
      word = arg;
      break;
    }
  }
  if (word.empty()) return false;
  std::string best;
  size_t best_distance = std::string::npos;
  for (CLI::App* c : choices) {
    const std::string& name = c->get_name();
    size_t dist = name.rfind(word, 0) == 0 ? 1 : Distance(word, name);
    if (dist < best_distance) best_distance = dist, best = name;
  }
  std::cerr << "error: unknown command \"" << word << "\" (" << path << " " << word << ")\n";
  std::cerr << "hint: ";
  if (best_distance <= std::max<size_t>(2, word.size() / 3)) {
    std::cerr << "did you mean `" << path << " " << best << "`? ";
  }
  std::cerr << "`" << path << " --help` lists the commands\n";
  return true;
}

}  // namespace

int Main(int argc, char** argv, const Registrar& local_commands) {
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
  if (local_commands) local_commands(app, commands, globals);
  RegisterProjectCommands(app, commands);
  RegisterBranchCommands(app, commands);
  RegisterSqlCommands(app, commands);
  RegisterHistoryCommands(app, commands);
  RegisterInspectCommands(app, commands);
  RegisterTransferCommands(app, commands);
  RegisterAccessCommands(app, commands);
  RegisterAuditCommands(app, commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0 && ReportUnknownCommand(app)) return kExitUsage;
    int code = app.exit(e);  // prints help, or the error with a pointer to --help
    return code == 0 ? kExitOk : kExitUsage;
  }
  const Commands::Command* command = commands.Parsed();
  if (command == nullptr) return kExitUsage;  // unreachable: require_subcommand
  Context ctx(globals);
  if (!command->local && !ctx.Init()) return kExitUsage;
  return command->action(ctx);
}

}  // namespace branchdb::cli
