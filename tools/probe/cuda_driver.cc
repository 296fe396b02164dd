#include "tools/probe/cuda_driver.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>

namespace egm::probe {
namespace {

// dlsym(name) into `pointer`; a missing name is noted in `missing`.
template <typename Function>
void resolve(void* library, const char* name, Function& pointer,
             std::vector<std::string>& missing) {
  pointer = reinterpret_cast<Function>(dlsym(library, name));
  if (pointer == nullptr) missing.emplace_back(name);
}

// The symbol names are the ABI's, which cuda.h's macros hide (cuMemcpyHtoD
// is cuMemcpyHtoD_v2, cuDevicePrimaryCtxRelease is ..._v2).
CudaDriver resolve_driver(void* library) {
  CudaDriver d;
  std::vector<std::string>& m = d.missing;
  resolve(library, "cuInit", d.init, m);
  resolve(library, "cuDriverGetVersion", d.driver_get_version, m);
  resolve(library, "cuGetErrorName", d.get_error_name, m);
  resolve(library, "cuDeviceGetCount", d.device_get_count, m);
  resolve(library, "cuDeviceGet", d.device_get, m);
  resolve(library, "cuDeviceGetName", d.device_get_name, m);
  resolve(library, "cuDeviceGetPCIBusId", d.device_get_pci_bus_id, m);
  resolve(library, "cuDeviceGetAttribute", d.device_get_attribute, m);
  resolve(library, "cuDevicePrimaryCtxRetain", d.primary_ctx_retain, m);
  resolve(library, "cuDevicePrimaryCtxRelease_v2", d.primary_ctx_release, m);
  resolve(library, "cuCtxSetCurrent", d.ctx_set_current, m);
  resolve(library, "cuMemGetAllocationGranularity", d.mem_get_allocation_granularity, m);
  resolve(library, "cuMemCreate", d.mem_create, m);
  resolve(library, "cuMemRelease", d.mem_release, m);
  resolve(library, "cuMemAddressReserve", d.mem_address_reserve, m);
  resolve(library, "cuMemAddressFree", d.mem_address_free, m);
  resolve(library, "cuMemMap", d.mem_map, m);
  resolve(library, "cuMemUnmap", d.mem_unmap, m);
  resolve(library, "cuMemSetAccess", d.mem_set_access, m);
  resolve(library, "cuMemcpyHtoD_v2", d.memcpy_htod, m);
  resolve(library, "cuMemcpyDtoH_v2", d.memcpy_dtoh, m);
  return d;
}

}  // namespace

std::string CudaDriver::error_name(CUresult result) const {
  const char* name = nullptr;
  if (get_error_name != nullptr && get_error_name(result, &name) == CUDA_SUCCESS && name) {
    return name;
  }
  return "CUDA error " + std::to_string(static_cast<int>(result));
}

LoadedDriver load_cuda_driver() {
  void* library = dlopen(kDriverLibrary, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    return {std::nullopt, why ? why : "dlopen failed"};
  }
  return {resolve_driver(library), ""};
}

std::optional<RuntimeVersion> cuda_runtime_version() {
  for (const char* soname : {"libcudart.so.13", "libcudart.so.12", "libcudart.so"}) {
    void* library = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) continue;
    auto get_version = reinterpret_cast<decltype(&::cudaRuntimeGetVersion)>(
        dlsym(library, "cudaRuntimeGetVersion"));
    int version = 0;
    bool known = get_version != nullptr && get_version(&version) == cudaSuccess;
    if (known) return RuntimeVersion{soname, version};
    dlclose(library);
  }
  return std::nullopt;
}

std::string version_text(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

}  // namespace egm::probe
