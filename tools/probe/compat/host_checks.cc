#include "tools/probe/compat/host_checks.h"

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "tools/probe/compat/cuda_entry.h"

namespace egm::compat {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// The runtime and driver entry points the checks call, found once.
struct Api {
  Entry<decltype(cudaGetErrorName)> error_name{"cudaGetErrorName"};
  Entry<decltype(cudaMalloc)> malloc{"cudaMalloc"};
  Entry<decltype(cudaMallocManaged)> malloc_managed{"cudaMallocManaged"};
  Entry<decltype(cudaMallocPitch)> malloc_pitch{"cudaMallocPitch"};
  Entry<decltype(cudaMallocHost)> malloc_host{"cudaMallocHost"};
  Entry<decltype(cudaFree)> free{"cudaFree"};
  Entry<decltype(cudaFreeHost)> free_host{"cudaFreeHost"};
  Entry<decltype(cudaMemcpy)> memcpy{"cudaMemcpy"};
  Entry<decltype(cudaMemcpy2D)> memcpy_2d{"cudaMemcpy2D"};
  Entry<decltype(cudaMemset)> memset{"cudaMemset"};
  Entry<decltype(cudaDeviceSynchronize)> synchronize{"cudaDeviceSynchronize"};
  Entry<decltype(cudaPointerGetAttributes)> pointer_attributes{"cudaPointerGetAttributes"};
  Entry<decltype(cudaStreamCreate)> stream_create{"cudaStreamCreate"};
  Entry<decltype(cudaStreamDestroy)> stream_destroy{"cudaStreamDestroy"};
  Entry<decltype(cudaStreamSynchronize)> stream_synchronize{"cudaStreamSynchronize"};
  Entry<cudaError_t(cudaStream_t, void*, size_t, unsigned int)> attach{"cudaStreamAttachMemAsync"};
  Entry<decltype(cudaMemPrefetchAsync)> prefetch{"cudaMemPrefetchAsync"};
  Entry<decltype(cudaMemAdvise)> advise{"cudaMemAdvise"};
  Entry<decltype(cudaMemRangeGetAttribute)> range_attribute{"cudaMemRangeGetAttribute"};
  Entry<decltype(cudaIpcGetMemHandle)> ipc_get_handle{"cudaIpcGetMemHandle"};
  Entry<decltype(cudaStreamBeginCapture)> begin_capture{"cudaStreamBeginCapture"};
  Entry<decltype(cudaStreamEndCapture)> end_capture{"cudaStreamEndCapture"};
  Entry<decltype(cudaMallocAsync)> malloc_async{"cudaMallocAsync"};
  Entry<decltype(cudaFreeAsync)> free_async{"cudaFreeAsync"};
  Entry<decltype(cudaMemsetAsync)> memset_async{"cudaMemsetAsync"};
  Entry<decltype(cudaMemcpyAsync)> memcpy_async{"cudaMemcpyAsync"};
  Entry<decltype(cudaGraphInstantiate)> graph_instantiate{"cudaGraphInstantiate"};
  Entry<decltype(cudaGraphLaunch)> graph_launch{"cudaGraphLaunch"};
  Entry<decltype(cudaGraphExecDestroy)> graph_exec_destroy{"cudaGraphExecDestroy"};
  Entry<decltype(cudaGraphDestroy)> graph_destroy{"cudaGraphDestroy"};
  // Driver API, by the names libcuda exports (cuda.h maps cuMemAlloc to _v2).
  Entry<decltype(cuInit)> cu_init{"cuInit"};
  Entry<decltype(cuDeviceGet)> cu_device_get{"cuDeviceGet"};
  Entry<decltype(cuDeviceGetName)> cu_device_name{"cuDeviceGetName"};
  Entry<decltype(cudaGetDeviceCount)> device_count{"cudaGetDeviceCount"};
  Entry<decltype(cuDevicePrimaryCtxRetain)> cu_retain{"cuDevicePrimaryCtxRetain"};
  Entry<CUresult(CUdevice)> cu_release{"cuDevicePrimaryCtxRelease_v2"};
  Entry<decltype(cuCtxSetCurrent)> cu_set_current{"cuCtxSetCurrent"};
  Entry<CUresult(CUdeviceptr*, size_t)> cu_alloc{"cuMemAlloc_v2"};
  Entry<CUresult(CUdeviceptr)> cu_free{"cuMemFree_v2"};
  Entry<CUresult(CUdeviceptr, unsigned int, size_t)> cu_memset_d32{"cuMemsetD32_v2"};
  Entry<decltype(cuMemcpy)> cu_memcpy{"cuMemcpy"};
  Entry<CUresult(CUdeviceptr*, size_t*, CUdeviceptr)> cu_address_range{"cuMemGetAddressRange_v2"};
  Entry<decltype(cuPointerGetAttribute)> cu_pointer_attribute{"cuPointerGetAttribute"};
  Entry<CUresult(CUdeviceptr*, size_t, CUstream)> cu_alloc_async{"cuMemAllocAsync"};
  Entry<CUresult(CUdeviceptr, CUstream)> cu_free_async{"cuMemFreeAsync"};
  Entry<decltype(cuCtxSynchronize)> cu_synchronize{"cuCtxSynchronize"};
};

const Api& api() {
  static const Api* const instance = new Api;
  return *instance;
}

std::string name_of(cudaError_t error) {
  if (api().error_name.present()) return api().error_name(error);
  return "cudaError" + std::to_string(static_cast<int>(error));
}

std::string name_of(CUresult result) {
  static const Entry<decltype(cuGetErrorName)> error_name{"cuGetErrorName"};
  const char* name = nullptr;
  if (error_name.present() && error_name(result, &name) == CUDA_SUCCESS && name) return name;
  return "CUresult" + std::to_string(static_cast<int>(result));
}

template <typename... Entries>
std::string missing(const Entries&... entries) {
  std::string names = missing_entries({{entries.present(), entries.name()}...});
  return names.empty() ? "" : "SKIP-MISSING " + names;
}

// FNV-1a of the bytes: equal data gives equal text in both runs.
std::string checksum(const void* data, size_t size) {
  uint64_t hash = 1469598103934665603ull;
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
  char text[24];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

std::vector<unsigned char> pattern(size_t size, unsigned seed) {
  std::vector<unsigned char> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<unsigned char>((i * 131 + seed) >> 3);
  return bytes;
}

// How a pointer attribute relates to the pointer queried.
const char* relation(const void* value, const void* pointer) {
  if (value == nullptr) return "null";
  return value == pointer ? "self" : "other";
}

std::string runtime_attributes(const void* pointer) {
  cudaPointerAttributes attributes{};
  cudaError_t error = api().pointer_attributes(&attributes, pointer);
  char text[160];
  std::snprintf(text, sizeof text, "rt{%s type=%d device=%d devicePointer=%s hostPointer=%s}",
                name_of(error).c_str(), static_cast<int>(attributes.type), attributes.device,
                relation(attributes.devicePointer, pointer),
                relation(attributes.hostPointer, pointer));
  return text;
}

std::string driver_attributes(const void* pointer) {
  auto address = reinterpret_cast<CUdeviceptr>(pointer);
  unsigned int memory_type = 0;
  unsigned int is_managed = 0;
  int ordinal = -1;
  CUresult type_result =
      api().cu_pointer_attribute(&memory_type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, address);
  CUresult managed_result =
      api().cu_pointer_attribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, address);
  CUresult ordinal_result =
      api().cu_pointer_attribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, address);
  char text[200];
  std::snprintf(text, sizeof text, "drv{MEMORY_TYPE=%s:%u IS_MANAGED=%s:%u DEVICE_ORDINAL=%s:%d}",
                name_of(type_result).c_str(), memory_type, name_of(managed_result).c_str(),
                is_managed, name_of(ordinal_result).c_str(), ordinal);
  return text;
}

