// The free path of egm::Shim: cudaFree, cuMemFree, cudaFreeAsync (deferred
// until the stream's earlier work is done), and memory information.
#include "shim/core/clock.h"
#include "shim/core/deferred_frees.h"
#include "shim/core/host_topology.h"
#include "shim/core/real_runtime.h"
#include "shim/core/runtime_guard.h"
#include "shim/core/runtime_queries.h"
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

CUresult real_free_driver(CUdeviceptr pointer) {
  const DriverApi* driver = driver_api(nullptr);
  return driver && driver->mem_free ? driver->mem_free(pointer) : CUDA_ERROR_NOT_INITIALIZED;
}

EventOps::State query_runtime_event(void* event) {
  RuntimeCallScope scope;
  auto query = real_runtime().event_query.get();
  if (query == nullptr) return EventOps::State::kPending;
  cudaError_t before = last_error_now();
  cudaError_t result = query(static_cast<cudaEvent_t>(event));
  if (result == cudaSuccess) return EventOps::State::kDone;
  if (result == cudaErrorNotReady) return EventOps::State::kPending;
  forget_own_error(before);
  // No longer an event (its context was destroyed, or the runtime is
  // unloading): never destroyed, its handle may be a new event's by now.
  if (result == cudaErrorInvalidResourceHandle || result == cudaErrorCudartUnloading) {
    return EventOps::State::kGone;
  }
  return EventOps::State::kDone;  // a broken context: its stream work will never run
}

void destroy_runtime_event(void* event) {
  RuntimeCallScope scope;
  if (auto destroy = real_runtime().event_destroy.get()) destroy(static_cast<cudaEvent_t>(event));
}

constexpr EventOps kRuntimeEvents{query_runtime_event, destroy_runtime_event};

// The device `stream` belongs to, or the current device when the runtime
// cannot say (then the stream is on it, or the real call fails on it).
int device_of_stream(cudaStream_t stream) {
  if (std::optional<int> device = stream_device(stream)) return *device;
  RuntimeCallScope scope;
  int device = -1;
  if (auto get_device = real_runtime().get_device.get()) get_device(&device);
  return device;
}

// Makes `device` current for its lifetime, as the calls it wraps need.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    RealRuntime& real = real_runtime();
    auto get_device = real.get_device.get();
    set_device_ = real.set_device.get();
    if (device < 0 || !get_device || !set_device_ || get_device(&previous_) != cudaSuccess ||
        previous_ == device || set_device_(device) != cudaSuccess) {
      previous_ = -1;
    }
  }
  ~DeviceScope() {
    if (previous_ >= 0) set_device_(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  cudaError_t (*set_device_)(int) = nullptr;
  int previous_ = -1;
};

bool stream_is_capturing(cudaStream_t stream) {
  RuntimeCallScope scope;
  auto is_capturing = real_runtime().stream_is_capturing.get();
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaError_t before = last_error_now();
  if (!is_capturing || is_capturing(stream, &status) != cudaSuccess) {
    forget_own_error(before);
    return false;  // an invalid stream fails the event's record below, as the real call fails
  }
  return status != cudaStreamCaptureStatusNone;
}

}  // namespace

std::optional<Allocation> Shim::take_mapping(uintptr_t address) {
  if (address == 0 || forked_child_ || !table_.may_contain(address)) return std::nullopt;
  std::optional<Allocation> mapping = table_.remove(address);
  if (mapping && stager_ != nullptr) stager_->forget(*mapping);
  return mapping;
}

// cudaFree waits for the device before freeing; so must we: for the device
// the memory was made for, which may not be the current one.
cudaError_t Shim::synchronize_for_free(const Allocation& mapping) {
  RuntimeCallScope scope;
  RealRuntime& real = real_runtime();
  auto synchronize = real.device_synchronize.get();
  if (synchronize == nullptr) return cudaSuccess;
  cudaError_t result = synchronize();
  int current = -1;
  auto get_device = real.get_device.get();
  if (get_device && get_device(&current) == cudaSuccess && current != mapping.device) {
    DeviceScope on_owner(mapping.device);
    cudaError_t owner_result = synchronize();
    if (result == cudaSuccess) result = owner_result;
  }
  return result;
}

cudaError_t Shim::free_runtime(void* pointer) {
  // A forked child passes every call through: the parent's mappings and
  // deferred frees are not its to touch, and their locks may be held forever.
  if (forked_child_) return real_free(pointer);
  drain_pending_frees();
  std::optional<Allocation> mapping = take_mapping(reinterpret_cast<uintptr_t>(pointer));
  if (!mapping) return real_free(pointer);
  cudaError_t sync_error = synchronize_for_free(*mapping);
  int unmap_error = unmap_now(*mapping);
  return static_cast<cudaError_t>(unmap_error != kSuccess ? unmap_error : sync_error);
}

CUresult Shim::free_driver(CUdeviceptr pointer) {
  if (forked_child_) return real_free_driver(pointer);
  drain_pending_frees();
  const DriverApi* driver = driver_api(nullptr);
  std::optional<Allocation> mapping = take_mapping(static_cast<uintptr_t>(pointer));
  if (!mapping) return real_free_driver(pointer);
  CUresult sync_error = driver->ctx_synchronize ? driver->ctx_synchronize() : CUDA_SUCCESS;
  int unmap_error = unmap_now(*mapping);
  return static_cast<CUresult>(unmap_error != kSuccess ? unmap_error : sync_error);
}

