// How many bytes each host node and each GPU has pinned, and the caps on them
// (EGM_NODE_LIMIT). The mapping table records allocations; the budget decides
// whether a chunk may be mapped at all, and keeps the counters the summaries
// and EGM_MEMINFO=device+host read. With a host ledger (EGM_LEDGER), the
// caps hold for the sum over the user's processes on the host.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "shim/core/host_ledger.h"

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

  // EGM_LEDGER: charges also go to the host ledger at `path` (opened at the
  // first charge), and a cap then holds for every process of the user on the
  // host. If the ledger cannot be used, `warn` gets one line and the caps
  // count this process only from then on. Call before the first charge.
  void share_host_wide(std::string path, std::function<void(const std::string&)> warn);
  // At exit: clears this process's ledger entry if nothing is mapped (else it
  // goes once the process is gone); later charges are per process.
  void leave_host_wide();
  // In a forked child (single-threaded, no lock taken): closes its copy of
  // the ledger, so that the file's lock never outlives the parent through it.
  void forget_ledger_after_fork();
  // Whether charges go through the host ledger now.
  bool host_wide() const;

  std::map<int, NodeUsage> usage_by_node() const;
  std::map<int, NodeUsage> usage_by_device() const;

  // Free and total bytes the policy may still place on `nodes`, caps
  // included: `free_of(node)` and `total_of(node)` say what the system has.
  template <typename FreeOf, typename TotalOf>
  std::pair<size_t, size_t> room(const std::vector<int>& nodes, FreeOf free_of,
                                 TotalOf total_of) const;

 private:
  // The ledger, opened on first use by the process that set it up (a forked
  // child never touches it); nullptr when off or given up.
  HostLedger* ledger_locked() const;
  void give_up_ledger_locked(const std::string& why) const;
  // Bytes on `node` the caps count: the host's with a ledger, else `own`.
  size_t counted_bytes(int node, size_t own) const;

  const std::map<int, size_t> node_limits_;
  mutable std::mutex mutex_;
  std::string ledger_path_;
  std::function<void(const std::string&)> warn_;
  mutable std::unique_ptr<HostLedger> ledger_;
  mutable bool ledger_tried_ = false;
  pid_t ledger_owner_ = 0;
  std::map<int, size_t> ledger_bytes_;  // node -> bytes this process counted in the ledger
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
    size_t used = counted_bytes(node, usage[node].current_bytes);
    size_t system_free = free_of(node);
    free += std::min(system_free, cap > used ? cap - used : 0);
    total += std::min(system_total, cap);
  }
  return {free, total};
}

}  // namespace egm
