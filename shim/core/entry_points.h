// The one list of CUDA entry points egm-shim knows: those it overrides (the
// X-macros, which feed the overrides' lookup tables, cuGetProcAddress and
// dlsym mapping, and exports.lds's test) and the allocation-family ones it
// deliberately leaves to CUDA, each with the reason. A test parses cuda.h
// and cuda_runtime_api.h and fails on any allocation-family symbol that is
// in neither list, so that a new CUDA version cannot add one silently.
//
// Names are the exported symbols, versions included (cuMemAlloc_v2,
// cuMemPrefetchAsync_v2_ptsz); the X-macros only stringize (#) and paste
// (##) them, so cuda.h's renaming macros never touch them here.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

// libcuda functions the shim replaces, also where cuGetProcAddress or dlsym
// on libcuda hands them out. The unversioned names are the old versions.
#define EGM_DRIVER_OVERRIDES(X)                                              \
  /* allocation */                                                           \
  X(cuMemAlloc_v2) X(cuMemAllocManaged) X(cuMemAllocPitch_v2) X(cuMemFree_v2) \
  X(cuMemGetInfo_v2) X(cuMemFreeAsync) X(cuMemFreeAsync_ptsz)                \
  /* managed memory */                                                       \
  X(cuStreamAttachMemAsync) X(cuStreamAttachMemAsync_ptsz)                   \
  X(cuMemPrefetchAsync) X(cuMemPrefetchAsync_ptsz) X(cuMemPrefetchAsync_v2)  \
  X(cuMemPrefetchAsync_v2_ptsz) X(cuMemPrefetchBatchAsync)                   \
  X(cuMemPrefetchBatchAsync_ptsz) X(cuMemDiscardBatchAsync)                  \
  X(cuMemDiscardBatchAsync_ptsz) X(cuMemDiscardAndPrefetchBatchAsync)        \
  X(cuMemDiscardAndPrefetchBatchAsync_ptsz) X(cuMemAdvise) X(cuMemAdvise_v2) \
  X(cuMemRangeGetAttribute) X(cuMemRangeGetAttributes)                       \
  /* pointer queries */                                                      \
  X(cuPointerGetAttribute) X(cuPointerGetAttributes) X(cuMemGetAddressRange_v2) \
  /* the program's own VMM handles (cuMemCreate of device memory) */        \
  X(cuMemCreate) X(cuMemRelease) X(cuMemRetainAllocationHandle)              \
  X(cuMemGetAllocationPropertiesFromHandle)                                  \
  /* peer access, lookups */                                                 \
  X(cuCtxEnablePeerAccess) X(cuGetProcAddress) X(cuGetProcAddress_v2)         \
  /* inter-process memory handles (shim/core/ipc.h) */                       \
  X(cuIpcGetMemHandle) X(cuIpcOpenMemHandle) X(cuIpcOpenMemHandle_v2)        \
  X(cuIpcCloseMemHandle)                                                     \
  /* kernel launches (EGM_STAGING, shim/core/stager.h); the real ones are  \
     handed out while staging is off */                                      \
  X(cuLaunchKernel) X(cuLaunchKernel_ptsz) X(cuLaunchKernelEx)               \
  X(cuLaunchKernelEx_ptsz)

