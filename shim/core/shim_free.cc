// The free path of egm::Shim: cudaFree, cuMemFree, cudaFreeAsync (deferred
// until the stream's earlier work is done), and memory information.
#include <fmt/format.h>

#include <algorithm>

#include "shim/core/clock.h"
#include "shim/core/host_topology.h"
#include "shim/core/real_runtime.h"
#include "shim/core/runtime_guard.h"
#include "shim/core/shim.h"

namespace egm {
namespace {

// The error a real free reports for a driver failure while unmapping.
int free_error_for(CUresult result) {
  switch (result) {
    case CUDA_ERROR_DEINITIALIZED: return cudaErrorCudartUnloading;
    case CUDA_ERROR_INVALID_VALUE: return kInvalidValue;
    default: return cudaErrorUnknown;
  }
}

cudaError_t real_free(void* pointer) {
  RuntimeCallScope scope;
  auto fn = real_runtime().free.get();
  return fn ? fn(pointer) : static_cast<cudaError_t>(kNotInitialized);
}

}  // namespace

std::optional<Mapping> Shim::take_mapping(uintptr_t address) {
  if (address == 0 || forked_child_ || !table_.may_contain(address)) return std::nullopt;
  return table_.remove(address);
}

cudaError_t Shim::free_runtime(void* pointer) {
  drain_pending_frees(/*wait=*/false);
  std::optional<Mapping> mapping = take_mapping(reinterpret_cast<uintptr_t>(pointer));
  if (!mapping) return real_free(pointer);
  // cudaFree waits for the device before freeing; so must we.
  cudaError_t sync_error = cudaSuccess;
  {
    RuntimeCallScope scope;
    if (auto synchronize = real_runtime().device_synchronize.get()) sync_error = synchronize();
  }
  int unmap_error = unmap_now(*mapping);
  return static_cast<cudaError_t>(unmap_error != kSuccess ? unmap_error : sync_error);
}

CUresult Shim::free_driver(CUdeviceptr pointer) {
  drain_pending_frees(/*wait=*/false);
  const DriverApi* driver = driver_api(nullptr);
  std::optional<Mapping> mapping = take_mapping(static_cast<uintptr_t>(pointer));
  if (!mapping) {
    return driver && driver->mem_free ? driver->mem_free(pointer) : CUDA_ERROR_NOT_INITIALIZED;
  }
  CUresult sync_error = driver->ctx_synchronize ? driver->ctx_synchronize() : CUDA_SUCCESS;
  int unmap_error = unmap_now(*mapping);
  return static_cast<CUresult>(unmap_error != kSuccess ? unmap_error : sync_error);
}

cudaError_t Shim::free_async(void* pointer, cudaStream_t stream, bool per_thread_stream) {
  std::optional<Mapping> mapping = take_mapping(reinterpret_cast<uintptr_t>(pointer));
  RealRuntime& real = real_runtime();
  RuntimeCallScope scope;
  if (!mapping) {
    auto fn = per_thread_stream ? real.free_async_ptsz.get() : real.free_async.get();
    return fn ? fn(pointer, stream) : static_cast<cudaError_t>(kNotInitialized);
  }
  cudaEvent_t event = nullptr;
  auto create = real.event_create_with_flags.get();
  auto record = real.event_record.get();
  if (!create || !record || create(&event, cudaEventDisableTiming) != cudaSuccess) {
    return static_cast<cudaError_t>(unmap_now(*mapping));  // no event: free at once, safely late
  }
  cudaError_t recorded = record(event, stream);
  if (recorded != cudaSuccess) {
    if (auto destroy = real.event_destroy.get()) destroy(event);
    table_.restore(*mapping);  // still the caller's: a real cudaFreeAsync would fail the same way
    return recorded;
  }
  std::lock_guard<std::mutex> lock(pending_mutex_);
  pending_.push_back({*mapping, event});
  pending_count_.store(pending_.size(), std::memory_order_release);
  return cudaSuccess;
}

void Shim::device_reset(int device) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr || forked_child_) return;
  drain_pending_frees(/*wait=*/false);
  std::vector<Mapping> released = table_.remove_device(device);
  for (const Mapping& mapping : released) unmap_now(mapping);
  pool_->trim(*driver, "device-reset");
  log_.write(LogLevel::kInfo, "device-reset",
             fmt::format("device={} released={}", device, released.size()));
}

