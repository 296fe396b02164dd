// The program's own VMM handles: cuMemCreate of device memory may be placed
// on a host node (shim/core/shim_create.cc); the handle calls that must then
// answer for it. Everything else, and every call while no rewritten handle
// is live, goes to the real function unchanged.
#include "shim/driver_symbols.h"
#include "shim/override_support.h"

namespace {

using egm::DriverOverride;
using egm::pass_through;

bool is_device_memory(const CUmemAllocationProp* prop) {
  return prop != nullptr && prop->type == CU_MEM_ALLOCATION_TYPE_PINNED &&
         prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE;
}

// Whether the handle calls have a rewritten handle to answer for.
bool handles_to_answer() {
  return egm::driver_layer_is_ours() && !egm::Shim::instance().no_created_handles();
}

}  // namespace

extern "C" {

// Host locations (NCCL's HOST_NUMA buffers), other types and calls the
// runtime makes for the shim go to the driver untouched. The return address
// tells the core who asked (communication libraries keep device memory).
EGM_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                                const CUmemAllocationProp* prop, unsigned long long flags) {
  if (!is_device_memory(prop) || !egm::driver_layer_is_ours()) {
    return pass_through<decltype(&cuMemCreate)>(DriverOverride::k_cuMemCreate, handle, size, prop,
                                                flags);
  }
  return egm::Shim::instance().create_memory(handle, size, *prop, flags,
                                             __builtin_return_address(0));
}

EGM_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  if (!handles_to_answer()) {
    return pass_through<decltype(&cuMemRelease)>(DriverOverride::k_cuMemRelease, handle);
  }
  return egm::Shim::instance().release_memory(handle);
}

// The same handle again, with one more reference the program will release.
EGM_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle, void* addr) {
  CUresult result = pass_through<decltype(&cuMemRetainAllocationHandle)>(
      DriverOverride::k_cuMemRetainAllocationHandle, handle, addr);
  if (result == CUDA_SUCCESS && handle != nullptr && handles_to_answer()) {
    egm::Shim::instance().created_handle_retained(*handle);
  }
  if (result == CUDA_SUCCESS && egm::Shim::instance().stager() != nullptr &&
      egm::driver_layer_is_ours()) {
    egm::Shim::instance().allocation_handle_retained(reinterpret_cast<uintptr_t>(addr));
  }
  return result;
}

// EGM_POINTER_ATTRIBUTES=requested: the properties the program asked for
// (its device location); =physical: the driver's (the host node).
EGM_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                           CUmemGenericAllocationHandle handle) {
  CUresult result = pass_through<decltype(&cuMemGetAllocationPropertiesFromHandle)>(
      DriverOverride::k_cuMemGetAllocationPropertiesFromHandle, prop, handle);
  if (result == CUDA_SUCCESS && prop != nullptr && handles_to_answer()) {
    if (auto requested = egm::Shim::instance().requested_properties(handle)) *prop = *requested;
  }
  return result;
}

}  // extern "C"
