// HostPool's unmapping against peer grants (issue 15): a chunk leaves the
// registry before it is unmapped, so a peer grant made meanwhile (here: from
// inside the unmap itself, the widest possible window) never reaches a range
// that is being unmapped or, once freed, reserved by someone else.
#include <gtest/gtest.h>

#include "shim/core/host_pool.h"

namespace egm {
namespace {

constexpr size_t kGranule = size_t{2} << 20;

HostPool* pool_under_test = nullptr;
const DriverApi* driver_under_test = nullptr;
CUdeviceptr next_address = 0x100000000;
CUdeviceptr being_unmapped = 0;
int grants_during_unmap = 0;

CUresult create(CUmemGenericAllocationHandle* handle, size_t, const CUmemAllocationProp*,
                unsigned long long) {
  *handle = 1;
  return CUDA_SUCCESS;
}
CUresult release(CUmemGenericAllocationHandle) { return CUDA_SUCCESS; }
CUresult reserve(CUdeviceptr* address, size_t size, size_t, CUdeviceptr, unsigned long long) {
  *address = next_address;
  next_address += size;
  return CUDA_SUCCESS;
}
CUresult address_free(CUdeviceptr, size_t) { return CUDA_SUCCESS; }
CUresult map(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long) {
  return CUDA_SUCCESS;
}
CUresult set_access(CUdeviceptr address, size_t, const CUmemAccessDesc*, size_t) {
  if (address == being_unmapped) ++grants_during_unmap;
  return CUDA_SUCCESS;
}
// The program enables peer access while the chunk is being unmapped.
CUresult unmap(CUdeviceptr address, size_t) {
  being_unmapped = address;
  pool_under_test->grant_peer(*driver_under_test, 0, 1);
  pool_under_test->grant_every_device(*driver_under_test, 0b111);
  being_unmapped = 0;
  return CUDA_SUCCESS;
}

TEST(HostPoolRaceTest, PeerGrantsNeverReachAChunkBeingUnmapped) {
  DriverApi driver;
  driver.mem_create = create;
  driver.mem_release = release;
  driver.mem_address_reserve = reserve;
  driver.mem_address_free = address_free;
  driver.mem_map = map;
  driver.mem_unmap = unmap;
  driver.mem_set_access = set_access;
  Budget budget;
  // No cache: a freed chunk is unmapped at once.
  HostPool pool(PoolSettings{0, false, 0}, budget,
                [](const char*, const Chunk&, const char*, int64_t) {});
  pool_under_test = &pool;
  driver_under_test = &driver;
  auto placed = pool.acquire(driver, ChunkKey{0, 0, true}, kGranule, kGranule, SIZE_MAX);
  ASSERT_TRUE(std::holds_alternative<Placement>(placed));
  const Placement& placement = std::get<Placement>(placed);
  Mapping mapping;
  mapping.address = placement.address;
  mapping.mapped = placement.size;
  mapping.chunk_id = placement.chunk.id;
  mapping.chunk_address = static_cast<uintptr_t>(placement.chunk.mapping.address);
  mapping.handle = placement.chunk.mapping.handle;
  EXPECT_FALSE(pool.release(driver, mapping).has_value());
  EXPECT_EQ(grants_during_unmap, 0);
}

}  // namespace
}  // namespace egm
