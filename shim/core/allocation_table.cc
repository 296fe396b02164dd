#include "shim/core/allocation_table.h"

#include <algorithm>
#include <iterator>

namespace egm {

uint64_t AllocationTable::insert(Allocation mapping) {
  std::lock_guard<std::mutex> lock(mutex_);
  mapping.id = next_id_++;
  // The bounds only grow: a stale wide range just costs a locked lookup.
  if (mapping.address < lowest_.load(std::memory_order_relaxed)) {
    lowest_.store(mapping.address, std::memory_order_relaxed);
  }
  uintptr_t last = mapping.address + (mapping.requested == 0 ? 0 : mapping.requested - 1);
  if (last > highest_.load(std::memory_order_relaxed)) {
    highest_.store(last, std::memory_order_relaxed);
  }
  by_address_.emplace(mapping.address, mapping);
  live_count_.store(by_address_.size(), std::memory_order_release);
  return mapping.id;
}

void AllocationTable::restore(const Allocation& mapping) {
  std::lock_guard<std::mutex> lock(mutex_);
  --removed_;
  by_address_.emplace(mapping.address, mapping);
  live_count_.store(by_address_.size(), std::memory_order_release);
}

std::optional<Allocation> AllocationTable::remove(uintptr_t address) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_address_.find(address);
  if (found == by_address_.end()) return std::nullopt;
  Allocation mapping = found->second;
  by_address_.erase(found);
  ++removed_;
  live_count_.store(by_address_.size(), std::memory_order_release);
  return mapping;
}

std::vector<Allocation> AllocationTable::remove_device(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Allocation> removed;
  for (auto entry = by_address_.begin(); entry != by_address_.end();) {
    if (entry->second.device != device) {
      ++entry;
      continue;
    }
    removed.push_back(entry->second);
    entry = by_address_.erase(entry);
    ++removed_;
  }
  live_count_.store(by_address_.size(), std::memory_order_release);
  return removed;
}

bool AllocationTable::may_contain(uintptr_t address) const {
  return live_count_.load(std::memory_order_acquire) != 0 &&
         address >= lowest_.load(std::memory_order_relaxed) &&
         address <= highest_.load(std::memory_order_relaxed);
}

std::optional<Allocation> AllocationTable::find_containing(uintptr_t address) const {
  if (!may_contain(address)) return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex_);
  auto after = by_address_.upper_bound(address);
  if (after == by_address_.begin()) return std::nullopt;
  const Allocation& mapping = std::prev(after)->second;
  if (address - mapping.address >= std::max<size_t>(mapping.requested, 1)) return std::nullopt;
  return mapping;
}

RangeOwner AllocationTable::find_range(uintptr_t start, size_t count, Allocation* owner) const {
  size_t length = std::max<size_t>(count, 1);
  uintptr_t last = start + (length - 1);
  if (last < start) last = UINTPTR_MAX;  // wraps: up to the end of the address space
  if (live_count_.load(std::memory_order_acquire) == 0 ||
      last < lowest_.load(std::memory_order_relaxed) ||
      start > highest_.load(std::memory_order_relaxed)) {
    return RangeOwner::kNone;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  // Allocations are disjoint and sorted, so their ends are sorted too: the
  // last one starting at or before `last` decides whether any overlaps.
  auto after = by_address_.upper_bound(last);
  if (after == by_address_.begin()) return RangeOwner::kNone;
  const Allocation& candidate = std::prev(after)->second;
  uintptr_t candidate_last = candidate.address + (std::max<size_t>(candidate.requested, 1) - 1);
  if (candidate_last < start) return RangeOwner::kNone;
  if (candidate.address <= start && last <= candidate_last) {
    if (owner != nullptr) *owner = candidate;
    return RangeOwner::kOne;
  }
  return RangeOwner::kMixed;
}

std::vector<Allocation> AllocationTable::live() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Allocation> mappings;
  mappings.reserve(by_address_.size());
  for (const auto& entry : by_address_) mappings.push_back(entry.second);
  std::sort(mappings.begin(), mappings.end(),
            [](const Allocation& a, const Allocation& b) { return a.id < b.id; });
  return mappings;
}

uint64_t AllocationTable::reserve_id() {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_id_++;
}

uint64_t AllocationTable::total_inserted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_id_ - 1;
}

uint64_t AllocationTable::total_removed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return removed_;
}

}  // namespace egm
