// egm-probe's two renderings of a ProbeReport: text for people, JSON for tools.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tools/probe/probe_report.h"

namespace egm::probe {

std::string report_text(const ProbeReport& report);

nlohmann::json report_json(const ProbeReport& report);

// 2097152 -> "2 MiB", 1610612736 -> "1.5 GiB".
std::string bytes_text(size_t bytes);

}  // namespace egm::probe
