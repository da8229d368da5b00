// branchdb branch create|list|get|delete|rename|protect|unprotect|set-writes|set-ttl|
// set-idle-timeout
#include <functional>
#include <map>
#include <memory>

#include "sdk/cli/cli.h"
#include "sdk/cli/format.h"

namespace branchdb::cli {

namespace {

void PrintBranch(const bdb::Branch& b, std::ostream& out) {
  std::string parent = b.parent ? *b.parent + " (at lsn " + std::to_string(b.branch_point_lsn) + ")"
                                : "none (the project's root)";
  PrintFields(out, {{"branch", b.name},
                    {"parent", parent},
                    {"head", "lsn " + std::to_string(b.head_lsn)},
                    {"created", b.created_at},
                    {"expires", b.expires_at.value_or("never")},
                    {"protected", b.is_protected ? "yes" : "no"},
                    {"idle timeout", b.idle_timeout_seconds ? FormatDuration(b.idle_timeout_seconds)
                                                            : "never suspended"},
                    {"size", FormatBytes(b.logical_bytes) + " (" + FormatBytes(b.exclusive_bytes) +
                                 " its own)"}});
}

// The branches as a tree: children under their parent, sorted by name.
void PrintTree(const std::vector<bdb::Branch>& branches, std::ostream& out) {
  std::map<std::string, const bdb::Branch*> by_name;
  for (const auto& b : branches) by_name[b.name] = &b;
  std::map<std::string, std::vector<const bdb::Branch*>> children;
  std::vector<const bdb::Branch*> roots;
  for (const auto& b : branches) {
    if (b.parent && by_name.count(*b.parent)) {
      children[*b.parent].push_back(&b);
    } else {
      roots.push_back(&b);
    }
  }
  Table t({"BRANCH", "HEAD", "FROM", "EXPIRES", "FLAGS", "SIZE"});
  std::function<void(const bdb::Branch*, const std::string&, const std::string&)> add =
      [&](const bdb::Branch* b, const std::string& lead, const std::string& indent) {
        std::string flags;
        if (b->is_default) flags += "default ";
        if (b->is_protected) flags += "protected";
        if (!flags.empty() && flags.back() == ' ') flags.pop_back();
        t.AddRow({lead + b->name, std::to_string(b->head_lsn),
                  b->parent ? std::to_string(b->branch_point_lsn) : "-",
                  b->expires_at.value_or("-"), flags.empty() ? "-" : flags,
                  FormatBytes(b->logical_bytes)});
        const auto& kids = children[b->name];
        for (size_t i = 0; i < kids.size(); ++i) {
          bool last = i + 1 == kids.size();
          add(kids[i], indent + (last ? "└─ " : "├─ "), indent + (last ? "   " : "│  "));
        }
      };
  for (const auto* r : roots) add(r, "", "");
  t.Print(out);
}

// Runs one PATCH and prints the branch with a one-line human summary.
int Patch(Context& ctx, bdb::Client* c, const std::string& project, const std::string& name,
          const bdb::UpdateBranchRequest& r,
          const std::function<std::string(const bdb::Branch&)>& summary) {
  auto b = c->UpdateBranch(project, name, r);
  if (!b.ok()) return ctx.Fail(b.error());
  return ctx.Print(b->raw, [&](std::ostream& out) { out << summary(*b) << "\n"; });
}

// What the `branch` subcommands parse into (one parse per process).
struct BranchOpts {
  std::string name, new_name, parent, from_time, from_label, expires_at, value;
  uint64_t from_lsn = 0, from_checkpoint = 0;
  int64_t ttl = -1;
  bool is_protected = false;
};
using BranchOptsPtr = std::shared_ptr<BranchOpts>;

void RegisterCreate(CLI::App* branch, Commands& commands, const BranchOptsPtr& o) {
  CLI::App* create =
      AddCommand(*branch, "create",
                 "Create a branch: a copy-on-write copy of its parent (O(1), whatever the size)",
                 {"branchdb branch create dev/alex --parent production --ttl 24h",
                  "branchdb branch create fix --from-label before-migration",
                  "branchdb branch create yesterday --from-time 2026-11-20T09:00:00Z --protected"});
  create->add_option("NAME", o->name, "Branch name ('/' allowed: dev/alex)")->required();
  create->add_option("--parent", o->parent,
                     "Parent branch (default: the project's default, production)");
  auto* lsn = create->add_option("--from-lsn", o->from_lsn,
                                 "Start at exactly this state of the parent: an LSN its history lists, or a "
                                 "former head of it (default: its head); any other LSN is refused");
  auto* time =
      create->add_option("--from-time", o->from_time,
                         "Start at the parent's newest state at or before this time (RFC 3339 or "
                         "Unix seconds); the branch point printed is the LSN used");
  auto* ckpt = create->add_option("--from-checkpoint", o->from_checkpoint,
                                  "Start at exactly this checkpoint (an LSN) of any branch, which becomes "
                                  "the parent; with --parent, it must be a state of that parent");
  auto* label = create->add_option("--from-label", o->from_label,
                                   "Start at the parent's checkpoint with this label");
  lsn->excludes(time, ckpt, label);
  time->excludes(ckpt, label);
  ckpt->excludes(label);
  auto* ttl = AddDurationOption(create, "--ttl", &o->ttl,
                                "Delete the branch after this long (default: never)");
  create->add_option("--expires-at", o->expires_at, "Delete the branch at this time (RFC 3339)")
      ->excludes(ttl);
  create->add_flag("--protected", o->is_protected,
                   "Refuse deletes, rollbacks and resets (default: off)");
  commands.AddForProject(create, [o, lsn, time, ckpt, label](Context& ctx, bdb::Client* c,
                                                             const std::string& project) {
    bdb::CreateBranchRequest r;
    r.name = o->name;
    if (!o->parent.empty()) r.parent = o->parent;
    if (lsn->count()) r.at.lsn = o->from_lsn;
    if (time->count()) r.at.timestamp = o->from_time;
    if (ckpt->count()) r.at.checkpoint = o->from_checkpoint;
    if (label->count()) r.at.label = o->from_label;
    if (o->ttl >= 0) r.ttl_seconds = o->ttl;
    if (!o->expires_at.empty()) r.expires_at = o->expires_at;
    if (o->is_protected) r.is_protected = true;
    auto b = c->CreateBranch(project, r);
    if (!b.ok()) return ctx.Fail(b.error());
    return ctx.Print(b->raw, [&](std::ostream& out) {
      out << "created branch " << b->name;
      if (b->parent) out << " from " << *b->parent << " at lsn " << b->branch_point_lsn;
      if (b->expires_at) out << ", expires " << *b->expires_at;
      out << "\n";
    });
  });
}

void RegisterListAndGet(CLI::App* branch, Commands& commands, const BranchOptsPtr& o) {
  CLI::App* list =
      AddCommand(*branch, "list", "List the project's branches as a tree",
                 {"branchdb branch list --project shop", "branchdb branch list --json"});
  commands.AddForProject(list, [](Context& ctx, bdb::Client* c, const std::string& project) {
    auto bs = c->ListBranches(project);
    if (!bs.ok()) return ctx.Fail(bs.error());
    return ctx.Print(RawList("branches", *bs), [&](std::ostream& out) { PrintTree(*bs, out); });
  });

  CLI::App* get = AddCommand(*branch, "get", "Show one branch", {"branchdb branch get dev/alex"});
  get->add_option("NAME", o->name, "Branch name")->required();
  commands.AddForProject(get, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    auto b = c->GetBranch(project, o->name);
    if (!b.ok()) return ctx.Fail(b.error());
    return ctx.Print(b->raw, [&](std::ostream& out) { PrintBranch(*b, out); });
  });
}

void RegisterDeleteAndRename(CLI::App* branch, Commands& commands, const BranchOptsPtr& o) {
  CLI::App* del = AddCommand(*branch, "delete",
                             "Delete a branch (not the default one, not a protected one); its "
                             "children keep their data",
                             {"branchdb branch delete dev/alex"});
  del->add_option("NAME", o->name, "Branch name")->required();
  commands.AddForProject(del, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    auto st = c->DeleteBranch(project, o->name);
    if (!st.ok()) return ctx.Fail(st.error());
    return ctx.Print(Json::object(),
                     [&](std::ostream& out) { out << "deleted branch " << o->name << "\n"; });
  });

