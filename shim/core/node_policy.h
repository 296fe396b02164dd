// Which host NUMA nodes serve a redirected request, in the order to try them.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

#include "config/config.h"

namespace egm {

// Free bytes of a node right now (libnuma in the shim, synthetic in tests).
using FreeBytesOfNode = std::function<size_t(int node)>;

struct NodeOrder {
  std::vector<int> nodes;  // the policy's choice first, then fallbacks by distance
  const char* reason;      // why the first node: "nearest", "bind", "interleave", ...
};

class NodePolicy {
 public:
  NodePolicy(const Config& config, const HostTopology& topology, FreeBytesOfNode free_bytes);

  // `gpu_nearest_node` is CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID (-1 when unknown).
  // Only the first node is the policy's choice; the rest are the nodes it
  // allows, nearest to the first node first, for EGM_FALLBACK=next-node.
  NodeOrder order(int gpu_nearest_node);

 private:
  int nearest_or_lowest(int gpu_nearest_node, const std::vector<int>& allowed) const;
  int most_free() const;
  int next_weighted();
  std::vector<int> by_distance_from(int first, const std::vector<int>& allowed) const;

  NumaPolicy policy_;
  HostTopology topology_;
  FreeBytesOfNode free_bytes_;
  std::atomic<uint64_t> round_robin_{0};
  std::mutex weighted_mutex_;
  std::vector<long> weighted_current_;  // smooth weighted round-robin state
};

}  // namespace egm
