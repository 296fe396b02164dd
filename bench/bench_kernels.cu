// Vectorized read and write kernels for egm-bench's bandwidth section. Built
// by nvcc through the genrule in BUILD.bazel.
#include <cuda_runtime.h>

#include "bench/bench_kernels.h"

namespace egm::bench {
namespace {

constexpr unsigned kThreadsPerBlock = 512;
constexpr unsigned kBlocksPerSm = 4;
// Loads issued back to back per thread before they are consumed.
constexpr unsigned kUnroll = 4;

__device__ uint32_t fold(uint4 word) { return word.x ^ word.y ^ word.z ^ word.w; }

__global__ void read_reduce_kernel(const uint4* words, size_t count, uint32_t* block_results) {
  const size_t stride = size_t{gridDim.x} * blockDim.x;
  size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  uint32_t acc = 0;
  for (; i + (kUnroll - 1) * stride < count; i += kUnroll * stride) {
    uint4 loaded[kUnroll];
#pragma unroll
    for (unsigned u = 0; u < kUnroll; ++u) loaded[u] = words[i + u * stride];
#pragma unroll
    for (unsigned u = 0; u < kUnroll; ++u) acc ^= fold(loaded[u]);
  }
  for (; i < count; i += stride) acc ^= fold(words[i]);
  for (int offset = 16; offset > 0; offset /= 2) acc ^= __shfl_xor_sync(0xffffffffu, acc, offset);
  __shared__ uint32_t warp_results[kThreadsPerBlock / 32];
  if (threadIdx.x % 32 == 0) warp_results[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    uint32_t block_acc = 0;
    for (unsigned w = 0; w < kThreadsPerBlock / 32; ++w) block_acc ^= warp_results[w];
    block_results[blockIdx.x] = block_acc;
  }
}

__global__ void write_kernel(uint4* words, size_t count, uint32_t value) {
  const size_t stride = size_t{gridDim.x} * blockDim.x;
  const uint4 word = make_uint4(value, value, value, value);
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count; i += stride) {
    words[i] = word;
  }
}

__global__ void touch_kernel(const uint32_t* buffer, uint32_t* scratch) { *scratch = *buffer; }

unsigned blocks_for_current_device() {
  int device = 0;
  int sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      sms <= 0) {
    sms = 132;  // an H100 SXM
  }
  return static_cast<unsigned>(sms) * kBlocksPerSm;
}

}  // namespace

// Computed once: a query between the timing events would be timed too.
unsigned bandwidth_blocks() {
  static const unsigned blocks = blocks_for_current_device();
  return blocks;
}

size_t read_reduce_scratch_bytes() { return size_t{bandwidth_blocks()} * sizeof(uint32_t); }

cudaError_t launch_read_reduce(const void* buffer, size_t bytes, void* scratch) {
  read_reduce_kernel<<<bandwidth_blocks(), kThreadsPerBlock>>>(
      static_cast<const uint4*>(buffer), bytes / sizeof(uint4), static_cast<uint32_t*>(scratch));
  return cudaGetLastError();
}

cudaError_t launch_write(void* buffer, size_t bytes, uint32_t value) {
  write_kernel<<<bandwidth_blocks(), kThreadsPerBlock>>>(static_cast<uint4*>(buffer),
                                                         bytes / sizeof(uint4), value);
  return cudaGetLastError();
}

cudaError_t launch_touch(const void* buffer, void* scratch) {
  touch_kernel<<<1, 1>>>(static_cast<const uint32_t*>(buffer), static_cast<uint32_t*>(scratch));
  return cudaGetLastError();
}

}  // namespace egm::bench
