// A two-GPU CUDA program for the multi-GPU LD_PRELOAD tests:
// `multi_gpu_program SCENARIO`, run with FAKE_CUDA_DEVICE_COUNT=2. Linked
// against the fake libcudart.so.13 and libcuda.so.1, so it switches devices
// (cudaSetDevice, contexts), enables peer access and allocates through both
// the runtime and the driver API, as multi-GPU frameworks do.
//
// stdout carries the call results; which device may access which allocation
// (fake_cuda_device_access_to) and the live counts go as KEY=VALUE lines to
// ALLOC_PROGRAM_REPORT, as api_program's do.
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>

#include "tests/doubles/fake_control.h"
#include "tests/preload/program_support.h"

namespace {

using test_program::address_of;
using test_program::hex;
using test_program::report;

constexpr size_t kMiB = size_t{1} << 20;
// Distinct sizes, so that the pool never hands one's cached chunk to another.
constexpr size_t kLiveSize = 4 * kMiB;
constexpr size_t kCachedSize = 6 * kMiB;
constexpr size_t kLaterSize = 10 * kMiB;
constexpr int kDevices = 2;

// ---- the report ----

void* as_pointer(CUdeviceptr address) { return reinterpret_cast<void*>(address); }

// Which devices (and the host) may use `pointer` now: LABEL.accessN, LABEL.host.
void report_access(const std::string& label, const void* pointer) {
  for (int device = 0; device < kDevices; ++device) {
    report(label + ".access" + std::to_string(device),
           std::to_string(fake_cuda_device_access_to(pointer, device)));
  }
  report(label + ".host", std::to_string(fake_cuda_host_access_granted(pointer)));
}

void report_live_counts(const std::string& prefix) {
  report(prefix + ".cuda_mappings", std::to_string(fake_cuda_live_mappings()));
  report(prefix + ".cuda_handles", std::to_string(fake_cuda_live_handles()));
  report(prefix + ".cuda_allocations", std::to_string(fake_cuda_live_allocations()));
  report(prefix + ".cudart_allocations", std::to_string(fake_cudart_live_allocations()));
}

const char* name_of(cudaError_t error) { return cudaGetErrorName(error); }

const char* name_of(CUresult result) {
  const char* name = nullptr;
  return cuGetErrorName(result, &name) == CUDA_SUCCESS && name ? name : "CUDA_ERROR_UNKNOWN_CODE";
}

// Writes and reads back every byte: faults if the memory is not CPU-usable.
bool pattern_holds(void* pointer, size_t size) {
  auto* bytes = static_cast<uint8_t*>(pointer);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(i * 131 + 7);
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] != static_cast<uint8_t>(i * 131 + 7)) return false;
  }
  return true;
}

// ---- runtime API ----

void set_device(int device) {
  std::printf("cudaSetDevice(%d)=%s\n", device, name_of(cudaSetDevice(device)));
}

// cudaMalloc on the current device, reported as LABEL.*.
void* runtime_alloc(const std::string& label, size_t size) {
  void* pointer = nullptr;
  long set_access_before = fake_cuda_call_count("cuMemSetAccess");
  cudaError_t result = cudaMalloc(&pointer, size);
  std::printf("%s cudaMalloc(%zu)=%s\n", label.c_str(), size, name_of(result));
  report(label + ".addr", address_of(pointer));
  report(label + ".set_access_calls",
         std::to_string(fake_cuda_call_count("cuMemSetAccess") - set_access_before));
  report(label + ".redirected", fake_cuda_mapping_of(pointer, nullptr, nullptr) ? "1" : "0");
  if (pointer != nullptr) {
    report_access(label, pointer);
    std::printf("%s pattern_ok=%d\n", label.c_str(), pattern_holds(pointer, size));
  }
  return pointer;
}

void runtime_free(const std::string& label, void* pointer) {
  std::printf("%s cudaFree=%s\n", label.c_str(), name_of(cudaFree(pointer)));
}

int current_runtime_device() {
  int device = -1;
  cudaGetDevice(&device);
  return device;
}

int scenario_alloc_on_1() {
  set_device(1);
  void* a = runtime_alloc("a", 3 * kMiB + 5);
  runtime_free("a", a);
  report_live_counts("after_free");
  return 0;
}

int scenario_both_devices() {
  set_device(0);
  void* a = runtime_alloc("a", 3 * kMiB);
  set_device(1);
  void* b = runtime_alloc("b", 5 * kMiB);
  void* c = runtime_alloc("c", 5 * kMiB);
  for (auto [label, pointer] : {std::pair{"a", a}, {"b", b}, {"c", c}})
    runtime_free(label, pointer);
  report_live_counts("after_free");
  return 0;
}

// Memory of device 1 freed while device 0 is current.
int scenario_free_from_other_device() {
  set_device(1);
  void* a = runtime_alloc("a", 3 * kMiB);
  set_device(0);
  runtime_free("a", a);
  report("a.mapped_after_free", fake_cuda_mapping_of(a, nullptr, nullptr) ? "1" : "0");
  report("current_device_after_free", std::to_string(current_runtime_device()));
  report_live_counts("after_free");
  return 0;
}

