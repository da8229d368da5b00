// Internal: the SDK's HTTP transport over cpp-httplib (transport.h).
#include "transport.h"

#include <httplib.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <thread>

namespace branchdb::client::internal {

namespace {

constexpr size_t kMaxIdleConnections = 8;
constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxErrorBody = 1 << 20;

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

NetworkReason ReasonOf(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
    case httplib::Error::BindIPAddress:
      return NetworkReason::kConnect;
    case httplib::Error::ConnectionTimeout:
      return NetworkReason::kTimeout;
    case httplib::Error::Read:
    case httplib::Error::Write:
      return NetworkReason::kIo;
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLLoadingCerts:
    case httplib::Error::SSLServerVerification:
      return NetworkReason::kTls;
    default:
      return NetworkReason::kOther;
  }
}

// What went wrong, in words (httplib::to_string names the enum: "Connection").
std::string ErrorText(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "could not connect (connection refused, host unreachable or unknown)";
    case httplib::Error::BindIPAddress:
      return "could not bind the local address";
    case httplib::Error::ConnectionTimeout:
      return "the connection timed out";
    case httplib::Error::Read:
      return "the connection broke while reading the answer";
    case httplib::Error::Write:
      return "the connection broke while sending the request";
    case httplib::Error::SSLConnection:
      return "the TLS handshake failed";
    case httplib::Error::SSLLoadingCerts:
      return "the CA certificates could not be loaded";
    case httplib::Error::SSLServerVerification:
      return "the server's TLS certificate did not verify";
    default:
      return "HTTP client error (" + httplib::to_string(e) + ")";
  }
}

// Retry-After in seconds (the HTTP-date form is not used by branchdb).
std::optional<std::chrono::seconds> RetryAfter(const RawResponse& r) {
  std::string v = r.Header("retry-after");
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::chrono::seconds(std::stoll(v));
}

// Answers that mean "not applied; the same request may succeed later": the
// server does not remember them under an Idempotency-Key (docs/api.md).
// A quota refusal (429 quota_exceeded) is not retried: it lasts until the
// quota is raised or usage drops.
bool RetryableStatus(const RawResponse& r) {
  if (r.status >= 500) return true;
  if (r.status != 409 && r.status != 429) return false;
  Json body = Json::parse(r.body, nullptr, false);
  const bool has_code =
      body.is_object() && body.contains("error") && body["error"].is_object() &&
      body["error"]["code"].is_string();
  if (r.status == 429) return !has_code || body["error"]["code"] != "quota_exceeded";
  if (!has_code) return false;
  const Json& code = body["error"]["code"];
  return code == "idempotency_key_in_use" || code == "head_moved";
}

double Jitter() {
  static thread_local std::mt19937 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.5, 1.0)(rng);
}

// The request's method, path and headers (not its body).
httplib::Request NewRequest(const Origin& origin, const HttpRequest& request,
                            const std::string& bearer, const std::string& user_agent) {
  httplib::Request req;
  req.method = request.method;
  req.path = origin.prefix + request.path;
  req.headers.emplace("Accept", "application/json");
  req.headers.emplace("User-Agent", user_agent.empty() ? std::string("branchdb-cpp/") + Version()
                                                       : user_agent);
  if (!bearer.empty()) req.headers.emplace("Authorization", "Bearer " + bearer);
  if (request.idempotency_key) req.headers.emplace("Idempotency-Key", *request.idempotency_key);
  for (const auto& [k, v] : request.headers) req.headers.emplace(k, v);
  return req;
}

}  // namespace

std::string EncodeQuery(const std::string& s) { return EncodePathSegment(s); }

std::string Describe(const HttpRequest& r) { return r.method + " " + r.path.substr(0, r.path.find('?')); }

