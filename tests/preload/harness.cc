#include "tests/preload/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace preload {
namespace {

std::string absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  return std::string(getcwd(cwd, sizeof cwd) ? cwd : ".") + "/" + path;
}

bool file_exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

// Reads one value at `pos`: bare up to a space, or double-quoted with escapes.
std::string read_value(const std::string& line, size_t& pos) {
  std::string value;
  if (pos < line.size() && line[pos] == '"') {
    for (++pos; pos < line.size() && line[pos] != '"'; ++pos) {
      if (line[pos] == '\\' && pos + 1 < line.size()) ++pos;
      value += line[pos];
    }
    ++pos;  // the closing quote
    return value;
  }
  while (pos < line.size() && line[pos] != ' ') value += line[pos++];
  return value;
}

std::map<std::string, std::string> parse_report(const std::string& text) {
  std::map<std::string, std::string> report;
  for (const std::string& line : lines_of(text)) {
    size_t equals = line.find('=');
    if (equals != std::string::npos) report[line.substr(0, equals)] = line.substr(equals + 1);
  }
  return report;
}

std::string library_path(const RunOptions& options) {
  std::string path = runfile("tests/doubles");
  for (const std::string& dir : options.library_dirs) path += ":" + runfile(dir);
  return path;
}

std::map<std::string, std::string> environment_for(const RunOptions& options,
                                                   const std::string& dir) {
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/bin:/bin"},
      {"LD_LIBRARY_PATH", library_path(options)},
      {"ALLOC_PROGRAM_REPORT", dir + "/report.txt"},
  };
  if (options.preload) {
    env["LD_PRELOAD"] = runfile("shim/libegm.so");
    env["EGM_LOG_LEVEL"] = "debug";
    // One mapping per allocation, unmapped at free: what the tests count.
    env["EGM_POOL_LIMIT"] = "0";
    env["EGM_SUBALLOC"] = "0";
    // Each run its own host ledger: tests that run side by side must not
    // share EGM_NODE_LIMIT's host-wide count.
    env["EGM_LEDGER"] = dir + "/ledger";
  }
  if (options.preload && options.log_file) env["EGM_LOG_FILE"] = dir + "/egm-%p.log";
  // Sanitizer builds (--config=asan/tsan) need their runtime options in children.
  for (const char* name : {"ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name)) env[name] = value;
  }
  for (const auto& [key, value] : options.env) env[key] = value;
  return env;
}

std::vector<std::string> as_entries(const std::map<std::string, std::string>& env) {
  std::vector<std::string> entries;
  for (const auto& [key, value] : env) entries.push_back(key + "=" + value);
  return entries;
}

std::vector<char*> as_argv(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Spawns the program with stdout/stderr going to files; its pid, or -1.
pid_t spawn_program(const RunOptions& options, const std::string& dir) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, (dir + "/stdout").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, (dir + "/stderr").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> args = {runfile(options.program)};
  args.insert(args.end(), options.args.begin(), options.args.end());
  std::vector<std::string> entries = as_entries(environment_for(options, dir));
  std::vector<char*> argv = as_argv(args);
  std::vector<char*> envp = as_argv(entries);
  pid_t pid = -1;
  int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return error == 0 ? pid : -1;
}

}  // namespace

std::string runfile(const std::string& path) {
  const char* root = std::getenv("TEST_SRCDIR");
  return absolute(std::string(root ? root : ".") + "/egm_shim/" + path);
}

std::set<std::string> entries_of(const std::string& dir) {
  std::set<std::string> names;
  if (DIR* stream = opendir(dir.c_str())) {
    while (dirent* entry = readdir(stream)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.insert(name);
    }
    closedir(stream);
  }
  return names;
}

