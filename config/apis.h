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
};

inline constexpr std::array<std::string_view, 8> kApiNames = {
    "cudaMalloc", "cudaMallocManaged", "cudaMallocAsync", "cudaMallocPitch",
    "cuMemAlloc", "cuMemAllocManaged", "cuMemAllocPitch", "cuMemCreate"};

constexpr const char* api_name(Api api) { return kApiNames[static_cast<size_t>(api)].data(); }

constexpr unsigned api_bit(Api api) { return 1u << static_cast<unsigned>(api); }

inline constexpr unsigned kAllApis = (1u << kApiNames.size()) - 1;

// Runtime calls report cudaError_t, driver calls CUresult.
constexpr bool is_driver_api(Api api) { return api >= Api::kCuMemAlloc; }

constexpr bool is_managed(Api api) {
  return api == Api::kCudaMallocManaged || api == Api::kCuMemAllocManaged;
}

inline std::optional<Api> api_from_name(std::string_view name) {
  for (size_t i = 0; i < kApiNames.size(); ++i) {
    if (kApiNames[i] == name) return static_cast<Api>(i);
  }
  return std::nullopt;
}

}  // namespace egm