Result<Origin> ParseUrl(const std::string& url) {
  std::string rest;
  std::string scheme;
  if (url.rfind("http://", 0) == 0) {
    scheme = "http";
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    scheme = "https";
    rest = url.substr(8);
  } else {
    return Error::InvalidArgument("url: expected http://HOST[:PORT] or https://HOST[:PORT], got \"" +
                                  url + "\"");
  }
  size_t slash = rest.find('/');
  std::string host_port = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (host_port.empty() || host_port.front() == ':' || host_port.find('@') != std::string::npos ||
      prefix.find_first_of("?#") != std::string::npos) {
    return Error::InvalidArgument("url: no host or a malformed URL: \"" + url + "\"");
  }
  return Origin{scheme + "://" + host_port, prefix};
}

Error ApiErrorFrom(const RawResponse& response, const std::string& request) {
  std::string code, message;
  Json details = Json::object();
  Json body = Json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("error")) {
    const Json& err = body["error"];
    if (err.is_object()) {
      if (err.contains("code") && err["code"].is_string()) code = err["code"];
      if (err.contains("message") && err["message"].is_string()) message = err["message"];
      if (err.contains("details") && err["details"].is_object()) details = err["details"];
    } else if (err.is_string()) {  // OAuth, RFC 6749 section 5.2
      code = err.get<std::string>();
      if (body.contains("error_description") && body["error_description"].is_string()) {
        message = body["error_description"];
      }
      for (auto it = body.begin(); it != body.end(); ++it) {
        if (it.key() != "error" && it.key() != "error_description") details[it.key()] = it.value();
      }
    }
  }
  if (code.empty()) code = "http_" + std::to_string(response.status);
  if (message.empty()) {
    message = response.body.substr(0, 200);
    if (message.empty()) message = "HTTP " + std::to_string(response.status);
  }
  Error e = Error::Api(response.status, std::move(code), std::move(message), std::move(details));
  e.WithRequestId(response.Header("x-request-id"))
      .WithRequest(request)
      .WithAttempts(response.attempts)
      .WithRetryAfter(RetryAfter(response));
  return e;
}

// Idle connections to one origin, reused with keep-alive. httplib::Client is
// not safe for concurrent requests: each request takes one out of the pool.
class ConnectionPool {
 public:
  ConnectionPool(const ClientOptions& options, std::string origin)
      : options_(options), origin_(std::move(origin)) {}

  std::unique_ptr<httplib::Client> Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<httplib::Client>(origin_);
    auto us = [](std::chrono::milliseconds ms) {
      return std::pair<time_t, time_t>(static_cast<time_t>(ms.count() / 1000),
                                       static_cast<time_t>((ms.count() % 1000) * 1000));
    };
    auto [cs, cus] = us(options_.connect_timeout);
    auto [is, ius] = us(options_.io_timeout);
    c->set_connection_timeout(cs, cus);
    c->set_read_timeout(is, ius);
    c->set_write_timeout(is, ius);
    c->set_keep_alive(true);
    c->set_follow_location(false);
    c->enable_server_certificate_verification(options_.verify_tls);
    if (!options_.ca_cert_file.empty()) c->set_ca_cert_path(options_.ca_cert_file);
    return c;
  }

  void Release(std::unique_ptr<httplib::Client> c) {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
  }

 private:
  const ClientOptions& options_;
  const std::string origin_;
  std::mutex mu_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;  // guarded by mu_
};

Transport::Transport(ClientOptions options, Origin api, Origin token)
    : options_(std::move(options)), api_origin_(std::move(api)), token_origin_(std::move(token)) {
  token_path_ = token_origin_.prefix.empty() ? "/" : token_origin_.prefix;
  api_pool_ = std::make_unique<ConnectionPool>(options_, api_origin_.scheme_host_port);
  token_pool_ = std::make_unique<ConnectionPool>(options_, token_origin_.scheme_host_port);
}

Transport::~Transport() = default;

std::chrono::steady_clock::time_point Transport::Now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

