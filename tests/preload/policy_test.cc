// LD_PRELOAD tests of the policy engine: modes, spill, size/API/device
// filters, node caps and fallbacks, NUMA policies, EGM_CONFIG and option
// errors. Each test runs api_program's `series` scenario (a list of
// allocations) and checks what the debug log says each request did and what
// the doubles counted.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "tests/preload/harness.h"

namespace {

using preload::contains;
using preload::events;
using preload::expect_clean_exit;
using preload::expect_nothing_live;
using preload::field;
using preload::kMiB;
using preload::lines_about;
using preload::lines_where;
using preload::LogLine;
using preload::run_series;
using preload::RunResult;

constexpr size_t k2MiB = 2 * kMiB;
constexpr size_t k3MiB = 3 * kMiB;
constexpr size_t k5MiB = 5 * kMiB;
constexpr size_t k20MiB = 20 * kMiB;

std::string bytes(size_t value) { return std::to_string(value); }

// The one decision line for a request of `api` and `requested` bytes.
LogLine decision_for(const RunResult& run, const std::string& api, size_t requested) {
  std::vector<LogLine> found =
      lines_where(run.log, {{"event", "decision"}, {"api", api}, {"requested", bytes(requested)}});
  EXPECT_EQ(found.size(), 1u) << "decision lines for " << api << " " << requested << "\n"
                              << run.describe();
  return found.empty() ? LogLine{} : found[0];
}

// The allocation `label` stayed on the device: the runtime or driver served it.
void expect_on_device(const RunResult& run, const std::string& label) {
  EXPECT_TRUE(run.at(label + ".result") == "cudaSuccess" ||
              run.at(label + ".result") == "CUDA_SUCCESS")
      << run.describe();
  EXPECT_EQ(run.at(label + ".redirected"), "0") << label << "\n" << run.describe();
  EXPECT_TRUE(lines_about(run, "map", label).empty()) << label << "\n" << run.describe();
}

// The allocation `label` was mapped in host memory; its one map line.
LogLine expect_on_host(const RunResult& run, const std::string& label, const std::string& api) {
  EXPECT_EQ(run.at(label + ".redirected"), "1") << label << "\n" << run.describe();
  EXPECT_EQ(run.at(label + ".host_access"), "1") << label << "\n" << run.describe();
  std::vector<LogLine> maps = lines_about(run, "map", label);
  EXPECT_EQ(maps.size(), 1u) << label << "\n" << run.describe();
  if (maps.empty()) return {};
  EXPECT_EQ(field(maps[0], "api"), api) << run.describe();
  EXPECT_EQ(field(maps[0], "node"), "0") << run.describe();
  return maps[0];
}

LogLine start_line(const RunResult& run) {
  std::vector<LogLine> starts = events(run.log, "start");
  EXPECT_EQ(starts.size(), 1u) << run.describe();
  return starts.empty() ? LogLine{} : starts[0];
}

// ---- EGM_MODE ----

TEST(ModeTest, AlwaysSendsEveryRequestToHostMemory) {
  RunResult run = run_series("cudaMalloc:3M,cudaMallocManaged:5M", {{"EGM_MODE", "always"}});
  expect_clean_exit(run);
  EXPECT_EQ(field(start_line(run), "mode"), "always");
  EXPECT_EQ(field(expect_on_host(run, "a1", "cudaMalloc"), "trigger"), "always");
  EXPECT_EQ(field(expect_on_host(run, "a2", "cudaMallocManaged"), "trigger"), "always");
  EXPECT_EQ(run.at("all.after_alloc.cudart_allocations"), "0");
  EXPECT_EQ(run.at("all.after_alloc.cuda_mappings"), "2");
  expect_nothing_live(run, "all.after_free");
}

TEST(ModeTest, OffLeavesEveryRequestToTheRuntimeAndLogsNothing) {
  RunResult run = run_series("cudaMalloc:3M,cudaMallocManaged:5M", {{"EGM_MODE", "off"}});
  expect_clean_exit(run);
  expect_on_device(run, "a1");
  expect_on_device(run, "a2");
  EXPECT_EQ(run.at("all.after_alloc.cudart_allocations"), "2");
  EXPECT_TRUE(events(run.log, "decision").empty()) << run.describe();
  EXPECT_TRUE(events(run.log, "summary").empty()) << run.describe();
  expect_nothing_live(run, "all.after_free");
}

// ---- spill ----

// 64 MiB of device memory, 16 MiB kept free: two 20 MiB requests fit, the
// third would leave 4 MiB.
const std::map<std::string, std::string> kSmallDevice = {
    {"EGM_MODE", "spill"},
    {"EGM_DEVICE_RESERVE", "16M"},
    {"FAKE_CUDA_DEVICE_MEMORY", bytes(64 * kMiB)},
};

class SpillThresholdTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SpillThresholdTest, DeviceWhileAboveTheReserveThenHost) {
  const std::string api = GetParam();
  RunResult run = run_series(api + ":20M," + api + ":20M," + api + ":20M", kSmallDevice);
  expect_clean_exit(run);
  std::vector<LogLine> decisions =
      lines_where(run.log, {{"event", "decision"}, {"placement", "device"}, {"api", api}});
  ASSERT_EQ(decisions.size(), 2u) << run.describe();
  for (const LogLine& decision : decisions) {
    EXPECT_EQ(field(decision, "reason"), "spill-room") << run.describe();
    EXPECT_EQ(field(decision, "requested"), bytes(k20MiB));
  }
  expect_on_device(run, "a1");
  expect_on_device(run, "a2");
  LogLine map = expect_on_host(run, "a3", api);
  EXPECT_EQ(field(map, "trigger"), "spill-threshold") << run.describe();
  EXPECT_EQ(field(map, "reason"), "nearest") << run.describe();
  EXPECT_EQ(run.at("all.after_alloc.cuda_mappings"), "1");
  expect_nothing_live(run, "all.after_free");
  EXPECT_TRUE(events(run.log, "fallback").empty()) << run.describe();
}

