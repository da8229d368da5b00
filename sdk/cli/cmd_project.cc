// branchdb project create|list|get|delete|set
#include <memory>

#include "sdk/cli/cli.h"
#include "sdk/cli/format.h"

namespace branchdb::cli {

namespace {

void ProjectTable(const std::vector<bdb::Project>& projects, std::ostream& out) {
  Table t({"NAME", "DEFAULT BRANCH", "RESTORE WINDOW", "CREATED", "ID"});
  for (const auto& p : projects) {
    t.AddRow(
        {p.name, p.default_branch, FormatDuration(p.restore_window_seconds), p.created_at, p.id});
  }
  t.Print(out);
}

// What the subcommands of RegisterProjectCommands parse into (one parse per process).
struct ProjectOpts {
  std::string name;
  int64_t restore_window = -1;
  std::string durability;  // "local", "remote", "default"; empty: unchanged
  bool force = false;
};
using ProjectOptsPtr = std::shared_ptr<ProjectOpts>;

void RegisterCreate(CLI::App* project, Commands& commands, const ProjectOptsPtr& o) {
  CLI::App* create = AddCommand(
      *project, "create", "Create a project (with its default branch \"production\", empty)",
      {"branchdb project create shop", "branchdb project create shop --restore-window 30d"});
  create->add_option("NAME", o->name, "Project name")->required();
  AddDurationOption(create, "--restore-window", &o->restore_window,
                    "How far back rollback and time travel reach (default: the server's, 7d)");
  commands.AddForClient(create, [o](Context& ctx, bdb::Client* c) {
    bdb::CreateProjectRequest r;
    r.name = o->name;
    if (o->restore_window >= 0) r.restore_window_seconds = o->restore_window;
    auto p = c->CreateProject(r);
    if (!p.ok()) return ctx.Fail(p.error());
    return ctx.Print(p->raw, [&](std::ostream& out) {
      out << "created project " << p->name << " with branch " << p->default_branch
          << " (restore window " << FormatDuration(p->restore_window_seconds) << ")\n";
    });
  });
}

void RegisterListAndGet(CLI::App* project, Commands& commands, const ProjectOptsPtr& o) {
  CLI::App* list = AddCommand(*project, "list", "List the projects this client may access",
                              {"branchdb project list", "branchdb project list --json"});
  commands.AddForClient(list, [](Context& ctx, bdb::Client* c) {
    auto ps = c->ListProjects();
    if (!ps.ok()) return ctx.Fail(ps.error());
    return ctx.Print(RawList("projects", *ps), [&](std::ostream& out) {
      if (ps->empty()) {
        out << "no projects (create one: branchdb project create NAME)\n";
      } else {
        ProjectTable(*ps, out);
      }
    });
  });

  CLI::App* get = AddCommand(*project, "get", "Show one project (default: --project)",
                             {"branchdb project get shop"});
  get->add_option("NAME", o->name, "Project name (default: --project / BRANCHDB_PROJECT)");
  commands.AddForClient(get, [o](Context& ctx, bdb::Client* c) {
    std::string name = ctx.Project(o->name);
    if (name.empty()) return int(kExitUsage);
    auto p = c->GetProject(name);
    if (!p.ok()) return ctx.Fail(p.error());
    return ctx.Print(p->raw, [&](std::ostream& out) { ProjectTable({*p}, out); });
  });
}

void RegisterDeleteAndSet(CLI::App* project, Commands& commands, const ProjectOptsPtr& o) {
  CLI::App* del = AddCommand(
      *project, "delete", "Delete a project with all its branches and data (not undoable)",
      {"branchdb project delete shop",
       "branchdb project delete shop --force   # even with protected branches"});
  del->add_option("NAME", o->name, "Project name (default: --project / BRANCHDB_PROJECT)");
  del->add_flag("--force", o->force, "Delete even when a branch is protected (default: refuse)");
  commands.AddForClient(del, [o](Context& ctx, bdb::Client* c) {
    std::string name = ctx.Project(o->name);
    if (name.empty()) return int(kExitUsage);
    auto st = c->DeleteProject(name, o->force);
    if (!st.ok()) return ctx.Fail(st.error());
    return ctx.Print(Json::object(),
                     [&](std::ostream& out) { out << "deleted project " << name << "\n"; });
  });

  CLI::App* set = AddCommand(
      *project, "set", "Change a project's settings (restore window, durability)",
      {"branchdb project set shop --restore-window 14d",
       "branchdb project set shop --durability remote   # acknowledged once in the bucket",
       "branchdb project set shop --durability default  # the server's default again"});
  set->add_option("NAME", o->name, "Project name (default: --project / BRANCHDB_PROJECT)");
  AddDurationOption(set, "--restore-window", &o->restore_window,
                    "How far back rollback and time travel reach");
  set->add_option("--durability", o->durability,
                  "When a commit is acknowledged: local (after the local disk's sync) or "
                  "remote (also in the object storage bucket; needs the server's "
                  "[object_storage]); default: the server's setting")
      ->check(CLI::IsMember({"local", "remote", "default"}));
  commands.AddForClient(set, [o](Context& ctx, bdb::Client* c) {
    std::string name = ctx.Project(o->name);
    if (name.empty()) return int(kExitUsage);
    if (o->restore_window < 0 && o->durability.empty()) {
      return ctx.Usage("nothing to set", "pass --restore-window and/or --durability");
    }
    bdb::UpdateProjectRequest r;
    if (o->restore_window >= 0) r.restore_window_seconds = o->restore_window;
    if (o->durability == "default") {
      r.durability = std::optional<std::string>();
    } else if (!o->durability.empty()) {
      r.durability = o->durability;
    }
    auto p = c->UpdateProject(name, r);
    if (!p.ok()) return ctx.Fail(p.error());
    return ctx.Print(p->raw, [&](std::ostream& out) {
      out << "project " << p->name << ": restore window "
          << FormatDuration(p->restore_window_seconds) << ", durability " << p->durability
          << "\n";
    });
  });
}

}  // namespace

void RegisterProjectCommands(CLI::App& app, Commands& commands) {
  CLI::App* project = app.add_subcommand("project", "Create, list, inspect and delete projects");
  project->require_subcommand(1);

  auto o = std::make_shared<ProjectOpts>();
  RegisterCreate(project, commands, o);
  RegisterListAndGet(project, commands, o);
  RegisterDeleteAndSet(project, commands, o);
}

}  // namespace branchdb::cli
