#include "shim/core/node_policy.h"

#include <algorithm>
#include <numeric>

namespace egm {

NodePolicy::NodePolicy(const Config& config, const HostTopology& topology,
                                 FreeBytesOfNode free_bytes)
    : policy_(config.numa_policy),
      topology_(topology),
      free_bytes_(std::move(free_bytes)),
      weighted_current_(policy_.weights.size(), 0) {}

NodeOrder NodePolicy::order(int gpu_nearest_node) {
  const std::vector<int> all = topology_.node_ids();
  switch (policy_.kind) {
    case NumaPolicyKind::kNearest: {
      int first = nearest_or_lowest(gpu_nearest_node, all);
      return {by_distance_from(first, all), first == gpu_nearest_node ? "nearest" : "lowest-node"};
    }
    case NumaPolicyKind::kBind:
      return {by_distance_from(nearest_or_lowest(gpu_nearest_node, policy_.nodes), policy_.nodes),
              "bind"};
    case NumaPolicyKind::kPreferred:
      return {by_distance_from(policy_.nodes.front(), all), "preferred"};
    case NumaPolicyKind::kInterleave: {
      uint64_t turn = round_robin_.fetch_add(1, std::memory_order_relaxed);
      int first = policy_.nodes[turn % policy_.nodes.size()];
      return {by_distance_from(first, policy_.nodes), "interleave"};
    }
    case NumaPolicyKind::kWeighted:
      return {by_distance_from(next_weighted(), policy_.nodes), "weighted"};
    case NumaPolicyKind::kMostFree: return {by_distance_from(most_free(), all), "most-free"};
  }
  return {all, "nearest"};
}

int NodePolicy::nearest_or_lowest(int gpu_nearest_node,
                                       const std::vector<int>& allowed) const {
  if (std::find(allowed.begin(), allowed.end(), gpu_nearest_node) != allowed.end()) {
    return gpu_nearest_node;
  }
  return allowed.empty() ? 0 : *std::min_element(allowed.begin(), allowed.end());
}

int NodePolicy::most_free() const {
  int best = topology_.nodes.empty() ? 0 : topology_.nodes.front().id;
  size_t best_free = 0;
  for (const NodeInfo& node : topology_.nodes) {
    size_t free = free_bytes_(node.id);
    if (free > best_free) best = node.id, best_free = free;
  }
  return best;
}

// Smooth weighted round-robin (as nginx does): every turn each node gains its
// weight, the richest is picked and pays the total. Over sum(weights) turns
// each node is picked exactly weight times, evenly spread.
int NodePolicy::next_weighted() {
  std::lock_guard<std::mutex> lock(weighted_mutex_);
  long total = std::accumulate(policy_.weights.begin(), policy_.weights.end(), 0L);
  size_t best = 0;
  for (size_t i = 0; i < weighted_current_.size(); ++i) {
    weighted_current_[i] += policy_.weights[i];
    if (weighted_current_[i] > weighted_current_[best]) best = i;
  }
  weighted_current_[best] -= total;
  return policy_.nodes[best];
}

std::vector<int> NodePolicy::by_distance_from(int first,
                                                   const std::vector<int>& allowed) const {
  std::vector<int> order = {first};
  std::vector<int> rest;
  for (int node : allowed) {
    if (node != first) rest.push_back(node);
  }
  std::stable_sort(rest.begin(), rest.end(), [&](int a, int b) {
    return topology_.distance_between(first, a) < topology_.distance_between(first, b);
  });
  order.insert(order.end(), rest.begin(), rest.end());
  return order;
}

}  // namespace egm
