#include "shim/core/request.h"

#include "shim/core/driver_api.h"
#include "shim/core/vmm_sequence.h"
#include "shim/core/real_runtime.h"
#include "shim/core/runtime_guard.h"

namespace egm {
namespace {

int call_real_runtime(const Request& r) {
  RealRuntime& real = real_runtime();
  RuntimeCallScope scope;
  switch (r.api) {
    case Api::kCudaMalloc: {
      auto fn = real.malloc.get();
      return fn ? fn(r.pointer, r.size) : kNotInitialized;
    }
    case Api::kCudaMallocManaged: {
      auto fn = real.malloc_managed.get();
      return fn ? fn(r.pointer, r.size, r.flags) : kNotInitialized;
    }
    case Api::kCudaMallocAsync: {
      auto fn = r.per_thread_stream ? real.malloc_async_ptsz.get() : real.malloc_async.get();
      return fn ? fn(r.pointer, r.size, r.stream) : kNotInitialized;
    }
    case Api::kCudaMallocPitch: {
      auto fn = real.malloc_pitch.get();
      return fn ? fn(r.pointer, r.pitch, r.width, r.height) : kNotInitialized;
    }
    default: return kNotInitialized;
  }
}

int call_real_driver(const Request& r) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr) return kNotInitialized;
  auto* address = reinterpret_cast<CUdeviceptr*>(r.pointer);
  switch (r.api) {
    case Api::kCuMemAlloc:
      return driver->mem_alloc ? driver->mem_alloc(address, r.size) : kNotInitialized;
    case Api::kCuMemAllocManaged:
      return driver->mem_alloc_managed ? driver->mem_alloc_managed(address, r.size, r.flags)
                                       : kNotInitialized;
    case Api::kCuMemAllocPitch:
      return driver->mem_alloc_pitch
                 ? driver->mem_alloc_pitch(address, r.pitch, r.width, r.height, r.element_size)
                 : kNotInitialized;
    default: return kNotInitialized;
  }
}

}  // namespace

Request pitched_request(Api api, void** pointer, size_t* pitch, size_t width, size_t height,
                        unsigned element_size) {
  Request request;
  request.api = api;
  request.pointer = pointer;
  request.pitch = pitch;
  request.width = width;
  request.height = height;
  request.element_size = element_size;
  size_t row = round_up(width, kPitchAlignment);
  // 0 (left to the real call) when the size would not fit, or when the real
  // call refuses the arguments: no pitch to return, or (driver) an element
  // size other than 4, 8 or 16 bytes.
  bool driver_call = is_driver_api(api);
  bool valid = pitch != nullptr &&
               (!driver_call || element_size == 4 || element_size == 8 || element_size == 16);
  request.size =
      (!valid || row == 0 || (height != 0 && row > SIZE_MAX / height)) ? 0 : row * height;
  return request;
}

int call_real_allocation(const Request& request) {
  return is_driver_api(request.api) ? call_real_driver(request) : call_real_runtime(request);
}

}  // namespace egm
