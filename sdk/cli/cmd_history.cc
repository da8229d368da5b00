// branchdb checkpoints | label | rollback | reset | promote
#include <memory>

#include "sdk/cli/cli.h"
#include "sdk/cli/format.h"

namespace branchdb::cli {

namespace {

void PrintMove(const std::string& branch, const bdb::MoveResult& m, std::ostream& out) {
  out << branch << ": head lsn " << m.head_lsn << " (was " << m.previous_head_lsn << ")\n"
      << "undo: branchdb rollback " << branch << " --to " << m.previous_head_lsn << "\n";
}

// What the subcommands of RegisterHistoryCommands parse into (one parse per process).
struct HistoryOpts {
  std::string branch, cursor, label, time, mode, verify, on_conflict;
  int64_t limit = 20, actions = 0, max_retries = 3;
  uint64_t lsn = 0, checkpoint = 0;
  bool dry_run = false;
};
using HistoryOptsPtr = std::shared_ptr<HistoryOpts>;

void RegisterCheckpoints(CLI::App& app, Commands& commands, const HistoryOptsPtr& o) {
  CLI::App* list = AddCommand(
      app, "checkpoints",
      "List a branch's reflog, newest first: every state it has been in (each committed action, "
      "its creation, each rollback/reset/promote with where it moved from and to; states a "
      "rollback left are marked rolled-back and stay rollback targets), into its ancestors",
      {"branchdb checkpoints dev/alex", "branchdb checkpoints dev/alex --limit 5 --json"});
  list->add_option("BRANCH", o->branch, "Branch name")->required();
  list->add_option("--limit", o->limit, "At most this many")->capture_default_str();
  list->add_option("--cursor", o->cursor, "Continue after a previous page (its \"next\")");
  commands.AddForProject(list, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    bdb::ListCheckpointsRequest r;
    r.limit = o->limit;
    if (!o->cursor.empty()) r.cursor = o->cursor;
    auto page = c->ListCheckpoints(project, o->branch, r);
    if (!page.ok()) return ctx.Fail(page.error());
    return ctx.Print(page->raw, [&](std::ostream& out) {
      Table t({"LSN", "TIME", "KIND", "LABEL", "ROWS", "BRANCH", "SUMMARY"});
      for (const auto& cp : page->checkpoints) {
        std::string what = cp.summary;
        if (cp.target_lsn && cp.previous_head_lsn) {
          what = std::to_string(*cp.previous_head_lsn) + " -> " + std::to_string(*cp.target_lsn);
        } else if (cp.target_lsn && cp.kind == "create") {
          what = "from lsn " + std::to_string(*cp.target_lsn);
        }
        if (cp.rolled_back) what = "(rolled back) " + what;
        t.AddRow({std::to_string(cp.lsn), cp.time, cp.kind, cp.label.value_or(""),
                  std::to_string(cp.rows_affected), cp.branch.value_or(o->branch),
                  Cell(what, 60)});
      }
      t.Print(out);
      if (page->next) {
        out << "more: branchdb checkpoints " << o->branch << " --cursor " << *page->next << "\n";
      }
    });
  });
}

void RegisterLabel(CLI::App& app, Commands& commands, const HistoryOptsPtr& o) {
  CLI::App* label = AddCommand(
      app, "label", "Label a checkpoint; labelled checkpoints outlive the restore window",
      {"branchdb label dev/alex 12 before-migration"});
  label->add_option("BRANCH", o->branch, "Branch name")->required();
  label->add_option("LSN", o->lsn, "The checkpoint's LSN (see branchdb checkpoints)")->required();
  label->add_option("LABEL", o->label, "The label")->required();
  commands.AddForProject(label, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    bdb::LabelCheckpointRequest r;
    r.label = o->label;
    r.lsn = o->lsn;
    auto cp = c->LabelCheckpoint(project, o->branch, r);
    if (!cp.ok()) return ctx.Fail(cp.error());
    return ctx.Print(cp->raw, [&](std::ostream& out) {
      out << "labelled lsn " << cp->lsn << " of " << o->branch << " \"" << o->label << "\"\n";
    });
  });
}

void RegisterRollback(CLI::App& app, Commands& commands, const HistoryOptsPtr& o) {
  CLI::App* rollback = AddCommand(
      app, "rollback",
      "Move a branch back to an earlier checkpoint (undoable: roll back to the previous head)",
      {"branchdb rollback dev/alex --actions 1        # undo the last SQL action",
       "branchdb rollback dev/alex --to 12", "branchdb rollback dev/alex --label before-migration",
       "branchdb rollback dev/alex --time 2026-11-21T09:00:00Z"});
  rollback->add_option("BRANCH", o->branch, "Branch name")->required();
  auto* to = rollback->add_option("--to", o->lsn, "Move the head to this LSN");
  auto* actions = rollback->add_option("--actions", o->actions, "Undo the newest N SQL actions");
  auto* time =
      rollback->add_option("--time", o->time, "The state at this time (RFC 3339 or Unix seconds)");
  auto* lbl = rollback->add_option("--label", o->label, "The checkpoint with this label");
  auto* ckpt = rollback->add_option("--checkpoint", o->checkpoint, "This checkpoint (an LSN)");
  commands.AddForProject(rollback, [o, to, actions, time, lbl, ckpt](Context& ctx, bdb::Client* c,
                                                                     const std::string& project) {
    int given = int(to->count() + actions->count() + time->count() + lbl->count() + ckpt->count());
    if (given != 1) {
      return ctx.Usage("rollback needs exactly one target",
                       "one of --to LSN, --actions N, --time T, --label L, --checkpoint LSN");
    }
    bdb::RollbackTarget t;
    if (to->count()) t.lsn = o->lsn;
    if (actions->count()) t.actions = o->actions;
    if (time->count()) t.timestamp = o->time;
    if (lbl->count()) t.label = o->label;
    if (ckpt->count()) t.checkpoint = o->checkpoint;
    auto m = c->Rollback(project, o->branch, t);
    if (!m.ok()) return ctx.Fail(m.error());
    return ctx.Print(m->raw, [&](std::ostream& out) { PrintMove(o->branch, *m, out); });
  });
}

