// The driver's managed-memory calls, pointer queries and stream-ordered
// free, every version libcuda exports. Memory the shim does not own goes
// to the real function unchanged; the answers for the shim's own
// allocations come from shim/core (managed_calls, pointer_calls).
#include <cstring>

#include "shim/core/managed_calls.h"
#include "shim/core/memory_queries.h"
#include "shim/core/pointer_calls.h"
#include "shim/driver_symbols.h"
#include "shim/override_support.h"

namespace {

using egm::DriverOverride;
using egm::MemoryLocation;
using egm::pass_through;

static_assert(sizeof(CUmemLocation) == sizeof(MemoryLocation) &&
              sizeof(CUdeviceptr) == sizeof(uintptr_t));

MemoryLocation location_of(CUmemLocation location) {
  return {static_cast<int>(location.type), location.id};
}

uintptr_t address(CUdeviceptr pointer) { return static_cast<uintptr_t>(pointer); }

// The shim's answer, if the call is the shim's to answer.
template <typename Emulate>
std::optional<int> answer(Emulate emulate) {
  if (!egm::driver_layer_is_ours()) return std::nullopt;
  return emulate();
}

CUresult prefetch(const char* call, DriverOverride which, CUdeviceptr pointer, size_t count,
                  CUmemLocation location, unsigned int flags, CUstream stream) {
  if (auto result = answer([&] {
        return egm::emulate_prefetch(call, address(pointer), count, location_of(location), flags);
      })) {
    return static_cast<CUresult>(*result);
  }
  return pass_through<decltype(&cuMemPrefetchAsync_v2)>(which, pointer, count, location, flags,
                                                        stream);
}

CUresult prefetch_v1(const char* call, DriverOverride which, CUdeviceptr pointer, size_t count,
                     CUdevice device, CUstream stream) {
  if (auto result = answer([&] {
        return egm::emulate_prefetch(call, address(pointer), count,
                                     egm::location_of_device(device), 0);
      })) {
    return static_cast<CUresult>(*result);
  }
  return pass_through<decltype(&cuMemPrefetchAsync)>(which, pointer, count, device, stream);
}

CUresult attach(DriverOverride which, CUstream stream, CUdeviceptr pointer, size_t length,
                unsigned int flags) {
  if (auto result = answer([&] { return egm::emulate_attach(address(pointer), length, flags); })) {
    return static_cast<CUresult>(*result);
  }
  return pass_through<decltype(&cuStreamAttachMemAsync)>(which, stream, pointer, length, flags);
}

// The batch calls with prefetch locations (prefetch, discard-and-prefetch).
CUresult located_batch(const char* call, DriverOverride which, CUdeviceptr* pointers,
                       size_t* sizes, size_t count, CUmemLocation* locations, size_t* starts,
                       size_t location_count, unsigned long long flags, CUstream stream) {
  using Fn = decltype(&cuMemPrefetchBatchAsync);
  auto real = [&](const egm::Batch& rest) {
    return static_cast<int>(pass_through<Fn>(
        which, reinterpret_cast<CUdeviceptr*>(const_cast<uintptr_t*>(rest.pointers)),
        const_cast<size_t*>(rest.sizes), rest.count,
        reinterpret_cast<CUmemLocation*>(const_cast<MemoryLocation*>(rest.locations)),
        const_cast<size_t*>(rest.location_starts), rest.location_count, rest.flags, stream));
  };
  if (locations != nullptr) {
    egm::Batch batch =
        egm::batch_of(pointers, sizes, count, flags, locations, starts, location_count);
    if (auto result = answer([&] { return egm::emulate_batch(call, batch, real); })) {
      return static_cast<CUresult>(*result);
    }
  }
  return pass_through<Fn>(which, pointers, sizes, count, locations, starts, location_count, flags,
                          stream);
}

CUresult discard_batch(DriverOverride which, CUdeviceptr* pointers, size_t* sizes, size_t count,
                       unsigned long long flags, CUstream stream) {
  using Fn = decltype(&cuMemDiscardBatchAsync);
  auto real = [&](const egm::Batch& rest) {
    return static_cast<int>(pass_through<Fn>(
        which, reinterpret_cast<CUdeviceptr*>(const_cast<uintptr_t*>(rest.pointers)),
        const_cast<size_t*>(rest.sizes), rest.count, rest.flags, stream));
  };
  egm::Batch batch = egm::batch_of(pointers, sizes, count, flags);
  if (auto result = answer([&] { return egm::emulate_batch("cuMemDiscardBatchAsync", batch, real); })) {
    return static_cast<CUresult>(*result);
  }
  return pass_through<Fn>(which, pointers, sizes, count, flags, stream);
}

CUresult free_async(DriverOverride which, CUdeviceptr pointer, CUstream stream, bool ptsz) {
  if (!egm::driver_layer_is_ours()) {
    return pass_through<decltype(&cuMemFreeAsync)>(which, pointer, stream);
  }
  return egm::Shim::instance().free_async_driver(pointer, stream, ptsz);
}

}  // namespace