INSTANTIATE_TEST_SUITE_P(RuntimeAndDriver, SpillThresholdTest,
                         ::testing::Values("cudaMalloc", "cuMemAlloc"));

// ---- spill: the reserve is kept for small requests (EGM_SPILL_MIN_SIZE) ----

// The reasons of the decision lines for `api`, in order.
std::vector<std::string> decision_reasons(const RunResult& run, const std::string& api) {
  std::vector<std::string> reasons;
  for (const LogLine& line : lines_where(run.log, {{"event", "decision"}, {"api", api}})) {
    reasons.push_back(field(line, "placement") + ":" + field(line, "reason"));
  }
  return reasons;
}

// Three 20 MiB requests, then five of 5 MiB, on a 64 MiB device keeping 16 MiB.
std::string small_after_large(const std::string& api) {
  std::string series = api + ":20M," + api + ":20M," + api + ":20M";
  for (int i = 0; i < 5; ++i) series += "," + api + ":5M";
  return series;
}

class SpillMinSizeTest : public ::testing::TestWithParam<const char*> {};

// auto on a 64 MiB device is 8 MiB: the third 20 MiB request spills at the
// reserve; the 5 MiB ones stay on the device inside the first half of the
// reserve, then go to host memory: the other half stays free.
TEST_P(SpillMinSizeTest, SmallRequestsUseTheReserveLargeOnesSpill) {
  const std::string api = GetParam();
  RunResult run = run_series(small_after_large(api), kSmallDevice);
  expect_clean_exit(run);
  EXPECT_EQ(field(start_line(run), "spill_min_size"), "auto") << run.describe();
  EXPECT_EQ(field(start_line(run), "device_reserve"), bytes(16 * kMiB)) << run.describe();
  EXPECT_EQ(
      decision_reasons(run, api),
      (std::vector<std::string>{"device:spill-room", "device:spill-room", "host:above-spill-size",
                                "device:spill-room", "device:below-spill-size",
                                "device:below-spill-size", "host:reserve-floor",
                                "host:reserve-floor"}))
      << run.describe();
  for (const char* label : {"a1", "a2", "a4", "a5", "a6"}) expect_on_device(run, label);
  LogLine large = expect_on_host(run, "a3", api);
  EXPECT_EQ(field(large, "trigger"), "spill-threshold") << run.describe();
  EXPECT_EQ(field(large, "spill_reason"), "above-spill-size") << run.describe();
  EXPECT_EQ(field(large, "device_free"), bytes(24 * kMiB)) << run.describe();
  EXPECT_EQ(field(large, "device_total"), bytes(64 * kMiB)) << run.describe();
  EXPECT_EQ(field(large, "spill_min_size"), bytes(8 * kMiB)) << run.describe();
  EXPECT_EQ(field(large, "device_reserve"), bytes(16 * kMiB)) << run.describe();
  // 9 MiB left: a 5 MiB request would leave less than half the reserve.
  LogLine small = expect_on_host(run, "a7", api);
  EXPECT_EQ(field(small, "trigger"), "spill-threshold") << run.describe();
  EXPECT_EQ(field(small, "spill_reason"), "reserve-floor") << run.describe();
  EXPECT_EQ(field(small, "device_free"), bytes(9 * kMiB)) << run.describe();
  expect_on_host(run, "a8", api);
  EXPECT_EQ(run.at("a8.result"), api == "cudaMalloc" ? "cudaSuccess" : "CUDA_SUCCESS");
  EXPECT_TRUE(contains(run.out, "cudaGetLastError=cudaSuccess\n")) << run.describe();
  // A request kept inside the reserve says how much the device had.
  std::vector<LogLine> inside =
      lines_where(run.log, {{"event", "decision"}, {"reason", "below-spill-size"}});
  ASSERT_EQ(inside.size(), 2u) << run.describe();
  EXPECT_EQ(field(inside[0], "device_free"), bytes(19 * kMiB));
  EXPECT_EQ(field(inside[0], "level"), "info");
  EXPECT_EQ(field(inside[0], "device"), "0");
  EXPECT_TRUE(events(run.log, "fallback").empty()) << run.describe();
  expect_nothing_live(run, "all.after_free");
}

