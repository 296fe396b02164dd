// Process life cycle under the shim: fork, exit from another thread, abort,
// and a program's own fatal-signal handler. Every run has a watchdog
// (reliability_program's alarm): a deadlock fails with SIGALRM.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

namespace {

using preload::events;
using preload::field;
using preload::LogLine;
using preload::RunResult;

constexpr int kHandlerExitCode = 86;  // reliability_program's SIGSEGV handler

void expect_one_summary(const std::vector<LogLine>& log, const std::string& maps,
                        const std::string& live, const RunResult& run) {
  std::vector<LogLine> summaries = events(log, "summary");
  ASSERT_EQ(summaries.size(), 1u) << run.describe();
  EXPECT_EQ(field(summaries[0], "pid"), std::to_string(run.pid));
  EXPECT_EQ(field(summaries[0], "maps"), maps) << run.describe();
  EXPECT_EQ(field(summaries[0], "live"), live) << run.describe();
}

// ---- fork ----

TEST(ForkTest, ChildRunsCudaFreeCodeAndLeavesTheParentsAccountsAlone) {
  RunResult run = reliability::run_program("fork");
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "child sum=500500\n")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "child exited=1 status=0\n")) << run.describe();
  expect_one_summary(run.log, "1", "0", run);
  EXPECT_TRUE(events(run.log, "leak").empty()) << run.describe();
  std::string child = run.at("child.pid");
  EXPECT_TRUE(preload::lines_where(run.log, {{"pid", child}}).empty()) << run.describe();
  // EGM_LOG_FILE=.../egm-%p.log: the child's own file, if any, has no account of the parent's.
  std::string child_log = preload::read_file(run.dir + "/egm-" + child + ".log");
  for (const char* event : {"summary", "leak", "unmap", "map"}) {
    EXPECT_TRUE(events(preload::parse_log(child_log), event).empty()) << event << "\n" << child_log;
  }
}

TEST(ForkTest, WithOneSharedLogFileOnlyTheParentWritesItsSummary) {
  std::string dir = preload::make_temp_dir();
  std::string log_path = dir + "/shared.log";
  preload::RunOptions options;
  options.program = reliability::kProgram;
  options.args = {"fork"};
  options.log_file = false;
  options.env = {{"EGM_LOG_FILE", log_path}};
  RunResult run = preload::run(options);
  preload::expect_clean_exit(run);
  std::vector<LogLine> log = preload::parse_log(preload::read_file(log_path));
  expect_one_summary(log, "1", "0", run);
  EXPECT_TRUE(preload::lines_where(log, {{"pid", run.at("child.pid")}}).empty())
      << preload::read_file(log_path);
}

// ---- exit paths ----

TEST(ExitTest, ExitFromAnotherThreadStillWritesTheSummary) {
  RunResult run = reliability::run_program("exit-from-thread");
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "exit from a thread\n")) << run.describe();
  expect_one_summary(run.log, "2", "1", run);
  std::vector<LogLine> leaks = events(run.log, "leak");
  ASSERT_EQ(leaks.size(), 1u) << run.describe();
  EXPECT_EQ(field(leaks[0], "addr"), run.at("leaked.addr"));
}

TEST(ExitTest, AbortLeavesAFatalSignalLineAfterEverythingBefore) {
  RunResult run = reliability::run_program("abort");
  EXPECT_EQ(run.signal, SIGABRT) << run.describe();
  ASSERT_FALSE(run.log.empty()) << run.describe();
  const LogLine& last = run.log.back();
  EXPECT_EQ(field(last, "event"), "fatal-signal") << run.describe();
  EXPECT_EQ(field(last, "level"), "error");
  EXPECT_EQ(field(last, "signal"), "6");
  EXPECT_EQ(field(last, "live"), "1");
  EXPECT_EQ(field(last, "pid"), std::to_string(run.pid));
  EXPECT_EQ(events(run.log, "map").size(), 2u) << run.describe();
  EXPECT_EQ(events(run.log, "unmap").size(), 1u) << run.describe();
  EXPECT_EQ(events(run.log, "fatal-signal").size(), 1u) << run.describe();
}

// ---- the program's own SIGSEGV handler ----

// Installed from the executable's .preinit_array, before libegm.so loads:
// the shim logs the signal, then chains to the program's handler.
TEST(SignalTest, HandlerInstalledBeforeTheShimIsStillCalled) {
  RunResult run = reliability::run_program("segv", {{"REL_EARLY_SIGSEGV", "1"}});
  EXPECT_EQ(run.exit_code, kHandlerExitCode) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "program SIGSEGV handler called\n")) << run.describe();
  std::vector<LogLine> fatal = events(run.log, "fatal-signal");
  ASSERT_EQ(fatal.size(), 1u) << run.describe();
  EXPECT_EQ(field(fatal[0], "signal"), "11");
  EXPECT_EQ(field(run.log.back(), "event"), "fatal-signal") << run.describe();
}

// Installed in main, after the shim: the program's handler replaces the
// shim's (no fatal-signal line then), and is called.
TEST(SignalTest, HandlerInstalledAfterTheShimIsCalled) {
  RunResult run = reliability::run_program("segv", {{"REL_LATE_SIGSEGV", "1"}});
  EXPECT_EQ(run.exit_code, kHandlerExitCode) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "program SIGSEGV handler called\n")) << run.describe();
}

// A sanitizer build's runtime installs its own SIGSEGV handler, which would be
// the "program's handler" the shim chains to; handle_segv=0 takes it away so
// that the default action is what the shim falls through to.
std::map<std::string, std::string> without_sanitizer_segv_handler() {
  std::map<std::string, std::string> env;
  for (const char* name : {"ASAN_OPTIONS", "TSAN_OPTIONS"}) {
    const char* value = std::getenv(name);
    env[name] = std::string(value != nullptr ? value : "") + ":handle_segv=0";
  }
  return env;
}

TEST(SignalTest, WithoutAHandlerTheDefaultActionEndsTheProcess) {
  RunResult run = reliability::run_program("segv", without_sanitizer_segv_handler());
  EXPECT_EQ(run.signal, SIGSEGV) << run.describe();
  std::vector<LogLine> fatal = events(run.log, "fatal-signal");
  ASSERT_EQ(fatal.size(), 1u) << run.describe();
  EXPECT_EQ(field(fatal[0], "signal"), "11");
}

// The shim's own threads block every signal, so a signal the program's only
// thread blocks waits for that thread instead of running on one of them.
TEST(SignalTest, ShimThreadsNeverTakeTheProgramsSignals) {
  std::string dir = preload::make_temp_dir();
  RunResult run =
      reliability::run_program("signal-threads", {{"EGM_SNAPSHOT_FILE", dir + "/snap-%p"}});
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "while blocked: handler ran=0\n")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "after unblock: on the main thread=1\n"))
      << run.describe();
}

}  // namespace
