// A real kill -9 test of the page store. Each cycle, the test forks a child
// that opens the store on a real directory and mutates it in a loop (commits
// of 1–4 pages on several timelines, resets to earlier states, new timelines),
// writing every acknowledged (LSN, timeline, op nonce, checksum) to a pipe
// after the call returns. The parent SIGKILLs it at a random moment (also
// during open/recovery), reopens the store and checks:
//   - every acknowledged record is there, with its exact pages (checksum);
//   - every record present is whole (its annotation describes the op; every
//     page it wrote holds exactly the bytes the op wrote) — so a record that was
//     not acknowledged is wholly there or wholly absent;
//   - at most one unacknowledged record per cycle, and it is the newest;
//   - heads and histories agree with the records, every state reads as the
//     model says;
// then starts the next cycle on the same directory.
//
// BRANCHDB_CRASH_CYCLES (default 20) sets the number of cycles, BRANCHDB_SEED
// the seed (printed).
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "storage/page_store.h"
#include "tests/util/store_model.h"
#include "tests/util/temp_dir.h"
#include "tests/util/test_env.h"

using namespace branchdb;
using namespace branchdb::storage;
using branchdb::testing::PageData;
using branchdb::testing::EnvU64;
using branchdb::testing::PageKeyOf;
using branchdb::testing::TestSeed;

namespace {

constexpr uint32_t kDbPages = 16;
constexpr size_t kMaxTimelines = 6;
// Ack.nonce of the message a child sends (with lsn 0) before it runs Gc.
constexpr uint64_t kGcMarker = ~0ull;

// Sent through the pipe once a mutation is acknowledged. 32 bytes: one
// atomic pipe write (< PIPE_BUF).
struct Ack {
  uint64_t lsn;
  uint64_t timeline;
  uint64_t nonce;
  uint64_t checksum;
};

// What a record's annotation says about the op that wrote it.
struct OpDesc {
  int kind = 0;
  uint64_t timeline = 0;  // 0 for kCreate (not known before)
  uint64_t prev = 0;      // commit: head it builds on; create/reset: base
  uint64_t nonce = 0;
  uint32_t pages = 0;     // bitmap, bit p-1 for page p
  uint64_t checksum = 0;
};

std::string Encode(const OpDesc& d) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "crash k=%d t=%" PRIu64 " prev=%" PRIu64 " n=%" PRIu64
                " pages=%u sum=%" PRIu64, d.kind, d.timeline, d.prev, d.nonce, d.pages,
                d.checksum);
  return buf;
}

std::optional<OpDesc> Decode(const std::string& s) {
  OpDesc d;
  if (std::sscanf(s.c_str(), "crash k=%d t=%" SCNu64 " prev=%" SCNu64 " n=%" SCNu64
                  " pages=%u sum=%" SCNu64, &d.kind, &d.timeline, &d.prev, &d.nonce, &d.pages,
                  &d.checksum) != 6) {
    return std::nullopt;
  }
  return d;
}

uint64_t PageKey(uint64_t nonce, PageNo p) { return nonce * 64 + p; }

uint64_t Fnv(uint64_t h, const std::string& data) {
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}
constexpr uint64_t kFnvInit = 1469598103934665603ull;

PageStoreOptions StoreOptions() {
  PageStoreOptions o;
  o.env = Env::Default();
  o.segment_bytes = 128 * 1024;  // several segment rolls over the run
  o.cache_bytes = 64 * kPageSize;
  return o;
}

// --- The child -------------------------------------------------------------------

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "kill9 child: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::_Exit(3);
}