void RegisterReset(CLI::App& app, Commands& commands, const HistoryOptsPtr& o) {
  CLI::App* reset =
      AddCommand(app, "reset", "Move a branch to its parent's head (undoable like a rollback)",
                 {"branchdb reset dev/alex"});
  reset->add_option("BRANCH", o->branch, "Branch name")->required();
  commands.AddForProject(reset, [o](Context& ctx, bdb::Client* c, const std::string& project) {
    auto m = c->Reset(project, o->branch);
    if (!m.ok()) return ctx.Fail(m.error());
    return ctx.Print(m->raw, [&](std::ostream& out) { PrintMove(o->branch, *m, out); });
  });
}

void RegisterPromote(CLI::App& app, Commands& commands, const HistoryOptsPtr& o) {
  CLI::App* promote = AddCommand(
      app, "promote",
      "Promote a branch onto its parent: fast-forward when the parent has not moved, else "
      "replay the branch's actions",
      {"branchdb promote dev/alex --dry-run",
       "branchdb promote dev/alex --verify \"SELECT count(*) > 0 FROM items\"",
       "branchdb promote dev/alex --mode replay --on-conflict retry"});
  promote->add_option("BRANCH", o->branch, "Branch name")->required();
  promote->add_flag("--dry-run", o->dry_run,
                    "Show what would happen; change nothing (default: off)");
  promote->add_option("--verify", o->verify,
                      "SQL run on the result before the parent moves; its first value must be "
                      "truthy");
  promote
      ->add_option("--on-conflict", o->on_conflict,
                   "When the parent is written during a replay: fail or retry (default: fail)")
      ->check(CLI::IsMember({"fail", "retry"}));
  auto* retries = promote
                      ->add_option("--max-retries", o->max_retries,
                                   "Attempts after the first, with --on-conflict retry (0..10)")
                      ->capture_default_str()
                      ->check(CLI::Range(0, 10));
  promote->add_option("--mode", o->mode, "auto, fast_forward or replay (default: auto)")
      ->check(CLI::IsMember({"auto", "fast_forward", "replay"}));
  commands.AddForProject(promote, [o, retries](Context& ctx, bdb::Client* c,
                                               const std::string& project) {
    bdb::PromoteRequest r;
    r.dry_run = o->dry_run;
    if (!o->mode.empty()) r.mode = o->mode;
    if (!o->verify.empty()) r.verify = o->verify;
    if (!o->on_conflict.empty()) r.on_conflict = o->on_conflict;
    if (retries->count()) r.max_retries = o->max_retries;
    auto p = c->Promote(project, o->branch, r);
    if (!p.ok()) return ctx.Fail(p.error());
    return ctx.Print(p->raw, [&](std::ostream& out) {
      std::string how = p->mode == "fast_forward" ? "fast-forward" : "replay";
      if (p->dry_run) {
        out << "would promote " << p->source << " onto " << p->branch << " by " << how;
      } else {
        out << "promoted " << p->source << " onto " << p->branch << " by " << how << ": head lsn "
            << (p->head_lsn ? std::to_string(*p->head_lsn) : "-") << " (was "
            << p->previous_head_lsn << ")";
      }
      out << ", " << p->actions.size() << (p->actions.size() == 1 ? " action" : " actions")
          << (p->attempts > 1 ? ", " + std::to_string(p->attempts) + " attempts" : "") << "\n";
      if (!p->actions.empty()) {
        Table t({"LSN", "ROWS", "SUMMARY"});
        for (const auto& a : p->actions) {
          t.AddRow({std::to_string(a.lsn), std::to_string(a.rows), Cell(a.summary, 70)});
        }
        t.Print(out);
      }
      if (p->verify.is_object()) out << "verify: " << Str(p->verify, "value") << " (ok)\n";
      if (!p->dry_run) {
        out << "undo: branchdb rollback " << p->branch << " --to " << p->previous_head_lsn << "\n";
      }
    });
  });
}

}  // namespace

void RegisterHistoryCommands(CLI::App& app, Commands& commands) {
  auto o = std::make_shared<HistoryOpts>();
  RegisterCheckpoints(app, commands, o);
  RegisterLabel(app, commands, o);
  RegisterRollback(app, commands, o);
  RegisterReset(app, commands, o);
  RegisterPromote(app, commands, o);
}

}  // namespace branchdb::cli
