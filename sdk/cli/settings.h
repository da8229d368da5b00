// Connection settings of the client subcommands: where the server is, which
// project, and which credentials (docs/cli.md, "Settings").
//
// Each field is taken from the first place that has it, highest first:
//   1. flags (--url, --project, --token, --client-id/--client-secret, --data-dir);
//   2. environment (BRANCHDB_URL, BRANCHDB_PROJECT, BRANCHDB_TOKEN,
//      BRANCHDB_CLIENT_ID + BRANCHDB_CLIENT_SECRET, BRANCHDB_DATA_DIR);
//   3. the config file (--config, else BRANCHDB_CONFIG, else
//      ~/.config/branchdb/config.toml when it exists): top-level keys url,
//      project, token, client_id, client_secret, data_dir;
//   4. defaults: url http://127.0.0.1:8080 (but when no place names a URL and
//      the credentials come from admin-credentials.json, the server its
//      token_url names), data_dir ./data.
// Credentials move as one unit: the highest place that names a token or a
// client id/secret supplies them (a token wins over a client id/secret given
// at the same place). When no place does, DATA_DIR/admin-credentials.json (a
// local server's bootstrap admin client) is used if it exists.
//
// Thread-safety: pure functions apart from reading the named files.
#ifndef BRANCHDB_SDK_CLI_SETTINGS_H_
#define BRANCHDB_SDK_CLI_SETTINGS_H_

#include <functional>
#include <optional>
#include <string>

namespace branchdb::cli {

inline constexpr char kDefaultUrl[] = "http://127.0.0.1:8080";
inline constexpr char kDefaultDataDir[] = "./data";

// The global flags as given on the command line (nullopt = not given).
struct SettingsFlags {
  std::optional<std::string> url, project, token, client_id, client_secret, data_dir, config;
};

struct Settings {
  std::string url;        // Default: kDefaultUrl (see 4. above). No trailing '/'.
  std::string project;    // Default: empty (commands that need one say so).
  std::string token;      // A bearer token, or empty.
  std::string client_id;  // OAuth client credentials, or empty.
  std::string client_secret;
  std::string data_dir;     // Default: kDefaultDataDir.
  std::string config_file;  // The config file read, or empty.
  // Where the credentials came from, for messages: "flags", "environment",
  // "config file <path>", "<data_dir>/admin-credentials.json", or "" (none).
  std::string credentials_from;
};

// Returns the variable's value, or nullopt when unset.
using GetEnvFn = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (empty values count as unset).
std::optional<std::string> ProcessEnv(const std::string& name);

// Resolves *out from flags, environment, config file and admin credentials.
// False with a message saying what to fix when a named config file is
// missing or malformed, has unknown keys, when the URL is not
// http(s)://HOST[:PORT], or when a client id comes without its secret (or the
// other way round).
bool ResolveSettings(const SettingsFlags& flags, const GetEnvFn& env, Settings* out,
                     std::string* error);

}  // namespace branchdb::cli

#endif  // BRANCHDB_SDK_CLI_SETTINGS_H_
