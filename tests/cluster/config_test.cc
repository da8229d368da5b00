// [cluster] keys: the file, the environment, and Validate's all-or-nothing rule.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "server/config.h"

namespace branchdb::server {
namespace {

bool HasError(const Config& c, const std::string& field) {
  for (const auto& e : Validate(c)) {
    if (e.field == field) return true;
  }
  return false;
}

TEST_CASE("no [cluster] is a single node, and valid") {
  Config c;
  CHECK(!c.clustered());
  CHECK(Validate(c).empty());
}

TEST_CASE("[cluster] keys come from the file and the environment") {
  Config c;
  REQUIRE(ApplyToml("[cluster]\netcd_endpoints = [\"http://10.0.0.5:2379\"]\n"
                    "node_name = \"node-a\"\nadvertise_url = \"http://10.0.0.11:8080\"\n"
                    "prefix = \"/prod/branchdb\"\nlease_ttl_seconds = 5\n",
                    "t.toml", &c)
              .ok());
  CHECK(c.clustered());
  CHECK(c.etcd_endpoints == std::vector<std::string>{"http://10.0.0.5:2379"});
  CHECK(c.node_name == "node-a");
  CHECK(c.advertise_url == "http://10.0.0.11:8080");
  CHECK(c.cluster_prefix == "/prod/branchdb");
  CHECK(c.cluster_lease_ttl_seconds == 5);
  CHECK(Validate(c).empty());

  const std::map<std::string, std::string> env = {
      {"BRANCHDB_ETCD_ENDPOINTS", "http://127.0.0.1:2379, http://127.0.0.1:22379"},
      {"BRANCHDB_NODE_NAME", "b"},
      {"BRANCHDB_ADVERTISE_URL", "http://127.0.0.1:9001"},
      {"BRANCHDB_CLUSTER_LEASE_TTL_SECONDS", "3"}};
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  REQUIRE(ApplyEnvironment(getenv, &c).ok());
  CHECK(c.etcd_endpoints ==
        std::vector<std::string>{"http://127.0.0.1:2379", "http://127.0.0.1:22379"});
  CHECK(c.node_name == "b");
  CHECK(c.cluster_lease_ttl_seconds == 3);
  CHECK(Validate(c).empty());
}

TEST_CASE("[cluster] is validated field by field") {
  Config lone;
  lone.node_name = "a";  // without etcd_endpoints
  CHECK(HasError(lone, "node_name"));

  Config c;
  c.etcd_endpoints = {"127.0.0.1:2379"};  // no scheme
  c.node_name = "bad name";
  c.advertise_url = "10.0.0.1:8080";
  c.cluster_prefix = "branchdb/";
  c.cluster_lease_ttl_seconds = 1;
  for (const char* field : {"etcd_endpoints", "node_name", "advertise_url", "cluster.prefix",
                            "cluster.lease_ttl_seconds"}) {
    INFO(field);
    CHECK(HasError(c, field));
  }
  c.etcd_endpoints = {"http://127.0.0.1:2379"};
  c.node_name = "";  // required in a cluster
  CHECK(HasError(c, "node_name"));
}

}  // namespace
}  // namespace branchdb::server
