// Many threads allocating and freeing at random through the shim, with the
// pool on: every byte pattern survives, and the log accounts for every
// allocation (nothing lost from the log under load).
#include <gtest/gtest.h>

#include <string>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

namespace {

using preload::RunResult;

// ThreadSanitizer slows the shim's locking paths down about 20-fold: the
// same mix, scaled down so the suite stays fast.
constexpr int kThreads = reliability::kThreadSanitizer ? 8 : 32;
constexpr int kIterations = reliability::kThreadSanitizer ? 1000 : 10000;

struct StressRun {
  RunResult run;
  std::string log;  // read here: hundreds of thousands of lines, not parsed
};

StressRun run_stress() {
  std::string dir = preload::make_temp_dir();
  preload::RunOptions options;
  options.program = reliability::kProgram;
  options.args = {"stress"};
  options.log_file = false;  // the harness would parse it; it is counted here instead
  options.env = {
      {"EGM_LOG_FILE", dir + "/stress-%p.log"},
      {"EGM_LOG_LEVEL", "info"},
      {"EGM_POOL_LIMIT", "1G"},
      {"EGM_SUBALLOC", "1"},
      {"REL_THREADS", std::to_string(kThreads)},
      {"REL_ITERATIONS", std::to_string(kIterations)},
      {"REL_WATCHDOG_SECONDS", "240"},
  };
  StressRun stress{preload::run(options), ""};
  stress.log = preload::read_file(dir + "/stress-" + std::to_string(stress.run.pid) + ".log");
  return stress;
}

const StressRun& stress_run() {
  static const StressRun* stress = new StressRun(run_stress());
  return *stress;
}

std::string describe(const StressRun& stress) {
  std::string tail = stress.log.size() > 4000 ? stress.log.substr(stress.log.size() - 4000)
                                              : stress.log;
  return "exit=" + std::to_string(stress.run.exit_code) +
         " signal=" + std::to_string(stress.run.signal) + "\n--- stdout\n" + stress.run.out +
         "--- stderr\n" + stress.run.err + "--- log tail\n" + tail;
}

long report_number(const RunResult& run, const std::string& key) {
  return std::stol(run.at(key) == "<missing>" ? "-1" : run.at(key));
}

TEST(StressTest, EveryAllocationIsServedAndItsPatternSurvives) {
  const StressRun& stress = stress_run();
  preload::expect_clean_exit(stress.run);
  EXPECT_TRUE(preload::contains(stress.run.out,
                                "stress alloc_failures=0 free_failures=0 verify_failures=0\n"))
      << describe(stress);
  long allocations = report_number(stress.run, "stress.allocations");
  EXPECT_GT(allocations, kThreads * kIterations / 4) << describe(stress);
  EXPECT_EQ(report_number(stress.run, "stress.frees"), allocations);
  EXPECT_EQ(report_number(stress.run, "stress.redirected"), allocations);
  for (const char* api : {"cudaMalloc", "cudaMallocManaged", "cuMemAlloc"}) {
    EXPECT_GT(report_number(stress.run, std::string("stress.") + api), 0) << api;
  }
}

TEST(StressTest, TheLogHasOneMapAndOneUnmapPerAllocation) {
  const StressRun& stress = stress_run();
  ASSERT_FALSE(stress.log.empty()) << describe(stress);
  size_t allocations = static_cast<size_t>(report_number(stress.run, "stress.allocations"));
  EXPECT_EQ(reliability::count_event_lines(stress.log, "map"), allocations) << describe(stress);
  EXPECT_EQ(reliability::count_event_lines(stress.log, "unmap"), allocations);
  EXPECT_EQ(reliability::count_event_lines(stress.log, "fallback"), 0u);
  EXPECT_EQ(reliability::count_event_lines(stress.log, "free-error"), 0u);
  // Every line whole: one write(2) each, none interleaved.
  size_t lines = reliability::count_lines_containing(stress.log, "\n");
  EXPECT_EQ(reliability::count_lines_containing(stress.log, " pid="), lines);
  EXPECT_EQ(reliability::count_lines_containing(stress.log, " event="), lines);
}

TEST(StressTest, SummarySaysNothingIsLive) {
  const StressRun& stress = stress_run();
  std::vector<preload::LogLine> summaries;
  for (const std::string& line : preload::lines_of(stress.log)) {
    if (preload::contains(line, " event=summary ")) summaries.push_back(preload::parse_log_line(line));
  }
  ASSERT_EQ(summaries.size(), 1u) << describe(stress);
  std::string allocations = stress.run.at("stress.allocations");
  EXPECT_EQ(preload::field(summaries[0], "maps"), allocations);
  EXPECT_EQ(preload::field(summaries[0], "unmaps"), allocations);
  EXPECT_EQ(preload::field(summaries[0], "live"), "0");
  EXPECT_EQ(preload::field(summaries[0], "live_bytes"), "0");
  EXPECT_EQ(preload::field(summaries[0], "fallbacks"), "0");
}

// What the doubles still hold is exactly the pool's cache: chunks mapped
// minus chunks unmapped, each with one handle, reservation and mapping.
TEST(StressTest, TheDoublesHoldExactlyThePoolsChunks) {
  const StressRun& stress = stress_run();
  long held = static_cast<long>(reliability::count_event_lines(stress.log, "chunk-map")) -
              static_cast<long>(reliability::count_event_lines(stress.log, "chunk-unmap"));
  EXPECT_GE(held, 0);
  for (const char* count :
       {"end.cuda_handles", "end.cuda_reservations", "end.cuda_mappings", "end.cuda_memory_objects"}) {
    EXPECT_EQ(report_number(stress.run, count), held) << count << "\n" << describe(stress);
  }
  EXPECT_EQ(stress.run.at("end.cudart_allocations"), "0");
  EXPECT_EQ(stress.run.at("end.cuda_allocations"), "0");
}

}  // namespace
