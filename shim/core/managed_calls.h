// The managed-memory calls (attach, prefetch, discard, advise, range
// attributes) on the shim's allocations, for the runtime and driver
// overrides alike. Each returns the shim's answer, or nullopt: the call is
// the real function's (memory the shim does not own; a range that spans
// the shim's and other memory, or its device (non-managed) memory, which
// the driver rejects as it rejects device memory; arguments the shim
// cannot judge).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "shim/core/allocation_table.h"

namespace egm {

std::optional<int> emulate_attach(uintptr_t pointer, size_t length, unsigned flags);

std::optional<int> emulate_prefetch(const char* call, uintptr_t pointer, size_t count,
                                    MemoryLocation target, unsigned long long flags);

std::optional<int> emulate_advise(const char* call, uintptr_t pointer, size_t count, int advice,
                                  MemoryLocation location);

std::optional<int> emulate_range_attribute(uintptr_t pointer, size_t count, int attribute,
                                           void* data, size_t data_size);

// `attributes` are enum values (int-sized in both APIs).
std::optional<int> emulate_range_attributes(uintptr_t pointer, size_t count, void** data,
                                            const size_t* data_sizes, const int* attributes,
                                            size_t attribute_count);

// A batch of prefetches and/or discards (cuMemPrefetchBatchAsync,
// cuMemDiscardBatchAsync, cuMemDiscardAndPrefetchBatchAsync and the runtime's).
// The shim's managed entries are answered here; the rest go to `real` as a
// batch of their own (not called when none is left).
struct Batch {
  const uintptr_t* pointers = nullptr;  // CUdeviceptr or void*
  const size_t* sizes = nullptr;
  size_t count = 0;
  const MemoryLocation* locations = nullptr;  // nullptr: a discard
  const size_t* location_starts = nullptr;
  size_t location_count = 0;
  unsigned long long flags = 0;
};
// A batch call's arguments as either layer passes them: void* or CUdeviceptr
// pointers, cudaMemLocation or CUmemLocation locations (the same layouts).
// Without locations (a discard), locations stays nullptr.
template <typename Pointer, typename Location = MemoryLocation>
Batch batch_of(Pointer* pointers, size_t* sizes, size_t count, unsigned long long flags,
               Location* locations = nullptr, size_t* starts = nullptr,
               size_t location_count = 0) {
  static_assert(sizeof(Pointer) == sizeof(uintptr_t) && sizeof(Location) == sizeof(MemoryLocation));
  Batch batch;
  batch.pointers = reinterpret_cast<const uintptr_t*>(pointers);
  batch.sizes = sizes;
  batch.count = count;
  batch.locations = reinterpret_cast<const MemoryLocation*>(locations);
  batch.location_starts = starts;
  batch.location_count = location_count;
  batch.flags = flags;
  return batch;
}

using RealBatch = std::function<int(const Batch&)>;
std::optional<int> emulate_batch(const char* call, const Batch& batch, const RealBatch& real);

}  // namespace egm