void SendAck(int fd, const Ack& ack) {
  const char* p = reinterpret_cast<const char*>(&ack);
  size_t left = sizeof(ack);
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) std::_Exit(4);
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// Creates a timeline (from the empty state or from another timeline's head).
void CreateOne(PageStore* store, int fd, std::mt19937_64& rng, uint64_t nonce,
               const std::vector<TimelineInfo>& tls) {
  OpDesc d;
  d.nonce = nonce;
  d.kind = static_cast<int>(RecordKind::kCreate);
  std::optional<TimelineInfo> src;
  if (!tls.empty() && rng() % 4 != 0) src = tls[rng() % tls.size()];
  d.prev = src ? src->head : 0;
  auto t = src ? store->CreateTimeline(src->id, src->head, Encode(d))
               : store->CreateTimeline(0, Encode(d));
  if (!t.ok()) Die("create", t.status());
  auto head = store->Head(*t);
  if (!head.ok()) Die("head", head.status());
  SendAck(fd, Ack{*head, *t, d.nonce, 0});
}

// A commit of 1-4 pages on t (88%) or a reset of t to an earlier state of its
// history (12%).
void MutateTimeline(PageStore* store, int fd, std::mt19937_64& rng, uint64_t nonce,
                    const TimelineInfo& t) {
  OpDesc d;
  d.nonce = nonce;
  d.timeline = t.id;
  if (rng() % 100 < 12) {
    auto hist = store->History(t.id, 0, 32);
    if (!hist.ok()) Die("history", hist.status());
    if (hist->size() < 2) return;
    d.kind = static_cast<int>(RecordKind::kReset);
    d.prev = (*hist)[1 + rng() % (hist->size() - 1)].lsn;
    auto lsn = store->ResetTimeline(t.id, t.head, d.prev, Encode(d));
    if (!lsn.ok()) Die("reset", lsn.status());
    SendAck(fd, Ack{*lsn, t.id, d.nonce, 0});
    return;
  }
  d.kind = static_cast<int>(RecordKind::kCommit);
  d.prev = t.head;
  const int n = 1 + static_cast<int>(rng() % 4);
  while (static_cast<int>(__builtin_popcount(d.pages)) < n) d.pages |= 1u << (rng() % kDbPages);
  std::vector<std::string> data;
  std::vector<PageNo> pgnos;
  d.checksum = kFnvInit;
  for (PageNo p = 1; p <= kDbPages; ++p) {
    if ((d.pages & (1u << (p - 1))) == 0) continue;
    pgnos.push_back(p);
    data.push_back(PageData(PageKey(d.nonce, p)));
    d.checksum = Fnv(d.checksum, data.back());
  }
  std::vector<PageWrite> writes;
  for (size_t i = 0; i < pgnos.size(); ++i) writes.push_back(PageWrite{pgnos[i], data[i]});
  auto lsn = store->Commit(t.id, t.head, writes, kDbPages, Encode(d));
  if (!lsn.ok()) Die("commit", lsn.status());
  SendAck(fd, Ack{*lsn, t.id, d.nonce, d.checksum});
}

// threads == 1: one writer over all timelines, also creating new ones.
// threads > 1: that many writers, each on its own timeline (group commit).
[[noreturn]] void ChildMain(const std::string& dir, int fd, uint64_t seed, uint64_t cycle,
                            int threads) {
  std::mt19937_64 rng(seed);
  auto opened = PageStore::Open(StoreOptions(), dir);
  if (!opened.ok()) Die("open", opened.status());
  PageStore* store = opened->get();
  uint64_t seq = 0;
  // Unique per op: cycle, writer, sequence number.
  auto nonce = [cycle](uint64_t writer, uint64_t n) { return ((cycle + 1) << 24) | (writer << 20) | n; };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  const size_t min_timelines = threads > 1 ? static_cast<size_t>(threads) : 3;
  while (store->ListTimelines().size() < min_timelines) {
    CreateOne(store, fd, rng, nonce(0, ++seq), store->ListTimelines());
  }
  if (threads == 1) {
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<TimelineInfo> tls = store->ListTimelines();
      const int dice = static_cast<int>(rng() % 100);
      if (dice < 5 && tls.size() < kMaxTimelines) {
        CreateOne(store, fd, rng, nonce(0, ++seq), tls);
      } else if (dice < 7) {
        // GC keeping every state on a live history: what resets orphaned goes,
        // and compaction rewrites segments while the kill may come.
        GcOptions gc;
        gc.restore_window_micros = 0;
        for (const TimelineInfo& t : tls) {
          auto hist = store->History(t.id, 0, 1000000);
          if (!hist.ok()) Die("history", hist.status());
          for (const RecordInfo& r : *hist) gc.pins.push_back(r.lsn);
        }
        SendAck(fd, Ack{0, 0, kGcMarker, 0});
        auto stats = store->Gc(gc);
        if (!stats.ok()) Die("gc", stats.status());
      } else {
        MutateTimeline(store, fd, rng, nonce(0, ++seq), tls[rng() % tls.size()]);
      }
    }
    std::_Exit(0);
  }
  std::vector<TimelineInfo> tls = store->ListTimelines();
  std::vector<std::thread> writers;
  for (int w = 0; w < threads; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 wrng(seed + 1 + w);
      uint64_t n = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        auto t = store->GetTimeline(tls[w].id);
        if (!t.ok()) Die("get timeline", t.status());
        MutateTimeline(store, fd, wrng, nonce(w + 1, ++n), *t);
      }
    });
  }
  for (auto& t : writers) t.join();
  std::_Exit(0);
}

