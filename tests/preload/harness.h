// Shared by the LD_PRELOAD integration tests: spawns a test program with
// libegm.so preloaded over the CPU-only doubles (tests/doubles), and reads
// back its stdout/stderr, its KEY=VALUE report and the shim's logfmt log.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace preload {

inline constexpr size_t kMiB = size_t{1} << 20;

// ---- files ----

// A data dependency's absolute path, e.g. runfile("shim/libegm.so").
std::string runfile(const std::string& path);
std::string make_temp_dir();
std::string read_file(const std::string& path);
// The names in a directory, without "." and ".."; empty when it cannot be read.
std::set<std::string> entries_of(const std::string& dir);
void write_file(const std::string& path, const std::string& text);
std::vector<std::string> lines_of(const std::string& text);
bool contains(const std::string& text, const std::string& part);

// ---- logfmt ----

// One log line: {"time": TIMESTAMP, key: value, ...}.
using LogLine = std::map<std::string, std::string>;

LogLine parse_log_line(const std::string& line);
std::vector<LogLine> parse_log(const std::string& text);
// The lines whose fields include every one of `wanted`.
std::vector<LogLine> lines_where(const std::vector<LogLine>& log, const LogLine& wanted);
std::vector<LogLine> events(const std::vector<LogLine>& log, const std::string& event);
// The value of `key`, or "<missing KEY>".
std::string field(const LogLine& line, const std::string& key);

// ---- running a test program ----

struct RunOptions {
  std::string program = "tests/preload/api_program";  // a runfile
  std::vector<std::string> args;                      // after the program name
  bool preload = true;
  bool log_file = true;
  std::vector<std::string> library_dirs;   // runfile dirs searched after the fakes'
  std::map<std::string, std::string> env;  // added to (or replacing) the defaults
};

struct RunResult {
  pid_t pid = 0;
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string dir;  // the run's temporary directory
  std::string out;
  std::string err;
  std::map<std::string, std::string> report;  // the program's KEY=VALUE report
  bool log_exists = false;
  std::string log_text;
  std::vector<LogLine> log;

  // The report's value for `key`, or "<missing>".
  const std::string& at(const std::string& key) const;
  // Everything the test saw, for failure messages.
  std::string describe() const;
};

// Runs with a clean environment: the fakes on LD_LIBRARY_PATH, the report in
// the run's directory, and (when preloading) EGM_LOG_LEVEL=debug,
// EGM_POOL_LIMIT=0, EGM_SUBALLOC=0 and a log file egm-PID.log there.
RunResult run(const RunOptions& options);

// `program SCENARIO` with `env` added.
RunResult run_scenario(const std::string& scenario, std::map<std::string, std::string> env = {});
RunResult run_scenario_without_shim(const std::string& scenario,
                                    std::map<std::string, std::string> env = {});
// api_program's `series` scenario: ALLOC_SERIES=`series` ("API:SIZE,...").
RunResult run_series(const std::string& series, std::map<std::string, std::string> env = {});

// ---- expectations (gtest) ----

void expect_clean_exit(const RunResult& run);
// api_program's counts under `prefix` (e.g. "all.after_free") are all 0.
void expect_nothing_live(const RunResult& run, const std::string& prefix);
// The log lines of `event` about the allocation `label` (by its address).
std::vector<LogLine> lines_about(const RunResult& run, const std::string& event,
                                 const std::string& label);
// No log line at all names `api`.
void expect_api_never_logged(const RunResult& run, const std::string& api);

}  // namespace preload
