// Failures injected (FAKE_CUDA_FAIL) at every driver step of the map
// sequence (granularity, create, reserve, map, set-access) and of the unmap
// sequence (unmap, release, address-free), with the pool off and on.
// reliability_program's `cycle` makes six allocations: a1, a2 (3 MiB + 123,
// cudaMalloc), s1, s2 (1000 B, both live at once), m1 (cudaMallocManaged
// 5 MiB) and d1 (cuMemAlloc 1 MiB + 5), each freed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

namespace {

using preload::events;
using preload::field;
using preload::LogLine;
using preload::RunResult;

constexpr int kAllocations = 6;
const std::vector<std::string> kLabels = {"a1", "a2", "s1", "s2", "m1", "d1"};
constexpr const char* kLargeRequest = "3145851";  // 3 MiB + 123: a1's size

struct PoolConfig {
  const char* name;
  const char* pool_limit;
  const char* suballoc;
  bool unmaps_before_exit;  // whether any chunk is unmapped while the program runs
};

const PoolConfig kPoolConfigs[] = {
    {"PoolOff", "0", "0", true},
    {"PoolReuse", "1G", "0", false},  // chunks are cached and reused: a2 gets a1's
    {"Suballoc", "1G", "1", false},   // s1 and s2 share one chunk
    {"Trim", "2M", "1", true},        // chunks over 2 MiB are unmapped at once, 2 MiB ones evicted
};

std::map<std::string, std::string> env_for(const PoolConfig& config, const std::string& fail) {
  return {{"EGM_POOL_LIMIT", config.pool_limit},
          {"EGM_SUBALLOC", config.suballoc},
          {"FAKE_CUDA_FAIL", fail}};
}

int count(const RunResult& run, const std::string& event) {
  return static_cast<int>(events(run.log, event).size());
}

// The doubles' VMM objects at the end: the chunks the pool still holds
// (mapped minus unmapped, failed unmaps included) plus `extra` left by a
// failed unmap step.
struct Leftover {
  int handles = 0, memory_objects = 0, reservations = 0, mappings = 0;
};

void expect_doubles_hold(const RunResult& run, const Leftover& extra) {
  int held_chunks = count(run, "chunk-map") - count(run, "chunk-unmap");
  EXPECT_EQ(run.at("end.cuda_handles"), std::to_string(held_chunks + extra.handles))
      << run.describe();
  EXPECT_EQ(run.at("end.cuda_memory_objects"),
            std::to_string(held_chunks + extra.memory_objects));
  EXPECT_EQ(run.at("end.cuda_reservations"), std::to_string(held_chunks + extra.reservations));
  EXPECT_EQ(run.at("end.cuda_mappings"), std::to_string(held_chunks + extra.mappings));
  EXPECT_EQ(run.at("end.cudart_allocations"), "0");
  EXPECT_EQ(run.at("end.cuda_allocations"), "0");
}

void expect_summary(const RunResult& run, int maps, int fallbacks) {
  std::vector<LogLine> summaries = events(run.log, "summary");
  ASSERT_EQ(summaries.size(), 1u) << run.describe();
  EXPECT_EQ(field(summaries[0], "maps"), std::to_string(maps)) << run.describe();
  EXPECT_EQ(field(summaries[0], "fallbacks"), std::to_string(fallbacks));
  EXPECT_EQ(field(summaries[0], "live"), "0");
  EXPECT_EQ(field(summaries[0], "unmaps"), std::to_string(maps));
}

std::string stdout_without_shim() {
  static const std::string out = reliability::run_program_without_shim("cycle").out;
  return out;
}

// ---- the map sequence: the request falls back to the real call ----

using AllocStepParam = std::tuple<PoolConfig, const char*>;

class AllocStepTest : public ::testing::TestWithParam<AllocStepParam> {};

TEST_P(AllocStepTest, FirstCallFailingFallsBackOnceAndLeaksNothing) {
  const auto& [config, step] = GetParam();
  RunResult run = reliability::run_program("cycle", env_for(config, std::string(step) + "@1"));
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.out, stdout_without_shim()) << run.describe();
  std::vector<LogLine> fallbacks = events(run.log, "fallback");
  ASSERT_EQ(fallbacks.size(), 1u) << run.describe();
  EXPECT_EQ(field(fallbacks[0], "level"), "warn");
  EXPECT_EQ(field(fallbacks[0], "step"), step);
  EXPECT_EQ(field(fallbacks[0], "error"), "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(field(fallbacks[0], "action"), "real-call");
  EXPECT_EQ(field(fallbacks[0], "api"), "cudaMalloc");
  EXPECT_EQ(field(fallbacks[0], "requested"), kLargeRequest);
  EXPECT_EQ(run.at("a1.redirected"), "0") << run.describe();
  for (size_t i = 1; i < kLabels.size(); ++i) {
    EXPECT_EQ(run.at(kLabels[i] + ".redirected"), "1") << kLabels[i] << "\n" << run.describe();
  }
  EXPECT_EQ(count(run, "map"), kAllocations - 1);
  EXPECT_EQ(count(run, "unmap"), kAllocations - 1);
  EXPECT_EQ(count(run, "free-error"), 0);
  expect_summary(run, kAllocations - 1, 1);
  expect_doubles_hold(run, {});
}

TEST_P(AllocStepTest, EveryCallFailingFallsBackEveryTime) {
  const auto& [config, step] = GetParam();
  RunResult run = reliability::run_program("cycle", env_for(config, step));
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.out, stdout_without_shim()) << run.describe();
  std::vector<LogLine> fallbacks = events(run.log, "fallback");
  ASSERT_EQ(fallbacks.size(), size_t{kAllocations}) << run.describe();
  for (const LogLine& fallback : fallbacks) {
    EXPECT_EQ(field(fallback, "step"), step);
    EXPECT_EQ(field(fallback, "action"), "real-call");
  }
  for (const std::string& label : kLabels) EXPECT_EQ(run.at(label + ".redirected"), "0") << label;
  EXPECT_EQ(count(run, "map"), 0) << run.describe();
  expect_summary(run, 0, kAllocations);
  expect_doubles_hold(run, {});
  EXPECT_EQ(run.at("end.cuda_mappings"), "0");
}

