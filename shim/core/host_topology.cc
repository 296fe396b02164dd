#include "shim/core/host_topology.h"

#include <numa.h>
#include <unistd.h>

namespace egm {
namespace {

// Without NUMA support the machine is one node holding all memory.
HostTopology single_node_topology() {
  size_t pages = static_cast<size_t>(sysconf(_SC_PHYS_PAGES));
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return HostTopology{{NodeInfo{0, pages * page}}, {}};
}

}  // namespace

HostTopology read_host_topology() {
  if (numa_available() < 0) return single_node_topology();
  HostTopology topology;
  for (int node = 0; node <= numa_max_node(); ++node) {
    long long free_bytes = 0;
    long long total =
        numa_bitmask_isbitset(numa_all_nodes_ptr, node) ? numa_node_size64(node, &free_bytes) : 0;
    if (total > 0) topology.nodes.push_back({node, static_cast<size_t>(total)});
  }
  for (const NodeInfo& from : topology.nodes) {
    for (const NodeInfo& to : topology.nodes) {
      int distance = numa_distance(from.id, to.id);
      if (distance > 0) topology.distance[{from.id, to.id}] = distance;
    }
  }
  return topology;
}

size_t free_bytes_of_node(int node) {
  if (numa_available() < 0) {
    return static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) *
           static_cast<size_t>(sysconf(_SC_PAGESIZE));
  }
  long long free_bytes = 0;
  return numa_node_size64(node, &free_bytes) > 0 ? static_cast<size_t>(free_bytes) : 0;
}

}  // namespace egm
