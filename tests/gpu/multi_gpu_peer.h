// Kernels of the two-GPU peer-access test, behind a plain C++ interface so
// that the GoogleTest driver (multi_gpu_peer_test.cc) is compiled by the
// ordinary toolchain and only multi_gpu_peer.cu goes through nvcc. Each
// function makes `device` current, runs there and waits for it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace egm_gpu_test {

// Writes pattern_byte(i, seed) (gpu_kernels.h) to every byte of `buffer`.
cudaError_t fill_on(int device, void* buffer, size_t bytes, uint32_t seed);

// Reads every byte of `buffer`, counts those that differ from the pattern
// `expected_seed`, and writes the pattern `new_seed` in the same pass: one
// kernel both reads and writes the (possibly peer) memory.
cudaError_t check_and_rewrite_on(int device, void* buffer, size_t bytes, uint32_t expected_seed,
                                 uint32_t new_seed, uint64_t* mismatches);

// Counts the bytes of `buffer` that differ from the pattern `seed`.
cudaError_t count_mismatches_on(int device, const void* buffer, size_t bytes, uint32_t seed,
                                uint64_t* mismatches);

// A position-weighted checksum of `buffer`, computed on `device`: the same
// bytes give the same number on either GPU, with or without the shim.
cudaError_t checksum_on(int device, const void* buffer, size_t bytes, uint64_t* checksum);

}  // namespace egm_gpu_test
