// A CUDA program for the fidelity LD_PRELOAD tests: `fidelity_program
// SCENARIO`. It asks the CUDA memory APIs about its allocations the way
// unified-memory codes and frameworks do (managed attach, prefetch, advise,
// range attributes, pointer queries, address ranges, stream capture),
// runtime and driver, directly and through cuGetProcAddress. stdout carries
// every answer and must read the same with and without libegm.so;
// ALLOC_PROGRAM_REPORT gets where each allocation came from. Built for the
// GPU machine too (tests/gpu:fidelity_gpu_program, run_fidelity.sh).
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "tests/doubles/fake_control.h"
#include "tests/preload/program_support.h"

namespace {

using test_program::report;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kManagedSize = 5 * kMiB;
constexpr size_t kSmallManaged = 1 * kMiB;  // under the tests' EGM_MIN_SIZE: not redirected
constexpr size_t kDeviceSize = 3 * kMiB + 123;

const char* name_of(cudaError_t error) { return cudaGetErrorName(error); }

const char* name_of(CUresult result) {
  const char* name = nullptr;
  return cuGetErrorName(result, &name) == CUDA_SUCCESS && name ? name : "CUDA_ERROR_UNKNOWN_CODE";
}

void report_origin(const std::string& label, const void* pointer) {
  report(label + ".redirected", fake_cuda_mapping_of(pointer, nullptr, nullptr) == 1 ? "1" : "0");
}

cudaMemLocation device_location(int device) { return {cudaMemLocationTypeDevice, device}; }
cudaMemLocation host_location() { return {cudaMemLocationTypeHost, 0}; }

void print_range_attributes(const char* label, const void* pointer, size_t count) {
  const cudaMemRangeAttribute attributes[] = {
      cudaMemRangeAttributeReadMostly,
      cudaMemRangeAttributePreferredLocation,
      cudaMemRangeAttributeLastPrefetchLocation,
      cudaMemRangeAttributePreferredLocationType,
      cudaMemRangeAttributePreferredLocationId,
      cudaMemRangeAttributeLastPrefetchLocationType,
      cudaMemRangeAttributeLastPrefetchLocationId};
  for (cudaMemRangeAttribute attribute : attributes) {
    int value = 12345;
    cudaError_t result = cudaMemRangeGetAttribute(&value, sizeof value, attribute, pointer, count);
    std::printf("%s range_attribute(%d)=%s value=%d\n", label, attribute, name_of(result),
                result == cudaSuccess ? value : 12345);
  }
  int accessed_by[3] = {7, 7, 7};
  cudaError_t result = cudaMemRangeGetAttribute(accessed_by, sizeof accessed_by,
                                                cudaMemRangeAttributeAccessedBy, pointer, count);
  std::printf("%s accessed_by=%s [%d %d %d]\n", label, name_of(result), accessed_by[0],
              accessed_by[1], accessed_by[2]);
  int read_mostly = 9, preferred = 9;
  void* data[] = {&read_mostly, &preferred};
  size_t sizes[] = {sizeof(int), sizeof(int)};
  cudaMemRangeAttribute both[] = {cudaMemRangeAttributeReadMostly,
                                  cudaMemRangeAttributePreferredLocation};
  result = cudaMemRangeGetAttributes(data, sizes, both, 2, pointer, count);
  std::printf("%s range_attributes=%s read_mostly=%d preferred=%d\n", label, name_of(result),
              read_mostly, preferred);
}

void print_pointer_attributes(const char* label, const void* pointer, const void* base) {
  cudaPointerAttributes attributes{};
  cudaError_t result = cudaPointerGetAttributes(&attributes, pointer);
  std::printf("%s pointer_attributes=%s type=%d device=%d device_pointer_is_pointer=%d "
              "host_pointer=%s\n",
              label, name_of(result), attributes.type, attributes.device,
              attributes.devicePointer == pointer,
              attributes.hostPointer == nullptr   ? "null"
              : attributes.hostPointer == pointer ? "pointer"
                                                  : "other");
  (void)base;
}

// ---- runtime: managed calls, the shim's and not the shim's, mixed ----

int scenario_runtime() {
  void* managed = nullptr;
  void* small = nullptr;
  void* device = nullptr;
  cudaStream_t stream = nullptr;
  std::printf("managed=%s\n", name_of(cudaMallocManaged(&managed, kManagedSize, cudaMemAttachGlobal)));
  std::printf("small=%s\n", name_of(cudaMallocManaged(&small, kSmallManaged, cudaMemAttachGlobal)));
  std::printf("device=%s\n", name_of(cudaMalloc(&device, kDeviceSize)));
  std::printf("stream=%s\n", name_of(cudaStreamCreate(&stream)));
  if (!managed || !small || !device) return 1;
  report_origin("managed", managed);
  report_origin("small", small);
  report_origin("device", device);
  char* bytes = static_cast<char*>(managed);

  // attach: the whole allocation only
  std::printf("attach=%s\n", name_of(cudaStreamAttachMemAsync(stream, managed, 0, cudaMemAttachSingle)));
  std::printf("attach_whole=%s\n",
              name_of(cudaStreamAttachMemAsync(stream, managed, kManagedSize, cudaMemAttachGlobal)));
  std::printf("attach_part=%s\n", name_of(cudaStreamAttachMemAsync(stream, managed, 4096, cudaMemAttachGlobal)));
  std::printf("attach_small=%s\n", name_of(cudaStreamAttachMemAsync(stream, small, 0, cudaMemAttachHost)));
  std::printf("attach_device=%s\n", name_of(cudaStreamAttachMemAsync(stream, device, 0, cudaMemAttachGlobal)));

  print_range_attributes("fresh", managed, kManagedSize);
  // prefetch: valid, invalid target, flags, mixed range, not the shim's
  std::printf("prefetch_device=%s\n",
              name_of(cudaMemPrefetchAsync(bytes + 4096, kMiB, device_location(0), 0, stream)));
  std::printf("prefetch_bad_device=%s\n",
              name_of(cudaMemPrefetchAsync(managed, kMiB, device_location(5), 0, stream)));
  std::printf("prefetch_flags=%s\n",
              name_of(cudaMemPrefetchAsync(managed, kMiB, device_location(0), 1, stream)));
  std::printf("prefetch_mixed=%s\n",
              name_of(cudaMemPrefetchAsync(managed, kManagedSize + 4096, device_location(0), 0, stream)));
  std::printf("prefetch_small=%s\n",
              name_of(cudaMemPrefetchAsync(small, kSmallManaged, host_location(), 0, stream)));
  std::printf("prefetch_device_memory=%s\n",
              name_of(cudaMemPrefetchAsync(device, kMiB, device_location(0), 0, stream)));
  // CUDA keeps hints per page: only the prefetched pages say device 0.
  print_range_attributes("prefetched", managed, kManagedSize);
  print_range_attributes("prefetched_part", bytes + 4096, kMiB);
  print_range_attributes("prefetched_first_page", bytes + 100, 200);  // rounded out: page 0
  print_range_attributes("prefetched_inner_page", bytes + 4096 + 100, 200);
  print_range_attributes("small", small, kSmallManaged);

  // advice
  std::printf("advise_read_mostly=%s\n",
              name_of(cudaMemAdvise(managed, kManagedSize, cudaMemAdviseSetReadMostly, device_location(0))));
  std::printf("advise_preferred=%s\n",
              name_of(cudaMemAdvise(managed, kManagedSize, cudaMemAdviseSetPreferredLocation, device_location(0))));
  std::printf("advise_accessed_by=%s\n",
              name_of(cudaMemAdvise(managed, kManagedSize, cudaMemAdviseSetAccessedBy, device_location(0))));
  std::printf("advise_accessed_by_host=%s\n",
              name_of(cudaMemAdvise(managed, kManagedSize, cudaMemAdviseSetAccessedBy, host_location())));
  std::printf("advise_bad=%s\n",
              name_of(cudaMemAdvise(managed, kManagedSize, static_cast<cudaMemoryAdvise>(42), device_location(0))));
  std::printf("advise_mixed=%s\n",
              name_of(cudaMemAdvise(bytes - 4096, kMiB, cudaMemAdviseSetReadMostly, device_location(0))));
  std::printf("advise_device_memory=%s\n",
              name_of(cudaMemAdvise(device, kMiB, cudaMemAdviseSetReadMostly, device_location(0))));
  print_range_attributes("advised", managed, kManagedSize);
  // Overlapping advice on parts: each page keeps what was set on it last.
  std::printf("advise_part_unset_read_mostly=%s\n",
              name_of(cudaMemAdvise(bytes + 2 * kMiB, kMiB, cudaMemAdviseUnsetReadMostly,
                                    device_location(0))));
  std::printf("advise_part_preferred_host=%s\n",
              name_of(cudaMemAdvise(bytes + 2 * kMiB + 4096, 4096,
                                    cudaMemAdviseSetPreferredLocation, host_location())));
  std::printf("advise_part_unset_accessed_by=%s\n",
              name_of(cudaMemAdvise(bytes + 3 * kMiB, 4096, cudaMemAdviseUnsetAccessedBy,
                                    device_location(0))));
  print_range_attributes("advised_parts", managed, kManagedSize);
  print_range_attributes("advised_first_2mib", managed, 2 * kMiB);
  print_range_attributes("advised_host_page", bytes + 2 * kMiB + 4096, 4096);
  print_range_attributes("advised_unset_page", bytes + 3 * kMiB + 8, 16);
  std::printf("range_attribute_device_memory=%s\n", [&] {
    int value = 0;
    return name_of(cudaMemRangeGetAttribute(&value, sizeof value, cudaMemRangeAttributeReadMostly, device, kMiB));
  }());

  // a batch: the shim's managed memory and other managed memory, two locations
  void* pointers[] = {managed, small, bytes + kMiB};
  size_t sizes[] = {kMiB, kSmallManaged, kMiB};
  cudaMemLocation locations[] = {host_location(), device_location(0)};
  size_t starts[] = {0, 1};
  std::printf("prefetch_batch=%s\n",
              name_of(cudaMemPrefetchBatchAsync(pointers, sizes, 3, locations, starts, 2, 0, stream)));
  std::printf("batch_sync=%s\n", name_of(cudaStreamSynchronize(stream)));
  print_range_attributes("batched", managed, kManagedSize);
  print_range_attributes("batched_host_part", managed, kMiB);
  print_range_attributes("batched_device_part", bytes + kMiB, kMiB);
  print_range_attributes("batched_small", small, kSmallManaged);
  std::printf("discard_batch=%s\n", name_of(cudaMemDiscardBatchAsync(pointers, sizes, 3, 0, stream)));
  void* mixed_pointers[] = {managed, device};
  std::printf("discard_batch_device_memory=%s\n",
              name_of(cudaMemDiscardBatchAsync(mixed_pointers, sizes, 2, 0, stream)));

  // pointer queries
  print_pointer_attributes("managed", managed, managed);
  print_pointer_attributes("managed_interior", bytes + 100, managed);
  print_pointer_attributes("small", small, small);
  print_pointer_attributes("device", device, device);
  print_pointer_attributes("device_interior", static_cast<char*>(device) + 100, device);

  std::printf("free_managed=%s\n", name_of(cudaFree(managed)));
  std::printf("free_small=%s\n", name_of(cudaFree(small)));
  std::printf("free_device=%s\n", name_of(cudaFree(device)));
  std::printf("stream_destroy=%s\n", name_of(cudaStreamDestroy(stream)));
  report("end.cuda_mappings", std::to_string(fake_cuda_live_mappings()));
  report("end.cuda_allocations", std::to_string(fake_cuda_live_allocations()));
  return 0;
}

// ---- driver: every version, directly and through cuGetProcAddress ----

template <typename Fn>
Fn proc(const char* name, int version) {
  void* function = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  cuGetProcAddress(name, &function, version, CU_GET_PROC_ADDRESS_DEFAULT, &status);
  std::printf("proc(%s,%d)=%s\n", name, version, function ? "found" : "missing");
  return reinterpret_cast<Fn>(function);
}

using PrefetchV1 = CUresult (*)(CUdeviceptr, size_t, CUdevice, CUstream);
using AdviseV1 = CUresult (*)(CUdeviceptr, size_t, CUmem_advise, CUdevice);

void print_pointer_attribute(const char* label, CUdeviceptr pointer, CUdeviceptr base) {
  // Each call before its printf: argument evaluation order is unspecified.
  unsigned memory_type = 0, is_managed = 7;
  void* host = reinterpret_cast<void*>(1);
  CUdeviceptr start = 0;
  size_t size = 0;
  int ordinal = -7;
  CUresult result = cuPointerGetAttribute(&memory_type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, pointer);
  std::printf("%s memory_type=%s:%u\n", label, name_of(result), memory_type);
  result = cuPointerGetAttribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, pointer);
  std::printf("%s is_managed=%s:%u\n", label, name_of(result), is_managed);
  result = cuPointerGetAttribute(&host, CU_POINTER_ATTRIBUTE_HOST_POINTER, pointer);
  std::printf("%s host_pointer=%s:%s\n", label, name_of(result),
              result != CUDA_SUCCESS                       ? "-"
              : host == reinterpret_cast<void*>(pointer) ? "pointer"
                                                         : "other");
  result = cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, pointer);
  std::printf("%s range_start_is_base=%s:%d\n", label, name_of(result), start == base);
  result = cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, pointer);
  std::printf("%s range_size=%s:%zu\n", label, name_of(result), size);
  result = cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, pointer);
  std::printf("%s ordinal=%s:%d\n", label, name_of(result), ordinal);
  CUpointer_attribute asked[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_IS_MANAGED,
                                 CU_POINTER_ATTRIBUTE_HOST_POINTER, CU_POINTER_ATTRIBUTE_RANGE_SIZE};
  unsigned type2 = 0, managed2 = 7;
  void* host2 = reinterpret_cast<void*>(1);
  size_t size2 = 0;
  void* data[] = {&type2, &managed2, &host2, &size2};
  result = cuPointerGetAttributes(4, asked, data, pointer);
  std::printf("%s attributes=%s:%u,%u,%s,%zu\n", label, name_of(result), type2, managed2,
              host2 == nullptr                             ? "null"
              : host2 == reinterpret_cast<void*>(pointer) ? "pointer"
                                                          : "other",
              size2);
  CUdeviceptr range_base = 0;
  size_t range_size = 0;
  result = cuMemGetAddressRange(&range_base, &range_size, pointer);
  std::printf("%s address_range=%s:%d,%zu\n", label, name_of(result), range_base == base,
              range_size);
}

