// The host ledger (shim/core/host_ledger.h): caps over several processes,
// dead processes' entries and locks, files that must not be trusted, a full
// table; and the Budget on top of it.
#include "shim/core/host_ledger.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shim/core/budget.h"

namespace egm {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
// The file layout, as host_ledger.cc writes it (a test of the layout too).
constexpr size_t kHeaderBytes = 32;
constexpr size_t kEntryBytes = 16 + 8 * kLedgerNodes;
constexpr size_t kFileBytes = kHeaderBytes + kEntryBytes * kLedgerEntries;

std::string temp_path(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string path = std::string(base ? base : "/tmp") + "/" + name + "-" +
                     std::to_string(::getpid());
  ::unlink(path.c_str());
  return path;
}

// Another live process to stand for a second shim: the test's parent.
ProcessIdentity parent_process() {
  pid_t parent = ::getppid();
  return {parent, process_start_time(parent).value_or(0)};
}

void write_bytes(const std::string& path, size_t offset, const void* data, size_t size) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data, size, static_cast<off_t>(offset)), static_cast<ssize_t>(size));
  ::close(fd);
}

TEST(HostLedgerTest, TheCapHoldsForTheSumOverProcesses) {
  std::string path = temp_path("ledger-sum");
  std::string why;
  auto mine = HostLedger::open(path, why);
  ASSERT_NE(mine, nullptr) << why;
  auto other = HostLedger::open(path, why, parent_process());
  ASSERT_NE(other, nullptr) << why;
  EXPECT_EQ(other->try_charge(0, 6 * kMiB, 10 * kMiB, why), HostLedger::Charge::kCharged);
  EXPECT_EQ(mine->try_charge(0, 4 * kMiB, 10 * kMiB, why), HostLedger::Charge::kCharged);
  EXPECT_EQ(mine->try_charge(0, 1, 10 * kMiB, why), HostLedger::Charge::kRefused);
  EXPECT_EQ(mine->try_charge(1, 8 * kMiB, 10 * kMiB, why), HostLedger::Charge::kCharged)
      << "another node has its own cap";
  EXPECT_EQ(mine->host_bytes(0), 10 * kMiB);
  ASSERT_TRUE(other->uncharge(0, 2 * kMiB, why));
  EXPECT_EQ(mine->try_charge(0, 2 * kMiB, 10 * kMiB, why), HostLedger::Charge::kCharged);
  EXPECT_EQ(mine->try_charge(0, 1, 10 * kMiB, why), HostLedger::Charge::kRefused);
  EXPECT_EQ(mine->try_charge(0, SIZE_MAX, SIZE_MAX - 1, why), HostLedger::Charge::kRefused);
  EXPECT_EQ(mine->try_charge(kLedgerNodes, kMiB, SIZE_MAX, why), HostLedger::Charge::kUnavailable);

  auto rows = HostLedger::read(path, why);
  ASSERT_TRUE(rows) << why;
  ASSERT_EQ(rows->size(), 2u);
  size_t node0 = 0;
  for (const LedgerRow& row : *rows) {
    EXPECT_TRUE(row.alive);
    node0 += row.bytes[0];
  }
  EXPECT_EQ(node0, 10 * kMiB);
  other->leave();
  EXPECT_EQ(mine->host_bytes(0), 10 * kMiB) << "bytes still mapped stay counted at exit";
  ASSERT_TRUE(other->uncharge(0, 4 * kMiB, why));
  other->leave();
  rows = HostLedger::read(path, why);
  ASSERT_TRUE(rows) << why;
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().process.pid, ::getpid());
  EXPECT_EQ(rows->front().bytes[0], 6 * kMiB);
  EXPECT_EQ(rows->front().bytes[1], 8 * kMiB);
}