INSTANTIATE_TEST_SUITE_P(
    MapSequence, AllocStepTest,
    ::testing::Combine(::testing::ValuesIn(kPoolConfigs),
                       ::testing::Values("cuMemGetAllocationGranularity", "cuMemCreate",
                                         "cuMemAddressReserve", "cuMemMap", "cuMemSetAccess")),
    [](const auto& info) {
      return std::string(std::get<0>(info.param).name) + "_" + std::get<1>(info.param);
    });

// ---- the unmap sequence: cudaFree reports the error, the log says which step ----

struct FreeStep {
  const char* step;
  Leftover left;  // what the doubles still hold of the chunk whose unmap failed
};

// The shim runs all three steps even after one fails. The fake driver
// refuses cuMemAddressFree of a range still mapped, so a failed cuMemUnmap
// leaves the mapping, its memory and its reservation (the handle is released).
const FreeStep kFreeSteps[] = {
    {"cuMemUnmap", {0, 1, 1, 1}},
    {"cuMemRelease", {1, 1, 0, 0}},
    {"cuMemAddressFree", {0, 0, 1, 0}},
};

void PrintTo(const FreeStep& step, std::ostream* out) { *out << step.step; }
void PrintTo(const PoolConfig& config, std::ostream* out) { *out << config.name; }

using FreeStepParam = std::tuple<PoolConfig, FreeStep>;

class FreeStepTest : public ::testing::TestWithParam<FreeStepParam> {};

