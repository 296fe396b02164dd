// HostPool used from several threads at once, the way a multi-threaded
// program (and the prefill helper thread) uses it: no two live placements
// overlap, every driver call is a legal one, and once everything is freed
// and trimmed nothing is left mapped, reserved or charged.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "shim/core/budget.h"
#include "shim/core/host_pool.h"
#include "tests/unit/fake_driver_table.h"

namespace egm {
namespace {

using fake_driver::FakeDriverTable;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kGranule = 2 * kMiB;

// Live placements across all threads, to catch two that overlap.
class LiveRanges {
 public:
  // False when [address, address + size) overlaps a live range.
  bool add(uintptr_t address, size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto next = ranges_.lower_bound(address);
    if (next != ranges_.end() && next->first < address + size) return false;
    if (next != ranges_.begin() && std::prev(next)->first + std::prev(next)->second > address) {
      return false;
    }
    ranges_[address] = size;
    return true;
  }
  void remove(uintptr_t address) {
    std::lock_guard<std::mutex> lock(mutex_);
    ranges_.erase(address);
  }

 private:
  std::mutex mutex_;
  std::map<uintptr_t, size_t> ranges_;
};

TEST(HostPoolThreadsTest, ConcurrentUseLeavesNothingBehind) {
  FakeDriverTable fake;
  Budget table;
  HostPool pool(PoolSettings{16 * kMiB, true, 0}, table,
                [](const char*, const Chunk&, const char*, int64_t) {});
  LiveRanges live;
  const size_t cap = 48 * kMiB;  // per node: some requests meet the limit
  const size_t sizes[] = {256, 1000, 5000, 100000, kMiB + 1, kGranule, 3 * kMiB, 6 * kMiB};
  std::vector<int> overlaps(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(t + 1);
      std::vector<std::pair<Allocation, ChunkKey>> held;
      for (int i = 0; i < 1500; ++i) {
        ChunkKey key{static_cast<int>(random() % 2), static_cast<int>(random() % 2),
                     random() % 4 != 0};
        size_t size = sizes[random() % std::size(sizes)];
        auto placed = pool.acquire(fake.api(), key, size, kGranule, cap);
        if (const PoolBlock* placement = std::get_if<PoolBlock>(&placed)) {
          if (!live.add(placement->address, placement->size)) ++overlaps[t];
          held.emplace_back(allocation_of(*placement, key), key);
        }
        if (held.size() > 12 || (random() % 3 == 0 && !held.empty())) {
          size_t victim = random() % held.size();
          live.remove(held[victim].first.address);
          pool.release(fake.api(), held[victim].first);
          held.erase(held.begin() + static_cast<long>(victim));
        }
        if (random() % 97 == 0) pool.grant_peer(fake.api(), key.device, 2 + t);
        if (random() % 211 == 0) pool.trim(fake.api(), "pressure");
        if (t == 0 && random() % 101 == 0) {
          pool.prefill(fake.api(), key, kGranule, 4 * kMiB, cap);  // as the helper thread does
        }
      }
      for (const auto& [mapping, key] : held) {
        live.remove(mapping.address);
        pool.release(fake.api(), mapping);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(overlaps[t], 0) << "thread " << t;
  pool.trim(fake.api(), "exit");
  for (const std::string& line : fake.misuse()) ADD_FAILURE() << line;
  EXPECT_TRUE(fake.clean()) << fake.handles().size() << " handles, " << fake.reservations().size()
                            << " reservations, " << fake.mappings().size() << " mappings left";
  for (const auto& [node, usage] : table.usage_by_node()) {
    EXPECT_EQ(usage.current_bytes, 0u) << "node " << node;
  }
  for (const auto& [device, usage] : table.usage_by_device()) {
    EXPECT_EQ(usage.current_bytes, 0u) << "device " << device;
  }
  EXPECT_GT(fake.count(fake_driver::Step::kCreate), 10);
}

}  // namespace
}  // namespace egm
