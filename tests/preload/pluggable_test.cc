// libegm.so as PyTorch's pluggable allocator: pluggable_program loads it by
// path and calls egm_malloc / egm_free over the CPU-only doubles, once
// without LD_PRELOAD (nothing of the program's may be intercepted) and once
// preloaded (the same copy serves both).
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>

#include "tests/preload/harness.h"

namespace {

using preload::contains;
using preload::events;
using preload::field;
using preload::kMiB;
using preload::lines_where;
using preload::RunOptions;
using preload::RunResult;

const std::string kEgmMapped = std::to_string(4 * kMiB);  // 3 MiB + 123 padded

RunResult run(const std::string& scenario, bool preload, std::map<std::string, std::string> env = {}) {
  RunOptions options;
  options.program = "tests/preload/pluggable_program";
  options.args = {scenario};
  options.preload = preload;
  options.env = std::move(env);
  options.env["PLUGGABLE_LIB"] = preload::runfile("shim/libegm.so");
  return preload::run(options);
}

// The harness puts the log in the run's directory only when preloading; by
// path, the test names the file through EGM_LOG_FILE with an absolute path.
RunResult run_by_path(const std::string& scenario, std::map<std::string, std::string> env = {}) {
  std::string dir = preload::make_temp_dir();
  env["EGM_LOG_FILE"] = dir + "/egm.log";
  env["EGM_LOG_LEVEL"] = "debug";
  env["EGM_POOL_LIMIT"] = "0";
  env["EGM_SUBALLOC"] = "0";
  RunOptions options;
  options.program = "tests/preload/pluggable_program";
  options.args = {scenario};
  options.preload = false;
  options.env = std::move(env);
  options.env["PLUGGABLE_LIB"] = preload::runfile("shim/libegm.so");
  RunResult result = preload::run(options);
  std::string log_path = dir + "/egm.log";
  result.log_exists = access(log_path.c_str(), F_OK) == 0;
  result.log_text = preload::read_file(log_path);
  result.log = preload::parse_log(result.log_text);
  return result;
}

void expect_clean(const RunResult& run) {
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  EXPECT_TRUE(contains(run.out, "exit 0\n")) << run.describe();
}

// The egm_malloc allocation: a host mapping of the fake driver, logged as
// map/unmap with api=egm_malloc, freed back to nothing, and in the stats.
// `others`: the program's own allocations the shim holds meanwhile (preloaded).
void expect_egm_allocation(const RunResult& run, int others = 0) {
  EXPECT_TRUE(contains(run.out, "egm_malloc ok")) << run.describe();
  EXPECT_EQ(run.at("egm.mapping_size"), kEgmMapped) << run.describe();
  EXPECT_EQ(run.at("egm.host_access"), "1") << run.describe();
  auto maps = lines_where(run.log, {{"event", "map"}, {"api", "egm_malloc"}});
  ASSERT_EQ(maps.size(), 1u) << run.describe();
  EXPECT_EQ(field(maps[0], "addr"), run.at("egm.addr"));
  EXPECT_EQ(field(maps[0], "requested"), std::to_string(3 * kMiB + 123));
  EXPECT_EQ(field(maps[0], "mapped"), kEgmMapped);
  EXPECT_EQ(field(maps[0], "trigger"), "explicit");
  EXPECT_EQ(field(maps[0], "node"), "0");
  auto unmaps = lines_where(run.log, {{"event", "unmap"}, {"api", "egm_malloc"}});
  ASSERT_EQ(unmaps.size(), 1u) << run.describe();
  EXPECT_EQ(field(unmaps[0], "addr"), run.at("egm.addr"));
  EXPECT_EQ(run.at("egm.after_free.cuda_mappings"), run.at("own.after_own.cuda_mappings"))
      << run.describe();
  const std::string& live = run.at("stats.live");
  EXPECT_TRUE(contains(live, "\"live\":" + std::to_string(1 + others) + ",")) << live;
  EXPECT_TRUE(contains(live, "\"api\":\"egm_malloc\"")) << live;
  EXPECT_TRUE(contains(live, "\"requested\":" + std::to_string(3 * kMiB + 123))) << live;
  const std::string& freed = run.at("stats.freed");
  EXPECT_TRUE(contains(freed, "\"live\":" + std::to_string(others) + ",")) << freed;
  EXPECT_FALSE(contains(freed, "egm_malloc")) << freed;
  EXPECT_EQ(run.at("final.cuda_mappings"), "0") << run.describe();
  EXPECT_EQ(run.at("final.cudart_allocations"), "0") << run.describe();
}

TEST(PluggableTest, LoadedByPathPlacesInHostMemoryAndInterceptsNothing) {
  RunResult run = run_by_path("use");
  expect_clean(run);
  EXPECT_EQ(run.at("global_egm_malloc"), "none") << run.describe();
  // The program's own cudaMalloc: the runtime's, no driver mapping, no log line.
  EXPECT_EQ(run.at("own.in_driver_mapping"), "0") << run.describe();
  EXPECT_EQ(run.at("own.after_own.cudart_allocations"), "1") << run.describe();
  EXPECT_TRUE(lines_where(run.log, {{"api", "cudaMalloc"}}).empty()) << run.describe();
  expect_egm_allocation(run);
  // The shim was made at the first egm_ call: one start line, then the summary.
  EXPECT_EQ(events(run.log, "start").size(), 1u) << run.describe();
  auto summary = events(run.log, "summary");
  ASSERT_EQ(summary.size(), 1u) << run.describe();
  EXPECT_EQ(field(summary[0], "maps"), "1");
  EXPECT_EQ(field(summary[0], "live"), "0");
}

TEST(PluggableTest, LoadedByPathAndUnusedLeavesNoTrace) {
  RunResult run = run_by_path("idle");
  expect_clean(run);
  EXPECT_EQ(run.at("own.in_driver_mapping"), "0") << run.describe();
  EXPECT_FALSE(run.log_exists) << run.describe();
  EXPECT_TRUE(run.err.empty()) << run.describe();
}

TEST(PluggableTest, ByPathStrictBadConfigurationFailsTheAllocationNotTheProcess) {
  RunResult run = run_by_path("use", {{"EGM_STRICT", "1"}, {"EGM_NUMA_POLICY", "bogus"}});
  ASSERT_EQ(run.exit_code, 1) << run.describe();  // the scenario's own failure: no pointer
  EXPECT_TRUE(contains(run.out, "egm_malloc null")) << run.describe();
  EXPECT_EQ(events(run.log, "config-error").size(), 1u) << run.describe();
  auto fallbacks = lines_where(run.log, {{"event", "fallback"}, {"api", "egm_malloc"}});
  ASSERT_EQ(fallbacks.size(), 1u) << run.describe();
  EXPECT_EQ(field(fallbacks[0], "action"), "error");
}

TEST(PluggableTest, NodeChoiceAndNodeLimit) {
  // 8 MiB on node 0: the first 6 MiB request fits, the second does not.
  RunResult run = run_by_path("limits", {{"EGM_NODE_LIMIT", "0:8M"}});
  expect_clean(run);
  EXPECT_EQ(run.at("set_node.0"), "0");
  EXPECT_EQ(run.at("set_node.7"), "-1");
  EXPECT_EQ(run.at("set_node.-2"), "-1");
  EXPECT_EQ(run.at("first"), "ok") << run.describe();
  EXPECT_EQ(run.at("second"), "null") << run.describe();
  EXPECT_EQ(run.at("empty"), "null");
  EXPECT_EQ(run.at("negative"), "null");
  EXPECT_EQ(run.at("huge"), "null") << run.describe();
  auto maps = lines_where(run.log, {{"event", "map"}, {"api", "egm_malloc"}});
  ASSERT_EQ(maps.size(), 1u) << run.describe();
  EXPECT_TRUE(contains(field(maps[0], "reason"), "requested")) << run.describe();
  // The second request and the huge one: one line each, both refused by the cap.
  auto fallbacks = lines_where(run.log, {{"event", "fallback"}, {"api", "egm_malloc"}});
  ASSERT_EQ(fallbacks.size(), 2u) << run.describe();
  for (const auto& line : fallbacks) {
    EXPECT_EQ(field(line, "step"), "node-limit") << run.describe();
    EXPECT_EQ(field(line, "action"), "error");
  }
  EXPECT_EQ(lines_where(run.log, {{"event", "notice"}}).size(), 1u) << run.describe();  // not ours
  EXPECT_EQ(run.at("final.cuda_mappings"), "0") << run.describe();
}

TEST(PluggableTest, HostileCallsReturnNullOrAreLeftAlone) {
  RunResult run = run_by_path("hostile", {});
  expect_clean(run);
  EXPECT_EQ(run.at("device_minus_1"), "null") << run.describe();
  EXPECT_EQ(run.at("device_999"), "null") << run.describe();
  EXPECT_EQ(run.at("set_node.int_min"), "-1");
  EXPECT_EQ(run.at("set_node.int_max"), "-1");
  EXPECT_EQ(run.at("good"), "ok") << run.describe();
  EXPECT_EQ(run.at("after_interior_free"), "mapped") << run.describe();
  EXPECT_EQ(run.at("stats_short_buffer"), "untouched");
  EXPECT_EQ(run.at("stats_one_byte"), "untouched");
  // The interior free and the second free: one notice each.
  EXPECT_EQ(lines_where(run.log, {{"event", "notice"}}).size(), 2u) << run.describe();
  EXPECT_EQ(run.at("final.cuda_mappings"), "0") << run.describe();
}

TEST(PluggableTest, PreloadedTheSameCopyServesBoth) {
  RunResult run = ::run("use", true);
  expect_clean(run);
  EXPECT_EQ(run.at("global_egm_malloc"), "same") << run.describe();
  // Preloaded, the program's own cudaMalloc is redirected as usual.
  EXPECT_EQ(run.at("own.in_driver_mapping"), "1") << run.describe();
  EXPECT_EQ(lines_where(run.log, {{"event", "map"}, {"api", "cudaMalloc"}}).size(), 1u)
      << run.describe();
  expect_egm_allocation(run, 1);
  EXPECT_EQ(events(run.log, "start").size(), 1u) << run.describe();
}

TEST(PluggableTest, PreloadedWithModeOffStillPlacesEgmMalloc) {
  RunResult run = ::run("use", true, {{"EGM_MODE", "off"}});
  expect_clean(run);
  EXPECT_EQ(run.at("own.in_driver_mapping"), "0") << run.describe();
  expect_egm_allocation(run);
}

}  // namespace
