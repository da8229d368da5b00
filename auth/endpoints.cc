// OAuth endpoints: token (RFC 6749 §4.4), revocation (RFC 7009), introspection
// (RFC 7662), with client authentication (§2.3.1) and its rate limit.
#include <algorithm>
#include <cctype>

#include "auth/internal/replies.h"
#include "auth/internal/service.h"

namespace branchdb::auth::internal {
namespace {

using nlohmann::json;

bool IEqualsPrefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// An admin client without a project list may revoke and introspect any
// client's tokens; a project-restricted admin only its own (its list bounds it).
bool MayActOnAnyToken(const ClientInfo& client) {
  return client.scopes.Has(Scope::kAdmin) && client.projects.empty();
}

// The value of a form field, or nullopt. REQUIRES: fields have no duplicates.
std::optional<std::string> Field(const OAuthRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.form) {
    if (k == name) return v;
  }
  return std::nullopt;
}

// RFC 6749 §3.2: parameters must not be repeated. Returns the repeated name.
std::optional<std::string> RepeatedField(const OAuthRequest& r) {
  for (size_t i = 0; i < r.form.size(); ++i) {
    for (size_t j = i + 1; j < r.form.size(); ++j) {
      if (r.form[i].first == r.form[j].first) return r.form[i].first;
    }
  }
  return std::nullopt;
}

// Decodes one form-urlencoded component of Basic credentials (§2.3.1).
std::optional<std::string> FormDecode(std::string_view s) {
  auto fields = ParseFormBody(std::string("x=") + std::string(s));
  if (!fields.ok() || fields->size() != 1) return std::nullopt;
  return (*fields)[0].second;
}

// A fixed hash verified against when the client id is unknown, so that unknown
// ids and wrong secrets take the same time.
const std::string& DummyHash(int iterations) {
  static const std::string hash = [&] {
    auto h = HashSecret("dummy-secret-for-timing", iterations);
    return h.ok() ? *h : std::string();
  }();
  return hash;
}

}  // namespace

int64_t AuthServiceImpl::RetryAfterLocked(const std::string& key, int64_t now) {
  auto it = failures_.find(key);
  if (it == failures_.end()) return 0;
  int64_t end = it->second.start + options_.rate_limit_window_seconds;
  if (now >= end) {
    failures_.erase(it);
    return 0;
  }
  return it->second.failures >= options_.rate_limit_failures ? end - now : 0;
}

void AuthServiceImpl::RecordFailureLocked(const std::string& key, int64_t now) {
  constexpr size_t kMaxEntries = 100000;
  auto it = failures_.find(key);
  if (it == failures_.end() || now >= it->second.start + options_.rate_limit_window_seconds) {
    if (it == failures_.end() && failures_.size() >= kMaxEntries) {
      // Bound memory: forget expired windows; if still full, drop this record.
      for (auto f = failures_.begin(); f != failures_.end();) {
        f = (now >= f->second.start + options_.rate_limit_window_seconds) ? failures_.erase(f)
                                                                          : std::next(f);
      }
      if (failures_.size() >= kMaxEntries) return;
    }
    failures_[key] = Window{now, 1};
    return;
  }
  ++it->second.failures;
}

