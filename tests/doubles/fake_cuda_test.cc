// Tests of the test doubles themselves: the preload tests are only as good
// as the fakes' VMM semantics, counts and failure injection.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/doubles/fake_control.h"

namespace {

constexpr size_t kGranularity = size_t{2} << 20;

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
    expect_nothing_live();
  }
  void TearDown() override { expect_nothing_live(); }

  static void expect_nothing_live() {
    EXPECT_EQ(fake_cuda_live_handles(), 0);
    EXPECT_EQ(fake_cuda_live_memory_objects(), 0);
    EXPECT_EQ(fake_cuda_live_reservations(), 0);
    EXPECT_EQ(fake_cuda_live_mappings(), 0);
    EXPECT_EQ(fake_cudart_live_allocations(), 0);
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
  EXPECT_EQ(cuMemSetAccess(range.address, 3 * kGranularity, &access, 1),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemSetAccess(range.address, kGranularity + 1, &access, 1),
            CUDA_ERROR_INVALID_VALUE);
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

}  // namespace
