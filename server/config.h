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

#include "base/status.h"

namespace branchdb::objstore {
struct S3Options;
}

namespace branchdb::server {

struct Config {
  // [server]
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 = any free port
  std::string data_dir = "./data";
  std::string log_level = "info";         // trace|debug|info|warn|error|off
  std::string tls_cert_file;              // both set: HTTPS; both empty: HTTP
  std::string tls_key_file;
  // The URL clients reach this server at (scheme://host[:port], no path):
  // the issuer and endpoints of the discovery metadata, WWW-Authenticate's
  // resource_metadata, the admin credentials' token_url. Never taken from a
  // request's Host header. "" = derived from listen and TLS (PublicUrl()).
  std::string public_url;
  // Origins (scheme://host[:port]) whose browser pages may call the API and
  // /mcp (CORS: preflights answered, Access-Control-Allow-Origin echoed).
  // Empty (the default): CORS off. No "*". Env: comma-separated.
  std::vector<std::string> cors_origins;
  int http_threads = 8;                   // HTTP worker threads kept ready
  // Connections served at once (one thread each, up to this); more wait to be
  // served. And at most this many from one client address (more: 503).
  int max_connections = 1024;
  int max_connections_per_client = 256;
  int listen_backlog = 1024;              // the listen(2) queue of the socket
  // A request's headers and body must arrive within this many seconds of its
  // first byte, plus one second per request_min_rate bytes received (Apache's
  // mod_reqtimeout, header=... MinRate=...); else 408 and the connection closes.
  // Over TLS, the handshake must complete within it too, else the connection closes.
  int64_t request_timeout_seconds = 10;
  int64_t request_min_rate = 500;         // bytes per second
  int64_t max_request_bytes = 64ll << 20; // request bodies larger than this: 413 (not imports)
  int64_t idempotency_ttl_seconds = 24 * 3600;
  // Export and import move a database in pieces of this many bytes (whole 4 KiB
  // pages): the memory one transfer buffers, whatever the database's size.
  int64_t transfer_buffer_bytes = 4ll << 20;

  // [storage]
  // One memory budget, in MiB, for the caches of the whole server: the
  // stores' page/meta/index caches of every open project together, and
  // SQLite's page caches of the branch connections (server/cache_budget.h
  // says how it is split). 2..1048576.
  int64_t cache_mb = 512;

  // [compute]
  int64_t idle_timeout_seconds = 300;     // per branch; 0 = never suspend
  int compute_budget = 64;                // at most this many active computes
  int64_t sweep_interval_seconds = 5;     // how often idle computes are looked for

  // [sql]
  int64_t statement_timeout_ms = 5000;    // wall time of one request's SQL script
  int64_t max_result_rows = 10000;        // per statement (and page); beyond: result_too_large
  int64_t max_result_bytes = 16ll << 20;  // per request; beyond: result_too_large (or a page ends)
  int64_t max_sql_bytes = 1 << 20;        // length of one request's SQL text
  int64_t max_branch_bytes = 1ll << 30;   // per-branch database size cap (also imports)
  // Requests running SQL (sql, diff, export, import, promote) at once, in all
  // and per client (OAuth client id); beyond either: 429 with Retry-After.
  int sql_max_concurrent = 64;
  int sql_max_concurrent_per_client = 4;
  // CPU scheduling of SQL execution (server/sql/cpu_scheduler.h): run slots
  // (scripts executing at once; 0 = one per core), and the run time after
  // which a script is long (short ones go first) and a long one's time slice.
  int sql_cpu_slots = 0;
  int64_t sql_cpu_quantum_ms = 2;

  // [libsql] (Hrana over HTTP, docs/libsql.md)
  // A stream unused this long expires: its transaction rolls back, its baton
  // is refused (STREAM_EXPIRED).
  int64_t libsql_stream_idle_timeout_seconds = 10;
  int libsql_max_streams = 1024;  // open streams at once; one more: 503 STREAMS_EXHAUSTED

