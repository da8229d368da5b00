// Internal: HTTP transport of the SDK. Sends one logical request with
// retries, bearer tokens (fetched, cached, refreshed) and error mapping.
// The only file besides transport.cc that knows cpp-httplib exists is
// transport.cc itself; this header does not include it.
//
// Thread-safety: Transport is safe to use from many threads (a pool of
// connections per origin; the token cache is guarded by a mutex).
#ifndef BRANCHDB_SDK_CPP_SRC_TRANSPORT_H_
#define BRANCHDB_SDK_CPP_SRC_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "branchdb/client.h"

namespace branchdb::client::internal {

// An upload body read by offset, so a retry can send it again from the start.
struct BodySource {
  uint64_t size = 0;
  // Fills buf with up to len bytes at offset; returns bytes read, or -1 on a
  // local read error (the message in *error).
  std::function<int64_t(uint64_t offset, char* buf, size_t len, std::string* error)> read;
};

struct HttpRequest {
  std::string method;  // GET, POST, PATCH, DELETE
  std::string path;    // encoded path and query, relative to the base URL
  std::string body;
  std::string content_type;  // for a body (or source)
  std::optional<BodySource> source;  // a streamed body instead of `body`
  bool authenticate = true;
  bool retry = false;  // idempotent: may be sent again
  std::optional<std::string> idempotency_key;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  // Streaming download: 2xx bodies go to sink instead of RawResponse::body.
  DataSinkCallback sink;
  // Called before a retry of a streaming download; false forbids the retry
  // (bytes already delivered that cannot be taken back).
  std::function<bool()> before_retry;
  ProgressCallback download_progress;
  ProgressCallback upload_progress;
};

// scheme://host[:port] and an optional path prefix.
struct Origin {
  std::string scheme_host_port;
  std::string prefix;  // "" or "/something" (no trailing slash)
};
// Parses an http(s) URL; kInvalidArgument when it is not one.
Result<Origin> ParseUrl(const std::string& url);

class ConnectionPool;

class Transport {
 public:
  // REQUIRES: options validated (Client::Create).
  Transport(ClientOptions options, Origin api, Origin token);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  const ClientOptions& options() const { return options_; }
  bool has_client_credentials() const { return !options_.client_id.empty(); }

  // Sends the request (retries per the request's flags, one token refresh
  // after a 401). Any HTTP status is returned; only failures to get an
  // answer (network, cancelled, local I/O, no token) are errors.
  Result<RawResponse> Send(const HttpRequest& request);

  // The token requests carry now (fetching/refreshing when due).
  Result<std::string> Token();
  // Drops `token` from the cache if it is the current one.
  void Invalidate(const std::string& token);
  int64_t tokens_fetched() const;

  // A form POST to an OAuth endpoint of the API origin (revoke, introspect),
  // the client authenticated with HTTP Basic. Retried (these change nothing durable twice).
  Result<RawResponse> OAuthPost(const std::string& endpoint_path,
                                std::vector<std::pair<std::string, std::string>> fields);

 private:
  Result<RawResponse> SendWithRetries(ConnectionPool& pool, const Origin& origin,
                                      const HttpRequest& request, const std::string& bearer);
  Result<RawResponse> SendOnce(ConnectionPool& pool, const Origin& origin,
                               const HttpRequest& request, const std::string& bearer);
  Result<std::string> FetchTokenLocked();
  std::string BasicAuth() const;
  std::chrono::steady_clock::time_point Now() const;

  // Constant after construction.
  const ClientOptions options_;
  const Origin api_origin_;
  const Origin token_origin_;
  std::string token_path_;
  std::unique_ptr<ConnectionPool> api_pool_;
  std::unique_ptr<ConnectionPool> token_pool_;

  // Token cache. Held while a token is fetched, so concurrent callers wait
  // for one fetch instead of each fetching.
  mutable std::mutex token_mu_;
  std::string token_;                                   // guarded by token_mu_
  std::chrono::steady_clock::time_point refresh_at_{};  // guarded by token_mu_
  int64_t tokens_fetched_ = 0;                          // guarded by token_mu_
};

// The API error of a non-2xx answer: {"error":{code,message,details}} or
// OAuth's {"error","error_description"}; codes "http_<status>" when the
// body has neither.
Error ApiErrorFrom(const RawResponse& response, const std::string& request);

// "POST /v1/projects": method and path without the query, for messages.
std::string Describe(const HttpRequest& request);

// Percent-encodes a query component (same rules as a path segment).
std::string EncodeQuery(const std::string& s);

}  // namespace branchdb::client::internal

#endif  // BRANCHDB_SDK_CPP_SRC_TRANSPORT_H_
