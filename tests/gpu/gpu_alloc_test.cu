// The GPU side of gpu_alloc_test: kernels that write and read whole buffers,
// and their launchers (declared in gpu_kernels.h). Built by nvcc through the
// genrule in BUILD.bazel; the GoogleTest cases are in gpu_alloc_test_driver.cc.
#include "tests/gpu/gpu_kernels.h"

#include <cuda_runtime.h>

#include <vector>

namespace egm_gpu_test {
namespace {

constexpr unsigned kThreadsPerBlock = 256;
constexpr unsigned kMaxFillBlocks = 4096;

unsigned fill_blocks_for(size_t bytes) {
  size_t wanted = (bytes + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<unsigned>(wanted < kMaxFillBlocks ? wanted : kMaxFillBlocks);
}

__global__ void fill_pattern_kernel(uint8_t* buffer, size_t bytes, uint32_t seed) {
  size_t stride = size_t{gridDim.x} * blockDim.x;
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < bytes; i += stride) {
    buffer[i] = pattern_byte(i, seed);
  }
}

// Expected byte at `index`: the pattern, or a constant when use_pattern is false.
struct Expectation {
  bool use_pattern;
  uint32_t seed;
  uint8_t value;
  __device__ uint8_t at(size_t index) const { return use_pattern ? pattern_byte(index, seed) : value; }
};

// Each block stores its mismatch count in block_counts[blockIdx.x].
__global__ void count_mismatches_kernel(const uint8_t* buffer, size_t bytes, Expectation expected,
                                        unsigned long long* block_counts) {
  __shared__ unsigned long long block_total;
  if (threadIdx.x == 0) block_total = 0;
  __syncthreads();
  unsigned long long mine = 0;
  size_t stride = size_t{gridDim.x} * blockDim.x;
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < bytes; i += stride) {
    mine += buffer[i] != expected.at(i) ? 1 : 0;
  }
  if (mine != 0) atomicAdd(&block_total, mine);  // shared memory: always atomic
  __syncthreads();
  if (threadIdx.x == 0) block_counts[blockIdx.x] = block_total;
}

// Launch errors and faults inside the kernel both surface here.
cudaError_t finish_launch() {
  cudaError_t launch = cudaGetLastError();
  if (launch != cudaSuccess) return launch;
  return cudaDeviceSynchronize();
}

cudaError_t count_mismatches(const void* buffer, size_t bytes, Expectation expected, void* scratch,
                             uint64_t* mismatches) {
  auto* block_counts = static_cast<unsigned long long*>(scratch);
  count_mismatches_kernel<<<kCountBlocks, kThreadsPerBlock>>>(static_cast<const uint8_t*>(buffer),
                                                              bytes, expected, block_counts);
  cudaError_t status = finish_launch();
  if (status != cudaSuccess) return status;
  std::vector<unsigned long long> counts(kCountBlocks);
  status = cudaMemcpy(counts.data(), block_counts, kCountScratchBytes, cudaMemcpyDeviceToHost);
  if (status != cudaSuccess) return status;
  uint64_t total = 0;
  for (unsigned long long count : counts) total += count;
  *mismatches = total;
  return cudaSuccess;
}

}  // namespace

cudaError_t fill_pattern_on_gpu(void* buffer, size_t bytes, uint32_t seed) {
  fill_pattern_kernel<<<fill_blocks_for(bytes), kThreadsPerBlock>>>(static_cast<uint8_t*>(buffer),
                                                                   bytes, seed);
  return finish_launch();
}

cudaError_t count_pattern_mismatches_on_gpu(const void* buffer, size_t bytes, uint32_t seed,
                                            void* scratch, uint64_t* mismatches) {
  return count_mismatches(buffer, bytes, Expectation{true, seed, 0}, scratch, mismatches);
}

cudaError_t count_value_mismatches_on_gpu(const void* buffer, size_t bytes, uint8_t value,
                                          void* scratch, uint64_t* mismatches) {
  return count_mismatches(buffer, bytes, Expectation{false, 0, value}, scratch, mismatches);
}

}  // namespace egm_gpu_test
