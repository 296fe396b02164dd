#include "tools/inspect/live.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>

#include "shim/core/log.h"

namespace egm::inspect {
namespace {

// Modification time in nanoseconds, or -1 when the file does not exist.
long long modified_ns(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return -1;
  return static_cast<long long>(status.st_mtim.tv_sec) * 1000000000LL + status.st_mtim.tv_nsec;
}

// Whether `pid` catches SIGUSR2, from the SigCgt mask of /proc/PID/status;
// nullopt when that cannot be read. The shim installs its handler only with
// EGM_SNAPSHOT_FILE: without one, SIGUSR2 would kill the program.
std::optional<bool> catches_sigusr2(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("SigCgt:", 0) != 0) continue;
    uint64_t mask = 0;
    try {
      mask = std::stoull(line.substr(7), nullptr, 16);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    return (mask >> (SIGUSR2 - 1) & 1) != 0;
  }
  return std::nullopt;
}

// The target's %p, %r and %h: its rank from its own environment
// (/proc/PID/environ; norank when that cannot be read), the host is ours.
PathFields path_fields_of(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::map<std::string, std::string> environment;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    std::string entry = text.substr(start, end - start);
    size_t equals = entry.find('=');
    if (equals != std::string::npos)
      environment.emplace(entry.substr(0, equals), entry.substr(equals + 1));
    start = end + 1;
  }
  auto lookup = [&environment](const char* name) -> const char* {
    auto found = environment.find(name);
    return found == environment.end() ? nullptr : found->second.c_str();
  };
  return {static_cast<long>(pid), rank_from(lookup), host_of_this_process()};
}

}  // namespace

std::string request_snapshot(pid_t pid, const std::string& path_template, int timeout_ms) {
  if (path_template.empty()) {
    throw std::runtime_error(
        "--live needs the snapshot path: --snapshot-file or EGM_SNAPSHOT_FILE, as the program "
        "was started with");
  }
  std::string path = egm::expand_path_template(path_template, path_fields_of(pid));
  std::optional<bool> catches = catches_sigusr2(pid);
  if (!catches) {
    throw std::runtime_error("cannot read /proc/" + std::to_string(pid) +
                             "/status: no such process, or not ours to inspect");
  }
  if (!*catches) {
    throw std::runtime_error("process " + std::to_string(pid) +
                             " does not handle SIGUSR2, so it was not signalled (that would kill "
                             "it): start it with EGM_SNAPSHOT_FILE set for the live view");
  }
  long long before = modified_ns(path);
  if (::kill(pid, SIGUSR2) != 0) {
    throw std::runtime_error("cannot signal process " + std::to_string(pid) + ": " +
                             std::strerror(errno));
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    long long now = modified_ns(path);
    if (now >= 0 && now != before) return path;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("no snapshot appeared at '" + path + "' within " +
                           std::to_string(timeout_ms) +
                           " ms: was the program started with EGM_SNAPSHOT_FILE set?");
}

}  // namespace egm::inspect