int scenario_driver() {
  std::printf("init=%s\n", name_of(cuInit(0)));
  // The device's primary context, as the runtime would use (a real driver needs one).
  CUdevice gpu_device = 0;
  CUcontext context = nullptr;
  std::printf("device_get=%s\n", name_of(cuDeviceGet(&gpu_device, 0)));
  std::printf("retain=%s\n", name_of(cuDevicePrimaryCtxRetain(&context, gpu_device)));
  std::printf("set_current=%s\n", name_of(cuCtxSetCurrent(context)));
  CUdeviceptr managed = 0, device = 0, async = 0;
  std::printf("managed=%s\n", name_of(cuMemAllocManaged(&managed, kManagedSize, CU_MEM_ATTACH_GLOBAL)));
  std::printf("device=%s\n", name_of(cuMemAlloc(&device, kDeviceSize)));
  std::printf("async=%s\n", name_of(cuMemAlloc(&async, kDeviceSize)));
  if (!managed || !device || !async) return 1;
  report_origin("managed", reinterpret_cast<void*>(managed));
  report_origin("device", reinterpret_cast<void*>(device));
  CUmemLocation gpu{CU_MEM_LOCATION_TYPE_DEVICE, 0};
  std::printf("attach=%s\n", name_of(cuStreamAttachMemAsync(nullptr, managed, 0, CU_MEM_ATTACH_HOST)));
  std::printf("prefetch_v2=%s\n", name_of(cuMemPrefetchAsync(managed, kMiB, gpu, 0, nullptr)));
  std::printf("advise_v2=%s\n", name_of(cuMemAdvise(managed, kMiB, CU_MEM_ADVISE_SET_READ_MOSTLY, gpu)));
  // The old versions, as a program built against CUDA 11 gets them.
  auto prefetch_v1 = proc<PrefetchV1>("cuMemPrefetchAsync", 11000);
  auto advise_v1 = proc<AdviseV1>("cuMemAdvise", 11000);
  auto prefetch_v2 = proc<decltype(&cuMemPrefetchAsync_v2)>("cuMemPrefetchAsync", 13000);
  auto range_attribute = proc<decltype(&cuMemRangeGetAttribute)>("cuMemRangeGetAttribute", 13000);
  auto pointer_attribute = proc<decltype(&cuPointerGetAttribute)>("cuPointerGetAttribute", 13000);
  auto free_async = proc<decltype(&cuMemFreeAsync)>("cuMemFreeAsync", 13000);
  if (!prefetch_v1 || !advise_v1 || !prefetch_v2 || !range_attribute || !pointer_attribute || !free_async) {
    return 1;
  }
  std::printf("prefetch_v1_cpu=%s\n", name_of(prefetch_v1(managed, kMiB, CU_DEVICE_CPU, nullptr)));
  std::printf("prefetch_v1_bad=%s\n", name_of(prefetch_v1(managed, kMiB, 9, nullptr)));
  std::printf("prefetch_v1_mixed=%s\n", name_of(prefetch_v1(managed - 4096, kMiB, 0, nullptr)));
  std::printf("prefetch_v2_device_memory=%s\n", name_of(prefetch_v2(device, kMiB, gpu, 0, nullptr)));
  std::printf("advise_v1_preferred=%s\n",
              name_of(advise_v1(managed, kMiB, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, 0)));
  int value = 9;
  std::printf("last_prefetch=%s:",
              name_of(range_attribute(&value, sizeof value, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION,
                                      managed, kMiB)));
  std::printf("%d\n", value);
  std::printf("preferred=%s:",
              name_of(range_attribute(&value, sizeof value, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION,
                                      managed, kMiB)));
  std::printf("%d\n", value);
  std::printf("read_mostly=%s:",
              name_of(range_attribute(&value, sizeof value, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY,
                                      managed, kMiB)));
  std::printf("%d\n", value);
  // Not the shim's (under EGM_MIN_SIZE), and a batch of the shim's and not the shim's.
  CUdeviceptr small = 0;
  std::printf("small=%s\n", name_of(cuMemAllocManaged(&small, kSmallManaged, CU_MEM_ATTACH_GLOBAL)));
  report_origin("small", reinterpret_cast<void*>(small));
  std::printf("small_prefetch=%s\n", name_of(prefetch_v1(small, kSmallManaged, 0, nullptr)));
  std::printf("small_advise=%s\n",
              name_of(cuMemAdvise(small, kSmallManaged, CU_MEM_ADVISE_SET_READ_MOSTLY, gpu)));
  CUdeviceptr batch_pointers[] = {small, managed + kMiB};
  size_t batch_sizes[] = {kSmallManaged, kMiB};
  CUmemLocation batch_locations[] = {{CU_MEM_LOCATION_TYPE_HOST, 0}};
  size_t batch_starts[] = {0};
  std::printf("prefetch_batch=%s\n",
              name_of(cuMemPrefetchBatchAsync(batch_pointers, batch_sizes, 2, batch_locations,
                                              batch_starts, 1, 0, nullptr)));
  // The batch ran on the NULL stream: wait for it, so that the queries below
  // test what was recorded, not whether an asynchronous batch ran yet.
  std::printf("batch_sync=%s\n", name_of(cuCtxSynchronize()));
  CUdeviceptr device_batch[] = {managed, device};
  std::printf("discard_batch_device_memory=%s\n",
              name_of(cuMemDiscardBatchAsync(device_batch, batch_sizes, 2, 0, nullptr)));
  for (CUdeviceptr pointer : {small, managed + kMiB}) {
    int location = 9, read_mostly = 9;
    CUresult result = range_attribute(&location, sizeof location,
                                      CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, pointer, kMiB);
    CUresult mostly = range_attribute(&read_mostly, sizeof read_mostly,
                                      CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, pointer, kMiB);
    std::printf("after_batch=%s:%d %s:%d\n", name_of(result), location, name_of(mostly),
                read_mostly);
  }
  std::printf("free_small=%s\n", name_of(cuMemFree(small)));
  unsigned is_managed = 7;
  std::printf("proc_is_managed=%s:",
              name_of(pointer_attribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, managed + 64)));
  std::printf("%u\n", is_managed);
  print_pointer_attribute("managed", managed, managed);
  print_pointer_attribute("managed_interior", managed + 4096, managed);
  print_pointer_attribute("device", device, device);
  print_pointer_attribute("device_interior", device + 100, device);
  // A statically linked runtime's cudaFreeAsync arrives as cuMemFreeAsync.
  std::printf("free_async=%s\n", name_of(free_async(async, nullptr)));
  std::printf("free_managed=%s\n", name_of(cuMemFree(managed)));
  std::printf("free_device=%s\n", name_of(cuMemFree(device)));
  report("end.cuda_mappings", std::to_string(fake_cuda_live_mappings()));
  report("end.cuda_allocations", std::to_string(fake_cuda_live_allocations()));
  cuDevicePrimaryCtxRelease(gpu_device);
  return 0;
}

