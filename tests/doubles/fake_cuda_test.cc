// Tests of the test doubles themselves: the preload tests are only as good
// as the fakes' VMM semantics, counts and failure injection.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/doubles/fake_control.h"

// The per-thread-default-stream variants; cuda_runtime_api.h declares them
// only for CUDA_API_PER_THREAD_DEFAULT_STREAM builds.
extern "C" cudaError_t cudaMallocAsync_ptsz(void** pointer, size_t size, cudaStream_t stream);
extern "C" cudaError_t cudaFreeAsync_ptsz(void* pointer, cudaStream_t stream);

namespace {

constexpr size_t kGranularity = size_t{2} << 20;
constexpr size_t kMiB = size_t{1} << 20;

CUmemAllocationProp host_numa_prop(int node) {
  CUmemAllocationProp prop = {};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
  prop.location.id = node;
  return prop;
}

CUmemAccessDesc read_write(CUmemLocationType type, int id) {
  CUmemAccessDesc access = {};
  access.location.type = type;
  access.location.id = id;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  return access;
}

// Every test starts and must end with nothing live in either fake.
class FakeCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("FAKE_CUDA_FAIL");
    unsetenv("FAKE_CUDART_FAIL");
    unsetenv("FAKE_CUDA_NUMA_NODES");
    unsetenv("FAKE_CUDA_DEVICE_MEMORY");
    unsetenv("FAKE_CUDART_VIA_DRIVER");
    expect_nothing_live();
  }
  void TearDown() override { expect_nothing_live(); }

  static void expect_nothing_live() {
    EXPECT_EQ(fake_cuda_live_handles(), 0);
    EXPECT_EQ(fake_cuda_live_memory_objects(), 0);
    EXPECT_EQ(fake_cuda_live_reservations(), 0);
    EXPECT_EQ(fake_cuda_live_mappings(), 0);
    EXPECT_EQ(fake_cudart_live_allocations(), 0);
    EXPECT_EQ(fake_cuda_live_allocations(), 0);
    EXPECT_EQ(fake_cudart_live_events(), 0);
    EXPECT_EQ(fake_cuda_allocated_device_bytes(), 0u);
    EXPECT_EQ(fake_cudart_allocated_device_bytes(), 0u);
  }
};

// A created, reserved and mapped range (no access yet), torn down in order.
struct MappedRange {
  CUmemGenericAllocationHandle handle = 0;
  CUdeviceptr address = 0;
  size_t size = 0;

  explicit MappedRange(size_t bytes) : size(bytes) {
    CUmemAllocationProp prop = host_numa_prop(0);
    EXPECT_EQ(cuMemCreate(&handle, size, &prop, 0), CUDA_SUCCESS);
    EXPECT_EQ(cuMemAddressReserve(&address, size, 0, 0, 0), CUDA_SUCCESS);
    EXPECT_EQ(cuMemMap(address, size, 0, handle, 0), CUDA_SUCCESS);
  }
  ~MappedRange() {
    EXPECT_EQ(cuMemUnmap(address, size), CUDA_SUCCESS);
    EXPECT_EQ(cuMemRelease(handle), CUDA_SUCCESS);
    EXPECT_EQ(cuMemAddressFree(address, size), CUDA_SUCCESS);
  }
  CUresult grant_host_and_device() const {
    CUmemAccessDesc access[2] = {read_write(CU_MEM_LOCATION_TYPE_DEVICE, 0),
                                 read_write(CU_MEM_LOCATION_TYPE_HOST_NUMA, 0)};
    return cuMemSetAccess(address, size, access, 2);
  }
  char* bytes() const { return reinterpret_cast<char*>(address); }
};

TEST_F(FakeCudaTest, GranularityIsTwoMiB) {
  CUmemAllocationProp prop = host_numa_prop(0);
  size_t granularity = 0;
  ASSERT_EQ(cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
            CUDA_SUCCESS);
  EXPECT_EQ(granularity, kGranularity);
}

