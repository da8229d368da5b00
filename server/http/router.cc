#include "server/http/router.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <random>

#include "server/http/errors.h"
#include "server/http/idempotency.h"
#include "server/http/metrics.h"

namespace branchdb::server::http {
namespace {

thread_local int64_t t_start_nanos = 0;
thread_local std::string t_route;

bool SaneRequestId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == ':')) {
      return false;
    }
  }
  return true;
}

bool SaneIdempotencyKey(const std::string& key) {
  if (key.empty() || key.size() > 255) return false;
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

RequestContext ContextOf(const httplib::Response& res, const std::string& label) {
  return RequestContext{res.get_header_value("X-Request-Id"), label};
}

}  // namespace

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

namespace {
// Stands for an encoded slash while routes are matched: a control character,
// which no project, branch or client name may contain.
constexpr char kEncodedSlash = '\x1f';

// The request target's path, percent-decoded except that "%2F" becomes
// kEncodedSlash (httplib decodes it to '/', which would make it a separator).
std::string RoutingPath(const std::string& target) {
  std::string raw = target.substr(0, target.find('?'));
  std::string held;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '%' && i + 2 < raw.size() && raw[i + 1] == '2' &&
        (raw[i + 2] == 'F' || raw[i + 2] == 'f')) {
      held += kEncodedSlash;
      i += 2;
    } else {
      held += raw[i];
    }
  }
  return httplib::detail::decode_url(held, false);
}
}  // namespace

std::string PathParam(const httplib::Request& req, size_t i) {
  std::string out = req.matches[i];
  for (char& c : out) {
    if (c == kEncodedSlash) c = '/';
  }
  return out;
}

