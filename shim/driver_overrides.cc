// The CUDA driver entry points egm-shim overrides, and the two ways programs
// reach driver functions without the dynamic linker: cuGetProcAddress and
// dlsym on a libcuda handle (statically linked runtimes use both). Calls the
// runtime makes on the shim's behalf pass straight through.
#include <string_view>

#include "shim/core/device_calls.h"
#include "shim/driver_lookup.h"
#include "shim/driver_symbols.h"
#include "shim/override_support.h"

namespace {

using egm::DriverOverride;
using egm::pass_through;

CUresult allocate(const egm::Request& request) {
  return static_cast<CUresult>(egm::Shim::instance().allocate(request));
}

}  // namespace

extern "C" {

EGM_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t size) {
  if (!egm::driver_layer_is_ours()) {
    return pass_through<decltype(&cuMemAlloc_v2)>(DriverOverride::k_cuMemAlloc_v2, pointer, size);
  }
  return allocate({egm::Api::kCuMemAlloc, reinterpret_cast<void**>(pointer), size});
}

EGM_EXPORT CUresult cuMemAllocManaged(CUdeviceptr* pointer, size_t size, unsigned int flags) {
  if (!egm::driver_layer_is_ours()) {
    return pass_through<decltype(&cuMemAllocManaged)>(DriverOverride::k_cuMemAllocManaged,
                                                      pointer, size, flags);
  }
  return allocate({egm::Api::kCuMemAllocManaged, reinterpret_cast<void**>(pointer), size, flags});
}

EGM_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* pointer, size_t* pitch, size_t width,
                                       size_t height, unsigned int element_size) {
  if (!egm::driver_layer_is_ours()) {
    return pass_through<decltype(&cuMemAllocPitch_v2)>(DriverOverride::k_cuMemAllocPitch_v2,
                                                       pointer, pitch, width, height,
                                                       element_size);
  }
  return allocate(egm::pitched_request(egm::Api::kCuMemAllocPitch,
                                       reinterpret_cast<void**>(pointer), pitch, width, height,
                                       element_size));
}

EGM_EXPORT CUresult cuMemFree_v2(CUdeviceptr pointer) {
  if (!egm::driver_layer_is_ours()) {
    return pass_through<decltype(&cuMemFree_v2)>(DriverOverride::k_cuMemFree_v2, pointer);
  }
  return egm::Shim::instance().free_driver(pointer);
}

EGM_EXPORT CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  if (!egm::driver_layer_is_ours()) {
    return pass_through<decltype(&cuMemGetInfo_v2)>(DriverOverride::k_cuMemGetInfo_v2, free,
                                                    total);
  }
  return static_cast<CUresult>(egm::Shim::instance().memory_info(true, free, total));
}

EGM_EXPORT CUresult cuCtxEnablePeerAccess(CUcontext peer_context, unsigned int flags) {
  return egm::enable_context_peer_access(peer_context, flags, egm::driver_layer_is_ours());
}

}  // extern "C"

namespace egm {
namespace {

// Each X-macro name must be the exported symbol itself, not a cuda.h macro
// for another version (driver_symbols.h undefines those).
#define EGM_EXPANDED_NAME(name) EGM_NAME_STRING(name)
#define EGM_NAME_STRING(name) #name
#define EGM_CHECK_NOT_RENAMED(name)                                       \
  static_assert(std::string_view(#name) == EGM_EXPANDED_NAME(name),       \
                #name " is renamed by a macro: undefine it in driver_symbols.h");
EGM_DRIVER_OVERRIDES(EGM_CHECK_NOT_RENAMED)
#undef EGM_CHECK_NOT_RENAMED

// The shim's override of each entry, by DriverOverride.
void* const kOverrideFunctions[] = {
#define EGM_OVERRIDE_ADDRESS(name) reinterpret_cast<void*>(&name),
    EGM_DRIVER_OVERRIDES(EGM_OVERRIDE_ADDRESS)
#undef EGM_OVERRIDE_ADDRESS
};
static_assert(std::size(kOverrideFunctions) == kDriverOverrideCount);

bool is_launch(size_t which) {
  switch (static_cast<DriverOverride>(which)) {
    case DriverOverride::k_cuLaunchKernel:
    case DriverOverride::k_cuLaunchKernel_ptsz:
    case DriverOverride::k_cuLaunchKernelEx:
    case DriverOverride::k_cuLaunchKernelEx_ptsz:
      return true;
    default:
      return false;
  }
}

}  // namespace

// The shim's override for a real driver function, or `real` itself. By
// address, so that only the exact versions the shim wraps are replaced. The
// launches are the shim's only with EGM_STAGING=1: off, they cost nothing.
void* driver_override_for(void* real) {
  Shim& shim = Shim::instance();
  if (real == nullptr || !shim.hooks_driver()) return real;
  const DriverApi* api = driver_api(nullptr);
  if (api == nullptr) return real;
  for (size_t i = 0; i < kDriverOverrideCount; ++i) {
    if (api->overridden[i] != real) continue;
    return is_launch(i) && shim.stager() == nullptr ? real : kOverrideFunctions[i];
  }
  return real;
}

}  // namespace egm

extern "C" {

EGM_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** function, int version,
                                        cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  const egm::DriverApi* api = egm::driver_api(nullptr);
  if (api == nullptr || api->get_proc_address == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  CUresult result = api->get_proc_address(symbol, function, version, flags, status);
  if (result == CUDA_SUCCESS && function != nullptr)
    *function = egm::driver_override_for(*function);
  return result;
}

EGM_EXPORT CUresult cuGetProcAddress(const char* symbol, void** function, int version,
                                     cuuint64_t flags) {
  const egm::DriverApi* api = egm::driver_api(nullptr);
  if (api == nullptr || api->get_proc_address_v1 == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  CUresult result = api->get_proc_address_v1(symbol, function, version, flags);
  if (result == CUDA_SUCCESS && function != nullptr)
    *function = egm::driver_override_for(*function);
  return result;
}

}  // extern "C"
