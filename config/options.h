// The one table of egm-shim's options. Parsing, validation, `--help` of the
// tools and the README's options table are all generated from it.
#pragma once

#include <array>
#include <string_view>

namespace egm {

enum class OptionType { kBool, kNode, kPathTemplate, kLogLevel };

struct OptionSpec {
  std::string_view name;
  OptionType type;
  std::string_view default_value;  // as a user would write it; "" = unset
  std::string_view accepted;       // the accepted form, quoted in errors
  std::string_view doc;            // one line
};

inline constexpr std::array<OptionSpec, 5> kOptions = {{
    {"EGM_ENABLE", OptionType::kBool, "1", "0 or 1",
     "Master switch: 0 leaves every call to the real CUDA runtime."},
    {"EGM_NUMA_NODE", OptionType::kNode, "", "a host NUMA node number, or empty",
     "Host NUMA node for every redirected allocation; empty = the GPU's "
     "nearest node (CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID), else node 0."},
    {"EGM_LOG_FILE", OptionType::kPathTemplate, "", "a file path; %p is replaced by the process id",
     "Write the log (every map/unmap, the exit summary) to this file. "
     "Empty = warnings and errors to stderr only."},
    {"EGM_LOG_LEVEL", OptionType::kLogLevel, "info", "trace, debug, info, warn, error or off",
     "Lowest level written to EGM_LOG_FILE (to stderr when no file is set, "
     "where the default is warn)."},
    {"EGM_STRICT", OptionType::kBool, "0", "0 or 1",
     "1: bad configuration stops the process at load (exit status 1) instead "
     "of switching redirection off."},
}};

// The spec for `name`, or nullptr.
const OptionSpec* find_option(std::string_view name);

std::string_view option_type_name(OptionType type);

}  // namespace egm
