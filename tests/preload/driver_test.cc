// LD_PRELOAD tests of the interception beyond cudaMalloc: driver-API
// allocations called directly or reached through cuGetProcAddress and dlsym
// on libcuda, the runtime-over-driver case (redirected once, never twice),
// EGM_HOOK_DRIVER=0, stream-ordered allocation with deferred frees,
// cudaMallocPitch, memory information, and dlsym(RTLD_NEXT) under the
// shim's dlsym.
#include <gtest/gtest.h>

#include <string>

#include "tests/preload/harness.h"

namespace {

using preload::contains;
using preload::events;
using preload::expect_api_never_logged;
using preload::expect_clean_exit;
using preload::expect_nothing_live;
using preload::field;
using preload::kMiB;
using preload::lines_about;
using preload::lines_where;
using preload::LogLine;
using preload::run_scenario;
using preload::run_scenario_without_shim;
using preload::run_series;
using preload::RunResult;

constexpr size_t kAllocSize = 3 * kMiB + 123;  // api_program's request sizes
constexpr size_t kAllocMapped = 4 * kMiB;
constexpr size_t kManagedSize = 5 * kMiB;
constexpr size_t kManagedMapped = 6 * kMiB;
constexpr size_t kPitchedSize = 1024 * 300;  // width 1000 rounded up to 512, 300 rows
constexpr size_t kDeviceMemory = size_t{1} << 30;
constexpr size_t kHostCap = 64 * kMiB;

std::string bytes(size_t value) { return std::to_string(value); }

// The allocation `label` was mapped in host memory and unmapped at its free,
// with one map and one unmap line naming `api`.
void expect_mapped_and_unmapped(const RunResult& run, const std::string& label,
                                const std::string& api, size_t requested, size_t mapped) {
  EXPECT_EQ(run.at(label + ".redirected"), "1") << label << "\n" << run.describe();
  EXPECT_EQ(run.at(label + ".host_access"), "1") << label << "\n" << run.describe();
  EXPECT_EQ(run.at(label + ".after_alloc.cuda_mappings"), "1") << run.describe();
  EXPECT_EQ(run.at(label + ".after_alloc.cuda_allocations"), "0") << run.describe();
  std::vector<LogLine> maps = lines_about(run, "map", label);
  std::vector<LogLine> unmaps = lines_about(run, "unmap", label);
  ASSERT_EQ(maps.size(), 1u) << run.describe();
  ASSERT_EQ(unmaps.size(), 1u) << run.describe();
  for (const LogLine& line : {maps[0], unmaps[0]}) {
    EXPECT_EQ(field(line, "api"), api) << run.describe();
    EXPECT_EQ(field(line, "requested"), bytes(requested)) << run.describe();
    EXPECT_EQ(field(line, "mapped"), bytes(mapped)) << run.describe();
  }
  EXPECT_EQ(field(maps[0], "id"), field(unmaps[0], "id"));
  EXPECT_TRUE(contains(run.out, "pattern_ok=1")) << run.describe();
}

// The allocation `label` was served by the fake driver itself.
void expect_served_by_driver(const RunResult& run, const std::string& label) {
  EXPECT_EQ(run.at(label + ".redirected"), "0") << run.describe();
  EXPECT_EQ(run.at(label + ".after_alloc.cuda_allocations"), "1") << run.describe();
  EXPECT_EQ(run.at(label + ".after_alloc.cuda_mappings"), "0") << run.describe();
  EXPECT_TRUE(lines_about(run, "map", label).empty()) << run.describe();
}

// ---- driver API called directly ----

TEST(DriverApiTest, CuMemAllocIsRedirectedAndCuMemFreeUnmaps) {
  RunResult run = run_scenario("cu-alloc");
  expect_clean_exit(run);
  expect_mapped_and_unmapped(run, "cu", "cuMemAlloc", kAllocSize, kAllocMapped);
  expect_nothing_live(run, "cu.after_free");
  EXPECT_TRUE(contains(run.out, "cu free=CUDA_SUCCESS\n")) << run.describe();
}

TEST(DriverApiTest, CuMemAllocManagedIsRedirected) {
  RunResult run = run_scenario("cu-managed");
  expect_clean_exit(run);
  expect_mapped_and_unmapped(run, "cu", "cuMemAllocManaged", kManagedSize, kManagedMapped);
  expect_nothing_live(run, "cu.after_free");
}

TEST(DriverApiTest, CuMemAllocPitchIsRedirectedAndReturnsThePitch) {
  RunResult run = run_scenario("cu-pitch");
  expect_clean_exit(run);
  EXPECT_TRUE(contains(run.out, "cu alloc=CUDA_SUCCESS pitch=1024\n")) << run.describe();
  expect_mapped_and_unmapped(run, "cu", "cuMemAllocPitch", kPitchedSize, 2 * kMiB);
  expect_nothing_live(run, "cu.after_free");
}

TEST(DriverApiTest, DriverMemoryTheShimDidNotMapIsFreedByTheDriver) {
  RunResult run = run_scenario("cu-alloc", {{"EGM_MIN_SIZE", "1G"}});
  expect_clean_exit(run);
  expect_served_by_driver(run, "cu");
  EXPECT_EQ(lines_where(run.log, {{"event", "decision"}, {"api", "cuMemAlloc"}}).size(), 1u)
      << run.describe();
  EXPECT_TRUE(contains(run.out, "cu free=CUDA_SUCCESS\n")) << run.describe();
  expect_nothing_live(run, "cu.after_free");
}

TEST(DriverApiTest, UnknownPointersGetTheDriversAnswer) {
  RunResult run = run_scenario("cu-free-foreign");
  expect_clean_exit(run);
  EXPECT_EQ(run.out, run_scenario_without_shim("cu-free-foreign").out) << run.describe();
  EXPECT_TRUE(contains(run.out, "cuMemFree(0x1000)=CUDA_ERROR_INVALID_VALUE\n"));
  EXPECT_TRUE(events(run.log, "free-error").empty()) << run.describe();
}

// ---- memory information ----

struct MemInfoCase {
  const char* scenario;  // cu-meminfo or rt-meminfo
  const char* meminfo;   // EGM_MEMINFO
  bool via_driver;       // FAKE_CUDART_VIA_DRIVER
};

void PrintTo(const MemInfoCase& c, std::ostream* out) {
  *out << c.scenario << " EGM_MEMINFO=" << c.meminfo << (c.via_driver ? " via driver" : "");
}

class MemInfoTest : public ::testing::TestWithParam<MemInfoCase> {};

// 1 GiB of device memory; node 0 capped at 64 MiB, so the host budget is exact.
TEST_P(MemInfoTest, ReportsTheDeviceAndWithDevicePlusHostTheHostBudgetOnce) {
  const MemInfoCase& c = GetParam();
  RunResult run = run_scenario(c.scenario, {{"EGM_MEMINFO", c.meminfo},
                                            {"EGM_NODE_LIMIT", "0:64M"},
                                            {"FAKE_CUDA_DEVICE_MEMORY", bytes(kDeviceMemory)},
                                            {"FAKE_CUDART_VIA_DRIVER", c.via_driver ? "1" : "0"}});
  expect_clean_exit(run);
  bool with_host = std::string(c.meminfo) == "device+host";
  size_t host = with_host ? kHostCap : 0;
  EXPECT_EQ(run.at("before.total"), bytes(kDeviceMemory + host)) << run.describe();
  EXPECT_EQ(run.at("before.free"), bytes(kDeviceMemory + host)) << run.describe();
  // The allocation in between is redirected: device memory stays free.
  EXPECT_EQ(run.at("after.total"), bytes(kDeviceMemory + host)) << run.describe();
  EXPECT_EQ(run.at("after.free"), bytes(kDeviceMemory + (with_host ? host - kAllocMapped : 0)))
      << run.describe();
  EXPECT_EQ(events(run.log, "map").size(), 1u) << run.describe();
}

INSTANTIATE_TEST_SUITE_P(Layers, MemInfoTest,
                         ::testing::Values(MemInfoCase{"cu-meminfo", "device", false},
                                           MemInfoCase{"cu-meminfo", "device+host", false},
                                           MemInfoCase{"rt-meminfo", "device", false},
                                           MemInfoCase{"rt-meminfo", "device+host", false},
                                           MemInfoCase{"rt-meminfo", "device+host", true}));

// ---- reaching the driver without the dynamic linker ----

void expect_lookups_redirected(const RunResult& run, const std::string& label) {
  expect_clean_exit(run);
  EXPECT_TRUE(contains(run.out, "cuGetProcAddress(cuMemAlloc)=CUDA_SUCCESS status=0 found=1\n"))
      << run.describe();
  EXPECT_TRUE(contains(
      run.out, "cuGetProcAddress(cuNoSuchFunction)=CUDA_ERROR_NOT_FOUND status=1 found=0\n"))
      << run.describe();
  // The function handed out is the shim's override, the one the program links.
  EXPECT_EQ(run.at("proc.cuMemAlloc_is_linked_one"), "1") << run.describe();
  expect_mapped_and_unmapped(run, label, "cuMemAlloc", kAllocSize, kAllocMapped);
  expect_nothing_live(run, label + ".after_free");
}

TEST(ProcAddressTest, AllocationsThroughCuGetProcAddressAreRedirected) {
  expect_lookups_redirected(run_scenario("proc-address"), "proc");
}

TEST(ProcAddressTest, AStaticallyLinkedRuntimesLookupsAreRedirected) {
  expect_lookups_redirected(run_scenario("static-runtime"), "proc");
}

TEST(ProcAddressTest, TheV1EntryPointIsCoveredToo) {
  RunResult run = run_scenario("proc-address-v1");
  expect_clean_exit(run);
  expect_mapped_and_unmapped(run, "proc", "cuMemAllocManaged", kManagedSize, kManagedMapped);
  expect_nothing_live(run, "proc.after_free");
}

TEST(ProcAddressTest, DlsymOnTheDriversHandleReturnsTheOverride) {
  RunResult run = run_scenario("dlsym-handle");
  expect_clean_exit(run);
  EXPECT_EQ(run.at("dlsym.cuMemAlloc_is_linked_one"), "1") << run.describe();
  expect_mapped_and_unmapped(run, "dlsym", "cuMemAlloc", kAllocSize, kAllocMapped);
  expect_nothing_live(run, "dlsym.after_free");
}

// ---- EGM_HOOK_DRIVER=0 ----

class HookDriverOffTest : public ::testing::TestWithParam<const char*> {};

TEST_P(HookDriverOffTest, DriverAllocationsAreLeftToTheDriver) {
  RunResult run = run_scenario(GetParam(), {{"EGM_HOOK_DRIVER", "0"}});
  expect_clean_exit(run);
  std::string label = std::string(GetParam()) == "cu-alloc"       ? "cu"
                      : std::string(GetParam()) == "dlsym-handle" ? "dlsym"
                                                                  : "proc";
  expect_served_by_driver(run, label);
  expect_nothing_live(run, label + ".after_free");
  expect_api_never_logged(run, "cuMemAlloc");
}

INSTANTIATE_TEST_SUITE_P(Paths, HookDriverOffTest,
                         ::testing::Values("cu-alloc", "proc-address", "static-runtime",
                                           "dlsym-handle"));

TEST(HookDriverOffTest, RuntimeAllocationsAreStillRedirected) {
  RunResult run = run_series("cudaMalloc:3M", {{"EGM_HOOK_DRIVER", "0"}});
  expect_clean_exit(run);
  EXPECT_EQ(run.at("a1.redirected"), "1") << run.describe();
}

// ---- a runtime that allocates through the driver ----

// FAKE_CUDART_VIA_DRIVER=1: the runtime's cudaMalloc calls cuMemAlloc, found
// through dlsym + cuGetProcAddress_v2 on libcuda, i.e. the shim's override.
std::map<std::string, std::string> runtime_via_driver(std::map<std::string, std::string> env = {}) {
  env["FAKE_CUDART_VIA_DRIVER"] = "1";
  return env;
}

TEST(RuntimeOverDriverTest, ARedirectedCudaMallocIsMappedOnce) {
  RunResult run = run_series("cudaMalloc:3M", runtime_via_driver());
  expect_clean_exit(run);
  EXPECT_EQ(events(run.log, "map").size(), 1u) << run.describe();
  EXPECT_EQ(field(lines_about(run, "map", "a1").at(0), "api"), "cudaMalloc") << run.describe();
  expect_api_never_logged(run, "cuMemAlloc");
  EXPECT_EQ(run.at("calls.cuMemAlloc_v2"), "0") << run.describe();
  expect_nothing_live(run, "all.after_free");
}

TEST(RuntimeOverDriverTest, TheRealCallOfAFallbackIsNotRedirectedAtTheDriverLayer) {
  RunResult run =
      run_series("cudaMalloc:3M", runtime_via_driver({{"FAKE_CUDA_FAIL", "cuMemCreate@1"}}));
  expect_clean_exit(run);
  std::vector<LogLine> fallbacks = events(run.log, "fallback");
  ASSERT_EQ(fallbacks.size(), 1u) << run.describe();
  EXPECT_EQ(field(fallbacks[0], "api"), "cudaMalloc");
  EXPECT_TRUE(events(run.log, "map").empty()) << run.describe();
  expect_api_never_logged(run, "cuMemAlloc");
  expect_served_by_driver(run, "a1");
  EXPECT_EQ(run.at("calls.cuMemAlloc_v2"), "1") << run.describe();
  expect_nothing_live(run, "all.after_free");
}

TEST(RuntimeOverDriverTest, SpillsDeviceAllocationIsNotRedirectedAtTheDriverLayer) {
  RunResult run = run_series(
      "cudaMalloc:3M", runtime_via_driver({{"EGM_MODE", "spill"},
                                           {"EGM_DEVICE_RESERVE", "16M"},
                                           {"FAKE_CUDA_DEVICE_MEMORY", bytes(kDeviceMemory)}}));
  expect_clean_exit(run);
  std::vector<LogLine> decisions =
      lines_where(run.log, {{"event", "decision"}, {"reason", "spill-room"}});
  ASSERT_EQ(decisions.size(), 1u) << run.describe();
  EXPECT_EQ(field(decisions[0], "api"), "cudaMalloc");
  expect_api_never_logged(run, "cuMemAlloc");
  expect_served_by_driver(run, "a1");
}

// EGM_APIS names what the program calls: a cudaMalloc left out stays out,
// even though the runtime implements it with cuMemAlloc; the program's own
// cuMemAlloc is redirected.
TEST(RuntimeOverDriverTest, ApiSelectionFollowsTheCallTheProgramMade) {
  RunResult run =
      run_series("cudaMalloc:3M,cuMemAlloc:3M", runtime_via_driver({{"EGM_APIS", "cuMemAlloc"}}));
  expect_clean_exit(run);
  expect_served_by_driver(run, "a1");
  std::vector<LogLine> decisions = lines_where(run.log, {{"event", "decision"}});
  ASSERT_EQ(decisions.size(), 1u) << run.describe();
  EXPECT_EQ(field(decisions[0], "api"), "cudaMalloc");
  EXPECT_EQ(field(decisions[0], "reason"), "filter");
  EXPECT_EQ(run.at("a2.redirected"), "1") << run.describe();
  std::vector<LogLine> maps = events(run.log, "map");
  ASSERT_EQ(maps.size(), 1u) << run.describe();
  EXPECT_EQ(field(maps[0], "api"), "cuMemAlloc");
  EXPECT_EQ(run.at("calls.cuMemAlloc_v2"), "1") << run.describe();
  expect_nothing_live(run, "all.after_free");
}

// ---- stream-ordered allocation ----

class AsyncTest : public ::testing::TestWithParam<const char*> {};

TEST_P(AsyncTest, TheUnmapWaitsForTheStreamAndTheShimsNextCall) {
  RunResult run = run_scenario(GetParam());
  expect_clean_exit(run);
  EXPECT_TRUE(contains(run.out, "cudaMallocAsync=cudaSuccess\n")) << run.describe();
  EXPECT_TRUE(contains(run.out, "cudaFreeAsync=cudaSuccess\n")) << run.describe();
  EXPECT_EQ(run.at("async.redirected"), "1") << run.describe();
  EXPECT_EQ(run.at("async.after_alloc.cudart_allocations"), "0") << run.describe();
  EXPECT_EQ(run.at("async.mapped_after_free_async"), "1") << run.describe();
  EXPECT_EQ(run.at("async.after_free_async.cudart_events"), "1") << run.describe();
  EXPECT_EQ(run.at("async.mapped_while_blocked"), "1") << run.describe();
  EXPECT_EQ(run.at("async.mapped_after_release"), "1") << run.describe();
  EXPECT_EQ(run.at("async.mapped_after_next_call"), "0") << run.describe();
  expect_nothing_live(run, "async.after_all");
  // The later cudaMalloc may get the freed address again: count this allocation's lines only.
  const std::string address = run.at("async.addr");
  std::vector<LogLine> maps =
      lines_where(run.log, {{"event", "map"}, {"addr", address}, {"api", "cudaMallocAsync"}});
  ASSERT_EQ(maps.size(), 1u) << run.describe();
  EXPECT_EQ(lines_where(run.log, {{"event", "unmap"}, {"addr", address}, {"id", field(maps[0], "id")}})
                .size(),
            1u)
      << run.describe();
}

INSTANTIATE_TEST_SUITE_P(Variants, AsyncTest, ::testing::Values("async", "async-ptsz"));

TEST(AsyncExitTest, AFreeWhoseStreamIsDoneIsUnmappedAtExit) {
  RunResult run = run_scenario("async-exit");
  expect_clean_exit(run);
  EXPECT_EQ(run.at("async.mapped_while_blocked"), "1") << run.describe();
  EXPECT_EQ(run.at("async.mapped_after_release"), "1") << run.describe();
  EXPECT_EQ(lines_about(run, "unmap", "async").size(), 1u) << run.describe();
  std::vector<LogLine> summaries = events(run.log, "summary");
  ASSERT_EQ(summaries.size(), 1u) << run.describe();
  EXPECT_EQ(field(summaries[0], "pending_frees"), "0") << run.describe();
  EXPECT_EQ(field(summaries[0], "live"), "0") << run.describe();
}

TEST(PitchTest, CudaMallocPitchIsRedirectedAndReturnsThePitch) {
  RunResult run = run_scenario("pitch");
  expect_clean_exit(run);
  EXPECT_TRUE(contains(run.out, "cudaMallocPitch=cudaSuccess pitch=1024\n")) << run.describe();
  EXPECT_EQ(run.at("pitch.redirected"), "1") << run.describe();
  std::vector<LogLine> maps = lines_about(run, "map", "pitch");
  ASSERT_EQ(maps.size(), 1u) << run.describe();
  EXPECT_EQ(field(maps[0], "api"), "cudaMallocPitch");
  EXPECT_EQ(field(maps[0], "requested"), bytes(kPitchedSize));
  EXPECT_EQ(field(maps[0], "mapped"), bytes(2 * kMiB));
  expect_nothing_live(run, "pitch.after_free");
}

// ---- what the program sees does not change ----

class SameStdoutTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SameStdoutTest, StdoutIsTheSameWithAndWithoutThePreload) {
  RunResult plain = run_scenario_without_shim(GetParam());
  RunResult shimmed = run_scenario(GetParam());
  expect_clean_exit(plain);
  expect_clean_exit(shimmed);
  EXPECT_EQ(shimmed.out, plain.out) << shimmed.describe();
}

