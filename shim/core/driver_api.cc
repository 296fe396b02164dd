#include "shim/core/driver_api.h"

#include <dlfcn.h>

#include <string>

#include "shim/core/real_dlsym.h"

namespace egm {
namespace {

template <typename Fn>
void resolve(void* library, const char* name, Fn& out, std::string* missing) {
  out = reinterpret_cast<Fn>(real_dlsym()(library, name));
  if (out == nullptr && missing != nullptr) {
    *missing += std::string(missing->empty() ? "" : ", ") + name;
  }
}

struct LoadedDriver {
  DriverApi api;
  std::string failure;  // empty when loaded
};

void resolve_egm_sequence(void* library, DriverApi& api, std::string& missing) {
  resolve(library, "cuDeviceGet", api.device_get, &missing);
  resolve(library, "cuDeviceGetAttribute", api.device_get_attribute, &missing);
  resolve(library, "cuGetErrorName", api.get_error_name, &missing);
  resolve(library, "cuMemGetAllocationGranularity", api.mem_get_allocation_granularity, &missing);
  resolve(library, "cuMemCreate", api.mem_create, &missing);
  resolve(library, "cuMemRelease", api.mem_release, &missing);
  resolve(library, "cuMemAddressReserve", api.mem_address_reserve, &missing);
  resolve(library, "cuMemAddressFree", api.mem_address_free, &missing);
  resolve(library, "cuMemMap", api.mem_map, &missing);
  resolve(library, "cuMemUnmap", api.mem_unmap, &missing);
  resolve(library, "cuMemSetAccess", api.mem_set_access, &missing);
}

// Optional: a driver without one of these still serves the runtime layer.
void resolve_overridden(void* library, DriverApi& api) {
  resolve(library, "cuCtxGetDevice", api.ctx_get_device, nullptr);
  resolve(library, "cuDeviceGetCount", api.device_get_count, nullptr);
  resolve(library, "cuCtxPushCurrent_v2", api.ctx_push_current, nullptr);
  resolve(library, "cuCtxPopCurrent_v2", api.ctx_pop_current, nullptr);
  resolve(library, "cuCtxEnablePeerAccess", api.ctx_enable_peer_access, nullptr);
  resolve(library, "cuCtxSynchronize", api.ctx_synchronize, nullptr);
  resolve(library, "cuCtxGetCurrent", api.ctx_get_current, nullptr);
  resolve(library, "cuCtxSetCurrent", api.ctx_set_current, nullptr);
  resolve(library, "cuMemAlloc_v2", api.mem_alloc, nullptr);
  resolve(library, "cuMemAllocManaged", api.mem_alloc_managed, nullptr);
  resolve(library, "cuMemAllocPitch_v2", api.mem_alloc_pitch, nullptr);
  resolve(library, "cuMemFree_v2", api.mem_free, nullptr);
  resolve(library, "cuMemGetInfo_v2", api.mem_get_info, nullptr);
  resolve(library, "cuGetProcAddress_v2", api.get_proc_address, nullptr);
  resolve(library, "cuGetProcAddress", api.get_proc_address_v1, nullptr);
  resolve(library, "cuEventCreate", api.event_create, nullptr);
  resolve(library, "cuEventRecord", api.event_record, nullptr);
  resolve(library, "cuEventQuery", api.event_query, nullptr);
  resolve(library, "cuEventDestroy_v2", api.event_destroy, nullptr);
  for (size_t i = 0; i < kDriverOverrideCount; ++i) {
    api.overridden[i] = real_dlsym()(library, std::string(kDriverOverrideNames[i]).c_str());
  }
}

LoadedDriver load_driver() {
  LoadedDriver loaded;
  void* library = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (library == nullptr) {
    const char* error = dlerror();
    loaded.failure = std::string("cannot load libcuda.so.1: ") + (error ? error : "unknown");
    return loaded;
  }
  std::string missing;
  resolve_egm_sequence(library, loaded.api, missing);
  resolve_overridden(library, loaded.api);
  if (!missing.empty()) loaded.failure = "libcuda.so.1 lacks " + missing;
  return loaded;
}

}  // namespace

const char* DriverApi::error_name(CUresult result) const {
  const char* name = nullptr;
  if (get_error_name == nullptr || get_error_name(result, &name) != CUDA_SUCCESS || !name) {
    return "CUDA_ERROR_UNKNOWN_CODE";
  }
  return name;
}

const DriverApi* driver_api(const char** why) {
  static const LoadedDriver* loaded = new LoadedDriver(load_driver());  // thread-safe once
  if (!loaded->failure.empty()) {
    if (why != nullptr) *why = loaded->failure.c_str();
    return nullptr;
  }
  return &loaded->api;
}

}  // namespace egm