std::string make_temp_dir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = absolute(std::string(base ? base : "/tmp") + "/preload.XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  return mkdtemp(buffer.data()) ? std::string(buffer.data()) : std::string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

LogLine parse_log_line(const std::string& line) {
  LogLine fields;
  size_t pos = line.find(' ');
  fields["time"] = line.substr(0, pos);
  while (pos != std::string::npos && pos < line.size()) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    size_t equals = line.find('=', pos);
    if (equals == std::string::npos) break;
    std::string key = line.substr(pos, equals - pos);
    pos = equals + 1;
    fields[key] = read_value(line, pos);
  }
  return fields;
}

std::vector<LogLine> parse_log(const std::string& text) {
  std::vector<LogLine> log;
  for (const std::string& line : lines_of(text)) {
    if (!line.empty()) log.push_back(parse_log_line(line));
  }
  return log;
}

std::vector<LogLine> lines_where(const std::vector<LogLine>& log, const LogLine& wanted) {
  std::vector<LogLine> found;
  for (const LogLine& line : log) {
    bool matches = true;
    for (const auto& [key, value] : wanted) matches = matches && field(line, key) == value;
    if (matches) found.push_back(line);
  }
  return found;
}

std::vector<LogLine> events(const std::vector<LogLine>& log, const std::string& event) {
  return lines_where(log, {{"event", event}});
}

std::string field(const LogLine& line, const std::string& key) {
  auto it = line.find(key);
  return it == line.end() ? "<missing " + key + ">" : it->second;
}

const std::string& RunResult::at(const std::string& key) const {
  static const std::string missing = "<missing>";
  auto it = report.find(key);
  return it == report.end() ? missing : it->second;
}

std::string RunResult::describe() const {
  return "exit=" + std::to_string(exit_code) + " signal=" + std::to_string(signal) +
         "\n--- stdout\n" + out + "--- stderr\n" + err + "--- report\n" +
         read_file(dir + "/report.txt") + "--- log\n" + log_text;
}

RunResult run(const RunOptions& options) {
  RunResult result;
  result.dir = make_temp_dir();
  result.pid = spawn_program(options, result.dir);
  if (result.pid <= 0) return result;
  int status = 0;
  waitpid(result.pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.out = read_file(result.dir + "/stdout");
  result.err = read_file(result.dir + "/stderr");
  result.report = parse_report(read_file(result.dir + "/report.txt"));
  std::string log_path = result.dir + "/egm-" + std::to_string(result.pid) + ".log";
  result.log_exists = file_exists(log_path);
  result.log_text = read_file(log_path);
  result.log = parse_log(result.log_text);
  return result;
}

RunResult run_scenario(const std::string& scenario, std::map<std::string, std::string> env) {
  RunOptions options;
  options.args = {scenario};
  options.env = std::move(env);
  return run(options);
}

RunResult run_scenario_without_shim(const std::string& scenario,
                                    std::map<std::string, std::string> env) {
  RunOptions options;
  options.args = {scenario};
  options.preload = false;
  options.env = std::move(env);
  return run(options);
}

RunResult run_series(const std::string& series, std::map<std::string, std::string> env) {
  env["ALLOC_SERIES"] = series;
  return run_scenario("series", std::move(env));
}

void expect_clean_exit(const RunResult& run) {
  ASSERT_GT(run.pid, 0) << "could not spawn the program";
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  EXPECT_TRUE(contains(run.out, "exit 0\n")) << run.describe();
}

void expect_nothing_live(const RunResult& run, const std::string& prefix) {
  for (const char* count : {"cuda_handles", "cuda_reservations", "cuda_mappings",
                            "cuda_memory_objects", "cuda_allocations", "cudart_allocations",
                            "cudart_events"}) {
    EXPECT_EQ(run.at(prefix + "." + count), "0") << prefix << "." << count << "\n"
                                                 << run.describe();
  }
}

std::vector<LogLine> lines_about(const RunResult& run, const std::string& event,
                                 const std::string& label) {
  return lines_where(run.log, {{"event", event}, {"addr", run.at(label + ".addr")}});
}

void expect_api_never_logged(const RunResult& run, const std::string& api) {
  EXPECT_TRUE(lines_where(run.log, {{"api", api}}).empty()) << api << "\n" << run.describe();
}

}  // namespace preload
