// Replays the fuzz corpora and regression inputs through the harnesses of
// tests/fuzz (compiled here without libFuzzer; see tests/fuzz/fuzz_target.h).
//
//  - tests/fuzz/corpus/<harness>/*: seeds; none may violate a harness
//    property, and at least one must be accepted (the harness reaches its
//    decoder's success path).
//  - tests/fuzz/regressions/<harness>/*: minimized fuzz findings whose bug is
//    fixed; none may violate a property.
//  - tests/fuzz/regressions/open/<harness>/*: inputs of reported product bugs
//    not fixed yet (tests/fuzz/README.md). Replayed as the fuzzer sees them
//    (known bugs tolerated), and strictly by the DISABLED_ test, which is to be
//    enabled (and the inputs moved up to regressions/<harness>/) with the fix.

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/fuzz/fuzz_target.h"

namespace bunker::fuzz {
namespace {

namespace fs = std::filesystem;

const fs::path kFuzzDir = fs::path(BUNKER_SOURCE_DIR) / "tests" / "fuzz";

std::vector<std::string> HarnessNames() {
  std::vector<std::string> names;
  std::stringstream in(BUNKER_FUZZ_HARNESS_NAMES);
  for (std::string name; std::getline(in, name, ',');) names.push_back(name);
  return names;
}

TargetFn Find(const std::string& name) {
  for (const TargetEntry& t : Targets()) {
    if (name == t.name) return t.fn;
  }
  return nullptr;
}

std::vector<fs::path> FilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

Bytes ReadFile(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

struct Replay {
  size_t files = 0;
  size_t accepted = 0;
};

// Runs every file of `dir` through `fn`; each property violation is a test
// failure naming the file.
Replay ReplayDir(TargetFn fn, const fs::path& dir) {
  Replay r;
  for (const fs::path& file : FilesIn(dir)) {
    Bytes data = ReadFile(file);
    std::vector<std::string> failures;
    FailureSink() = &failures;
    bool accepted = fn(data);
    FailureSink() = nullptr;
    ++r.files;
    r.accepted += accepted ? 1 : 0;
    for (const std::string& f : failures) {
      ADD_FAILURE() << fs::relative(file, BUNKER_SOURCE_DIR).string() << ": " << f;
    }
  }
  return r;
}

class FuzzRegressionTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FuzzRegressionTest, CorpusIsAcceptedOrRejectedCleanly) {
  TargetFn fn = Find(GetParam());
  ASSERT_NE(fn, nullptr) << "harness " << GetParam() << " is not linked";
  Replay r = ReplayDir(fn, kFuzzDir / "corpus" / GetParam());
  EXPECT_GT(r.files, 0u) << "no seeds in tests/fuzz/corpus/" << GetParam();
  EXPECT_GT(r.accepted, 0u) << "no seed of " << GetParam() << " reaches the decoder's success path";
}

TEST_P(FuzzRegressionTest, FixedFindingsStayFixed) {
  TargetFn fn = Find(GetParam());
  ASSERT_NE(fn, nullptr);
  ReplayDir(fn, kFuzzDir / "regressions" / GetParam());
}

TEST_P(FuzzRegressionTest, OpenFindingsDoNotCrashTheReplay) {
  TargetFn fn = Find(GetParam());
  ASSERT_NE(fn, nullptr);
  ReplayDir(fn, kFuzzDir / "regressions" / "open" / GetParam());
}

// Enable with the fixes of the open product bugs (tests/fuzz/README.md):
// replays their inputs with the known bugs counted as failures.
TEST_P(FuzzRegressionTest, DISABLED_OpenFindingsAreFixed) {
  TargetFn fn = Find(GetParam());
  ASSERT_NE(fn, nullptr);
  struct StrictScope {
    StrictScope() { ::setenv("BUNKER_FUZZ_STRICT", "1", 1); }
    ~StrictScope() { ::unsetenv("BUNKER_FUZZ_STRICT"); }
  } strict;
  ReplayDir(fn, kFuzzDir / "regressions" / "open" / GetParam());
}

INSTANTIATE_TEST_SUITE_P(Harnesses, FuzzRegressionTest, ::testing::ValuesIn(HarnessNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace bunker::fuzz
