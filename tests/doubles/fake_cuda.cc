// Fake libcuda.so.1 for CPU-only tests.
//
// The virtual memory management (VMM) calls behave like the real driver's on
// host memory: cuMemCreate backs a handle with a memfd, cuMemAddressReserve
// reserves PROT_NONE address space, cuMemMap maps the memfd there still
// PROT_NONE, and only cuMemSetAccess makes it readable and writable. So a
// caller that forgets (part of) cuMemSetAccess gets a real SIGSEGV, and one
// that forgets an unmap/release/free shows up in the live counts.
//
// The classic allocations (cuMemAlloc, cuMemAllocManaged, cuMemAllocPitch)
// are plain read-write host memory, counted apart from the VMM objects; all
// but managed memory are charged against FAKE_CUDA_DEVICE_MEMORY, which
// cuMemGetInfo reports. cuGetProcAddress hands out the fake's own functions
// (the library is linked -Bsymbolic-functions, so that these are the very
// addresses dlsym finds, never an interposer's).
//
// Managed memory keeps the hints cuMemAdvise and cuMemPrefetchAsync set, per
// CPU page as the real driver does (ranges rounded out to pages), and reads
// them back through cuMemRangeGetAttribute(s) as what every page of the
// queried range has in common; the managed calls accept
// cuMemAllocManaged memory only (device memory, VMM mappings, unknown or
// partly-covered ranges: CUDA_ERROR_INVALID_VALUE). Pointer queries answer
// cuMemAlloc-family memory as device (or managed) memory and VMM mappings as
// host memory, as the real driver does for host-placed VMM memory. Streams,
// events, launches and modules are fake_launch.cc's (stream-ordered).
//
// Settings (read on every call): FAKE_CUDA_GRANULARITY (bytes, default
// 2 MiB), FAKE_CUDA_NUMA_NODES (default 1), FAKE_CUDA_HOST_NUMA_ID (default
// 0), FAKE_CUDA_HOST_NUMA_IDS (per device, e.g. "0,1"; devices past the end
// of the list get FAKE_CUDA_HOST_NUMA_ID), FAKE_CUDA_DEVICE_COUNT (default
// 1), FAKE_CUDA_DEVICE_MEMORY (bytes, default 80 GiB), FAKE_CUDA_FAIL
// (fail_injection.h).
//
// Access follows the driver's rules: each cuMemSetAccess descriptor sets the
// access of its own location (the host, or one device) and leaves the other
// locations as they were, so a later grant to a peer GPU keeps the host's
// and the owner's access.
#include <cuda.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <vector>

#include "tests/doubles/fail_injection.h"
#include "tests/doubles/fake_control.h"
#include "tests/doubles/fake_driver_internal.h"
#include "tests/doubles/fake_env.h"
#include "tests/doubles/host_record.h"

// cuda.h maps the name to cuGetProcAddress_v2; the v1 entry point exists too.
#undef cuGetProcAddress
extern "C" CUresult cuGetProcAddress(const char* symbol, void** function, int cuda_version,
                                     cuuint64_t flags);
// The old versions cuda.h renames away (cuMemAdvise -> cuMemAdvise_v2).
extern "C" CUresult cuMemPrefetchAsync_v1(CUdeviceptr, size_t, CUdevice, CUstream)
    __asm__("cuMemPrefetchAsync");
extern "C" CUresult cuIpcOpenMemHandle_v1(CUdeviceptr*, CUipcMemHandle, unsigned int)
    __asm__("cuIpcOpenMemHandle");
extern "C" CUresult cuMemAdvise_v1(CUdeviceptr, size_t, CUmem_advise, CUdevice)
    __asm__("cuMemAdvise");

