// The S3 client against a real Ceph RADOS Gateway (tests/objstore/ceph_s3.h)
// for every operation, and against small HTTP servers of the test (real
// sockets) that answer 500, 503 SlowDown, 400 or nothing in time, for the
// retry rules.
#include <catch2/catch.hpp>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "objstore/s3_client.h"
#include "tests/objstore/ceph_s3.h"

namespace branchdb::objstore {
namespace {

using ::branchdb::testing::CephS3;
using ::branchdb::testing::FreeTcpPort;
using ::branchdb::testing::SharedCephS3;

// A client with options, its bucket created.
std::unique_ptr<S3Client> ClientWith(const S3Options& options) {
  auto client = S3Client::Open(options);
  REQUIRE(client.ok());
  REQUIRE((*client)->CreateBucketIfMissing().ok());
  return std::move(*client);
}

// A client on the shared fixture, bucket created.
std::unique_ptr<S3Client> ClientFor(const std::string& bucket) {
  return ClientWith(SharedCephS3().Options(bucket));
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

TEST_CASE("an object put is read back byte for byte, whole and by ranges") {
  auto s3 = ClientFor("roundtrip");
  const std::string data = RandomBytes(300000, 1);  // NULs and every byte value
  auto put = s3->Put("dir/seg-000001.log", data);
  REQUIRE(put.ok());
  CHECK(put->etag == ExpectedETag(data, S3Options{}));

  auto got = s3->Get("dir/seg-000001.log");
  REQUIRE(got.ok());
  CHECK(*got == data);

  auto head = s3->Head("dir/seg-000001.log");
  REQUIRE(head.ok());
  CHECK(head->size == data.size());
  CHECK(head->etag == put->etag);

  auto middle = s3->GetRange("dir/seg-000001.log", 1000, 4096);
  REQUIRE(middle.ok());
  CHECK(*middle == data.substr(1000, 4096));
  auto tail = s3->GetRange("dir/seg-000001.log", data.size() - 10, 100);
  REQUIRE(tail.ok());
  CHECK(*tail == data.substr(data.size() - 10));
}

TEST_CASE("keys with spaces, plus signs and unicode are signed and stored as given") {
  auto s3 = ClientFor("oddkeys");
  const std::string key = "p/a b+c=d&e\xC3\xA9~.log";
  REQUIRE(s3->Put(key, "odd").ok());
  auto got = s3->Get(key);
  REQUIRE(got.ok());
  CHECK(*got == "odd");
  auto listed = s3->ListAll("p/");
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK((*listed)[0].key == key);
}

TEST_CASE("a missing key is NotFound with S3's code, for GET and HEAD") {
  auto s3 = ClientFor("missing");
  auto got = s3->Get("nope");
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().IsNotFound());
  CHECK(got.status().reason() == "NoSuchKey");
  CHECK(got.status().message().find("/missing/nope") != std::string::npos);
  auto head = s3->Head("nope");
  REQUIRE_FALSE(head.ok());
  CHECK(head.status().IsNotFound());
}

TEST_CASE("If-None-Match: * refuses to overwrite an existing object") {
  auto s3 = ClientFor("conditional");
  PutOptions once;
  once.if_none_match = true;
  REQUIRE(s3->Put("k", "first", once).ok());
  auto again = s3->Put("k", "second", once);
  REQUIRE_FALSE(again.ok());
  CHECK(again.status().IsFailedPrecondition());
  CHECK(again.status().reason() == "PreconditionFailed");
  auto got = s3->Get("k");
  REQUIRE(got.ok());
  CHECK(*got == "first");
}

TEST_CASE("delete removes an object, and deleting a missing one is OK") {
  auto s3 = ClientFor("deletes");
  REQUIRE(s3->Put("k", "v").ok());
  REQUIRE(s3->Delete("k").ok());
  CHECK(s3->Head("k").status().IsNotFound());
  CHECK(s3->Delete("k").ok());
}

TEST_CASE("listing filters by prefix and follows continuation tokens page by page") {
  auto s3 = ClientFor("listing");
  for (int i = 0; i < 5; ++i) REQUIRE(s3->Put("a/" + std::to_string(i), std::string(i, 'x')).ok());
  REQUIRE(s3->Put("b/0", "other prefix").ok());

  auto first = s3->List("a/", "", 2);
  REQUIRE(first.ok());
  REQUIRE(first->objects.size() == 2);
  CHECK(first->objects[0].key == "a/0");
  CHECK_FALSE(first->next_continuation_token.empty());
  auto second = s3->List("a/", first->next_continuation_token, 2);
  REQUIRE(second.ok());
  REQUIRE(second->objects.size() == 2);
  CHECK(second->objects[0].key == "a/2");

  auto all = s3->ListAll("a/");
  REQUIRE(all.ok());
  REQUIRE(all->size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK((*all)[i].key == "a/" + std::to_string(i));
    CHECK((*all)[i].size == static_cast<uint64_t>(i));
  }
}

TEST_CASE("creating the bucket again is OK") {
  auto s3 = ClientFor("twice");
  CHECK(s3->CreateBucketIfMissing().ok());
}

TEST_CASE("a large object goes up in parts, and its ETag is read back after Complete") {
  S3Options options = SharedCephS3().Options("multipart");
  options.multipart_threshold_bytes = 5 << 20;
  options.part_bytes = 5 << 20;  // RGW's minimum part size
  auto s3 = ClientWith(options);
  const std::string data = RandomBytes((12 << 20) + 123, 2);
  auto put = s3->Put("big", data);
  REQUIRE(put.ok());
  CHECK(put->size == data.size());
  CHECK(put->etag == ExpectedETag(data, options));
  CHECK(put->etag.substr(put->etag.size() - 2) == "-3");
  auto got = s3->Get("big");
  REQUIRE(got.ok());
  CHECK(*got == data);

  PutOptions once;
  once.if_none_match = true;
  CHECK(s3->Put("big", data, once).status().IsFailedPrecondition());
}

TEST_CASE("a wrong secret is PermissionDenied and not retried") {
  S3Options options = SharedCephS3().Options("denied");
  options.secret_access_key = "not-the-secret";
  auto s3 = S3Client::Open(options);
  REQUIRE(s3.ok());
  auto put = (*s3)->Put("k", "v");
  REQUIRE_FALSE(put.ok());
  CHECK(put.status().code() == StatusCode::kPermissionDenied);
  CHECK(put.status().reason() == "SignatureDoesNotMatch");
  CHECK(put.status().message().find("not-the-secret") == std::string::npos);
}

TEST_CASE("a stopped radosgw makes requests Unavailable after the retries") {
  CephS3 own;  // a fixture of its own, to stop
  auto s3 = S3Client::Open(own.Options("stopped"));
  REQUIRE(s3.ok());
  REQUIRE((*s3)->CreateBucketIfMissing().ok());
  REQUIRE((*s3)->Put("k", "v").ok());
  own.Stop();
  auto got = (*s3)->Get("k");
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().IsUnavailable());
  CHECK(got.status().reason() == "transport_error");
  CHECK(got.status().message().find("after 5 attempts") != std::string::npos);
}

// An HTTP server of the test on a free port: answers[i] for the i-th request
// (the last one from then on), each {status, body, delay before answering}.
struct Answer {
  int status;
  std::string body;
  int delay_ms = 0;
};
// keep_alive: requests a connection serves before the server closes it;
// port: 0 for any free one.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<Answer> answers, int keep_alive = 1, int port = 0)
      : answers_(std::move(answers)) {
    server_.set_keep_alive_max_count(keep_alive);
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> l(mu_);
        client_ports_.insert(req.remote_port);
      }
      const size_t i = std::min<size_t>(requests_++, answers_.size() - 1);
      const Answer& a = answers_[i];
      if (a.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(a.delay_ms));
      res.status = a.status;
      res.set_content(a.body, "application/xml");
    };
    server_.Get(".*", handler);
    server_.Put(".*", handler);
    if (port == 0) {
      port_ = server_.bind_to_any_port("127.0.0.1");
    } else {
      REQUIRE(server_.bind_to_port("127.0.0.1", port));
      port_ = port;
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ScriptedServer() {
    server_.stop();
    thread_.join();
  }
  S3Options Options() const {
    S3Options options;
    options.endpoint = "http://127.0.0.1:" + std::to_string(port_);
    options.bucket = "b";
    options.access_key_id = "id";
    options.secret_access_key = "secret";
    options.retry_base_ms = 5;
    options.retry_max_ms = 20;
    return options;
  }
  int requests() const { return requests_; }
  int port() const { return port_; }
  // How many connections the requests came on (by the client's port).
  size_t connections() {
    std::lock_guard<std::mutex> l(mu_);
    return client_ports_.size();
  }

 private:
  std::vector<Answer> answers_;
  std::mutex mu_;
  std::set<int> client_ports_;
  std::atomic<int> requests_{0};
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

const char kInternalError[] =
    "<Error><Code>InternalError</Code><Message>try again</Message></Error>";

TEST_CASE("500s are retried until the answer is 200") {
  ScriptedServer server({{500, kInternalError}, {500, kInternalError}, {200, "payload"}});
  auto s3 = S3Client::Open(server.Options());
  REQUIRE(s3.ok());
  auto got = (*s3)->Get("k");
  REQUIRE(got.ok());
  CHECK(*got == "payload");
  CHECK(server.requests() == 3);
}

TEST_CASE("503 SlowDown and 429 are retried") {
  ScriptedServer server({{503, "<Error><Code>SlowDown</Code></Error>"},
                         {429, "<Error><Code>TooManyRequests</Code></Error>"},
                         {200, ""}});
  auto s3 = S3Client::Open(server.Options());
  REQUIRE(s3.ok());
  CHECK((*s3)->Put("k", "v").ok());
  CHECK(server.requests() == 3);
}

TEST_CASE("500s past the attempts are Unavailable with S3's code and message") {
  ScriptedServer server({{500, kInternalError}});
  S3Options options = server.Options();
  options.max_attempts = 3;
  auto s3 = S3Client::Open(options);
  REQUIRE(s3.ok());
  auto got = (*s3)->Get("k");
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().IsUnavailable());
  CHECK(got.status().reason() == "InternalError");
  CHECK(got.status().message().find("try again") != std::string::npos);
  CHECK(server.requests() == 3);
}

