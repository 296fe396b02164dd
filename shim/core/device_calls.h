// Device-wide calls whose effects reach the shim's memory, for the
// overrides: peer access (memory made for one GPU then needs an access grant
// for another) and cudaDeviceReset (it destroys every allocation of the
// device, the shim's too). Each makes the real call and returns its result.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

namespace egm {

// cudaDeviceEnablePeerAccess: the current device may now use `peer`'s memory.
cudaError_t enable_peer_access(int peer, unsigned int flags);

// cudaDeviceReset of the current device.
cudaError_t reset_device();

// cuCtxEnablePeerAccess: the current context's device may now use the peer
// context's device memory. `driver_layer_is_ours`: whether the call is the
// shim's to act on (override_support.h); the real call is made either way.
CUresult enable_context_peer_access(CUcontext peer_context, unsigned int flags,
                                    bool driver_layer_is_ours);

}  // namespace egm
