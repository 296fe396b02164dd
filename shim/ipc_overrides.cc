// CUDA IPC memory handles at both layers. The shim's own memory gets a
// record the shim resolves in the opening process (shim/core/ipc.h); every
// other pointer and handle goes to CUDA unchanged. Event handles are not
// overridden: events are never the shim's.
#include <cuda_runtime_api.h>

#include "shim/core/ipc.h"
#include "shim/core/real_runtime.h"
#include "shim/driver_symbols.h"
#include "shim/override_support.h"

namespace {

using egm::DriverOverride;
using egm::pass_through;

static_assert(sizeof(CUipcMemHandle) == egm::kIpcHandleBytes &&
              sizeof(cudaIpcMemHandle_t) == egm::kIpcHandleBytes);

unsigned char* bytes_of(void* handle) { return static_cast<unsigned char*>(handle); }

egm::RealFunction<cudaError_t (*)(cudaIpcMemHandle_t*, void*)> real_get{"cudaIpcGetMemHandle"};
egm::RealFunction<cudaError_t (*)(void**, cudaIpcMemHandle_t, unsigned int)> real_open{
    "cudaIpcOpenMemHandle"};
egm::RealFunction<cudaError_t (*)(void*)> real_close{"cudaIpcCloseMemHandle"};

template <typename Fn, typename... Args>
cudaError_t call_real(egm::RealFunction<Fn>& function, Args... args) {
  Fn real = function.get();
  return real != nullptr ? real(args...) : cudaErrorInitializationError;
}

CUresult open_driver(DriverOverride which, CUdeviceptr* pointer, CUipcMemHandle handle,
                     unsigned int flags) {
  if (!egm::inside_runtime_call()) {
    if (auto result = egm::ipc_open_handle(pointer, bytes_of(handle.reserved), flags, false)) {
      return *result;
    }
  }
  return pass_through<decltype(&cuIpcOpenMemHandle_v2)>(which, pointer, handle, flags);
}

}  // namespace

extern "C" {

EGM_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle* handle, CUdeviceptr pointer) {
  if (egm::driver_layer_is_ours()) {
    if (auto result = egm::ipc_get_handle(handle ? bytes_of(handle->reserved) : nullptr,
                                          static_cast<uintptr_t>(pointer))) {
      return *result;
    }
  }
  return pass_through<decltype(&cuIpcGetMemHandle)>(DriverOverride::k_cuIpcGetMemHandle, handle,
                                                    pointer);
}

EGM_EXPORT CUresult cuIpcOpenMemHandle(CUdeviceptr* pointer, CUipcMemHandle handle,
                                       unsigned int flags) {
  return open_driver(DriverOverride::k_cuIpcOpenMemHandle, pointer, handle, flags);
}

EGM_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr* pointer, CUipcMemHandle handle,
                                          unsigned int flags) {
  return open_driver(DriverOverride::k_cuIpcOpenMemHandle_v2, pointer, handle, flags);
}

EGM_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr pointer) {
  if (!egm::inside_runtime_call()) {
    if (auto result = egm::ipc_close_handle(pointer)) return *result;
  }
  return pass_through<decltype(&cuIpcCloseMemHandle)>(DriverOverride::k_cuIpcCloseMemHandle,
                                                      pointer);
}

EGM_EXPORT cudaError_t cudaIpcGetMemHandle(cudaIpcMemHandle_t* handle, void* pointer) {
  if (auto result = egm::ipc_get_handle(handle ? bytes_of(handle->reserved) : nullptr,
                                        reinterpret_cast<uintptr_t>(pointer))) {
    return egm::ipc_runtime_error(*result);
  }
  return call_real(real_get, handle, pointer);
}

EGM_EXPORT cudaError_t cudaIpcOpenMemHandle(void** pointer, cudaIpcMemHandle_t handle,
                                            unsigned int flags) {
  CUdeviceptr opened = 0;
  if (auto result = egm::ipc_open_handle(pointer ? &opened : nullptr, bytes_of(handle.reserved),
                                         flags, true)) {
    if (*result == CUDA_SUCCESS) *pointer = reinterpret_cast<void*>(opened);
    return egm::ipc_runtime_error(*result);
  }
  return call_real(real_open, pointer, handle, flags);
}

EGM_EXPORT cudaError_t cudaIpcCloseMemHandle(void* pointer) {
  if (auto result = egm::ipc_close_handle(reinterpret_cast<CUdeviceptr>(pointer))) {
    return egm::ipc_runtime_error(*result);
  }
  return call_real(real_close, pointer);
}

}  // extern "C"
