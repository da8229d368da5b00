#include "tests/util/temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace branchdb::testing {

namespace {

std::string DefaultBase() {
  const char* base = std::getenv("TMPDIR");
  return std::string(base && *base ? base : "/tmp");
}

}  // namespace

TempDir::TempDir() : TempDir(DefaultBase()) {}

TempDir::TempDir(const std::string& base) {
  std::string tmpl = base + "/branchdb-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
  path_ = tmpl;
}

std::string FastTestDirBase() {
  const char* disk = std::getenv("BRANCHDB_TEST_ON_DISK");
  std::error_code ec;
  if ((disk == nullptr || *disk == '\0' || *disk == '0') &&
      std::filesystem::is_directory("/dev/shm", ec)) {
    return "/dev/shm";
  }
  return DefaultBase();
}

TempDir::~TempDir() {
  if (std::getenv("BRANCHDB_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace branchdb::testing
