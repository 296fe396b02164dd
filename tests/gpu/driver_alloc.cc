// A driver-API-only program (no cudart at all), linked against libcuda.so.1:
// cuMemAlloc, cuMemAllocPitch and cuMemAllocManaged are what libegm.so must
// intercept here (map lines api=cuMemAlloc / cuMemAllocPitch /
// cuMemAllocManaged). cuMemsetD32 and the copies make the GPU write and read
// every allocation; the CPU checks every byte.
//
// stdout is deterministic (sizes, pitch, checksums, "done"): run_coverage.sh
// compares a plain run with a shim run byte for byte. Errors go to stderr.
// Exit status: 0 all verified, 1 a CUDA error or a wrong byte, 2 no device.
#include <cuda.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

constexpr size_t kKiB = size_t{1} << 10;
constexpr size_t kMiB = size_t{1} << 20;
const size_t kAllocSizes[] = {4 * kKiB, 3 * kMiB + 4, 64 * kMiB};
constexpr size_t kManagedBytes = 8 * kMiB;
// A pitched 2-D block whose row width is no multiple of any alignment.
constexpr size_t kPitchWidth = 1000;
constexpr size_t kPitchHeight = 300;

bool cu_ok(CUresult status, const char* what) {
  if (status == CUDA_SUCCESS) return true;
  const char* name = nullptr;
  cuGetErrorName(status, &name);
  std::fprintf(stderr, "driver_alloc: %s failed: %s (%d)\n", what, name ? name : "?",
               static_cast<int>(status));
  return false;
}

uint32_t pattern_word(size_t index, uint32_t seed) {
  uint64_t x = (index + 1) * 0x9E3779B97F4A7C15ull ^ seed;
  return static_cast<uint32_t>(x ^ (x >> 31));
}

std::vector<uint32_t> pattern_words(size_t count, uint32_t seed) {
  std::vector<uint32_t> words(count);
  for (size_t i = 0; i < count; ++i) words[i] = pattern_word(i, seed);
  return words;
}

uint64_t fnv1a(const void* data, size_t bytes) {
  const auto* byte = static_cast<const uint8_t*>(data);
  uint64_t hash = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < bytes; ++i) hash = (hash ^ byte[i]) * 0x100000001b3ull;
  return hash;
}

// cuMemAlloc: memset the whole buffer on the GPU, copy a pattern over its
// first half, read it all back. Checks both the memset and the copied bytes.
bool check_linear(size_t bytes, uint32_t seed) {
  CUdeviceptr buffer = 0;
  if (!cu_ok(cuMemAlloc(&buffer, bytes), "cuMemAlloc")) return false;
  size_t words = bytes / 4;
  size_t copied = words / 2;
  std::vector<uint32_t> pattern = pattern_words(copied, seed);
  std::vector<uint32_t> back(words);
  bool ok = cu_ok(cuMemsetD32(buffer, 0xA5A5A5A5u, words), "cuMemsetD32") &&
            cu_ok(cuMemcpyHtoD(buffer, pattern.data(), copied * 4), "cuMemcpyHtoD") &&
            cu_ok(cuMemcpyDtoH(back.data(), buffer, words * 4), "cuMemcpyDtoH");
  ok = cu_ok(cuMemFree(buffer), "cuMemFree") && ok;
  if (!ok) return false;
  size_t wrong = 0;
  for (size_t i = 0; i < words; ++i) wrong += back[i] != (i < copied ? pattern[i] : 0xA5A5A5A5u);
  std::printf("cuMemAlloc size=%zu wrong_words=%zu fnv1a=%016llx\n", bytes, wrong,
              static_cast<unsigned long long>(fnv1a(back.data(), words * 4)));
  return wrong == 0;
}

// cuMemAllocPitch: a 2-D copy in, a 2-D copy out. The pitch is printed: the
// shim must hand out the same pitch as the driver.
bool check_pitched(uint32_t seed) {
  CUdeviceptr buffer = 0;
  size_t pitch = 0;
  if (!cu_ok(cuMemAllocPitch(&buffer, &pitch, kPitchWidth, kPitchHeight, 4), "cuMemAllocPitch")) {
    return false;
  }
  std::vector<uint8_t> in(kPitchWidth * kPitchHeight);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(pattern_word(i, seed));
  std::vector<uint8_t> out(in.size());
  CUDA_MEMCPY2D copy{};
  copy.WidthInBytes = kPitchWidth;
  copy.Height = kPitchHeight;
  copy.srcMemoryType = CU_MEMORYTYPE_HOST;
  copy.srcHost = in.data();
  copy.srcPitch = kPitchWidth;
  copy.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  copy.dstDevice = buffer;
  copy.dstPitch = pitch;
  bool ok = cu_ok(cuMemsetD32(buffer, 0, pitch * kPitchHeight / 4), "cuMemsetD32(pitched)") &&
            cu_ok(cuMemcpy2D(&copy), "cuMemcpy2D(HtoD)");
  std::swap(copy.srcMemoryType, copy.dstMemoryType);
  copy.srcDevice = buffer;
  copy.srcPitch = pitch;
  copy.dstHost = out.data();
  copy.dstPitch = kPitchWidth;
  ok = ok && cu_ok(cuMemcpy2D(&copy), "cuMemcpy2D(DtoH)");
  ok = cu_ok(cuMemFree(buffer), "cuMemFree(pitched)") && ok;
  if (!ok) return false;
  bool same = in == out;
  std::printf("cuMemAllocPitch width=%zu height=%zu pitch=%zu same=%d fnv1a=%016llx\n",
              kPitchWidth, kPitchHeight, pitch, same ? 1 : 0,
              static_cast<unsigned long long>(fnv1a(out.data(), out.size())));
  return same;
}

