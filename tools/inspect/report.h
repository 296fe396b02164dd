// egm-inspect's three renderings of one Report: text for people, JSON for
// scripts (same content), and an SVG plot of mapped bytes per node over time.
#pragma once

#include <cstdint>
#include <string>

#include "tools/inspect/analysis.h"

namespace egm::inspect {

std::string text_report(const Report& report);

// Every warning is included (the text report leaves them to stderr).
std::string json_report(const Report& report);

// A standalone SVG document: one step line per NUMA node.
std::string svg_plot(const Report& report);

// Formatting shared by the renderings; exposed for tests.

// "512 B", "4 KiB", "1.5 GiB": for reading.
std::string human_bytes(uint64_t bytes);
// "512", "4K", "1.5G": compact, for axis ticks and bucket bounds.
std::string short_bytes(uint64_t bytes);
// "12.500s"
std::string seconds_text(int64_t us);
std::string hex_text(uint64_t value);

}  // namespace egm::inspect
