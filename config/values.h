// Parsers for option values. Each returns nullopt on malformed input; the
// caller turns that into an error naming the variable and accepted form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace egm {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };

std::optional<bool> parse_bool(std::string_view text);
// A non-negative decimal integer that fits in int; no sign, no spaces.
std::optional<int> parse_non_negative_int(std::string_view text);
std::optional<LogLevel> parse_log_level(std::string_view text);
std::string_view log_level_name(LogLevel level);

// Bytes: "4096", "64K", "1.5G" is rejected; suffixes K/M/G/T and KiB/MiB/GiB/TiB
// (both binary, as numactl reads them), optional "B". Overflow is an error.
std::optional<size_t> parse_size(std::string_view text);
std::string format_size(size_t bytes);  // "64G", "3M", "4097"

// The largest NUMA node number a list may name: Linux's MAX_NUMNODES is at
// most 1024 (CONFIG_NODES_SHIFT <= 10), so nodes are 0-1023.
inline constexpr int kMaxNodeNumber = 1023;
// The largest GPU ordinal EGM_DEVICES may name (CUDA documents no bound;
// no host has more than a few dozen GPUs).
inline constexpr int kMaxDeviceOrdinal = 1023;

// numactl's node lists: "0-3,5", "all" (= every entry of `all`). Sorted, no
// duplicates, never empty. Every value must be <= `max_value` (else `why`
// says so); work and memory are bounded by the text and `max_value`, never
// by the ranges' lengths, however often they repeat.
std::optional<std::vector<int>> parse_int_list(std::string_view text, const std::vector<int>& all,
                                               int max_value, std::string& why);
std::string format_int_list(const std::vector<int>& values);  // "0-3,5"

// `text` for an error line: at most `max_bytes` of it, control bytes, '"'
// and '\\' escaped (\xNN, \", \\), and "...(N bytes)" when cut.
std::string printable_excerpt(std::string_view text, size_t max_bytes = 80);

// Splits "a,b,c" (no trimming); an empty text gives one empty item.
std::vector<std::string_view> split(std::string_view text, char separator);

}  // namespace egm