TEST_P(FreeStepTest, FailingStepIsReportedAndTheRestStillWorks) {
  const auto& [config, free_step] = GetParam();
  // CUDA_ERROR_INVALID_VALUE: what a driver says to a bad unmap request.
  RunResult run =
      reliability::run_program("cycle", env_for(config, std::string(free_step.step) + "@1=1"));
  preload::expect_clean_exit(run);
  std::vector<LogLine> errors = events(run.log, "free-error");
  EXPECT_EQ(count(run, "fallback"), 0) << run.describe();
  if (!config.unmaps_before_exit) {
    // The pool keeps every chunk until exit: the failing step never runs.
    EXPECT_TRUE(errors.empty()) << run.describe();
    EXPECT_EQ(run.out, stdout_without_shim()) << run.describe();
    expect_summary(run, kAllocations, 0);
    expect_doubles_hold(run, {});
    return;
  }
  ASSERT_EQ(errors.size(), 1u) << run.describe();
  EXPECT_EQ(field(errors[0], "level"), "error");
  EXPECT_EQ(field(errors[0], "step"), free_step.step);
  EXPECT_EQ(field(errors[0], "error"), "CUDA_ERROR_INVALID_VALUE");
  EXPECT_EQ(field(errors[0], "addr"), run.at("a1.addr")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "a1 free=cudaErrorInvalidValue\n")) << run.describe();
  for (size_t i = 1; i < kLabels.size(); ++i) {
    EXPECT_TRUE(preload::contains(run.out, kLabels[i] + " free=cudaSuccess\n") ||
                preload::contains(run.out, kLabels[i] + " free=CUDA_SUCCESS\n"))
        << kLabels[i] << "\n" << run.describe();
  }
  // The table forgets the mapping (the caller may not free it again): live=0;
  // the failed one has no unmap line.
  expect_summary(run, kAllocations, 0);
  EXPECT_EQ(count(run, "unmap"), kAllocations - 1);
  expect_doubles_hold(run, free_step.left);
}

INSTANTIATE_TEST_SUITE_P(UnmapSequence, FreeStepTest,
                         ::testing::Combine(::testing::ValuesIn(kPoolConfigs),
                                            ::testing::ValuesIn(kFreeSteps)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) + "_" +
                                  std::get<1>(info.param).step;
                         });

TEST(FreeStepCodes, DriverOutOfMemoryWhileUnmappingIsAnError) {
  RunResult run = reliability::run_program("cycle", env_for(kPoolConfigs[0], "cuMemUnmap@1"));
  preload::expect_clean_exit(run);
  std::vector<LogLine> errors = events(run.log, "free-error");
  ASSERT_EQ(errors.size(), 1u) << run.describe();
  EXPECT_EQ(field(errors[0], "error"), "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_TRUE(preload::contains(run.out, "a1 free=cudaErrorUnknown\n")) << run.describe();
}

// CUDA_ERROR_DEINITIALIZED: the driver is gone (process exit) and took the
// memory along; cudaFree says so as the runtime would, with no error line.
TEST(FreeStepCodes, DeinitializedDriverGivesCudartUnloading) {
  RunResult run = reliability::run_program("cycle", env_for(kPoolConfigs[0], "cuMemUnmap@1=4"));
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "a1 free=cudaErrorCudartUnloading\n"))
      << run.describe();
  EXPECT_EQ(count(run, "free-error"), 0) << run.describe();
}

// Sub-allocated blocks: freeing one block of a shared chunk unmaps nothing;
// the chunk goes when its last block does.
TEST(FreeStepCodes, BlockFreeUnmapsOnlyWithTheLastBlock) {
  RunResult run = reliability::run_program(
      "cycle", {{"EGM_POOL_LIMIT", "0"}, {"EGM_SUBALLOC", "1"}, {"FAKE_CUDA_FAIL", "cuMemUnmap@2=1"}});
  preload::expect_clean_exit(run);
  std::vector<LogLine> errors = events(run.log, "free-error");
  ASSERT_EQ(errors.size(), 1u) << run.describe();
  // a1's chunk is the 1st unmap, a2's the 2nd: s1/s2 share a 3rd.
  EXPECT_EQ(field(errors[0], "addr"), run.at("a2.addr")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "s1 free=cudaSuccess\n")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "s2 free=cudaSuccess\n")) << run.describe();
}

}  // namespace
