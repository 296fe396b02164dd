// One cap per host (EGM_LEDGER): real processes under libegm.so over the fake
// driver map and free 2 MiB chunks side by side under EGM_NODE_LIMIT, one is
// killed with SIGKILL while it holds host memory; the fake driver records the
// host bytes every live process has created (tests/doubles/host_record.h),
// independently of the shim's ledger, and the sum must never pass the cap.
// Then a later process must get the whole cap, the killed one's bytes too.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "shim/core/host_ledger.h"
#include "tests/doubles/host_record.h"
#include "tests/preload/harness.h"

namespace {

using preload::RunOptions;
using preload::RunResult;

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kCap = 10 * kMiB;  // 5 chunks over all processes
constexpr const char* kProgram = "tests/reliability/ledger_program";

RunResult run_ledger_program(const std::string& scenario,
                             std::map<std::string, std::string> env) {
  RunOptions options;
  options.program = kProgram;
  options.args = {scenario};
  options.env = std::move(env);
  return preload::run(options);
}

size_t count_in_logs(const std::vector<RunResult>& runs, const std::string& part) {
  size_t count = 0;
  for (const RunResult& run : runs) {
    for (const std::string& line : preload::lines_of(run.log_text)) {
      count += line.find(part) != std::string::npos;
    }
  }
  return count;
}

TEST(LedgerTest, TheCapHoldsOverProcessesAndAKilledProcessesBytesComeBack) {
  std::string dir = preload::make_temp_dir();
  std::string ledger = dir + "/ledger";
  std::string record = dir + "/record";
  std::map<std::string, std::string> shared = {
      {"EGM_LEDGER", ledger},
      {"EGM_NODE_LIMIT", "0:10M"},
      {"FAKE_CUDA_HOST_RECORD", record},
      {"EGM_LOG_LEVEL", "info"},
      {"LEDGER_STEPS", "400"},
  };
  constexpr int kProcesses = 4;
  std::vector<RunResult> runs(kProcesses);
  std::vector<std::thread> threads;
  for (int i = 0; i < kProcesses; ++i) {
    std::map<std::string, std::string> env = shared;
    env["LEDGER_SEED"] = std::to_string(i + 1);
    env["EGM_FALLBACK"] = "device";
    if (i == 0) {  // the one that dies holding host memory
      env["EGM_FALLBACK"] = "error";
      env["LEDGER_KILL_AT"] = "200";
    }
    threads.emplace_back([&runs, i, env] { runs[i] = run_ledger_program("churn", env); });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(runs[0].signal, SIGKILL) << runs[0].describe();
  size_t holding = runs[0].out.find("holding=");
  ASSERT_NE(holding, std::string::npos) << runs[0].describe();
  EXPECT_GE(std::stoi(runs[0].out.substr(holding + 8)), 2)
      << "it died holding host memory\n" << runs[0].describe();
  for (int i = 1; i < kProcesses; ++i) EXPECT_EQ(runs[i].exit_code, 0) << runs[i].describe();
  fake::HostRecord during = fake::read_host_record(record.c_str());
  EXPECT_LE(during.peak_bytes, kCap) << "host bytes over live processes passed the cap";
  EXPECT_GE(during.peak_bytes, kCap - 4 * kMiB) << "the cap was never approached: a weak test";
  EXPECT_GT(count_in_logs(runs, "EGM_NODE_LIMIT reached"), 0u)
      << "no request was refused: the processes never competed";

  // A later process gets the whole cap: the killed one's 4 MiB were reclaimed.
  std::map<std::string, std::string> env = shared;
  env["EGM_FALLBACK"] = "error";
  RunResult later = run_ledger_program("fill", env);
  EXPECT_EQ(later.exit_code, 0) << later.describe();
  EXPECT_TRUE(preload::contains(later.out, "filled=5\n")) << later.describe();
  fake::HostRecord after = fake::read_host_record(record.c_str());
  EXPECT_LE(after.peak_bytes, kCap);
  EXPECT_EQ(after.live_bytes, 0);

  EXPECT_NE(access(ledger.c_str(), F_OK), 0)
      << "the last process out (the later one, which reclaimed the killed one's entry) removes "
         "the ledger";
}

// A ledger file cut short while a process has it mapped (by a program that
// ignores its lock): the process stops using it with one notice line, and
// never touches the pages past the new end (SIGBUS).
TEST(LedgerTest, ALedgerCutShortWhileInUseIsLeftWithANotice) {
  for (const char* size : {"0", "100"}) {
    std::string dir = preload::make_temp_dir();
    RunResult run = run_ledger_program("truncate", {{"EGM_LEDGER", dir + "/ledger"},
                                                    {"EGM_NODE_LIMIT", "0:10M"},
                                                    {"LEDGER_TRUNCATE_TO", size}});
    EXPECT_EQ(run.signal, 0) << size << "\n" << run.describe();
    EXPECT_EQ(run.exit_code, 0) << run.describe();
    EXPECT_TRUE(preload::contains(run.out, "after-truncate=cudaSuccess cut=0 free=cudaSuccess "
                                           "malloc=cudaSuccess free=cudaSuccess"))
        << run.describe();
    EXPECT_EQ(count_in_logs({run}, "changed size under this process"), 1u) << run.describe();
  }
}

// egm-inspect --live without a PID lists the ledger: a live process with its
// bytes, a dead one marked dead, and the total the caps count.
TEST(LedgerTest, InspectLiveListsTheHostsProcesses) {
  std::string dir = preload::make_temp_dir();
  std::string ledger = dir + "/ledger";
  std::string why;
  auto mine = egm::HostLedger::open(ledger, why);
  ASSERT_NE(mine, nullptr) << why;
  ASSERT_EQ(mine->try_charge(0, 6 * kMiB, SIZE_MAX, why), egm::HostLedger::Charge::kCharged);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string child_why;
    auto ledger_of_child = egm::HostLedger::open(ledger, child_why);
    if (ledger_of_child) ledger_of_child->try_charge(0, 4 * kMiB, SIZE_MAX, child_why);
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  kill(child, SIGKILL);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);

  std::string inspect = preload::runfile("tools/inspect/egm-inspect");
  std::string out_path = dir + "/out";
  std::string command =
      "EGM_LEDGER='" + ledger + "' '" + inspect + "' --live > '" + out_path + "' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << preload::read_file(out_path);
  std::string out = preload::read_file(out_path);
  EXPECT_TRUE(preload::contains(out, "2 processes")) << out;
  EXPECT_TRUE(preload::contains(out, std::to_string(getpid()) + "  alive     0  6291456")) << out;
  EXPECT_TRUE(preload::contains(out, std::to_string(child) + "   dead     0  4194304")) << out;
  EXPECT_TRUE(preload::contains(out, "node 0: 6291456 bytes")) << out;

  // --ledger names it; a file that is not a ledger is an error, not a report.
  std::string garbage = dir + "/garbage";
  preload::write_file(garbage, "not a ledger");
  command = "'" + inspect + "' --live --ledger '" + garbage + "' > '" + out_path + "' 2>&1";
  EXPECT_NE(std::system(command.c_str()), 0);
  EXPECT_TRUE(preload::contains(preload::read_file(out_path), "cannot read the host ledger"))
      << preload::read_file(out_path);

  // No ledger (the last process out removed it): nothing to list, not an error.
  command = "'" + inspect + "' --live --ledger '" + dir + "/none' > '" + out_path + "' 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0);
  EXPECT_TRUE(preload::contains(preload::read_file(out_path), "none (no process"))
      << preload::read_file(out_path);
  close(ready[0]);
  close(ready[1]);
}

}  // namespace
