// Everything egm-probe finds out: driver, GPUs, NUMA nodes, and one live
// EGM sequence per GPU x node.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tools/probe/cuda_driver.h"
#include "tools/probe/egm_sequence.h"

namespace egm::probe {

// A driver query's answer, or the CUDA error it gave.
struct Queried {
  std::optional<long long> value;
  std::string error;
};

struct GpuInfo {
  int ordinal = 0;
  std::string name;        // "" when the query failed
  std::string pci_bus_id;  // "" when the query failed
  Queried vmm_supported;
  Queried host_numa_vmm_supported;
  Queried host_numa_id;         // the nearest host NUMA node; -1 when none
  int granularity_node = 0;     // the HOST_NUMA node the granularities were asked for
  Queried minimum_granularity;  // bytes
  Queried recommended_granularity;
};

struct NumaNode {
  int id = 0;
  size_t total_bytes = 0;
  size_t free_bytes = 0;
  std::map<int, int> distances;  // to node -> SLIT distance
};

struct ProbeReport {
  size_t requested_bytes = 0;
  bool driver_loaded = false;
  int driver_version = 0;  // 0 = unknown
  std::vector<std::string> missing_entry_points;
  std::optional<RuntimeVersion> runtime;
  std::vector<GpuInfo> gpus;
  std::vector<NumaNode> nodes;
  std::vector<Trial> trials;
  std::string problem;  // why no trial ran (no driver, no GPU...); "" when they did

  int working_trials() const;
  bool egm_works() const { return working_trials() > 0; }
  std::string verdict() const;  // one sentence for people
};

ProbeReport run_probe(size_t requested_bytes);

}  // namespace egm::probe
