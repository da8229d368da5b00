// Fault sweeps over the auth state files (every fallible file operation of a
// sequence of mutations fails once, then power is lost) and a concurrency smoke
// test (many threads issuing, verifying, revoking while keys rotate).
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/auth/auth_fixture.h"
#include "tests/util/fault_injection_env.h"

namespace branchdb::auth::testing {
namespace {

using branchdb::testing::FaultInjectionEnv;
using branchdb::testing::FaultType;
using branchdb::testing::TempDir;

bool Verifies(AuthService& svc, const std::string& token) {
  BearerError e;
  return svc.VerifyToken(token, &e).has_value();
}

std::string TokenFor(AuthService& svc, const NewClient& c) {
  OAuthRequest r;
  r.form = {{"grant_type", "client_credentials"},
            {"client_id", c.info.client_id},
            {"client_secret", c.client_secret}};
  HttpReply reply = svc.TokenEndpoint(r);
  REQUIRE(reply.status == 200);
  return json::parse(reply.body)["access_token"].get<std::string>();
}

TEST_CASE("auth state: acknowledged mutations survive any single I/O fault plus power loss") {
  for (bool sticky : {false, true}) {
    for (uint64_t n = 1;; ++n) {
      TempDir dir;
      MockClock clock;
      EnvWithClock clocked(Env::Default(), &clock);
      FaultInjectionEnv env(&clocked);
      auto opened = AuthService::Open(&env, TestOptions(dir.path()));
      REQUIRE(opened.ok());
      std::unique_ptr<AuthService> svc = std::move(*opened);
      auto a = svc->CreateClient(ClientSpec{"a", {Scope::kSqlRead}, {}, {}, 0});
      REQUIRE(a.ok());
      std::string revoke_me = TokenFor(*svc, *a), keep = TokenFor(*svc, *a);
      const std::string old_kid = svc->CurrentKeyId();

      INFO("fault at operation " << n << (sticky ? " (sticky)" : ""));
      env.FailNth(n, FaultType::kIOError, sticky);
      auto b = svc->CreateClient(ClientSpec{"b", {Scope::kSqlWrite}, {"p"}, {}, 0});
      if (!b.ok()) CHECK(svc->ListClients().size() == 1);  // rolled back in memory
      Status revoked = svc->RevokeToken(revoke_me);
      if (!revoked.ok()) CHECK(Verifies(*svc, revoke_me));
      Status rotated = svc->RotateSigningKey();
      if (!rotated.ok()) CHECK(svc->CurrentKeyId() == old_kid);
      Status disabled = svc->SetClientEnabled(a->info.client_id, false);
      if (!disabled.ok()) CHECK(svc->GetClient(a->info.client_id)->enabled);
      const std::string kid_before_crash = svc->CurrentKeyId();
      const bool fired = env.FaultFired();
      env.ClearFault();
      svc.reset();
      REQUIRE(env.SimulateCrash().ok());

      auto reopened = AuthService::Open(&env, TestOptions(dir.path()));
      REQUIRE(reopened.ok());  // never corrupt
      svc = std::move(*reopened);
      if (b.ok()) {
        REQUIRE(svc->GetClient(b->info.client_id).ok());
        CHECK(svc->GetClient(b->info.client_id)->projects == std::vector<std::string>{"p"});
        CHECK(!TokenFor(*svc, *b).empty());  // its secret hash is durable too
      }
      if (revoked.ok()) CHECK_FALSE(Verifies(*svc, revoke_me));
      if (rotated.ok()) CHECK(svc->CurrentKeyId() == kid_before_crash);
      bool a_enabled = svc->GetClient(a->info.client_id)->enabled;
      if (disabled.ok()) CHECK_FALSE(a_enabled);
      // Whatever happened, a token signed before the sequence still verifies
      // with the keys on disk (the old key is never lost), unless A is disabled.
      CHECK(Verifies(*svc, keep) == a_enabled);
      if (!fired) break;
      REQUIRE(n < 500);
    }
  }
}

TEST_CASE("concurrent issuing, verifying and revoking while keys rotate") {
  TempDir dir;
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  auto opened = AuthService::Open(&env, TestOptions(dir.path()));
  REQUIRE(opened.ok());
  AuthService& svc = **opened;
  auto c = svc.CreateClient(ClientSpec{"c", {Scope::kSqlWrite}, {}, {}, 0});
  REQUIRE(c.ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string token = TokenFor(svc, *c);
        BearerError e;
        auto p = svc.Authenticate("Bearer " + token, &e);
        if (!p) {
          failures++;
          continue;
        }
        if (svc.Authorize(*p, Operation::kSqlWrite, "x", "y").has_value()) failures++;
        auto cred = svc.IssueDbCredential(*p, "x", "y", kIds, DbAccess::kRead, 60, &e);
        if (!cred || !Verifies(svc, cred->token)) failures++;
        if (i % 5 == t) {
          if (!svc.RevokeToken(token).ok() || Verifies(svc, token)) failures++;
        }
        if (t == 0 && i % 10 == 0 && !svc.RotateSigningKey().ok()) failures++;
        (void)svc.JwksEndpoint();
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == 0);
}

// Holds the rename that publishes a state file (the last step of every
// write) until released: a write to a slow disk, or to etcd in a cluster.
class HeldRenameEnv final : public branchdb::EnvWrapper {
 public:
  using EnvWrapper::EnvWrapper;
  Status RenameFile(const std::string& from, const std::string& to) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (hold_) {
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !hold_; });
    }
    lock.unlock();
    return target()->RenameFile(from, to);
  }
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
    held_ = false;
  }
  void WaitUntilHeld() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return held_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = false;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  bool held_ = false;
};

