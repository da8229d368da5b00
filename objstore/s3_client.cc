// The S3 client over cpp-httplib (see s3_client.h for the contract).
#include "objstore/s3_client.h"

#include <httplib.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <random>
#include <vector>

#include "base/mutex.h"
#include "objstore/sigv4.h"

namespace branchdb::objstore {
namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

// ---- a little XML: S3's answers are flat enough for tag lookups ------------

std::string XmlUnescape(std::string_view s) {
  static const std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool replaced = false;
    if (s[i] == '&') {
      for (const auto& [entity, c] : kEntities) {
        if (s.substr(i, entity.size()) == entity) {
          out += c;
          i += entity.size() - 1;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += s[i];
  }
  return out;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// The raw text of each <tag>...</tag> in xml, in order.
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  std::vector<std::string_view> out;
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    const size_t start = pos + open.size();
    const size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(start, end - start));
    pos = end + close.size();
  }
  return out;
}

// The unescaped text of the first <tag> in xml; "" when none.
std::string XmlText(std::string_view xml, std::string_view tag) {
  auto elements = XmlElements(xml, tag);
  return elements.empty() ? std::string() : XmlUnescape(elements.front());
}

std::string StripQuotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

uint64_t ParseU64(std::string_view s) {
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// ---- requests --------------------------------------------------------------

struct Call {
  std::string op;    // "PUT", "GetObject", ... for messages
  std::string method;
  std::string path;  // raw: "/bucket/key"
  Query query;
  std::vector<std::pair<std::string, std::string>> headers;  // extra, signed
  std::string_view body;
};

struct Answer {
  int status = 0;
  std::string body;
  httplib::Headers headers;
};

bool Retryable(int status) { return status >= 500 || status == 429; }

Status ErrorStatus(const Call& call, int status, std::string_view body) {
  std::string code = XmlText(body, "Code");
  std::string message = XmlText(body, "Message");
  if (code.empty()) {
    code = status == 404 ? "NoSuchKey" : status == 412 ? "PreconditionFailed" : "HTTP" + std::to_string(status);
  }
  std::string text = "S3 " + call.op + " " + call.path + ": HTTP " + std::to_string(status) + " " + code;
  if (!message.empty()) text += ": " + message;
  if (status == 404) return Status::NotFound(text, code);
  if (status == 412) return Status::FailedPrecondition(text, code);
  if (status == 409) return Status::Conflict(text, code);
  if (status == 401 || status == 403) return Status::PermissionDenied(text, code);
  if (Retryable(status)) return Status::Unavailable(text, code);
  if (status >= 400 && status < 500) return Status::InvalidArgument(text, code);
  return Status::IOError(text, code);
}

class S3ClientImpl final : public S3Client {
 public:
  S3ClientImpl(S3Options options, std::string host, int port)
      : options_(std::move(options)), host_(std::move(host)), port_(port),
        host_header_(port_ == 80 ? host_ : host_ + ":" + std::to_string(port_)),
        clock_(options_.clock ? options_.clock : Clock::Default()),
        credentials_{options_.access_key_id, options_.secret_access_key, options_.region, "s3"} {}

  Status CreateBucketIfMissing() override {
    Call call{"CreateBucket", "PUT", "/" + options_.bucket, {}, {}, {}};
    auto answer = Send(call);
    if (!answer.ok()) return answer.status();
    if (answer->status == 200) return Status::OK();
    const std::string code = XmlText(answer->body, "Code");
    if (answer->status == 409 && code == "BucketAlreadyOwnedByYou") return Status::OK();
    return ErrorStatus(call, answer->status, answer->body);
  }

  Result<ObjectInfo> Put(std::string_view key, std::string_view data,
                         const PutOptions& put) override {
    if (data.size() >= options_.multipart_threshold_bytes) return PutMultipart(key, data, put);
    Call call{"PutObject", "PUT", ObjectPath(key), {}, {{"content-md5", Md5Base64(data)}}, data};
    if (put.if_none_match) call.headers.emplace_back("if-none-match", "*");
    auto answer = SendExpecting(call, 200);
    if (!answer.ok()) return answer.status();
    return ObjectInfo{std::string(key), data.size(),
                      StripQuotes(answer->headers.count("ETag")
                                      ? answer->headers.find("ETag")->second
                                      : std::string())};
  }

  Result<std::string> Get(std::string_view key) override {
    auto answer = SendExpecting({"GetObject", "GET", ObjectPath(key), {}, {}, {}}, 200);
    if (!answer.ok()) return answer.status();
    return std::move(answer->body);
  }

  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) override {
    if (length == 0) return std::string();
    Call call{"GetObject", "GET", ObjectPath(key), {},
              {{"range", "bytes=" + std::to_string(offset) + "-" +
                             std::to_string(offset + length - 1)}},
              {}};
    auto answer = Send(call);
    if (!answer.ok()) return answer.status();
    if (answer->status != 206 && answer->status != 200) {
      return ErrorStatus(call, answer->status, answer->body);
    }
    // A server that ignores Range answers 200 with the whole object.
    if (answer->status == 200) {
      if (offset >= answer->body.size()) return std::string();
      return answer->body.substr(offset, length);
    }
    return std::move(answer->body);
  }

  Result<ObjectInfo> Head(std::string_view key) override {
    auto answer = SendExpecting({"HeadObject", "HEAD", ObjectPath(key), {}, {}, {}}, 200);
    if (!answer.ok()) return answer.status();
    ObjectInfo info{std::string(key), 0, {}};
    if (auto it = answer->headers.find("Content-Length"); it != answer->headers.end()) {
      info.size = ParseU64(it->second);
    }
    if (auto it = answer->headers.find("ETag"); it != answer->headers.end()) {
      info.etag = StripQuotes(it->second);
    }
    return info;
  }

  Status Delete(std::string_view key) override {
    Call call{"DeleteObject", "DELETE", ObjectPath(key), {}, {}, {}};
    auto answer = Send(call);
    if (!answer.ok()) return answer.status();
    if (answer->status == 204 || answer->status == 200 || answer->status == 404) {
      return Status::OK();
    }
    return ErrorStatus(call, answer->status, answer->body);
  }

  Result<ListPage> List(std::string_view prefix, std::string_view continuation_token,
                        int max_keys) override {
    Call call{"ListObjectsV2", "GET", "/" + options_.bucket,
              {{"list-type", "2"}, {"prefix", std::string(prefix)},
               {"max-keys", std::to_string(max_keys)}},
              {}, {}};
    if (!continuation_token.empty()) {
      call.query.emplace_back("continuation-token", std::string(continuation_token));
    }
    auto answer = SendExpecting(call, 200);
    if (!answer.ok()) return answer.status();
    ListPage page;
    for (std::string_view contents : XmlElements(answer->body, "Contents")) {
      page.objects.push_back({XmlText(contents, "Key"), ParseU64(XmlText(contents, "Size")),
                              StripQuotes(XmlText(contents, "ETag"))});
    }
    if (XmlText(answer->body, "IsTruncated") == "true") {
      page.next_continuation_token = XmlText(answer->body, "NextContinuationToken");
      if (page.next_continuation_token.empty()) {
        return Status::IOError("S3 ListObjectsV2 " + call.path +
                               ": truncated listing without NextContinuationToken");
      }
    }
    return page;
  }

 private:
  std::string ObjectPath(std::string_view key) const {
    return "/" + options_.bucket + "/" + std::string(key);
  }

  Result<ObjectInfo> PutMultipart(std::string_view key, std::string_view data,
                                  const PutOptions& put) {
    const std::string path = ObjectPath(key);
    if (put.if_none_match) {
      // Not atomic with the upload: RGW 16 ignores If-None-Match on Complete.
      auto head = Head(key);
      if (head.ok()) {
        return Status::FailedPrecondition("S3 PutObject " + path + ": the object exists",
                                          "PreconditionFailed");
      }
      if (!head.status().IsNotFound()) return head.status();
    }
    auto started = SendExpecting(
        {"CreateMultipartUpload", "POST", path, {{"uploads", ""}}, {}, {}}, 200);
    if (!started.ok()) return started.status();
    const std::string upload_id = XmlText(started->body, "UploadId");
    if (upload_id.empty()) {
      return Status::IOError("S3 CreateMultipartUpload " + path + ": no UploadId in the answer");
    }
    std::string complete = "<CompleteMultipartUpload>";
    Status status;
    int part = 0;
    for (uint64_t offset = 0; offset < data.size(); offset += options_.part_bytes) {
      ++part;
      const std::string_view chunk = data.substr(offset, options_.part_bytes);
      auto answer = SendExpecting({"UploadPart", "PUT", path,
                                   {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}},
                                   {{"content-md5", Md5Base64(chunk)}}, chunk},
                                  200);
      if (!answer.ok()) {
        status = answer.status();
        break;
      }
      auto etag = answer->headers.find("ETag");
      const std::string tag =
          StripQuotes(etag == answer->headers.end() ? Md5Hex(chunk) : etag->second);
      complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>\"" +
                  XmlEscape(tag) + "\"</ETag></Part>";
    }
    complete += "</CompleteMultipartUpload>";
    if (status.ok()) {
      Call call{"CompleteMultipartUpload", "POST", path, {{"uploadId", upload_id}}, {}, complete};
      auto answer = SendExpecting(call, 200);
      if (!answer.ok()) {
        status = answer.status();
      } else if (answer->body.find("<Error>") != std::string::npos) {
        // S3 may answer 200 and report the failure in the body.
        status = ErrorStatus(call, 500, answer->body);
      }
    }
    if (!status.ok()) {
      (void)Send({"AbortMultipartUpload", "DELETE", path, {{"uploadId", upload_id}}, {}, {}});
      return status;
    }
    // RGW 16 answers Complete with an empty ETag: read it back.
    return Head(key);
  }