cudaError_t Shim::free_async(void* pointer, cudaStream_t stream, bool per_thread_stream) {
  std::optional<Allocation> mapping = take_mapping(reinterpret_cast<uintptr_t>(pointer));
  RealRuntime& real = real_runtime();
  if (!mapping) {
    RuntimeCallScope scope;
    auto fn = per_thread_stream ? real.free_async_ptsz.get() : real.free_async.get();
    return fn ? fn(pointer, stream) : static_cast<cudaError_t>(kNotInitialized);
  }
  stream = effective_stream(stream, per_thread_stream);
  int device = device_of_stream(stream);
  if (stream_is_capturing(stream)) {
    // The free belongs to the graph being captured, which may run any number
    // of times later: no event can say when the memory is unused.
    deferred_.add({*mapping, nullptr, nullptr, device});
    if (!capture_noted_.exchange(true)) {
      note(
          "cudaFreeAsync during stream capture: the memory stays mapped until its device is "
          "reset or the process exits");
    }
    return cudaSuccess;
  }
  RuntimeCallScope scope;
  DeviceScope on_stream_device(device);  // an event is recorded on its own device's streams
  cudaEvent_t event = nullptr;
  auto create = real.event_create_with_flags.get();
  auto record = real.event_record.get();
  cudaError_t before = last_error_now();
  if (!create || !record || create(&event, cudaEventDisableTiming) != cudaSuccess) {
    forget_own_error(before);
    // No event: wait for the stream here, so that the memory is unused when unmapped.
    auto synchronize = real.stream_synchronize.get();
    cudaError_t synced = synchronize ? synchronize(stream) : cudaErrorInvalidValue;
    if (synced == cudaErrorInvalidResourceHandle) {
      table_.restore(*mapping);  // an invalid stream: the real call fails the same way
      return synced;
    }
    if (!synchronize) {
      if (auto device_synchronize = real.device_synchronize.get()) device_synchronize();
    }
    return static_cast<cudaError_t>(unmap_now(*mapping));
  }
  cudaError_t recorded = record(event, stream);
  if (recorded != cudaSuccess) {
    if (auto destroy = real.event_destroy.get()) destroy(event);
    table_.restore(*mapping);  // still the caller's: a real cudaFreeAsync would fail the same way
    return recorded;
  }
  deferred_.add({*mapping, event, &kRuntimeEvents, device});
  return cudaSuccess;
}

void Shim::device_reset(int device) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr || forked_child_) return;
  // The reset destroyed the device's events and stream work: those frees are done.
  std::vector<Allocation> released = deferred_.take_device(device);
  drain_pending_frees();
  std::vector<Allocation> live = table_.remove_device(device);
  if (stager_ != nullptr) {
    stager_->device_reset(device);  // the reset freed the window too
    for (const Allocation& mapping : live) stager_->forget(mapping);
  }
  released.insert(released.end(), live.begin(), live.end());
  for (const Allocation& mapping : released) unmap_now(mapping);
  pool_->trim(*driver, "device-reset");
  emit(events::device_reset(device, released.size()));
}

int Shim::unmap_now(const Allocation& mapping) {
  const DriverApi* driver = driver_api(nullptr);  // loaded: it mapped this pointer
  int64_t start = steady_us();
  std::optional<EgmFailure> failure = pool_->release(*driver, mapping);
  if (failure && failure->error == CUDA_ERROR_DEINITIALIZED) {
    return cudaErrorCudartUnloading;  // the driver is torn down (exit) and took the memory along
  }
  if (failure) {
    emit(events::free_error(mapping, failure->step, driver->error_name(failure->error)));
    return free_error_for(failure->error);
  }
  int64_t unmap_us = steady_us() - start;
  emit(events::unmap(mapping, wall_clock_us() - mapping.created_us, unmap_us,
                     mapping.in_block ? "slab" : "pool"));
  return kSuccess;
}

// Unmaps the deferred frees whose stream work is done.
void Shim::drain_pending_frees() {
  if (forked_child_ || deferred_.count() == 0) return;
  for (const Allocation& mapping : deferred_.take_finished()) unmap_now(mapping);
}

void Shim::finish_frees_before_exit() { drain_pending_frees(); }

int Shim::memory_info(bool driver_layer, size_t* free, size_t* total) {
  int result = kNotInitialized;
  if (driver_layer) {
    const DriverApi* driver = driver_api(nullptr);
    if (driver && driver->mem_get_info) result = driver->mem_get_info(free, total);
  } else {
    RuntimeCallScope scope;
    if (auto fn = real_runtime().mem_get_info.get()) result = fn(free, total);
  }
  if (result != kSuccess || !redirecting_ || forked_child_ || !config_.meminfo_includes_host ||
      !free || !total) {
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
  return budget_.room(nodes, free_bytes_of_node,
                      [this](int node) { return topology_.total_bytes(node); });
}

}  // namespace egm