// Every writer (revocation, client change, rotation) writes its file without
// the lock that admitting a request takes: while one is held in its write,
// tokens are issued and verified, and the change is seen only once written.
// (A writer that held that lock across its write would hang this test.)
TEST_CASE("requests are admitted while a state change waits for its write") {
  TempDir dir;
  MockClock clock;
  EnvWithClock clocked(Env::Default(), &clock);
  HeldRenameEnv env(&clocked);
  auto opened = AuthService::Open(&env, TestOptions(dir.path()));
  REQUIRE(opened.ok());
  AuthService& svc = **opened;
  auto c = svc.CreateClient(ClientSpec{"c", {Scope::kSqlWrite}, {}, {}, 0});
  REQUIRE(c.ok());
  const std::string revoked = TokenFor(svc, *c);
  const std::string other = TokenFor(svc, *c);
  const std::string kid = svc.CurrentKeyId();

  // What a request sees: compared before, during and after each change.
  auto seen = [&] {
    std::vector<std::string> out = {Verifies(svc, other) ? "other ok" : "other refused",
                                    Verifies(svc, revoked) ? "revoked ok" : "revoked refused",
                                    svc.CurrentKeyId()};
    for (const ClientInfo& info : svc.ListClients()) {
      out.push_back(info.client_id + (info.enabled ? " enabled" : " disabled"));
    }
    return out;
  };
  struct Change {
    const char* what;
    std::function<Status()> run;
  };
  std::vector<Change> changes = {
      {"revocation", [&] { return svc.RevokeToken(revoked); }},
      {"new client",
       [&] { return svc.CreateClient(ClientSpec{"d", {Scope::kSqlRead}, {}, {}, 0}).status(); }},
      {"rotation", [&] { return svc.RotateSigningKey(); }},
      {"disabled client", [&] { return svc.SetClientEnabled(c->info.client_id, false); }},
  };
  for (const Change& change : changes) {
    INFO(change.what);
    const auto before = seen();
    env.Hold();
    Status result;
    std::thread writer([&] { result = change.run(); });
    env.WaitUntilHeld();
    CHECK(seen() == before);  // not changed until written
    env.Release();
    writer.join();
    REQUIRE(result.ok());
    CHECK(seen() != before);
  }
  CHECK(seen().size() == 5);  // 2 tokens, a key, 2 clients
  CHECK_FALSE(Verifies(svc, revoked));
  CHECK_FALSE(Verifies(svc, other));  // its client is disabled
  CHECK(svc.CurrentKeyId() != kid);
}

TEST_CASE("open removes key files keys.json does not name") {
  TempDir dir;
  MockClock clock;
  EnvWithClock env(Env::Default(), &clock);
  {
    auto s = AuthService::Open(&env, TestOptions(dir.path()));
    REQUIRE(s.ok());
  }
  const std::string stray = dir.path() + "/auth/keys/leftover.pem";
  const std::string tmp = dir.path() + "/auth/keys/x.pem.tmp";
  REQUIRE(env.WriteFileAtomic(stray, "junk").ok());
  REQUIRE(env.WriteFileAtomic(tmp, "junk").ok());
  auto s = AuthService::Open(&env, TestOptions(dir.path()));
  REQUIRE(s.ok());
  CHECK_FALSE(env.FileExists(stray));
  CHECK_FALSE(env.FileExists(tmp));
  CHECK(env.FileExists(dir.path() + "/auth/keys/" + (*s)->CurrentKeyId() + ".pem"));
}

}  // namespace
}  // namespace branchdb::auth::testing
