// The live view: a running program with EGM_SNAPSHOT_FILE keeps mappings
// live; egm-inspect --live PID signals it (SIGUSR2) and reports them from the
// snapshot the shim writes. A program that handles SIGUSR2 itself keeps its
// handler.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/preload/harness.h"
#include "tests/reliability/support.h"

extern char** environ;

namespace {

using preload::events;
using preload::field;
using preload::LogLine;
using preload::runfile;

constexpr auto kReadyTimeout = std::chrono::seconds(20);
constexpr auto kToolTimeout = std::chrono::seconds(30);

std::vector<char*> as_pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Spawns `argv` with `env`, stdin from `stdin_fd` (or inherited when -1)
// and stdout/stderr into files in `dir`; the pid, or -1.
pid_t spawn(std::vector<std::string> argv, std::vector<std::string> env, int stdin_fd,
            const std::string& dir, const std::string& name) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, (dir + "/" + name + ".out").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, (dir + "/" + name + ".err").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> arguments = as_pointers(argv);
  std::vector<char*> environment = as_pointers(env);
  pid_t pid = -1;
  int error = posix_spawn(&pid, arguments[0], &actions, nullptr, arguments.data(),
                          env.empty() ? environ : environment.data());
  posix_spawn_file_actions_destroy(&actions);
  return error == 0 ? pid : -1;
}

