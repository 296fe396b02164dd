// Stream-ordered frees and allocations under the shim (issue 15): the memory
// of a cudaFreeAsync is never unmapped while its stream may still use it,
// cudaMallocAsync places memory for the stream's device and refuses an
// invalid stream as the real call does, a device reset settles deferred
// frees without touching their (destroyed) events, and a free made inside
// stream capture stays mapped for the graph.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

namespace {

using preload::events;
using preload::field;
using preload::RunResult;

// stdout without the lines that name addresses or data checks.
std::vector<std::string> call_lines(const std::string& out) {
  std::vector<std::string> lines;
  for (const std::string& line : preload::lines_of(out)) {
    if (!preload::contains(line, "pattern_ok=")) lines.push_back(line);
  }
  return lines;
}

void expect_no_live_mapping(const RunResult& run) {
  std::vector<preload::LogLine> summaries = events(run.log, "summary");
  ASSERT_EQ(summaries.size(), 1u) << run.describe();
  EXPECT_EQ(field(summaries[0], "live"), "0") << run.describe();
  EXPECT_TRUE(events(run.log, "free-error").empty()) << run.describe();
}

TEST(AsyncFreeTest, WithoutAnEventTheMemoryWaitsForTheStream) {
  // The program creates one event itself; the shim's is the second.
  RunResult run = reliability::run_program("async-no-event",
                                           {{"FAKE_CUDART_FAIL", "cudaEventCreateWithFlags@2"}});
  preload::expect_clean_exit(run);
  ASSERT_EQ(run.at("p.redirected"), "1") << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "cudaFreeAsync=cudaSuccess\n")) << run.describe();
  EXPECT_EQ(run.at("p.unmapped_while_stream_busy"), "0") << run.describe();
  EXPECT_EQ(run.at("p.mapped_at_end"), "0") << run.describe();
  expect_no_live_mapping(run);
}

TEST(AsyncFreeTest, MallocAsyncPlacesMemoryForTheStreamsDevice) {
  std::map<std::string, std::string> env = {{"FAKE_CUDA_DEVICE_COUNT", "2"}};
  RunResult run = reliability::run_program("async-stream-device", env);
  preload::expect_clean_exit(run);
  EXPECT_EQ(call_lines(run.out),
            call_lines(reliability::run_program_without_shim("async-stream-device", env).out));
  EXPECT_EQ(run.at("p.access_device_1"), "1") << run.describe();
  std::vector<preload::LogLine> maps = events(run.log, "map");
  ASSERT_EQ(maps.size(), 1u) << run.describe();
  EXPECT_EQ(field(maps[0], "device"), "1") << run.describe();
  EXPECT_EQ(run.at("p.mapped_at_end"), "0") << run.describe();
  expect_no_live_mapping(run);
}

TEST(AsyncFreeTest, MallocAsyncOnADestroyedStreamFailsAsTheRealCall) {
  RunResult plain = reliability::run_program_without_shim("async-invalid-stream");
  EXPECT_TRUE(preload::contains(plain.out, "cudaMallocAsync=cudaErrorInvalidResourceHandle\n"))
      << plain.describe();
  RunResult run = reliability::run_program("async-invalid-stream");
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.out, plain.out) << run.describe();
  EXPECT_TRUE(events(run.log, "map").empty()) << run.describe();
  EXPECT_EQ(run.at("end.cuda_mappings"), "0") << run.describe();
}

TEST(AsyncFreeTest, DeviceResetSettlesDeferredFreesWithoutTouchingTheirEvents) {
  RunResult plain = reliability::run_program_without_shim("async-reset");
  RunResult run = reliability::run_program("async-reset");
  preload::expect_clean_exit(run);
  EXPECT_EQ(call_lines(run.out), call_lines(plain.out)) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "last_error=cudaSuccess\n")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "own event query=cudaSuccess\n")) << run.describe();
  EXPECT_EQ(run.at("p.mapped_at_end"), "0") << run.describe();
  expect_no_live_mapping(run);
}

TEST(AsyncFreeTest, FreeInsideStreamCaptureStaysMappedForTheGraph) {
  RunResult run = reliability::run_program("async-capture");
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.at("p.redirected"), "1") << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "cudaFreeAsync=cudaSuccess\n")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "last_error=cudaSuccess\n")) << run.describe();
  EXPECT_EQ(run.at("p.mapped_after_capture"), "1") << run.describe();
  std::vector<preload::LogLine> summaries = events(run.log, "summary");
  ASSERT_EQ(summaries.size(), 1u) << run.describe();
  EXPECT_EQ(field(summaries[0], "pending_frees"), "1") << run.describe();
}

TEST(AsyncFreeTest, CudaFreeOfAnotherDevicesMemorySynchronizesThatDevice) {
  RunResult run =
      reliability::run_program("free-other-device-sync", {{"FAKE_CUDA_DEVICE_COUNT", "2"}});
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "device-1-current cudaFree=cudaSuccess"))
      << run.describe();
  EXPECT_EQ(run.at("p.redirected"), "1") << run.describe();
  EXPECT_EQ(run.at("owner_synchronized"), "1") << run.describe();
  expect_no_live_mapping(run);
}

}  // namespace
