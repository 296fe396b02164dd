// The process-wide state of egm-shim and the two operations the overrides
// call. Created on first use (or at load) and never destroyed, so that
// frees arriving during exit still find it.
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>

#include "config/config.h"
#include "shim/core/egm_allocator.h"
#include "shim/core/log.h"
#include "shim/core/mapping_table.h"

namespace egm {

class Shim {
 public:
  static Shim& instance();

  // cudaMalloc / cudaMallocManaged: host memory when policy says so and the
  // EGM sequence succeeds, otherwise the real call's result.
  cudaError_t allocate(Api api, void** pointer, size_t size, unsigned flags);
  // cudaFree: unmaps the shim's own pointers, forwards every other one.
  cudaError_t release(void* pointer);

  void write_exit_summary();

 private:
  Shim();
  bool should_redirect(Api api, void** pointer, size_t size, unsigned flags) const;
  bool try_redirect(Api api, void** pointer, size_t size);
  void log_start_once();
  void log_fallback(Api api, size_t size, int node, int device, const char* step,
                    const char* error);
  void log_map(const Mapping& mapping, int64_t map_us, const char* node_reason);
  void log_unmap(const Mapping& mapping, int64_t unmap_us);
  cudaError_t finish_release(const Mapping& mapping, const EgmAllocator& allocator);

  ParsedConfig parsed_;
  bool redirecting_ = false;
  EventLog log_;
  MappingTable table_;
  std::atomic<uint64_t> fallbacks_{0};
  std::atomic<bool> start_logged_{false};
};

cudaError_t call_real_allocation(Api api, void** pointer, size_t size, unsigned flags);

}  // namespace egm