// What the checks run on (the same machine in both runs).
std::string device() {
  const Api& a = api();
  if (auto skip = missing(a.device_count, a.cu_init, a.cu_device_get, a.cu_device_name);
      !skip.empty()) {
    return skip;
  }
  int count = -1;
  cudaError_t counted = a.device_count(&count);
  char name[256] = "?";
  CUdevice device = 0;
  if (a.cu_init(0) == CUDA_SUCCESS && a.cu_device_get(&device, 0) == CUDA_SUCCESS) {
    a.cu_device_name(name, sizeof name, device);
  }
  return name_of(counted) + " count=" + std::to_string(count) + " gpu0=" + name;
}

std::string pointer_device() {
  const Api& a = api();
  if (auto skip = missing(a.malloc, a.free, a.pointer_attributes, a.cu_pointer_attribute);
      !skip.empty()) {
    return skip;
  }
  void* pointer = nullptr;
  cudaError_t alloc = a.malloc(&pointer, kMiB);
  if (alloc != cudaSuccess) return "cudaMalloc=" + name_of(alloc);
  std::string result = runtime_attributes(pointer) + " " + driver_attributes(pointer) +
                       " interior:" + runtime_attributes(static_cast<char*>(pointer) + 4096);
  a.free(pointer);
  return result;
}

