// What egm-run sets, in spill mode, for frameworks whose allocators cap
// themselves at the GPU's memory and so never ask CUDA for more.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tools/run/launcher.h"

namespace egm::run {

// Reads one variable of the environment egm-run was started in.
using EnvironmentLookup = std::function<std::optional<std::string>(const std::string&)>;

struct FrameworkSettings {
  EnvironmentChanges changes;      // variables to set
  std::vector<std::string> notes;  // for --dry-run: "# ..." lines saying what and why
};

// JAX (jaxlib's XLA client) reads XLA_PYTHON_CLIENT_*; no other program does,
// so they are set for every program in spill mode: XLA_PYTHON_CLIENT_ALLOCATOR
// =platform, unless the user already chose one of JAX's allocator settings
// (XLA_PYTHON_CLIENT_ALLOCATOR, _PREALLOCATE, _MEM_FRACTION): then nothing is
// set and a note says what was kept. Nothing at all outside spill mode.
FrameworkSettings framework_settings(bool spill, const EnvironmentLookup& lookup);

// The lookup of the process environment.
std::optional<std::string> process_variable(const std::string& name);

}  // namespace egm::run
