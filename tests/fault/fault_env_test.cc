// Tests of the fault-injecting Env itself (tests/util/fault_injection_env.h):
// counting and failing the n-th operation (of some kinds, or of the ones a
// predicate picks), call and byte counts, skipped syncs, durability
// tracking, simulated power loss and crash snapshots.
#include <catch2/catch.hpp>

#include <string>
#include <utility>

#include "base/env.h"
#include "tests/util/fault_injection_env.h"
#include "tests/util/temp_dir.h"

using branchdb::Env;
using branchdb::Status;
using branchdb::WritableFile;
using namespace branchdb::testing;

namespace {

std::string Read(Env* env, const std::string& path) {
  auto data = Env::Default()->ReadFileToString(path);
  return data.ok() ? *data : std::string("<missing>");
}

std::unique_ptr<WritableFile> Create(Env* env, const std::string& path) {
  auto f = env->NewWritableFile(path, Env::OpenMode::kTruncate);
  REQUIRE(f.ok());
  return std::move(*f);
}

}  // namespace

TEST_CASE("FaultInjectionEnv counts operations and fails the n-th with EIO") {
  TempDir dir;
  FaultInjectionEnv env;
  env.FailNth(3, FaultType::kIOError);
  auto f = Create(&env, dir.Sub("f"));       // op 1
  REQUIRE(f->Append("a").ok());              // op 2
  Status s = f->Append("b");                 // op 3: fails
  CHECK(s.IsIOError());
  CHECK(env.FaultFired());
  CHECK(env.FiredOpKind() == kOpAppend);
  CHECK(env.FiredOpDescription().find("Append") != std::string::npos);
  CHECK(f->Append("c").ok());                // op 4: not sticky
  CHECK(f->Sync().ok());
  CHECK(env.OpCount() == 5);
  CHECK(env.FaultsFired() == 1);
  CHECK(Read(&env, dir.Sub("f")) == "ac");  // the failed append had no effect
}

TEST_CASE("FaultInjectionEnv ENOSPC is ResourceExhausted disk_full, sticky fails all later ops") {
  TempDir dir;
  FaultInjectionEnv env;
  env.FailNth(2, FaultType::kNoSpace, /*sticky=*/true);
  auto f = Create(&env, dir.Sub("f"));
  Status s = f->Append("x");
  CHECK(s.code() == branchdb::StatusCode::kResourceExhausted);
  CHECK(s.reason() == "disk_full");
  CHECK_FALSE(f->Append("y").ok());
  CHECK_FALSE(env.SyncDir(dir.path()).ok());
  CHECK(env.FaultsFired() == 3);
  env.ClearFault();
  CHECK(f->Append("z").ok());
}

TEST_CASE("FaultInjectionEnv op mask counts and fails only the chosen kinds") {
  TempDir dir;
  FaultInjectionEnv env;
  env.FailNth(2, FaultType::kIOError, false, kOpSync | kOpSyncDir);
  auto f = Create(&env, dir.Sub("f"));
  REQUIRE(f->Append("1").ok());
  REQUIRE(f->Sync().ok());               // sync #1
  REQUIRE(f->Append("2").ok());
  CHECK(env.OpCount() == 1);
  CHECK(env.SyncDir(dir.path()).IsIOError());  // sync #2
  CHECK(env.FiredOpKind() == kOpSyncDir);
}

TEST_CASE("FaultInjectionEnv only_if counts and fails only the operations it picks") {
  TempDir dir;
  FaultInjectionEnv env;
  FaultSpec spec;
  spec.op_mask = kOpDelete | kOpRename;
  spec.only_if = [](uint32_t, const std::string& path) {
    return path.find("seg-") != std::string::npos;
  };
  env.FailNth(spec);
  REQUIRE(Create(&env, dir.Sub("a.tmp"))->Close().ok());
  REQUIRE(Create(&env, dir.Sub("seg-1.tmp"))->Close().ok());
  CHECK(env.DeleteFile(dir.Sub("a.tmp")).ok());  // not picked: not counted
  CHECK(env.OpCount() == 0);
  CHECK(env.RenameFile(dir.Sub("seg-1.tmp"), dir.Sub("seg-1")).IsIOError());  // "from -> to"
  CHECK(env.FiredOpKind() == kOpRename);
  CHECK(env.OpCount() == 1);

  // A predicate with state: the first SyncDir after a rename of a "seg-" file.
  spec.op_mask = kOpRename | kOpSyncDir;
  spec.only_if = [renamed = false](uint32_t kind, const std::string& path) mutable {
    if (kind == kOpRename) {
      renamed = path.find("seg-") != std::string::npos;
      return false;
    }
    return std::exchange(renamed, false);
  };
  env.FailNth(spec);
  CHECK(env.SyncDir(dir.path()).ok());
  REQUIRE(env.RenameFile(dir.Sub("seg-1.tmp"), dir.Sub("seg-1")).ok());
  CHECK(env.SyncDir(dir.path()).IsIOError());
  CHECK(env.SyncDir(dir.path()).ok());
  CHECK(env.FaultsFired() == 1);
}