  CLI::App* rename = AddCommand(*branch, "rename", "Rename a branch",
                                {"branchdb branch rename dev/alex dev/alex-old"});
  rename->add_option("NAME", o->name, "Branch name")->required();
  rename->add_option("NEW_NAME", o->new_name, "The new name")->required();
  commands.AddForProject(rename, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    bdb::UpdateBranchRequest r;
    r.name = o->new_name;
    return Patch(ctx, c, project, o->name, r,
                 [&](const bdb::Branch& b) { return "renamed " + o->name + " to " + b.name; });
  });
}

void RegisterProtect(CLI::App* branch, Commands& commands, const BranchOptsPtr& o) {
  for (bool protect : {true, false}) {
    CLI::App* p = AddCommand(
        *branch, protect ? "protect" : "unprotect",
        protect ? "Protect a branch: deletes, rollbacks and resets need branches:protect"
                : "Remove a branch's protection (needs branches:protect)",
        {std::string("branchdb branch ") + (protect ? "protect" : "unprotect") + " production"});
    p->add_option("NAME", o->name, "Branch name")->required();
    commands.AddForProject(
        p, [o, protect](Context& ctx, bdb::Client* c, const std::string& project) {
          bdb::UpdateBranchRequest r;
          r.is_protected = protect;
          return Patch(ctx, c, project, o->name, r, [&](const bdb::Branch& b) {
            return b.name + (b.is_protected ? " is protected" : " is not protected");
          });
        });
  }
}

