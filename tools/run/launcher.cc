#include "tools/run/launcher.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace egm::run {
namespace {

std::string directory_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::optional<std::string> canonical_path(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) return std::nullopt;
  return std::string(resolved);
}

bool is_regular_file(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

// LD_PRELOAD entries are separated by spaces or colons.
std::vector<std::string> preload_entries(std::string_view value) {
  std::vector<std::string> entries;
  std::string entry;
  for (char c : value) {
    if (c == ' ' || c == ':') {
      if (!entry.empty()) entries.push_back(entry);
      entry.clear();
    } else {
      entry += c;
    }
  }
  if (!entry.empty()) entries.push_back(entry);
  return entries;
}

bool is_shell_safe(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("@%+=:,./_-", c) != nullptr;
}

}  // namespace

std::string executable_directory() {
  std::optional<std::string> self = canonical_path("/proc/self/exe");
  return self ? directory_of(*self) : ".";
}

std::vector<std::string> library_candidates(const std::string& executable_dir) {
  return {executable_dir + "/libegm.so", executable_dir + "/../lib/libegm.so",
          executable_dir + "/../../shim/libegm.so"};
}

std::optional<std::string> first_existing(const std::vector<std::string>& candidates) {
  for (const std::string& candidate : candidates) {
    if (is_regular_file(candidate)) return canonical_path(candidate);
  }
  return std::nullopt;
}

std::string preload_value(const std::string& shim, std::string_view existing) {
  std::string value = shim;
  for (const std::string& entry : preload_entries(existing)) {
    if (entry != shim) value += ":" + entry;  // the shim once, first
  }
  return value;
}

EnvironmentChanges environment_changes(const std::map<std::string, std::string>& settings,
                                       const std::string& shim) {
  const char* existing = std::getenv("LD_PRELOAD");
  EnvironmentChanges changes(settings.begin(), settings.end());
  changes["LD_PRELOAD"] = preload_value(shim, existing ? existing : "");
  return changes;
}

std::string shell_quoted(std::string_view text) {
  bool safe = !text.empty();
  for (char c : text) safe = safe && is_shell_safe(c);
  if (safe) return std::string(text);
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string dry_run_text(const EnvironmentChanges& changes, const std::vector<std::string>& program,
                         const std::vector<std::string>& notes) {
  std::string text;
  for (const auto& [name, value] : changes) text += name + "=" + shell_quoted(value) + "\n";
  for (const std::string& note : notes) text += note + "\n";
  text += "command:";
  for (const std::string& arg : program) text += " " + shell_quoted(arg);
  return text + "\n";
}

int exec_program(const EnvironmentChanges& changes, const std::vector<std::string>& program) {
  for (const auto& [name, value] : changes) setenv(name.c_str(), value.c_str(), 1);
  std::vector<char*> argv;
  for (const std::string& arg : program) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  std::fprintf(stderr, "egm-run: cannot run '%s': %s\n", argv[0], std::strerror(errno));
  return 127;
}

}  // namespace egm::run
