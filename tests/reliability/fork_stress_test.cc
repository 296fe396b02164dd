// fork() under the shim while other threads allocate, free and call
// cudaFree(nullptr), with a deferred free pending in the parent (issue 15):
// every child finishes (each is bounded by a timeout), no child unmaps the
// parent's memory, and SIGUSR2 to a child never makes the parent write its
// live view.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

namespace {

using preload::RunResult;

TEST(ForkStressTest, HundredsOfForksWhileThreadsAllocateAndFree) {
  // GCC 12's ASan runtime has no fork handler (added to LLVM's in 2023,
  // llvm/llvm-project#75290): a child forked while another thread is inside
  // ASan's malloc can deadlock there, with or without the shim. CI saw it once.
  if (reliability::kAddressSanitizer)
    GTEST_SKIP() << "ASan's allocator is not fork-safe in this toolchain; covered by the plain "
                    "and ThreadSanitizer builds";
  // ThreadSanitizer makes each fork of a threaded process slow.
  std::string forks = reliability::kThreadSanitizer ? "60" : "300";
  RunResult run = reliability::run_program("fork-storm", {{"REL_FORKS", forks},
                                                          {"REL_WATCHDOG_SECONDS", "240"},
                                                          {"EGM_MEMINFO", "device+host"},
                                                          {"EGM_POOL_LIMIT", "64M"},
                                                          {"EGM_SUBALLOC", "1"}});
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "forks=" + forks + " hung=0 failed=0\n"))
      << run.describe();
  EXPECT_EQ(run.at("parent.mapped_deferred"), "1") << run.describe();
  // The children's logs (EGM_LOG_FILE=egm-%p.log): nothing of the parent's unmapped there.
  size_t child_logs = 0;
  for (const std::string& name : preload::entries_of(run.dir)) {
    if (name.rfind("egm-", 0) != 0 || name == "egm-" + std::to_string(run.pid) + ".log") continue;
    ++child_logs;
    std::string text = preload::read_file(run.dir + "/" + name);
    EXPECT_EQ(reliability::count_event_lines(text, "unmap"), 0u) << name << "\n" << text;
    EXPECT_EQ(reliability::count_event_lines(text, "chunk-unmap"), 0u) << name << "\n" << text;
  }
  EXPECT_GT(child_logs, 0u) << "no child wrote a log: the check above saw nothing";
}

TEST(ForkStressTest, SigusrTwoToAChildNeverWakesTheParentsLiveView) {
  std::string dir = preload::make_temp_dir();
  RunResult run =
      reliability::run_program("fork-sigusr2", {{"EGM_SNAPSHOT_FILE", dir + "/snap-%p"}});
  preload::expect_clean_exit(run);
  struct stat status {};
  EXPECT_NE(stat((dir + "/snap-" + std::to_string(run.pid)).c_str(), &status), 0)
      << "the parent wrote a snapshot for its child's signal\n"
      << run.describe();
  EXPECT_NE(stat((dir + "/snap-" + run.at("child.pid")).c_str(), &status), 0) << run.describe();
  // Without the shim SIGUSR2 ends the child: so it does under the shim.
  EXPECT_TRUE(preload::contains(run.out, "child signaled=" + std::to_string(SIGUSR2) + "\n"))
      << run.describe();
}

}  // namespace
