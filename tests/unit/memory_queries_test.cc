// What a shim allocation answers to managed-memory calls and pointer
// queries (shim/core/memory_queries), compared with what the CUDA
// documentation promises for the allocation the program asked for.
#include "shim/core/memory_queries.h"

#include <cuda.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstring>

namespace egm {
namespace {

constexpr uintptr_t kBase = 0x7f0000200000;
constexpr int kDevices = 2;
constexpr int kInvalidValue = cudaErrorInvalidValue;

Mapping allocation(Api api) {
  Mapping mapping;
  mapping.address = kBase;
  mapping.requested = 3 << 20;
  mapping.mapped = 4 << 20;
  mapping.node = 1;
  mapping.device = 1;
  mapping.api = api;
  return mapping;
}

int int_attribute(const Mapping& mapping, int attribute, bool physical = false) {
  int value = 12345;
  EXPECT_EQ(range_attribute(mapping, attribute, &value, sizeof value, physical), 0);
  return value;
}

TEST(ManagedCallsTest, AttachTakesTheWholeAllocationOnly) {
  Mapping managed = allocation(Api::kCudaMallocManaged);
  EXPECT_EQ(attach_result(managed, kBase, 0, cudaMemAttachSingle), 0);
  EXPECT_EQ(attach_result(managed, kBase, managed.requested, cudaMemAttachHost), 0);
  EXPECT_EQ(attach_result(managed, kBase, 4096, cudaMemAttachGlobal), kInvalidValue);
  EXPECT_EQ(attach_result(managed, kBase + 4096, 0, cudaMemAttachGlobal), kInvalidValue);
  EXPECT_EQ(attach_result(managed, kBase, 0, 8), kInvalidValue);
  EXPECT_EQ(attach_result(allocation(Api::kCudaMalloc), kBase, 0, cudaMemAttachGlobal),
            kInvalidValue);
}

TEST(ManagedCallsTest, PrefetchChecksItsTargetAndRecordsIt) {
  Mapping managed = allocation(Api::kCuMemAllocManaged);
  ManagedHints hints;
  EXPECT_EQ(prefetch(managed, {kLocationDevice, 1}, 0, kDevices, hints), 0);
  EXPECT_EQ(hints.last_prefetch.type, kLocationDevice);
  EXPECT_EQ(prefetch(managed, {kLocationDevice, 2}, 0, kDevices, hints), kInvalidDevice);
  EXPECT_EQ(prefetch(managed, {kLocationDevice, 0}, 1, kDevices, hints), kInvalidValue);
  EXPECT_EQ(prefetch(managed, {kLocationInvalid, 0}, 0, kDevices, hints), kInvalidValue);
  EXPECT_EQ(hints.last_prefetch.id, 1);  // failed calls leave it
  EXPECT_EQ(prefetch(managed, location_of_device(kCpuDeviceId), 0, kDevices, hints), 0);
  EXPECT_EQ(hints.last_prefetch.type, kLocationHost);
  ManagedHints untouched;
  EXPECT_EQ(prefetch(allocation(Api::kCudaMalloc), {kLocationDevice, 0}, 0, kDevices, untouched),
            kInvalidValue);
}

TEST(ManagedCallsTest, AdviceReadsBackThroughRangeAttributes) {
  Mapping managed = allocation(Api::kCudaMallocManaged);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), kInvalidDeviceId);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            kInvalidDeviceId);
  ManagedHints& hints = managed.hints;
  EXPECT_EQ(advise(managed, CU_MEM_ADVISE_SET_READ_MOSTLY, {}, kDevices, hints), 0);
  EXPECT_EQ(advise(managed, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, {kLocationDevice, 1}, kDevices,
                   hints),
            0);
  EXPECT_EQ(advise(managed, CU_MEM_ADVISE_SET_ACCESSED_BY, {kLocationDevice, 0}, kDevices, hints),
            0);
  EXPECT_EQ(advise(managed, CU_MEM_ADVISE_SET_ACCESSED_BY, {kLocationHost, 0}, kDevices, hints),
            0);
  EXPECT_EQ(advise(managed, CU_MEM_ADVISE_SET_ACCESSED_BY, {kLocationDevice, 7}, kDevices, hints),
            kInvalidDevice);
  EXPECT_EQ(advise(managed, 99, {}, kDevices, hints), kInvalidValue);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 1);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), 1);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE),
            kLocationDevice);
  int accessed_by[4] = {};
  ASSERT_EQ(range_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY, accessed_by,
                            sizeof accessed_by, false),
            0);
  EXPECT_EQ(accessed_by[0], 0);
  EXPECT_EQ(accessed_by[1], kCpuDeviceId);
  EXPECT_EQ(accessed_by[2], kInvalidDeviceId);
  EXPECT_EQ(advise(managed, CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION, {}, kDevices, hints), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), kInvalidDeviceId);
}

