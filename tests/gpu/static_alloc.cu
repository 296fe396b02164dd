// A CUDA program linked the way plain `nvcc` links by default: with the
// STATIC cudart (libcudart_static.a). Such a runtime has no cudaMalloc symbol
// that LD_PRELOAD could interpose; it reaches the driver through
// cuGetProcAddress / dlsym on libcuda, which is where libegm.so must catch it
// (its map lines then say api=cuMemAlloc).
//
// stdout is deterministic (sizes, checksums, "done") so that run_coverage.sh
// can compare a plain run with a shim run byte for byte; errors go to stderr.
// Exit status: 0 all bytes verified, 1 a CUDA error or a wrong byte,
// 2 no usable CUDA device.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

constexpr size_t kKiB = size_t{1} << 10;
constexpr size_t kMiB = size_t{1} << 20;
// 3 MiB + 1 is no multiple of any granularity: the shim must pad it.
const size_t kSizes[] = {4 * kKiB, 3 * kMiB + 1, 64 * kMiB};
constexpr unsigned kThreads = 256;
constexpr unsigned kMaxBlocks = 4096;

__host__ __device__ uint8_t pattern_byte(uint64_t index, uint32_t seed) {
  uint64_t x = (index + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t{seed} << 32 | seed);
  x ^= x >> 29;
  return static_cast<uint8_t>(x ^ (x >> 8));
}

// What the second kernel makes of each source byte; checked on the CPU.
__host__ __device__ uint8_t transform_byte(uint8_t value) { return static_cast<uint8_t>(value * 3 + 1); }

__global__ void fill_kernel(uint8_t* buffer, size_t bytes, uint32_t seed) {
  size_t stride = size_t{gridDim.x} * blockDim.x;
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < bytes; i += stride) {
    buffer[i] = pattern_byte(i, seed);
  }
}

// Reads one buffer on the GPU and writes another: both directions of access.
__global__ void transform_kernel(const uint8_t* source, uint8_t* target, size_t bytes) {
  size_t stride = size_t{gridDim.x} * blockDim.x;
  for (size_t i = size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < bytes; i += stride) {
    target[i] = transform_byte(source[i]);
  }
}

unsigned blocks_for(size_t bytes) {
  size_t wanted = (bytes + kThreads - 1) / kThreads;
  return static_cast<unsigned>(wanted < kMaxBlocks ? wanted : kMaxBlocks);
}

bool cuda_ok(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return true;
  std::fprintf(stderr, "static_alloc: %s failed: %s (%s)\n", what, cudaGetErrorName(status),
               cudaGetErrorString(status));
  return false;
}

// FNV-1a over the bytes: one number that changes with any byte.
uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (uint8_t byte : bytes) hash = (hash ^ byte) * 0x100000001b3ull;
  return hash;
}

size_t count_wrong_bytes(const std::vector<uint8_t>& bytes, uint32_t seed) {
  size_t wrong = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    wrong += bytes[i] != transform_byte(pattern_byte(i, seed)) ? 1 : 0;
  }
  return wrong;
}

// Two cudaMalloc buffers of `bytes`: fill one, transform into the other,
// copy it back and check every byte. Prints one deterministic line.
bool check_size(size_t bytes, uint32_t seed) {
  void* source = nullptr;
  void* target = nullptr;
  bool ok = cuda_ok(cudaMalloc(&source, bytes), "cudaMalloc(source)") &&
            cuda_ok(cudaMalloc(&target, bytes), "cudaMalloc(target)");
  std::vector<uint8_t> host(bytes);
  if (ok) {
    auto* src = static_cast<uint8_t*>(source);
    auto* dst = static_cast<uint8_t*>(target);
    fill_kernel<<<blocks_for(bytes), kThreads>>>(src, bytes, seed);
    transform_kernel<<<blocks_for(bytes), kThreads>>>(src, dst, bytes);
    ok = cuda_ok(cudaGetLastError(), "kernel launch") &&
         cuda_ok(cudaDeviceSynchronize(), "kernels") &&
         cuda_ok(cudaMemcpy(host.data(), target, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  }
  // Free even after a failure, so that the shim's log balances.
  ok = cuda_ok(cudaFree(target), "cudaFree(target)") && ok;
  ok = cuda_ok(cudaFree(source), "cudaFree(source)") && ok;
  if (!ok) return false;
  size_t wrong = count_wrong_bytes(host, seed);
  std::printf("size=%zu seed=%u wrong=%zu fnv1a=%016llx\n", bytes, seed, wrong,
              static_cast<unsigned long long>(fnv1a(host)));
  return wrong == 0;
}

bool have_device() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    std::fprintf(stderr, "static_alloc: no usable CUDA device (%s)\n", cudaGetErrorName(status));
    return false;
  }
  return true;
}

}  // namespace

int main() {
  if (!have_device()) return 2;
  int runtime_version = 0;
  cudaRuntimeGetVersion(&runtime_version);
  std::fprintf(stderr, "static_alloc: static cudart %d\n", runtime_version);
  bool ok = true;
  uint32_t seed = 7;
  for (size_t bytes : kSizes) ok = check_size(bytes, seed++) && ok;
  std::printf(ok ? "done\n" : "FAILED\n");
  return ok ? 0 : 1;
}
