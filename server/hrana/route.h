// libSQL's Hrana over HTTP on every branch: the HTTP glue (protocol.h decodes,
// session.h runs, stream.h keeps streams).
//
//   GET  /libsql/{project}/{branch}/v2, .../v3    200: version probes
//   POST /libsql/{project}/{branch}/v2/pipeline   Hrana 2
//   POST /libsql/{project}/{branch}/v3/pipeline   Hrana 3 (JSON)
//   POST /libsql/{project}/{branch}/v3/cursor     Hrana 3 cursor (NDJSON)
// ("v3-protobuf" is not served: a client probing it falls back to JSON.)
//
// The branch is everything between the project and the protocol path, its
// '/' raw or as %2F. A client resolves "v2/pipeline" against the base URL, so
// a base URL without its trailing '/' loses its last segment
// (".../shop/dev/alex" posts to ".../shop/dev/v2/pipeline"). Such a request
// must never silently reach another branch: a stream is opened on branch B
// (after auth: names are never told to who may not see them; a database
// credential of "B/<segment>" is refused on B anyway) only when no branch
// named "B/<segment>" exists (else 400 URL_AMBIGUOUS,
// saying to end the URL with '/', or, for B itself, with "/~/"); a branch
// part ending in "/~" names exactly the branch before it. A branch part that
// is empty (a one-segment branch that lost its '/') is 404 with the same hint.
//
// Auth as the REST /sql route: a bearer access token with sql:read (writes
// need sql:write too, else they are refused) or a database credential of the
// branch (read or read_write). Errors are Hrana's ({"message","code"}), at
// HTTP level too (401 with WWW-Authenticate, 400 for a malformed pipeline).
//
// These are not REST API routes (they are libSQL's protocol, not in
// docs/openapi.yaml, not MCP tools, not idempotent), so they are registered
// here rather than in routes/table.h; they share the router (request ids,
// access log, metrics, admission of SQL) like every route.
#ifndef BRANCHDB_SERVER_HRANA_ROUTE_H_
#define BRANCHDB_SERVER_HRANA_ROUTE_H_

#include "server/hrana/stream.h"
#include "server/services.h"

namespace branchdb::server {
namespace http {
class Router;
}
namespace hrana {

// Adds the routes above to router. REQUIRES: before Router::Install();
// services and streams outlive router.
void RegisterHranaRoutes(http::Router& router, Services& services, StreamTable* streams);

}  // namespace hrana
}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_HRANA_ROUTE_H_
