// The CUDA runtime entry points egm-shim overrides. Each is a thin call into
// egm::Shim; nothing else is exported (see exports.lds).
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include "shim/core/device_calls.h"
#include "shim/core/process_hooks.h"
#include "shim/core/real_dlsym.h"
#include "shim/core/shim.h"
#include "shim/override_support.h"

namespace {

void egm_load();

// Whether this copy of libegm.so is in the process's global scope (preloaded,
// or dlopen'ed RTLD_GLOBAL), where its overrides take the program's calls.
// Loaded by path RTLD_LOCAL (ctypes, PyTorch's pluggable allocator), the
// program's calls resolve elsewhere. egm_malloc names only this library; a
// second copy sees the first one's. The main program's handle searches the
// global scope alone (RTLD_DEFAULT would search this library's own scope too).
bool in_global_scope() {
  void* program = dlopen(nullptr, RTLD_LAZY);
  void* global = program != nullptr ? egm::real_dlsym()(program, "egm_malloc") : nullptr;
  if (program != nullptr) dlclose(program);
  Dl_info found{}, self{};
  return global != nullptr && dladdr(global, &found) != 0 &&
         dladdr(reinterpret_cast<void*>(&egm_load), &self) != 0 &&
         found.dli_fbase == self.dli_fbase;
}

// Preloaded, created at load so that bad configuration is reported (or, with
// EGM_STRICT=1, stops the process) before main runs. Loaded by path, made at
// the first egm_ call, and never by loading alone.
__attribute__((constructor)) void egm_load() {
  if (!in_global_scope()) {
    egm::Shim::note_loaded_by_path();
    return;
  }
  egm::Shim::instance();
}

// The summary is written after every library's destructors (a library that
// frees in its destructor must not show as a leak): see process_hooks.h.
__attribute__((destructor)) void egm_unload() {
  egm::Shim* shim = egm::Shim::existing();
  if (shim == nullptr) return;  // loaded by path and never used
  shim->finish_frees_before_exit();
  egm::write_exit_summary_last(*shim);
}

cudaError_t allocate(const egm::Request& request) {
  return static_cast<cudaError_t>(egm::Shim::instance().allocate(request));
}

cudaError_t allocate_async(void** pointer, size_t size, cudaStream_t stream, bool ptsz) {
  egm::Request request{egm::Api::kCudaMallocAsync, pointer, size};
  request.stream = stream;
  request.per_thread_stream = ptsz;
  return allocate(request);
}

}  // namespace

extern "C" {

EGM_EXPORT cudaError_t cudaMalloc(void** pointer, size_t size) {
  return allocate({egm::Api::kCudaMalloc, pointer, size});
}

EGM_EXPORT cudaError_t cudaMallocManaged(void** pointer, size_t size, unsigned int flags) {
  return allocate({egm::Api::kCudaMallocManaged, pointer, size, flags});
}

EGM_EXPORT cudaError_t cudaMallocPitch(void** pointer, size_t* pitch, size_t width, size_t height) {
  return allocate(
      egm::pitched_request(egm::Api::kCudaMallocPitch, pointer, pitch, width, height, 0));
}

EGM_EXPORT cudaError_t cudaMallocAsync(void** pointer, size_t size, cudaStream_t stream) {
  return allocate_async(pointer, size, stream, false);
}

EGM_EXPORT cudaError_t cudaMallocAsync_ptsz(void** pointer, size_t size, cudaStream_t stream) {
  return allocate_async(pointer, size, stream, true);
}

EGM_EXPORT cudaError_t cudaFree(void* pointer) {
  return egm::Shim::instance().free_runtime(pointer);
}

EGM_EXPORT cudaError_t cudaFreeAsync(void* pointer, cudaStream_t stream) {
  return egm::Shim::instance().free_async(pointer, stream, false);
}

EGM_EXPORT cudaError_t cudaFreeAsync_ptsz(void* pointer, cudaStream_t stream) {
  return egm::Shim::instance().free_async(pointer, stream, true);
}

EGM_EXPORT cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  return static_cast<cudaError_t>(egm::Shim::instance().memory_info(false, free, total));
}

}  // extern "C"

extern "C" EGM_EXPORT cudaError_t cudaDeviceEnablePeerAccess(int peer, unsigned int flags) {
  return egm::enable_peer_access(peer, flags);
}

extern "C" EGM_EXPORT cudaError_t cudaDeviceReset() { return egm::reset_device(); }
