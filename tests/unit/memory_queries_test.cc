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
constexpr size_t kSize = 3 << 20;  // the allocation's

Allocation allocation(Api api) {
  Allocation mapping;
  mapping.address = kBase;
  mapping.requested = kSize;
  mapping.mapped = 4 << 20;
  mapping.node = 1;
  mapping.device = 1;
  mapping.api = api;
  return mapping;
}

// `attribute` of the whole allocation.
int int_attribute(const Allocation& mapping, int attribute, bool physical = false) {
  int value = 12345;
  EXPECT_EQ(range_attribute(mapping, mapping.address, mapping.requested, attribute, &value,
                            sizeof value, physical),
            0);
  return value;
}

// `attribute` of [kBase + offset, +count).
int part_attribute(const Allocation& mapping, size_t offset, size_t count, int attribute) {
  int value = 12345;
  EXPECT_EQ(
      range_attribute(mapping, kBase + offset, count, attribute, &value, sizeof value, false), 0);
  return value;
}

TEST(ManagedCallsTest, AttachTakesTheWholeAllocationOnly) {
  Allocation managed = allocation(Api::kCudaMallocManaged);
  EXPECT_EQ(attach_result(managed, kBase, 0, cudaMemAttachSingle), 0);
  EXPECT_EQ(attach_result(managed, kBase, managed.requested, cudaMemAttachHost), 0);
  EXPECT_EQ(attach_result(managed, kBase, 4096, cudaMemAttachGlobal), kInvalidValue);
  EXPECT_EQ(attach_result(managed, kBase + 4096, 0, cudaMemAttachGlobal), kInvalidValue);
  EXPECT_EQ(attach_result(managed, kBase, 0, 8), kInvalidValue);
  EXPECT_EQ(attach_result(allocation(Api::kCudaMalloc), kBase, 0, cudaMemAttachGlobal),
            kInvalidValue);
}

TEST(ManagedCallsTest, PrefetchChecksItsTargetAndRecordsIt) {
  Allocation managed = allocation(Api::kCuMemAllocManaged);
  ManagedHints& hints = managed.hints;
  size_t size = managed.requested;
  EXPECT_EQ(prefetch(managed, kBase, size, {kLocationDevice, 1}, 0, kDevices, hints), 0);
  EXPECT_EQ(hints.common_to(0, size).last_prefetch.type, kLocationDevice);
  EXPECT_EQ(prefetch(managed, kBase, size, {kLocationDevice, 2}, 0, kDevices, hints),
            kInvalidDevice);
  EXPECT_EQ(prefetch(managed, kBase, size, {kLocationDevice, 0}, 1, kDevices, hints),
            kInvalidValue);
  EXPECT_EQ(prefetch(managed, kBase, size, {kLocationInvalid, 0}, 0, kDevices, hints),
            kInvalidValue);
  EXPECT_EQ(hints.common_to(0, size).last_prefetch.id, 1);  // failed calls leave it
  EXPECT_EQ(prefetch(managed, kBase, size, location_of_device(kCpuDeviceId), 0, kDevices, hints),
            0);
  EXPECT_EQ(hints.common_to(0, size).last_prefetch.type, kLocationHost);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION), kCpuDeviceId);
  ManagedHints untouched;
  EXPECT_EQ(prefetch(allocation(Api::kCudaMalloc), kBase, size, {kLocationDevice, 0}, 0, kDevices,
                     untouched),
            kInvalidValue);
}

TEST(ManagedCallsTest, AdviceReadsBackThroughRangeAttributes) {
  Allocation managed = allocation(Api::kCudaMallocManaged);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), kInvalidDeviceId);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            kInvalidDeviceId);
  ManagedHints& hints = managed.hints;
  EXPECT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_SET_READ_MOSTLY, {}, kDevices, hints), 0);
  EXPECT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, {kLocationDevice, 1}, kDevices,
                   hints),
            0);
  EXPECT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_SET_ACCESSED_BY, {kLocationDevice, 0}, kDevices, hints),
            0);
  EXPECT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_SET_ACCESSED_BY, {kLocationHost, 0}, kDevices, hints),
            0);
  EXPECT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_SET_ACCESSED_BY, {kLocationDevice, 7}, kDevices, hints),
            kInvalidDevice);
  EXPECT_EQ(advise(managed, kBase, kSize, 99, {}, kDevices, hints), kInvalidValue);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 1);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), 1);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE),
            kLocationDevice);
  int accessed_by[4] = {};
  ASSERT_EQ(range_attribute(managed, kBase, kSize, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY,
                            accessed_by, sizeof accessed_by, false),
            0);
  EXPECT_EQ(accessed_by[0], 0);
  EXPECT_EQ(accessed_by[1], kCpuDeviceId);
  EXPECT_EQ(accessed_by[2], kInvalidDeviceId);
  EXPECT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION, {}, kDevices, hints), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), kInvalidDeviceId);
}