std::string pointer_managed() {
  const Api& a = api();
  if (auto skip = missing(a.malloc_managed, a.free, a.pointer_attributes, a.cu_pointer_attribute);
      !skip.empty()) {
    return skip;
  }
  void* pointer = nullptr;
  cudaError_t alloc = a.malloc_managed(&pointer, kMiB, cudaMemAttachGlobal);
  if (alloc != cudaSuccess) return "cudaMallocManaged=" + name_of(alloc);
  std::string result = runtime_attributes(pointer) + " " + driver_attributes(pointer);
  a.free(pointer);
  return result;
}

std::string address_range() {
  const Api& a = api();
  if (auto skip = missing(a.malloc, a.cu_alloc, a.cu_free, a.cu_address_range); !skip.empty()) {
    return skip;
  }
  a.free(nullptr);  // initializes the runtime, whose primary context becomes current
  CUdeviceptr allocation = 0;
  CUresult alloc = a.cu_alloc(&allocation, 3 * kMiB);
  if (alloc != CUDA_SUCCESS) return "cuMemAlloc=" + name_of(alloc);
  std::string result;
  for (size_t offset : {size_t{0}, kMiB + 12345, 3 * kMiB - 1}) {
    CUdeviceptr base = 0;
    size_t size = 0;
    CUresult range = a.cu_address_range(&base, &size, allocation + offset);
    char text[120];
    std::snprintf(text, sizeof text, "%s+%zu{%s base=%s size=%zu}", result.empty() ? "" : " ",
                  offset, name_of(range).c_str(), base == allocation ? "allocation" : "other",
                  size);
    result += text;
  }
  a.cu_free(allocation);
  return result;
}

std::string memcpy_kinds() {
  const Api& a = api();
  if (auto skip = missing(a.malloc, a.free, a.memcpy); !skip.empty()) return skip;
  constexpr size_t kSize = 4 * kMiB + 4096;
  std::vector<unsigned char> source = pattern(kSize, 1);
  std::vector<unsigned char> back(kSize, 0);
  std::vector<unsigned char> back_default(kSize, 0);
  void* first = nullptr;
  void* second = nullptr;
  cudaError_t alloc_first = a.malloc(&first, kSize);
  cudaError_t alloc_second = a.malloc(&second, kSize);
  if (alloc_first != cudaSuccess || alloc_second != cudaSuccess) {
    return "cudaMalloc=" + name_of(alloc_first) + "," + name_of(alloc_second);
  }
  cudaError_t htod = a.memcpy(first, source.data(), kSize, cudaMemcpyHostToDevice);
  cudaError_t dtod = a.memcpy(second, first, kSize, cudaMemcpyDeviceToDevice);
  cudaError_t dtoh = a.memcpy(back.data(), second, kSize, cudaMemcpyDeviceToHost);
  // cudaMemcpyDefault: the direction comes from the pointers (unified addressing).
  cudaError_t default_in = a.memcpy(first, source.data() + 7, kSize - 7, cudaMemcpyDefault);
  cudaError_t default_out = a.memcpy(back_default.data(), first, kSize - 7, cudaMemcpyDefault);
  a.free(first);
  a.free(second);
  return "HtoD=" + name_of(htod) + " DtoD=" + name_of(dtod) + " DtoH=" + name_of(dtoh) +
         " default=" + name_of(default_in) + "," + name_of(default_out) +
         " roundtrip=" + (back == source ? "equal" : "DIFFERENT") + " default_roundtrip=" +
         (std::memcmp(back_default.data(), source.data() + 7, kSize - 7) == 0 ? "equal"
                                                                              : "DIFFERENT") +
         " sum=" + checksum(back.data(), kSize);
}

