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
#define EGM_RESOLVE_REQUIRED(member, symbol) resolve(library, #symbol, api.member, &missing);
  EGM_DRIVER_EGM_SEQUENCE(EGM_RESOLVE_REQUIRED)
#undef EGM_RESOLVE_REQUIRED
}

// Optional: a driver without one of these still serves the runtime layer.
void resolve_optional(void* library, DriverApi& api) {
#define EGM_RESOLVE_OPTIONAL(member, symbol) resolve(library, #symbol, api.member, nullptr);
  EGM_SHIM_DRIVER_CALLS(EGM_RESOLVE_OPTIONAL)
  EGM_SHIM_IPC_DRIVER_CALLS(EGM_RESOLVE_OPTIONAL)
  EGM_SHIM_STAGING_DRIVER_CALLS(EGM_RESOLVE_OPTIONAL)
#undef EGM_RESOLVE_OPTIONAL
  for (size_t i = 0; i < kDriverOverrideCount; ++i) {
    api.overridden[i] = real_dlsym()(library, std::string(kDriverOverrideNames[i]).c_str());
  }
#define EGM_REAL_OVERRIDE(member, symbol) \
  api.member = api.real<decltype(api.member)>(DriverOverride::k_##symbol);
  EGM_SHIM_REAL_OVERRIDES(EGM_REAL_OVERRIDE)
#undef EGM_REAL_OVERRIDE
  api.get_proc_address_v1 = api.real<GetProcAddressV1>(DriverOverride::k_cuGetProcAddress);
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
  resolve_optional(library, loaded.api);
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
