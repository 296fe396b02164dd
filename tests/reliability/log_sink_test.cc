// The shim's log sinks against a program's habits (issue 15), as real
// processes: a program that closes every descriptor and reuses the numbers,
// a log FIFO with no reader or whose reader leaves, stderr a closed pipe,
// EGM_LOG_FILE=/dev/full. The program never gets a signal, never hangs and
// never finds the shim's lines in its own files; a failing sink says so once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <string>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

namespace {

using preload::RunResult;

RunResult run_with_log(const std::string& scenario, const std::string& log_path,
                       std::map<std::string, std::string> env = {}) {
  preload::RunOptions options;
  options.program = reliability::kProgram;
  options.args = {scenario};
  options.log_file = false;
  options.env = std::move(env);
  if (!log_path.empty()) options.env["EGM_LOG_FILE"] = log_path;
  options.env["REL_WATCHDOG_SECONDS"] = "10";  // a hang ends in SIGALRM, not a stuck test
  return preload::run(options);
}

TEST(LogSinkTest, ProgramThatClosesAndReusesDescriptorsNeverGetsTheShimsLines) {
  std::string dir = preload::make_temp_dir();
  std::string log_path = dir + "/egm.log";
  std::string own_path = dir + "/own.txt";
  RunResult run = run_with_log("log-takeover", log_path, {{"REL_OWN_FILE", own_path}});
  preload::expect_clean_exit(run);
  EXPECT_EQ(preload::read_file(own_path), "the program's own line\n") << run.describe();
  std::string log = preload::read_file(log_path);
  // Both allocations are in the shim's own file: it was reopened, not lost.
  EXPECT_EQ(reliability::count_event_lines(log, "map"), 2u) << log << run.describe();
  EXPECT_EQ(reliability::count_event_lines(log, "unmap"), 2u) << log;
  EXPECT_EQ(reliability::count_lines_containing(run.err, "reusing") +
                reliability::count_lines_containing(run.err, "reused"),
            1u)
      << run.describe();
}

TEST(LogSinkTest, FifoWithoutAReaderDoesNotBlockTheProgram) {
  std::string dir = preload::make_temp_dir();
  std::string fifo = dir + "/log.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  RunResult run = run_with_log("one", fifo);
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.out, reliability::run_program_without_shim("one").out) << run.describe();
  EXPECT_EQ(reliability::count_lines_containing(run.err, "EGM_LOG_FILE"), 1u) << run.describe();
  EXPECT_TRUE(preload::contains(run.err, "a FIFO that no process reads")) << run.describe();
  EXPECT_EQ(reliability::count_event_lines(run.err, "map"), 1u) << run.describe();
}

TEST(LogSinkTest, FifoWhoseReaderLeavesRaisesNoSigpipe) {
  std::string dir = preload::make_temp_dir();
  std::string fifo = dir + "/log.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  RunResult run = run_with_log("fifo-reader-gone", fifo, {{"REL_FIFO", fifo}});
  EXPECT_EQ(run.signal, 0) << run.describe();
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "reader open=1\n")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "survived\n")) << run.describe();
  EXPECT_EQ(reliability::count_lines_containing(run.err, "cannot write to EGM_LOG_FILE"), 1u)
      << run.describe();
}

TEST(LogSinkTest, StderrThatBecameAClosedPipeRaisesNoSigpipe) {
  RunResult run = run_with_log("stderr-closed-pipe", "", {{"EGM_LOG_LEVEL", "info"}});
  EXPECT_EQ(run.signal, 0) << run.describe();
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "survived\n")) << run.describe();
  EXPECT_TRUE(preload::contains(run.out, "free=cudaSuccess")) << run.describe();
}

TEST(LogSinkTest, UnwritableFileSaysSoOnceOnStderr) {
  RunResult run = run_with_log("one", "/dev/full");
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.out, reliability::run_program_without_shim("one").out) << run.describe();
  EXPECT_EQ(reliability::count_lines_containing(run.err, "EGM_LOG_FILE"), 1u) << run.describe();
  EXPECT_TRUE(preload::contains(run.err, "cannot write to EGM_LOG_FILE \"/dev/full\""))
      << run.describe();
}

}  // namespace
