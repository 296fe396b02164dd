#include "shim/core/placement.h"

namespace egm {

NodeChoice choose_node(const Config& config, int gpu_nearest_node) {
  if (config.numa_node) return {*config.numa_node, "EGM_NUMA_NODE"};
  if (gpu_nearest_node >= 0) return {gpu_nearest_node, "nearest"};
  return {0, "default"};
}

}  // namespace egm
