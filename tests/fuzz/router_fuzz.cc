// libFuzzer target for HTTP requests into the API's router: a real ApiServer
// (server/server.h) on a temporary data directory, never listening; requests
// go through Router::Dispatch (same matching, auth, validation, idempotency,
// errors as over HTTP).
//
// Input: up to kMaxRequests requests, encoded as router_fuzz_input.h says.
// The project "p" with a table on branch "main" and a branch "dev" exists
// before every input (made again when an input dropped or renamed one); the
// clock is a frozen MockClock, so tokens never expire and computes never idle
// out. State otherwise carries over between inputs, so a finding may need the
// inputs before it: reproduce with the corpus (see docs/fuzzing.md).
// Properties checked (abort on violation): no crash, leak or UB (sanitizers);
// no 5xx except 503 (documented: unavailable/busy, retry); every 4xx from a
// /v1 route has the JSON error shape {"error":{"code","message"}}.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "auth/auth.h"
#include "base/mock_clock.h"
#include "server/config.h"
#include "server/http/router.h"
#include "server/server.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/router_fuzz_input.h"
#include "tests/util/temp_dir.h"

namespace {

using namespace branchdb;
using namespace branchdb::server;
using http::DispatchRequest;
using http::DispatchResponse;
using nlohmann::json;
using namespace branchdb::fuzz;

std::string FormEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

struct Fixture {
  MockClock clock;
  EnvWithClock env{Env::Default(), &clock};
  testing::TempDir root{testing::FastTestDirBase()};
  Config config;
  std::unique_ptr<ApiServer> server;
  std::string bearer;

  Fixture() {
    spdlog::set_level(spdlog::level::off);
    config.listen = "127.0.0.1:0";
    config.data_dir = root.Sub("data");
    config.log_level = "off";
    config.sweep_interval_seconds = 3600;
    auto created = ApiServer::Create(config, &env);
    FUZZ_CHECK(created.ok());
    server = std::move(*created);
    FUZZ_CHECK(server->services().auth->EnsureAdminClient("http://127.0.0.1/oauth/token").ok());
    std::ifstream in(config.data_dir + "/admin-credentials.json");
    json creds = json::parse(in);
    DispatchRequest grant;
    grant.method = "POST";
    grant.path = "/oauth/token";
    grant.body = "grant_type=client_credentials&client_id=" +
                 FormEncode(creds["client_id"].get<std::string>()) +
                 "&client_secret=" + FormEncode(creds["client_secret"].get<std::string>());
    grant.headers.emplace("Content-Type", "application/x-www-form-urlencoded");
    grant.remote_addr = "127.0.0.1";
    DispatchResponse token = server->router().Dispatch(grant);
    FUZZ_CHECK(token.status == 200);
    bearer = "Bearer " + json::parse(token.body)["access_token"].get<std::string>();
    admin_id = creds["client_id"].get<std::string>();
  }

  DispatchResponse Call(const std::string& method, const std::string& path,
                        const std::string& body) {
    DispatchRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    r.headers.emplace("Authorization", bearer);
    r.headers.emplace("Content-Type", "application/json");
    r.remote_addr = "127.0.0.1";
    return server->router().Dispatch(r);
  }

  // Call that must answer `status` (prints the answer otherwise).
  DispatchResponse Must(int status, const std::string& method, const std::string& path,
                        const std::string& body) {
    DispatchResponse res = Call(method, path, body);
    if (res.status != status) {
      std::fprintf(stderr, "%s %s -> %d %s\n", method.c_str(), path.c_str(), res.status,
                   res.body.c_str());
    }
    FUZZ_CHECK(res.status == status);
    return res;
  }

