// Error, Result<T> and Status: how the branchdb C++ SDK reports failures.
// No exception crosses the SDK's API: every call returns a Result<T> (a value
// or an Error) or a Status (= Result<void>).
//
// An Error has a kind that separates the three families a caller handles
// differently:
//   kNetwork            no HTTP answer at all (could not connect, timeout, TLS,
//                       connection reset, malformed response). The request may
//                       or may not have been applied; calls the SDK considers
//                       safe were already retried.
//   kApi                the server answered with an HTTP error status: see
//                       http_status(), code() ("branch_not_found"), message(),
//                       details() (the API's {"error":{code,message,details}};
//                       OAuth's {"error","error_description"} maps onto the same).
//   kInvalidArgument    the SDK refused the call before sending anything
//                       (e.g. two rollback targets, an empty branch name).
// and three rarer ones: kUnexpectedResponse (a success status with a body of
// another shape), kIo (a local file of export/import could not be read or
// written) and kCancelled (a progress callback returned false).
//
// Thread-safety: immutable values; safe to copy and share.
#ifndef BRANCHDB_SDK_CPP_INCLUDE_BRANCHDB_ERROR_H_
#define BRANCHDB_SDK_CPP_INCLUDE_BRANCHDB_ERROR_H_

#include <cassert>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

namespace branchdb::client {

enum class ErrorKind {
  kNetwork,
  kApi,
  kInvalidArgument,
  kUnexpectedResponse,
  kIo,
  kCancelled,
};

// "network", "api", "invalid_argument", "unexpected_response", "io", "cancelled".
const char* ErrorKindName(ErrorKind kind);

// What went wrong on the wire, for kNetwork errors (kNone otherwise).
enum class NetworkReason {
  kNone,
  kConnect,  // could not connect (refused, unreachable, DNS)
  kTimeout,  // connect, read or write timed out
  kTls,      // TLS handshake or certificate verification failed
  kIo,       // the connection broke while sending or receiving
  kOther,    // anything else (malformed response, ...)
};

class Error {
 public:
  Error() = default;  // an empty kInvalidArgument error; use the factories

  static Error Network(NetworkReason reason, std::string message);
  static Error InvalidArgument(std::string message);
  static Error UnexpectedResponse(int http_status, std::string message);
  static Error Io(std::string message);
  static Error Cancelled(std::string message);
  // An API error: HTTP status, machine code, message, details (an object; {} if none).
  static Error Api(int http_status, std::string code, std::string message,
                   nlohmann::json details = nlohmann::json::object());

  ErrorKind kind() const { return kind_; }
  NetworkReason network_reason() const { return network_reason_; }
  // The HTTP status for kApi (and kUnexpectedResponse); 0 otherwise.
  int http_status() const { return http_status_; }
  // The API's machine-readable reason ("branch_not_found", "invalid_token",
  // "invalid_client", ...); for other kinds a fixed code: "network_error",
  // "invalid_argument", "unexpected_response", "io_error", "cancelled".
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  // Extra structured facts for kApi (e.g. {"statement":2}); {} when none.
  const nlohmann::json& details() const { return details_; }
  // The server's X-Request-Id of the failing request, if it sent one.
  const std::string& request_id() const { return request_id_; }
  // "POST /v1/projects/shop/branches" (without query), when known.
  const std::string& request() const { return request_; }
  // How many times the request was sent (1 + retries); 0 if never sent.
  int attempts() const { return attempts_; }
  // The Retry-After header of a 429/503 answer, if any.
  std::optional<std::chrono::seconds> retry_after() const { return retry_after_; }

  bool IsNetwork() const { return kind_ == ErrorKind::kNetwork; }
  bool IsApi() const { return kind_ == ErrorKind::kApi; }
  bool IsInvalidArgument() const { return kind_ == ErrorKind::kInvalidArgument; }
  bool IsTimeout() const { return network_reason_ == NetworkReason::kTimeout; }
  // API errors by HTTP status:
  bool IsBadRequest() const { return IsStatus(400); }
  bool IsUnauthenticated() const { return IsStatus(401); }
  bool IsPermissionDenied() const { return IsStatus(403); }
  bool IsNotFound() const { return IsStatus(404); }
  bool IsStatementTimeout() const { return IsStatus(408); }
  bool IsConflict() const { return IsStatus(409); }  // incl. already exists, protected
  bool IsPayloadTooLarge() const { return IsStatus(413); }
  bool IsIdempotencyKeyReused() const { return IsStatus(422); }
  bool IsRateLimited() const { return IsStatus(429); }
  bool IsServerError() const { return IsApi() && http_status_ >= 500; }
  bool IsUnavailable() const { return IsStatus(503); }

  // "api 404 branch_not_found: no branch dev/alex in project shop (GET /v1/...)".
  std::string ToString() const;

  // Setters the SDK uses while building an error (callers rarely need them).
  Error& WithRequestId(std::string id) { request_id_ = std::move(id); return *this; }
  Error& WithRequest(std::string what) { request_ = std::move(what); return *this; }
  Error& WithAttempts(int n) { attempts_ = n; return *this; }
  Error& WithRetryAfter(std::optional<std::chrono::seconds> s) { retry_after_ = s; return *this; }

 private:
  Error(ErrorKind kind, int http_status, std::string code, std::string message)
      : kind_(kind), http_status_(http_status), code_(std::move(code)),
        message_(std::move(message)) {}
  bool IsStatus(int s) const { return kind_ == ErrorKind::kApi && http_status_ == s; }

  ErrorKind kind_ = ErrorKind::kInvalidArgument;
  NetworkReason network_reason_ = NetworkReason::kNone;
  int http_status_ = 0;
  std::string code_;
  std::string message_;
  nlohmann::json details_ = nlohmann::json::object();
  std::string request_id_;
  std::string request_;
  int attempts_ = 0;
  std::optional<std::chrono::seconds> retry_after_;
};

// A value or an Error. Access value() only when ok() (asserted).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // REQUIRES: !ok().
  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit

  static Result OK() { return Result(); }
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  // REQUIRES: !ok().
  const Error& error() const { assert(!ok()); return *error_; }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace branchdb::client

#endif  // BRANCHDB_SDK_CPP_INCLUDE_BRANCHDB_ERROR_H_
