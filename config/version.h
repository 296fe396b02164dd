// egm-shim's version, the one place it is written: the shim's start line
// (version=...) reads it, and //tests/unit:readme_options_test checks that
// the README's example log line shows it.
#pragma once

#include <string_view>

namespace egm {

inline constexpr std::string_view kVersion = "0.3.0";

}  // namespace egm