TEST(ManagedCallsTest, RangeAttributesCheckTheirBuffer) {
  Allocation managed = allocation(Api::kCudaMallocManaged);
  long long wide = 0;
  EXPECT_EQ(range_attribute(managed, kBase, kSize, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, &wide, sizeof wide, false),
            kInvalidValue);
  EXPECT_EQ(range_attribute(managed, kBase, kSize, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, nullptr, 4, false),
            kInvalidValue);
  int value = 0;
  EXPECT_EQ(range_attribute(managed, kBase, kSize, 42, &value, sizeof value, false), kInvalidValue);
  EXPECT_EQ(range_attribute(allocation(Api::kCudaMalloc), kBase, kSize, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY,
                            &value, sizeof value, false),
            kInvalidValue);
}

TEST(ManagedCallsTest, PhysicalAnswersPutTheDataOnItsHostNode) {
  Allocation managed = allocation(Api::kCudaMallocManaged);
  ASSERT_EQ(prefetch(managed, kBase, kSize, {kLocationDevice, 0}, 0, kDevices, managed.hints), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, true),
            kCpuDeviceId);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE, true),
            kLocationHostNuma);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID, true), 1);
}

// ---- hints per page (CUDA keeps them per page, not per allocation) ----

constexpr size_t kMiB = size_t{1} << 20;

MemoryLocation device(int id) { return {kLocationDevice, id}; }

