// Status and Result<T>: how every module of branchdb reports success or failure
// across its API. No exception crosses a module boundary.
//
// A Status carries a code (what kind of failure, which the server maps to an HTTP
// status), a human-readable message, and an optional machine-readable reason
// ("branch_not_found") that becomes the `code` field of the API's error body.
//
// Thread-safety: immutable values; safe to copy and share.
#ifndef BRANCHDB_BASE_STATUS_H_
#define BRANCHDB_BASE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace branchdb {

enum class StatusCode {
  kOk = 0,
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,
  kFailedPrecondition,
  kConflict,
  kPermissionDenied,
  kUnauthenticated,
  kResourceExhausted,
  kCorruption,
  kIOError,
  kUnavailable,
};

// "NotFound", "IOError", ... for logs and ToString().
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status NotFound(std::string msg, std::string reason = "") {
    return Status(StatusCode::kNotFound, std::move(msg), std::move(reason));
  }
  static Status AlreadyExists(std::string msg, std::string reason = "") {
    return Status(StatusCode::kAlreadyExists, std::move(msg), std::move(reason));
  }
  static Status InvalidArgument(std::string msg, std::string reason = "") {
    return Status(StatusCode::kInvalidArgument, std::move(msg), std::move(reason));
  }
  static Status FailedPrecondition(std::string msg, std::string reason = "") {
    return Status(StatusCode::kFailedPrecondition, std::move(msg), std::move(reason));
  }
  static Status Conflict(std::string msg, std::string reason = "") {
    return Status(StatusCode::kConflict, std::move(msg), std::move(reason));
  }
  static Status PermissionDenied(std::string msg, std::string reason = "") {
    return Status(StatusCode::kPermissionDenied, std::move(msg), std::move(reason));
  }
  static Status Unauthenticated(std::string msg, std::string reason = "") {
    return Status(StatusCode::kUnauthenticated, std::move(msg), std::move(reason));
  }
  static Status ResourceExhausted(std::string msg, std::string reason = "") {
    return Status(StatusCode::kResourceExhausted, std::move(msg), std::move(reason));
  }
  static Status Corruption(std::string msg, std::string reason = "") {
    return Status(StatusCode::kCorruption, std::move(msg), std::move(reason));
  }
  static Status IOError(std::string msg, std::string reason = "") {
    return Status(StatusCode::kIOError, std::move(msg), std::move(reason));
  }
  static Status Unavailable(std::string msg, std::string reason = "") {
    return Status(StatusCode::kUnavailable, std::move(msg), std::move(reason));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Machine-readable reason, e.g. "branch_not_found"; empty when none was given.
  const std::string& reason() const { return reason_; }

  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsAlreadyExists() const { return code_ == StatusCode::kAlreadyExists; }
  bool IsInvalidArgument() const { return code_ == StatusCode::kInvalidArgument; }
  bool IsFailedPrecondition() const { return code_ == StatusCode::kFailedPrecondition; }
  bool IsConflict() const { return code_ == StatusCode::kConflict; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsIOError() const { return code_ == StatusCode::kIOError; }
  bool IsUnavailable() const { return code_ == StatusCode::kUnavailable; }

  // "OK" or "IOError: fdatasync seg-000003.log: Input/output error".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>"; same code and reason.
  Status WithContext(std::string_view prefix) const;

 private:
  Status(StatusCode code, std::string msg, std::string reason)
      : code_(code), message_(std::move(msg)), reason_(std::move(reason)) {}

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string reason_;
};

// Either a value of type T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result constructed from an OK status without a value");
    if (status_.ok()) status_ = Status::Corruption("Result built from OK status without value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok()
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace branchdb

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define BRANCHDB_RETURN_IF_ERROR(expr)           \
  do {                                           \
    ::branchdb::Status _st = (expr);             \
    if (!_st.ok()) return _st;                   \
  } while (0)

#endif  // BRANCHDB_BASE_STATUS_H_
