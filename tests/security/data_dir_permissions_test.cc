// Hardening issue #13, item 6 (files): everything in the data directory is
// private to the service user. catalog.db, idempotency.db (which stores query
// results), segments, keys and credentials were created 0644 / 0755, readable
// by every local user. The class test walks the whole data directory after a
// realistic workload over HTTP and checks every file and directory.
#include <httplib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/server/live_server.h"

namespace branchdb::testing {
namespace {

using nlohmann::json;

class Server : public LiveServer {
 public:
  explicit Server(const std::function<void(server::Config&)>& tweak = nullptr)
      : LiveServer(tweak), token_(AdminToken()) {}

  // A call with the admin token (or `token`); returns the status and the body.
  std::pair<int, std::string> Call(const std::string& method, const std::string& path,
                                   const std::string& body = "", const std::string& token = "",
                                   httplib::Headers extra = {}) {
    auto c = Client();
    extra.emplace("Authorization", "Bearer " + (token.empty() ? token_ : token));
    httplib::Result r = method == "GET" ? c.Get(path.c_str(), extra)
                                        : c.Post(path.c_str(), extra, body, "application/json");
    REQUIRE(r);
    return {r->status, r->body};
  }
  json CallJson(const std::string& method, const std::string& path, const json& body,
                int want_status, const std::string& token = "", httplib::Headers extra = {}) {
    auto [status, text] = Call(method, path, body.dump(), token, std::move(extra));
    INFO(method << " " << path << " -> " << status << " " << text);
    REQUIRE(status == want_status);
    return json::parse(text, nullptr, false);
  }

  std::string token_;
};

// Every path under root whose mode gives group or others any access.
std::vector<std::string> NotPrivate(const std::string& root) {
  std::vector<std::string> out;
  auto check = [&](const std::filesystem::path& p) {
    struct stat st;
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    if ((st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
      out.push_back(p.string() + " " + mode);
    }
  };
  check(root);
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) check(e.path());
  return out;
}

size_t CountFiles(const std::string& root) {
  size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    n += e.is_regular_file() ? 1 : 0;
  }
  return n;
}

TEST_CASE("every file and directory of the data directory is private after a realistic workload",
          "[security]") {
  Server s;
  const std::string data = s.dir_.Sub("data");
  s.CallJson("POST", "/v1/projects", {{"name", "shop"}}, 201);
  s.CallJson("POST", "/v1/projects", {{"name", "other"}}, 201);
  s.CallJson("POST", "/v1/projects/shop/branches", {{"name", "dev/alex"}}, 201);
  const std::string sql = "/v1/projects/shop/branches/dev%2Falex/sql";
  s.CallJson("POST", sql,
             {{"sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, secret TEXT);"
                      "INSERT INTO t(secret) VALUES('hunter2')"}},
             200);
  // An idempotent request: its answer (query results included) is stored.
  s.CallJson("POST", sql, {{"sql", "SELECT secret FROM t"}}, 200, "",
             {{"Idempotency-Key", "read-the-secret"}});
  // A database credential, used.
  json cred = s.CallJson("POST", "/v1/projects/shop/branches/dev%2Falex/credentials",
                         {{"access", "read_write"}}, 201);
  REQUIRE(cred.contains("credential"));
  s.CallJson("POST", sql, {{"sql", "INSERT INTO t(secret) VALUES('swordfish')"}}, 200,
             cred["credential"].get<std::string>());
  // A client, a rollback, an export, an import.
  s.CallJson("POST", "/v1/clients", {{"name", "ci"}, {"scopes", {"projects:read"}}}, 201);
  s.CallJson("POST", "/v1/projects/shop/branches/dev%2Falex/rollback", {{"to", {{"actions", 1}}}},
             200);
  auto [export_status, file] = s.Call("GET", "/v1/projects/shop/branches/dev%2Falex/export");
  REQUIRE(export_status == 200);
  auto [import_status, imported] =
      s.Call("POST", "/v1/projects/other/import?branch=copy", file);
  INFO(imported);
  REQUIRE(import_status == 201);

  REQUIRE(CountFiles(data) >= 8);  // the walk sees a real data directory
  std::vector<std::string> open_to_others = NotPrivate(data);
  std::string list;
  for (const std::string& p : open_to_others) list += "\n  " + p;
  INFO("readable or writable by group/others:" << list);
  CHECK(open_to_others.empty());
}

TEST_CASE("a data directory made earlier with open modes is made private at start-up",
          "[security]") {
  TempDir dir;
  const std::string data = dir.Sub("data");
  std::filesystem::create_directories(data);
  std::filesystem::permissions(data, std::filesystem::perms(0755));
  {
    LiveServer s([&](server::Config& c) { c.data_dir = data; });
    (void)s.AdminToken();
  }
  struct stat st;
  REQUIRE(::stat(data.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
}

}  // namespace
}  // namespace branchdb::testing