// EGM_SPILL_MIN_SIZE=0 is the rule before it existed: every request spills
// at the reserve.
TEST_P(SpillMinSizeTest, ZeroSpillsEveryRequestAtTheReserve) {
  const std::string api = GetParam();
  std::map<std::string, std::string> env = kSmallDevice;
  env["EGM_SPILL_MIN_SIZE"] = "0";
  RunResult run = run_series(small_after_large(api), env);
  expect_clean_exit(run);
  EXPECT_EQ(field(start_line(run), "spill_min_size"), "0") << run.describe();
  for (const char* label : {"a1", "a2", "a4"}) expect_on_device(run, label);
  for (const char* label : {"a3", "a5", "a6", "a7", "a8"}) {
    LogLine map = expect_on_host(run, label, api);
    EXPECT_EQ(field(map, "trigger"), "spill-threshold") << label << "\n" << run.describe();
    EXPECT_EQ(field(map, "spill_reason"), "above-spill-size") << run.describe();
  }
  EXPECT_EQ(lines_where(run.log, {{"event", "decision"}, {"placement", "device"}}).size(), 3u)
      << run.describe();
  expect_nothing_live(run, "all.after_free");
}

// An explicit size: with 4 MiB, a 5 MiB request is large and a 3 MiB one small.
TEST_P(SpillMinSizeTest, AnExplicitSizeDecidesWhatIsSmall) {
  const std::string api = GetParam();
  std::map<std::string, std::string> env = kSmallDevice;
  env["EGM_SPILL_MIN_SIZE"] = "4M";
  RunResult run = run_series(
      api + ":20M," + api + ":20M," + api + ":5M," + api + ":5M," + api + ":3M," + api + ":3M",
      env);
  expect_clean_exit(run);
  EXPECT_EQ(decision_reasons(run, api),
            (std::vector<std::string>{"device:spill-room", "device:spill-room", "device:spill-room",
                                      "host:above-spill-size", "device:spill-room",
                                      "device:below-spill-size"}))
      << run.describe();
  EXPECT_EQ(field(expect_on_host(run, "a4", api), "spill_min_size"), bytes(4 * kMiB));
  for (const char* label : {"a3", "a5", "a6"}) expect_on_device(run, label);
  expect_nothing_live(run, "all.after_free");
}

INSTANTIATE_TEST_SUITE_P(RuntimeAndDriver, SpillMinSizeTest,
                         ::testing::Values("cudaMalloc", "cuMemAlloc"));

