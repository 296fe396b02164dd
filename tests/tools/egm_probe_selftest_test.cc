// Runs `egm-probe --selftest` through the CPU-only doubles (fake libcuda.so.1
// and libcudart.so.13): the host checks run without and with libegm.so, the
// kernel checks say SKIP-NO-DEVICE, and a shim that changes results fails.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/tools/tool_process.h"
#include "tools/probe/selftest.h"

namespace {

using tools_test::contains;
using tools_test::EnvironmentEdits;
using tools_test::ProcessResult;
using tools_test::runfile;

// The fake runtime allocates through the fake driver, as the real one does,
// so that the driver's queries know its memory.
EnvironmentEdits doubles_environment() {
  return {{"LD_LIBRARY_PATH", runfile("tests/doubles")},
          {"FAKE_CUDART_VIA_DRIVER", "1"},
          {"LD_PRELOAD", std::nullopt},
          {"FAKE_CUDA_NUMA_NODES", "64"},
          {"FAKE_CUDA_FAIL", std::nullopt},
          {"FAKE_CUDA_DEVICE_COUNT", std::nullopt},
          {"EGM_MODE", std::nullopt}};
}

ProcessResult selftest(const std::string& shim, const EnvironmentEdits& edits) {
  return tools_test::run_process(
      {runfile("tools/probe/egm-probe"), "--selftest", "--shim", shim, "--selftest-program",
       runfile("tools/probe/egm-compat-checks"), "--selftest-timeout", "60"},
      edits);
}

// The output line of check `name`, or "" when there is none.
std::string line_of(const std::string& output, const std::string& name) {
  for (const std::string& line : tools_test::lines_of(output)) {
    if (line.size() > 6 && line.compare(6, name.size() + 1, name + ":") == 0) return line;
  }
  return "";
}

std::string verdict_of(const std::string& output, const std::string& name) {
  std::string line = line_of(output, name);
  return line.substr(0, line.find(' '));
}

TEST(EgmProbeSelftest, EveryCheckTheDoublesAnswerMatchesAndKernelChecksSkip) {
  ProcessResult run = selftest(runfile("shim/libegm.so"), doubles_environment());
  EXPECT_EQ(run.exit_status, 0) << run.out << run.err;
  EXPECT_TRUE(contains(run.out, "self-test matches on every check that ran")) << run.out;
  EXPECT_TRUE(contains(line_of(run.out, "cuda.device"), "count=1 gpu0=Fake CUDA Device"))
      << run.out;
  // The doubles answer these: the shim must not change a thing.
  for (const char* name :
       {"cuda.device", "pointer-attributes.device", "pointer-attributes.managed",
        "address-range.cuMemAlloc-3MiB", "memcpy.all-kinds", "memset", "memcpy-2d.pitched",
        "managed.attach", "managed.prefetch", "managed.advise", "managed.range-attributes",
        "managed.last-prefetch-location", "stream-ordered.malloc-async", "threads.8-alloc-free",
        "driver-api", "program.exit-status"}) {
    EXPECT_EQ(verdict_of(run.out, name), "PASS") << name << "\n" << run.out << run.err;
  }
  // The results are those a program expects, not merely equal.
  EXPECT_TRUE(contains(line_of(run.out, "pointer-attributes.device"),
                       "rt{cudaSuccess type=2 device=0 devicePointer=self hostPointer=null}"))
      << run.out;
  EXPECT_TRUE(contains(line_of(run.out, "pointer-attributes.managed"), "IS_MANAGED=CUDA_SUCCESS:1"))
      << run.out;
  EXPECT_TRUE(contains(line_of(run.out, "address-range.cuMemAlloc-3MiB"),
                       "+1060921{CUDA_SUCCESS base=allocation size=3145728}"))
      << run.out;
  EXPECT_TRUE(contains(line_of(run.out, "memset"), "data=as-set")) << run.out;
  EXPECT_TRUE(contains(line_of(run.out, "driver-api"), "data=as-set")) << run.out;
  // No kernel runs on the doubles: a distinct SKIP, said in the summary too.
  for (const char* name : {"device-atomics", "texture.pitched-2d"}) {
    std::string line = line_of(run.out, name);
    EXPECT_EQ(verdict_of(run.out, name), "SKIP") << run.out;
    EXPECT_TRUE(contains(line, "SKIP-NO-DEVICE this CUDA runtime cannot run kernels")) << line;
  }
  EXPECT_TRUE(contains(run.out, "SKIP-NO-DEVICE: no real GPU here")) << run.out;
  // The doubles lack the graph API and cuMemAllocAsync: skipped, and said so.
  for (const char* name : {"graph.capture-malloc-async", "driver-api.stream-ordered"}) {
    EXPECT_EQ(verdict_of(run.out, name), "SKIP") << name << run.out;
    EXPECT_TRUE(contains(line_of(run.out, name), "SKIP-MISSING")) << run.out;
  }
  // IPC export of redirected memory succeeds as without the shim (its
  // record in the handle, shim/core/ipc.h).
  EXPECT_EQ(verdict_of(run.out, "ipc.export"), "PASS") << run.out;
}

TEST(EgmProbeSelftest, AShimThatChangesResultsFails) {
  ProcessResult run =
      selftest(runfile("tests/tools/libbroken_memset_shim.so"), doubles_environment());
  EXPECT_EQ(run.exit_status, 1) << run.out << run.err;
  EXPECT_EQ(verdict_of(run.out, "memset"), "FAIL") << run.out;
  EXPECT_TRUE(contains(line_of(run.out, "memset"), "data=WRONG")) << run.out;
  EXPECT_EQ(verdict_of(run.out, "memcpy.all-kinds"), "PASS") << run.out;
  EXPECT_TRUE(contains(run.out, "self-test FAILS")) << run.out;
}

TEST(EgmProbeSelftest, AnExistingPreloadIsKeptButTheShimIsRemovedFromTheRunWithout) {
  std::string broken = runfile("tests/tools/libbroken_memset_shim.so");
  // Another preloaded library stays in both runs: both memsets are off alike.
  EnvironmentEdits edits = doubles_environment();
  edits["LD_PRELOAD"] = broken;
  ProcessResult run = selftest(runfile("shim/libegm.so"), edits);
  EXPECT_EQ(verdict_of(run.out, "memset"), "PASS") << run.out;
  EXPECT_TRUE(contains(line_of(run.out, "memset"), "data=WRONG")) << run.out;
  // Started under the shim itself (as by egm-run): the run without drops it.
  run = selftest(broken, edits);
  EXPECT_EQ(verdict_of(run.out, "memset"), "FAIL") << run.out;
  EXPECT_EQ(run.exit_status, 1) << run.out;
}

TEST(EgmProbeSelftest, MissingShimOrProgramIsAnError) {
  ProcessResult run =
      selftest(tools_test::temp_dir() + "/no-such-libegm.so", doubles_environment());
  EXPECT_EQ(run.exit_status, 1);
  EXPECT_TRUE(contains(run.out, "no-such-libegm.so")) << run.out;
}

TEST(SelftestCompare, PairsChecksByNameAndNamesEveryOutcome) {
  using egm::probe::compare_runs;
  using egm::probe::parse_check_lines;
  auto without = parse_check_lines(
      "noise\ncheck a x=1\ncheck b SKIP-NO-DEVICE no kernels\ncheck ipc.export ok\ncheck c v\n");
  auto with = parse_check_lines(
      "check a x=2\ncheck b SKIP-NO-DEVICE no kernels\n"
      "check ipc.export cudaErrorInvalidValue\n");
  auto outcomes = compare_runs(without, with, "exit 0", "signal 11");
  ASSERT_EQ(outcomes.size(), 5u);
  EXPECT_EQ(outcomes[0].verdict, "FAIL");  // a: different values
  EXPECT_EQ(outcomes[0].with, "x=2");
  EXPECT_EQ(outcomes[1].verdict, "SKIP");   // b: skipped in both runs
  EXPECT_EQ(outcomes[2].verdict, "FAIL");  // ipc.export: no longer a known difference
  EXPECT_EQ(outcomes[3].verdict, "FAIL");   // c: absent after a crash
  EXPECT_EQ(outcomes[3].with, "(no result: program signal 11)");
  EXPECT_EQ(outcomes[4].name, "program.exit-status");
  EXPECT_EQ(outcomes[4].verdict, "FAIL");
}

TEST(SelftestCompare, NoOutputAtAllFails) {
  auto outcomes = egm::probe::compare_runs({}, {}, "exit 1", "exit 1");
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].verdict, "PASS");  // the exit statuses agree...
  EXPECT_EQ(outcomes[1].verdict, "FAIL");  // ...but nothing was checked
}

}  // namespace