namespace {

// The client's id and secret, from HTTP Basic or the form's client_id and
// client_secret (RFC 6749 §2.3.1; not both); the refusal when they are
// missing, malformed or out of range. *basic: whether HTTP Basic was used.
std::optional<ClientAuth> ReadClientCredentials(const OAuthRequest& request,
                                                const std::string& realm, std::string* client_id,
                                                std::string* secret, bool* basic) {
  auto fail = [&](OAuthError e, std::string_view desc, bool use_basic) {
    ClientAuth out;
    out.error = OAuthErrorReply(e, desc, use_basic, realm);
    return std::optional<ClientAuth>(std::move(out));
  };
  std::string_view authz = request.authorization;
  while (!authz.empty() && authz.back() == ' ') authz.remove_suffix(1);
  auto form_id = Field(request, "client_id");
  auto form_secret = Field(request, "client_secret");
  if (!authz.empty()) {
    if (!IEqualsPrefix(authz, "basic ")) {
      return fail(OAuthError::kInvalidClient, "unsupported client authentication scheme", true);
    }
    *basic = true;
    if (form_id || form_secret) {
      return fail(OAuthError::kInvalidRequest,
                  "use either HTTP Basic or client_id/client_secret fields, not both", false);
    }
    std::string_view b64 = authz.substr(6);
    while (!b64.empty() && b64.front() == ' ') b64.remove_prefix(1);
    auto decoded = Base64StdDecode(b64);
    size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (!decoded || colon == std::string::npos) {
      return fail(OAuthError::kInvalidRequest, "malformed HTTP Basic credentials", false);
    }
    auto id = FormDecode(std::string_view(*decoded).substr(0, colon));
    auto sec = FormDecode(std::string_view(*decoded).substr(colon + 1));
    if (!id || !sec) {
      return fail(OAuthError::kInvalidRequest, "malformed HTTP Basic credentials", false);
    }
    *client_id = std::move(*id);
    *secret = std::move(*sec);
  } else if (form_id || form_secret) {
    if (!form_id) return fail(OAuthError::kInvalidRequest, "client_secret without client_id", false);
    if (!form_secret) {
      return fail(OAuthError::kInvalidClient, "client_secret is required", false);
    }
    *client_id = *form_id;
    *secret = *form_secret;
  } else {
    // No credentials at all: invite HTTP Basic (401 + WWW-Authenticate).
    return fail(OAuthError::kInvalidClient, "client authentication required", true);
  }
  if (client_id->empty() || client_id->size() > 256 || secret->size() > 1024) {
    return fail(OAuthError::kInvalidClient, "client authentication failed", *basic);
  }
  return std::nullopt;
}

}  // namespace

ClientAuth AuthServiceImpl::AuthenticateClient(const OAuthRequest& request) {
  const std::string& realm = options_.realm;
  auto fail = [&](OAuthError e, std::string_view desc, bool basic) {
    ClientAuth out;
    out.error = OAuthErrorReply(e, desc, basic, realm);
    return out;
  };
  std::string client_id, secret;
  bool basic = false;
  if (std::optional<ClientAuth> refused =
          ReadClientCredentials(request, realm, &client_id, &secret, &basic)) {
    return std::move(*refused);
  }

  const std::string client_key = "client:" + client_id;
  const std::string addr_key = "addr:" + request.source_address;
  std::string stored_hash;
  std::optional<ClientInfo> info;
  {
    MutexLock lock(mu_);
    int64_t now = NowSeconds();
    int64_t wait = std::max(RetryAfterLocked(client_key, now),
                            request.source_address.empty() ? 0 : RetryAfterLocked(addr_key, now));
    if (wait > 0) {
      ClientAuth out;
      out.error = RateLimitedReply(wait);
      return out;
    }
    auto it = clients_.find(client_id);
    if (it != clients_.end()) {
      stored_hash = it->second.secret_hash;
      info = it->second.info;
    }
  }
  // Hash outside the lock; unknown ids verify against a dummy hash (same cost).
  bool ok = VerifySecret(secret, info ? stored_hash : DummyHash(options_.pbkdf2_iterations));
  if (!ok || !info) {
    MutexLock lock(mu_);
    int64_t now = NowSeconds();
    RecordFailureLocked(client_key, now);
    if (!request.source_address.empty()) RecordFailureLocked(addr_key, now);
    return fail(OAuthError::kInvalidClient, "client authentication failed", basic);
  }
  ClientAuth out;
  out.client = std::move(*info);
  return out;
}

