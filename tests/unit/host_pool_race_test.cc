// HostPool's unmapping against peer grants (issue 15): a chunk leaves the
// registry before it is unmapped, so a peer grant made meanwhile (here: from
// inside the unmap itself, the widest possible window) never reaches a range
// that is being unmapped or, once freed, reserved by someone else.
#include <gtest/gtest.h>

#include "shim/core/budget.h"
#include "shim/core/host_pool.h"
#include "tests/unit/fake_driver_table.h"

namespace egm {
namespace {

using fake_driver::FakeDriverTable;
using fake_driver::Step;

constexpr size_t kGranule = size_t{2} << 20;

TEST(HostPoolRaceTest, PeerGrantsNeverReachAChunkBeingUnmapped) {
  FakeDriverTable fake;
  Budget table;
  // No cache: a freed chunk is unmapped at once.
  HostPool pool(PoolSettings{0, false, 0}, table,
                [](const char*, const Chunk&, const char*, int64_t) {});
  int grants_during_unmap = 0;
  // The program enables peer access while the chunk is being unmapped.
  fake.on_unmap = [&](CUdeviceptr address) {
    size_t calls_before = fake.calls().size();
    pool.grant_peer(fake.api(), 0, 1);
    pool.grant_every_device(fake.api(), 0b111);
    for (size_t i = calls_before; i < fake.calls().size(); ++i) {
      const FakeDriverTable::Call& call = fake.calls()[i];
      grants_during_unmap += call.step == Step::kSetAccess && call.address == address;
    }
  };
  auto placed = pool.acquire(fake.api(), ChunkKey{0, 0, true}, kGranule, kGranule, SIZE_MAX);
  ASSERT_TRUE(std::holds_alternative<PoolBlock>(placed));
  const PoolBlock& placement = std::get<PoolBlock>(placed);
  Allocation mapping;
  mapping.address = placement.address;
  mapping.mapped = placement.size;
  mapping.chunk_id = placement.chunk.id;
  mapping.chunk_address = static_cast<uintptr_t>(placement.chunk.mapping.address);
  mapping.handle = placement.chunk.mapping.handle;
  EXPECT_FALSE(pool.release(fake.api(), mapping).has_value());
  EXPECT_EQ(fake.count(Step::kUnmap), 1);
  EXPECT_EQ(grants_during_unmap, 0);
  EXPECT_TRUE(fake.clean());
  EXPECT_TRUE(fake.misuse().empty());
}

}  // namespace
}  // namespace egm
