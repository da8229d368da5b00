// What the tests' fixture scripts (scripts/ceph-s3.sh, scripts/etcd.sh) need
// from their C++ side: running a command, and a free port to start on.
#ifndef BRANCHDB_TESTS_UTIL_FIXTURE_PROCESS_H_
#define BRANCHDB_TESTS_UTIL_FIXTURE_PROCESS_H_

#include <string>

namespace branchdb::testing {

// Runs command through the shell (standard input from /dev/null); its exit
// code (-1 when it did not exit normally), with stdout and stderr in *output.
int RunCommand(const std::string& command, std::string* output);

// A TCP port that was free a moment ago on 127.0.0.1 (0 if none was found).
int FreeTcpPort();

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_UTIL_FIXTURE_PROCESS_H_
