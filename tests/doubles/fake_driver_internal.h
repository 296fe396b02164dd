// What the fake libcuda.so.1's source files share (not exported): the
// failure injector that fake_cuda_call_count reads, the memory check of
// copies, and the stream-ordered entry points of fake_launch.cc that
// cuGetProcAddress hands out.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace fake {

// fake_cuda.cc: counts the call (fake_cuda_call_count); the injected failure
// code (FAKE_CUDA_FAIL), or CUDA_SUCCESS to go on.
CUresult driver_injected_failure(std::string_view function);

// fake_cuda.cc: every byte of [start, start + size) lies in the requested bytes of a
// cuMemAlloc-family allocation or a mapping (VMM). size 0: true.
bool is_driver_memory(uintptr_t start, size_t size);

// fake_launch.cc: an entry point with a per-thread-default-stream version,
// which cuGetProcAddress gives for CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM.
struct StreamProcEntry {
  const char* name;  // the base name callers ask for
  int since;         // 1000 * major + 10 * minor
  void* function;
  void* per_thread;  // nullptr: the same function either way
};
const std::vector<StreamProcEntry>& stream_proc_entries();

// fake_launch.cc: cuCtxSynchronize's wait: every stream's held work is done.
void synchronize_all_streams();

}  // namespace fake
