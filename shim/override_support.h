// What the override files share: the export marker, the driver-layer gate
// and the pass-through to the real driver function.
#pragma once

#include <cuda.h>

#include "shim/core/driver_api.h"
#include "shim/core/request.h"
#include "shim/core/runtime_guard.h"
#include "shim/core/shim.h"

#define EGM_EXPORT __attribute__((visibility("default")))

namespace egm {

// Driver-layer calls are the shim's unless the runtime is calling on the
// shim's behalf, or EGM_HOOK_DRIVER=0.
inline bool driver_layer_is_ours() {
  return !inside_runtime_call() && Shim::instance().hooks_driver();
}

// The real driver function `which` (of type Fn) on `args`, or
// CUDA_ERROR_NOT_INITIALIZED when there is none.
template <typename Fn, typename... Args>
CUresult pass_through(DriverOverride which, Args... args) {
  const DriverApi* api = driver_api(nullptr);
  Fn real = api != nullptr ? api->real<Fn>(which) : nullptr;
  return real != nullptr ? real(args...) : static_cast<CUresult>(kNotInitialized);
}

}  // namespace egm
