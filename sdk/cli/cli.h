// The client subcommands of the `branchdb` binary (docs/cli.md): shared
// plumbing. Each cmd_*.cc file registers its subcommands with CLI11 and an
// action that runs once the command line is parsed; every action talks to the
// server through the C++ SDK (branchdb::client) only.
//
// Output: human-readable text (tables) on stdout by default; with --json one
// JSON document on stdout, the API's JSON answer. Errors go to stderr with a
// hint of what to try next (and, with --json, the API's error body to stdout).
// Exit codes: ExitCode below.
#ifndef BRANCHDB_SDK_CLI_CLI_H_
#define BRANCHDB_SDK_CLI_CLI_H_

#include <branchdb/client.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "sdk/cli/settings.h"

namespace branchdb::cli {

namespace bdb = branchdb::client;
using Json = nlohmann::json;

enum ExitCode : int {
  kExitOk = 0,
  kExitApiError = 1,     // an API error other than those below, or a local failure
  kExitUsage = 2,        // bad flags or arguments
  kExitUnreachable = 3,  // no HTTP answer (connection refused, timeout, TLS)
  kExitAuth = 4,         // 401 or 403, or no credentials at all
  kExitConflict = 5,     // 409
  kExitNotFound = 6,     // 404
};

// The global flags (given before or after the subcommand).
struct Globals {
  SettingsFlags flags;
  bool json = false;
};

// What an action works with: the resolved settings, the SDK client (created
// on first use), and the output helpers.
class Context {
 public:
  explicit Context(const Globals& globals) : globals_(globals) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Resolves the settings; false (after printing why) on a bad config.
  bool Init();
  const Settings& settings() const { return settings_; }
  bool json() const { return globals_.json; }

  // The project to work on, or "" after printing a usage error (then return
  // kExitUsage). `given` (a positional argument) wins over the settings.
  std::string Project(const std::string& given = "");

  // The SDK client, or nullptr after printing why; then return
  // ClientFailure(): kExitUsage for a malformed URL, kExitAuth for no
  // credentials.
  bdb::Client* Client();
  int ClientFailure() const { return client_failure_; }

  // --json: prints `answer` (one line). Otherwise calls human(stdout).
  int Print(const Json& answer, const std::function<void(std::ostream&)>& human);

  // Prints the error with a hint; returns its exit code.
  int Fail(const bdb::Error& error);
  // Prints a usage error (and the hint, when given); returns kExitUsage.
  int Usage(const std::string& message, const std::string& hint = "");

 private:
  const Globals& globals_;
  Settings settings_;
  std::unique_ptr<bdb::Client> client_;
  int client_failure_ = kExitAuth;
};

using Action = std::function<int(Context&)>;

// The actions of the leaf subcommands, looked up after parsing.
class Commands {
 public:
  struct Command {
    CLI::App* leaf;
    Action action;
    bool local;  // runs without resolving the client settings (`branchdb serve`)
  };

  void Add(CLI::App* leaf, Action action) { commands_.push_back({leaf, std::move(action), false}); }
  // A command that runs on this machine, not against a server: its action
  // gets a Context whose settings were not resolved.
  void AddLocal(CLI::App* leaf, Action action) {
    commands_.push_back({leaf, std::move(action), true});
  }
  // An action that needs the SDK client: runs only when there are
  // credentials (else exits kExitAuth after saying how to give some).
  void AddForClient(CLI::App* leaf, std::function<int(Context&, bdb::Client*)> action);
  // An action on the project of the settings (--project, BRANCHDB_PROJECT,
  // config file): also exits kExitUsage when there is none.
  void AddForProject(CLI::App* leaf,
                     std::function<int(Context&, bdb::Client*, const std::string& project)> action);
  // The parsed leaf subcommand; nullptr when none was parsed.
  const Command* Parsed() const;

 private:
  std::vector<Command> commands_;
};

// A subcommand whose --help ends with its examples (one command per line).
CLI::App* AddCommand(CLI::App& parent, const std::string& name, const std::string& description,
                     const std::vector<std::string>& examples);

// A duration option ("30s", "15m", "24h", "7d", or seconds) parsed into
// seconds; a malformed one is a usage error at parse time.
CLI::Option* AddDurationOption(CLI::App* app, const std::string& name, int64_t* seconds,
                               const std::string& description);

// {"<key>": [item.raw, ...]}: a list call's API answer rebuilt from the SDK's
// typed items (each keeps its complete JSON in raw).
template <typename T>
Json RawList(const char* key, const std::vector<T>& items) {
  Json list = Json::array();
  for (const T& item : items) list.push_back(item.raw);
  return Json{{key, std::move(list)}};
}

// Aligned "key  value" lines.
void PrintFields(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& fields);

void RegisterProjectCommands(CLI::App& app, Commands& commands);
void RegisterBranchCommands(CLI::App& app, Commands& commands);
void RegisterSqlCommands(CLI::App& app, Commands& commands);
void RegisterHistoryCommands(CLI::App& app, Commands& commands);   // checkpoints..promote
void RegisterInspectCommands(CLI::App& app, Commands& commands);   // diff, schema
void RegisterAuditCommands(CLI::App& app, Commands& commands);     // audit, usage
void RegisterTransferCommands(CLI::App& app, Commands& commands);  // export, import
void RegisterAccessCommands(CLI::App& app,
                            Commands& commands);  // credential, client, token, compute

// Subcommands that the binary adds beyond the client's (server/main.cc adds
// `serve`), registered with Commands::AddLocal.
using Registrar = std::function<void(CLI::App& app, Commands& commands, const Globals& globals)>;

// The whole command line: parses argv, runs the chosen subcommand and returns
// the process exit code (ExitCode).
int Main(int argc, char** argv, const Registrar& local_commands = nullptr);

}  // namespace branchdb::cli

#endif  // BRANCHDB_SDK_CLI_CLI_H_
