#include "shim/core/memory_queries.h"

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstring>

#include "config/apis.h"

namespace egm {
namespace {

constexpr int kSuccess = 0;
constexpr int kInvalidValue = 1;

static_assert(kLocationDevice == CU_MEM_LOCATION_TYPE_DEVICE &&
              kLocationHost == CU_MEM_LOCATION_TYPE_HOST &&
              kLocationHostNuma == CU_MEM_LOCATION_TYPE_HOST_NUMA &&
              kLocationHostNumaCurrent == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT &&
              kLocationDevice == cudaMemLocationTypeDevice &&
              kLocationHostNuma == cudaMemLocationTypeHostNuma);
static_assert(kCpuDeviceId == CU_DEVICE_CPU && kCpuDeviceId == cudaCpuDeviceId &&
              kInvalidDeviceId == CU_DEVICE_INVALID && kInvalidDeviceId == cudaInvalidDeviceId);
static_assert(kInvalidDevice == CUDA_ERROR_INVALID_DEVICE && kInvalidDevice == cudaErrorInvalidDevice);
static_assert(static_cast<int>(cudaMemAdviseSetAccessedBy) == CU_MEM_ADVISE_SET_ACCESSED_BY);
static_assert(static_cast<int>(cudaMemRangeAttributeLastPrefetchLocationId) ==
              CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID);

bool is_host(int type) {
  return type == kLocationHost || type == kLocationHostNuma || type == kLocationHostNumaCurrent;
}

// 0 when `location` names a place data can live; else the error.
int check_location(MemoryLocation location, int device_count) {
  if (location.type == kLocationDevice) {
    return location.id >= 0 && location.id < device_count ? kSuccess : kInvalidDevice;
  }
  if (location.type == kLocationHostNuma) return location.id >= 0 ? kSuccess : kInvalidValue;
  return is_host(location.type) ? kSuccess : kInvalidValue;
}

// The old-style int attribute: a device ordinal, the CPU, or none.
int legacy_id(MemoryLocation location) {
  if (location.type == kLocationDevice) return location.id;
  return is_host(location.type) ? kCpuDeviceId : kInvalidDeviceId;
}

int id_of(MemoryLocation location) {
  if (location.type == kLocationDevice || location.type == kLocationHostNuma) return location.id;
  return location.type == kLocationInvalid ? kInvalidDeviceId : kCpuDeviceId;
}

// The last prefetch's id: the H200's driver (580) answers 0 for the host,
// where the preferred location's id of the host is -1 (CU_DEVICE_CPU).
int last_prefetch_id_of(MemoryLocation location) {
  return location.type == kLocationHost ? 0 : id_of(location);
}

bool write_int(void* data, size_t data_size, int value) {
  if (data == nullptr || data_size != sizeof(int)) return false;
  std::memcpy(data, &value, sizeof value);
  return true;
}

// ACCESSED_BY: the devices (and the CPU) set, then cudaInvalidDeviceId.
bool write_accessed_by(const PageHints& hints, void* data, size_t data_size) {
  if (data == nullptr || data_size == 0 || data_size % sizeof(int) != 0) return false;
  int* out = static_cast<int*>(data);
  size_t slots = data_size / sizeof(int), used = 0;
  for (int device = 0; device < 64 && used < slots; ++device) {
    if (hints.accessed_by_devices & (uint64_t{1} << device)) out[used++] = device;
  }
  if (hints.accessed_by_host && used < slots) out[used++] = kCpuDeviceId;
  while (used < slots) out[used++] = kInvalidDeviceId;
  return true;
}

template <typename T>
void write(void* data, T value) {
  std::memcpy(data, &value, sizeof value);
}

// The host's id is ignored (CU_MEM_LOCATION_TYPE_HOST, _HOST_NUMA_CURRENT):
// recorded as 0, so that equal locations compare equal page by page.
MemoryLocation normalized(MemoryLocation location) {
  if (location.type == kLocationHost || location.type == kLocationHostNumaCurrent) {
    location.id = 0;
  }
  return location;
}

size_t offset_of(const Allocation& mapping, uintptr_t pointer) { return pointer - mapping.address; }

}  // namespace

MemoryLocation location_of_device(int device) {
  if (device == kCpuDeviceId) return {kLocationHost, 0};
  return {kLocationDevice, device};
}

int attach_result(const Allocation& mapping, uintptr_t pointer, size_t length, unsigned flags) {
  if (!is_managed(mapping.api)) return kInvalidValue;  // device memory cannot be attached
  bool known_flag = flags == cudaMemAttachGlobal || flags == cudaMemAttachHost ||
                    flags == cudaMemAttachSingle;
  // The whole allocation only: length 0 or its size, from its start.
  bool whole = pointer == mapping.address && (length == 0 || length == mapping.requested);
  return known_flag && whole ? kSuccess : kInvalidValue;
}

int prefetch(const Allocation& mapping, uintptr_t pointer, size_t count, MemoryLocation target,
             unsigned long long flags, int device_count, ManagedHints& hints) {
  if (!is_managed(mapping.api) || flags != 0) return kInvalidValue;
  if (int error = check_location(target, device_count)) return error;
  target = normalized(target);
  hints.change(offset_of(mapping, pointer), count,
               [&](PageHints& page) { page.last_prefetch = target; });
  return kSuccess;
}

int discard(const Allocation& mapping, unsigned long long flags) {
  return is_managed(mapping.api) && flags == 0 ? kSuccess : kInvalidValue;
}

int advise(const Allocation& mapping, uintptr_t pointer, size_t count, int advice,
           MemoryLocation location, int device_count, ManagedHints& hints) {
  if (!is_managed(mapping.api)) return kInvalidValue;
  switch (advice) {
    case CU_MEM_ADVISE_SET_READ_MOSTLY:
    case CU_MEM_ADVISE_UNSET_READ_MOSTLY:
    case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION: break;
    case CU_MEM_ADVISE_SET_PREFERRED_LOCATION:
    case CU_MEM_ADVISE_SET_ACCESSED_BY:
    case CU_MEM_ADVISE_UNSET_ACCESSED_BY:
      if (int error = check_location(location, device_count)) return error;
      break;
    default: return kInvalidValue;
  }
  location = normalized(location);
  uint64_t device_bit = location.type == kLocationDevice && location.id < 64
                            ? uint64_t{1} << location.id
                            : 0;
  hints.change(offset_of(mapping, pointer), count, [&](PageHints& page) {
    switch (advice) {
      case CU_MEM_ADVISE_SET_READ_MOSTLY: page.read_mostly = true; break;
      case CU_MEM_ADVISE_UNSET_READ_MOSTLY: page.read_mostly = false; break;
      case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION: page.preferred = {}; break;
      case CU_MEM_ADVISE_SET_PREFERRED_LOCATION: page.preferred = location; break;
      case CU_MEM_ADVISE_SET_ACCESSED_BY:
        if (location.type == kLocationDevice) page.accessed_by_devices |= device_bit;
        else page.accessed_by_host = true;
        break;
      case CU_MEM_ADVISE_UNSET_ACCESSED_BY:
        if (location.type == kLocationDevice) page.accessed_by_devices &= ~device_bit;
        else page.accessed_by_host = false;
        break;
    }
  });
  return kSuccess;
}

int range_attribute(const Allocation& mapping, uintptr_t pointer, size_t count, int attribute,
                    void* data, size_t data_size, bool physical) {
  if (!is_managed(mapping.api)) return kInvalidValue;
  const PageHints hints = mapping.hints.common_to(offset_of(mapping, pointer), count);
  // Physically the data never leaves the host node: a prefetch moved nothing.
  MemoryLocation prefetched = hints.last_prefetch;
  if (physical) prefetched = {kLocationHostNuma, mapping.node};
  bool written = false;
  switch (attribute) {
    case CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY:
      written = write_int(data, data_size, hints.read_mostly ? 1 : 0);
      break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION:
      written = write_int(data, data_size, legacy_id(hints.preferred));
      break;
    case CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY:
      written = write_accessed_by(hints, data, data_size);
      break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION:
      written = write_int(data, data_size, legacy_id(prefetched));
      break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE:
      written = write_int(data, data_size, hints.preferred.type);
      break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID:
      written = write_int(data, data_size, id_of(hints.preferred));
      break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE:
      written = write_int(data, data_size, prefetched.type);
      break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID:
      written = write_int(data, data_size, last_prefetch_id_of(prefetched));
      break;
    default: break;
  }
  return written ? kSuccess : kInvalidValue;
}

PointerAnswer requested_pointer_attribute(const Allocation& mapping, uintptr_t pointer,
                                          int attribute, void* data) {
  bool managed = is_managed(mapping.api);
  switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: write(data, static_cast<CUcontext>(mapping.context)); break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
      write(data, static_cast<unsigned>(CU_MEMORYTYPE_DEVICE));  // managed memory says device too
      break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: write(data, static_cast<CUdeviceptr>(pointer)); break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
      if (!managed) return PointerAnswer::kNoValue;
      write(data, reinterpret_cast<void*>(pointer));
      break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
      // A boolean whose width the driver chose: it wrote 0, set the low byte.
      *static_cast<unsigned char*>(data) = managed ? 1 : 0;
      break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: write(data, mapping.device); break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
      write(data, static_cast<CUdeviceptr>(mapping.address));
      break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: write(data, mapping.requested); break;
    default: return PointerAnswer::kDriver;
  }
  return PointerAnswer::kWritten;
}

RuntimePointerFields requested_runtime_attributes(const Allocation& mapping, uintptr_t pointer) {
  RuntimePointerFields fields;
  bool managed = is_managed(mapping.api);
  fields.type = managed ? cudaMemoryTypeManaged : cudaMemoryTypeDevice;
  fields.device = mapping.device;
  fields.device_pointer = reinterpret_cast<void*>(pointer);
  fields.host_pointer = managed ? reinterpret_cast<void*>(pointer) : nullptr;
  return fields;
}

}  // namespace egm
