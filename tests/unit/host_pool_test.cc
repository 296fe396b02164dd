// HostPool against the fake driver table: whole chunks and sub-granule
// blocks, the chunk cache's reuse, limit and eviction, the retry after a
// failed mapping, node limits, prefill, trim, peer grants and the chunk
// events. (The cache and slab bookkeeping alone: pool_test.cc.)
#include "shim/core/budget.h"
#include "shim/core/host_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/fake_driver_table.h"

namespace egm {
namespace {

using fake_driver::FakeDriverTable;
using fake_driver::Step;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kGranule = 2 * kMiB;
constexpr size_t kNoCap = SIZE_MAX;
const ChunkKey kKey{0, 0, true};

struct ChunkEvent {
  std::string event;  // "map" or "unmap"
  uint64_t chunk = 0;
  std::string reason;
  size_t size = 0;
  bool operator==(const ChunkEvent& other) const {
    return event == other.event && chunk == other.chunk && reason == other.reason &&
           size == other.size;
  }
};

std::ostream& operator<<(std::ostream& out, const ChunkEvent& e) {
  return out << e.event << "(chunk " << e.chunk << ", " << e.reason << ", " << e.size << ")";
}

class HostPoolTest : public ::testing::Test {
 protected:
  void make_pool(size_t cache_limit, bool suballocate = true, uint64_t every_device = 0) {
    pool_ = std::make_unique<HostPool>(
        PoolSettings{cache_limit, suballocate, every_device}, table_,
        [this](const char* event, const Chunk& chunk, const char* reason, int64_t) {
          events_.push_back({event, chunk.id, reason, chunk.mapping.mapped_size});
        });
  }

  PoolBlock acquire_ok(const ChunkKey& key, size_t size, size_t cap = kNoCap) {
    auto placed = pool_->acquire(fake_.api(), key, size, kGranule, cap);
    if (const EgmFailure* failure = std::get_if<EgmFailure>(&placed)) {
      ADD_FAILURE() << "acquire(" << size << ") failed at " << failure->step;
      return {};
    }
    return std::get<PoolBlock>(placed);
  }

  EgmFailure acquire_fails(const ChunkKey& key, size_t size, size_t cap = kNoCap) {
    auto placed = pool_->acquire(fake_.api(), key, size, kGranule, cap);
    if (!std::holds_alternative<EgmFailure>(placed)) {
      ADD_FAILURE() << "acquire(" << size << ") succeeded";
      return {"none", CUDA_SUCCESS};
    }
    return std::get<EgmFailure>(placed);
  }

  std::optional<EgmFailure> release(const PoolBlock& placement, const ChunkKey& key = kKey) {
    return pool_->release(fake_.api(), allocation_of(placement, key));
  }

  size_t node_bytes(int node) { return table_.usage_by_node()[node].current_bytes; }
  size_t device_bytes(int device) { return table_.usage_by_device()[device].current_bytes; }
  bool mapped(const PoolBlock& placement) const {
    return fake_.mapping_at(placement.chunk.mapping.address) != nullptr;
  }
  bool grants_device(const PoolBlock& placement, int device) const {
    return fake_.grants(placement.chunk.mapping.address, CU_MEM_LOCATION_TYPE_DEVICE, device);
  }
  void expect_no_misuse() const {
    for (const std::string& line : fake_.misuse()) ADD_FAILURE() << line;
  }

