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
  // The members are the lists of shim/core/entry_points.h: the EGM sequence
  // (required), then the shim's other calls and the real versions of the
  // overrides the core calls by name (nullptr if this driver lacks one).
  EGM_DRIVER_EGM_SEQUENCE(EGM_DRIVER_MEMBER)
  EGM_SHIM_DRIVER_CALLS(EGM_DRIVER_MEMBER)
  EGM_SHIM_IPC_DRIVER_CALLS(EGM_DRIVER_MEMBER)
  EGM_SHIM_STAGING_DRIVER_CALLS(EGM_DRIVER_MEMBER)
  EGM_SHIM_REAL_OVERRIDES(EGM_DRIVER_MEMBER)
  GetProcAddressV1 get_proc_address_v1 = nullptr;  // cuda.h names only the v2 type
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