std::string memset_check() {
  const Api& a = api();
  if (auto skip = missing(a.malloc, a.free, a.memcpy, a.memset); !skip.empty()) return skip;
  constexpr size_t kSize = 3 * kMiB + 100;
  void* pointer = nullptr;
  cudaError_t alloc = a.malloc(&pointer, kSize);
  if (alloc != cudaSuccess) return "cudaMalloc=" + name_of(alloc);
  cudaError_t whole = a.memset(pointer, 0xAB, kSize);
  cudaError_t part = a.memset(static_cast<char*>(pointer) + 1001, 0x5C, 70000);
  std::vector<unsigned char> back(kSize, 0);
  cudaError_t copy = a.memcpy(back.data(), pointer, kSize, cudaMemcpyDeviceToHost);
  a.free(pointer);
  std::vector<unsigned char> expected(kSize, 0xAB);
  std::memset(expected.data() + 1001, 0x5C, 70000);
  return "whole=" + name_of(whole) + " part=" + name_of(part) + " copy=" + name_of(copy) +
         " data=" + (back == expected ? "as-set" : "WRONG") +
         " sum=" + checksum(back.data(), kSize);
}

std::string copies_2d() {
  const Api& a = api();
  if (auto skip = missing(a.malloc_pitch, a.free, a.memcpy_2d); !skip.empty()) return skip;
  constexpr size_t kWidth = 1000;  // bytes per row; the pitch rounds it up
  constexpr size_t kHeight = 300;
  void* first = nullptr;
  void* second = nullptr;
  size_t pitch_first = 0;
  size_t pitch_second = 0;
  cudaError_t alloc_first = a.malloc_pitch(&first, &pitch_first, kWidth, kHeight);
  cudaError_t alloc_second = a.malloc_pitch(&second, &pitch_second, kWidth, kHeight);
  if (alloc_first != cudaSuccess || alloc_second != cudaSuccess) {
    return "cudaMallocPitch=" + name_of(alloc_first) + "," + name_of(alloc_second);
  }
  std::vector<unsigned char> source = pattern(kWidth * kHeight, 3);
  std::vector<unsigned char> back(kWidth * kHeight, 0);
  cudaError_t in = a.memcpy_2d(first, pitch_first, source.data(), kWidth, kWidth, kHeight,
                               cudaMemcpyHostToDevice);
  cudaError_t across = a.memcpy_2d(second, pitch_second, first, pitch_first, kWidth, kHeight,
                                   cudaMemcpyDeviceToDevice);
  cudaError_t out = a.memcpy_2d(back.data(), kWidth, second, pitch_second, kWidth, kHeight,
                                cudaMemcpyDeviceToHost);
  a.free(first);
  a.free(second);
  return "pitch=" + std::to_string(pitch_first) + "," + std::to_string(pitch_second) +
         " HtoD=" + name_of(in) + " DtoD=" + name_of(across) + " to_host=" + name_of(out) +
         " roundtrip=" + (back == source ? "equal" : "DIFFERENT");
}

std::string managed_attach() {
  const Api& a = api();
  if (auto skip = missing(a.malloc_managed, a.free, a.stream_create, a.stream_destroy, a.attach,
                          a.stream_synchronize);
      !skip.empty()) {
    return skip;
  }
  constexpr size_t kSize = 2 * kMiB;
  char* pointer = nullptr;
  cudaError_t alloc =
      a.malloc_managed(reinterpret_cast<void**>(&pointer), kSize, cudaMemAttachHost);
  if (alloc != cudaSuccess) return "cudaMallocManaged=" + name_of(alloc);
  cudaStream_t stream = nullptr;
  cudaError_t create = a.stream_create(&stream);
  cudaError_t single = a.attach(stream, pointer, 0, cudaMemAttachSingle);
  cudaError_t sync_single = a.stream_synchronize(stream);
  pointer[kSize - 1] = 42;  // the host may touch it once the stream is idle
  cudaError_t global = a.attach(stream, pointer, 0, cudaMemAttachGlobal);
  cudaError_t host = a.attach(stream, pointer, 0, cudaMemAttachHost);
  cudaError_t sync = a.stream_synchronize(stream);
  cudaError_t interior = a.attach(stream, pointer + 4096, 0, cudaMemAttachSingle);
  int value = pointer[kSize - 1];
  a.stream_destroy(stream);
  a.free(pointer);
  return "stream=" + name_of(create) + " single=" + name_of(single) + "," + name_of(sync_single) +
         " global=" + name_of(global) + " host=" + name_of(host) + " sync=" + name_of(sync) +
         " interior_whole=" + name_of(interior) + " host_value=" + std::to_string(value);
}