// libcudart functions the shim replaces.
#define EGM_RUNTIME_OVERRIDES(X)                                                 \
  X(cudaMalloc) X(cudaMallocManaged) X(cudaMallocPitch) X(cudaMallocAsync)       \
  X(cudaMallocAsync_ptsz) X(cudaFree) X(cudaFreeAsync) X(cudaFreeAsync_ptsz)     \
  X(cudaMemGetInfo) X(cudaDeviceEnablePeerAccess) X(cudaDeviceReset)             \
  X(cudaStreamAttachMemAsync) X(cudaStreamAttachMemAsync_ptsz)                   \
  X(cudaMemPrefetchAsync) X(cudaMemPrefetchAsync_ptsz) X(cudaMemPrefetchBatchAsync) \
  X(cudaMemPrefetchBatchAsync_ptsz) X(cudaMemDiscardBatchAsync)                  \
  X(cudaMemDiscardBatchAsync_ptsz) X(cudaMemDiscardAndPrefetchBatchAsync)        \
  X(cudaMemDiscardAndPrefetchBatchAsync_ptsz) X(cudaMemAdvise)                   \
  X(cudaMemRangeGetAttribute) X(cudaMemRangeGetAttributes) X(cudaPointerGetAttributes) \
  /* inter-process memory handles (shim/core/ipc.h) */                           \
  X(cudaIpcGetMemHandle) X(cudaIpcOpenMemHandle) X(cudaIpcCloseMemHandle)

// libcuda functions egm-shim and its tools call themselves, as X(member,
// symbol): the member name each tool's driver table gives the function, and
// the exported symbol, version included (cuDevicePrimaryCtxRelease_v2):
// cuda.h's renaming macros hide the version, and a table member is typed
// decltype(&::symbol), so a renamed-away old name would get the new type.
// Each table (shim/core/driver_api.h, tools/probe/cuda_driver.h,
// bench/driver_egm.h) declares and resolves its lists with
// EGM_DRIVER_MEMBER and its own resolver; kDriverCalls below and
// //tests/unit:entry_points_test check the lists against cuda.h.

// The EGM sequence: host NUMA memory -> reserve -> map -> set access, and
// back. The shim, egm-probe and egm-bench all run it.
#define EGM_DRIVER_EGM_SEQUENCE(X)                                              \
  X(device_get, cuDeviceGet) X(device_get_attribute, cuDeviceGetAttribute)      \
  X(get_error_name, cuGetErrorName)                                             \
  X(mem_get_allocation_granularity, cuMemGetAllocationGranularity)              \
  X(mem_create, cuMemCreate) X(mem_release, cuMemRelease)                       \
  X(mem_address_reserve, cuMemAddressReserve) X(mem_address_free, cuMemAddressFree) \
  X(mem_map, cuMemMap) X(mem_unmap, cuMemUnmap) X(mem_set_access, cuMemSetAccess)

// The shim's other calls: driver-layer requests and peer access (contexts),
// cuMemFreeAsync's deferred frees (events).
#define EGM_SHIM_DRIVER_CALLS(X)                                                \
  X(device_get_count, cuDeviceGetCount) X(ctx_push_current, cuCtxPushCurrent_v2) \
  X(ctx_pop_current, cuCtxPopCurrent_v2) X(ctx_get_device, cuCtxGetDevice)      \
  X(ctx_synchronize, cuCtxSynchronize) X(ctx_get_current, cuCtxGetCurrent)      \
  X(ctx_set_current, cuCtxSetCurrent) X(event_create, cuEventCreate)            \
  X(event_record, cuEventRecord) X(event_query, cuEventQuery)                   \
  X(event_destroy, cuEventDestroy_v2)

// The shim's IPC calls: a chunk's fd out, a peer's fd in (shim/core/ipc.h).
#define EGM_SHIM_IPC_DRIVER_CALLS(X)                                            \
  X(mem_export_to_shareable_handle, cuMemExportToShareableHandle)               \
  X(mem_import_from_shareable_handle, cuMemImportFromShareableHandle)

// Staging (shim/core/stager.h): a kernel's parameter layout, the launch
// stream's capture state, the copies into the window and back, the ring's
// waits, the write-back kernel's module.
#define EGM_SHIM_STAGING_DRIVER_CALLS(X)                                        \
  X(func_get_param_info, cuFuncGetParamInfo)                                    \
  X(kernel_get_param_info, cuKernelGetParamInfo)                                \
  X(stream_is_capturing, cuStreamIsCapturing)                                   \
  X(memcpy_dtod_async, cuMemcpyDtoDAsync_v2)                                    \
  X(stream_wait_event, cuStreamWaitEvent) X(module_load_data, cuModuleLoadData) \
  X(module_get_function, cuModuleGetFunction) X(module_unload, cuModuleUnload)    \
  X(func_get_name, cuFuncGetName)

