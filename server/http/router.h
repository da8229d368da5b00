// Router: registers the API's routes on an httplib::Server with what every
// route shares:
//   - X-Request-Id: echoed when the client sent a sane one (1..128 of
//     [A-Za-z0-9._:-]), generated (32 hex chars) otherwise; in the response and
//     the access log.
//   - an access log line per request through spdlog (method, path without the
//     query string, status, duration, request id, route; never headers, never
//     tokens); every request-derived value escaped by LogValue (log_value.h);
//   - error bodies (status >= 400) never show server paths: each occurrence of
//     a RouterOptions::redacted_paths entry becomes "<data_dir>", and the
//     unredacted body goes to the log (event=error_redacted);
//   - metrics: requests by route/method/status and a latency histogram;
//   - exceptions escaping a handler become a 500 JSON error; unknown paths a
//     404 JSON error;
//   - admission of the routes that run SQL (RouterOptions::admission);
//   - Idempotency-Key on POST routes (see idempotency.h): replays carry the
//     header "Idempotent-Replayed: true". Responses with status < 500, except
//     401/403/408/409/429, are remembered.
//
// The per-request state (start time, request id, route label) lives in
// thread_locals: httplib runs pre-routing, the handler and the logger of one
// request on the same worker thread.
//
// Routes are given as path templates, as docs/openapi.yaml writes them
// ("/v1/projects/{project}/branches/{branch}/sql"); the template is also the
// route's label in logs and metrics. A {name} matches one path segment, except
// {branch}, which matches the rest of the path up to the template's next
// literal part: branch names may contain '/', sent raw or as "%2F". A "%2F"
// is always a character of a name, never a separator: "/branches/feature%2Fschema"
// is the branch "feature/schema", not the schema route of branch "feature"
// (routes are matched against the path with each encoded slash held as a
// placeholder; RequestContext::path_params puts the '/' back). Routes are
// matched in the order they were added, except that a template ending in
// {branch} goes after every other (so ".../branches/{branch}" never takes
// ".../branches/{branch}/sql"). A {branch} match holds no '\n' or '\r'.
//
// The router matches the templates itself, in its pre-routing step, segment
// by segment (what the regexes "([^/]+)" and "(.+)" would capture, without
// std::regex: httplib tries its routes' regexes in order, and a match with a
// spanning parameter costs microseconds); httplib is given one route per
// method, which runs the route found.
//
// Dispatch runs a registered route in-process (no socket): the same matching
// (in the order above, with "%2F" held as a
// placeholder), the same handler, auth (the caller's
// Authorization header), idempotency, error bodies, metrics and access log.
// It saves and restores the calling thread's per-request state, so a handler
// may dispatch another route (the MCP endpoint does).
//
// Thread-safety: register routes before the server starts; handlers run
// concurrently.
#ifndef BRANCHDB_SERVER_HTTP_ROUTER_H_
#define BRANCHDB_SERVER_HTTP_ROUTER_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/auth.h"
#include "base/env.h"
#include "server/http/admission.h"

namespace httplib {
class Server;
class ContentReader;
struct Request;
struct Response;
}  // namespace httplib

namespace spdlog {
class logger;
}

namespace branchdb::server::http {

class Metrics;
class IdempotencyStore;
class Admission;

struct RequestContext {
  std::string request_id;
  std::string route;  // the route's template, e.g. "/v1/projects/{project}"
  // The template's parameters, decoded (an encoded slash is a '/'), in
  // template order: {{"project", "shop"}, {"branch", "dev/alex"}}.
  std::vector<std::pair<std::string, std::string>> path_params;

  // The request's bearer token, verified at most once per request: by the
  // first of admission, idempotency and the handler to ask
  // (http::Authenticated, auth_guard.h); the others reuse the verdict. The
  // next request verifies its own token again, so a revocation or expiry
  // counts from the very next request.
  struct Bearer {
    std::optional<auth::Principal> principal;  // nullopt: refused, see error
    auth::BearerError error;
  };
  std::optional<Bearer> bearer;

  // The value of path parameter `name`, or "" when the route has none.
  std::string Param(std::string_view name) const;
};

// What a route takes besides its handler.
struct RouteOptions {
  // Take a slot of RouterOptions::admission first (the routes that run SQL
  // or read a whole branch), keyed by principal_of; without one the request
  // gets 429 too_many_requests with Retry-After: 1. Unauthenticated requests
  // are not admitted: their handler refuses them.
  bool admission = false;
  // POST only: honour Idempotency-Key (not for answers holding a secret).
  bool idempotent = false;
};

// A request for Router::Dispatch, as it would arrive over HTTP.
struct DispatchRequest {
  std::string method;  // "GET", "POST", "PATCH", "DELETE", "HEAD"
  // The request target as sent on the wire: percent-encoded path, optionally
  // "?query" (e.g. "/v1/projects/shop/branches/dev%2Falex/diff?kind=data").
  std::string path;
  std::string body;
  std::multimap<std::string, std::string> headers;  // names case-insensitive
  std::multimap<std::string, std::string> params;   // query parameters, added to path's
  std::string remote_addr;                          // the client's address, if any
};

struct DispatchResponse {
  int status = 0;
  std::string body;
  std::multimap<std::string, std::string> headers;

