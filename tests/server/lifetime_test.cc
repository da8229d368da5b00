// DELETE /v1/projects/{p} while requests on the project are in flight, over
// real HTTP: a data diff, SQL on two branches' computes and a paged query are
// held inside their first page read of the project's store (an Env that
// blocks them), the DELETE is sent, then they go on. No crash; each request
// ends with success or a clear error (404 project_not_found), never a 500;
// the DELETE answers 204 without waiting for the SQL running on the
// computes; a project created under the same name afterwards is empty.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <future>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "server/config.h"
#include "server/server.h"
#include "tests/server/live_server.h"
#include "tests/util/temp_dir.h"

namespace branchdb::server {
namespace {

using nlohmann::json;

// An Env whose file reads under a directory wait, once armed, until released.
class HoldReadsEnv final : public EnvWrapper {
 public:
  explicit HoldReadsEnv(Env* target) : EnvWrapper(target) {}

  void Arm(std::string dir) {
    std::lock_guard<std::mutex> l(mu_);
    dir_ = std::move(dir);
    armed_ = true;
  }
  // Waits until `threads` distinct threads are held.
  void WaitForHeld(size_t threads) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return held_.size() >= threads; });
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    armed_ = false;
    cv_.notify_all();
  }

  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    auto file = EnvWrapper::NewRandomAccessFile(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<RandomAccessFile>(new File(this, path, std::move(*file)));
  }

 private:
  class File final : public RandomAccessFile {
   public:
    File(HoldReadsEnv* env, std::string path, std::unique_ptr<RandomAccessFile> target)
        : env_(env), path_(std::move(path)), target_(std::move(target)) {}
    Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
      env_->Hold(path_);
      return target_->Read(offset, n, scratch);
    }

   private:
    HoldReadsEnv* const env_;
    const std::string path_;
    std::unique_ptr<RandomAccessFile> target_;
  };

  void Hold(const std::string& path) {
    std::unique_lock<std::mutex> l(mu_);
    if (!armed_ || path.rfind(dir_, 0) != 0) return;
    held_.insert(std::this_thread::get_id());
    cv_.notify_all();
    cv_.wait(l, [&] { return !armed_; });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;                  // guarded by mu_
  std::string dir_;                     // guarded by mu_
  std::set<std::thread::id> held_;      // guarded by mu_
};

struct Reply {
  int status = 0;  // 0: no HTTP answer
  json body;
};

class Server : public testing::LiveServer {
 public:
  Server(const std::string& data_dir, Env* env)
      : LiveServer([&data_dir](Config& c) { c.data_dir = data_dir; }, env), admin_(AdminToken()) {}

  // Safe from any thread (no assertions).
  Reply Call(const std::string& method, const std::string& path, const json& body = nullptr) {
    auto c = Client();
    httplib::Headers h{{"Authorization", "Bearer " + admin_}};
    httplib::Result r = method == "GET"      ? c.Get(path.c_str(), h)
                        : method == "DELETE" ? c.Delete(path.c_str(), h)
                                             : c.Post(path.c_str(), h, body.dump(), "application/json");
    if (!r) return {};
    json parsed = json::parse(r->body, nullptr, false);
    return {r->status, parsed.is_discarded() ? json(r->body) : parsed};
  }
  json Must(const std::string& method, const std::string& path, const json& body, int status) {
    Reply r = Call(method, path, body);
    INFO(method << " " << path << " -> " << r.status << " " << r.body.dump());
    REQUIRE(r.status == status);
    return r.body;
  }

  std::string admin_;
};

const char kBranches[] = "/v1/projects/shop/branches";
const char kDev[] = "/v1/projects/shop/branches/dev";

// 200, or the clear refusal of a request whose project went away under it.
bool SuccessOrGone(const Reply& r) {
  if (r.status == 200) return true;
  if (r.status != 404 || !r.body.is_object()) return false;
  std::string code = r.body["error"]["code"];
  return code == "project_not_found" || code == "branch_not_found";
}

