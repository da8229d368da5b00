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
    std::vector<std::string> notes;
    if (!td.note.empty()) notes.push_back(td.note);
    if (!td.columns_added.empty()) notes.push_back("columns added: " + Join(td.columns_added));
    if (!td.columns_removed.empty()) notes.push_back("dropped: " + Join(td.columns_removed));
    t.AddRow({td.table, std::to_string(td.rows_added), std::to_string(td.rows_removed),
              std::to_string(td.rows_changed), Join(notes)});
  }
  t.Print(out);
  for (const auto& td : d.tables) {
    if (td.rows.empty()) continue;
    out << "\n" << td.table << ":\n";
    for (const auto& c : td.rows) {
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

// What the subcommands of RegisterInspectCommands parse into (one parse per process).
struct InspectOpts {
  std::string branch, base, tables, cursor;
  uint64_t base_lsn = 0, lsn = 0;
  int64_t limit = 100;
  bool data = false, sql = false;
};
using InspectOptsPtr = std::shared_ptr<InspectOpts>;

void RegisterDiff(CLI::App& app, Commands& commands, const InspectOptsPtr& o) {
  CLI::App* diff = AddCommand(
      app, "diff",
      "What differs between a base (default: the parent's head) and a branch: schema, rows "
      "(every changed row, paged; tables with added or dropped columns are compared on their key "
      "and common columns), or SQL that turns the base into the branch",
      {"branchdb diff dev/alex", "branchdb diff dev/alex --base production --data",
       "branchdb diff dev/alex --data --tables items,orders --json",
       "branchdb diff dev/alex --sql --limit 1000 > patch.sql"});
  diff->add_option("BRANCH", o->branch, "Branch name")->required();
  diff->add_option("--base", o->base, "The branch to compare with (default: the parent)");
  auto* base_lsn = diff->add_option("--base-lsn", o->base_lsn,
                                    "The base's state at this LSN (default: its head)");
  auto* lsn =
      diff->add_option("--lsn", o->lsn, "The branch's state at this LSN (default: its head)");
  diff->add_flag("--data", o->data, "Compare rows instead of the schema (default: schema)");
  auto* sql = diff->add_flag("--sql", o->sql,
                             "SQL statements that turn the base into the branch (schema changes, "
                             "then INSERT/UPDATE/DELETE per row), paged like --data");
  sql->excludes(diff->get_option("--data"));
  diff->add_option("--tables", o->tables, "With --data or --sql: only these tables (comma-separated)");
  diff->add_option("--limit", o->limit, "With --data or --sql: row changes per page (1..1000)")
      ->capture_default_str();
  diff->add_option("--cursor", o->cursor, "With --data or --sql: the next page (its \"next\")");
  commands.AddForProject(
      diff, [o, base_lsn, lsn](Context& ctx, bdb::Client* c, const std::string& project) {
        bdb::DiffRequest r;
        r.kind = o->sql ? "patch" : o->data ? "data" : "schema";
        if (o->sql || o->data) r.limit = o->limit;
        if (!o->cursor.empty()) r.cursor = o->cursor;
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
          if (d->kind == "patch") {
            for (const auto& s : d->statements) out << s << (s.rfind("--", 0) == 0 ? "\n" : ";\n");
          } else if (d->kind == "data") {
            PrintDataDiff(*d, out);
          } else {
            PrintSchemaDiff(*d, out);
          }
          if (d->next) {
            out << (d->kind == "patch" ? "-- " : "") << "more: branchdb diff " << o->branch
                << (o->sql ? " --sql" : " --data") << " --cursor " << *d->next << "\n";
          }
        });
      });
}

void RegisterSchema(CLI::App& app, Commands& commands, const InspectOptsPtr& o) {
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

}  // namespace

void RegisterInspectCommands(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<InspectOpts>();
  RegisterDiff(app, commands, o);
  RegisterSchema(app, commands, o);
}

}  // namespace branchdb::cli
