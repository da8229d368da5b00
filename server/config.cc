// Config loading: one table of fields drives the TOML file, the environment and
// the documentation checks, so the three cannot drift apart.
#include "server/config.h"

#include <cctype>
#include <charconv>
#include <functional>
#include <exception>
#include <set>
#include <toml++/toml.h>

#include "objstore/s3_client.h"

namespace branchdb::server {
namespace {

enum class Kind { kString, kInt, kStringList };

struct Field {
  const char* section;  // TOML table
  const char* key;      // TOML key
  const char* env;      // environment variable
  Kind kind;
  std::string Config::*str = nullptr;
  int64_t Config::*i64 = nullptr;
  int Config::*i32 = nullptr;
  // kStringList: a TOML array of strings; in the environment, comma-separated.
  std::vector<std::string> Config::*list = nullptr;
};

// [object_storage] and the segment size that bounds its lag.
std::vector<Field> ObjectStorageFields() {
  return {
      {"object_storage", "endpoint", "BRANCHDB_S3_ENDPOINT", Kind::kString,
       &Config::object_storage_endpoint},
      {"object_storage", "bucket", "BRANCHDB_S3_BUCKET", Kind::kString,
       &Config::object_storage_bucket},
      {"object_storage", "region", "BRANCHDB_S3_REGION", Kind::kString,
       &Config::object_storage_region},
      {"object_storage", "access_key_id", "BRANCHDB_S3_ACCESS_KEY_ID", Kind::kString,
       &Config::object_storage_access_key_id},
      {"object_storage", "secret_access_key", "BRANCHDB_S3_SECRET_ACCESS_KEY", Kind::kString,
       &Config::object_storage_secret_access_key},
      {"object_storage", "prefix", "BRANCHDB_S3_PREFIX", Kind::kString,
       &Config::object_storage_prefix},
      {"object_storage", "durability", "BRANCHDB_DURABILITY", Kind::kString,
       &Config::object_storage_durability},
      {"object_storage", "upload_interval_ms", "BRANCHDB_S3_UPLOAD_INTERVAL_MS", Kind::kInt,
       nullptr, &Config::object_storage_upload_interval_ms},
      {"object_storage", "timeout_ms", "BRANCHDB_S3_TIMEOUT_MS", Kind::kInt, nullptr,
       &Config::object_storage_timeout_ms},
      {"object_storage", "local_cache_mb", "BRANCHDB_S3_LOCAL_CACHE_MB", Kind::kInt, nullptr,
       &Config::object_storage_local_cache_mb},
      {"storage", "segment_bytes", "BRANCHDB_SEGMENT_BYTES", Kind::kInt, nullptr,
       &Config::segment_bytes},
  };
}

// [cluster] (docs/cluster.md).
std::vector<Field> ClusterFields() {
  return {
      {"cluster", "etcd_endpoints", "BRANCHDB_ETCD_ENDPOINTS", Kind::kStringList, nullptr,
       nullptr, nullptr, &Config::etcd_endpoints},
      {"cluster", "node_name", "BRANCHDB_NODE_NAME", Kind::kString, &Config::node_name},
      {"cluster", "advertise_url", "BRANCHDB_ADVERTISE_URL", Kind::kString,
       &Config::advertise_url},
      {"cluster", "prefix", "BRANCHDB_CLUSTER_PREFIX", Kind::kString, &Config::cluster_prefix},
      {"cluster", "lease_ttl_seconds", "BRANCHDB_CLUSTER_LEASE_TTL_SECONDS", Kind::kInt, nullptr,
       &Config::cluster_lease_ttl_seconds},
  };
}

const std::vector<Field>& Fields() {
  static const std::vector<Field> fields = [] {
    std::vector<Field> all = {
      {"server", "listen", "BRANCHDB_LISTEN", Kind::kString, &Config::listen},
      {"server", "data_dir", "BRANCHDB_DATA_DIR", Kind::kString, &Config::data_dir},
      {"server", "log_level", "BRANCHDB_LOG_LEVEL", Kind::kString, &Config::log_level},
      {"server", "tls_cert_file", "BRANCHDB_TLS_CERT_FILE", Kind::kString, &Config::tls_cert_file},
      {"server", "tls_key_file", "BRANCHDB_TLS_KEY_FILE", Kind::kString, &Config::tls_key_file},
      {"server", "public_url", "BRANCHDB_PUBLIC_URL", Kind::kString, &Config::public_url},
      {"server", "cors_origins", "BRANCHDB_CORS_ORIGINS", Kind::kStringList, nullptr, nullptr,
       nullptr, &Config::cors_origins},
      {"server", "http_threads", "BRANCHDB_HTTP_THREADS", Kind::kInt, nullptr, nullptr,
       &Config::http_threads},
      {"server", "max_connections", "BRANCHDB_MAX_CONNECTIONS", Kind::kInt, nullptr, nullptr,
       &Config::max_connections},
      {"server", "max_connections_per_client", "BRANCHDB_MAX_CONNECTIONS_PER_CLIENT", Kind::kInt,
       nullptr, nullptr, &Config::max_connections_per_client},
      {"server", "listen_backlog", "BRANCHDB_LISTEN_BACKLOG", Kind::kInt, nullptr, nullptr,
       &Config::listen_backlog},
      {"server", "request_timeout_seconds", "BRANCHDB_REQUEST_TIMEOUT_SECONDS", Kind::kInt,
       nullptr, &Config::request_timeout_seconds},
      {"server", "request_min_rate", "BRANCHDB_REQUEST_MIN_RATE", Kind::kInt, nullptr,
       &Config::request_min_rate},
      {"server", "max_request_bytes", "BRANCHDB_MAX_REQUEST_BYTES", Kind::kInt, nullptr,
       &Config::max_request_bytes},
      {"server", "idempotency_ttl_seconds", "BRANCHDB_IDEMPOTENCY_TTL_SECONDS", Kind::kInt,
       nullptr, &Config::idempotency_ttl_seconds},
      {"server", "transfer_buffer_bytes", "BRANCHDB_TRANSFER_BUFFER_BYTES", Kind::kInt, nullptr,
       &Config::transfer_buffer_bytes},
      {"storage", "cache_mb", "BRANCHDB_CACHE_MB", Kind::kInt, nullptr, &Config::cache_mb},
      {"compute", "idle_timeout_seconds", "BRANCHDB_IDLE_TIMEOUT_SECONDS", Kind::kInt, nullptr,
       &Config::idle_timeout_seconds},
      {"compute", "budget", "BRANCHDB_COMPUTE_BUDGET", Kind::kInt, nullptr, nullptr,
       &Config::compute_budget},
      {"compute", "sweep_interval_seconds", "BRANCHDB_SWEEP_INTERVAL_SECONDS", Kind::kInt,
       nullptr, &Config::sweep_interval_seconds},
      {"sql", "statement_timeout_ms", "BRANCHDB_STATEMENT_TIMEOUT_MS", Kind::kInt, nullptr,
       &Config::statement_timeout_ms},
      {"sql", "max_result_rows", "BRANCHDB_MAX_RESULT_ROWS", Kind::kInt, nullptr,
       &Config::max_result_rows},
      {"sql", "max_result_bytes", "BRANCHDB_MAX_RESULT_BYTES", Kind::kInt, nullptr,
       &Config::max_result_bytes},
      {"sql", "max_sql_bytes", "BRANCHDB_MAX_SQL_BYTES", Kind::kInt, nullptr,
       &Config::max_sql_bytes},
      {"sql", "max_branch_bytes", "BRANCHDB_MAX_BRANCH_BYTES", Kind::kInt, nullptr,
       &Config::max_branch_bytes},
      {"sql", "max_concurrent", "BRANCHDB_SQL_MAX_CONCURRENT", Kind::kInt, nullptr, nullptr,
       &Config::sql_max_concurrent},
      {"sql", "max_concurrent_per_client", "BRANCHDB_SQL_MAX_CONCURRENT_PER_CLIENT", Kind::kInt,
       nullptr, nullptr, &Config::sql_max_concurrent_per_client},
      {"sql", "cpu_slots", "BRANCHDB_SQL_CPU_SLOTS", Kind::kInt, nullptr, nullptr,
       &Config::sql_cpu_slots},
      {"sql", "cpu_quantum_ms", "BRANCHDB_SQL_CPU_QUANTUM_MS", Kind::kInt, nullptr,
       &Config::sql_cpu_quantum_ms},
      {"libsql", "stream_idle_timeout_seconds", "BRANCHDB_LIBSQL_STREAM_IDLE_TIMEOUT_SECONDS",
       Kind::kInt, nullptr, &Config::libsql_stream_idle_timeout_seconds},
      {"libsql", "max_streams", "BRANCHDB_LIBSQL_MAX_STREAMS", Kind::kInt, nullptr, nullptr,
       &Config::libsql_max_streams},
      {"auth", "token_lifetime_seconds", "BRANCHDB_TOKEN_LIFETIME_SECONDS", Kind::kInt, nullptr,
       &Config::token_lifetime_seconds},
      {"auth", "credential_max_seconds", "BRANCHDB_CREDENTIAL_MAX_SECONDS", Kind::kInt, nullptr,
       &Config::credential_max_seconds},
      {"auth", "token_cache_entries", "BRANCHDB_TOKEN_CACHE_ENTRIES", Kind::kInt, nullptr,
       &Config::token_cache_entries},
      {"auth", "admin_secret_file", "BRANCHDB_ADMIN_SECRET_FILE", Kind::kString,
       &Config::admin_secret_file},
      {"audit", "retention_days", "BRANCHDB_AUDIT_RETENTION_DAYS", Kind::kInt, nullptr,
       &Config::audit_retention_days},
    };
    for (Field& f : ObjectStorageFields()) all.push_back(f);
    for (Field& f : ClusterFields()) all.push_back(f);
    return all;
  }();
  return fields;
}

bool ParseInt(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

Status SetInt(const Field& f, int64_t v, Config* c, const std::string& where) {
  if (f.i64 != nullptr) {
    c->*f.i64 = v;
  } else {
    if (v < INT32_MIN || v > INT32_MAX) {
      return Status::InvalidArgument(where + ": value out of range", "invalid_config");
    }
    c->*f.i32 = static_cast<int>(v);
  }
  return Status::OK();
}

}  // namespace

bool SplitHostPort(const std::string& listen, std::string* host, int* port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string h = listen.substr(0, colon);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return false;  // IPv6 literals need brackets
  }
  int64_t p = 0;
  if (!ParseInt(std::string_view(listen).substr(colon + 1), &p) || p < 0 || p > 65535) {
    return false;
  }
  *host = h;
  *port = static_cast<int>(p);
  return true;
}

std::string Config::ListenHost() const {
  std::string host;
  int port = 0;
  SplitHostPort(listen, &host, &port);
  return host;
}

int Config::ListenPort() const {
  std::string host;
  int port = 0;
  SplitHostPort(listen, &host, &port);
  return port;
}

std::string Config::PublicUrl(int bound_port) const {
  if (!public_url.empty()) {
    return public_url.back() == '/' ? public_url.substr(0, public_url.size() - 1) : public_url;
  }
  std::string host = ListenHost();
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  int port = bound_port > 0 ? bound_port : ListenPort();
  return std::string(tls_cert_file.empty() ? "http" : "https") + "://" + host + ":" +
         std::to_string(port);
}

namespace {

// "" when url is scheme://authority with no path (a trailing '/' aside), no
// query, userinfo or fragment; else what is wrong.
std::string PublicUrlProblem(const std::string& url) {
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else {
    return "expected http://HOST[:PORT] or https://HOST[:PORT]";
  }
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty()) return "the host is missing";
  for (unsigned char c : rest) {
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\') {
      return "expected only scheme://HOST[:PORT], no path, query, user or fragment";
    }
  }
  return "";
}

