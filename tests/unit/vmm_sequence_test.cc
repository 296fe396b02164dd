// VmmSequence against the fake driver table: the EGM sequence, its rollback
// after each failed step, and its reverse.
#include "shim/core/vmm_sequence.h"

#include <gtest/gtest.h>

#include "tests/unit/fake_driver_table.h"

namespace egm {
namespace {

using fake_driver::FakeDriverTable;
using fake_driver::Step;
using fake_driver::step_name;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kGranule = 2 * kMiB;

class EgmAllocatorTest : public ::testing::Test {
 protected:
  // Maps `request` at its rounded-up size; fails the test on a failure.
  HostMapping map_ok(const EgmRequest& request) {
    auto mapped = allocator_.map(request, round_up(request.size, kGranule), kGranule);
    if (const EgmFailure* failure = std::get_if<EgmFailure>(&mapped)) {
      ADD_FAILURE() << failure->step << " failed";
      return {};
    }
    return std::get<HostMapping>(mapped);
  }

  FakeDriverTable fake_;
  VmmSequence allocator_{fake_.api()};
};

TEST_F(EgmAllocatorTest, GranularityAsksForPinnedHostNumaMemoryOnTheNode) {
  fake_.set_granularity(4 * kMiB);
  auto minimum = allocator_.granularity(3, false);
  ASSERT_TRUE(std::holds_alternative<size_t>(minimum));
  EXPECT_EQ(std::get<size_t>(minimum), 4 * kMiB);
  EXPECT_EQ(fake_.last_granularity_option(), CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  const CUmemAllocationProp& asked = fake_.last_granularity_properties();
  EXPECT_EQ(asked.type, CU_MEM_ALLOCATION_TYPE_PINNED);
  EXPECT_EQ(asked.location.type, CU_MEM_LOCATION_TYPE_HOST_NUMA);
  EXPECT_EQ(asked.location.id, 3);

  allocator_.granularity(1, true);
  EXPECT_EQ(fake_.last_granularity_option(), CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
  EXPECT_EQ(fake_.last_granularity_properties().location.id, 1);
}

TEST_F(EgmAllocatorTest, GranularityFailuresNameTheQuery) {
  fake_.fail_call(Step::kGranularity, 1, CUDA_ERROR_NOT_SUPPORTED);
  auto failed = allocator_.granularity(0, false);
  ASSERT_TRUE(std::holds_alternative<EgmFailure>(failed));
  EXPECT_STREQ(std::get<EgmFailure>(failed).step, "cuMemGetAllocationGranularity");
  EXPECT_EQ(std::get<EgmFailure>(failed).error, CUDA_ERROR_NOT_SUPPORTED);

  // A driver that says "0 bytes" would make every rounding divide by zero.
  fake_.set_granularity(0);
  auto zero = allocator_.granularity(0, false);
  ASSERT_TRUE(std::holds_alternative<EgmFailure>(zero));
  EXPECT_STREQ(std::get<EgmFailure>(zero).step, "cuMemGetAllocationGranularity");
  EXPECT_EQ(std::get<EgmFailure>(zero).error, CUDA_ERROR_INVALID_VALUE);
}

TEST_F(EgmAllocatorTest, RoundUpToTheGranularityWithoutOverflow) {
  EXPECT_EQ(round_up(1, kGranule), kGranule);
  EXPECT_EQ(round_up(kGranule, kGranule), kGranule);
  EXPECT_EQ(round_up(kGranule + 1, kGranule), 2 * kGranule);
  EXPECT_EQ(round_up(SIZE_MAX - 5, kGranule), 0u) << "would wrap";
}

TEST_F(EgmAllocatorTest, MapsHostNumaMemoryWithAccessForDeviceAndHostNode) {
  HostMapping mapping = map_ok({3 * kMiB, /*node=*/2, /*device=*/1, /*host_access=*/true, 0});
  EXPECT_TRUE(fake_.misuse().empty()) << fake_.misuse().front();
  EXPECT_EQ(fake_.steps(),
            (std::vector<Step>{Step::kCreate, Step::kReserve, Step::kMap, Step::kSetAccess}));
  EXPECT_EQ(mapping.mapped_size, 4 * kMiB) << "3 MiB rounded up to the 2 MiB granule";

  // The physical memory: pinned, on host NUMA node 2, of the mapped size.
  ASSERT_EQ(fake_.handles().count(mapping.handle), 1u);
  const auto& handle = fake_.handles().at(mapping.handle);
  EXPECT_EQ(handle.size, 4 * kMiB);
  EXPECT_EQ(handle.properties.type, CU_MEM_ALLOCATION_TYPE_PINNED);
  EXPECT_EQ(handle.properties.location.type, CU_MEM_LOCATION_TYPE_HOST_NUMA);
  EXPECT_EQ(handle.properties.location.id, 2);

  // Reserved with the granule's alignment, and mapped whole at its start.
  ASSERT_EQ(fake_.reservations().count(mapping.address), 1u);
  EXPECT_EQ(fake_.reservations().at(mapping.address).size, 4 * kMiB);
  EXPECT_EQ(fake_.reservations().at(mapping.address).alignment, kGranule);
  EXPECT_EQ(mapping.address % kGranule, 0u);
  const auto* mapped = fake_.mapping_at(mapping.address);
  ASSERT_NE(mapped, nullptr);
  EXPECT_EQ(mapped->size, 4 * kMiB) << "access must cover the padding too";
  EXPECT_EQ(mapped->handle, mapping.handle);

  // One cuMemSetAccess: the device, then the host node (not device 2).
  ASSERT_EQ(fake_.access_calls().size(), 1u);
  const auto& access = fake_.access_calls()[0];
  ASSERT_EQ(access.size(), 2u);
  EXPECT_EQ(access[0].location.type, CU_MEM_LOCATION_TYPE_DEVICE);
  EXPECT_EQ(access[0].location.id, 1);
  EXPECT_EQ(access[1].location.type, CU_MEM_LOCATION_TYPE_HOST_NUMA);
  EXPECT_EQ(access[1].location.id, 2);
  for (const CUmemAccessDesc& grant : access) {
    EXPECT_EQ(grant.flags, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
  }
}

TEST_F(EgmAllocatorTest, WithoutHostAccessOnlyTheDevicesAreGranted) {
  HostMapping mapping = map_ok({kGranule, 0, 0, /*host_access=*/false, 0});
  ASSERT_EQ(fake_.access_calls().size(), 1u);
  ASSERT_EQ(fake_.access_calls()[0].size(), 1u);
  EXPECT_TRUE(fake_.grants(mapping.address, CU_MEM_LOCATION_TYPE_DEVICE, 0));
  EXPECT_FALSE(fake_.grants(mapping.address, CU_MEM_LOCATION_TYPE_HOST_NUMA, 0));
}

TEST_F(EgmAllocatorTest, PeersGetAccessOnceAndTheDeviceIsNotRepeated) {
  // Peers 0, 2 and 63; bit 1 is the device itself.
  uint64_t peers = 0b111 | uint64_t{1} << 63;
  HostMapping mapping = map_ok({kGranule, 0, /*device=*/1, true, peers});
  ASSERT_EQ(fake_.access_calls().size(), 1u);
  const auto& access = fake_.access_calls()[0];
  ASSERT_EQ(access.size(), 5u) << "device 1, peers 0, 2, 63, host node 0";
  int device_one = 0;
  for (const CUmemAccessDesc& grant : access) {
    device_one += grant.location.type == CU_MEM_LOCATION_TYPE_DEVICE && grant.location.id == 1;
  }
  EXPECT_EQ(device_one, 1);
  for (int device : {0, 1, 2, 63}) {
    EXPECT_TRUE(fake_.grants(mapping.address, CU_MEM_LOCATION_TYPE_DEVICE, device)) << device;
  }
  EXPECT_FALSE(fake_.grants(mapping.address, CU_MEM_LOCATION_TYPE_DEVICE, 3));
  EXPECT_TRUE(fake_.grants(mapping.address, CU_MEM_LOCATION_TYPE_HOST_NUMA, 0));
}

TEST_F(EgmAllocatorTest, UnmapUndoesEverything) {
  HostMapping mapping = map_ok({5 * kMiB, 1, 0, true, 0});
  EXPECT_FALSE(allocator_.unmap(mapping).has_value());
  EXPECT_TRUE(fake_.clean());
  EXPECT_TRUE(fake_.misuse().empty()) << fake_.misuse().front();
  std::vector<Step> steps = fake_.steps();
  EXPECT_EQ(std::vector<Step>(steps.end() - 3, steps.end()),
            (std::vector<Step>{Step::kUnmap, Step::kRelease, Step::kAddressFree}));
}

// Chunks are created shareable (a POSIX fd, for CUDA IPC); a driver that
// refuses the handle type gets a plain create, so allocation never fails
// for it. Out of memory is not retried: the plain create would fail too.
TEST_F(EgmAllocatorTest, CreatesShareableChunksAndRetriesPlainWhenRefused) {
  HostMapping shareable = map_ok({kGranule, 0, 0, true, 0});
  EXPECT_TRUE(shareable.shareable);
  EXPECT_EQ(fake_.handles().at(shareable.handle).properties.requestedHandleTypes,
            CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);

  fake_.fail_call(Step::kCreate, 2, CUDA_ERROR_NOT_SUPPORTED);  // the next create
  size_t calls_before = fake_.calls().size();
  auto plain = allocator_.map({kGranule, 0, 0, true, 0}, kGranule, kGranule);
  ASSERT_TRUE(std::holds_alternative<HostMapping>(plain));
  EXPECT_FALSE(std::get<HostMapping>(plain).shareable);
  EXPECT_EQ(fake_.handles().at(std::get<HostMapping>(plain).handle).properties.requestedHandleTypes,
            CU_MEM_HANDLE_TYPE_NONE);
  EXPECT_EQ(fake_.calls()[calls_before].step, Step::kCreate);
  EXPECT_EQ(fake_.calls()[calls_before + 1].step, Step::kCreate);
  EXPECT_TRUE(fake_.misuse().empty()) << fake_.misuse().front();
}

// Each step of the sequence fails in turn: the error comes back with the
// step's name, and exactly the steps done before it are undone.
struct RollbackCase {
  Step failing;
  std::vector<Step> expected;  // the calls, in order
};

class EgmAllocatorRollbackTest : public EgmAllocatorTest,
                                 public ::testing::WithParamInterface<RollbackCase> {};

TEST_P(EgmAllocatorRollbackTest, UndoesExactlyTheEarlierSteps) {
  const RollbackCase& test_case = GetParam();
  fake_.fail_call(test_case.failing, 1, CUDA_ERROR_OUT_OF_MEMORY);
  auto mapped = allocator_.map({kGranule, 0, 0, true, 0b10}, kGranule, kGranule);
  ASSERT_TRUE(std::holds_alternative<EgmFailure>(mapped));
  EXPECT_STREQ(std::get<EgmFailure>(mapped).step, step_name(test_case.failing));
  EXPECT_EQ(std::get<EgmFailure>(mapped).error, CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(fake_.steps(), test_case.expected);
  EXPECT_TRUE(fake_.clean()) << "handles " << fake_.handles().size() << ", reservations "
                             << fake_.reservations().size() << ", mappings "
                             << fake_.mappings().size();
  EXPECT_TRUE(fake_.misuse().empty()) << fake_.misuse().front();
  for (const auto& call : fake_.calls()) {
    if (call.step != test_case.failing) {
      EXPECT_EQ(call.result, CUDA_SUCCESS) << step_name(call.step);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    EachStep, EgmAllocatorRollbackTest,
    ::testing::Values(RollbackCase{Step::kCreate, {Step::kCreate}},
                      RollbackCase{Step::kReserve, {Step::kCreate, Step::kReserve, Step::kRelease}},
                      RollbackCase{Step::kMap,
                                   {Step::kCreate, Step::kReserve, Step::kMap, Step::kAddressFree,
                                    Step::kRelease}},
                      RollbackCase{Step::kSetAccess,
                                   {Step::kCreate, Step::kReserve, Step::kMap, Step::kSetAccess,
                                    Step::kUnmap, Step::kRelease, Step::kAddressFree}}),
    [](const ::testing::TestParamInfo<RollbackCase>& info) {
      return std::string(step_name(info.param.failing));
    });

// The reverse sequence: every step is attempted even after one fails, and
// the first failure is the one reported.
class EgmAllocatorUnmapFailureTest : public EgmAllocatorTest,
                                     public ::testing::WithParamInterface<Step> {};

TEST_P(EgmAllocatorUnmapFailureTest, ReportsTheFailedStepAndStillTriesTheOthers) {
  HostMapping mapping = map_ok({kGranule, 0, 0, true, 0});
  size_t calls_before = fake_.calls().size();
  fake_.fail_always(GetParam(), CUDA_ERROR_INVALID_VALUE);
  std::optional<EgmFailure> failure = allocator_.unmap(mapping);
  ASSERT_TRUE(failure.has_value());
  EXPECT_STREQ(failure->step, step_name(GetParam()));
  EXPECT_EQ(failure->error, CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(fake_.calls().size() - calls_before, 3u);
  // After a failed unmap the range is still mapped, so freeing it fails too
  // (harmlessly); the unmap's failure is the one reported.
  if (GetParam() != Step::kUnmap) {
    EXPECT_TRUE(fake_.misuse().empty()) << fake_.misuse().front();
  }
}

INSTANTIATE_TEST_SUITE_P(EachStep, EgmAllocatorUnmapFailureTest,
                         ::testing::Values(Step::kUnmap, Step::kRelease, Step::kAddressFree),
                         [](const ::testing::TestParamInfo<Step>& info) {
                           return std::string(step_name(info.param));
                         });

TEST_F(EgmAllocatorTest, UnmapReportsTheFirstOfSeveralFailures) {
  HostMapping mapping = map_ok({kGranule, 0, 0, true, 0});
  fake_.fail_always(Step::kRelease, CUDA_ERROR_INVALID_VALUE);
  fake_.fail_always(Step::kAddressFree, CUDA_ERROR_ILLEGAL_ADDRESS);
  std::optional<EgmFailure> failure = allocator_.unmap(mapping);
  ASSERT_TRUE(failure.has_value());
  EXPECT_STREQ(failure->step, "cuMemRelease");
  EXPECT_EQ(failure->error, CUDA_ERROR_INVALID_VALUE);
}

TEST_F(EgmAllocatorTest, GrantGivesOneDeviceTheWholeMapping) {
  HostMapping mapping = map_ok({3 * kMiB, 0, 0, false, 0});
  EXPECT_FALSE(allocator_.grant(mapping, 5).has_value());
  ASSERT_EQ(fake_.access_calls().size(), 2u);
  ASSERT_EQ(fake_.access_calls()[1].size(), 1u);
  EXPECT_TRUE(fake_.grants(mapping.address, CU_MEM_LOCATION_TYPE_DEVICE, 5));
  EXPECT_TRUE(fake_.misuse().empty()) << fake_.misuse().front();

  fake_.fail_call(Step::kSetAccess, 3, CUDA_ERROR_PEER_ACCESS_UNSUPPORTED);
  std::optional<EgmFailure> failure = allocator_.grant(mapping, 6);
  ASSERT_TRUE(failure.has_value());
  EXPECT_STREQ(failure->step, "cuMemSetAccess");
  EXPECT_EQ(failure->error, CUDA_ERROR_PEER_ACCESS_UNSUPPORTED);
  EXPECT_FALSE(fake_.grants(mapping.address, CU_MEM_LOCATION_TYPE_DEVICE, 6));
}

}  // namespace
}  // namespace egm
