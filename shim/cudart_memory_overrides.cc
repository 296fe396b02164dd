// The runtime's managed-memory calls and cudaPointerGetAttributes. Memory
// the shim does not own goes to the real runtime unchanged; the answers
// for the shim's own allocations come from shim/core (managed_calls,
// pointer_calls), the same as at the driver layer.
#include <cuda_runtime_api.h>

#include "shim/core/managed_calls.h"
#include "shim/core/pointer_calls.h"
#include "shim/core/real_runtime.h"
#include "shim/override_support.h"

namespace {

using egm::MemoryLocation;
using egm::RealFunction;

using AttachFn = cudaError_t (*)(cudaStream_t, void*, size_t, unsigned);
using PrefetchFn = cudaError_t (*)(const void*, size_t, cudaMemLocation, unsigned, cudaStream_t);
using PrefetchBatchFn = cudaError_t (*)(void**, size_t*, size_t, cudaMemLocation*, size_t*,
                                        size_t, unsigned long long, cudaStream_t);
using DiscardBatchFn = cudaError_t (*)(void**, size_t*, size_t, unsigned long long, cudaStream_t);
using AdviseFn = cudaError_t (*)(const void*, size_t, cudaMemoryAdvise, cudaMemLocation);
using RangeAttributeFn = cudaError_t (*)(void*, size_t, cudaMemRangeAttribute, const void*, size_t);
using RangeAttributesFn = cudaError_t (*)(void**, size_t*, cudaMemRangeAttribute*, size_t,
                                          const void*, size_t);
using PointerAttributesFn = cudaError_t (*)(cudaPointerAttributes*, const void*);

RealFunction<AttachFn> real_attach{"cudaStreamAttachMemAsync"};
RealFunction<AttachFn> real_attach_ptsz{"cudaStreamAttachMemAsync_ptsz"};
RealFunction<PrefetchFn> real_prefetch{"cudaMemPrefetchAsync"};
RealFunction<PrefetchFn> real_prefetch_ptsz{"cudaMemPrefetchAsync_ptsz"};
RealFunction<PrefetchBatchFn> real_prefetch_batch{"cudaMemPrefetchBatchAsync"};
RealFunction<PrefetchBatchFn> real_prefetch_batch_ptsz{"cudaMemPrefetchBatchAsync_ptsz"};
RealFunction<DiscardBatchFn> real_discard_batch{"cudaMemDiscardBatchAsync"};
RealFunction<DiscardBatchFn> real_discard_batch_ptsz{"cudaMemDiscardBatchAsync_ptsz"};
RealFunction<PrefetchBatchFn> real_discard_prefetch_batch{"cudaMemDiscardAndPrefetchBatchAsync"};
RealFunction<PrefetchBatchFn> real_discard_prefetch_batch_ptsz{
    "cudaMemDiscardAndPrefetchBatchAsync_ptsz"};
RealFunction<AdviseFn> real_advise{"cudaMemAdvise"};
RealFunction<RangeAttributeFn> real_range_attribute{"cudaMemRangeGetAttribute"};
RealFunction<RangeAttributesFn> real_range_attributes{"cudaMemRangeGetAttributes"};
RealFunction<PointerAttributesFn> real_pointer_attributes{"cudaPointerGetAttributes"};

static_assert(sizeof(cudaMemLocation) == sizeof(MemoryLocation));

// The real runtime function on `args` (its driver calls pass through).
template <typename Fn, typename... Args>
cudaError_t call_real(RealFunction<Fn>& function, Args... args) {
  egm::RuntimeCallScope scope;
  Fn real = function.get();
  return real != nullptr ? real(args...) : static_cast<cudaError_t>(egm::kNotInitialized);
}

MemoryLocation location_of(cudaMemLocation location) {
  return {static_cast<int>(location.type), location.id};
}

uintptr_t address(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer); }

