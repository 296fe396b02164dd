// The two bandwidth kernels of egm-bench behind a plain C++ interface, so that
// only bench_kernels.cu goes through nvcc and the rest is ordinary C++.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace egm::bench {

// Blocks the kernels are launched with: enough resident warps to keep many
// 16-byte loads in flight, which is what a link to host memory needs.
unsigned bandwidth_blocks();

// Bytes of the per-block result buffer that launch_read_reduce needs.
size_t read_reduce_scratch_bytes();

// Reads every 16-byte word of `buffer` (bytes: a multiple of 16) and stores
// one XOR-reduction per block in `scratch`, so the loads cannot be dropped.
cudaError_t launch_read_reduce(const void* buffer, size_t bytes, void* scratch);

// Stores `value` into every 32-bit word of `buffer` (bytes: a multiple of 16).
cudaError_t launch_write(void* buffer, size_t bytes, uint32_t value);

// One thread copies the first 32-bit word of `buffer` to `scratch`: a launch
// whose cost is the launch itself (the launch section).
cudaError_t launch_touch(const void* buffer, void* scratch);

}  // namespace egm::bench
