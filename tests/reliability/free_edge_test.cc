// cudaFree edge cases: under the shim, each gives what the runtime (here
// the fake libcudart, standing in for the real one) gives without it.
// The expected lines are the fake runtime's answers, written down so that
// a change in either shows up here.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

namespace {

using preload::RunResult;

struct FreeCase {
  const char* name;
  bool shim_serves_it;                // the freed pointer is the shim's (else the runtime's)
  std::vector<std::string> expected;  // stdout lines, with and without the shim
};

void PrintTo(const FreeCase& free_case, std::ostream* out) { *out << free_case.name; }

const FreeCase kCases[] = {
    {"nullptr", false, {"nullptr cudaFree=cudaSuccess last_error=cudaSuccess"}},
    {"double",
     true,
     {"first cudaFree=cudaSuccess last_error=cudaSuccess",
      "second cudaFree=cudaErrorInvalidValue last_error=cudaErrorInvalidValue"}},
    {"interior",
     true,
     {"interior cudaFree=cudaErrorInvalidValue last_error=cudaErrorInvalidValue",
      "start cudaFree=cudaSuccess last_error=cudaSuccess"}},
    {"real-allocator", false, {"real cudaFree=cudaSuccess last_error=cudaSuccess"}},
    {"other-thread", true, {"other-thread cudaFree=cudaSuccess last_error=cudaSuccess"}},
    {"other-device",
     true,
     {"cudaSetDevice(1)=cudaSuccess", "device-1-current cudaFree=cudaSuccess last_error=cudaSuccess",
      "cudaSetDevice(0)=cudaSuccess"}},
    // The runtime destroyed its allocations: the pointer is unknown now.
    {"after-reset",
     true,
     {"cudaDeviceReset=cudaSuccess",
      "after-reset cudaFree=cudaErrorInvalidValue last_error=cudaErrorInvalidValue"}},
    // Frees from exit handlers registered before the first CUDA call.
    {"at-exit",
     true,
     {"exit 0", "atexit-handler cudaFree=cudaSuccess", "static-destructor cudaFree=cudaSuccess"}},
};

std::map<std::string, std::string> env_for(const FreeCase& free_case) {
  return {{"REL_CASE", free_case.name},
          {"FAKE_CUDA_DEVICE_COUNT", "2"},
          // The 1000-byte request stays with the runtime: a pointer from the real allocator.
          {"EGM_MIN_SIZE", "1M"},
          {"EGM_POOL_LIMIT", "0"}};
}

// The program's stdout without its first line ("scenario ...") and the allocation lines.
std::vector<std::string> free_lines(const std::string& out) {
  std::vector<std::string> lines;
  for (const std::string& line : preload::lines_of(out)) {
    if (line.rfind("scenario ", 0) == 0 || preload::contains(line, "pattern_ok=")) continue;
    if (line == "exit 0" && !preload::contains(out, "atexit-handler")) continue;
    lines.push_back(line);
  }
  return lines;
}

class FreeEdgeTest : public ::testing::TestWithParam<FreeCase> {};

TEST_P(FreeEdgeTest, RuntimeAloneGivesTheDocumentedResult) {
  RunResult plain = reliability::run_program_without_shim("free-edge", env_for(GetParam()));
  ASSERT_EQ(plain.exit_code, 0) << plain.describe();
  EXPECT_EQ(free_lines(plain.out), GetParam().expected) << plain.describe();
}

TEST_P(FreeEdgeTest, ShimGivesWhatTheRuntimeGives) {
  RunResult shimmed = reliability::run_program("free-edge", env_for(GetParam()));
  ASSERT_EQ(shimmed.exit_code, 0) << shimmed.describe();
  EXPECT_EQ(free_lines(shimmed.out), GetParam().expected) << shimmed.describe();
  std::string served = GetParam().shim_serves_it ? "1" : "0";
  if (GetParam().shim_serves_it || std::string(GetParam().name) == "real-allocator") {
    EXPECT_EQ(shimmed.at("p.redirected"), served) << shimmed.describe();
  }
  EXPECT_TRUE(preload::events(shimmed.log, "free-error").empty()) << shimmed.describe();
  std::vector<preload::LogLine> summaries = preload::events(shimmed.log, "summary");
  if (GetParam().shim_serves_it) {
    ASSERT_EQ(summaries.size(), 1u) << shimmed.describe();
    EXPECT_EQ(preload::field(summaries[0], "live"), "0") << shimmed.describe();
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, FreeEdgeTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

}  // namespace
