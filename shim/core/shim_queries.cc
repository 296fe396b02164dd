// egm::Shim's answers about its own allocations: lookups for the pointer
// and managed-memory overrides, stream capture, and the driver's deferred
// free (cuMemFreeAsync).
#include <fmt/format.h>

#include "shim/core/real_runtime.h"
#include "shim/core/runtime_guard.h"
#include "shim/core/shim.h"

namespace egm {

std::optional<Mapping> Shim::allocation_at(uintptr_t address) const {
  if (forked_child_) return std::nullopt;
  return table_.find_containing(address);
}

RangeOwner Shim::range_owner(uintptr_t start, size_t count, Mapping* owner) const {
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

void Shim::log_emulated(const char* call, const Mapping& mapping, const std::string& details,
                        int result) {
  if (!log_.enabled(LogLevel::kDebug)) return;
  log_.write(LogLevel::kDebug, "managed-call",
             fmt::format("call={} id={} addr={:#x} {} result={}", call, mapping.id,
                         mapping.address, details, result));
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
  std::optional<Mapping> mapping = take_mapping(static_cast<uintptr_t>(pointer));
  if (!mapping) return real_free ? real_free(pointer, stream) : CUDA_ERROR_NOT_INITIALIZED;
  if (per_thread_stream && stream == nullptr) stream = CU_STREAM_PER_THREAD;
  CUevent event = nullptr;
  if (!driver->event_create || !driver->event_record || !driver->event_destroy ||
      driver->event_create(&event, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) {
    return static_cast<CUresult>(unmap_now(*mapping));  // no event: free at once, safely late
  }
  CUresult recorded = driver->event_record(event, stream);
  if (recorded != CUDA_SUCCESS) {
    driver->event_destroy(event);
    table_.restore(*mapping);  // still the caller's: a real cuMemFreeAsync would fail the same way
    return recorded;
  }
  std::lock_guard<std::mutex> lock(pending_mutex_);
  pending_.push_back({*mapping, event, /*driver_event=*/true});
  pending_count_.store(pending_.size(), std::memory_order_release);
  return CUDA_SUCCESS;
}

}  // namespace egm
