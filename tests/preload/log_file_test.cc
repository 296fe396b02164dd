// EGM_LOG_FILE's %r (rank from the launcher's variables) and %h (host name),
// through the preloaded shim: which file a process writes and what its start
// line says. Hostile rank values are in tests/hostile.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>

#include "tests/preload/harness.h"

namespace {

using preload::entries_of;
using preload::events;
using preload::field;
using preload::LogLine;
using preload::RunOptions;
using preload::RunResult;

// The host name as the shim writes it (plain names are kept as they are).
std::string this_host() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

// alloc_program's `malloc` scenario with EGM_LOG_FILE=DIR/egm-%r-%h.log.
RunResult run_with_rank(std::map<std::string, std::string> env) {
  RunOptions options;
  options.program = "tests/preload/alloc_program";
  options.args = {"malloc"};
  options.log_file = false;
  options.env = std::move(env);
  return preload::run(options);
}

// The run wrote exactly the file for `rank`, whose start line names it and the host.
void expect_log_of_rank(std::map<std::string, std::string> env, const std::string& rank) {
  // A directory of its own, so that any other file written shows.
  std::string dir = preload::make_temp_dir();
  env["EGM_LOG_FILE"] = dir + "/egm-%r-%h.log";
  RunResult result = run_with_rank(env);
  ASSERT_EQ(result.exit_code, 0) << result.describe();
  std::string expected = dir + "/egm-" + rank + "-" + this_host() + ".log";
  EXPECT_EQ(entries_of(dir), (std::set<std::string>{"egm-" + rank + "-" + this_host() + ".log"}))
      << result.describe();
  std::vector<LogLine> log = preload::parse_log(preload::read_file(expected));
  std::vector<LogLine> starts = events(log, "start");
  ASSERT_EQ(starts.size(), 1u) << preload::read_file(expected);
  EXPECT_EQ(field(starts[0], "rank"), rank);
  EXPECT_EQ(field(starts[0], "host"), this_host());
  EXPECT_EQ(events(log, "map").size(), 1u);
}

TEST(LogFileTest, RankComesFromRankFirst) {
  expect_log_of_rank(
      {{"RANK", "3"}, {"SLURM_PROCID", "5"}, {"OMPI_COMM_WORLD_RANK", "6"}, {"PMI_RANK", "7"}},
      "3");
}

TEST(LogFileTest, ThenSlurmProcid) {
  expect_log_of_rank({{"SLURM_PROCID", "5"}, {"OMPI_COMM_WORLD_RANK", "6"}, {"PMI_RANK", "7"}},
                     "5");
}

TEST(LogFileTest, ThenOpenMpi) {
  expect_log_of_rank({{"OMPI_COMM_WORLD_RANK", "6"}, {"PMI_RANK", "7"}}, "6");
}

TEST(LogFileTest, ThenPmi) { expect_log_of_rank({{"PMI_RANK", "7"}}, "7"); }

TEST(LogFileTest, NoRankVariableGivesNoRank) { expect_log_of_rank({}, "norank"); }

TEST(LogFileTest, AnEmptyVariableCountsAsUnset) {
  expect_log_of_rank({{"RANK", ""}, {"SLURM_PROCID", "012"}}, "12");
}

TEST(LogFileTest, ABadFirstValueIsNotReplacedByALaterOne) {
  expect_log_of_rank({{"RANK", "1x"}, {"SLURM_PROCID", "2"}}, "norank");
}

}  // namespace
