// libstdc++ 12's std::regex (Dispatch matches routes as httplib does, with
// std::regex) trips a false -Wmaybe-uninitialized at -O2 (GCC bug 105562).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "server/http/router.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <strings.h>

#include <optional>
#include <algorithm>
#include <cstring>
#include <random>
#include <regex>
#include <vector>

#include "server/http/admission.h"
#include "server/http/cors.h"
#include "server/http/errors.h"
#include "server/http/idempotency.h"
#include "server/http/log_value.h"
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

// Stands for an encoded slash while routes are matched: a control character,
// which no project, branch or client name may contain.
constexpr char kEncodedSlash = '\x1f';

std::string MatchedParam(const httplib::Request& req, size_t i) {
  std::string out = req.matches[i];
  for (char& c : out) {
    if (c == kEncodedSlash) c = '/';
  }
  return out;
}

RequestContext ContextOf(const httplib::Request& req, const httplib::Response& res,
                         const std::string& label, const std::vector<std::string>& params) {
  RequestContext ctx{res.get_header_value("X-Request-Id"), label, {}, std::nullopt};
  for (size_t i = 0; i < params.size() && i + 1 < req.matches.size(); ++i) {
    ctx.path_params.emplace_back(params[i], MatchedParam(req, i + 1));
  }
  return ctx;
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

std::string EncodePathSegment(std::string_view name) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
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

namespace {

// httplib's pre-routing step (and Dispatch's): starts the clock, resets the
// route label, derives the routing path, sets X-Request-Id.
void BeginRequest(Clock* clock, httplib::Request& req, httplib::Response& res) {
  t_start_nanos = clock->NowMonotonicNanos();
  t_route = "unmatched";
  // httplib routes on req.path, decoded from the target with "%2F" already a '/'.
  if (!req.target.empty()) req.path = RoutingPath(req.target);
  std::string id = req.get_header_value("X-Request-Id");
  res.set_header("X-Request-Id", SaneRequestId(id) ? id : NewRequestId());
}

// The error body of a >= 400 response no handler wrote one for.
void FillErrorBody(const httplib::Request& req, httplib::Response& res) {
  if (!res.body.empty()) return;  // a handler's own error body
  if (res.status == 404) {
    SendError(res, Status::NotFound("no route for " + req.method + " " + req.path,
                                    "route_not_found"));
  } else if (res.status == 413) {
    SendError(res, Status::ResourceExhausted("request body too large", "payload_too_large"));
  } else {
    int status = res.status;
    std::string message = "bad request";
    if (status == 400 && (req.method == "POST" || req.method == "PATCH") &&
        !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
      // httplib refuses a body-less POST before routing; say what to send.
      message = "a " + req.method +
                " needs a body: send a JSON object (e.g. {} with Content-Type: "
                "application/json; curl -d '{}')";
    }
    SendError(res, Status::InvalidArgument(message, "bad_request"));
    res.status = status;
  }
}

void SendInternalError(spdlog::logger& logger, const httplib::Request& req,
                       httplib::Response& res, std::exception_ptr ep) {
  std::string what = "unknown";
  try {
    if (ep) std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  logger.error("event=handler_exception path={} request_id={} error=\"{}\"", LogValue(req.path),
               LogValue(res.get_header_value("X-Request-Id")), LogValue(what));
  SendError(res, Status::Corruption("internal error", "internal"));
}

// An error body naming a server path: the path becomes "<data_dir>" for the
// client, the whole body is logged for the operator.
void RedactErrorBody(const std::vector<std::string>& paths, spdlog::logger& logger,
                     httplib::Response& res) {
  if (res.status < 400) return;
  std::string body = res.body;
  for (const auto& path : paths) {
    for (size_t at = body.find(path); at != std::string::npos; at = body.find(path, at)) {
      body.replace(at, path.size(), "<data_dir>");
    }
  }
  if (body == res.body) return;
  logger.warn("event=error_redacted request_id={} status={} body={}",
              LogValue(res.get_header_value("X-Request-Id")), res.status, LogValue(res.body));
  res.body = std::move(body);
  if (res.has_header("Content-Length")) {  // httplib may have set it already
    res.headers.erase("Content-Length");
    res.set_header("Content-Length", std::to_string(res.body.size()));
  }
}

// httplib (0.11) compresses any text or JSON body whose client accepts gzip
// or br, after the handler and the error handler and before the post-routing
// handler; it has no size threshold and no server-side switch, and it decides
// from the request's Accept-Encoding alone. Below about one packet that saves
// no round trip and costs both ends a compressor per response (Node's fetch,
// the libSQL clients' transport, decodes each into a zlib or brotli stream):
// such a body goes out as it is, httplib being told the client accepts no
// encoding. Called by every route's wrapper and by the error handler, so that
// every answer the Router writes follows the rule.
constexpr size_t kCompressMinBytes = 1024;

void SendSmallBodyUncompressed(const httplib::Request& req, const httplib::Response& res) {
  // An empty body may be a streamed one (a content provider): left alone.
  if (res.body.empty() || res.body.size() >= kCompressMinBytes) return;
  // The Request object is httplib's own mutable one, handed over const.
  const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
}

double SecondsSinceStart(Clock* clock) {
  return static_cast<double>(clock->NowMonotonicNanos() - t_start_nanos) / 1e9;
}

void CountRequest(Clock* clock, Metrics* metrics, const httplib::Request& req,
                  const httplib::Response& res) {
  double seconds = SecondsSinceStart(clock);
  metrics->Increment(kHttpRequests,
                     {{"route", t_route}, {"method", req.method}, {"status", std::to_string(res.status)}});
  metrics->Observe(kHttpDuration, {{"route", t_route}, {"method", req.method}}, seconds);
}

void LogAccess(Clock* clock, spdlog::logger& logger, const httplib::Request& req,
               const httplib::Response& res) {
  if (!logger.should_log(spdlog::level::info)) return;  // build nothing for no line
  // The routing path, with each encoded slash shown as it was sent.
  std::string path;
  for (char c : req.path) {
    if (c == kEncodedSlash) {
      path += "%2F";
    } else {
      path += c;
    }
  }
  // Everything from the request is escaped (LogValue): one request, one line.
  logger.info("event=access method={} path={} status={} duration_ms={:.3f} request_id={} route={}",
              LogValue(req.method), LogValue(path), res.status, SecondsSinceStart(clock) * 1e3,
              LogValue(res.get_header_value("X-Request-Id")), LogValue(t_route));
}

// Dispatch has no socket: a response written by a sized content provider (a
// streamed download) is collected into its body.
void CollectProvidedContent(httplib::Response& res) {
  if (!res.content_provider_) return;
  std::string body;
  httplib::DataSink sink;
  sink.write = [&body](const char* data, size_t n) {
    body.append(data, n);
    return true;
  };
  sink.is_writable = [] { return true; };
  sink.done = [] {};
  bool ok = true;
  while (ok && body.size() < res.content_length_) {
    size_t before = body.size();
    ok = res.content_provider_(body.size(), res.content_length_ - body.size(), sink) &&
         body.size() > before;
  }
  res.content_provider_success_ = ok;
  res.body = std::move(body);
  res.content_provider_ = nullptr;
  res.content_length_ = 0;
}

// Restores the calling thread's per-request state when a Dispatch ends.
class SavedRequestState {
 public:
  SavedRequestState() : start_nanos_(t_start_nanos), route_(t_route) {}
  ~SavedRequestState() {
    t_start_nanos = start_nanos_;
    t_route = std::move(route_);
  }
  SavedRequestState(const SavedRequestState&) = delete;
  SavedRequestState& operator=(const SavedRequestState&) = delete;

 private:
  int64_t start_nanos_;
  std::string route_;
};

}  // namespace

namespace {

// The parameter that may span path segments (a branch name may hold '/').
bool SpansSegments(std::string_view name) { return name == "branch"; }

// A path template ("/v1/projects/{project}/branches/{branch}/sql") as the
// regex httplib matches (literal parts escaped), its parameters' names in
// order, and whether it ends in a parameter that spans segments.
struct CompiledTemplate {
  std::string pattern;
  std::vector<std::string> params;
  bool greedy_tail = false;
};

CompiledTemplate CompileTemplate(const std::string& path_template) {
  CompiledTemplate out;
  for (size_t i = 0; i < path_template.size();) {
    char c = path_template[i];
    if (c == '{') {
      size_t close = path_template.find('}', i);
      std::string name = path_template.substr(i + 1, close - i - 1);
      bool spans = SpansSegments(name);
      out.pattern += spans ? "(.+)" : "([^/]+)";
      out.params.push_back(std::move(name));
      i = close + 1;
      out.greedy_tail = spans && i == path_template.size();
      continue;
    }
    if (std::strchr(".^$|()[]*+?\\", c) != nullptr) out.pattern += '\\';
    out.pattern += c;
    ++i;
  }
  return out;
}

}  // namespace

struct Router::Routes {
  struct Route {
    std::string method;
    std::string pattern;           // the httplib regex of the template
    std::regex regex;              // the same, as httplib compiles it (for Dispatch)
    bool greedy_tail = false;      // see CompiledTemplate
    HttpHandler handler;
    StreamingHttpHandler streaming;  // set instead of handler for a streaming route
  };
  std::vector<Route> list;  // added order; matching order after Install()
};

std::string RequestContext::Param(std::string_view name) const {
  for (const auto& [key, value] : path_params) {
    if (key == name) return value;
  }
  return "";
}

Router::Router(httplib::Server& server, RouterOptions options)
    : server_(server), options_(std::move(options)), routes_(std::make_unique<Routes>()) {
  if (!options_.logger) options_.logger = spdlog::default_logger();
  Clock* clock = options_.clock;
  server_.set_pre_routing_handler([clock, origins = options_.cors_origins](
                                      const httplib::Request& req, httplib::Response& res) {
    // The Request object is httplib's own mutable one, handed over const.
    BeginRequest(clock, const_cast<httplib::Request&>(req), res);
    // CORS headers on every answer to a listed origin; a preflight ends here.
    if (ApplyCors(origins, req, res)) return httplib::Server::HandlerResponse::Handled;
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    FillErrorBody(req, res);
    SendSmallBodyUncompressed(req, res);
  });
  server_.set_exception_handler(
      [logger = options_.logger](const httplib::Request& req, httplib::Response& res,
                                 std::exception_ptr ep) { SendInternalError(*logger, req, res, ep); });
  // Counted once the status is final and before the response is written, so a
  // client that has its answer always finds the request in /metrics.
  server_.set_post_routing_handler([clock, metrics = options_.metrics, logger = options_.logger,
                                    paths = options_.redacted_paths](
                                       const httplib::Request& req, httplib::Response& res) {
    RedactErrorBody(paths, *logger, res);
    CountRequest(clock, metrics, req, res);
  });
  server_.set_logger([clock, logger = options_.logger](const httplib::Request& req,
                                                       const httplib::Response& res) {
    LogAccess(clock, *logger, req, res);
  });
}

Router::~Router() = default;

std::string DispatchResponse::Header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (strcasecmp(key.c_str(), name.c_str()) == 0) return value;
  }
  return "";
}

