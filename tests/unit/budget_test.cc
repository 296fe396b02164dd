#include "shim/core/budget.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace egm {
namespace {

// What the pool does for a fresh chunk: charge, map, note the peak; the
// Shim then counts the user allocation.
void charge_chunk(Budget& budget, int node, int device, size_t bytes) {
  ASSERT_TRUE(budget.try_charge(node, bytes, budget.limit(node)));
  budget.note_peak(node);
  budget.charge_device(device, bytes);
  budget.count_allocation(node, device);
}

TEST(BudgetTest, TracksCurrentAndPeakBytesPerNodeAndDevice) {
  Budget budget;
  charge_chunk(budget, 0, 0, 100);
  charge_chunk(budget, 0, 1, 50);
  budget.uncharge(0, 100);  // the pool unmapped its chunk
  budget.uncharge_device(0, 100);
  charge_chunk(budget, 1, 1, 10);
  auto nodes = budget.usage_by_node();
  EXPECT_EQ(nodes[0].current_bytes, 50u);
  EXPECT_EQ(nodes[0].peak_bytes, 150u);
  EXPECT_EQ(nodes[0].maps, 2u);
  EXPECT_EQ(nodes[1].current_bytes, 10u);
  auto devices = budget.usage_by_device();
  EXPECT_EQ(devices[0].current_bytes, 0u);
  EXPECT_EQ(devices[0].peak_bytes, 100u);
  EXPECT_EQ(devices[1].current_bytes, 60u);
  EXPECT_EQ(devices[1].maps, 2u);
}

TEST(BudgetTest, ChargesNeverPassTheLimit) {
  Budget budget;
  EXPECT_TRUE(budget.try_charge(0, 60, 100));
  EXPECT_FALSE(budget.try_charge(0, 41, 100));
  EXPECT_TRUE(budget.try_charge(0, 40, 100));
  EXPECT_FALSE(budget.try_charge(0, 1, 100));
  EXPECT_FALSE(budget.try_charge(1, SIZE_MAX, 100)) << "no overflow";
  budget.uncharge(0, 40);
  EXPECT_EQ(budget.usage_by_node()[0].peak_bytes, 0u) << "charges alone are no mappings";
  EXPECT_TRUE(budget.try_charge(0, 40, 100));
  budget.note_peak(0);
  EXPECT_EQ(budget.usage_by_node()[0].peak_bytes, 100u);
}

TEST(BudgetTest, LimitsAreTheNodeLimitsElseUncapped) {
  Budget budget(std::map<int, size_t>{{1, 4096}});
  EXPECT_EQ(budget.limit(1), 4096u);
  EXPECT_EQ(budget.limit(0), SIZE_MAX);
}

TEST(BudgetTest, RoomIsTheSystemsMemoryWithinTheCaps) {
  Budget budget(std::map<int, size_t>{{1, 1000}});
  ASSERT_TRUE(budget.try_charge(1, 300, budget.limit(1)));
  ASSERT_TRUE(budget.try_charge(0, 200, budget.limit(0)));
  auto free_of = [](int node) -> size_t { return node == 0 ? 5000 : 500; };
  auto total_of = [](int node) -> size_t { return node == 0 ? 8000 : 9000; };
  // Node 0: uncapped, the system's free and total. Node 1: the cap less its
  // use (700) above the system's free (500); total the cap.
  auto [free, total] = budget.room({0, 1}, free_of, total_of);
  EXPECT_EQ(free, 5000u + 500u);
  EXPECT_EQ(total, 8000u + 1000u);
  ASSERT_TRUE(budget.try_charge(1, 700, budget.limit(1)));
  EXPECT_EQ(budget.room({1}, free_of, total_of).first, 0u) << "a full cap leaves no room";
}

TEST(BudgetTest, ConcurrentChargesNeverOvershootTheCap) {
  constexpr size_t kCap = 1000, kChunk = 7;
  Budget budget(std::map<int, size_t>{{0, kCap}});
  std::vector<std::thread> threads;
  std::vector<int> granted(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&budget, &granted, t] {
      for (int i = 0; i < 1000; ++i) {
        if (budget.try_charge(0, kChunk, budget.limit(0))) ++granted[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  int total = 0;
  for (int count : granted) total += count;
  EXPECT_EQ(static_cast<size_t>(total), kCap / kChunk);
  EXPECT_EQ(budget.usage_by_node()[0].current_bytes, kCap / kChunk * kChunk);
}

}  // namespace
}  // namespace egm
