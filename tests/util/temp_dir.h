// A fresh directory under $TMPDIR (default /tmp) for one test, removed with its
// contents when the TempDir is destroyed (unless BRANCHDB_KEEP_TEST_DIRS is set).
// TempDir(base) makes it under base instead (e.g. FastTestDirBase()).
#ifndef BRANCHDB_TESTS_UTIL_TEMP_DIR_H_
#define BRANCHDB_TESTS_UTIL_TEMP_DIR_H_

#include <string>

namespace branchdb::testing {

class TempDir {
 public:
  TempDir();
  explicit TempDir(const std::string& base);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A base directory for tests whose durability is simulated (FaultInjectionEnv),
// so that real fsyncs need not be slow: /dev/shm when it exists, else $TMPDIR or
// /tmp. BRANCHDB_TEST_ON_DISK=1 forces $TMPDIR or /tmp.
std::string FastTestDirBase();

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_UTIL_TEMP_DIR_H_
