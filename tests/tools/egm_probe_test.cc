// Runs the real egm-probe on the CPU-only fake libcuda.so.1: the success
// path, injected failures (reported, undone, nothing leaked), no GPU, no
// driver, and bad flags.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/tools/tool_process.h"

namespace {

using nlohmann::json;
using tools_test::contains;
using tools_test::EnvironmentEdits;
using tools_test::ProcessResult;
using tools_test::runfile;

constexpr int kDoesNotWork = 1;
constexpr int kUsageError = 2;
constexpr long kMiB = 1 << 20;
// What the leak reporter prints when the fake holds nothing any more.
constexpr const char* kNothingLive =
    "fake-cuda-live handles=0 memory_objects=0 reservations=0 mappings=0 primary_contexts=0";

std::string egm_probe() { return runfile("tools/probe/egm-probe"); }

// The fakes' environment: the fake driver first on the library path; enough
// fake host nodes for every node of this machine; the leak reporter preloaded.
EnvironmentEdits fake_driver_environment(EnvironmentEdits edits = {}) {
  edits.emplace("LD_LIBRARY_PATH", runfile(FAKES_DIR));
  edits.emplace("LD_PRELOAD", runfile("tests/tools/libfake_cuda_leak_report.so"));
  edits.emplace("FAKE_CUDA_NUMA_NODES", "64");
  edits.emplace("FAKE_CUDA_FAIL", std::nullopt);
  edits.emplace("FAKE_CUDA_DEVICE_COUNT", std::nullopt);
  return edits;
}

ProcessResult probe(std::vector<std::string> args, const EnvironmentEdits& edits) {
  args.insert(args.begin(), egm_probe());
  return tools_test::run_process(args, edits);
}

json parsed_json(const ProcessResult& run) {
  json document = json::parse(run.out, nullptr, false);
  EXPECT_FALSE(document.is_discarded()) << run.out;
  return document;
}

// The step of `trial` called `name` (the first, or the cleanup one).
json step_named(const json& trial, const std::string& name, bool cleanup = false) {
  for (const json& step : trial["steps"]) {
    if (step["step"] == name && step["cleanup"] == cleanup) return step;
  }
  ADD_FAILURE() << "no step " << name << " in " << trial.dump(1);
  return json::object();
}

TEST(EgmProbe, WorksOnTheFakeDriverAndReportsEverything) {
  ProcessResult run = probe({"--json"}, fake_driver_environment());
  ASSERT_EQ(run.exit_status, 0) << run.out << run.err;
  json report = parsed_json(run);
  EXPECT_EQ(report["driver"]["loaded"], true);
  EXPECT_EQ(report["driver"]["version"], 13000);
  EXPECT_EQ(report["driver"]["missing_entry_points"], json::array());
  ASSERT_EQ(report["gpus"].size(), 1u);
  const json& gpu = report["gpus"][0];
  EXPECT_EQ(gpu["name"], "Fake CUDA Device (CPU test double)");
  EXPECT_NE(gpu["pci_bus_id"], "");
  EXPECT_EQ(gpu["virtual_memory_management_supported"], 1);
  EXPECT_EQ(gpu["host_numa_virtual_memory_management_supported"], 1);
  EXPECT_EQ(gpu["host_numa_id"], 0);
  EXPECT_EQ(gpu["granularity"]["minimum"], 2 * kMiB);
  EXPECT_EQ(gpu["granularity"]["recommended"], 2 * kMiB);
  ASSERT_FALSE(report["numa_nodes"].empty());
  for (const json& node : report["numa_nodes"]) {
    EXPECT_GT(node["total_bytes"].get<long>(), 0);
    EXPECT_EQ(node["distances"][std::to_string(node["node"].get<int>())], 10);
  }
  ASSERT_EQ(report["trials"].size(), report["numa_nodes"].size());
  for (const json& trial : report["trials"]) {
    EXPECT_EQ(trial["works"], true);
    EXPECT_EQ(trial["mapped_bytes"], 2 * kMiB);
    for (const json& step : trial["steps"]) EXPECT_EQ(step["status"], "ok") << step.dump();
    EXPECT_EQ(step_named(trial, "cuMemMap")["result"], "CUDA_SUCCESS");
    EXPECT_EQ(step_named(trial, "CPU read/write")["status"], "ok");
    EXPECT_EQ(step_named(trial, "cuMemAddressFree", true)["status"], "ok");
  }
  EXPECT_EQ(report["egm_works"], true);
  EXPECT_EQ(report["problem"], nullptr);
  EXPECT_TRUE(contains(run.err, kNothingLive)) << run.err;
}

TEST(EgmProbe, TextOutputNamesEachStepAndTheVerdict) {
  ProcessResult run = probe({}, fake_driver_environment());
  ASSERT_EQ(run.exit_status, 0) << run.out << run.err;
  for (const char* part :
       {"CUDA driver: libcuda.so.1, version 13.0 (13000)", "GPU 0: Fake CUDA Device",
        "host NUMA virtual memory management: yes", "EGM sequence, GPU 0 x node 0 (2 MiB): works",
        "cuMemSetAccess", "cuMemUnmap (cleanup)", "EGM placement works on"}) {
    EXPECT_TRUE(contains(run.out, part)) << part << "\n" << run.out;
  }
}

TEST(EgmProbe, SizeIsRoundedUpToTheGranularity) {
  ProcessResult run = probe({"--json", "--size", "3M"}, fake_driver_environment());
  ASSERT_EQ(run.exit_status, 0) << run.out << run.err;
  json trial = parsed_json(run)["trials"][0];
  EXPECT_EQ(trial["requested_bytes"], 3 * kMiB);
  EXPECT_EQ(trial["mapped_bytes"], 4 * kMiB);
  EXPECT_EQ(trial["works"], true);
}

TEST(EgmProbe, FailingMapIsReportedAndEverythingEarlierUndone) {
  ProcessResult run = probe({"--json"}, fake_driver_environment({{"FAKE_CUDA_FAIL", "cuMemMap"}}));
  EXPECT_EQ(run.exit_status, kDoesNotWork) << run.out << run.err;
  json report = parsed_json(run);
  EXPECT_EQ(report["egm_works"], false);
  for (const json& trial : report["trials"]) {
    EXPECT_EQ(trial["works"], false);
    EXPECT_EQ(trial["failed_step"], "cuMemMap");
    json map = step_named(trial, "cuMemMap");
    EXPECT_EQ(map["status"], "failed");
    EXPECT_EQ(map["result"], "CUDA_ERROR_OUT_OF_MEMORY");
    EXPECT_EQ(step_named(trial, "cuMemSetAccess")["status"], "skipped");
    EXPECT_EQ(step_named(trial, "CPU read/write")["status"], "skipped");
    for (const char* undo : {"cuMemRelease", "cuMemAddressFree", "cuDevicePrimaryCtxRelease"}) {
      EXPECT_EQ(step_named(trial, undo, true)["status"], "ok") << undo;
    }
  }
  EXPECT_TRUE(contains(run.err, kNothingLive)) << run.err;
}

TEST(EgmProbe, FailingSetAccessUnmapsToo) {
  EnvironmentEdits edits = fake_driver_environment({{"FAKE_CUDA_FAIL", "cuMemSetAccess=1"}});
  ProcessResult run = probe({"--json"}, edits);
  EXPECT_EQ(run.exit_status, kDoesNotWork) << run.out << run.err;
  json trial = parsed_json(run)["trials"][0];
  EXPECT_EQ(step_named(trial, "cuMemSetAccess")["result"], "CUDA_ERROR_INVALID_VALUE");
  EXPECT_EQ(step_named(trial, "cuMemUnmap", true)["status"], "ok");
  EXPECT_TRUE(contains(run.err, kNothingLive)) << run.err;
}

TEST(EgmProbe, FailingCleanupIsReported) {
  EnvironmentEdits edits = fake_driver_environment({{"FAKE_CUDA_FAIL", "cuMemUnmap"}});
  ProcessResult run = probe({"--json"}, edits);
  EXPECT_EQ(run.exit_status, kDoesNotWork) << run.out << run.err;
  json trial = parsed_json(run)["trials"][0];
  EXPECT_EQ(trial["failed_step"], "cuMemUnmap");
  EXPECT_EQ(step_named(trial, "cuMemUnmap", true)["status"], "failed");
}

TEST(EgmProbe, WorksWhenOneOfTwoGpusFails) {
  EnvironmentEdits edits = fake_driver_environment(
      {{"FAKE_CUDA_DEVICE_COUNT", "2"}, {"FAKE_CUDA_FAIL", "cuMemCreate@1"}});
  ProcessResult run = probe({"--json"}, edits);
  EXPECT_EQ(run.exit_status, 0) << run.out << run.err;
  json report = parsed_json(run);
  ASSERT_EQ(report["gpus"].size(), 2u);
  EXPECT_EQ(report["trials"][0]["failed_step"], "cuMemCreate");
  EXPECT_EQ(report["trials"].back()["works"], true);
  EXPECT_TRUE(contains(run.err, kNothingLive)) << run.err;
}

TEST(EgmProbe, NoGpuSaysSo) {
  ProcessResult run = probe({}, fake_driver_environment({{"FAKE_CUDA_DEVICE_COUNT", "0"}}));
  EXPECT_EQ(run.exit_status, kDoesNotWork);
  EXPECT_TRUE(contains(run.out, "no CUDA GPU is visible")) << run.out;
}

TEST(EgmProbe, NoDriverSaysSo) {
  // A machine with a real driver finds it whatever the library path says.
  if (void* installed = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) {
    dlclose(installed);
    GTEST_SKIP() << "this machine has a libcuda.so.1 of its own";
  }
  EnvironmentEdits edits = {{"LD_LIBRARY_PATH", tools_test::temp_dir()}};
  ProcessResult run = probe({}, edits);
  EXPECT_EQ(run.exit_status, kDoesNotWork);
  EXPECT_TRUE(contains(run.out, "CUDA driver: libcuda.so.1 not loadable")) << run.out;
  EXPECT_TRUE(contains(run.out,
                       "EGM placement cannot work here: the CUDA driver library "
                       "libcuda.so.1 cannot be loaded"))
      << run.out;
  run = probe({"--json"}, edits);
  EXPECT_EQ(run.exit_status, kDoesNotWork);
  json report = parsed_json(run);
  EXPECT_EQ(report["driver"]["loaded"], false);
  EXPECT_TRUE(contains(report["problem"].get<std::string>(), "cannot be loaded"));
}

TEST(EgmProbe, BadFlagsExitWith2) {
  EXPECT_EQ(probe({"--bogus"}, fake_driver_environment()).exit_status, kUsageError);
  EXPECT_EQ(probe({"--size", "1.5G"}, fake_driver_environment()).exit_status, kUsageError);
  EXPECT_EQ(probe({"--size", "0"}, fake_driver_environment()).exit_status, kUsageError);
  EXPECT_EQ(probe({"--size"}, fake_driver_environment()).exit_status, kUsageError);
  ProcessResult help = probe({"--help"}, fake_driver_environment());
  EXPECT_EQ(help.exit_status, 0);
  EXPECT_TRUE(contains(help.out, "--json")) << help.out;
}

}  // namespace