// Device 1's memory, live and cached, before and after device 0 enables
// peer access to it; then a fresh allocation of device 1 and a reuse of the
// cached chunk. Everything is freed with device 0 current.
int scenario_enable_runtime() {
  set_device(1);
  void* live = runtime_alloc("live", kLiveSize);
  void* cached = runtime_alloc("cached", kCachedSize);
  runtime_free("cached", cached);
  report("cached.still_mapped", fake_cuda_mapping_of(cached, nullptr, nullptr) ? "1" : "0");
  set_device(0);
  std::printf("cudaDeviceEnablePeerAccess(1)=%s\n", name_of(cudaDeviceEnablePeerAccess(1, 0)));
  report("peer_enabled", std::to_string(fake_cudart_peer_access_enabled(0, 1)));
  report_access("live.after_enable", live);
  report_access("cached.after_enable", cached);
  set_device(1);
  void* later = runtime_alloc("later", kLaterSize);
  void* reused = runtime_alloc("reused", kCachedSize);
  set_device(0);
  for (auto [label, pointer] : {std::pair{"live", live}, {"later", later}, {"reused", reused}}) {
    runtime_free(label, pointer);
  }
  return 0;
}

// ---- driver API ----

struct Contexts {
  CUcontext of[kDevices] = {};
};

Contexts retain_contexts() {
  Contexts contexts;
  std::printf("cuInit=%s\n", name_of(cuInit(0)));
  for (int device = 0; device < kDevices; ++device) {
    std::printf("cuDevicePrimaryCtxRetain(%d)=%s\n", device,
                name_of(cuDevicePrimaryCtxRetain(&contexts.of[device], device)));
  }
  return contexts;
}

void release_contexts() {
  cuCtxSetCurrent(nullptr);
  for (int device = 0; device < kDevices; ++device) cuDevicePrimaryCtxRelease(device);
}

void make_current(const Contexts& contexts, int device) {
  std::printf("cuCtxSetCurrent(%d)=%s\n", device, name_of(cuCtxSetCurrent(contexts.of[device])));
}

CUdeviceptr driver_alloc(const std::string& label, size_t size) {
  CUdeviceptr address = 0;
  long set_access_before = fake_cuda_call_count("cuMemSetAccess");
  CUresult result = cuMemAlloc(&address, size);
  std::printf("%s cuMemAlloc(%zu)=%s\n", label.c_str(), size, name_of(result));
  report(label + ".addr", address_of(as_pointer(address)));
  report(label + ".set_access_calls",
         std::to_string(fake_cuda_call_count("cuMemSetAccess") - set_access_before));
  report(label + ".redirected",
         fake_cuda_mapping_of(as_pointer(address), nullptr, nullptr) ? "1" : "0");
  if (address != 0) report_access(label, as_pointer(address));
  return address;
}

void driver_free(const std::string& label, CUdeviceptr address) {
  std::printf("%s cuMemFree=%s\n", label.c_str(), name_of(cuMemFree(address)));
}

// The driver twin of scenario_enable_runtime: device 0's context enables
// access to device 1's context.
int scenario_enable_driver() {
  Contexts contexts = retain_contexts();
  make_current(contexts, 1);
  CUdeviceptr live = driver_alloc("live", kLiveSize);
  CUdeviceptr cached = driver_alloc("cached", kCachedSize);
  driver_free("cached", cached);
  report("cached.still_mapped",
         fake_cuda_mapping_of(as_pointer(cached), nullptr, nullptr) ? "1" : "0");
  make_current(contexts, 0);
  std::printf("cuCtxEnablePeerAccess(ctx1)=%s\n",
              name_of(cuCtxEnablePeerAccess(contexts.of[1], 0)));
  CUcontext current = nullptr;
  cuCtxGetCurrent(&current);
  report("current_is_ctx0_after_enable", current == contexts.of[0] ? "1" : "0");
  report("peer_enabled", std::to_string(fake_cuda_ctx_peer_access_enabled(0, 1)));
  report_access("live.after_enable", as_pointer(live));
  report_access("cached.after_enable", as_pointer(cached));
  make_current(contexts, 1);
  CUdeviceptr later = driver_alloc("later", kLaterSize);
  make_current(contexts, 0);
  driver_free("live", live);
  driver_free("later", later);
  release_contexts();
  return 0;
}

const std::map<std::string, std::function<int()>>& scenarios() {
  static const auto* table = new std::map<std::string, std::function<int()>>{
      {"alloc-on-1", scenario_alloc_on_1},
      {"both-devices", scenario_both_devices},
      {"free-from-other-device", scenario_free_from_other_device},
      {"enable-runtime", scenario_enable_runtime},
      {"enable-driver", scenario_enable_driver},
  };
  return *table;
}

}  // namespace

int main(int argc, char** argv) {
  return test_program::run_scenario("multi_gpu_program", scenarios(), argc, argv);
}
