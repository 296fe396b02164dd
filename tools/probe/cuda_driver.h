// libcuda.so.1 and (optionally) libcudart's entry points, resolved with
// dlopen/dlsym: egm-probe never links CUDA, so that it runs, and says why
// EGM cannot work, on a machine without a driver.
#pragma once

#include <cuda.h>

#include <optional>
#include <string>
#include <vector>

namespace egm::probe {

inline constexpr const char* kDriverLibrary = "libcuda.so.1";

// Null members are entry points this libcuda does not export.
struct CudaDriver {
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuDriverGetVersion) driver_get_version = nullptr;
  decltype(&::cuGetErrorName) get_error_name = nullptr;
  decltype(&::cuDeviceGetCount) device_get_count = nullptr;
  decltype(&::cuDeviceGet) device_get = nullptr;
  decltype(&::cuDeviceGetName) device_get_name = nullptr;
  decltype(&::cuDeviceGetPCIBusId) device_get_pci_bus_id = nullptr;
  decltype(&::cuDeviceGetAttribute) device_get_attribute = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) primary_ctx_retain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease) primary_ctx_release = nullptr;
  decltype(&::cuCtxSetCurrent) ctx_set_current = nullptr;
  decltype(&::cuMemGetAllocationGranularity) mem_get_allocation_granularity = nullptr;
  decltype(&::cuMemCreate) mem_create = nullptr;
  decltype(&::cuMemRelease) mem_release = nullptr;
  decltype(&::cuMemAddressReserve) mem_address_reserve = nullptr;
  decltype(&::cuMemAddressFree) mem_address_free = nullptr;
  decltype(&::cuMemMap) mem_map = nullptr;
  decltype(&::cuMemUnmap) mem_unmap = nullptr;
  decltype(&::cuMemSetAccess) mem_set_access = nullptr;
  decltype(&::cuMemcpyHtoD) memcpy_htod = nullptr;
  decltype(&::cuMemcpyDtoH) memcpy_dtoh = nullptr;

  // The names of the entry points above that libcuda.so.1 lacks.
  std::vector<std::string> missing;

  // "CUDA_ERROR_OUT_OF_MEMORY", or "CUDA error 2" when the driver has no name for it.
  std::string error_name(CUresult result) const;
};

struct LoadedDriver {
  std::optional<CudaDriver> driver;
  std::string error;  // dlerror() when it could not be loaded
};

// Loads libcuda.so.1 (for good: a driver is never unloaded) and resolves it.
LoadedDriver load_cuda_driver();

struct RuntimeVersion {
  std::string library;  // the soname that loaded
  int version = 0;      // cudaRuntimeGetVersion: 1000 * major + 10 * minor
};

// The CUDA runtime's version, if a libcudart is loadable; optional information.
std::optional<RuntimeVersion> cuda_runtime_version();

// 13000 -> "13.0".
std::string version_text(int version);

}  // namespace egm::probe
