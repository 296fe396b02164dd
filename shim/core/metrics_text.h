// The metrics a cluster scrapes (EGM_METRICS_FILE, `egm-inspect --prometheus`)
// in the Prometheus text exposition format, for node_exporter's textfile
// collector. The one place where metric names, types and HELP texts are
// written: the shim fills ProcessMetrics from its counters, egm-inspect from
// logs, and both print them here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace egm {

struct PinnedUsage {
  uint64_t current_bytes = 0;  // chunks mapped now (in use or cached in the pool)
  uint64_t peak_bytes = 0;
  uint64_t maps = 0;  // user allocations placed
};

// The spill rule's decisions (EGM_MODE=spill): where a request went and why.
struct SpillKey {
  int device = 0;
  std::string placement;  // device or host
  std::string reason;     // spill-room, below-spill-size, above-spill-size, reserve-floor
  bool operator<(const SpillKey& other) const {
    return std::tie(device, placement, reason) <
           std::tie(other.device, other.placement, other.reason);
  }
};

// One process's numbers; every sample carries its pid label, so that the
// files of several processes can be collected side by side.
struct ProcessMetrics {
  int64_t pid = 0;
  std::map<int, PinnedUsage> nodes;    // by NUMA node
  std::map<int, PinnedUsage> devices;  // by the GPU the chunks were made for
  // False for a log without chunk lines (older shims): only the counts of
  // `nodes` and `devices` are known, their pinned bytes are left out.
  bool pinned_known = true;
  std::optional<uint64_t> pool_cached_bytes;  // unknown from a log without a summary
  uint64_t live_allocations = 0;
  uint64_t maps = 0;
  uint64_t unmaps = 0;
  uint64_t fallbacks = 0;
  std::map<SpillKey, uint64_t> spill_decisions;
  // EGM_STAGING=1: launches staged, bytes copied in, launches not staged by reason.
  bool staging = false;
  uint64_t staged_launches = 0;
  uint64_t staged_bytes = 0;
  std::map<std::string, uint64_t> staging_refusals;
};

// The exposition text: each family's HELP and TYPE once, then its samples
// for every process. Families without samples are left out.
std::string prometheus_text(const std::vector<ProcessMetrics>& processes);

}  // namespace egm
