#include "bench/bench_http.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

namespace branchdb::bench {

using nlohmann::json;

void Die(const std::string& program, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(), what.c_str());
  std::exit(1);
}

BenchServer::BenchServer(const std::string& program,
                         const std::function<void(server::Config&)>& tweak)
    : program_(program), dir_(program) {
  spdlog::set_level(spdlog::level::warn);  // no access log line per request
  server::Config config;
  // The server's own settings from the environment (BRANCHDB_SQL_CPU_SLOTS=1,
  // ...), as `branchdb serve` reads them, for experiments; not these four.
  if (Status st = server::ApplyEnvironment(std::getenv, &config); !st.ok()) Die(st.ToString());
  config.listen = "127.0.0.1:0";
  config.data_dir = dir_.path() + "/data";
  config.log_level = "warn";
  config.idle_timeout_seconds = 0;  // only explicit suspends suspend
  if (tweak) tweak(config);
  if (auto errors = server::Validate(config); !errors.empty()) Die(errors[0].ToString());
  auto srv = server::ApiServer::Create(config, Env::Default());
  if (!srv.ok()) Die("create server: " + srv.status().ToString());
  server_ = std::move(*srv);
  auto port = server_->Bind();
  if (!port.ok()) Die("bind: " + port.status().ToString());
  port_ = *port;
  serve_ = std::thread([this] { (void)server_->Serve(); });

  // The admin's client credentials, from the file the server wrote.
  auto text = Env::Default()->ReadFileToString(config.data_dir + "/admin-credentials.json");
  if (!text.ok()) Die("admin credentials: " + text.status().ToString());
  json creds = json::parse(*text, nullptr, false);
  if (!creds.is_object() || !creds["client_id"].is_string() ||
      !creds["client_secret"].is_string()) {
    Die("admin credentials: malformed");
  }
  admin_token_ = Token(creds["client_id"], creds["client_secret"]);
}

BenchServer::~BenchServer() {
  server_->Stop();
  serve_.join();
  server_.reset();
}

std::unique_ptr<httplib::Client> BenchServer::Client(const std::string& token) const {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  if (!token.empty()) c->set_bearer_token_auth(token.c_str());
  c->set_read_timeout(60, 0);
  return c;
}

json BenchServer::Post(httplib::Client& c, const std::string& path, const json& body,
                       int want) const {
  auto r = c.Post(path.c_str(), body.dump(), "application/json");
  if (!r) Die("POST " + path + ": " + httplib::to_string(r.error()));
  if (r->status != want) {
    Die("POST " + path + ": status " + std::to_string(r->status) + ": " + r->body.substr(0, 300));
  }
  return json::parse(r->body, nullptr, false);
}

std::string BenchServer::Token(const std::string& id, const std::string& secret) const {
  httplib::Client c("127.0.0.1", port_);
  c.set_basic_auth(id.c_str(), secret.c_str());
  auto r = c.Post("/oauth/token", "grant_type=client_credentials",
                  "application/x-www-form-urlencoded");
  if (!r || r->status != 200) Die("token: " + (r ? r->body : httplib::to_string(r.error())));
  json t = json::parse(r->body, nullptr, false);
  if (!t.is_object() || !t["access_token"].is_string()) Die("token: " + r->body);
  return t["access_token"].get<std::string>();
}

std::string BenchServer::NewClientToken(const std::string& name) const {
  auto admin = Client(admin_token_);
  json c = Post(*admin, "/v1/clients",
                {{"name", name}, {"scopes", json::array({"sql:read", "sql:write"})}}, 201);
  return Token(c["client_id"], c["client_secret"]);
}

std::string PointSelectBody(int64_t k) {
  return R"({"sql":"SELECT v FROM t WHERE id = ?","params":[)" + std::to_string(k) + "]}";
}

}  // namespace branchdb::bench