TEST_F(FakeCudaTest, MappedMemoryWithoutAccessFaults) {
  MappedRange range(kGranularity);
  EXPECT_EQ(fake_cuda_host_access_granted(range.bytes()), 0);
  EXPECT_DEATH(range.bytes()[0] = 1, "");
}

TEST_F(FakeCudaTest, SetAccessMakesTheWholeRangeUsable) {
  MappedRange range(2 * kGranularity);
  ASSERT_EQ(range.grant_host_and_device(), CUDA_SUCCESS);
  std::memset(range.bytes(), 0x42, range.size);
  EXPECT_EQ(range.bytes()[range.size - 1], 0x42);
  EXPECT_EQ(fake_cuda_host_access_granted(range.bytes() + range.size - 1), 1);
  EXPECT_EQ(fake_cuda_device_access_granted(range.bytes()), 1);
  EXPECT_EQ(fake_cuda_host_access_granted(range.bytes() + range.size), -1);
}

TEST_F(FakeCudaTest, DeviceOnlyAccessLeavesTheHostOut) {
  MappedRange range(kGranularity);
  CUmemAccessDesc device_only = read_write(CU_MEM_LOCATION_TYPE_DEVICE, 0);
  ASSERT_EQ(cuMemSetAccess(range.address, range.size, &device_only, 1), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_host_access_granted(range.bytes()), 0);
  EXPECT_EQ(fake_cuda_device_access_granted(range.bytes()), 1);
}

