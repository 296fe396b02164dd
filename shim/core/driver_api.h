// The CUDA driver entry points the EGM sequence needs, taken from
// libcuda.so.1's own handle so that a call never re-enters the shim.
#pragma once

#include <cuda.h>

namespace egm {

struct DriverApi {
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

  // Name of a CUresult, e.g. "CUDA_ERROR_INVALID_VALUE".
  const char* error_name(CUresult result) const;
};

// Loaded once, thread-safely, on first use. nullptr (with `why` filled in)
// when libcuda.so.1 or one of the entry points is missing.
const DriverApi* driver_api(const char** why);

}  // namespace egm
