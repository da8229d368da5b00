// The C++ SDK's transport against a real server: network errors told apart
// from API errors, token refresh (before expiry with an injected clock, and
// after a revocation), retries with one Idempotency-Key per call through a
// fault-injecting proxy, and one client shared by many threads.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "branchdb/client.h"
#include "test_server.h"

namespace branchdb::client::testing {
namespace {

template <typename T>
T Must(Result<T> r) {
  INFO((r.ok() ? std::string() : r.error().ToString()));
  REQUIRE(r.ok());
  return std::move(r).value();
}

template <typename T>
Error MustFail(const Result<T>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error();
}

SqlRequest Q(std::string sql) {
  SqlRequest r;
  r.sql = std::move(sql);
  return r;
}

// A port nothing listens on (bound once, then closed).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string NewProject(Client& c) {
  CreateProjectRequest req;
  req.name = UniqueName("t");
  Must(c.CreateProject(req));
  Must(c.Sql(req.name, "production", Q("CREATE TABLE t(x)")));
  return req.name;
}

int64_t Count(Client& c, const std::string& project, const std::string& branch = "production") {
  return Must(c.Sql(project, branch, Q("SELECT count(*) FROM t"))).Scalar().get<int64_t>();
}

TEST_CASE("errors: network, API and invalid argument are told apart", "[sdk_cpp]") {
  TestServer& server = TestServer::Shared();

  ClientOptions closed = server.AdminOptions();
  closed.url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  closed.retry.max_retries = 1;
  closed.retry.initial_backoff = std::chrono::milliseconds(1);
  auto down = Must(Client::Create(closed));
  Error net = MustFail(down->ListProjects());
  CHECK(net.IsNetwork());
  CHECK_FALSE(net.IsApi());
  CHECK(net.kind() == ErrorKind::kNetwork);
  CHECK(net.network_reason() == NetworkReason::kConnect);
  CHECK(net.http_status() == 0);
  CHECK(net.attempts() == 2);  // the token fetch was retried once
  CHECK(net.ToString().find("network") == 0);
  CHECK_FALSE(down->Health().ok());

  for (const char* url : {"ftp://127.0.0.1:1", "http://", "127.0.0.1:8080", ""}) {
    ClientOptions o;
    o.url = url;
    auto r = Client::Create(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().IsInvalidArgument());
  }
  ClientOptions half = server.AdminOptions();
  half.client_secret.clear();
  CHECK(MustFail(Client::Create(half)).IsInvalidArgument());

  // No credentials: the API answers 401; a fixed token is never "refreshed".
  ClientOptions anon;
  anon.url = server.url();
  auto nobody = Must(Client::Create(anon));
  Error unauth = MustFail(nobody->ListProjects());
  CHECK(unauth.IsApi());
  CHECK(unauth.IsUnauthenticated());
  CHECK(Must(nobody->Health())["status"] == "ok");
  CHECK(MustFail(nobody->AccessToken()).IsInvalidArgument());
  anon.token = "not-a-jwt";
  auto fixed = Must(Client::Create(anon));
  Error bad_token = MustFail(fixed->ListProjects());
  CHECK(bad_token.IsUnauthenticated());
  CHECK(bad_token.code() == "invalid_token");
  CHECK(bad_token.attempts() == 1);
  CHECK(fixed->TokensFetched() == 0);

  // An unknown route and a raw call.
  auto admin = server.AdminClient();
  auto raw = Must(admin->Send("GET", "/v1/no-such-route"));
  CHECK(raw.status == 404);
  CHECK(raw.Header("content-type").find("application/json") == 0);
  CHECK(MustFail(admin->Send("GET", "no-slash")).IsInvalidArgument());
}

TEST_CASE("tokens: refreshed before expiry, and once after a revocation", "[sdk_cpp]") {
  TestServer& server = TestServer::Shared();
  std::atomic<int64_t> offset_s{0};
  auto base = std::chrono::steady_clock::now();
  ClientOptions o = server.AdminOptions();
  o.clock = [&] { return base + std::chrono::seconds(offset_s.load()); };
  auto c = Must(Client::Create(o));

  Must(c->ListProjects());
  CHECK(c->TokensFetched() == 1);
  Must(c->ListProjects());
  CHECK(c->TokensFetched() == 1);
  TokenIntrospection ti = Must(c->Introspect());
  REQUIRE(ti.active);
  REQUIRE(ti.exp.has_value());
  REQUIRE(ti.iat.has_value());
  int64_t lifetime = *ti.exp - *ti.iat;
  int64_t margin = std::min<int64_t>(60, lifetime / 10);
  std::string first = Must(c->AccessToken());

  offset_s = lifetime - margin - 2;  // not yet due
  Must(c->ListProjects());
  CHECK(c->TokensFetched() == 1);
  offset_s = lifetime - margin + 1;  // inside the margin: fetched anew
  Must(c->ListProjects());
  CHECK(c->TokensFetched() == 2);
  std::string second = Must(c->AccessToken());
  CHECK(second != first);

  // Revoked behind the client's back: one 401, one new token, success.
  auto other = server.AdminClient();
  REQUIRE(other->Revoke(second).ok());
  CHECK_FALSE(Must(other->Introspect(second)).active);
  Must(c->ListProjects());
  CHECK(c->TokensFetched() == 3);
  CHECK(Must(c->AccessToken()) != second);

  // Revoke() of the client's own token drops it from the cache.
  REQUIRE(c->Revoke().ok());
  Must(c->ListProjects());
  CHECK(c->TokensFetched() == 4);

  // The revoked token used as a fixed token: 401, not retried.
  ClientOptions fixed;
  fixed.url = server.url();
  fixed.token = second;
  Error e = MustFail(Must(Client::Create(fixed))->ListProjects());
  CHECK(e.IsUnauthenticated());
}

TEST_CASE("retries: lost answers, 503 and 429, with one Idempotency-Key per call",
          "[sdk_cpp]") {
  TestServer& server = TestServer::Shared();
  auto admin = server.AdminClient();
  std::string project = NewProject(*admin);
  FaultProxy proxy(server.url());
  ClientOptions o = server.AdminOptions();
  o.url = proxy.url();
  o.retry.initial_backoff = std::chrono::milliseconds(5);
  auto c = Must(Client::Create(o));
  const std::string sql_path = "/branches/production/sql";

  SECTION("a lost SQL answer is retried with the same key and applied once") {
    proxy.Inject("POST", sql_path, FaultProxy::Action::kDropResponse);
    Must(c->Sql(project, "production", Q("INSERT INTO t VALUES (1)")));
    auto seen = proxy.SeenMatching("POST", sql_path);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].action == FaultProxy::Action::kDropResponse);
    CHECK_FALSE(seen[0].headers["idempotency-key"].empty());
    CHECK(seen[0].headers["idempotency-key"] == seen[1].headers["idempotency-key"]);
    CHECK(Count(*admin, project) == 1);
  }

  SECTION("every call gets its own key; a given key replays") {
    Must(c->Sql(project, "production", Q("INSERT INTO t VALUES (1)")));
    Must(c->Sql(project, "production", Q("INSERT INTO t VALUES (1)")));
    auto seen = proxy.SeenMatching("POST", sql_path);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].headers["idempotency-key"] != seen[1].headers["idempotency-key"]);
    SqlRequest keyed = Q("INSERT INTO t VALUES (2)");
    keyed.idempotency_key = NewIdempotencyKey();
    SqlResult a = Must(c->Sql(project, "production", keyed));
    SqlResult b = Must(c->Sql(project, "production", keyed));
    CHECK(a.lsn == b.lsn);
    CHECK(Count(*admin, project) == 3);
    keyed.sql = "INSERT INTO t VALUES (3)";
    Error reused = MustFail(c->Sql(project, "production", keyed));
    CHECK(reused.IsIdempotencyKeyReused());
    CHECK(reused.http_status() == 422);
  }

  SECTION("a lost create-branch answer") {
    proxy.Inject("POST", "/branches", FaultProxy::Action::kDropResponse);
    CreateBranchRequest req;
    req.name = "dev/lost";
    CHECK(Must(c->CreateBranch(project, req)).name == "dev/lost");
    CHECK(proxy.SeenMatching("POST", "/branches").size() == 2);
  }

  SECTION("503 and 429 answers are retried; then the retries run out") {
    proxy.Inject("GET", "/branches", FaultProxy::Action::kRespond503, 2);
    CHECK(Must(c->ListBranches(project)).size() == 1);
    CHECK(proxy.SeenMatching("GET", "/branches").size() == 3);
    proxy.Inject("POST", sql_path, FaultProxy::Action::kRespond429);
    Must(c->Sql(project, "production", Q("INSERT INTO t VALUES (1)")));
    CHECK(Count(*admin, project) == 1);

    proxy.Inject("GET", "/v1/projects/" + project, FaultProxy::Action::kRespond503, 10);
    Error e = MustFail(c->GetProject(project));
    CHECK(e.IsUnavailable());
    CHECK(e.IsServerError());
    CHECK(e.attempts() == o.retry.max_retries + 1);
    CHECK(e.retry_after() == std::optional<std::chrono::seconds>(0));
  }

  SECTION("a lost DELETE answer: the retry finds nothing, which is success") {
    CreateBranchRequest req;
    req.name = "doomed";
    Must(c->CreateBranch(project, req));
    proxy.Inject("DELETE", "/branches/doomed", FaultProxy::Action::kDropResponse);
    REQUIRE(c->DeleteBranch(project, "doomed").ok());
    CHECK(proxy.SeenMatching("DELETE", "/branches/doomed").size() == 2);
    CHECK(MustFail(c->GetBranch(project, "doomed")).IsNotFound());
  }

  SECTION("calls that are not idempotent are sent once") {
    proxy.Inject("POST", "/credentials", FaultProxy::Action::kDropResponse);
    Error e = MustFail(c->CreateCredential(project, "production"));
    CHECK(e.IsNetwork());
    CHECK(e.attempts() == 1);
    CHECK(proxy.SeenMatching("POST", "/credentials").size() == 1);
    CHECK(proxy.SeenMatching("POST", "/credentials")[0].headers.count("idempotency-key") == 0);

    CreateBranchRequest req;
    req.name = "old-name";
    Must(c->CreateBranch(project, req));
    proxy.Inject("PATCH", "/branches/old-name", FaultProxy::Action::kDropResponse);
    UpdateBranchRequest rename;
    rename.name = "new-name";
    CHECK(MustFail(c->UpdateBranch(project, "old-name", rename)).IsNetwork());
    CHECK(proxy.SeenMatching("PATCH", "/branches/old-name").size() == 1);
    CHECK(Must(c->GetBranch(project, "new-name")).name == "new-name");  // applied once
  }

  SECTION("no retries when disabled") {
    ClientOptions once = o;
    once.retry.max_retries = 0;
    auto c0 = Must(Client::Create(once));
    Must(c0->ListProjects());  // token first
    proxy.Inject("POST", sql_path, FaultProxy::Action::kDropResponse);
    Error e = MustFail(c0->Sql(project, "production", Q("INSERT INTO t VALUES (1)")));
    CHECK(e.IsNetwork());
    CHECK(e.attempts() == 1);
    CHECK(Count(*admin, project) == 1);  // applied; the answer was lost
  }
}

TEST_CASE("one client shared by many threads", "[sdk_cpp]") {
  TestServer& server = TestServer::Shared();
  auto c = server.AdminClient();
  auto setup = server.AdminClient();
  std::string project = NewProject(*setup);
  for (int b = 0; b < 2; ++b) {
    CreateBranchRequest req;
    req.name = "b" + std::to_string(b);
    Must(setup->CreateBranch(project, req));
  }
  constexpr int kThreads = 6, kPerThread = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<std::string> errors;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      std::string branch = "b" + std::to_string(i % 2);
      for (int k = 0; k < kPerThread; ++k) {
        auto r = c->Sql(project, branch, Q("INSERT INTO t VALUES (1)"));
        if (!r.ok()) {
          ++failures;
          std::lock_guard<std::mutex> lock(mu);
          errors.push_back(r.error().ToString());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  INFO((errors.empty() ? std::string() : errors.front()));
  CHECK(failures == 0);
  CHECK(Count(*c, project, "b0") + Count(*c, project, "b1") == kThreads * kPerThread);
  CHECK(c->TokensFetched() == 1);
}

}  // namespace
}  // namespace branchdb::client::testing
