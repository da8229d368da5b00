// Helpers of the page store's fault, power-loss and crash tests: an in-memory
// model of what the store acknowledged (and of what it was asked to do but did
// not acknowledge), a checker that compares a reopened store with the model,
// and a fixed workload that exercises every kind of record, a segment roll and
// GC.
//
// The rule the checker enforces (SQLite's crash.test, LevelDB's
// fault_injection_test): every acknowledged record is present with exactly its
// contents; a record that was not acknowledged (it failed, or was in flight
// at the crash) is either wholly present or wholly absent; histories and
// heads agree with the model.
//
// Thread-safety: none; one test thread.
#ifndef BRANCHDB_TESTS_UTIL_STORE_MODEL_H_
#define BRANCHDB_TESTS_UTIL_STORE_MODEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "storage/page_store.h"
#include "tests/util/fault_injection_env.h"

namespace branchdb::testing {

using storage::Lsn;
using storage::PageNo;
using storage::PageStore;
using storage::RecordKind;
using storage::TimelineId;

// kPageSize bytes named by key (0: all zeros). Distinct keys give distinct
// pages; the first 8 bytes hold the key. Most have a run of zeros (a hole).
std::string PageData(uint64_t key);
// The key PageData put in data, or nullopt if data is not a PageData page.
std::optional<uint64_t> PageKeyOf(const std::string& data);

// A mutation asked of the store.
struct ModelOp {
  RecordKind kind = RecordKind::kCommit;
  TimelineId timeline = 0;  // kCreate: the new id (0 when not acknowledged)
  Lsn prev = 0;             // kCommit: the head it builds on; kCreate/kReset: base
  Lsn expected_head = 0;    // kCommit/kReset: the timeline's head when asked
  uint32_t db_size = 0;     // kCommit only
  std::map<PageNo, uint64_t> pages;  // kCommit: page -> PageData key
  std::string annotation;            // unique per op
};

struct ModelState {
  uint32_t db_size = 0;
  std::map<PageNo, uint64_t> pages;  // pages with non-zero contents
};

class StoreModel {
 public:
  // Records an acknowledged mutation that produced record lsn.
  void Ack(Lsn lsn, const ModelOp& op);
  // Records an acknowledged DropTimeline (whose LSN the API does not return).
  void AckDrop(TimelineId t);
  // Records a mutation whose outcome is unknown (it failed, or was in flight).
  void AddUncertain(const ModelOp& op);
  void AddUncertainDrop(TimelineId t);

  // Live (created, not dropped) timelines and their acknowledged heads.
  const std::map<TimelineId, Lsn>& heads() const { return heads_; }
  const std::map<Lsn, ModelOp>& records() const { return records_; }
  Lsn LastAckedLsn() const { return records_.empty() ? 0 : records_.rbegin()->first; }
  uint64_t acked_count() const { return records_.size(); }

  // State named by an acknowledged LSN (0: empty).
  ModelState StateOf(Lsn lsn) const;
  // State an op produces on top of its prev.
  ModelState StateAfter(const ModelOp& op) const;
  // LSNs of the history of lsn, newest first (lsn, its prev, ...).
  std::vector<Lsn> Chain(Lsn lsn) const;
  // Every LSN on the history of a live timeline's head: what GC must keep.
  std::set<Lsn> Protected() const;

  // Compares store (freshly opened) with the model. Returns the problems
  // found, empty when the store agrees.
  std::vector<std::string> Check(const PageStore& store) const;

  // Reconciles the model with a checked store: uncertain ops that turned out
  // present become acknowledged, the others are forgotten. REQUIRES: Check()
  // found no problem.
  void Reconcile(const PageStore& store);

  // Commits one new page on every live timeline and reads it back. Problems
  // are appended to problems. Acknowledged commits are added to the model.
  void CheckAcceptsCommits(PageStore* store, std::vector<std::string>* problems);

  // A fresh unique annotation / attempt id.
  std::string NextAnnotation(const std::string& what);
  uint64_t NextKeyBase() { return ++attempts_ << 16; }

 private:
  std::optional<std::string> CheckState(const PageStore& store, Lsn lsn,
                                        const ModelState& want) const;
  std::optional<std::string> CheckRecord(const PageStore& store, Lsn lsn, const ModelOp& op,
                                         bool check_state) const;
  const ModelOp* FindUncertain(const std::string& annotation) const;

  std::map<Lsn, ModelOp> records_;
  std::map<TimelineId, Lsn> heads_;
  std::set<TimelineId> dropped_;
  std::vector<ModelOp> uncertain_;
  std::set<TimelineId> uncertain_drops_;
  uint64_t attempts_ = 0;
};

// What one workload run saw.
struct WorkloadRun {
  bool opened = false;
  // A sync-kind fault fired: the store must refuse every later mutation.
  bool fsync_failed = false;
  std::vector<std::string> violations;
  // Mutations attempted / acknowledged.
  int attempted = 0;
  int acknowledged = 0;
};

// Options of RunWorkload.
struct WorkloadOptions {
  // segment_bytes of the store (small: segments roll during the workload).
  uint64_t segment_bytes = 16 * 1024;
  // preallocate_bytes of the store (the zero region ahead of the records).
  uint64_t preallocate_bytes = storage::PageStoreOptions{}.preallocate_bytes;
  // Repeat the script this many times (more records, more rolls).
  int rounds = 1;
  bool with_gc = true;
  // seal_on_close of the store: the run ends with a sealed segment, no tail.
  bool seal_on_close = false;
};

// Opens a store in dir with env, runs the fixed script (create timelines,
// multi-page commits, a shrink, a reset, a drop, GC, reads), recording every
// outcome in model, then destroys the store. When fault_env is given, checks
// on the fly that a call during which a durability-relevant fault fired did
// not report success, and that after a failed fsync the store refuses every
// mutation (IOError "store_failed") and Health() is not OK.
// model->in_flight (see SetInFlightHook) is maintained for sync callbacks.
WorkloadRun RunWorkload(const std::string& dir, Env* env, FaultInjectionEnv* fault_env,
                        StoreModel* model, const WorkloadOptions& options = {});

// The op being executed by RunWorkload (nullopt between ops): a sync callback
// reads it to know what is in flight at a crash point.
const std::optional<ModelOp>& InFlightOp();

// Opens dir with env (default: Env::Default()), checks it against model,
// checks it accepts commits. Returns the problems.
std::vector<std::string> ReopenAndCheck(const std::string& dir, StoreModel* model,
                                        Env* env = nullptr);

// What a clean reopen and a power loss at this moment would each leave,
// checked against model: the crash image of db (FaultInjectionEnv's
// unsynced-data-lost view) is snapshot into crash_dir before anything reopens
// db, then both are ReopenAndCheck'ed (db against model, which is reconciled;
// the image against a copy of model as it was). Returns the problems, each
// prefixed "clean reopen: " or "power loss: ".
std::vector<std::string> ReopenAndCheckBoth(FaultInjectionEnv* env, const std::string& db,
                                            const std::string& crash_dir, StoreModel* model);

// Creates a timeline from nothing and records it in model: acknowledged with
// its head, or uncertain when the call failed (nullopt; the store may then be
// unusable, as after any fault).
std::optional<TimelineId> CreateTimelineInModel(PageStore* store, StoreModel* model);

std::string JoinProblems(const std::vector<std::string>& problems);

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_UTIL_STORE_MODEL_H_
