#include "tools/run/framework_settings.h"

#include <cstdlib>

namespace egm::run {
namespace {

constexpr const char* kJaxAllocator = "XLA_PYTHON_CLIENT_ALLOCATOR";

// JAX's own allocator settings: a user who set any of them keeps all of them.
constexpr const char* kJaxAllocatorSettings[] = {kJaxAllocator, "XLA_PYTHON_CLIENT_PREALLOCATE",
                                                 "XLA_PYTHON_CLIENT_MEM_FRACTION"};

// Why platform: JAX's default (BFC) allocator stops at a fraction of the GPU's
// memory (0.75) and grows in regions of doubling size, so one region can be
// tens of GiB: spilled whole, it would leave the device half used. The
// platform allocator asks CUDA for each buffer, so the spill rule places each.
constexpr const char* kWhyPlatform =
    "spill mode: JAX allocates each buffer through CUDA, so the shim can place it (its default "
    "allocator stops at 75% of the GPU's memory)";

}  // namespace

FrameworkSettings framework_settings(bool spill, const EnvironmentLookup& lookup) {
  FrameworkSettings settings;
  if (!spill) return settings;
  for (const char* name : kJaxAllocatorSettings) {
    if (std::optional<std::string> value = lookup(name)) {
      settings.notes.push_back("# kept " + std::string(name) + "=" + shell_quoted(*value) +
                               " from the environment: egm-run sets " + kJaxAllocator +
                               "=platform only when no JAX allocator variable is set");
    }
  }
  if (!settings.notes.empty()) return settings;
  settings.changes[kJaxAllocator] = "platform";
  settings.notes.push_back("# " + std::string(kJaxAllocator) + "=platform: " + kWhyPlatform);
  return settings;
}

std::optional<std::string> process_variable(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace egm::run
