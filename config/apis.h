// The allocation entry points egm-shim intercepts, by name.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace egm {

enum class Api {
  kCudaMalloc,
  kCudaMallocManaged,
  kCudaMallocAsync,
  kCudaMallocPitch,
  kCuMemAlloc,
  kCuMemAllocManaged,
  kCuMemAllocPitch,
  kCuMemCreate,  // a VMM handle on a device (cuMemCreate's location rewritten)
  // Not intercepted: libegm.so's own entry point (PyTorch's pluggable
  // allocator), which always places in host memory. Last, outside EGM_APIS.
  kEgmMalloc,
};

inline constexpr std::array<std::string_view, 9> kApiNames = {
    "cudaMalloc", "cudaMallocManaged", "cudaMallocAsync", "cudaMallocPitch",
    "cuMemAlloc", "cuMemAllocManaged", "cuMemAllocPitch", "cuMemCreate", "egm_malloc"};

// The intercepted calls (the first ones): what EGM_APIS selects from.
inline constexpr size_t kInterceptedApiCount = static_cast<size_t>(Api::kEgmMalloc);

constexpr const char* api_name(Api api) { return kApiNames[static_cast<size_t>(api)].data(); }

constexpr unsigned api_bit(Api api) { return 1u << static_cast<unsigned>(api); }

inline constexpr unsigned kAllApis = (1u << kInterceptedApiCount) - 1;

// Runtime calls report cudaError_t, driver calls CUresult.
constexpr bool is_driver_api(Api api) {
  return api >= Api::kCuMemAlloc && api <= Api::kCuMemCreate;
}

constexpr bool is_managed(Api api) {
  return api == Api::kCudaMallocManaged || api == Api::kCuMemAllocManaged;
}

inline std::optional<Api> api_from_name(std::string_view name) {
  for (size_t i = 0; i < kInterceptedApiCount; ++i) {
    if (kApiNames[i] == name) return static_cast<Api>(i);
  }
  return std::nullopt;
}

}  // namespace egm
