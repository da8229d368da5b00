// Replay driver for libFuzzer targets when not building with clang's
// -fsanitize=fuzzer: feeds every file named on the command line (directories
// are walked, non-recursively, in name order) to LLVMFuzzerTestOneInput once.
// Exits non-zero when no input was found or a file cannot be read, so an empty
// or misplaced corpus fails the test.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "base/env.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  branchdb::Env* env = branchdb::Env::Default();
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto children = env->GetChildren(arg);
    if (children.ok()) {  // a directory
      std::sort(children->begin(), children->end());
      for (const auto& name : *children) files.push_back(branchdb::JoinPath(arg, name));
    } else {
      files.push_back(arg);
    }
  }
  for (const auto& f : files) {
    auto data = env->ReadFileToString(f);
    if (!data.ok()) {
      std::fprintf(stderr, "cannot read %s: %s\n", f.c_str(), data.status().ToString().c_str());
      return 1;
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data->data()), data->size());
  }
  std::printf("replayed %zu inputs\n", files.size());
  return files.empty() ? 1 : 0;
}