cudaError_t attach(RealFunction<AttachFn>& real, cudaStream_t stream, void* pointer,
                   size_t length, unsigned flags) {
  if (auto result = egm::emulate_attach(address(pointer), length, flags)) {
    return static_cast<cudaError_t>(*result);
  }
  return call_real(real, stream, pointer, length, flags);
}

cudaError_t prefetch(RealFunction<PrefetchFn>& real, const void* pointer, size_t count,
                     cudaMemLocation location, unsigned flags, cudaStream_t stream) {
  if (auto result = egm::emulate_prefetch("cudaMemPrefetchAsync", address(pointer), count,
                                          location_of(location), flags)) {
    return static_cast<cudaError_t>(*result);
  }
  return call_real(real, pointer, count, location, flags, stream);
}

cudaError_t located_batch(const char* call, RealFunction<PrefetchBatchFn>& real, void** pointers,
                          size_t* sizes, size_t count, cudaMemLocation* locations, size_t* starts,
                          size_t location_count, unsigned long long flags, cudaStream_t stream) {
  auto rest_to_real = [&](const egm::Batch& rest) {
    return static_cast<int>(call_real(
        real, reinterpret_cast<void**>(const_cast<uintptr_t*>(rest.pointers)),
        const_cast<size_t*>(rest.sizes), rest.count,
        reinterpret_cast<cudaMemLocation*>(const_cast<MemoryLocation*>(rest.locations)),
        const_cast<size_t*>(rest.location_starts), rest.location_count, rest.flags, stream));
  };
  if (locations != nullptr) {
    egm::Batch batch =
        egm::batch_of(pointers, sizes, count, flags, locations, starts, location_count);
    if (auto result = egm::emulate_batch(call, batch, rest_to_real)) {
      return static_cast<cudaError_t>(*result);
    }
  }
  return call_real(real, pointers, sizes, count, locations, starts, location_count, flags, stream);
}

cudaError_t discard_batch(RealFunction<DiscardBatchFn>& real, void** pointers, size_t* sizes,
                          size_t count, unsigned long long flags, cudaStream_t stream) {
  auto rest_to_real = [&](const egm::Batch& rest) {
    return static_cast<int>(call_real(
        real, reinterpret_cast<void**>(const_cast<uintptr_t*>(rest.pointers)),
        const_cast<size_t*>(rest.sizes), rest.count, rest.flags, stream));
  };
  egm::Batch batch = egm::batch_of(pointers, sizes, count, flags);
  if (auto result = egm::emulate_batch("cudaMemDiscardBatchAsync", batch, rest_to_real)) {
    return static_cast<cudaError_t>(*result);
  }
  return call_real(real, pointers, sizes, count, flags, stream);
}

}  // namespace