cudaMemLocation device_location(int device) {
  cudaMemLocation location{};
  location.type = cudaMemLocationTypeDevice;
  location.id = device;
  return location;
}

cudaMemLocation host_location() {
  cudaMemLocation location{};
  location.type = cudaMemLocationTypeHost;
  location.id = 0;
  return location;
}

std::string managed_prefetch() {
  const Api& a = api();
  if (auto skip = missing(a.malloc_managed, a.free, a.prefetch, a.synchronize); !skip.empty()) {
    return skip;
  }
  constexpr size_t kSize = 4 * kMiB;
  char* pointer = nullptr;
  cudaError_t alloc =
      a.malloc_managed(reinterpret_cast<void**>(&pointer), kSize, cudaMemAttachGlobal);
  if (alloc != cudaSuccess) return "cudaMallocManaged=" + name_of(alloc);
  std::memset(pointer, 7, kSize);
  cudaError_t to_device = a.prefetch(pointer, kSize, device_location(0), 0, nullptr);
  cudaError_t part = a.prefetch(pointer + kMiB, kMiB, device_location(0), 0, nullptr);
  cudaError_t sync = a.synchronize();
  cudaError_t to_host = a.prefetch(pointer, kSize, host_location(), 0, nullptr);
  cudaError_t sync_host = a.synchronize();
  cudaError_t too_long = a.prefetch(pointer, kSize + 8 * kMiB, device_location(0), 0, nullptr);
  cudaError_t bad_device = a.prefetch(pointer, kSize, device_location(999), 0, nullptr);
  a.synchronize();
  std::string data = pointer[0] == 7 && pointer[kSize - 1] == 7 ? "kept" : "LOST";
  a.free(pointer);
  return "device=" + name_of(to_device) + " part=" + name_of(part) + " sync=" + name_of(sync) +
         " host=" + name_of(to_host) + "," + name_of(sync_host) + " past_end=" + name_of(too_long) +
         " bad_device=" + name_of(bad_device) + " data=" + data;
}

std::string managed_advise() {
  const Api& a = api();
  if (auto skip = missing(a.malloc_managed, a.free, a.advise); !skip.empty()) return skip;
  constexpr size_t kSize = 4 * kMiB;
  void* pointer = nullptr;
  cudaError_t alloc = a.malloc_managed(&pointer, kSize, cudaMemAttachGlobal);
  if (alloc != cudaSuccess) return "cudaMallocManaged=" + name_of(alloc);
  std::string result;
  const std::pair<const char*, cudaMemoryAdvise> advice[] = {
      {"SetReadMostly", cudaMemAdviseSetReadMostly},
      {"UnsetReadMostly", cudaMemAdviseUnsetReadMostly},
      {"SetPreferredLocation", cudaMemAdviseSetPreferredLocation},
      {"UnsetPreferredLocation", cudaMemAdviseUnsetPreferredLocation},
      {"SetAccessedBy", cudaMemAdviseSetAccessedBy},
      {"UnsetAccessedBy", cudaMemAdviseUnsetAccessedBy}};
  for (const auto& [name, value] : advice) {
    result += std::string(name) + "=" +
              name_of(a.advise(pointer, kSize, value, device_location(0))) + " ";
  }
  result += "PreferredLocation(host)=" +
            name_of(a.advise(pointer, kSize, cudaMemAdviseSetPreferredLocation, host_location()));
  a.free(pointer);
  return result;
}

std::string range_attributes() {
  const Api& a = api();
  if (auto skip = missing(a.malloc_managed, a.free, a.advise, a.range_attribute); !skip.empty()) {
    return skip;
  }
  constexpr size_t kSize = 4 * kMiB;
  void* pointer = nullptr;
  cudaError_t alloc = a.malloc_managed(&pointer, kSize, cudaMemAttachGlobal);
  if (alloc != cudaSuccess) return "cudaMallocManaged=" + name_of(alloc);
  auto query = [&](cudaMemRangeAttribute attribute) {
    int value = -12345;
    cudaError_t error = a.range_attribute(&value, sizeof value, attribute, pointer, kSize);
    return name_of(error) + ":" + std::to_string(value);
  };
  std::string result = "read_mostly_before=" + query(cudaMemRangeAttributeReadMostly);
  a.advise(pointer, kSize, cudaMemAdviseSetReadMostly, device_location(0));
  result += " read_mostly_after=" + query(cudaMemRangeAttributeReadMostly);
  a.advise(pointer, kSize, cudaMemAdviseSetPreferredLocation, device_location(0));
  result += " preferred_location=" + query(cudaMemRangeAttributePreferredLocation);
  result += " preferred_location_type=" + query(cudaMemRangeAttributePreferredLocationType);
  int small = 0;
  cudaError_t too_small =
      a.range_attribute(&small, 1, cudaMemRangeAttributeReadMostly, pointer, kSize);
  result += " one_byte_buffer=" + name_of(too_small);
  a.free(pointer);
  return result;
}

