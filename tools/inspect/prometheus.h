// egm-inspect --prometheus: the metrics EGM_METRICS_FILE gives, from logs.
#pragma once

#include <string>
#include <vector>

#include "shim/core/metrics_text.h"
#include "tools/inspect/log_reader.h"

namespace egm::inspect {

// One entry per process in the logs, by pid: pinned bytes per node and
// device from chunk-map/chunk-unmap lines (left out for a process without
// any: a log of an older shim), counts from map, unmap, fallback
// and spill decision lines, the pool's cached bytes from the last summary or
// snapshot line (absent without one). Bad lines are skipped; the reader's
// warnings stay in `reader.skipped()`.
std::vector<ProcessMetrics> metrics_from_logs(MergedLogReader& reader);

}  // namespace egm::inspect