DispatchResponse Router::Dispatch(const DispatchRequest& request) const {
  SavedRequestState saved;
  httplib::Request req;
  httplib::Response res;
  req.method = request.method;
  req.target = request.path;
  req.body = request.body;
  req.remote_addr = request.remote_addr;
  req.version = "HTTP/1.1";
  for (const auto& [name, value] : request.headers) req.headers.emplace(name, value);
  if (size_t q = request.path.find('?'); q != std::string::npos) {
    httplib::detail::parse_query_text(request.path.substr(q + 1), req.params);
  }
  for (const auto& [name, value] : request.params) req.params.emplace(name, value);
  BeginRequest(options_.clock, req, res);

  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  bool routed = false;
  try {
    for (const auto& route : routes_->list) {
      if (route.method == method && std::regex_match(req.path, req.matches, route.regex)) {
        routed = true;
        if (route.streaming) {
          std::string body = std::move(req.body);
          req.body.clear();
          route.streaming(req, res, [&body](const BodyReceiver& receive) {
            return body.empty() || receive(body.data(), body.size());
          });
        } else {
          route.handler(req, res);
        }
        CollectProvidedContent(res);
        break;
      }
    }
  } catch (...) {
    SendInternalError(*options_.logger, req, res, std::current_exception());
  }
  if (res.status == -1) res.status = routed ? 200 : 404;
  if (res.status >= 400) FillErrorBody(req, res);
  RedactErrorBody(options_.redacted_paths, *options_.logger, res);
  if (req.method == "HEAD") res.body.clear();
  CountRequest(options_.clock, options_.metrics, req, res);
  LogAccess(options_.clock, *options_.logger, req, res);

  DispatchResponse out;
  out.status = res.status;
  out.body = std::move(res.body);
  for (const auto& [name, value] : res.headers) out.headers.emplace(name, value);
  return out;
}

