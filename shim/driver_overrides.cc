// The CUDA driver entry points egm-shim overrides, and the two ways programs
// reach driver functions without the dynamic linker: cuGetProcAddress and
// dlsym on a libcuda handle (statically linked runtimes use both). Calls the
// runtime makes on the shim's behalf pass straight through.
#include <cuda.h>

#include "shim/core/driver_api.h"
#include "shim/core/runtime_guard.h"
#include "shim/core/shim.h"
#include "shim/driver_lookup.h"

#define EGM_EXPORT __attribute__((visibility("default")))

#undef cuGetProcAddress  // cuda.h maps it to _v2; the v1 symbol is exported too

namespace {

// Pass-through when the runtime is calling on the shim's behalf, or when
// EGM_HOOK_DRIVER=0.
bool driver_layer_is_ours() {
  return !egm::inside_runtime_call() && egm::Shim::instance().hooks_driver();
}

const egm::DriverApi* driver() { return egm::driver_api(nullptr); }

CUresult allocate(const egm::Request& request) {
  return static_cast<CUresult>(egm::Shim::instance().allocate(request));
}

}  // namespace

extern "C" {

EGM_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t size) {
  if (!driver_layer_is_ours()) {
    return driver() && driver()->mem_alloc ? driver()->mem_alloc(pointer, size)
                                           : CUDA_ERROR_NOT_INITIALIZED;
  }
  return allocate({egm::Api::kCuMemAlloc, reinterpret_cast<void**>(pointer), size});
}

EGM_EXPORT CUresult cuMemAllocManaged(CUdeviceptr* pointer, size_t size, unsigned int flags) {
  if (!driver_layer_is_ours()) {
    return driver() && driver()->mem_alloc_managed
               ? driver()->mem_alloc_managed(pointer, size, flags)
               : CUDA_ERROR_NOT_INITIALIZED;
  }
  return allocate({egm::Api::kCuMemAllocManaged, reinterpret_cast<void**>(pointer), size, flags});
}

EGM_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* pointer, size_t* pitch, size_t width,
                                       size_t height, unsigned int element_size) {
  if (!driver_layer_is_ours()) {
    return driver() && driver()->mem_alloc_pitch
               ? driver()->mem_alloc_pitch(pointer, pitch, width, height, element_size)
               : CUDA_ERROR_NOT_INITIALIZED;
  }
  return allocate(egm::pitched_request(egm::Api::kCuMemAllocPitch,
                                       reinterpret_cast<void**>(pointer), pitch, width, height,
                                       element_size));
}

EGM_EXPORT CUresult cuMemFree_v2(CUdeviceptr pointer) {
  if (!driver_layer_is_ours()) {
    return driver() && driver()->mem_free ? driver()->mem_free(pointer)
                                          : CUDA_ERROR_NOT_INITIALIZED;
  }
  return egm::Shim::instance().free_driver(pointer);
}

EGM_EXPORT CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  if (!driver_layer_is_ours()) {
    return driver() && driver()->mem_get_info ? driver()->mem_get_info(free, total)
                                              : CUDA_ERROR_NOT_INITIALIZED;
  }
  return static_cast<CUresult>(egm::Shim::instance().memory_info(true, free, total));
}

// Peer access: the current context's device may now use the peer context's
// device memory, so the shim grants it access to that device's chunks.
EGM_EXPORT CUresult cuCtxEnablePeerAccess(CUcontext peer_context, unsigned int flags) {
  const egm::DriverApi* api = driver();
  if (api == nullptr || api->ctx_enable_peer_access == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  CUresult result = api->ctx_enable_peer_access(peer_context, flags);
  bool enabled = result == CUDA_SUCCESS || result == CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
  if (!enabled || !driver_layer_is_ours() || !api->ctx_get_device || !api->ctx_push_current ||
      !api->ctx_pop_current) {
    return result;
  }
  CUdevice accessor = 0, owner = 0;
  CUcontext popped = nullptr;
  if (api->ctx_get_device(&accessor) == CUDA_SUCCESS &&
      api->ctx_push_current(peer_context) == CUDA_SUCCESS) {
    bool known = api->ctx_get_device(&owner) == CUDA_SUCCESS;
    api->ctx_pop_current(&popped);
    if (known) egm::Shim::instance().peer_access_enabled(owner, accessor);
  }
  return result;
}

CUresult cuGetProcAddress_v2(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*);
CUresult cuGetProcAddress(const char*, void**, int, cuuint64_t);

}  // extern "C"

namespace egm {

// The shim's override for a real driver function, or `real` itself. By
// address, so that only the exact versions the shim wraps are replaced.
void* driver_override_for(void* real) {
  if (real == nullptr || !egm::Shim::instance().hooks_driver()) return real;
  const egm::DriverApi* api = driver();
  if (api == nullptr) return real;
  const std::pair<void*, void*> overrides[] = {
      {reinterpret_cast<void*>(api->mem_alloc), reinterpret_cast<void*>(&cuMemAlloc_v2)},
      {reinterpret_cast<void*>(api->mem_alloc_managed),
       reinterpret_cast<void*>(&cuMemAllocManaged)},
      {reinterpret_cast<void*>(api->mem_alloc_pitch), reinterpret_cast<void*>(&cuMemAllocPitch_v2)},
      {reinterpret_cast<void*>(api->mem_free), reinterpret_cast<void*>(&cuMemFree_v2)},
      {reinterpret_cast<void*>(api->mem_get_info), reinterpret_cast<void*>(&cuMemGetInfo_v2)},
      {reinterpret_cast<void*>(api->ctx_enable_peer_access),
       reinterpret_cast<void*>(&cuCtxEnablePeerAccess)},
      {reinterpret_cast<void*>(api->get_proc_address),
       reinterpret_cast<void*>(&cuGetProcAddress_v2)},
      {reinterpret_cast<void*>(api->get_proc_address_v1),
       reinterpret_cast<void*>(&cuGetProcAddress)},
  };
  for (const auto& [original, replacement] : overrides) {
    if (original == real) return replacement;
  }
  return real;
}

}  // namespace egm

extern "C" {

EGM_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** function, int version,
                                        cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  const egm::DriverApi* api = driver();
  if (api == nullptr || api->get_proc_address == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  CUresult result = api->get_proc_address(symbol, function, version, flags, status);
  if (result == CUDA_SUCCESS && function != nullptr)
    *function = egm::driver_override_for(*function);
  return result;
}

EGM_EXPORT CUresult cuGetProcAddress(const char* symbol, void** function, int version,
                                     cuuint64_t flags) {
  const egm::DriverApi* api = driver();
  if (api == nullptr || api->get_proc_address_v1 == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  CUresult result = api->get_proc_address_v1(symbol, function, version, flags);
  if (result == CUDA_SUCCESS && function != nullptr)
    *function = egm::driver_override_for(*function);
  return result;
}

}  // extern "C"
