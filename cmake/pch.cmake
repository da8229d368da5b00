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

# Unity builds (BRANCHDB_UNITY, same default as BRANCHDB_PCH): a library's
# files compiled in batches of 8 per translation unit. Most of a file's
# compile time is code generation of the same templates (fmt/spdlog,
# nlohmann/json, httplib, CLI11) in every file, which a batch generates once:
# 8 server files took 50 CPU-s as one unit against 92 s apart (with PCH); the
# CLI's 12 files 36 s against 122, catalog/ 61 against 91, auth/ 30 against
# 56, cluster/ 30 against 43. A batch shares one anonymous namespace, so the
# files of a unity library must not define the same internal name twice (the
# clean build without a launcher that CI runs would fail to compile;
# tests/layers/check_unity_names.py finds every such pair, whatever the
# batches).
option(BRANCHDB_UNITY "Compile the libraries marked for it in batches" ${BRANCHDB_PCH_DEFAULT})

# branchdb_unity_build(target): marks target for BRANCHDB_UNITY.
function(branchdb_unity_build target)
  if(BRANCHDB_UNITY)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
    # GCC warns about a class whose member's type is in an anonymous
    # namespace when the class is defined outside the main file, which every
    # file of a batch is (router.cc's Routes::Route, catalog_backup.cc's Impl):
    # harmless within one translation unit.
    target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-Wno-subobject-linkage>)
  endif()
endfunction()