// The real versions of overridden functions the shim's core calls by name;
// each must be in EGM_DRIVER_OVERRIDES (the resolver takes it from there).
#define EGM_SHIM_REAL_OVERRIDES(X)                                              \
  X(mem_alloc, cuMemAlloc_v2) X(mem_alloc_managed, cuMemAllocManaged)           \
  X(mem_alloc_pitch, cuMemAllocPitch_v2) X(mem_free, cuMemFree_v2)              \
  X(mem_get_info, cuMemGetInfo_v2) X(ctx_enable_peer_access, cuCtxEnablePeerAccess) \
  X(get_proc_address, cuGetProcAddress_v2) X(launch_kernel, cuLaunchKernel)      \
  X(launch_kernel_ex, cuLaunchKernelEx)

// egm-probe's other calls: driver and device identity, a primary context,
// copies that check the mapping.
#define EGM_PROBE_DRIVER_CALLS(X)                                               \
  X(init, cuInit) X(driver_get_version, cuDriverGetVersion)                     \
  X(device_get_count, cuDeviceGetCount) X(device_get_name, cuDeviceGetName)     \
  X(device_get_pci_bus_id, cuDeviceGetPCIBusId)                                 \
  X(primary_ctx_retain, cuDevicePrimaryCtxRetain)                               \
  X(primary_ctx_release, cuDevicePrimaryCtxRelease_v2)                          \
  X(ctx_set_current, cuCtxSetCurrent) X(memcpy_htod, cuMemcpyHtoD_v2)           \
  X(memcpy_dtoh, cuMemcpyDtoH_v2)

// egm-bench's other calls: where a pointer lives.
#define EGM_BENCH_DRIVER_CALLS(X)                                               \
  X(mem_retain_allocation_handle, cuMemRetainAllocationHandle)                  \
  X(mem_get_allocation_properties, cuMemGetAllocationPropertiesFromHandle)

// A driver table's member for X(member, symbol); the table's header
// includes cuda.h.
#define EGM_DRIVER_MEMBER(member, symbol) decltype(&::symbol) member = nullptr;

