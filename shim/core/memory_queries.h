// What the shim's own allocations answer to CUDA's managed-memory calls and
// pointer queries. By default the answers of the allocation the program
// asked for: cudaMalloc memory is device memory on its device, managed
// memory is managed memory whose hints (advice, last prefetch) read back as
// set, per page as CUDA keeps them (shim/core/managed_hints.h). The
// physical answers describe the host mapping as it is.
//
// Results are the values cudaError_t and CUresult share; locations and
// attributes are the values the runtime's and the driver's enums share.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shim/core/allocation_table.h"

namespace egm {

inline constexpr int kInvalidDevice = 101;  // cudaErrorInvalidDevice, CUDA_ERROR_INVALID_DEVICE

// cudaMemLocationType == CUmemLocationType.
inline constexpr int kLocationInvalid = 0;
inline constexpr int kLocationDevice = 1;
inline constexpr int kLocationHost = 2;
inline constexpr int kLocationHostNuma = 3;
inline constexpr int kLocationHostNumaCurrent = 4;
// cudaCpuDeviceId == CU_DEVICE_CPU, cudaInvalidDeviceId == CU_DEVICE_INVALID.
inline constexpr int kCpuDeviceId = -1;
inline constexpr int kInvalidDeviceId = -2;

// The location an old-style device argument names (CU_DEVICE_CPU = the host).
MemoryLocation location_of_device(int device);

// cudaStreamAttachMemAsync / cuStreamAttachMemAsync of [pointer, +length).
int attach_result(const Allocation& mapping, uintptr_t pointer, size_t length, unsigned flags);

// A prefetch of [pointer, +count) to `target`: the memory already lives
// where every processor reaches it, so a valid prefetch only records its
// target on the pages of the range.
int prefetch(const Allocation& mapping, uintptr_t pointer, size_t count, MemoryLocation target,
             unsigned long long flags, int device_count, ManagedHints& hints);

// A discard: the contents become undefined; keeping them is allowed.
int discard(const Allocation& mapping, unsigned long long flags);

// cudaMemAdvise / cuMemAdvise of [pointer, +count) on `mapping`'s hints.
int advise(const Allocation& mapping, uintptr_t pointer, size_t count, int advice,
           MemoryLocation location, int device_count, ManagedHints& hints);

// cudaMemRangeGetAttribute / cuMemRangeGetAttribute of [pointer, +count),
// a range of `mapping`: what every page of it has (CUDA's documented rule).
int range_attribute(const Allocation& mapping, uintptr_t pointer, size_t count, int attribute,
                    void* data, size_t data_size, bool physical);

// cuPointerGetAttribute(s): how the requested allocation answers
// `attribute`, once the driver has answered it for the host mapping.
enum class PointerAnswer {
  kDriver,   // the driver's answer stands
  kWritten,  // written into data
  kNoValue,  // the allocation has none (device memory's host pointer)
};
PointerAnswer requested_pointer_attribute(const Allocation& mapping, uintptr_t pointer,
                                          int attribute, void* data);

// cudaPointerGetAttributes: the fields of cudaPointerAttributes.
struct RuntimePointerFields {
  int type = 0;  // cudaMemoryType
  int device = 0;
  void* device_pointer = nullptr;
  void* host_pointer = nullptr;
};
RuntimePointerFields requested_runtime_attributes(const Allocation& mapping, uintptr_t pointer);

}  // namespace egm
