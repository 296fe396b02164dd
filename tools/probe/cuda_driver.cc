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

CudaDriver resolve_driver(void* library) {
  CudaDriver d;
#define EGM_PROBE_RESOLVE(member, symbol) resolve(library, #symbol, d.member, d.missing);
  EGM_PROBE_DRIVER_CALLS(EGM_PROBE_RESOLVE)
  EGM_DRIVER_EGM_SEQUENCE(EGM_PROBE_RESOLVE)
#undef EGM_PROBE_RESOLVE
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
