// LiveServer: a full ApiServer (catalog, page store, VFS, auth) serving real
// HTTP on a free loopback port, with a temporary data directory and the admin
// credentials it wrote there. The base of the HTTP test fixtures
// (tests/server, tests/mcp); stopped and joined on destruction.
#ifndef BRANCHDB_TESTS_SERVER_LIVE_SERVER_H_
#define BRANCHDB_TESTS_SERVER_LIVE_SERVER_H_

#include <httplib.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>

#include "server/config.h"
#include "server/server.h"
#include "tests/util/temp_dir.h"

namespace branchdb::testing {

class LiveServer {
 public:
  // tweak: adjusts the config first; env: default Env::Default() (e.g. an
  // EnvWithClock for a MockClock).
  explicit LiveServer(const std::function<void(server::Config&)>& tweak = nullptr, Env* env = nullptr) {
    server::Config config;
    config.listen = "127.0.0.1:0";
    config.data_dir = dir_.Sub("data");
    config.sweep_interval_seconds = 3600;
    if (tweak) tweak(config);
    https_ = !config.tls_cert_file.empty();
    auto server = server::ApiServer::Create(config, env != nullptr ? env : Env::Default());
    INFO((server.ok() ? "" : server.status().ToString()));
    REQUIRE(server.ok());
    server_ = std::move(*server);
    auto port = server_->Bind();
    REQUIRE(port.ok());
    port_ = *port;
    serving_ = std::async(std::launch::async, [this] { return server_->Serve(); });
    std::ifstream creds(config.data_dir + "/admin-credentials.json");
    nlohmann::json c = nlohmann::json::parse(creds);
    client_id_ = c["client_id"];
    client_secret_ = c["client_secret"];
  }
  ~LiveServer() {
    server_->Stop();
    (void)serving_.get();
  }
  LiveServer(const LiveServer&) = delete;
  LiveServer& operator=(const LiveServer&) = delete;

  httplib::Client Client() {
    httplib::Client c(std::string(https_ ? "https" : "http") + "://127.0.0.1:" +
                      std::to_string(port_));
    c.enable_server_certificate_verification(false);  // the tests' self-signed cert
    c.set_read_timeout(60);
    return c;
  }

  // An access token of client id (client credentials grant), optionally narrowed
  // to scope. Waits for the server to accept connections.
  std::string Token(const std::string& id, const std::string& secret,
                    const std::string& scope = "") {
    auto c = Client();
    c.set_basic_auth(id.c_str(), secret.c_str());
    std::string form = "grant_type=client_credentials";
    if (!scope.empty()) form += "&scope=" + scope;
    auto r = c.Post("/oauth/token", form, "application/x-www-form-urlencoded");
    for (int i = 0; i < 400 && !r; ++i) {  // the server may still be starting
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      r = c.Post("/oauth/token", form, "application/x-www-form-urlencoded");
    }
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
    return nlohmann::json::parse(r->body)["access_token"];
  }
  // A token of the admin client.
  std::string AdminToken(const std::string& scope = "") {
    return Token(client_id_, client_secret_, scope);
  }
  // The admin client's token of every scope, fetched on first use.
  const std::string& Admin() {
    std::call_once(admin_once_, [this] { admin_ = AdminToken(); });
    return admin_;
  }

  // A JSON request as the tests make it: `method` in any case (GET, POST,
  // PATCH, DELETE), with `token` (the admin's when empty) and `extra`
  // headers; a null body is sent as {} (and none for GET and DELETE). Returns
  // the status (0 when no answer came) and the body, as a JSON string when it
  // is not JSON. No assertions: Catch2's are not thread-safe, and other
  // threads call it too.
  std::pair<int, nlohmann::json> Send(const std::string& method, const std::string& path,
                                      const nlohmann::json& body = nullptr,
                                      const std::string& token = "",
                                      httplib::Headers extra = {}) {
    auto c = Client();
    extra.emplace("Authorization", "Bearer " + (token.empty() ? Admin() : token));
    std::string m;
    for (char ch : method) m += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    std::string text = body.is_null() ? "{}" : body.dump();
    httplib::Result r = m == "GET"     ? c.Get(path.c_str(), extra)
                        : m == "POST"  ? c.Post(path.c_str(), extra, text, "application/json")
                        : m == "PATCH" ? c.Patch(path.c_str(), extra, text, "application/json")
                        : m == "PUT"   ? c.Put(path.c_str(), extra, text, "application/json")
                                       : c.Delete(path.c_str(), extra);
    if (!r) return {0, nullptr};
    nlohmann::json parsed = nlohmann::json::parse(r->body, nullptr, false);
    return {r->status, parsed.is_discarded() ? nlohmann::json(r->body) : parsed};
  }
  // The same, requiring an answer.
  std::pair<int, nlohmann::json> Call(const std::string& method, const std::string& path,
                                      const nlohmann::json& body = nullptr,
                                      const std::string& token = "",
                                      httplib::Headers extra = {}) {
    auto r = Send(method, path, body, token, std::move(extra));
    INFO(method << " " << path << ": no answer");
    REQUIRE(r.first != 0);
    return r;
  }

  TempDir dir_;
  std::unique_ptr<server::ApiServer> server_;
  std::future<Status> serving_;
  int port_ = 0;
  bool https_ = false;
  std::string client_id_, client_secret_;

 private:
  std::once_flag admin_once_;
  std::string admin_;
};

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_SERVER_LIVE_SERVER_H_
