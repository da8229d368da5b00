// ClusterNode (membership, project ownership by lease and epoch) against a
// real etcd (tests/cluster/etcd_fixture.h). Waits poll with a generous bound:
// nothing here asserts how fast anything happens.
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "base/env.h"
#include "cluster/cluster.h"
#include "cluster/etcd_client.h"
#include "tests/cluster/etcd_fixture.h"

namespace branchdb::cluster {
namespace {

struct Fixture {
  testing::Etcd etcd;

  ClusterOptions Options(const std::string& name, std::vector<std::string> local = {}) {
    ClusterOptions o;
    o.etcd_endpoints = {etcd.endpoint()};
    o.node_name = name;
    o.advertise_url = "http://" + name + ".invalid:8080";
    o.prefix = "/test";
    o.lease_ttl_seconds = 2;
    o.poll_interval_ms = 100;
    o.clock = Clock::Default();
    o.local_projects = [local] { return local; };
    return o;
  }
  std::unique_ptr<ClusterNode> Start(const std::string& name, std::vector<std::string> local = {}) {
    auto node = ClusterNode::Start(Options(name, std::move(local)));
    REQUIRE(node.ok());
    return std::move(*node);
  }
  std::unique_ptr<EtcdClient> Client() {
    EtcdOptions o;
    o.endpoints = {etcd.endpoint()};
    auto c = EtcdClient::Create(o);
    REQUIRE(c.ok());
    return std::move(*c);
  }
};

// True once done() holds, polling for up to 60 s.
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 600; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

TEST_CASE("nodes register under their lease and a second live node of the same name is refused") {
  Fixture f;
  auto a = f.Start("a");
  auto b = f.Start("b");
  auto view = a->View();
  REQUIRE(view.ok());
  REQUIRE(view->nodes.size() == 2);
  CHECK(view->nodes[0].name == "a");
  CHECK(view->nodes[0].url == "http://a.invalid:8080");
  CHECK(view->nodes[1].name == "b");
  CHECK(view->nodes[0].lease != 0);
  CHECK(Eventually([&] { return a->LiveNodeCount() == 2; }));

  auto twin = ClusterNode::Start(f.Options("a"));
  REQUIRE(!twin.ok());
  CHECK(twin.status().reason() == "node_name_taken");

  b.reset();  // leaves: its lease is revoked, its key goes at once
  view = a->View();
  REQUIRE(view.ok());
  REQUIRE(view->nodes.size() == 1);
  CHECK(view->nodes[0].name == "a");
}

TEST_CASE("a node restarted at once after a crash waits for its old lease to expire") {
  Fixture f;
  // What a crashed "a" leaves: its key under a lease nobody renews.
  auto etcd = f.Client();
  auto lease = etcd->LeaseGrant(2);
  REQUIRE(lease.ok());
  REQUIRE(etcd->Put("/test/nodes/a", "http://a.invalid:8080", lease->id).ok());
  auto a = f.Start("a");
  auto view = a->View();
  REQUIRE(view.ok());
  REQUIRE(view->nodes.size() == 1);
  CHECK(view->nodes[0].lease != lease->id);
}

TEST_CASE("a project has one owner; the others locate it there and may not write it") {
  Fixture f;
  auto a = f.Start("a");
  auto b = f.Start("b");
  auto epoch = a->ClaimNew("shop");
  REQUIRE(epoch.ok());
  CHECK(*epoch == 1);
  CHECK(a->Epoch("shop") == std::optional<int64_t>(1));

  auto again = b->ClaimNew("shop");
  REQUIRE(!again.ok());
  CHECK(again.status().reason() == "project_exists");

  CHECK(a->Locate("shop").kind == Location::Kind::kLocal);
  const Location at = b->Locate("shop");
  CHECK(at.kind == Location::Kind::kRemote);
  CHECK(at.node == "a");
  CHECK(at.url == "http://a.invalid:8080");
  CHECK(at.epoch == 1);
  CHECK(b->Locate("nowhere").kind == Location::Kind::kUnknown);

  CHECK(a->CheckWrite("shop").ok());
  Status refused = b->CheckWrite("shop");
  CHECK(refused.reason() == "not_owner");

  // Deleted: the name is free again, for any node.
  REQUIRE(a->Release("shop").ok());
  CHECK(a->Locate("shop").kind == Location::Kind::kUnknown);
  // b's polled view catches up.
  CHECK(Eventually([&] { return b->Locate("shop").kind == Location::Kind::kUnknown; }));
  auto reborn = b->ClaimNew("shop");
  REQUIRE(reborn.ok());
  CHECK(*reborn == 1);
}

TEST_CASE("a project whose owner left is unavailable until its home node returns, with a new epoch") {
  Fixture f;
  auto b = f.Start("b");
  {
    auto a = f.Start("a");
    REQUIRE(a->ClaimNew("shop").ok());
  }
  const Location down = b->Locate("shop");
  CHECK(down.kind == Location::Kind::kUnavailable);
  CHECK(down.node == "a");
  auto view = b->View();
  REQUIRE(view.ok());
  CHECK(view->owners.empty());
  REQUIRE(view->unowned.size() == 1);
  CHECK(view->unowned[0] == std::make_pair(std::string("shop"), std::string("a")));

  auto a = f.Start("a", {"shop"});  // its disk still has the project
  CHECK(a->Epoch("shop") == std::optional<int64_t>(2));
  CHECK(Eventually([&] { return b->Locate("shop").kind == Location::Kind::kRemote; }));
  CHECK(b->Locate("shop").epoch == 2);
}

TEST_CASE("a node whose lease expired stops writing at once, and owns its projects again with a new epoch") {
  Fixture f;
  auto a = f.Start("a", {"shop"});  // on its disk: registered and taken at start
  REQUIRE(a->Epoch("shop") == std::optional<int64_t>(1));
  REQUIRE(a->CheckWrite("shop").ok());

  // The lease ends under the node (as when etcd expires it while the node is
  // paused or cut off): the node must notice and stop acting as owner.
  auto etcd = f.Client();
  auto owner = etcd->Get("/test/owners/shop");
  REQUIRE(owner.ok());
  REQUIRE(owner->has_value());
  const int64_t old_lease = (*owner)->lease;
  REQUIRE(etcd->LeaseRevoke(old_lease).ok());
  {
    auto gone = etcd->Get("/test/owners/shop");
    REQUIRE(gone.ok());
    CHECK(!gone->has_value());
  }
  // Whatever the node believes for the moment, its write is refused: etcd no
  // longer names it owner with its epoch and lease.
  CHECK(!a->CheckWrite("shop").ok());

  // It registers again and takes its project back, with the next epoch.
  CHECK(Eventually([&] { return a->Epoch("shop") == std::optional<int64_t>(2); }));
  CHECK(a->CheckWrite("shop").ok());
  auto now = etcd->Get("/test/owners/shop");
  REQUIRE(now.ok());
  REQUIRE(now->has_value());
  CHECK((*now)->lease != old_lease);
}

TEST_CASE("a node that lost its lease while another took its project cannot write it (stale epoch)") {
  Fixture f;
  auto a = f.Start("a", {"shop"});
  REQUIRE(a->Epoch("shop") == std::optional<int64_t>(1));
  auto etcd = f.Client();
  auto owner = etcd->Get("/test/owners/shop");
  REQUIRE(owner.ok());
  REQUIRE(owner->has_value());

  // Another node (this test, speaking etcd directly) takes the project the
  // moment a's lease is gone, as a takeover does: owner key with epoch 2.
  auto lease = etcd->LeaseGrant(60);
  REQUIRE(lease.ok());
  auto take = etcd->Txn(
      {}, {{TxnOp::Kind::kPut, "/test/owners/shop",
            R"({"node":"c","url":"http://c.invalid:8080","epoch":2})", lease->id, false},
           {TxnOp::Kind::kPut, "/test/epochs/shop", "2", 0, false}},
      {});
  REQUIRE(take.ok());
  REQUIRE(etcd->LeaseRevoke((*owner)->lease).ok());

  Status refused = a->CheckWrite("shop");
  CHECK(refused.reason() == "not_owner");
  CHECK(a->Epoch("shop") == std::nullopt);
  // Re-registered, a does not take it back while c holds it; it forwards there.
  CHECK(Eventually([&] { return a->LeaseHeld(); }));
  CHECK(Eventually([&] { return a->Locate("shop").kind == Location::Kind::kRemote; }));
  CHECK(a->Locate("shop").node == "c");
  CHECK(a->Epoch("shop") == std::nullopt);
  CHECK(!a->CheckWrite("shop").ok());
}

TEST_CASE("with take_over, a live node takes a dead home's project over with the next epoch") {
  Fixture f;
  auto a = f.Start("a", {"shop"});
  REQUIRE(a->Epoch("shop") == 1);
  // b takes projects over; its first try fails (say, the bucket is down).
  std::mutex mu;
  std::vector<std::pair<std::string, int64_t>> calls;
  ClusterOptions o = f.Options("b");
  o.take_over = [&](const std::string& project, int64_t epoch) {
    std::lock_guard<std::mutex> l(mu);
    calls.emplace_back(project, epoch);
    if (calls.size() == 1) return Status::Unavailable("the bucket is down");
    return Status::OK();
  };
  auto started = ClusterNode::Start(std::move(o));
  REQUIRE(started.ok());
  auto b = std::move(*started);
  CHECK(b->Locate("shop").kind == Location::Kind::kRemote);  // a is alive: nothing to take

  a.reset();  // a leaves: its ownership goes
  REQUIRE(Eventually([&] { return b->Epoch("shop").has_value(); }));
  CHECK(b->Epoch("shop") == 3);  // the failed try used epoch 2, and gave it up
  {
    std::lock_guard<std::mutex> l(mu);
    REQUIRE(calls.size() == 2);
    CHECK(calls[0] == std::make_pair(std::string("shop"), int64_t{2}));
    CHECK(calls[1] == std::make_pair(std::string("shop"), int64_t{3}));
  }
  CHECK(b->TakeoverCount() == 1);
  CHECK(b->TakeoverFailures() == 1);
  CHECK(b->Locate("shop").kind == Location::Kind::kLocal);
  CHECK(b->CheckWrite("shop").ok());
  // b is the project's home now: a, back with its stale copy, does not claim it.
  auto reg = f.Client()->Get("/test/projects/shop");
  REQUIRE(reg.ok());
  REQUIRE(reg->has_value());
  CHECK((*reg)->value.find("\"b\"") != std::string::npos);
  a = f.Start("a", {"shop"});
  CHECK(!a->Epoch("shop").has_value());
  Location at = a->Locate("shop");
  CHECK(at.kind == Location::Kind::kRemote);
  CHECK(at.node == "b");
  CHECK(at.epoch == 3);
}

}  // namespace
}  // namespace branchdb::cluster