TEST(ManagedCallsTest, RangeAttributesCheckTheirBuffer) {
  Mapping managed = allocation(Api::kCudaMallocManaged);
  long long wide = 0;
  EXPECT_EQ(range_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, &wide, sizeof wide, false),
            kInvalidValue);
  EXPECT_EQ(range_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, nullptr, 4, false),
            kInvalidValue);
  int value = 0;
  EXPECT_EQ(range_attribute(managed, 42, &value, sizeof value, false), kInvalidValue);
  EXPECT_EQ(range_attribute(allocation(Api::kCudaMalloc), CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY,
                            &value, sizeof value, false),
            kInvalidValue);
}

TEST(ManagedCallsTest, PhysicalAnswersPutTheDataOnItsHostNode) {
  Mapping managed = allocation(Api::kCudaMallocManaged);
  managed.hints.last_prefetch = {kLocationDevice, 0};
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, true),
            kCpuDeviceId);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE, true),
            kLocationHostNuma);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID, true), 1);
}

TEST(PointerAttributesTest, DeviceMemoryAnswersAsDeviceMemory) {
  Mapping device = allocation(Api::kCudaMalloc);
  uintptr_t interior = kBase + 100;
  unsigned type = 0;
  EXPECT_EQ(requested_pointer_attribute(device, interior, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, &type),
            PointerAnswer::kWritten);
  EXPECT_EQ(type, static_cast<unsigned>(CU_MEMORYTYPE_DEVICE));
  void* host = nullptr;
  EXPECT_EQ(requested_pointer_attribute(device, interior, CU_POINTER_ATTRIBUTE_HOST_POINTER, &host),
            PointerAnswer::kNoValue);
  CUdeviceptr start = 0;
  size_t size = 0;
  requested_pointer_attribute(device, interior, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, &start);
  requested_pointer_attribute(device, interior, CU_POINTER_ATTRIBUTE_RANGE_SIZE, &size);
  EXPECT_EQ(start, kBase);
  EXPECT_EQ(size, device.requested);
  unsigned is_managed = 0;
  requested_pointer_attribute(device, interior, CU_POINTER_ATTRIBUTE_IS_MANAGED, &is_managed);
  EXPECT_EQ(is_managed, 0u);
  int ordinal = -1;
  requested_pointer_attribute(device, interior, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, &ordinal);
  EXPECT_EQ(ordinal, 1);
  unsigned long long buffer_id = 0;
  EXPECT_EQ(
      requested_pointer_attribute(device, interior, CU_POINTER_ATTRIBUTE_BUFFER_ID, &buffer_id),
      PointerAnswer::kDriver);
  RuntimePointerFields fields = requested_runtime_attributes(device, interior);
  EXPECT_EQ(fields.type, cudaMemoryTypeDevice);
  EXPECT_EQ(fields.device, 1);
  EXPECT_EQ(fields.device_pointer, reinterpret_cast<void*>(interior));
  EXPECT_EQ(fields.host_pointer, nullptr);
}

TEST(PointerAttributesTest, ManagedMemoryAnswersAsManagedMemory) {
  Mapping managed = allocation(Api::kCuMemAllocManaged);
  unsigned is_managed = 0;
  requested_pointer_attribute(managed, kBase, CU_POINTER_ATTRIBUTE_IS_MANAGED, &is_managed);
  EXPECT_EQ(is_managed, 1u);
  void* host = nullptr;
  EXPECT_EQ(requested_pointer_attribute(managed, kBase, CU_POINTER_ATTRIBUTE_HOST_POINTER, &host),
            PointerAnswer::kWritten);
  EXPECT_EQ(host, reinterpret_cast<void*>(kBase));
  RuntimePointerFields fields = requested_runtime_attributes(managed, kBase);
  EXPECT_EQ(fields.type, cudaMemoryTypeManaged);
  EXPECT_EQ(fields.host_pointer, fields.device_pointer);
}

}  // namespace
}  // namespace egm
