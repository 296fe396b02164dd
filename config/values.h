// Parsers for option values. Each returns nullopt on malformed input; the
// caller turns that into an error naming the variable and accepted form.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace egm {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

std::optional<bool> parse_bool(std::string_view text);
// A non-negative decimal integer that fits in int; no sign, no spaces.
std::optional<int> parse_non_negative_int(std::string_view text);
std::optional<LogLevel> parse_log_level(std::string_view text);
std::string_view log_level_name(LogLevel level);

}  // namespace egm
