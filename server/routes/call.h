// Call: what a route handler (routes/table.h) gets. Internal to server/routes.
#ifndef BRANCHDB_SERVER_ROUTES_CALL_H_
#define BRANCHDB_SERVER_ROUTES_CALL_H_

#include <optional>
#include <string>

#include "auth/auth.h"
#include "server/http/router.h"
#include "server/routes/table.h"
#include "server/services.h"

namespace branchdb::server::routes {

struct Call {
  Services& s;
  const httplib::Request& req;
  httplib::Response& res;
  http::RequestContext& ctx;
  // The path's {project} and {branch} ("" when the route has none).
  std::string project;
  std::string branch;
  // The caller, authorized for the route's operation (Access::kOperation
  // routes); nullopt on the others.
  std::optional<auth::Principal> who;
  // kStreaming routes: the request body, to read once (http::BodyReader).
  const http::BodyReader* body = nullptr;
  // Set by a kCatalog handler whose 2xx concerns another project than the
  // path's (RegisterRoutes waits for it in `remote` durability): the project
  // it created, by name.
  std::string catalog_project;
  // Set by the project deletion, before it deletes: the project's id, and
  // whether it was in `remote` durability (then the 204 waits for the
  // deletion mark in the bucket).
  std::string deleted_id;
  bool deleted_remote = false;
};

}  // namespace branchdb::server::routes

#endif  // BRANCHDB_SERVER_ROUTES_CALL_H_