TEST_F(FakeCudaTest, SetAccessOnPartOfAMappingIsInvalid) {
  MappedRange range(2 * kGranularity);
  CUmemAccessDesc access = read_write(CU_MEM_LOCATION_TYPE_HOST_NUMA, 0);
  EXPECT_EQ(cuMemSetAccess(range.address, kGranularity, &access, 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemSetAccess(range.address, 3 * kGranularity, &access, 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemSetAccess(range.address, kGranularity + 1, &access, 1), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(FakeCudaTest, CreateChecksSizeAndLocation) {
  CUmemGenericAllocationHandle handle = 0;
  CUmemAllocationProp node0 = host_numa_prop(0);
  CUmemAllocationProp node1 = host_numa_prop(1);
  EXPECT_EQ(cuMemCreate(&handle, kGranularity + 4096, &node0, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemCreate(&handle, 0, &node0, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemCreate(&handle, kGranularity, &node1, 0), CUDA_ERROR_INVALID_VALUE);
  setenv("FAKE_CUDA_NUMA_NODES", "2", 1);
  ASSERT_EQ(cuMemCreate(&handle, kGranularity, &node1, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemRelease(handle), CUDA_SUCCESS);
  EXPECT_EQ(cuMemRelease(handle), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(FakeCudaTest, ReserveHonoursAlignment) {
  constexpr size_t kAlignment = size_t{64} << 20;
  CUdeviceptr address = 0;
  ASSERT_EQ(cuMemAddressReserve(&address, kGranularity, kAlignment, 0, 0), CUDA_SUCCESS);
  EXPECT_EQ(address % kAlignment, 0u);
  EXPECT_EQ(cuMemAddressFree(address, 2 * kGranularity), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemAddressFree(address + kGranularity, kGranularity), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemAddressFree(address, kGranularity), CUDA_SUCCESS);
}

TEST_F(FakeCudaTest, MapChecksTheReservationAndOverlaps) {
  MappedRange range(kGranularity);
  CUmemAllocationProp prop = host_numa_prop(0);
  CUmemGenericAllocationHandle other = 0;
  ASSERT_EQ(cuMemCreate(&other, kGranularity, &prop, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemMap(range.address, kGranularity, 0, other, 0), CUDA_ERROR_ALREADY_MAPPED);
  EXPECT_EQ(cuMemMap(range.address + kGranularity, kGranularity, 0, other, 0),
            CUDA_ERROR_INVALID_VALUE);  // outside any reservation
  EXPECT_EQ(cuMemRelease(other), CUDA_SUCCESS);
}

TEST_F(FakeCudaTest, ReleasedMemoryLivesUntilUnmapped) {
  CUmemAllocationProp prop = host_numa_prop(0);
  CUmemGenericAllocationHandle handle = 0;
  CUdeviceptr address = 0;
  ASSERT_EQ(cuMemCreate(&handle, kGranularity, &prop, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAddressReserve(&address, kGranularity, 0, 0, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuMemMap(address, kGranularity, 0, handle, 0), CUDA_SUCCESS);
  CUmemAccessDesc access = read_write(CU_MEM_LOCATION_TYPE_HOST_NUMA, 0);
  ASSERT_EQ(cuMemSetAccess(address, kGranularity, &access, 1), CUDA_SUCCESS);
  char* bytes = reinterpret_cast<char*>(address);
  bytes[7] = 9;

  ASSERT_EQ(cuMemRelease(handle), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_live_handles(), 0);
  EXPECT_EQ(fake_cuda_live_memory_objects(), 1);
  EXPECT_EQ(bytes[7], 9);

  ASSERT_EQ(cuMemUnmap(address, kGranularity), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_live_memory_objects(), 0);
  EXPECT_EQ(fake_cuda_live_reservations(), 1);  // unmapping keeps the reservation
  EXPECT_DEATH(bytes[7] = 1, "");
  EXPECT_EQ(cuMemAddressFree(address, kGranularity), CUDA_SUCCESS);
}

TEST_F(FakeCudaTest, AddressFreeRefusesMappedRanges) {
  MappedRange range(kGranularity);
  EXPECT_EQ(cuMemAddressFree(range.address, range.size), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(FakeCudaTest, InjectedFailureHitsOnlyTheNamedCallAndChangesNothing) {
  // Call numbers count from the start of the process.
  long calls_before = fake_cuda_call_count("cuMemCreate");
  std::string spec = "cuMemCreate@" + std::to_string(calls_before + 2) + "=1,cuMemMap";
  setenv("FAKE_CUDA_FAIL", spec.c_str(), 1);
  CUmemAllocationProp prop = host_numa_prop(0);
  CUmemGenericAllocationHandle first = 0, second = 0, third = 0;
  ASSERT_EQ(cuMemCreate(&first, kGranularity, &prop, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemCreate(&second, kGranularity, &prop, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(second, 0u);
  ASSERT_EQ(cuMemCreate(&third, kGranularity, &prop, 0), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_live_handles(), 2);
  EXPECT_EQ(fake_cuda_call_count("cuMemCreate") - calls_before, 3);
  CUdeviceptr address = 0;
  ASSERT_EQ(cuMemAddressReserve(&address, kGranularity, 0, 0, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemMap(address, kGranularity, 0, first, 0), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(fake_cuda_live_mappings(), 0);
  EXPECT_EQ(cuMemAddressFree(address, kGranularity), CUDA_SUCCESS);
  EXPECT_EQ(cuMemRelease(first), CUDA_SUCCESS);
  EXPECT_EQ(cuMemRelease(third), CUDA_SUCCESS);
}

TEST_F(FakeCudaTest, DeviceAttributesDescribeAnEgmCapableGpu) {
  CUdevice device = -1;
  ASSERT_EQ(cuDeviceGet(&device, 0), CUDA_SUCCESS);
  int value = -1;
  ASSERT_EQ(cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, device), CUDA_SUCCESS);
  EXPECT_EQ(value, 0);
  ASSERT_EQ(cuDeviceGetAttribute(
                &value, CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device),
            CUDA_SUCCESS);
  EXPECT_EQ(value, 1);
  const char* name = nullptr;
  ASSERT_EQ(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &name), CUDA_SUCCESS);
  EXPECT_STREQ(name, "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(cuDeviceGet(&device, 1), CUDA_ERROR_INVALID_DEVICE);
}

TEST_F(FakeCudaTest, RuntimeAllocatesHostMemoryAndRejectsUnknownPointers) {
  void* pointer = nullptr;
  ASSERT_EQ(cudaMalloc(&pointer, 5000), cudaSuccess);
  EXPECT_EQ(fake_cudart_live_allocations(), 1);
  std::memset(pointer, 1, 5000);
  int on_stack = 0;
  EXPECT_EQ(cudaFree(&on_stack), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaFree(nullptr), cudaSuccess);
  EXPECT_EQ(cudaFree(pointer), cudaSuccess);
  EXPECT_EQ(cudaFree(pointer), cudaErrorInvalidValue);
}

TEST_F(FakeCudaTest, RuntimeFailureInjection) {
  std::string spec =
      "cudaMallocManaged@" + std::to_string(fake_cudart_call_count("cudaMallocManaged") + 1);
  setenv("FAKE_CUDART_FAIL", spec.c_str(), 1);
  void* pointer = nullptr;
  EXPECT_EQ(cudaMallocManaged(&pointer, 4096, cudaMemAttachGlobal), cudaErrorMemoryAllocation);
  EXPECT_EQ(fake_cudart_live_allocations(), 0);
  ASSERT_EQ(cudaMallocManaged(&pointer, 4096, cudaMemAttachGlobal), cudaSuccess);
  EXPECT_EQ(cudaFree(pointer), cudaSuccess);
  EXPECT_GE(fake_cudart_call_count("cudaMallocManaged"), 2);
}

// ---- the driver's classic allocations ----

TEST_F(FakeCudaTest, DriverAllocationsAreChargedAgainstTheDeviceMemory) {
  setenv("FAKE_CUDA_DEVICE_MEMORY", std::to_string(10 * kMiB).c_str(), 1);
  size_t free = 0, total = 0;
  ASSERT_EQ(cuMemGetInfo(&free, &total), CUDA_SUCCESS);
  EXPECT_EQ(free, 10 * kMiB);
  EXPECT_EQ(total, 10 * kMiB);
  CUdeviceptr first = 0, second = 0, managed = 0;
  ASSERT_EQ(cuMemAlloc(&first, 6 * kMiB), CUDA_SUCCESS);
  std::memset(reinterpret_cast<void*>(first), 7, 6 * kMiB);
  EXPECT_EQ(cuMemAlloc(&second, 5 * kMiB), CUDA_ERROR_OUT_OF_MEMORY);
  ASSERT_EQ(cuMemAllocManaged(&managed, 5 * kMiB, CU_MEM_ATTACH_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuMemGetInfo(&free, &total), CUDA_SUCCESS);
  EXPECT_EQ(free, 4 * kMiB);
  EXPECT_EQ(fake_cuda_live_allocations(), 2);
  EXPECT_EQ(fake_cuda_live_mappings(), 0);  // not VMM mappings
  EXPECT_EQ(cuMemFree(first), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(first), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemFree(managed), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(0), CUDA_SUCCESS);
}

TEST_F(FakeCudaTest, DriverPitchIsTheWidthRoundedUpTo512) {
  CUdeviceptr pointer = 0;
  size_t pitch = 0;
  EXPECT_EQ(cuMemAllocPitch(&pointer, &pitch, 1000, 30, 3), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuMemAllocPitch(&pointer, &pitch, 1000, 30, 4), CUDA_SUCCESS);
  EXPECT_EQ(pitch, 1024u);
  EXPECT_EQ(fake_cuda_allocated_device_bytes(), 1024u * 30);
  EXPECT_EQ(cuMemFree(pointer), CUDA_SUCCESS);
}

// ---- cuGetProcAddress ----

void* own_symbol(const char* name) {
  void* library = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  void* symbol = library ? dlsym(library, name) : nullptr;
  if (library) dlclose(library);
  return symbol;
}

TEST_F(FakeCudaTest, GetProcAddressFindsTheNewestVersionOfABaseName) {
  void* function = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  ASSERT_EQ(cuGetProcAddress("cuMemAlloc", &function, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &status),
            CUDA_SUCCESS);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SUCCESS);
  EXPECT_EQ(function, own_symbol("cuMemAlloc_v2"));
  EXPECT_NE(function, nullptr);
  ASSERT_EQ(cuGetProcAddress("cuGetProcAddress", &function, 12000, 0, &status), CUDA_SUCCESS);
  EXPECT_EQ(function, own_symbol("cuGetProcAddress_v2"));
  ASSERT_EQ(cuGetProcAddress("cuGetProcAddress", &function, 11080, 0, &status), CUDA_SUCCESS);
  EXPECT_EQ(function, own_symbol("cuGetProcAddress"));
}

TEST_F(FakeCudaTest, GetProcAddressRejectsUnknownNamesAndOldVersions) {
  void* function = reinterpret_cast<void*>(0x1);
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
  EXPECT_EQ(cuGetProcAddress("cuNoSuchFunction", &function, 12000, 0, &status),
            CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  EXPECT_EQ(function, nullptr);
  EXPECT_EQ(cuGetProcAddress("cuMemAlloc_v2", &function, 12000, 0, &status), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(cuGetProcAddress("cuMemCreate", &function, 10010, 0, &status), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
}

TEST_F(FakeCudaTest, GetProcAddressV1FindsTheSameFunctions) {
  using GetProcAddressV1 = CUresult (*)(const char*, void**, int, cuuint64_t);
  auto v1 = reinterpret_cast<GetProcAddressV1>(own_symbol("cuGetProcAddress"));
  ASSERT_NE(v1, nullptr);
  void* function = nullptr;
  ASSERT_EQ(v1("cuMemFree", &function, 12000, 0), CUDA_SUCCESS);
  EXPECT_EQ(function, own_symbol("cuMemFree_v2"));
  EXPECT_EQ(v1("cuNoSuchFunction", &function, 12000, 0), CUDA_ERROR_NOT_FOUND);
}

// ---- the runtime's memory model ----

TEST_F(FakeCudaTest, RuntimeReportsAndEnforcesTheDeviceMemory) {
  setenv("FAKE_CUDA_DEVICE_MEMORY", std::to_string(10 * kMiB).c_str(), 1);
  void* first = nullptr;
  void* second = nullptr;
  ASSERT_EQ(cudaMalloc(&first, 6 * kMiB), cudaSuccess);
  size_t free = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  EXPECT_EQ(free, 4 * kMiB);
  EXPECT_EQ(total, 10 * kMiB);
  EXPECT_EQ(cudaMalloc(&second, 5 * kMiB), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  EXPECT_EQ(fake_cudart_live_allocations(), 1);
  EXPECT_EQ(cudaFree(first), cudaSuccess);
  ASSERT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  EXPECT_EQ(free, 10 * kMiB);
}

TEST_F(FakeCudaTest, RuntimePitchIsTheWidthRoundedUpTo512) {
  void* pointer = nullptr;
  size_t pitch = 0;
  ASSERT_EQ(cudaMallocPitch(&pointer, &pitch, 513, 10), cudaSuccess);
  EXPECT_EQ(pitch, 1024u);
  EXPECT_EQ(fake_cudart_allocated_device_bytes(), 1024u * 10);
  EXPECT_EQ(cudaFree(pointer), cudaSuccess);
}

TEST_F(FakeCudaTest, StreamOrderedAllocationNeedsAKnownStream) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  void* pointer = nullptr;
  EXPECT_EQ(cudaMallocAsync(&pointer, 4096, reinterpret_cast<cudaStream_t>(0x77)),
            cudaErrorInvalidResourceHandle);
  ASSERT_EQ(cudaMallocAsync(&pointer, 4096, stream), cudaSuccess);
  EXPECT_EQ(fake_cudart_live_allocations(), 1);
  EXPECT_EQ(cudaFreeAsync(pointer, stream), cudaSuccess);
  EXPECT_EQ(cudaFreeAsync(pointer, stream), cudaErrorInvalidValue);
  ASSERT_EQ(cudaMallocAsync_ptsz(&pointer, 4096, cudaStreamPerThread), cudaSuccess);
  EXPECT_EQ(cudaFreeAsync_ptsz(pointer, cudaStreamPerThread), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaErrorInvalidResourceHandle);
  cudaGetLastError();
}

TEST_F(FakeCudaTest, EventsOnABlockedStreamAreNotReadyUntilReleased) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  cudaEvent_t before = nullptr, during = nullptr, never_recorded = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&before, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&during, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&never_recorded), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(before, stream), cudaSuccess);
  ASSERT_EQ(fake_cudart_stream_block(stream), 0);
  ASSERT_EQ(cudaEventRecord(during, stream), cudaSuccess);
  EXPECT_EQ(cudaEventQuery(before), cudaSuccess);
  EXPECT_EQ(cudaEventQuery(during), cudaErrorNotReady);
  EXPECT_EQ(cudaEventQuery(never_recorded), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // not ready is no error
  ASSERT_EQ(fake_cudart_stream_release(stream), 0);
  EXPECT_EQ(cudaEventQuery(during), cudaSuccess);
  EXPECT_EQ(fake_cudart_live_events(), 3);
  for (cudaEvent_t event : {before, during, never_recorded}) {
    EXPECT_EQ(cudaEventDestroy(event), cudaSuccess);
  }
  EXPECT_EQ(cudaEventQuery(during), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(fake_cudart_stream_block(reinterpret_cast<void*>(0x77)), -1);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  cudaGetLastError();
}

TEST_F(FakeCudaTest, TheDefaultStreamCanBeBlockedToo) {
  cudaEvent_t event = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(fake_cudart_stream_block(nullptr), 0);
  ASSERT_EQ(cudaEventRecord(event, nullptr), cudaSuccess);
  EXPECT_EQ(cudaEventQuery(event), cudaErrorNotReady);
  ASSERT_EQ(fake_cudart_stream_release(nullptr), 0);
  EXPECT_EQ(cudaEventQuery(event), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(event), cudaSuccess);
}

TEST_F(FakeCudaTest, ViaDriverTheRuntimeAllocatesWithTheDriversFunctions) {
  setenv("FAKE_CUDART_VIA_DRIVER", "1", 1);
  setenv("FAKE_CUDA_DEVICE_MEMORY", std::to_string(10 * kMiB).c_str(), 1);
  long lookups = fake_cuda_call_count("cuGetProcAddress_v2");
  long driver_allocations = fake_cuda_call_count("cuMemAlloc_v2");
  void* pointer = nullptr;
  ASSERT_EQ(cudaMalloc(&pointer, 3 * kMiB), cudaSuccess);
  EXPECT_EQ(fake_cuda_call_count("cuMemAlloc_v2") - driver_allocations, 1);
  EXPECT_GE(fake_cuda_call_count("cuGetProcAddress_v2"), lookups);  // looked up once per process
  EXPECT_EQ(fake_cuda_live_allocations(), 1);
  EXPECT_EQ(fake_cudart_live_allocations(), 0);
  size_t free = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  EXPECT_EQ(free, 7 * kMiB);
  void* too_large = nullptr;
  EXPECT_EQ(cudaMalloc(&too_large, 8 * kMiB), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaFree(pointer), cudaSuccess);
  EXPECT_EQ(cudaFree(pointer), cudaErrorInvalidValue);
  cudaGetLastError();
}

// The runtime launches the fake driver's kernels through the driver's
// cuLaunchKernel, as the real runtime does.
TEST_F(FakeCudaTest, RuntimeLaunchesGoThroughTheDriver) {
  void* in = nullptr;
  void* out = nullptr;
  ASSERT_EQ(cudaMalloc(&in, 64), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&out, 8), cudaSuccess);
  auto* words = static_cast<uint64_t*>(in);
  for (int i = 0; i < 8; ++i) words[i] = i + 1;
  uint64_t count = 8;
  void* params[] = {&in, &count, &out};
  long before = fake_cuda_call_count("cuLaunchKernel");
  ASSERT_EQ(cudaLaunchKernel(fake_cuda_library_kernel("read_sum"), dim3(1), dim3(32), params, 0,
                             nullptr),
            cudaSuccess);
  EXPECT_EQ(*static_cast<uint64_t*>(out), 36u);
  EXPECT_EQ(fake_cuda_call_count("cuLaunchKernel"), before + 1);
  EXPECT_EQ(cudaLaunchKernel(&count, dim3(1), dim3(32), params, 0, nullptr),
            cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaFree(in), cudaSuccess);
  EXPECT_EQ(cudaFree(out), cudaSuccess);
}

}  // namespace
