// branchdb audit [--client ID] [--since TIME] [--limit N] [--server]
//         usage  [--client ID]
#include <algorithm>
#include <memory>

#include "sdk/cli/cli.h"
#include "sdk/cli/format.h"

namespace branchdb::cli {

namespace {

struct AuditOpts {
  std::string client, since;
  int64_t limit = 1000;
  bool server = false;
};
using AuditOptsPtr = std::shared_ptr<AuditOpts>;

// Every page of the trail, up to o.limit events, oldest first.
bdb::Result<Json> ReadTrail(bdb::Client* c, const std::string& project, const AuditOpts& o,
                       std::vector<bdb::AuditEvent>* events) {
  bdb::ListAuditRequest r;
  if (!o.client.empty()) r.client = o.client;
  if (!o.since.empty()) r.since = o.since;
  Json all = Json::array();
  while (static_cast<int64_t>(events->size()) < o.limit) {
    r.limit = std::min<int64_t>(1000, o.limit - static_cast<int64_t>(events->size()));
    auto page = c->ListAudit(project, r);
    if (!page.ok()) return page.error();
    for (auto& e : page->events) {
      all.push_back(e.raw);
      events->push_back(std::move(e));
    }
    if (!page->next_cursor) break;
    r.cursor = page->next_cursor;
  }
  return Json{{"events", all}};
}

int RunAudit(Context& ctx, bdb::Client* c, const std::string& project, const AuditOpts& o) {
  std::vector<bdb::AuditEvent> events;
  auto trail = ReadTrail(c, project, o, &events);
  if (!trail.ok()) return ctx.Fail(trail.error());
  return ctx.Print(*trail, [&](std::ostream& out) {
    if (events.empty()) {
      out << "no audit events" << (o.since.empty() ? "" : " since " + o.since) << "\n";
      return;
    }
    Table t({"TIME", "OPERATION", "STATUS", "CODE", "CLIENT", "BRANCH", "REQUEST"});
    for (const auto& e : events) {
      t.AddRow({e.time, e.operation, std::to_string(e.status), e.code.value_or(""),
                e.client_id.value_or("-"), e.branch.value_or(""), e.request_id});
    }
    t.Print(out);
  });
}

}  // namespace

void RegisterAuditCommands(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<AuditOpts>();
  CLI::App* audit = AddCommand(
      app, "audit",
      "Show the project's audit trail, oldest first: every state-changing request and every "
      "refusal (auth, quota), with client, token id, request id and outcome (needs scope admin)",
      {"branchdb audit", "branchdb audit --client bdb_0123abcd --since 2026-12-01T00:00:00Z",
       "branchdb audit --since 1764547200 --json",
       "branchdb audit --server   # clients, tokens, failed client authentication"});
  audit->add_option("--client", o->client, "Only this client's events");
  audit->add_option("--since", o->since, "Only events at or after this time (RFC 3339 or Unix seconds)");
  audit->add_option("--limit", o->limit, "At most this many events")->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  audit->add_flag("--server", o->server,
                  "The server-wide events (about no project) instead of the project's");
  commands.AddForClient(audit, [o](Context& ctx, bdb::Client* c) {
    if (o->server) return RunAudit(ctx, c, "", *o);
    std::string project = ctx.Project();
    if (project.empty()) return int(kExitUsage);
    return RunAudit(ctx, c, project, *o);
  });

  CLI::App* usage = AddCommand(
      app, "usage",
      "Show the project's usage: branches, bytes, commits, compute seconds, requests, quotas",
      {"branchdb usage", "branchdb usage --client bdb_0123abcd --json"});
  usage->add_option("--client", o->client, "That client's share");
  commands.AddForProject(usage, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    auto u = c->GetUsage(project, o->client);
    if (!u.ok()) return ctx.Fail(u.error());
    return ctx.Print(u->raw, [&](std::ostream& out) {
      auto quota = [&](const char* name) {
        const Json& q = u->raw.value("quotas", Json::object());
        return q.contains(name) && q[name].is_number() ? " (quota " + q[name].dump() + ")"
                                                       : std::string();
      };
      PrintFields(out, {{"project", u->project},
                        {"client", u->client_id.value_or("(all)")},
                        {"branches", std::to_string(u->branches) + quota("max_branches")},
                        {"logical bytes", FormatBytes(u->logical_bytes) + quota("max_bytes")},
                        {"exclusive bytes", FormatBytes(u->exclusive_bytes)},
                        {"commits", std::to_string(u->commits)},
                        {"commits last minute", std::to_string(u->commits_last_minute) +
                                                    quota("max_commits_per_minute")},
                        {"active computes",
                         std::to_string(u->active_computes) + quota("max_active_computes")},
                        {"compute seconds", std::to_string(u->compute_seconds)},
                        {"requests", std::to_string(u->requests)},
                        {"counting since", u->counting_since}});
    });
  });
}

}  // namespace branchdb::cli
