// Kernels of the GPU allocation test, behind a plain C++ interface so that the
// GoogleTest driver is compiled by the ordinary toolchain and only
// gpu_alloc_test.cu goes through nvcc.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#define EGM_HOST_DEVICE __host__ __device__
#else
#define EGM_HOST_DEVICE
#endif

namespace egm_gpu_test {

// The byte expected at `index` of a buffer filled with `seed`. Shared by the
// kernels and the CPU checks so that both sides agree on every byte.
EGM_HOST_DEVICE inline uint8_t pattern_byte(uint64_t index, uint32_t seed) {
  uint64_t x = (index + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t{seed} << 32 | seed);
  x ^= x >> 29;
  return static_cast<uint8_t>(x ^ (x >> 8));
}

// The counting kernels run this many blocks; each stores its own count in a
// slot of a GPU-writable scratch buffer. Plain stores, no atomics: the scratch
// may itself live in host memory (that is what the shim does), where
// system-wide atomics over PCIe are not guaranteed.
inline constexpr unsigned kCountBlocks = 512;
inline constexpr size_t kCountScratchBytes = kCountBlocks * sizeof(unsigned long long);

// Writes pattern_byte(i, seed) to every byte of `buffer` on the GPU and waits.
cudaError_t fill_pattern_on_gpu(void* buffer, size_t bytes, uint32_t seed);

// Counts on the GPU the bytes of `buffer` that differ from the pattern `seed`.
// `scratch` holds kCountScratchBytes of GPU-accessible memory.
cudaError_t count_pattern_mismatches_on_gpu(const void* buffer, size_t bytes, uint32_t seed,
                                            void* scratch, uint64_t* mismatches);

// Counts on the GPU the bytes of `buffer` that are not `value`.
cudaError_t count_value_mismatches_on_gpu(const void* buffer, size_t bytes, uint8_t value,
                                          void* scratch, uint64_t* mismatches);

}  // namespace egm_gpu_test