// [object_storage]: all or nothing; the S3 client's own checks name the field.
void ValidateObjectStorage(const Config& c, std::vector<FieldError>& errors) {
  auto err = [&](const char* field, std::string msg) { errors.push_back({field, std::move(msg)}); };
  if (c.object_storage_durability != "local" && c.object_storage_durability != "remote") {
    err("object_storage.durability", "expected local or remote (got \"" +
                                         c.object_storage_durability + "\")");
  }
  if (c.segment_bytes < 65536 || c.segment_bytes > (int64_t{1} << 30)) {
    err("segment_bytes", "expected 65536..1073741824");
  }
  if (c.object_storage_upload_interval_ms < 10 || c.object_storage_upload_interval_ms > 3600000) {
    err("object_storage.upload_interval_ms", "expected 10..3600000");
  }
  if (c.object_storage_timeout_ms < 100 || c.object_storage_timeout_ms > 600000) {
    err("object_storage.timeout_ms", "expected 100..600000");
  }
  if (c.object_storage_local_cache_mb < 0 || c.object_storage_local_cache_mb > (int64_t{1} << 30)) {
    err("object_storage.local_cache_mb", "expected 0 (never evict)..1073741824");
  }
  if (!c.ObjectStorageEnabled()) {
    if (!c.object_storage_bucket.empty() || !c.object_storage_access_key_id.empty() ||
        !c.object_storage_secret_access_key.empty() || !c.object_storage_prefix.empty()) {
      err("object_storage.endpoint",
          "required when any other [object_storage] setting is given (e.g. "
          "http://127.0.0.1:9000)");
    }
    return;
  }
  if (Status s = objstore::ValidateS3Options(ObjectStorageClientOptions(c)); !s.ok()) {
    err("object_storage", s.message());
  }
  const std::string& prefix = c.object_storage_prefix;
  if (!prefix.empty() && (prefix.front() == '/' || prefix.back() == '/' ||
                          prefix.find("//") != std::string::npos)) {
    err("object_storage.prefix",
        "no leading, trailing or doubled '/' (got \"" + prefix + "\"); e.g. branchdb/prod");
  }
}

}  // namespace

