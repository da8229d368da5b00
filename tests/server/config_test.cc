// Config: precedence (defaults < file < environment < flags) and Validate().
#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "server/config.h"

namespace branchdb::server {
namespace {

// A fake environment and file system for LoadConfig.
struct Sources {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> files;

  Result<Config> Load(const ServeFlags& flags) {
    return LoadConfig(
        flags,
        [this](const char* name) -> const char* {
          auto it = env.find(name);
          return it == env.end() ? nullptr : it->second.c_str();
        },
        [this](const std::string& path) -> Result<std::string> {
          auto it = files.find(path);
          if (it == files.end()) return Status::NotFound(path + ": no such file");
          return it->second;
        });
  }
};

bool HasError(const Config& c, const std::string& field) {
  for (const auto& e : Validate(c)) {
    if (e.field == field) return true;
  }
  return false;
}

TEST_CASE("defaults are valid and documented values", "[config]") {
  Config c;
  CHECK(Validate(c).empty());
  CHECK(c.listen == "127.0.0.1:8080");
  CHECK(c.data_dir == "./data");
  CHECK(c.idle_timeout_seconds == 300);
  CHECK(c.statement_timeout_ms == 5000);
  CHECK(c.ListenHost() == "127.0.0.1");
  CHECK(c.ListenPort() == 8080);
}

TEST_CASE("each layer overrides the one below", "[config]") {
  Sources s;
  s.files["/etc/b.toml"] =
      "[server]\nlisten = \"0.0.0.0:9000\"\ndata_dir = \"/from/file\"\nlog_level = \"debug\"\n"
      "[compute]\nidle_timeout_seconds = 60\nbudget = 3\n"
      "[sql]\nstatement_timeout_ms = 1500\n";
  ServeFlags flags;
  flags.config_file = "/etc/b.toml";

  auto file_only = s.Load(flags);
  REQUIRE(file_only.ok());
  CHECK(file_only->listen == "0.0.0.0:9000");
  CHECK(file_only->data_dir == "/from/file");
  CHECK(file_only->idle_timeout_seconds == 60);
  CHECK(file_only->compute_budget == 3);
  CHECK(file_only->statement_timeout_ms == 1500);
  CHECK(file_only->max_result_rows == Config().max_result_rows);  // untouched default

  s.env["BRANCHDB_LISTEN"] = "127.0.0.1:9001";
  s.env["BRANCHDB_IDLE_TIMEOUT_SECONDS"] = "0";
  auto with_env = s.Load(flags);
  REQUIRE(with_env.ok());
  CHECK(with_env->listen == "127.0.0.1:9001");
  CHECK(with_env->idle_timeout_seconds == 0);
  CHECK(with_env->data_dir == "/from/file");

  flags.listen = "127.0.0.1:9002";
  flags.data_dir = "/from/flag";
  auto with_flags = s.Load(flags);
  REQUIRE(with_flags.ok());
  CHECK(with_flags->listen == "127.0.0.1:9002");
  CHECK(with_flags->data_dir == "/from/flag");
  CHECK(with_flags->idle_timeout_seconds == 0);  // env still beats the file
  CHECK(with_flags->log_level == "debug");
}

TEST_CASE("BRANCHDB_CONFIG names the file when --config is absent", "[config]") {
  Sources s;
  s.files["/x.toml"] = "[sql]\nmax_result_rows = 7\n";
  s.env["BRANCHDB_CONFIG"] = "/x.toml";
  auto c = s.Load({});
  REQUIRE(c.ok());
  CHECK(c->max_result_rows == 7);
}

TEST_CASE("config file errors name the file, line and key", "[config]") {
  Sources s;
  ServeFlags flags;
  flags.config_file = "/b.toml";

  s.files["/b.toml"] = "[server]\nlisten = 8080\n";
  auto wrong_type = s.Load(flags);
  REQUIRE_FALSE(wrong_type.ok());
  CHECK(wrong_type.status().message().find("/b.toml:2: server.listen: expected a string") !=
        std::string::npos);

  s.files["/b.toml"] = "[server]\nlisen = \"x\"\n";
  auto typo = s.Load(flags);
  REQUIRE_FALSE(typo.ok());
  CHECK(typo.status().message().find("server.lisen: unknown setting") != std::string::npos);

  s.files["/b.toml"] = "[server\n";
  auto syntax = s.Load(flags);
  REQUIRE_FALSE(syntax.ok());
  CHECK(syntax.status().IsInvalidArgument());
  CHECK(syntax.status().message().find("/b.toml:1:") != std::string::npos);

  ServeFlags missing_file;
  missing_file.config_file = "/nope.toml";
  auto missing = s.Load(missing_file);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().IsNotFound());
}

TEST_CASE("bad environment values name the variable", "[config]") {
  Sources s;
  s.env["BRANCHDB_COMPUTE_BUDGET"] = "lots";
  auto c = s.Load({});
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find("BRANCHDB_COMPUTE_BUDGET") != std::string::npos);
}

