// libegm.so's own entry points (egm_-prefixed; exports.lds): host memory on
// request, with the signature of PyTorch's pluggable allocator
// (torch.cuda.memory.CUDAPluggableAllocator), and the live table for the egm
// Python package. They work preloaded or loaded by path; loaded by path the
// library intercepts nothing and the shim is made at the first call.
#include <cuda_runtime_api.h>
#include <sys/types.h>

#include <atomic>
#include <cstring>
#include <string>

#include "shim/core/shim.h"
#include "shim/override_support.h"

namespace {

// The node egm_malloc places on; -1: EGM_NUMA_POLICY's choice.
std::atomic<int> requested_node{-1};

}  // namespace

extern "C" {

EGM_EXPORT void* egm_malloc(ssize_t size, int device, cudaStream_t /*stream*/) {
  if (size <= 0) return nullptr;
  return egm::Shim::instance().place_on_host(static_cast<size_t>(size), device,
                                             requested_node.load(std::memory_order_relaxed));
}

// As cudaFree: waits for the device, then returns the memory to the pool.
EGM_EXPORT void egm_free(void* pointer, ssize_t /*size*/, int /*device*/,
                         cudaStream_t /*stream*/) {
  egm::Shim::instance().free_placed(pointer);
}

// Where egm_malloc places from now on (process-wide): a host NUMA node, or
// -1 for EGM_NUMA_POLICY's choice. Returns 0, or -1 (unchanged) for a node
// that does not exist or has no memory.
EGM_EXPORT int egm_set_node(int node) {
  if (node < -1 || (node >= 0 && !egm::Shim::instance().host_node_exists(node))) return -1;
  requested_node.store(node, std::memory_order_relaxed);
  return 0;
}

// The live table as a JSON object, NUL-terminated in `buffer` when it fits
// in `length` bytes; returns the length the text needs (without the NUL).
EGM_EXPORT size_t egm_stats_json(char* buffer, size_t length) {
  std::string json = egm::Shim::instance().stats_json();
  if (buffer != nullptr && length > json.size()) std::memcpy(buffer, json.c_str(), json.size() + 1);
  return json.size();
}

}  // extern "C"
