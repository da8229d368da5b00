// A tiny program on the installed SDK: connects with client credentials from
// the environment (BRANCHDB_URL, BRANCHDB_CLIENT_ID, BRANCHDB_CLIENT_SECRET),
// creates a project and a branch, runs SQL on it, and tells a missing branch
// (an API error) apart. Prints "consumer ok <value>" and exits 0 on success.
#include <branchdb/client.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace bdb = branchdb::client;

static int Fail(const char* what, const bdb::Error& e) {
  std::fprintf(stderr, "%s: %s\n", what, e.ToString().c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer PROJECT\n");
    return 2;
  }
  const std::string project = argv[1];
  bdb::ClientOptions options;
  const char* url = std::getenv("BRANCHDB_URL");
  const char* id = std::getenv("BRANCHDB_CLIENT_ID");
  const char* secret = std::getenv("BRANCHDB_CLIENT_SECRET");
  options.url = url ? url : "";
  options.client_id = id ? id : "";
  options.client_secret = secret ? secret : "";
  auto client = bdb::Client::Create(options);
  if (!client.ok()) return Fail("create client", client.error());
  bdb::Client& c = **client;

  bdb::CreateProjectRequest project_req;
  project_req.name = project;
  if (auto r = c.CreateProject(project_req); !r.ok()) return Fail("create project", r.error());
  bdb::SqlRequest create;
  create.sql = "CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER); INSERT INTO kv VALUES ('a', ?)";
  create.params = bdb::Json::array({41});
  if (auto r = c.Sql(project, "production", create); !r.ok()) return Fail("sql", r.error());

  bdb::CreateBranchRequest branch;
  branch.name = "dev/consumer";
  branch.ttl_seconds = 3600;
  if (auto r = c.CreateBranch(project, branch); !r.ok()) return Fail("branch", r.error());
  bdb::SqlRequest update;
  update.sql = "UPDATE kv SET v = v + 1; SELECT v FROM kv WHERE k = 'a'";
  auto result = c.Sql(project, "dev/consumer", update);
  if (!result.ok()) return Fail("sql on branch", result.error());

  auto missing = c.GetBranch(project, "no-such-branch");
  if (missing.ok() || !missing.error().IsNotFound()) {
    std::fprintf(stderr, "expected a 404 for a missing branch\n");
    return 1;
  }
  std::printf("consumer ok %s\n", result->Scalar().dump().c_str());
  return 0;
}
