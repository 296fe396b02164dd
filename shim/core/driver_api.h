// The CUDA driver entry points the shim needs, taken from libcuda.so.1's own
// handle (with glibc's real dlsym) so that a call never re-enters the shim.
#pragma once

#include <cuda.h>

#include "shim/core/entry_points.h"

namespace egm {

// cuda.h maps the plain names to the current versions (cuMemAlloc ->
// cuMemAlloc_v2, ...); the v1 cuGetProcAddress needs its own type.
using GetProcAddressV1 = CUresult (*)(const char*, void**, int, cuuint64_t);

struct DriverApi {
  // The EGM sequence.
  decltype(&::cuDeviceGet) device_get = nullptr;
  decltype(&::cuDeviceGetAttribute) device_get_attribute = nullptr;
  decltype(&::cuGetErrorName) get_error_name = nullptr;
  decltype(&::cuMemGetAllocationGranularity) mem_get_allocation_granularity = nullptr;
  decltype(&::cuMemCreate) mem_create = nullptr;
  decltype(&::cuMemRelease) mem_release = nullptr;
  decltype(&::cuMemAddressReserve) mem_address_reserve = nullptr;
  decltype(&::cuMemAddressFree) mem_address_free = nullptr;
  decltype(&::cuMemMap) mem_map = nullptr;
  decltype(&::cuMemUnmap) mem_unmap = nullptr;
  decltype(&::cuMemSetAccess) mem_set_access = nullptr;
  // Driver-layer requests, peer access.
  decltype(&::cuDeviceGetCount) device_get_count = nullptr;
  decltype(&::cuCtxPushCurrent_v2) ctx_push_current = nullptr;
  decltype(&::cuCtxPopCurrent_v2) ctx_pop_current = nullptr;
  decltype(&::cuCtxEnablePeerAccess) ctx_enable_peer_access = nullptr;
  decltype(&::cuCtxGetDevice) ctx_get_device = nullptr;
  decltype(&::cuCtxSynchronize) ctx_synchronize = nullptr;
  decltype(&::cuCtxGetCurrent) ctx_get_current = nullptr;
  decltype(&::cuCtxSetCurrent) ctx_set_current = nullptr;
  // Deferred frees of cuMemFreeAsync (CUevent is cudaEvent_t).
  decltype(&::cuEventCreate) event_create = nullptr;
  decltype(&::cuEventRecord) event_record = nullptr;
  decltype(&::cuEventQuery) event_query = nullptr;
  decltype(&::cuEventDestroy_v2) event_destroy = nullptr;

  // The real versions of what the shim overrides (nullptr if this driver lacks one).
  decltype(&::cuMemAlloc_v2) mem_alloc = nullptr;
  decltype(&::cuMemAllocManaged) mem_alloc_managed = nullptr;
  decltype(&::cuMemAllocPitch_v2) mem_alloc_pitch = nullptr;
  decltype(&::cuMemFree_v2) mem_free = nullptr;
  decltype(&::cuMemGetInfo_v2) mem_get_info = nullptr;
  decltype(&::cuGetProcAddress_v2) get_proc_address = nullptr;
  GetProcAddressV1 get_proc_address_v1 = nullptr;
  // Every function of EGM_DRIVER_OVERRIDES, by DriverOverride (nullptr if
  // this driver lacks it).
  void* overridden[kDriverOverrideCount] = {};

  // The real function behind override `which`, as type Fn.
  template <typename Fn>
  Fn real(DriverOverride which) const {
    return reinterpret_cast<Fn>(overridden[static_cast<size_t>(which)]);
  }

  // Name of a CUresult, e.g. "CUDA_ERROR_INVALID_VALUE".
  const char* error_name(CUresult result) const;
};

// Loaded once, thread-safely, on first use. nullptr (with `why` filled in)
// when libcuda.so.1 or one of the EGM entry points is missing.
const DriverApi* driver_api(const char** why);

}  // namespace egm
