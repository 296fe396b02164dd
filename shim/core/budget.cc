#include "shim/core/budget.h"

#include <algorithm>
#include <cstdint>

namespace egm {

Budget::Budget(std::map<int, size_t> node_limits) : node_limits_(std::move(node_limits)) {}

size_t Budget::limit(int node) const {
  auto found = node_limits_.find(node);
  return found == node_limits_.end() ? SIZE_MAX : found->second;
}

bool Budget::try_charge(int node, size_t bytes, size_t limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  NodeUsage& usage = node_usage_[node];
  if (bytes > limit || usage.current_bytes > limit - bytes) return false;
  usage.current_bytes += bytes;  // the peak moves once the chunk exists (note_peak)
  return true;
}

void Budget::uncharge(int node, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  node_usage_[node].current_bytes -= bytes;
}

void Budget::note_peak(int node) {
  std::lock_guard<std::mutex> lock(mutex_);
  NodeUsage& usage = node_usage_[node];
  usage.peak_bytes = std::max(usage.peak_bytes, usage.current_bytes);
}

void Budget::charge_device(int device, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  NodeUsage& usage = device_usage_[device];
  usage.current_bytes += bytes;
  usage.peak_bytes = std::max(usage.peak_bytes, usage.current_bytes);
}

void Budget::uncharge_device(int device, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  device_usage_[device].current_bytes -= bytes;
}

void Budget::count_allocation(int node, int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++node_usage_[node].maps;
  ++device_usage_[device].maps;
}

std::map<int, NodeUsage> Budget::usage_by_node() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return node_usage_;
}

std::map<int, NodeUsage> Budget::usage_by_device() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return device_usage_;
}

}  // namespace egm
