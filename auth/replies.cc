// HTTP-shaped results: bearer challenges (RFC 6750 §3), OAuth error replies
// (RFC 6749 §5.2), form decoding.
#include <cctype>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "auth/auth.h"
#include "auth/internal/replies.h"

namespace branchdb::auth {

using nlohmann::json;

std::string HttpReply::Header(std::string_view name) const {
  auto eq = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(a[i])) !=
          std::tolower(static_cast<unsigned char>(b[i]))) {
        return false;
      }
    }
    return true;
  };
  for (const auto& [k, v] : headers) {
    if (eq(k, name)) return v;
  }
  return "";
}

std::string_view BearerError::ErrorCode() const {
  switch (kind) {
    case Kind::kNoToken: return "";
    case Kind::kInvalidRequest: return "invalid_request";
    case Kind::kInvalidToken: return "invalid_token";
    case Kind::kInsufficientScope: return "insufficient_scope";
  }
  return "invalid_token";
}

int BearerError::HttpStatus() const {
  switch (kind) {
    case Kind::kNoToken: return 401;
    case Kind::kInvalidRequest: return 400;
    case Kind::kInvalidToken: return 401;
    case Kind::kInsufficientScope: return 403;
  }
  return 401;
}

namespace internal {

std::string QuotedSafe(std::string_view s) {
  // RFC 6750 §3: error_description and scope use %x20-21 / %x23-5B / %x5D-7E.
  std::string out;
  for (char c : s) {
    if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') out.push_back(c);
  }
  return out;
}

HttpReply JsonReply(int status, const json& body) {
  HttpReply reply;
  reply.status = status;
  reply.headers = {{"Cache-Control", "no-store"}, {"Pragma", "no-cache"}};
  reply.body = body.dump();
  return reply;
}

HttpReply OAuthErrorReply(OAuthError error, std::string_view description, bool basic_used,
                          std::string_view realm) {
  static constexpr std::string_view kNames[] = {
      "invalid_request",    "invalid_client",         "invalid_grant", "unauthorized_client",
      "unsupported_grant_type", "invalid_scope"};
  int status = 400;
  if (error == OAuthError::kInvalidClient && basic_used) status = 401;
  json body = {{"error", kNames[static_cast<int>(error)]},
               {"error_description", QuotedSafe(description)}};
  HttpReply reply = JsonReply(status, body);
  if (status == 401) {
    reply.headers.emplace_back("WWW-Authenticate",
                               "Basic realm=\"" + QuotedSafe(realm) + "\", charset=\"UTF-8\"");
  }
  return reply;
}

HttpReply RateLimitedReply(int64_t retry_after_seconds) {
  json body = {{"error", "invalid_client"},
               {"error_description", "too many failed client authentications; retry later"}};
  HttpReply reply = JsonReply(429, body);
  reply.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
  return reply;
}

}  // namespace internal

HttpReply BearerErrorReply(const BearerError& error, std::string_view realm) {
  HttpReply reply;
  reply.status = error.HttpStatus();
  std::string challenge = "Bearer realm=\"" + internal::QuotedSafe(realm) + "\"";
  if (error.kind != BearerError::Kind::kNoToken) {
    challenge += ", error=\"" + std::string(error.ErrorCode()) + "\"";
    if (!error.description.empty()) {
      challenge += ", error_description=\"" + internal::QuotedSafe(error.description) + "\"";
    }
    if (error.kind == BearerError::Kind::kInsufficientScope && !error.scope.empty()) {
      challenge += ", scope=\"" + internal::QuotedSafe(error.scope) + "\"";
    }
    json body = {{"error", error.ErrorCode()},
                 {"error_description", internal::QuotedSafe(error.description)}};
    if (!error.scope.empty()) body["scope"] = error.scope;
    reply.body = body.dump();
  }
  reply.headers.emplace_back("WWW-Authenticate", std::move(challenge));
  return reply;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseFormBody(std::string_view body) {
  auto decode = [](std::string_view in, std::string* out) {
    out->clear();
    for (size_t i = 0; i < in.size(); ++i) {
      char c = in[i];
      if (c == '+') {
        out->push_back(' ');
      } else if (c == '%') {
        if (i + 2 >= in.size()) return false;
        auto hex = [](char h) -> int {
          if (h >= '0' && h <= '9') return h - '0';
          if (h >= 'a' && h <= 'f') return h - 'a' + 10;
          if (h >= 'A' && h <= 'F') return h - 'A' + 10;
          return -1;
        };
        int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out->push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      } else {
        out->push_back(c);
      }
    }
    return true;
  };
  std::vector<std::pair<std::string, std::string>> fields;
  size_t pos = 0;
  while (pos <= body.size() && !body.empty()) {
    size_t amp = body.find('&', pos);
    std::string_view part = body.substr(pos, amp == std::string_view::npos ? amp : amp - pos);
    if (!part.empty()) {
      size_t eq = part.find('=');
      std::string key, value;
      if (!decode(part.substr(0, eq), &key) ||
          (eq != std::string_view::npos && !decode(part.substr(eq + 1), &value))) {
        return Status::InvalidArgument("malformed form encoding");
      }
      fields.emplace_back(std::move(key), std::move(value));
    }
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return fields;
}

std::string FormatRfc3339(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  // The form of every other time in the API: UTC, milliseconds ("...:00.000Z").
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.000Z", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

namespace {
json QuotasJson(const Quotas& q) {
  json out = json::object();
  for (const QuotaField& f : kQuotaFields) {
    out[f.name] = (q.*f.member) ? json(*(q.*f.member)) : json(nullptr);
  }
  return out;
}

json ClientJson(const ClientInfo& c) {
  return json{{"client_id", c.client_id}, {"name", c.name},
              {"scopes", c.scopes.Names()}, {"projects", c.projects},
              {"branches", c.branches},
              {"max_branch_ttl_seconds",
               c.max_branch_ttl_seconds > 0 ? json(c.max_branch_ttl_seconds) : json(nullptr)},
              {"quotas", QuotasJson(c.quotas)},
              {"enabled", c.enabled},     {"created_at", FormatRfc3339(c.created_at)}};
}
}  // namespace

std::string ClientInfo::ToJson() const { return ClientJson(*this).dump(); }

std::string NewClient::ToJson() const {
  json j = ClientJson(info);
  j["client_secret"] = client_secret;
  return j.dump();
}

std::string DbCredential::ToJson() const {
  json j = {{"credential", token},
            {"token_type", "Bearer"},
            {"expires_in", expires_in},
            {"expires_at", FormatRfc3339(expires_at)},
            {"project", project},
            {"branch", branch},
            {"access", access == DbAccess::kReadWrite ? "read_write" : "read"}};
  return j.dump();
}

}  // namespace branchdb::auth