TEST_CASE("a 4xx other than 429 is not retried") {
  ScriptedServer server({{400, "<Error><Code>InvalidArgument</Code><Message>bad</Message></Error>"}});
  auto s3 = S3Client::Open(server.Options());
  REQUIRE(s3.ok());
  auto got = (*s3)->Get("k");
  REQUIRE_FALSE(got.ok());
  CHECK(got.status().IsInvalidArgument());
  CHECK(got.status().reason() == "InvalidArgument");
  CHECK(server.requests() == 1);
}

TEST_CASE("a request that times out is retried") {
  ScriptedServer server({{200, "late", 700}, {200, "on time"}});
  S3Options options = server.Options();
  options.request_timeout_ms = 200;
  auto s3 = S3Client::Open(options);
  REQUIRE(s3.ok());
  auto got = (*s3)->Get("k");
  REQUIRE(got.ok());
  CHECK(*got == "on time");
  CHECK(server.requests() == 2);
}

TEST_CASE("requests one after another reuse one connection") {
  ScriptedServer server({{200, "payload"}}, /*keep_alive=*/100);
  auto s3 = S3Client::Open(server.Options());
  REQUIRE(s3.ok());
  for (int i = 0; i < 5; ++i) CHECK((*s3)->Get("k").ok());
  CHECK((*s3)->Put("k", "v").ok());
  CHECK(server.requests() == 6);
  CHECK(server.connections() == 1);
}

