// Kernels of the compatibility checks: device atomics on cudaMalloc and
// cudaMallocManaged memory, and a texture object over pitched memory.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tools/probe/compat/compat_kernels.h"

namespace egm::compat {
namespace {

constexpr int kBlocks = 128;
constexpr int kThreads = 256;

__global__ void atomics_kernel(unsigned int* counters) {
  unsigned int id = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(&counters[0], 1u);
  atomicMax(&counters[1], id);
  atomicXor(&counters[2], id);
  atomicCAS(&counters[3], 0u, 7u);  // exactly one thread wins
}

__global__ void texture_kernel(cudaTextureObject_t texture, int width, int height, float* sums) {
  int row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= height) return;
  float sum = 0;
  for (int column = 0; column < width; ++column) {
    sum += tex2D<float>(texture, column + 0.5f, row + 0.5f);
  }
  sums[row] = sum;
}

std::string error_name(cudaError_t error) { return cudaGetErrorName(error); }

// Runs atomics_kernel on four counters in `counters` (already zeroed).
std::string run_atomics(unsigned int* counters) {
  atomics_kernel<<<kBlocks, kThreads>>>(counters);
  cudaError_t launch = cudaGetLastError();
  cudaError_t sync = cudaDeviceSynchronize();
  unsigned int host[4] = {};
  cudaError_t copy = cudaMemcpy(host, counters, sizeof host, cudaMemcpyDeviceToHost);
  char text[200];
  std::snprintf(text, sizeof text, "launch=%s sync=%s copy=%s add=%u max=%u xor=%u cas=%u",
                error_name(launch).c_str(), error_name(sync).c_str(), error_name(copy).c_str(),
                host[0], host[1], host[2], host[3]);
  return text;
}

}  // namespace

std::string atomics_check() {
  unsigned int* device = nullptr;
  cudaError_t alloc = cudaMalloc(&device, 4 * sizeof(unsigned int));
  if (alloc != cudaSuccess) return "cudaMalloc=" + error_name(alloc);
  cudaMemset(device, 0, 4 * sizeof(unsigned int));
  std::string result = "device{" + run_atomics(device) + "}";
  cudaFree(device);
  unsigned int* managed = nullptr;
  alloc = cudaMallocManaged(&managed, 4 * sizeof(unsigned int));
  if (alloc != cudaSuccess) return result + " cudaMallocManaged=" + error_name(alloc);
  for (int i = 0; i < 4; ++i) managed[i] = 0;  // host writes to managed memory
  result += " managed{" + run_atomics(managed) + "}";
  // And the host reads it directly.
  result += " host_read_add=" + std::to_string(managed[0]);
  cudaFree(managed);
  return result;
}

std::string texture_check() {
  constexpr int kWidth = 100;
  constexpr int kHeight = 64;
  float* pitched = nullptr;
  size_t pitch = 0;
  cudaError_t alloc =
      cudaMallocPitch(reinterpret_cast<void**>(&pitched), &pitch, kWidth * sizeof(float), kHeight);
  if (alloc != cudaSuccess) return "cudaMallocPitch=" + error_name(alloc);
  std::vector<float> host(kWidth * kHeight);
  for (int i = 0; i < kWidth * kHeight; ++i) host[i] = static_cast<float>(i % 97);
  cudaError_t copy = cudaMemcpy2D(pitched, pitch, host.data(), kWidth * sizeof(float),
                                  kWidth * sizeof(float), kHeight, cudaMemcpyHostToDevice);
  cudaResourceDesc resource = {};
  resource.resType = cudaResourceTypePitch2D;
  resource.res.pitch2D.devPtr = pitched;
  resource.res.pitch2D.desc = cudaCreateChannelDesc<float>();
  resource.res.pitch2D.width = kWidth;
  resource.res.pitch2D.height = kHeight;
  resource.res.pitch2D.pitchInBytes = pitch;
  cudaTextureDesc description = {};
  description.readMode = cudaReadModeElementType;
  description.filterMode = cudaFilterModePoint;
  cudaTextureObject_t texture = 0;
  cudaError_t create = cudaCreateTextureObject(&texture, &resource, &description, nullptr);
  float* sums = nullptr;
  cudaMalloc(&sums, kHeight * sizeof(float));
  std::string launch = "not-run";
  std::vector<float> result(kHeight, -1);
  if (create == cudaSuccess) {
    texture_kernel<<<1, kHeight>>>(texture, kWidth, kHeight, sums);
    launch = error_name(cudaGetLastError());
    cudaDeviceSynchronize();
    cudaMemcpy(result.data(), sums, kHeight * sizeof(float), cudaMemcpyDeviceToHost);
    cudaDestroyTextureObject(texture);
  }
  int right = 0;
  double total = 0;
  for (int row = 0; row < kHeight; ++row) {
    float expected = 0;
    for (int column = 0; column < kWidth; ++column) expected += host[row * kWidth + column];
    right += result[row] == expected;
    total += result[row];
  }
  cudaFree(sums);
  cudaFree(pitched);
  char text[200];
  std::snprintf(
      text, sizeof text, "pitch=%zu copy=%s create=%s launch=%s rows_right=%d/%d sum=%.0f", pitch,
      error_name(copy).c_str(), error_name(create).c_str(), launch.c_str(), right, kHeight, total);
  return text;
}

}  // namespace egm::compat