namespace {

// httplib's CPPHTTPLIB_FORM_URL_ENCODED_PAYLOAD_MAX_LENGTH.
constexpr size_t kFormBodyMaxBytes = 8192;

// What httplib does for a plain handler's body (read it whole into req.body,
// parse a form body into req.params), with the router's own size limit: a
// body past limit (0: none) is read on and discarded, so that the connection
// stays in step, and the request is answered 413. False when the request is
// answered (res.status set; the error handler writes the body).
bool ReadBufferedBody(httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader, uint64_t limit) {
  bool too_big = limit > 0 && req.has_header("Content-Length") &&
                 req.get_header_value<uint64_t>("Content-Length") > limit;
  std::string body;
  bool whole = reader([&](const char* data, size_t n) {
    if (!too_big && limit > 0 && body.size() + n > limit) {
      too_big = true;
      std::string().swap(body);
    }
    if (!too_big) body.append(data, n);
    return true;
  });
  if (!whole) {
    if (res.status == -1) res.status = 400;  // else httplib's 413 (payload limit) or 400
    return false;
  }
  if (too_big) {
    res.status = 413;
    return false;
  }
  if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0) {
    if (body.size() > kFormBodyMaxBytes) {
      res.status = 413;
      return false;
    }
    httplib::detail::parse_query_text(body, req.params);
  }
  req.body = std::move(body);
  return true;
}

}  // namespace

