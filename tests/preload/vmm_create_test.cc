// LD_PRELOAD tests of cuMemCreate interception: a program's own VMM handles
// on the device (PyTorch's expandable segments, vLLM) placed on a host node
// in always mode and in spill mode when the device is short, the handle
// calls that must answer for them (properties, retain, release), and the
// cases that must stay untouched (host locations, filters, a granularity the
// node cannot meet, a host create that fails).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/preload/harness.h"

namespace {

using preload::contains;
using preload::events;
using preload::expect_clean_exit;
using preload::field;
using preload::kMiB;
using preload::lines_where;
using preload::LogLine;
using preload::RunOptions;
using preload::RunResult;

using Env = std::map<std::string, std::string>;

RunResult run_vmm(Env env, bool preload = true) {
  RunOptions options;
  options.program = "tests/preload/vmm_create_program";
  options.args = {"vmm"};
  options.preload = preload;
  options.env = std::move(env);
  return preload::run(options);
}

std::vector<LogLine> create_maps(const RunResult& run) {
  return lines_where(events(run.log, "map"), {{"api", "cuMemCreate"}});
}

std::vector<LogLine> create_unmaps(const RunResult& run) {
  return lines_where(events(run.log, "unmap"), {{"api", "cuMemCreate"}});
}

// What the program sees is the same with and without the shim.
void expect_same_as_without_shim(const RunResult& run, const Env& env) {
  RunResult plain = run_vmm(env, /*preload=*/false);
  expect_clean_exit(plain);
  EXPECT_EQ(run.out, plain.out) << run.describe() << "\nwithout the shim:\n" << plain.describe();
}

TEST(VmmCreateTest, AlwaysModePlacesDeviceHandlesOnTheHostNode) {
  Env env{{"VMM_SIZES", "8,4"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "0") << run.describe();
  EXPECT_EQ(run.at("s1.on_device"), "0") << run.describe();
  EXPECT_TRUE(contains(run.out, "s0 pattern_ok=1")) << run.describe();
  EXPECT_TRUE(contains(run.out, "s1 pattern_ok=1")) << run.describe();
  // The program's own location comes back (EGM_POINTER_ATTRIBUTES=requested).
  EXPECT_TRUE(contains(run.out, "s0 properties=CUDA_SUCCESS location=device:0 handle_types=1"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "s0 retain=CUDA_SUCCESS same=1")) << run.describe();
  std::vector<LogLine> maps = create_maps(run);
  ASSERT_EQ(maps.size(), 2u) << run.describe();
  EXPECT_EQ(field(maps[0], "requested"), std::to_string(8 * kMiB));
  EXPECT_EQ(field(maps[0], "node"), "0");
  EXPECT_EQ(field(maps[0], "device"), "0");
  EXPECT_EQ(field(maps[0], "handle"), run.at("s0.handle")) << run.describe();
  // The retain's release is not the program's last: one unmap per handle, at the end.
  std::vector<LogLine> unmaps = create_unmaps(run);
  ASSERT_EQ(unmaps.size(), 2u) << run.describe();
  EXPECT_EQ(field(unmaps[0], "via"), "cuMemRelease");
  EXPECT_EQ(field(unmaps[0], "id"), field(maps[0], "id"));
  EXPECT_EQ(run.at("end.memory_objects"), "0") << run.describe();
  std::vector<LogLine> summary = events(run.log, "summary");
  ASSERT_EQ(summary.size(), 1u) << run.describe();
  EXPECT_EQ(field(summary[0], "maps"), "2");
  EXPECT_EQ(field(summary[0], "unmaps"), "2");
  EXPECT_EQ(field(summary[0], "live"), "0");
  std::vector<LogLine> nodes = events(run.log, "node-summary");
  ASSERT_EQ(nodes.size(), 1u) << run.describe();
  EXPECT_EQ(field(nodes[0], "peak_bytes"), std::to_string(12 * kMiB));
  EXPECT_EQ(field(nodes[0], "current_bytes"), "0");
  expect_same_as_without_shim(run, env);
}

TEST(VmmCreateTest, PhysicalAttributesAnswerTheHostNode) {
  RunResult run = run_vmm({{"EGM_POINTER_ATTRIBUTES", "physical"}});
  expect_clean_exit(run);
  EXPECT_TRUE(contains(run.out, "s0 properties=CUDA_SUCCESS location=host_numa:0"))
      << run.describe();
}

TEST(VmmCreateTest, ThroughCuGetProcAddress) {
  Env env{{"VMM_VIA_PROC", "1"}, {"VMM_SIZES", "6"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "0") << run.describe();
  EXPECT_EQ(create_maps(run).size(), 1u) << run.describe();
  EXPECT_EQ(create_unmaps(run).size(), 1u) << run.describe();
  EXPECT_TRUE(contains(run.out, "s0 properties=CUDA_SUCCESS location=device:0")) << run.describe();
  expect_same_as_without_shim(run, env);
}

// cuMemRelease before cuMemUnmap is legal: the memory lives until the unmap.
TEST(VmmCreateTest, ReleaseBeforeUnmapKeepsTheMemory) {
  Env env{{"VMM_RELEASE_FIRST", "1"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  EXPECT_TRUE(contains(run.out, "s0 early_release=CUDA_SUCCESS")) << run.describe();
  EXPECT_TRUE(contains(run.out, "s0 pattern_ok=1")) << run.describe();
  EXPECT_EQ(create_unmaps(run).size(), 1u) << run.describe();
  EXPECT_EQ(run.at("end.memory_objects"), "0") << run.describe();
  expect_same_as_without_shim(run, env);
}

TEST(VmmCreateTest, SpillModeUsesTheDeviceUntilItIsShort) {
  Env env{{"EGM_MODE", "spill"},
          {"FAKE_CUDA_DEVICE_MEMORY", std::to_string(40 * kMiB)},
          {"EGM_DEVICE_RESERVE", "0"},
          {"EGM_SPILL_MIN_SIZE", "0"},
          {"VMM_SIZES", "16,16,16,16"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "1") << run.describe();
  EXPECT_EQ(run.at("s1.on_device"), "1") << run.describe();
  EXPECT_EQ(run.at("s2.on_device"), "0") << run.describe();
  EXPECT_EQ(run.at("s3.on_device"), "0") << run.describe();
  for (const char* line : {"s0 pattern_ok=1", "s2 pattern_ok=1", "s3 pattern_ok=1"}) {
    EXPECT_TRUE(contains(run.out, line)) << line << "\n" << run.describe();
  }
  std::vector<LogLine> maps = create_maps(run);
  ASSERT_EQ(maps.size(), 2u) << run.describe();
  EXPECT_TRUE(contains(field(maps[0], "trigger"), "spill-threshold")) << run.describe();
  std::vector<LogLine> decisions = lines_where(events(run.log, "decision"),
                                               {{"api", "cuMemCreate"}, {"placement", "device"}});
  EXPECT_EQ(decisions.size(), 2u) << run.describe();
  EXPECT_EQ(run.at("end.device_bytes"), "0") << run.describe();
  // Without the shim the third create runs out of device memory.
  RunResult plain = run_vmm(env, /*preload=*/false);
  EXPECT_TRUE(contains(plain.out, "s2 create=CUDA_ERROR_OUT_OF_MEMORY")) << plain.describe();
}

TEST(VmmCreateTest, HostLocatedCreatesPassUntouched) {
  Env env{{"VMM_LOCATION", "host_numa"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  EXPECT_TRUE(create_maps(run).empty()) << run.describe();
  EXPECT_TRUE(contains(run.out, "s0 properties=CUDA_SUCCESS location=host_numa:0"))
      << run.describe();
  expect_same_as_without_shim(run, env);
}

TEST(VmmCreateTest, ApisWithoutCuMemCreateLeaveItAlone) {
  RunResult run = run_vmm({{"EGM_APIS", "cudaMalloc,cuMemAlloc"}});
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "1") << run.describe();
  EXPECT_TRUE(create_maps(run).empty()) << run.describe();
  EXPECT_EQ(lines_where(events(run.log, "decision"), {{"api", "cuMemCreate"}, {"reason", "filter"}})
                .size(),
            1u)
      << run.describe();
}

// The node's granularity is coarser than the device's the program rounds
// to: the handle stays on the device, with a decision line.
TEST(VmmCreateTest, CoarserHostGranularityStaysOnTheDevice) {
  Env env{{"FAKE_CUDA_HOST_GRANULARITY", std::to_string(4 * kMiB)}, {"VMM_SIZES", "6"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "1") << run.describe();
  EXPECT_TRUE(create_maps(run).empty()) << run.describe();
  std::vector<LogLine> decisions =
      lines_where(events(run.log, "decision"), {{"reason", "host-granularity"}});
  ASSERT_EQ(decisions.size(), 1u) << run.describe();
  EXPECT_EQ(field(decisions[0], "host_granularity"), std::to_string(4 * kMiB));
  expect_same_as_without_shim(run, env);
}

// A finer node granularity divides the device's: redirected.
TEST(VmmCreateTest, FinerHostGranularityIsRedirected) {
  RunResult run = run_vmm({{"FAKE_CUDA_HOST_GRANULARITY", std::to_string(64 * 1024)}});
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "0") << run.describe();
}

TEST(VmmCreateTest, FailedHostCreateFallsBackToTheDevice) {
  Env env{{"FAKE_CUDA_FAIL", "cuMemCreate@1"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "1") << run.describe();
  std::vector<LogLine> fallbacks = lines_where(events(run.log, "fallback"),
                                               {{"api", "cuMemCreate"}, {"step", "create"}});
  ASSERT_EQ(fallbacks.size(), 1u) << run.describe();
  EXPECT_EQ(field(fallbacks[0], "action"), "real-call");
  EXPECT_TRUE(contains(run.out, "s0 pattern_ok=1")) << run.describe();
}

TEST(VmmCreateTest, FailedHostCreateWithFallbackErrorFails) {
  RunResult run = run_vmm({{"FAKE_CUDA_FAIL", "cuMemCreate@1"}, {"EGM_FALLBACK", "error"}});
  EXPECT_TRUE(contains(run.out, "s0 create=CUDA_ERROR_OUT_OF_MEMORY")) << run.describe();
  EXPECT_EQ(run.report.count("s0.on_device"), 0u) << run.describe();
}

// A size the device's granularity does not divide: CUDA's own error, with
// and without the shim, whatever the node's granularity and the fallback.
TEST(VmmCreateTest, SizeOffTheDeviceGranularityGetsCudasError) {
  for (const Env& env : {Env{{"VMM_SIZES", "1"}, {"FAKE_CUDA_HOST_GRANULARITY", "1048576"}},
                         Env{{"VMM_SIZES", "3"}, {"EGM_FALLBACK", "error"}}}) {
    RunResult run = run_vmm(env);
    EXPECT_TRUE(contains(run.out, "s0 create=CUDA_ERROR_INVALID_VALUE")) << run.describe();
    EXPECT_TRUE(create_maps(run).empty()) << run.describe();
    expect_same_as_without_shim(run, env);
  }
}

TEST(VmmCreateTest, NodeLimitKeepsHandlesOnTheDevice) {
  RunResult run = run_vmm({{"EGM_NODE_LIMIT", "0:10M"}, {"VMM_SIZES", "8,8"}});
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "0") << run.describe();
  EXPECT_EQ(run.at("s1.on_device"), "1") << run.describe();
  EXPECT_EQ(lines_where(events(run.log, "fallback"), {{"step", "node-limit"}}).size(), 1u)
      << run.describe();
}

// A node that refuses GPUDirect RDMA memory gets the handle without it; the
// program still reads back the properties it asked for.
TEST(VmmCreateTest, RdmaFlagIsDroppedWhenTheNodeRefusesIt) {
  Env env{{"VMM_RDMA", "1"}, {"FAKE_CUDA_HOST_NO_RDMA", "1"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "0") << run.describe();
  std::vector<LogLine> maps = create_maps(run);
  ASSERT_EQ(maps.size(), 1u) << run.describe();
  EXPECT_EQ(field(maps[0], "dropped"), "gpuDirectRDMACapable") << run.describe();
  EXPECT_TRUE(contains(run.out, "location=device:0 handle_types=1 rdma=1")) << run.describe();
  expect_same_as_without_shim(run, env);
}

// Once the node refused the flag, later handles drop it before the first
// try: one refused create in all, not one per handle.
TEST(VmmCreateTest, RdmaRefusalIsRememberedPerNode) {
  Env env{{"VMM_RDMA", "1"}, {"FAKE_CUDA_HOST_NO_RDMA", "1"}, {"VMM_SIZES", "8,8,8"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  std::vector<LogLine> maps = create_maps(run);
  ASSERT_EQ(maps.size(), 3u) << run.describe();
  for (const LogLine& map : maps) {
    EXPECT_EQ(field(map, "dropped"), "gpuDirectRDMACapable") << run.describe();
  }
  EXPECT_EQ(run.at("end.create_calls"), "4") << run.describe();
  expect_same_as_without_shim(run, env);
}

// A communication library's own buffers (NCCL's, made with cuMemCreate and
// shared with peer GPUs over NVLink) stay on the device; the same request
// from the program itself is redirected.
TEST(VmmCreateTest, CommunicationLibraryHandlesStayOnTheDevice) {
  Env env{{"VMM_CREATE_LIBRARY", preload::runfile("tests/preload/libnccl_stand_in.so")},
          {"EGM_LOG_LEVEL", "debug"}};
  RunResult run = run_vmm(env);
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "1") << run.describe();
  EXPECT_TRUE(create_maps(run).empty()) << run.describe();
  EXPECT_EQ(lines_where(events(run.log, "decision"), {{"api", "cuMemCreate"},
                                                      {"reason", "communication-library"}})
                .size(),
            1u)
      << run.describe();
  expect_same_as_without_shim(run, env);
  RunResult own = run_vmm({});
  EXPECT_EQ(own.at("s0.on_device"), "0") << own.describe();
}

// A device the driver does not have gets the driver's error, not a host handle.
TEST(VmmCreateTest, InvalidDeviceGetsTheRealError) {
  Env env{{"VMM_DEVICE", "5"}};
  RunResult run = run_vmm(env);
  EXPECT_TRUE(create_maps(run).empty()) << run.describe();
  EXPECT_FALSE(contains(run.out, "s0 create=CUDA_SUCCESS")) << run.describe();
  expect_same_as_without_shim(run, env);
}

TEST(VmmCreateTest, ModeOffPassesThrough) {
  RunResult run = run_vmm({{"EGM_MODE", "off"}});
  expect_clean_exit(run);
  EXPECT_EQ(run.at("s0.on_device"), "1") << run.describe();
  EXPECT_TRUE(create_maps(run).empty()) << run.describe();
}

}  // namespace
