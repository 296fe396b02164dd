#include "shim/core/allocation_table.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace egm {
namespace {

Allocation mapping_at(uintptr_t address, size_t mapped, int node) {
  Allocation mapping;
  mapping.address = address;
  mapping.requested = mapped - 1;
  mapping.mapped = mapped;
  mapping.node = node;
  return mapping;
}

TEST(MappingTableTest, InsertAssignsIdsAndRemoveTakesTheEntryOut) {
  AllocationTable table;
  EXPECT_EQ(table.insert(mapping_at(0x1000, 4096, 0)), 1u);
  EXPECT_EQ(table.insert(mapping_at(0x9000, 8192, 1)), 2u);
  std::optional<Allocation> removed = table.remove(0x1000);
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->id, 1u);
  EXPECT_FALSE(table.remove(0x1000).has_value()) << "double remove";
  EXPECT_FALSE(table.remove(0x9001).has_value()) << "interior pointer";
  ASSERT_EQ(table.live().size(), 1u);
  EXPECT_EQ(table.live()[0].address, 0x9000u);
  EXPECT_EQ(table.total_inserted(), 2u);
  EXPECT_EQ(table.total_removed(), 1u);
}

TEST(MappingTableTest, MayContainIsFalseOutsideEveryMapping) {
  AllocationTable table;
  EXPECT_FALSE(table.may_contain(0x5000)) << "empty table";
  table.insert(mapping_at(0x5000, 4096, 0));
  EXPECT_TRUE(table.may_contain(0x5000));
  EXPECT_FALSE(table.may_contain(0x4000));
  EXPECT_FALSE(table.may_contain(0x6000));
  table.remove(0x5000);
  EXPECT_FALSE(table.may_contain(0x5000)) << "nothing live";
}

TEST(MappingTableTest, ConcurrentInsertAndRemoveKeepCountsConsistent) {
  AllocationTable table;
  constexpr int kThreads = 8, kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&table, t] {
      for (int i = 0; i < kPerThread; ++i) {
        uintptr_t address = (static_cast<uintptr_t>(t) << 32) + (static_cast<uintptr_t>(i) << 12);
        table.insert(mapping_at(address, 4096, t % 2));
        if (i % 2 == 0) {
          ASSERT_TRUE(table.remove(address).has_value());
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(table.live().size(), static_cast<size_t>(kThreads * kPerThread / 2));
  EXPECT_EQ(table.live_count(), static_cast<size_t>(kThreads * kPerThread / 2));
  EXPECT_EQ(table.total_inserted(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(table.total_removed(), static_cast<uint64_t>(kThreads * kPerThread / 2));
}

}  // namespace
}  // namespace egm

namespace egm {
namespace {

TEST(MappingTableRangeTest, InteriorPointersAndRangesFindTheirAllocation) {
  AllocationTable table;
  Allocation low, high;
  low.address = 0x100000;
  low.requested = 0x3000;
  high.address = 0x200000;
  high.requested = 0x1000;
  table.insert(low);
  table.insert(high);
  EXPECT_EQ(table.find_containing(0x102fff)->address, 0x100000u);
  EXPECT_FALSE(table.find_containing(0x103000));  // past the requested size
  EXPECT_EQ(table.find_containing(0x200800)->address, 0x200000u);  // the highest allocation's inside
  EXPECT_FALSE(table.find_containing(0xfffff));
  Allocation owner;
  EXPECT_EQ(table.find_range(0x101000, 0x2000, &owner), RangeOwner::kOne);
  EXPECT_EQ(owner.address, 0x100000u);
  EXPECT_EQ(table.find_range(0x101000, 0x2001, &owner), RangeOwner::kMixed);  // one byte beyond
  EXPECT_EQ(table.find_range(0xff000, 0x2000, &owner), RangeOwner::kMixed);   // starts before
  EXPECT_EQ(table.find_range(0x100000, 0x100001, &owner), RangeOwner::kMixed);  // spans both
  EXPECT_EQ(table.find_range(0x103000, 0x1000, &owner), RangeOwner::kNone);    // the gap
  EXPECT_EQ(table.find_range(0x300000, 0, &owner), RangeOwner::kNone);
  EXPECT_EQ(table.find_range(UINTPTR_MAX - 10, 100, &owner), RangeOwner::kNone);  // wraps
  EXPECT_TRUE(table.update_hints(0x100000, [](ManagedHints& hints) {
    hints.change(0, 0x1000, [](PageHints& page) { page.read_mostly = true; });
  }));
  EXPECT_TRUE(table.find_containing(0x100000)->hints.common_to(0, 0x1000).read_mostly);
  table.remove(0x100000);
  EXPECT_FALSE(table.find_containing(0x101000));
  EXPECT_FALSE(table.update_hints(0x100000, [](ManagedHints&) {}));
}

}  // namespace
}  // namespace egm
