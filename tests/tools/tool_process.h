// Runs a tool binary (a test's data dependency) and captures what it did.
#pragma once

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace tools_test {

struct ProcessResult {
  int exit_status = -1;  // -1 when it did not exit normally
  std::string out;
  std::string err;
};

// Variable -> new value; nullopt unsets it.
using EnvironmentEdits = std::map<std::string, std::optional<std::string>>;

inline std::string absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  return std::string(getcwd(cwd, sizeof cwd) ? cwd : ".") + "/" + path;
}

// A data dependency's path: runfiles live under $TEST_SRCDIR/<workspace>/.
inline std::string runfile(const std::string& path) {
  const char* root = std::getenv("TEST_SRCDIR");
  return absolute(std::string(root ? root : ".") + "/egm_shim/" + path);
}

inline std::string temp_dir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absolute(dir ? dir : "/tmp");
}

inline std::string read_whole_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

inline std::string canonical(const std::string& path) {
  char resolved[PATH_MAX];
  return realpath(path.c_str(), resolved) ? std::string(resolved) : path;
}

namespace detail {

[[noreturn]] inline void exec_child(const std::vector<std::string>& argv,
                                    const EnvironmentEdits& edits, const std::string& out_path,
                                    const std::string& err_path) {
  for (const auto& [name, value] : edits) {
    if (value) {
      setenv(name.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name.c_str());
    }
  }
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(out, STDOUT_FILENO);
  dup2(err, STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(126);
}

}  // namespace detail

// Runs argv (argv[0] a path) with the environment edited; waits for it.
inline ProcessResult run_process(const std::vector<std::string>& argv,
                                 const EnvironmentEdits& edits = {}) {
  static int runs = 0;
  std::string base =
      temp_dir() + "/process." + std::to_string(getpid()) + "." + std::to_string(++runs);
  std::string out_path = base + ".out";
  std::string err_path = base + ".err";
  pid_t child = fork();
  if (child == 0) detail::exec_child(argv, edits, out_path, err_path);
  int status = 0;
  ProcessResult result;
  if (child < 0 || waitpid(child, &status, 0) != child) return result;
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_whole_file(out_path);
  result.err = read_whole_file(err_path);
  return result;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace tools_test
