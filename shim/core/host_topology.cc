#include "shim/core/host_topology.h"

#include <numa.h>

namespace egm {

HostTopology read_host_topology() {
  HostTopology topology;
  if (numa_available() < 0) {
    topology.nodes_with_memory.push_back(0);  // no NUMA support: one node
    return topology;
  }
  for (int node = 0; node <= numa_max_node(); ++node) {
    long long free_bytes = 0;
    if (numa_bitmask_isbitset(numa_all_nodes_ptr, node) &&
        numa_node_size64(node, &free_bytes) > 0) {
      topology.nodes_with_memory.push_back(node);
    }
  }
  return topology;
}

}  // namespace egm
