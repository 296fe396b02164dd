// egm-run: runs a program with libegm.so preloaded and its EGM_* options set,
// like numactl for the shim. `egm-run --help` lists the options.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "shim/core/host_topology.h"
#include "tools/run/framework_settings.h"
#include "tools/run/launcher.h"
#include "tools/run/library_check.h"
#include "tools/run/run_options.h"

namespace {

constexpr int kUsageError = 2;

void complain(const std::string& message) {
  std::fprintf(stderr, "egm-run: %s\n", message.c_str());
}

// The flags' settings over the EGM_* variables already set, checked by the
// shim's own parser; prints every problem. nullopt when there is one.
std::optional<egm::Config> checked_config(const std::map<std::string, std::string>& settings) {
  egm::Environment env = egm::egm_variables_of_process();
  for (const auto& [name, value] : settings) env[name] = value;
  egm::ParsedConfig parsed = egm::load_config(env, egm::read_host_topology());
  for (const std::string& warning : parsed.warnings) complain("warning: " + warning);
  for (const egm::ConfigError& error : parsed.errors) complain(error.to_string());
  if (!parsed.errors.empty()) return std::nullopt;
  return parsed.config;
}

// The shim will run in spill mode (flags, environment and EGM_CONFIG merged).
bool spills(const egm::Config& config) { return config.enable && config.mode == egm::Mode::kSpill; }

// Preloading a file that is no shim would run the program unredirected,
// with only the loader's warning to say so: refuse it instead.
std::optional<std::string> checked(std::optional<std::string> library) {
  if (!library) return library;
  std::string problem = egm::run::shared_library_problem(*library, "cudaMalloc");
  if (problem.empty()) return library;
  complain(*library + " cannot be the shim: " + problem);
  return std::nullopt;
}

std::optional<std::string> shim_library(const std::string& requested) {
  if (!requested.empty()) {
    std::optional<std::string> found = egm::run::first_existing({requested});
    if (!found) complain("--lib " + requested + ": no such readable file");
    return checked(found);
  }
  std::vector<std::string> candidates =
      egm::run::library_candidates(egm::run::executable_directory());
  std::optional<std::string> found = egm::run::first_existing(candidates);
  if (found) return checked(found);
  std::string looked;
  for (const std::string& candidate : candidates) looked += " " + candidate;
  complain("libegm.so not found (looked at" + looked + "); pass --lib PATH");
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  egm::run::ParsedCommandLine parsed =
      egm::run::parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
  const egm::run::RunRequest& request = parsed.request;
  if (!parsed.error.empty()) {
    complain(parsed.error + " (egm-run --help lists the flags)");
    return kUsageError;
  }
  if (request.help) {
    std::fputs(egm::run::help_text().c_str(), stdout);
    return 0;
  }
  std::optional<egm::Config> config = checked_config(request.settings);
  if (!config) return kUsageError;
  std::optional<std::string> shim = shim_library(request.library);
  if (!shim) return kUsageError;
  egm::run::EnvironmentChanges changes = egm::run::environment_changes(request.settings, *shim);
  egm::run::FrameworkSettings frameworks =
      egm::run::framework_settings(spills(*config), egm::run::process_variable);
  changes.insert(frameworks.changes.begin(), frameworks.changes.end());
  if (request.dry_run) {
    std::fputs(egm::run::dry_run_text(changes, request.program, frameworks.notes).c_str(), stdout);
    return 0;
  }
  std::fflush(stdout);
  return egm::run::exec_program(changes, request.program);
}
