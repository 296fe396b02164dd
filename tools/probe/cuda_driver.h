// libcuda.so.1 and (optionally) libcudart's entry points, resolved with
// dlopen/dlsym: egm-probe never links CUDA, so that it runs, and says why
// EGM cannot work, on a machine without a driver.
#pragma once

#include <cuda.h>

#include <optional>
#include <string>
#include <vector>

#include "shim/core/entry_points.h"

namespace egm::probe {

inline constexpr const char* kDriverLibrary = "libcuda.so.1";

// Null members are entry points this libcuda does not export. The members
// are the lists of shim/core/entry_points.h: the probe's own calls and the
// EGM sequence.
struct CudaDriver {
  EGM_PROBE_DRIVER_CALLS(EGM_DRIVER_MEMBER)
  EGM_DRIVER_EGM_SEQUENCE(EGM_DRIVER_MEMBER)

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
