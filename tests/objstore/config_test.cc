// [object_storage]: its keys from the file and the BRANCHDB_S3_* environment,
// and Validate's field-level errors.
#include <catch2/catch.hpp>

#include <map>

#include "objstore/s3_client.h"
#include "server/config.h"

namespace branchdb::server {
namespace {

std::vector<std::string> Errors(const Config& c) {
  std::vector<std::string> out;
  for (const auto& e : Validate(c)) out.push_back(e.ToString());
  return out;
}

bool HasError(const Config& c, const std::string& field) {
  for (const auto& e : Validate(c)) {
    if (e.field == field) return true;
  }
  return false;
}

Config Configured() {
  Config c;
  c.object_storage_endpoint = "http://127.0.0.1:9000";
  c.object_storage_bucket = "b";
  c.object_storage_access_key_id = "id";
  c.object_storage_secret_access_key = "topsecret";
  return c;
}

TEST_CASE("object storage is off by default, and the defaults are valid") {
  Config c;
  CHECK_FALSE(c.ObjectStorageEnabled());
  CHECK(c.object_storage_region == "us-east-1");
  CHECK(c.object_storage_durability == "local");
  CHECK(Validate(c).empty());
  CHECK(Validate(Configured()).empty());
}

TEST_CASE("[object_storage] keys come from the file and the environment overrides them") {
  Config c;
  REQUIRE(ApplyToml("[object_storage]\nendpoint = \"http://10.0.0.1:7480\"\nbucket = \"bk\"\n"
                    "region = \"eu-west-3\"\naccess_key_id = \"AK\"\nsecret_access_key = \"SK\"\n"
                    "prefix = \"prod/eu\"\ndurability = \"local\"\nupload_interval_ms = 500\n"
                    "timeout_ms = 1500\nlocal_cache_mb = 2048\n",
                    "t.toml", &c)
              .ok());
  CHECK(c.object_storage_endpoint == "http://10.0.0.1:7480");
  CHECK(c.object_storage_bucket == "bk");
  CHECK(c.object_storage_region == "eu-west-3");
  CHECK(c.object_storage_access_key_id == "AK");
  CHECK(c.object_storage_secret_access_key == "SK");
  CHECK(c.object_storage_prefix == "prod/eu");
  CHECK(c.object_storage_upload_interval_ms == 500);
  CHECK(c.object_storage_timeout_ms == 1500);
  CHECK(c.object_storage_local_cache_mb == 2048);
  CHECK(ObjectStorageClientOptions(c).request_timeout_ms == 1500);
  CHECK(Validate(c).empty());

  const std::map<std::string, std::string> env = {
      {"BRANCHDB_S3_ENDPOINT", "http://127.0.0.1:9000"}, {"BRANCHDB_S3_BUCKET", "other"},
      {"BRANCHDB_S3_REGION", "us-west-2"},  {"BRANCHDB_S3_ACCESS_KEY_ID", "AK2"},
      {"BRANCHDB_S3_SECRET_ACCESS_KEY", "SK2"}, {"BRANCHDB_S3_PREFIX", "p"},
      {"BRANCHDB_DURABILITY", "local"},      {"BRANCHDB_S3_UPLOAD_INTERVAL_MS", "100"},
      {"BRANCHDB_S3_TIMEOUT_MS", "700"}, {"BRANCHDB_S3_LOCAL_CACHE_MB", "64"}};
  REQUIRE(ApplyEnvironment(
              [&](const char* name) -> const char* {
                auto it = env.find(name);
                return it == env.end() ? nullptr : it->second.c_str();
              },
              &c)
              .ok());
  CHECK(c.object_storage_endpoint == "http://127.0.0.1:9000");
  CHECK(c.object_storage_bucket == "other");
  CHECK(c.object_storage_region == "us-west-2");
  CHECK(c.object_storage_access_key_id == "AK2");
  CHECK(c.object_storage_secret_access_key == "SK2");
  CHECK(c.object_storage_prefix == "p");
  CHECK(c.object_storage_upload_interval_ms == 100);
  CHECK(c.object_storage_timeout_ms == 700);
  CHECK(c.object_storage_local_cache_mb == 64);

  const auto client = ObjectStorageClientOptions(c);
  CHECK(client.endpoint == c.object_storage_endpoint);
  CHECK(client.region == "us-west-2");
  CHECK(client.secret_access_key == "SK2");
}

TEST_CASE("an unknown [object_storage] key is an error naming it") {
  Config c;
  auto s = ApplyToml("[object_storage]\nendpiont = \"http://h:1\"\n", "t.toml", &c);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("object_storage.endpiont") != std::string::npos);
}

TEST_CASE("object storage settings without an endpoint are an error") {
  Config c;
  c.object_storage_bucket = "b";
  CHECK(HasError(c, "object_storage.endpoint"));
}

TEST_CASE("a bad endpoint, a missing bucket or key is named, and the secret is never shown") {
  Config c = Configured();
  c.object_storage_endpoint = "s3.amazonaws.com";
  CHECK(HasError(c, "object_storage"));
  c = Configured();
  c.object_storage_bucket = "";
  CHECK(HasError(c, "object_storage"));
  c = Configured();
  c.object_storage_access_key_id = "";
  CHECK(HasError(c, "object_storage"));
  c = Configured();
  c.object_storage_endpoint = "ftp://x";
  for (const std::string& e : Errors(c)) CHECK(e.find("topsecret") == std::string::npos);
}

TEST_CASE("durability is local or remote") {
  Config c = Configured();
  c.object_storage_durability = "sometimes";
  CHECK(HasError(c, "object_storage.durability"));
  c.object_storage_durability = "remote";
  CHECK_FALSE(HasError(c, "object_storage.durability"));
  c.object_storage_durability = "local";
  CHECK_FALSE(HasError(c, "object_storage.durability"));
}

TEST_CASE("the prefix has no leading, trailing or doubled slash; the interval and timeout are bounded") {
  Config c = Configured();
  for (const char* bad : {"/p", "p/", "a//b"}) {
    c.object_storage_prefix = bad;
    INFO(bad);
    CHECK(HasError(c, "object_storage.prefix"));
  }
  c.object_storage_prefix = "a/b";
  CHECK_FALSE(HasError(c, "object_storage.prefix"));
  c.object_storage_upload_interval_ms = 0;
  CHECK(HasError(c, "object_storage.upload_interval_ms"));
  for (int64_t bad : {int64_t{0}, int64_t{99}, int64_t{600001}}) {
    c.object_storage_timeout_ms = bad;
    INFO(bad);
    CHECK(HasError(c, "object_storage.timeout_ms"));
  }
  c.object_storage_timeout_ms = 100;
  CHECK_FALSE(HasError(c, "object_storage.timeout_ms"));
  CHECK(Config().object_storage_local_cache_mb == 0);  // never evict
  c.object_storage_local_cache_mb = -1;
  CHECK(HasError(c, "object_storage.local_cache_mb"));
  c.object_storage_local_cache_mb = 0;
  CHECK_FALSE(HasError(c, "object_storage.local_cache_mb"));
}

}  // namespace
}  // namespace branchdb::server
