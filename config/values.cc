#include "config/values.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace egm {
namespace {

constexpr std::array<std::string_view, 6> kLevelNames = {"trace", "debug", "info",
                                                         "warn",  "error", "off"};

struct SizeSuffix {
  std::string_view text;
  int shift;
};

// Longest first, so that "KiB" is not read as "K" + "iB".
constexpr std::array<SizeSuffix, 13> kSizeSuffixes = {{{"KiB", 10},
                                                       {"MiB", 20},
                                                       {"GiB", 30},
                                                       {"TiB", 40},
                                                       {"KB", 10},
                                                       {"MB", 20},
                                                       {"GB", 30},
                                                       {"TB", 40},
                                                       {"K", 10},
                                                       {"M", 20},
                                                       {"G", 30},
                                                       {"T", 40},
                                                       {"B", 0}}};

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::optional<uint64_t> parse_u64(std::string_view text) {
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || ptr != end) return std::nullopt;
  return value;
}

}  // namespace

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "1" || text == "true" || text == "yes" || text == "on") return true;
  if (text == "0" || text == "false" || text == "no" || text == "off") return false;
  return std::nullopt;
}

std::optional<int> parse_non_negative_int(std::string_view text) {
  std::optional<uint64_t> value = parse_u64(text);
  if (!value || *value > static_cast<uint64_t>(INT32_MAX)) return std::nullopt;
  return static_cast<int>(*value);
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "warning") return LogLevel::kWarn;
  for (size_t i = 0; i < kLevelNames.size(); ++i) {
    if (text == kLevelNames[i]) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) { return kLevelNames[static_cast<size_t>(level)]; }

std::optional<size_t> parse_size(std::string_view text) {
  int shift = 0;
  for (const SizeSuffix& suffix : kSizeSuffixes) {
    if (ends_with(text, suffix.text)) {
      text.remove_suffix(suffix.text.size());
      shift = suffix.shift;
      break;
    }
  }
  std::optional<uint64_t> value = parse_u64(text);
  if (!value || *value > (SIZE_MAX >> shift)) return std::nullopt;
  return static_cast<size_t>(*value << shift);
}

std::string format_size(size_t bytes) {
  constexpr std::array<std::pair<int, char>, 4> kUnits = {
      {{40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}}};
  for (auto [shift, unit] : kUnits) {
    size_t scale = size_t{1} << shift;
    if (bytes != 0 && bytes % scale == 0) return std::to_string(bytes / scale) + unit;
  }
  return std::to_string(bytes);
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> items;
  size_t start = 0;
  for (size_t at = text.find(separator); at != std::string_view::npos;
       at = text.find(separator, start)) {
    items.push_back(text.substr(start, at - start));
    start = at + 1;
  }
  items.push_back(text.substr(start));
  return items;
}

std::optional<std::vector<int>> parse_int_list(std::string_view text, const std::vector<int>& all,
                                               int max_value, std::string& why) {
  if (text == "all") {
    if (all.empty()) return std::nullopt;
    return all;
  }
  // A bitmap of 0..max_value, not the expanded ranges: "0-1023" repeated a
  // million times costs its text, not a billion pushes.
  std::vector<bool> seen(static_cast<size_t>(max_value) + 1);
  for (std::string_view item : split(text, ',')) {
    size_t dash = item.find('-');
    std::optional<int> first = parse_non_negative_int(item.substr(0, dash));
    std::optional<int> last =
        dash == std::string_view::npos ? first : parse_non_negative_int(item.substr(dash + 1));
    if (!first || !last || *last < *first) return std::nullopt;
    if (*last > max_value) {
      why = std::to_string(*last) + " is above the largest allowed, " + std::to_string(max_value);
      return std::nullopt;
    }
    std::fill(seen.begin() + *first, seen.begin() + *last + 1, true);
  }
  std::vector<int> values;
  for (int value = 0; value <= max_value; ++value) {
    if (seen[static_cast<size_t>(value)]) values.push_back(value);
  }
  return values;
}

std::string printable_excerpt(std::string_view text, size_t max_bytes) {
  std::string out;
  size_t shown = std::min(max_bytes, text.size());
  // Never cut inside a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (shown > 0 && shown < text.size() &&
         (static_cast<unsigned char>(text[shown]) & 0xc0) == 0x80)
    --shown;
  for (char c : text.substr(0, shown)) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    } else {
      out += c;
    }
  }
  if (shown < text.size()) out += "...(" + std::to_string(text.size()) + " bytes)";
  return out;
}

std::string format_int_list(const std::vector<int>& values) {
  std::string out;
  for (size_t i = 0; i < values.size();) {
    size_t j = i;
    while (j + 1 < values.size() && values[j + 1] == values[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(values[i]);
    if (j > i) out += '-' + std::to_string(values[j]);
    i = j + 1;
  }
  return out.empty() ? "none" : out;
}

}  // namespace egm