  // [auth]
  int64_t token_lifetime_seconds = 900;   // OAuth access tokens
  int64_t credential_max_seconds = 3600;  // database credentials (60..this)
  // Verified-token cache (auth::AuthOptions::token_cache_entries; 0 = off).
  int64_t token_cache_entries = 4096;
  std::string admin_secret_file;          // bootstrap admin client secret ("" = generate)
  // [audit]
  // Audit events older than this are deleted (at start, then every minute; 1..3650).
  int64_t audit_retention_days = 90;

  // [object_storage] (docs/object-storage.md): sealed segments of every
  // project are uploaded to an S3-compatible bucket. Off while endpoint is "".
  std::string object_storage_endpoint;  // http://HOST[:PORT] (path-style requests)
  std::string object_storage_bucket;    // created if missing
  std::string object_storage_region = "us-east-1";
  std::string object_storage_access_key_id;
  std::string object_storage_secret_access_key;  // never logged
  std::string object_storage_prefix;    // keys are PREFIX/PROJECT_ID/seg-NNNNNN.log
  // local: a commit is acknowledged after the local fdatasync (the bucket lags
  // by the unsealed tail). remote (acknowledged once in the bucket): refused
  // by Validate until it is implemented.
  std::string object_storage_durability = "local";
  // How often the uploader looks for newly sealed segments (and retries).
  int64_t object_storage_upload_interval_ms = 2000;
  // How long a request to the bucket may wait on each read or write of its
  // socket before it counts as timed out (and is retried).
  int64_t object_storage_timeout_ms = 30000;
  // The local directory as a bounded cache: sealed segments verified in the
  // bucket are evicted (a stub kept) while the local bytes of sealed segments
  // and the fetch cache exceed this many MiB, and read back from the bucket.
  // 0 (default): never evict, every segment stays local too.
  int64_t object_storage_local_cache_mb = 0;
  // [storage] segment_bytes: a page store seals its log segment and starts a
  // new one past this size; sealed segments are what goes to the bucket, so a
  // smaller size lowers the upload lag. 65536..1073741824.
  int64_t segment_bytes = 64ll << 20;
  // True when [object_storage] is configured (an endpoint is set).
  bool ObjectStorageEnabled() const { return !object_storage_endpoint.empty(); }
  // [cluster] (docs/cluster.md). Empty etcd_endpoints: a single node, no etcd.
  // etcd client URLs (http://HOST:PORT); env: comma-separated.
  std::vector<std::string> etcd_endpoints;
  std::string node_name;      // unique in the cluster: [A-Za-z0-9._-], 1..64
  // How the other nodes reach this one (scheme://host[:port]); "" = PublicUrl().
  std::string advertise_url;
  std::string cluster_prefix = "/branchdb";  // every etcd key of the cluster under it
  int64_t cluster_lease_ttl_seconds = 10;    // the node's lease (2..300)

  // Split listen into host and port. REQUIRES: Validate() found no listen error.
  std::string ListenHost() const;
  int ListenPort() const;
  // public_url without a trailing '/', or, when empty, derived from listen:
  // "http[s]://HOST:port" where port is bound_port when > 0 (the port really
  // bound, for port 0) and an unspecified HOST (0.0.0.0, [::]) becomes the
  // loopback address (set public_url when clients use another name).
  std::string PublicUrl(int bound_port = 0) const;
  bool clustered() const { return !etcd_endpoints.empty(); }
};

// One invalid field: {"listen", "expected HOST:PORT, e.g. 127.0.0.1:8080"}.
struct FieldError {
  std::string field;
  std::string message;
  std::string ToString() const { return field + ": " + message; }
};

// The S3 client's options from [object_storage] (request timeout from
// timeout_ms; connect timeout and retries at their defaults).
objstore::S3Options ObjectStorageClientOptions(const Config& c);

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
  std::optional<std::string> public_url;
};

// Defaults -> file (flags.config_file, else BRANCHDB_CONFIG) -> environment ->
// flags. read_file reads the config file (e.g. via Env::ReadFileToString).
// Does not Validate().
Result<Config> LoadConfig(const ServeFlags& flags,
                          const std::function<const char*(const char*)>& getenv,
                          const std::function<Result<std::string>(const std::string&)>& read_file);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_CONFIG_H_