// auto is derived from the device's total memory: 32 MiB on a 64 GiB device
// (8 MiB, the floor, on the 64 MiB one above), and the auto reserve is 1/128
// of it, at least 1 GiB. The reserve is set to leave 30 MiB of room, so that the second
// 20 MiB request falls inside it.
TEST(SpillMinSizeAutoTest, FollowsTheDevicesTotalMemory) {
  constexpr size_t kTotal = size_t{64} << 30;
  RunResult run = run_series("cudaMalloc:20M,cudaMalloc:20M,cudaMalloc:40M",
                             {{"EGM_MODE", "spill"},
                              {"EGM_DEVICE_RESERVE", bytes(kTotal - 30 * kMiB)},
                              {"FAKE_CUDA_DEVICE_MEMORY", bytes(kTotal)}});
  expect_clean_exit(run);
  EXPECT_EQ(decision_reasons(run, "cudaMalloc"),
            (std::vector<std::string>{"device:spill-room", "device:below-spill-size",
                                      "host:above-spill-size"}))
      << run.describe();
  expect_on_device(run, "a2");
  LogLine map = expect_on_host(run, "a3", "cudaMalloc");
  EXPECT_EQ(field(map, "spill_min_size"), bytes(32 * kMiB)) << run.describe();
  EXPECT_EQ(field(map, "device_total"), bytes(kTotal)) << run.describe();
  expect_nothing_live(run, "all.after_free");
}

TEST(SpillMinSizeAutoTest, TheAutoReserveIsA128thOfTheDevice) {
  constexpr size_t kTotal = size_t{256} << 30;
  RunResult run = run_series("cudaMalloc:3M",
                             {{"EGM_MODE", "spill"}, {"FAKE_CUDA_DEVICE_MEMORY", bytes(kTotal)}});
  expect_clean_exit(run);
  EXPECT_EQ(field(start_line(run), "device_reserve"), "auto") << run.describe();
  LogLine decision = decision_for(run, "cudaMalloc", k3MiB);
  EXPECT_EQ(field(decision, "reason"), "spill-room") << run.describe();
  EXPECT_EQ(field(decision, "device_reserve"), bytes(kTotal / 128)) << run.describe();
  EXPECT_EQ(field(decision, "spill_min_size"), bytes(128 * kMiB)) << run.describe();
  EXPECT_EQ(field(decision, "device_free"), bytes(kTotal)) << run.describe();
}

TEST(SpillMinSizeAutoTest, ABadValueIsOneConfigErrorAndRedirectionIsOff) {
  std::map<std::string, std::string> env = kSmallDevice;
  env["EGM_SPILL_MIN_SIZE"] = "half";
  RunResult run = run_series("cudaMalloc:20M,cudaMalloc:20M,cudaMalloc:20M", env);
  expect_clean_exit(run);
  for (const char* label : {"a1", "a2", "a3"}) expect_on_device(run, label);
  std::vector<LogLine> errors = events(run.log, "config-error");
  ASSERT_EQ(errors.size(), 1u) << run.describe();
  EXPECT_EQ(field(errors[0], "variable"), "EGM_SPILL_MIN_SIZE");
  EXPECT_EQ(field(errors[0], "value"), "half");
  EXPECT_TRUE(contains(field(errors[0], "accepted"), "auto")) << run.describe();
  EXPECT_TRUE(events(run.log, "map").empty()) << run.describe();
  EXPECT_TRUE(events(run.log, "decision").empty()) << run.describe();
}

TEST(SpillTest, OutOfMemoryOfTheRealCallSpillsAndClearsTheRuntimesError) {
  std::map<std::string, std::string> env = kSmallDevice;
  env["FAKE_CUDART_FAIL"] = "cudaMalloc@1";  // room by cudaMemGetInfo, yet the call fails
  RunResult run = run_series("cudaMalloc:3M", env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("a1.result"), "cudaSuccess") << run.describe();
  EXPECT_EQ(field(expect_on_host(run, "a1", "cudaMalloc"), "trigger"), "spill-oom");
  EXPECT_EQ(run.at("calls.cudaMalloc"), "1") << run.describe();
  EXPECT_TRUE(contains(run.out, "cudaGetLastError=cudaSuccess\n")) << run.describe();
  expect_nothing_live(run, "all.after_free");
}

TEST(SpillTest, OutOfMemoryOnDeviceAndHostFailsTheCallWithoutLeaking) {
  std::map<std::string, std::string> env = kSmallDevice;
  env["FAKE_CUDART_FAIL"] = "cudaMalloc@1";
  env["FAKE_CUDA_FAIL"] = "cuMemCreate";
  RunResult run = run_series("cudaMalloc:3M", env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("a1.result"), "cudaErrorMemoryAllocation") << run.describe();
  std::vector<LogLine> fallbacks = events(run.log, "fallback");
  ASSERT_EQ(fallbacks.size(), 1u) << run.describe();
  EXPECT_EQ(field(fallbacks[0], "step"), "cuMemCreate");
  EXPECT_EQ(field(fallbacks[0], "action"), "error");
  EXPECT_TRUE(events(run.log, "map").empty()) << run.describe();
  expect_nothing_live(run, "all.after_alloc");
}