void Router::Add(const std::string& method, const std::string& path_template,
                 RouteOptions options, RouteHandler handler) {
  CompiledTemplate t = CompileTemplate(path_template);
  HttpHandler wrapped = [this, label = path_template, params = t.params, options,
                         handler = std::move(handler)](const httplib::Request& req,
                                                       httplib::Response& res) {
    Handle(req, res, label, params, options, req.body,
           [&](RequestContext& ctx) { handler(req, res, ctx); });
    SendSmallBodyUncompressed(req, res);
  };
  routes_->list.push_back(
      {method, t.pattern, std::regex(t.pattern), t.greedy_tail, std::move(wrapped), nullptr});
}

void Router::Register(size_t i) {
  const Routes::Route& route = routes_->list[i];
  const std::string& pattern = route.pattern;
  if (route.streaming) {
    server_.Post(pattern, [wrapped = route.streaming](const httplib::Request& req,
                                                      httplib::Response& res,
                                                      const httplib::ContentReader& content_reader) {
      wrapped(req, res, [&content_reader](const BodyReceiver& receive) {
        return content_reader(receive);
      });
    });
    return;
  }
  HttpHandler handler = route.handler;
  // POST, PATCH and DELETE bodies are read here (httplib's content reader), so
  // that streaming routes may have a larger payload limit than the others.
  auto buffered = [handler, limit = static_cast<uint64_t>(std::max<int64_t>(
                                0, options_.max_body_bytes))](
                      const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader) {
    // The Request object is httplib's own mutable one, handed over const.
    if (ReadBufferedBody(const_cast<httplib::Request&>(req), res, reader, limit)) {
      handler(req, res);
    }
  };
  if (route.method == "GET") {
    server_.Get(pattern, std::move(handler));
  } else if (route.method == "POST") {
    server_.Post(pattern, std::move(buffered));
  } else if (route.method == "PATCH") {
    server_.Patch(pattern, std::move(buffered));
  } else if (route.method == "DELETE") {
    server_.Delete(pattern, std::move(buffered));  // httplib reads a DELETE's body too
  }
}