TEST_CASE("FaultInjectionEnv counts calls by kind and bytes read, faults or not") {
  TempDir dir;
  FaultInjectionEnv env;
  auto f = Create(&env, dir.Sub("f"));
  REQUIRE(f->Append("0123456789").ok());
  REQUIRE(f->Sync().ok());
  env.FailNth(1, FaultType::kIOError, /*sticky=*/false, kOpSync);
  CHECK_FALSE(f->Sync().ok());
  CHECK(env.CallCount(kOpSync) == 2);  // the failed one too
  CHECK(env.CallCount(kOpAppend) == 1);
  CHECK(env.CallCount(kOpSync | kOpAppend | kOpNewWritableFile) == 4);
  REQUIRE(Env::Default()->WriteFileAtomic(dir.Sub("r"), "abcdef").ok());
  auto r = env.NewRandomAccessFile(dir.Sub("r"));
  REQUIRE(r.ok());
  char buf[16];
  REQUIRE((*r)->Read(2, 16, buf).ok());  // 4 bytes left
  CHECK(env.BytesRead() == 4);
  CHECK(env.CallCount(kOpRead) == 1);
}

TEST_CASE("FaultInjectionEnv skipped syncs report success and leave the data unsynced") {
  TempDir dir;
  FaultInjectionEnv env;
  env.SetSkipSyncs(/*files=*/true, /*dirs=*/true);
  auto f = Create(&env, dir.Sub("f"));
  REQUIRE(f->Append("data").ok());
  CHECK(f->Sync().ok());
  CHECK(env.SyncDir(dir.path()).ok());
  CHECK(env.SyncedSize(dir.Sub("f")) == 0u);
  CHECK(env.EntryDurable(dir.Sub("f")) == false);
  CHECK(env.CallCount(kOpSync | kOpSyncDir) == 0);
  env.SetSkipSyncs(false, false);
  CHECK(f->Sync().ok());
  CHECK(env.SyncDir(dir.path()).ok());
  CHECK(env.SyncedSize(dir.Sub("f")) == 4u);
  CHECK(env.EntryDurable(dir.Sub("f")) == true);
}

TEST_CASE("FaultInjectionEnv a partial write leaves a prefix") {
  TempDir dir;
  FaultInjectionEnv env;
  FaultSpec spec;
  spec.nth = 2;
  spec.type = FaultType::kNoSpace;
  spec.partial_write = true;
  env.FailNth(spec);
  auto f = Create(&env, dir.Sub("f"));
  CHECK_FALSE(f->Append("abcdef").ok());
  CHECK(Read(&env, dir.Sub("f")) == "abc");
}

TEST_CASE("FaultInjectionEnv a failed Sync drops the unsynced data") {
  TempDir dir;
  FaultInjectionEnv env;
  auto f = Create(&env, dir.Sub("f"));
  REQUIRE(f->Append("durable").ok());
  REQUIRE(f->Sync().ok());
  REQUIRE(f->Append("-lost").ok());
  env.FailNth(1, FaultType::kIOError, false, kOpSync);
  CHECK(f->Sync().IsIOError());
  CHECK(Read(&env, dir.Sub("f")) == "durable");
  CHECK(env.SyncedSize(dir.Sub("f")) == 7u);
}

