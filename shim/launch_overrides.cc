// Kernel launches, for EGM_STAGING (shim/core/stager.h). With staging off
// cuGetProcAddress and dlsym hand out the real functions (driver_overrides.cc),
// and these exported ones pass straight through after one branch.
#include <dlfcn.h>

#include <string>

#include "shim/core/real_dlsym.h"
#include "shim/driver_symbols.h"
#include "shim/override_support.h"

namespace {

using egm::DriverOverride;
using egm::pass_through;

// The stager when staging is on and the shim exists (no allocation yet: nothing to stage).
egm::Stager* stager() {
  egm::Shim* shim = egm::Shim::existing();
  return shim != nullptr ? shim->stager() : nullptr;
}

// libcuda's function; the next library's when the shim's driver table did
// not load (a launch must reach the driver whatever the shim's state).
template <typename Fn>
Fn real_launch(DriverOverride which) {
  const egm::DriverApi* api = egm::driver_api(nullptr);
  if (api != nullptr) return api->real<Fn>(which);
  std::string name(egm::kDriverOverrideNames[static_cast<size_t>(which)]);
  return reinterpret_cast<Fn>(egm::real_dlsym()(RTLD_NEXT, name.c_str()));
}

CUresult launch_kernel(DriverOverride which, bool per_thread_stream, CUfunction function,
                       unsigned grid_x, unsigned grid_y, unsigned grid_z, unsigned block_x,
                       unsigned block_y, unsigned block_z, unsigned shared_bytes, CUstream stream,
                       void** kernel_params, void** extra) {
  using Launch = decltype(&cuLaunchKernel);
  Launch real = real_launch<Launch>(which);
  egm::Stager* staging = stager();
  if (real == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  if (staging == nullptr) {
    return real(function, grid_x, grid_y, grid_z, block_x, block_y, block_z, shared_bytes, stream,
                kernel_params, extra);
  }
  egm::KernelLaunch launch{function, stream, per_thread_stream, kernel_params, extra, nullptr};
  return staging->launch(launch, [&](void** params, void** packed) {
    return real(function, grid_x, grid_y, grid_z, block_x, block_y, block_z, shared_bytes, stream,
                params, packed);
  });
}

CUresult launch_kernel_ex(DriverOverride which, bool per_thread_stream,
                          const CUlaunchConfig* config, CUfunction function, void** kernel_params,
                          void** extra) {
  using Launch = decltype(&cuLaunchKernelEx);
  Launch real = real_launch<Launch>(which);
  egm::Stager* staging = stager();
  if (real == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  if (staging == nullptr || config == nullptr) return real(config, function, kernel_params, extra);
  egm::KernelLaunch launch{function, config->hStream, per_thread_stream, kernel_params, extra,
                           config};
  return staging->launch(
      launch, [&](void** params, void** packed) { return real(config, function, params, packed); });
}

}  // namespace

extern "C" {

EGM_EXPORT CUresult cuLaunchKernel(CUfunction function, unsigned int grid_x, unsigned int grid_y,
                                   unsigned int grid_z, unsigned int block_x,
                                   unsigned int block_y, unsigned int block_z,
                                   unsigned int shared_bytes, CUstream stream,
                                   void** kernel_params, void** extra) {
  return launch_kernel(DriverOverride::k_cuLaunchKernel, false, function, grid_x, grid_y, grid_z,
                       block_x, block_y, block_z, shared_bytes, stream, kernel_params, extra);
}

EGM_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction function, unsigned int grid_x,
                                        unsigned int grid_y, unsigned int grid_z,
                                        unsigned int block_x, unsigned int block_y,
                                        unsigned int block_z, unsigned int shared_bytes,
                                        CUstream stream, void** kernel_params, void** extra) {
  return launch_kernel(DriverOverride::k_cuLaunchKernel_ptsz, true, function, grid_x, grid_y,
                       grid_z, block_x, block_y, block_z, shared_bytes, stream, kernel_params,
                       extra);
}

EGM_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction function,
                                     void** kernel_params, void** extra) {
  return launch_kernel_ex(DriverOverride::k_cuLaunchKernelEx, false, config, function,
                          kernel_params, extra);
}

EGM_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction function,
                                          void** kernel_params, void** extra) {
  return launch_kernel_ex(DriverOverride::k_cuLaunchKernelEx_ptsz, true, config, function,
                          kernel_params, extra);
}

}  // extern "C"