  FakeDriverTable fake_;
  Budget table_;
  std::unique_ptr<HostPool> pool_;
  std::vector<ChunkEvent> events_;
};

TEST_F(HostPoolTest, WholeChunkIsMappedFreshThenReusedFromTheCache) {
  make_pool(16 * kMiB);
  const ChunkKey key{1, 0, true};
  PoolBlock first = acquire_ok(key, 3 * kMiB);
  EXPECT_STREQ(first.source, "fresh");
  EXPECT_EQ(first.size, 4 * kMiB) << "rounded up to the granule";
  EXPECT_EQ(first.address, first.chunk.mapping.address);
  ASSERT_TRUE(mapped(first));
  EXPECT_EQ(fake_.handles().at(first.chunk.mapping.handle).properties.location.id, 1);
  EXPECT_TRUE(fake_.grants(first.chunk.mapping.address, CU_MEM_LOCATION_TYPE_HOST_NUMA, 1));
  EXPECT_EQ(node_bytes(1), 4 * kMiB);
  EXPECT_EQ(device_bytes(0), 4 * kMiB);

  EXPECT_FALSE(release(first, key).has_value());
  EXPECT_EQ(pool_->cached_bytes(), 4 * kMiB);
  EXPECT_TRUE(mapped(first)) << "cached, not unmapped";
  EXPECT_EQ(fake_.count(Step::kUnmap), 0);
  EXPECT_EQ(node_bytes(1), 4 * kMiB) << "a cached chunk stays pinned";

  PoolBlock again = acquire_ok(key, 4 * kMiB);
  EXPECT_STREQ(again.source, "pool");
  EXPECT_EQ(again.address, first.address);
  EXPECT_EQ(again.chunk.id, first.chunk.id);
  EXPECT_EQ(fake_.count(Step::kCreate), 1);
  EXPECT_EQ(pool_->cached_bytes(), 0u);

  release(again, key);
  pool_->trim(fake_.api(), "exit");
  EXPECT_TRUE(fake_.clean());
  EXPECT_EQ(node_bytes(1), 0u);
  EXPECT_EQ(device_bytes(0), 0u);
  expect_no_misuse();
}

TEST_F(HostPoolTest, ReuseNeedsTheSameKeyAndAtMostAQuarterMore) {
  make_pool(64 * kMiB);
  release(acquire_ok(kKey, 8 * kMiB));
  EXPECT_STREQ(acquire_ok(kKey, 4 * kMiB).source, "fresh") << "8 MiB for 4 wastes half";
  EXPECT_STREQ(acquire_ok({1, 0, true}, 8 * kMiB).source, "fresh") << "other node";
  EXPECT_STREQ(acquire_ok({0, 1, true}, 8 * kMiB).source, "fresh") << "other device";
  EXPECT_STREQ(acquire_ok({0, 0, false}, 8 * kMiB).source, "fresh") << "no host access";
  EXPECT_STREQ(acquire_ok(kKey, 7 * kMiB).source, "pool");
  EXPECT_EQ(fake_.count(Step::kCreate), 5);
  expect_no_misuse();
}

TEST_F(HostPoolTest, AReusedLargerChunkIsGivenBackWholeAtItsOwnSize) {
  make_pool(64 * kMiB);
  PoolBlock first = acquire_ok(kKey, 10 * kMiB);
  release(first);
  PoolBlock reused = acquire_ok(kKey, 8 * kMiB);  // 10 MiB is within a quarter
  EXPECT_STREQ(reused.source, "pool");
  EXPECT_EQ(reused.size, 10 * kMiB) << "the user owns the whole chunk";
  release(reused);
  EXPECT_EQ(pool_->cached_bytes(), 10 * kMiB);
  pool_->trim(fake_.api(), "exit");
  EXPECT_TRUE(fake_.clean());
  EXPECT_EQ(node_bytes(0), 0u);
  EXPECT_EQ(device_bytes(0), 0u);
  expect_no_misuse();
}

TEST_F(HostPoolTest, ASizeThatCannotBeRoundedUpCallsNoDriver) {
  make_pool(16 * kMiB);
  EgmFailure failure = acquire_fails(kKey, SIZE_MAX - 100);
  EXPECT_STREQ(failure.step, "round-up");
  EXPECT_EQ(failure.error, CUDA_ERROR_INVALID_VALUE);
  EXPECT_TRUE(fake_.calls().empty());
  EXPECT_EQ(node_bytes(0), 0u);
}

TEST_F(HostPoolTest, PoolLimitEvictsTheOldestChunk) {
  make_pool(4 * kMiB);
  PoolBlock a = acquire_ok(kKey, kGranule);
  PoolBlock b = acquire_ok(kKey, kGranule);
  PoolBlock c = acquire_ok(kKey, kGranule);
  release(a);
  release(b);
  EXPECT_EQ(pool_->cached_bytes(), 4 * kMiB);
  EXPECT_EQ(fake_.count(Step::kUnmap), 0);
  release(c);
  EXPECT_FALSE(mapped(a)) << "oldest evicted";
  EXPECT_TRUE(mapped(b));
  EXPECT_TRUE(mapped(c));
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_.back(), (ChunkEvent{"unmap", a.chunk.id, "evict", kGranule}));
  EXPECT_EQ(pool_->cached_bytes(), 4 * kMiB);
  EXPECT_EQ(node_bytes(0), 4 * kMiB);

