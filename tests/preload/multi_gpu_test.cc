// libegm.so with two GPUs (the fakes with FAKE_CUDA_DEVICE_COUNT=2): each
// GPU's requests are placed for that GPU and only it gets access, EGM_DEVICES
// filters GPUs, enabling peer access (runtime or driver) grants the accessor
// every chunk of the owner (in use or cached) and every later one at
// creation, EGM_PEER_ACCESS=all grants every GPU at creation, and the exit
// summary has a line per GPU. multi_gpu_program runs the scenarios.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tests/preload/harness.h"

namespace {

using preload::events;
using preload::field;
using preload::LogLine;
using preload::RunResult;

// Both fake GPUs report host node 0: the only node this machine has, and
// the shim checks nodes against libnuma.
std::map<std::string, std::string> two_gpus(std::map<std::string, std::string> env = {}) {
  env["FAKE_CUDA_DEVICE_COUNT"] = "2";
  env["FAKE_CUDA_HOST_NUMA_IDS"] = "0,0";
  return env;
}

// Frees keep chunks mapped in the pool (the harness default unmaps at once).
std::map<std::string, std::string> two_gpus_with_pool(std::map<std::string, std::string> env = {}) {
  env["EGM_POOL_LIMIT"] = "64M";
  return two_gpus(std::move(env));
}

RunResult run_program(const std::string& scenario, std::map<std::string, std::string> env) {
  preload::RunOptions options;
  options.program = "tests/preload/multi_gpu_program";
  options.args = {scenario};
  options.env = std::move(env);
  return preload::run(options);
}

// The map line of the allocation `label`.
LogLine map_line_of(const RunResult& run, const std::string& label) {
  std::vector<LogLine> maps = preload::lines_about(run, "map", label);
  EXPECT_EQ(maps.size(), 1u) << label << "\n" << run.describe();
  return maps.empty() ? LogLine{} : maps.front();
}

// The newest map line at the address of `label`: a chunk reused from the
// pool has the address of the allocation that cached it.
LogLine last_map_line_of(const RunResult& run, const std::string& label) {
  std::vector<LogLine> maps = preload::lines_about(run, "map", label);
  EXPECT_FALSE(maps.empty()) << label << "\n" << run.describe();
  return maps.empty() ? LogLine{} : maps.back();
}

// LABEL.access0, LABEL.access1 as the fake driver recorded them.
void expect_access(const RunResult& run, const std::string& label, const std::string& device0,
                   const std::string& device1) {
  EXPECT_EQ(run.at(label + ".access0"), device0) << label << "\n" << run.describe();
  EXPECT_EQ(run.at(label + ".access1"), device1) << label << "\n" << run.describe();
}

void expect_peer_access_logged(const RunResult& run) {
  std::vector<LogLine> lines = events(run.log, "peer-access");
  ASSERT_EQ(lines.size(), 1u) << run.describe();
  EXPECT_EQ(field(lines[0], "device"), "1") << run.describe();
  EXPECT_EQ(field(lines[0], "peer"), "0") << run.describe();
  EXPECT_EQ(field(lines[0], "result"), "ok") << run.describe();
  EXPECT_EQ(field(lines[0], "level"), "info") << run.describe();
}

void expect_nothing_left_mapped(const RunResult& run, const std::string& prefix) {
  EXPECT_EQ(run.at(prefix + ".cuda_mappings"), "0") << run.describe();
  EXPECT_EQ(run.at(prefix + ".cuda_handles"), "0") << run.describe();
  EXPECT_EQ(run.at(prefix + ".cudart_allocations"), "0") << run.describe();
}

TEST(MultiGpuTest, AnAllocationOnDevice1IsDevice1sOnly) {
  RunResult run = run_program("alloc-on-1", two_gpus());
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.at("a.redirected"), "1") << run.describe();
  expect_access(run, "a", "0", "1");
  EXPECT_EQ(run.at("a.host"), "1") << run.describe();
  LogLine map = map_line_of(run, "a");
  EXPECT_EQ(field(map, "device"), "1");
  EXPECT_EQ(field(map, "node"), "0");
  EXPECT_TRUE(preload::contains(run.out, "a pattern_ok=1")) << run.describe();
  expect_nothing_left_mapped(run, "after_free");
}

TEST(MultiGpuTest, EgmDevicesLeavesTheOtherGpuOnTheDevice) {
  RunResult run = run_program("both-devices", two_gpus({{"EGM_DEVICES", "1"}}));
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.at("a.redirected"), "0") << run.describe();
  EXPECT_EQ(run.at("b.redirected"), "1") << run.describe();
  EXPECT_EQ(run.at("c.redirected"), "1") << run.describe();
  std::vector<LogLine> filtered =
      preload::lines_where(run.log, {{"event", "decision"}, {"reason", "device-filter"}});
  ASSERT_EQ(filtered.size(), 1u) << run.describe();
  EXPECT_EQ(field(filtered[0], "device"), "0");
  for (const LogLine& map : events(run.log, "map")) EXPECT_EQ(field(map, "device"), "1");
  expect_nothing_left_mapped(run, "after_free");
}

