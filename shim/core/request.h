// One intercepted call, with its arguments, as the program made it.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstddef>

#include "config/apis.h"

namespace egm {

// cudaError_t and CUresult share the values the shim produces itself.
static_assert(static_cast<int>(cudaSuccess) == static_cast<int>(CUDA_SUCCESS));
static_assert(static_cast<int>(cudaErrorMemoryAllocation) ==
              static_cast<int>(CUDA_ERROR_OUT_OF_MEMORY));
static_assert(static_cast<int>(cudaErrorInvalidValue) ==
              static_cast<int>(CUDA_ERROR_INVALID_VALUE));
static_assert(sizeof(CUdeviceptr) == sizeof(void*));

inline constexpr int kSuccess = 0;
inline constexpr int kOutOfMemory = 2;   // cudaErrorMemoryAllocation, CUDA_ERROR_OUT_OF_MEMORY
inline constexpr int kInvalidValue = 1;  // cudaErrorInvalidValue, CUDA_ERROR_INVALID_VALUE
inline constexpr int kNotInitialized = 3;  // cudaErrorInitializationError, CUDA_ERROR_NOT_INITIALIZED
static_assert(kNotInitialized == cudaErrorInitializationError &&
              kNotInitialized == CUDA_ERROR_NOT_INITIALIZED);

// Pitched allocations: rows padded to this many bytes (the driver's
// texture-pitch alignment on current GPUs is at most this).
inline constexpr size_t kPitchAlignment = 512;

struct Request {
  Api api = Api::kCudaMalloc;
  void** pointer = nullptr;  // CUdeviceptr* for driver calls
  size_t size = 0;           // bytes to place (pitch * height for pitched calls)
  unsigned flags = 0;        // managed allocations' attach flags
  size_t* pitch = nullptr;   // pitched calls
  size_t width = 0;
  size_t height = 0;
  unsigned element_size = 0;
  cudaStream_t stream = nullptr;   // cudaMallocAsync
  bool per_thread_stream = false;  // the _ptsz variant was called
};

Request pitched_request(Api api, void** pointer, size_t* pitch, size_t width, size_t height,
                        unsigned element_size);

// The real call behind `request`: a cudaError_t or CUresult value.
int call_real_allocation(const Request& request);

}  // namespace egm