// ---- stream capture: stream-ordered allocation belongs to the graph ----

int scenario_capture() {
  cudaStream_t stream = nullptr;
  std::printf("stream=%s\n", name_of(cudaStreamCreate(&stream)));
  std::printf("begin=%s\n", name_of(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal)));
  void* captured = nullptr;
  std::printf("captured_alloc=%s\n", name_of(cudaMallocAsync(&captured, 4 * kMiB, stream)));
  report_origin("captured", captured);
  report("captured.cudart_allocations", std::to_string(fake_cudart_live_allocations()));
  std::printf("captured_free=%s\n", name_of(cudaFreeAsync(captured, stream)));
  cudaGraph_t graph = nullptr;
  std::printf("end=%s\n", name_of(cudaStreamEndCapture(stream, &graph)));
  void* after = nullptr;
  std::printf("after_alloc=%s\n", name_of(cudaMallocAsync(&after, 4 * kMiB, stream)));
  report_origin("after", after);
  std::printf("after_free=%s\n", name_of(cudaFreeAsync(after, stream)));
  std::printf("sync=%s\n", name_of(cudaDeviceSynchronize()));
  std::printf("stream_destroy=%s\n", name_of(cudaStreamDestroy(stream)));
  report("end.cudart_allocations", std::to_string(fake_cudart_live_allocations()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return test_program::run_scenario("fidelity_program",
                                    {{"runtime", scenario_runtime},
                                     {"driver", scenario_driver},
                                     {"capture", scenario_capture}},
                                    argc, argv);
}
