// LD_PRELOAD tests of fidelity: redirected memory answers the CUDA memory
// APIs as the allocation the program asked for would (managed attach,
// prefetch, advise, range attributes, batches, pointer queries, address
// ranges), runtime and driver, every version, through cuGetProcAddress too;
// memory the shim does not own and ranges that span both get the real
// call's answer; stream-captured cudaMallocAsync stays the graph's. The
// same program runs with and without the shim and must print the same.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/preload/harness.h"

namespace {

using preload::contains;
using preload::events;
using preload::expect_clean_exit;
using preload::field;
using preload::LogLine;
using preload::RunOptions;
using preload::RunResult;

// The managed calls and pointer queries of the fake runtime go through the
// fake driver, as the real runtime's do; allocations under 2 MiB stay real.
std::map<std::string, std::string> fidelity_env(std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> env = {{"FAKE_CUDART_VIA_DRIVER", "1"},
                                            {"EGM_MIN_SIZE", "2M"}};
  for (const auto& [key, value] : extra) env[key] = value;
  return env;
}

RunResult run_fidelity(const std::string& scenario, bool preload,
                       std::map<std::string, std::string> extra = {}) {
  RunOptions options;
  options.program = "tests/preload/fidelity_program";
  options.args = {scenario};
  options.preload = preload;
  options.env = fidelity_env(std::move(extra));
  return preload::run(options);
}

// Same stdout with and without the shim; returns the run with it.
RunResult expect_same_answers(const std::string& scenario) {
  RunResult without = run_fidelity(scenario, false);
  RunResult with = run_fidelity(scenario, true);
  expect_clean_exit(without);
  expect_clean_exit(with);
  EXPECT_EQ(with.out, without.out) << "with the shim:\n"
                                   << with.describe() << "\nwithout:\n"
                                   << without.describe();
  return with;
}

size_t emulated_calls(const RunResult& run, const std::string& call) {
  size_t count = 0;
  for (const LogLine& line : events(run.log, "managed-call")) {
    if (field(line, "call") == call) ++count;
  }
  return count;
}

TEST(FidelityTest, RuntimeManagedCallsAndPointerQueriesAnswerAsTheRealAllocation) {
  RunResult run = expect_same_answers("runtime");
  EXPECT_EQ(run.at("managed.redirected"), "1") << run.describe();
  EXPECT_EQ(run.at("device.redirected"), "1") << run.describe();
  EXPECT_EQ(run.at("small.redirected"), "0") << run.describe();  // the not-ours case
  EXPECT_EQ(run.at("end.cuda_mappings"), "0") << run.describe();
  EXPECT_EQ(run.at("end.cuda_allocations"), "0") << run.describe();
  // The answers are the shim's, not a pass-through that happened to agree.
  EXPECT_GE(emulated_calls(run, "cudaMemPrefetchAsync"), 3u) << run.describe();
  EXPECT_GE(emulated_calls(run, "cudaMemAdvise"), 4u) << run.describe();
  EXPECT_GE(emulated_calls(run, "StreamAttachMemAsync"), 3u) << run.describe();
  EXPECT_GE(emulated_calls(run, "cudaMemPrefetchBatchAsync"), 2u) << run.describe();
  EXPECT_TRUE(contains(run.out, "managed pointer_attributes=cudaSuccess type=3 "))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "device pointer_attributes=cudaSuccess type=2 "))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "prefetch_mixed=cudaErrorInvalidValue")) << run.describe();
  // Hints are per page, as CUDA keeps them: a prefetch of a part leaves the
  // whole unprefetched (what the H200 answered), the part says device 0.
  EXPECT_TRUE(contains(run.out, "\nprefetched range_attribute(4)=cudaSuccess value=-2\n"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "\nprefetched range_attribute(7)=cudaSuccess value=0\n"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "\nprefetched_part range_attribute(4)=cudaSuccess value=0\n"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "\nadvised_host_page range_attribute(2)=cudaSuccess value=-1\n"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "\nadvised_parts range_attribute(1)=cudaSuccess value=0\n"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "\nadvised_first_2mib range_attribute(1)=cudaSuccess value=1\n"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "\nadvised_unset_page accessed_by=cudaSuccess [-1 -2 -2]\n"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "\nbatched range_attribute(4)=cudaSuccess value=-2\n"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "\nbatched_host_part range_attribute(8)=cudaSuccess value=0\n"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "\nbatched_device_part range_attribute(4)=cudaSuccess value=0\n"))
      << run.describe();
}

TEST(FidelityTest, DriverCallsAnswerAsTheRealAllocationInEveryVersion) {
  RunResult run = expect_same_answers("driver");
  EXPECT_EQ(run.at("managed.redirected"), "1") << run.describe();
  EXPECT_EQ(run.at("device.redirected"), "1") << run.describe();
  EXPECT_EQ(run.at("small.redirected"), "0") << run.describe();  // the not-ours case
  EXPECT_EQ(run.at("end.cuda_mappings"), "0") << run.describe();  // cuMemFreeAsync unmapped
  EXPECT_EQ(run.at("end.cuda_allocations"), "0") << run.describe();
  EXPECT_EQ(emulated_calls(run, "cuMemPrefetchBatchAsync"), 1u) << run.describe();
  EXPECT_GE(emulated_calls(run, "cuMemPrefetchAsync"), 2u) << run.describe();  // the v1 entry point
  EXPECT_GE(emulated_calls(run, "cuMemAdvise"), 1u) << run.describe();
  EXPECT_GE(emulated_calls(run, "cuMemPrefetchAsync_v2"), 1u) << run.describe();
  EXPECT_TRUE(contains(run.out, "device address_range=CUDA_SUCCESS:1,3145851")) << run.describe();
  EXPECT_TRUE(contains(run.out, "device_interior range_size=CUDA_SUCCESS:3145851"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "managed is_managed=CUDA_SUCCESS:1")) << run.describe();
  // The second MiB: prefetched to the host by the batch, never advised
  // (read-mostly was set on the first MiB only).
  EXPECT_TRUE(contains(run.out, "\nafter_batch=CUDA_SUCCESS:-1 CUDA_SUCCESS:0\n"))
      << run.describe();
}

TEST(FidelityTest, StreamCapturedAsyncAllocationsStayTheGraphs) {
  RunResult run = expect_same_answers("capture");
  EXPECT_EQ(run.at("captured.redirected"), "0") << run.describe();
  EXPECT_EQ(run.at("captured.cudart_allocations"), "1") << run.describe();
  EXPECT_EQ(run.at("after.redirected"), "1") << run.describe();
  EXPECT_EQ(run.at("end.cudart_allocations"), "0") << run.describe();
}

TEST(FidelityTest, PhysicalPointerAttributesReportTheHostMapping) {
  RunResult run = run_fidelity("runtime", true, {{"EGM_POINTER_ATTRIBUTES", "physical"}});
  expect_clean_exit(run);
  // The fake driver, like the real one on HOST_NUMA memory, says host.
  EXPECT_TRUE(contains(run.out, "device pointer_attributes=cudaSuccess type=1 ")) << run.describe();
  EXPECT_TRUE(contains(run.out, "managed pointer_attributes=cudaSuccess type=1 "))
      << run.describe();
  RunResult driver = run_fidelity("driver", true, {{"EGM_POINTER_ATTRIBUTES", "physical"}});
  expect_clean_exit(driver);
  // The padded host mapping, not the 3 MiB + 123 asked for.
  EXPECT_TRUE(contains(driver.out, "device address_range=CUDA_SUCCESS:1,4194304"))
      << driver.describe();
}

}  // namespace
