// branchdb sql BRANCH "SQL" [--param V]... [--named NAME=V]... [--read-only] [--file F]
//              [--page-size N]
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "sdk/cli/cli.h"
#include "sdk/cli/format.h"

namespace branchdb::cli {

namespace {

// A parameter value: JSON when it parses as JSON (42, 1.5, null, true,
// "quoted", {"$blob":"..."}), else the text as a string.
Json ParamValue(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  return j.is_discarded() ? Json(text) : j;
}

constexpr size_t kMaxCellWidth = 60;

void PrintResult(const bdb::SqlResult& r, std::ostream& out) {
  bool first = true;
  for (const auto& s : r.results) {
    if (s.columns.empty()) continue;
    if (!first) out << "\n";
    first = false;
    Table t(s.columns);
    for (const auto& row : s.rows) {
      std::vector<std::string> cells;
      for (const Json& v : row) cells.push_back(Cell(v, kMaxCellWidth));
      t.AddRow(std::move(cells));
    }
    t.Print(out);
    out << "(" << s.rows.size() << (s.rows.size() == 1 ? " row" : " rows")
        << (s.truncated ? ", more rows follow" : "") << ")\n";
  }
  int64_t changed = 0;
  for (const auto& s : r.results) changed += s.rows_affected;
  if (r.lsn) {
    out << "committed lsn " << *r.lsn << " (" << changed << (changed == 1 ? " row" : " rows")
        << " changed)\n";
  } else if (first) {
    out << "nothing changed (read lsn " << r.snapshot_lsn << ")\n";
  }
}

// Every page of a paged request, merged into the first page's result (its
// rows, truncated false, next_cursor null): all pages read one snapshot LSN.
bdb::Result<bdb::SqlResult> AllPages(bdb::Client* c, const std::string& project,
                                     const std::string& branch, bdb::SqlRequest r) {
  auto first = c->Sql(project, branch, r);
  if (!first.ok() || first->results.empty()) return first;
  bdb::SqlResult all = std::move(*first);
  while (all.next_cursor) {
    r.cursor = all.next_cursor;
    auto page = c->Sql(project, branch, r);
    if (!page.ok()) return page;
    if (page->results.empty()) break;
    for (auto& row : page->results[0].rows) all.results[0].rows.push_back(std::move(row));
    for (const Json& row : page->raw["results"][0]["rows"]) {
      all.raw["results"][0]["rows"].push_back(row);
    }
    all.next_cursor = page->next_cursor;
  }
  all.results[0].truncated = false;
  all.raw["results"][0]["truncated"] = false;
  all.raw["next_cursor"] = nullptr;
  return all;
}

}  // namespace

void RegisterSqlCommands(CLI::App& app, Commands& commands) {
  struct Opts {
    std::string branch, sql, file;
    std::vector<std::string> params, named;
    bool read_only = false;
    int64_t page_size = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sql =
      AddCommand(app, "sql", "Run a SQL script on a branch as one transaction (one checkpoint)",
                 {"branchdb sql production \"SELECT * FROM items\"",
                  "branchdb sql dev/alex \"INSERT INTO items(name) VALUES (?)\" --param apple",
                  "branchdb sql dev/alex \"UPDATE items SET n = :n\" --named n=3",
                  "branchdb sql dev/alex --file migration.sql",
                  "branchdb sql production \"SELECT count(*) FROM items\" --read-only --json",
                  "branchdb sql production \"SELECT * FROM events\" --page-size 5000"});
  sql->add_option("BRANCH", o->branch, "Branch name")->required();
  auto* text = sql->add_option("SQL", o->sql, "The script: one or more statements");
  auto* file = sql->add_option("--file,-f", o->file, "Read the script from this file (- = stdin)");
  text->excludes(file);
  auto* params = sql->add_option("--param,-p", o->params,
                                 "A positional parameter, in order (JSON if it parses: 42, null, "
                                 "'\"42\"'; else a string)");
  auto* named =
      sql->add_option("--named,-n", o->named, "A named parameter NAME=VALUE (:NAME in the SQL)");
  params->excludes(named);
  sql->add_flag("--read-only", o->read_only, "Refuse every write (default: off)");
  sql->add_option("--page-size", o->page_size,
                  "Fetch the result of one read-only statement in pages of this many rows, "
                  "all of them, read at one snapshot (default: off; a result past the server's "
                  "limits is then an error, result_too_large)")
      ->check(CLI::PositiveNumber);
  commands.AddForProject(sql, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    bdb::SqlRequest r;
    if (!o->file.empty()) {
      std::ostringstream s;
      if (o->file == "-") {
        s << std::cin.rdbuf();
      } else {
        std::ifstream in(o->file, std::ios::binary);
        if (!in) return ctx.Usage("--file: cannot read " + o->file);
        s << in.rdbuf();
      }
      r.sql = s.str();
    } else {
      r.sql = o->sql;
    }
    if (r.sql.empty()) {
      return ctx.Usage("no SQL given", "pass it as the second argument or with --file FILE");
    }
    if (!o->params.empty()) {
      r.params = Json::array();
      for (const auto& p : o->params) r.params.push_back(ParamValue(p));
    } else if (!o->named.empty()) {
      r.params = Json::object();
      for (const auto& p : o->named) {
        size_t eq = p.find('=');
        if (eq == std::string::npos || eq == 0) {
          return ctx.Usage("--named: expected NAME=VALUE (got \"" + p + "\")");
        }
        r.params[p.substr(0, eq)] = ParamValue(p.substr(eq + 1));
      }
    }
    r.read_only = o->read_only;
    if (o->page_size > 0) r.page_size = o->page_size;
    auto res = o->page_size > 0 ? AllPages(c, project, o->branch, r) : c->Sql(project, o->branch, r);
    if (!res.ok()) return ctx.Fail(res.error());
    return ctx.Print(res->raw, [&](std::ostream& out) { PrintResult(*res, out); });
  });
}

}  // namespace branchdb::cli