// A child charges and dies without leaving; `reap` says whether it is
// waited for first (else it is a zombie, whose memory the kernel has freed).
void expect_dead_child_reclaimed(bool reap) {
  std::string path = temp_path(reap ? "ledger-dead" : "ledger-zombie");
  std::string why;
  auto mine = HostLedger::open(path, why);
  ASSERT_NE(mine, nullptr) << why;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string child_why;
    auto ledger = HostLedger::open(path, child_why);
    bool charged = ledger && ledger->try_charge(0, 7 * kMiB, 8 * kMiB, child_why) ==
                                 HostLedger::Charge::kCharged;
    char byte = charged ? '1' : '0';
    (void)!::write(ready[1], &byte, 1);
    ::pause();  // killed
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ASSERT_EQ(byte, '1');
  EXPECT_EQ(mine->try_charge(0, 2 * kMiB, 8 * kMiB, why), HostLedger::Charge::kRefused)
      << "the child is alive and holds 7 MiB";
  ::kill(child, SIGKILL);
  if (reap) {
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  } else {
    // Dead but not reaped: wait until /proc says so.
    for (int i = 0; i < 2000 && process_start_time(child); ++i) ::usleep(1000);
  }
  EXPECT_EQ(mine->try_charge(0, 8 * kMiB, 8 * kMiB, why), HostLedger::Charge::kCharged) << why;
  auto rows = HostLedger::read(path, why);
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 1u) << "the dead child's entry is gone";
  if (!reap) ::waitpid(child, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST(HostLedgerTest, ADeadProcessesBytesAreReclaimed) { expect_dead_child_reclaimed(true); }
TEST(HostLedgerTest, AZombiesBytesAreReclaimed) { expect_dead_child_reclaimed(false); }

TEST(HostLedgerTest, ALockHeldTooLongGivesUpInBoundedTimeAndADeadHoldersLockIsFree) {
  std::string path = temp_path("ledger-lock");
  std::string why;
  auto mine = HostLedger::open(path, why);
  ASSERT_NE(mine, nullptr) << why;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = ::open(path.c_str(), O_RDWR);
    bool locked = fd >= 0 && ::flock(fd, LOCK_EX) == 0;
    char byte = locked ? '1' : '0';
    (void)!::write(ready[1], &byte, 1);
    ::pause();  // holds the lock until killed
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ASSERT_EQ(byte, '1');
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(mine->try_charge(0, kMiB, SIZE_MAX, why), HostLedger::Charge::kUnavailable);
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(kLedgerLockWaitMs));
  EXPECT_LT(waited, std::chrono::milliseconds(kLedgerLockWaitMs + 750));
  EXPECT_NE(why.find("lock"), std::string::npos) << why;
  ::kill(child, SIGKILL);  // dies holding the lock: the kernel drops it
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  EXPECT_EQ(mine->try_charge(0, kMiB, SIZE_MAX, why), HostLedger::Charge::kCharged) << why;
  ::close(ready[0]);
  ::close(ready[1]);
}

std::string open_failure(const std::string& path) {
  std::string why;
  auto ledger = HostLedger::open(path, why);
  return ledger ? "" : why;
}

TEST(HostLedgerTest, FilesThatAreNotThisVersionsLedgerAreNotTrusted) {
  std::string path = temp_path("ledger-garbage");
  std::string garbage(kFileBytes, 'x');
  {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
    ::close(fd);
  }
  EXPECT_NE(open_failure(path).find("not an egm ledger"), std::string::npos) << open_failure(path);
  std::string why;
  EXPECT_FALSE(HostLedger::read(path, why));

  ASSERT_EQ(::truncate(path.c_str(), 100), 0);
  EXPECT_NE(open_failure(path).find("another version's ledger"), std::string::npos)
      << open_failure(path);

  // A good ledger whose version field changed (another release).
  ::unlink(path.c_str());
  ASSERT_EQ(open_failure(path), "");
  uint32_t other_version = 999;
  write_bytes(path, 8, &other_version, sizeof other_version);
  EXPECT_NE(open_failure(path).find("another egm-shim version"), std::string::npos)
      << open_failure(path);

  // Another user's uid in the header.
  ::unlink(path.c_str());
  ASSERT_EQ(open_failure(path), "");
  uint32_t other_uid = ::geteuid() + 1;
  write_bytes(path, 16, &other_uid, sizeof other_uid);
  EXPECT_NE(open_failure(path).find("another user's"), std::string::npos) << open_failure(path);

  // Writable by others: anyone could have written it.
  ::unlink(path.c_str());
  ASSERT_EQ(open_failure(path), "");
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  EXPECT_NE(open_failure(path).find("writable by other users"), std::string::npos);

  // A symbolic link is not followed.
  std::string link = temp_path("ledger-link");
  ::unlink(path.c_str());
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  EXPECT_NE(open_failure(link), "");
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "nothing created through the link";
}

