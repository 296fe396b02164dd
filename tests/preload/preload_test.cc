// LD_PRELOAD integration tests: runs alloc_program with libegm.so preloaded
// over the CPU-only fake libcudart.so.13 / libcuda.so.1, and checks what the
// program saw, what the doubles counted, and what the shim logged.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "tests/preload/harness.h"

namespace {

using preload::kMiB;
// alloc_program's request sizes, and what the 2 MiB granularity makes of them.
constexpr size_t kMallocSize = 3 * kMiB + 123;
constexpr size_t kMallocMapped = 4 * kMiB;
constexpr size_t kManagedSize = 5 * kMiB;
constexpr size_t kManagedMapped = 6 * kMiB;
constexpr size_t kSmallSize = 1000;
constexpr size_t kSmallMapped = 2 * kMiB;
constexpr int kThreadAllocations = 4 * 16;

using preload::contains;
using preload::events;
using preload::expect_clean_exit;
using preload::expect_nothing_live;
using preload::field;
using preload::lines_of;
using preload::LogLine;
using preload::RunOptions;
using preload::RunResult;

// alloc_program SCENARIO: the program linked against libcudart alone, as a
// real CUDA program is, that finds the driver's doubles through dlsym.
RunResult run(const std::string& scenario, RunOptions options = {}) {
  options.program = "tests/preload/alloc_program";
  options.args = {scenario};
  return preload::run(options);
}

RunResult run_with(const std::string& scenario, std::map<std::string, std::string> env) {
  RunOptions options;
  options.env = std::move(env);
  return run(scenario, options);
}

RunResult run_without_shim(const std::string& scenario) {
  RunOptions options;
  options.preload = false;
  return run(scenario, options);
}

// ---- shared expectations ----

// The allocation `label` was served by the shim through the fake driver, and
// the CPU could use every byte of the padded range.
void expect_redirected(const RunResult& run, const std::string& label, size_t mapped) {
  EXPECT_EQ(run.at(label + ".redirected"), "1") << run.describe();
  EXPECT_EQ(run.at(label + ".padded_ok"), "1") << run.describe();
  EXPECT_EQ(run.at(label + ".host_access"), "1") << run.describe();
  EXPECT_EQ(run.at(label + ".mapping_size"), std::to_string(mapped)) << run.describe();
  EXPECT_EQ(run.at(label + ".mapping_base"), run.at(label + ".addr")) << run.describe();
}

// The allocation `label` came from the fake runtime, not the driver.
void expect_served_by_runtime(const RunResult& run, const std::string& label) {
  EXPECT_EQ(run.at(label + ".redirected"), "0") << run.describe();
  EXPECT_EQ(run.at(label + ".after_alloc.cudart_allocations"), "1") << run.describe();
  EXPECT_EQ(run.at(label + ".after_alloc.cuda_handles"), "0") << run.describe();
  EXPECT_EQ(run.at(label + ".after_alloc.cuda_reservations"), "0") << run.describe();
  EXPECT_EQ(run.at(label + ".after_alloc.cuda_mappings"), "0") << run.describe();
  EXPECT_EQ(run.at(label + ".after_alloc.cuda_memory_objects"), "0") << run.describe();
  EXPECT_EQ(run.at(label + ".after_free.cudart_allocations"), "0") << run.describe();
}

// One map and one unmap line for the allocation `label`, agreeing with each other.
void expect_map_and_unmap(const RunResult& run, const std::string& label, const std::string& api,
                          size_t requested, size_t mapped) {
  const std::string& addr = run.at(label + ".addr");
  std::vector<LogLine> maps = preload::lines_about(run, "map", label);
  std::vector<LogLine> unmaps = preload::lines_about(run, "unmap", label);
  ASSERT_EQ(maps.size(), 1u) << "map lines for " << addr << "\n" << run.describe();
  ASSERT_EQ(unmaps.size(), 1u) << "unmap lines for " << addr << "\n" << run.describe();
  for (const LogLine& line : {maps[0], unmaps[0]}) {
    EXPECT_EQ(field(line, "level"), "info");
    EXPECT_EQ(field(line, "api"), api);
    EXPECT_EQ(field(line, "requested"), std::to_string(requested));
    EXPECT_EQ(field(line, "mapped"), std::to_string(mapped));
    EXPECT_EQ(field(line, "node"), "0");
    EXPECT_EQ(field(line, "device"), "0");
    EXPECT_EQ(field(line, "pid"), std::to_string(run.pid));
  }
  EXPECT_EQ(field(maps[0], "id"), field(unmaps[0], "id"));
}

void expect_summary(const RunResult& run, int maps, int fallbacks, int live) {
  std::vector<LogLine> summaries = events(run.log, "summary");
  ASSERT_EQ(summaries.size(), 1u) << run.describe();
  EXPECT_EQ(field(summaries[0], "maps"), std::to_string(maps)) << run.describe();
  EXPECT_EQ(field(summaries[0], "fallbacks"), std::to_string(fallbacks)) << run.describe();
  EXPECT_EQ(field(summaries[0], "live"), std::to_string(live)) << run.describe();
  EXPECT_EQ(field(summaries[0], "unmaps"), std::to_string(maps - live)) << run.describe();
}

std::vector<std::string> stderr_lines_naming(const RunResult& run, const std::string& word) {
  std::vector<std::string> found;
  for (const std::string& line : lines_of(run.err)) {
    if (contains(line, word)) found.push_back(line);
  }
  return found;
}

// ---- redirection ----

TEST(PreloadTest, CudaMallocIsServedFromHostMemoryUsableByTheCpu) {
  RunResult result = run("malloc");
  expect_clean_exit(result);
  expect_redirected(result, "malloc", kMallocMapped);
  EXPECT_EQ(result.at("malloc.after_alloc.cudart_allocations"), "0");
  EXPECT_EQ(result.at("malloc.after_alloc.cuda_handles"), "1");
  EXPECT_EQ(result.at("malloc.after_alloc.cuda_reservations"), "1");
  EXPECT_EQ(result.at("malloc.after_alloc.cuda_mappings"), "1");
  expect_nothing_live(result, "malloc.after_free");
  EXPECT_TRUE(contains(result.out, "pattern_ok=1")) << result.describe();
}

TEST(PreloadTest, CudaMallocLogsOneMapAndOneUnmap) {
  RunResult result = run("malloc");
  expect_clean_exit(result);
  ASSERT_TRUE(result.log_exists) << "no egm-<pid>.log\n" << result.describe();
  EXPECT_EQ(events(result.log, "map").size(), 1u) << result.describe();
  EXPECT_EQ(events(result.log, "unmap").size(), 1u) << result.describe();
  EXPECT_EQ(events(result.log, "fallback").size(), 0u) << result.describe();
  expect_map_and_unmap(result, "malloc", "cudaMalloc", kMallocSize, kMallocMapped);
  expect_summary(result, /*maps=*/1, /*fallbacks=*/0, /*live=*/0);
}

TEST(PreloadTest, CudaMallocManagedIsServedFromHostMemory) {
  RunResult result = run("managed");
  expect_clean_exit(result);
  expect_redirected(result, "managed", kManagedMapped);
  EXPECT_EQ(result.at("managed.after_alloc.cudart_allocations"), "0");
  expect_nothing_live(result, "managed.after_free");
  EXPECT_EQ(events(result.log, "map").size(), 1u) << result.describe();
  EXPECT_EQ(events(result.log, "unmap").size(), 1u) << result.describe();
  expect_map_and_unmap(result, "managed", "cudaMallocManaged", kManagedSize, kManagedMapped);
  expect_summary(result, 1, 0, 0);
}

TEST(PreloadTest, TwoLiveAllocationsAreMappedSeparately) {
  RunResult result = run("both");
  expect_clean_exit(result);
  expect_redirected(result, "malloc", kMallocMapped);
  expect_redirected(result, "managed", kSmallMapped);
  EXPECT_EQ(result.at("managed.after_alloc.cudart_allocations"), "0");
  EXPECT_EQ(result.at("managed.after_alloc.cuda_mappings"), "2");
  EXPECT_EQ(result.at("managed.after_free.cuda_mappings"), "1");
  expect_nothing_live(result, "malloc.after_free");
  EXPECT_EQ(events(result.log, "map").size(), 2u) << result.describe();
  EXPECT_EQ(events(result.log, "unmap").size(), 2u) << result.describe();
  expect_map_and_unmap(result, "malloc", "cudaMalloc", kMallocSize, kMallocMapped);
  expect_map_and_unmap(result, "managed", "cudaMallocManaged", kSmallSize, kSmallMapped);
  expect_summary(result, 2, 0, 0);
}

TEST(PreloadTest, SizesAreRoundedToTheDriversGranularity) {
  constexpr size_t k64KiB = 64 * 1024;
  RunResult result = run_with("malloc", {{"FAKE_CUDA_GRANULARITY", std::to_string(k64KiB)}});
  expect_clean_exit(result);
  constexpr size_t mapped = (kMallocSize + k64KiB - 1) / k64KiB * k64KiB;
  expect_redirected(result, "malloc", mapped);
  expect_map_and_unmap(result, "malloc", "cudaMalloc", kMallocSize, mapped);
}

TEST(PreloadTest, ConcurrentAllocationsAreAllMappedAndUnmapped) {
  RunResult result = run("threads");
  expect_clean_exit(result);
  EXPECT_EQ(events(result.log, "map").size(), size_t{kThreadAllocations}) << result.describe();
  EXPECT_EQ(events(result.log, "unmap").size(), size_t{kThreadAllocations});
  EXPECT_TRUE(contains(result.out,
                       "final cuda_handles=0 cuda_reservations=0 cuda_mappings=0 "
                       "cudart_allocations=0"))
      << result.describe();
  expect_summary(result, kThreadAllocations, 0, 0);
}

TEST(PreloadTest, ALeakedAllocationIsReportedAtExit) {
  RunResult result = run("leak");
  expect_clean_exit(result);
  expect_redirected(result, "malloc", kMallocMapped);
  expect_summary(result, 1, 0, /*live=*/1);
  std::vector<LogLine> leaks = events(result.log, "leak");
  ASSERT_EQ(leaks.size(), 1u) << result.describe();
  EXPECT_EQ(field(leaks[0], "addr"), result.at("malloc.addr"));
  EXPECT_EQ(field(leaks[0], "mapped"), std::to_string(kMallocMapped));
}

// ---- what the program sees does not change ----

class SameStdoutTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SameStdoutTest, StdoutIsTheSameWithAndWithoutThePreload) {
  RunResult plain = run_without_shim(GetParam());
  RunResult shimmed = run(GetParam());
  expect_clean_exit(plain);
  expect_clean_exit(shimmed);
  EXPECT_EQ(shimmed.out, plain.out) << shimmed.describe();
}

