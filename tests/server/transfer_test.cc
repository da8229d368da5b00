// Export and import over real HTTP, streamed (issue #13, item 9): a database
// many times the transfer buffer goes out and comes back in pieces of at most
// that buffer (the server's own accounting: branchdb_transfer_buffer_peak_bytes
// and branchdb_transfer_chunks_total), byte for byte; an import is checked as
// its bytes arrive (size cap, header) and leaves no branch when refused
// (item 13's atomicity, without a crash: tests/crash/import_kill9_test.cc).
#include <httplib.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "catalog/catalog.h"
#include "server/http/metrics.h"
#include "tests/server/live_server.h"

namespace branchdb::testing {
namespace {

using nlohmann::json;

constexpr int64_t kBuffer = 16384;  // 4 pages: a few-MiB database is hundreds of pieces

// A SQLite file (page size 4096) with `rows` rows of 1000 random bytes each.
std::string MakeDatabase(int rows, const char* extra_sql = "") {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
  std::string sql =
      "PRAGMA page_size=4096; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < " +
      std::to_string(rows) + ") INSERT INTO t(v) SELECT randomblob(1000) FROM n;" + extra_sql;
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(db, "main", &size, 0);
  REQUIRE(bytes != nullptr);
  std::string out(reinterpret_cast<char*>(bytes), static_cast<size_t>(size));
  sqlite3_free(bytes);
  sqlite3_close(db);
  return out;
}

class TransferFixture : public LiveServer {
 public:
  explicit TransferFixture(int64_t max_branch_bytes = 1ll << 30,
                           int64_t max_request_bytes = 64ll << 20)
      : LiveServer([=](server::Config& c) {
          c.transfer_buffer_bytes = kBuffer;
          c.max_branch_bytes = max_branch_bytes;
          c.max_request_bytes = max_request_bytes;
        }) {
    token_ = AdminToken();
    auto r = Client().Post("/v1/projects", Auth(), R"({"name":"xfer"})", "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 201);
  }

  httplib::Headers Auth() const { return {{"Authorization", "Bearer " + token_}}; }

  httplib::Result Import(const std::string& branch, const std::string& body) {
    return Client().Post(("/v1/projects/xfer/import?branch=" + branch).c_str(), Auth(), body,
                         "application/vnd.sqlite3");
  }
  httplib::Result Export(const std::string& branch) {
    return Client().Get(("/v1/projects/xfer/branches/" + branch + "/export").c_str(), Auth());
  }
  json Sql(const std::string& branch, const std::string& sql) {
    auto r = Client().Post(("/v1/projects/xfer/branches/" + branch + "/sql").c_str(), Auth(),
                           json{{"sql", sql}}.dump(), "application/json");
    REQUIRE(r);
    INFO(r->body);
    REQUIRE(r->status == 200);
    return json::parse(r->body);
  }
  int BranchStatus(const std::string& branch) {
    auto r = Client().Get(("/v1/projects/xfer/branches/" + branch).c_str(), Auth());
    REQUIRE(r);
    return r->status;
  }
  double Metric(const char* name, const char* direction) {
    return server_->services().metrics->Value(name, {{"direction", direction}});
  }

  std::string token_;
};

std::string ErrorCode(const httplib::Result& r) {
  return json::parse(r->body)["error"]["code"].get<std::string>();
}

TEST_CASE_METHOD(TransferFixture,
                 "an import and an export of a database hundreds of times the transfer buffer "
                 "move it byte for byte, in pieces of at most that buffer",
                 "[transfer]") {
  std::string file = MakeDatabase(3000);  // ~3 MiB: ~190 pieces of 16 KiB
  REQUIRE(file.size() > 150 * kBuffer);
  auto imported = Import("copy", file);
  REQUIRE(imported);
  INFO(imported->body);
  REQUIRE(imported->status == 201);
  CHECK(Metric(server::http::kTransferChunks, "import") >= static_cast<double>(file.size() / kBuffer));
  CHECK(Metric(server::http::kTransferBufferPeak, "import") == kBuffer);

  auto exported = Export("copy");
  REQUIRE(exported);
  REQUIRE(exported->status == 200);
  CHECK(exported->get_header_value("Content-Length") == std::to_string(file.size()));
  CHECK(exported->body == file);
  CHECK(Metric(server::http::kTransferChunks, "export") >= static_cast<double>(file.size() / kBuffer));
  CHECK(Metric(server::http::kTransferBufferPeak, "export") == kBuffer);

  json rows = Sql("copy", "SELECT count(*) FROM t");
  CHECK(rows["results"][0]["rows"][0][0] == 3000);
  // One import checkpoint (after the branch's creation), not one per piece.
  auto cps = Client().Get("/v1/projects/xfer/branches/copy/checkpoints?limit=10", Auth());
  REQUIRE(cps);
  json list = json::parse(cps->body)["checkpoints"];
  REQUIRE(list.size() >= 2);
  CHECK(list[0]["summary"].get<std::string>().rfind("import of a ", 0) == 0);
  CHECK(list[1]["kind"] == "create");
}

TEST_CASE_METHOD(TransferFixture,
                 "an export pins one snapshot: writes during the download are not in it",
                 "[transfer]") {
  Sql("production", "CREATE TABLE t(v BLOB); INSERT INTO t SELECT randomblob(1000) FROM "
                    "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<3000) "
                    "SELECT i FROM n)");
  std::string body;
  bool wrote = false;
  auto r = Client().Get("/v1/projects/xfer/branches/production/export", Auth(),
                        [&](const char* data, size_t n) {
                          body.append(data, n);
                          if (!wrote) {  // after the first piece: the rest is still to come
                            wrote = true;
                            Sql("production", "DELETE FROM t");
                          }
                          return true;
                        });
  REQUIRE(r);
  REQUIRE(r->status == 200);
  REQUIRE(wrote);
  REQUIRE(Import("snapshot", body)->status == 201);
  CHECK(Sql("snapshot", "SELECT count(*) FROM t")["results"][0]["rows"][0][0] == 3000);
  CHECK(Sql("production", "SELECT count(*) FROM t")["results"][0]["rows"][0][0] == 0);
}

TEST_CASE_METHOD(TransferFixture,
                 "an import sent chunked (no Content-Length) streams like any other",
                 "[transfer]") {
  std::string file = MakeDatabase(200);
  auto r = Client().Post(
      "/v1/projects/xfer/import?branch=chunked", Auth(),
      [&](size_t offset, httplib::DataSink& sink) {
        if (offset < file.size()) {
          sink.write(file.data() + offset, std::min<size_t>(5000, file.size() - offset));
        } else {
          sink.done();
        }
        return true;
      },
      "application/vnd.sqlite3");
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 201);
  CHECK(Export("chunked")->body == file);
}

TEST_CASE_METHOD(TransferFixture,
                 "a refused import leaves no branch, and the name stays free for a retry",
                 "[transfer]") {
  std::string file = MakeDatabase(300);
  // Not SQLite, a wrong page size, a file cut short (whole pages and not),
  // pages of a corrupt b-tree: 400 invalid_database, nothing created.
  std::string wrong_page_size = file;
  wrong_page_size[16] = 0x02;  // 512
  wrong_page_size[17] = 0x00;
  std::string corrupt = file;
  for (size_t i = 3 * 4096; i < 6 * 4096; ++i) corrupt[i] = 'z';
  for (const std::string& body :
       {std::string(8192, 'x'), wrong_page_size, file.substr(0, file.size() / 2 / 4096 * 4096),
        file.substr(0, file.size() - 100), corrupt, std::string()}) {
    auto r = Import("retry", body);
    REQUIRE(r);
    INFO(r->status << " " << r->body);
    CHECK(r->status == 400);
    CHECK(BranchStatus("retry") == 404);
  }
  auto ok = Import("retry", file);
  REQUIRE(ok);
  REQUIRE(ok->status == 201);
  CHECK(Import("retry", file)->status == 409);  // branch_exists: the name is taken now
  // No hidden timeline is left behind by the refusals: only production and retry.
  auto store = server_->services().catalog->Store("xfer");
  REQUIRE(store.ok());
  CHECK((*store)->ListTimelines().size() == 2);
}

TEST_CASE("an import past the branch size cap is refused as it arrives and leaves no branch",
          "[transfer]") {
  TransferFixture f(65536);  // 16 pages
  std::string file = MakeDatabase(200);  // ~220 KiB
  auto r = f.Import("big", file);
  REQUIRE(r);
  INFO(r->body);
  CHECK(r->status == 413);
  CHECK(ErrorCode(r) == "branch_size_limit");
  CHECK(f.BranchStatus("big") == 404);
  // Sent chunked (no length to refuse up front): refused as the bytes arrive,
  // with never more than one buffer held.
  auto chunked = f.Client().Post(
      "/v1/projects/xfer/import?branch=big", f.Auth(),
      [&](size_t offset, httplib::DataSink& sink) {
        if (offset < file.size()) {
          sink.write(file.data() + offset, std::min<size_t>(5000, file.size() - offset));
        } else {
          sink.done();
        }
        return true;
      },
      "application/vnd.sqlite3");
  REQUIRE(chunked);
  CHECK(chunked->status == 413);
  CHECK(ErrorCode(chunked) == "branch_size_limit");
  CHECK(f.BranchStatus("big") == 404);
  CHECK(f.Metric(server::http::kTransferBufferPeak, "import") == kBuffer);
  auto small = f.Import("big", MakeDatabase(20));
  REQUIRE(small);
  CHECK(small->status == 201);
}

TEST_CASE("an import is capped by the branch size cap, not by max_request_bytes, which still "
          "caps every other body (sized or chunked) without breaking the connection",
          "[transfer]") {
  TransferFixture f(1ll << 30, 65536);
  std::string file = MakeDatabase(1000);  // ~1 MiB: 16 times max_request_bytes
  auto imported = f.Import("large", file);
  REQUIRE(imported);
  INFO(imported->body);
  CHECK(imported->status == 201);
  CHECK(f.Export("large")->body == file);

  auto c = f.Client();
  std::string big_sql = json{{"sql", "SELECT '" + std::string(100000, 'a') + "'"}}.dump();
  auto sized = c.Post("/v1/projects/xfer/branches/large/sql", f.Auth(), big_sql,
                      "application/json");
  REQUIRE(sized);
  CHECK(sized->status == 413);
  CHECK(ErrorCode(sized) == "payload_too_large");
  auto chunked = c.Post(
      "/v1/projects/xfer/branches/large/sql", f.Auth(),
      [&](size_t offset, httplib::DataSink& sink) {
        if (offset < big_sql.size()) {
          sink.write(big_sql.data() + offset, std::min<size_t>(4000, big_sql.size() - offset));
        } else {
          sink.done();
        }
        return true;
      },
      "application/json");
  REQUIRE(chunked);
  CHECK(chunked->status == 413);
  // No route: the body is read and dropped, never held (the server's payload
  // limit is an import's), and the answer is 404.
  auto nowhere = c.Post("/v1/nowhere", f.Auth(), big_sql, "application/json");
  REQUIRE(nowhere);
  CHECK(nowhere->status == 404);
  CHECK(ErrorCode(nowhere) == "route_not_found");
  // The same client's next request is answered as such (the refused bodies
  // were read to their end, not parsed as requests).
  auto next = c.Post("/v1/projects/xfer/branches/large/sql", f.Auth(),
                     R"({"sql":"SELECT count(*) FROM t"})", "application/json");
  REQUIRE(next);
  CHECK(next->status == 200);
}

// An import writes a database: branches:write alone creates the branch but
// may not fill it (docs/api.md: branches:write + sql:write).
TEST_CASE_METHOD(TransferFixture,
                 "an import needs sql:write as well as branches:write, and a refused one "
                 "leaves no branch",
                 "[transfer]") {
  std::string file = MakeDatabase(10);
  auto import_with = [&](const std::string& scope, const std::string& branch) {
    httplib::Headers h = {{"Authorization", "Bearer " + AdminToken(scope)}};
    auto r = Client().Post(("/v1/projects/xfer/import?branch=" + branch).c_str(), h, file,
                           "application/vnd.sqlite3");
    REQUIRE(r);
    INFO(r->body);
    return r;
  };
  auto refused = import_with("branches:write", "unfilled");
  CHECK(refused->status == 403);
  CHECK(ErrorCode(refused) == "insufficient_scope");
  CHECK(BranchStatus("unfilled") == 404);
  auto allowed = import_with("branches:write+sql:write", "filled");
  CHECK(allowed->status == 201);
  CHECK(Sql("filled", "SELECT count(*) FROM t")["results"][0]["rows"][0][0] == 10);
}

TEST_CASE_METHOD(TransferFixture,
                 "an import with an Idempotency-Key is answered once and replayed",
                 "[transfer]") {
  std::string file = MakeDatabase(50);
  httplib::Headers h = Auth();
  h.emplace("Idempotency-Key", "import-once");
  auto first = Client().Post("/v1/projects/xfer/import?branch=once", h, file,
                             "application/vnd.sqlite3");
  auto again = Client().Post("/v1/projects/xfer/import?branch=once", h, file,
                             "application/vnd.sqlite3");
  REQUIRE(first);
  REQUIRE(again);
  CHECK(first->status == 201);
  CHECK(again->status == 201);
  CHECK(again->get_header_value("Idempotent-Replayed") == "true");
  CHECK(again->body == first->body);
}

}  // namespace
}  // namespace branchdb::testing
