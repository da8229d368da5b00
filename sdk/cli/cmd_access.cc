// branchdb credential | client create|list|delete | token | compute | suspend
#include <cstdio>
#include <iostream>
#include <memory>

#include "sdk/cli/cli.h"
#include "sdk/cli/format.h"

namespace branchdb::cli {

namespace {

std::string FormatMillis(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f ms", ms);
  return buf;
}

std::string JoinWords(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// "a b,c" -> {"a", "b", "c"}.
std::vector<std::string> SplitList(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    std::string cur;
    for (char ch : item + ",") {
      if (ch == ',' || ch == ' ') {
        if (!cur.empty()) out.push_back(cur);
        cur.clear();
      } else {
        cur += ch;
      }
    }
  }
  return out;
}

void PrintCompute(const std::string& branch, const bdb::ComputeState& s, std::ostream& out) {
  PrintFields(out, {{"branch", branch},
                    {"state", s.state},
                    {"in use", std::to_string(s.in_use)},
                    {"cold starts", std::to_string(s.cold_starts)},
                    {"last used", s.last_used_at.value_or("never")},
                    {"last cold start",
                     s.last_cold_start_ms ? FormatMillis(*s.last_cold_start_ms) : std::string("-")},
                    {"idle timeout", s.idle_timeout_seconds ? FormatDuration(s.idle_timeout_seconds)
                                                            : std::string("never")}});
}

// What the subcommands of RegisterAccessCommands parse into (one parse per process).
struct AccessOpts {
  std::string branch, name, id;
  std::vector<std::string> scopes, projects, branches;
  bool read_write = false;
  int64_t ttl = -1;
  int64_t max_branch_ttl = -1;
};
using AccessOptsPtr = std::shared_ptr<AccessOpts>;

void RegisterCredential(CLI::App& app, Commands& commands, const AccessOptsPtr& o) {
  CLI::App* cred = AddCommand(
      app, "credential",
      "Issue a short-lived database credential: a bearer token for this branch's SQL only. "
      "Prints the credential on stdout (details on stderr)",
      {"branchdb credential dev/alex --ttl 15m",
       "CRED=$(branchdb credential dev/alex --read-write); curl -H \"Authorization: Bearer "
       "$CRED\" -d '{\"sql\":\"SELECT 1\"}' $URL/v1/projects/shop/branches/dev%2Falex/sql"});
  cred->add_option("BRANCH", o->branch, "Branch name")->required();
  cred->add_flag("--read-write", o->read_write, "Allow writes (default: read only)");
  AddDurationOption(cred, "--ttl", &o->ttl,
                    "Lifetime, 60s..1h (default: 15m; the server's auth.credential_max_seconds "
                    "caps it, 1h unless configured)");
  commands.AddForProject(cred, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    bdb::CredentialRequest r;
    r.access = o->read_write ? "read_write" : "read";
    if (o->ttl >= 0) r.ttl_seconds = o->ttl;
    auto cr = c->CreateCredential(project, o->branch, r);
    if (!cr.ok()) return ctx.Fail(cr.error());
    if (!ctx.json()) {
      std::cerr << cr->access << " credential for " << cr->project << "/" << cr->branch
                << ", expires " << cr->expires_at << " (in "
                << FormatDuration(cr->expires_in) << ")\n";
    }
    return ctx.Print(cr->raw, [&](std::ostream& out) { out << cr->credential << "\n"; });
  });
}

void RegisterClient(CLI::App& app, Commands& commands, const AccessOptsPtr& o) {
  CLI::App* client = app.add_subcommand("client", "Manage OAuth clients (needs the admin scope)");
  client->require_subcommand(1);

  CLI::App* create = AddCommand(
      *client, "create", "Create an OAuth client; its secret is shown once",
      {"branchdb client create --name ci --scopes branches:write,sql:write --projects shop "
       "--branches 'ci-pr-*'",
       "branchdb client create --name agent-1 --scopes 'branches:write sql:write' --projects shop "
       "--branches 'agent/*' --max-branch-ttl 1h",
       "branchdb client create --name reader --scopes \"projects:read branches:read sql:read\""});
  create->add_option("--name", o->name, "A name for people (default: empty)");
  create
      ->add_option("--scopes", o->scopes,
                   "Scopes, comma- or space-separated: admin, projects:read, projects:write, "
                   "branches:read, branches:write, sql:read, sql:write, branches:protect, "
                   "branches:promote_protected")
      ->required();
  create->add_option("--projects", o->projects,
                     "Only these projects, comma-separated (default: every project)");
  create->add_option("--branches", o->branches,
                     "Only branches matching these patterns, comma-separated, at most one '*' "
                     "each, e.g. 'agent/*' (default: every branch)");
  AddDurationOption(create, "--max-branch-ttl", &o->max_branch_ttl,
                    "Branches it creates expire within this (60s..365d, e.g. 3600, 1h; "
                    "default: no maximum); with none asked, their TTL is this");
  commands.AddForClient(create, [o](Context& ctx, bdb::Client* c) {
    bdb::CreateClientRequest r;
    r.name = o->name;
    r.scopes = SplitList(o->scopes);
    r.projects = SplitList(o->projects);
    r.branches = SplitList(o->branches);
    if (o->max_branch_ttl >= 0) r.max_branch_ttl_seconds = o->max_branch_ttl;
    auto nc = c->CreateClient(r);
    if (!nc.ok()) return ctx.Fail(nc.error());
    return ctx.Print(nc->raw, [&](std::ostream& out) {
      PrintFields(out, {{"client_id", nc->client_id},
                        {"client_secret", nc->client_secret},
                        {"scopes", JoinWords(nc->scopes, " ")},
                        {"projects", nc->projects.empty() ? "all" : JoinWords(nc->projects, ",")},
                        {"branches", nc->branches.empty() ? "all" : JoinWords(nc->branches, ",")},
                        {"max_branch_ttl", nc->max_branch_ttl_seconds
                                               ? FormatDuration(*nc->max_branch_ttl_seconds)
                                               : "none"}});
      out << "The secret is shown this once. Use it with BRANCHDB_CLIENT_ID and "
             "BRANCHDB_CLIENT_SECRET.\n";
    });
  });

  CLI::App* list =
      AddCommand(*client, "list", "List OAuth clients (no secrets)", {"branchdb client list"});
  commands.AddForClient(list, [](Context& ctx, bdb::Client* c) {
    auto cs = c->ListClients();
    if (!cs.ok()) return ctx.Fail(cs.error());
    return ctx.Print(RawList("clients", *cs), [&](std::ostream& out) {
      Table t({"CLIENT ID", "NAME", "SCOPES", "PROJECTS", "BRANCHES", "ENABLED", "CREATED"});
      for (const auto& ci : *cs) {
        t.AddRow({ci.client_id, ci.name, JoinWords(ci.scopes, " "),
                  ci.projects.empty() ? "all" : JoinWords(ci.projects, ","),
                  ci.branches.empty() ? "all" : JoinWords(ci.branches, ","),
                  ci.enabled ? "yes" : "no", ci.created_at});
      }
      t.Print(out);
    });
  });

  CLI::App* del =
      AddCommand(*client, "delete", "Delete an OAuth client; its tokens stop working at once",
                 {"branchdb client delete 3f2a..."});
  del->add_option("CLIENT_ID", o->id, "The client's id")->required();
  commands.AddForClient(del, [o](Context& ctx, bdb::Client* c) {
    auto st = c->DeleteClient(o->id);
    if (!st.ok()) return ctx.Fail(st.error());
    return ctx.Print(Json::object(),
                     [&](std::ostream& out) { out << "deleted client " << o->id << "\n"; });
  });
}

void RegisterToken(CLI::App& app, Commands& commands, const AccessOptsPtr& o) {
  CLI::App* token = AddCommand(
      app, "token", "Print an access token for the configured credentials (handy for curl)",
      {"curl -H \"Authorization: Bearer $(branchdb token)\" http://127.0.0.1:8080/v1/projects"});
  commands.AddForClient(token, [](Context& ctx, bdb::Client* c) {
    auto t = c->AccessToken();
    if (!t.ok()) return ctx.Fail(t.error());
    return ctx.Print(Json{{"access_token", *t}, {"token_type", "Bearer"}},
                     [&](std::ostream& out) { out << *t << "\n"; });
  });
}

void RegisterCompute(CLI::App& app, Commands& commands, const AccessOptsPtr& o) {
  CLI::App* compute =
      AddCommand(app, "compute", "Show a branch's compute (SQLite connection): active or suspended",
                 {"branchdb compute dev/alex"});
  compute->add_option("BRANCH", o->branch, "Branch name")->required();
  CLI::App* suspend =
      AddCommand(app, "suspend", "Suspend a branch's compute now (the next request resumes it)",
                 {"branchdb suspend dev/alex"});
  suspend->add_option("BRANCH", o->branch, "Branch name")->required();
  for (bool do_suspend : {false, true}) {
    commands.AddForProject(
        do_suspend ? suspend : compute,
        [o, do_suspend](Context& ctx, bdb::Client* c, const std::string& project) {
          auto s = do_suspend ? c->SuspendCompute(project, o->branch)
                              : c->GetCompute(project, o->branch);
          if (!s.ok()) return ctx.Fail(s.error());
          return ctx.Print(s->raw, [&](std::ostream& out) { PrintCompute(o->branch, *s, out); });
        });
  }
}

}  // namespace

void RegisterAccessCommands(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<AccessOpts>();
  RegisterCredential(app, commands, o);
  RegisterClient(app, commands, o);
  RegisterToken(app, commands, o);
  RegisterCompute(app, commands, o);
}

}  // namespace branchdb::cli