// --- The parent's checks --------------------------------------------------------------

struct Present {
  OpDesc op;
  TimelineId timeline = 0;
  std::array<uint64_t, kDbPages + 1> state{};  // page -> key (0: zeros)
};

class Checker {
 public:
  // Checks the store against everything acknowledged so far; problems are
  // appended. `first_new` is the first LSN not seen in an earlier cycle.
  // At most `writers` records (one per writer) can be in flight at a kill.
  // Once gc_started, records on no live timeline's history may be gone.
  void Check(const PageStore& store, const std::map<Lsn, Ack>& acked, Lsn first_new,
             int writers, bool gc_started, std::vector<std::string>* problems) {
    auto problem = [&](const std::string& s) { problems->push_back(s); };
    present_.clear();
    latest_on_.clear();
    std::set<Lsn> on_history;
    for (const TimelineInfo& info : store.ListTimelines()) {
      auto hist = store.History(info.id, 0, 1000000);
      if (!hist.ok()) continue;  // reported below
      for (const RecordInfo& r : *hist) on_history.insert(r.lsn);
    }
    auto strict = [&](Lsn lsn) { return !gc_started || on_history.count(lsn) != 0; };
    const Lsn last = store.LastLsn();
    if (!acked.empty() && last < acked.rbegin()->first) {
      problem("LastLsn " + std::to_string(last) + " < last acknowledged " +
              std::to_string(acked.rbegin()->first));
    }
    std::vector<Lsn> unacked_new;
    for (Lsn lsn = 1; lsn <= last; ++lsn) {
      const std::string at = "lsn " + std::to_string(lsn) + ": ";
      // Problems of this record; ignored for a record on no live history
      // once GC may have collected parts of it.
      std::vector<std::string> record_problems;
      auto rp = [&](const std::string& s) { record_problems.push_back(s); };
      auto ack = acked.find(lsn);
      auto rec = store.GetRecord(lsn);
      if (!rec.ok()) {
        if ((ack != acked.end() && strict(lsn)) || !rec.status().IsNotFound()) {
          rp(at + "acknowledged record missing: " + rec.status().ToString());
        }
        present_.erase(lsn);
        continue;
      }
      auto op = Decode(rec->annotation);
      if (!op) {
        rp(at + "unparsable annotation '" + rec->annotation + "'");
        continue;
      }
      if (ack != acked.end() && (ack->second.nonce != op->nonce ||
                                 ack->second.timeline != rec->timeline)) {
        rp(at + "is not the acknowledged op");
        continue;
      }
      if (ack == acked.end() && lsn >= first_new) unacked_new.push_back(lsn);
      if (static_cast<int>(rec->kind) != op->kind ||
          (op->kind != static_cast<int>(RecordKind::kCreate) && rec->timeline != op->timeline)) {
        rp(at + "kind/timeline disagree with the annotation");
        continue;
      }
      if (op->kind != static_cast<int>(RecordKind::kCommit) && rec->base != op->prev) {
        rp(at + "base " + std::to_string(rec->base) + " != " + std::to_string(op->prev));
      }
      Present p;
      p.op = *op;
      p.timeline = rec->timeline;
      auto prev = present_.find(op->prev);
      if (op->prev != 0 && prev == present_.end()) {
        if (strict(lsn)) {
          rp(at + "builds on lsn " + std::to_string(op->prev) + ", which is not present");
        }
        continue;  // else: an orphaned record whose base GC collected
      }
      if (op->prev != 0) p.state = prev->second.state;
      if (op->kind == static_cast<int>(RecordKind::kCommit)) {
        std::vector<PageNo> want_pages;
        uint64_t sum = kFnvInit;
        std::string out;
        for (PageNo pg = 1; pg <= kDbPages; ++pg) {
          if ((op->pages & (1u << (pg - 1))) == 0) continue;
          want_pages.push_back(pg);
          p.state[pg] = PageKey(op->nonce, pg);
          Status s = store.ReadPageAt(lsn, pg, &out);
          if (!s.ok()) {
            rp(at + "ReadPageAt: " + s.ToString());
            break;
          }
          if (out != PageData(p.state[pg])) {
            rp(at + "page " + std::to_string(pg) + " torn or from another op");
          }
          sum = Fnv(sum, out);
        }
        if (rec->pages != want_pages) rp(at + "page list differs from the op's");
        if (sum != op->checksum) rp(at + "checksum mismatch (torn commit)");
        if (ack != acked.end() && ack->second.checksum != sum) {
          rp(at + "acknowledged checksum mismatch");
        }
        // The op built on the timeline's newest earlier record: nothing lost between.
        auto latest = latest_on_.find(rec->timeline);
        if (latest != latest_on_.end() && latest->second != op->prev) {
          rp(at + "commit builds on " + std::to_string(op->prev) + " but t" +
                  std::to_string(rec->timeline) + "'s previous record is " +
                  std::to_string(latest->second));
        }
      }
      latest_on_[rec->timeline] = lsn;
      if (lsn >= first_new) {  // full state check, once per record
        std::string out;
        for (PageNo pg = 1; pg <= kDbPages; ++pg) {
          Status s = store.ReadPageAt(lsn, pg, &out);
          if (!s.ok() || out != PageData(p.state[pg])) {
            auto key = PageKeyOf(out);
            rp(at + "state page " + std::to_string(pg) + " is " +
                    (s.ok() ? (key ? "key " + std::to_string(*key) : "garbage") : s.ToString()) +
                    ", want key " + std::to_string(p.state[pg]));
            break;
          }
        }
      }
      if (!record_problems.empty()) {
        if (strict(lsn)) problems->insert(problems->end(), record_problems.begin(), record_problems.end());
        continue;
      }
      present_[lsn] = p;
    }
    if (unacked_new.size() > static_cast<size_t>(writers) ||
        (writers == 1 && unacked_new.size() == 1 && unacked_new[0] != last)) {
      problem(std::to_string(unacked_new.size()) + " unacknowledged records in one cycle (" +
              std::to_string(writers) + " writers: at most one each, the newest, in flight)");
    }
    // Heads and histories.
    for (const TimelineInfo& info : store.ListTimelines()) {
      const std::string name = "t" + std::to_string(info.id) + ": ";
      auto latest = latest_on_.find(info.id);
      if (latest == latest_on_.end() || info.head != latest->second) {
        problem(name + "head " + std::to_string(info.head) + " is not its newest record");
        continue;
      }
      auto hist = store.History(info.id, 0, 1000000);
      if (!hist.ok()) {
        problem(name + "History: " + hist.status().ToString());
        continue;
      }
      Lsn want = info.head;
      bool diverged = false;
      for (const RecordInfo& r : *hist) {
        if (r.lsn != want || present_.count(r.lsn) == 0) {
          problem(name + "history has " + std::to_string(r.lsn) + " where " +
                  std::to_string(want) + " belongs");
          diverged = true;
          break;
        }
        want = present_.at(r.lsn).op.prev;
      }
      if (!diverged && want != 0) {
        problem(name + "history ends early, before " + std::to_string(want));
      }
    }
    for (const auto& [lsn, a] : acked) {
      if (present_.count(lsn) == 0 && strict(lsn)) {
        problem("acknowledged lsn " + std::to_string(lsn) + " lost");
      }
    }
  }

