// The GPU side of multi_gpu_peer_test: kernels that read and write a buffer
// that may belong to the other GPU (declared in multi_gpu_peer.h). Built by
// nvcc through the genrule in BUILD.bazel with -cudart shared, so that the
// cudaMalloc calls here and in the test reach libegm.so.
#include <cuda_runtime.h>

#include <vector>

#include "tests/gpu/gpu_kernels.h"
#include "tests/gpu/multi_gpu_peer.h"

namespace egm_gpu_test {
namespace {

constexpr unsigned kThreads = 256;
// Per-block results go to a scratch array (plain stores, no global atomics:
// the scratch may itself be host memory under the shim).
constexpr unsigned kBlocks = 512;

struct Rewrite {
  bool check;
  uint32_t expected_seed;
  bool write;
  uint32_t new_seed;
};

__global__ void fill_kernel(uint8_t* buffer, size_t bytes, uint32_t seed) {
  size_t stride = size_t{gridDim.x} * blockDim.x;
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < bytes; i += stride) {
    buffer[i] = pattern_byte(i, seed);
  }
}

// Each block stores its mismatch count in block_counts[blockIdx.x].
__global__ void check_and_rewrite_kernel(uint8_t* buffer, size_t bytes, Rewrite how,
                                         unsigned long long* block_counts) {
  __shared__ unsigned long long block_total;
  if (threadIdx.x == 0) block_total = 0;
  __syncthreads();
  unsigned long long mine = 0;
  size_t stride = size_t{gridDim.x} * blockDim.x;
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < bytes; i += stride) {
    if (how.check) mine += buffer[i] != pattern_byte(i, how.expected_seed) ? 1 : 0;
    if (how.write) buffer[i] = pattern_byte(i, how.new_seed);
  }
  if (mine != 0) atomicAdd(&block_total, mine);  // shared memory: always atomic
  __syncthreads();
  if (threadIdx.x == 0) block_counts[blockIdx.x] = block_total;
}

// Each block stores the sum of (byte * (index % 251 + 1)) over its bytes.
__global__ void checksum_kernel(const uint8_t* buffer, size_t bytes,
                                unsigned long long* block_sums) {
  __shared__ unsigned long long block_total;
  if (threadIdx.x == 0) block_total = 0;
  __syncthreads();
  unsigned long long mine = 0;
  size_t stride = size_t{gridDim.x} * blockDim.x;
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < bytes; i += stride) {
    mine += static_cast<unsigned long long>(buffer[i]) * (i % 251 + 1);
  }
  atomicAdd(&block_total, mine);
  __syncthreads();
  if (threadIdx.x == 0) block_sums[blockIdx.x] = block_total;
}

// Launch errors and faults inside the kernel both surface here.
cudaError_t finish_launch() {
  cudaError_t launch = cudaGetLastError();
  if (launch != cudaSuccess) return launch;
  return cudaDeviceSynchronize();
}

// Per-block results on `device`, summed on the host.
class BlockResults {
 public:
  BlockResults() { status_ = cudaMalloc(&slots_, kBlocks * sizeof(unsigned long long)); }
  ~BlockResults() { cudaFree(slots_); }
  cudaError_t status() const { return status_; }
  unsigned long long* slots() const { return slots_; }

  cudaError_t total(uint64_t* sum) const {
    std::vector<unsigned long long> values(kBlocks);
    cudaError_t status = cudaMemcpy(values.data(), slots_, kBlocks * sizeof(unsigned long long),
                                    cudaMemcpyDeviceToHost);
    if (status != cudaSuccess) return status;
    uint64_t total = 0;
    for (unsigned long long value : values) total += value;
    *sum = total;
    return cudaSuccess;
  }

 private:
  unsigned long long* slots_ = nullptr;
  cudaError_t status_ = cudaSuccess;
};

cudaError_t run_check(int device, void* buffer, size_t bytes, Rewrite how, uint64_t* mismatches) {
  cudaError_t status = cudaSetDevice(device);
  if (status != cudaSuccess) return status;
  BlockResults counts;
  if (counts.status() != cudaSuccess) return counts.status();
  check_and_rewrite_kernel<<<kBlocks, kThreads>>>(static_cast<uint8_t*>(buffer), bytes, how,
                                                  counts.slots());
  status = finish_launch();
  if (status != cudaSuccess) return status;
  uint64_t total = 0;
  status = counts.total(&total);
  if (status == cudaSuccess && mismatches != nullptr) *mismatches = total;
  return status;
}

}  // namespace

cudaError_t fill_on(int device, void* buffer, size_t bytes, uint32_t seed) {
  cudaError_t status = cudaSetDevice(device);
  if (status != cudaSuccess) return status;
  fill_kernel<<<kBlocks, kThreads>>>(static_cast<uint8_t*>(buffer), bytes, seed);
  return finish_launch();
}

cudaError_t check_and_rewrite_on(int device, void* buffer, size_t bytes, uint32_t expected_seed,
                                 uint32_t new_seed, uint64_t* mismatches) {
  return run_check(device, buffer, bytes, Rewrite{true, expected_seed, true, new_seed},
                   mismatches);
}

cudaError_t count_mismatches_on(int device, const void* buffer, size_t bytes, uint32_t seed,
                                uint64_t* mismatches) {
  return run_check(device, const_cast<void*>(buffer), bytes, Rewrite{true, seed, false, 0},
                   mismatches);
}

cudaError_t checksum_on(int device, const void* buffer, size_t bytes, uint64_t* checksum) {
  cudaError_t status = cudaSetDevice(device);
  if (status != cudaSuccess) return status;
  BlockResults sums;
  if (sums.status() != cudaSuccess) return sums.status();
  checksum_kernel<<<kBlocks, kThreads>>>(static_cast<const uint8_t*>(buffer), bytes, sums.slots());
  status = finish_launch();
  if (status != cudaSuccess) return status;
  return sums.total(checksum);
}

}  // namespace egm_gpu_test
