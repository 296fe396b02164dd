// Lifetimes and limits (issue 15): pitched calls with arguments the real
// calls refuse, EGM_POOL_PREALLOC within EGM_NODE_LIMIT, EGM_PEER_ACCESS=all
// when the device count cannot be read at first, and the exit summary of a
// program whose library frees in its own destructor.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

namespace {

using preload::events;
using preload::field;
using preload::RunResult;

TEST(LifetimeTest, PitchedCallsWithInvalidArgumentsFailAsTheRealCalls) {
  RunResult plain = reliability::run_program_without_shim("pitch-invalid");
  EXPECT_TRUE(preload::contains(plain.out, "cuMemAllocPitch(element 3)=CUDA_ERROR_INVALID_VALUE"))
      << plain.describe();
  EXPECT_TRUE(preload::contains(plain.out, "cudaMallocPitch(no pitch)=cudaErrorInvalidValue"))
      << plain.describe();
  RunResult run = reliability::run_program("pitch-invalid");
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.out, plain.out) << run.describe();
  EXPECT_TRUE(events(run.log, "map").empty()) << run.describe();
  EXPECT_EQ(run.at("end.cuda_mappings"), "0") << run.describe();
  EXPECT_EQ(run.at("end.cuda_handles"), "0") << run.describe();
}

TEST(LifetimeTest, PoolPreallocStaysWithinTheNodeLimit) {
  RunResult run = reliability::run_program("one-pause", {{"EGM_POOL_LIMIT", "1G"},
                                                         {"EGM_POOL_PREALLOC", "64M"},
                                                         {"EGM_NODE_LIMIT", "0:8M"},
                                                         {"REL_PAUSE_MS", "1000"}});
  preload::expect_clean_exit(run);
  size_t mapped = 0, peak = 0;
  for (const preload::LogLine& line : run.log) {
    std::string event = field(line, "event");
    if (event == "chunk-map") mapped += std::stoull(field(line, "bytes"));
    if (event == "chunk-unmap") mapped -= std::stoull(field(line, "bytes"));
    peak = std::max(peak, mapped);
  }
  EXPECT_GT(peak, 4 * preload::kMiB) << run.describe();  // the allocation and some prefill
  EXPECT_LE(peak, 8 * preload::kMiB) << run.describe();
  std::vector<preload::LogLine> nodes = events(run.log, "node-summary");
  ASSERT_EQ(nodes.size(), 1u) << run.describe();
  EXPECT_LE(std::stoull(field(nodes[0], "peak_bytes")), 8 * preload::kMiB) << run.describe();
}

TEST(LifetimeTest, PeerAccessAllRetriesADeviceCountThatFailed) {
  RunResult run = reliability::run_program("two", {{"FAKE_CUDA_DEVICE_COUNT", "2"},
                                                   {"EGM_PEER_ACCESS", "all"},
                                                   {"FAKE_CUDA_FAIL", "cuDeviceGetCount@1"}});
  preload::expect_clean_exit(run);
  ASSERT_EQ(run.at("a.redirected"), "1") << run.describe();
  // The first chunk was mapped before the count was known: it gets the access later.
  EXPECT_EQ(run.at("a.access_device_1"), "1") << run.describe();
  EXPECT_EQ(run.at("b.access_device_1"), "1") << run.describe();
}

TEST(LifetimeTest, FreesInALibrarysDestructorAreNoLeaks) {
  RunResult run = reliability::run_program(
      "late-free",
      {{"REL_LATE_FREE_LIBRARY", preload::runfile("tests/reliability/liblate_free.so")}});
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "library destructor cudaFree=cudaSuccess\n"))
      << run.describe();
  std::vector<preload::LogLine> summaries = events(run.log, "summary");
  ASSERT_EQ(summaries.size(), 1u) << run.describe();
  EXPECT_EQ(field(summaries[0], "live"), "0") << run.describe();
  EXPECT_TRUE(events(run.log, "leak").empty()) << run.describe();
  // Nothing is unmapped after the summary.
  bool after_summary = false;
  for (const preload::LogLine& line : run.log) {
    std::string event = field(line, "event");
    after_summary = after_summary || event == "summary";
    EXPECT_FALSE(after_summary && (event == "unmap" || event == "chunk-unmap")) << run.describe();
  }
}

}  // namespace