// A failed cudaMalloc leaves its error for cudaGetLastError, as the runtime does.
TEST(SpillTest, AFailedCallLeavesItsErrorForCudaGetLastError) {
  std::map<std::string, std::string> env = kSmallDevice;
  env["FAKE_CUDART_FAIL"] = "cudaMalloc@1";
  env["FAKE_CUDA_FAIL"] = "cuMemCreate";
  RunResult run = run_series("cudaMalloc:3M", env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("a1.result"), "cudaErrorMemoryAllocation") << run.describe();
  EXPECT_TRUE(contains(run.out, "cudaGetLastError=cudaErrorMemoryAllocation\n")) << run.describe();
}

// ---- filters ----

struct SizeFilter {
  const char* variable;
  const char* value;
  size_t requested;
  bool to_host;
};

void PrintTo(const SizeFilter& filter, std::ostream* out) {
  *out << filter.variable << "=" << filter.value << " requested=" << filter.requested;
}

class SizeFilterTest : public ::testing::TestWithParam<SizeFilter> {};

TEST_P(SizeFilterTest, RequestsOutsideTheSizeRangeStayOnTheDevice) {
  const SizeFilter& filter = GetParam();
  RunResult run =
      run_series("cudaMalloc:" + bytes(filter.requested), {{filter.variable, filter.value}});
  expect_clean_exit(run);
  if (filter.to_host) {
    expect_on_host(run, "a1", "cudaMalloc");
    EXPECT_TRUE(events(run.log, "decision").empty()) << run.describe();
  } else {
    expect_on_device(run, "a1");
    LogLine decision = decision_for(run, "cudaMalloc", filter.requested);
    EXPECT_EQ(field(decision, "placement"), "device");
    EXPECT_EQ(field(decision, "reason"), "filter");
    EXPECT_EQ(run.at("a1.after_alloc.cudart_allocations"), "1");
  }
  expect_nothing_live(run, "all.after_free");
}

INSTANTIATE_TEST_SUITE_P(MinAndMax, SizeFilterTest,
                         ::testing::Values(SizeFilter{"EGM_MIN_SIZE", "4M", k3MiB, false},
                                           SizeFilter{"EGM_MIN_SIZE", "4M", k5MiB, true},
                                           SizeFilter{"EGM_MIN_SIZE", "3M", k3MiB, true},
                                           SizeFilter{"EGM_MAX_SIZE", "4M", k5MiB, false},
                                           SizeFilter{"EGM_MAX_SIZE", "4M", k3MiB, true},
                                           SizeFilter{"EGM_MAX_SIZE", "3M", k3MiB, true}));

TEST(ApiFilterTest, OnlyTheListedApisAreRedirected) {
  RunResult run = run_series("cudaMalloc:3M,cudaMallocManaged:5M,cuMemAlloc:3M",
                             {{"EGM_APIS", "cudaMallocManaged"}});
  expect_clean_exit(run);
  expect_on_device(run, "a1");
  expect_on_host(run, "a2", "cudaMallocManaged");
  expect_on_device(run, "a3");
  EXPECT_EQ(field(decision_for(run, "cudaMalloc", k3MiB), "reason"), "filter");
  EXPECT_EQ(field(decision_for(run, "cuMemAlloc", k3MiB), "reason"), "filter");
  EXPECT_EQ(run.at("all.after_alloc.cudart_allocations"), "1");
  EXPECT_EQ(run.at("all.after_alloc.cuda_allocations"), "1");
  expect_nothing_live(run, "all.after_free");
}

TEST(DeviceFilterTest, OnlyTheListedGpusAreRedirected) {
  RunResult run = run_series("cudaMalloc:3M,device:1,cudaMalloc:5M",
                             {{"EGM_DEVICES", "1"}, {"FAKE_CUDA_DEVICE_COUNT", "2"}});
  expect_clean_exit(run);
  expect_on_device(run, "a1");
  LogLine decision = decision_for(run, "cudaMalloc", k3MiB);
  EXPECT_EQ(field(decision, "device"), "0");
  EXPECT_EQ(field(decision, "reason"), "device-filter");
  EXPECT_EQ(field(expect_on_host(run, "a2", "cudaMalloc"), "device"), "1") << run.describe();
  expect_nothing_live(run, "all.after_free");
}