TEST_CASE("FaultInjectionEnv reads and opens can fail too") {
  TempDir dir;
  FaultInjectionEnv env;
  REQUIRE(Env::Default()->WriteFileAtomic(dir.Sub("r"), "data").ok());
  env.FailNth(2, FaultType::kIOError);
  auto r = env.NewRandomAccessFile(dir.Sub("r"));
  REQUIRE(r.ok());
  char buf[8];
  CHECK((*r)->Read(0, 4, buf).status().IsIOError());
  CHECK((*r)->Read(0, 4, buf).ok());
  env.FailNth(1, FaultType::kIOError);
  CHECK_FALSE(env.GetChildren(dir.path()).ok());
  env.FailNth(1, FaultType::kIOError);
  CHECK_FALSE(env.GetFileSize(dir.Sub("r")).ok());
  env.FailNth(1, FaultType::kIOError);
  CHECK_FALSE(env.LockFile(dir.Sub("LOCK")).ok());
}

TEST_CASE("FaultInjectionEnv crash keeps synced bytes and dir-synced files only") {
  TempDir dir;
  FaultInjectionEnv env;
  {
    auto a = Create(&env, dir.Sub("a"));
    REQUIRE(a->Append("synced").ok());
    REQUIRE(a->Sync().ok());
    REQUIRE(env.SyncDir(dir.path()).ok());
    REQUIRE(a->Append("+unsynced").ok());
    auto b = Create(&env, dir.Sub("b"));  // never dir-synced
    REQUIRE(b->Append("b").ok());
    REQUIRE(b->Sync().ok());
    CHECK(env.EntryDurable(dir.Sub("a")) == true);
    CHECK(env.EntryDurable(dir.Sub("b")) == false);
  }
  REQUIRE(env.SimulateCrash().ok());
  CHECK(Read(&env, dir.Sub("a")) == "synced");
  CHECK_FALSE(Env::Default()->FileExists(dir.Sub("b")));
}

TEST_CASE("FaultInjectionEnv crash undoes unsynced renames and deletes") {
  TempDir dir;
  FaultInjectionEnv env;
  REQUIRE(env.WriteFileAtomic(dir.Sub("old"), "old-contents").ok());
  REQUIRE(env.WriteFileAtomic(dir.Sub("gone"), "gone-contents").ok());
  REQUIRE(env.RenameFile(dir.Sub("old"), dir.Sub("new")).ok());
  REQUIRE(env.DeleteFile(dir.Sub("gone")).ok());
  SECTION("undone") {
    REQUIRE(env.SimulateCrash().ok());
    CHECK(Read(&env, dir.Sub("old")) == "old-contents");
    CHECK_FALSE(Env::Default()->FileExists(dir.Sub("new")));
    CHECK(Read(&env, dir.Sub("gone")) == "gone-contents");
  }
  SECTION("made durable by SyncDir") {
    REQUIRE(env.SyncDir(dir.path()).ok());
    REQUIRE(env.SimulateCrash().ok());
    CHECK(Read(&env, dir.Sub("new")) == "old-contents");
    CHECK_FALSE(Env::Default()->FileExists(dir.Sub("old")));
    CHECK_FALSE(Env::Default()->FileExists(dir.Sub("gone")));
  }
}

TEST_CASE("FaultInjectionEnv rename over an existing file: the old target comes back") {
  TempDir dir;
  FaultInjectionEnv env;
  REQUIRE(env.WriteFileAtomic(dir.Sub("MANIFEST"), "v1").ok());
  {
    auto f = Create(&env, dir.Sub("MANIFEST.tmp"));
    REQUIRE(f->Append("v2").ok());
    REQUIRE(f->Sync().ok());
  }
  REQUIRE(env.RenameFile(dir.Sub("MANIFEST.tmp"), dir.Sub("MANIFEST")).ok());
  REQUIRE(Read(&env, dir.Sub("MANIFEST")) == "v2");
  REQUIRE(env.SimulateCrash().ok());
  CHECK(Read(&env, dir.Sub("MANIFEST")) == "v1");
}