  // The first value of header `name` (case-insensitive), or "".
  std::string Header(const std::string& name) const;
};

using RouteHandler =
    std::function<void(const httplib::Request&, httplib::Response&, RequestContext&)>;

// A streaming route's request body, read in pieces as they arrive (httplib's
// content reader): calls receiver with each piece, in order, until the body
// ends; false when it could not be read whole (connection lost, malformed
// chunking, a Content-Length past the server's payload limit) or receiver
// returned false. Read it at most once. A handler that answers without reading
// the body should read it anyway (discarding it), so that the connection stays
// in step for its next request.
using BodyReceiver = std::function<bool(const char* data, size_t size)>;
using BodyReader = std::function<bool(const BodyReceiver& receiver)>;
using StreamingHandler = std::function<void(const httplib::Request&, httplib::Response&,
                                            RequestContext&, const BodyReader&)>;

struct RouterOptions {
  Metrics* metrics = nullptr;                // required; not owned
  IdempotencyStore* idempotency = nullptr;   // optional; not owned
  Clock* clock = nullptr;                    // required; not owned (latency)
  std::shared_ptr<spdlog::logger> logger;    // default: spdlog's default logger
  // Bodies of POST/PATCH routes other than streaming ones are read into memory
  // up to this many bytes; a larger one is read and discarded, and answered
  // 413 payload_too_large (the server's payload limit, set higher for
  // streaming routes, applies first). Default: 0, no limit but the server's.
  int64_t max_body_bytes = 0;
  // The idempotency and admission scope of a request (the authenticated
  // principal's client id; "" when unauthenticated). It may keep what it
  // verified in the context (RequestContext::bearer) for the handler. Default:
  // "" for everyone.
  std::function<std::string(const httplib::Request&, RequestContext&)> principal_of;
  // The slots of the routes added with RouteOptions::admission.
  Admission* admission = nullptr;  // optional; not owned
  // Server paths (the data directory, absolute) no error body may show.
  std::vector<std::string> redacted_paths;
  // Origins allowed by CORS (cors.h); empty: CORS off.
  std::vector<std::string> cors_origins;
};

class Router {
 public:
  // Installs the pre-routing hook, logger, error and exception handlers on server.
  Router(httplib::Server& server, RouterOptions options);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Adds a route: method "GET", "POST", "PATCH" or "DELETE" (a GET route also
  // answers HEAD), path_template as described above. REQUIRES: before Install().
  void Add(const std::string& method, const std::string& path_template, RouteOptions options,
           RouteHandler handler);
  // A POST whose handler reads the body itself (req.body stays empty), so that
  // an upload of any size needs no memory of that size. With
  // options.idempotent, Idempotency-Key is honoured with a fingerprint of the
  // method, target and declared body length (the body is not known before the
  // handler runs).
  void AddStreaming(const std::string& path_template, RouteOptions options,
                    StreamingHandler handler);

  // Registers the added routes with the server, in matching order, and after
  // them the answer to a POST, PUT, PATCH or DELETE with a body that no route
  // takes: the body is read and discarded (never held: the server's payload
  // limit is set for imports), then 404. REQUIRES: called once, after the last
  // Add.
  void Install();

  httplib::Server& server() { return server_; }

  // Runs the route that request matches in the calling thread, as if it came
  // over HTTP, and returns its response (404 route_not_found JSON when no
  // route matches). Never throws: a handler's exception is a 500. HEAD runs
  // the GET route without body. A streaming route reads request.body as its
  // body; a response written by a content provider is collected into body. The socket's limits (request size, timeouts)
  // are the caller's business. REQUIRES: routes registered (not during
  // registration). Safe to call concurrently and from inside a handler.
  DispatchResponse Dispatch(const DispatchRequest& request) const;

 private:
  // A route's handler gets its template's parameters as matched, in order.
  using HttpHandler = std::function<void(const httplib::Request&, httplib::Response&,
                                         const std::vector<std::string>& captures)>;
  struct Routes;

  using StreamingHttpHandler =
      std::function<void(const httplib::Request&, httplib::Response&,
                         const std::vector<std::string>& captures, const BodyReader&)>;

  // What every route's request goes through: its context (label, params),
  // admission, idempotency (fingerprint_body standing for the body), then
  // handler.
  void Handle(const httplib::Request& req, httplib::Response& res, RequestContext ctx,
              RouteOptions options, const std::string& fingerprint_body,
              const std::function<void(RequestContext&)>& handler);
  // Takes a place for the request's client in options_.admission (into slot,
  // held until the request ends); false, with 429 and Retry-After sent, when
  // the client or the server is at its limit.
  bool Admit(const httplib::Request& req, httplib::Response& res, RequestContext& ctx,
             std::optional<Result<Admission::Slot>>& slot);
  // Runs the route the pre-routing step matched for this request (reader:
  // httplib's content reader of a POST, PATCH or DELETE).
  void RunMatched(const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader* reader) const;
  // Runs run() under the request's Idempotency-Key; fingerprint_body stands
  // for the body in the key's fingerprint.
  void HandleIdempotent(const httplib::Request& req, httplib::Response& res, RequestContext& ctx,
                        const std::string& fingerprint_body, const std::function<void()>& run);

  httplib::Server& server_;
  RouterOptions options_;
  std::unique_ptr<Routes> routes_;  // what was added, in matching order after Install()
};

// Generates a request id (32 lowercase hex characters).
std::string NewRequestId();

// Percent-decodes one path segment ("dev%2Falex" ->
// "dev/alex"). InvalidArgument for a malformed escape.
Result<std::string> DecodePathSegment(const std::string& segment);

// Percent-encodes a name for a path segment or a query value (everything but
// A-Z a-z 0-9 - . _ ~): "dev/alex" -> "dev%2Falex". The inverse of DecodePathSegment.
std::string EncodePathSegment(std::string_view name);

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_ROUTER_H_
