// The fakes with several devices: per-device host NUMA nodes, access grants
// per device, one primary context per device with a per-thread context
// stack, and peer access in the driver and the runtime. The multi-GPU
// preload tests (tests/preload/multi_gpu_test.cc) rely on all of it.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "tests/doubles/fake_control.h"

namespace {

constexpr size_t kGranularity = size_t{2} << 20;

CUmemAccessDesc access_for(CUmemLocationType type, int id, CUmemAccess_flags flags) {
  CUmemAccessDesc access = {};
  access.location.type = type;
  access.location.id = id;
  access.flags = flags;
  return access;
}

CUmemAccessDesc device_read_write(int device) {
  return access_for(CU_MEM_LOCATION_TYPE_DEVICE, device, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
}

CUmemAccessDesc host_read_write() {
  return access_for(CU_MEM_LOCATION_TYPE_HOST_NUMA, 0, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
}

// A host-NUMA range, created, reserved and mapped (no access yet), torn down in order.
struct MappedRange {
  CUmemGenericAllocationHandle handle = 0;
  CUdeviceptr address = 0;

  MappedRange() {
    CUmemAllocationProp prop = {};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
    prop.location.id = 0;
    EXPECT_EQ(cuMemCreate(&handle, kGranularity, &prop, 0), CUDA_SUCCESS);
    EXPECT_EQ(cuMemAddressReserve(&address, kGranularity, 0, 0, 0), CUDA_SUCCESS);
    EXPECT_EQ(cuMemMap(address, kGranularity, 0, handle, 0), CUDA_SUCCESS);
  }
  ~MappedRange() {
    EXPECT_EQ(cuMemUnmap(address, kGranularity), CUDA_SUCCESS);
    EXPECT_EQ(cuMemRelease(handle), CUDA_SUCCESS);
    EXPECT_EQ(cuMemAddressFree(address, kGranularity), CUDA_SUCCESS);
  }
  CUresult set_access(const CUmemAccessDesc* desc, size_t count) const {
    return cuMemSetAccess(address, kGranularity, desc, count);
  }
  char* bytes() const { return reinterpret_cast<char*>(address); }
};

// Primary contexts retained for the test and released after it; the
// thread's context stack is left empty.
class MultiDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("FAKE_CUDA_DEVICE_COUNT", "3", 1);
    unsetenv("FAKE_CUDA_HOST_NUMA_IDS");
    unsetenv("FAKE_CUDA_HOST_NUMA_ID");
    unsetenv("FAKE_CUDA_NUMA_NODES");
    for (int device = 0; device < 3; ++device) {
      ASSERT_EQ(cuDevicePrimaryCtxRetain(&contexts_[device], device), CUDA_SUCCESS);
    }
  }
  void TearDown() override {
    while (cuCtxPopCurrent(nullptr) == CUDA_SUCCESS) {
    }
    for (int device = 0; device < 3; ++device) cuDevicePrimaryCtxRelease(device);
    EXPECT_EQ(fake_cuda_live_primary_context_references(), 0);
    EXPECT_EQ(fake_cuda_live_mappings(), 0);
    unsetenv("FAKE_CUDA_DEVICE_COUNT");
  }

  static int current_device() {
    CUdevice device = -1;
    EXPECT_EQ(cuCtxGetDevice(&device), CUDA_SUCCESS);
    return device;
  }

  CUcontext contexts_[3] = {};
};

int host_numa_id(int ordinal) {
  int node = -1;
  EXPECT_EQ(cuDeviceGetAttribute(&node, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, ordinal), CUDA_SUCCESS);
  return node;
}

TEST_F(MultiDeviceTest, EachDeviceHasItsOwnHostNumaNode) {
  setenv("FAKE_CUDA_HOST_NUMA_IDS", "1,0", 1);
  setenv("FAKE_CUDA_HOST_NUMA_ID", "2", 1);
  EXPECT_EQ(host_numa_id(0), 1);
  EXPECT_EQ(host_numa_id(1), 0);
  EXPECT_EQ(host_numa_id(2), 2);  // past the list: FAKE_CUDA_HOST_NUMA_ID
  unsetenv("FAKE_CUDA_HOST_NUMA_IDS");
  EXPECT_EQ(host_numa_id(0), 2);
}

TEST_F(MultiDeviceTest, AMalformedNumaListAborts) {
  setenv("FAKE_CUDA_HOST_NUMA_IDS", "0,x", 1);
  EXPECT_DEATH(host_numa_id(1), "FAKE_CUDA_HOST_NUMA_IDS");
}

TEST_F(MultiDeviceTest, AccessIsRecordedPerDevice) {
  MappedRange range;
  CUmemAccessDesc owner[2] = {device_read_write(1), host_read_write()};
  ASSERT_EQ(range.set_access(owner, 2), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_device_access_to(range.bytes(), 1), 1);
  EXPECT_EQ(fake_cuda_device_access_to(range.bytes(), 0), 0);
  EXPECT_EQ(fake_cuda_device_access_to(range.bytes(), 2), 0);
  EXPECT_EQ(fake_cuda_device_access_to(range.bytes() + kGranularity, 0), -1);
}

// As in the driver: a descriptor changes its own location only.
TEST_F(MultiDeviceTest, GrantingAPeerKeepsTheOtherLocationsAccess) {
  MappedRange range;
  CUmemAccessDesc owner[2] = {device_read_write(1), host_read_write()};
  ASSERT_EQ(range.set_access(owner, 2), CUDA_SUCCESS);
  CUmemAccessDesc peer = device_read_write(0);
  ASSERT_EQ(range.set_access(&peer, 1), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_device_access_to(range.bytes(), 0), 1);
  EXPECT_EQ(fake_cuda_device_access_to(range.bytes(), 1), 1);
  EXPECT_EQ(fake_cuda_host_access_granted(range.bytes()), 1);
  range.bytes()[0] = 1;  // still writable
}

TEST_F(MultiDeviceTest, RevokingOneDeviceLeavesTheOthers) {
  MappedRange range;
  CUmemAccessDesc both[2] = {device_read_write(0), device_read_write(1)};
  ASSERT_EQ(range.set_access(both, 2), CUDA_SUCCESS);
  CUmemAccessDesc revoke =
      access_for(CU_MEM_LOCATION_TYPE_DEVICE, 0, CU_MEM_ACCESS_FLAGS_PROT_NONE);
  ASSERT_EQ(range.set_access(&revoke, 1), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_device_access_to(range.bytes(), 0), 0);
  EXPECT_EQ(fake_cuda_device_access_to(range.bytes(), 1), 1);
  EXPECT_EQ(fake_cuda_device_access_granted(range.bytes()), 1);
}

TEST_F(MultiDeviceTest, AccessForAnUnknownDeviceIsInvalid) {
  MappedRange range;
  CUmemAccessDesc unknown = device_read_write(3);
  EXPECT_EQ(range.set_access(&unknown, 1), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(MultiDeviceTest, ContextsFollowTheThreadsStack) {
  EXPECT_EQ(current_device(), 0);  // no context: the fake's single-GPU default
  ASSERT_EQ(cuCtxSetCurrent(contexts_[1]), CUDA_SUCCESS);
  EXPECT_EQ(current_device(), 1);
  ASSERT_EQ(cuCtxPushCurrent(contexts_[2]), CUDA_SUCCESS);
  EXPECT_EQ(current_device(), 2);
  CUcontext popped = nullptr;
  ASSERT_EQ(cuCtxPopCurrent(&popped), CUDA_SUCCESS);
  EXPECT_EQ(popped, contexts_[2]);
  EXPECT_EQ(current_device(), 1);
  CUcontext current = nullptr;
  ASSERT_EQ(cuCtxGetCurrent(&current), CUDA_SUCCESS);
  EXPECT_EQ(current, contexts_[1]);
}

TEST_F(MultiDeviceTest, EachThreadHasItsOwnCurrentContext) {
  ASSERT_EQ(cuCtxSetCurrent(contexts_[2]), CUDA_SUCCESS);
  int other_thread_device = -1;
  std::thread([&] { other_thread_device = current_device(); }).join();
  EXPECT_EQ(other_thread_device, 0);
  EXPECT_EQ(current_device(), 2);
}

TEST_F(MultiDeviceTest, PoppingAnEmptyStackFails) {
  EXPECT_EQ(cuCtxPopCurrent(nullptr), CUDA_ERROR_INVALID_CONTEXT);
}

TEST_F(MultiDeviceTest, ContextPeerAccessIsRecordedOncePerPair) {
  ASSERT_EQ(cuCtxSetCurrent(contexts_[2]), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_ctx_peer_access_enabled(2, 1), 0);
  EXPECT_EQ(cuCtxEnablePeerAccess(contexts_[1], 0), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_ctx_peer_access_enabled(2, 1), 1);
  EXPECT_EQ(fake_cuda_ctx_peer_access_enabled(1, 2), 0);
  EXPECT_EQ(cuCtxEnablePeerAccess(contexts_[1], 0), CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
  EXPECT_EQ(cuCtxEnablePeerAccess(contexts_[2], 0), CUDA_ERROR_INVALID_DEVICE);
  EXPECT_EQ(cuCtxDisablePeerAccess(contexts_[1]), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_ctx_peer_access_enabled(2, 1), 0);
}

TEST_F(MultiDeviceTest, ContextPeerAccessNeedsACurrentContext) {
  EXPECT_EQ(cuCtxEnablePeerAccess(contexts_[1], 0), CUDA_ERROR_INVALID_CONTEXT);
}

TEST_F(MultiDeviceTest, DeviceCopiesNeedTheCurrentDevicesAccess) {
  MappedRange range;
  CUmemAccessDesc owner = device_read_write(1);
  ASSERT_EQ(range.set_access(&owner, 1), CUDA_SUCCESS);
  char byte = 7;
  ASSERT_EQ(cuCtxSetCurrent(contexts_[0]), CUDA_SUCCESS);
  EXPECT_EQ(cuMemcpyHtoD(range.address, &byte, 1), CUDA_ERROR_ILLEGAL_ADDRESS);
  ASSERT_EQ(cuCtxSetCurrent(contexts_[1]), CUDA_SUCCESS);
  EXPECT_EQ(cuMemcpyHtoD(range.address, &byte, 1), CUDA_SUCCESS);
}

TEST_F(MultiDeviceTest, RuntimePeerAccessIsPerCurrentDevice) {
  int can_access = -1;
  ASSERT_EQ(cudaDeviceCanAccessPeer(&can_access, 0, 1), cudaSuccess);
  EXPECT_EQ(can_access, 1);
  ASSERT_EQ(cudaDeviceCanAccessPeer(&can_access, 1, 1), cudaSuccess);
  EXPECT_EQ(can_access, 0);
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  EXPECT_EQ(cudaDeviceEnablePeerAccess(1, 0), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaDeviceEnablePeerAccess(2, 0), cudaSuccess);
  EXPECT_EQ(fake_cudart_peer_access_enabled(1, 2), 1);
  EXPECT_EQ(fake_cudart_peer_access_enabled(2, 1), 0);
  EXPECT_EQ(cudaDeviceEnablePeerAccess(2, 0), cudaErrorPeerAccessAlreadyEnabled);
  EXPECT_EQ(cudaDeviceDisablePeerAccess(2), cudaSuccess);
  EXPECT_EQ(cudaDeviceEnablePeerAccess(3, 0), cudaErrorInvalidDevice);
  cudaGetLastError();
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
}

TEST_F(MultiDeviceTest, RuntimeCurrentDeviceIsPerThread) {
  ASSERT_EQ(cudaSetDevice(2), cudaSuccess);
  int other_thread_device = -1;
  std::thread([&] { cudaGetDevice(&other_thread_device); }).join();
  EXPECT_EQ(other_thread_device, 0);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
}

TEST_F(MultiDeviceTest, PeerCopiesCopy) {
  char source[4] = "abc", destination[4] = {};
  ASSERT_EQ(cudaMemcpyPeer(destination, 0, source, 1, sizeof source), cudaSuccess);
  EXPECT_STREQ(destination, "abc");
  EXPECT_EQ(cudaMemcpyPeer(destination, 5, source, 1, 1), cudaErrorInvalidDevice);
  cudaGetLastError();
}

}  // namespace