TEST_CASE("Validate reports field-level errors", "[config]") {
  Config c;
  c.listen = "localhost";
  CHECK(HasError(c, "listen"));
  for (const auto& e : Validate(c)) {
    if (e.field == "listen") CHECK(e.ToString().rfind("listen: expected HOST:PORT", 0) == 0);
  }
  c.listen = "localhost:99999";
  CHECK(HasError(c, "listen"));
  c.listen = "[::1]:8080";
  CHECK_FALSE(HasError(c, "listen"));
  c.listen = "::1:8080";
  CHECK(HasError(c, "listen"));
  c.listen = "127.0.0.1:0";
  CHECK(Validate(c).empty());

  Config tls;
  tls.tls_cert_file = "cert.pem";
  CHECK(HasError(tls, "tls_key_file"));

  Config many;
  many.log_level = "loud";
  many.idle_timeout_seconds = -1;
  many.compute_budget = 0;
  many.statement_timeout_ms = 0;
  many.data_dir = "";
  auto errors = Validate(many);
  CHECK(errors.size() == 5);
  CHECK(HasError(many, "log_level"));
  CHECK(HasError(many, "idle_timeout_seconds"));
  CHECK(HasError(many, "compute_budget"));
  CHECK(HasError(many, "statement_timeout_ms"));
  CHECK(HasError(many, "data_dir"));
}

TEST_CASE("public_url: file, environment and flag; derived from listen when empty", "[config]") {
  Sources s;
  s.files["/etc/b.toml"] = "[server]\npublic_url = \"https://file.example\"\n";
  ServeFlags flags;
  flags.config_file = "/etc/b.toml";
  CHECK(s.Load(flags)->public_url == "https://file.example");
  s.env["BRANCHDB_PUBLIC_URL"] = "https://env.example";
  CHECK(s.Load(flags)->public_url == "https://env.example");
  flags.public_url = "https://flag.example:8443/";
  auto c = s.Load(flags);
  CHECK(c->public_url == "https://flag.example:8443/");
  CHECK(c->PublicUrl() == "https://flag.example:8443");
  CHECK(Validate(*c).empty());

  Config d;
  CHECK(d.PublicUrl() == "http://127.0.0.1:8080");
  d.listen = "127.0.0.1:0";
  CHECK(d.PublicUrl(43210) == "http://127.0.0.1:43210");
  d.listen = "0.0.0.0:9000";
  CHECK(d.PublicUrl() == "http://127.0.0.1:9000");
  d.listen = "[::]:9000";
  d.tls_cert_file = d.tls_key_file = "x.pem";
  CHECK(d.PublicUrl() == "https://[::1]:9000");

  Config bad;
  for (const char* url : {"db.example.com", "ftp://db.example.com", "https://", "https://a/b",
                          "https://a?x", "https://u@a", "https://a b", "https://a#f"}) {
    bad.public_url = url;
    INFO(url);
    CHECK(HasError(bad, "public_url"));
  }
}