 private:
  std::map<Lsn, Present> present_;
  std::map<TimelineId, Lsn> latest_on_;
};



void RunKillCycles(int writers) {
  const uint64_t seed = TestSeed("store_kill9_test");
  const uint64_t cycles = EnvU64("BRANCHDB_CRASH_CYCLES", 20);
  std::fprintf(stderr, "store_kill9_test writers=%d cycles=%" PRIu64 " (BRANCHDB_CRASH_CYCLES)\n",
               writers, cycles);
  std::mt19937_64 rng(seed);
  branchdb::testing::TempDir dir;  // a real file system, not tmpfs
  const std::string db = dir.Sub("db");
  std::map<Lsn, Ack> acked;
  Checker checker;
  Lsn first_new = 1;
  bool gc_started = false;
  uint64_t gc_runs = 0;
  uint64_t total_acks = 0;

  for (uint64_t cycle = 0; cycle < cycles; ++cycle) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const uint64_t child_seed = rng();
    const int kill_after_ms = 5 + static_cast<int>(rng() % 200);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      ChildMain(db, fds[1], child_seed, cycle, writers);
    }
    ::close(fds[1]);
    std::vector<char> bytes;
    auto drain = [&](int timeout_ms) {
      struct pollfd pfd{fds[0], POLLIN, 0};
      if (::poll(&pfd, 1, timeout_ms) <= 0) return false;
      char buf[4096];
      ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0) return false;
      bytes.insert(bytes.end(), buf, buf + n);
      return true;
    };
    const auto kill_at =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kill_after_ms);
    while (std::chrono::steady_clock::now() < kill_at) drain(2);
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    while (drain(0)) {
    }
    ::close(fds[0]);
    INFO("cycle " << cycle << " (seed " << seed << "), killed after " << kill_after_ms << " ms");
    REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));  // else the child failed
    REQUIRE(bytes.size() % sizeof(Ack) == 0);
    for (size_t off = 0; off < bytes.size(); off += sizeof(Ack)) {
      Ack a;
      std::memcpy(&a, bytes.data() + off, sizeof(a));
      if (a.lsn == 0 && a.nonce == kGcMarker) {
        gc_started = true;
        ++gc_runs;
        continue;
      }
      acked[a.lsn] = a;
      ++total_acks;
    }

    PageStoreOptions options = StoreOptions();
    auto store = PageStore::Open(options, db);
    REQUIRE(store.ok());
    std::vector<std::string> problems;
    checker.Check(**store, acked, first_new, writers, gc_started, &problems);
    INFO(branchdb::testing::JoinProblems(problems));
    REQUIRE(problems.empty());
    first_new = (*store)->LastLsn() + 1;
  }
  std::fprintf(stderr, "store_kill9_test: %" PRIu64 " acknowledged mutations and %" PRIu64
                       " GC runs over %" PRIu64 " cycles, all present\n", total_acks, gc_runs,
               cycles);
  CHECK(total_acks > 0);
}

}  // namespace

TEST_CASE("kill -9 at random moments loses no acknowledged commit and tears none", "[crash]") {
  RunKillCycles(1);
}

TEST_CASE("kill -9 during group commits of 4 writers on 4 timelines", "[crash]") {
  RunKillCycles(4);
}
