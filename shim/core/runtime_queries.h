// The runtime calls the shim makes for itself, without leaving their errors
// for the program's cudaGetLastError. Part of the :shim library.
#pragma once

#include <cuda_runtime_api.h>

#include <optional>

namespace egm {

// The program's pending error now (cudaPeekAtLastError), or cudaSuccess.
cudaError_t last_error_now();

// Takes the shim's own error back out of cudaGetLastError, unless the
// program had one pending before (`before`), which stays.
void forget_own_error(cudaError_t before);

// The _ptsz entry points read stream 0 as the calling thread's default stream.
inline cudaStream_t effective_stream(cudaStream_t stream, bool per_thread_stream) {
  return per_thread_stream && stream == nullptr ? cudaStreamPerThread : stream;
}

// The device `stream` belongs to; nullopt for a stream the runtime does not
// know (destroyed, invalid). A runtime without cudaStreamGetDevice (before
// 12.8) answers the current device.
std::optional<int> stream_device(cudaStream_t stream);

}  // namespace egm