INSTANTIATE_TEST_SUITE_P(Scenarios, SameStdoutTest,
                         ::testing::Values("cu-alloc", "cu-managed", "cu-pitch", "cu-free-foreign",
                                           "cu-meminfo", "rt-meminfo", "proc-address",
                                           "proc-address-v1", "static-runtime", "dlsym-handle",
                                           "async", "async-exit", "async-ptsz", "pitch"));

// ---- dlsym(RTLD_NEXT) under the shim's dlsym ----

RunResult run_rtld_next(bool preload) {
  preload::RunOptions options;
  options.program = "tests/preload/rtld_next_program";
  options.library_dirs = {"tests/preload"};
  options.preload = preload;
  return preload::run(options);
}

TEST(RtldNextTest, ALibrarysNextLookupFindsTheFollowingLibrary) {
  for (bool preload : {false, true}) {
    RunResult run = run_rtld_next(preload);
    ASSERT_EQ(run.exit_code, 0) << run.describe();
    EXPECT_TRUE(contains(run.out, "from_a_next(next_probe_name)=b\n"))
        << "preload=" << preload << "\n"
        << run.describe();
  }
}

TEST(RtldNextTest, TheProgramsNextLookupFindsTheFirstObjectAfterIt) {
  RunResult plain = run_rtld_next(false);
  ASSERT_EQ(plain.exit_code, 0) << plain.describe();
  EXPECT_TRUE(contains(plain.out, "from_main_next(cudaMalloc) in libcudart.so.13\n"))
      << plain.describe();
  RunResult shimmed = run_rtld_next(true);
  ASSERT_EQ(shimmed.exit_code, 0) << shimmed.describe();
  // LD_PRELOAD objects come right after the executable in the search order.
  EXPECT_TRUE(contains(shimmed.out, "from_main_next(cudaMalloc) in libegm.so\n"))
      << shimmed.describe();
  EXPECT_TRUE(contains(shimmed.out, "from_main_next(cudaMalloc) is_linked_one=1\n"))
      << shimmed.describe();
}

}  // namespace