// ---- per-node caps and EGM_FALLBACK ----

const char* const kThreeGranules = "cudaMalloc:2M,cudaMalloc:2M,cudaMalloc:2M";

LogLine the_fallback(const RunResult& run) {
  std::vector<LogLine> fallbacks = events(run.log, "fallback");
  EXPECT_EQ(fallbacks.size(), 1u) << run.describe();
  return fallbacks.empty() ? LogLine{} : fallbacks[0];
}

TEST(NodeLimitTest, OverTheCapTheRealCallServesTheRequest) {
  RunResult run =
      run_series(kThreeGranules, {{"EGM_NODE_LIMIT", "0:4M"}, {"EGM_FALLBACK", "device"}});
  expect_clean_exit(run);
  expect_on_host(run, "a1", "cudaMalloc");
  expect_on_host(run, "a2", "cudaMalloc");
  expect_on_device(run, "a3");
  LogLine fallback = the_fallback(run);
  EXPECT_EQ(field(fallback, "step"), "node-limit");
  EXPECT_EQ(field(fallback, "action"), "real-call");
  EXPECT_EQ(field(fallback, "node"), "0");
  EXPECT_EQ(field(fallback, "requested"), bytes(k2MiB));
  EXPECT_EQ(field(fallback, "error"), "EGM_NODE_LIMIT reached");
  EXPECT_EQ(run.at("a3.result"), "cudaSuccess");
  EXPECT_EQ(run.at("all.after_alloc.cudart_allocations"), "1");
  expect_nothing_live(run, "all.after_free");
}

TEST(NodeLimitTest, WithFallbackErrorTheCallFailsAndNothingLeaks) {
  RunResult run =
      run_series(kThreeGranules, {{"EGM_NODE_LIMIT", "0:4M"}, {"EGM_FALLBACK", "error"}});
  expect_clean_exit(run);
  expect_on_host(run, "a1", "cudaMalloc");
  expect_on_host(run, "a2", "cudaMalloc");
  EXPECT_EQ(run.at("a3.result"), "cudaErrorMemoryAllocation") << run.describe();
  EXPECT_EQ(field(the_fallback(run), "action"), "error");
  // The only real call is the shim's own impossible request that makes the
  // runtime record the error for cudaGetLastError; no device memory is used.
  EXPECT_EQ(run.at("all.after_alloc.cuda_mappings"), "2");
  EXPECT_EQ(run.at("all.after_alloc.cudart_allocations"), "0") << run.describe();
  EXPECT_TRUE(contains(run.out, "cudaGetLastError=cudaErrorMemoryAllocation")) << run.describe();
  expect_nothing_live(run, "all.after_free");
  std::vector<LogLine> summaries = events(run.log, "summary");
  ASSERT_EQ(summaries.size(), 1u) << run.describe();
  EXPECT_EQ(field(summaries[0], "live"), "0");
  EXPECT_EQ(field(summaries[0], "maps"), "2");
}

TEST(NextNodeTest, WithOneNodeTheNextNodeListIsEmptyAndTheRealCallServes) {
  RunResult run = run_series("cudaMalloc:3M,cudaMalloc:3M",
                             {{"EGM_FALLBACK", "next-node"}, {"FAKE_CUDA_FAIL", "cuMemCreate@1"}});
  expect_clean_exit(run);
  LogLine fallback = the_fallback(run);
  EXPECT_EQ(field(fallback, "step"), "cuMemCreate");
  EXPECT_EQ(field(fallback, "node"), "0");
  EXPECT_EQ(field(fallback, "action"), "real-call");
  expect_on_device(run, "a1");
  expect_on_host(run, "a2", "cudaMalloc");
  expect_nothing_live(run, "all.after_free");
}

// ---- NUMA policies (the shim checks nodes against the host's real topology) ----

bool host_has_node_one() {
  struct stat info;
  return stat("/sys/devices/system/node/node1", &info) == 0;
}

class OtherNodePolicyTest : public ::testing::TestWithParam<const char*> {};