extern "C" {

// ---- managed memory ----

EGM_EXPORT CUresult cuStreamAttachMemAsync(CUstream stream, CUdeviceptr pointer, size_t length,
                                           unsigned int flags) {
  return attach(DriverOverride::k_cuStreamAttachMemAsync, stream, pointer, length, flags);
}

EGM_EXPORT CUresult cuStreamAttachMemAsync_ptsz(CUstream stream, CUdeviceptr pointer,
                                                size_t length, unsigned int flags) {
  return attach(DriverOverride::k_cuStreamAttachMemAsync_ptsz, stream, pointer, length, flags);
}

EGM_EXPORT CUresult cuMemPrefetchAsync(CUdeviceptr pointer, size_t count, CUdevice device,
                                       CUstream stream) {
  return prefetch_v1("cuMemPrefetchAsync", DriverOverride::k_cuMemPrefetchAsync, pointer, count,
                     device, stream);
}

EGM_EXPORT CUresult cuMemPrefetchAsync_ptsz(CUdeviceptr pointer, size_t count, CUdevice device,
                                            CUstream stream) {
  return prefetch_v1("cuMemPrefetchAsync", DriverOverride::k_cuMemPrefetchAsync_ptsz, pointer,
                     count, device, stream);
}

EGM_EXPORT CUresult cuMemPrefetchAsync_v2(CUdeviceptr pointer, size_t count,
                                          CUmemLocation location, unsigned int flags,
                                          CUstream stream) {
  return prefetch("cuMemPrefetchAsync_v2", DriverOverride::k_cuMemPrefetchAsync_v2, pointer,
                  count, location, flags, stream);
}

EGM_EXPORT CUresult cuMemPrefetchAsync_v2_ptsz(CUdeviceptr pointer, size_t count,
                                               CUmemLocation location, unsigned int flags,
                                               CUstream stream) {
  return prefetch("cuMemPrefetchAsync_v2", DriverOverride::k_cuMemPrefetchAsync_v2_ptsz, pointer,
                  count, location, flags, stream);
}

EGM_EXPORT CUresult cuMemPrefetchBatchAsync(CUdeviceptr* pointers, size_t* sizes, size_t count,
                                            CUmemLocation* locations, size_t* starts,
                                            size_t location_count, unsigned long long flags,
                                            CUstream stream) {
  return located_batch("cuMemPrefetchBatchAsync", DriverOverride::k_cuMemPrefetchBatchAsync,
                       pointers, sizes, count, locations, starts, location_count, flags, stream);
}

EGM_EXPORT CUresult cuMemPrefetchBatchAsync_ptsz(CUdeviceptr* pointers, size_t* sizes,
                                                 size_t count, CUmemLocation* locations,
                                                 size_t* starts, size_t location_count,
                                                 unsigned long long flags, CUstream stream) {
  return located_batch("cuMemPrefetchBatchAsync", DriverOverride::k_cuMemPrefetchBatchAsync_ptsz,
                       pointers, sizes, count, locations, starts, location_count, flags, stream);
}

EGM_EXPORT CUresult cuMemDiscardBatchAsync(CUdeviceptr* pointers, size_t* sizes, size_t count,
                                           unsigned long long flags, CUstream stream) {
  return discard_batch(DriverOverride::k_cuMemDiscardBatchAsync, pointers, sizes, count, flags,
                       stream);
}

EGM_EXPORT CUresult cuMemDiscardBatchAsync_ptsz(CUdeviceptr* pointers, size_t* sizes,
                                                size_t count, unsigned long long flags,
                                                CUstream stream) {
  return discard_batch(DriverOverride::k_cuMemDiscardBatchAsync_ptsz, pointers, sizes, count,
                       flags, stream);
}

// Discarding is satisfied by keeping the contents: only the prefetch half
// has anything to check and record.
EGM_EXPORT CUresult cuMemDiscardAndPrefetchBatchAsync(CUdeviceptr* pointers, size_t* sizes,
                                                      size_t count, CUmemLocation* locations,
                                                      size_t* starts, size_t location_count,
                                                      unsigned long long flags, CUstream stream) {
  return located_batch("cuMemDiscardAndPrefetchBatchAsync",
                       DriverOverride::k_cuMemDiscardAndPrefetchBatchAsync, pointers, sizes, count,
                       locations, starts, location_count, flags, stream);
}

EGM_EXPORT CUresult cuMemDiscardAndPrefetchBatchAsync_ptsz(CUdeviceptr* pointers, size_t* sizes,
                                                           size_t count, CUmemLocation* locations,
                                                           size_t* starts, size_t location_count,
                                                           unsigned long long flags,
                                                           CUstream stream) {
  return located_batch("cuMemDiscardAndPrefetchBatchAsync",
                       DriverOverride::k_cuMemDiscardAndPrefetchBatchAsync_ptsz, pointers, sizes,
                       count, locations, starts, location_count, flags, stream);
}

EGM_EXPORT CUresult cuMemAdvise(CUdeviceptr pointer, size_t count, CUmem_advise advice,
                                CUdevice device) {
  if (auto result = answer([&] {
        return egm::emulate_advise("cuMemAdvise", address(pointer), count, advice,
                                   egm::location_of_device(device));
      })) {
    return static_cast<CUresult>(*result);
  }
  return pass_through<decltype(&cuMemAdvise)>(DriverOverride::k_cuMemAdvise, pointer, count,
                                              advice, device);
}

EGM_EXPORT CUresult cuMemAdvise_v2(CUdeviceptr pointer, size_t count, CUmem_advise advice,
                                   CUmemLocation location) {
  if (auto result = answer([&] {
        return egm::emulate_advise("cuMemAdvise_v2", address(pointer), count, advice,
                                   location_of(location));
      })) {
    return static_cast<CUresult>(*result);
  }
  return pass_through<decltype(&cuMemAdvise_v2)>(DriverOverride::k_cuMemAdvise_v2, pointer,
                                                 count, advice, location);
}

EGM_EXPORT CUresult cuMemRangeGetAttribute(void* data, size_t data_size,
                                           CUmem_range_attribute attribute, CUdeviceptr pointer,
                                           size_t count) {
  if (auto result = answer([&] {
        return egm::emulate_range_attribute(address(pointer), count, attribute, data, data_size);
      })) {
    return static_cast<CUresult>(*result);
  }
  return pass_through<decltype(&cuMemRangeGetAttribute)>(
      DriverOverride::k_cuMemRangeGetAttribute, data, data_size, attribute, pointer, count);
}

EGM_EXPORT CUresult cuMemRangeGetAttributes(void** data, size_t* data_sizes,
                                            CUmem_range_attribute* attributes,
                                            size_t attribute_count, CUdeviceptr pointer,
                                            size_t count) {
  static_assert(sizeof(CUmem_range_attribute) == sizeof(int));
  if (auto result = answer([&] {
        return egm::emulate_range_attributes(address(pointer), count, data, data_sizes,
                                             reinterpret_cast<const int*>(attributes),
                                             attribute_count);
      })) {
    return static_cast<CUresult>(*result);
  }
  return pass_through<decltype(&cuMemRangeGetAttributes)>(
      DriverOverride::k_cuMemRangeGetAttributes, data, data_sizes, attributes, attribute_count,
      pointer, count);
}

// ---- pointer queries ----

EGM_EXPORT CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute,
                                          CUdeviceptr pointer) {
  auto real = [&] {
    return pass_through<decltype(&cuPointerGetAttribute)>(DriverOverride::k_cuPointerGetAttribute,
                                                          data, attribute, pointer);
  };
  if (!egm::driver_layer_is_ours()) return real();
  return egm::pointer_attribute(data, attribute, pointer, real());
}