  // The project every input starts from (see the file comment): when an input
  // dropped or renamed one of its branches, it is made again from scratch.
  void EnsureBaseline() {
    if (Call("GET", "/v1/projects/p/branches/dev", "").status == 200 &&
        Call("GET", "/v1/projects/p/branches/main", "").status == 200) {
      return;
    }
    int dropped = Call("DELETE", "/v1/projects/p?force=true", "").status;
    FUZZ_CHECK(dropped == 204 || dropped == 404);
    Must(201, "POST", "/v1/projects", R"j({"name":"p"})j");
    Must(201, "POST", "/v1/projects/p/branches", R"j({"name":"main"})j");
    Must(200, "POST", "/v1/projects/p/branches/main/sql",
         R"j({"sql":"CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT); INSERT INTO t(b) VALUES ('x')"})j");
    Must(201, "POST", "/v1/projects/p/branches", R"j({"name":"dev","parent":"main"})j");
  }

  std::string admin_id;
  const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;  // print every request
};

Fixture& F() {
  static Fixture f;  // its data directory is removed at exit
  return f;
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool done() const { return pos_ >= in_.size(); }
  uint8_t U8() { return pos_ < in_.size() ? static_cast<uint8_t>(in_[pos_++]) : 0; }
  size_t U16() { return U8() | (size_t{U8()} << 8); }
  std::string Bytes(size_t n) {
    n = std::min(n, in_.size() - pos_);
    std::string b(in_.substr(pos_, n));
    pos_ += n;
    return b;
  }
  std::string Rest() { return Bytes(in_.size() - pos_); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

std::string Name(Reader& r) {
  size_t i = r.U8();
  if (i < 128) return kNames[i % kNameCount];
  return r.Bytes(r.U8() % 64);
}

void Replace(std::string* s, std::string_view from, const std::string& to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) {
    s->replace(at, from.size(), to);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = F();
  f.EnsureBaseline();
  Reader r(std::string_view(reinterpret_cast<const char*>(data), size));
  for (int i = 0; i < kMaxRequests && !r.done(); ++i) {
    const Route& route = kRoutes[r.U8() % kRouteCount];
    std::string project = Name(r);
    std::string branch = Name(r);
    uint8_t flags = r.U8();
    std::string query = r.Bytes(r.U16());
    std::string body = i + 1 == kMaxRequests ? r.Rest() : r.Bytes(r.U16());

    DispatchRequest req;
    req.method = route.method;
    req.path = route.path;
    if (req.path == "/v1/clients/{client_id}") {  // never delete the admin client (our token)
      auto decoded = http::DecodePathSegment(branch);
      if (branch.find(f.admin_id.substr(4)) != std::string::npos ||
          (decoded.ok() && decoded->find(f.admin_id.substr(4)) != std::string::npos)) {
        branch = "other";
      }
    }
    Replace(&req.path, "{project}", project);
    Replace(&req.path, "{branch}", branch);
    Replace(&req.path, "{client_id}", branch);
    if (!query.empty()) req.path += "?" + query;
    req.body = std::move(body);
    switch (flags & 3) {
      case 0: req.headers.emplace("Authorization", f.bearer); break;
      case 1: break;
      case 2: req.headers.emplace("Authorization", "Bearer " + project); break;
      case 3: req.headers.emplace("Authorization", "Basic " + branch); break;
    }
    if (flags & 4) req.headers.emplace("Idempotency-Key", "k" + std::to_string(flags >> 4));
    req.headers.emplace("Content-Type",
                        flags & 8 ? "application/x-www-form-urlencoded" : "application/json");
    req.remote_addr = "127.0.0.1";

    DispatchResponse res = f.server->router().Dispatch(req);
    if (f.verbose) std::fprintf(stderr, "%s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
    if (res.status >= 500 && res.status != 503) {
      std::fprintf(stderr, "%s %s -> %d %s\n", req.method.c_str(), req.path.c_str(), res.status,
                   res.body.c_str());
    }
    FUZZ_CHECK(res.status >= 200 && (res.status < 500 || res.status == 503));
    if (res.status >= 400 && req.method != "HEAD" && req.path.rfind("/v1/", 0) == 0) {
      json j = json::parse(res.body, nullptr, false);
      FUZZ_CHECK(j.is_object() && j.contains("error") && j["error"].is_object() &&
                 j["error"].contains("code") && j["error"]["code"].is_string() &&
                 j["error"].contains("message"));
    }
  }
  return 0;
}