  Result<Answer> SendExpecting(const Call& call, int expected) {
    auto answer = Send(call);
    if (!answer.ok()) return answer.status();
    if (answer->status != expected) return ErrorStatus(call, answer->status, answer->body);
    return answer;
  }

  // One request, retried on transport failures, 5xx and 429. Returns the last
  // answer (any status) or, when no attempt got one, Unavailable.
  Result<Answer> Send(const Call& call) {
    Status last;
    for (int attempt = 0; attempt < std::max(1, options_.max_attempts); ++attempt) {
      if (attempt > 0) clock_->SleepForMicros(BackoffMicros(attempt - 1));
      auto answer = SendOnce(call);
      if (!answer.ok()) {
        last = answer.status();
        continue;
      }
      if (Retryable(answer->status) && attempt + 1 < options_.max_attempts) {
        last = ErrorStatus(call, answer->status, answer->body);
        continue;
      }
      return answer;
    }
    return last.WithContext("after " + std::to_string(options_.max_attempts) + " attempts");
  }

  int64_t BackoffMicros(int retry) {
    const int64_t cap = std::min<int64_t>(options_.retry_max_ms,
                                          options_.retry_base_ms << std::min(retry, 20));
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(cap, 0))(rng) * 1000;
  }

  Result<Answer> SendOnce(const Call& call) {
    SigV4Request sig;
    sig.method = call.method;
    sig.path = call.path;
    sig.query = call.query;
    sig.payload_hash = std::string(kUnsignedPayload);
    const std::string amz_date = AmzDate(clock_->NowMicros());
    sig.headers = {{"host", host_header_},
                   {"x-amz-content-sha256", sig.payload_hash},
                   {"x-amz-date", amz_date}};
    for (const auto& h : call.headers) sig.headers.push_back(h);

    httplib::Request req;
    req.method = call.method;
    const std::string query = CanonicalQuery(call.query);
    req.path = CanonicalUri(call.path) + (query.empty() ? "" : "?" + query);
    for (const auto& [name, value] : sig.headers) req.headers.emplace(name, value);
    req.headers.emplace("Authorization", Authorization(sig, credentials_, amz_date));
    // RGW refuses a body without a length (411): always send one.
    if (call.method == "PUT" || call.method == "POST") {
      req.headers.emplace("Content-Length", std::to_string(call.body.size()));
      req.body.assign(call.body.data(), call.body.size());
    }

    std::unique_ptr<httplib::Client> client = TakeConnection();
    auto res = client->send(req);
    if (!res) {
      return Status::Unavailable("S3 " + call.op + " " + call.path + ": " +
                                     httplib::to_string(res.error()) + " (" + host_header_ + ")",
                                 "transport_error");
    }
    ReturnConnection(std::move(client));
    return Answer{res->status, std::move(res->body), std::move(res->headers)};
  }

  // A kept-alive connection to the endpoint: an idle one (httplib checks
  // that its socket is still open before reusing it, and reconnects), or a
  // new one. One request at a time each.
  std::unique_ptr<httplib::Client> TakeConnection() {
    {
      MutexLock l(pool_mu_);
      if (!idle_.empty()) {
        std::unique_ptr<httplib::Client> client = std::move(idle_.back());
        idle_.pop_back();
        return client;
      }
    }
    auto client = std::make_unique<httplib::Client>(host_, port_);
    client->set_url_encode(false);
    client->set_keep_alive(true);
    // A request's headers and body go out in separate writes: with Nagle on a
    // kept connection, the body waits for the ACK of the headers, which the
    // server delays (40 ms a PUT, measured: remote commits 5x slower).
    client->set_tcp_nodelay(true);
    client->set_connection_timeout(options_.connect_timeout_ms / 1000,
                                   (options_.connect_timeout_ms % 1000) * 1000);
    client->set_read_timeout(options_.request_timeout_ms / 1000,
                             (options_.request_timeout_ms % 1000) * 1000);
    client->set_write_timeout(options_.request_timeout_ms / 1000,
                              (options_.request_timeout_ms % 1000) * 1000);
    return client;
  }

  // After a whole answer: kept for the next request (at most
  // kIdleConnections; a connection that failed is dropped instead).
  void ReturnConnection(std::unique_ptr<httplib::Client> client) {
    MutexLock l(pool_mu_);
    if (idle_.size() < kIdleConnections) idle_.push_back(std::move(client));
  }

  static constexpr size_t kIdleConnections = 8;

  const S3Options options_;
  const std::string host_;
  const int port_;
  const std::string host_header_;
  Clock* const clock_;
  const SigV4Credentials credentials_;
  Mutex pool_mu_;  // a leaf
  std::vector<std::unique_ptr<httplib::Client>> idle_ GUARDED_BY(pool_mu_);
};