Result<RawResponse> Transport::SendOnce(ConnectionPool& pool, const Origin& origin,
                                        const HttpRequest& request, const std::string& bearer) {
  httplib::Request req = NewRequest(origin, request, bearer, options_.user_agent);

  bool cancelled = false;
  std::string local_error;
  if (request.source) {
    const BodySource& src = *request.source;
    req.headers.emplace("Content-Type", request.content_type);
    req.content_length_ = static_cast<size_t>(src.size);
    const ProgressCallback& progress = request.upload_progress;
    req.content_provider_ = [&](size_t offset, size_t length, httplib::DataSink& sink) {
      char buf[kChunk];
      int64_t n = src.read(offset, buf, std::min(length, kChunk), &local_error);
      if (n <= 0) {
        if (n == 0 && local_error.empty()) local_error = "the upload source ended early";
        return false;
      }
      if (!sink.write(buf, static_cast<size_t>(n))) return false;
      if (progress && !progress(offset + static_cast<uint64_t>(n), src.size)) {
        cancelled = true;
        return false;
      }
      return true;
    };
  } else if (!request.body.empty() || request.method == "POST" || request.method == "PATCH") {
    req.body = request.body;
    if (!request.body.empty()) req.headers.emplace("Content-Type", request.content_type);
  }

  RawResponse out;
  bool to_sink = false;
  if (request.sink) {
    req.response_handler = [&](const httplib::Response& r) {
      to_sink = r.status >= 200 && r.status < 300;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t len, uint64_t offset, uint64_t total) {
      if (!to_sink) {
        if (out.body.size() < kMaxErrorBody) out.body.append(data, len);
        return true;
      }
      if (!request.sink(data, len)) {
        cancelled = true;
        return false;
      }
      if (request.download_progress && !request.download_progress(offset + len, total)) {
        cancelled = true;
        return false;
      }
      return true;
    };
  }

  auto client = pool.Acquire();
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  bool sent = client->send(req, res, err);
  if (!sent) {
    // The connection's state is unknown: drop it.
    if (cancelled) return Error::Cancelled(Describe(request) + ": cancelled by the caller");
    if (!local_error.empty()) return Error::Io(Describe(request) + ": " + local_error);
    Error e = Error::Network(ReasonOf(err),
                             "no answer from " + origin.scheme_host_port + ": " + ErrorText(err));
    e.WithRequest(Describe(request));
    return e;
  }
  pool.Release(std::move(client));
  out.status = res.status;
  for (const auto& [k, v] : res.headers) out.headers.emplace_back(Lower(k), v);
  if (!request.sink) out.body = std::move(res.body);
  return out;
}

Result<RawResponse> Transport::SendWithRetries(ConnectionPool& pool, const Origin& origin,
                                               const HttpRequest& request,
                                               const std::string& bearer) {
  const RetryOptions& retry = options_.retry;
  for (int attempt = 0;; ++attempt) {
    auto r = SendOnce(pool, origin, request, bearer);
    std::optional<std::chrono::seconds> retry_after;
    bool again = false;
    if (!r.ok()) {
      again = r.error().IsNetwork() &&
              (retry.retry_connect_errors || r.error().network_reason() != NetworkReason::kConnect);
    } else {
      again = RetryableStatus(*r);
      retry_after = RetryAfter(*r);
    }
    if (again && request.retry && attempt < retry.max_retries &&
        (!request.before_retry || request.before_retry())) {
      auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
          retry.initial_backoff * (1LL << std::min(attempt, 20)) * Jitter());
      if (retry_after) delay = std::chrono::duration_cast<std::chrono::milliseconds>(*retry_after);
      std::this_thread::sleep_for(std::min(delay, retry.max_backoff));
      continue;
    }
    if (r.ok()) {
      r->attempts = attempt + 1;
      return r;
    }
    Error e = r.error();
    e.WithAttempts(attempt + 1);
    return e;
  }
}

// RFC 6749 section 2.3.1: id and secret form-encoded, then HTTP Basic. (With
// Basic, bad credentials are a 401, not a 400.)
std::string Transport::BasicAuth() const {
  std::string pair = EncodeQuery(options_.client_id) + ":" + EncodeQuery(options_.client_secret);
  std::string b64 = Blob(pair)["$blob"].get<std::string>();
  return "Basic " + b64;
}

