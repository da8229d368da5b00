// Tests of Status and the POSIX Env.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "base/env.h"
#include "tests/util/temp_dir.h"

using branchdb::Env;
using branchdb::Status;
using branchdb::WritableFile;
using branchdb::testing::TempDir;

TEST_CASE("Status carries code, message and reason") {
  Status ok = Status::OK();
  CHECK(ok.ok());
  CHECK(ok.ToString() == "OK");
  Status nf = Status::NotFound("branch 'x' not found", "branch_not_found");
  CHECK_FALSE(nf.ok());
  CHECK(nf.IsNotFound());
  CHECK(nf.reason() == "branch_not_found");
  CHECK(nf.ToString() == "NotFound: branch 'x' not found");
  CHECK(nf.WithContext("open").ToString() == "NotFound: open: branch 'x' not found");
}

TEST_CASE("Result holds a value or a status") {
  branchdb::Result<int> good = 42;
  REQUIRE(good.ok());
  CHECK(*good == 42);
  branchdb::Result<int> bad = Status::IOError("disk on fire");
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().IsIOError());
}

TEST_CASE("Env writes, appends, reads, lists, renames and deletes files") {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("a/b/file");
  REQUIRE(env->CreateDirs(dir.Sub("a/b")).ok());
  {
    auto f = env->NewWritableFile(path, Env::OpenMode::kTruncate);
    REQUIRE(f.ok());
    REQUIRE((*f)->Append("hello ").ok());
    REQUIRE((*f)->Sync().ok());
    REQUIRE((*f)->Close().ok());
  }
  {
    auto f = env->NewWritableFile(path, Env::OpenMode::kAppend);
    REQUIRE(f.ok());
    CHECK((*f)->Size() == 6);
    REQUIRE((*f)->Append("world").ok());
    REQUIRE((*f)->Sync().ok());
  }
  auto contents = env->ReadFileToString(path);
  REQUIRE(contents.ok());
  CHECK(*contents == "hello world");
  CHECK(*env->GetFileSize(path) == 11);

  auto children = env->GetChildren(dir.Sub("a/b"));
  REQUIRE(children.ok());
  CHECK(*children == std::vector<std::string>{"file"});

  REQUIRE(env->TruncateFile(path, 5).ok());
  CHECK(*env->ReadFileToString(path) == "hello");

  REQUIRE(env->RenameFile(path, dir.Sub("a/b/renamed")).ok());
  CHECK_FALSE(env->FileExists(path));
  REQUIRE(env->DeleteFile(dir.Sub("a/b/renamed")).ok());
  CHECK(env->GetFileSize(dir.Sub("a/b/renamed")).status().IsNotFound());
}

TEST_CASE("AppendDurable appends as Append does, whatever was written before it") {
  // Each path of the POSIX file's AppendDurable: opened (nothing known
  // synced: write then fdatasync), after a Sync (one write that syncs
  // itself), over zeros written ahead and not synced, after a plain Append,
  // empty data; the bytes land at the write position and nowhere else.
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("log");
  auto f = env->NewWritableFile(path, Env::OpenMode::kTruncate);
  REQUIRE(f.ok());
  WritableFile& file = **f;
  std::string expected;
  auto durable = [&](const std::string& data) {
    REQUIRE(file.AppendDurable(data).ok());
    expected += data;
    CHECK(file.Size() == expected.size());
  };
  durable("first ");
  durable("second ");                     // everything before it synced
  durable(std::string(5000, 'x') + " ");  // more than a page, across pages
  REQUIRE(file.ExtendWithZeros(expected.size() + 8192).ok());
  durable("over-zeros ");  // the zeros not synced yet
  durable("synced-zeros ");
  REQUIRE(file.Append("plain ").ok());
  expected += "plain ";
  durable("after-plain ");
  durable("");
  const uint64_t zeros_end = 6 + 7 + 5001 + 8192;
  auto contents = env->ReadFileToString(path);
  REQUIRE(contents.ok());
  REQUIRE(contents->size() == zeros_end);  // the zeros ahead are still there
  CHECK(contents->substr(0, expected.size()) == expected);
  CHECK(contents->substr(expected.size()) == std::string(zeros_end - expected.size(), '\0'));
  REQUIRE(file.Close().ok());
  auto reopened = env->NewWritableFile(path, Env::OpenMode::kAppend);
  REQUIRE(reopened.ok());
  REQUIRE((*reopened)->AppendDurable("tail").ok());  // opened: at the file's end
  CHECK(env->ReadFileToString(path)->substr(zeros_end) == "tail");
}

