#include "shim/core/device_calls.h"

#include "shim/core/driver_api.h"
#include "shim/core/real_runtime.h"
#include "shim/core/request.h"
#include "shim/core/runtime_guard.h"
#include "shim/core/shim.h"

namespace egm {

cudaError_t enable_peer_access(int peer, unsigned int flags) {
  RealRuntime& real = real_runtime();
  int device = -1;
  cudaError_t result = static_cast<cudaError_t>(kNotInitialized);
  {
    RuntimeCallScope scope;
    auto enable = real.device_enable_peer_access.get();
    if (enable == nullptr) return result;
    result = enable(peer, flags);
    if (auto get_device = real.get_device.get()) get_device(&device);
  }
  // Peer access lets the current device use the peer's memory: memory the
  // shim made for `peer` now needs an access grant for `device`.
  if ((result == cudaSuccess || result == cudaErrorPeerAccessAlreadyEnabled) && device >= 0) {
    Shim::instance().peer_access_enabled(peer, device);
  }
  return result;
}

cudaError_t reset_device() {
  RealRuntime& real = real_runtime();
  int device = -1;
  cudaError_t result = static_cast<cudaError_t>(kNotInitialized);
  {
    RuntimeCallScope scope;
    if (auto get_device = real.get_device.get()) get_device(&device);
    auto reset = real.device_reset.get();
    if (reset == nullptr) return result;
    result = reset();
  }
  if (result == cudaSuccess && device >= 0) Shim::instance().device_reset(device);
  return result;
}

CUresult enable_context_peer_access(CUcontext peer_context, unsigned int flags,
                                    bool driver_layer_is_ours) {
  const DriverApi* api = driver_api(nullptr);
  if (api == nullptr || api->ctx_enable_peer_access == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  CUresult result = api->ctx_enable_peer_access(peer_context, flags);
  bool enabled = result == CUDA_SUCCESS || result == CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
  if (!enabled || !driver_layer_is_ours || !api->ctx_get_device || !api->ctx_push_current ||
      !api->ctx_pop_current) {
    return result;
  }
  // The owner is the peer context's device: asked with that context current.
  CUdevice accessor = 0, owner = 0;
  CUcontext popped = nullptr;
  if (api->ctx_get_device(&accessor) == CUDA_SUCCESS &&
      api->ctx_push_current(peer_context) == CUDA_SUCCESS) {
    bool known = api->ctx_get_device(&owner) == CUDA_SUCCESS;
    api->ctx_pop_current(&popped);
    if (known) Shim::instance().peer_access_enabled(owner, accessor);
  }
  return result;
}

}  // namespace egm