EGM_EXPORT CUresult cuPointerGetAttributes(unsigned int count, CUpointer_attribute* attributes,
                                           void** data, CUdeviceptr pointer) {
  auto real = [&] {
    return pass_through<decltype(&cuPointerGetAttributes)>(
        DriverOverride::k_cuPointerGetAttributes, count, attributes, data, pointer);
  };
  if (!egm::driver_layer_is_ours()) return real();
  return egm::pointer_attributes(count, attributes, data, pointer, real());
}

EGM_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, size_t* size, CUdeviceptr pointer) {
  if (egm::driver_layer_is_ours()) {
    if (std::optional<CUresult> result = egm::address_range(base, size, pointer)) return *result;
  }
  return pass_through<decltype(&cuMemGetAddressRange_v2)>(DriverOverride::k_cuMemGetAddressRange_v2,
                                                          base, size, pointer);
}

// ---- stream-ordered free: the runtime's cudaFreeAsync of a statically
// linked runtime arrives here, with the shim's pointers too ----

EGM_EXPORT CUresult cuMemFreeAsync(CUdeviceptr pointer, CUstream stream) {
  return free_async(DriverOverride::k_cuMemFreeAsync, pointer, stream, false);
}

EGM_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr pointer, CUstream stream) {
  return free_async(DriverOverride::k_cuMemFreeAsync_ptsz, pointer, stream, true);
}

}  // extern "C"
