// Every live host-placed mapping, keyed by the address handed to the program.
// What the mappings cost each node and device is the budget's (budget.h).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "config/apis.h"
#include "shim/core/managed_hints.h"

namespace egm {

struct Allocation {
  uint64_t id = 0;  // assigned by insert()
  uintptr_t address = 0;
  size_t requested = 0;
  size_t mapped = 0;
  int node = 0;
  int device = 0;
  Api api = Api::kCudaMalloc;
  uint64_t handle = 0;    // CUmemGenericAllocationHandle of the backing chunk
  uint64_t chunk_id = 0;  // the backing chunk (pool)
  uintptr_t chunk_address = 0;
  bool in_block = false;  // a block carved from a shared chunk
  bool host_access = true;
  pid_t thread = 0;        // the thread that allocated
  int64_t created_us = 0;  // wall clock, microseconds since the epoch
  void* context = nullptr;  // the CUcontext current at allocation
  ManagedHints hints;       // managed allocations only: per byte range
};

// How a byte range relates to the table's allocations.
enum class RangeOwner {
  kNone,   // no byte of it is the shim's
  kOne,    // every byte lies in one allocation (its requested size)
  kMixed,  // part of it is the shim's: not one allocation
};

class AllocationTable {
 public:
  // Records a user allocation; returns its id. Bytes are charged per
  // chunk (by the pool, to the budget), not per allocation.
  uint64_t insert(Allocation mapping);
  // An id for a record kept elsewhere (created_handles.h), so that ids stay
  // unique in the log; total_inserted() counts it as a map.
  uint64_t reserve_id();
  // Puts back a mapping that remove() took out (same id).
  void restore(const Allocation& mapping);
  // Takes the allocation that starts at `address` out of the table.
  std::optional<Allocation> remove(uintptr_t address);
  // Takes every allocation made for `device` out of the table.
  std::vector<Allocation> remove_device(int device);

  // False means `address` is certainly not in the table. Lock-free, so that
  // frees of memory the shim never mapped stay cheap. Interior addresses too.
  bool may_contain(uintptr_t address) const;

  // The allocation whose [address, address + requested) holds `address`.
  std::optional<Allocation> find_containing(uintptr_t address) const;
  // The owner of [start, start + count) (count 0 counts as 1 byte); `owner`
  // is filled for kOne.
  RangeOwner find_range(uintptr_t start, size_t count, Allocation* owner) const;
  // Updates the hints of the allocation that starts at `address`; false if gone.
  template <typename Update>
  bool update_hints(uintptr_t address, Update update) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = by_address_.find(address);
    if (found == by_address_.end()) return false;
    update(found->second.hints);
    return true;
  }

  std::vector<Allocation> live() const;  // ordered by id
  size_t live_count() const { return live_count_.load(std::memory_order_relaxed); }
  uint64_t total_inserted() const;
  uint64_t total_removed() const;

 private:
  mutable std::mutex mutex_;
  std::map<uintptr_t, Allocation> by_address_;  // ordered: interior lookups
  uint64_t next_id_ = 1;
  uint64_t removed_ = 0;
  std::atomic<size_t> live_count_{0};
  std::atomic<uintptr_t> lowest_{UINTPTR_MAX};
  std::atomic<uintptr_t> highest_{0};  // the last byte of the highest allocation
};

}  // namespace egm