INSTANTIATE_TEST_SUITE_P(Scenarios, SameStdoutTest,
                         ::testing::Values("malloc", "managed", "both", "free-unknown",
                                           "free-twice", "runtime-pointer", "edge", "threads",
                                           "leak", "none"));

TEST(PreloadTest, WithoutALogFileTheShimWritesNothingToStdout) {
  RunResult plain = run_without_shim("both");
  RunOptions options;
  options.log_file = false;
  RunResult shimmed = run("both", options);
  expect_clean_exit(shimmed);
  expect_redirected(shimmed, "malloc", kMallocMapped);
  EXPECT_EQ(shimmed.out, plain.out) << shimmed.describe();
  EXPECT_FALSE(shimmed.log_exists);
}

TEST(PreloadTest, AProcessThatNeverAllocatesLeavesNoLogFile) {
  RunResult result = run("none");
  expect_clean_exit(result);
  EXPECT_FALSE(result.log_exists) << result.describe();
  EXPECT_EQ(result.err, "");
}

TEST(PreloadTest, RequestsTheShimMustNotTakeGoToTheRuntime) {
  RunResult result = run("edge");
  expect_clean_exit(result);
  EXPECT_TRUE(contains(result.out, "cudaMalloc(0)=cudaSuccess pointer_null=1"))
      << result.describe();
  EXPECT_TRUE(contains(result.out, "cudaMalloc(null out)=cudaErrorInvalidValue"));
  EXPECT_TRUE(contains(result.out, "cudaMallocManaged(bad flags)=cudaErrorInvalidValue"));
  EXPECT_EQ(events(result.log, "map").size(), 0u) << result.describe();
}

