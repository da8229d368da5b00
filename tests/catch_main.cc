// The main of every test binary: Catch2's runner, after one setting.
//
// In-process servers log to spdlog's default logger, at info: an access line
// per request. A failing test's output then starts with thousands of them,
// and CI shows the head of that output, not the failure. Tests run at warn;
// BRANCHDB_TEST_LOG_LEVEL=info (or trace, debug, ...) shows everything.
#define CATCH_CONFIG_RUNNER
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <cstdlib>

int main(int argc, char* argv[]) {
  const char* level = std::getenv("BRANCHDB_TEST_LOG_LEVEL");
  spdlog::set_level(spdlog::level::from_str(level != nullptr ? level : "warn"));
  return Catch::Session().run(argc, argv);
}