// Apart from the other attributes: the shim may report where redirected
// memory really is (the host) rather than where it was asked to go.
std::string last_prefetch_location() {
  const Api& a = api();
  if (auto skip = missing(a.malloc_managed, a.free, a.prefetch, a.synchronize, a.range_attribute);
      !skip.empty()) {
    return skip;
  }
  constexpr size_t kSize = 2 * kMiB;
  void* pointer = nullptr;
  cudaError_t alloc = a.malloc_managed(&pointer, kSize, cudaMemAttachGlobal);
  if (alloc != cudaSuccess) return "cudaMallocManaged=" + name_of(alloc);
  a.prefetch(pointer, kSize, device_location(0), 0, nullptr);
  a.synchronize();
  int location = -12345;
  cudaError_t error = a.range_attribute(&location, sizeof location,
                                        cudaMemRangeAttributeLastPrefetchLocation, pointer, kSize);
  a.free(pointer);
  return "after_device_prefetch=" + name_of(error) + ":" + std::to_string(location);
}

std::string ipc_export() {
  const Api& a = api();
  if (auto skip = missing(a.malloc, a.free, a.ipc_get_handle); !skip.empty()) return skip;
  void* pointer = nullptr;
  cudaError_t alloc = a.malloc(&pointer, 4 * kMiB);
  if (alloc != cudaSuccess) return "cudaMalloc=" + name_of(alloc);
  cudaIpcMemHandle_t handle{};
  cudaError_t error = a.ipc_get_handle(&handle, pointer);
  a.free(pointer);
  return "cudaIpcGetMemHandle=" + name_of(error);
}

// Captures cudaMallocAsync -> memset -> copy out -> cudaFreeAsync into a
// graph, then launches it three times and checks each launch's output.
std::string graph_capture() {
  const Api& a = api();
  if (auto skip = missing(a.stream_create, a.stream_destroy, a.stream_synchronize, a.begin_capture,
                          a.end_capture, a.malloc_async, a.free_async, a.memset_async,
                          a.memcpy_async, a.malloc_host, a.free_host, a.graph_instantiate,
                          a.graph_launch, a.graph_exec_destroy, a.graph_destroy);
      !skip.empty()) {
    return skip;
  }
  constexpr size_t kSize = 3 * kMiB;
  cudaStream_t stream = nullptr;
  a.stream_create(&stream);
  unsigned char* host = nullptr;
  cudaError_t pinned = a.malloc_host(reinterpret_cast<void**>(&host), kSize);
  if (pinned != cudaSuccess) return "cudaMallocHost=" + name_of(pinned);
  cudaError_t begin = a.begin_capture(stream, cudaStreamCaptureModeGlobal);
  void* scratch = nullptr;
  cudaError_t alloc = a.malloc_async(&scratch, kSize, stream);
  cudaError_t set = a.memset_async(scratch, 0x3D, kSize, stream);
  cudaError_t copy = a.memcpy_async(host, scratch, kSize, cudaMemcpyDeviceToHost, stream);
  cudaError_t release = a.free_async(scratch, stream);
  cudaGraph_t graph = nullptr;
  cudaError_t end = a.end_capture(stream, &graph);
  cudaGraphExec_t exec = nullptr;
  cudaError_t instantiate =
      end == cudaSuccess ? a.graph_instantiate(&exec, graph, 0) : cudaErrorInvalidValue;
  int right = 0;
  std::string launches;
  for (int launch = 0; launch < 3 && instantiate == cudaSuccess; ++launch) {
    std::memset(host, 0, kSize);
    cudaError_t run = a.graph_launch(exec, stream);
    cudaError_t sync = a.stream_synchronize(stream);
    launches += name_of(run) + "/" + name_of(sync) + " ";
    bool as_set = true;
    for (size_t i = 0; i < kSize; i += 4099) as_set = as_set && host[i] == 0x3D;
    right += as_set && host[kSize - 1] == 0x3D;
  }
  if (exec) a.graph_exec_destroy(exec);
  if (graph) a.graph_destroy(graph);
  a.free_host(host);
  a.stream_destroy(stream);
  return "begin=" + name_of(begin) + " mallocAsync=" + name_of(alloc) + " memset=" + name_of(set) +
         " copy=" + name_of(copy) + " freeAsync=" + name_of(release) + " end=" + name_of(end) +
         " instantiate=" + name_of(instantiate) + " launches=" + launches +
         "right=" + std::to_string(right) + "/3";
}

