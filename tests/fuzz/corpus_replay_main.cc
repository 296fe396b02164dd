// Runs a fuzz target over its seed corpus with the regular toolchain, so that
// `bazel test` keeps the target compiling and its seeds passing. The real
// fuzzing (clang, libFuzzer, sanitizers) is tests/fuzz/run_fuzzers.sh.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

TEST(CorpusReplayTest, EverySeedRuns) {
  const char* root = std::getenv("TEST_SRCDIR");
  std::filesystem::path corpus =
      std::filesystem::path(root ? root : ".") / "egm_shim" / std::getenv("FUZZ_CORPUS");
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    std::ifstream file(entry.path(), std::ios::binary);
    std::stringstream content;
    content << file.rdbuf();
    std::string bytes = content.str();
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
    ++seeds;
  }
  EXPECT_GT(seeds, 0) << "no seeds in " << corpus;
}
