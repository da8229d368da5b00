// The input format of router_fuzz.cc, shared with fuzz_seeds.cc (which writes
// its seed corpus). An input is up to kMaxRequests requests, each:
//   u8 route     index into kRoutes (method + path template), mod its size;
//   u8 project   u8 branch    names for {project} and {branch} (and
//                {client_id}): below 128, kNames[i mod
//                its size]; else a u8 length (mod 64) and that many raw bytes;
//   u8 flags     bits 0-1 authorization: admin bearer / none / garbage bearer /
//                Basic; bit 2: an Idempotency-Key (bits 4-7 pick it); bit 3:
//                form content type (else JSON);
//   u16 query length (little-endian), query bytes (sent as "?..." if any);
//   u16 body length, body bytes (the last request's body is the rest).
#ifndef BRANCHDB_TESTS_FUZZ_ROUTER_FUZZ_INPUT_H_
#define BRANCHDB_TESTS_FUZZ_ROUTER_FUZZ_INPUT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/routes/table.h"

namespace branchdb::fuzz {

inline constexpr int kMaxRequests = 4;

struct Route {
  const char* method;
  const char* path;  // {project}, {branch}, {client_id} replaced by the chosen names
};

// A few requests no route takes.
inline constexpr Route kUnrouted[] = {
    {"HEAD", "/v1/projects/{project}/branches/{branch}"},
    {"GET", "/v1/projects/{project}/branches/{branch}/{branch}"},
    {"PUT", "/v1/projects/{project}"},
};

// Every route of the API's table (server/routes/table.h), in its order, then
// kUnrouted.
inline constexpr size_t kRouteCount =
    server::routes::kApiRouteCount + sizeof(kUnrouted) / sizeof(kUnrouted[0]);
inline constexpr std::array<Route, kRouteCount> kRoutes = [] {
  std::array<Route, kRouteCount> routes{};
  size_t i = 0;
  for (const auto& r : server::routes::kApiRoutes) routes[i++] = {r.method, r.path};
  for (const auto& r : kUnrouted) routes[i++] = r;
  return routes;
}();

inline constexpr const char* kNames[] = {"p",     "main", "dev",     "dev%2Falex", "q",   "",
                                  "..",    "%",    "%ZZ",     "a%00b",      "%2F", "main/sql",
                                  "shop",  "dev/x", "MAIN",   "p%2Fq"};

inline constexpr size_t kNameCount = sizeof(kNames) / sizeof(kNames[0]);

// Index of route (method, path) in kRoutes; kRouteCount when absent.
inline size_t RouteIndex(std::string_view method, std::string_view path) {
  for (size_t i = 0; i < kRouteCount; ++i) {
    if (method == kRoutes[i].method && path == kRoutes[i].path) return i;
  }
  return kRouteCount;
}

// Index of name in kNames; kNameCount when absent.
inline size_t NameIndex(std::string_view name) {
  for (size_t i = 0; i < kNameCount; ++i) {
    if (name == kNames[i]) return i;
  }
  return kNameCount;
}

// One encoded request (not the last of an input: its body has a length).
inline std::string EncodeRequest(size_t route, size_t project, size_t branch, uint8_t flags,
                                 std::string_view query, std::string_view body) {
  std::string out;
  out += static_cast<char>(route);
  out += static_cast<char>(project);
  out += static_cast<char>(branch);
  out += static_cast<char>(flags);
  out += static_cast<char>(query.size() & 0xff);
  out += static_cast<char>(query.size() >> 8);
  out += query;
  out += static_cast<char>(body.size() & 0xff);
  out += static_cast<char>(body.size() >> 8);
  out += body;
  return out;
}

}  // namespace branchdb::fuzz

#endif  // BRANCHDB_TESTS_FUZZ_ROUTER_FUZZ_INPUT_H_
