#include "shim/core/runtime_queries.h"

#include "shim/core/real_runtime.h"
#include "shim/core/runtime_guard.h"

namespace egm {

cudaError_t last_error_now() {
  auto peek = real_runtime().peek_at_last_error.get();
  return peek ? peek() : cudaSuccess;
}

void forget_own_error(cudaError_t before) {
  if (before != cudaSuccess) return;
  if (auto get_last_error = real_runtime().get_last_error.get()) get_last_error();
}

std::optional<int> stream_device(cudaStream_t stream) {
  RuntimeCallScope scope;
  RealRuntime& real = real_runtime();
  int device = -1;
  auto get_stream_device = real.stream_get_device.get();
  if (get_stream_device == nullptr) {
    auto get_device = real.get_device.get();
    if (get_device != nullptr && get_device(&device) == cudaSuccess) return device;
    return std::nullopt;
  }
  cudaError_t before = last_error_now();
  if (get_stream_device(stream, &device) == cudaSuccess) return device;
  forget_own_error(before);  // the real call records its own error
  return std::nullopt;
}

}  // namespace egm