namespace egm {

// Indexes of EGM_DRIVER_OVERRIDES, in its order.
enum class DriverOverride : int {
#define EGM_DRIVER_OVERRIDE_ENUM(name) k_##name,
  EGM_DRIVER_OVERRIDES(EGM_DRIVER_OVERRIDE_ENUM)
#undef EGM_DRIVER_OVERRIDE_ENUM
  kCount
};

inline constexpr size_t kDriverOverrideCount = static_cast<size_t>(DriverOverride::kCount);

inline constexpr std::array<std::string_view, kDriverOverrideCount> kDriverOverrideNames = {
#define EGM_DRIVER_OVERRIDE_NAME(name) #name,
    EGM_DRIVER_OVERRIDES(EGM_DRIVER_OVERRIDE_NAME)
#undef EGM_DRIVER_OVERRIDE_NAME
};

inline constexpr std::string_view kRuntimeOverrideNames[] = {
#define EGM_RUNTIME_OVERRIDE_NAME(name) #name,
    EGM_RUNTIME_OVERRIDES(EGM_RUNTIME_OVERRIDE_NAME)
#undef EGM_RUNTIME_OVERRIDE_NAME
};

// Who calls a libcuda function of the lists above.
enum DriverCaller : unsigned {
  kCalledByShim = 1u << 0,
  kCalledByProbe = 1u << 1,
  kCalledByBench = 1u << 2,
};

// One row per list entry: the exported symbol (its version suffix, _v2,
// included), who calls it, and whether the shim also overrides it.
struct DriverCall {
  std::string_view member;  // the driver tables' name for it
  std::string_view symbol;
  unsigned callers;
  bool overridden;
};

constexpr bool is_driver_override(std::string_view name) {
  for (std::string_view listed : kDriverOverrideNames) {
    if (listed == name) return true;
  }
  return false;
}

inline constexpr DriverCall kDriverCalls[] = {
#define EGM_DRIVER_CALL_ALL(member, symbol) \
  {#member, #symbol, kCalledByShim | kCalledByProbe | kCalledByBench, is_driver_override(#symbol)},
#define EGM_DRIVER_CALL_SHIM(member, symbol) \
  {#member, #symbol, kCalledByShim, is_driver_override(#symbol)},
#define EGM_DRIVER_CALL_PROBE(member, symbol) \
  {#member, #symbol, kCalledByProbe, is_driver_override(#symbol)},
#define EGM_DRIVER_CALL_BENCH(member, symbol) \
  {#member, #symbol, kCalledByBench, is_driver_override(#symbol)},
    EGM_DRIVER_EGM_SEQUENCE(EGM_DRIVER_CALL_ALL)
    EGM_SHIM_DRIVER_CALLS(EGM_DRIVER_CALL_SHIM)
    EGM_SHIM_IPC_DRIVER_CALLS(EGM_DRIVER_CALL_SHIM)
    EGM_SHIM_STAGING_DRIVER_CALLS(EGM_DRIVER_CALL_SHIM)
    EGM_SHIM_REAL_OVERRIDES(EGM_DRIVER_CALL_SHIM)
    // The v1 cuGetProcAddress, by hand: cuda.h names only v2's type.
    {"get_proc_address_v1", "cuGetProcAddress", kCalledByShim,
     is_driver_override("cuGetProcAddress")},
    EGM_PROBE_DRIVER_CALLS(EGM_DRIVER_CALL_PROBE)
    EGM_BENCH_DRIVER_CALLS(EGM_DRIVER_CALL_BENCH)
#undef EGM_DRIVER_CALL_ALL
#undef EGM_DRIVER_CALL_SHIM
#undef EGM_DRIVER_CALL_PROBE
#undef EGM_DRIVER_CALL_BENCH
};

// The shim calls the real versions of EGM_SHIM_REAL_OVERRIDES through
// DriverApi::overridden, so each must be an override.
#define EGM_CHECK_REAL_OVERRIDE(member, symbol) \
  static_assert(is_driver_override(#symbol),    \
                #symbol " is in EGM_SHIM_REAL_OVERRIDES but not in EGM_DRIVER_OVERRIDES");
EGM_SHIM_REAL_OVERRIDES(EGM_CHECK_REAL_OVERRIDE)
#undef EGM_CHECK_REAL_OVERRIDE

// Why an allocation-family entry point goes to CUDA unchanged.
inline constexpr std::string_view kLegacy32Bit =
    "the pre-3.2 version with 32-bit device pointers: cannot address the shim's mappings";
inline constexpr std::string_view kPinnedHost =
    "pinned or registered host memory: already host memory";
inline constexpr std::string_view kArrays =
    "CUDA arrays (opaque texture layouts): not plain linear memory the shim can map";
inline constexpr std::string_view kExplicitPools =
    "an explicit memory pool: its properties (location, IPC handle types, release threshold) "
    "are the program's choice, and its frees go to the pool";
inline constexpr std::string_view kDriverStreamOrdered =
    "driver stream-ordered allocation: left to the device's pool (cudaMallocAsync is "
    "redirected at the runtime layer); cuMemFreeAsync recognises the shim's pointers";
inline constexpr std::string_view kGraphAllocations =
    "graph memory nodes: the graph owns the allocation's lifetime across launches";
inline constexpr std::string_view kIpcEvents =
    "inter-process event handles: events are never redirected";
inline constexpr std::string_view kMulticast = "multicast objects: NVLink multicast memory";
inline constexpr std::string_view kVirtualMemory =
    "the VMM calls the program makes itself: its own mappings, never the shim's (a handle "
    "cuMemCreate placed on a host node maps, exports and takes access grants as it is)";
inline constexpr std::string_view kGranularity =
    "the device's granularity stays the answer: cuMemCreate places a handle on a host node "
    "only when the node's granularity divides the device's";
inline constexpr std::string_view kDecompress = "hardware decompression: no allocation";
inline constexpr std::string_view kSetAttribute =
    "cuPointerSetAttribute (SYNC_MEMOPS): applies to the mapping as it is";
inline constexpr std::string_view kMalloc3D =
    "3D pitched allocation: not redirected (the driver's pitched call it may use is)";

struct PassedThrough {
  std::string_view name;
  std::string_view why;
};

inline constexpr PassedThrough kPassedThrough[] = {
    {"cuArray3DCreate", kArrays},
    {"cuArray3DCreate_v2", kArrays},
    {"cuArrayCreate", kArrays},
    {"cuArrayCreate_v2", kArrays},
    {"cuArrayDestroy", kArrays},
    {"cuGraphAddMemAllocNode", kGraphAllocations},
    {"cuGraphAddMemFreeNode", kGraphAllocations},
    {"cuGraphMemAllocNodeGetParams", kGraphAllocations},
    {"cuGraphMemFreeNodeGetParams", kGraphAllocations},
    {"cuIpcGetEventHandle", kIpcEvents},
    {"cuIpcOpenEventHandle", kIpcEvents},
    {"cuMemAddressFree", kVirtualMemory},
    {"cuMemAddressReserve", kVirtualMemory},
    {"cuMemAlloc", kLegacy32Bit},
    {"cuMemAllocAsync", kDriverStreamOrdered},
    {"cuMemAllocAsync_ptsz", kDriverStreamOrdered},
    {"cuMemAllocFromPoolAsync", kExplicitPools},
    {"cuMemAllocFromPoolAsync_ptsz", kExplicitPools},
    {"cuMemAllocHost", kPinnedHost},
    {"cuMemAllocHost_v2", kPinnedHost},
    {"cuMemAllocPitch", kLegacy32Bit},
    {"cuMemBatchDecompressAsync", kDecompress},
    {"cuMemBatchDecompressAsync_ptsz", kDecompress},
    {"cuMemExportToShareableHandle", kVirtualMemory},
    {"cuMemFree", kLegacy32Bit},
    {"cuMemFreeHost", kPinnedHost},
    {"cuMemGetAccess", kVirtualMemory},
    {"cuMemGetAddressRange", kLegacy32Bit},
    {"cuMemGetAllocationGranularity", kGranularity},
    {"cuMemGetDefaultMemPool", kExplicitPools},
    {"cuMemGetHandleForAddressRange", kVirtualMemory},
    {"cuMemGetInfo", kLegacy32Bit},
    {"cuMemGetMemPool", kExplicitPools},
    {"cuMemHostAlloc", kPinnedHost},
    {"cuMemHostGetDevicePointer", kPinnedHost},
    {"cuMemHostGetDevicePointer_v2", kPinnedHost},
    {"cuMemHostGetFlags", kPinnedHost},
    {"cuMemHostRegister", kPinnedHost},
    {"cuMemHostRegister_v2", kPinnedHost},
    {"cuMemHostUnregister", kPinnedHost},
    {"cuMemImportFromShareableHandle", kVirtualMemory},
    {"cuMemMap", kVirtualMemory},
    {"cuMemMapArrayAsync", kArrays},
    {"cuMemMapArrayAsync_ptsz", kArrays},
    {"cuMemPoolCreate", kExplicitPools},
    {"cuMemPoolDestroy", kExplicitPools},
    {"cuMemPoolExportPointer", kExplicitPools},
    {"cuMemPoolExportToShareableHandle", kExplicitPools},
    {"cuMemPoolGetAccess", kExplicitPools},
    {"cuMemPoolGetAttribute", kExplicitPools},
    {"cuMemPoolImportFromShareableHandle", kExplicitPools},
    {"cuMemPoolImportPointer", kExplicitPools},
    {"cuMemPoolSetAccess", kExplicitPools},
    {"cuMemPoolSetAttribute", kExplicitPools},
    {"cuMemPoolTrimTo", kExplicitPools},
    {"cuMemSetAccess", kVirtualMemory},
    {"cuMemSetMemPool", kExplicitPools},
    {"cuMemUnmap", kVirtualMemory},
    {"cuMipmappedArrayCreate", kArrays},
    {"cuMipmappedArrayDestroy", kArrays},
    {"cuMulticastAddDevice", kMulticast},
    {"cuMulticastBindAddr", kMulticast},
    {"cuMulticastBindMem", kMulticast},
    {"cuMulticastCreate", kMulticast},
    {"cuMulticastGetGranularity", kMulticast},
    {"cuMulticastUnbind", kMulticast},
    {"cuPointerSetAttribute", kSetAttribute},
    {"cudaDeviceGetDefaultMemPool", kExplicitPools},
    {"cudaDeviceGetMemPool", kExplicitPools},
    {"cudaDeviceGraphMemTrim", kGraphAllocations},
    {"cudaDeviceSetMemPool", kExplicitPools},
    {"cudaFreeArray", kArrays},
    {"cudaFreeHost", kPinnedHost},
    {"cudaFreeMipmappedArray", kArrays},
    {"cudaGraphAddMemAllocNode", kGraphAllocations},
    {"cudaGraphAddMemFreeNode", kGraphAllocations},
    {"cudaGraphMemAllocNodeGetParams", kGraphAllocations},
    {"cudaGraphMemFreeNodeGetParams", kGraphAllocations},
    {"cudaHostAlloc", kPinnedHost},
    {"cudaHostGetDevicePointer", kPinnedHost},
    {"cudaHostGetFlags", kPinnedHost},
    {"cudaHostRegister", kPinnedHost},
    {"cudaHostUnregister", kPinnedHost},
    {"cudaIpcGetEventHandle", kIpcEvents},
    {"cudaIpcOpenEventHandle", kIpcEvents},
    {"cudaMalloc3D", kMalloc3D},
    {"cudaMalloc3DArray", kArrays},
    {"cudaMallocArray", kArrays},
    {"cudaMallocFromPoolAsync", kExplicitPools},
    {"cudaMallocFromPoolAsync_ptsz", kExplicitPools},
    {"cudaMallocHost", kPinnedHost},
    {"cudaMallocMipmappedArray", kArrays},
    {"cudaMemPoolCreate", kExplicitPools},
    {"cudaMemPoolDestroy", kExplicitPools},
    {"cudaMemPoolExportPointer", kExplicitPools},
    {"cudaMemPoolExportToShareableHandle", kExplicitPools},
    {"cudaMemPoolGetAccess", kExplicitPools},
    {"cudaMemPoolGetAttribute", kExplicitPools},
    {"cudaMemPoolImportFromShareableHandle", kExplicitPools},
    {"cudaMemPoolImportPointer", kExplicitPools},
    {"cudaMemPoolSetAccess", kExplicitPools},
    {"cudaMemPoolSetAttribute", kExplicitPools},
    {"cudaMemPoolTrimTo", kExplicitPools},
};

// True if `name` is overridden at either layer, or listed as passed through.
constexpr bool is_listed_entry_point(std::string_view name) {
  for (std::string_view listed : kDriverOverrideNames) {
    if (listed == name) return true;
  }
  for (std::string_view listed : kRuntimeOverrideNames) {
    if (listed == name) return true;
  }
  for (const PassedThrough& passed : kPassedThrough) {
    if (passed.name == name) return true;
  }
  return false;
}

}  // namespace egm
