// egm-run's side effects: finding libegm.so, the environment it sets, and
// running the program.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace egm::run {

// Variable -> value, for the variables egm-run sets.
using EnvironmentChanges = std::map<std::string, std::string>;

// The directory holding egm-run's executable (/proc/self/exe), symlinks resolved.
std::string executable_directory();

// Where libegm.so is looked for, in order: beside egm-run, in ../lib/, and
// in the Bazel output tree (bazel-bin/tools/run/egm-run -> bazel-bin/shim/).
std::vector<std::string> library_candidates(const std::string& executable_dir);

// The absolute, canonical path of the first candidate that exists.
std::optional<std::string> first_existing(const std::vector<std::string>& candidates);

// LD_PRELOAD with `shim` first, keeping what `existing` already preloads.
std::string preload_value(const std::string& shim, std::string_view existing);

// LD_PRELOAD plus every EGM_* setting.
EnvironmentChanges environment_changes(const std::map<std::string, std::string>& settings,
                                       const std::string& shim);

// `text` as a POSIX shell word (quoted only when it needs to be).
std::string shell_quoted(std::string_view text);

// --dry-run's output: one VARIABLE=value line per change, the notes (each a
// "# ..." line), then the command.
std::string dry_run_text(const EnvironmentChanges& changes, const std::vector<std::string>& program,
                         const std::vector<std::string>& notes = {});

// Applies the changes and execs the program; returns only when it cannot
// (after printing why), with status 127 as a shell would.
int exec_program(const EnvironmentChanges& changes, const std::vector<std::string>& program);

}  // namespace egm::run