// ---- cudaFree of pointers the shim does not own ----

TEST(PreloadTest, UnknownPointersGoToTheRealCudaFree) {
  RunResult result = run("free-unknown");
  expect_clean_exit(result);
  EXPECT_TRUE(contains(result.out, "cudaFree(nullptr)=cudaSuccess\n")) << result.describe();
  EXPECT_TRUE(contains(result.out, "cudaFree(0x1000)=cudaErrorInvalidValue\n"));
  EXPECT_TRUE(contains(result.out, "cudaFree(stack)=cudaErrorInvalidValue\n"));
  EXPECT_EQ(events(result.log, "free-error").size(), 0u) << result.describe();
}

TEST(PreloadTest, InteriorPointersAndSecondFreesAreErrors) {
  RunResult result = run("free-twice");
  expect_clean_exit(result);
  EXPECT_TRUE(contains(result.out, "cudaFree(interior)=cudaErrorInvalidValue\n"))
      << result.describe();
  EXPECT_TRUE(contains(result.out, "malloc cudaFree=cudaSuccess\n"));
  EXPECT_TRUE(contains(result.out, "cudaFree(again)=cudaErrorInvalidValue\n"));
  expect_redirected(result, "malloc", kMallocMapped);
  expect_nothing_live(result, "malloc.after_free");
  EXPECT_EQ(events(result.log, "unmap").size(), 1u) << result.describe();
}