TEST_P(OtherNodePolicyTest, IsRejectedOnAOneNodeHost) {
  if (host_has_node_one()) GTEST_SKIP() << "this host has a NUMA node 1";
  RunResult run =
      run_series("cudaMalloc:3M", {{"EGM_NUMA_POLICY", GetParam()}, {"FAKE_CUDA_NUMA_NODES", "2"}});
  expect_clean_exit(run);
  expect_on_device(run, "a1");
  std::vector<LogLine> errors = events(run.log, "config-error");
  ASSERT_EQ(errors.size(), 1u) << run.describe();
  EXPECT_EQ(field(errors[0], "variable"), "EGM_NUMA_POLICY");
  EXPECT_EQ(field(errors[0], "value"), GetParam());
  EXPECT_TRUE(contains(field(errors[0], "message"),
                       "node 1 does not exist or has no memory (nodes with memory: 0)"))
      << field(errors[0], "message");
  EXPECT_TRUE(contains(field(errors[0], "message"), "redirection is off"));
  EXPECT_TRUE(contains(run.err, "EGM_NUMA_POLICY")) << run.describe();
}

INSTANTIATE_TEST_SUITE_P(Policies, OtherNodePolicyTest,
                         ::testing::Values("bind:1", "interleave:0-1", "weighted:0=3,1=1",
                                           "preferred:1"));

struct NodeZeroPolicy {
  const char* policy;
  const char* reason;
};

void PrintTo(const NodeZeroPolicy& policy, std::ostream* out) { *out << policy.policy; }

class NodeZeroPolicyTest : public ::testing::TestWithParam<NodeZeroPolicy> {};

TEST_P(NodeZeroPolicyTest, PlacesOnNodeZeroAndSaysWhy) {
  RunResult run =
      run_series("cudaMalloc:3M,cudaMallocManaged:5M", {{"EGM_NUMA_POLICY", GetParam().policy}});
  expect_clean_exit(run);
  EXPECT_EQ(field(start_line(run), "numa_policy"), GetParam().policy);
  for (const char* label : {"a1", "a2"}) {
    LogLine map =
        expect_on_host(run, label, label == std::string("a1") ? "cudaMalloc" : "cudaMallocManaged");
    EXPECT_EQ(field(map, "reason"), GetParam().reason) << run.describe();
  }
  EXPECT_TRUE(events(run.log, "config-error").empty()) << run.describe();
  expect_nothing_live(run, "all.after_free");
}

INSTANTIATE_TEST_SUITE_P(Policies, NodeZeroPolicyTest,
                         ::testing::Values(NodeZeroPolicy{"nearest", "nearest"},
                                           NodeZeroPolicy{"bind:0", "bind"},
                                           NodeZeroPolicy{"interleave:0", "interleave"},
                                           NodeZeroPolicy{"weighted:0=3", "weighted"},
                                           NodeZeroPolicy{"preferred:0", "preferred"},
                                           NodeZeroPolicy{"most-free", "most-free"}));

TEST(NearestPolicyTest, AGpuNearANodeTheHostLacksGetsTheLowestNode) {
  if (host_has_node_one()) GTEST_SKIP() << "this host has a NUMA node 1";
  RunResult run =
      run_series("cudaMalloc:3M", {{"FAKE_CUDA_NUMA_NODES", "2"}, {"FAKE_CUDA_HOST_NUMA_ID", "1"}});
  expect_clean_exit(run);
  EXPECT_EQ(field(expect_on_host(run, "a1", "cudaMalloc"), "reason"), "lowest-node");
}

// ---- EGM_CONFIG, unknown names, EGM_STRICT ----

std::string config_file(const std::string& text) {
  std::string path = preload::make_temp_dir() + "/egm.conf";
  preload::write_file(path, text);
  return path;
}

TEST(ConfigFileTest, TheFileIsReadAndTheEnvironmentOverridesIt) {
  std::string path = config_file("# egm settings\nEGM_MODE=off\n\nEGM_MIN_SIZE=4M\n");
  RunResult run = run_series("cudaMalloc:3M,cudaMallocManaged:5M",
                             {{"EGM_CONFIG", path}, {"EGM_MODE", "always"}});
  expect_clean_exit(run);
  LogLine start = start_line(run);
  EXPECT_EQ(field(start, "mode"), "always");
  EXPECT_EQ(field(start, "min_size"), bytes(4 * kMiB));
  expect_on_device(run, "a1");
  EXPECT_EQ(field(decision_for(run, "cudaMalloc", k3MiB), "reason"), "filter");
  expect_on_host(run, "a2", "cudaMallocManaged");
  EXPECT_TRUE(events(run.log, "config-error").empty()) << run.describe();
}