TEST(MultiGpuTest, EnablingPeerAccessGrantsLiveAndCachedChunksAndLaterOnes) {
  RunResult run = run_program("enable-runtime", two_gpus_with_pool());
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "cudaDeviceEnablePeerAccess(1)=cudaSuccess\n"))
      << run.describe();
  EXPECT_EQ(run.at("peer_enabled"), "1");
  expect_access(run, "live", "0", "1");
  expect_access(run, "cached", "0", "1");
  EXPECT_EQ(run.at("cached.still_mapped"), "1") << "the pool must keep the freed chunk";
  expect_access(run, "live.after_enable", "1", "1");
  expect_access(run, "cached.after_enable", "1", "1");
  EXPECT_EQ(run.at("live.after_enable.host"), "1") << "a peer grant must keep the host's access";
  expect_peer_access_logged(run);
}

// The grant is part of the chunk's creation: one cuMemSetAccess, not a
// creation followed by a separate grant.
TEST(MultiGpuTest, AfterEnablingPeerAccessNewChunksAreCreatedWithThePeersAccess) {
  RunResult run = run_program("enable-runtime", two_gpus_with_pool());
  preload::expect_clean_exit(run);
  EXPECT_EQ(field(map_line_of(run, "later"), "source"), "fresh");
  expect_access(run, "later", "1", "1");
  EXPECT_EQ(run.at("later.set_access_calls"), "1") << run.describe();
  EXPECT_EQ(field(last_map_line_of(run, "reused"), "source"), "pool");
  expect_access(run, "reused", "1", "1");
}

TEST(MultiGpuTest, PeerAccessThroughTheDriverGrantsLikeTheRuntime) {
  RunResult run = run_program("enable-driver", two_gpus_with_pool());
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "cuCtxEnablePeerAccess(ctx1)=CUDA_SUCCESS\n"))
      << run.describe();
  EXPECT_EQ(run.at("peer_enabled"), "1");
  EXPECT_EQ(run.at("current_is_ctx0_after_enable"), "1") << "the shim must restore the context";
  EXPECT_EQ(field(map_line_of(run, "live"), "device"), "1");
  expect_access(run, "live", "0", "1");
  expect_access(run, "live.after_enable", "1", "1");
  expect_access(run, "cached.after_enable", "1", "1");
  expect_peer_access_logged(run);
  expect_access(run, "later", "1", "1");
  EXPECT_EQ(run.at("later.set_access_calls"), "1") << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "live cuMemFree=CUDA_SUCCESS\n")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "later cuMemFree=CUDA_SUCCESS\n")) << run.describe();
}

TEST(MultiGpuTest, PeerAccessAllGrantsEveryGpuAtCreation) {
  RunResult run = run_program("both-devices", two_gpus({{"EGM_PEER_ACCESS", "all"}}));
  preload::expect_clean_exit(run);
  for (const char* label : {"a", "b", "c"}) {
    expect_access(run, label, "1", "1");
    EXPECT_EQ(run.at(std::string(label) + ".set_access_calls"), "1") << label << run.describe();
  }
  EXPECT_TRUE(events(run.log, "peer-access").empty()) << run.describe();
  expect_nothing_left_mapped(run, "after_free");
}

TEST(MultiGpuTest, WithoutPeerAccessEachGpuGetsOnlyItsOwnMemory) {
  RunResult run = run_program("both-devices", two_gpus());
  preload::expect_clean_exit(run);
  expect_access(run, "a", "1", "0");
  expect_access(run, "b", "0", "1");
  expect_access(run, "c", "0", "1");
}

TEST(MultiGpuTest, TheExitSummaryHasALinePerDevice) {
  RunResult run = run_program("both-devices", two_gpus());
  preload::expect_clean_exit(run);
  std::vector<LogLine> summaries = events(run.log, "device-summary");
  ASSERT_EQ(summaries.size(), 2u) << run.describe();
  std::map<std::string, LogLine> by_device;
  for (const LogLine& line : summaries) by_device[field(line, "device")] = line;
  ASSERT_EQ(by_device.count("0") + by_device.count("1"), 2u) << run.describe();
  EXPECT_EQ(field(by_device["0"], "maps"), "1");
  EXPECT_EQ(field(by_device["1"], "maps"), "2");
  EXPECT_EQ(field(by_device["0"], "peak_bytes"), std::to_string(4 * preload::kMiB));
  EXPECT_EQ(field(by_device["1"], "peak_bytes"), std::to_string(12 * preload::kMiB));
  EXPECT_EQ(field(by_device["0"], "current_bytes"), "0");
  EXPECT_EQ(field(by_device["1"], "current_bytes"), "0");
}

TEST(MultiGpuTest, MemoryOfDevice1CanBeFreedWhileDevice0IsCurrent) {
  RunResult run = run_program("free-from-other-device", two_gpus());
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.at("a.redirected"), "1") << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "a cudaFree=cudaSuccess\n")) << run.describe();
  EXPECT_EQ(run.at("a.mapped_after_free"), "0") << run.describe();
  EXPECT_EQ(run.at("current_device_after_free"), "0");
  std::vector<LogLine> unmaps = preload::lines_about(run, "unmap", "a");
  ASSERT_EQ(unmaps.size(), 1u) << run.describe();
  EXPECT_EQ(field(unmaps[0], "device"), "1");
  EXPECT_TRUE(events(run.log, "free-error").empty()) << run.describe();
  expect_nothing_left_mapped(run, "after_free");
}

}  // namespace
