// The pool's bookkeeping: the chunk cache and the slab (sub-)allocator.
#include <gtest/gtest.h>

#include <set>

#include "shim/core/chunk_cache.h"
#include "shim/core/slab_allocator.h"

namespace egm {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kGranule = 2 * kMiB;
const ChunkKey kKey{0, 0, true};

Chunk chunk(uint64_t id, size_t size, uintptr_t address, ChunkKey key = kKey) {
  return Chunk{id, {static_cast<CUdeviceptr>(address), size, id}, key.node, key.device,
               key.host_access};
}

TEST(ChunkCacheTest, TakesTheBestFitWithinAQuarterAbove) {
  ChunkCache cache(64 * kMiB);
  EXPECT_TRUE(cache.put(chunk(1, 8 * kMiB, 0x1000000)).empty());
  EXPECT_TRUE(cache.put(chunk(2, 4 * kMiB, 0x2000000)).empty());
  EXPECT_FALSE(cache.take(kKey, 2 * kMiB).has_value()) << "4 MiB is 2x: too wasteful";
  std::optional<Chunk> got = cache.take(kKey, 4 * kMiB);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, 2u);
  EXPECT_FALSE(cache.take(kKey, 9 * kMiB).has_value());
  EXPECT_EQ(cache.take(kKey, 7 * kMiB)->id, 1u);
  EXPECT_EQ(cache.cached_bytes(), 0u);
}

TEST(ChunkCacheTest, ReusesOnlyForTheSameNodeDeviceAndAccess) {
  ChunkCache cache(64 * kMiB);
  cache.put(chunk(1, kGranule, 0x1000000));
  EXPECT_FALSE(cache.take({1, 0, true}, kGranule).has_value());
  EXPECT_FALSE(cache.take({0, 1, true}, kGranule).has_value());
  EXPECT_FALSE(cache.take({0, 0, false}, kGranule).has_value());
  EXPECT_TRUE(cache.take(kKey, kGranule).has_value());
}

TEST(ChunkCacheTest, EvictsTheOldestToStayWithinTheLimit) {
  ChunkCache cache(6 * kMiB);
  cache.put(chunk(1, kGranule, 0x1000000));
  cache.put(chunk(2, kGranule, 0x2000000));
  cache.put(chunk(3, kGranule, 0x3000000));
  std::vector<Chunk> evicted = cache.put(chunk(4, 4 * kMiB, 0x4000000));
  ASSERT_EQ(evicted.size(), 2u);
  EXPECT_EQ(evicted[0].id, 1u);
  EXPECT_EQ(evicted[1].id, 2u);
  EXPECT_EQ(cache.cached_bytes(), 6 * kMiB);
  EXPECT_EQ(cache.put(chunk(5, 8 * kMiB, 0x5000000)).size(), 1u) << "larger than the limit";
  EXPECT_EQ(cache.trim_to(0).size(), 2u);
  EXPECT_EQ(cache.cached_bytes(), 0u);
}

TEST(ChunkCacheTest, ZeroLimitKeepsNothing) {
  ChunkCache cache(0);
  EXPECT_EQ(cache.put(chunk(1, kGranule, 0x1000000)).size(), 1u);
}

TEST(SlabAllocatorTest, SizeClassesWasteAtMostAQuarterAbove1KiB) {
  EXPECT_EQ(block_size_for(1, kGranule), 256u);
  EXPECT_EQ(block_size_for(4096, kGranule), 4096u);
  EXPECT_EQ(block_size_for(kGranule / 2 + 1, kGranule), 0u) << "whole chunk";
  EXPECT_EQ(block_size_for(0, kGranule), 0u);
  for (size_t size = 1024; size <= kGranule / 2; size += 37) {
    size_t block = block_size_for(size, kGranule);
    ASSERT_GE(block, size);
    ASSERT_EQ(block % 256, 0u) << "cudaMalloc alignment";
    ASSERT_LE(block, size + size / 4 + 256) << size;
  }
}

TEST(SlabAllocatorTest, CarvesDistinctAlignedBlocksAndReturnsTheEmptySlab) {
  SlabAllocator slabs;
  EXPECT_FALSE(slabs.allocate(kKey, 4096).has_value()) << "no slab yet";
  Chunk backing = chunk(7, kGranule, 0x10000000);
  std::set<uintptr_t> addresses;
  std::vector<Block> blocks = {slabs.add_slab(kKey, 4096, backing)};
  for (size_t i = 1; i < kGranule / 4096; ++i) {
    std::optional<Block> block = slabs.allocate(kKey, 4096);
    ASSERT_TRUE(block.has_value()) << i;
    blocks.push_back(*block);
  }
  EXPECT_FALSE(slabs.allocate(kKey, 4096).has_value()) << "slab full";
  for (const Block& block : blocks) {
    EXPECT_EQ(block.address % 4096, 0u);
    EXPECT_GE(block.address, 0x10000000u);
    EXPECT_LT(block.address, 0x10000000u + kGranule);
    EXPECT_EQ(block.chunk_id, 7u);
    addresses.insert(block.address);
  }
  EXPECT_EQ(addresses.size(), blocks.size());
  for (size_t i = 0; i + 1 < blocks.size(); ++i) {
    EXPECT_FALSE(slabs.free(blocks[i]).has_value());
  }
  EXPECT_TRUE(slabs.allocate(kKey, 4096).has_value()) << "freed blocks are reused";
  slabs.free(blocks.back());
  std::optional<Block> again = slabs.allocate(kKey, 4096);
  ASSERT_TRUE(again.has_value());
  slabs.free(*again);
  // Free the reused one (blocks[0]'s address) last: the slab empties.
  std::optional<Chunk> emptied;
  for (size_t i = 0; i < 1; ++i) emptied = slabs.free({blocks[0].address, 4096, 7, 0x10000000});
  ASSERT_TRUE(emptied.has_value());
  EXPECT_EQ(emptied->id, 7u);
  EXPECT_EQ(slabs.slab_count(), 0u);
}

}  // namespace
}  // namespace egm
