// Packaging: `cmake --install` of the SDK into a temporary prefix, then a
// separate CMake project (consumer/) finds it with find_package(branchdb),
// builds against branchdb::client and runs against a real server.
//
// Environment (set by tests/sdk_cpp/CMakeLists.txt):
//   BRANCHDB_TEST_BUILD_DIR        the build tree to install from
//   BRANCHDB_TEST_CONSUMER_SOURCE  tests/sdk_cpp/consumer
//   BRANCHDB_TEST_CMAKE            the cmake binary
//   BRANCHDB_TEST_CONSUMER_ARGS    extra configure arguments, ';'-separated
//                                  (compiler, build type, sanitizer flags)
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_server.h"

namespace branchdb::client::testing {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command with its output in `log`; returns the exit status.
int Run(const std::string& command, const std::string& log) {
  int rc = std::system(("( " + command + " ) >>" + Quote(log) + " 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("the installed package builds a consumer that talks to a server", "[consumer]") {
  const std::string build = Env("BRANCHDB_TEST_BUILD_DIR");
  const std::string source = Env("BRANCHDB_TEST_CONSUMER_SOURCE");
  const std::string cmake = Env("BRANCHDB_TEST_CMAKE");
  REQUIRE_FALSE(build.empty());
  REQUIRE_FALSE(source.empty());
  REQUIRE_FALSE(cmake.empty());
  TestServer& server = TestServer::Shared();
  const std::string work = server.tmp_dir() + "/consumer";
  const std::string prefix = work + "/prefix";
  const std::string bin = work + "/build";
  const std::string log = work + "/log.txt";
  std::filesystem::create_directories(work);

  INFO("install/configure/build log: " << log);
  int rc = Run(Quote(cmake) + " --install " + Quote(build) + " --prefix " + Quote(prefix) +
                   " --component branchdb_sdk",
               log);
  INFO(ReadFile(log));
  REQUIRE(rc == 0);
  CHECK(std::filesystem::exists(prefix + "/include/branchdb/client.h"));
  CHECK_FALSE(std::filesystem::exists(prefix + "/include/httplib.h"));
  // Only the SDK: no server headers, no binaries.
  CHECK_FALSE(std::filesystem::exists(prefix + "/bin"));

  std::string configure = Quote(cmake) + " -S " + Quote(source) + " -B " + Quote(bin) +
                          " -G Ninja -DCMAKE_PREFIX_PATH=" + Quote(prefix);
  std::string args = Env("BRANCHDB_TEST_CONSUMER_ARGS");
  std::stringstream split(args);
  for (std::string arg; std::getline(split, arg, '|');) {
    if (!arg.empty()) configure += " " + Quote(arg);
  }
  rc = Run(configure, log);
  INFO(ReadFile(log));
  REQUIRE(rc == 0);
  rc = Run(Quote(cmake) + " --build " + Quote(bin), log);
  INFO(ReadFile(log));
  REQUIRE(rc == 0);

  const std::string out = work + "/consumer.out";
  rc = Run("BRANCHDB_URL=" + Quote(server.url()) + " BRANCHDB_CLIENT_ID=" +
               Quote(server.admin().client_id) + " BRANCHDB_CLIENT_SECRET=" +
               Quote(server.admin().client_secret) + " " + Quote(bin + "/consumer") + " " +
               Quote(UniqueName("consumer")) + " >" + Quote(out),
           log);
  INFO(ReadFile(log));
  CHECK(rc == 0);
  CHECK(ReadFile(out) == "consumer ok 42\n");
}

}  // namespace
}  // namespace branchdb::client::testing
