// Writes the seed corpora of the log and vfs fuzz targets (committed under
// tests/fuzz/corpus/<target>/, see docs/fuzzing.md):
//   fuzz_seeds log DIR   record metadata, segment header, footer, GC manifest,
//                        a raw segment of valid records, edit programs;
//   fuzz_seeds vfs DIR   SQL over the template database, raw database images;
//   fuzz_seeds router DIR  request sequences over every route.
// The seeds are deterministic; regenerate them after a format change with
//   build/tests/fuzz/fuzz_seeds log tests/fuzz/corpus/log   (and vfs, router).
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/env.h"
#include "storage/log_format.h"
#include "tests/fuzz/router_fuzz_input.h"

namespace {

using namespace branchdb;
using namespace branchdb::storage;
using namespace branchdb::storage::internal;

std::string g_dir;

void Write(const std::string& name, std::string_view bytes) {
  Status s = Env::Default()->WriteFileAtomic(JoinPath(g_dir, name), bytes);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::exit(1);
  }
}

std::string U16(uint32_t v) { return {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)}; }

RecordMeta Meta(RecordKind kind, Lsn lsn, std::vector<PageEntry> entries, uint32_t size) {
  RecordMeta m;
  m.kind = kind;
  m.lsn = lsn;
  m.timeline = 1;
  m.run_start = 1;
  m.time_micros = 1767225600000000 + static_cast<int64_t>(lsn);
  m.db_size_pages = size;
  m.annotation = "seed";
  m.entries = std::move(entries);
  return m;
}

// A record: prefix, then one image block per kImage entry (format 5: each
// page has a hole, left out of its block).
std::string Record(RecordMeta m) {
  m.flags |= kRecordFlagHoles;
  std::string images;
  char fill = 'a';
  for (PageEntry& e : m.entries) {
    if (e.type != EntryType::kImage) continue;
    std::string page(kPageSize, fill++);
    std::fill(page.begin() + 100, page.begin() + 3000, '\0');
    e.hole = AppendImageBlock(&images, page);
  }
  return EncodeRecordPrefix(EncodeMeta(m)) + images;
}

void LogSeeds() {
  // Mode 0: decoders.
  const std::string kDecode(1, '\0');
  RecordMeta create = Meta(RecordKind::kCreate, 1, {}, 0);
  RecordMeta commit = Meta(RecordKind::kCommit, 2, {{1, EntryType::kImage}, {3, EntryType::kZero}}, 3);
  RecordMeta reset = Meta(RecordKind::kReset, 3, {}, 2);
  reset.base = 2;
  reset.base_run_start = 1;
  Write("meta_create", kDecode + EncodeMeta(create));
  Write("meta_commit", kDecode + EncodeMeta(commit));
  Write("meta_reset", kDecode + EncodeMeta(reset));
  SegmentHeader h;
  h.number = 7;
  h.flags = kSegmentFlagCompacted;
  h.supersedes = {3, 4};
  Write("segment_header", kDecode + EncodeSegmentHeader(h));
  Write("footer", kDecode + EncodeFooter({{36, EncodeMeta(create)}, {120, EncodeMeta(commit)}}, 400));
  Manifest man;
  man.last_lsn = 9;
  man.last_timeline = 2;
  man.next_segment = 3;
  man.collected = {{2, 4}};
  man.runs = {ManifestRun{1, 1, 0, 0, 3, {{2, 1767225600000002}}}};
  man.timelines = {ManifestTimeline{1, 9, 1, 1, 0, 1767225600000001}};
  Write("manifest", kDecode + EncodeManifest(man));

  // Mode 1: the records after a valid segment header.
  RecordMeta drop = Meta(RecordKind::kDrop, 3, {}, 3);
  Write("segment_records", "\x01" + Record(create) + Record(commit) + Record(drop));
  Write("segment_torn", "\x01" + Record(create) + Record(commit).substr(0, 100));

  // Modes 2/3: edit programs on the template store (log_fuzz.cc, ApplyOps):
  // file index, op, u16 offset, operands.
  Write("edit_none", "\x02");
  Write("edit_flip_header", std::string("\x02\x00\x00", 3) + U16(9) + "\x03");
  Write("edit_truncate_tail", std::string("\x02\x03\x01", 3) + U16(5000));
  Write("edit_truncate_footer", std::string("\x02\x00\x01", 3) + U16(9000));
  Write("edit_delete_gcstate", std::string("\x02\x00\x04", 3) + U16(0));
  Write("edit_flip_meta", std::string("\x03\x01\x00", 3) + U16(50) + "\x01");
  Write("edit_splice", std::string("\x02\x02\x05", 3) + U16(40) + "\x01" + U16(40) + U16(300));
  Write("edit_rename", std::string("\x02\x01\x06", 3) + U16(0) + "\x07");
  Write("edit_overwrite_trailer",
        std::string("\x02\x01\x02", 3) + U16(0xffff) + "\x08" + "BRDBFTR1");
}