Result<std::string> Transport::FetchTokenLocked() {
  std::string body = "grant_type=client_credentials";
  if (!options_.scope.empty()) body += "&scope=" + EncodeQuery(options_.scope);
  HttpRequest req;
  req.headers.emplace_back("Authorization", BasicAuth());
  req.method = "POST";
  req.path = "";  // the token origin's prefix is the whole path
  req.body = std::move(body);
  req.content_type = "application/x-www-form-urlencoded";
  req.authenticate = false;
  req.retry = true;  // a token creates nothing durable
  auto started = Now();
  auto r = SendWithRetries(*token_pool_, token_origin_, req, "");
  if (!r.ok()) return r.error();
  if (r->status != 200) return ApiErrorFrom(*r, "POST " + token_path_);
  Json j = Json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("access_token") || !j["access_token"].is_string() ||
      !j.contains("expires_in") || !j["expires_in"].is_number_integer()) {
    return Error::UnexpectedResponse(r->status, "the token endpoint's answer has no "
                                                "access_token/expires_in");
  }
  auto lifetime = std::chrono::seconds(std::max<int64_t>(0, j["expires_in"].get<int64_t>()));
  std::chrono::seconds margin = options_.refresh_margin;
  if (margin.count() <= 0) margin = std::min(std::chrono::seconds(60), lifetime / 10);
  margin = std::min(margin, lifetime);
  token_ = j["access_token"].get<std::string>();
  refresh_at_ = started + lifetime - margin;
  ++tokens_fetched_;
  return token_;
}

Result<std::string> Transport::Token() {
  if (!has_client_credentials()) {
    if (options_.token.empty()) return Error::InvalidArgument("no credentials configured");
    return options_.token;
  }
  std::lock_guard<std::mutex> lock(token_mu_);
  if (!token_.empty() && Now() < refresh_at_) return token_;
  return FetchTokenLocked();
}

void Transport::Invalidate(const std::string& token) {
  std::lock_guard<std::mutex> lock(token_mu_);
  if (token_ == token) token_.clear();
}

int64_t Transport::tokens_fetched() const {
  std::lock_guard<std::mutex> lock(token_mu_);
  return tokens_fetched_;
}

Result<RawResponse> Transport::Send(const HttpRequest& request) {
  bool refreshed = false;
  while (true) {
    std::string bearer;
    if (request.authenticate && (has_client_credentials() || !options_.token.empty())) {
      auto t = Token();
      if (!t.ok()) return t.error();
      bearer = *t;
    }
    auto r = SendWithRetries(*api_pool_, api_origin_, request, bearer);
    if (r.ok() && r->status == 401 && !bearer.empty() && has_client_credentials() && !refreshed &&
        (!request.before_retry || request.before_retry())) {
      // Expired early, revoked, or signed with a key that went away: once
      // more with a fresh token.
      Invalidate(bearer);
      refreshed = true;
      continue;
    }
    return r;
  }
}

Result<RawResponse> Transport::OAuthPost(const std::string& endpoint_path,
                                         std::vector<std::pair<std::string, std::string>> fields) {
  std::string body;
  for (const auto& [k, v] : fields) {
    if (!body.empty()) body += '&';
    body += EncodeQuery(k) + "=" + EncodeQuery(v);
  }
  HttpRequest req;
  req.method = "POST";
  req.path = endpoint_path;
  req.body = std::move(body);
  req.content_type = "application/x-www-form-urlencoded";
  req.authenticate = false;
  req.retry = true;
  req.headers.emplace_back("Authorization", BasicAuth());
  return SendWithRetries(*api_pool_, api_origin_, req, "");
}

}  // namespace branchdb::client::internal

namespace branchdb::client {

std::string EncodePathSegment(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (internal::IsUnreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string NewIdempotencyKey() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    std::random_device rd;
    for (auto& x : b) x = static_cast<unsigned char>(rd());
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 15];
  }
  return out;
}

}  // namespace branchdb::client