namespace {

constexpr long kDefaultGranularity = 2L << 20;
constexpr int kDriverVersion = 13000;
constexpr const char* kDeviceName = "Fake CUDA Device (CPU test double)";
constexpr long kDefaultDeviceMemory = 80L << 30;
constexpr size_t kPitchAlignment = 512;

struct MemoryObject {
  int fd = -1;
  size_t size = 0;
  bool released = false;  // cuMemRelease'd; the memory lives on while mapped
  int mappings = 0;
  bool shareable = false;  // created with CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, or imported
  int references = 1;           // cuMemCreate and cuMemRetainAllocationHandle, less releases
  CUmemAllocationProp prop{};   // as created
  size_t charged = 0;           // device-located objects: bytes of the device's memory
  bool host = false;  // HOST_NUMA: counted in FAKE_CUDA_HOST_RECORD
};

constexpr int kMaxDevices = 64;  // devices with access are kept as bits of a uint64_t

struct Mapping {
  size_t size = 0;
  CUmemGenericAllocationHandle handle = 0;
  bool host_read_write = false;
  uint64_t devices_read_write = 0;  // bit d: device d has read-write access
};

// One page's hints, as cuMemAdvise and cuMemPrefetchAsync set them.
struct Hints {
  bool read_mostly = false;
  CUmemLocation preferred{CU_MEM_LOCATION_TYPE_INVALID, 0};
  CUmemLocation last_prefetch{CU_MEM_LOCATION_TYPE_INVALID, 0};
  std::vector<int> accessed_by;  // device ordinals, CU_DEVICE_CPU for the host
};

// A cuMemAlloc-family allocation.
struct PlainAllocation {
  size_t length = 0;   // bytes mapped
  size_t charged = 0;  // bytes counted against the device memory (0 for managed memory)
  size_t size = 0;     // bytes requested
  bool managed = false;
  CUcontext context = nullptr;
  std::vector<Hints> pages;  // managed memory: per CPU page, made on the first hint
};

struct DriverState {
  std::mutex mutex;
  std::map<uintptr_t, PlainAllocation> allocations;  // start -> allocation
  size_t charged_bytes = 0;
  std::map<CUmemGenericAllocationHandle, MemoryObject> objects;
  std::map<uintptr_t, size_t> reservations;  // start -> size
  std::map<uintptr_t, Mapping> mappings;     // start -> mapping
  CUmemGenericAllocationHandle next_handle = 0xfa4e0001;
};

// Never destroyed: the shim may free memory while the process exits.
DriverState& state() {
  static DriverState* driver = new DriverState();
  return *driver;
}

fake::FailureInjector& injector() {
  static fake::FailureInjector* failures =
      new fake::FailureInjector("FAKE_CUDA_FAIL", CUDA_ERROR_OUT_OF_MEMORY);
  return *failures;
}

// Counts the call; the injected failure code, or CUDA_SUCCESS to go on.
CUresult injected_failure(std::string_view function) {
  return static_cast<CUresult>(injector().on_call(function));
}

size_t granularity() {
  return static_cast<size_t>(fake::env_number("FAKE_CUDA_GRANULARITY", kDefaultGranularity));
}

// FAKE_CUDA_HOST_GRANULARITY: host NUMA nodes' granularity (default: the device's).
size_t granularity_of(const CUmemLocation& location) {
  if (location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
    return static_cast<size_t>(
        fake::env_number("FAKE_CUDA_HOST_GRANULARITY", static_cast<long>(granularity())));
  }
  return granularity();
}

int device_count() { return static_cast<int>(fake::env_number("FAKE_CUDA_DEVICE_COUNT", 1)); }

int host_numa_node_count() { return static_cast<int>(fake::env_number("FAKE_CUDA_NUMA_NODES", 1)); }

// Entry `device` of FAKE_CUDA_HOST_NUMA_IDS ("0,1,..."), or FAKE_CUDA_HOST_NUMA_ID
// when the list is unset or shorter; a malformed list aborts, as env_number does.
int host_numa_id_of(int device) {
  long fallback = fake::env_number("FAKE_CUDA_HOST_NUMA_ID", 0);
  const char* list = std::getenv("FAKE_CUDA_HOST_NUMA_IDS");
  if (list == nullptr || *list == '\0') return static_cast<int>(fallback);
  const char* next = list;
  for (int index = 0; *next != '\0'; ++index) {
    char* end = nullptr;
    long node = std::strtol(next, &end, 10);
    if (end == next || (*end != ',' && *end != '\0')) {
      std::fprintf(stderr, "fake CUDA: FAKE_CUDA_HOST_NUMA_IDS=\"%s\" is not a list of numbers\n",
                   list);
      std::abort();
    }
    if (index == device) return static_cast<int>(node);
    next = *end == ',' ? end + 1 : end;
  }
  return static_cast<int>(fallback);
}

bool is_multiple_of(size_t value, size_t unit) { return unit != 0 && value % unit == 0; }

bool is_valid_device(int ordinal) { return ordinal >= 0 && ordinal < device_count(); }

// Where cuMemCreate may place memory: a device or a host NUMA node.
bool is_valid_allocation_location(const CUmemLocation& location) {
  switch (location.type) {
    case CU_MEM_LOCATION_TYPE_DEVICE: return is_valid_device(location.id);
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
      return location.id >= 0 && location.id < host_numa_node_count();
    default: return false;
  }
}

// Shareable handles: POSIX fds only (the memfd itself), unless
// FAKE_CUDA_NO_SHAREABLE=1 (a driver or node that cannot export).
CUresult refused_handle_types(CUmemAllocationHandleType types) {
  if (types == CU_MEM_HANDLE_TYPE_NONE) return CUDA_SUCCESS;
  if (types != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_INVALID_VALUE;
  return fake::env_number("FAKE_CUDA_NO_SHAREABLE", 0) != 0 ? CUDA_ERROR_NOT_SUPPORTED
                                                             : CUDA_SUCCESS;
}

bool is_valid_allocation_prop(const CUmemAllocationProp* prop) {
  return prop != nullptr && prop->type == CU_MEM_ALLOCATION_TYPE_PINNED &&
         is_valid_allocation_location(prop->location);
}

bool is_host_location(CUmemLocationType type) {
  return type == CU_MEM_LOCATION_TYPE_HOST || type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
         type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT;
}

bool is_valid_access_location(const CUmemLocation& location) {
  if (location.type == CU_MEM_LOCATION_TYPE_DEVICE) return is_valid_device(location.id);
  if (location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA) {
    return location.id >= 0 && location.id < host_numa_node_count();
  }
  return is_host_location(location.type);
}

bool is_valid_access_flags(CUmemAccess_flags flags) {
  return flags == CU_MEM_ACCESS_FLAGS_PROT_NONE || flags == CU_MEM_ACCESS_FLAGS_PROT_READ ||
         flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
}

// The reservation that wholly contains [start, start + size), if any.
bool lies_in_one_reservation(const DriverState& driver, uintptr_t start, size_t size) {
  auto it = driver.reservations.upper_bound(start);
  if (it == driver.reservations.begin()) return false;
  --it;
  return start >= it->first && start + size <= it->first + it->second;
}

bool overlaps_a_mapping(const DriverState& driver, uintptr_t start, size_t size) {
  auto it = driver.mappings.lower_bound(start + size);  // first mapping starting after the range
  if (it == driver.mappings.begin()) return false;
  --it;  // the last mapping starting before the range's end
  return it->first + it->second.size > start;
}

bool has_mapping_inside(const DriverState& driver, uintptr_t start, size_t size) {
  auto it = driver.mappings.lower_bound(start);
  return it != driver.mappings.end() && it->first < start + size;
}

using MappingIterator = std::map<uintptr_t, Mapping>::iterator;

// The mappings that exactly tile [start, start + size) with no gap and none
// sticking out; empty if the range is not tiled that way.
std::vector<MappingIterator> mappings_tiling(DriverState& driver, uintptr_t start, size_t size) {
  std::vector<MappingIterator> tiles;
  uintptr_t next = start;
  for (auto it = driver.mappings.find(start); it != driver.mappings.end() && it->first == next;
       ++it) {
    tiles.push_back(it);
    next += it->second.size;
    if (next >= start + size) break;
  }
  if (next != start + size) tiles.clear();
  return tiles;
}

// The mapping holding addr, or end().
MappingIterator mapping_holding(DriverState& driver, uintptr_t addr) {
  auto it = driver.mappings.upper_bound(addr);
  if (it == driver.mappings.begin()) return driver.mappings.end();
  --it;
  return addr < it->first + it->second.size ? it : driver.mappings.end();
}

void destroy_if_unused(DriverState& driver, CUmemGenericAllocationHandle handle) {
  auto it = driver.objects.find(handle);
  if (it == driver.objects.end() || !it->second.released || it->second.mappings > 0) return;
  close(it->second.fd);
  driver.charged_bytes -= it->second.charged;
  if (it->second.host) fake::record_host_bytes(-static_cast<int64_t>(it->second.size));
  driver.objects.erase(it);
}

// Reserves `size` bytes aligned to `alignment` (a power of two): reserves
// more, then trims the unaligned head and the tail.
void* reserve_aligned(size_t size, size_t alignment) {
  size_t padded = size + alignment;
  void* raw = mmap(nullptr, padded, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (begin + alignment - 1) & ~(uintptr_t{alignment} - 1);
  if (aligned > begin) munmap(raw, aligned - begin);
  uintptr_t tail = aligned + size;
  if (begin + padded > tail) munmap(reinterpret_cast<void*>(tail), begin + padded - tail);
  return reinterpret_cast<void*>(aligned);
}

// Puts inaccessible anonymous memory back over [start, start + size), so an
// unmapped range stays reserved (and faults) as on a GPU.
bool make_inaccessible_placeholder(uintptr_t start, size_t size) {
  void* placeholder = mmap(reinterpret_cast<void*>(start), size, PROT_NONE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  return placeholder != MAP_FAILED;
}

uint64_t device_bit(int device) { return uint64_t{1} << device; }

// Applies the descriptors to one mapping: each sets its own location's
// access; the locations it does not name keep theirs.
void apply_access(Mapping& mapping, const CUmemAccessDesc* desc, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    bool read_write = desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    if (is_host_location(desc[i].location.type)) mapping.host_read_write = read_write;
    if (desc[i].location.type == CU_MEM_LOCATION_TYPE_DEVICE) {
      uint64_t bit = device_bit(desc[i].location.id);
      mapping.devices_read_write =
          read_write ? mapping.devices_read_write | bit : mapping.devices_read_write & ~bit;
    }
  }
}

bool grants_read_only(const CUmemAccessDesc* desc, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READ) return true;
  }
  return false;
}

// The CPU stands in for every location: the pages are read-write while any
// location may write them.
int protection_for(const Mapping& mapping, bool read_only_granted) {
  if (mapping.host_read_write || mapping.devices_read_write != 0) return PROT_READ | PROT_WRITE;
  return read_only_granted ? PROT_READ : PROT_NONE;
}

struct ErrorText {
  CUresult code;
  const char* name;
  const char* text;
};

constexpr ErrorText kErrors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_ALREADY_MAPPED, "CUDA_ERROR_ALREADY_MAPPED", "resource already mapped"},
    {CUDA_ERROR_NOT_MAPPED, "CUDA_ERROR_NOT_MAPPED", "resource not mapped"},
    {CUDA_ERROR_OPERATING_SYSTEM, "CUDA_ERROR_OPERATING_SYSTEM", "OS call failed"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS",
     "an illegal memory access was encountered"},
    {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED",
     "peer access is already enabled"},
    {CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED",
     "peer access has not been enabled"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
    {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
     "operation not permitted when stream is capturing"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

const ErrorText* find_error(CUresult code) {
  for (const ErrorText& error : kErrors) {
    if (error.code == code) return &error;
  }
  return nullptr;
}

// 1 when the mapping holding addr passes `granted`, 0 when not, -1 when none holds it.
template <typename Predicate>
int access_granted(const void* addr, Predicate granted) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = mapping_holding(driver, reinterpret_cast<uintptr_t>(addr));
  if (it == driver.mappings.end()) return -1;
  return granted(it->second) ? 1 : 0;
}

size_t device_memory() {
  return static_cast<size_t>(fake::env_number("FAKE_CUDA_DEVICE_MEMORY", kDefaultDeviceMemory));
}

size_t free_device_memory(const DriverState& driver) {
  size_t total = device_memory();
  return driver.charged_bytes < total ? total - driver.charged_bytes : 0;
}

size_t round_up(size_t value, size_t unit) { return (value + unit - 1) / unit * unit; }

// Plain read-write host memory standing in for device memory; `charge`d
// allocations fail with CUDA_ERROR_OUT_OF_MEMORY beyond the free memory.
CUresult allocate_plain(CUdeviceptr* pointer, size_t size, bool charge, bool managed = false) {
  if (pointer == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  if (charge && size > free_device_memory(driver)) return CUDA_ERROR_OUT_OF_MEMORY;
  size_t length = round_up(size, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  void* memory = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
  size_t charged = charge ? size : 0;
  CUcontext context = nullptr;
  cuCtxGetCurrent(&context);
  driver.allocations[reinterpret_cast<uintptr_t>(memory)] =
      PlainAllocation{length, charged, size, managed, context, {}};
  driver.charged_bytes += charged;
  *pointer = reinterpret_cast<CUdeviceptr>(memory);
  return CUDA_SUCCESS;
}

CUresult free_plain(CUdeviceptr pointer) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = driver.allocations.find(static_cast<uintptr_t>(pointer));
  if (it == driver.allocations.end()) return CUDA_ERROR_INVALID_VALUE;
  munmap(reinterpret_cast<void*>(it->first), it->second.length);
  driver.charged_bytes -= it->second.charged;
  driver.allocations.erase(it);
  return CUDA_SUCCESS;
}

std::map<uintptr_t, PlainAllocation>::iterator plain_holding(DriverState& driver, uintptr_t ptr);
CUresult pointer_attribute(DriverState& driver, void* data, CUpointer_attribute attribute,
                           CUdeviceptr ptr, bool strict);

// One version of a driver function, as cuGetProcAddress finds it.
struct ProcEntry {
  const char* name;  // the base name callers ask for
  int since;         // the CUDA version that introduced this version (1000 * major + 10 * minor)
  void* function;
};

template <typename Fn>
void* address_of(Fn* function) {
  return reinterpret_cast<void*>(function);
}

const std::vector<ProcEntry>& proc_entries() {
  static const auto* entries = new std::vector<ProcEntry>{
      {"cuInit", 2000, address_of(&cuInit)},
      {"cuDriverGetVersion", 2020, address_of(&cuDriverGetVersion)},
      {"cuDeviceGetCount", 2000, address_of(&cuDeviceGetCount)},
      {"cuDeviceGet", 2000, address_of(&cuDeviceGet)},
      {"cuDeviceGetAttribute", 2000, address_of(&cuDeviceGetAttribute)},
      {"cuDeviceGetName", 2000, address_of(&cuDeviceGetName)},
      {"cuCtxGetDevice", 2000, address_of(&cuCtxGetDevice)},
      {"cuCtxSynchronize", 2000, address_of(&cuCtxSynchronize)},
      {"cuGetErrorName", 6000, address_of(&cuGetErrorName)},
      {"cuGetErrorString", 6000, address_of(&cuGetErrorString)},
      {"cuMemGetAllocationGranularity", 10020, address_of(&cuMemGetAllocationGranularity)},
      {"cuMemCreate", 10020, address_of(&cuMemCreate)},
      {"cuMemRelease", 10020, address_of(&cuMemRelease)},
      {"cuMemRetainAllocationHandle", 11000, address_of(&cuMemRetainAllocationHandle)},
      {"cuMemGetAllocationPropertiesFromHandle", 10020,
       address_of(&cuMemGetAllocationPropertiesFromHandle)},
      {"cuMemAddressReserve", 10020, address_of(&cuMemAddressReserve)},
      {"cuMemAddressFree", 10020, address_of(&cuMemAddressFree)},
      {"cuMemMap", 10020, address_of(&cuMemMap)},
      {"cuMemUnmap", 10020, address_of(&cuMemUnmap)},
      {"cuMemSetAccess", 10020, address_of(&cuMemSetAccess)},
      {"cuMemGetAddressRange", 3020, address_of(&cuMemGetAddressRange_v2)},
      {"cuPointerGetAttribute", 4000, address_of(&cuPointerGetAttribute)},
      {"cuMemAlloc", 3020, address_of(&cuMemAlloc_v2)},
      {"cuMemAllocManaged", 6000, address_of(&cuMemAllocManaged)},
      {"cuMemAllocPitch", 3020, address_of(&cuMemAllocPitch_v2)},
      {"cuMemFree", 3020, address_of(&cuMemFree_v2)},
      {"cuMemGetInfo", 3020, address_of(&cuMemGetInfo_v2)},
      {"cuDeviceCanAccessPeer", 4000, address_of(&cuDeviceCanAccessPeer)},
      {"cuDevicePrimaryCtxRetain", 7000, address_of(&cuDevicePrimaryCtxRetain)},
      {"cuCtxSetCurrent", 4000, address_of(&cuCtxSetCurrent)},
      {"cuCtxGetCurrent", 4000, address_of(&cuCtxGetCurrent)},
      {"cuCtxPushCurrent", 4000, address_of(&cuCtxPushCurrent_v2)},
      {"cuCtxPopCurrent", 4000, address_of(&cuCtxPopCurrent_v2)},
      {"cuCtxEnablePeerAccess", 4000, address_of(&cuCtxEnablePeerAccess)},
      {"cuCtxDisablePeerAccess", 4000, address_of(&cuCtxDisablePeerAccess)},
      {"cuPointerGetAttributes", 7000, address_of(&cuPointerGetAttributes)},
      {"cuStreamAttachMemAsync", 6000, address_of(&cuStreamAttachMemAsync)},
      {"cuMemPrefetchAsync", 8000, address_of(&cuMemPrefetchAsync_v1)},
      {"cuMemPrefetchAsync", 12020, address_of(&cuMemPrefetchAsync_v2)},
      {"cuMemAdvise", 8000, address_of(&cuMemAdvise_v1)},
      {"cuMemAdvise", 12020, address_of(&cuMemAdvise_v2)},
      {"cuMemPrefetchBatchAsync", 13000, address_of(&cuMemPrefetchBatchAsync)},
      {"cuMemDiscardBatchAsync", 13000, address_of(&cuMemDiscardBatchAsync)},
      {"cuMemRangeGetAttribute", 8000, address_of(&cuMemRangeGetAttribute)},
      {"cuMemRangeGetAttributes", 9020, address_of(&cuMemRangeGetAttributes)},
      {"cuMemFreeAsync", 11020, address_of(&cuMemFreeAsync)},
      {"cuEventCreate", 2000, address_of(&cuEventCreate)},
      {"cuEventQuery", 2000, address_of(&cuEventQuery)},
      {"cuEventDestroy", 4000, address_of(&cuEventDestroy_v2)},
      {"cuMemExportToShareableHandle", 10020, address_of(&cuMemExportToShareableHandle)},
      {"cuMemImportFromShareableHandle", 10020, address_of(&cuMemImportFromShareableHandle)},
      {"cuIpcGetMemHandle", 4010, address_of(&cuIpcGetMemHandle)},
      {"cuIpcOpenMemHandle", 4010, address_of(&cuIpcOpenMemHandle_v1)},
      {"cuIpcOpenMemHandle", 11000, address_of(&cuIpcOpenMemHandle_v2)},
      {"cuIpcCloseMemHandle", 4010, address_of(&cuIpcCloseMemHandle)},
      {"cuGetProcAddress", 11030, address_of(&cuGetProcAddress)},
      {"cuGetProcAddress", 12000, address_of(&cuGetProcAddress_v2)},
  };
  return *entries;
}

bool is_valid_proc_flags(cuuint64_t flags) {
  return flags == CU_GET_PROC_ADDRESS_DEFAULT || flags == CU_GET_PROC_ADDRESS_LEGACY_STREAM ||
         flags == CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
}

// The newest version of `symbol` that `cuda_version` knows, as cuGetProcAddress does.
CUresult find_proc(const char* symbol, void** function, int cuda_version, cuuint64_t flags,
                   CUdriverProcAddressQueryResult* status) {
  if (symbol == nullptr || function == nullptr || !is_valid_proc_flags(flags)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  const ProcEntry* best = nullptr;
  ProcEntry per_thread_entry{};
  bool known = false;
  for (const ProcEntry& entry : proc_entries()) {
    if (std::strcmp(entry.name, symbol) != 0) continue;
    known = true;
    if (entry.since <= cuda_version && (best == nullptr || entry.since > best->since)) {
      best = &entry;
    }
  }
  // The stream-ordered entry points (fake_launch.cc) have _ptsz versions.
  for (const fake::StreamProcEntry& entry : fake::stream_proc_entries()) {
    if (std::strcmp(entry.name, symbol) != 0) continue;
    known = true;
    if (entry.since <= cuda_version && (best == nullptr || entry.since > best->since)) {
      per_thread_entry = {entry.name, entry.since,
                          flags == CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM && entry.per_thread
                              ? entry.per_thread
                              : entry.function};
      best = &per_thread_entry;
    }
  }
  *function = best ? best->function : nullptr;
  if (status != nullptr) {
    *status = best    ? CU_GET_PROC_ADDRESS_SUCCESS
              : known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
                      : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  }
  return best ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

}  // namespace

// Everything below is the library's interface: exported despite
// -fvisibility=hidden. Names are what cuda.h's macros make of them
// (cuMemGetAddressRange is cuMemGetAddressRange_v2).
#pragma GCC visibility push(default)
extern "C" {

CUresult cuInit(unsigned int flags) {
  if (CUresult failure = injected_failure("cuInit")) return failure;
  return flags == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuDriverGetVersion(int* version) {
  if (CUresult failure = injected_failure("cuDriverGetVersion")) return failure;
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *version = kDriverVersion;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
  if (CUresult failure = injected_failure("cuDeviceGetCount")) return failure;
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = device_count();
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  if (CUresult failure = injected_failure("cuDeviceGet")) return failure;
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!is_valid_device(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice device) {
  if (CUresult failure = injected_failure("cuDeviceGetAttribute")) return failure;
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!is_valid_device(device)) return CUDA_ERROR_INVALID_DEVICE;
  switch (attribute) {
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
      *value = 1;
      return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID: *value = host_numa_id_of(device); return CUDA_SUCCESS;
    default:
      if (attribute < 0 || attribute >= CU_DEVICE_ATTRIBUTE_MAX) return CUDA_ERROR_INVALID_VALUE;
      *value = 0;  // a known attribute the fake does not model
      return CUDA_SUCCESS;
  }
}

CUresult cuDeviceGetName(char* name, int length, CUdevice device) {
  if (CUresult failure = injected_failure("cuDeviceGetName")) return failure;
  if (name == nullptr || length <= 0) return CUDA_ERROR_INVALID_VALUE;
  if (!is_valid_device(device)) return CUDA_ERROR_INVALID_DEVICE;
  std::strncpy(name, kDeviceName, static_cast<size_t>(length) - 1);
  name[length - 1] = '\0';
  return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char** name) {
  if (CUresult failure = injected_failure("cuGetErrorName")) return failure;
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const ErrorText* known = find_error(error);
  *name = known ? known->name : nullptr;
  return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char** text) {
  if (CUresult failure = injected_failure("cuGetErrorString")) return failure;
  if (text == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const ErrorText* known = find_error(error);
  *text = known ? known->text : nullptr;
  return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemGetAllocationGranularity(size_t* result, const CUmemAllocationProp* prop,
                                       CUmemAllocationGranularity_flags option) {
  if (CUresult failure = injected_failure("cuMemGetAllocationGranularity")) return failure;
  bool known_option =
      option == CU_MEM_ALLOC_GRANULARITY_MINIMUM || option == CU_MEM_ALLOC_GRANULARITY_RECOMMENDED;
  if (result == nullptr || !known_option || !is_valid_allocation_prop(prop)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  *result = granularity_of(prop->location);
  return CUDA_SUCCESS;
}

CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                     const CUmemAllocationProp* prop, unsigned long long flags) {
  if (CUresult failure = injected_failure("cuMemCreate")) return failure;
  if (handle == nullptr || flags != 0 || !is_valid_allocation_prop(prop) ||
      !is_multiple_of(size, granularity_of(prop->location)) || size == 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (CUresult refused = refused_handle_types(prop->requestedHandleTypes)) return refused;
  bool on_device = prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE;
  // FAKE_CUDA_HOST_NO_RDMA=1: host nodes refuse GPUDirect RDMA memory.
  if (!on_device && prop->allocFlags.gpuDirectRDMACapable != 0 &&
      fake::env_number("FAKE_CUDA_HOST_NO_RDMA", 0) != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  {
    // Device memory is charged against FAKE_CUDA_DEVICE_MEMORY, as cuMemAlloc's is.
    DriverState& driver = state();
    std::lock_guard<std::mutex> lock(driver.mutex);
    if (on_device && size > free_device_memory(driver)) return CUDA_ERROR_OUT_OF_MEMORY;
  }
  int fd = memfd_create("fake-cuda-allocation", MFD_CLOEXEC);
  if (fd < 0) return CUDA_ERROR_OUT_OF_MEMORY;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  if (on_device && size > free_device_memory(driver)) {  // taken meanwhile
    close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *handle = driver.next_handle++;
  size_t charged = on_device ? size : 0;
  bool shareable = prop->requestedHandleTypes == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  bool host = prop->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA;
  driver.objects[*handle] = MemoryObject{fd, size, false, 0, shareable, 1, *prop, charged, host};
  driver.charged_bytes += charged;
  if (host) fake::record_host_bytes(static_cast<int64_t>(size));
  return CUDA_SUCCESS;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  if (CUresult failure = injected_failure("cuMemRelease")) return failure;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = driver.objects.find(handle);
  if (it == driver.objects.end() || it->second.released) return CUDA_ERROR_INVALID_VALUE;
  it->second.released = --it->second.references == 0;
  destroy_if_unused(driver, handle);
  return CUDA_SUCCESS;
}

// The handle of the mapping holding addr, with one more reference.
CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle, void* addr) {
  if (CUresult failure = injected_failure("cuMemRetainAllocationHandle")) return failure;
  if (handle == nullptr) return CUDA_ERROR_INVALID_VALUE;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = mapping_holding(driver, reinterpret_cast<uintptr_t>(addr));
  if (it == driver.mappings.end()) return CUDA_ERROR_INVALID_VALUE;
  MemoryObject& object = driver.objects[it->second.handle];
  ++object.references;
  object.released = false;  // a released handle that is still mapped comes back
  *handle = it->second.handle;
  return CUDA_SUCCESS;
}

CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                CUmemGenericAllocationHandle handle) {
  if (CUresult failure = injected_failure("cuMemGetAllocationPropertiesFromHandle")) {
    return failure;
  }
  if (prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = driver.objects.find(handle);
  if (it == driver.objects.end() || it->second.released) return CUDA_ERROR_INVALID_VALUE;
  *prop = it->second.prop;
  return CUDA_SUCCESS;
}

CUresult cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment, CUdeviceptr addr,
                             unsigned long long flags) {
  if (CUresult failure = injected_failure("cuMemAddressReserve")) return failure;
  (void)addr;  // only a hint, as in CUDA
  size_t unit = granularity();
  if (alignment == 0) alignment = unit;
  bool power_of_two = (alignment & (alignment - 1)) == 0;
  if (ptr == nullptr || flags != 0 || size == 0 || !is_multiple_of(size, unit) || !power_of_two) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  void* start = reserve_aligned(size, alignment < unit ? unit : alignment);
  if (start == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  driver.reservations[reinterpret_cast<uintptr_t>(start)] = size;
  *ptr = reinterpret_cast<CUdeviceptr>(start);
  return CUDA_SUCCESS;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  if (CUresult failure = injected_failure("cuMemAddressFree")) return failure;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = driver.reservations.find(static_cast<uintptr_t>(ptr));
  if (it == driver.reservations.end() || it->second != size) return CUDA_ERROR_INVALID_VALUE;
  // Stricter than CUDA documents: freeing address space that is still
  // mapped is a caller bug worth failing loudly in tests.
  if (has_mapping_inside(driver, it->first, size)) return CUDA_ERROR_INVALID_VALUE;
  munmap(reinterpret_cast<void*>(it->first), size);
  driver.reservations.erase(it);
  return CUDA_SUCCESS;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                  unsigned long long flags) {
  if (CUresult failure = injected_failure("cuMemMap")) return failure;
  size_t unit = granularity();
  uintptr_t start = static_cast<uintptr_t>(ptr);
  if (flags != 0 || size == 0 || !is_multiple_of(size, unit) || !is_multiple_of(start, unit) ||
      !is_multiple_of(offset, unit)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto object = driver.objects.find(handle);
  if (object == driver.objects.end() || object->second.released) return CUDA_ERROR_INVALID_HANDLE;
  if (offset + size > object->second.size || !lies_in_one_reservation(driver, start, size)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (overlaps_a_mapping(driver, start, size)) return CUDA_ERROR_ALREADY_MAPPED;
  void* mapped = mmap(reinterpret_cast<void*>(start), size, PROT_NONE, MAP_SHARED | MAP_FIXED,
                      object->second.fd, static_cast<off_t>(offset));
  if (mapped == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
  driver.mappings[start] = Mapping{size, handle, false, false};
  ++object->second.mappings;
  return CUDA_SUCCESS;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
  if (CUresult failure = injected_failure("cuMemUnmap")) return failure;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  uintptr_t start = static_cast<uintptr_t>(ptr);
  std::vector<MappingIterator> tiles = mappings_tiling(driver, start, size);
  if (tiles.empty()) return CUDA_ERROR_INVALID_VALUE;
  if (!make_inaccessible_placeholder(start, size)) return CUDA_ERROR_OPERATING_SYSTEM;
  for (MappingIterator tile : tiles) {
    CUmemGenericAllocationHandle handle = tile->second.handle;
    driver.mappings.erase(tile);
    --driver.objects[handle].mappings;
    destroy_if_unused(driver, handle);
  }
  return CUDA_SUCCESS;
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc, size_t count) {
  if (CUresult failure = injected_failure("cuMemSetAccess")) return failure;
  if (desc == nullptr || count == 0 || !is_multiple_of(size, granularity())) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  for (size_t i = 0; i < count; ++i) {
    if (!is_valid_access_location(desc[i].location) || !is_valid_access_flags(desc[i].flags) ||
        (desc[i].location.type == CU_MEM_LOCATION_TYPE_DEVICE && desc[i].location.id >= kMaxDevices)) {
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  std::vector<MappingIterator> tiles = mappings_tiling(driver, static_cast<uintptr_t>(ptr), size);
  if (tiles.empty()) return CUDA_ERROR_INVALID_VALUE;
  bool read_only = grants_read_only(desc, count);
  for (MappingIterator tile : tiles) {
    Mapping updated = tile->second;
    apply_access(updated, desc, count);
    if (mprotect(reinterpret_cast<void*>(tile->first), updated.size,
                 protection_for(updated, read_only)) != 0) {
      return CUDA_ERROR_OPERATING_SYSTEM;
    }
    tile->second = updated;
  }
  return CUDA_SUCCESS;
}

CUresult cuMemGetAddressRange(CUdeviceptr* base, size_t* size, CUdeviceptr ptr) {
  if (CUresult failure = injected_failure("cuMemGetAddressRange")) return failure;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto plain = plain_holding(driver, static_cast<uintptr_t>(ptr));
  if (plain != driver.allocations.end()) {
    if (base != nullptr) *base = static_cast<CUdeviceptr>(plain->first);
    if (size != nullptr) *size = plain->second.size;
    return CUDA_SUCCESS;
  }
  auto it = mapping_holding(driver, static_cast<uintptr_t>(ptr));
  if (it == driver.mappings.end()) return CUDA_ERROR_NOT_FOUND;
  if (base != nullptr) *base = static_cast<CUdeviceptr>(it->first);
  if (size != nullptr) *size = it->second.size;
  return CUDA_SUCCESS;
}

CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr ptr) {
  if (CUresult failure = injected_failure("cuPointerGetAttribute")) return failure;
  if (data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  return pointer_attribute(driver, data, attribute, ptr, /*strict=*/true);
}

CUresult cuCtxSynchronize(void) {
  if (CUresult failure = injected_failure("cuCtxSynchronize")) return failure;
  fake::synchronize_all_streams();
  return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t size) {
  if (CUresult failure = injected_failure("cuMemAlloc_v2")) return failure;
  return allocate_plain(pointer, size, /*charge=*/true);
}

// Managed memory may oversubscribe the device: not charged.
CUresult cuMemAllocManaged(CUdeviceptr* pointer, size_t size, unsigned int flags) {
  if (CUresult failure = injected_failure("cuMemAllocManaged")) return failure;
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST) return CUDA_ERROR_INVALID_VALUE;
  return allocate_plain(pointer, size, /*charge=*/false, /*managed=*/true);
}

CUresult cuMemAllocPitch_v2(CUdeviceptr* pointer, size_t* pitch, size_t width, size_t height,
                            unsigned int element_size) {
  if (CUresult failure = injected_failure("cuMemAllocPitch_v2")) return failure;
  bool known_element_size = element_size == 4 || element_size == 8 || element_size == 16;
  if (pitch == nullptr || !known_element_size || width == 0 || height == 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  size_t row = round_up(width, kPitchAlignment);
  CUresult result = allocate_plain(pointer, row * height, /*charge=*/true);
  if (result == CUDA_SUCCESS) *pitch = row;
  return result;
}

// Waits for the device first, as the real cuMemFree does: queued work may use the memory.
CUresult cuMemFree_v2(CUdeviceptr pointer) {
  if (CUresult failure = injected_failure("cuMemFree_v2")) return failure;
  if (pointer == 0) return CUDA_SUCCESS;
  fake::synchronize_all_streams();
  return free_plain(pointer);
}

CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  if (CUresult failure = injected_failure("cuMemGetInfo_v2")) return failure;
  if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  *free = free_device_memory(driver);
  *total = device_memory();
  return CUDA_SUCCESS;
}

CUresult cuGetProcAddress_v2(const char* symbol, void** function, int cuda_version,
                             cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  if (CUresult failure = injected_failure("cuGetProcAddress_v2")) return failure;
  return find_proc(symbol, function, cuda_version, flags, status);
}

CUresult cuGetProcAddress(const char* symbol, void** function, int cuda_version, cuuint64_t flags) {
  if (CUresult failure = injected_failure("cuGetProcAddress")) return failure;
  return find_proc(symbol, function, cuda_version, flags, nullptr);
}

// ---- managed memory, pointer queries, stream-ordered free, events ----
// Managed calls accept cuMemAllocManaged memory only: device memory, VMM
// mappings (what the real driver says of host-placed VMM memory too) and
// unknown or mixed ranges get CUDA_ERROR_INVALID_VALUE.

}  // extern "C"

namespace {

// The managed allocation holding all of [ptr, +count) (count 0: its start). Lock held.
PlainAllocation* managed_range(DriverState& driver, CUdeviceptr ptr, size_t count) {
  uintptr_t start = static_cast<uintptr_t>(ptr);
  auto it = driver.allocations.upper_bound(start);
  if (it == driver.allocations.begin()) return nullptr;
  --it;
  PlainAllocation& allocation = it->second;
  if (!allocation.managed || start - it->first >= allocation.size) return nullptr;
  if (count > allocation.size - (start - it->first)) return nullptr;
  return &allocation;
}

// The plain allocation holding ptr, or end(). Lock held.
std::map<uintptr_t, PlainAllocation>::iterator plain_holding(DriverState& driver, uintptr_t ptr) {
  auto it = driver.allocations.upper_bound(ptr);
  if (it == driver.allocations.begin()) return driver.allocations.end();
  --it;
  return ptr - it->first < it->second.size ? it : driver.allocations.end();
}

CUresult check_location(const CUmemLocation& location) {
  switch (location.type) {
    case CU_MEM_LOCATION_TYPE_DEVICE:
      return is_valid_device(location.id) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT: return CUDA_SUCCESS;
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
      return location.id >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
}

CUmemLocation location_of_device(CUdevice device) {
  if (device == CU_DEVICE_CPU) return {CU_MEM_LOCATION_TYPE_HOST, 0};
  return {CU_MEM_LOCATION_TYPE_DEVICE, device};
}

size_t page_size() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

// The pages [ptr, +count) of a managed allocation touches, rounded out to
// CPU pages as the driver rounds. Lock held.
std::vector<Hints*> pages_of(DriverState& driver, CUdeviceptr ptr, size_t count) {
  auto holder = plain_holding(driver, static_cast<uintptr_t>(ptr));
  PlainAllocation& allocation = holder->second;
  size_t page = page_size();
  if (allocation.pages.empty()) allocation.pages.resize((allocation.size + page - 1) / page);
  size_t offset = static_cast<uintptr_t>(ptr) - holder->first;
  std::vector<Hints*> pages;
  for (size_t i = offset / page; i < allocation.pages.size() && i * page < offset + count; ++i) {
    pages.push_back(&allocation.pages[i]);
  }
  return pages;
}

// What every page [ptr, +count) touches has in common. Lock held.
Hints common_hints(DriverState& driver, CUdeviceptr ptr, size_t count) {
  std::vector<Hints*> pages = pages_of(driver, ptr, count);
  Hints all = *pages.front();
  auto same = [](const CUmemLocation& a, const CUmemLocation& b) {
    return a.type == b.type && a.id == b.id;
  };
  for (const Hints* page : pages) {
    all.read_mostly = all.read_mostly && page->read_mostly;
    if (!same(all.preferred, page->preferred)) all.preferred = {CU_MEM_LOCATION_TYPE_INVALID, 0};
    if (!same(all.last_prefetch, page->last_prefetch)) {
      all.last_prefetch = {CU_MEM_LOCATION_TYPE_INVALID, 0};
    }
    std::vector<int> kept;
    for (int id : all.accessed_by) {
      if (std::count(page->accessed_by.begin(), page->accessed_by.end(), id)) kept.push_back(id);
    }
    all.accessed_by = kept;
  }
  return all;
}

CUresult prefetch(CUdeviceptr ptr, size_t count, CUmemLocation location, unsigned flags) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  PlainAllocation* allocation = count == 0 ? nullptr : managed_range(driver, ptr, count);
  if (allocation == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult error = check_location(location)) return error;
  for (Hints* page : pages_of(driver, ptr, count)) page->last_prefetch = location;
  return CUDA_SUCCESS;
}

CUresult advise(CUdeviceptr ptr, size_t count, int advice, CUmemLocation location) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  PlainAllocation* allocation = count == 0 ? nullptr : managed_range(driver, ptr, count);
  if (allocation == nullptr) return CUDA_ERROR_INVALID_VALUE;
  bool needs_location = advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION ||
                        advice == CU_MEM_ADVISE_SET_ACCESSED_BY ||
                        advice == CU_MEM_ADVISE_UNSET_ACCESSED_BY;
  if (needs_location) {
    if (CUresult error = check_location(location)) return error;
  }
  if (advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  int id = location.type == CU_MEM_LOCATION_TYPE_DEVICE ? location.id : CU_DEVICE_CPU;
  for (Hints* hints : pages_of(driver, ptr, count)) {
    auto& list = hints->accessed_by;
    switch (advice) {
      case CU_MEM_ADVISE_SET_READ_MOSTLY: hints->read_mostly = true; break;
      case CU_MEM_ADVISE_UNSET_READ_MOSTLY: hints->read_mostly = false; break;
      case CU_MEM_ADVISE_SET_PREFERRED_LOCATION: hints->preferred = location; break;
      case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION:
        hints->preferred = {CU_MEM_LOCATION_TYPE_INVALID, 0};
        break;
      case CU_MEM_ADVISE_SET_ACCESSED_BY:
        if (std::find(list.begin(), list.end(), id) == list.end()) list.push_back(id);
        break;
      case CU_MEM_ADVISE_UNSET_ACCESSED_BY:
        list.erase(std::remove(list.begin(), list.end(), id), list.end());
        break;
    }
  }
  return CUDA_SUCCESS;
}

int legacy_id(const CUmemLocation& location) {
  if (location.type == CU_MEM_LOCATION_TYPE_DEVICE) return location.id;
  return location.type == CU_MEM_LOCATION_TYPE_INVALID ? CU_DEVICE_INVALID : CU_DEVICE_CPU;
}

int location_id(const CUmemLocation& location) {
  if (location.type == CU_MEM_LOCATION_TYPE_DEVICE || location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA) {
    return location.id;
  }
  return location.type == CU_MEM_LOCATION_TYPE_INVALID ? CU_DEVICE_INVALID : CU_DEVICE_CPU;
}

CUresult range_attribute(const Hints& hints, void* data, size_t size, CUmem_range_attribute attribute) {
  if (data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int* out = static_cast<int*>(data);
  if (attribute == CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY) {
    if (size == 0 || size % sizeof(int) != 0) return CUDA_ERROR_INVALID_VALUE;
    std::vector<int> devices;
    for (int id : hints.accessed_by) if (id != CU_DEVICE_CPU) devices.push_back(id);
    std::sort(devices.begin(), devices.end());
    if (std::count(hints.accessed_by.begin(), hints.accessed_by.end(), CU_DEVICE_CPU)) devices.push_back(CU_DEVICE_CPU);
    for (size_t i = 0; i < size / sizeof(int); ++i) out[i] = i < devices.size() ? devices[i] : CU_DEVICE_INVALID;
    return CUDA_SUCCESS;
  }
  if (size != sizeof(int)) return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
    case CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY: *out = hints.read_mostly; break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION: *out = legacy_id(hints.preferred); break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION: *out = legacy_id(hints.last_prefetch); break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE: *out = hints.preferred.type; break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID: *out = location_id(hints.preferred); break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE: *out = hints.last_prefetch.type; break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID:  // the H200's driver: 0 for the host
      *out = hints.last_prefetch.type == CU_MEM_LOCATION_TYPE_HOST ? 0 : location_id(hints.last_prefetch);
      break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

template <typename T>
void put(void* data, T value) { std::memcpy(data, &value, sizeof value); }

// One pointer attribute; `strict` (cuPointerGetAttribute) fails where
// cuPointerGetAttributes writes a null default. Lock held.
CUresult pointer_attribute(DriverState& driver, void* data, CUpointer_attribute attribute,
                           CUdeviceptr ptr, bool strict) {
  uintptr_t address = static_cast<uintptr_t>(ptr);
  auto plain = plain_holding(driver, address);
  auto mapped = mapping_holding(driver, address);
  bool is_plain = plain != driver.allocations.end();
  if (!is_plain && mapped == driver.mappings.end()) {
    if (strict) return CUDA_ERROR_INVALID_VALUE;
    std::memset(data, 0, attribute == CU_POINTER_ATTRIBUTE_MEMORY_TYPE ? sizeof(unsigned) : sizeof(void*));
    return CUDA_SUCCESS;
  }
  uintptr_t base = is_plain ? plain->first : mapped->first;
  size_t size = is_plain ? plain->second.size : mapped->second.size;
  bool managed = is_plain && plain->second.managed;
  switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: put(data, is_plain ? plain->second.context : CUcontext{}); break;
    // The real driver calls host-placed VMM memory host memory.
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
      put(data, static_cast<unsigned>(is_plain ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST));
      break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: put(data, ptr); break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
      if (is_plain && !managed) {
        if (strict) return CUDA_ERROR_INVALID_VALUE;
        put(data, static_cast<void*>(nullptr));
      } else {
        put(data, reinterpret_cast<void*>(address));
      }
      break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: put(data, static_cast<unsigned>(managed)); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: put(data, 0); break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: put(data, static_cast<unsigned long long>(base)); break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: put(data, static_cast<CUdeviceptr>(base)); break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: put(data, size); break;
    case CU_POINTER_ATTRIBUTE_MAPPED: put(data, true); break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

}  // namespace

extern "C" {

CUresult cuStreamAttachMemAsync(CUstream, CUdeviceptr ptr, size_t length, unsigned int flags) {
  if (CUresult failure = injected_failure("cuStreamAttachMemAsync")) return failure;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = driver.allocations.find(static_cast<uintptr_t>(ptr));
  bool known_flag = flags == CU_MEM_ATTACH_GLOBAL || flags == CU_MEM_ATTACH_HOST ||
                    flags == CU_MEM_ATTACH_SINGLE;
  if (it == driver.allocations.end() || !it->second.managed || !known_flag ||
      (length != 0 && length != it->second.size)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult cuStreamAttachMemAsync_ptsz(CUstream stream, CUdeviceptr ptr, size_t length, unsigned int flags) {
  return cuStreamAttachMemAsync(stream, ptr, length, flags);
}

CUresult cuMemPrefetchAsync_v1(CUdeviceptr ptr, size_t count, CUdevice device, CUstream) {
  if (CUresult failure = injected_failure("cuMemPrefetchAsync")) return failure;
  return prefetch(ptr, count, location_of_device(device), 0);
}

CUresult cuMemPrefetchAsync_ptsz(CUdeviceptr ptr, size_t count, CUdevice device, CUstream stream) {
  return cuMemPrefetchAsync_v1(ptr, count, device, stream);
}

CUresult cuMemPrefetchAsync_v2(CUdeviceptr ptr, size_t count, CUmemLocation location,
                               unsigned int flags, CUstream) {
  if (CUresult failure = injected_failure("cuMemPrefetchAsync_v2")) return failure;
  return prefetch(ptr, count, location, flags);
}

CUresult cuMemPrefetchAsync_v2_ptsz(CUdeviceptr ptr, size_t count, CUmemLocation location,
                                    unsigned int flags, CUstream stream) {
  return cuMemPrefetchAsync_v2(ptr, count, location, flags, stream);
}

CUresult cuMemPrefetchBatchAsync(CUdeviceptr* ptrs, size_t* sizes, size_t count,
                                 CUmemLocation* locations, size_t* starts, size_t location_count,
                                 unsigned long long flags, CUstream) {
  if (CUresult failure = injected_failure("cuMemPrefetchBatchAsync")) return failure;
  if (ptrs == nullptr || sizes == nullptr || count == 0 || locations == nullptr ||
      starts == nullptr || location_count == 0 || location_count > count || starts[0] != 0 ||
      flags != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  size_t k = 0;
  for (size_t i = 0; i < count; ++i) {
    while (k + 1 < location_count && starts[k + 1] <= i) ++k;
    if (CUresult error = prefetch(ptrs[i], sizes[i], locations[k], 0)) return error;
  }
  return CUDA_SUCCESS;
}

CUresult cuMemDiscardBatchAsync(CUdeviceptr* ptrs, size_t* sizes, size_t count,
                                unsigned long long flags, CUstream) {
  if (CUresult failure = injected_failure("cuMemDiscardBatchAsync")) return failure;
  if (ptrs == nullptr || sizes == nullptr || count == 0 || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  for (size_t i = 0; i < count; ++i) {
    if (sizes[i] == 0 || managed_range(driver, ptrs[i], sizes[i]) == nullptr) return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult cuMemAdvise_v1(CUdeviceptr ptr, size_t count, CUmem_advise advice, CUdevice device) {
  if (CUresult failure = injected_failure("cuMemAdvise")) return failure;
  return advise(ptr, count, advice, location_of_device(device));
}

CUresult cuMemAdvise_v2(CUdeviceptr ptr, size_t count, CUmem_advise advice, CUmemLocation location) {
  if (CUresult failure = injected_failure("cuMemAdvise_v2")) return failure;
  return advise(ptr, count, advice, location);
}

CUresult cuMemRangeGetAttribute(void* data, size_t size, CUmem_range_attribute attribute,
                                CUdeviceptr ptr, size_t count) {
  if (CUresult failure = injected_failure("cuMemRangeGetAttribute")) return failure;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  PlainAllocation* allocation = count == 0 ? nullptr : managed_range(driver, ptr, count);
  if (allocation == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return range_attribute(common_hints(driver, ptr, count), data, size, attribute);
}

CUresult cuMemRangeGetAttributes(void** data, size_t* sizes, CUmem_range_attribute* attributes,
                                 size_t attribute_count, CUdeviceptr ptr, size_t count) {
  if (CUresult failure = injected_failure("cuMemRangeGetAttributes")) return failure;
  if (data == nullptr || sizes == nullptr || attributes == nullptr || attribute_count == 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  for (size_t i = 0; i < attribute_count; ++i) {
    if (CUresult error = cuMemRangeGetAttribute(data[i], sizes[i], attributes[i], ptr, count)) return error;
  }
  return CUDA_SUCCESS;
}

CUresult cuPointerGetAttributes(unsigned int count, CUpointer_attribute* attributes, void** data,
                                CUdeviceptr ptr) {
  if (CUresult failure = injected_failure("cuPointerGetAttributes")) return failure;
  if (attributes == nullptr || data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  for (unsigned i = 0; i < count; ++i) {
    if (CUresult error = pointer_attribute(driver, data[i], attributes[i], ptr, false)) return error;
  }
  return CUDA_SUCCESS;
}

CUresult cuMemFreeAsync(CUdeviceptr pointer, CUstream) {
  if (CUresult failure = injected_failure("cuMemFreeAsync")) return failure;
  return free_plain(pointer);
}

CUresult cuMemFreeAsync_ptsz(CUdeviceptr pointer, CUstream stream) {
  return cuMemFreeAsync(pointer, stream);
}

// ---- inspection (fake_control.h) ----

int fake_cuda_live_handles(void) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  int live = 0;
  for (const auto& [handle, object] : driver.objects) live += object.released ? 0 : 1;
  return live;
}

int fake_cuda_live_allocations(void) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  return static_cast<int>(driver.allocations.size());
}

size_t fake_cuda_allocated_device_bytes(void) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  return driver.charged_bytes;
}

int fake_cuda_live_memory_objects(void) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  return static_cast<int>(driver.objects.size());
}

int fake_cuda_live_reservations(void) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  return static_cast<int>(driver.reservations.size());
}

int fake_cuda_live_mappings(void) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  return static_cast<int>(driver.mappings.size());
}

long fake_cuda_call_count(const char* function) {
  return function == nullptr ? 0 : injector().call_count(function);
}

int fake_cuda_host_access_granted(const void* addr) {
  return access_granted(addr, [](const Mapping& mapping) { return mapping.host_read_write; });
}

int fake_cuda_device_access_granted(const void* addr) {
  return access_granted(addr, [](const Mapping& mapping) { return mapping.devices_read_write != 0; });
}

int fake_cuda_device_access_to(const void* addr, int device) {
  if (device < 0 || device >= kMaxDevices) return access_granted(addr, [](const Mapping&) { return false; });
  return access_granted(addr, [device](const Mapping& mapping) {
    return (mapping.devices_read_write & device_bit(device)) != 0;
  });
}

int fake_cuda_mapping_of(const void* addr, uintptr_t* base, size_t* size) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = mapping_holding(driver, reinterpret_cast<uintptr_t>(addr));
  if (it == driver.mappings.end()) return 0;
  if (base != nullptr) *base = it->first;
  if (size != nullptr) *size = it->second.size;
  return 1;
}

}  // extern "C"

// ---- shareable handles and CUDA IPC ----
// cuMemExportToShareableHandle gives a dup of the allocation's memfd, so two
// processes really share the bytes; cuMemImportFromShareableHandle makes a
// new handle on such an fd. The fake's own IPC handles ("FAKEIPC", pid,
// address) cover cuMemAlloc memory only and cannot be opened in another
// process (plain memory is private here): anything else is refused as the
// real driver refuses what it cannot resolve.
namespace {

constexpr char kFakeIpcTag[8] = "FAKEIPC";

}  // namespace

extern "C" {

CUresult cuMemExportToShareableHandle(void* shareable, CUmemGenericAllocationHandle handle,
                                      CUmemAllocationHandleType type, unsigned long long flags) {
  if (CUresult failure = injected_failure("cuMemExportToShareableHandle")) return failure;
  if (shareable == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = driver.objects.find(handle);
  if (it == driver.objects.end() || it->second.released) return CUDA_ERROR_INVALID_HANDLE;
  if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR || !it->second.shareable) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  int fd = fcntl(it->second.fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return CUDA_ERROR_OPERATING_SYSTEM;
  *static_cast<int*>(shareable) = fd;
  return CUDA_SUCCESS;
}

CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle* handle, void* os_handle,
                                        CUmemAllocationHandleType type) {
  if (CUresult failure = injected_failure("cuMemImportFromShareableHandle")) return failure;
  if (handle == nullptr || type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  int given = static_cast<int>(reinterpret_cast<intptr_t>(os_handle));
  struct stat info = {};
  if (given < 0 || fstat(given, &info) != 0 || info.st_size <= 0) return CUDA_ERROR_INVALID_VALUE;
  int fd = fcntl(given, F_DUPFD_CLOEXEC, 0);  // the caller keeps and closes its fd, as in CUDA
  if (fd < 0) return CUDA_ERROR_OPERATING_SYSTEM;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  *handle = driver.next_handle++;
  driver.objects[*handle] = MemoryObject{fd, static_cast<size_t>(info.st_size), false, 0, true};
  return CUDA_SUCCESS;
}

CUresult cuIpcGetMemHandle(CUipcMemHandle* handle, CUdeviceptr pointer) {
  if (CUresult failure = injected_failure("cuIpcGetMemHandle")) return failure;
  if (handle == nullptr) return CUDA_ERROR_INVALID_VALUE;
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  auto it = plain_holding(driver, static_cast<uintptr_t>(pointer));
  if (it == driver.allocations.end()) return CUDA_ERROR_INVALID_VALUE;  // VMM memory included
  std::memset(handle, 0, sizeof *handle);
  std::memcpy(handle->reserved, kFakeIpcTag, sizeof kFakeIpcTag);
  pid_t pid = getpid();
  uintptr_t base = it->first;
  std::memcpy(handle->reserved + 8, &pid, sizeof pid);
  std::memcpy(handle->reserved + 16, &base, sizeof base);
  return CUDA_SUCCESS;
}

CUresult cuIpcOpenMemHandle_v2(CUdeviceptr* pointer, CUipcMemHandle handle, unsigned int flags) {
  if (CUresult failure = injected_failure("cuIpcOpenMemHandle")) return failure;
  if (pointer == nullptr || (flags & ~unsigned{CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS}) != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (std::memcmp(handle.reserved, kFakeIpcTag, sizeof kFakeIpcTag) != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  pid_t pid = 0;
  std::memcpy(&pid, handle.reserved + 8, sizeof pid);
  return pid == getpid() ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_NOT_SUPPORTED;
}

CUresult cuIpcOpenMemHandle_v1(CUdeviceptr* pointer, CUipcMemHandle handle, unsigned int flags) {
  return cuIpcOpenMemHandle_v2(pointer, handle, flags);
}

CUresult cuIpcCloseMemHandle(CUdeviceptr pointer) {
  if (CUresult failure = injected_failure("cuIpcCloseMemHandle")) return failure;
  (void)pointer;  // nothing is ever opened
  return CUDA_ERROR_INVALID_VALUE;
}

}  // extern "C"
#pragma GCC visibility pop

// ---- shared with fake_launch.cc (fake_driver_internal.h) ----
namespace fake {

CUresult driver_injected_failure(std::string_view function) { return injected_failure(function); }

bool is_driver_memory(uintptr_t start, size_t size) {
  DriverState& driver = state();
  std::lock_guard<std::mutex> lock(driver.mutex);
  for (uintptr_t next = start; next < start + size;) {
    auto plain = plain_holding(driver, next);
    if (plain != driver.allocations.end()) {
      next = plain->first + plain->second.size;  // the bytes asked for
      continue;
    }
    auto mapped = mapping_holding(driver, next);
    if (mapped == driver.mappings.end()) return false;
    next = mapped->first + mapped->second.size;
  }
  return true;
}

}  // namespace fake
