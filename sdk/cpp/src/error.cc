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
  Error e(ErrorKind::kNetwork, 0, "network_error", std::move(message));
  e.network_reason_ = reason;
  return e;
}

Error Error::InvalidArgument(std::string message) {
  return Error(ErrorKind::kInvalidArgument, 0, "invalid_argument", std::move(message));
}

Error Error::UnexpectedResponse(int http_status, std::string message) {
  return Error(ErrorKind::kUnexpectedResponse, http_status, "unexpected_response",
               std::move(message));
}

Error Error::Io(std::string message) {
  return Error(ErrorKind::kIo, 0, "io_error", std::move(message));
}

Error Error::Cancelled(std::string message) {
  return Error(ErrorKind::kCancelled, 0, "cancelled", std::move(message));
}

Error Error::Api(int http_status, std::string code, std::string message, nlohmann::json details) {
  Error e(ErrorKind::kApi, http_status, std::move(code), std::move(message));
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