Result<std::string> DecodePathSegment(const std::string& segment) {
  std::string out;
  for (size_t i = 0; i < segment.size(); ++i) {
    char c = segment[i];
    if (c != '%') {
      out += c;
      continue;
    }
    if (i + 2 >= segment.size() || !std::isxdigit(static_cast<unsigned char>(segment[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(segment[i + 2]))) {
      return Status::InvalidArgument("malformed percent-escape in path segment \"" + segment + "\"",
                                     "invalid_path");
    }
    out += static_cast<char>(std::stoi(segment.substr(i + 1, 2), nullptr, 16));
    i += 2;
  }
  return out;
}

Router::Router(httplib::Server& server, RouterOptions options)
    : server_(server), options_(std::move(options)) {
  if (!options_.logger) options_.logger = spdlog::default_logger();
  Clock* clock = options_.clock;
  server_.set_pre_routing_handler([clock](const httplib::Request& req, httplib::Response& res) {
    t_start_nanos = clock->NowMonotonicNanos();
    t_route = "unmatched";
    // httplib routes on req.path, decoded from the target with "%2F" already a
    // '/'. The Request object is httplib's own mutable one, handed over const.
    if (!req.target.empty()) const_cast<httplib::Request&>(req).path = RoutingPath(req.target);
    std::string id = req.get_header_value("X-Request-Id");
    res.set_header("X-Request-Id", SaneRequestId(id) ? id : NewRequestId());
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler's own error body
    if (res.status == 404) {
      SendError(res, Status::NotFound("no route for " + req.method + " " + req.path,
                                      "route_not_found"));
    } else if (res.status == 413) {
      SendError(res, Status::ResourceExhausted("request body too large", "payload_too_large"));
    } else {
      int status = res.status;
      SendError(res, Status::InvalidArgument("bad request", "bad_request"));
      res.status = status;
    }
  });
  server_.set_exception_handler(
      [logger = options_.logger](const httplib::Request& req, httplib::Response& res,
                                 std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        logger->error("event=handler_exception path={} error=\"{}\"", req.path, what);
        SendError(res, Status::Corruption("internal error", "internal"));
      });
  // Counted once the status is final and before the response is written, so a
  // client that has its answer always finds the request in /metrics.
  server_.set_post_routing_handler([clock, metrics = options_.metrics](
                                       const httplib::Request& req, httplib::Response& res) {
    double seconds = static_cast<double>(clock->NowMonotonicNanos() - t_start_nanos) / 1e9;
    std::string status = std::to_string(res.status);
    metrics->Increment(kHttpRequests,
                       {{"route", t_route}, {"method", req.method}, {"status", status}});
    metrics->Observe(kHttpDuration, {{"route", t_route}, {"method", req.method}}, seconds);
  });
  server_.set_logger([clock, logger = options_.logger](const httplib::Request& req,
                                                       const httplib::Response& res) {
    double seconds = static_cast<double>(clock->NowMonotonicNanos() - t_start_nanos) / 1e9;
    logger->info("event=access method={} path={} status={} duration_ms={:.3f} request_id={} route={}",
                 req.method, req.path, res.status, seconds * 1e3,
                 res.get_header_value("X-Request-Id"), t_route);
  });
}

std::function<void(const httplib::Request&, httplib::Response&)> Router::Wrap(
    const std::string& label, RouteHandler handler, bool idempotent) {
  return [this, label, handler = std::move(handler), idempotent](const httplib::Request& req,
                                                                  httplib::Response& res) {
    t_route = label;
    RequestContext ctx = ContextOf(res, label);
    if (idempotent && options_.idempotency != nullptr && req.has_header("Idempotency-Key")) {
      HandleIdempotent(req, res, ctx, handler);
    } else {
      handler(req, res, ctx);
    }
  };
}

void Router::HandleIdempotent(const httplib::Request& req, httplib::Response& res,
                              RequestContext& ctx, const RouteHandler& handler) {
  std::string key = req.get_header_value("Idempotency-Key");
  if (!SaneIdempotencyKey(key)) {
    SendError(res, Status::InvalidArgument(
                       "Idempotency-Key: expected 1..255 printable ASCII characters",
                       "invalid_idempotency_key"));
    return;
  }
  std::string scope = options_.principal_of ? options_.principal_of(req) : "";
  std::string fingerprint = RequestFingerprint(req.method, req.target, req.body);
  auto begin = options_.idempotency->Begin(scope, key, fingerprint);
  if (!begin.ok()) {
    SendError(res, begin.status());
    return;
  }
  switch (begin->outcome) {
    case IdempotencyStore::Outcome::kReplay:
      res.status = begin->response.status;
      res.set_content(begin->response.body, begin->response.content_type.c_str());
      res.set_header("Idempotent-Replayed", "true");
      options_.metrics->Increment(kIdempotentReplays);
      return;
    case IdempotencyStore::Outcome::kMismatch:
      SendError(res, Status::InvalidArgument(
                         "Idempotency-Key was already used for a different request "
                         "(method, path or body differ); use a new key",
                         "idempotency_key_reused"));
      return;
    case IdempotencyStore::Outcome::kInFlight:
      SendError(res, Status::Conflict(
                         "a request with this Idempotency-Key is still running; retry later",
                         "idempotency_key_in_use"));
      return;
    case IdempotencyStore::Outcome::kProceed:
      break;
  }
  try {
    handler(req, res, ctx);
  } catch (...) {
    options_.idempotency->Abandon(scope, key);
    throw;
  }
  if (res.status < 500 && res.status != 401 && res.status != 403 && res.status != 408 &&
      res.status != 409 && res.status != 429) {
    StoredResponse stored{res.status == -1 ? 200 : res.status,
                          res.get_header_value("Content-Type"), res.body};
    if (auto s = options_.idempotency->Finish(scope, key, fingerprint, stored); !s.ok()) {
      options_.logger->warn("event=idempotency_store_failed request_id={} error=\"{}\"",
                            ctx.request_id, s.ToString());
    }
  } else {
    options_.idempotency->Abandon(scope, key);
  }
}

void Router::Get(const std::string& pattern, const std::string& label, RouteHandler handler) {
  server_.Get(pattern, Wrap(label, std::move(handler), false));
}

void Router::Post(const std::string& pattern, const std::string& label, RouteHandler handler,
                  bool idempotent) {
  server_.Post(pattern, Wrap(label, std::move(handler), idempotent));
}

void Router::Patch(const std::string& pattern, const std::string& label, RouteHandler handler) {
  server_.Patch(pattern, Wrap(label, std::move(handler), false));
}

void Router::Delete(const std::string& pattern, const std::string& label, RouteHandler handler) {
  server_.Delete(pattern, Wrap(label, std::move(handler), false));
}

}  // namespace branchdb::server::http
