#include "server/http/errors.h"

#include <httplib.h>

#include "catalog/catalog.h"

namespace branchdb::server::http {

int HttpStatusFor(const Status& status) {
  const std::string& reason = status.reason();
  if (reason == "statement_timeout") return 408;
  if (reason == "sql_too_long" || reason == "payload_too_large" || reason == "value_too_large" ||
      reason == "branch_size_limit" || reason == "result_too_large") {
    return 413;
  }
  if (reason == "idempotency_key_reused") return 422;
  if (reason == "store_failed") return 503;
  if (reason == "disk_full") return 507;  // Insufficient Storage (RFC 4918)
  switch (status.code()) {
    case StatusCode::kOk: return 200;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kConflict: return 409;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kCorruption: return 500;
    case StatusCode::kIOError: return 500;
    case StatusCode::kUnavailable: return 503;
  }
  return 500;
}

std::string ErrorCodeFor(const Status& status) {
  if (!status.reason().empty()) return status.reason();
  switch (status.code()) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kAlreadyExists: return "already_exists";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kFailedPrecondition: return "failed_precondition";
    case StatusCode::kConflict: return "conflict";
    case StatusCode::kPermissionDenied: return "permission_denied";
    case StatusCode::kUnauthenticated: return "unauthenticated";
    case StatusCode::kResourceExhausted: return "resource_exhausted";
    case StatusCode::kCorruption: return "internal";
    case StatusCode::kIOError: return "internal";
    case StatusCode::kUnavailable: return "unavailable";
  }
  return "internal";
}

nlohmann::json ErrorBody(const Status& status, nlohmann::json details) {
  if (!details.is_object()) details = nlohmann::json::object();
  return {{"error",
           {{"code", ErrorCodeFor(status)}, {"message", status.message()}, {"details", details}}}};
}

nlohmann::json DamagedProjectsJson(const std::vector<catalog::ProjectDamage>& damaged) {
  nlohmann::json out = nlohmann::json::array();
  for (const catalog::ProjectDamage& d : damaged) {
    out.push_back({{"project", d.project},
                   {"serving", d.serving},
                   {"message", d.message},
                   {"segments", d.segments}});
  }
  return out;
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// nlohmann's DOM builder, refusing the numbers it would otherwise throw on
// (one too large for a double, e.g. 1e999999: an exception, not a
// parse_error) or silently change (an integer literal beyond 64 bits, which
// it reads as an approximate double: -9223372036854775809, 2^64).
class StrictJsonSax : public nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
 public:
  using Base = nlohmann::detail::json_sax_dom_parser<nlohmann::json>;
  explicit StrictJsonSax(nlohmann::json& root) : Base(root, /*allow_exceptions=*/false) {}

  bool number_float(double value, const std::string& text) {
    if (text.find_first_of(".eE") == std::string::npos) {
      error_ = "request body: the integer " + text.substr(0, 40) +
               " is out of the 64-bit range (-2^63..2^64-1)";
      return false;
    }
    return Base::number_float(value, text);
  }
  template <class Exception>
  bool parse_error(std::size_t byte, const std::string& token, const Exception& e) {
    if (e.id == 406) {  // out_of_range.406: number overflow
      error_ = "request body: the number " + token.substr(0, 40) + " at byte " +
               std::to_string(byte) + " is too large for a double";
    } else {
      error_ = "request body is not valid JSON at byte " + std::to_string(byte) + ": " + e.what();
    }
    return Base::parse_error(byte, token, e);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

Result<nlohmann::json> ParseJsonObject(std::string_view body, bool allow_empty) {
  bool blank = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (blank) {
    if (allow_empty) return nlohmann::json::object();
    return Status::InvalidArgument("request body: expected a JSON object, got an empty body",
                                   "invalid_json");
  }
  nlohmann::json j;
  StrictJsonSax sax(j);
  if (!nlohmann::json::sax_parse(body, &sax) || sax.is_errored()) {
    return Status::InvalidArgument(sax.error().empty() ? "request body is not valid JSON"
                                                       : sax.error(),
                                   "invalid_json");
  }
  if (!j.is_object()) {
    return Status::InvalidArgument(
        std::string("request body: expected a JSON object, got ") + j.type_name(), "invalid_json");
  }
  return j;
}

void SendJson(httplib::Response& res, int http_status, const nlohmann::json& body) {
  res.status = http_status;
  res.set_content(DumpJson(body), "application/json");
}

void SendError(httplib::Response& res, const Status& status, nlohmann::json details) {
  int code = HttpStatusFor(status);
  if (code == 401) {
    std::string challenge = "Bearer realm=\"branchdb\"";
    if (status.reason() == "invalid_token" || status.reason() == "token_expired") {
      challenge += ", error=\"invalid_token\"";
    }
    res.set_header("WWW-Authenticate", challenge);
  } else if (code == 403 && status.reason() == "insufficient_scope") {
    res.set_header("WWW-Authenticate", "Bearer realm=\"branchdb\", error=\"insufficient_scope\"");
  }
  SendJson(res, code, ErrorBody(status, std::move(details)));
}

}  // namespace branchdb::server::http