TEST_CASE("a kept connection the server closed is replaced, not failed on") {
  int port = 0;
  auto s3 = [&] {
    ScriptedServer first({{200, "first"}}, /*keep_alive=*/100);
    port = first.port();
    S3Options options = first.Options();
    options.max_attempts = 1;  // a request on the dead connection would fail outright
    auto opened = S3Client::Open(options);
    REQUIRE(opened.ok());
    CHECK(*(*opened)->Get("k") == "first");  // its connection is kept idle
    return std::move(*opened);
  }();  // the server is gone, and the kept connection with it
  ScriptedServer second({{200, "second"}}, /*keep_alive=*/100, port);
  auto got = s3->Get("k");
  REQUIRE(got.ok());
  CHECK(*got == "second");
}

TEST_CASE("a port where nothing listens is Unavailable, reason transport_error") {
  S3Options options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(FreeTcpPort());
  options.bucket = "b";
  options.access_key_id = "id";
  options.secret_access_key = "secret";
  options.max_attempts = 2;
  options.retry_base_ms = 1;
  auto s3 = S3Client::Open(options);
  REQUIRE(s3.ok());
  auto head = (*s3)->Head("k");
  REQUIRE_FALSE(head.ok());
  CHECK(head.status().IsUnavailable());
  CHECK(head.status().reason() == "transport_error");
}

TEST_CASE("options are validated with the field named") {
  S3Options options;
  options.endpoint = "https://s3.amazonaws.com";
  options.bucket = "b";
  options.access_key_id = "id";
  options.secret_access_key = "secret";
  CHECK(ValidateS3Options(options).message().find("object_storage.endpoint") != std::string::npos);
  options.endpoint = "http://127.0.0.1:9000/";
  CHECK(ValidateS3Options(options).ok());
  options.endpoint = "http://127.0.0.1:99999";
  CHECK(ValidateS3Options(options).IsInvalidArgument());
  options.endpoint = "http://h:9000";
  options.bucket = "";
  CHECK(ValidateS3Options(options).message().find("object_storage.bucket") != std::string::npos);
  options.bucket = "b";
  options.secret_access_key = "";
  CHECK(ValidateS3Options(options).message().find("secret_access_key") != std::string::npos);
  CHECK_FALSE(S3Client::Open(options).ok());
}

}  // namespace
}  // namespace branchdb::objstore
