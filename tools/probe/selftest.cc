#include "tools/probe/selftest.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

extern char** environ;

namespace egm::probe {
namespace {

// Checks whose difference is expected until another piece of work lands;
// they print KNOWN (never a silent PASS) and do not fail the self-test.
const std::map<std::string, std::string>& known_differences() {
  // None at present: IPC export of redirected memory (the last one) works
  // since shim/core/ipc.h.
  static const std::map<std::string, std::string> known = {};
  return known;
}

struct RunResult {
  bool started = false;
  std::string output;
  std::string status;  // "exit 0", "signal 11", "timeout after 120 s"
};

std::string base_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// LD_PRELOAD without any libegm.so (by the shim's file name or libegm.so).
std::string preload_without_shim(const std::string& preload, const std::string& shim) {
  std::string separated = preload;
  for (char& c : separated) c = c == ':' ? ' ' : c;  // ld.so splits at spaces and colons
  std::string kept;
  std::istringstream entries(separated);
  for (std::string entry; entries >> entry;) {
    if (base_name(entry) == "libegm.so" || base_name(entry) == base_name(shim)) continue;
    kept += (kept.empty() ? "" : " ") + entry;
  }
  return kept;
}

// This process's environment with LD_PRELOAD and EGM_MODE set as given
// (an empty value removes the variable).
std::vector<std::string> environment_for(const std::string& preload, const std::string& mode) {
  std::vector<std::string> variables;
  for (char** variable = environ; *variable; ++variable) {
    if (std::strncmp(*variable, "LD_PRELOAD=", 11) == 0) continue;
    if (std::strncmp(*variable, "EGM_MODE=", 9) == 0) continue;
    variables.emplace_back(*variable);
  }
  if (!preload.empty()) variables.push_back("LD_PRELOAD=" + preload);
  if (!mode.empty()) variables.push_back("EGM_MODE=" + mode);
  return variables;
}

double seconds_now() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Runs `program` with `variables`; its stdout is captured, its stderr goes
// to ours. Killed after `timeout_seconds`.
RunResult run_program(const std::string& program, const std::vector<std::string>& variables,
                      int timeout_seconds) {
  RunResult result;
  int pipe_ends[2];
  if (pipe(pipe_ends) != 0) return result;
  pid_t child = fork();
  if (child < 0) {
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    return result;
  }
  if (child == 0) {
    dup2(pipe_ends[1], STDOUT_FILENO);
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    std::vector<char*> environment;
    for (const std::string& variable : variables) {
      environment.push_back(const_cast<char*>(variable.c_str()));
    }
    environment.push_back(nullptr);
    char* argv[] = {const_cast<char*>(program.c_str()), nullptr};
    execve(program.c_str(), argv, environment.data());
    std::fprintf(stderr, "egm-probe: cannot run %s: %s\n", program.c_str(), std::strerror(errno));
    _exit(127);
  }
  close(pipe_ends[1]);
  result.started = true;
  double deadline = seconds_now() + timeout_seconds;
  bool timed_out = false;
  char buffer[4096];
  for (;;) {
    int left_ms = static_cast<int>((deadline - seconds_now()) * 1000);
    if (left_ms <= 0) {
      timed_out = true;
      break;
    }
    pollfd poll_entry{pipe_ends[0], POLLIN, 0};
    int ready = poll(&poll_entry, 1, left_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // the deadline check above ends the loop
    ssize_t got = read(pipe_ends[0], buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    result.output.append(buffer, static_cast<size_t>(got));
  }
  close(pipe_ends[0]);
  if (timed_out) kill(child, SIGKILL);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    result.status = "timeout after " + std::to_string(timeout_seconds) + " s";
  } else if (WIFEXITED(status)) {
    result.status = "exit " + std::to_string(WEXITSTATUS(status));
  } else {
    result.status = "signal " + std::to_string(WTERMSIG(status));
  }
  return result;
}

bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

const CheckLine* find_check(const std::vector<CheckLine>& lines, const std::string& name) {
  for (const CheckLine& line : lines) {
    if (line.name == name) return &line;
  }
  return nullptr;
}

CheckOutcome compare_one(const std::string& name, const CheckLine* without, const CheckLine* with,
                         const std::string& without_status, const std::string& with_status) {
  CheckOutcome outcome{"FAIL", name,
                       without ? without->result : "(no result: program " + without_status + ")",
                       with ? with->result : "(no result: program " + with_status + ")"};
  if (!without || !with) return outcome;
  if (outcome.without == outcome.with) {
    outcome.verdict = starts_with(outcome.without, "SKIP") ? "SKIP" : "PASS";
  } else if (known_differences().count(name)) {
    outcome.verdict = "KNOWN";
  }
  return outcome;
}

}  // namespace

std::vector<CheckLine> parse_check_lines(const std::string& output) {
  std::vector<CheckLine> lines;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (!starts_with(line, "check ")) continue;
    size_t name_end = line.find(' ', 6);
    if (name_end == std::string::npos) {
      lines.push_back({line.substr(6), ""});
    } else {
      lines.push_back({line.substr(6, name_end - 6), line.substr(name_end + 1)});
    }
  }
  return lines;
}

std::vector<CheckOutcome> compare_runs(const std::vector<CheckLine>& without,
                                       const std::vector<CheckLine>& with,
                                       const std::string& without_status,
                                       const std::string& with_status) {
  std::vector<CheckOutcome> outcomes;
  for (const CheckLine& line : without) {
    outcomes.push_back(
        compare_one(line.name, &line, find_check(with, line.name), without_status, with_status));
  }
  for (const CheckLine& line : with) {
    if (!find_check(without, line.name)) {
      outcomes.push_back(compare_one(line.name, nullptr, &line, without_status, with_status));
    }
  }
  // The program itself must end the same way (a crash under the shim fails).
  CheckLine without_exit{"program.exit-status", without_status};
  CheckLine with_exit{"program.exit-status", with_status};
  outcomes.push_back(
      compare_one(without_exit.name, &without_exit, &with_exit, without_status, with_status));
  if (without.empty() && with.empty()) {
    outcomes.push_back({"FAIL", "program.output", "(no check lines)", "(no check lines)"});
  }
  return outcomes;
}

std::string executable_directory() {
  char path[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) return ".";
  std::string exe(path, static_cast<size_t>(length));
  return exe.substr(0, exe.rfind('/'));
}

int run_selftest(const SelftestOptions& options) {
  for (const std::string& file : {options.program, options.shim}) {
    if (access(file.c_str(), R_OK) != 0) {
      std::printf("egm-probe --selftest: %s: %s\n", file.c_str(), std::strerror(errno));
      return 1;
    }
  }
  const char* preload = std::getenv("LD_PRELOAD");
  std::string others = preload_without_shim(preload ? preload : "", options.shim);
  std::string with_preload = options.shim + (others.empty() ? "" : " " + others);
  std::printf("egm-probe self-test: %s without and with %s (EGM_MODE=always)\n",
              options.program.c_str(), options.shim.c_str());
  std::fflush(stdout);
  RunResult without =
      run_program(options.program, environment_for(others, ""), options.timeout_seconds);
  RunResult with = run_program(options.program, environment_for(with_preload, "always"),
                               options.timeout_seconds);
  if (!without.started || !with.started) {
    std::printf("egm-probe --selftest: could not start %s\n", options.program.c_str());
    return 1;
  }
  std::vector<CheckOutcome> outcomes =
      compare_runs(parse_check_lines(without.output), parse_check_lines(with.output),
                   without.status, with.status);
  std::map<std::string, int> counts;
  bool no_device = false;
  bool missing_entries = false;
  for (const CheckOutcome& outcome : outcomes) {
    ++counts[outcome.verdict];
    no_device = no_device || starts_with(outcome.without, "SKIP-NO-DEVICE");
    missing_entries = missing_entries || starts_with(outcome.without, "SKIP-MISSING");
    std::printf("%-5s %s: without: %s | with: %s\n", outcome.verdict.c_str(), outcome.name.c_str(),
                outcome.without.c_str(), outcome.with.c_str());
    if (outcome.verdict == "KNOWN") {
      std::printf("      KNOWN difference: %s\n", known_differences().at(outcome.name).c_str());
    }
  }
  std::printf("self-test: %zu checks: %d PASS, %d FAIL, %d SKIP, %d KNOWN\n", outcomes.size(),
              counts["PASS"], counts["FAIL"], counts["SKIP"], counts["KNOWN"]);
  if (no_device) {
    std::printf(
        "SKIP-NO-DEVICE: no real GPU here (this CUDA runtime cannot run kernels): the "
        "kernel checks did not run\n");
  }
  if (missing_entries) {
    std::printf("SKIP-MISSING: this CUDA runtime lacks entry points those checks need\n");
  }
  if (counts["FAIL"] > 0) {
    std::printf("self-test FAILS: the shim changes results\n");
  } else if (counts["SKIP"] > 0) {
    std::printf("self-test matches on every check that ran (%d could not run here)\n",
                counts["SKIP"]);
  } else {
    std::printf("self-test matches\n");
  }
  return counts["FAIL"] == 0 ? 0 : 1;
}

}  // namespace egm::probe