TEST_CASE("cors_origins: a TOML array or a comma-separated variable, exact origins only",
          "[config]") {
  Sources s;
  s.files["/etc/b.toml"] =
      "[server]\ncors_origins = [\"https://ui.example\", \"http://localhost:5173\"]\n";
  ServeFlags flags;
  flags.config_file = "/etc/b.toml";
  CHECK(s.Load(flags)->cors_origins ==
        std::vector<std::string>{"https://ui.example", "http://localhost:5173"});
  s.env["BRANCHDB_CORS_ORIGINS"] = " https://a.example , https://b.example:8443,";
  auto c = s.Load(flags);
  CHECK(c->cors_origins == std::vector<std::string>{"https://a.example", "https://b.example:8443"});
  CHECK(Validate(*c).empty());
  CHECK(Config().cors_origins.empty());  // off by default
  s.files["/etc/b.toml"] = "[server]\ncors_origins = \"https://ui.example\"\n";
  s.env.clear();
  CHECK_FALSE(s.Load(flags).ok());  // a string, not an array
  Config bad;
  for (const char* origin : {"*", "https://ui.example/", "https://ui.example/app", "ui.example",
                             "https://u@ui.example"}) {
    bad.cors_origins = {origin};
    INFO(origin);
    CHECK(HasError(bad, "cors_origins"));
  }
}

TEST_CASE("load limits are validated", "[config]") {
  Config c;
  c.max_connections = 0;
  c.max_connections_per_client = 0;
  c.listen_backlog = 5;
  c.request_timeout_seconds = 0;
  c.request_min_rate = 0;
  c.sql_max_concurrent = 0;
  for (const char* field : {"max_connections", "max_connections_per_client", "listen_backlog",
                            "request_timeout_seconds", "request_min_rate", "sql_max_concurrent"}) {
    INFO(field);
    CHECK(HasError(c, field));
  }
  Config per;
  per.sql_max_concurrent = 4;
  per.sql_max_concurrent_per_client = 5;
  CHECK(HasError(per, "sql_max_concurrent_per_client"));
}

TEST_CASE("CPU scheduling options are range-checked", "[config]") {
  Config c;
  CHECK(c.sql_cpu_slots == 0);  // one per core
  CHECK(Validate(c).empty());
  for (int slots : {-1, 1025}) {
    c.sql_cpu_slots = slots;
    INFO(slots);
    CHECK(HasError(c, "sql_cpu_slots"));
  }
  c.sql_cpu_slots = 1024;
  CHECK_FALSE(HasError(c, "sql_cpu_slots"));
  for (int64_t ms : {0, 1001}) {
    c.sql_cpu_quantum_ms = ms;
    INFO(ms);
    CHECK(HasError(c, "sql_cpu_quantum_ms"));
  }
  Config env;
  auto getenv = [](const char* name) -> const char* {
    std::string n(name);
    if (n == "BRANCHDB_SQL_CPU_SLOTS") return "3";
    if (n == "BRANCHDB_SQL_CPU_QUANTUM_MS") return "7";
    return nullptr;
  };
  REQUIRE(ApplyEnvironment(getenv, &env).ok());
  CHECK(env.sql_cpu_slots == 3);
  CHECK(env.sql_cpu_quantum_ms == 7);
}

TEST_CASE("cache_mb comes from [storage] or BRANCHDB_CACHE_MB and is range-checked", "[config]") {
  Config c;
  CHECK(c.cache_mb == 512);
  REQUIRE(ApplyToml("[storage]\ncache_mb = 64\n", "t.toml", &c).ok());
  CHECK(c.cache_mb == 64);
  CHECK_FALSE(HasError(c, "cache_mb"));
  auto getenv = [](const char* name) -> const char* {
    return std::string(name) == "BRANCHDB_CACHE_MB" ? "2048" : nullptr;
  };
  REQUIRE(ApplyEnvironment(getenv, &c).ok());
  CHECK(c.cache_mb == 2048);
  for (int64_t mb : {int64_t{0}, int64_t{1}, int64_t{-1}, (int64_t{1} << 20) + 1}) {
    c.cache_mb = mb;
    INFO(mb);
    CHECK(HasError(c, "cache_mb"));
  }
  c.cache_mb = 2;
  CHECK_FALSE(HasError(c, "cache_mb"));
}

TEST_CASE("the sample config parses and is valid", "[config]") {
  // The fully commented sample in docs/ must stay loadable.
  std::string path = std::string(BRANCHDB_SOURCE_DIR) + "/docs/branchdb.sample.toml";
  FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  Config c;
  REQUIRE(ApplyToml(text, path, &c).ok());
  CHECK(Validate(c).empty());
}

}  // namespace
}  // namespace branchdb::server