// cuMemAllocManaged: the CPU writes, the GPU overwrites the second half, the
// CPU reads through the same pointer and through a copy.
bool check_managed(uint32_t seed) {
  CUdeviceptr buffer = 0;
  if (!cu_ok(cuMemAllocManaged(&buffer, kManagedBytes, CU_MEM_ATTACH_GLOBAL), "cuMemAllocManaged")) {
    return false;
  }
  size_t words = kManagedBytes / 4;
  std::vector<uint32_t> pattern = pattern_words(words, seed);
  auto* cpu_view = reinterpret_cast<uint32_t*>(buffer);
  std::memcpy(cpu_view, pattern.data(), kManagedBytes);
  std::vector<uint32_t> back(words);
  bool ok = cu_ok(cuMemsetD32(buffer + kManagedBytes / 2, 0x5A5A5A5Au, words / 2),
                  "cuMemsetD32(managed)") &&
            cu_ok(cuCtxSynchronize(), "cuCtxSynchronize") &&
            cu_ok(cuMemcpyDtoH(back.data(), buffer, kManagedBytes), "cuMemcpyDtoH(managed)");
  size_t wrong = 0;
  if (ok) {
    for (size_t i = 0; i < words; ++i) {
      uint32_t expected = i < words / 2 ? pattern[i] : 0x5A5A5A5Au;
      wrong += (back[i] != expected) + (cpu_view[i] != expected);
    }
  }
  ok = cu_ok(cuMemFree(buffer), "cuMemFree(managed)") && ok;
  if (!ok) return false;
  std::printf("cuMemAllocManaged size=%zu wrong_words=%zu fnv1a=%016llx\n", kManagedBytes, wrong,
              static_cast<unsigned long long>(fnv1a(back.data(), kManagedBytes)));
  return wrong == 0;
}

// Values differ between runs, so only their plausibility goes to stdout.
bool check_mem_get_info() {
  size_t free_bytes = 0, total_bytes = 0;
  if (!cu_ok(cuMemGetInfo(&free_bytes, &total_bytes), "cuMemGetInfo")) return false;
  std::fprintf(stderr, "driver_alloc: cuMemGetInfo free=%zu total=%zu\n", free_bytes, total_bytes);
  bool plausible = total_bytes > 0 && free_bytes > 0 && free_bytes <= total_bytes;
  std::printf("cuMemGetInfo plausible=%d\n", plausible ? 1 : 0);
  return plausible;
}

// cuInit through the primary context; returns 2 without a usable device.
int open_primary_context(CUdevice* device, CUcontext* context) {
  CUresult status = cuInit(0);
  if (status != CUDA_SUCCESS) {
    cu_ok(status, "cuInit");
    std::fprintf(stderr, "driver_alloc: no usable CUDA device\n");
    return 2;
  }
  bool ok = cu_ok(cuDeviceGet(device, 0), "cuDeviceGet") &&
            cu_ok(cuDevicePrimaryCtxRetain(context, *device), "cuDevicePrimaryCtxRetain") &&
            cu_ok(cuCtxSetCurrent(*context), "cuCtxSetCurrent");
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  CUdevice device = 0;
  CUcontext context = nullptr;
  if (int status = open_primary_context(&device, &context); status != 0) return status;
  bool ok = check_mem_get_info();
  uint32_t seed = 3;
  for (size_t bytes : kAllocSizes) ok = check_linear(bytes, seed++) && ok;
  ok = check_pitched(seed++) && ok;
  ok = check_managed(seed++) && ok;
  ok = cu_ok(cuDevicePrimaryCtxRelease(device), "cuDevicePrimaryCtxRelease") && ok;
  std::printf(ok ? "done\n" : "FAILED\n");
  return ok ? 0 : 1;
}