void RegisterSetWrites(CLI::App* branch, Commands& commands, const BranchOptsPtr& o) {
  CLI::App* w = AddCommand(
      *branch, "set-writes",
      "Set a branch's writes policy: any (default) or promote_only (SQL writes only by clients "
      "with branches:protect; changes arrive by promote)",
      {"branchdb branch set-writes production promote_only",
       "branchdb branch set-writes production any"});
  w->add_option("NAME", o->name, "Branch name")->required();
  w->add_option("POLICY", o->value, "any or promote_only")
      ->required()
      ->check(CLI::IsMember({"any", "promote_only"}));
  commands.AddForProject(w, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    bdb::UpdateBranchRequest r;
    r.writes = o->value;
    return Patch(ctx, c, project, o->name, r,
                 [&](const bdb::Branch& b) { return b.name + " takes writes: " + b.writes; });
  });
}

void RegisterSetTtl(CLI::App* branch, Commands& commands, const BranchOptsPtr& o) {
  CLI::App* set_ttl =
      AddCommand(*branch, "set-ttl", "Delete a branch after DURATION from now, or never (\"none\")",
                 {"branchdb branch set-ttl dev/alex 2h", "branchdb branch set-ttl dev/alex none"});
  set_ttl->add_option("NAME", o->name, "Branch name")->required();
  set_ttl->add_option("DURATION", o->value, "30s, 15m, 24h, 7d, ... or none")->required();
  commands.AddForProject(set_ttl, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    bdb::UpdateBranchRequest r;
    if (o->value == "none") {
      r.clear_expires_at = true;
    } else if (auto d = ParseDuration(o->value)) {
      r.ttl_seconds = *d;
    } else {
      return ctx.Usage("DURATION: \"" + o->value + "\" is not a duration",
                       "use e.g. 30s, 15m, 24h, 7d, or none");
    }
    return Patch(ctx, c, project, o->name, r, [](const bdb::Branch& b) {
      return b.name + (b.expires_at ? " expires " + *b.expires_at : " never expires");
    });
  });
}

void RegisterSetIdleTimeout(CLI::App* branch, Commands& commands, const BranchOptsPtr& o) {
  CLI::App* idle = AddCommand(
      *branch, "set-idle-timeout",
      "Suspend the branch's compute after DURATION without requests (0 = never; \"default\" = "
      "the server's)",
      {"branchdb branch set-idle-timeout dev/alex 1m",
       "branchdb branch set-idle-timeout dev/alex default"});
  idle->add_option("NAME", o->name, "Branch name")->required();
  idle->add_option("DURATION", o->value, "30s, 15m, 24h, 7d, 0, or default")->required();
  commands.AddForProject(idle, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    bdb::UpdateBranchRequest r;
    if (o->value == "default") {
      r.reset_idle_timeout = true;
    } else if (auto d = ParseDuration(o->value)) {
      r.idle_timeout_seconds = *d;
    } else {
      return ctx.Usage("DURATION: \"" + o->value + "\" is not a duration",
                       "use e.g. 30s, 5m, 1h, 0 (never), or default");
    }
    return Patch(ctx, c, project, o->name, r, [](const bdb::Branch& b) {
      return b.name + ": idle timeout " +
             (b.idle_timeout_seconds ? FormatDuration(b.idle_timeout_seconds) : "never");
    });
  });
}

}  // namespace

void RegisterBranchCommands(CLI::App& app, Commands& commands) {
  CLI::App* branch = app.add_subcommand("branch", "Create, list, change and delete branches");
  branch->require_subcommand(1);
  auto o = std::make_shared<BranchOpts>();
  RegisterCreate(branch, commands, o);
  RegisterListAndGet(branch, commands, o);
  RegisterDeleteAndRename(branch, commands, o);
  RegisterProtect(branch, commands, o);
  RegisterSetWrites(branch, commands, o);
  RegisterSetTtl(branch, commands, o);
  RegisterSetIdleTimeout(branch, commands, o);
}

}  // namespace branchdb::cli