TEST_CASE("ReadSplit reads a head and a body in one read, short at the end of the file") {
  TempDir dir;
  Env* env = Env::Default();
  const std::string path = dir.Sub("file");
  REQUIRE(env->WriteFileAtomic(path, "0123456789abcdef").ok());
  auto f = env->NewRandomAccessFile(path);
  REQUIRE(f.ok());
  char head[4] = {}, body[8] = {};
  auto n = (*f)->ReadSplit(2, head, 4, 8, body);
  REQUIRE(n.ok());
  CHECK(*n == 12);
  CHECK(std::string(head, 4) == "2345");
  CHECK(std::string(body, 8) == "6789abcd");
  n = (*f)->ReadSplit(10, head, 4, 8, body);
  REQUIRE(n.ok());
  CHECK(*n == 6);
  CHECK(std::string(head, 4) == "abcd");
  CHECK(std::string(body, 2) == "ef");
  n = (*f)->ReadSplit(14, head, 4, 8, body);
  REQUIRE(n.ok());
  CHECK(*n == 2);
  CHECK(std::string(head, 2) == "ef");
  CHECK(*(*f)->ReadSplit(16, head, 4, 8, body) == 0);
}

TEST_CASE("WriteFileAtomic replaces a file whole") {
  TempDir dir;
  Env* env = Env::Default();
  REQUIRE(env->WriteFileAtomic(dir.Sub("cfg"), "one").ok());
  REQUIRE(env->WriteFileAtomic(dir.Sub("cfg"), "two").ok());
  CHECK(*env->ReadFileToString(dir.Sub("cfg")) == "two");
  CHECK_FALSE(env->FileExists(dir.Sub("cfg.tmp")));
}

TEST_CASE("SetPermissions changes a file's mode") {
  TempDir dir;
  Env* env = Env::Default();
  REQUIRE(env->WriteFileAtomic(dir.Sub("secret"), "s3cr3t").ok());
  REQUIRE(env->SetPermissions(dir.Sub("secret"), 0600).ok());
  struct stat st;
  REQUIRE(::stat(dir.Sub("secret").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(env->SetPermissions(dir.Sub("missing"), 0600).IsNotFound());

  REQUIRE(env->WriteFileAtomic(dir.Sub("creds"), "id:secret", 0600).ok());
  REQUIRE(::stat(dir.Sub("creds").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(*env->ReadFileToString(dir.Sub("creds")) == "id:secret");
}

TEST_CASE("LockFile excludes a second holder until released") {
  TempDir dir;
  Env* env = Env::Default();
  auto first = env->LockFile(dir.Sub("LOCK"));
  REQUIRE(first.ok());
  // flock locks belong to the open file description, so a second open in the
  // same process conflicts too.
  auto second = env->LockFile(dir.Sub("LOCK"));
  CHECK(second.status().IsUnavailable());
  first->reset();
  CHECK(env->LockFile(dir.Sub("LOCK")).ok());
}

TEST_CASE("Clock::Default reads plausible wall and monotonic time") {
  auto* clock = branchdb::Clock::Default();
  CHECK(clock->NowMicros() > 1'600'000'000'000'000LL);  // after 2020
  int64_t a = clock->NowMonotonicNanos();
  int64_t b = clock->NowMonotonicNanos();
  CHECK(b >= a);
}