// "http://host[:port]" -> host, port; false when it is not of that form.
bool ParseEndpoint(std::string_view endpoint, std::string* host, int* port) {
  constexpr std::string_view kScheme = "http://";
  if (endpoint.substr(0, kScheme.size()) != kScheme) return false;
  std::string_view rest = endpoint.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos) return false;
  *port = 80;
  const size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos) {
    std::string_view p = rest.substr(colon + 1);
    int value = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (ec != std::errc() || end != p.data() + p.size() || value <= 0 || value > 65535) {
      return false;
    }
    *port = value;
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return false;
  *host = std::string(rest);
  return true;
}

}  // namespace

std::string ExpectedETag(std::string_view data, const S3Options& options) {
  if (data.size() < options.multipart_threshold_bytes) return Md5Hex(data);
  std::string digests;
  int parts = 0;
  for (uint64_t offset = 0; offset < data.size(); offset += options.part_bytes, ++parts) {
    const std::string hex = Md5Hex(data.substr(offset, options.part_bytes));
    for (size_t i = 0; i < hex.size(); i += 2) {
      digests += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
  }
  return Md5Hex(digests) + "-" + std::to_string(parts);
}

Status ValidateS3Options(const S3Options& options) {
  std::string host;
  int port = 0;
  if (!ParseEndpoint(options.endpoint, &host, &port)) {
    return Status::InvalidArgument(
        "object_storage.endpoint must be http://HOST[:PORT] (got '" + options.endpoint +
        "'); https is not supported yet: put a TLS proxy on localhost in front of it");
  }
  if (options.bucket.empty()) return Status::InvalidArgument("object_storage.bucket is required");
  if (options.region.empty()) return Status::InvalidArgument("object_storage.region is empty");
  if (options.access_key_id.empty() || options.secret_access_key.empty()) {
    return Status::InvalidArgument(
        "object_storage.access_key_id and object_storage.secret_access_key are required");
  }
  if (options.part_bytes == 0) return Status::InvalidArgument("S3 part size must be > 0");
  if (options.max_attempts < 1) return Status::InvalidArgument("S3 max_attempts must be >= 1");
  return Status::OK();
}

Result<std::unique_ptr<S3Client>> S3Client::Open(S3Options options) {
  if (Status s = ValidateS3Options(options); !s.ok()) return s;
  std::string host;
  int port = 0;
  ParseEndpoint(options.endpoint, &host, &port);
  return std::unique_ptr<S3Client>(new S3ClientImpl(std::move(options), std::move(host), port));
}

Result<std::vector<ObjectInfo>> S3Client::ListAll(std::string_view prefix) {
  std::vector<ObjectInfo> all;
  std::string token;
  do {
    auto page = List(prefix, token);
    if (!page.ok()) return page.status();
    for (auto& o : page->objects) all.push_back(std::move(o));
    token = std::move(page->next_continuation_token);
  } while (!token.empty());
  return all;
}

}  // namespace branchdb::objstore