TEST(ManagedHintsTest, PrefetchOfAPartLeavesTheWholeRangeUnprefetched) {
  // What the H200 answered: a prefetch of [4096, +1 MiB) to device 0, then
  // the whole allocation: -2 / invalid / -2.
  Allocation managed = allocation(Api::kCudaMallocManaged);
  size_t page = hint_page_size();
  ASSERT_EQ(prefetch(managed, kBase + page, kMiB, device(0), 0, kDevices, managed.hints), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            kInvalidDeviceId);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE),
            kLocationInvalid);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID),
            kInvalidDeviceId);
  // The prefetched pages themselves say device 0.
  EXPECT_EQ(part_attribute(managed, page, kMiB, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION), 0);
  EXPECT_EQ(part_attribute(managed, page, kMiB, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE),
            kLocationDevice);
  EXPECT_EQ(part_attribute(managed, page, kMiB, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID), 0);
  // Queries are rounded out to pages too: any byte of an unprefetched page spoils it.
  EXPECT_EQ(part_attribute(managed, 100, 200, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            kInvalidDeviceId);
  EXPECT_EQ(part_attribute(managed, page + 100, 200, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            0);
  EXPECT_EQ(part_attribute(managed, page, kMiB + 1, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            kInvalidDeviceId);
  EXPECT_EQ(part_attribute(managed, page - 1, kMiB, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            kInvalidDeviceId);
  // Two parts to two places: each part answers its own, the whole nothing.
  ASSERT_EQ(prefetch(managed, kBase, page, location_of_device(kCpuDeviceId), 0, kDevices,
                     managed.hints),
            0);
  EXPECT_EQ(part_attribute(managed, 0, page, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            kCpuDeviceId);
  EXPECT_EQ(part_attribute(managed, 0, 2 * page, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            kInvalidDeviceId);
  // A prefetch of the whole makes it one range again.
  ASSERT_EQ(prefetch(managed, kBase, kSize, device(1), 0, kDevices, managed.hints), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION), 1);
  EXPECT_EQ(managed.hints.interval_count(), 2u);  // the allocation's pages, and beyond its end
}

TEST(ManagedHintsTest, AdviceOnAPartLeavesTheOtherPartAlone) {
  Allocation managed = allocation(Api::kCudaMallocManaged);
  ManagedHints& hints = managed.hints;
  ASSERT_EQ(advise(managed, kBase, kMiB, CU_MEM_ADVISE_SET_READ_MOSTLY, {}, kDevices, hints), 0);
  ASSERT_EQ(advise(managed, kBase, kMiB, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, device(1), kDevices,
                   hints),
            0);
  // The part advised.
  EXPECT_EQ(part_attribute(managed, 0, kMiB, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 1);
  EXPECT_EQ(part_attribute(managed, 0, kMiB, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), 1);
  // The other part (what the H200 answered for the driver scenario's second MiB).
  EXPECT_EQ(part_attribute(managed, kMiB, kMiB, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 0);
  EXPECT_EQ(part_attribute(managed, kMiB, kMiB, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION),
            kInvalidDeviceId);
  EXPECT_EQ(part_attribute(managed, kMiB, kMiB, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE),
            kLocationInvalid);
  EXPECT_EQ(part_attribute(managed, kMiB, kMiB, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID),
            kInvalidDeviceId);
  // Both: not every page has it.
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), kInvalidDeviceId);
  // Accessed-by: the devices set on every page of the range.
  ASSERT_EQ(advise(managed, kBase, 2 * kMiB, CU_MEM_ADVISE_SET_ACCESSED_BY, device(0), kDevices,
                   hints),
            0);
  ASSERT_EQ(advise(managed, kBase + kMiB, kMiB, CU_MEM_ADVISE_SET_ACCESSED_BY, {kLocationHost, 0},
                   kDevices, hints),
            0);
  int accessed_by[3] = {};
  ASSERT_EQ(range_attribute(managed, kBase + kMiB, kMiB, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY,
                            accessed_by, sizeof accessed_by, false),
            0);
  EXPECT_EQ(accessed_by[0], 0);
  EXPECT_EQ(accessed_by[1], kCpuDeviceId);
  EXPECT_EQ(accessed_by[2], kInvalidDeviceId);
  ASSERT_EQ(range_attribute(managed, kBase, 2 * kMiB, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY,
                            accessed_by, sizeof accessed_by, false),
            0);
  EXPECT_EQ(accessed_by[0], 0);
  EXPECT_EQ(accessed_by[1], kInvalidDeviceId);
  ASSERT_EQ(range_attribute(managed, kBase, kSize, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY, accessed_by,
                            sizeof accessed_by, false),
            0);
  EXPECT_EQ(accessed_by[0], kInvalidDeviceId);  // the third MiB has none
}

TEST(ManagedHintsTest, OverlappingAdviceKeepsTheLastPerPage) {
  Allocation managed = allocation(Api::kCudaMallocManaged);
  ManagedHints& hints = managed.hints;
  size_t page = hint_page_size();
  ASSERT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, device(0),
                   kDevices, hints),
            0);
  ASSERT_EQ(advise(managed, kBase + kMiB, page, CU_MEM_ADVISE_SET_PREFERRED_LOCATION,
                   {kLocationHost, 7}, kDevices, hints),  // the host's id is ignored
            0);
  ASSERT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_SET_READ_MOSTLY, {}, kDevices, hints), 0);
  ASSERT_EQ(advise(managed, kBase + 2 * kMiB + 8, 16, CU_MEM_ADVISE_UNSET_READ_MOSTLY, {},
                   kDevices, hints),  // rounded out: one whole page
            0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), kInvalidDeviceId);
  EXPECT_EQ(part_attribute(managed, 0, kMiB, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), 0);
  EXPECT_EQ(part_attribute(managed, kMiB, page, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION),
            kCpuDeviceId);
  EXPECT_EQ(part_attribute(managed, kMiB, page, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE),
            kLocationHost);
  EXPECT_EQ(part_attribute(managed, kMiB + page, kMiB, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION),
            0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 0);
  EXPECT_EQ(part_attribute(managed, 2 * kMiB, page, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 0);
  EXPECT_EQ(part_attribute(managed, 2 * kMiB + page, page, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 1);
  EXPECT_EQ(part_attribute(managed, 2 * kMiB - page, page, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 1);
  // Advice that makes the pages alike again coalesces them.
  ASSERT_EQ(advise(managed, kBase + kMiB, page, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, device(0),
                   kDevices, hints),
            0);
  ASSERT_EQ(advise(managed, kBase + 2 * kMiB, page, CU_MEM_ADVISE_SET_READ_MOSTLY, {}, kDevices,
                   hints),
            0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY), 1);
  EXPECT_EQ(hints.interval_count(), 2u);  // the allocation, and beyond its end
  // Unset everywhere: back to nothing kept at all.
  ASSERT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_UNSET_READ_MOSTLY, {}, kDevices, hints), 0);
  ASSERT_EQ(advise(managed, kBase, kSize, CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION, {}, kDevices,
                   hints),
            0);
  EXPECT_EQ(hints.interval_count(), 1u);
}