HttpReply AuthServiceImpl::TokenEndpoint(const OAuthRequest& request) {
  const std::string& realm = options_.realm;
  if (!request.content_type.empty() &&
      !IEqualsPrefix(request.content_type, "application/x-www-form-urlencoded")) {
    return OAuthErrorReply(OAuthError::kInvalidRequest,
                           "content type must be application/x-www-form-urlencoded", false,
                           realm);
  }
  if (auto name = RepeatedField(request)) {
    return OAuthErrorReply(OAuthError::kInvalidRequest, "parameter repeated: " + *name, false,
                           realm);
  }
  auto grant_type = Field(request, "grant_type");
  if (!grant_type || grant_type->empty()) {
    return OAuthErrorReply(OAuthError::kInvalidRequest, "grant_type is required", false, realm);
  }
  ClientAuth auth = AuthenticateClient(request);
  if (auth.error) return std::move(*auth.error);
  const ClientInfo& client = *auth.client;
  if (*grant_type != "client_credentials") {
    return OAuthErrorReply(OAuthError::kUnsupportedGrantType,
                           "only grant_type=client_credentials is supported", false, realm);
  }
  if (!client.enabled) {
    return OAuthErrorReply(OAuthError::kUnauthorizedClient, "client is disabled", false, realm);
  }
  ScopeSet granted = client.scopes;
  if (auto scope = Field(request, "scope")) {
    auto requested = ScopeSet::Parse(*scope);
    if (!requested.ok()) {
      return OAuthErrorReply(OAuthError::kInvalidScope, requested.status().message(), false,
                             realm);
    }
    if (!client.scopes.CoversAll(*requested)) {
      return OAuthErrorReply(OAuthError::kInvalidScope,
                             "requested scope exceeds the client's scopes", false, realm);
    }
    granted = *requested;
  }
  int64_t now = NowSeconds();
  std::string jti;
  json claims = {{"scope", granted.ToString()}};
  auto token = SignToken(kAccessTokenTyp, client.client_id, std::move(claims), now,
                         options_.access_token_lifetime_seconds, &jti);
  if (!token.ok()) {
    HttpReply reply = JsonReply(500, json{{"error", "server_error"},
                                          {"error_description", "cannot sign token"}});
    return reply;
  }
  return JsonReply(200, json{{"access_token", *token},
                             {"token_type", "Bearer"},
                             {"expires_in", options_.access_token_lifetime_seconds},
                             {"scope", granted.ToString()}});
}

HttpReply AuthServiceImpl::RevocationEndpoint(const OAuthRequest& request) {
  const std::string& realm = options_.realm;
  if (auto name = RepeatedField(request)) {
    return OAuthErrorReply(OAuthError::kInvalidRequest, "parameter repeated: " + *name, false,
                           realm);
  }
  ClientAuth auth = AuthenticateClient(request);
  if (auth.error) return std::move(*auth.error);
  auto token = Field(request, "token");
  if (!token || token->empty()) {
    return OAuthErrorReply(OAuthError::kInvalidRequest, "token is required", false, realm);
  }
  // RFC 7009 §2.2: invalid, unknown, expired or foreign tokens get 200 too; a
  // client may revoke only its own tokens (admin: any), others are left alone.
  // Every use of a token checks revoked_, cached or not (Admit): nothing to
  // invalidate in the token caches.
  BearerError ignored;
  auto verdict = Facts(*token, NowSeconds(), &ignored);
  const Principal* verified = verdict != nullptr ? &verdict->facts.claimed : nullptr;
  if (verified != nullptr && auth.client->enabled &&
      (verified->client_id == auth.client->client_id || MayActOnAnyToken(*auth.client))) {
    if (!Revoke(verified->jti, verified->expires_at).ok()) {
      return JsonReply(503, json{{"error", "temporarily_unavailable"},
                                 {"error_description", "cannot persist revocation"}});
    }
  }
  HttpReply reply = JsonReply(200, json::object());
  reply.body.clear();
  return reply;
}

HttpReply AuthServiceImpl::IntrospectionEndpoint(const OAuthRequest& request) {
  const std::string& realm = options_.realm;
  if (auto name = RepeatedField(request)) {
    return OAuthErrorReply(OAuthError::kInvalidRequest, "parameter repeated: " + *name, false,
                           realm);
  }
  ClientAuth auth = AuthenticateClient(request);
  if (auth.error) return std::move(*auth.error);
  if (!auth.client->enabled) {
    return OAuthErrorReply(OAuthError::kUnauthorizedClient, "client is disabled", false, realm);
  }
  auto token = Field(request, "token");
  if (!token || token->empty()) {
    return OAuthErrorReply(OAuthError::kInvalidRequest, "token is required", false, realm);
  }
  BearerError error;
  auto p = VerifyInternal(*token, &error);
  if (!p || (p->client_id != auth.client->client_id && !MayActOnAnyToken(*auth.client))) {
    return JsonReply(200, json{{"active", false}});
  }
  return JsonReply(200, IntrospectionJson(*p));
}

}  // namespace branchdb::auth::internal