  // Larger than the whole limit: unmapped at once, the cache untouched.
  PoolBlock big = acquire_ok(kKey, 6 * kMiB);
  release(big);
  EXPECT_FALSE(mapped(big));
  EXPECT_TRUE(mapped(b));
  EXPECT_TRUE(mapped(c));
  EXPECT_EQ(pool_->cached_bytes(), 4 * kMiB);
  expect_no_misuse();
}

TEST_F(HostPoolTest, WithoutACacheReleaseUnmapsAtOnce) {
  make_pool(0);
  PoolBlock a = acquire_ok(kKey, 5 * kMiB);
  EXPECT_FALSE(release(a).has_value());
  EXPECT_TRUE(fake_.clean());
  EXPECT_EQ(node_bytes(0), 0u);
  EXPECT_EQ(device_bytes(0), 0u);
  expect_no_misuse();
}

TEST_F(HostPoolTest, FailedMappingEmptiesTheCacheAndRetriesOnce) {
  make_pool(16 * kMiB);
  const ChunkKey other{0, 1, true};  // cached, but not reusable for kKey
  PoolBlock cached = acquire_ok(other, kGranule);
  release(cached, other);
  fake_.fail_call(Step::kCreate, 2);
  PoolBlock got = acquire_ok(kKey, 4 * kMiB);
  EXPECT_STREQ(got.source, "fresh");
  EXPECT_EQ(fake_.count(Step::kCreate), 3);
  EXPECT_FALSE(mapped(cached));
  EXPECT_EQ(pool_->cached_bytes(), 0u);
  EXPECT_EQ(events_, (std::vector<ChunkEvent>{{"map", cached.chunk.id, "fresh", kGranule},
                                              {"unmap", cached.chunk.id, "pressure", kGranule},
                                              {"map", got.chunk.id, "fresh", 4 * kMiB}}));
  expect_no_misuse();
}

TEST_F(HostPoolTest, RetryAfterEmptyingTheCacheHappensOnceAndLeaksNothing) {
  make_pool(16 * kMiB);
  const ChunkKey other{0, 1, true};
  release(acquire_ok(other, kGranule), other);
  fake_.fail_always(Step::kMap, CUDA_ERROR_OUT_OF_MEMORY);
  EgmFailure failure = acquire_fails(kKey, 4 * kMiB);
  EXPECT_STREQ(failure.step, "cuMemMap");
  EXPECT_EQ(failure.error, CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(fake_.count(Step::kCreate), 3) << "the cached chunk, then two tries";
  EXPECT_TRUE(fake_.clean());
  EXPECT_EQ(node_bytes(0), 0u);
  EXPECT_EQ(device_bytes(0), 0u);

  // Nothing cached: nothing to gain from a retry.
  fake_.heal();
  fake_.fail_call(Step::kSetAccess, fake_.count(Step::kSetAccess) + 1);
  EXPECT_STREQ(acquire_fails(kKey, 4 * kMiB).step, "cuMemSetAccess");
  EXPECT_EQ(fake_.count(Step::kCreate), 4);
  EXPECT_TRUE(fake_.clean());
  EXPECT_EQ(node_bytes(0), 0u);
  expect_no_misuse();
}

TEST_F(HostPoolTest, NodeLimitCountsChunksInUseAndCached) {
  make_pool(16 * kMiB);
  const size_t cap = 4 * kMiB;
  PoolBlock a = acquire_ok(kKey, kGranule, cap);
  PoolBlock b = acquire_ok(kKey, kGranule, cap);
  size_t calls = fake_.calls().size();
  EgmFailure full = acquire_fails(kKey, kGranule, cap);
  EXPECT_STREQ(full.step, "node-limit");
  EXPECT_EQ(full.error, CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(fake_.calls().size(), calls) << "refused before any driver call";
  EXPECT_EQ(node_bytes(0), 4 * kMiB);
  EXPECT_STREQ(acquire_ok({1, 0, true}, kGranule, cap).source, "fresh") << "each node its own";

  // b cached still counts; a chunk for another device needs its room, so
  // the cache is emptied and the mapping tried again.
  release(b);
  const ChunkKey other{0, 1, true};
  PoolBlock c = acquire_ok(other, kGranule, cap);
  EXPECT_FALSE(mapped(b));
  EXPECT_TRUE(mapped(a));
  EXPECT_TRUE(mapped(c));
  EXPECT_EQ(node_bytes(0), 4 * kMiB);
  EXPECT_EQ(device_bytes(0), 2 * kGranule) << "a, and node 1's chunk";
  EXPECT_EQ(device_bytes(1), kGranule);

  // A mapping that fails gives its charge back.
  fake_.fail_always(Step::kMap);
  EXPECT_STREQ(acquire_fails({0, 2, true}, kGranule, 6 * kMiB).step, "cuMemMap");
  EXPECT_EQ(node_bytes(0), 4 * kMiB) << "a and c";
  fake_.heal();
  EXPECT_STREQ(acquire_ok({0, 2, true}, kGranule, 6 * kMiB).source, "fresh");
  EXPECT_EQ(node_bytes(0), 6 * kMiB);
  expect_no_misuse();
}

TEST_F(HostPoolTest, SubGranuleRequestsShareAChunk) {
  make_pool(0);
  PoolBlock a = acquire_ok(kKey, 1000);
  EXPECT_STREQ(a.source, "slab");
  EXPECT_EQ(a.size, 1024u) << "the size class";
  PoolBlock b = acquire_ok(kKey, 1000);
  EXPECT_STREQ(b.source, "slab");
  EXPECT_EQ(b.chunk.id, a.chunk.id);
  EXPECT_NE(b.address, a.address);
  for (const PoolBlock& block : {a, b}) {
    EXPECT_GE(block.address, a.chunk.mapping.address);
    EXPECT_LE(block.address + block.size, a.chunk.mapping.address + kGranule);
    EXPECT_EQ(block.address % 256, 0u);
  }
  ASSERT_NE(fake_.mapping_at(a.chunk.mapping.address), nullptr);
  EXPECT_EQ(fake_.mapping_at(a.chunk.mapping.address)->size, kGranule);
  PoolBlock c = acquire_ok(kKey, 3000);
  EXPECT_EQ(c.size, 3072u);
  EXPECT_NE(c.chunk.id, a.chunk.id) << "another size class, another slab";
  EXPECT_EQ(fake_.count(Step::kCreate), 2);
  EXPECT_EQ(node_bytes(0), 2 * kGranule);

  EXPECT_FALSE(release(a).has_value());
  EXPECT_TRUE(mapped(b)) << "b still uses the slab";
  EXPECT_FALSE(release(b).has_value());
  EXPECT_FALSE(mapped(b)) << "the last block freed: the chunk goes back";
  EXPECT_FALSE(release(c).has_value());
  EXPECT_TRUE(fake_.clean());
  EXPECT_EQ(node_bytes(0), 0u);
  expect_no_misuse();
}

TEST_F(HostPoolTest, AnEmptiedSlabIsCachedForWholeChunkRequests) {
  make_pool(16 * kMiB);
  PoolBlock block = acquire_ok(kKey, 300);
  release(block);
  EXPECT_EQ(pool_->cached_bytes(), kGranule);
  PoolBlock whole = acquire_ok(kKey, kGranule);
  EXPECT_STREQ(whole.source, "pool");
  EXPECT_EQ(whole.chunk.id, block.chunk.id);
  EXPECT_EQ(fake_.count(Step::kCreate), 1);
}

TEST_F(HostPoolTest, WithoutSuballocationSmallRequestsGetWholeChunks) {
  make_pool(0, /*suballocate=*/false);
  PoolBlock a = acquire_ok(kKey, 1000);
  PoolBlock b = acquire_ok(kKey, 1000);
  EXPECT_STREQ(a.source, "fresh");
  EXPECT_EQ(a.size, kGranule);
  EXPECT_NE(a.chunk.id, b.chunk.id);
  EXPECT_EQ(fake_.count(Step::kCreate), 2);
}

TEST_F(HostPoolTest, PrefillMapsGranulesIntoTheCache) {
  make_pool(8 * kMiB);
  pool_->prefill(fake_.api(), kKey, kGranule, 6 * kMiB, kNoCap);
  EXPECT_EQ(fake_.count(Step::kCreate), 3);
  EXPECT_EQ(pool_->cached_bytes(), 6 * kMiB);
  EXPECT_EQ(fake_.count(Step::kUnmap), 0);
  EXPECT_EQ(node_bytes(0), 6 * kMiB);
  EXPECT_STREQ(acquire_ok(kKey, kGranule).source, "pool");
  EXPECT_STREQ(acquire_ok(kKey, 100).source, "slab") << "on a prefilled chunk";
  EXPECT_EQ(fake_.count(Step::kCreate), 3);
  expect_no_misuse();
}

TEST_F(HostPoolTest, PrefillStopsAtThePoolLimit) {
  make_pool(8 * kMiB);
  pool_->prefill(fake_.api(), kKey, kGranule, 64 * kMiB, kNoCap);
  EXPECT_EQ(fake_.count(Step::kCreate), 4);
  EXPECT_EQ(pool_->cached_bytes(), 8 * kMiB);
  EXPECT_EQ(fake_.count(Step::kUnmap), 0) << "nothing mapped only to be evicted";
}

TEST_F(HostPoolTest, PrefillStopsAtTheNodeLimit) {
  make_pool(16 * kMiB);
  acquire_ok(kKey, kGranule);  // in use
  pool_->prefill(fake_.api(), kKey, kGranule, 16 * kMiB, 6 * kMiB);
  EXPECT_EQ(pool_->cached_bytes(), 4 * kMiB);
  EXPECT_EQ(node_bytes(0), 6 * kMiB);
  EXPECT_EQ(fake_.count(Step::kCreate), 3);
  expect_no_misuse();
}

TEST_F(HostPoolTest, PrefillStopsAtTheFirstDriverFailure) {
  make_pool(16 * kMiB);
  fake_.fail_call(Step::kMap, 2);
  pool_->prefill(fake_.api(), kKey, kGranule, 8 * kMiB, kNoCap);
  EXPECT_EQ(pool_->cached_bytes(), kGranule);
  EXPECT_EQ(fake_.count(Step::kCreate), 2);
  EXPECT_EQ(fake_.mappings().size(), 1u);
  EXPECT_EQ(fake_.handles().size(), 1u);
  EXPECT_EQ(fake_.reservations().size(), 1u);
  EXPECT_EQ(node_bytes(0), kGranule);
  expect_no_misuse();
}

TEST_F(HostPoolTest, TrimUnmapsOnlyCachedChunks) {
  make_pool(16 * kMiB);
  PoolBlock in_use = acquire_ok(kKey, kGranule);
  PoolBlock b = acquire_ok(kKey, 4 * kMiB);
  PoolBlock c = acquire_ok({1, 0, true}, kGranule);
  release(b);
  release(c, {1, 0, true});
  events_.clear();
  pool_->trim(fake_.api(), "pressure");
  EXPECT_EQ(pool_->cached_bytes(), 0u);
  EXPECT_TRUE(mapped(in_use));
  EXPECT_FALSE(mapped(b));
  EXPECT_FALSE(mapped(c));
  EXPECT_EQ(events_, (std::vector<ChunkEvent>{{"unmap", b.chunk.id, "pressure", 4 * kMiB},
                                              {"unmap", c.chunk.id, "pressure", kGranule}}));
  EXPECT_EQ(node_bytes(0), kGranule);
  EXPECT_EQ(node_bytes(1), 0u);
  EXPECT_EQ(fake_.handles().size(), 1u);
  EXPECT_EQ(fake_.reservations().size(), 1u);
  expect_no_misuse();
}

TEST_F(HostPoolTest, GrantPeerReachesInUseCachedAndSlabChunksOfThatDevice) {
  make_pool(16 * kMiB);
  PoolBlock in_use = acquire_ok(kKey, kGranule);
  PoolBlock cached = acquire_ok(kKey, 4 * kMiB);
  release(cached);
  PoolBlock block = acquire_ok(kKey, 512);
  const ChunkKey device1{0, 1, true};
  PoolBlock other = acquire_ok(device1, kGranule);

  int access_calls = fake_.count(Step::kSetAccess);
  EXPECT_FALSE(pool_->grant_peer(fake_.api(), 0, 2).has_value());
  EXPECT_TRUE(grants_device(in_use, 2));
  EXPECT_TRUE(grants_device(cached, 2));
  EXPECT_TRUE(grants_device(block, 2));
  EXPECT_FALSE(grants_device(other, 2)) << "made for device 1";
  EXPECT_EQ(fake_.count(Step::kSetAccess), access_calls + 3);

  // Granted once: asking again, or for the device itself, or for a device
  // out of range, calls nothing.
  EXPECT_FALSE(pool_->grant_peer(fake_.api(), 0, 2).has_value());
  EXPECT_FALSE(pool_->grant_peer(fake_.api(), 0, 0).has_value());
  EXPECT_FALSE(pool_->grant_peer(fake_.api(), 0, 64).has_value());
  EXPECT_FALSE(pool_->grant_peer(fake_.api(), 0, -1).has_value());
  EXPECT_EQ(fake_.count(Step::kSetAccess), access_calls + 3);

  // A chunk mapped later for device 0 gets the peer in its first grant.
  PoolBlock later = acquire_ok(kKey, 8 * kMiB);
  EXPECT_TRUE(grants_device(later, 2));
  EXPECT_EQ(fake_.count(Step::kSetAccess), access_calls + 4);
  const auto& first_grant = fake_.access_calls().back();
  EXPECT_TRUE(std::any_of(first_grant.begin(), first_grant.end(), [](const CUmemAccessDesc& d) {
    return d.location.type == CU_MEM_LOCATION_TYPE_DEVICE && d.location.id == 2;
  }));
  // Device 1's chunks do not.
  EXPECT_FALSE(grants_device(acquire_ok(device1, 8 * kMiB), 2));
  expect_no_misuse();
}

TEST_F(HostPoolTest, AFailedPeerGrantIsReportedAndRetriedByTheNextOne) {
  make_pool(16 * kMiB);
  PoolBlock a = acquire_ok(kKey, kGranule);
  PoolBlock b = acquire_ok(kKey, kGranule);
  int access_calls = fake_.count(Step::kSetAccess);
  fake_.fail_call(Step::kSetAccess, access_calls + 1, CUDA_ERROR_PEER_ACCESS_UNSUPPORTED);
  std::optional<EgmFailure> failure = pool_->grant_peer(fake_.api(), 0, 3);
  ASSERT_TRUE(failure.has_value());
  EXPECT_STREQ(failure->step, "cuMemSetAccess");
  EXPECT_EQ(failure->error, CUDA_ERROR_PEER_ACCESS_UNSUPPORTED);
  EXPECT_EQ(grants_device(a, 3) + grants_device(b, 3), 1) << "the other chunk still granted";
  EXPECT_FALSE(pool_->grant_peer(fake_.api(), 0, 3).has_value());
  EXPECT_TRUE(grants_device(a, 3));
  EXPECT_TRUE(grants_device(b, 3));
  EXPECT_EQ(fake_.count(Step::kSetAccess), access_calls + 3) << "only the missing grant again";
}

TEST_F(HostPoolTest, GrantEveryDeviceReachesEveryChunkAndLaterOnes) {
  make_pool(16 * kMiB);
  PoolBlock zero = acquire_ok({0, 0, true}, kGranule);
  PoolBlock one = acquire_ok({0, 1, true}, kGranule);
  release(one, {0, 1, true});                     // cached
  PoolBlock two = acquire_ok({0, 2, true}, 300);  // a slab
  int access_calls = fake_.count(Step::kSetAccess);
  pool_->grant_every_device(fake_.api(), 0b111);
  EXPECT_EQ(fake_.count(Step::kSetAccess), access_calls + 6) << "two peers for each of three";
  for (int device : {0, 1, 2}) {
    EXPECT_TRUE(grants_device(zero, device)) << device;
    EXPECT_TRUE(grants_device(one, device)) << device;
    EXPECT_TRUE(grants_device(two, device)) << device;
  }
  pool_->grant_every_device(fake_.api(), 0b111);
  EXPECT_EQ(fake_.count(Step::kSetAccess), access_calls + 6) << "nothing left to grant";

  PoolBlock later = acquire_ok({0, 1, true}, 4 * kMiB);
  EXPECT_EQ(fake_.count(Step::kSetAccess), access_calls + 7) << "granted at creation";
  EXPECT_TRUE(grants_device(later, 0));
  EXPECT_TRUE(grants_device(later, 2));
  expect_no_misuse();
}

TEST_F(HostPoolTest, EveryDeviceFromTheSettingsIsGrantedAtCreation) {
  make_pool(0, true, /*every_device=*/0b11);
  PoolBlock chunk = acquire_ok({0, 1, true}, kGranule);
  EXPECT_EQ(fake_.count(Step::kSetAccess), 1);
  EXPECT_TRUE(grants_device(chunk, 0));
  EXPECT_TRUE(grants_device(chunk, 1));
  EXPECT_FALSE(grants_device(chunk, 2));
}

TEST_F(HostPoolTest, ChunkEventsNameEachMapAndUnmapWithItsReason) {
  make_pool(kGranule);
  PoolBlock a = acquire_ok(kKey, kGranule);
  release(a);
  PoolBlock reused = acquire_ok(kKey, kGranule);  // no event: nothing mapped
  PoolBlock c = acquire_ok(kKey, kGranule);
  release(reused);
  release(c);  // evicts a's chunk
  pool_->trim(fake_.api(), "exit");
  EXPECT_EQ(events_, (std::vector<ChunkEvent>{{"map", a.chunk.id, "fresh", kGranule},
                                              {"map", c.chunk.id, "fresh", kGranule},
                                              {"unmap", a.chunk.id, "evict", kGranule},
                                              {"unmap", c.chunk.id, "exit", kGranule}}));
  EXPECT_TRUE(fake_.clean());

  // A failed unmap: the event names the failed step, release returns it.
  events_.clear();
  PoolBlock big = acquire_ok(kKey, 4 * kMiB);
  fake_.fail_always(Step::kUnmap, CUDA_ERROR_INVALID_VALUE);
  std::optional<EgmFailure> failure = release(big);
  ASSERT_TRUE(failure.has_value());
  EXPECT_STREQ(failure->step, "cuMemUnmap");
  EXPECT_EQ(events_, (std::vector<ChunkEvent>{{"map", big.chunk.id, "fresh", 4 * kMiB},
                                              {"unmap", big.chunk.id, "cuMemUnmap", 4 * kMiB}}));
}

}  // namespace
}  // namespace egm