TEST(PreloadTest, RuntimeMemoryIsFreedByTheRuntime) {
  RunResult result = run("runtime-pointer");
  expect_clean_exit(result);
  expect_served_by_runtime(result, "runtime");
  EXPECT_TRUE(contains(result.out, "runtime cudaFree=cudaSuccess\n")) << result.describe();
}

TEST(PreloadTest, DisabledShimLeavesEveryAllocationToTheRuntime) {
  RunResult result = run_with("both", {{"EGM_ENABLE", "0"}});
  expect_clean_exit(result);
  EXPECT_EQ(result.at("malloc.redirected"), "0") << result.describe();
  EXPECT_EQ(result.at("managed.redirected"), "0") << result.describe();
  EXPECT_EQ(result.at("managed.after_alloc.cudart_allocations"), "2") << result.describe();
  expect_nothing_live(result, "malloc.after_free");
  EXPECT_TRUE(contains(result.out, "malloc cudaFree=cudaSuccess\n")) << result.describe();
  EXPECT_EQ(events(result.log, "map").size(), 0u) << result.describe();
}

TEST(PreloadTest, DisabledShimForwardsFreesOfRuntimePointers) {
  RunResult result = run_with("free-twice", {{"EGM_ENABLE", "0"}});
  expect_clean_exit(result);
  EXPECT_EQ(result.out, run_without_shim("free-twice").out) << result.describe();
  expect_served_by_runtime(result, "malloc");
}

// ---- fallback when a step of the EGM sequence fails ----

class FailingStepTest : public ::testing::TestWithParam<const char*> {};

