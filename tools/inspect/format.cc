#include <array>
#include <cstdio>

#include "tools/inspect/report.h"

namespace egm::inspect {
namespace {

struct Scaled {
  double value;
  size_t unit;  // index into a unit table, 0 = bytes
  bool exact;
};

// The largest binary unit not above `bytes`.
Scaled scale_binary(uint64_t bytes) {
  constexpr size_t kLargestUnit = 5;  // P
  size_t unit = 0;
  uint64_t divisor = 1;
  while (unit < kLargestUnit && bytes / divisor >= 1024) {
    divisor *= 1024;
    ++unit;
  }
  return {static_cast<double>(bytes) / static_cast<double>(divisor), unit, bytes % divisor == 0};
}

std::string format_scaled(const Scaled& scaled, const char* unit_name, const char* separator) {
  // Three significant digits for inexact values: "1.00 GiB" is not "1 GiB".
  int decimals = scaled.exact ? 0 : scaled.value < 10 ? 2 : scaled.value < 100 ? 1 : 0;
  char text[48];
  std::snprintf(text, sizeof text, "%.*f%s%s", decimals, scaled.value, separator, unit_name);
  return text;
}

}  // namespace

std::string human_bytes(uint64_t bytes) {
  constexpr std::array<const char*, 6> kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  Scaled scaled = scale_binary(bytes);
  return format_scaled(scaled, kUnits[scaled.unit], " ");
}

std::string short_bytes(uint64_t bytes) {
  constexpr std::array<const char*, 6> kUnits = {"", "K", "M", "G", "T", "P"};
  Scaled scaled = scale_binary(bytes);
  return format_scaled(scaled, kUnits[scaled.unit], "");
}

std::string seconds_text(int64_t us) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3fs", static_cast<double>(us) / 1e6);
  return text;
}

std::string hex_text(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace egm::inspect