std::string DatabaseImage(const char* sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
      sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
    std::exit(1);
  }
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(db, "main", &size, 0);
  std::string out(reinterpret_cast<char*>(bytes), static_cast<size_t>(size));
  sqlite3_free(bytes);
  sqlite3_close(db);
  return out;
}

// flags, u16 image length, image part, SQL (vfs_fuzz.cc).
std::string VfsInput(uint8_t flags, std::string_view image, std::string_view sql) {
  return std::string(1, static_cast<char>(flags)) + U16(static_cast<uint32_t>(image.size())) +
         std::string(image) + std::string(sql);
}

void VfsSeeds() {
  // Flag bit 0: patch the template database; bit 1: read-only connection.
  Write("template_read", VfsInput(1, "", "SELECT * FROM t WHERE b > 'row010'; SELECT * FROM kv;"
                                         "SELECT * FROM big; SELECT count(*) FROM log;"));
  Write("template_write",
        VfsInput(1, "", "INSERT INTO t(b, c) VALUES ('new', randomblob(5000));"
                        "UPDATE kv SET v = v || 'x'; DELETE FROM t WHERE a % 3 = 0;"
                        "CREATE INDEX t_c ON t(c); VACUUM;"));
  Write("template_txn", VfsInput(1, "", "BEGIN; INSERT INTO kv VALUES ('e', 5); SAVEPOINT s;"
                                        "DELETE FROM t; ROLLBACK TO s; COMMIT;"
                                        "BEGIN; DELETE FROM kv; ROLLBACK;"));
  Write("template_readonly", VfsInput(3, "", "SELECT sum(length(c)) FROM t; INSERT INTO kv VALUES ('z', 0);"));
  Write("template_pragmas", VfsInput(1, "", "PRAGMA journal_mode=WAL; PRAGMA page_size=1024; VACUUM;"
                                            "PRAGMA journal_mode=OFF; PRAGMA freelist_count;"
                                            "PRAGMA incremental_vacuum; PRAGMA page_count;"));
  // Patch ops: page index, u16 offset, length, bytes.
  Write("template_patch_header",
        VfsInput(1, std::string("\x00", 1) + U16(28) + "\x04" + std::string("\x00\x00\x00\x09", 4),
                 "SELECT count(*) FROM t;"));
  Write("template_patch_btree",
        VfsInput(1, std::string("\x02", 1) + U16(0) + "\x02" + std::string("\x0d\x00", 2),
                 "SELECT * FROM t ORDER BY b; DELETE FROM t WHERE a < 10;"));
  Write("raw_empty", VfsInput(0, "", "CREATE TABLE a(x); INSERT INTO a VALUES (1), (zeroblob(9000));"
                                    "SELECT * FROM a;"));
  std::string small = DatabaseImage(
      "CREATE TABLE s(x INTEGER PRIMARY KEY, y); INSERT INTO s VALUES (1, 'one'), (2, 'two');");
  Write("raw_small_db", VfsInput(0, small, "SELECT * FROM s; UPDATE s SET y = upper(y);"));
  std::string truncated = small.substr(0, 100);
  Write("raw_header_only", VfsInput(0, truncated, "SELECT * FROM s; CREATE TABLE t(a);"));
}

// One request of a router_fuzz input (router_fuzz_input.h), on project "p".
std::string Req(std::string_view method, std::string_view path, std::string_view branch,
                std::string_view query, std::string_view body, uint8_t flags = 0) {
  size_t route = fuzz::RouteIndex(method, path);
  size_t b = fuzz::NameIndex(branch);
  if (route == fuzz::kRouteCount || b == fuzz::kNameCount) {
    std::fprintf(stderr, "no route %s %s or name %s\n", std::string(method).c_str(),
                 std::string(path).c_str(), std::string(branch).c_str());
    std::exit(1);
  }
  return fuzz::EncodeRequest(route, fuzz::NameIndex("p"), b, flags, query, body);
}

