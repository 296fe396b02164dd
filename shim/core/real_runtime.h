// The real CUDA runtime's entry points (the ones the shim overrides or needs).
// Resolved on first use, because libcudart may be dlopen'ed after the shim
// loads (Python frameworks do that); afterwards a call costs one atomic load.
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>

namespace egm {

// The address of `name` in the real libcudart, or nullptr if none is loaded.
void* find_real_runtime_symbol(const char* name);

// True if the process has a dynamically loaded libcudart right now.
bool dynamic_runtime_loaded();

template <typename Fn>
class RealFunction {
 public:
  explicit constexpr RealFunction(const char* name) : name_(name) {}

  // nullptr when no dynamic runtime is loaded.
  Fn get() {
    Fn fn = fn_.load(std::memory_order_acquire);
    if (fn != nullptr) return fn;
    fn = reinterpret_cast<Fn>(find_real_runtime_symbol(name_));
    fn_.store(fn, std::memory_order_release);  // racing stores store the same value
    return fn;
  }

 private:
  const char* name_;
  std::atomic<Fn> fn_{nullptr};
};

struct RealRuntime {
  RealFunction<cudaError_t (*)(void**, size_t)> malloc{"cudaMalloc"};
  RealFunction<cudaError_t (*)(void**, size_t, unsigned)> malloc_managed{"cudaMallocManaged"};
  RealFunction<cudaError_t (*)(void*)> free{"cudaFree"};
  RealFunction<cudaError_t (*)(int*)> get_device{"cudaGetDevice"};
  RealFunction<cudaError_t (*)()> device_synchronize{"cudaDeviceSynchronize"};
  RealFunction<cudaError_t (*)(size_t*, size_t*)> mem_get_info{"cudaMemGetInfo"};
  RealFunction<cudaError_t (*)()> get_last_error{"cudaGetLastError"};
  RealFunction<cudaError_t (*)(void**, size_t, cudaStream_t)> malloc_async{"cudaMallocAsync"};
  RealFunction<cudaError_t (*)(void**, size_t, cudaStream_t)> malloc_async_ptsz{
      "cudaMallocAsync_ptsz"};
  RealFunction<cudaError_t (*)(void*, cudaStream_t)> free_async{"cudaFreeAsync"};
  RealFunction<cudaError_t (*)(void*, cudaStream_t)> free_async_ptsz{"cudaFreeAsync_ptsz"};
  RealFunction<cudaError_t (*)(void**, size_t*, size_t, size_t)> malloc_pitch{"cudaMallocPitch"};
  RealFunction<cudaError_t (*)(cudaEvent_t*, unsigned)> event_create_with_flags{
      "cudaEventCreateWithFlags"};
  RealFunction<cudaError_t (*)(cudaEvent_t, cudaStream_t)> event_record{"cudaEventRecord"};
  RealFunction<cudaError_t (*)(cudaEvent_t)> event_query{"cudaEventQuery"};
  RealFunction<cudaError_t (*)(cudaEvent_t)> event_destroy{"cudaEventDestroy"};
  RealFunction<cudaError_t (*)()> device_reset{"cudaDeviceReset"};
  RealFunction<cudaError_t (*)(int, unsigned)> device_enable_peer_access{
      "cudaDeviceEnablePeerAccess"};
  RealFunction<cudaError_t (*)(cudaStream_t, cudaStreamCaptureStatus*)> stream_is_capturing{
      "cudaStreamIsCapturing"};
  RealFunction<cudaError_t (*)(cudaStream_t, cudaStreamCaptureStatus*)> stream_is_capturing_ptsz{
      "cudaStreamIsCapturing_ptsz"};
};

RealRuntime& real_runtime();

}  // namespace egm