TEST(HostLedgerTest, AFileOfAnotherOwnerIsNotTrusted) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give the file away";
  std::string path = temp_path("ledger-owner");
  ASSERT_EQ(open_failure(path), "");
  if (::chown(path.c_str(), 12345, 12345) != 0) GTEST_SKIP() << "chown not allowed here";
  EXPECT_NE(open_failure(path).find("belongs to another user"), std::string::npos);
}

TEST(HostLedgerTest, AnAllZeroFileIsANewLedger) {
  // Its creator died between sizing it and writing the header.
  std::string path = temp_path("ledger-zero");
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, kFileBytes), 0);
  ::close(fd);
  std::string why;
  auto ledger = HostLedger::open(path, why);
  ASSERT_NE(ledger, nullptr) << why;
  EXPECT_EQ(ledger->try_charge(0, kMiB, kMiB, why), HostLedger::Charge::kCharged);
}

TEST(HostLedgerTest, AFullTableRefusesANewProcessAndFreesDeadEntries) {
  std::string path = temp_path("ledger-full");
  ASSERT_EQ(open_failure(path), "");  // creates it; the entry is then left for the test to fill
  ProcessIdentity alive = parent_process();
  for (int i = 0; i < kLedgerEntries; ++i) {
    int32_t pid = alive.pid;
    write_bytes(path, kHeaderBytes + i * kEntryBytes, &pid, sizeof pid);
    write_bytes(path, kHeaderBytes + i * kEntryBytes + 8, &alive.start_time, 8);
  }
  EXPECT_NE(open_failure(path).find("full"), std::string::npos) << open_failure(path);
  // One entry of a process that is gone (start time of another process).
  uint64_t other_start = alive.start_time + 1;
  write_bytes(path, kHeaderBytes + 7 * kEntryBytes + 8, &other_start, 8);
  EXPECT_EQ(open_failure(path), "") << "the dead process's entry is reused";
}

TEST(HostLedgerTest, TheLastProcessOutRemovesTheFile) {
  std::string path = temp_path("ledger-last");
  std::string why;
  auto mine = HostLedger::open(path, why);
  ASSERT_NE(mine, nullptr) << why;
  auto other = HostLedger::open(path, why, parent_process());
  ASSERT_NE(other, nullptr) << why;
  ASSERT_EQ(mine->try_charge(0, kMiB, SIZE_MAX, why), HostLedger::Charge::kCharged);
  mine->leave();
  other->leave();
  EXPECT_EQ(::access(path.c_str(), F_OK), 0) << "this process still has 1 MiB counted";
  ASSERT_TRUE(mine->uncharge(0, kMiB, why));
  mine->leave();
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "nobody left: no file";
  auto again = HostLedger::open(path, why);
  ASSERT_NE(again, nullptr) << why;
  EXPECT_EQ(again->try_charge(0, kMiB, kMiB, why), HostLedger::Charge::kCharged);
}

TEST(HostLedgerTest, StartTimesTellProcessesApart) {
  ProcessIdentity me = current_process();
  EXPECT_EQ(me.pid, ::getpid());
  EXPECT_NE(me.start_time, 0u);
  EXPECT_TRUE(process_alive(me));
  EXPECT_FALSE(process_alive({me.pid, me.start_time + 1})) << "a reused pid";
  EXPECT_FALSE(process_alive({0, 0}));
  EXPECT_FALSE(process_alive({-1, 0}));
  EXPECT_EQ(ledger_path_for("off"), "");
  EXPECT_EQ(ledger_path_for("/x/y"), "/x/y");
  EXPECT_EQ(ledger_path_for("auto").rfind("/dev/shm/egm-ledger-" + std::to_string(::geteuid()), 0),
            0u);
}