TEST_CASE("deleting a project while a data diff and SQL requests on it are in flight",
          "[api]") {
  testing::TempDir data;
  const std::string data_dir = data.Sub("data");
  {
    Server setup(data_dir, Env::Default());
    setup.Must("POST", "/v1/projects", {{"name", "shop"}}, 201);
    setup.Must("POST", "/v1/projects/shop/branches/production/sql",
               {{"sql", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); "
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                        "WHERE x < 2000) INSERT INTO t SELECT x, printf('row %d', x) FROM c"}},
               200);
    setup.Must("POST", kBranches, {{"name", "dev"}, {"parent", "production"}}, 201);
    setup.Must("POST", std::string(kDev) + "/sql",
               {{"sql", "UPDATE t SET v = 'changed' WHERE id % 3 = 0; DELETE FROM t WHERE id > 1900"}},
               200);
  }
  // A restarted server: its page caches are cold, so the requests below read
  // the store's files.
  HoldReadsEnv env(Env::Default());
  Server server(data_dir, &env);
  server.Must("GET", kBranches, nullptr, 200);  // the store is open (recovered) from here on
  env.Arm(data_dir + "/projects/");

  auto diff = std::async(std::launch::async, [&] {
    return server.Call("GET", std::string(kDev) + "/diff?kind=data&base=production&limit=1000");
  });
  auto write = std::async(std::launch::async, [&] {
    return server.Call("POST", std::string(kDev) + "/sql",
                       {{"sql", "INSERT INTO t(v) VALUES ('late')"}});
  });
  auto read = std::async(std::launch::async, [&] {
    return server.Call("POST", "/v1/projects/shop/branches/production/sql",
                       {{"sql", "SELECT count(*) FROM t"}, {"read_only", true}});
  });
  auto page = std::async(std::launch::async, [&] {  // paged: its own connection, no compute
    return server.Call("POST", std::string(kDev) + "/sql",
                       {{"sql", "SELECT id, v FROM t ORDER BY id"}, {"page_size", 10}});
  });
  env.WaitForHeld(4);  // all four are inside the project's store
  auto deleted = std::async(std::launch::async,
                            [&] { return server.Call("DELETE", "/v1/projects/shop"); });
  env.Release();

  Reply d = deleted.get();
  INFO("delete: " << d.status << " " << d.body.dump());
  CHECK(d.status == 204);
  for (auto& [name, f] :
       {std::pair{"diff", &diff}, {"write", &write}, {"read", &read}, {"page", &page}}) {
    Reply r = f->get();
    std::cout << name << ": " << r.status << " "
              << (r.status == 200 ? std::string("ok") : r.body.dump()) << "\n";
    INFO(name << ": " << r.status << " " << r.body.dump());
    CHECK(SuccessOrGone(r));
  }

  // The server is fine, and the name starts afresh.
  server.Must("GET", "/healthz", nullptr, 200);
  server.Must("GET", "/v1/projects/shop", nullptr, 404);
  server.Must("POST", "/v1/projects", {{"name", "shop"}}, 201);
  json branches = server.Must("GET", kBranches, nullptr, 200);
  CHECK(branches["branches"].size() == 1);
  json tables = server.Must("POST", "/v1/projects/shop/branches/production/sql",
                            {{"sql", "SELECT count(*) FROM sqlite_schema"}}, 200);
  CHECK(tables["results"][0]["rows"][0][0] == 0);
  server.Must("POST", "/v1/projects/shop/branches/production/sql",
              {{"sql", "CREATE TABLE t(x); INSERT INTO t VALUES (1)"}}, 200);
}


TEST_CASE("DELETE of a project answers while SQL on its computes is still running", "[api]") {
  testing::TempDir data;
  const std::string data_dir = data.Sub("data");
  {
    Server setup(data_dir, Env::Default());
    setup.Must("POST", "/v1/projects", {{"name", "shop"}}, 201);
    setup.Must("POST", "/v1/projects/shop/branches/production/sql",
               {{"sql", "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)"}}, 200);
  }
  HoldReadsEnv env(Env::Default());
  Server server(data_dir, &env);
  server.Must("GET", kBranches, nullptr, 200);  // the store is open from here on
  env.Arm(data_dir + "/projects/");
  auto read = std::async(std::launch::async, [&] {
    return server.Call("POST", "/v1/projects/shop/branches/production/sql",
                       {{"sql", "SELECT count(*) FROM t"}, {"read_only", true}});
  });
  env.WaitForHeld(1);  // the query is inside the project's store, on its compute

  // Answered while the query is still held (a DELETE that waited for it
  // would never return here: the query goes on only after Release).
  Reply d = server.Call("DELETE", "/v1/projects/shop");
  INFO("delete: " << d.status << " " << d.body.dump());
  CHECK(d.status == 204);
  server.Must("GET", "/v1/projects/shop", nullptr, 404);
  env.Release();

  Reply r = read.get();
  INFO("read: " << r.status << " " << r.body.dump());
  CHECK(SuccessOrGone(r));
  server.Must("GET", "/healthz", nullptr, 200);
}

}  // namespace
}  // namespace branchdb::server
