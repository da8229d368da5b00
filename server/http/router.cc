#include "server/http/router.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <strings.h>

#include <optional>
#include <algorithm>
#include <charconv>
#include <cstring>
#include <random>
#include <unordered_map>
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

// The route the pre-routing step found for this thread's request (see
// Routes::Match and Router::RunMatched): its index, its parameters as matched, and the
// request's path, which httplib is shown as kRoutedPath meanwhile.
struct Matched {
  size_t route = 0;
  std::vector<std::string> captures;
  std::string path;
};
thread_local std::optional<Matched> t_matched;

// The path a matched request carries from the pre-routing step to httplib's
// dispatch: the pattern of the one route per method registered with httplib,
// the cheapest regex there is to match (httplib tries its routes' regexes in
// order; a matching one with a spanning parameter costs microseconds).
const char* const kRoutedPath = "";

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

RequestContext ContextOf(const httplib::Response& res, const std::string& label,
                         const std::vector<std::string>& params,
                         const std::vector<std::string>& captures) {
  RequestContext ctx{res.get_header_value("X-Request-Id"), label, {}, std::nullopt};
  for (size_t i = 0; i < params.size() && i < captures.size(); ++i) {
    std::string value = captures[i];
    for (char& c : value) {
      if (c == kEncodedSlash) c = '/';
    }
    ctx.path_params.emplace_back(params[i], std::move(value));
  }
  return ctx;
}

}  // namespace

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {  // "%016llx%016llx" without snprintf
    uint64_t v = rng();
    for (int i = 15; i >= 0; --i, v >>= 4) id[half * 16 + i] = kHex[v & 0xf];
  }
  return id;
}

namespace {

// The request target's path, percent-decoded except that "%2F" becomes
// kEncodedSlash (httplib decodes it to '/', which would make it a separator).
std::string RoutingPath(const std::string& target) {
  std::string raw = target.substr(0, target.find('?'));
  if (raw.find('%') == std::string::npos) return raw;  // nothing to decode
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

// This thread's handles of the request series (Metrics::Handle), by route,
// method and status, for the registry numbered metrics_id: found once each,
// so a request renders no labels (#20). As many as the registry's series.
struct RequestSeries {
  const Metrics::Handle* requests = nullptr;
  const Metrics::Handle* duration = nullptr;
};
struct RequestSeriesCache {
  uint64_t metrics_id = 0;
  std::string key;  // reused: no allocation per request once warm
  std::unordered_map<std::string, RequestSeries> series;
};
thread_local RequestSeriesCache t_series;

void CountRequest(Clock* clock, Metrics* metrics, const httplib::Request& req,
                  const httplib::Response& res) {
  double seconds = SecondsSinceStart(clock);
  RequestSeriesCache& cache = t_series;
  if (cache.metrics_id != metrics->id()) {
    cache.series.clear();
    cache.metrics_id = metrics->id();
  }
  char status[16];
  auto [end, ec] = std::to_chars(status, status + sizeof status, res.status);
  cache.key.assign(t_route);
  cache.key += '\n';
  cache.key += req.method;
  cache.key += '\n';
  cache.key.append(status, end);
  auto it = cache.series.find(cache.key);
  if (it == cache.series.end()) {
    const std::string code(status, end);
    RequestSeries found{
        metrics->CounterSeries(kHttpRequests,
                               {{"route", t_route}, {"method", req.method}, {"status", code}}),
        metrics->HistogramSeries(kHttpDuration, {{"route", t_route}, {"method", req.method}})};
    it = cache.series.emplace(cache.key, found).first;
  }
  metrics->Increment(it->second.requests);
  metrics->Observe(it->second.duration, seconds);
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

// A path template ("/v1/projects/{project}/branches/{branch}/sql") split into
// its literal parts and parameters, its parameters' names in order, and
// whether it ends in a parameter that spans segments.
struct TemplatePiece {
  std::string literal;  // empty for a parameter
  bool param = false;
  bool spans = false;  // a parameter that may hold '/'
};

struct CompiledTemplate {
  std::vector<TemplatePiece> pieces;
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
      out.pieces.push_back({"", true, spans});
      out.params.push_back(std::move(name));
      i = close + 1;
      out.greedy_tail = spans && i == path_template.size();
      continue;
    }
    if (out.pieces.empty() || out.pieces.back().param) out.pieces.push_back({});
    out.pieces.back().literal += c;
    ++i;
  }
  return out;
}

// Whether path[pos..] matches pieces[i..], with the same captures as
// std::regex_match of the template's regex as the router once registered it
// with httplib: a one-segment parameter was "([^/]+)", a spanning one "(.+)"
// (ECMAScript's '.' takes neither '\n' nor '\r'), literal parts escaped. Both
// quantifiers are greedy and backtrack: each parameter tries its longest
// run first, then shorter ones, until the rest matches.
bool MatchPieces(const std::vector<TemplatePiece>& pieces, size_t i, std::string_view path,
                 size_t pos, std::vector<std::string>& captures, size_t param) {
  if (i == pieces.size()) return pos == path.size();
  const TemplatePiece& piece = pieces[i];
  if (!piece.param) {
    if (path.compare(pos, piece.literal.size(), piece.literal) != 0) return false;
    return MatchPieces(pieces, i + 1, path, pos + piece.literal.size(), captures, param);
  }
  size_t end = pos;
  while (end < path.size() &&
         (piece.spans ? path[end] != '\n' && path[end] != '\r' : path[end] != '/')) {
    ++end;
  }
  for (; end > pos; --end) {
    if (MatchPieces(pieces, i + 1, path, end, captures, param + 1)) {
      captures[param].assign(path.data() + pos, end - pos);
      return true;
    }
  }
  return false;
}

}  // namespace

