// branchdb diff | schema
#include <memory>

#include "sdk/cli/cli.h"
#include "sdk/cli/format.h"

namespace branchdb::cli {

namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void PrintSchemaDiff(const bdb::DiffResult& d, std::ostream& out) {
  if (d.objects.empty()) {
    out << "no schema differences (lsn " << d.from_lsn << " -> " << d.to_lsn << ")\n";
    return;
  }
  for (const auto& o : d.objects) {
    char mark = o.change == "added" ? '+' : o.change == "removed" ? '-' : '~';
    out << mark << " " << o.type << " " << o.name;
    std::vector<std::string> parts;
    if (!o.columns_added.empty()) parts.push_back("columns added: " + Join(o.columns_added));
    if (!o.columns_removed.empty()) parts.push_back("removed: " + Join(o.columns_removed));
    if (!o.columns_changed.empty()) parts.push_back("changed: " + Join(o.columns_changed));
    if (!parts.empty()) out << " (" << Join(parts) << ")";
    out << "\n";
  }
  if (!d.unified.empty()) {
    out << "\n" << d.unified;
    if (d.unified.back() != '\n') out << "\n";
  }
}

void PrintDataDiff(const bdb::DiffResult& d, std::ostream& out) {
  if (d.tables.empty()) {
    out << "no data differences (lsn " << d.from_lsn << " -> " << d.to_lsn << ")\n";
    return;
  }
  Table t({"TABLE", "ADDED", "REMOVED", "CHANGED", "NOTE"});
  for (const auto& td : d.tables) {
    t.AddRow({td.table, std::to_string(td.rows_added), std::to_string(td.rows_removed),
              std::to_string(td.rows_changed), td.note});
  }
  t.Print(out);
  for (const auto& td : d.tables) {
    if (td.sample.empty()) continue;
    out << "\n" << td.table << ":\n";
    for (const auto& c : td.sample) {
      if (c.op == "insert") {
        out << "  + " << Cell(c.key) << "  " << Cell(c.new_row, 100) << "\n";
      } else if (c.op == "delete") {
        out << "  - " << Cell(c.key) << "  " << Cell(c.old_row, 100) << "\n";
      } else {
        out << "  ~ " << Cell(c.key) << "  " << Cell(c.old_row, 60) << " -> " << Cell(c.new_row, 60)
            << "\n";
      }
    }
  }
}

}  // namespace

void RegisterInspectCommands(CLI::App& app, Commands& commands) {
  struct Opts {
    std::string branch, base, tables;
    uint64_t base_lsn = 0, lsn = 0;
    bool data = false;
  };
  auto o = std::make_shared<Opts>();

  CLI::App* diff = AddCommand(
      app, "diff",
      "What differs between a base (default: the parent's head) and a branch: schema, or rows",
      {"branchdb diff dev/alex", "branchdb diff dev/alex --base production --data",
       "branchdb diff dev/alex --data --tables items,orders --json"});
  diff->add_option("BRANCH", o->branch, "Branch name")->required();
  diff->add_option("--base", o->base, "The branch to compare with (default: the parent)");
  auto* base_lsn = diff->add_option("--base-lsn", o->base_lsn,
                                    "The base's state at this LSN (default: its head)");
  auto* lsn =
      diff->add_option("--lsn", o->lsn, "The branch's state at this LSN (default: its head)");
  diff->add_flag("--data", o->data, "Compare rows instead of the schema (default: schema)");
  diff->add_option("--tables", o->tables, "With --data: only these tables (comma-separated)");
  commands.AddForProject(
      diff, [o, base_lsn, lsn](Context& ctx, bdb::Client* c, const std::string& project) {
        bdb::DiffRequest r;
        r.kind = o->data ? "data" : "schema";
        if (!o->base.empty()) r.base = o->base;
        if (base_lsn->count()) r.base_lsn = o->base_lsn;
        if (lsn->count()) r.lsn = o->lsn;
        for (size_t at = 0; at < o->tables.size();) {
          size_t comma = std::min(o->tables.find(',', at), o->tables.size());
          if (comma > at) r.tables.push_back(o->tables.substr(at, comma - at));
          at = comma + 1;
        }
        auto d = c->Diff(project, o->branch, r);
        if (!d.ok()) return ctx.Fail(d.error());
        return ctx.Print(d->raw, [&](std::ostream& out) {
          if (d->kind == "data") {
            PrintDataDiff(*d, out);
          } else {
            PrintSchemaDiff(*d, out);
          }
        });
      });

  CLI::App* schema =
      AddCommand(app, "schema", "Show a branch's schema (CREATE statements)",
                 {"branchdb schema production", "branchdb schema dev/alex --lsn 12"});
  schema->add_option("BRANCH", o->branch, "Branch name")->required();
  auto* at = schema->add_option("--lsn", o->lsn, "As of this LSN (default: the head)");
  commands.AddForProject(schema, [o, at](Context& ctx, bdb::Client* c, const std::string& project) {
    std::optional<uint64_t> lsn;
    if (at->count()) lsn = o->lsn;
    auto s = c->GetSchema(project, o->branch, lsn);
    if (!s.ok()) return ctx.Fail(s.error());
    return ctx.Print(s->raw, [&](std::ostream& out) {
      out << "-- " << o->branch << " at lsn " << s->lsn << "\n";
      if (s->objects.empty()) out << "-- (empty)\n";
      for (const auto& obj : s->objects) {
        if (obj.sql) out << *obj.sql << ";\n";
      }
    });
  });
}

}  // namespace branchdb::cli
