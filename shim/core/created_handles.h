// Device memory a program created itself with cuMemCreate that the shim
// placed on a host node instead, keyed by the handle the program holds. The
// program reserves, maps and unmaps it; the shim only answers for the handle
// (properties, release) and counts it.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "shim/core/allocation_table.h"

namespace egm {

struct CreatedHandle {
  Allocation allocation;          // address 0: the program maps it where it likes
  CUmemAllocationProp requested;  // the program's properties, as it asked
  int references = 1;             // the program's create and retains, less its releases
};

class CreatedHandles {
 public:
  void insert(const CreatedHandle& created);
  // Lock-free: true while no rewritten handle is live, so that the VMM calls
  // of programs the shim never touched stay cheap.
  bool empty() const { return live_count() == 0; }
  size_t live_count() const { return live_count_.load(std::memory_order_acquire); }
  // The program's own properties of a rewritten handle.
  std::optional<CUmemAllocationProp> requested(uint64_t handle) const;
  // cuMemRetainAllocationHandle returned `handle`: one more release to come.
  void retained(uint64_t handle);
  // Whether `handle` is a live rewritten handle.
  bool contains(uint64_t handle) const;
  // A successful cuMemRelease of `handle`: the record when it was the
  // program's last reference (the handle is then gone from the table).
  std::optional<CreatedHandle> released(uint64_t handle);

  std::vector<Allocation> live() const;  // ordered by id
  uint64_t total_inserted() const;
  uint64_t total_removed() const;

 private:
  mutable std::mutex mutex_;
  std::map<uint64_t, CreatedHandle> by_handle_;
  uint64_t inserted_ = 0;
  uint64_t removed_ = 0;
  std::atomic<size_t> live_count_{0};
};

}  // namespace egm