objstore::S3Options ObjectStorageClientOptions(const Config& c) {
  objstore::S3Options options;
  options.endpoint = c.object_storage_endpoint;
  options.bucket = c.object_storage_bucket;
  options.region = c.object_storage_region;
  options.access_key_id = c.object_storage_access_key_id;
  options.secret_access_key = c.object_storage_secret_access_key;
  options.request_timeout_ms = c.object_storage_timeout_ms;
  return options;
}

namespace {

// [cluster]: all or nothing; names and URLs that etcd keys and forwarding can use.
void ValidateCluster(const Config& c, const std::function<void(const char*, std::string)>& err) {
  if (!c.clustered()) {
    if (!c.node_name.empty()) err("node_name", "set etcd_endpoints too (or remove node_name)");
    if (!c.advertise_url.empty()) {
      err("advertise_url", "set etcd_endpoints too (or remove advertise_url)");
    }
    return;
  }
  for (const std::string& e : c.etcd_endpoints) {
    std::string host;
    int port = 0;
    if (e.rfind("http://", 0) != 0 || !SplitHostPort(e.substr(7), &host, &port) || port == 0) {
      err("etcd_endpoints", "expected http://HOST:PORT, e.g. http://127.0.0.1:2379 (got \"" + e +
                                "\")");
    }
  }
  bool name_ok = !c.node_name.empty() && c.node_name.size() <= 64;
  for (char ch : c.node_name) {
    name_ok &= std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
  }
  if (!name_ok) {
    err("node_name", "expected 1..64 of [A-Za-z0-9._-], unique in the cluster (got \"" +
                         c.node_name + "\")");
  }
  if (!c.advertise_url.empty()) {
    if (std::string problem = PublicUrlProblem(c.advertise_url); !problem.empty()) {
      err("advertise_url", problem + " (got \"" + c.advertise_url + "\")");
    }
  }
  if (c.cluster_prefix.size() < 2 || c.cluster_prefix[0] != '/' || c.cluster_prefix.back() == '/') {
    err("cluster.prefix", "expected /NAME[/NAME...] without a trailing '/', e.g. /branchdb");
  }
  if (c.cluster_lease_ttl_seconds < 2 || c.cluster_lease_ttl_seconds > 300) {
    err("cluster.lease_ttl_seconds", "expected 2..300");
  }
}

}  // namespace