TEST_CASE("FaultInjectionEnv pre-existing files are durable; torn tails keep a prefix") {
  TempDir dir;
  REQUIRE(Env::Default()->WriteFileAtomic(dir.Sub("pre"), "0123").ok());
  for (uint64_t seed = 0; seed < 20; ++seed) {
    FaultInjectionEnv env;
    auto f = env.NewWritableFile(dir.Sub("pre"), Env::OpenMode::kAppend);
    REQUIRE(f.ok());
    REQUIRE((*f)->Append("456789").ok());
    f->reset();
    CrashOptions opts;
    opts.tail = TailMode::kTornTail;
    opts.seed = seed;
    REQUIRE(env.SimulateCrash(opts).ok());
    std::string got = Read(&env, dir.Sub("pre"));
    INFO("seed " << seed << " got " << got);
    CHECK(got.size() >= 4);
    CHECK(std::string("0123456789").substr(0, got.size()) == got);
    REQUIRE(Env::Default()->TruncateFile(dir.Sub("pre"), 4).ok());
  }
  FaultInjectionEnv env;
  auto f = env.NewWritableFile(dir.Sub("pre"), Env::OpenMode::kAppend);
  REQUIRE((*f)->Append("45").ok());
  f->reset();
  CrashOptions keep;
  keep.tail = TailMode::kKeepAll;
  REQUIRE(env.SimulateCrash(keep).ok());
  CHECK(Read(&env, dir.Sub("pre")) == "012345");
}

TEST_CASE("FaultInjectionEnv snapshots the crash state at each sync point") {
  TempDir dir;
  REQUIRE(Env::Default()->CreateDirs(dir.Sub("db")).ok());
  FaultInjectionEnv env;
  int snapshots = 0;
  env.SetSyncCallback([&](uint32_t kind, const std::string& path) {
    ++snapshots;
    REQUIRE(env.SnapshotCrashState(dir.Sub("db"), dir.Sub("snap" + std::to_string(snapshots)))
                .ok());
  });
  auto f = Create(&env, dir.Sub("db/log"));
  REQUIRE(f->Append("one").ok());
  REQUIRE(f->Sync().ok());                    // snap1: log not dir-synced -> absent
  REQUIRE(env.SyncDir(dir.Sub("db")).ok());  // snap2: "one"
  REQUIRE(f->Append("two").ok());
  REQUIRE(f->Sync().ok());                    // snap3: "onetwo"
  REQUIRE(f->Append("three").ok());
  env.SetSyncCallback(nullptr);
  CHECK(snapshots == 3);
  CHECK_FALSE(Env::Default()->FileExists(dir.Sub("snap1/log")));
  CHECK(Read(&env, dir.Sub("snap2/log")) == "one");
  CHECK(Read(&env, dir.Sub("snap3/log")) == "onetwo");
  CHECK(Read(&env, dir.Sub("db/log")) == "onetwothree");  // live files untouched
}

TEST_CASE("FaultInjectionEnv before-sync callback sees written but unsynced bytes") {
  TempDir dir;
  REQUIRE(Env::Default()->CreateDirs(dir.Sub("db")).ok());
  FaultInjectionEnv env;
  auto f = Create(&env, dir.Sub("db/log"));
  REQUIRE(env.SyncDir(dir.Sub("db")).ok());
  REQUIRE(f->Append("abc").ok());
  int calls = 0;
  env.SetBeforeSyncCallback([&](uint32_t kind, const std::string& path) {
    ++calls;
    CHECK(kind == kOpSync);
    CrashOptions keep;
    keep.tail = TailMode::kKeepAll;
    REQUIRE(env.SnapshotCrashState(dir.Sub("db"), dir.Sub("keep"), keep).ok());
    REQUIRE(env.SnapshotCrashState(dir.Sub("db"), dir.Sub("drop")).ok());
  });
  REQUIRE(f->Sync().ok());
  env.SetBeforeSyncCallback(nullptr);
  CHECK(calls == 1);
  CHECK(Read(&env, dir.Sub("keep/log")) == "abc");
  CHECK(Read(&env, dir.Sub("drop/log")) == "");
}