// cudaMallocAsync / cudaFreeAsync on a stream, outside any capture, twice:
// the second allocation may reuse the first's memory.
std::string stream_ordered() {
  const Api& a = api();
  if (auto skip = missing(a.stream_create, a.stream_destroy, a.stream_synchronize, a.malloc_async,
                          a.free_async, a.memset, a.memcpy);
      !skip.empty()) {
    return skip;
  }
  constexpr size_t kSize = 3 * kMiB + 8;
  cudaStream_t stream = nullptr;
  cudaError_t create = a.stream_create(&stream);
  std::string result = "stream=" + name_of(create);
  for (int round = 0; round < 2; ++round) {
    void* pointer = nullptr;
    cudaError_t alloc = a.malloc_async(&pointer, kSize, stream);
    cudaError_t sync = a.stream_synchronize(stream);
    cudaError_t set = a.memset(pointer, 0x11 * (round + 1), kSize);
    std::vector<unsigned char> back(kSize, 0);
    cudaError_t copy = a.memcpy(back.data(), pointer, kSize, cudaMemcpyDeviceToHost);
    bool as_set = true;
    for (unsigned char byte : back) as_set = as_set && byte == 0x11 * (round + 1);
    cudaError_t release = a.free_async(pointer, stream);
    cudaError_t done = a.stream_synchronize(stream);
    result += " round" + std::to_string(round) + "{" + name_of(alloc) + " " + name_of(sync) + " " +
              name_of(set) + " " + name_of(copy) + " " + (as_set ? "as-set" : "WRONG") + " " +
              name_of(release) + " " + name_of(done) + "}";
  }
  a.stream_destroy(stream);
  return result;
}

// The driver's stream-ordered pair on the null stream.
std::string driver_stream_ordered() {
  const Api& a = api();
  if (auto skip = missing(a.free, a.cu_alloc_async, a.cu_free_async, a.cu_synchronize,
                          a.cu_memset_d32, a.cu_memcpy);
      !skip.empty()) {
    return skip;
  }
  a.free(nullptr);  // the runtime's primary context, current
  constexpr size_t kSize = 2 * kMiB + 4096;
  CUdeviceptr pointer = 0;
  CUresult alloc = a.cu_alloc_async(&pointer, kSize, nullptr);
  CUresult sync = a.cu_synchronize();
  std::string result = "cuMemAllocAsync=" + name_of(alloc) + " sync=" + name_of(sync);
  if (alloc != CUDA_SUCCESS) return result;
  CUresult set = a.cu_memset_d32(pointer, 0x01020304u, kSize / 4);
  std::vector<unsigned int> back(kSize / 4, 0);
  CUresult copy = a.cu_memcpy(reinterpret_cast<CUdeviceptr>(back.data()), pointer, kSize);
  bool as_set = true;
  for (unsigned int word : back) as_set = as_set && word == 0x01020304u;
  CUresult release = a.cu_free_async(pointer, nullptr);
  CUresult done = a.cu_synchronize();
  return result + " memsetD32=" + name_of(set) + " memcpy=" + name_of(copy) +
         " data=" + (as_set ? "as-set" : "WRONG") + " cuMemFreeAsync=" + name_of(release) +
         " sync=" + name_of(done);
}

