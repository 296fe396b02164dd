// The table of cuMemCreate handles placed on a host node: the program's
// create and retains each take a reference, and only its last release ends
// the record.
#include "shim/core/created_handles.h"

#include <gtest/gtest.h>

namespace egm {
namespace {

CreatedHandle created(uint64_t handle, uint64_t id) {
  CreatedHandle record;
  record.allocation.handle = handle;
  record.allocation.id = id;
  record.allocation.mapped = 2 << 20;
  record.requested.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  record.requested.location.id = 1;
  return record;
}

TEST(CreatedHandlesTest, EmptyUntilInsertedAndAfterTheLastRelease) {
  CreatedHandles handles;
  EXPECT_TRUE(handles.empty());
  handles.insert(created(0x10, 1));
  EXPECT_FALSE(handles.empty());
  EXPECT_TRUE(handles.contains(0x10));
  EXPECT_FALSE(handles.contains(0x11));
  std::optional<CreatedHandle> last = handles.released(0x10);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->allocation.id, 1u);
  EXPECT_TRUE(handles.empty());
  EXPECT_FALSE(handles.released(0x10).has_value());  // not ours any more
  EXPECT_EQ(handles.total_inserted(), 1u);
  EXPECT_EQ(handles.total_removed(), 1u);
}

TEST(CreatedHandlesTest, RetainsTakeAReferenceEach) {
  CreatedHandles handles;
  handles.insert(created(0x10, 1));
  handles.retained(0x10);
  handles.retained(0x10);
  handles.retained(0x99);  // not a rewritten handle: ignored
  EXPECT_FALSE(handles.released(0x10).has_value());
  EXPECT_FALSE(handles.released(0x10).has_value());
  EXPECT_TRUE(handles.contains(0x10));
  EXPECT_TRUE(handles.released(0x10).has_value());
  EXPECT_FALSE(handles.contains(0x10));
}

TEST(CreatedHandlesTest, RequestedPropertiesAndLiveInIdOrder) {
  CreatedHandles handles;
  handles.insert(created(0x30, 7));
  handles.insert(created(0x20, 5));
  std::optional<CUmemAllocationProp> prop = handles.requested(0x30);
  ASSERT_TRUE(prop.has_value());
  EXPECT_EQ(prop->location.type, CU_MEM_LOCATION_TYPE_DEVICE);
  EXPECT_EQ(prop->location.id, 1);
  EXPECT_FALSE(handles.requested(0x40).has_value());
  std::vector<Allocation> live = handles.live();
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0].id, 5u);
  EXPECT_EQ(live[1].id, 7u);
  EXPECT_EQ(handles.live_count(), 2u);
}

}  // namespace
}  // namespace egm