struct Router::Routes {
  struct Route {
    std::string method;
    std::vector<TemplatePiece> pieces;  // see CompiledTemplate
    size_t param_count = 0;
    bool greedy_tail = false;           // see CompiledTemplate
    HttpHandler handler;
    StreamingHttpHandler streaming;  // set instead of handler for a streaming route
  };
  std::vector<Route> list;  // added order; matching order after Install()

  // The first route of method (HEAD: GET's) that path matches, in matching
  // order, and its parameters as matched; nullopt when none does.
  std::optional<size_t> Match(const std::string& method, std::string_view path,
                              std::vector<std::string>& captures) const {
    const std::string_view m = method == "HEAD" ? std::string_view("GET") : method;
    for (size_t i = 0; i < list.size(); ++i) {
      const Route& route = list[i];
      if (route.method != m) continue;
      captures.assign(route.param_count, std::string());
      if (MatchPieces(route.pieces, 0, path, 0, captures, 0)) return i;
    }
    return std::nullopt;
  }
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
  server_.set_pre_routing_handler([clock, origins = options_.cors_origins,
                                   routes = routes_.get()](const httplib::Request& req,
                                                           httplib::Response& res) {
    // The Request object is httplib's own mutable one, handed over const.
    auto& request = const_cast<httplib::Request&>(req);
    BeginRequest(clock, request, res);
    t_matched.reset();
    // CORS headers on every answer to a listed origin; a preflight ends here.
    if (ApplyCors(origins, req, res)) return httplib::Server::HandlerResponse::Handled;
    // The route is found here, without httplib's regexes: a matched request
    // goes to httplib's dispatch under kRoutedPath (see Install).
    std::vector<std::string> captures;
    if (auto route = routes->Match(req.method, req.path, captures)) {
      t_matched = Matched{*route, std::move(captures), std::move(request.path)};
      request.path = kRoutedPath;
    }
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
    std::vector<std::string> captures;
    if (auto i = routes_->Match(method, req.path, captures)) {
      const Routes::Route& route = routes_->list[*i];
      routed = true;
      if (route.streaming) {
        std::string body = std::move(req.body);
        req.body.clear();
        route.streaming(req, res, captures, [&body](const BodyReceiver& receive) {
          return body.empty() || receive(body.data(), body.size());
        });
      } else {
        route.handler(req, res, captures);
      }
      CollectProvidedContent(res);
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

// The answer to a request with a body that no route takes: the body is read
// and discarded (never held), then 404.
void DiscardUnrouted(httplib::Response& res, const httplib::ContentReader& reader) {
  (void)reader([](const char*, size_t) { return true; });
  if (res.status == -1) res.status = 404;  // else httplib's 413 or 400
}

}  // namespace

void Router::Add(const std::string& method, const std::string& path_template,
                 RouteOptions options, RouteHandler handler) {
  CompiledTemplate t = CompileTemplate(path_template);
  HttpHandler wrapped = [this, label = path_template, params = t.params, options,
                         handler = std::move(handler)](const httplib::Request& req,
                                                       httplib::Response& res,
                                                       const std::vector<std::string>& captures) {
    Handle(req, res, ContextOf(res, label, params, captures), options, req.body,
           [&](RequestContext& ctx) { handler(req, res, ctx); });
    SendSmallBodyUncompressed(req, res);
  };
  routes_->list.push_back({method, std::move(t.pieces), t.params.size(), t.greedy_tail,
                           std::move(wrapped), nullptr});
}

void Router::RunMatched(const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader* reader) const {
  // The Request object is httplib's own mutable one, handed over const.
  auto& request = const_cast<httplib::Request&>(req);
  std::optional<Matched> matched = std::exchange(t_matched, std::nullopt);
  if (!matched) {  // a request whose own path is kRoutedPath: no route has it
    if (reader != nullptr) return DiscardUnrouted(res, *reader);
    res.status = 404;
    return;
  }
  request.path = std::move(matched->path);
  const Routes::Route& route = routes_->list[matched->route];
  if (route.streaming) {
    route.streaming(req, res, matched->captures, [reader](const BodyReceiver& receive) {
      return (*reader)(receive);
    });
    return;
  }
  // POST, PATCH and DELETE bodies are read here (httplib's content reader), so
  // that streaming routes may have a larger payload limit than the others.
  const auto limit = static_cast<uint64_t>(std::max<int64_t>(0, options_.max_body_bytes));
  if (reader == nullptr || ReadBufferedBody(request, res, *reader, limit)) {
    route.handler(req, res, matched->captures);
  }
}

void Router::Install() {
  // httplib matches in registration order: a template ending in {branch}
  // would take every longer path, so those go last.
  std::stable_partition(routes_->list.begin(), routes_->list.end(),
                        [](const Routes::Route& r) { return !r.greedy_tail; });
  // The pre-routing step matched the request against every route (in this
  // order) and showed httplib kRoutedPath: one route per method runs what it
  // found. httplib reads a DELETE's body too.
  server_.Get(kRoutedPath, [this](const httplib::Request& req, httplib::Response& res) {
    RunMatched(req, res, nullptr);
  });
  auto matched = [this](const httplib::Request& req, httplib::Response& res,
                        const httplib::ContentReader& reader) { RunMatched(req, res, &reader); };
  server_.Post(kRoutedPath, matched);
  server_.Patch(kRoutedPath, matched);
  server_.Delete(kRoutedPath, matched);
  auto unrouted = [](const httplib::Request&, httplib::Response& res,
                     const httplib::ContentReader& reader) { DiscardUnrouted(res, reader); };
  const std::string all = ".*";
  server_.Post(all, unrouted);
  server_.Put(all, unrouted);
  server_.Patch(all, unrouted);
  server_.Delete(all, unrouted);
}

void Router::Handle(const httplib::Request& req, httplib::Response& res, RequestContext ctx,
                    RouteOptions options, const std::string& fingerprint_body,
                    const std::function<void(RequestContext&)>& handler) {
  t_route = ctx.route;
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
                                  handler = std::move(handler)](
                                     const httplib::Request& req, httplib::Response& res,
                                     const std::vector<std::string>& captures,
                                     const BodyReader& read) {
    // The body is not known before the handler runs: its declared length
    // stands for it in the idempotency fingerprint.
    std::string length = req.has_header("Content-Length") ? req.get_header_value("Content-Length")
                                                          : std::string("unknown");
    Handle(req, res, ContextOf(res, label, params, captures), options,
           "streamed body of length " + length,
           [&](RequestContext& ctx) { handler(req, res, ctx, read); });
    SendSmallBodyUncompressed(req, res);
  };
  routes_->list.push_back({"POST", std::move(t.pieces), t.params.size(), t.greedy_tail, nullptr,
                           std::move(wrapped)});
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
