// EtcdClient and EtcdFilesEnv against a real etcd (tests/cluster/etcd_fixture.h).
#include <catch2/catch.hpp>

#include "base/env.h"
#include "cluster/etcd_client.h"
#include "cluster/etcd_files_env.h"
#include "tests/cluster/etcd_fixture.h"
#include "tests/util/temp_dir.h"

namespace branchdb::cluster {
namespace {

std::unique_ptr<EtcdClient> Connect(const testing::Etcd& etcd) {
  EtcdOptions o;
  o.endpoints = {etcd.endpoint()};
  auto client = EtcdClient::Create(o);
  REQUIRE(client.ok());
  return std::move(*client);
}

TEST_CASE("keys and values are bytes: put, get, range by prefix, delete") {
  testing::Etcd etcd;
  auto c = Connect(etcd);
  const std::string binary("v\0\xff\x01", 4);
  REQUIRE(c->Put("/t/a", "1").ok());
  REQUIRE(c->Put("/t/b", binary).ok());
  REQUIRE(c->Put("/u/c", "3").ok());

  auto a = c->Get("/t/b");
  REQUIRE(a.ok());
  REQUIRE(a->has_value());
  CHECK((*a)->value == binary);
  CHECK((*a)->version == 1);

  auto range = c->RangePrefix("/t/");
  REQUIRE(range.ok());
  REQUIRE(range->kvs.size() == 2);
  CHECK(range->kvs[0].key == "/t/a");
  CHECK(range->kvs[1].key == "/t/b");
  CHECK(range->revision >= range->kvs[1].mod_revision);

  auto deleted = c->Delete("/t/", /*prefix=*/true);
  REQUIRE(deleted.ok());
  CHECK(*deleted == 2);
  auto gone = c->Get("/t/a");
  REQUIRE(gone.ok());
  CHECK(!gone->has_value());
  auto kept = c->Get("/u/c");
  REQUIRE(kept.ok());
  CHECK(kept->has_value());
}

TEST_CASE("a transaction that creates a key when absent succeeds once") {
  testing::Etcd etcd;
  auto c = Connect(etcd);
  const std::vector<Compare> absent = {
      {"/lock", Compare::Target::kCreateRevision, Compare::Op::kEqual, 0, ""}};
  auto first = c->Txn(absent, {{TxnOp::Kind::kPut, "/lock", "first", 0, false}},
                      {{TxnOp::Kind::kRange, "/lock", "", 0, false}});
  REQUIRE(first.ok());
  CHECK(first->succeeded);
  auto second = c->Txn(absent, {{TxnOp::Kind::kPut, "/lock", "second", 0, false}},
                       {{TxnOp::Kind::kRange, "/lock", "", 0, false}});
  REQUIRE(second.ok());
  CHECK(!second->succeeded);
  REQUIRE(second->ranges.size() == 1);
  REQUIRE(second->ranges[0].size() == 1);
  CHECK(second->ranges[0][0].value == "first");

  // A compare on the value, and on the revision it was last changed at.
  const int64_t mod = second->ranges[0][0].mod_revision;
  auto by_value = c->Txn({{"/lock", Compare::Target::kValue, Compare::Op::kEqual, 0, "first"},
                          {"/lock", Compare::Target::kModRevision, Compare::Op::kEqual, mod, ""}},
                         {{TxnOp::Kind::kDelete, "/lock", "", 0, false}}, {});
  REQUIRE(by_value.ok());
  CHECK(by_value->succeeded);
  auto gone = c->Get("/lock");
  REQUIRE(gone.ok());
  CHECK(!gone->has_value());
}

TEST_CASE("a lease's keys go when it is revoked, and a revoked lease is not found") {
  testing::Etcd etcd;
  auto c = Connect(etcd);
  auto lease = c->LeaseGrant(30);
  REQUIRE(lease.ok());
  CHECK(lease->ttl_seconds >= 30);
  REQUIRE(c->Put("/leased", "x", lease->id).ok());
  auto kv = c->Get("/leased");
  REQUIRE(kv.ok());
  REQUIRE(kv->has_value());
  CHECK((*kv)->lease == lease->id);
  auto ttl = c->LeaseKeepAlive(lease->id);
  REQUIRE(ttl.ok());
  CHECK(*ttl >= 30);

  REQUIRE(c->LeaseRevoke(lease->id).ok());
  auto gone = c->Get("/leased");
  REQUIRE(gone.ok());
  CHECK(!gone->has_value());
  auto again = c->LeaseKeepAlive(lease->id);
  REQUIRE(!again.ok());
  CHECK(again.status().reason() == "etcd_lease_not_found");
  CHECK(c->LeaseRevoke(lease->id).ok());  // already gone: OK
  // A put under a lease that is gone is refused, not stored without it.
  auto put = c->Put("/leased", "y", lease->id);
  REQUIRE(!put.ok());
  CHECK(put.status().reason() == "etcd_lease_not_found");
}

TEST_CASE("an etcd that is down answers Unavailable, after the retries") {
  testing::Etcd etcd;
  auto c = Connect(etcd);
  REQUIRE(c->Put("/k", "v").ok());
  etcd.Stop();
  auto get = c->Get("/k");
  REQUIRE(!get.ok());
  CHECK(get.status().code() == StatusCode::kUnavailable);
  CHECK(get.status().reason() == "etcd_unavailable");
}

TEST_CASE("EtcdFilesEnv: two Envs over one etcd share the files under their directory") {
  testing::Etcd etcd;
  auto c = Connect(etcd);
  testing::TempDir a_dir, b_dir;
  EtcdFilesEnv a(Env::Default(), c.get(), a_dir.Sub("auth"), "/x/auth/");
  EtcdFilesEnv b(Env::Default(), c.get(), b_dir.Sub("auth"), "/x/auth/");

  REQUIRE(a.CreateDirs(a_dir.Sub("auth/keys")).ok());
  REQUIRE(a.WriteFileAtomic(a_dir.Sub("auth/clients.json"), "{\"n\":1}").ok());
  REQUIRE(a.WriteFileAtomic(a_dir.Sub("auth/keys/k1.pem"), "PEM").ok());
  auto read = b.ReadFileToString(b_dir.Sub("auth/clients.json"));
  REQUIRE(read.ok());
  CHECK(*read == "{\"n\":1}");
  CHECK(b.FileExists(b_dir.Sub("auth/keys/k1.pem")));
  auto children = b.GetChildren(b_dir.Sub("auth"));
  REQUIRE(children.ok());
  CHECK(*children == std::vector<std::string>{"clients.json", "keys"});
  // No temp file is left behind in etcd by the atomic write.
  auto all = c->RangePrefix("/x/auth/");
  REQUIRE(all.ok());
  CHECK(all->kvs.size() == 2);

  REQUIRE(b.DeleteFile(b_dir.Sub("auth/keys/k1.pem")).ok());
  CHECK(!a.FileExists(a_dir.Sub("auth/keys/k1.pem")));
  // Paths outside the directory are the local disk's.
  REQUIRE(a.WriteFileAtomic(a_dir.Sub("local.txt"), "here").ok());
  auto local = Env::Default()->ReadFileToString(a_dir.Sub("local.txt"));
  REQUIRE(local.ok());
  CHECK(*local == "here");
  CHECK(!b.FileExists(b_dir.Sub("local.txt")));
}

TEST_CASE("EtcdFilesEnv: a file another node changed since it was read is not overwritten") {
  testing::Etcd etcd;
  auto c = Connect(etcd);
  testing::TempDir dir;
  EtcdFilesEnv a(Env::Default(), c.get(), dir.Sub("auth"), "/x/auth/");
  EtcdFilesEnv b(Env::Default(), c.get(), dir.Sub("auth"), "/x/auth/");
  const std::string file = dir.Sub("auth/revoked.json");
  REQUIRE(a.WriteFileAtomic(file, "a1").ok());
  REQUIRE(b.ReadFileToString(file).ok());
  REQUIRE(a.WriteFileAtomic(file, "a2").ok());  // a's own writes go on

  Status lost = b.WriteFileAtomic(file, "b1");  // b has not seen a2
  CHECK(lost.code() == StatusCode::kConflict);
  CHECK(lost.reason() == "etcd_file_changed");
  auto kept = a.ReadFileToString(file);
  REQUIRE(kept.ok());
  CHECK(*kept == "a2");
  auto tmp = c->Get("/x/auth/revoked.json.tmp");
  REQUIRE(tmp.ok());
  CHECK(!tmp->has_value());

  REQUIRE(b.ReadFileToString(file).ok());  // b reads again, then writes
  REQUIRE(b.WriteFileAtomic(file, "b1").ok());
  CHECK(a.WriteFileAtomic(file, "a3").code() == StatusCode::kConflict);
  // Created by another node since a saw it absent: also a conflict.
  CHECK(b.WriteFileAtomic(dir.Sub("auth/new.json"), "b").ok());
  CHECK(a.WriteFileAtomic(dir.Sub("auth/new.json"), "a").code() == StatusCode::kConflict);
  // Deleted, then written anew by the node that deleted it.
  REQUIRE(b.DeleteFile(dir.Sub("auth/new.json")).ok());
  CHECK(b.WriteFileAtomic(dir.Sub("auth/new.json"), "b2").ok());
}

}  // namespace
}  // namespace branchdb::cluster
