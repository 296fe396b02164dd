// Which host NUMA node serves a redirected request.
#pragma once

#include "config/config.h"

namespace egm {

struct NodeChoice {
  int node;
  const char* reason;  // "EGM_NUMA_NODE", "nearest" or "default"
};

// `gpu_nearest_node` is CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID (-1 when unknown).
NodeChoice choose_node(const Config& config, int gpu_nearest_node);

}  // namespace egm
