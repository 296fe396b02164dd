// Fake libcudart.so.13 for CPU-only tests: "device" memory is plain host
// memory (one anonymous mapping per allocation), so a program can check its
// data from the CPU whether or not libegm.so redirected an allocation.
// It does not use the fake driver: the shim must work with any runtime.
//
// Settings (read on every call): FAKE_CUDA_DEVICE_COUNT (default 1),
// FAKE_CUDART_FAIL (fail_injection.h; default code cudaErrorMemoryAllocation).
#include <cuda_runtime_api.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>

#include "tests/doubles/fail_injection.h"
#include "tests/doubles/fake_control.h"
#include "tests/doubles/fake_env.h"

namespace {

struct RuntimeState {
  std::mutex mutex;
  std::map<uintptr_t, size_t> allocations;  // start -> mapped length
};

// Never destroyed: frees may arrive while the process exits.
RuntimeState& state() {
  static RuntimeState* runtime = new RuntimeState();
  return *runtime;
}

fake::FailureInjector& injector() {
  static fake::FailureInjector* failures =
      new fake::FailureInjector("FAKE_CUDART_FAIL", cudaErrorMemoryAllocation);
  return *failures;
}

thread_local int current_device = 0;
thread_local cudaError_t last_error = cudaSuccess;

// Like the real runtime, a failing call is remembered for cudaGetLastError.
cudaError_t record(cudaError_t result) {
  if (result != cudaSuccess) last_error = result;
  return result;
}

// Counts the call; the injected failure code, or cudaSuccess to go on.
cudaError_t injected_failure(std::string_view function) {
  return static_cast<cudaError_t>(injector().on_call(function));
}

int device_count() { return static_cast<int>(fake::env_number("FAKE_CUDA_DEVICE_COUNT", 1)); }

size_t page_rounded(size_t size) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (size + page - 1) / page * page;
}

cudaError_t allocate(void** pointer, size_t size) {
  size_t length = page_rounded(size);
  void* memory = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return cudaErrorMemoryAllocation;
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  runtime.allocations[reinterpret_cast<uintptr_t>(memory)] = length;
  *pointer = memory;
  return cudaSuccess;
}

struct ErrorText {
  cudaError_t code;
  const char* name;
  const char* text;
};

constexpr ErrorText kErrors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorCudartUnloading, "cudaErrorCudartUnloading", "driver shutting down"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidDevicePointer, "cudaErrorInvalidDevicePointer", "invalid device pointer"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection",
     "invalid copy direction for memcpy"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorDeviceUninitialized, "cudaErrorDeviceUninitialized", "invalid device context"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

const ErrorText* find_error(cudaError_t code) {
  for (const ErrorText& error : kErrors) {
    if (error.code == code) return &error;
  }
  return nullptr;
}

bool is_valid_memcpy_kind(cudaMemcpyKind kind) {
  return kind >= cudaMemcpyHostToHost && kind <= cudaMemcpyDefault;
}

}  // namespace

// Everything below is the library's interface: exported despite
// -fvisibility=hidden.
#pragma GCC visibility push(default)
extern "C" {

cudaError_t cudaMalloc(void** pointer, size_t size) {
  if (cudaError_t failure = injected_failure("cudaMalloc")) return record(failure);
  if (pointer == nullptr) return record(cudaErrorInvalidValue);
  if (size == 0) {  // as CUDA: success, and no memory
    *pointer = nullptr;
    return cudaSuccess;
  }
  return record(allocate(pointer, size));
}

cudaError_t cudaMallocManaged(void** pointer, size_t size, unsigned int flags) {
  if (cudaError_t failure = injected_failure("cudaMallocManaged")) return record(failure);
  bool known_flags = flags == cudaMemAttachGlobal || flags == cudaMemAttachHost;
  if (pointer == nullptr || size == 0 || !known_flags) return record(cudaErrorInvalidValue);
  return record(allocate(pointer, size));
}

cudaError_t cudaFree(void* pointer) {
  if (cudaError_t failure = injected_failure("cudaFree")) return record(failure);
  if (pointer == nullptr) return cudaSuccess;
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  auto it = runtime.allocations.find(reinterpret_cast<uintptr_t>(pointer));
  if (it == runtime.allocations.end()) return record(cudaErrorInvalidValue);
  munmap(pointer, it->second);
  runtime.allocations.erase(it);
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (cudaError_t failure = injected_failure("cudaGetDeviceCount")) return record(failure);
  if (count == nullptr) return record(cudaErrorInvalidValue);
  *count = device_count();
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (cudaError_t failure = injected_failure("cudaGetDevice")) return record(failure);
  if (device == nullptr) return record(cudaErrorInvalidValue);
  *device = current_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (cudaError_t failure = injected_failure("cudaSetDevice")) return record(failure);
  if (device < 0 || device >= device_count()) return record(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  if (cudaError_t failure = injected_failure("cudaDeviceSynchronize")) return record(failure);
  return cudaSuccess;  // the fake device runs nothing asynchronously
}

cudaError_t cudaMemcpy(void* destination, const void* source, size_t count, cudaMemcpyKind kind) {
  if (cudaError_t failure = injected_failure("cudaMemcpy")) return record(failure);
  if (!is_valid_memcpy_kind(kind)) return record(cudaErrorInvalidMemcpyDirection);
  if (count == 0) return cudaSuccess;
  if (destination == nullptr || source == nullptr) return record(cudaErrorInvalidValue);
  std::memmove(destination, source, count);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* pointer, int value, size_t count) {
  if (cudaError_t failure = injected_failure("cudaMemset")) return record(failure);
  if (count == 0) return cudaSuccess;
  if (pointer == nullptr) return record(cudaErrorInvalidValue);
  std::memset(pointer, value, count);
  return cudaSuccess;
}

const char* cudaGetErrorName(cudaError_t error) {
  const ErrorText* known = find_error(error);
  return known ? known->name : "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  const ErrorText* known = find_error(error);
  return known ? known->text : "unrecognized error code";
}

cudaError_t cudaGetLastError(void) {
  cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

// Like the real one, destroys every allocation of the device.
cudaError_t cudaDeviceReset(void) {
  if (cudaError_t failure = injected_failure("cudaDeviceReset")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  for (const auto& [start, length] : runtime.allocations) {
    munmap(reinterpret_cast<void*>(start), length);
  }
  runtime.allocations.clear();
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return record(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}

// ---- inspection (fake_control.h) ----

int fake_cudart_live_allocations(void) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  return static_cast<int>(runtime.allocations.size());
}

long fake_cudart_call_count(const char* function) {
  return function == nullptr ? 0 : injector().call_count(function);
}

}  // extern "C"
#pragma GCC visibility pop
