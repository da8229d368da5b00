# Precompiled headers for the libraries whose every translation unit parses
# the same heavy headers (httplib, nlohmann/json, spdlog, CLI11, the standard
# library): a clean build parses them once per library instead of once per
# file. Off when a compiler launcher (ccache) is set: ccache does not cache
# compilations that use a precompiled header unless configured for it, and is
# faster still. tests/ has its own header (BRANCHDB_TEST_PCH, same default).
if(CMAKE_CXX_COMPILER_LAUNCHER)
  set(BRANCHDB_PCH_DEFAULT OFF)
else()
  set(BRANCHDB_PCH_DEFAULT ON)
endif()
option(BRANCHDB_PCH "Precompile the headers every file of a library includes" ${BRANCHDB_PCH_DEFAULT})

# The standard headers most of the code includes.
set(BRANCHDB_PCH_STD
  <algorithm> <atomic> <chrono> <cstdint> <cstdio> <cstring> <functional> <map> <memory>
  <optional> <set> <string> <string_view> <utility> <vector>)

# branchdb_precompile_headers(target header...): precompiles the standard
# headers above and the given ones (which the target must have on its include
# path) for target, when BRANCHDB_PCH is on. Every file of the target then
# sees them included first: a file must still include what it uses (the
# release build of a ccache user, and tests/layers, check the includes).
function(branchdb_precompile_headers target)
  if(BRANCHDB_PCH)
    target_precompile_headers(${target} PRIVATE ${BRANCHDB_PCH_STD} ${ARGN})
  endif()
endfunction()
