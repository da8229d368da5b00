// Config: everything `branchdb serve` can be told, and where it comes from.
//
// Precedence, lowest to highest (litestream's order): built-in defaults, then a
// TOML file (--config FILE or BRANCHDB_CONFIG), then environment variables
// BRANCHDB_*, then command-line flags. Validate() reports every bad field at
// once, each as "<field>: <what is wrong>". docs/config.md lists every field;
// docs/branchdb.sample.toml is a fully commented sample.
//
// Thread-safety: plain values; the functions here are pure apart from reading
// the given file and environment.
#ifndef BRANCHDB_SERVER_CONFIG_H_
#define BRANCHDB_SERVER_CONFIG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/util/status.h"

namespace branchdb::server {

struct Config {
  // [server]
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 = any free port
  std::string data_dir = "./data";
  std::string log_level = "info";         // trace|debug|info|warn|error|off
  std::string tls_cert_file;              // both set: HTTPS; both empty: HTTP
  std::string tls_key_file;
  int http_threads = 8;                   // worker threads of the HTTP server
  int64_t max_request_bytes = 64ll << 20; // request bodies larger than this: 413
  int64_t idempotency_ttl_seconds = 24 * 3600;

  // [compute]
  int64_t idle_timeout_seconds = 300;     // per branch; 0 = never suspend
  int compute_budget = 64;                // at most this many active computes
  int64_t sweep_interval_seconds = 5;     // how often idle computes are looked for

  // [sql]
  int64_t statement_timeout_ms = 5000;    // wall time of one request's SQL script
  int64_t max_result_rows = 10000;        // per statement (and page); beyond: result_too_large
  int64_t max_result_bytes = 16ll << 20;  // per request; beyond: result_too_large (or a page ends)
  int64_t max_sql_bytes = 1 << 20;        // length of one request's SQL text
  int64_t max_branch_bytes = 1ll << 30;   // per-branch database size cap

  // [auth]
  int64_t token_lifetime_seconds = 900;   // OAuth access tokens
  int64_t credential_max_seconds = 3600;  // database credentials (60..this)
  std::string admin_secret_file;          // bootstrap admin client secret ("" = generate)

  // Split listen into host and port. REQUIRES: Validate() found no listen error.
  std::string ListenHost() const;
  int ListenPort() const;
};

// One invalid field: {"listen", "expected HOST:PORT, e.g. 127.0.0.1:8080"}.
struct FieldError {
  std::string field;
  std::string message;
  std::string ToString() const { return field + ": " + message; }
};

// Every problem of c (empty when valid).
std::vector<FieldError> Validate(const Config& c);

// Parses "HOST:PORT" (HOST may be "[::1]"); false when malformed.
bool SplitHostPort(const std::string& listen, std::string* host, int* port);

// Overlays the TOML text (file name used in messages) onto *config. Unknown
// keys are errors (a typo must not be silently ignored). InvalidArgument with
// the file, line and key on any problem; *config is unspecified then.
Status ApplyToml(const std::string& toml_text, const std::string& file_name, Config* config);

// Overlays the BRANCHDB_* variables that `getenv` returns (nullptr = unset).
// InvalidArgument naming the variable when a value does not parse.
Status ApplyEnvironment(const std::function<const char*(const char*)>& getenv, Config* config);

// The flags of `branchdb serve` that were given on the command line.
struct ServeFlags {
  std::optional<std::string> config_file;
  std::optional<std::string> data_dir;
  std::optional<std::string> listen;
  std::optional<std::string> log_level;
};

// Defaults -> file (flags.config_file, else BRANCHDB_CONFIG) -> environment ->
// flags. read_file reads the config file (e.g. via Env::ReadFileToString).
// Does not Validate().
Result<Config> LoadConfig(const ServeFlags& flags,
                          const std::function<const char*(const char*)>& getenv,
                          const std::function<Result<std::string>(const std::string&)>& read_file);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_CONFIG_H_
