#include "shim/core/created_handles.h"

#include <algorithm>

namespace egm {

void CreatedHandles::insert(const CreatedHandle& created) {
  std::lock_guard<std::mutex> lock(mutex_);
  by_handle_[created.allocation.handle] = created;
  ++inserted_;
  live_count_.store(by_handle_.size(), std::memory_order_release);
}

std::optional<CUmemAllocationProp> CreatedHandles::requested(uint64_t handle) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_handle_.find(handle);
  if (found == by_handle_.end()) return std::nullopt;
  return found->second.requested;
}

void CreatedHandles::retained(uint64_t handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_handle_.find(handle);
  if (found != by_handle_.end()) ++found->second.references;
}

bool CreatedHandles::contains(uint64_t handle) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return by_handle_.count(handle) != 0;
}

std::optional<CreatedHandle> CreatedHandles::released(uint64_t handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_handle_.find(handle);
  if (found == by_handle_.end() || --found->second.references > 0) return std::nullopt;
  CreatedHandle last = found->second;
  by_handle_.erase(found);
  ++removed_;
  live_count_.store(by_handle_.size(), std::memory_order_release);
  return last;
}

std::vector<Allocation> CreatedHandles::live() const {
  std::vector<Allocation> allocations;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [handle, created] : by_handle_) allocations.push_back(created.allocation);
  }
  std::sort(allocations.begin(), allocations.end(),
            [](const Allocation& a, const Allocation& b) { return a.id < b.id; });
  return allocations;
}

uint64_t CreatedHandles::total_inserted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return inserted_;
}

uint64_t CreatedHandles::total_removed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return removed_;
}

}  // namespace egm