TEST_P(FailingStepTest, FallsBackToTheRuntimeWithoutLeaking) {
  const std::string step = GetParam();
  RunResult result = run_with("malloc", {{"FAKE_CUDA_FAIL", step}});
  expect_clean_exit(result);
  expect_served_by_runtime(result, "malloc");
  expect_nothing_live(result, "malloc.after_free");
  EXPECT_EQ(result.out, run_without_shim("malloc").out) << result.describe();

  std::vector<LogLine> fallbacks = events(result.log, "fallback");
  ASSERT_EQ(fallbacks.size(), 1u) << result.describe();
  EXPECT_EQ(field(fallbacks[0], "level"), "warn");
  EXPECT_EQ(field(fallbacks[0], "step"), step);
  EXPECT_EQ(field(fallbacks[0], "error"), "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(field(fallbacks[0], "api"), "cudaMalloc");
  EXPECT_EQ(field(fallbacks[0], "requested"), std::to_string(kMallocSize));
  EXPECT_EQ(events(result.log, "map").size(), 0u) << result.describe();
  EXPECT_EQ(events(result.log, "unmap").size(), 0u) << result.describe();
  expect_summary(result, 0, 1, 0);
}

INSTANTIATE_TEST_SUITE_P(EgmSequence, FailingStepTest,
                         ::testing::Values("cuMemGetAllocationGranularity", "cuMemCreate",
                                           "cuMemAddressReserve", "cuMemMap", "cuMemSetAccess"));

TEST(PreloadTest, FallbackNamesTheDriversErrorCode) {
  RunResult result = run_with("managed", {{"FAKE_CUDA_FAIL", "cuMemMap=1"}});
  expect_clean_exit(result);
  expect_served_by_runtime(result, "managed");
  std::vector<LogLine> fallbacks = events(result.log, "fallback");
  ASSERT_EQ(fallbacks.size(), 1u) << result.describe();
  EXPECT_EQ(field(fallbacks[0], "error"), "CUDA_ERROR_INVALID_VALUE");
  EXPECT_EQ(field(fallbacks[0], "api"), "cudaMallocManaged");
}

TEST(PreloadTest, OnlyTheFailedAllocationFallsBack) {
  RunResult result = run_with("both", {{"FAKE_CUDA_FAIL", "cuMemCreate@1"}});
  expect_clean_exit(result);
  EXPECT_EQ(result.at("malloc.redirected"), "0") << result.describe();
  EXPECT_EQ(result.at("malloc.after_alloc.cudart_allocations"), "1");
  expect_redirected(result, "managed", kSmallMapped);
  EXPECT_EQ(result.at("managed.after_alloc.cudart_allocations"), "1");
  expect_nothing_live(result, "malloc.after_free");
  EXPECT_EQ(events(result.log, "fallback").size(), 1u) << result.describe();
  EXPECT_EQ(events(result.log, "map").size(), 1u) << result.describe();
  expect_summary(result, 1, 1, 0);
}

// ---- configuration ----

// A node option, a valid value selecting node 0, and an invalid value.
struct NodeOption {
  const char* variable;
  const char* node_zero;
  const char* invalid;
};

void PrintTo(const NodeOption& option, std::ostream* out) {
  *out << option.variable << " (valid " << option.node_zero << ", invalid " << option.invalid
       << ")";
}

class NodeOptionTest : public ::testing::TestWithParam<NodeOption> {};

TEST_P(NodeOptionTest, ExplicitNodeZeroIsUsed) {
  RunResult result = run_with("malloc", {{GetParam().variable, GetParam().node_zero}});
  expect_clean_exit(result);
  expect_redirected(result, "malloc", kMallocMapped);
  expect_map_and_unmap(result, "malloc", "cudaMalloc", kMallocSize, kMallocMapped);
  EXPECT_EQ(events(result.log, "config-error").size(), 0u) << result.describe();
  EXPECT_EQ(events(result.log, "notice").size(), 0u) << result.describe();
  EXPECT_TRUE(stderr_lines_naming(result, GetParam().variable).empty()) << result.describe();
}

TEST_P(NodeOptionTest, InvalidValueTurnsRedirectionOffAndSaysWhy) {
  RunResult result = run_with("malloc", {{GetParam().variable, GetParam().invalid}});
  expect_clean_exit(result);
  expect_served_by_runtime(result, "malloc");
  EXPECT_EQ(result.out, run_without_shim("malloc").out) << result.describe();
  std::vector<std::string> complaints = stderr_lines_naming(result, GetParam().variable);
  ASSERT_EQ(complaints.size(), 1u) << result.describe();
  EXPECT_TRUE(contains(complaints[0], GetParam().invalid)) << complaints[0];
  EXPECT_TRUE(contains(complaints[0], "accepted")) << complaints[0];
  EXPECT_EQ(events(result.log, "map").size(), 0u) << result.describe();
}

TEST_P(NodeOptionTest, InvalidValueWithStrictStopsBeforeMain) {
  RunResult result =
      run_with("malloc", {{GetParam().variable, GetParam().invalid}, {"EGM_STRICT", "1"}});
  ASSERT_GT(result.pid, 0);
  EXPECT_NE(result.exit_code, 0) << result.describe();
  EXPECT_EQ(result.out, "") << "main ran:\n" << result.describe();
  EXPECT_EQ(stderr_lines_naming(result, GetParam().variable).size(), 1u) << result.describe();
}

INSTANTIATE_TEST_SUITE_P(Options, NodeOptionTest,
                         ::testing::Values(NodeOption{"EGM_NUMA_POLICY", "bind:0", "abc"},
                                           NodeOption{"EGM_NUMA_POLICY", "bind:0", "bind:7"},
                                           NodeOption{"EGM_MODE", "always", "sometimes"}),
                         [](const auto& info) {
                           return std::string(info.param.variable).substr(4) +
                                  std::to_string(info.index);
                         });

// ---- the log format of docs/DESIGN.md ----

void expect_keys(const std::vector<LogLine>& lines, const std::vector<std::string>& keys,
                 const RunResult& run) {
  ASSERT_FALSE(lines.empty()) << run.describe();
  for (const LogLine& line : lines) {
    for (const std::string& key : {"pid", "tid", "level", "event"}) {
      EXPECT_EQ(line.count(key), 1u) << "no " << key << " in " << field(line, "event");
    }
    for (const std::string& key : keys) {
      EXPECT_EQ(line.count(key), 1u) << "no " << key << " in event=" << field(line, "event") << "\n"
                                     << run.describe();
    }
  }
}

TEST(LogFormatTest, MapUnmapAndSummaryHaveTheDocumentedKeys) {
  RunResult result = run("malloc");
  expect_clean_exit(result);
  expect_keys(events(result.log, "map"),
              {"id", "api", "addr", "requested", "mapped", "node", "device", "handle", "map_us"},
              result);
  expect_keys(
      events(result.log, "unmap"),
      {"id", "api", "addr", "requested", "mapped", "node", "device", "lifetime_us", "unmap_us"},
      result);
  expect_keys(events(result.log, "summary"), {"maps", "unmaps", "fallbacks", "live", "live_bytes"},
              result);
  expect_keys(events(result.log, "node-summary"), {"node", "current_bytes", "peak_bytes", "maps"},
              result);
}

TEST(LogFormatTest, FallbackHasTheDocumentedKeys) {
  RunResult result = run_with("malloc", {{"FAKE_CUDA_FAIL", "cuMemMap"}});
  expect_clean_exit(result);
  expect_keys(events(result.log, "fallback"),
              {"api", "requested", "node", "device", "step", "error", "action"}, result);
}

TEST(LogFormatTest, TimestampsAreUtcWithMicroseconds) {
  RunResult result = run("malloc");
  expect_clean_exit(result);
  ASSERT_FALSE(result.log.empty()) << result.describe();
  for (const LogLine& line : result.log) {
    const std::string& time = field(line, "time");
    ASSERT_EQ(time.size(), 27u) << time;  // YYYY-MM-DDTHH:MM:SS.ffffffZ
    EXPECT_EQ(time[10], 'T') << time;
    EXPECT_EQ(time[19], '.') << time;
    EXPECT_EQ(time.back(), 'Z') << time;
  }
}

// ---- per-node accounting in the exit summary ----

std::string node_zero_peak(const RunResult& run) {
  for (const LogLine& line : events(run.log, "node-summary")) {
    if (field(line, "node") == "0") return field(line, "peak_bytes");
  }
  return "<no node-summary for node 0>";
}

TEST(NodeSummaryTest, PeakIsTheMostBytesMappedAtOnce) {
  RunResult result = run("both");
  expect_clean_exit(result);
  EXPECT_EQ(node_zero_peak(result), std::to_string(kMallocMapped + kSmallMapped))
      << result.describe();
}

TEST(NodeSummaryTest, FailedMappingsDoNotCountTowardsThePeak) {
  RunResult result = run_with("both", {{"FAKE_CUDA_FAIL", "cuMemCreate@1"}});
  expect_clean_exit(result);
  EXPECT_EQ(node_zero_peak(result), std::to_string(kSmallMapped)) << result.describe();
}

}  // namespace
