// Error construction and formatting (error.h).
#include "branchdb/error.h"

namespace branchdb::client {

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNetwork: return "network";
    case ErrorKind::kApi: return "api";
    case ErrorKind::kInvalidArgument: return "invalid_argument";
    case ErrorKind::kUnexpectedResponse: return "unexpected_response";
    case ErrorKind::kIo: return "io";
    case ErrorKind::kCancelled: return "cancelled";
  }
  return "unknown";
}

namespace {
const char* ReasonName(NetworkReason r) {
  switch (r) {
    case NetworkReason::kNone: return "";
    case NetworkReason::kConnect: return "connect";
    case NetworkReason::kTimeout: return "timeout";
    case NetworkReason::kTls: return "tls";
    case NetworkReason::kIo: return "io";
    case NetworkReason::kOther: return "other";
  }
  return "";
}
}  // namespace

Error Error::Network(NetworkReason reason, std::string message) {
  Error e;
  e.kind_ = ErrorKind::kNetwork;
  e.network_reason_ = reason;
  e.code_ = "network_error";
  e.message_ = std::move(message);
  return e;
}

Error Error::InvalidArgument(std::string message) {
  Error e;
  e.kind_ = ErrorKind::kInvalidArgument;
  e.code_ = "invalid_argument";
  e.message_ = std::move(message);
  return e;
}

Error Error::UnexpectedResponse(int http_status, std::string message) {
  Error e;
  e.kind_ = ErrorKind::kUnexpectedResponse;
  e.http_status_ = http_status;
  e.code_ = "unexpected_response";
  e.message_ = std::move(message);
  return e;
}

Error Error::Io(std::string message) {
  Error e;
  e.kind_ = ErrorKind::kIo;
  e.code_ = "io_error";
  e.message_ = std::move(message);
  return e;
}

Error Error::Cancelled(std::string message) {
  Error e;
  e.kind_ = ErrorKind::kCancelled;
  e.code_ = "cancelled";
  e.message_ = std::move(message);
  return e;
}

Error Error::Api(int http_status, std::string code, std::string message, nlohmann::json details) {
  Error e;
  e.kind_ = ErrorKind::kApi;
  e.http_status_ = http_status;
  e.code_ = std::move(code);
  e.message_ = std::move(message);
  e.details_ = details.is_object() ? std::move(details) : nlohmann::json::object();
  return e;
}

std::string Error::ToString() const {
  std::string s = ErrorKindName(kind_);
  if (kind_ == ErrorKind::kNetwork) {
    s += std::string(" (") + ReasonName(network_reason_) + ")";
  }
  if (http_status_ != 0) s += " " + std::to_string(http_status_);
  if (!code_.empty() && kind_ == ErrorKind::kApi) s += " " + code_;
  s += ": " + message_;
  if (!request_.empty()) s += " (" + request_ + ")";
  return s;
}

}  // namespace branchdb::client