TEST_CASE("FaultInjectionEnv garbage tails: a real prefix, then zeros or junk") {
  TempDir dir;
  REQUIRE(Env::Default()->WriteFileAtomic(dir.Sub("f"), "0123").ok());
  bool saw_garbage = false;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    FaultInjectionEnv env;
    {
      auto f = env.NewWritableFile(dir.Sub("f"), Env::OpenMode::kAppend);
      REQUIRE(f.ok());
      REQUIRE((*f)->Append("456789").ok());
    }
    CrashOptions opts;
    opts.tail = TailMode::kGarbageTail;
    opts.seed = seed;
    REQUIRE(env.SimulateCrash(opts).ok());
    const std::string got = Read(&env, dir.Sub("f"));
    INFO("seed " << seed);
    REQUIRE(got.size() >= 4);
    CHECK(got.size() <= 10);
    CHECK(got.substr(0, 4) == "0123");
    if (got != std::string("0123456789").substr(0, got.size())) saw_garbage = true;
    REQUIRE(Env::Default()->TruncateFile(dir.Sub("f"), 4).ok());
  }
  CHECK(saw_garbage);
}

// Appends over zeros written ahead (WritableFile::ExtendWithZeros, the page
// store's zero region): the zeros are durable once synced; an unsynced
// overwrite of them is undone by a power loss, kept, or torn (a prefix of the
// new bytes, the zeros after it); a failed Sync loses it too.
TEST_CASE("FaultInjectionEnv unsynced overwrites of synced zeros revert or tear") {
  TempDir dir;
  FaultInjectionEnv env;
  auto f = Create(&env, dir.Sub("log"));
  REQUIRE(env.SyncDir(dir.path()).ok());
  REQUIRE(f->Append("head").ok());
  REQUIRE(f->ExtendWithZeros(16).ok());  // counted as a write
  CHECK(f->Size() == 4);                 // the write position stays
  REQUIRE(f->Sync().ok());
  CHECK(env.SyncedSize(dir.Sub("log")) == 16u);
  REQUIRE(f->Append("abcdef").ok());  // over the zeros
  CHECK(f->Size() == 10);
  CHECK(Read(&env, dir.Sub("log")) == std::string("headabcdef") + std::string(6, '\0'));
  const std::string zeros = std::string("head") + std::string(12, '\0');

  CrashOptions drop;
  REQUIRE(env.SnapshotCrashState(dir.path(), dir.Sub("drop"), drop).ok());
  CHECK(Read(&env, dir.Sub("drop/log")) == zeros);
  CrashOptions keep;
  keep.tail = TailMode::kKeepAll;
  REQUIRE(env.SnapshotCrashState(dir.path(), dir.Sub("keep"), keep).ok());
  CHECK(Read(&env, dir.Sub("keep/log")) == std::string("headabcdef") + std::string(6, '\0'));
  bool saw_torn = false;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    CrashOptions torn;
    torn.tail = TailMode::kTornTail;
    torn.seed = seed;
    const std::string sub = dir.Sub("torn" + std::to_string(seed));
    REQUIRE(env.SnapshotCrashState(dir.path(), sub, torn).ok());
    const std::string got = Read(&env, sub + "/log");
    INFO("seed " << seed);
    REQUIRE(got.size() == 16);
    const size_t kept = got.find_first_of('\0', 4) - 4;  // "abcdef" has no zero
    CHECK(got.substr(4, kept) == std::string("abcdef").substr(0, kept));
    CHECK(got.substr(4 + kept) == std::string(12 - kept, '\0'));
    saw_torn |= kept > 0 && kept < 6;
  }
  CHECK(saw_torn);

  // A failed Sync: the overwrite is lost (the file reads as synced).
  env.FailNth(1, FaultType::kIOError, false, kOpSync);
  CHECK_FALSE(f->Sync().ok());
  CHECK(Read(&env, dir.Sub("log")) == zeros);
  env.ClearFault();
  // And after a good Sync the overwrite is durable.
  auto g = env.NewWritableFile(dir.Sub("log2"), Env::OpenMode::kTruncate);
  REQUIRE(g.ok());
  REQUIRE(env.SyncDir(dir.path()).ok());
  REQUIRE((*g)->ExtendWithZeros(8).ok());
  REQUIRE((*g)->Sync().ok());
  REQUIRE((*g)->Append("xy").ok());
  REQUIRE((*g)->Sync().ok());
  g->reset();
  f.reset();
  REQUIRE(env.SimulateCrash().ok());
  CHECK(Read(&env, dir.Sub("log2")) == std::string("xy") + std::string(6, '\0'));
}
