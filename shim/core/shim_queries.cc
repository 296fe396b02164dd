// egm::Shim's answers about its own allocations: lookups for the pointer
// and managed-memory overrides, stream capture, and the driver's deferred
// free (cuMemFreeAsync).
#include "shim/core/real_runtime.h"
#include "shim/core/runtime_guard.h"
#include "shim/core/shim.h"

namespace egm {
namespace {

// The driver's events, for cuMemFreeAsync's deferred frees.
EventOps::State query_driver_event(void* event) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr || driver->event_query == nullptr) return EventOps::State::kPending;
  switch (driver->event_query(static_cast<CUevent>(event))) {
    case CUDA_SUCCESS: return EventOps::State::kDone;
    case CUDA_ERROR_NOT_READY: return EventOps::State::kPending;
    // No longer an event (its context was destroyed, the driver is torn down).
    case CUDA_ERROR_INVALID_HANDLE:
    case CUDA_ERROR_INVALID_CONTEXT:
    case CUDA_ERROR_CONTEXT_IS_DESTROYED:
    case CUDA_ERROR_DEINITIALIZED: return EventOps::State::kGone;
    default: return EventOps::State::kDone;  // a broken context: its work will never run
  }
}

void destroy_driver_event(void* event) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver && driver->event_destroy) driver->event_destroy(static_cast<CUevent>(event));
}

constexpr EventOps kDriverEvents{query_driver_event, destroy_driver_event};

}  // namespace

std::optional<Allocation> Shim::allocation_at(uintptr_t address) const {
  if (forked_child_) return std::nullopt;
  return table_.find_containing(address);
}

RangeOwner Shim::range_owner(uintptr_t start, size_t count, Allocation* owner) const {
  if (forked_child_) return RangeOwner::kNone;
  return table_.find_range(start, count, owner);
}

int Shim::device_count() const {
  const DriverApi* driver = driver_api(nullptr);
  int count = 0;
  if (driver == nullptr || driver->device_get_count == nullptr ||
      driver->device_get_count(&count) != CUDA_SUCCESS) {
    return 0;
  }
  return count;
}

void Shim::log_emulated(const char* call, const Allocation& mapping, const std::string& details,
                        int result) {
  if (!log_.enabled(LogLevel::kDebug)) return;
  emit(events::managed_call(call, mapping, details, result));
}

// cudaMallocAsync while its stream captures a graph: the graph owns the
// allocation's lifetime (relaunches, teardown), so the real call serves it.
// A query that fails (the legacy stream while another captures, ...) also
// leaves the request to the real call, which reports what it reports.
bool Shim::captured(const Request& request) const {
  if (request.api != Api::kCudaMallocAsync) return false;
  RealRuntime& real = real_runtime();
  RuntimeCallScope scope;
  auto is_capturing =
      request.per_thread_stream ? real.stream_is_capturing_ptsz.get() : real.stream_is_capturing.get();
  if (is_capturing == nullptr) return false;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  return is_capturing(request.stream, &status) != cudaSuccess ||
         status != cudaStreamCaptureStatusNone;
}

CUresult Shim::free_async_driver(CUdeviceptr pointer, CUstream stream, bool per_thread_stream) {
  const DriverApi* driver = driver_api(nullptr);
  auto real_free = driver == nullptr ? nullptr
                   : per_thread_stream
                       ? driver->real<decltype(&cuMemFreeAsync)>(DriverOverride::k_cuMemFreeAsync_ptsz)
                       : driver->real<decltype(&cuMemFreeAsync)>(DriverOverride::k_cuMemFreeAsync);
  std::optional<Allocation> mapping = take_mapping(static_cast<uintptr_t>(pointer));
  if (!mapping) return real_free ? real_free(pointer, stream) : CUDA_ERROR_NOT_INITIALIZED;
  if (per_thread_stream && stream == nullptr) stream = CU_STREAM_PER_THREAD;
  CUevent event = nullptr;
  if (!driver->event_create || !driver->event_record || !driver->event_destroy ||
      driver->event_create(&event, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) {
    // No event: wait for the stream here, so that the memory is unused when unmapped.
    CUresult synced = driver->ctx_synchronize ? driver->ctx_synchronize() : CUDA_SUCCESS;
    if (synced != CUDA_SUCCESS) {
      table_.restore(*mapping);
      return synced;
    }
    return static_cast<CUresult>(unmap_now(*mapping));
  }
  CUresult recorded = driver->event_record(event, stream);
  if (recorded != CUDA_SUCCESS) {
    driver->event_destroy(event);
    table_.restore(*mapping);  // still the caller's: a real cuMemFreeAsync would fail the same way
    return recorded;
  }
  CUdevice event_device = mapping->device;
  if (driver->ctx_get_device) driver->ctx_get_device(&event_device);
  deferred_.add({*mapping, event, &kDriverEvents, static_cast<int>(event_device)});
  return CUDA_SUCCESS;
}

std::optional<Chunk> Shim::export_chunk(const Allocation& mapping) {
  if (forked_child_ || pool_ == nullptr) return std::nullopt;
  // Another process may write it from now on: never staged again.
  if (stager_ != nullptr) stager_->chunk_exported(mapping.chunk_id);
  return pool_->mark_exported(mapping.chunk_id);
}

void Shim::allocation_handle_retained(uintptr_t address) {
  if (stager_ == nullptr || forked_child_) return;
  if (std::optional<Allocation> mapping = table_.find_containing(address)) {
    stager_->chunk_exported(mapping->chunk_id);
  }
}

CUresult Shim::chunk_fd(uint64_t chunk_id, int* fd) {
  const DriverApi* driver = driver_api(nullptr);
  if (forked_child_ || pool_ == nullptr || driver == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  return pool_->export_fd(*driver, chunk_id, fd);
}

}  // namespace egm
