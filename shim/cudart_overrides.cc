// The CUDA runtime entry points egm-shim overrides. Each is a thin call into
// egm::Shim; nothing else is exported (see exports.lds).
#include <cuda_runtime_api.h>

#include "shim/core/shim.h"

namespace {

// Created at load so that bad configuration is reported (or, with
// EGM_STRICT=1, stops the process) before main runs.
__attribute__((constructor)) void egm_load() { egm::Shim::instance(); }

__attribute__((destructor)) void egm_unload() { egm::Shim::instance().write_exit_summary(); }

}  // namespace

extern "C" {

__attribute__((visibility("default"))) cudaError_t cudaMalloc(void** pointer, size_t size) {
  return egm::Shim::instance().allocate(egm::Api::kCudaMalloc, pointer, size, 0);
}

__attribute__((visibility("default"))) cudaError_t cudaMallocManaged(void** pointer, size_t size,
                                                                     unsigned int flags) {
  return egm::Shim::instance().allocate(egm::Api::kCudaMallocManaged, pointer, size, flags);
}

__attribute__((visibility("default"))) cudaError_t cudaFree(void* pointer) {
  return egm::Shim::instance().release(pointer);
}

}  // extern "C"