extern "C" {

EGM_EXPORT cudaError_t cudaStreamAttachMemAsync(cudaStream_t stream, void* pointer, size_t length,
                                                unsigned int flags) {
  return attach(real_attach, stream, pointer, length, flags);
}

EGM_EXPORT cudaError_t cudaStreamAttachMemAsync_ptsz(cudaStream_t stream, void* pointer,
                                                     size_t length, unsigned int flags) {
  return attach(real_attach_ptsz, stream, pointer, length, flags);
}

EGM_EXPORT cudaError_t cudaMemPrefetchAsync(const void* pointer, size_t count,
                                            cudaMemLocation location, unsigned int flags,
                                            cudaStream_t stream) {
  return prefetch(real_prefetch, pointer, count, location, flags, stream);
}

EGM_EXPORT cudaError_t cudaMemPrefetchAsync_ptsz(const void* pointer, size_t count,
                                                 cudaMemLocation location, unsigned int flags,
                                                 cudaStream_t stream) {
  return prefetch(real_prefetch_ptsz, pointer, count, location, flags, stream);
}

EGM_EXPORT cudaError_t cudaMemPrefetchBatchAsync(void** pointers, size_t* sizes, size_t count,
                                                 cudaMemLocation* locations, size_t* starts,
                                                 size_t location_count, unsigned long long flags,
                                                 cudaStream_t stream) {
  return located_batch("cudaMemPrefetchBatchAsync", real_prefetch_batch, pointers, sizes, count,
                       locations, starts, location_count, flags, stream);
}

EGM_EXPORT cudaError_t cudaMemPrefetchBatchAsync_ptsz(void** pointers, size_t* sizes,
                                                      size_t count, cudaMemLocation* locations,
                                                      size_t* starts, size_t location_count,
                                                      unsigned long long flags,
                                                      cudaStream_t stream) {
  return located_batch("cudaMemPrefetchBatchAsync", real_prefetch_batch_ptsz, pointers, sizes,
                       count, locations, starts, location_count, flags, stream);
}

EGM_EXPORT cudaError_t cudaMemDiscardBatchAsync(void** pointers, size_t* sizes, size_t count,
                                                unsigned long long flags, cudaStream_t stream) {
  return discard_batch(real_discard_batch, pointers, sizes, count, flags, stream);
}

EGM_EXPORT cudaError_t cudaMemDiscardBatchAsync_ptsz(void** pointers, size_t* sizes, size_t count,
                                                     unsigned long long flags,
                                                     cudaStream_t stream) {
  return discard_batch(real_discard_batch_ptsz, pointers, sizes, count, flags, stream);
}

EGM_EXPORT cudaError_t cudaMemDiscardAndPrefetchBatchAsync(void** pointers, size_t* sizes,
                                                           size_t count,
                                                           cudaMemLocation* locations,
                                                           size_t* starts, size_t location_count,
                                                           unsigned long long flags,
                                                           cudaStream_t stream) {
  return located_batch("cudaMemDiscardAndPrefetchBatchAsync", real_discard_prefetch_batch,
                       pointers, sizes, count, locations, starts, location_count, flags, stream);
}

EGM_EXPORT cudaError_t cudaMemDiscardAndPrefetchBatchAsync_ptsz(
    void** pointers, size_t* sizes, size_t count, cudaMemLocation* locations, size_t* starts,
    size_t location_count, unsigned long long flags, cudaStream_t stream) {
  return located_batch("cudaMemDiscardAndPrefetchBatchAsync", real_discard_prefetch_batch_ptsz,
                       pointers, sizes, count, locations, starts, location_count, flags, stream);
}

EGM_EXPORT cudaError_t cudaMemAdvise(const void* pointer, size_t count, cudaMemoryAdvise advice,
                                     cudaMemLocation location) {
  if (auto result = egm::emulate_advise("cudaMemAdvise", address(pointer), count, advice,
                                        location_of(location))) {
    return static_cast<cudaError_t>(*result);
  }
  return call_real(real_advise, pointer, count, advice, location);
}

EGM_EXPORT cudaError_t cudaMemRangeGetAttribute(void* data, size_t data_size,
                                                cudaMemRangeAttribute attribute,
                                                const void* pointer, size_t count) {
  if (auto result =
          egm::emulate_range_attribute(address(pointer), count, attribute, data, data_size)) {
    return static_cast<cudaError_t>(*result);
  }
  return call_real(real_range_attribute, data, data_size, attribute, pointer, count);
}

EGM_EXPORT cudaError_t cudaMemRangeGetAttributes(void** data, size_t* data_sizes,
                                                 cudaMemRangeAttribute* attributes,
                                                 size_t attribute_count, const void* pointer,
                                                 size_t count) {
  static_assert(sizeof(cudaMemRangeAttribute) == sizeof(int));
  if (auto result = egm::emulate_range_attributes(address(pointer), count, data, data_sizes,
                                                  reinterpret_cast<const int*>(attributes),
                                                  attribute_count)) {
    return static_cast<cudaError_t>(*result);
  }
  return call_real(real_range_attributes, data, data_sizes, attributes, attribute_count, pointer,
                   count);
}

EGM_EXPORT cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes,
                                                const void* pointer) {
  cudaError_t result = call_real(real_pointer_attributes, attributes, pointer);
  return egm::runtime_pointer_attributes(attributes, pointer, result);
}

}  // extern "C"