int Shim::unmap_now(const Mapping& mapping) {
  const DriverApi* driver = driver_api(nullptr);  // loaded: it mapped this pointer
  int64_t start = steady_us();
  std::optional<EgmFailure> failure = pool_->release(*driver, mapping);
  if (failure && failure->error == CUDA_ERROR_DEINITIALIZED) {
    return cudaErrorCudartUnloading;  // the driver is torn down (exit) and took the memory along
  }
  if (failure) {
    log_.write(LogLevel::kError, "free-error",
               fmt::format("id={} addr={:#x} step={} error={}", mapping.id, mapping.address,
                           failure->step, driver->error_name(failure->error)));
    return free_error_for(failure->error);
  }
  log_unmap(mapping, steady_us() - start, mapping.in_block ? "slab" : "pool");
  return kSuccess;
}

// Unmaps the deferred frees whose stream work is done (all of them, waiting,
// when `wait`).
void Shim::drain_pending_frees(bool wait) {
  if (pending_count_.load(std::memory_order_acquire) == 0) return;
  std::vector<PendingFree> ready;
  {
    std::lock_guard<std::mutex> lock(pending_mutex_);
    RealRuntime& real = real_runtime();
    RuntimeCallScope scope;
    auto query = real.event_query.get();
    const DriverApi* driver = driver_api(nullptr);
    auto done = [&](const PendingFree& pending) {
      if (wait) return true;
      if (pending.driver_event) {
        return driver && driver->event_query &&
               driver->event_query(pending.event) != CUDA_ERROR_NOT_READY;
      }
      return query != nullptr && query(pending.event) != cudaErrorNotReady;
    };
    auto split = std::stable_partition(pending_.begin(), pending_.end(),
                                       [&](const PendingFree& p) { return !done(p); });
    ready.assign(split, pending_.end());
    pending_.erase(split, pending_.end());
    pending_count_.store(pending_.size(), std::memory_order_release);
  }
  RuntimeCallScope scope;
  for (const PendingFree& pending : ready) {
    if (wait) {
      if (auto synchronize = real_runtime().device_synchronize.get()) synchronize();
    }
    if (pending.driver_event) {
      const DriverApi* driver = driver_api(nullptr);
      if (driver && driver->event_destroy) driver->event_destroy(pending.event);
    } else if (auto destroy = real_runtime().event_destroy.get()) {
      destroy(pending.event);
    }
    unmap_now(pending.mapping);
  }
}

int Shim::memory_info(bool driver_layer, size_t* free, size_t* total) {
  int result = kNotInitialized;
  if (driver_layer) {
    const DriverApi* driver = driver_api(nullptr);
    if (driver && driver->mem_get_info) result = driver->mem_get_info(free, total);
  } else {
    RuntimeCallScope scope;
    if (auto fn = real_runtime().mem_get_info.get()) result = fn(free, total);
  }
  if (result != kSuccess || !redirecting_ || !config_.meminfo_includes_host || !free || !total) {
    return result;
  }
  auto [host_free, host_total] = host_budget();
  *free += host_free;
  *total += host_total;
  return result;
}

// Free and total host bytes the policy may still place, caps included.
std::pair<size_t, size_t> Shim::host_budget() const {
  std::vector<int> nodes = config_.numa_policy.nodes;
  if (config_.numa_policy.kind == NumaPolicyKind::kNearest ||
      config_.numa_policy.kind == NumaPolicyKind::kMostFree ||
      config_.numa_policy.kind == NumaPolicyKind::kPreferred) {
    nodes = topology_.node_ids();
  }
  std::map<int, NodeUsage> usage = table_.usage_by_node();
  size_t free = 0, total = 0;
  for (int node : nodes) {
    auto limit = config_.node_limits.find(node);
    size_t cap = limit == config_.node_limits.end() ? topology_.total_bytes(node) : limit->second;
    size_t used = usage[node].current_bytes;
    free += std::min(free_bytes_of_node(node), cap > used ? cap - used : 0);
    total += std::min(topology_.total_bytes(node), cap);
  }
  return {free, total};
}

}  // namespace egm