TEST(ManagedHintsTest, PageByPagePrefetchesCoalesce) {
  Allocation managed = allocation(Api::kCudaMallocManaged);
  size_t page = hint_page_size();
  for (size_t offset = 0; offset < kSize; offset += page) {
    ASSERT_EQ(prefetch(managed, kBase + offset, page, device(1), 0, kDevices, managed.hints), 0);
    ASSERT_LE(managed.hints.interval_count(), 3u);
  }
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION), 1);
}

TEST(ManagedHintsTest, IntervalsAreCappedAndDegradeToTheInvalidAnswer) {
  Allocation managed = allocation(Api::kCudaMallocManaged);
  size_t page = hint_page_size();
  size_t pages = kSize / page;
  // Every other page to another device: far more intervals than the cap.
  for (size_t i = 0; i < pages; ++i) {
    ASSERT_EQ(prefetch(managed, kBase + i * page, page, device(static_cast<int>(i % 2)), 0,
                       kDevices, managed.hints),
              0);
    ASSERT_LE(managed.hints.interval_count(), ManagedHints::kMaxIntervals);
  }
  // Never a wrong location: each page says its own device, or nothing.
  size_t exact = 0;
  for (size_t i = 0; i < pages; ++i) {
    int answer = part_attribute(managed, i * page, page, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION);
    if (answer == kInvalidDeviceId) continue;
    EXPECT_EQ(answer, static_cast<int>(i % 2)) << "page " << i;
    ++exact;
  }
  EXPECT_GT(exact, 0u);  // the latest pages are still kept exactly
  EXPECT_LT(exact, pages);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
            kInvalidDeviceId);
  // Accessed-by under the cap: a merged run reports fewer devices, never more.
  for (size_t i = 0; i < pages; ++i) {
    ASSERT_EQ(advise(managed, kBase + i * page, page, CU_MEM_ADVISE_SET_ACCESSED_BY,
                     device(static_cast<int>(i % 2)), kDevices, managed.hints),
              0);
  }
  for (size_t i = 0; i < pages; ++i) {
    int accessed_by[2] = {};
    ASSERT_EQ(range_attribute(managed, kBase + i * page, page, CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY,
                              accessed_by, sizeof accessed_by, false),
              0);
    EXPECT_TRUE(accessed_by[0] == kInvalidDeviceId || accessed_by[0] == static_cast<int>(i % 2))
        << "page " << i;
    EXPECT_EQ(accessed_by[1], kInvalidDeviceId);
  }
  // A prefetch of the whole range is exact again.
  ASSERT_EQ(prefetch(managed, kBase, kSize, device(0), 0, kDevices, managed.hints), 0);
  EXPECT_EQ(int_attribute(managed, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION), 0);
  EXPECT_EQ(part_attribute(managed, kMiB, page, CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION), 0);
}

TEST(ManagedHintsTest, CommonHintsAreWhatBothRunsHave) {
  PageHints a, b;
  a.read_mostly = true;
  a.preferred = {kLocationDevice, 1};
  a.last_prefetch = {kLocationHost, 0};
  a.accessed_by_devices = 0b11;
  a.accessed_by_host = true;
  b = a;
  EXPECT_TRUE(common(a, b) == a);
  b.read_mostly = false;
  b.preferred = {kLocationDevice, 0};
  b.accessed_by_devices = 0b10;
  PageHints both = common(a, b);
  EXPECT_FALSE(both.read_mostly);
  EXPECT_EQ(both.preferred.type, kLocationInvalid);
  EXPECT_EQ(both.last_prefetch.type, kLocationHost);
  EXPECT_EQ(both.accessed_by_devices, 0b10u);
  EXPECT_TRUE(both.accessed_by_host);
}

TEST(PointerAttributesTest, DeviceMemoryAnswersAsDeviceMemory) {
  Allocation device = allocation(Api::kCudaMalloc);
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
  Allocation managed = allocation(Api::kCuMemAllocManaged);
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