void RouterSeeds() {
  const std::string kBranch = "/v1/projects/{project}/branches/{branch}";
  Write("healthz", Req("GET", "/healthz", "main", "", "", 1));
  Write("sql_read", Req("POST", kBranch + "/sql", "main", "", R"j({"sql":"SELECT * FROM t"})j"));
  Write("sql_write_params",
        Req("POST", kBranch + "/sql", "dev", "",
            R"j({"sql":"INSERT INTO t(b) VALUES (?), (:x)","params":["a",{"$blob":"AAE="}]})j"));
  Write("sql_idempotent", Req("POST", kBranch + "/sql", "dev", "",
                              R"j({"sql":"INSERT INTO t(b) VALUES ('i')"})j", 4) +
                              Req("POST", kBranch + "/sql", "dev", "",
                                  R"j({"sql":"INSERT INTO t(b) VALUES ('i')"})j", 4));
  Write("branch_create_delete",
        Req("POST", "/v1/projects/{project}/branches", "main", "",
            R"j({"name":"dev/x","parent":"main","ttl_seconds":60})j") +
            Req("PATCH", kBranch, "dev/x", "", R"j({"protected":true,"ttl_seconds":null})j") +
            Req("DELETE", kBranch, "dev/x", "", ""));
  Write("rollback_reset", Req("POST", kBranch + "/rollback", "dev", "", R"j({"to":{"lsn":1}})j") +
                              Req("POST", kBranch + "/reset", "dev", "", "{}"));
  Write("promote", Req("POST", kBranch + "/promote", "dev", "",
                       R"j({"mode":"auto","dry_run":true,"verify":"SELECT 1"})j"));
  Write("diff_schema_export",
        Req("GET", kBranch + "/diff", "dev", "base=main&kind=data&tables=t", "") +
            Req("GET", kBranch + "/schema", "main", "lsn=1", "") +
            Req("GET", kBranch + "/export", "main", "", ""));
  Write("checkpoints", Req("POST", kBranch + "/checkpoints", "main", "", R"j({"label":"v1"})j") +
                           Req("GET", kBranch + "/checkpoints", "main", "limit=1", "") +
                           Req("POST", kBranch + "/rollback", "main", "",
                               R"j({"to":{"label":"v1"}})j"));
  Write("compute_credentials", Req("GET", kBranch + "/compute", "dev", "", "") +
                                   Req("POST", kBranch + "/compute/suspend", "dev", "", "") +
                                   Req("POST", kBranch + "/credentials", "dev", "",
                                       R"j({"access":"read","ttl_seconds":60})j"));
  Write("project_lifecycle",
        Req("POST", "/v1/projects", "main", "", R"j({"name":"shop"})j") +
            Req("PATCH", "/v1/projects/{project}", "main", "", R"j({"restore_window_seconds":3600})j") +
            Req("GET", "/v1/projects", "main", "", ""));
  Write("oauth", Req("POST", "/oauth/token", "main", "",
                     "grant_type=client_credentials&client_id=x&client_secret=y", 9) +
                     Req("POST", "/oauth/introspect", "main", "", "token=abc", 8) +
                     Req("GET", "/.well-known/oauth-authorization-server", "main", "", ""));
  Write("clients", Req("POST", "/v1/clients", "main", "",
                       R"j({"name":"ci","scopes":["sql:read","branches:read"]})j") +
                       Req("GET", "/v1/clients", "main", "", ""));
  Write("import", Req("POST", "/v1/projects/{project}/import", "main", "branch=imported",
                      DatabaseImage("CREATE TABLE i(x); INSERT INTO i VALUES (42);")));
  Write("mcp", Req("POST", "/mcp", "main", "",
                   R"j({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}})j") +
                   Req("POST", "/mcp", "main", "",
                       R"j({"jsonrpc":"2.0","id":2,"method":"tools/list"})j"));
  Write("unauthenticated", Req("POST", kBranch + "/sql", "main", "", R"j({"sql":"SELECT 1"})j", 1) +
                               Req("GET", "/v1/projects", "main", "", "", 2) +
                               Req("GET", "/v1/projects", "main", "", "", 3));
  Write("odd_names", Req("GET", kBranch, "%ZZ", "", "") + Req("GET", kBranch, "dev%2Falex", "", "") +
                         Req("GET", "/v1/projects/{project}/branches/{branch}/{branch}", "main/sql", "", "") +
                         Req("PUT", "/v1/projects/{project}", "..", "", "{}"));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view target = argc == 3 ? argv[1] : "";
  if (target != "log" && target != "vfs" && target != "router") {
    std::fprintf(stderr, "usage: fuzz_seeds log|vfs|router DIR\n");
    return 2;
  }
  g_dir = argv[2];
  if (Status s = Env::Default()->CreateDirs(g_dir); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  if (target == "log") LogSeeds();
  if (target == "vfs") VfsSeeds();
  if (target == "router") RouterSeeds();
  return 0;
}
