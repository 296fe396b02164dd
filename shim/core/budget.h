// How many bytes each host node and each GPU has pinned, and the caps on them
// (EGM_NODE_LIMIT). The mapping table records allocations; the budget decides
// whether a chunk may be mapped at all, and keeps the counters the summaries
// and EGM_MEMINFO=device+host read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace egm {

struct NodeUsage {
  size_t current_bytes = 0;  // pinned: chunks mapped (in use or cached)
  size_t peak_bytes = 0;
  uint64_t maps = 0;  // user allocations placed on the node
};

class Budget {
 public:
  // `node_limits`: EGM_NODE_LIMIT, node -> bytes; nodes not named are uncapped.
  explicit Budget(std::map<int, size_t> node_limits = {});

  // The most bytes `node` may have pinned (SIZE_MAX: no cap).
  size_t limit(int node) const;

  // Counts `bytes` against `node` unless that would pass `limit`. Called
  // before mapping, so that concurrent requests cannot overshoot a cap.
  bool try_charge(int node, size_t bytes, size_t limit);
  // Gives back a charge (its mapping failed, or was unmapped).
  void uncharge(int node, size_t bytes);
  // Records the node's current charge as a peak candidate: called once the
  // charged chunk really exists, so failed attempts never show as peaks.
  void note_peak(int node);
  // Pinned bytes by the GPU the chunks were made for.
  void charge_device(int device, size_t bytes);
  void uncharge_device(int device, size_t bytes);
  // A user allocation was placed on `node` for `device` (the maps= counts).
  void count_allocation(int node, int device);

  std::map<int, NodeUsage> usage_by_node() const;
  std::map<int, NodeUsage> usage_by_device() const;

  // Free and total bytes the policy may still place on `nodes`, caps
  // included: `free_of(node)` and `total_of(node)` say what the system has.
  template <typename FreeOf, typename TotalOf>
  std::pair<size_t, size_t> room(const std::vector<int>& nodes, FreeOf free_of,
                                 TotalOf total_of) const;

 private:
  const std::map<int, size_t> node_limits_;
  mutable std::mutex mutex_;
  std::map<int, NodeUsage> node_usage_;
  std::map<int, NodeUsage> device_usage_;
};

template <typename FreeOf, typename TotalOf>
std::pair<size_t, size_t> Budget::room(const std::vector<int>& nodes, FreeOf free_of,
                                       TotalOf total_of) const {
  std::map<int, NodeUsage> usage = usage_by_node();
  size_t free = 0, total = 0;
  for (int node : nodes) {
    size_t system_total = total_of(node);
    auto found = node_limits_.find(node);
    size_t cap = found == node_limits_.end() ? system_total : found->second;
    size_t used = usage[node].current_bytes;
    size_t system_free = free_of(node);
    free += std::min(system_free, cap > used ? cap - used : 0);
    total += std::min(system_total, cap);
  }
  return {free, total};
}

}  // namespace egm