// 8 threads allocate, fill, read back and free, at sizes across the pool's range.
std::string threads() {
  const Api& a = api();
  if (auto skip = missing(a.malloc, a.free, a.memset, a.memcpy); !skip.empty()) return skip;
  constexpr int kThreads = 8;
  constexpr int kRounds = 60;
  std::atomic<int> errors{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> workers;
  for (int thread = 0; thread < kThreads; ++thread) {
    workers.emplace_back([&, thread] {
      for (int round = 0; round < kRounds; ++round) {
        size_t size = (size_t{4096} << (round % 10)) + 64 * thread;  // 4 KiB .. 2 MiB
        void* pointer = nullptr;
        if (a.malloc(&pointer, size) != cudaSuccess) {
          ++errors;
          continue;
        }
        unsigned char value = static_cast<unsigned char>(thread * 16 + round);
        unsigned char tail[64] = {};
        if (a.memset(pointer, value, size) != cudaSuccess ||
            a.memcpy(tail, static_cast<char*>(pointer) + size - sizeof tail, sizeof tail,
                     cudaMemcpyDeviceToHost) != cudaSuccess) {
          ++errors;
        } else if (tail[0] != value || tail[sizeof tail - 1] != value) {
          ++wrong;
        }
        if (a.free(pointer) != cudaSuccess) ++errors;
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  return std::to_string(kThreads) + "x" + std::to_string(kRounds) +
         " errors=" + std::to_string(errors.load()) + " wrong=" + std::to_string(wrong.load());
}

std::string driver_api() {
  const Api& a = api();
  if (auto skip = missing(a.cu_init, a.cu_device_get, a.cu_retain, a.cu_release, a.cu_set_current,
                          a.cu_alloc, a.cu_free, a.cu_memset_d32, a.cu_memcpy);
      !skip.empty()) {
    return skip;
  }
  CUresult init = a.cu_init(0);
  CUdevice device = 0;
  CUcontext context = nullptr;
  CUresult get = a.cu_device_get(&device, 0);
  CUresult retain = a.cu_retain(&context, device);
  CUresult current = a.cu_set_current(context);
  constexpr size_t kSize = 5 * kMiB + 12;
  CUdeviceptr first = 0;
  CUdeviceptr second = 0;
  CUresult alloc_first = a.cu_alloc(&first, kSize);
  CUresult alloc_second = a.cu_alloc(&second, kSize);
  std::string result = "init=" + name_of(init) + " device=" + name_of(get) +
                       " retain=" + name_of(retain) + " current=" + name_of(current) +
                       " alloc=" + name_of(alloc_first) + "," + name_of(alloc_second);
  if (alloc_first == CUDA_SUCCESS && alloc_second == CUDA_SUCCESS) {
    CUresult set = a.cu_memset_d32(first, 0xDEADBEEF, kSize / 4);
    CUresult copy = a.cu_memcpy(second, first, kSize);
    std::vector<unsigned int> back(kSize / 4, 0);
    // Unified addressing: the host buffer's address works as a CUdeviceptr.
    CUresult out = a.cu_memcpy(reinterpret_cast<CUdeviceptr>(back.data()), second, kSize / 4 * 4);
    bool as_set = true;
    for (unsigned int word : back) as_set = as_set && word == 0xDEADBEEF;
    result += " memsetD32=" + name_of(set) + " memcpy=" + name_of(copy) +
              " to_host=" + name_of(out) + " data=" + (as_set ? "as-set" : "WRONG");
  }
  if (alloc_first == CUDA_SUCCESS) result += " free=" + name_of(a.cu_free(first));
  if (alloc_second == CUDA_SUCCESS) result += "," + name_of(a.cu_free(second));
  CUdeviceptr never = 0;
  result += " free_unknown=" + name_of(a.cu_free(never + 4096));
  if (retain == CUDA_SUCCESS) a.cu_release(device);
  return result;
}

}  // namespace

const std::vector<Check>& host_checks() {
  static const std::vector<Check> checks = {
      {"cuda.device", device},
      {"pointer-attributes.device", pointer_device},
      {"pointer-attributes.managed", pointer_managed},
      {"address-range.cuMemAlloc-3MiB", address_range},
      {"memcpy.all-kinds", memcpy_kinds},
      {"memset", memset_check},
      {"memcpy-2d.pitched", copies_2d},
      {"managed.attach", managed_attach},
      {"managed.prefetch", managed_prefetch},
      {"managed.advise", managed_advise},
      {"managed.range-attributes", range_attributes},
      {"managed.last-prefetch-location", last_prefetch_location},
      {"ipc.export", ipc_export},
      {"stream-ordered.malloc-async", stream_ordered},
      {"graph.capture-malloc-async", graph_capture},
      {"threads.8-alloc-free", threads},
      {"driver-api", driver_api},
      {"driver-api.stream-ordered", driver_stream_ordered},
  };
  return checks;
}

}  // namespace egm::compat