// Long: one check per field, in the order of the config file.
std::vector<FieldError> Validate(const Config& c) {
  std::vector<FieldError> errors;
  auto err = [&](const char* field, std::string msg) { errors.push_back({field, std::move(msg)}); };
  std::string host;
  int port = 0;
  if (!SplitHostPort(c.listen, &host, &port)) {
    err("listen", "expected HOST:PORT, e.g. 127.0.0.1:8080 (got \"" + c.listen + "\")");
  }
  if (c.data_dir.empty()) err("data_dir", "must not be empty");
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn",
                                                "error", "critical", "off"};
  if (!kLevels.count(c.log_level)) {
    err("log_level", "expected one of trace, debug, info, warn, error, critical, off");
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    err(c.tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file",
        "tls_cert_file and tls_key_file must be set together (or both left empty for HTTP)");
  }
  if (!c.public_url.empty()) {
    if (std::string problem = PublicUrlProblem(c.public_url); !problem.empty()) {
      err("public_url", problem + " (got \"" + c.public_url + "\")");
    }
  }
  // Exact origins as browsers send them: no wildcard (the API takes bearer
  // credentials), no path, no trailing '/'.
  if (c.cors_origins.size() > 64) err("cors_origins", "at most 64 origins");
  for (const std::string& origin : c.cors_origins) {
    std::string problem = origin == "*" ? "no wildcard: list each allowed origin"
                          : !origin.empty() && origin.back() == '/'
                              ? "no trailing '/': an origin is scheme://HOST[:PORT]"
                              : PublicUrlProblem(origin);
    if (!problem.empty()) err("cors_origins", problem + " (got \"" + origin + "\")");
  }
  if (c.http_threads < 1 || c.http_threads > 1024) err("http_threads", "expected 1..1024");
  if (c.max_connections < 1 || c.max_connections > 65536) {
    err("max_connections", "expected 1..65536");
  }
  if (c.max_connections_per_client < 1 || c.max_connections_per_client > 65536) {
    err("max_connections_per_client", "expected 1..65536");
  }
  if (c.listen_backlog < 16 || c.listen_backlog > 65535) err("listen_backlog", "expected 16..65535");
  if (c.request_timeout_seconds < 1 || c.request_timeout_seconds > 3600) {
    err("request_timeout_seconds", "expected 1..3600");
  }
  if (c.request_min_rate < 1) err("request_min_rate", "expected at least 1 (bytes per second)");
  if (c.max_request_bytes < 1024) err("max_request_bytes", "expected at least 1024");
  if (c.idempotency_ttl_seconds < 1) err("idempotency_ttl_seconds", "expected at least 1");
  if (c.transfer_buffer_bytes < 4096 || c.transfer_buffer_bytes > (1ll << 30) ||
      c.transfer_buffer_bytes % 4096 != 0) {
    err("transfer_buffer_bytes", "expected a multiple of 4096 within 4096..1073741824");
  }
  if (c.cache_mb < 2 || c.cache_mb > (int64_t{1} << 20)) {
    err("cache_mb", "expected 2..1048576 (MiB)");
  }
  if (c.idle_timeout_seconds < 0) err("idle_timeout_seconds", "expected 0 (never) or more");
  if (c.compute_budget < 1) err("compute_budget", "expected at least 1");
  if (c.audit_retention_days < 1 || c.audit_retention_days > 3650) {
    err("audit_retention_days", "expected 1..3650");
  }
  if (c.sweep_interval_seconds < 1) err("sweep_interval_seconds", "expected at least 1");
  if (c.statement_timeout_ms < 1) err("statement_timeout_ms", "expected at least 1");
  if (c.libsql_stream_idle_timeout_seconds < 1 || c.libsql_stream_idle_timeout_seconds > 3600)
    err("libsql_stream_idle_timeout_seconds", "expected 1..3600");
  if (c.libsql_max_streams < 1 || c.libsql_max_streams > 65536)
    err("libsql_max_streams", "expected 1..65536");
  if (c.max_result_rows < 1) err("max_result_rows", "expected at least 1");
  if (c.max_result_bytes < 1) err("max_result_bytes", "expected at least 1");
  if (c.max_sql_bytes < 1 || c.max_sql_bytes > 1000000000) {
    err("max_sql_bytes", "expected 1..1000000000");
  }
  if (c.max_branch_bytes < 65536) err("max_branch_bytes", "expected at least 65536");
  if (c.sql_max_concurrent < 1 || c.sql_max_concurrent > 65536) {
    err("sql_max_concurrent", "expected 1..65536");
  }
  if (c.sql_max_concurrent_per_client < 1 ||
      c.sql_max_concurrent_per_client > c.sql_max_concurrent) {
    err("sql_max_concurrent_per_client", "expected 1..sql_max_concurrent");
  }
  if (c.sql_cpu_slots < 0 || c.sql_cpu_slots > 1024) {
    err("sql_cpu_slots", "expected 0 (one per core) or 1..1024");
  }
  if (c.sql_cpu_quantum_ms < 1 || c.sql_cpu_quantum_ms > 1000) {
    err("sql_cpu_quantum_ms", "expected 1..1000");
  }
  if (c.token_lifetime_seconds < 60 || c.token_lifetime_seconds > 3600) {
    err("token_lifetime_seconds", "expected 60..3600");
  }
  if (c.credential_max_seconds < 60 || c.credential_max_seconds > 86400) {
    err("credential_max_seconds", "expected 60..86400");
  }
  if (c.token_cache_entries < 0 || c.token_cache_entries > (int64_t{1} << 22)) {
    err("token_cache_entries", "expected 0..4194304");
  }
  ValidateObjectStorage(c, errors);
  ValidateCluster(c, err);
  return errors;
}