void Router::Install() {
  // httplib matches in registration order: a template ending in {branch}
  // would take every longer path, so those go last.
  std::stable_partition(routes_->list.begin(), routes_->list.end(),
                        [](const Routes::Route& r) { return !r.greedy_tail; });
  for (size_t i = 0; i < routes_->list.size(); ++i) Register(i);
  auto unrouted = [](const httplib::Request&, httplib::Response& res,
                     const httplib::ContentReader& reader) {
    (void)reader([](const char*, size_t) { return true; });
    if (res.status == -1) res.status = 404;  // else httplib's 413 or 400
  };
  const std::string all = ".*";
  server_.Post(all, unrouted);
  server_.Put(all, unrouted);
  server_.Patch(all, unrouted);
  server_.Delete(all, unrouted);
}

void Router::Handle(const httplib::Request& req, httplib::Response& res, const std::string& label,
                    const std::vector<std::string>& params, RouteOptions options,
                    const std::string& fingerprint_body,
                    const std::function<void(RequestContext&)>& handler) {
  t_route = label;
  RequestContext ctx = ContextOf(req, res, label, params);
  std::optional<Result<Admission::Slot>> slot;
  if (options.admission && options_.admission != nullptr && !Admit(req, res, ctx, slot)) return;
  if (options.idempotent && options_.idempotency != nullptr && req.has_header("Idempotency-Key")) {
    HandleIdempotent(req, res, ctx, fingerprint_body, [&] { handler(ctx); });
  } else {
    handler(ctx);
  }
}

bool Router::Admit(const httplib::Request& req, httplib::Response& res, RequestContext& ctx,
                   std::optional<Result<Admission::Slot>>& slot) {
  std::string client = options_.principal_of ? options_.principal_of(req, ctx) : "";
  if (client.empty()) return true;  // unauthenticated: the handler refuses it
  slot.emplace(options_.admission->TryAcquire(client));
  if (slot->ok()) return true;
  SendError(res, slot->status());
  res.set_header("Retry-After", "1");
  return false;
}

void Router::AddStreaming(const std::string& path_template, RouteOptions options,
                          StreamingHandler handler) {
  CompiledTemplate t = CompileTemplate(path_template);
  StreamingHttpHandler wrapped = [this, label = path_template, params = t.params, options,
                                  handler = std::move(handler)](const httplib::Request& req,
                                                                httplib::Response& res,
                                                                const BodyReader& read) {
    // The body is not known before the handler runs: its declared length
    // stands for it in the idempotency fingerprint.
    std::string length = req.has_header("Content-Length") ? req.get_header_value("Content-Length")
                                                          : std::string("unknown");
    Handle(req, res, label, params, options, "streamed body of length " + length,
           [&](RequestContext& ctx) { handler(req, res, ctx, read); });
    SendSmallBodyUncompressed(req, res);
  };
  routes_->list.push_back(
      {"POST", t.pattern, std::regex(t.pattern), t.greedy_tail, nullptr, std::move(wrapped)});
}

void Router::HandleIdempotent(const httplib::Request& req, httplib::Response& res,
                              RequestContext& ctx, const std::string& fingerprint_body,
                              const std::function<void()>& run) {
  std::string key = req.get_header_value("Idempotency-Key");
  if (!SaneIdempotencyKey(key)) {
    SendError(res, Status::InvalidArgument(
                       "Idempotency-Key: expected 1..255 printable ASCII characters",
                       "invalid_idempotency_key"));
    return;
  }
  std::string scope = options_.principal_of ? options_.principal_of(req, ctx) : "";
  std::string fingerprint = RequestFingerprint(req.method, req.target, fingerprint_body);
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
    run();
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
                            LogValue(res.get_header_value("X-Request-Id")), LogValue(s.ToString()));
    }
  } else {
    options_.idempotency->Abandon(scope, key);
  }
}

}  // namespace branchdb::server::http