TEST(BudgetLedgerTest, CapsCountOtherProcessesBytes) {
  std::string path = temp_path("ledger-budget");
  std::string why;
  auto other = HostLedger::open(path, why, parent_process());
  ASSERT_NE(other, nullptr) << why;
  ASSERT_EQ(other->try_charge(0, 6 * kMiB, SIZE_MAX, why), HostLedger::Charge::kCharged);
  std::vector<std::string> warnings;
  Budget budget({{0, 8 * kMiB}});
  budget.share_host_wide(path, [&](const std::string& line) { warnings.push_back(line); });
  EXPECT_TRUE(budget.host_wide());
  EXPECT_FALSE(budget.try_charge(0, 4 * kMiB, budget.limit(0)));
  EXPECT_TRUE(budget.try_charge(0, 2 * kMiB, budget.limit(0)));
  EXPECT_EQ(budget.usage_by_node()[0].current_bytes, 2 * kMiB) << "its own counters stay its own";
  auto [free, total] = budget.room({0}, [](int) { return 64 * kMiB; }, [](int) { return 64 * kMiB; });
  EXPECT_EQ(free, 0u);
  EXPECT_EQ(total, 8 * kMiB);
  budget.uncharge(0, 2 * kMiB);
  EXPECT_EQ(other->host_bytes(0), 6 * kMiB);
  ASSERT_TRUE(other->uncharge(0, 6 * kMiB, why));
  EXPECT_TRUE(budget.try_charge(0, 8 * kMiB, budget.limit(0)));
  EXPECT_EQ(other->host_bytes(0), 8 * kMiB);
  budget.uncharge(0, 8 * kMiB);
  budget.leave_host_wide();
  auto rows = HostLedger::read(path, why);
  ASSERT_TRUE(rows) << why;
  EXPECT_EQ(rows->size(), 1u) << "the budget's entry was cleared";
  EXPECT_TRUE(warnings.empty());
}

// Whether this process has a descriptor open on `path`.
bool has_open(const std::string& path) {
  for (int fd = 0; fd < 1024; ++fd) {
    char link[4096];
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    ssize_t length = ::readlink(proc.c_str(), link, sizeof link - 1);
    if (length > 0 && std::string(link, length) == path) return true;
  }
  return false;
}

TEST(BudgetLedgerTest, AForkedChildClosesItsCopyOfTheLedger) {
  std::string path = temp_path("ledger-fork");
  Budget budget({{0, 8 * kMiB}});
  budget.share_host_wide(path, nullptr);
  ASSERT_TRUE(budget.try_charge(0, 2 * kMiB, budget.limit(0)));
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!has_open(path)) ::_exit(2);  // else the test would prove nothing
    budget.forget_ledger_after_fork();
    ::_exit(has_open(path) ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: still open in the child; 2: never was";
  EXPECT_TRUE(budget.host_wide()) << "the parent keeps its ledger";
  std::string why;
  auto rows = HostLedger::read(path, why);
  ASSERT_TRUE(rows) << why;
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->front().bytes[0], 2 * kMiB) << "the child left the parent's entry alone";
}

TEST(BudgetLedgerTest, AnUnusableLedgerFallsBackToThisProcessWithOneWarning) {
  std::string path = temp_path("ledger-bad");
  {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "not a ledger", 12), 12);
    ::close(fd);
  }
  std::vector<std::string> warnings;
  Budget budget({{0, 4 * kMiB}});
  budget.share_host_wide(path, [&](const std::string& line) { warnings.push_back(line); });
  EXPECT_TRUE(budget.try_charge(0, 4 * kMiB, budget.limit(0)));
  EXPECT_FALSE(budget.try_charge(0, 1, budget.limit(0)));
  budget.uncharge(0, 4 * kMiB);
  EXPECT_TRUE(budget.try_charge(0, 4 * kMiB, budget.limit(0)));
  EXPECT_FALSE(budget.host_wide());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("host ledger not used"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find(path), std::string::npos) << warnings[0];
}

}  // namespace
}  // namespace egm