TEST(ConfigFileTest, ABadLineNamesTheFileAndLineAndTurnsRedirectionOff) {
  std::string path = config_file("EGM_MIN_SIZE=4M\nEGM_FALLBACK=sideways\n");
  RunResult run = run_series("cudaMallocManaged:5M", {{"EGM_CONFIG", path}});
  expect_clean_exit(run);
  expect_on_device(run, "a1");
  std::vector<LogLine> errors = events(run.log, "config-error");
  ASSERT_EQ(errors.size(), 1u) << run.describe();
  EXPECT_EQ(field(errors[0], "variable"), "EGM_FALLBACK");
  EXPECT_TRUE(contains(field(errors[0], "message"), path + ":2")) << field(errors[0], "message");
}

TEST(UnknownVariableTest, IsWarnedAboutWithTheClosestNameAndIgnored) {
  RunResult run = run_series("cudaMalloc:3M", {{"EGM_MIN_SIZ", "4M"}});
  expect_clean_exit(run);
  std::vector<LogLine> notices = events(run.log, "notice");
  ASSERT_EQ(notices.size(), 1u) << run.describe();
  EXPECT_EQ(field(notices[0], "level"), "warn");
  EXPECT_TRUE(contains(field(notices[0], "message"), "unknown variable EGM_MIN_SIZ"))
      << field(notices[0], "message");
  EXPECT_TRUE(contains(field(notices[0], "message"), "did you mean EGM_MIN_SIZE?"));
  EXPECT_TRUE(contains(run.err, "EGM_MIN_SIZ")) << run.describe();
  expect_on_host(run, "a1", "cudaMalloc");  // the misspelt filter does not apply
}

struct BadValue {
  const char* variable;
  const char* value;
};

void PrintTo(const BadValue& bad, std::ostream* out) { *out << bad.variable << "=" << bad.value; }

class BadValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(BadValueTest, TurnsRedirectionOffAndSaysWhy) {
  RunResult run = run_series("cudaMalloc:3M", {{GetParam().variable, GetParam().value}});
  expect_clean_exit(run);
  expect_on_device(run, "a1");
  std::vector<LogLine> errors = events(run.log, "config-error");
  ASSERT_EQ(errors.size(), 1u) << run.describe();
  EXPECT_EQ(field(errors[0], "variable"), GetParam().variable);
  EXPECT_EQ(field(errors[0], "value"), GetParam().value);
  EXPECT_NE(field(errors[0], "accepted"), "") << run.describe();
}

TEST_P(BadValueTest, WithStrictStopsTheProcessBeforeMain) {
  RunResult run =
      run_series("cudaMalloc:3M", {{GetParam().variable, GetParam().value}, {"EGM_STRICT", "1"}});
  ASSERT_GT(run.pid, 0);
  EXPECT_EQ(run.exit_code, 1) << run.describe();
  EXPECT_EQ(run.out, "") << "main ran\n" << run.describe();
  EXPECT_TRUE(contains(run.err, GetParam().variable)) << run.describe();
  EXPECT_TRUE(contains(run.err, "EGM_STRICT=1: exiting")) << run.describe();
}

INSTANTIATE_TEST_SUITE_P(
    Options, BadValueTest,
    ::testing::Values(BadValue{"EGM_FALLBACK", "sideways"}, BadValue{"EGM_MIN_SIZE", "lots"},
                      BadValue{"EGM_NODE_LIMIT", "0"}, BadValue{"EGM_APIS", "cudaMallocHost"},
                      BadValue{"EGM_DEVICES", "first"}, BadValue{"EGM_MEMINFO", "host"},
                      BadValue{"EGM_HOOK_DRIVER", "maybe"}, BadValue{"EGM_LEDGER", "shm"}));

TEST(StrictTest, AValidConfigurationRunsNormally) {
  RunResult run = run_series("cudaMalloc:3M", {{"EGM_STRICT", "1"}, {"EGM_MIN_SIZE", "1M"}});
  expect_clean_exit(run);
  expect_on_host(run, "a1", "cudaMalloc");
}

}  // namespace
