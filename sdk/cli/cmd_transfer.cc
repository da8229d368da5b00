// branchdb export BRANCH FILE [--lsn N] | import FILE --branch NAME
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "sdk/cli/cli.h"
#include "sdk/cli/format.h"

namespace branchdb::cli {

namespace {

// Progress on stderr, only when stderr is a terminal: "exporting dev/alex:
// 1.5 MiB / 4.0 MiB (37%)", redrawn in place when the percentage moves.
class Progress {
 public:
  explicit Progress(std::string what) : what_(std::move(what)), on_(isatty(STDERR_FILENO) == 1) {}
  ~Progress() { Finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Ends the progress line (call before printing the result).
  void Finish() {
    if (drawn_) std::cerr << "\n";
    drawn_ = false;
  }

  bdb::ProgressCallback Callback() {
    if (!on_) return nullptr;
    return [this](uint64_t done, uint64_t total) {
      int step = total ? static_cast<int>(done * 100 / total) : static_cast<int>(done >> 20);
      if (step != last_step_) {
        last_step_ = step;
        drawn_ = true;
        std::cerr << "\r" << what_ << ": " << FormatBytes(done);
        if (total) std::cerr << " / " << FormatBytes(total) << " (" << step << "%)";
        std::cerr << "\x1b[K" << std::flush;
      }
      return true;
    };
  }

 private:
  std::string what_;
  bool on_;
  bool drawn_ = false;
  int last_step_ = -1;
};

}  // namespace

void RegisterTransferCommands(CLI::App& app, Commands& commands) {
  struct Opts {
    std::string branch, file;
    uint64_t lsn = 0;
  };
  auto o = std::make_shared<Opts>();

  CLI::App* exp = AddCommand(
      app, "export", "Download a branch as a SQLite database file (progress on a terminal)",
      {"branchdb export production shop.db", "branchdb export dev/alex before.db --lsn 12",
       "branchdb export production - | sqlite3 -readonly /dev/stdin .tables"});
  exp->add_option("BRANCH", o->branch, "Branch name")->required();
  exp->add_option("FILE", o->file, "Where to write it (- = stdout); written whole or not at all")
      ->required();
  auto* lsn = exp->add_option("--lsn", o->lsn, "The state at this LSN (default: the head)");
  commands.AddForProject(exp, [o, lsn](Context& ctx, bdb::Client* c, const std::string& project) {
    if (o->file == "-" && ctx.json()) {
      return ctx.Usage("--json and FILE - both want stdout", "name a FILE");
    }
    Progress progress("exporting " + o->branch);
    bdb::ExportRequest r;
    if (lsn->count()) r.lsn = o->lsn;
    r.progress = progress.Callback();
    auto res =
        o->file == "-"
            ? c->Export(
                  project, o->branch,
                  [](const char* data, size_t n) { return std::fwrite(data, 1, n, stdout) == n; },
                  r)
            : c->ExportToFile(project, o->branch, o->file, r);
    progress.Finish();
    if (!res.ok()) return ctx.Fail(res.error());
    if (o->file == "-") return std::fflush(stdout) == 0 ? int(kExitOk) : int(kExitApiError);
    Json answer = {{"project", project},
                   {"branch", o->branch},
                   {"file", o->file},
                   {"lsn", res->lsn},
                   {"bytes", res->bytes}};
    return ctx.Print(answer, [&](std::ostream& out) {
      out << "exported " << o->branch << " at lsn " << res->lsn << " to " << o->file << " ("
          << FormatBytes(res->bytes) << ")\n";
    });
  });

  CLI::App* imp =
      AddCommand(app, "import",
                 "Create a branch from a SQLite database file (page size 4096, rollback journal)",
                 {"branchdb import shop.db --branch restored",
                  "branchdb import shop.db --branch copy --json"});
  imp->add_option("FILE", o->file, "The SQLite file")->required()->check(CLI::ExistingFile);
  imp->add_option("--branch", o->branch, "The new branch's name")->required();
  commands.AddForProject(imp, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    Progress progress("importing " + o->file);
    bdb::ImportRequest r;
    r.branch = o->branch;
    r.progress = progress.Callback();
    auto b = c->ImportFile(project, o->file, r);
    progress.Finish();
    if (!b.ok()) return ctx.Fail(b.error());
    return ctx.Print(b->raw, [&](std::ostream& out) {
      out << "imported " << o->file << " as branch " << b->name << " (head lsn " << b->head_lsn
          << ", " << FormatBytes(b->logical_bytes) << ")\n";
    });
  });
}

}  // namespace branchdb::cli