Status ApplyToml(const std::string& toml_text, const std::string& file_name, Config* config) {
  toml::table root;
  try {
    root = toml::parse(toml_text, file_name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Status::InvalidArgument(file_name + ":" + std::to_string(where.line) + ":" +
                                       std::to_string(where.column) + ": " +
                                       std::string(e.description()),
                                   "invalid_config");
  } catch (const std::exception& e) {
    return Status::InvalidArgument(file_name + ": " + e.what(), "invalid_config");
  }
  for (const auto& [section_key, section_node] : root) {
    std::string section(section_key.str());
    const toml::table* table = section_node.as_table();
    if (table == nullptr) {
      return Status::InvalidArgument(
          file_name + ": top-level key \"" + section +
              "\": expected a table ([server], [compute], [sql] or [auth])",
          "invalid_config");
    }
    for (const auto& [key_name, node] : *table) {
      std::string key(key_name.str());
      std::string where = file_name + ":" + std::to_string(node.source().begin.line) + ": " +
                          section + "." + key;
      const Field* field = nullptr;
      for (const auto& f : Fields()) {
        if (section == f.section && key == f.key) field = &f;
      }
      if (field == nullptr) {
        return Status::InvalidArgument(where + ": unknown setting (see docs/config.md)",
                                       "invalid_config");
      }
      if (field->kind == Kind::kStringList) {
        const toml::array* items = node.as_array();
        std::vector<std::string> values;
        bool strings = items != nullptr;
        if (items != nullptr) {
          for (const auto& item : *items) {
            strings = strings && item.is_string();
            if (item.is_string()) values.push_back(*item.value<std::string>());
          }
        }
        if (!strings) {
          return Status::InvalidArgument(where + ": expected an array of strings",
                                         "invalid_config");
        }
        config->*field->list = std::move(values);
      } else if (field->kind == Kind::kString) {
        auto v = node.value<std::string>();
        if (!v || !node.is_string()) {
          return Status::InvalidArgument(where + ": expected a string", "invalid_config");
        }
        config->*field->str = *v;
      } else {
        if (!node.is_integer()) {
          return Status::InvalidArgument(where + ": expected an integer", "invalid_config");
        }
        BRANCHDB_RETURN_IF_ERROR(SetInt(*field, *node.value<int64_t>(), config, where));
      }
    }
  }
  return Status::OK();
}

Status ApplyEnvironment(const std::function<const char*(const char*)>& getenv, Config* config) {
  for (const auto& f : Fields()) {
    const char* value = getenv(f.env);
    if (value == nullptr) continue;
    if (f.kind == Kind::kStringList) {
      std::vector<std::string> values;
      std::string text = value, item;
      for (size_t from = 0; from <= text.size();) {
        size_t comma = std::min(text.find(',', from), text.size());
        item = text.substr(from, comma - from);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) values.push_back(item);
        from = comma + 1;
      }
      config->*f.list = std::move(values);
    } else if (f.kind == Kind::kString) {
      config->*f.str = value;
    } else {
      int64_t v = 0;
      if (!ParseInt(value, &v)) {
        return Status::InvalidArgument(std::string(f.env) + "=\"" + value +
                                           "\": expected an integer",
                                       "invalid_config");
      }
      BRANCHDB_RETURN_IF_ERROR(SetInt(f, v, config, f.env));
    }
  }
  return Status::OK();
}

Result<Config> LoadConfig(const ServeFlags& flags,
                          const std::function<const char*(const char*)>& getenv,
                          const std::function<Result<std::string>(const std::string&)>& read_file) {
  Config config;
  std::optional<std::string> file = flags.config_file;
  if (!file) {
    if (const char* from_env = getenv("BRANCHDB_CONFIG"); from_env != nullptr && *from_env) {
      file = from_env;
    }
  }
  if (file) {
    auto text = read_file(*file);
    if (!text.ok()) return text.status().WithContext("config file " + *file);
    BRANCHDB_RETURN_IF_ERROR(ApplyToml(*text, *file, &config));
  }
  BRANCHDB_RETURN_IF_ERROR(ApplyEnvironment(getenv, &config));
  if (flags.data_dir) config.data_dir = *flags.data_dir;
  if (flags.listen) config.listen = *flags.listen;
  if (flags.log_level) config.log_level = *flags.log_level;
  if (flags.public_url) config.public_url = *flags.public_url;
  return config;
}

}  // namespace branchdb::server