// The exit status, or -1 when it had to be killed at the deadline.
int wait_with_timeout(pid_t pid, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool wait_for_text(const std::string& path, const std::string& text) {
  auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (preload::contains(preload::read_file(path), text)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::vector<std::string> program_environment(const std::string& dir) {
  std::vector<std::string> env = {
      "PATH=/usr/bin:/bin",
      "LD_LIBRARY_PATH=" + runfile("tests/doubles"),
      "LD_PRELOAD=" + runfile("shim/libegm.so"),
      "ALLOC_PROGRAM_REPORT=" + dir + "/report.txt",
      "EGM_LOG_FILE=" + dir + "/egm-%p.log",
      "EGM_SNAPSHOT_FILE=" + dir + "/snap-%p",
      "EGM_POOL_LIMIT=0",
      "EGM_SUBALLOC=0",
  };
  for (const char* name : {"ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name)) env.push_back(std::string(name) + "=" + value);
  }
  return env;
}

std::map<std::string, std::string> report_of(const std::string& dir) {
  std::map<std::string, std::string> report;
  for (const std::string& line : preload::lines_of(preload::read_file(dir + "/report.txt"))) {
    size_t equals = line.find('=');
    if (equals != std::string::npos) report[line.substr(0, equals)] = line.substr(equals + 1);
  }
  return report;
}

// What one live-view session saw.
struct LiveSession {
  std::string dir;
  pid_t pid = -1;
  bool ready = false;
  int inspect_status = -2;
  std::string inspect_out, inspect_err;
  std::string snapshot;
  int program_status = -2;
  std::map<std::string, std::string> report;

  std::string describe() const {
    return "inspect status " + std::to_string(inspect_status) + "\n--- inspect stdout\n" +
           inspect_out + "--- inspect stderr\n" + inspect_err + "--- snapshot\n" + snapshot +
           "--- program stdout\n" + preload::read_file(dir + "/program.out") +
           "--- program stderr\n" + preload::read_file(dir + "/program.err");
  }
};

// Starts live-wait, runs egm-inspect --live on it, then lets it finish.
LiveSession run_live_session() {
  LiveSession session;
  session.dir = preload::make_temp_dir();
  int to_program[2];
  if (pipe(to_program) != 0) return session;
  session.pid = spawn({runfile(reliability::kProgram), "live-wait"},
                      program_environment(session.dir), to_program[0], session.dir, "program");
  close(to_program[0]);
  session.ready = session.pid > 0 && wait_for_text(session.dir + "/program.out", "ready\n");
  if (session.ready) {
    std::string snapshot_template = session.dir + "/snap-%p";
    pid_t inspect = spawn({runfile("tools/inspect/egm-inspect"), "--live",
                           std::to_string(session.pid), "--snapshot-file", snapshot_template},
                          {}, -1, session.dir, "inspect");
    session.inspect_status = wait_with_timeout(inspect, kToolTimeout);
    session.inspect_out = preload::read_file(session.dir + "/inspect.out");
    session.inspect_err = preload::read_file(session.dir + "/inspect.err");
    session.snapshot =
        preload::read_file(session.dir + "/snap-" + std::to_string(session.pid));
  }
  ssize_t ignored = write(to_program[1], "go\n", 3);
  (void)ignored;
  close(to_program[1]);
  if (session.pid > 0) session.program_status = wait_with_timeout(session.pid, kToolTimeout);
  session.report = report_of(session.dir);
  return session;
}

const LiveSession& live_session() {
  static const LiveSession* session = new LiveSession(run_live_session());
  return *session;
}

const std::vector<std::string> kLiveLabels = {"l1", "l2", "l3"};

TEST(LiveViewTest, EgmInspectListsTheLiveMappings) {
  const LiveSession& session = live_session();
  ASSERT_TRUE(session.ready) << session.describe();
  ASSERT_EQ(session.inspect_status, 0) << session.describe();
  EXPECT_TRUE(preload::contains(session.inspect_out, "Live mappings at ")) << session.describe();
  for (const std::string& label : kLiveLabels) {
    std::string addr = session.report.count(label + ".addr") ? session.report.at(label + ".addr")
                                                             : "<no " + label + ".addr>";
    EXPECT_TRUE(preload::contains(session.inspect_out, addr)) << label << " " << addr << "\n"
                                                              << session.describe();
  }
  ASSERT_TRUE(session.report.count("freed.addr"));
  EXPECT_FALSE(preload::contains(session.inspect_out, session.report.at("freed.addr") + " "))
      << session.describe();
  EXPECT_EQ(session.program_status, 0) << session.describe();
}

TEST(LiveViewTest, SnapshotHasAHeaderAndOneMapLinePerLiveMapping) {
  const LiveSession& session = live_session();
  ASSERT_TRUE(session.ready) << session.describe();
  std::vector<LogLine> snapshot = preload::parse_log(session.snapshot);
  ASSERT_FALSE(snapshot.empty()) << session.describe();
  EXPECT_EQ(field(snapshot[0], "event"), "snapshot") << session.describe();
  EXPECT_EQ(field(snapshot[0], "live"), "3");
  EXPECT_EQ(field(snapshot[0], "pid"), std::to_string(session.pid));
  std::vector<LogLine> maps = events(snapshot, "map");
  ASSERT_EQ(maps.size(), kLiveLabels.size()) << session.describe();
  std::map<std::string, std::string> api_by_addr;  // the table's order is by address
  for (const LogLine& map : maps) api_by_addr[field(map, "addr")] = field(map, "api");
  const std::map<std::string, std::string> expected_api = {
      {"l1", "cudaMalloc"}, {"l2", "cudaMallocManaged"}, {"l3", "cuMemAlloc"}};
  for (const auto& [label, api] : expected_api) {
    EXPECT_EQ(api_by_addr[session.report.at(label + ".addr")], api) << label << "\n"
                                                                     << session.describe();
  }
}

// A SIGUSR2 handler the program has before the shim loads (installed from
// .preinit_array) is left alone; the live view is off and the log says so.
TEST(LiveViewTest, ProgramsOwnSigusr2HandlerIsLeftAlone) {
  std::string dir = preload::make_temp_dir();
  preload::RunResult run = reliability::run_program(
      "own-sigusr2", {{"REL_EARLY_SIGUSR2", "1"}, {"EGM_SNAPSHOT_FILE", dir + "/snap-%p"}});
  preload::expect_clean_exit(run);
  EXPECT_TRUE(preload::contains(run.out, "program SIGUSR2 handler calls=1\n")) << run.describe();
  std::vector<LogLine> notices = events(run.log, "notice");
  ASSERT_EQ(notices.size(), 1u) << run.describe();
  EXPECT_TRUE(preload::contains(field(notices[0], "message"), "SIGUSR2")) << run.describe();
  EXPECT_EQ(preload::read_file(dir + "/snap-" + std::to_string(run.pid)), "");
}

}  // namespace
