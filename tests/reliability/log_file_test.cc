// EGM_LOG_FILE safety: the file is created 0640 or tighter, never through a
// symlink, and a path that cannot be opened costs one error line on stderr
// (the log then goes to stderr); the program runs unchanged either way.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

namespace {

using preload::RunResult;

RunResult run_with_log_file(const std::string& path) {
  preload::RunOptions options;
  options.program = reliability::kProgram;
  options.args = {"one"};
  options.log_file = false;
  options.env = {{"EGM_LOG_FILE", path}};
  return preload::run(options);
}

// What a file that cannot be opened must cost: one clear line, the log on
// stderr instead, the program's output unchanged.
void expect_one_error_and_log_on_stderr(const RunResult& run, const std::string& path) {
  preload::expect_clean_exit(run);
  EXPECT_EQ(run.out, reliability::run_program_without_shim("one").out) << run.describe();
  EXPECT_EQ(reliability::count_lines_containing(run.err, "EGM_LOG_FILE"), 1u) << run.describe();
  EXPECT_TRUE(preload::contains(run.err, "egm: cannot open EGM_LOG_FILE \"" + path + "\""))
      << run.describe();
  EXPECT_TRUE(preload::contains(run.err, "logging to stderr")) << run.describe();
  EXPECT_EQ(reliability::count_event_lines(run.err, "map"), 1u) << run.describe();
  EXPECT_EQ(reliability::count_event_lines(run.err, "summary"), 1u) << run.describe();
}

TEST(LogFileTest, IsCreatedWithMode0640OrTighter) {
  std::string dir = preload::make_temp_dir();
  std::string path = dir + "/egm.log";
  RunResult run = run_with_log_file(path);
  preload::expect_clean_exit(run);
  struct stat status {};
  ASSERT_EQ(stat(path.c_str(), &status), 0) << run.describe();
  EXPECT_TRUE(S_ISREG(status.st_mode));
  EXPECT_EQ(status.st_mode & 07777 & ~mode_t{0640}, 0u)
      << "mode " << std::oct << (status.st_mode & 07777);
  EXPECT_EQ(reliability::count_event_lines(preload::read_file(path), "map"), 1u);
}

TEST(LogFileTest, SymlinkToAFileIsNotFollowed) {
  std::string dir = preload::make_temp_dir();
  std::string target = dir + "/target.txt";
  std::string link = dir + "/egm.log";
  preload::write_file(target, "precious\n");
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  RunResult run = run_with_log_file(link);
  EXPECT_EQ(preload::read_file(target), "precious\n") << run.describe();
  expect_one_error_and_log_on_stderr(run, link);
}

TEST(LogFileTest, DanglingSymlinkCreatesNoFile) {
  std::string dir = preload::make_temp_dir();
  std::string target = dir + "/would-be-created.txt";
  std::string link = dir + "/egm.log";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  RunResult run = run_with_log_file(link);
  struct stat status {};
  EXPECT_NE(stat(target.c_str(), &status), 0) << "the shim created the symlink's target";
  expect_one_error_and_log_on_stderr(run, link);
}

TEST(LogFileTest, MissingDirectoryGivesOneErrorAndLogsToStderr) {
  std::string path = preload::make_temp_dir() + "/no/such/dir/egm-%p.log";
  RunResult run = run_with_log_file(path);
  std::string expanded = path.substr(0, path.size() - 6) + std::to_string(run.pid) + ".log";
  expect_one_error_and_log_on_stderr(run, expanded);
}

}  // namespace
